//! jos: a serverkernel for BCM2835 boards.
//!
//! Boot order: `arch::arm1176::boot` sets up the per-mode stacks, VFP and `.bss`, then calls
//! [`kernel_main`], which brings up the console, exception vectors, interrupt controller, the
//! mailbox queries, the MMU and caches, the heap, the screen, runs the self-test and hands over
//! to the cyclic executive.
//!
//! Layout: `arch/` is the ARM1176 (CPU) part, `board/bcm2835/` the peripherals, `memory/` the DMA
//! region and heap, `services/` what is built on them; board-independent logic is in `jos_kcore`.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

pub mod arch;
pub mod board;
pub mod memory;
pub mod services;
pub mod sync;

pub use memory::dma;

use board::bcm2835::firmware::{BootInfo, Tags};
use board::bcm2835::{mailbox, pl011, CONSOLE, GPIO, IRQ, MAILBOX, RNG, TIMER};
use jos_kcore::memory_map::{self, DMA_BASE, DMA_SIZE, PERIPHERAL_BASE, PERIPHERAL_SIZE, SECTION_SIZE};
use jos_kcore::page_table::{MemoryKind, Region};
use services::{executive, screen, status};

/// What the exception entries (arch) call: the native job service commits the memory its job
/// touches first and takes the job's faults and IRQ exits, the fault service reports the rest,
/// the board's interrupt controller dispatches IRQs.
static EXCEPTION_HOOKS: arch::exceptions::Hooks = arch::exceptions::Hooks {
    commit: services::native::commit_on_fault,
    recover: recover_hook,
    report: services::fault::report,
    irq: irq_hook,
    svc: services::native::system_call,
};

/// Faults: a wasm slice that exhausted its stack, else the native job's faults.
fn recover_hook(
    kind: arch::exceptions::ExceptionKind,
    frame: &mut arch::exceptions::TrapFrame,
    registers: &arch::exceptions::FaultRegisters,
) -> bool {
    services::wasm_stack::recover_from_fault(kind, frame, registers)
        || services::native::recover_from_fault(kind, frame, registers)
}

/// Every IRQ: the board dispatches it, then the native job service says how to leave.
fn irq_hook(pc: u32, spsr: u32) -> arch::exceptions::IrqExit {
    board::bcm2835::irq::dispatch();
    services::native::irq_redirect(pc, spsr)
}

/// The kernel's entry from `_start`, in SVC mode with interrupts masked, with the boot loader's
/// r0, r1 (machine type) and r2 (ATAG list or device tree address): the Pi firmware passes 0,
/// 0xC42 and 0x100; QEMU's ELF boot passes zeros.
#[no_mangle]
pub extern "C" fn kernel_main(r0: u32, machine: u32, tags: u32) -> ! {
    let boot_started = TIMER.now_micros();
    // Before the MMU maps page 0 away: the firmware's tags sit at 0x100.
    let boot = board::bcm2835::firmware::read(r0, machine, tags);
    // The console on GPIO 14/15 (ALT0) at the clock the firmware set, asked before the first line.
    let uart_clock = MAILBOX.clock_rate(mailbox::clock::UART);
    let console = start_console(uart_clock, &boot);
    arch::exceptions::set_hooks(&EXCEPTION_HOOKS);
    let vectors = arch::exceptions::install_vectors();
    IRQ.init();
    RNG.init();
    kprintln!("jos {} (BCM2835) booting", env!("CARGO_PKG_VERSION"));
    log_boot_registers(&boot);
    match console {
        (clock, source, Ok(divisors)) => info!(
            "uart: PL011 on GPIO 14/15, {clock} Hz clock ({source}), {} baud: IBRD {} FBRD {} ({} baud)",
            pl011::CONSOLE_BAUD,
            divisors.integer,
            divisors.fraction,
            divisors.baud(clock)
        ),
        (clock, source, Err(_)) => error!(
            "uart: a {clock} Hz clock ({source}) cannot give {} baud; using the 48 MHz divisors",
            pl011::CONSOLE_BAUD
        ),
    }

    let revision = MAILBOX.board_revision().unwrap_or_else(|e| {
        error!(
            "mailbox: board revision: {e:?}; {}",
            if boot.revision.is_some() { "using the firmware's tags" } else { "unknown board" }
        );
        boot.revision.unwrap_or(0)
    });
    let board_info = jos_kcore::board::decode(revision);
    services::led::init(board_info.activity_led);
    let mailbox_memory = MAILBOX.arm_memory().map_err(|e| error!("mailbox: ARM memory: {e:?}")).ok();
    let (arm_base, arm_size, memory_source) = jos_kcore::board::arm_memory(mailbox_memory, boot.memory, revision);
    if memory_source == jos_kcore::board::MemorySource::Fallback {
        error!("memory: neither the mailbox nor ATAG_MEM gave a credible size; assuming {} MiB", arm_size >> 20);
    }
    let framebuffer = allocate_framebuffer();
    let heap_range = match memory_map::heap_range(arm_base, arm_size, memory::layout::kernel_end()) {
        Ok(range) => range,
        Err(e) => panic!("unusable memory layout: {e:?} (ARM memory {arm_base:#x}+{arm_size:#x})"),
    };
    // With the vectors behind VBAR, the page at address 0 is left unmapped: null pointers fault.
    let null_guard = matches!(vectors, arch::exceptions::VectorPlacement::Vbar(_));
    enable_mmu(heap_range.1, framebuffer.as_ref(), null_guard);

    // SAFETY: the heap range is mapped RAM above the kernel, DMA region and boot configuration,
    // used by nothing else.
    unsafe { memory::heap::HEAP.init(heap_range.0, heap_range.1 - heap_range.0) };
    if let Some(info) = framebuffer {
        // SAFETY: the firmware gave us this 32-bit framebuffer; `enable_mmu` mapped it.
        unsafe { screen::init(info) };
        kprintln!(
            "screen: {}x{}x{} at {:#x}, banner \"{}\"",
            info.width,
            info.height,
            info.depth,
            info.base,
            status::BANNER
        );
    }

    let mac = MAILBOX.mac_address().unwrap_or_default();
    status::set_board_line(format_args!(
        "{} rev {revision:#x}, {} MiB, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        board_info.model.name(),
        arm_size >> 20,
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    ));
    status::refresh();
    match vectors {
        arch::exceptions::VectorPlacement::Vbar(table) => {
            info!("vectors: VBAR = {table:#x}; the null page is unmapped")
        }
        arch::exceptions::VectorPlacement::CopiedToZero => {
            warn!("vectors: copied to 0 (VBAR did not read back); the null page stays mapped")
        }
    }
    print_board();
    info!("memory: ARM {arm_base:#x}+{} MiB ({memory_source:?})", arm_size >> 20);
    if arch::cycles::init() {
        info!("cpu: cycle counter (CP15 c15 CCNT) ticks; native jobs report cycles");
    } else {
        info!("cpu: no cycle counter (CP15 c15 CCNT reads a constant); jobs report 0 cycles");
    }
    info!(
        "memory: kernel {:#x}..{:#x}, dma {DMA_BASE:#x}+{} KiB, heap {:#x}..{:#x}",
        memory::layout::kernel_start(),
        memory::layout::kernel_end(),
        DMA_SIZE >> 10,
        heap_range.0,
        heap_range.1
    );

    for (name, bottom, top) in memory::layout::stacks() {
        debug!("stack {name}: {bottom:#x}..{top:#x}, guard {:#x}..{bottom:#x}", bottom - memory::layout::GUARD_SIZE);
    }
    let (_, svc_bottom, svc_top) = memory::layout::stacks()[4];
    info!(
        "stacks: svc {svc_bottom:#x}..{svc_top:#x}, each above an unmapped {} KiB guard page",
        memory::layout::GUARD_SIZE >> 10
    );
    let passed = services::selftest::run();
    services::led::self_test(passed);
    let verdict_micros = TIMER.now_micros();
    let image = memory::layout::image_end() - memory::layout::kernel_start();
    let (bss_start, bss_end) = memory::layout::bss();
    let heap = memory::heap::HEAP.stats();
    kprintln!(
        "boot: verdict {} us after reset ({} us in kernel_main); image {} bytes, bss {} bytes, stacks {} bytes; idle heap {} bytes used of {}",
        verdict_micros,
        verdict_micros - boot_started,
        image,
        bss_end - bss_start,
        memory::layout::kernel_end() - bss_end,
        heap.used,
        heap.size
    );
    if !passed {
        error!("self-test failed; carrying on so the failure can be inspected");
    }

    services::shell::init();
    let _ = executive::register("shell", 10, services::shell::poll);
    let offload = services::offload::init();
    start_network();
    let _ = executive::register("net", 1, services::net::poll);
    if services::fleet::init() {
        let _ = executive::register("fleet", 1, services::fleet::poll);
    }
    if offload {
        let _ = executive::register("offload", 1, services::offload::poll);
    }
    let _ = executive::register("status", 250, status::refresh);
    let _ = executive::register("heartbeat", 1000, heartbeat);
    let _ = executive::register("led", 10, services::led::poll);
    executive::run()
}

/// Puts GPIO 14/15 in ALT0 (PL011 TXD0/RXD0) and programs the console for the UART clock: the
/// mailbox's answer, else the firmware's `bcm2708.uart_clock=`, else the default 48 MHz.
/// Returns the clock, where it came from, and the divisors (an error when the clock cannot give
/// 115200 baud and the 48 MHz divisors were used).
fn start_console(
    mailbox_clock: Result<u32, mailbox::MailboxError>,
    boot: &BootInfo,
) -> (u32, &'static str, Result<pl011::Divisors, pl011::Divisors>) {
    use board::bcm2835::gpio::Function;
    // On the Zero W the firmware routes the PL011 to the Bluetooth chip (GPIO 32/33, ALT3);
    // with the console on 14/15 as well, its receive line would be shared: release them.
    for pin in [32, 33] {
        if GPIO.function(pin) == Function::Alt3 {
            GPIO.set_function(pin, Function::Input);
        }
    }
    GPIO.set_function(14, Function::Alt0);
    GPIO.set_function(15, Function::Alt0);
    let from_tags = boot.cmdline().number(jos_abi::atags::param::UART_CLOCK).and_then(|hz| u32::try_from(hz).ok());
    let (clock, source) = match (mailbox_clock, from_tags) {
        (Ok(hz), _) if hz > 0 => (hz, "mailbox"),
        (_, Some(hz)) => (hz, "firmware command line"),
        _ => (pl011::DEFAULT_CLOCK_HZ, "assumed: the mailbox did not answer"),
    };
    (clock, source, CONSOLE.init(clock))
}

/// Logs what the boot loader passed: registers, and what its tags said.
fn log_boot_registers(boot: &BootInfo) {
    info!("boot: r0 {:#x} r1 (machine) {:#x} r2 (tags) {:#x}", boot.r0, boot.machine, boot.tags_address);
    match boot.tags {
        Tags::None => info!("boot: no ATAGs (r2 = {:#x}): booted as an ELF (QEMU) or by a loader that passes none", boot.tags_address),
        Tags::DeviceTree => warn!(
            "boot: r2 = {:#x} points at a device tree, which jos does not read: remove the .dtb files from the card or keep `device_tree=` in config.txt",
            boot.tags_address
        ),
        Tags::Unreadable(error) => error!("boot: r2 = {:#x} holds no ATAG list ({error})", boot.tags_address),
        Tags::Atags(bytes) => {
            info!(
                "boot: atags {bytes} bytes: mem {}, initrd {}, revision {}, serial {}",
                DisplayRange(boot.memory.map(|(start, size)| (start as u64, size as u64))),
                DisplayRange(boot.initrd.map(|(start, size)| (u64::from(start), u64::from(size)))),
                DisplayHex(boot.revision.map(u64::from)),
                DisplayHex(boot.serial)
            );
            if let Some(mac) = board::cmdline_mac() {
                info!(
                    "boot: command line MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} (smsc95xx.macaddr)",
                    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
                );
            }
            if let Some((start, _)) = boot.initrd {
                if start as usize != jos_abi::config::CONFIG_ADDRESS {
                    warn!("boot: the firmware loaded the initramfs at {start:#x}, not at {:#x} where the boot configuration is read", jos_abi::config::CONFIG_ADDRESS);
                }
            }
            let cmdline = boot.cmdline();
            info!("boot: cmdline \"{}\"{}", core::str::from_utf8(cmdline.text()).unwrap_or("(not UTF-8)"), if boot.cmdline.truncated() { " (cut)" } else { "" });
        }
    }
    if boot.tags_address != 0 && boot.machine != jos_abi::atags::MACHINE_BCM2708 {
        warn!("boot: machine type {:#x} is not BCM2708 ({:#x})", boot.machine, jos_abi::atags::MACHINE_BCM2708);
    }
}

/// `start+size` in hex, or `-`.
struct DisplayRange(Option<(u64, u64)>);

impl core::fmt::Display for DisplayRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some((start, size)) => write!(f, "{start:#x}+{size:#x}"),
            None => f.write_str("-"),
        }
    }
}

/// A number in hex, or `-`.
struct DisplayHex(Option<u64>);

impl DisplayHex {
    /// The same number in decimal.
    fn decimal(self) -> DisplayDecimal {
        DisplayDecimal(self.0)
    }
}

/// A number in decimal, or `?`.
struct DisplayDecimal(Option<u64>);

impl core::fmt::Display for DisplayDecimal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value}"),
            None => f.write_str("?"),
        }
    }
}

impl core::fmt::Display for DisplayHex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value:#x}"),
            None => f.write_str("-"),
        }
    }
}

/// The framebuffer at the size the firmware chose for the display (mailbox "get physical
/// size", else the command line's `bcm2708_fb.fbwidth/fbheight`), 32 bits per pixel; if the
/// firmware refuses that (the cut-down firmware that `gpu_mem=16` selects caps its early
/// framebuffer), 640x480; `None` when neither works.
fn allocate_framebuffer() -> Option<board::bcm2835::framebuffer::FramebufferInfo> {
    use jos_abi::atags::param;
    let sane = |(width, height): (u32, u32)| (64..=4096).contains(&width) && (64..=4096).contains(&height);
    let from_mailbox = MAILBOX.physical_size().ok().filter(|size| sane(*size));
    let from_tags = match (
        board::bcm2835::firmware::cmdline_number(param::FB_WIDTH),
        board::bcm2835::firmware::cmdline_number(param::FB_HEIGHT),
    ) {
        (Some(width), Some(height)) => {
            u32::try_from(width).ok().zip(u32::try_from(height).ok()).filter(|size| sane(*size))
        }
        _ => None,
    };
    let fallback = (screen::WIDTH, screen::HEIGHT);
    let chosen = from_mailbox.or(from_tags).unwrap_or(fallback);
    let attempt = |(width, height): (u32, u32)| {
        MAILBOX.allocate_framebuffer(width, height, 32).map_err(|e| (width, height, e)).and_then(|fb| {
            if fb.depth == 32 {
                Ok(fb)
            } else {
                Err((width, height, mailbox::MailboxError::BadFramebuffer))
            }
        })
    };
    match attempt(chosen) {
        Ok(fb) => Some(fb),
        Err((width, height, e)) if chosen != fallback => {
            warn!("mailbox: framebuffer {width}x{height}x32 refused ({e:?}); trying {}x{}", fallback.0, fallback.1);
            attempt(fallback).map_err(|(_, _, e)| error!("mailbox: framebuffer: {e:?}; running without a screen")).ok()
        }
        Err((_, _, e)) => {
            error!("mailbox: framebuffer: {e:?}; running without a screen");
            None
        }
    }
}

/// Logs the board: model, revision decoding, memory split, LED (the console's `board` command).
pub fn print_board() {
    let revision = MAILBOX.board_revision().ok().or(board::bcm2835::firmware::boot_info().revision).unwrap_or(0);
    let info = jos_kcore::board::decode(revision);
    info!(
        "board: {} v{}.{} (revision {revision:#08x}), {} MiB on board, made by {}, ethernet {:?}",
        info.model.name(),
        info.pcb.0,
        info.pcb.1,
        DisplayHex(info.memory_mib.map(u64::from)).decimal(),
        info.manufacturer,
        info.ethernet
    );
    let arm = MAILBOX.arm_memory().ok();
    let vc = MAILBOX.vc_memory().ok();
    if let (Some((arm_base, arm_size)), Some((vc_base, vc_size))) = (arm, vc) {
        info!(
            "board: memory split ARM {arm_base:#x}+{} MiB, VideoCore {vc_base:#x}+{} MiB (config.txt gpu_mem)",
            arm_size >> 20,
            vc_size >> 20
        );
    }
    match info.activity_led {
        Some(led) => {
            info!("board: activity LED on GPIO {} (active {})", led.pin, if led.active_high { "high" } else { "low" })
        }
        None => info!("board: no activity LED driven"),
    }
}

/// Builds the identity map and turns on the MMU and caches: everything privileged-only, the
/// kernel image page by page (code read-only, data never executable, guard pages unmapped),
/// the stub page and the job stack the only pages user mode may touch before a job's region
/// is mapped (docs/memory.md).
fn enable_mmu(ram_end: usize, framebuffer: Option<&board::bcm2835::framebuffer::FramebufferInfo>, null_guard: bool) {
    use jos_kcore::page_table::Access;
    let region = |base, size, kind| Region { base, size, kind, access: Access::KernelData };
    let mut regions = [region(0, 0, MemoryKind::Device); 5];
    regions[0] = region(0, DMA_BASE, MemoryKind::NormalWriteBack);
    regions[1] = region(DMA_BASE, DMA_SIZE, MemoryKind::NormalNonCacheable);
    regions[2] = region(DMA_BASE + DMA_SIZE, ram_end - (DMA_BASE + DMA_SIZE), MemoryKind::NormalWriteBack);
    regions[3] = region(PERIPHERAL_BASE, PERIPHERAL_SIZE, MemoryKind::Device);
    let mut count = 4;
    if let Some(fb) = framebuffer {
        let start = memory_map::align_down(fb.base, SECTION_SIZE);
        let end = memory_map::align_up(fb.base + fb.size, SECTION_SIZE).unwrap_or(start);
        if start >= ram_end && end <= PERIPHERAL_BASE {
            regions[4] = region(start, end - start, MemoryKind::NormalNonCacheable);
            count = 5;
        } else {
            error!("framebuffer at {:#x} overlaps RAM or peripherals: not mapped", fb.base);
        }
    }
    let guards = memory::layout::guard_pages();
    let (kernel_start, text_end, rw_start) =
        (memory::layout::kernel_start(), memory::layout::text_end(), memory::layout::rw_start());
    let stubs = memory::layout::user_stubs();
    let job_stack = memory::layout::job_stack();
    let page = |address: usize| {
        let within = |(start, end): (usize, usize)| address >= start && address < end;
        let access =
            if (null_guard && address < memory::layout::GUARD_SIZE) || guards.iter().any(|&range| within(range)) {
                return None;
            } else if within(stubs) {
                Access::UserCode
            } else if within((kernel_start, text_end)) {
                Access::KernelCode
            } else if within((text_end, rw_start)) {
                Access::KernelReadOnly
            } else if within(job_stack) {
                Access::UserData
            } else {
                Access::KernelData
            };
        Some((MemoryKind::NormalWriteBack, access))
    };
    // SAFETY: boot path, once, IRQs masked; the regions cover the image, stacks, DMA region,
    // heap, peripherals and framebuffer at their own addresses, the code executable.
    if let Err(e) = unsafe { arch::mmu::enable(&regions[..count], memory::layout::kernel_end(), page) } {
        error!("mmu: not enabled: {e:?}");
    }
}

/// Enumerates USB and, when an Ethernet device is found, starts the network manager.
fn start_network() {
    match board::bcm2835::usb::start(services::net::log_line) {
        Ok(()) => {
            if let Err(e) = services::net::init(services::net::log_line) {
                error!("net: not started: {e:?}");
            }
        }
        Err(e) => error!("usb: {e:?}"),
    }
}

/// Once a second: counts, and logs the executive's counters every `HEARTBEAT_LOG_SECONDS`.
fn heartbeat() {
    use core::sync::atomic::{AtomicU32, Ordering};
    static BEATS: AtomicU32 = AtomicU32::new(0);
    let beats = BEATS.fetch_add(1, Ordering::Relaxed) + 1;
    // Beat 1 runs in frame 0; beat 2 one second later.
    if beats == 2 || beats.is_multiple_of(HEARTBEAT_LOG_SECONDS) {
        let stats = executive::stats();
        let heap = memory::heap::HEAP.stats();
        info!(
            "heartbeat {beats}: frames {} overruns {} missed {} busy {} us; heap used {} peak {} failures {}",
            stats.frames, stats.overruns, stats.missed, stats.busy_micros, heap.used, heap.peak, heap.failures
        );
    }
}

/// How often the heartbeat logs, in seconds.
const HEARTBEAT_LOG_SECONDS: u32 = 60;

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

use board::bcm2835::{CONSOLE, IRQ, MAILBOX, RNG, TIMER};
use jos_kcore::memory_map::{self, DMA_BASE, DMA_SIZE, PERIPHERAL_BASE, PERIPHERAL_SIZE, SECTION_SIZE};
use jos_kcore::page_table::{MemoryKind, Region};
use services::{executive, screen, status};

/// ARM memory assumed when the mailbox does not answer (the smallest board: 256 MiB minus the
/// VideoCore's share).
const FALLBACK_ARM_MEMORY: usize = 0x0C00_0000;

/// The kernel's entry from `_start`, in SVC mode with interrupts masked.
#[no_mangle]
pub extern "C" fn kernel_main() -> ! {
    let boot_started = TIMER.now_micros();
    CONSOLE.init();
    let vectors = arch::exceptions::install_vectors();
    IRQ.init();
    RNG.init();
    kprintln!("jos {} (BCM2835) booting", env!("CARGO_PKG_VERSION"));

    let revision = MAILBOX.board_revision().unwrap_or_else(|e| {
        error!("mailbox: board revision: {e:?}");
        0
    });
    let (arm_base, arm_size) = MAILBOX.arm_memory().unwrap_or_else(|e| {
        error!("mailbox: ARM memory: {e:?}; assuming {} MiB", FALLBACK_ARM_MEMORY >> 20);
        (0, FALLBACK_ARM_MEMORY)
    });
    let framebuffer = MAILBOX
        .allocate_framebuffer(screen::WIDTH, screen::HEIGHT, 32)
        .map_err(|e| error!("mailbox: framebuffer: {e:?}; running without a screen"))
        .ok()
        .filter(|fb| fb.depth == 32);

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
        kprintln!("screen: {}x{}x{} at {:#x}, banner \"{}\"", info.width, info.height, info.depth, info.base, status::BANNER);
    }

    let mac = MAILBOX.mac_address().unwrap_or_default();
    status::set_board_line(format_args!(
        "{} rev {revision:#x}, {} MiB, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        jos_kcore::board::board_name(revision),
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
        arch::exceptions::VectorPlacement::Vbar(table) => info!("vectors: VBAR = {table:#x}; the null page is unmapped"),
        arch::exceptions::VectorPlacement::CopiedToZero => warn!("vectors: copied to 0 (VBAR did not read back); the null page stays mapped"),
    }
    info!("board: {} (revision {revision:#08x}), ARM memory {} MiB", jos_kcore::board::board_name(revision), arm_size >> 20);
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
    info!("stacks: svc {svc_bottom:#x}..{svc_top:#x}, each above an unmapped {} KiB guard page", memory::layout::GUARD_SIZE >> 10);
    let passed = services::selftest::run();
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
    if offload {
        let _ = executive::register("offload", 1, services::offload::poll);
    }
    let _ = executive::register("status", 250, status::refresh);
    let _ = executive::register("heartbeat", 1000, heartbeat);
    executive::run()
}

/// Builds the identity map and turns on the MMU and caches.
fn enable_mmu(ram_end: usize, framebuffer: Option<&board::bcm2835::framebuffer::FramebufferInfo>, null_guard: bool) {
    let mut regions = [Region { base: 0, size: 0, kind: MemoryKind::Device }; 5];
    regions[0] = Region { base: 0, size: DMA_BASE, kind: MemoryKind::NormalWriteBack };
    regions[1] = Region { base: DMA_BASE, size: DMA_SIZE, kind: MemoryKind::NormalNonCacheable };
    regions[2] = Region { base: DMA_BASE + DMA_SIZE, size: ram_end - (DMA_BASE + DMA_SIZE), kind: MemoryKind::NormalWriteBack };
    regions[3] = Region { base: PERIPHERAL_BASE, size: PERIPHERAL_SIZE, kind: MemoryKind::Device };
    let mut count = 4;
    if let Some(fb) = framebuffer {
        let start = memory_map::align_down(fb.base, SECTION_SIZE);
        let end = memory_map::align_up(fb.base + fb.size, SECTION_SIZE).unwrap_or(start);
        if start >= ram_end && end <= PERIPHERAL_BASE {
            regions[4] = Region { base: start, size: end - start, kind: MemoryKind::NormalNonCacheable };
            count = 5;
        } else {
            error!("framebuffer at {:#x} overlaps RAM or peripherals: not mapped", fb.base);
        }
    }
    let stack_guards = memory::layout::guard_pages();
    let stacks = stack_guards.len();
    let mut guards = [(0usize, 0usize); 7];
    guards[..stacks].copy_from_slice(&stack_guards);
    let count_guards = if null_guard {
        guards[stacks] = (0, memory::layout::GUARD_SIZE);
        stacks + 1
    } else {
        stacks
    };
    let guards = &guards[..count_guards];
    // SAFETY: boot path, once, IRQs masked; the regions cover the image, stacks, DMA region,
    // heap, peripherals and framebuffer at their own addresses.
    if let Err(e) = unsafe { arch::mmu::enable(&regions[..count], guards) } {
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



//! A small command line on the serial console: the UART's receive interrupt fills a ring buffer,
//! and the executive's "shell" task assembles lines and runs commands (`help`, `status`,
//! `tasks`, `executive`, `heap`, `stall MS`, `reboot`, and `panic` / `oom` / `overflow` to exercise the panic,
//! allocation-failure and stack-guard paths, `vfp ...` to drive the VFP support code with a
//! synthesised bounce). Echoes what it receives.

extern crate alloc;

use jos_kcore::drivers::{Clock, SerialPort};
use jos_kcore::shell::LineEditor;

use crate::board::bcm2835::pl011::IRQ_NUMBER;
use crate::board::bcm2835::{CONSOLE, IRQ, WATCHDOG};
use crate::sync::IrqLock;

const RING: usize = 256;

/// Bytes received by the interrupt handler and not yet consumed.
struct Ring {
    bytes: [u8; RING],
    head: usize,
    len: usize,
    dropped: u32,
}

static RECEIVED: IrqLock<Ring> = IrqLock::new(Ring { bytes: [0; RING], head: 0, len: 0, dropped: 0 });
static EDITOR: IrqLock<LineEditor> = IrqLock::new(LineEditor::new());

fn on_receive() {
    RECEIVED.lock(|ring| {
        while let Some(byte) = CONSOLE.read_byte() {
            if ring.len == RING {
                ring.dropped = ring.dropped.wrapping_add(1);
            } else {
                ring.bytes[(ring.head + ring.len) % RING] = byte;
                ring.len += 1;
            }
        }
    });
}

/// Unmasks the UART receive interrupt and registers the handler.
pub fn init() {
    if IRQ.register(IRQ_NUMBER, on_receive).is_err() {
        crate::error!("shell: cannot register the UART interrupt");
        return;
    }
    CONSOLE.enable_receive_interrupt();
}

fn next_byte() -> Option<u8> {
    RECEIVED.lock(|ring| {
        (ring.len > 0).then(|| {
            let byte = ring.bytes[ring.head];
            ring.head = (ring.head + 1) % RING;
            ring.len -= 1;
            byte
        })
    })
}

/// The executive task: consumes received bytes and runs at most one complete line per call, so
/// a command's effect on the executive (a long command is an overrun) is accounted before the
/// next command runs.
pub fn poll() {
    while let Some(byte) = next_byte() {
        if let Some(line) = EDITOR.lock(|editor| editor.feed(byte, &CONSOLE)) {
            run(line.as_str());
            return;
        }
    }
}

fn run(command: &str) {
    match command {
        "" => {}
        "help" => crate::kprintln!(
            "commands: help, status, tasks, executive, heap, offload, board, led, stall MS, reboot, panic, oom, overflow, fault undef|abort, on-fault halt|reboot, vfp [set N X|fpscr X|bounce I [I2]|clear]"
        ),
        "executive" => {
            let stats = crate::services::executive::stats();
            crate::kprintln!(
                "executive: frames {} overruns {} missed {} ticks {} busy {} us tasks {}",
                stats.frames,
                stats.overruns,
                stats.missed,
                stats.ticks,
                stats.busy_micros,
                stats.tasks
            );
        }
        "status" => crate::services::status::print(),
        "led" => crate::services::led::print(),
        "board" => crate::print_board(),
        "offload" => crate::services::offload::print_counters(),
        "tasks" => crate::services::executive::for_each_task(|task| {
            crate::kprintln!(
                "task {:<10} every {:>5} frames, ran {:>8} times, longest {} us",
                task.name,
                task.period,
                task.runs,
                task.max_micros
            );
        }),
        "heap" => {
            let heap = crate::memory::heap::HEAP.stats();
            crate::kprintln!(
                "heap: size {} used {} free {} peak {} allocations {} frees {} failures {} (last failed size {})",
                heap.size,
                heap.used,
                heap.free(),
                heap.peak,
                heap.allocations,
                heap.frees,
                heap.failures,
                heap.last_failed_size
            );
            crate::kprintln!("dma: used {} free {}", crate::dma::used(), crate::dma::free());
        }
        "reboot" => {
            crate::kprintln!("rebooting through the watchdog");
            WATCHDOG.reboot();
        }
        // Exercise the panic and allocation-failure paths (the QEMU tests use them).
        "panic" => panic!("requested from the console"),
        "oom" => {
            let size = crate::memory::heap::HEAP.stats().size + 1;
            let mut hog = alloc::vec::Vec::<u8>::new();
            hog.reserve_exact(size);
            crate::kprintln!("oom: {} bytes reserved?", hog.capacity());
        }
        "overflow" => {
            let depth = recurse(0);
            crate::kprintln!("overflow: returned from depth {depth}?");
        }
        "fault undef" => {
            let pc = crate::arch::fault_test::undefined_instruction_pc();
            crate::kprintln!("fault-test: undefined instruction at pc={pc:#010x}");
            // SAFETY: deliberately executes an undefined instruction; the fault handler reports it
            // and halts or reboots, so control never comes back here.
            unsafe { crate::arch::fault_test::undefined_instruction() };
        }
        "fault abort" => {
            let address = 0xF000_0000usize;
            let pc = crate::arch::fault_test::data_abort_pc();
            crate::kprintln!("fault-test: data abort at pc={pc:#010x} address={address:#010x}");
            // SAFETY: deliberately loads from an unmapped address; the fault handler reports it and
            // halts or reboots, so control never comes back here.
            unsafe { crate::arch::fault_test::data_abort(address) };
        }
        "on-fault halt" => {
            crate::services::fault::set_policy(crate::services::fault::FaultPolicy::Halt);
            crate::kprintln!("on-fault: halt");
        }
        "on-fault reboot" => {
            crate::services::fault::set_policy(crate::services::fault::FaultPolicy::Reboot);
            crate::kprintln!("on-fault: reboot through the watchdog");
        }
        "vfp" => {
            let (fpsid, fpscr, fpexc) = crate::arch::vfp::system_registers();
            crate::kprintln!(
                "vfp: fpsid={fpsid:#010x} fpscr={fpscr:#010x} fpexc={fpexc:#010x} bounces={} refused={}",
                crate::arch::vfp::BOUNCES.load(core::sync::atomic::Ordering::Relaxed),
                crate::arch::vfp::REFUSED.load(core::sync::atomic::Ordering::Relaxed)
            );
        }
        vfp if vfp.starts_with("vfp ") => vfp_command(&vfp[4..]),
        stall if stall.starts_with("stall ") => match stall[6..].parse::<u32>() {
            // Busy for whole frames: the executive must count the overrun and the missed frames.
            Ok(millis) if millis <= 1000 => {
                crate::board::bcm2835::TIMER.delay_micros(millis * 1000);
                crate::kprintln!("stalled {millis} ms");
            }
            _ => crate::kprintln!("usage: stall MS (at most 1000)"),
        },
        other => crate::kprintln!("unknown command `{other}`; try help"),
    }
}

/// Operands staged by `vfp set` / `vfp fpscr` for the next `vfp bounce`.
static VFP_STAGED: IrqLock<crate::arch::vfp::SyntheticBounce> =
    IrqLock::new(crate::arch::vfp::SyntheticBounce { registers: [0; 32], fpscr: 0, fpinst: 0, fpinst2: 0, fpexc: 0 });

/// `vfp bounce` runs so far (numbers the output lines).
static VFP_RUNS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

/// `vfp set N X` (`s<N>` = X), `vfp fpscr X`, `vfp clear`, `vfp bounce FPINST [FPINST2]`: the
/// QEMU test's way into the VFP support code (QEMU never bounces by itself). `bounce` puts the
/// staged registers and FPSCR into the VFP, writes FPINST (and FPINST2 with FPEXC.FP2V), sets
/// FPEXC.EX and takes the undefined-instruction exception as the core would, then prints what
/// the support code left: `vfp-bounce K: fpscr=... fpexc=...` and `vfp-regs K: s0=... s31=...`
/// (K counts the runs).
fn vfp_command(arguments: &str) {
    use crate::arch::vfp::{synthetic_bounce, BOUNCES};
    use jos_vfp::fpexc;
    let words: alloc::vec::Vec<&str> = arguments.split_whitespace().collect();
    match words.as_slice() {
        ["set", register, value] => match (register.parse::<usize>(), hex(value)) {
            (Ok(register), Some(value)) if register < 32 => {
                VFP_STAGED.lock(|staged| staged.registers[register] = value);
                crate::kprintln!("vfp: s{register}={value:#010x}");
            }
            _ => crate::kprintln!("usage: vfp set N HEX (N from 0 to 31)"),
        },
        ["fpscr", value] => match hex(value) {
            Some(value) => {
                VFP_STAGED.lock(|staged| staged.fpscr = value);
                crate::kprintln!("vfp: fpscr={value:#010x}");
            }
            None => crate::kprintln!("usage: vfp fpscr HEX"),
        },
        ["clear"] => {
            VFP_STAGED.lock(|staged| {
                staged.registers = [0; 32];
                staged.fpscr = 0;
            });
            crate::kprintln!("vfp: cleared");
        }
        ["bounce", instructions @ ..] if !instructions.is_empty() && instructions.len() <= 2 => {
            let (Some(first), second) = (hex(instructions[0]), instructions.get(1).map(|word| hex(word))) else {
                crate::kprintln!("usage: vfp bounce FPINST [FPINST2] (hex)");
                return;
            };
            let mut bounce = VFP_STAGED.lock(|staged| *staged);
            bounce.fpinst = first;
            bounce.fpexc = fpexc::EN | fpexc::EX;
            match second {
                Some(Some(word)) => {
                    bounce.fpinst2 = word;
                    bounce.fpexc |= fpexc::FP2V;
                }
                Some(None) => {
                    crate::kprintln!("usage: vfp bounce FPINST [FPINST2] (hex)");
                    return;
                }
                None => bounce.fpinst2 = 0,
            }
            synthetic_bounce(&mut bounce);
            let number = VFP_RUNS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
            crate::kprintln!(
                "vfp-bounce {number}: fpscr={:#010x} fpexc={:#010x} bounces={}",
                bounce.fpscr,
                bounce.fpexc,
                BOUNCES.load(core::sync::atomic::Ordering::Relaxed)
            );
            let mut line = alloc::format!("vfp-regs {number}:");
            for (index, value) in bounce.registers.iter().enumerate() {
                use core::fmt::Write;
                let _ = write!(line, " s{index}={value:08x}");
            }
            crate::kprintln!("{line}");
        }
        _ => crate::kprintln!("usage: vfp [set N HEX | fpscr HEX | clear | bounce FPINST [FPINST2]]"),
    }
}

/// Recurses with 1 KiB frames until the SVC stack runs into its guard page (a data abort).
#[inline(never)]
fn recurse(depth: u32) -> u32 {
    let mut frame = [0u8; 1024];
    frame[depth as usize % 1024] = depth as u8;
    let frame = core::hint::black_box(frame);
    if depth == u32::MAX {
        return depth;
    }
    recurse(depth + 1) + u32::from(frame[0])
}

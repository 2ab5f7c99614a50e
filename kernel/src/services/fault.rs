//! Fault and panic reports (the debug manager's last words). A CPU exception prints its kind,
//! the faulting PC, the fault status/address registers, every register and a stack dump on the
//! UART and the screen; a panic prints its location and message. Then the kernel halts (blinking
//! the fault code on the activity LED, `services::led::fault_blink`), or
//! reboots through the PM watchdog when the policy says so ([`set_policy`]; the default is
//! halt; the console command `on-fault reboot` changes it).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::arch::exceptions::{ExceptionKind, FaultRegisters, TrapFrame};
use jos_kcore::led::FaultCode;

use crate::board::bcm2835::{CONSOLE, WATCHDOG};

/// What happens after a fault or panic report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FaultPolicy {
    /// Stop the core with interrupts masked (the report stays on screen).
    Halt = 0,
    /// Reset the board through the PM watchdog.
    Reboot = 1,
}

static POLICY: AtomicU8 = AtomicU8::new(FaultPolicy::Halt as u8);
static IN_REPORT: AtomicBool = AtomicBool::new(false);

/// Chooses what happens after a fault or panic.
pub fn set_policy(policy: FaultPolicy) {
    POLICY.store(policy as u8, Ordering::Relaxed);
}

/// The current policy.
pub fn policy() -> FaultPolicy {
    if POLICY.load(Ordering::Relaxed) == FaultPolicy::Reboot as u8 {
        FaultPolicy::Reboot
    } else {
        FaultPolicy::Halt
    }
}

/// Writes to the UART and the screen's console (in red).
struct Report;

impl Write for Report {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let _ = (&CONSOLE).write_str(text);
        crate::services::screen::write_str(text, true);
        Ok(())
    }
}

fn finish(code: FaultCode) -> ! {
    match policy() {
        FaultPolicy::Halt => {
            let _ = writeln!(Report, "jos: halted (activity LED: fault code {})", code as u8);
            crate::services::led::fault_blink(code)
        }
        FaultPolicy::Reboot => {
            let _ = writeln!(Report, "jos: rebooting through the watchdog");
            WATCHDOG.reboot()
        }
    }
}

/// Reports a CPU exception and halts or reboots. Called from the exception entry code.
pub fn report(kind: ExceptionKind, frame: &TrapFrame, registers: &FaultRegisters) -> ! {
    crate::arch::disable_interrupts();
    if IN_REPORT.swap(true, Ordering::Relaxed) {
        // A fault while reporting: say the minimum on the UART only and stop.
        let _ = writeln!(&CONSOLE, "\nFAULT: {} at pc={:#010x} while reporting a fault", kind.name(), frame.pc);
        crate::arch::halt();
    }
    let mut out = Report;
    let _ = writeln!(out, "\nFAULT: {} at pc={:#010x}", kind.name(), frame.pc);
    let _ = writeln!(
        out,
        "  dfsr={:#010x} ifsr={:#010x} far={:#010x} ifar={:#010x}",
        registers.dfsr, registers.ifsr, registers.far, registers.ifar
    );
    for (index, chunk) in frame.r.chunks(4).enumerate() {
        let _ = write!(out, " ");
        for (offset, value) in chunk.iter().enumerate() {
            let number = index * 4 + offset;
            let _ = write!(out, " r{number:<2}={value:#010x}");
        }
        let _ = writeln!(out);
    }
    let _ =
        writeln!(out, "  sp={:#010x} lr={:#010x} pc={:#010x} cpsr={:#010x}", frame.sp, frame.lr, frame.pc, frame.spsr);
    let sp = frame.sp as usize;
    match crate::memory::layout::stack_containing(sp) {
        Some((name, _, top)) => {
            let _ = writeln!(out, "  stack ({name}, sp={sp:#010x}):");
            let end = (sp + 16 * 4).min(top);
            let mut address = sp & !3;
            while address < end {
                let _ = write!(out, "    {address:#010x}:");
                for word in 0..4 {
                    let at = address + word * 4;
                    if at < end {
                        // SAFETY: `at` lies inside a kernel stack (checked above), which is
                        // mapped RAM.
                        let value = unsafe { core::ptr::read_volatile(at as *const u32) };
                        let _ = write!(out, " {value:08x}");
                    }
                }
                let _ = writeln!(out);
                address += 16;
            }
        }
        None => {
            let _ = writeln!(out, "  stack: sp={sp:#010x} is outside the kernel stacks; no dump");
        }
    }
    finish(match kind {
        ExceptionKind::UndefinedInstruction => FaultCode::UndefinedInstruction,
        ExceptionKind::PrefetchAbort => FaultCode::PrefetchAbort,
        ExceptionKind::DataAbort => FaultCode::DataAbort,
        _ => FaultCode::Other,
    })
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::arch::disable_interrupts();
    if IN_REPORT.swap(true, Ordering::Relaxed) {
        let _ = writeln!(&CONSOLE, "\nPANIC while reporting a fault or panic");
        crate::arch::halt();
    }
    let mut out = Report;
    match info.location() {
        Some(location) => {
            let _ = writeln!(
                out,
                "\nPANIC at {}:{}:{}: {}",
                location.file(),
                location.line(),
                location.column(),
                info.message()
            );
        }
        None => {
            let _ = writeln!(out, "\nPANIC: {}", info.message());
        }
    }
    finish(FaultCode::Panic)
}

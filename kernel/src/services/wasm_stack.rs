//! The wasm interpreter's stack: every slice of a wasm job runs on a 256 KiB stack of its own
//! (`__wasm_stack_bottom..__wasm_stack_top`, kernel/link.ld), above an unmapped 4 KiB guard page
//! like the kernel's other stacks. An interpreter that recurses until the stack is exhausted
//! (wasmi's tail-call dispatch on some instructions, deep host paths) takes a data abort on the
//! guard page; the fault hook [`recover_from_fault`] then returns into the saved kernel context
//! (`arch::user::on_stack`, the same recovery routine native jobs leave through), and
//! [`step`] ends the job with `Trap` (call stack exhausted) while the kernel goes on serving.
//!
//! The abandoned frames are never unwound: what they held is leaked, and a lock they held would
//! stay held. So every `IrqLock` (the heap's among them) calls [`probe`] before it takes its
//! lock: with less than [`HEADROOM`] bytes of this stack left, the probe touches the guard page
//! itself, and the job ends before any lock is taken.

use core::sync::atomic::{AtomicBool, Ordering};

use jos_runtime::wasm::Job;
use jos_runtime::{Host, StepOutcome};

use crate::arch::exceptions::{ExceptionKind, FaultRegisters, TrapFrame};
use crate::arch::user;
use crate::memory::layout;

/// Bytes of this stack a lock holder may still use: [`probe`] ends the job when less is left.
pub const HEADROOM: usize = 16 * 1024;

/// Set while a slice runs on the wasm stack (the hook recovers only then).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// What `on_stack` returns when the hook ended the slice.
const EXHAUSTED: i32 = 1;

/// ARM processor modes (ARM ARM A2.2) in the SPSR's low bits.
const MODE_MASK: u32 = 0x1f;
const MODE_SVC: u32 = 0x13;

/// One slice's arguments and result, shared with the trampoline through a pointer.
struct Slice<'a, H: 'static> {
    job: &'a mut Job<H>,
    fuel: u64,
    outcome: Option<StepOutcome>,
}

extern "C" fn trampoline<H: Host + 'static>(argument: *mut u8) {
    // SAFETY: `step` passes a pointer to its live `Slice<H>`, used by nothing else meanwhile.
    let slice = unsafe { &mut *argument.cast::<Slice<'_, H>>() };
    slice.outcome = Some(slice.job.step(slice.fuel));
}

/// Runs one slice of `job` with `fuel` fuel on the wasm stack; a slice that exhausts the stack
/// ends the job ([`Job::end_stack_exhausted`]).
pub fn step<H: Host + 'static>(job: &mut Job<H>, fuel: u64) -> StepOutcome {
    let (_, top) = layout::wasm_stack();
    let mut slice = Slice { job, fuel, outcome: None };
    let mut context: user::Context = [0; user::CONTEXT_WORDS];
    ACTIVE.store(true, Ordering::Relaxed);
    // SAFETY: the wasm stack is kernel-writable and used only here (one slice at a time, the
    // offload task is not re-entered); no native job is on the CPU while a wasm job steps (the
    // server runs one job at a time); the hook ends the call only while ACTIVE is set.
    let value = unsafe { user::on_stack(trampoline::<H>, core::ptr::from_mut(&mut slice).cast(), top, &mut context) };
    ACTIVE.store(false, Ordering::Relaxed);
    match slice.outcome.take() {
        Some(outcome) if value == 0 => outcome,
        _ => {
            crate::error!("wasm: native stack exhausted (guard page hit); the job ends with Trap");
            StepOutcome::Finished(slice.job.end_stack_exhausted())
        }
    }
}

/// The fault hook's wasm part: a data abort on the wasm stack's guard page, taken in SVC mode
/// while a slice runs there, ends the slice (the exception returns into the recovery routine
/// with [`EXHAUSTED`]). Anything else is left to the other hooks. Allocates nothing (the heap's
/// lock may be held by the interrupted code only if [`probe`] was bypassed).
pub fn recover_from_fault(kind: ExceptionKind, frame: &mut TrapFrame, registers: &FaultRegisters) -> bool {
    let (bottom, _) = layout::wasm_stack();
    let far = registers.far as usize;
    let on_guard = far >= bottom - layout::GUARD_SIZE && far < bottom;
    if kind != ExceptionKind::DataAbort
        || frame.spsr & MODE_MASK != MODE_SVC
        || !on_guard
        || !ACTIVE.swap(false, Ordering::Relaxed)
    {
        return false;
    }
    frame.pc = user::recovery_address();
    frame.r[0] = EXHAUSTED as u32;
    frame.spsr = MODE_SVC | 0xc0;
    true
}

/// Ends the running slice (by touching the guard page) when it runs on the wasm stack with less
/// than [`HEADROOM`] bytes left; does nothing otherwise. Called before every `IrqLock` is taken.
#[inline(always)]
pub fn probe() {
    if !ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let sp: usize;
    // SAFETY: reads SP only.
    unsafe { core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    let (bottom, top) = layout::wasm_stack();
    if sp >= bottom && sp < top && sp - bottom < HEADROOM {
        // SAFETY: the address is on the guard page, which is never mapped: the read aborts and
        // the fault hook ends the slice (it never returns here).
        unsafe { core::ptr::read_volatile((bottom - 4) as *const u32) };
    }
}

//! VFP11 support code in the kernel (ARM1176JZF-S TRM, DDI 0301H, chapter 22): the undefined
//! instruction entry (`exceptions.rs`) sees FPEXC.EX set, saves FPEXC, FPINST, FPINST2, FPSCR and
//! d0-d15 as a [`VfpState`] below the trap frame, clears EX, and calls [`jos_vfp_bounce`], which
//! emulates the exceptional instruction(s) with `jos_vfp` into the saved state. The entry then
//! reloads the registers and FPSCR and retries the trigger instruction (the one at the exception
//! address; the exceptional one is in FPINST, an earlier VFP instruction).
//!
//! The handler takes only the saved frame, so it works whatever mode the trigger ran in: kernel
//! code (SVC, IRQ), or a native blob (SVC today, user mode later). A bounce it cannot emulate
//! (short vectors, enabled traps, an unexpected instruction word) is a fault: a native job ends
//! with `Trap`, the kernel reports it and halts, after an `ERROR vfp: ...` line saying why.
//!
//! jos runs in full-compliance mode: FPSCR = 0 from `_start` on (round to nearest, no
//! flush-to-zero, no default NaN, no traps, LEN = 1), because WebAssembly needs subnormals. So on
//! a real board subnormal and NaN operands, potential underflows and out-of-range conversions
//! bounce here. QEMU never bounces: the QEMU test drives this path with a synthesised bounce
//! ([`synthetic_bounce`]).

use core::sync::atomic::{AtomicU32, Ordering};

use jos_vfp::RegisterFile;

use super::exceptions::{handle_fault, ExceptionKind, TrapFrame};

/// The VFP state the undefined-instruction entry saves below the trap frame (its layout is the
/// entry's `stmfd sp!, {r0-r3}` over `vstmia sp, {d0-d15}`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VfpState {
    /// FPEXC as read on entry (EX set; the entry has cleared it in the register since).
    pub fpexc: u32,
    /// FPINST: the exceptional instruction.
    pub fpinst: u32,
    /// FPINST2: a second instruction to execute, valid when FPEXC.FP2V is set.
    pub fpinst2: u32,
    /// FPSCR of the interrupted code; written back on exit.
    pub fpscr: u32,
    /// s0-s31 (d0-d15) of the interrupted code; written back on exit.
    pub registers: [u32; 32],
}

/// FPEXC bits (EX, FP2V) the undefined-instruction entry ORs into the FPEXC it reads, once,
/// then clears: how [`synthetic_bounce`] puts the handler into the exceptional state under QEMU,
/// whose FPEXC keeps only EN (checked on QEMU 7.2: EX written as 1 reads back 0; FPINST and
/// FPINST2 keep what is written). Always 0 outside that test path.
#[no_mangle]
pub static JOS_VFP_INJECTED_FPEXC: AtomicU32 = AtomicU32::new(0);

/// Bounces emulated since boot.
pub static BOUNCES: AtomicU32 = AtomicU32::new(0);
/// Bounces refused (reported as faults) since boot.
pub static REFUSED: AtomicU32 = AtomicU32::new(0);

/// Called by the undefined-instruction entry when FPEXC.EX was set. Returns after emulating the
/// bounce (the entry retries the trigger instruction at `frame.pc`) or after ending a native job;
/// otherwise reports the fault and never returns.
#[no_mangle]
extern "C" fn jos_vfp_bounce(frame: &mut TrapFrame, state: &mut VfpState) {
    // The trigger is an ARM-state VFP instruction (ARMv6 has no VFP instructions in Thumb). Any
    // other undefined instruction only happened while a bounce was pending: it is a fault.
    let thumb = frame.spsr & (1 << 5) != 0;
    // SAFETY: frame.pc is the word-aligned (ARM state) address the core just fetched the
    // undefined instruction from, so it is mapped and readable.
    let trigger = !thumb && jos_vfp::is_vfp_instruction(unsafe { core::ptr::read_volatile(frame.pc as *const u32) });
    if trigger {
        let mut registers = RegisterFile { s: state.registers };
        match jos_vfp::bounce(state.fpexc, state.fpinst, state.fpinst2, state.fpscr, &mut registers) {
            Ok(fpscr) => {
                state.registers = registers.s;
                state.fpscr = fpscr;
                BOUNCES.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(refusal) => {
                REFUSED.fetch_add(1, Ordering::Relaxed);
                crate::error!(
                    "vfp: bounce at pc={:#010x} not emulated: {refusal} (FPEXC={:#010x} FPINST={:#010x} FPINST2={:#010x})",
                    frame.pc,
                    state.fpexc,
                    state.fpinst,
                    state.fpinst2
                );
            }
        }
    } else {
        REFUSED.fetch_add(1, Ordering::Relaxed);
        crate::error!(
            "vfp: undefined instruction at pc={:#010x} while a VFP bounce was pending (FPINST={:#010x}); not a VFP trigger",
            frame.pc,
            state.fpinst
        );
    }
    handle_fault(ExceptionKind::UndefinedInstruction, frame)
}

/// What [`synthetic_bounce`] loads into the VFP before the bounce and reads back after it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyntheticBounce {
    /// s0-s31 (in: operands; out: after the bounce).
    pub registers: [u32; 32],
    /// FPSCR (in and out).
    pub fpscr: u32,
    /// FPINST to write.
    pub fpinst: u32,
    /// FPINST2 to write.
    pub fpinst2: u32,
    /// FPEXC to write (EN | EX, plus FP2V for FPINST2); out: FPEXC after the bounce.
    pub fpexc: u32,
}

/// Puts the VFP into the exceptional state a real bounce leaves (registers, FPSCR, FPINST,
/// FPINST2, FPEXC with EX set; EX and FP2V also through [`JOS_VFP_INJECTED_FPEXC`], since QEMU
/// drops them), then takes the undefined-instruction exception exactly as the
/// core does when a VFP instruction is refused: SPSR_und = CPSR, LR_und = trigger + 4, UND mode
/// with IRQs masked, into the vector's handler. The trigger is an FPSCR read, which the handler
/// retries. Reads the registers, FPSCR and FPEXC back. QEMU never bounces by itself, so this is
/// how the QEMU test (console command `vfp bounce`) exercises the support code path end to end.
pub fn synthetic_bounce(bounce: &mut SyntheticBounce) {
    use jos_vfp::fpexc::{EX, FP2V};
    JOS_VFP_INJECTED_FPEXC.store(bounce.fpexc & (EX | FP2V), Ordering::Relaxed);
    // SAFETY: the routine saves and restores everything the AAPCS asks (r4-r11, d8-d15, FPSCR,
    // the interrupt mask) and touches only `bounce` in memory; the handler returns to its label 2
    // in SVC mode with r0-r12 as they were.
    unsafe { jos_vfp_synthetic_bounce(bounce) }
}

extern "C" {
    fn jos_vfp_synthetic_bounce(bounce: *mut SyntheticBounce);
}

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .section .text.vfp_test, "ax"
    .global jos_vfp_synthetic_bounce
jos_vfp_synthetic_bounce:
    push    {{r4-r11, lr}}
    vpush   {{d8-d15}}
    mrs     r5, cpsr
    cpsid   i
    vmrs    r4, fpscr
    push    {{r0, r4, r5}}
    vldmia  r0, {{d0-d15}}
    ldr     r1, [r0, #128]
    vmsr    fpscr, r1
    ldr     r1, [r0, #132]
    vmsr    fpinst, r1
    ldr     r1, [r0, #136]
    vmsr    fpinst2, r1
    ldr     r1, [r0, #140]
    vmsr    fpexc, r1
    mrs     r2, cpsr
    cpsid   i, #0x1b                @ UND mode, IRQs masked, as the exception entry does
    msr     spsr_cxsf, r2
    adr     lr, 2f
    add     lr, lr, #4              @ LR_und: the trigger + 4
    b       jos_undef_entry
2:  vmrs    r1, fpscr               @ the trigger instruction, retried after the bounce
    pop     {{r0, r4, r5}}
    vstmia  r0, {{d0-d15}}
    str     r1, [r0, #128]
    vmrs    r1, fpexc
    str     r1, [r0, #140]
    vmsr    fpscr, r4
    msr     cpsr_c, r5
    vpop    {{d8-d15}}
    pop     {{r4-r11, pc}}
"#
);

/// Reads FPSID, FPSCR and FPEXC (for the console's `vfp` command).
pub fn system_registers() -> (u32, u32, u32) {
    let (fpsid, fpscr, fpexc): (u32, u32, u32);
    // SAFETY: reading the VFP system registers has no side effect (no bounce is pending outside
    // the handler).
    unsafe {
        core::arch::asm!(
            "vmrs {0}, fpsid",
            "vmrs {1}, fpscr",
            "vmrs {2}, fpexc",
            out(reg) fpsid, out(reg) fpscr, out(reg) fpexc,
            options(nomem, nostack, preserves_flags)
        )
    }
    (fpsid, fpscr, fpexc)
}

//! Exception vectors and entry code for the ARM1176 (ARM ARM A2.6, ARM1176 TRM 2.12).
//!
//! [`install_vectors`] points VBAR at the table (falling back to a copy at address 0); each
//! vector loads its handler's address from a literal table right behind the vectors, so the
//! table works wherever it is placed. Faults (undefined instruction, prefetch abort, data abort, FIQ,
//! unexpected reset/unused) save every register into a [`TrapFrame`] and call the [`Hooks`] the
//! kernel registered at boot ([`set_hooks`]): `recover` (which may end a native job), else
//! `report`, which never returns. A data abort from user mode first goes to `commit` (with the
//! job's caller-saved VFP registers saved around it), which may map the page the job touched
//! for the first time and have the access retried. Arch names no service: the hooks are the only way up. An
//! undefined instruction taken while the VFP11 has a pending bounce (FPEXC.EX) goes to the VFP
//! support code first (`super::vfp`), which emulates the exceptional instruction and retries. SWI and
//! IRQ save the caller-saved integer and VFP registers, call Rust, and return to the interrupted
//! code; the IRQ exit may instead end or preempt the running native blob.

use core::sync::atomic::{AtomicU32, Ordering};

/// The kinds of exception, numbered as their vector slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExceptionKind {
    /// Vector 0: reset (only reached by a jump to 0).
    Reset = 0,
    /// Vector 1: undefined instruction.
    UndefinedInstruction = 1,
    /// Vector 2: software interrupt (SWI).
    SoftwareInterrupt = 2,
    /// Vector 3: prefetch abort.
    PrefetchAbort = 3,
    /// Vector 4: data abort.
    DataAbort = 4,
    /// Vector 5: unused.
    Unused = 5,
    /// Vector 6: IRQ.
    Irq = 6,
    /// Vector 7: FIQ.
    Fiq = 7,
}

impl ExceptionKind {
    /// Converts a vector slot number.
    pub fn from_slot(slot: u32) -> Self {
        match slot {
            0 => Self::Reset,
            1 => Self::UndefinedInstruction,
            2 => Self::SoftwareInterrupt,
            3 => Self::PrefetchAbort,
            4 => Self::DataAbort,
            6 => Self::Irq,
            7 => Self::Fiq,
            _ => Self::Unused,
        }
    }

    /// The name printed in fault reports (the QEMU tests match on it).
    pub fn name(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::UndefinedInstruction => "undefined instruction",
            Self::SoftwareInterrupt => "software interrupt",
            Self::PrefetchAbort => "prefetch abort",
            Self::DataAbort => "data abort",
            Self::Unused => "unused vector",
            Self::Irq => "irq",
            Self::Fiq => "fiq",
        }
    }
}

/// The registers of the interrupted code, as the fault entry saves them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TrapFrame {
    /// SPSR: the interrupted CPSR.
    pub spsr: u32,
    /// SP of the interrupted mode.
    pub sp: u32,
    /// LR of the interrupted mode.
    pub lr: u32,
    /// Vector slot ([`ExceptionKind`]).
    pub kind: u32,
    /// r0 to r12.
    pub r: [u32; 13],
    /// Address of the faulting instruction (for an undefined instruction, a prefetch abort or a
    /// data abort); the return address for the others.
    pub pc: u32,
}

/// Fault status and address registers (CP15 c5/c6, ARM1176 TRM 3.2.23-3.2.25).
#[derive(Clone, Copy, Debug)]
pub struct FaultRegisters {
    /// Data Fault Status Register.
    pub dfsr: u32,
    /// Instruction Fault Status Register.
    pub ifsr: u32,
    /// Fault Address Register (data side).
    pub far: u32,
    /// Instruction Fault Address Register.
    pub ifar: u32,
}

impl FaultRegisters {
    /// Whether the data abort was a translation fault (DFSR status 0b00101, section, or
    /// 0b00111, page: ARM1176 TRM table 6-12): the address had no valid mapping.
    pub fn data_translation_fault(&self) -> bool {
        matches!((self.dfsr & 0xF) | ((self.dfsr >> 6) & 0x10), 0b00101 | 0b00111)
    }

    /// Reads the registers now.
    pub fn read() -> Self {
        let (dfsr, ifsr, far, ifar): (u32, u32, u32, u32);
        // SAFETY: reading the CP15 fault registers has no side effect.
        unsafe {
            core::arch::asm!(
                "mrc p15, 0, {0}, c5, c0, 0",
                "mrc p15, 0, {1}, c5, c0, 1",
                "mrc p15, 0, {2}, c6, c0, 0",
                "mrc p15, 0, {3}, c6, c0, 2",
                out(reg) dfsr, out(reg) ifsr, out(reg) far, out(reg) ifar,
                options(nomem, nostack, preserves_flags)
            )
        }
        Self { dfsr, ifsr, far, ifar }
    }
}

/// What the IRQ exit does (the values `jos_irq_entry` tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum IrqExit {
    /// Return to the interrupted code.
    Return = 0,
    /// End the running native job: return into its recovery routine (its deadline passed).
    End = 1,
    /// Suspend the running native job: save its whole frame, then enter its recovery routine
    /// (the executive's next frame is due).
    Preempt = 2,
}

/// The kernel's handlers for what the exception entries cannot decide alone, registered once at
/// boot by [`set_hooks`] (the services above arch provide them; arch never names a service).
pub struct Hooks {
    /// First call for a data abort from user mode: returns true when it made the faulting
    /// address valid (a page of the running native job's memory touched for the first time,
    /// now zeroed and mapped), and the access is retried; false sends the abort on to `recover`.
    /// It runs in abort mode with IRQs masked.
    pub commit: fn(&FaultRegisters) -> bool,
    /// First call for an undefined instruction, prefetch abort or data abort: returns true when
    /// it took the fault (ended the running native job by rewriting the frame).
    pub recover: fn(ExceptionKind, &mut TrapFrame, &FaultRegisters) -> bool,
    /// Reports a fault nobody took and halts or reboots.
    pub report: fn(ExceptionKind, &TrapFrame, &FaultRegisters) -> !,
    /// Every IRQ, with the interrupted PC and CPSR: services the interrupt and says how to leave.
    pub irq: fn(u32, u32) -> IrqExit,
    /// Every SVC from user mode (a system call of the native job), with its saved registers:
    /// writes the results into the frame (r0, r1) and says how to leave. It may also end the job
    /// itself through `user::leave`.
    pub svc: fn(&mut TrapFrame) -> SvcExit,
}

/// What the SVC exit does (the values `jos_swi_entry` tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SvcExit {
    /// Return to the caller with the frame's registers.
    Return = 0,
    /// Suspend the job: save its frame (as it is now: the PC may have been rewound to restart
    /// the call) in `jos_user_frame` and enter `jos_user_recover`.
    Suspend = 1,
}

/// The registered hooks (null until [`set_hooks`]).
static HOOKS: core::sync::atomic::AtomicPtr<Hooks> = core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Registers the exception hooks (once, at boot, before interrupts are enabled).
pub fn set_hooks(hooks: &'static Hooks) {
    HOOKS.store(core::ptr::from_ref(hooks).cast_mut(), Ordering::Release);
}

fn hooks() -> Option<&'static Hooks> {
    // SAFETY: HOOKS is null or was set by `set_hooks` from a `&'static Hooks`, never freed and
    // only read through shared references.
    unsafe { HOOKS.load(Ordering::Acquire).as_ref() }
}

/// Software interrupts taken so far.
pub static SWI_COUNT: AtomicU32 = AtomicU32::new(0);
/// IRQs taken so far.
pub static IRQ_COUNT: AtomicU32 = AtomicU32::new(0);

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .section .text.vectors, "ax"
    .align 5
    .global jos_vectors
jos_vectors:
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    ldr     pc, [pc, #24]
    .word   jos_reset_entry
    .word   jos_undef_entry
    .word   jos_swi_entry
    .word   jos_pabt_entry
    .word   jos_dabt_entry
    .word   jos_unused_entry
    .word   jos_irq_entry
    .word   jos_fiq_entry
    .global jos_vectors_end
jos_vectors_end:

    .section .text.exceptions, "ax"

@ Fault entry: r0-r12 and the faulting PC go on this mode's stack, then SPSR, the interrupted
@ mode's SP and LR, and the vector slot (a TrapFrame at sp). No VFP instruction: one could be
@ the trigger of a pending VFP bounce.
.macro FAULT_SAVE slot, adjust
    sub     lr, lr, #\adjust
    stmfd   sp!, {{r0-r12, lr}}
    mrs     r0, spsr
    mrs     r3, cpsr
    and     r2, r0, #0x1f
    cmp     r2, #0x10               @ user mode: read its registers through system mode
    moveq   r2, #0x1f
    orr     r2, r2, #0xc0
    msr     cpsr_c, r2
    mov     r4, sp
    mov     r5, lr
    msr     cpsr_c, r3
    mov     r6, #\slot
    stmfd   sp!, {{r0, r4, r5, r6}}
.endm

@ Returns to the frame's PC with its registers and SPSR.
.macro FAULT_EXIT
    ldr     r0, [sp]
    msr     spsr_cxsf, r0
    add     sp, sp, #16
    ldmfd   sp!, {{r0-r12, pc}}^
.endm

.macro FAULT_ENTRY slot, adjust
    FAULT_SAVE \slot, \adjust
    mov     r0, #\slot
    mov     r1, sp
    bl      jos_fault               @ returns only to end a native job (frame rewritten)
    FAULT_EXIT
.endm

jos_reset_entry:    FAULT_ENTRY 0, 0

@ Undefined instruction. With FPEXC.EX set the VFP11 is in its exceptional state: the
@ instruction here may be the trigger of a bounce (ARM1176 TRM 22.3). FPEXC, FPINST and FPINST2
@ reads never trigger; EX is cleared before any other VFP instruction (else that one bounces
@ again), then the whole VFP state (d0-d15, FPSCR) is saved below the frame as a VfpState
@ (arch::vfp) and jos_vfp_bounce emulates the exceptional instruction(s) into it. On the way
@ out the state is reloaded (with the results) and the trigger instruction is retried.
    .global jos_undef_entry
jos_undef_entry:
    FAULT_SAVE 1, 4
    vmrs    r0, fpexc
    ldr     r1, =JOS_VFP_INJECTED_FPEXC
    ldr     r2, [r1]                @ 0, except for a synthesised bounce (arch::vfp): QEMU
    cmp     r2, #0                  @ keeps only FPEXC.EN, so the QEMU test's EX and FP2V
    movne   r3, #0                  @ come through this one-shot word
    strne   r3, [r1]
    orr     r0, r0, r2
    tst     r0, #0x80000000         @ FPEXC.EX
    beq     1f
    vmrs    r1, fpinst
    vmrs    r2, fpinst2
    bic     r3, r0, #0x90000000     @ EX, FP2V
    bic     r3, r3, #0xff           @ INV, UFC, OFC, IOC (potential-exception flags)
    vmsr    fpexc, r3
    vmrs    r3, fpscr
    sub     sp, sp, #128
    vstmia  sp, {{d0-d15}}
    stmfd   sp!, {{r0-r3}}          @ VfpState: FPEXC, FPINST, FPINST2, FPSCR, s0-s31
    mov     r1, sp
    add     r0, sp, #144            @ the TrapFrame
    bl      jos_vfp_bounce          @ returns after emulating, or after ending a native job
    ldmfd   sp!, {{r0-r3}}
    vmsr    fpscr, r3
    vldmia  sp, {{d0-d15}}
    add     sp, sp, #128
    FAULT_EXIT
1:  mov     r0, #1
    mov     r1, sp
    bl      jos_fault
    FAULT_EXIT
jos_pabt_entry:     FAULT_ENTRY 3, 4

@ Data abort. From user mode it may be the job's first touch of a page of its memory: jos_commit
@ (the commit hook) saves it by mapping the page, and the access is retried. Rust may use the
@ caller-saved VFP registers, which the job still needs then: d0-d7 and FPSCR are saved around
@ the call (as the IRQ entry does). Otherwise, or when the hook declines, it is a fault.
jos_dabt_entry:
    FAULT_SAVE 4, 8
    ldr     r0, [sp]                @ SPSR
    and     r0, r0, #0x1f
    cmp     r0, #0x10               @ user mode?
    bne     1f
    vpush   {{d0-d7}}
    vmrs    r0, fpscr
    push    {{r0, r1}}
    bl      jos_commit              @ 1: the page is mapped now, retry the access
    mov     r4, r0                  @ r4 is saved in the frame (FAULT_EXIT restores it)
    pop     {{r0, r1}}
    vmsr    fpscr, r0
    vpop    {{d0-d7}}
    cmp     r4, #0
    beq     1f
    FAULT_EXIT
1:  mov     r0, #4
    mov     r1, sp
    bl      jos_fault
    FAULT_EXIT

jos_unused_entry:   FAULT_ENTRY 5, 0
jos_fiq_entry:      FAULT_ENTRY 7, 4

@ SWI (SVC). From user mode it is a system call: the whole TrapFrame is saved, jos_svc
@ dispatches by the number in the instruction and writes the results into the frame's r0/r1,
@ and answers 0 (return to the caller) or 1 (suspend the job: its frame goes to jos_user_frame,
@ layout user::FRAME_WORDS, then jos_user_recover). From a privileged mode (the self-test) it
@ only answers "unsupported".
jos_swi_entry:
    FAULT_SAVE 2, 0
    ldr     r0, [sp]                @ SPSR
    tst     r0, #0xf                @ user mode (0x10)?
    bne     1f
    mov     r0, sp
    bl      jos_svc
    cmp     r0, #0
    bne     2f
    FAULT_EXIT
1:  mov     r0, sp
    bl      jos_swi_privileged
    str     r0, [sp, #16]           @ the frame's r0
    FAULT_EXIT
2:  cpsid   if
    ldr     r12, =jos_user_frame
    add     r1, sp, #16
    ldmia   r1!, {{r2-r8}}          @ the job's r0-r6
    stmia   r12, {{r2-r8}}          @ words 0-6
    add     r0, r12, #28
    ldmia   r1!, {{r2-r7}}          @ r7-r12
    stmia   r0, {{r2-r7}}           @ words 7-12
    ldr     r2, [r1]                @ PC
    str     r2, [r12, #52]          @ word 13
    ldmia   sp, {{r2-r4}}           @ SPSR, the user's SP and LR
    str     r3, [r12, #56]          @ word 14
    str     r4, [r12, #60]          @ word 15
    str     r2, [r12, #64]          @ word 16
    vmrs    r2, fpscr
    str     r2, [r12, #68]          @ word 17
    add     r0, r12, #72
    vstmia  r0, {{d0-d15}}          @ words 18-49 (d8-d15 are the job's again: callee-saved)
    mov     r0, #0
    b       jos_user_recover

@ IRQ: save what the AAPCS lets Rust clobber (integer and VFP), dispatch, return. jos_irq's
@ answer (IrqExit) may instead end the running native job (1) or preempt it
@ (2); both only when the IRQ interrupted the job in user mode.
jos_irq_entry:
    sub     lr, lr, #4
    stmfd   sp!, {{r0-r3, r12, lr}}
    vpush   {{d0-d7}}
    vmrs    r0, fpscr
    push    {{r0, r1}}
    ldr     r0, [sp, #92]           @ the interrupted PC
    mrs     r1, spsr
    bl      jos_irq                 @ 0: return, 1: end the native job, 2: preempt it
    mov     r12, r0                 @ r12: the answer (the interrupted r12 is on the stack)
    pop     {{r0, r1}}
    vmsr    fpscr, r0
    vpop    {{d0-d7}}               @ d0-d15, FPSCR and r4-r11 hold the interrupted values again
    cmp     r12, #1
    beq     2f
    bhi     3f
1:  ldmfd   sp!, {{r0-r3, r12, pc}}^
2:  ldr     r0, =jos_user_recover
    str     r0, [sp, #20]           @ return into the recovery routine instead
    mrs     r0, spsr
    bic     r0, r0, #0xff
    orr     r0, r0, #0xd3           @ in SVC mode with IRQ and FIQ masked, in ARM state
    msr     spsr_cxsf, r0
    b       1b
@ Preemption: the job's whole frame into jos_user_frame (layout: user::FRAME_WORDS), then
@ jos_user_recover in SVC mode with IRQ and FIQ masked.
3:  ldr     r12, =jos_user_frame
    add     r0, r12, #16
    stmia   r0, {{r4-r11}}          @ words 4-11: live, preserved by jos_irq (callee-saved)
    ldmfd   sp!, {{r0-r3}}          @ the blob's r0-r3 off the IRQ stack
    stmia   r12, {{r0-r3}}          @ words 0-3
    ldmfd   sp!, {{r0, r1}}         @ the blob's r12 and return PC; the IRQ stack is empty again
    str     r0, [r12, #48]          @ word 12: r12
    str     r1, [r12, #52]          @ word 13: PC
    mrs     r0, spsr
    str     r0, [r12, #64]          @ word 16: the job's CPSR (user mode, its T bit)
    vmrs    r0, fpscr
    str     r0, [r12, #68]          @ word 17: FPSCR
    add     r0, r12, #72
    vstmia  r0, {{d0-d15}}          @ words 18-49: every VFP register
    msr     cpsr_c, #0xdf           @ System mode, IRQ and FIQ masked: the user's SP and LR
    str     sp, [r12, #56]          @ word 14: the job's SP
    str     lr, [r12, #60]          @ word 15: the job's LR
    msr     cpsr_c, #0xd3           @ SVC mode, IRQ and FIQ masked, ARM state
    mov     r0, #0
    b       jos_user_recover

@ Copies the 16 words of the vector table to address 0 (Rust may not write to address 0).
    .global jos_install_vectors
jos_install_vectors:
    ldr     r0, =jos_vectors
    mov     r1, #0
    mov     r2, #16
1:  ldr     r3, [r0], #4
    str     r3, [r1], #4
    subs    r2, r2, #1
    bne     1b
    bx      lr
    .ltorg
"#
);

extern "C" {
    fn jos_install_vectors();
    static jos_vectors: u8;
}

/// Where the exception vectors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorPlacement {
    /// VBAR points at the table in the image (address 0 can stay unmapped).
    Vbar(usize),
    /// The table was copied to address 0 (VBAR did not take the value).
    CopiedToZero,
}

/// Reads the Vector Base Address Register (CP15 c12, ARM1176 TRM 3.2.43, Security Extensions).
fn read_vbar() -> u32 {
    let value: u32;
    // SAFETY: reading VBAR has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {0}, c12, c0, 0", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// True when VBAR points at the image's vector table.
pub fn vectors_behind_vbar() -> bool {
    read_vbar() == core::ptr::addr_of!(jos_vectors) as usize as u32
}

/// Installs the exception vectors: VBAR is set to the table in the image (32-byte aligned), so
/// that address 0 can stay unmapped and a null pointer access faults. If VBAR does not read
/// back (a core without it), the table is copied to address 0 instead (low vectors,
/// SCTLR.V = 0). QEMU 7.2's arm1176 and the ARM1176JZF-S both implement VBAR.
pub fn install_vectors() -> VectorPlacement {
    let table = core::ptr::addr_of!(jos_vectors) as usize;
    // SAFETY: VBAR only changes where the core fetches exception vectors; the table is complete
    // and stays in the image for the kernel's life.
    unsafe { core::arch::asm!("mcr p15, 0, {0}, c12, c0, 0", in(reg) table as u32, options(nostack, preserves_flags)) }
    super::cache::instruction_barrier();
    if read_vbar() == table as u32 {
        return VectorPlacement::Vbar(table);
    }
    // SAFETY: the first 64 bytes of RAM hold nothing of ours (the image starts at 0x8000); the
    // routine follows the AAPCS and touches only r0-r3.
    unsafe { jos_install_vectors() };
    super::cache::clean_invalidate_dcache_all();
    super::cache::invalidate_icache_all();
    VectorPlacement::CopiedToZero
}

/// Fault entry from the assembly stubs.
#[no_mangle]
extern "C" fn jos_fault(slot: u32, saved: &mut TrapFrame) {
    handle_fault(ExceptionKind::from_slot(slot), saved)
}

/// Data abort entry from user mode, before `jos_fault`: the commit hook (1: retry the access).
#[no_mangle]
extern "C" fn jos_commit() -> u32 {
    let registers = FaultRegisters::read();
    u32::from(hooks().is_some_and(|hooks| (hooks.commit)(&registers)))
}

/// Ends the native job that faulted (the frame is rewritten to its recovery routine and this
/// returns) or reports the fault and halts or reboots (never returns).
pub(super) fn handle_fault(kind: ExceptionKind, saved: &mut TrapFrame) {
    let registers = FaultRegisters::read();
    let Some(hooks) = hooks() else { super::halt() };
    if matches!(kind, ExceptionKind::UndefinedInstruction | ExceptionKind::PrefetchAbort | ExceptionKind::DataAbort)
        && (hooks.recover)(kind, saved, &registers)
    {
        return;
    }
    let mut frame = *saved;
    // An undefined Thumb instruction sits 2 bytes back, not 4.
    if kind == ExceptionKind::UndefinedInstruction && frame.spsr & (1 << 5) != 0 {
        frame.pc += 2;
    }
    (hooks.report)(kind, &frame, &registers)
}

/// SVC entry from user mode: the native job's system call.
#[no_mangle]
extern "C" fn jos_svc(frame: &mut TrapFrame) -> SvcExit {
    SWI_COUNT.fetch_add(1, Ordering::Relaxed);
    match hooks() {
        Some(hooks) => (hooks.svc)(frame),
        None => super::halt(),
    }
}

/// SVC entry from a privileged mode: the kernel makes no system calls, so this answers
/// "unsupported" and is counted (the self-test checks both).
#[no_mangle]
extern "C" fn jos_swi_privileged(_frame: &mut TrapFrame) -> u32 {
    SWI_COUNT.fetch_add(1, Ordering::Relaxed);
    jos_abi::ErrorCode::Unsupported.to_return() as u32
}

/// A short name for the status of a DFSR or IFSR (ARM1176 TRM table 6-12: FS[10, 3:0]), for
/// fault reports.
pub fn fault_status_name(status: u32) -> &'static str {
    match (status & 0xF) | ((status >> 6) & 0x10) {
        0b00001 => "alignment",
        0b00101 | 0b00111 => "translation",
        0b01001 | 0b01011 => "domain",
        0b01101 | 0b01111 => "permission",
        0b00011 | 0b00110 => "access flag",
        0b00010 => "debug event",
        0b01000 | 0b01010 => "external abort",
        0b00100 => "instruction cache maintenance",
        _ => "other",
    }
}

/// IRQ entry.
#[no_mangle]
extern "C" fn jos_irq(pc: u32, spsr: u32) -> u32 {
    IRQ_COUNT.fetch_add(1, Ordering::Relaxed);
    hooks().map_or(IrqExit::Return, |hooks| (hooks.irq)(pc, spsr)) as u32
}

/// Issues `swi #0x42` with `argument` in r0 and returns r0 afterwards (for the self-test).
pub fn software_interrupt(argument: u32) -> u32 {
    let mut r0 = argument;
    // SAFETY: the SWI handler saves and restores every register but r0 (the result) and the SVC
    // mode LR, which the exception overwrites: declared clobbered.
    unsafe { core::arch::asm!("swi #0x42", inout("r0") r0, out("lr") _, options(nostack)) }
    r0
}

//! User mode (ARM ARM A2.2): entering native job code, resuming it, and leaving it again.
//!
//! [`enter`] and [`resume`] save a recovery context of the kernel (r4-r11, SP, LR, d8-d15,
//! FPSCR, CPSR) and drop to user mode; every way back goes through `jos_user_recover`, which
//! restores that context and returns a value from the `enter`/`resume` that saved it: the job's
//! `exit` system call (also reached when its entry function returns, through the Exit stub as
//! its LR), a fault or deadline (the exception exits rewrite their return to it, see
//! `exceptions.rs`), and suspension (the IRQ exit's preemption and the SVC exit's
//! [`SvcExit::Suspend`](super::exceptions::SvcExit) save the job's whole frame in
//! `jos_user_frame` first). One job runs at a time, so one static frame and context suffice.
//!
//! The stub page (`.user_stubs`, the only kernel page user mode may read and execute) holds one
//! stub per system-call id `n`: `svc #n; bx lr`. The native loader fills each import slot with
//! [`stub_address`]`(id)`, and the SVC handler dispatches by the number in the instruction.

use jos_abi::syscall::SYSCALL_TABLE_LEN;

/// Words of the kernel's recovery context.
pub const CONTEXT_WORDS: usize = 28;
/// Words of a suspended job's frame (`jos_user_frame`): r0-r12 (0-12), PC (13), SP (14), LR
/// (15), CPSR (16), FPSCR (17), d0-d15 (18-49). The IRQ and SVC exits in `exceptions.rs` write
/// the same offsets.
pub const FRAME_WORDS: usize = 50;
/// Bytes per stub (`svc #n` and `bx lr`).
pub const STUB_SIZE: usize = 8;

/// The kernel's saved state while user code runs.
pub type Context = [u32; CONTEXT_WORDS];

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .arm

@ The stub page: `svc #n; bx lr` for each system-call id n (the SVC as a word: 0xEF000000 | n).
    .section .user_stubs, "ax"
    .balign 4096
    .global jos_user_stubs
jos_user_stubs:
    .set    jos_stub_number, 0
    .rept   {count}
    .word   0xEF000000 + jos_stub_number
    bx      lr
    .set    jos_stub_number, jos_stub_number + 1
    .endr

    .section .rodata.jos_user_zero, "a"
    .balign 8
jos_user_zero:
    .space  128

    .section .text.user, "ax"

@ Saves the kernel context at r12 (r4-r11, SP, LR, d8-d15, FPSCR, CPSR; r4 and r5 are scratch
@ afterwards) and publishes it at jos_user_context.
.macro SAVE_CONTEXT
    stmia   r12, {{r4-r11}}         @ words 0-7 (before r4 and r5 become scratch)
    mov     r5, r12
    add     r12, r12, #32
    str     sp, [r12], #4           @ word 8
    str     lr, [r12], #4           @ word 9: where enter/resume return
    vstmia  r12!, {{d8-d15}}        @ words 10-25
    vmrs    r4, fpscr
    str     r4, [r12], #4           @ word 26
    mrs     r4, cpsr
    str     r4, [r12]               @ word 27 (interrupt mask)
    ldr     r4, =jos_user_context
    str     r5, [r4]
.endm

@ jos_user_enter(entry, stack_top, context, return_address) -> i32: the job starts at `entry`
@ (bit 0: Thumb) in user mode with IRQs enabled, SP = stack_top, LR = return_address, and no
@ kernel value in any register.
    .global jos_user_enter
jos_user_enter:
    mov     r12, r2
    SAVE_CONTEXT
    cpsid   if
    msr     cpsr_c, #0xdf           @ System mode shares the user's SP and LR
    mov     sp, r1
    mov     lr, r3
    msr     cpsr_c, #0xd3           @ back to SVC mode
    mov     r1, #0x10               @ user mode, IRQ and FIQ enabled, ARM state
    tst     r0, #1
    orrne   r1, r1, #0x20           @ a Thumb entry
    bicne   r0, r0, #1
    msr     spsr_cxsf, r1
    mov     lr, r0
    ldr     r0, =jos_user_zero
    vldmia  r0, {{d0-d15}}
    ldmia   r0, {{r0-r12}}          @ zeros (base loaded last, no write-back)
    movs    pc, lr                  @ CPSR = SPSR: user mode

@ jos_user_resume(frame, context) -> i32: saves the kernel context, then restores the suspended
@ job's whole frame and returns into it in user mode.
    .global jos_user_resume
jos_user_resume:
    mov     r12, r1
    SAVE_CONTEXT
    cpsid   if
    add     r1, r0, #72
    vldmia  r1, {{d0-d15}}          @ words 18-49
    ldr     r1, [r0, #68]
    vmsr    fpscr, r1               @ word 17
    add     r1, r0, #56
    ldmia   r1, {{sp, lr}}^         @ words 14-15: the user's SP and LR
    nop
    ldr     r1, [r0, #64]           @ word 16: its CPSR, forced to user mode with interrupts on
    bic     r1, r1, #0xdf
    orr     r1, r1, #0x10
    msr     spsr_cxsf, r1
    ldmia   r0, {{r0-r12, pc}}^     @ words 0-13; CPSR = SPSR (no write-back: loading r0 is fine)

@ jos_on_stack(function, argument, stack_top, context) -> i32: saves the kernel context as the
@ entries above do, calls function(argument) in SVC mode on the stack below stack_top, and
@ returns 0 through jos_user_recover when it returns; a fault hook that ends the call early
@ enters jos_user_recover with another value instead (services::wasm_stack).
    .global jos_on_stack
jos_on_stack:
    mov     r12, r3
    SAVE_CONTEXT
    mov     sp, r2
    mov     r4, r0
    mov     r0, r1
    blx     r4
    mov     r0, #0
    b       jos_user_recover

@ jos_user_recover(value): in SVC mode; restores the saved context (stack, callee-saved
@ registers, VFP state, CPSR) and returns `value` from the enter or resume that saved it.
    .global jos_user_recover
jos_user_recover:
    ldr     r2, =jos_user_context
    ldr     r12, [r2]
    mov     r3, #0
    str     r3, [r2]
    ldmia   r12!, {{r4-r11}}
    ldr     sp, [r12], #4
    ldr     lr, [r12], #4
    vldmia  r12!, {{d8-d15}}
    ldmia   r12, {{r2, r3}}
    vmsr    fpscr, r2
    msr     cpsr_c, r3
    bx      lr
    .ltorg
"#,
    count = const SYSCALL_TABLE_LEN,
);

extern "C" {
    fn jos_user_enter(entry: usize, stack_top: usize, context: *mut u32, return_address: usize) -> i32;
    fn jos_user_resume(frame: *const u32, context: *mut u32) -> i32;
    fn jos_user_recover(value: i32) -> !;
    fn jos_on_stack(function: extern "C" fn(*mut u8), argument: *mut u8, stack_top: usize, context: *mut u32) -> i32;
    static jos_user_stubs: u8;
}

/// The published recovery context (null when no user code runs); read by the assembly.
#[no_mangle]
#[allow(non_upper_case_globals)]
static mut jos_user_context: *mut u32 = core::ptr::null_mut();

/// The suspended job's frame (layout: [`FRAME_WORDS`]); written by the IRQ and SVC exits when
/// they suspend the job, read by [`resume`].
#[no_mangle]
#[allow(non_upper_case_globals)]
static mut jos_user_frame: [u32; FRAME_WORDS] = [0; FRAME_WORDS];

/// The address of the stub for system call `id` (in the user page).
pub fn stub_address(id: usize) -> usize {
    core::ptr::addr_of!(jos_user_stubs) as usize + id * STUB_SIZE
}

/// Runs user code from `entry` (bit 0 set: Thumb) on the stack below `stack_top`, which returns
/// to `return_address`; returns the value the code left with (see the module doc).
///
/// # Safety
/// `entry`, the stack and `return_address` must be mapped for user mode and nothing else of the
/// kernel; the caller's recovery paths (exceptions hooks) must leave through [`leave`] only
/// while this call is live.
pub unsafe fn enter(entry: usize, stack_top: usize, return_address: usize, context: &mut Context) -> i32 {
    // SAFETY: the caller's promise; the routine follows the AAPCS towards its caller.
    unsafe { jos_user_enter(entry, stack_top, context.as_mut_ptr(), return_address) }
}

/// Resumes the suspended frame (saved when the job last left by suspension).
///
/// # Safety
/// A frame must have been saved by a suspension since the last [`enter`]/`resume`, and the
/// memory it runs in must still be mapped for user mode.
pub unsafe fn resume(context: &mut Context) -> i32 {
    // SAFETY: the caller's promise; the frame is the static the exits wrote.
    unsafe { jos_user_resume(core::ptr::addr_of!(jos_user_frame).cast::<u32>(), context.as_mut_ptr()) }
}

/// Calls `function(argument)` in SVC mode on the stack below `stack_top` and returns 0 when it
/// returns, or the value a fault hook gave when it ended the call early by returning into
/// [`recovery_address`] (the frames left on that stack are abandoned, never unwound).
///
/// # Safety
/// `stack_top` must be the top of a kernel-writable stack used by nothing else, and no native
/// job may be on the CPU (the call publishes its own recovery context); a hook may end the
/// call early only while it runs.
pub unsafe fn on_stack(
    function: extern "C" fn(*mut u8),
    argument: *mut u8,
    stack_top: usize,
    context: &mut Context,
) -> i32 {
    // SAFETY: the caller's promise; the routine follows the AAPCS towards its caller.
    unsafe { jos_on_stack(function, argument, stack_top, context.as_mut_ptr()) }
}

/// Leaves the running user code for good from a system call: returns `value` from the live
/// [`enter`]/[`resume`].
///
/// # Safety
/// Must be called in SVC mode from a system call of the running user code (a recovery context
/// is live), with no lock or borrow held.
pub unsafe fn leave(value: i32) -> ! {
    // SAFETY: the caller's promise.
    unsafe { jos_user_recover(value) }
}

/// The address the exception exits return to when they end the user code.
pub fn recovery_address() -> u32 {
    jos_user_recover as *const () as usize as u32
}

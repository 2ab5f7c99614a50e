//! Deliberate faults for the console's `fault undef` and `fault abort` (the QEMU fault tests use
//! them): an undefined instruction and a load, each in a routine of its own so the report's PC
//! can be compared with [`undefined_instruction_pc`] and [`data_abort_pc`].

core::arch::global_asm!(
    r#"
    .arch armv6k
    .section .text.fault_test, "ax"
    .global jos_fault_undefined
jos_fault_undefined:
    .word 0xe7f000f0            @ permanently undefined (UDF #0)
    bx lr
    .global jos_fault_data_abort
jos_fault_data_abort:
    ldr r0, [r0]
    bx lr
"#
);

extern "C" {
    fn jos_fault_undefined();
    fn jos_fault_data_abort(address: usize);
}

/// The address of the undefined instruction [`undefined_instruction`] executes.
pub fn undefined_instruction_pc() -> usize {
    jos_fault_undefined as *const () as usize
}

/// The address of the load [`data_abort`] executes.
pub fn data_abort_pc() -> usize {
    jos_fault_data_abort as *const () as usize
}

/// Executes a permanently undefined instruction.
///
/// # Safety
/// The fault handler reports it and halts or reboots: control never comes back.
pub unsafe fn undefined_instruction() {
    // SAFETY: the caller's promise; the routine follows the AAPCS.
    unsafe { jos_fault_undefined() }
}

/// Loads a word from `address`.
///
/// # Safety
/// Meant for an unmapped `address`: the fault handler reports the data abort and halts or
/// reboots, so control never comes back.
pub unsafe fn data_abort(address: usize) {
    // SAFETY: the caller's promise; the routine follows the AAPCS.
    unsafe { jos_fault_data_abort(address) }
}

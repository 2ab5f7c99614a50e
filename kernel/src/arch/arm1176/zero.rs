//! Zeroing memory 32 bytes per instruction: `stmia` of eight zero registers (ARM ARM A4.1.20).
//!
//! The compiler's `memset` (compiler_builtins) stores one word per loop step, about three
//! instructions per word; this routine stores a 32-byte cache line per `stmia` and four lines per
//! loop step (six instructions per 128 bytes, about 16x fewer). The kernel uses it where it clears
//! large ranges: the native job stack before a job starts, a job's region as the job first
//! touches it (docs/memory.md "Zeroed on first touch"), and the boot configuration window once it
//! was read (docs/security.md "Keys").

core::arch::global_asm!(
    r#"
    .arch armv6k
    .arm

@ jos_zero_blocks(r0 = start, r1 = end): stores zeros in [start, end); start is 4-byte aligned
@ and end - start a multiple of 128. Saves r4-r8 (AAPCS callee-saved).
    .section .text.jos_zero_blocks, "ax"
    .global jos_zero_blocks
    .type jos_zero_blocks, %function
    .balign 4
jos_zero_blocks:
    push    {{r4-r8}}
    mov     r2, #0
    mov     r3, #0
    mov     r4, #0
    mov     r5, #0
    mov     r6, #0
    mov     r7, #0
    mov     r8, #0
    mov     r12, #0
    cmp     r0, r1
    beq     2f
1:  stmia   r0!, {{r2-r8, r12}}
    stmia   r0!, {{r2-r8, r12}}
    stmia   r0!, {{r2-r8, r12}}
    stmia   r0!, {{r2-r8, r12}}
    cmp     r0, r1
    bne     1b
2:  pop     {{r4-r8}}
    bx      lr
    .size jos_zero_blocks, . - jos_zero_blocks
"#
);

extern "C" {
    fn jos_zero_blocks(start: usize, end: usize);
}

/// Bytes one step of `jos_zero_blocks` stores (four `stmia` of eight registers).
const BLOCK: usize = 128;

/// Stores zeros in `[start, start + len)`: the 32-byte-aligned middle in blocks of 128 bytes
/// through `jos_zero_blocks`, the ends with `write_bytes`.
///
/// # Safety
///
/// The range must be memory the caller may write (no reference to it is alive), inside one
/// allocation or kernel-owned region.
pub unsafe fn zero(start: usize, len: usize) {
    let end = start + len;
    let middle_start = start.next_multiple_of(32).min(end);
    let middle_len = (end - middle_start) / BLOCK * BLOCK;
    let middle_end = middle_start + middle_len;
    // SAFETY: the head lies inside the caller's range (see # Safety).
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, middle_start - start) };
    if middle_len != 0 {
        // SAFETY: [middle_start, middle_end) is inside the caller's range, word aligned, and a
        // multiple of 128 bytes long, as `jos_zero_blocks` requires; it writes nothing else.
        unsafe { jos_zero_blocks(middle_start, middle_end) };
    }
    // SAFETY: the tail lies inside the caller's range.
    unsafe { core::ptr::write_bytes(middle_end as *mut u8, 0, end - middle_end) };
}

/* crt0.S: start-up for native jos blobs (ARMv6, AAPCS hard-float, no libc).
 *
 * The loader enters the blob at `_start` (the symbol jos-cli records as the entry) after it has
 * placed the image, zeroed .bss, patched the import slots and applied the relocations. `_start`
 * keeps the stack 8-byte aligned as the AAPCS requires at public interfaces, calls the guest's
 * `int run(void)` and returns its value in r0 to the kernel. */
    .syntax unified
    .arch armv6k
    .arm
    .section .text._start, "ax", %progbits
    .global _start
    .type _start, %function
_start:
    push {r4, lr}          @ two words: keeps 8-byte alignment
    bl run
    pop {r4, pc}
    .size _start, . - _start

    .section .note.GNU-stack, "", %progbits

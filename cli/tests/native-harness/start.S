/* start.S: entry of the native test harness (bare metal, QEMU raspi0). Sets a stack, switches on
 * VFP (guests use VFP registers for ordinary moves) and unaligned access, then calls
 * harness_main. */
    .syntax unified
    .arch armv6k
    .fpu vfpv2
    .arm
    .section .text.boot, "ax", %progbits
    .global _start
_start:
    ldr sp, =0x00200000
    mrc p15, 0, r0, c1, c0, 2          @ CPACR: full access to cp10 and cp11
    orr r0, r0, #(0xf << 20)
    mcr p15, 0, r0, c1, c0, 2
    mov r0, #0
    mcr p15, 0, r0, c7, c5, 4          @ flush the prefetch buffer
    mov r0, #0x40000000
    vmsr fpexc, r0                     @ FPEXC.EN
    mrc p15, 0, r0, c1, c0, 0          @ SCTLR.U: ARMv6 unaligned access
    orr r0, r0, #(1 << 22)
    mcr p15, 0, r0, c1, c0, 0
    bl harness_main
1:  b 1b
    .section .note.GNU-stack, "", %progbits

//! ARM1176 start-up: the first instructions after the loader jumps to `_start`.
//!
//! QEMU (`-kernel kernel.elf`) and the Pi firmware both enter in a privileged mode with the MMU
//! and caches off. Before any Rust code runs we mask interrupts, give every exception mode its
//! own stack (from the linker script), switch VFP on (the compiler uses VFP registers for ordinary
//! moves, and without it the core faults silently) in full-compliance mode (FPSCR = 0), clear
//! `.bss`, and only then call `kernel_main`.
//!
//! The firmware enters `kernel.img` at 0x8000 with r0 = 0, r1 = the machine type and r2 = the
//! address of its ATAG list (or of a device tree); QEMU's ELF boot passes zeros. `_start` keeps
//! r0-r2 in r4-r6 (which nothing here touches) and hands them to `kernel_main` as its arguments.
//! Nothing depends on an ELF loader: the image is position-dependent at 0x8000, `.data` is
//! where it is linked (LMA = VMA, `cargo xtask kernel` checks), and `.bss` is zeroed here.

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .section .text.boot, "ax"
    .global _start
    .type _start, %function
_start:
    cpsid   if
    mov     r4, r0              @ the boot loader's r0, r1 (machine type), r2 (ATAGs / DTB)
    mov     r5, r1
    mov     r6, r2

    cps     #0x1B               @ UND
    ldr     sp, =__und_stack_top
    cps     #0x17               @ ABT
    ldr     sp, =__abt_stack_top
    cps     #0x11               @ FIQ
    ldr     sp, =__fiq_stack_top
    cps     #0x12               @ IRQ
    ldr     sp, =__irq_stack_top
    cps     #0x13               @ SVC: the kernel runs here
    ldr     sp, =__svc_stack_top

    @ CPACR: full access to coprocessors 10 and 11 (VFP), ARM1176 TRM 3.2.13.
    mrc     p15, 0, r0, c1, c0, 2
    orr     r0, r0, #(0xF << 20)
    mcr     p15, 0, r0, c1, c0, 2
    mov     r0, #0
    mcr     p15, 0, r0, c7, c5, 4   @ flush prefetch buffer so the CPACR write takes effect
    mov     r0, #0x40000000         @ FPEXC.EN
    vmsr    fpexc, r0
    @ FPSCR = 0: full-compliance mode (round to nearest; FZ = 0 and DN = 0, so not RunFast:
    @ WebAssembly needs subnormals and NaN payloads; no traps; LEN = 1, STRIDE = 1). The VFP11
    @ then bounces subnormal and NaN operands to the support code (arch/arm1176/vfp.rs).
    mov     r0, #0
    vmsr    fpscr, r0

    ldr     r0, =__bss_start
    ldr     r1, =__bss_end
    mov     r2, #0
1:  cmp     r0, r1
    strlo   r2, [r0], #4
    blo     1b

    mov     fp, #0
    mov     r0, r4
    mov     r1, r5
    mov     r2, r6
    bl      kernel_main
2:  wfe
    b       2b
    .size _start, . - _start
"#
);

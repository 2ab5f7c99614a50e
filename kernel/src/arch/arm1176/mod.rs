//! ARM1176JZF-S (ARMv6K) architecture support: start-up, exception vectors, VFP support code,
//! MMU, user mode, caches and CPU primitives (interrupt masking, wait for interrupt).

mod boot;
pub mod cache;
pub mod cycles;
pub mod exceptions;
pub mod fault_test;
pub mod mmu;
pub mod user;
pub mod vfp;

/// Waits for an event; used by idle loops that do not expect interrupts.
#[inline(always)]
pub fn wait_for_event() {
    // SAFETY: `wfe` only pauses the core until an event; it touches no memory.
    unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) }
}

/// Waits for an interrupt (CP15 c7 "Wait For Interrupt", ARM1176 TRM 3.2.22). The core wakes on
/// a pending IRQ even while CPSR.I masks it, so callers can check a condition with interrupts
/// masked and then wait without losing a wake-up.
#[inline(always)]
pub fn wait_for_interrupt() {
    // SAFETY: the CP15 wait-for-interrupt operation only stalls the core; r0 must be zero (SBZ).
    unsafe { core::arch::asm!("mcr p15, 0, {zero}, c7, c0, 4", zero = in(reg) 0u32, options(nostack, preserves_flags)) }
}

/// Masks IRQ and FIQ and returns the previous CPSR, for [`restore_interrupts`].
#[inline(always)]
pub fn disable_interrupts() -> u32 {
    let cpsr: u32;
    // SAFETY: reading CPSR and masking interrupts changes no memory; a compiler barrier is implied
    // (no `nomem`), so memory accesses are not moved out of the masked section.
    unsafe { core::arch::asm!("mrs {0}, cpsr", "cpsid if", out(reg) cpsr, options(nostack, preserves_flags)) }
    cpsr
}

/// Restores the interrupt mask bits saved by [`disable_interrupts`].
#[inline(always)]
pub fn restore_interrupts(cpsr: u32) {
    if cpsr & 0x80 == 0 {
        enable_interrupts();
    }
}

/// Unmasks IRQs (FIQ stays masked: jos uses no FIQ source).
#[inline(always)]
pub fn enable_interrupts() {
    // SAFETY: unmasking IRQ lets the IRQ vector run; its handler saves every register it uses.
    unsafe { core::arch::asm!("cpsie i", options(nostack, preserves_flags)) }
}

/// Reads the System Control Register (CP15 c1, ARM1176 TRM 3.2.7).
pub fn control_register() -> u32 {
    let value: u32;
    // SAFETY: reading SCTLR has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {0}, c1, c0, 0", out(reg) value, options(nomem, nostack, preserves_flags)) }
    value
}

/// Halts the core for good with interrupts masked.
pub fn halt() -> ! {
    disable_interrupts();
    loop {
        wait_for_event();
    }
}

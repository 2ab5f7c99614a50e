//! ARM1176JZF-S (ARMv6K) architecture support: start-up and CPU primitives.

mod boot;

/// Waits for an event or interrupt; used by idle loops.
#[inline(always)]
pub fn wait_for_event() {
    // SAFETY: `wfe` only pauses the core until an event; it touches no memory.
    unsafe { core::arch::asm!("wfe", options(nomem, nostack, preserves_flags)) }
}

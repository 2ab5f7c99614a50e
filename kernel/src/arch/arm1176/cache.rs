//! Cache and barrier maintenance for the ARM1176 (CP15 c7 operations, ARM1176JZF-S TRM 3.2.22).
//!
//! Lines are 32 bytes. Use [`clean_dcache_range`] before a DMA master reads a buffer the CPU
//! wrote through a cacheable mapping, [`invalidate_dcache_range`] before the CPU reads what a DMA
//! master wrote, and [`invalidate_icache_all`] after writing code. Buffers from [`crate::dma`]
//! are non-cacheable and need none of this, only barriers.

/// Data cache line size of the ARM1176 (TRM 7.1).
pub const LINE_SIZE: usize = 32;

fn line_range(addr: usize, len: usize) -> core::ops::Range<usize> {
    let start = addr & !(LINE_SIZE - 1);
    let end = addr.saturating_add(len).saturating_add(LINE_SIZE - 1) & !(LINE_SIZE - 1);
    start..end
}

/// Writes dirty data-cache lines covering `[addr, addr + len)` back to memory.
pub fn clean_dcache_range(addr: usize, len: usize) {
    for line in line_range(addr, len).step_by(LINE_SIZE) {
        // SAFETY: "clean data cache line by MVA" writes back a line; it never loses data.
        unsafe { core::arch::asm!("mcr p15, 0, {0}, c7, c10, 1", in(reg) line, options(nostack, preserves_flags)) }
    }
    data_sync_barrier();
}

/// Discards the data-cache lines covering `[addr, addr + len)` without writing them back.
///
/// Partial lines at either end lose any dirty data of their neighbours: callers align DMA buffers
/// to [`LINE_SIZE`].
pub fn invalidate_dcache_range(addr: usize, len: usize) {
    for line in line_range(addr, len).step_by(LINE_SIZE) {
        // SAFETY: "invalidate data cache line by MVA"; the caller owns the buffer (see above).
        unsafe { core::arch::asm!("mcr p15, 0, {0}, c7, c6, 1", in(reg) line, options(nostack, preserves_flags)) }
    }
    data_sync_barrier();
}

/// Writes back and discards the whole data cache.
pub fn clean_invalidate_dcache_all() {
    // SAFETY: "clean and invalidate entire data cache" never loses data.
    unsafe { core::arch::asm!("mcr p15, 0, {0}, c7, c14, 0", in(reg) 0u32, options(nostack, preserves_flags)) }
    data_sync_barrier();
}

/// Invalidates the whole instruction cache and the branch predictor, then flushes the prefetch
/// buffer. Repeated four times as ARM1176 erratum 411920 asks.
pub fn invalidate_icache_all() {
    // SAFETY: invalidating the I-cache and branch targets only costs refetches.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {z}, c7, c5, 0",
            "mcr p15, 0, {z}, c7, c5, 0",
            "mcr p15, 0, {z}, c7, c5, 0",
            "mcr p15, 0, {z}, c7, c5, 0",
            "mcr p15, 0, {z}, c7, c5, 6",
            "mcr p15, 0, {z}, c7, c10, 4",
            "mcr p15, 0, {z}, c7, c5, 4",
            "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop", "nop",
            z = in(reg) 0u32,
            options(nostack, preserves_flags)
        )
    }
}

/// Data Synchronization Barrier: completes every explicit memory access before it.
#[inline(always)]
pub fn data_sync_barrier() {
    // SAFETY: a barrier has no effect other than ordering; SBZ register is zero.
    unsafe { core::arch::asm!("mcr p15, 0, {0}, c7, c10, 4", in(reg) 0u32, options(nostack, preserves_flags)) }
}

/// Flush Prefetch Buffer (the ARMv6 instruction barrier).
#[inline(always)]
pub fn instruction_barrier() {
    // SAFETY: flushing the prefetch buffer only refetches instructions.
    unsafe { core::arch::asm!("mcr p15, 0, {0}, c7, c5, 4", in(reg) 0u32, options(nostack, preserves_flags)) }
}

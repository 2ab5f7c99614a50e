//! The DMA region: 2 MiB at `DMA_BASE` (0x0100_0000), mapped Normal non-cacheable by the MMU, for
//! buffers that a VideoCore-side master reads or writes (mailbox messages, DWC2 USB transfers).
//! A bump allocator hands out pieces that are never freed: drivers allocate their buffers once.
//!
//! Because the region is not cached, the CPU and the DMA master see the same bytes; only barriers
//! ([`crate::arch::cache::data_sync_barrier`]) are needed around handing a buffer over.

use core::sync::atomic::{AtomicUsize, Ordering};

use jos_kcore::memory_map::{self, DMA_BASE, DMA_SIZE};

static NEXT: AtomicUsize = AtomicUsize::new(DMA_BASE);

/// Allocates `len` zeroed bytes aligned to `align` (a power of two) from the DMA region, for the
/// life of the kernel. `None` when the region is exhausted or the arguments are invalid (zero
/// length, alignment not a power of two).
pub fn alloc(len: usize, align: usize) -> Option<&'static mut [u8]> {
    if len == 0 || !align.is_power_of_two() {
        return None;
    }
    let mut current = NEXT.load(Ordering::Relaxed);
    let start = loop {
        let start = memory_map::align_up(current, align)?;
        let end = start.checked_add(len)?;
        if end > DMA_BASE + DMA_SIZE {
            return None;
        }
        match NEXT.compare_exchange(current, end, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break start,
            Err(seen) => current = seen,
        }
    };
    // SAFETY: `[start, start + len)` lies in the DMA region, which nothing but this allocator
    // hands out, and the compare-exchange gave this range to this caller alone.
    let buffer = unsafe { core::slice::from_raw_parts_mut(start as *mut u8, len) };
    buffer.fill(0);
    Some(buffer)
}

/// The address a VideoCore-side DMA master (mailbox, DWC2 USB) uses for the ARM physical
/// address `addr`: `0xC000_0000 | addr` (the uncached bus alias of BCM2835 ARM Peripherals
/// 1.2.4). QEMU's BCM2835 maps RAM at every bus alias, so the same value works under emulation.
pub fn bus_address(addr: usize) -> u32 {
    memory_map::bus_address(addr)
}

/// Whether `[addr, addr + len)` lies inside the DMA region (non-cacheable: no cache
/// maintenance needed, only barriers).
pub fn contains(addr: usize, len: usize) -> bool {
    addr >= DMA_BASE && addr.checked_add(len).is_some_and(|end| end <= DMA_BASE + DMA_SIZE)
}

/// Bytes handed out so far.
pub fn used() -> usize {
    NEXT.load(Ordering::Relaxed) - DMA_BASE
}

/// Bytes still free (before alignment padding).
pub fn free() -> usize {
    DMA_SIZE - used()
}

//! What the USB drivers need from the rest of the kernel, in one place: time, DMA memory, cache
//! maintenance and power, each forwarded to the kernel platform's API.

use crate::arch::cache;
use crate::board::bcm2835::{mailbox, MAILBOX, TIMER};

/// Microseconds since power-on, from the 1 MHz system timer.
pub fn now_micros() -> u64 {
    TIMER.now_micros()
}

/// Waits `micros` microseconds, reading the timer between short register-free spins.
pub fn delay_micros(micros: u32) {
    let end = now_micros() + u64::from(micros);
    while now_micros() < end {
        relax();
    }
}

/// Spins for roughly a microsecond without touching a device register. Busy-wait loops call it
/// between register reads: under QEMU with `-icount` every device read is costly in host time
/// while it advances guest time by one instruction, so a loop of bare register reads makes a
/// 100 ms guest wait take seconds of host time.
#[inline(never)]
pub fn relax() {
    for step in 0..256u32 {
        core::hint::black_box(step);
    }
}

/// Switches the USB host controller's power domain on (mailbox power device 3). QEMU powers the
/// controller from reset and may not answer; the caller goes on either way.
pub fn power_on_usb() -> bool {
    MAILBOX.set_power(mailbox::device::USB_HCD, true).is_ok()
}

/// The board serial number from the mailbox (0 when the firmware does not answer; QEMU answers 0).
pub fn board_serial() -> u64 {
    MAILBOX.board_serial().unwrap_or(0)
}

/// Allocates `len` bytes of DMA memory aligned to `align`, from the non-cacheable region, for
/// the life of the kernel.
pub fn dma_alloc(len: usize, align: usize) -> Option<&'static mut [u8]> {
    crate::dma::alloc(len, align)
}

/// The address the DWC2's DMA engine uses for the ARM physical address `address`.
pub fn bus_address(address: usize) -> u32 {
    crate::dma::bus_address(address)
}

/// Makes CPU writes to `buffer` visible to DMA. A buffer from the non-cacheable DMA region
/// (all of the USB drivers' buffers) needs only a barrier; one placed elsewhere is cleaned line
/// by line first (64 lines for a 2 KiB receive buffer, which every re-arm used to pay).
pub fn clean_for_device(buffer: &[u8]) {
    if !crate::dma::contains(buffer.as_ptr() as usize, buffer.len()) {
        cache::clean_dcache_range(buffer.as_ptr() as usize, buffer.len());
    }
    cache::data_sync_barrier();
}

/// Drops stale cached copies of `buffer` after the device wrote it (a barrier only for a buffer
/// from the non-cacheable DMA region).
pub fn invalidate_for_cpu(buffer: &[u8]) {
    if !crate::dma::contains(buffer.as_ptr() as usize, buffer.len()) {
        cache::invalidate_dcache_range(buffer.as_ptr() as usize, buffer.len());
    }
    cache::data_sync_barrier();
}

/// Data synchronisation barrier.
pub fn data_sync_barrier() {
    cache::data_sync_barrier();
}

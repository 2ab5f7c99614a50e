//! The board side of the USB stack: [`Platform`] is `jos_kcore`'s `UsbPlatform` (the DWC2
//! host controller with cache maintenance, the system timer, DMA memory, the firmware) by
//! forwarding to the kernel's drivers, plus the timing helpers the DWC2 driver itself uses.

use jos_kcore::drivers::{Clock, DmaMemory, Firmware};
use jos_kcore::usb::host::{Channel, Completion, HostController, Pid, Pipe, UsbError};

use super::HOST;
use crate::arch::cache;
use crate::board::bcm2835::{mailbox, FIRMWARE, MAILBOX, TIMER};

/// The BCM2835 as the USB stack sees it.
pub struct Platform;

/// The one platform instance the stack's objects refer to.
pub static PLATFORM: Platform = Platform;

impl Clock for Platform {
    fn now_micros(&self) -> u64 {
        TIMER.now_micros()
    }

    fn relax(&self) {
        TIMER.relax();
    }
}

impl DmaMemory for Platform {
    fn dma_alloc(&self, len: usize, align: usize) -> Option<&'static mut [u8]> {
        crate::dma::alloc(len, align)
    }
}

impl HostController for Platform {
    fn claim_channel(&self) -> Result<Channel, UsbError> {
        HOST.claim_channel()
    }

    fn release_channel(&self, channel: Channel) {
        HOST.release_channel(channel);
    }

    fn start(&self, channel: Channel, pipe: &Pipe, buffer: &mut [u8], length: usize, pid: Pid) -> Result<(), UsbError> {
        let Some(memory) = buffer.get(..length) else {
            return Err(UsbError::BadLength);
        };
        clean_for_device(memory);
        HOST.start(channel, pipe, crate::dma::bus_address(buffer.as_ptr() as usize), length, pid)
    }

    fn poll(&self, channel: Channel, buffer: &mut [u8]) -> Option<Result<Completion, UsbError>> {
        let result = HOST.poll(channel)?;
        if let Ok(done) = result {
            invalidate_for_cpu(&buffer[..done.length.min(buffer.len())]);
        }
        Some(result)
    }

    fn abort(&self, channel: Channel) {
        HOST.abort(channel);
    }

    fn status(&self, channel: Channel) -> u32 {
        HOST.status(channel)
    }
}

impl Firmware for Platform {
    fn board_serial(&self) -> Option<u64> {
        FIRMWARE.board_serial()
    }

    fn configured_mac(&self) -> Option<[u8; 6]> {
        FIRMWARE.configured_mac()
    }
}

/// Microseconds since power-on, from the 1 MHz system timer.
pub fn now_micros() -> u64 {
    TIMER.now_micros()
}

/// Waits `micros` microseconds, reading the timer between short register-free spins.
pub fn delay_micros(micros: u32) {
    TIMER.delay_micros(micros);
}

/// Spins for roughly a microsecond without touching a device register ([`Clock::relax`]).
pub fn relax() {
    TIMER.relax();
}

/// Switches the USB host controller's power domain on (mailbox power device 3). QEMU powers the
/// controller from reset and may not answer; the caller goes on either way.
pub fn power_on_usb() -> bool {
    MAILBOX.set_power(mailbox::device::USB_HCD, true).is_ok()
}

/// Makes CPU writes to `buffer` visible to DMA. A buffer from the non-cacheable DMA region
/// (all of the USB stack's buffers) needs only a barrier; one placed elsewhere is cleaned line
/// by line first (64 lines for a 2 KiB receive buffer, which every re-arm used to pay).
fn clean_for_device(buffer: &[u8]) {
    if !crate::dma::contains(buffer.as_ptr() as usize, buffer.len()) {
        cache::clean_dcache_range(buffer.as_ptr() as usize, buffer.len());
    }
    cache::data_sync_barrier();
}

/// Drops stale cached copies of `buffer` after the device wrote it (a barrier only for a buffer
/// from the non-cacheable DMA region).
fn invalidate_for_cpu(buffer: &[u8]) {
    if !crate::dma::contains(buffer.as_ptr() as usize, buffer.len()) {
        cache::invalidate_dcache_range(buffer.as_ptr() as usize, buffer.len());
    }
    cache::data_sync_barrier();
}

/// Data synchronisation barrier.
pub fn data_sync_barrier() {
    cache::data_sync_barrier();
}

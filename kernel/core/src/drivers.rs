//! The small traits the kernel's drivers implement, so code above them (the USB stack, the
//! network service) runs on the host against fakes: a clock, a serial port, an entropy source,
//! the firmware mailbox and DMA memory. The USB host controller's trait is
//! [`crate::usb::host::HostController`].
//!
//! The BCM2835 drivers in `kernel/src/board/bcm2835` implement them; host tests implement them
//! with fakes (`crate::usb::fake`).

/// A microsecond clock that never goes backwards (the BCM2835 system timer).
pub trait Clock {
    /// Microseconds since power-on.
    fn now_micros(&self) -> u64;

    /// Spins for roughly a microsecond without touching a device register (busy-wait loops call
    /// it between register reads).
    fn relax(&self) {}

    /// Waits `micros` microseconds.
    fn delay_micros(&self, micros: u32) {
        let end = self.now_micros() + u64::from(micros);
        while self.now_micros() < end {
            self.relax();
        }
    }
}

/// A byte-wide serial port (the PL011 UART).
pub trait SerialPort {
    /// Sends one byte, waiting for room in the transmit FIFO.
    fn write_byte(&self, byte: u8);

    /// A received byte, if one is waiting.
    fn read_byte(&self) -> Option<u8>;

    /// Sends every byte of `text`.
    fn write_bytes(&self, text: &[u8]) {
        for &byte in text {
            self.write_byte(byte);
        }
    }
}

/// A source of random bytes (the BCM2835 hardware RNG).
pub trait EntropySource {
    /// Fills `buffer` with random bytes; `false` when the source failed (nothing usable).
    fn fill(&self, buffer: &mut [u8]) -> bool;
}

/// What the kernel asks the VideoCore firmware through the property mailbox.
pub trait Firmware {
    /// The board revision code (decoded by [`crate::board`]), `None` when the firmware does not
    /// answer.
    fn board_revision(&self) -> Option<u32>;

    /// The board serial number, `None` when the firmware does not answer (QEMU answers 0).
    fn board_serial(&self) -> Option<u64>;

    /// Switches the power domain `device` (mailbox power device id) on or off; `false` when the
    /// firmware refused or did not answer.
    fn set_power(&self, device: u32, on: bool) -> bool;
}

/// Memory a DMA engine can reach.
pub trait DmaMemory {
    /// `len` bytes aligned to `align`, for the life of the kernel (never freed); `None` when
    /// the region is exhausted.
    fn dma_alloc(&self, len: usize, align: usize) -> Option<&'static mut [u8]>;
}

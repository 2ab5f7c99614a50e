//! The small traits the kernel's drivers implement, so the code above them runs on the host
//! against fakes: a clock (the system timer), a serial port (the PL011 UART), the firmware (the
//! property mailbox and the boot command line) and DMA memory. The USB host controller's trait
//! is [`crate::usb::host::HostController`]; the hardware RNG is behind `jos_offload`'s
//! `noise::Entropy`, the one place that draws from it.
//!
//! The BCM2835 drivers in `kernel/src/board/bcm2835` implement them; the host tests use fakes
//! (`crate::usb::fake` for the USB stack, a recording port for [`crate::shell::LineEditor`]).

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

/// What the hardware-independent code asks the VideoCore firmware: the property mailbox's
/// answers and the command line the firmware passed at boot.
pub trait Firmware {
    /// The board serial number, `None` when the firmware does not answer (QEMU answers 0).
    fn board_serial(&self) -> Option<u64>;

    /// The MAC address the firmware's command line gives the on-board Ethernet
    /// (`smsc95xx.macaddr=`), `None` without one (QEMU's direct boot).
    fn configured_mac(&self) -> Option<[u8; 6]>;
}

/// Memory a DMA engine can reach.
pub trait DmaMemory {
    /// `len` bytes aligned to `align`, for the life of the kernel (never freed); `None` when
    /// the region is exhausted.
    fn dma_alloc(&self, len: usize, align: usize) -> Option<&'static mut [u8]>;
}

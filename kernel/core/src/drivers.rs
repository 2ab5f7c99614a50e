//! The small traits the kernel's drivers implement, so the code above them runs on the host
//! against fakes: a clock (the system timer), a serial port (the PL011 UART), the firmware (the
//! property mailbox and the boot command line), a random source (the hardware RNG) and DMA
//! memory. The USB host controller's trait is [`crate::usb::host::HostController`].
//!
//! The BCM2835 drivers in `kernel/src/board/bcm2835` implement them; the host tests use fakes
//! (`crate::usb::fake` for the USB stack, a recording port for [`crate::shell::LineEditor`], a
//! counting source for [`RandomSource::fill`]). The kernel's consumers of randomness (the Noise
//! handshake's `jos_offload::Entropy`, a job's `random` call, the self-test) reach the RNG
//! through [`RandomSource`].

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

/// Why a [`RandomSource`] gave no bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomError {
    /// The generator produced nothing within its driver's timeout.
    Timeout,
}

/// A hardware random number generator (the BCM2835 RNG): cryptographically strong words.
pub trait RandomSource {
    /// One random word.
    fn next_u32(&self) -> Result<u32, RandomError>;

    /// Fills `buffer` with random bytes, one word per 4 bytes (little-endian; the last word's
    /// unused bytes are dropped). On an error the buffer's contents are unspecified.
    fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buffer.chunks_mut(4) {
            let word = self.next_u32()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// Memory a DMA engine can reach.
pub trait DmaMemory {
    /// `len` bytes aligned to `align`, for the life of the kernel (never freed); `None` when
    /// the region is exhausted.
    fn dma_alloc(&self, len: usize, align: usize) -> Option<&'static mut [u8]>;
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use super::*;

    /// A source that counts its words (1, 2, 3, ...) and fails after `limit` of them.
    struct Counting {
        next: Cell<u32>,
        limit: u32,
    }

    impl RandomSource for Counting {
        fn next_u32(&self) -> Result<u32, RandomError> {
            let word = self.next.get() + 1;
            if word > self.limit {
                return Err(RandomError::Timeout);
            }
            self.next.set(word);
            Ok(word * 0x0101_0101)
        }
    }

    #[test]
    fn fill_takes_one_word_per_four_bytes() {
        let source = Counting { next: Cell::new(0), limit: 10 };
        let mut buffer = [0u8; 10];
        assert_eq!(source.fill(&mut buffer), Ok(()));
        assert_eq!(buffer, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
        assert_eq!(source.next.get(), 3, "a partial word still costs one word");
        assert_eq!(source.fill(&mut []), Ok(()));
        assert_eq!(source.next.get(), 3, "an empty buffer draws nothing");
    }

    #[test]
    fn fill_reports_a_failing_source() {
        let source = Counting { next: Cell::new(0), limit: 2 };
        let mut buffer = [0u8; 12];
        assert_eq!(source.fill(&mut buffer), Err(RandomError::Timeout));
        assert_eq!(&buffer[..8], &[1, 1, 1, 1, 2, 2, 2, 2]);
    }
}

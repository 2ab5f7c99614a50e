//! The BCM2835 hardware random number generator at 0x2010_4000. Not in the BCM2835 ARM
//! Peripherals datasheet; the register layout follows the Linux `bcm2835-rng` driver's
//! documented behaviour: CTRL (enable), STATUS (warm-up count; bits 31:24 words available),
//! DATA (one random word per read), INT_MASK (bit 0 masks the interrupt).

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

use jos_kcore::drivers::{RandomError, RandomSource};

use super::mmio::Mmio;

register_bitfields! {
    u32,
    /// RNG control.
    CTRL [
        /// Enable the generator.
        RBGEN OFFSET(0) NUMBITS(1) []
    ],
    /// RNG status.
    STATUS [
        /// Words ready in the FIFO.
        READY OFFSET(24) NUMBITS(8) [],
        /// Warm-up count: the first numbers generated are discarded.
        WARMUP OFFSET(0) NUMBITS(20) []
    ],
    /// Interrupt mask.
    INT_MASK [
        /// Mask the RNG interrupt.
        INT_OFF OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// RNG registers.
    pub Registers {
        (0x00 => CTRL: ReadWrite<u32, CTRL::Register>),
        (0x04 => STATUS: ReadWrite<u32, STATUS::Register>),
        (0x08 => DATA: ReadOnly<u32>),
        (0x0c => _reserved0),
        (0x10 => INT_MASK: ReadWrite<u32, INT_MASK::Register>),
        (0x14 => @END),
    }
}

/// How long to wait for a word before giving up.
const TIMEOUT_MICROS: u32 = 100_000;

/// The RNG driver.
pub struct Rng {
    registers: Mmio<Registers>,
}

impl Rng {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be the RNG block, mapped as device memory, with no other driver instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        Self { registers: unsafe { Mmio::new(base) } }
    }

    /// Starts the generator with a warm-up period. The RNG's interrupt is left alone: its line
    /// stays masked in the interrupt controller. (INT_MASK is not written: QEMU 7.2 does not
    /// implement it and answers the write with an external abort.)
    pub fn init(&self) {
        let r = &self.registers;
        r.STATUS.write(STATUS::WARMUP.val(0x40000));
        r.CTRL.modify(CTRL::RBGEN::SET);
    }

    /// Fills `buffer` with random bytes: [`RandomSource::fill`], for callers without the trait
    /// in scope.
    pub fn fill(&self, buffer: &mut [u8]) -> Result<(), RandomError> {
        RandomSource::fill(self, buffer)
    }
}

impl RandomSource for Rng {
    /// One word from the FIFO, waiting up to 100 ms for the generator to produce it.
    fn next_u32(&self) -> Result<u32, RandomError> {
        let r = &self.registers;
        let start = super::TIMER.now_low();
        while r.STATUS.read(STATUS::READY) == 0 {
            if super::TIMER.now_low().wrapping_sub(start) > TIMEOUT_MICROS {
                return Err(RandomError::Timeout);
            }
        }
        Ok(r.DATA.get())
    }
}

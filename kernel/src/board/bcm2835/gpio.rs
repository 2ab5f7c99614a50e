//! The BCM2835 GPIO block at 0x2020_0000 (BCM2835 ARM Peripherals, chapter 6): pin functions
//! (GPFSELn, section 6.1), output set and clear (GPSETn, GPCLRn) and pin levels (GPLEVn). Jobs
//! holding the `gpio` capability drive and read pins through it; the pins the kernel uses are
//! refused.

use tock_registers::fields::Field;
use tock_registers::interfaces::{Readable, ReadWriteable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

use jos_abi::ErrorCode;

use super::mmio::Mmio;

register_bitfields! {
    u32,
    /// GPIO Function Select n (section 6.1, table 6-2..6-7): 3 bits per pin, pins 10n..10n+9.
    GPFSEL [
        /// FSEL0: function of pin 10n (000 input, 001 output, others alternate functions).
        FSEL0 OFFSET(0) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL1: function of pin 10n+1.
        FSEL1 OFFSET(3) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL2: function of pin 10n+2.
        FSEL2 OFFSET(6) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL3: function of pin 10n+3.
        FSEL3 OFFSET(9) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL4: function of pin 10n+4.
        FSEL4 OFFSET(12) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL5: function of pin 10n+5.
        FSEL5 OFFSET(15) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL6: function of pin 10n+6.
        FSEL6 OFFSET(18) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL7: function of pin 10n+7.
        FSEL7 OFFSET(21) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL8: function of pin 10n+8.
        FSEL8 OFFSET(24) NUMBITS(3) [Input = 0, Output = 1],
        /// FSEL9: function of pin 10n+9.
        FSEL9 OFFSET(27) NUMBITS(3) [Input = 0, Output = 1]
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// GPIO registers (section 6.1, table 6-1), up to the level registers.
    pub Registers {
        (0x00 => GPFSEL: [ReadWrite<u32, GPFSEL::Register>; 6]),
        (0x18 => _reserved0),
        /// GPIO Pin Output Set 0/1: writing 1 drives an output pin high; 0 has no effect.
        (0x1c => GPSET: [WriteOnly<u32>; 2]),
        (0x24 => _reserved1),
        /// GPIO Pin Output Clear 0/1: writing 1 drives an output pin low; 0 has no effect.
        (0x28 => GPCLR: [WriteOnly<u32>; 2]),
        (0x30 => _reserved2),
        /// GPIO Pin Level 0/1: the actual level of each pin.
        (0x34 => GPLEV: [ReadOnly<u32>; 2]),
        (0x3c => @END),
    }
}

/// Pins on the BCM2835: 0..=53.
pub const PINS: u32 = 54;
/// Pins the kernel uses and never hands to a job: the console UART (TXD0 14, RXD0 15) and the
/// SD card (48..=53; QEMU also routes its SD controller by their function).
pub const KERNEL_PINS: [u32; 8] = [14, 15, 48, 49, 50, 51, 52, 53];

/// The FSEL fields of one GPFSEL register, by pin modulo 10.
const FSEL: [Field<u32, GPFSEL::Register>; 10] = [
    GPFSEL::FSEL0,
    GPFSEL::FSEL1,
    GPFSEL::FSEL2,
    GPFSEL::FSEL3,
    GPFSEL::FSEL4,
    GPFSEL::FSEL5,
    GPFSEL::FSEL6,
    GPFSEL::FSEL7,
    GPFSEL::FSEL8,
    GPFSEL::FSEL9,
];

/// The GPIO driver.
pub struct Gpio {
    registers: Mmio<Registers>,
}

impl Gpio {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be the GPIO block, mapped as device memory, with no other driver instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        Self { registers: unsafe { Mmio::new(base) } }
    }

    /// Checks that a job may use `pin`: `NotFound` past pin 53, `InUse` for the kernel's pins.
    pub fn check_job_pin(pin: u32) -> Result<usize, ErrorCode> {
        if pin >= PINS {
            return Err(ErrorCode::NotFound);
        }
        if KERNEL_PINS.contains(&pin) {
            return Err(ErrorCode::InUse);
        }
        Ok(pin as usize)
    }

    /// Makes a job's `pin` an output and drives it high or low.
    pub fn write(&self, pin: u32, high: bool) -> Result<(), ErrorCode> {
        let pin = Self::check_job_pin(pin)?;
        let r = &self.registers;
        r.GPFSEL[pin / 10].modify(FSEL[pin % 10].val(GPFSEL::FSEL0::Output.value));
        let bit = 1 << (pin % 32);
        if high {
            r.GPSET[pin / 32].set(bit);
        } else {
            r.GPCLR[pin / 32].set(bit);
        }
        Ok(())
    }

    /// The level of a job's `pin` (its function is left as it is).
    pub fn read(&self, pin: u32) -> Result<bool, ErrorCode> {
        let pin = Self::check_job_pin(pin)?;
        Ok(self.registers.GPLEV[pin / 32].get() & (1 << (pin % 32)) != 0)
    }
}

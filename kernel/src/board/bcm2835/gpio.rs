//! The BCM2835 GPIO block at 0x2020_0000 (BCM2835 ARM Peripherals, chapter 6): pin functions
//! (GPFSELn, section 6.1), output set and clear (GPSETn, GPCLRn) and pin levels (GPLEVn). Jobs
//! holding the `gpio` capability drive and read pins through it; the pins the kernel uses are
//! refused (the console UART, the SD card, and the board's activity LED once the kernel drives
//! it). The kernel's own pins go through [`Gpio::set_function`] and [`Gpio::drive`].

use tock_registers::fields::Field;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
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

/// A pin's function (GPFSELn, section 6.1, table 6-2): input, output or one of the six
/// alternate functions (ALT0 000 -> 0b100 ... ALT5 0b010).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Function {
    /// 000: input.
    Input = 0b000,
    /// 001: output.
    Output = 0b001,
    /// 100: alternate function 0 (GPIO 14/15: PL011 TXD0/RXD0).
    Alt0 = 0b100,
    /// 101: alternate function 1.
    Alt1 = 0b101,
    /// 110: alternate function 2.
    Alt2 = 0b110,
    /// 111: alternate function 3 (GPIO 32/33 on the Zero W: PL011 to the Bluetooth chip).
    Alt3 = 0b111,
    /// 011: alternate function 4.
    Alt4 = 0b011,
    /// 010: alternate function 5 (GPIO 14/15: mini UART TXD1/RXD1).
    Alt5 = 0b010,
}

impl Function {
    fn from_bits(bits: u32) -> Function {
        match bits & 0b111 {
            0b000 => Function::Input,
            0b001 => Function::Output,
            0b100 => Function::Alt0,
            0b101 => Function::Alt1,
            0b110 => Function::Alt2,
            0b111 => Function::Alt3,
            0b011 => Function::Alt4,
            _ => Function::Alt5,
        }
    }
}

/// The pin the kernel drives as the activity LED (refused to jobs); `PINS` while none.
static LED_PIN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(PINS);

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
        if KERNEL_PINS.contains(&pin) || pin == LED_PIN.load(core::sync::atomic::Ordering::Relaxed) {
            return Err(ErrorCode::InUse);
        }
        Ok(pin as usize)
    }

    /// Marks `pin` as the activity LED: the kernel drives it and jobs get `InUse` for it.
    pub fn reserve_led(pin: u32) {
        LED_PIN.store(pin, core::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the function of a kernel pin (`pin` < 54; others are ignored).
    pub fn set_function(&self, pin: u32, function: Function) {
        if pin >= PINS {
            return;
        }
        let pin = pin as usize;
        self.registers.GPFSEL[pin / 10].modify(FSEL[pin % 10].val(function as u32));
    }

    /// The current function of `pin` (`Input` for pins past 53).
    pub fn function(&self, pin: u32) -> Function {
        if pin >= PINS {
            return Function::Input;
        }
        let pin = pin as usize;
        Function::from_bits(self.registers.GPFSEL[pin / 10].read(FSEL[pin % 10]))
    }

    /// Drives a kernel pin (already an output) high or low: one register write, no lock, no
    /// heap, so the fault path can use it.
    pub fn drive(&self, pin: u32, high: bool) {
        if pin >= PINS {
            return;
        }
        let bit = 1 << (pin % 32);
        let bank = (pin / 32) as usize;
        if high {
            self.registers.GPSET[bank].set(bit);
        } else {
            self.registers.GPCLR[bank].set(bit);
        }
    }

    /// The level of any pin (GPLEVn).
    pub fn level(&self, pin: u32) -> bool {
        pin < PINS && self.registers.GPLEV[(pin / 32) as usize].get() & (1 << (pin % 32)) != 0
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

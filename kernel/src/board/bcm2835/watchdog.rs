//! The PM (power management) watchdog at 0x2010_0000, used to reboot. Not in the BCM2835 ARM
//! Peripherals datasheet; the layout follows the Linux `bcm2835_wdt` driver's documented
//! behaviour: writes need the password 0x5A in bits 31:24; WDOG holds the timeout in 16 µs
//! ticks; RSTC's WRCFG field selects a full reset when the watchdog expires.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::ReadWrite;
use tock_registers::{register_bitfields, register_structs};

use super::mmio::Mmio;

register_bitfields! {
    u32,
    /// Reset control.
    RSTC [
        /// Password: must be 0x5A on every write.
        PASSWD OFFSET(24) NUMBITS(8) [ Key = 0x5A ],
        /// What the watchdog does when it expires.
        WRCFG OFFSET(4) NUMBITS(2) [ Clear = 0, FullReset = 2 ]
    ],
    /// Watchdog timeout.
    WDOG [
        /// Password.
        PASSWD OFFSET(24) NUMBITS(8) [ Key = 0x5A ],
        /// Ticks of about 16 µs until the reset.
        TIME OFFSET(0) NUMBITS(20) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// PM registers used here.
    pub Registers {
        (0x00 => _reserved0),
        (0x1c => RSTC: ReadWrite<u32, RSTC::Register>),
        (0x20 => RSTS: ReadWrite<u32>),
        (0x24 => WDOG: ReadWrite<u32, WDOG::Register>),
        (0x28 => @END),
    }
}

/// The watchdog driver.
pub struct Watchdog {
    registers: Mmio<Registers>,
}

impl Watchdog {
    /// Creates the driver.
    ///
    /// # Safety
    /// `base` must be the PM block, mapped as device memory, with no other driver instance.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: promised by the caller.
        Self { registers: unsafe { Mmio::new(base) } }
    }

    /// Arms the watchdog to reset the board after `ticks` (16 µs each, at most 2^20 - 1).
    pub fn start(&self, ticks: u32) {
        let r = &self.registers;
        r.WDOG.write(WDOG::PASSWD::Key + WDOG::TIME.val(ticks.min(0xF_FFFF)));
        let keep = r.RSTC.get() & !(0xFF00_0000 | 0x30);
        r.RSTC.set(keep | (0x5A << 24) | (2 << 4));
    }

    /// Resets the board now (after a few ticks) and waits for it.
    pub fn reboot(&self) -> ! {
        self.start(10);
        crate::arch::halt()
    }
}

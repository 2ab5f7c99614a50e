//! PL011 UART (UART0): the console, 115200 8N1, on GPIO 14 (TXD0) and 15 (RXD0) in ALT0.
//!
//! Registers from the BCM2835 ARM Peripherals datasheet, chapter 13 ("UART"), which follows the
//! ARM PrimeCell UART (PL011) Technical Reference Manual. The baud-rate divisors come from the
//! UART clock the firmware set (`init_uart_clock`, read through the mailbox):
//! `jos_kcore::uart::divisors`.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::mmio::Mmio;

use jos_kcore::drivers::SerialPort;

register_bitfields! {
    u32,
    /// Flag register (section 13.4, FR).
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting data.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Integer baud rate divisor (section 13.4, IBRD).
    IBRD [
        /// The integer baud rate divisor.
        BAUD_DIVINT OFFSET(0) NUMBITS(16) []
    ],
    /// Fractional baud rate divisor (section 13.4, FBRD).
    FBRD [
        /// The fractional baud rate divisor.
        BAUD_DIVFRAC OFFSET(0) NUMBITS(6) []
    ],
    /// Line control register (section 13.4, LCRH).
    LCRH [
        /// Word length: 0b11 = 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [ EightBit = 0b11 ],
        /// Enable FIFOs.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control register (section 13.4, CR).
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Interrupt mask set/clear register (section 13.4, IMSC): 1 enables the interrupt.
    IMSC [
        /// Receive timeout interrupt mask.
        RTIM OFFSET(6) NUMBITS(1) [],
        /// Receive interrupt mask.
        RXIM OFFSET(4) NUMBITS(1) []
    ],
    /// Interrupt clear register (section 13.4, ICR).
    ICR [
        /// Clear all interrupts.
        ALL OFFSET(0) NUMBITS(11) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// PL011 register block.
    pub Registers {
        (0x00 => DR: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => FR: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => IBRD: WriteOnly<u32, IBRD::Register>),
        (0x28 => FBRD: WriteOnly<u32, FBRD::Register>),
        (0x2c => LCRH: WriteOnly<u32, LCRH::Register>),
        (0x30 => CR: WriteOnly<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => IMSC: ReadWrite<u32, IMSC::Register>),
        (0x3c => _reserved3),
        (0x44 => ICR: WriteOnly<u32, ICR::Register>),
        (0x48 => @END),
    }
}

/// The interrupt controller's number for the PL011 (GPU IRQ 57, BCM2835 ARM Peripherals 7.5).
pub const IRQ_NUMBER: u32 = 57;

pub use jos_kcore::uart::{divisors, Divisors, CONSOLE_BAUD};

/// The UART clock current firmware sets unless `config.txt` says otherwise (`init_uart_clock`).
pub const DEFAULT_CLOCK_HZ: u32 = 48_000_000;
/// The divisors for [`CONSOLE_BAUD`] at [`DEFAULT_CLOCK_HZ`]: 26 + 3/64.
pub const DEFAULT_DIVISORS: Divisors = Divisors { integer: 26, fraction: 3 };

/// The PL011 driver. Methods take `&self`: the registers are the only state.
pub struct Pl011 {
    registers: Mmio<Registers>,
}

impl Pl011 {
    /// Creates the driver for the register block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011 register block, mapped as device memory, and no
    /// other code may program that block.
    pub const unsafe fn new(base: usize) -> Self {
        // SAFETY: the caller promises `base` points at the PL011 block for the kernel's lifetime.
        Self { registers: unsafe { Mmio::new(base) } }
    }

    /// Programs [`CONSOLE_BAUD`] 8N1 with FIFOs for a `clock_hz` UART clock and returns the
    /// divisors used. A clock the divisors cannot serve falls back to the firmware's default 48
    /// MHz (the caller logs it). Waits for the transmitter to drain first (bounded), so a line
    /// sent with the firmware's settings leaves intact.
    pub fn init(&self, clock_hz: u32) -> Result<Divisors, Divisors> {
        let r = &self.registers;
        let mut spins = 0u32;
        while r.FR.is_set(FR::BUSY) && spins < 1_000_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        let chosen = divisors(clock_hz, CONSOLE_BAUD);
        let used = chosen.unwrap_or(DEFAULT_DIVISORS);
        r.CR.set(0);
        r.ICR.write(ICR::ALL::SET);
        r.IBRD.write(IBRD::BAUD_DIVINT.val(used.integer));
        r.FBRD.write(FBRD::BAUD_DIVFRAC.val(used.fraction));
        r.LCRH.write(LCRH::WLEN::EightBit + LCRH::FEN::SET);
        r.CR.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        chosen.ok_or(used)
    }

    /// Raises the UART interrupt (IRQ [`IRQ_NUMBER`]) when received data waits in the FIFO or
    /// has waited there for 32 bit periods (receive and receive-timeout interrupts). The handler
    /// drains the FIFO with [`SerialPort::read_byte`], which clears both.
    pub fn enable_receive_interrupt(&self) {
        self.registers.IMSC.modify(IMSC::RXIM::SET + IMSC::RTIM::SET);
    }
}

impl SerialPort for Pl011 {
    /// Writes one byte, waiting while the transmit FIFO is full (FR.TXFF, section 13.4).
    fn write_byte(&self, byte: u8) {
        while self.registers.FR.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        self.registers.DR.set(u32::from(byte));
    }

    /// Returns a received byte, if one is waiting (FR.RXFE clear).
    fn read_byte(&self) -> Option<u8> {
        if self.registers.FR.is_set(FR::RXFE) {
            None
        } else {
            Some(self.registers.DR.get() as u8)
        }
    }
}

impl core::fmt::Write for &Pl011 {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

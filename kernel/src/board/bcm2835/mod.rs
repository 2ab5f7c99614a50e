//! BCM2835 board support: the peripheral memory map and one driver per peripheral.

pub mod mmio;
pub mod pl011;

/// Base of the peripheral window as the ARM sees it (BCM2835 ARM Peripherals, section 1.2.3).
pub const PERIPHERAL_BASE: usize = 0x2000_0000;
/// PL011 UART0 (BCM2835 ARM Peripherals, section 13.4).
pub const PL011_BASE: usize = PERIPHERAL_BASE + 0x0020_1000;

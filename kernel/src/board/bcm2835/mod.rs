//! BCM2835 board support: the peripheral memory map and one driver per peripheral, each with a
//! static instance. Addresses: BCM2835 ARM Peripherals (ARM physical addresses, 1.2.3).

pub mod firmware;
pub mod framebuffer;
pub mod gpio;
pub mod irq;
pub mod mailbox;
pub mod mmio;
pub mod pl011;
pub mod rng;
pub mod timer;
pub mod usb;
pub mod watchdog;

/// Base of the peripheral window as the ARM sees it (BCM2835 ARM Peripherals, section 1.2.3).
pub const PERIPHERAL_BASE: usize = jos_kcore::memory_map::PERIPHERAL_BASE;
/// System timer (section 12.1).
pub const TIMER_BASE: usize = PERIPHERAL_BASE + 0x0000_3000;
/// Interrupt controller (section 7.5).
pub const IRQ_BASE: usize = PERIPHERAL_BASE + 0x0000_B200;
/// Mailbox 0 (VideoCore to ARM), used with the property channel.
pub const MAILBOX_BASE: usize = PERIPHERAL_BASE + 0x0000_B880;
/// Power management and watchdog (not in the datasheet; as the Linux bcm2835_wdt driver uses it).
pub const PM_BASE: usize = PERIPHERAL_BASE + 0x0010_0000;
/// Hardware random number generator (not in the datasheet; as the Linux bcm2835-rng driver uses it).
pub const RNG_BASE: usize = PERIPHERAL_BASE + 0x0010_4000;
/// GPIO (section 6.1).
pub const GPIO_BASE: usize = PERIPHERAL_BASE + 0x0020_0000;
/// PL011 UART0 (section 13.4).
pub const PL011_BASE: usize = PERIPHERAL_BASE + 0x0020_1000;

/// The console UART.
// SAFETY: PL011_BASE is UART0 on the BCM2835 and this is the only driver instance for it.
pub static CONSOLE: pl011::Pl011 = unsafe { pl011::Pl011::new(PL011_BASE) };
/// The system timer.
// SAFETY: TIMER_BASE is the system timer and this is its only driver instance.
pub static TIMER: timer::SystemTimer = unsafe { timer::SystemTimer::new(TIMER_BASE) };
/// The interrupt controller.
// SAFETY: IRQ_BASE is the interrupt controller and this is its only driver instance.
pub static IRQ: irq::InterruptController = unsafe { irq::InterruptController::new(IRQ_BASE) };
/// The mailbox property channel.
// SAFETY: MAILBOX_BASE is mailbox 0 and this is its only driver instance.
pub static MAILBOX: mailbox::Mailbox = unsafe { mailbox::Mailbox::new(MAILBOX_BASE) };
/// The hardware random number generator.
// SAFETY: RNG_BASE is the RNG and this is its only driver instance.
pub static RNG: rng::Rng = unsafe { rng::Rng::new(RNG_BASE) };
/// The GPIO pins.
// SAFETY: GPIO_BASE is the GPIO block and this is its only driver instance.
pub static GPIO: gpio::Gpio = unsafe { gpio::Gpio::new(GPIO_BASE) };
/// The firmware as the hardware-independent code sees it (`jos_kcore::drivers::Firmware`).
pub static FIRMWARE: firmware::VideoCore = firmware::VideoCore;
/// The PM watchdog.
// SAFETY: PM_BASE is the power manager and this is its only driver instance.
pub static WATCHDOG: watchdog::Watchdog = unsafe { watchdog::Watchdog::new(PM_BASE) };

//! The activity LED as a status light: blink codes for boot stages, network readiness and faults
//! (`jos_kcore::led` has the patterns and their table; docs/hardware.md "LED codes"). The pin and
//! its polarity come from the board revision (`jos_kcore::board`); boards without a known LED
//! (Compute Module 1, unknown codes) show nothing.
//!
//! The executive's `led` task ([`poll`], every 10 ms) works out the stage and drives the pin.
//! [`fault_blink`] is the fault and panic path's: it loops forever on the system timer and one
//! GPIO register, with no lock, no heap and no interrupts.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use jos_kcore::board::Led;
use jos_kcore::led::{lit, FaultCode, Pattern};

use crate::board::bcm2835::gpio::{Function, Gpio};
use crate::board::bcm2835::{GPIO, TIMER};

/// The LED's pin, or [`NO_LED`].
static PIN: AtomicU32 = AtomicU32::new(NO_LED);
/// Whether the pin is high when lit.
static ACTIVE_HIGH: AtomicBool = AtomicBool::new(false);
/// Whether the self-test failed.
static SELF_TEST_FAILED: AtomicBool = AtomicBool::new(false);
/// The last pattern shown (for the console), as [`pattern_code`] numbers it.
static SHOWN: AtomicU8 = AtomicU8::new(0);
/// Whether the pin is lit now.
static LIT: AtomicBool = AtomicBool::new(false);

const NO_LED: u32 = u32::MAX;

/// Takes the board's LED (if it has one), lights it steadily (the "booting" code) and keeps
/// jobs off its pin.
pub fn init(led: Option<Led>) {
    let Some(led) = led else { return };
    Gpio::reserve_led(led.pin);
    GPIO.set_function(led.pin, Function::Output);
    ACTIVE_HIGH.store(led.active_high, Ordering::Relaxed);
    PIN.store(led.pin, Ordering::Relaxed);
    set(true);
}

fn set(on: bool) {
    let pin = PIN.load(Ordering::Relaxed);
    if pin != NO_LED {
        GPIO.drive(pin, on == ACTIVE_HIGH.load(Ordering::Relaxed));
        LIT.store(on, Ordering::Relaxed);
    }
}

/// Records the self-test's verdict (a failure shows 5 flashes).
pub fn self_test(passed: bool) {
    SELF_TEST_FAILED.store(!passed, Ordering::Relaxed);
}

/// The pattern for the device's state now.
pub fn stage() -> Pattern {
    if SELF_TEST_FAILED.load(Ordering::Relaxed) {
        return Pattern::SelfTestFailed;
    }
    if !crate::services::offload::enabled() {
        return Pattern::NoConfiguration;
    }
    match crate::services::net::has_address() {
        None => Pattern::NoNetworkDevice,
        Some(false) => Pattern::WaitingForAddress,
        Some(true) => Pattern::Ready,
    }
}

fn pattern_code(pattern: Pattern) -> u8 {
    match pattern {
        Pattern::Booting => 0,
        Pattern::Ready => 1,
        Pattern::WaitingForAddress => 2,
        Pattern::NoNetworkDevice => 3,
        Pattern::NoConfiguration => 4,
        Pattern::SelfTestFailed => 5,
        Pattern::Fault(code) => 10 + code as u8,
    }
}

/// The executive's task: shows [`stage`] (timed from the system timer, so each pattern's phase
/// is the same on every board).
pub fn poll() {
    let pattern = stage();
    SHOWN.store(pattern_code(pattern), Ordering::Relaxed);
    set(lit(pattern, TIMER.now_micros() / 1000));
}

/// The console's `led` line: pin, polarity, the code shown, lit or dark.
pub fn print() {
    let pin = PIN.load(Ordering::Relaxed);
    if pin == NO_LED {
        crate::kprintln!("led: none (no known activity LED on this board)");
        return;
    }
    let pattern = stage();
    crate::kprintln!(
        "led: gpio {pin} active {}, code {} {}, {} (pin level {})",
        if ACTIVE_HIGH.load(Ordering::Relaxed) { "high" } else { "low" },
        pattern_code(pattern),
        pattern.describe(),
        if LIT.load(Ordering::Relaxed) { "lit" } else { "dark" },
        u8::from(GPIO.level(pin))
    );
}

/// Blinks fault code `code` forever (the halted kernel's last words for a board without screen
/// or serial). IRQs must be masked; uses only the system timer and GPIO registers.
pub fn fault_blink(code: FaultCode) -> ! {
    let pin = PIN.load(Ordering::Relaxed);
    loop {
        if pin != NO_LED {
            let on = lit(Pattern::Fault(code), TIMER.now_micros() / 1000);
            GPIO.drive(pin, on == ACTIVE_HIGH.load(Ordering::Relaxed));
        }
        for _ in 0..1000 {
            core::hint::spin_loop();
        }
    }
}

//! Activity-LED blink codes, for boards with no screen and no serial cable: what the kernel is
//! doing, readable from across the room. Pure timing logic ([`lit`]); the kernel drives the pin.
//!
//! | code | pattern (repeats) | meaning |
//! |---|---|---|
//! | booting | steady on | the kernel runs and has not reached its main loop yet |
//! | ready | 1 short flash every 3 s | network up with an address, a boot configuration loaded: serving |
//! | waiting for address | 2 short flashes every 3 s | an Ethernet device is up; no DHCP lease or link yet |
//! | no network device | 3 short flashes every 3 s | USB found no Ethernet adapter (or no USB device at all) |
//! | no configuration | 4 short flashes every 3 s | no valid `jos-config.bin` at 0x01F00000: the device accepts nothing |
//! | self-test failed | 5 short flashes every 3 s | the boot self-test failed (the console says which check) |
//! | fault K | 10 fast flashes, then K long flashes, then dark; every 6.5 s | the kernel stopped: K = 1 undefined instruction, 2 prefetch abort, 3 data abort, 4 panic, 5 other exception |
//!
//! Short flash: 150 ms on, 250 ms off. Fast flash: 50 ms on, 50 ms off. Long flash: 600 ms on,
//! 400 ms off. The firmware itself flashes the LED irregularly while it reads the card; "steady
//! on" after that is the first sign of jos.

/// What the LED shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// Steady on: the kernel is booting.
    Booting,
    /// 1 short flash per cycle: serving.
    Ready,
    /// 2 short flashes: waiting for a link or a DHCP lease.
    WaitingForAddress,
    /// 3 short flashes: no Ethernet device.
    NoNetworkDevice,
    /// 4 short flashes: no valid boot configuration.
    NoConfiguration,
    /// 5 short flashes: the self-test failed.
    SelfTestFailed,
    /// The fault code `K` (1..=5, see [`FaultCode`]).
    Fault(FaultCode),
}

/// Why the kernel stopped, as the fault pattern counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FaultCode {
    /// Undefined instruction.
    UndefinedInstruction = 1,
    /// Prefetch abort (instruction fetch fault).
    PrefetchAbort = 2,
    /// Data abort.
    DataAbort = 3,
    /// A Rust panic.
    Panic = 4,
    /// Any other exception (reset vector, SWI, FIQ, IRQ where none was expected).
    Other = 5,
}

/// The period of a stage code, in milliseconds.
pub const STAGE_PERIOD_MS: u32 = 3_000;
/// Short flash: on and off times.
pub const SHORT_ON_MS: u32 = 150;
/// Short flash: off time after each.
pub const SHORT_OFF_MS: u32 = 250;
/// Fast flashes at the start of a fault code.
pub const FAST_FLASHES: u32 = 10;
/// Fast flash: on time (off time the same).
pub const FAST_MS: u32 = 50;
/// Long flash: on time.
pub const LONG_ON_MS: u32 = 600;
/// Long flash: off time.
pub const LONG_OFF_MS: u32 = 400;
/// Dark time that ends a fault code.
pub const FAULT_REST_MS: u32 = 1_500;

impl Pattern {
    /// How many short flashes a stage code has (`None` for steady on and faults).
    pub const fn flashes(self) -> Option<u32> {
        match self {
            Pattern::Ready => Some(1),
            Pattern::WaitingForAddress => Some(2),
            Pattern::NoNetworkDevice => Some(3),
            Pattern::NoConfiguration => Some(4),
            Pattern::SelfTestFailed => Some(5),
            Pattern::Booting | Pattern::Fault(_) => None,
        }
    }

    /// The length of one repetition, in milliseconds (0 for steady on).
    pub const fn period_ms(self) -> u32 {
        match self {
            Pattern::Booting => 0,
            Pattern::Fault(code) => {
                FAST_FLASHES * 2 * FAST_MS + code as u32 * (LONG_ON_MS + LONG_OFF_MS) + FAULT_REST_MS
            }
            _ => STAGE_PERIOD_MS,
        }
    }

    /// A short description for the console.
    pub const fn describe(self) -> &'static str {
        match self {
            Pattern::Booting => "booting (steady on)",
            Pattern::Ready => "ready (1 flash / 3 s)",
            Pattern::WaitingForAddress => "waiting for an address (2 flashes / 3 s)",
            Pattern::NoNetworkDevice => "no network device (3 flashes / 3 s)",
            Pattern::NoConfiguration => "no configuration (4 flashes / 3 s)",
            Pattern::SelfTestFailed => "self-test failed (5 flashes / 3 s)",
            Pattern::Fault(_) => "fault (10 fast, K long flashes)",
        }
    }
}

/// Whether the LED is lit `time_ms` milliseconds into `pattern` (any time: the pattern repeats).
pub fn lit(pattern: Pattern, time_ms: u64) -> bool {
    let period = pattern.period_ms();
    if period == 0 {
        return true;
    }
    let t = (time_ms % u64::from(period)) as u32;
    match pattern {
        Pattern::Fault(code) => {
            let fast = FAST_FLASHES * 2 * FAST_MS;
            if t < fast {
                return t % (2 * FAST_MS) < FAST_MS;
            }
            let t = t - fast;
            let long = LONG_ON_MS + LONG_OFF_MS;
            t < code as u32 * long && t % long < LONG_ON_MS
        }
        _ => {
            let flashes = pattern.flashes().unwrap_or(0);
            let flash = SHORT_ON_MS + SHORT_OFF_MS;
            t < flashes * flash && t % flash < SHORT_ON_MS
        }
    }
}

/// The number of dark-to-lit edges in `[0, period)`: what a person counts.
pub fn flashes_per_period(pattern: Pattern) -> u32 {
    let period = u64::from(pattern.period_ms());
    let mut previous = lit(pattern, period.saturating_sub(1));
    let mut count = 0;
    for time in 0..period {
        let now = lit(pattern, time);
        if now && !previous {
            count += 1;
        }
        previous = now;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_codes_count_their_flashes() {
        for (pattern, flashes) in [
            (Pattern::Ready, 1),
            (Pattern::WaitingForAddress, 2),
            (Pattern::NoNetworkDevice, 3),
            (Pattern::NoConfiguration, 4),
            (Pattern::SelfTestFailed, 5),
        ] {
            assert_eq!(flashes_per_period(pattern), flashes, "{pattern:?}");
            assert_eq!(pattern.period_ms(), STAGE_PERIOD_MS);
            // Lit exactly flashes * 150 ms of each period, and dark for the last second.
            let on = (0..3000).filter(|t| lit(pattern, *t)).count() as u32;
            assert_eq!(on, flashes * SHORT_ON_MS, "{pattern:?}");
            assert!((2000..3000).all(|t| !lit(pattern, t)));
            // It repeats.
            assert_eq!(lit(pattern, 10), lit(pattern, 3010));
        }
        assert!(lit(Pattern::Ready, 0) && lit(Pattern::Ready, 149) && !lit(Pattern::Ready, 150));
    }

    #[test]
    fn booting_is_steady() {
        assert!((0..10_000).step_by(7).all(|t| lit(Pattern::Booting, t)));
        assert_eq!(flashes_per_period(Pattern::Booting), 0);
    }

    #[test]
    fn fault_codes() {
        for code in [
            FaultCode::UndefinedInstruction,
            FaultCode::PrefetchAbort,
            FaultCode::DataAbort,
            FaultCode::Panic,
            FaultCode::Other,
        ] {
            let pattern = Pattern::Fault(code);
            assert_eq!(flashes_per_period(pattern), FAST_FLASHES + code as u32, "{code:?}");
            let period = pattern.period_ms();
            assert_eq!(period, 1000 + 1000 * code as u32 + 1500);
            // The fast flashes take the first second, then the long ones.
            assert!(lit(pattern, 0) && !lit(pattern, 50) && lit(pattern, 100));
            assert!(lit(pattern, 1000) && lit(pattern, 1599) && !lit(pattern, 1600));
            // The last 1.5 s are dark.
            assert!((u64::from(period) - 1500..u64::from(period)).all(|t| !lit(pattern, t)));
        }
    }
}

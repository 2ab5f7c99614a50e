//! PL011 baud-rate divisors (ARM PrimeCell UART (PL011) Technical Reference Manual, 3.3.6
//! "Fractional Baud Rate Divisor Register"): the divisor is `clock / (16 * baud)`, its integer
//! part goes to UARTIBRD (16 bits, at least 1) and its fraction, in 64ths rounded to nearest, to
//! UARTFBRD (6 bits). The UART clock is whatever the firmware set (`init_uart_clock`, 48 MHz by
//! default in current firmware, 3 MHz in old firmware and on QEMU): the kernel asks the mailbox.

/// The console's baud rate.
pub const CONSOLE_BAUD: u32 = 115_200;

/// The two divisor registers' values for one clock and baud rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Divisors {
    /// UARTIBRD: the integer part, 1..=65535.
    pub integer: u32,
    /// UARTFBRD: the fraction in 64ths, 0..=63.
    pub fraction: u32,
}

impl Divisors {
    /// The baud rate these divisors give with `clock_hz`, rounded down.
    pub fn baud(self, clock_hz: u32) -> u32 {
        let sixty_fourths = u64::from(self.integer) * 64 + u64::from(self.fraction);
        // clock / (16 * (sixty_fourths / 64)) = clock * 4 / sixty_fourths
        (u64::from(clock_hz) * 4 / sixty_fourths.max(1)) as u32
    }

    /// How far the actual rate is from `baud`, in tenths of a percent (signed).
    pub fn error_permille(self, clock_hz: u32, baud: u32) -> i32 {
        let actual = i64::from(self.baud(clock_hz));
        ((actual - i64::from(baud)) * 1000 / i64::from(baud.max(1))) as i32
    }
}

/// The divisors for `baud` from a `clock_hz` UART clock; `None` when the clock is too slow for the
/// rate (integer part 0) or so fast that the integer part overflows 16 bits, or either is zero.
pub fn divisors(clock_hz: u32, baud: u32) -> Option<Divisors> {
    if clock_hz == 0 || baud == 0 {
        return None;
    }
    // 64 * clock / (16 * baud), rounded to nearest: (8 * clock / baud + 1) / 2.
    let sixty_fourths = (u64::from(clock_hz) * 8 / u64::from(baud)).div_ceil(2);
    let integer = (sixty_fourths >> 6) as u32;
    let fraction = (sixty_fourths & 0x3F) as u32;
    // The TRM: IBRD 0 is invalid; with IBRD 65535, FBRD must be 0.
    if integer == 0 || integer > 0xFFFF || (integer == 0xFFFF && fraction != 0) {
        return None;
    }
    Some(Divisors { integer, fraction })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_clocks() {
        // 48 MHz (firmware default since 2016): 26.0417 -> 26 + 3/64, 115,176 baud (-0.02%).
        let fast = divisors(48_000_000, CONSOLE_BAUD).unwrap();
        assert_eq!(fast, Divisors { integer: 26, fraction: 3 });
        assert_eq!(fast.baud(48_000_000), 115_176);
        assert_eq!(fast.error_permille(48_000_000, CONSOLE_BAUD), 0);
        // 3 MHz (old firmware, QEMU's answer): 1.6276 -> 1 + 40/64, 115,384 baud (+0.16%).
        let slow = divisors(3_000_000, CONSOLE_BAUD).unwrap();
        assert_eq!(slow, Divisors { integer: 1, fraction: 40 });
        assert_eq!(slow.baud(3_000_000), 115_384);
        assert_eq!(slow.error_permille(3_000_000, CONSOLE_BAUD), 1);
        // The TRM's own example: 4 MHz at 230400 -> 1.085 -> IBRD 1, FBRD 5.
        assert_eq!(divisors(4_000_000, 230_400), Some(Divisors { integer: 1, fraction: 5 }));
        // 250 MHz core clock (some firmware drives the UART from it).
        assert_eq!(divisors(250_000_000, CONSOLE_BAUD), Some(Divisors { integer: 135, fraction: 41 }));
    }

    #[test]
    fn rounding_to_nearest() {
        // 3 MHz at 9600: 19.53125 -> exactly 19 + 34/64.
        assert_eq!(divisors(3_000_000, 9600), Some(Divisors { integer: 19, fraction: 34 }));
        // A fraction that rounds up into the next integer: 16 * 2.999 -> 3 + 0/64.
        let clock = (16 * 115_200 * 2999_u64 / 1000) as u32;
        assert_eq!(divisors(clock, CONSOLE_BAUD), Some(Divisors { integer: 3, fraction: 0 }));
    }

    #[test]
    fn out_of_range() {
        assert_eq!(divisors(0, CONSOLE_BAUD), None);
        assert_eq!(divisors(48_000_000, 0), None);
        // Too slow a clock: under 16 * baud / 2 rounds to an integer part of 0.
        assert_eq!(divisors(1_000_000, CONSOLE_BAUD), None);
        assert_eq!(divisors(u32::MAX, 1), None);
        // The largest usable divisor: exactly 65535.
        assert_eq!(divisors(16 * 65_535, 1), Some(Divisors { integer: 65_535, fraction: 0 }));
        assert_eq!(divisors(16 * 65_535 + 8, 1), None);
    }
}

//! GPIO pins (capability `Gpio`).

use crate::{raw, Error, Result};

/// Drives `pin` high (`true`) or low.
pub fn write(pin: u32, high: bool) -> Result<()> {
    // SAFETY: plain integer arguments.
    Error::check(unsafe { raw::gpio_write(pin, u32::from(high)) }).map(drop)
}

/// Reads `pin`: `true` when high.
pub fn read(pin: u32) -> Result<bool> {
    // SAFETY: a plain integer argument.
    Error::check(unsafe { raw::gpio_read(pin) }).map(|level| level != 0)
}

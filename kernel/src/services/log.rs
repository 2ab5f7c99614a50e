//! Leveled logging: every line goes to the PL011 console with the uptime and level; errors also
//! go to the screen's console area. The macros are `error!`, `warn!`, `info!`, `debug!` (like
//! `format!`), and `kprintln!` for raw console lines (the boot verdict).

use core::fmt::{self, Write};

use crate::board::bcm2835::{CONSOLE, TIMER};

/// How important a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something is off but the kernel carries on.
    Warn = 1,
    /// Normal progress.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
        }
    }
}

/// Lines above this level (debug lines) are dropped.
const MAX_LEVEL: Level = Level::Info;

/// Writes one log line (use the macros).
pub fn log(level: Level, args: fmt::Arguments) {
    if level as u8 > MAX_LEVEL as u8 {
        return;
    }
    let micros = TIMER.now_micros();
    let _ = writeln!(&CONSOLE, "[{:>5}.{:06}] {} {}", micros / 1_000_000, micros % 1_000_000, level.tag(), args);
    if level == Level::Error {
        crate::services::screen::write_fmt(format_args!("{} {}\n", level.tag(), args), true);
    }
}

/// Writes a raw line to the console (no time stamp, no level).
pub fn print(args: fmt::Arguments) {
    let _ = (&CONSOLE).write_fmt(args);
}

/// Logs an error (console and screen).
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::services::log::log($crate::services::log::Level::Error, format_args!($($arg)*)) };
}

/// Logs a warning.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::services::log::log($crate::services::log::Level::Warn, format_args!($($arg)*)) };
}

/// Logs progress.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::services::log::log($crate::services::log::Level::Info, format_args!($($arg)*)) };
}

/// Logs debugging detail.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::services::log::log($crate::services::log::Level::Debug, format_args!($($arg)*)) };
}

/// Prints a raw console line.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => { $crate::services::log::print(format_args!("{}\n", format_args!($($arg)*))) };
}

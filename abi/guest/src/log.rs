//! Log lines, sent to the device's job log (the client prints them on stderr).

use core::fmt;

use jos_abi::syscall::LogLevel;

use crate::raw;

/// Sends one log line. Errors are ignored: logging must never stop a job.
pub fn log(level: LogLevel, text: &str) {
    // SAFETY: the pointer and length describe `text`, which the call only reads.
    unsafe {
        raw::log(level as u32, text.as_ptr(), text.len());
    }
}

/// A fixed-size line that formatting fills and silently truncates (at a character boundary).
#[derive(Debug)]
pub struct LineBuffer<const N: usize> {
    bytes: [u8; N],
    length: usize,
}

impl<const N: usize> LineBuffer<N> {
    /// An empty line.
    pub const fn new() -> Self {
        Self { bytes: [0; N], length: 0 }
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole characters are ever copied in, so this cannot fail; fall back to the valid
        // prefix rather than panic if it ever did.
        match core::str::from_utf8(&self.bytes[..self.length]) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&self.bytes[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for LineBuffer<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = N - self.length;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.length..self.length + take].copy_from_slice(&text.as_bytes()[..take]);
        self.length += take;
        Ok(())
    }
}

/// Formats and sends a log line at a level; used by [`error!`](crate::error!) and friends.
#[doc(hidden)]
pub fn log_fmt(level: LogLevel, arguments: fmt::Arguments<'_>) {
    let mut line = LineBuffer::<256>::new();
    let _ = fmt::write(&mut line, arguments);
    log(level, line.as_str());
}

/// Logs a formatted line at level `Error`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::__log_fmt($crate::LogLevel::Error, format_args!($($arg)*)) };
}

/// Logs a formatted line at level `Warn`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::__log_fmt($crate::LogLevel::Warn, format_args!($($arg)*)) };
}

/// Logs a formatted line at level `Info`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::__log_fmt($crate::LogLevel::Info, format_args!($($arg)*)) };
}

/// Logs a formatted line at level `Debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::__log_fmt($crate::LogLevel::Debug, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::LineBuffer;

    #[test]
    fn line_buffer_truncates_at_a_character_boundary() {
        let mut line = LineBuffer::<5>::new();
        line.write_str("ab").unwrap();
        line.write_str("cdé").unwrap();
        assert_eq!(line.as_str(), "abcd");
        write!(line, "zzz").unwrap();
        assert_eq!(line.as_str(), "abcdz");
    }
}

//! The job's input (read from the device) and output (appended on the device).

use core::fmt;

use jos_abi::ErrorCode;

use crate::{raw, Error, Result};

/// The length of the job's input in bytes.
pub fn input_len() -> usize {
    // SAFETY: no arguments.
    let value = unsafe { raw::input_len() };
    usize::try_from(value).unwrap_or(0)
}

/// Copies input bytes from `offset` into `buffer`; returns how many were copied (0 at the end).
pub fn read_input(buffer: &mut [u8], offset: usize) -> Result<usize> {
    // SAFETY: the pointer and length describe `buffer`, which the call may write.
    let count = Error::check(unsafe { raw::input_read(buffer.as_mut_ptr(), buffer.len(), offset) })?;
    Ok(count as usize)
}

/// Reads the whole input into `buffer` and returns the filled part; `LimitExceeded` when the input
/// is longer than `buffer`.
pub fn read_input_all(buffer: &mut [u8]) -> Result<&[u8]> {
    let length = input_len();
    if length > buffer.len() {
        return Err(Error::new(ErrorCode::LimitExceeded));
    }
    let mut filled = 0;
    while filled < length {
        let count = read_input(&mut buffer[filled..length], filled)?;
        if count == 0 {
            break;
        }
        filled += count;
    }
    Ok(&buffer[..filled])
}

/// The whole input in a `Vec` (feature `alloc`; the guest needs a global allocator).
#[cfg(feature = "alloc")]
pub fn input() -> Result<alloc::vec::Vec<u8>> {
    let mut buffer = alloc::vec![0; input_len()];
    let filled = read_input_all(&mut buffer)?.len();
    buffer.truncate(filled);
    Ok(buffer)
}

/// Appends `bytes` to the job's output.
pub fn write_output(bytes: &[u8]) -> Result<()> {
    // SAFETY: the pointer and length describe `bytes`, which the call only reads.
    Error::check(unsafe { raw::output_write(bytes.as_ptr(), bytes.len()) }).map(drop)
}

/// The job's output: bytes and formatted text appended in order.
#[derive(Debug, Default)]
pub struct Output {
    written: usize,
}

impl Output {
    /// The output of this job. Several values may exist; they all append to the same output.
    pub const fn new() -> Self {
        Self { written: 0 }
    }

    /// Appends bytes; `LimitExceeded` past the device's output cap.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        write_output(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    /// How many bytes this value has written.
    pub const fn written(&self) -> usize {
        self.written
    }
}

impl fmt::Write for Output {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write(text.as_bytes()).map_err(|_| fmt::Error)
    }
}

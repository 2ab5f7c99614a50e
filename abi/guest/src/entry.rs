//! The entry convention: a job is an exported `run() -> i32`; [`entry!`](crate::entry!) writes it.
//!
//! The generated `run` reads the whole input into a static buffer (64 KiB unless
//! `input_max = N` is given), calls the guest's `main(input, &mut Output) -> i32`, and returns
//! its value as the job's exit value. An input longer than the buffer ends the job with
//! `-LimitExceeded` after an error log line.

use core::cell::UnsafeCell;

use crate::{Output, Result};

/// A static buffer the input is read into.
#[derive(Debug)]
pub struct InputBuffer<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: a job has one thread, and `run` (the only user) is not re-entered.
unsafe impl<const N: usize> Sync for InputBuffer<N> {}

impl<const N: usize> InputBuffer<N> {
    /// A zeroed buffer (placed in `.bss`, so it costs no file size).
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    /// Reads the input and calls `main` with it.
    ///
    /// # Safety
    /// Not to be called while a previous call is still running (the entry point calls it once).
    #[doc(hidden)]
    pub unsafe fn run(&self, main: impl FnOnce(&[u8], &mut Output) -> i32) -> i32 {
        // SAFETY: the caller promises no other call is running, so this is the only reference.
        let buffer = unsafe { &mut *self.0.get() };
        let read: Result<&[u8]> = crate::read_input_all(buffer);
        match read {
            Ok(input) => main(input, &mut Output::new()),
            Err(error) => {
                crate::error!("cannot read the input ({} bytes, buffer {N}): {error}", crate::input_len());
                error.to_return()
            }
        }
    }
}

impl<const N: usize> Default for InputBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Defines the job's entry point `run` around `fn main(input: &[u8], out: &mut Output) -> i32`.
///
/// `entry!(main)` reads up to 64 KiB of input; `entry!(main, input_max = 1 << 20)` sets the
/// buffer size.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, input_max = 65536);
    };
    ($main:path, input_max = $max:expr) => {
        /// The job's entry point (the jos entry convention: exported `run() -> i32`).
        #[no_mangle]
        pub extern "C" fn run() -> i32 {
            static INPUT: $crate::InputBuffer<{ $max }> = $crate::InputBuffer::new();
            let main: fn(&[u8], &mut $crate::Output) -> i32 = $main;
            // SAFETY: `run` is the job's only entry and a job has one thread.
            unsafe { INPUT.run(main) }
        }
    };
}

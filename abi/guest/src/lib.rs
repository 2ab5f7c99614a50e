//! The jos guest SDK for Rust: safe wrappers for every system call, log macros, an entry-point
//! macro and a panic handler, for wasm32 modules and native ARMv6 blobs alike.
//!
//! ```text
//! #![no_std]
//! jos_guest::entry!(main);
//!
//! fn main(input: &[u8], out: &mut jos_guest::Output) -> i32 {
//!     jos_guest::info!("got {} bytes", input.len());
//!     out.write(input).map_or(1, |()| 0)
//! }
//! ```
//!
//! Build with `jos-cli build path/to/crate --format wasm|native`. The crate must be a `cdylib`
//! (wasm) whose library can also be built as a `staticlib` (native); see `docs/guests.md`.

#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod raw;

mod entry;
mod error;
pub mod gpio;
#[cfg(feature = "alloc")]
mod heap;
mod io;
mod log;
pub mod net;
#[cfg(all(feature = "panic-handler", not(test), any(target_arch = "wasm32", target_os = "none")))]
mod panic;

pub use entry::InputBuffer;
pub use error::{Error, Result};
#[cfg(feature = "alloc")]
pub use heap::BumpAllocator;
#[cfg(feature = "alloc")]
pub use io::input;
pub use io::{input_len, read_input, read_input_all, write_output, Output};
pub use jos_abi::syscall::{Endpoint, LogLevel};
pub use jos_abi::{AbiVersion, ErrorCode};
#[doc(hidden)]
pub use log::log_fmt as __log_fmt;
pub use log::{log, LineBuffer};

/// The ABI version this SDK was written against.
pub const ABI_VERSION: AbiVersion = AbiVersion::CURRENT;

/// Monotonic time since the device booted, in microseconds.
pub fn time_us() -> u64 {
    // SAFETY: no arguments; the call only returns a value.
    let value = unsafe { raw::time_us() };
    // The clock never runs backwards from 0; a negative value would be an error code, which this
    // call does not have, so it maps to 0 rather than a huge time.
    u64::try_from(value).unwrap_or(0)
}

/// Fills `buffer` with bytes from the device's hardware random number generator.
pub fn random(buffer: &mut [u8]) -> Result<()> {
    // SAFETY: the pointer and length describe `buffer`, which the call may write.
    Error::check(unsafe { raw::random(buffer.as_mut_ptr(), buffer.len()) }).map(drop)
}

/// Says "nothing to do now": gives the rest of the device's current 1 ms frame back and returns
/// in a later frame, after the device polled the network (call it when `recv_from` answers
/// `WouldBlock`). A loop that works between yields gets up to a frame slower per call, so do not
/// call it in compute loops: wasm jobs are sliced by fuel anyway, and a native job only needs it
/// to let the network run while it waits.
pub fn yield_now() {
    // SAFETY: no arguments.
    unsafe {
        raw::r#yield();
    }
}

/// Ends the job now with exit value `code`.
pub fn exit(code: i32) -> ! {
    // SAFETY: `exit` takes a plain integer and does not return.
    unsafe { raw::exit(code) };
    // Only reached if the device broke the contract; spin rather than run off the end.
    #[allow(clippy::empty_loop, reason = "nothing else can be done without a device")]
    loop {}
}

/// Prints one line of text in the job area of the device's status screen (capability `Screen`).
pub fn screen_print(text: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `text`, which the call only reads.
    Error::check(unsafe { raw::screen_print(text.as_ptr(), text.len()) }).map(drop)
}

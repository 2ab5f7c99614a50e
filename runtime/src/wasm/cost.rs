//! The fuel a host call costs, on top of what wasmi charges for the `call` instruction.
//!
//! One unit of fuel is about one wasm instruction, which the device's interpreter runs in about
//! 5 to 10 ARM instructions (docs/runtime.md "wasm speed on the board"). A host call is charged
//! for the work it does for the job, so that fuel bounds a job's time whatever it calls: a base
//! cost per call, plus the bytes it moves or produces. The charge is taken before the work when
//! its size is known (after the pointer checks): a call the job's remaining fuel cannot pay for
//! ends the job with `OutOfFuel` without doing the work. Charges larger than what is left of the
//! current slice end the slice right after the call, so the kernel's frame is kept.
//!
//! `random` is the one call whose work can be long (up to the whole linear memory, produced by a
//! hardware generator): it is done in slices of what the slice's fuel pays for, between which the
//! job's deadline is checked and the rest of the device runs (docs/runtime.md).

/// Every host call.
pub const CALL: u64 = 50;

/// Bytes copied per unit of fuel between linear memory and the device (`input_read`,
/// `output_write`, `udp_send`, `udp_recv`).
pub const COPY_BYTES_PER_FUEL: u64 = 4;

/// Fuel per byte of a log line kept (the line is checked as UTF-8 and copied into the result).
pub const LOG_PER_BYTE: u64 = 1;

/// Fuel per random byte: the BCM2835 generator gives one 32-bit word per read, and a read can
/// wait for the generator; 256 fuel a word is about 2 us of the interpreter's time on the Pi 1.
pub const RANDOM_PER_BYTE: u64 = 64;

/// A `screen_print` line, on top of [`CALL`]: the kernel draws it on the status screen (up to
/// 64 glyphs of 8x16 pixels) and echoes it on the console.
pub const SCREEN_LINE: u64 = 20_000;

/// Longest line `screen_print` passes to the device, in bytes (the device shows at most 64);
/// longer lines are cut here, before the UTF-8 check, so a call costs the same whatever length it
/// names.
pub const SCREEN_LINE_BYTES: usize = 256;

/// `udp_bind` and `udp_close`, on top of [`CALL`] (a socket from the network manager's pool).
pub const UDP_SOCKET: u64 = 1_000;

/// The fuel for copying `bytes` bytes.
pub const fn copy(bytes: u64) -> u64 {
    bytes.div_ceil(COPY_BYTES_PER_FUEL)
}

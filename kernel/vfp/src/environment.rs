//! The soft-float library's environment: `softfp` reads the rounding mode and reports exception
//! flags through two functions the program defines (its `register` feature is off). They keep
//! their state in statics, so one [`Session`] at a time may compute: a small spin lock. In the
//! kernel the only user is the undefined-instruction handler, which runs with IRQs masked and
//! never nests, so the lock is always free; host tests run on several threads and wait their turn.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use softfp::{ExceptionFlags, RoundingMode};

/// The rounding mode of the current computation (`RoundingMode as u8`).
static ROUNDING: AtomicU8 = AtomicU8::new(RoundingMode::TiesToEven as u8);
/// The flags raised since the last [`Session::compute`] began (`ExceptionFlags::bits`).
static RAISED: AtomicU32 = AtomicU32::new(0);
/// Held by the live [`Session`].
static BUSY: AtomicBool = AtomicBool::new(false);

/// Called by `softfp` for the rounding mode of every rounded operation.
// Reason: softfp declares these two callbacks `extern "Rust"` and finds them by name.
#[allow(unsafe_code)]
#[no_mangle]
pub fn softfp_get_rounding_mode() -> RoundingMode {
    match ROUNDING.load(Ordering::Relaxed) {
        1 => RoundingMode::TowardZero,
        2 => RoundingMode::TowardNegative,
        3 => RoundingMode::TowardPositive,
        4 => RoundingMode::TiesToAway,
        _ => RoundingMode::TiesToEven,
    }
}

/// Called by `softfp` whenever an operation raises IEEE exception flags.
// Reason: as above, softfp links to this function by name.
#[allow(unsafe_code)]
#[no_mangle]
pub fn softfp_set_exception_flags(flags: ExceptionFlags) {
    RAISED.fetch_or(flags.bits(), Ordering::Relaxed);
}

/// Exclusive use of the library's environment; released when dropped (also while a panicking
/// host test unwinds).
pub(crate) struct Session(());

impl Session {
    /// Waits until no other session is open.
    pub(crate) fn open() -> Self {
        while BUSY.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            core::hint::spin_loop();
        }
        Session(())
    }

    /// Runs `operation` in rounding mode `mode`; returns its value and the flags it raised.
    pub(crate) fn compute<T>(&self, mode: RoundingMode, operation: impl FnOnce() -> T) -> (T, ExceptionFlags) {
        ROUNDING.store(mode as u8, Ordering::Relaxed);
        RAISED.store(0, Ordering::Relaxed);
        let value = operation();
        (value, ExceptionFlags::from_bits_truncate(RAISED.load(Ordering::Relaxed)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

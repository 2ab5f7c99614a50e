//! The panic handler for guests: logs the panic at level `Error`, then exits with code 101.

use core::panic::PanicInfo;

/// The exit value of a job that panicked.
const PANIC_EXIT_CODE: i32 = 101;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    crate::log::log_fmt(crate::LogLevel::Error, format_args!("panic: {info}"));
    crate::exit(PANIC_EXIT_CODE)
}

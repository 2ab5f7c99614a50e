//! The system-call table: one table for wasm modules and native blobs.
//!
//! Every call has a stable numeric [`SyscallId`]; an id is never reused, even when a call is
//! retired. wasm modules import calls from the module [`WASM_IMPORT_MODULE`] by [`Syscall::name`];
//! native blobs list `(slot offset, id)` pairs and the loader stores the kernel's function address
//! in each slot (one table lookup and one store per import).
//!
//! Arguments and results use the wasm value types in [`Syscall::signature`]. In native blobs the
//! same functions are called with the ARM AAPCS (hard-float): `i32` and pointers in r0-r3 then on
//! the stack, `i64` results in r0:r1. Pointers are offsets into linear memory for wasm and
//! addresses for native code. A negative `i32` result is `-(ErrorCode as i32)`.
//!
//! The ABI version is [`AbiVersion::CURRENT`]. A module states the version it was built against
//! (wasm: custom section `jos.abi`; native: the blob header); a kernel refuses a newer major, and a
//! newer minor only when the module uses a call the kernel does not have.

use core::fmt;

/// The wasm import module that holds every jos system call.
pub const WASM_IMPORT_MODULE: &str = "jos";

/// An ABI version: major changes break guests, minor changes only add calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbiVersion {
    /// Incremented when an existing call changes meaning or signature.
    pub major: u16,
    /// Incremented when calls are added.
    pub minor: u16,
}

impl AbiVersion {
    /// The version this crate describes.
    pub const CURRENT: AbiVersion = AbiVersion { major: 1, minor: 0 };

    /// Packs the version as `major << 16 | minor`.
    pub const fn to_u32(self) -> u32 {
        (self.major as u32) << 16 | self.minor as u32
    }

    /// Unpacks a version packed by [`AbiVersion::to_u32`].
    pub const fn from_u32(value: u32) -> Self {
        Self { major: (value >> 16) as u16, minor: value as u16 }
    }

    /// Whether a kernel implementing `self` can run a module built against `module`: the same
    /// major, and a minor no newer than ours.
    pub const fn accepts(self, module: AbiVersion) -> bool {
        self.major == module.major && module.minor <= self.minor
    }
}

impl fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A WebAssembly value type, as the calls use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// 32-bit integer (also pointers and lengths).
    I32,
    /// 64-bit integer.
    I64,
}

/// A call's parameters and results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Parameter types, in order.
    pub params: &'static [ValueType],
    /// Result types (zero or one).
    pub results: &'static [ValueType],
}

/// Rights a job needs beyond the base group to make a call; granted by device policy per job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Every job has these calls.
    Base,
    /// UDP sockets for network-serving jobs.
    Network,
    /// The device's status screen.
    Screen,
    /// GPIO pins.
    Gpio,
}

/// Writes the system-call table once: each line gives a call's id, name, signature and
/// capability, and the macro makes of them the [`SyscallId`] enum, [`SYSCALLS`] and the total
/// [`SyscallId::syscall`] lookup, so no id can lack an entry.
macro_rules! syscall_table {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $id:literal => $name:literal($($param:ident),*) -> ($($result:ident),*), $capability:ident;
    )*) => {
        /// A stable system-call number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u32)]
        pub enum SyscallId {
            $($(#[doc = $doc])* $variant = $id,)*
        }

        /// One constant per call, named after its [`SyscallId`] variant.
        #[allow(non_upper_case_globals)]
        mod entries {
            use super::{call, Capability, Syscall, SyscallId};
            use super::ValueType::{I32, I64};
            $(
                pub(super) const $variant: Syscall =
                    call(SyscallId::$variant, $name, &[$($param),*], &[$($result),*], Capability::$capability);
            )*
        }

        /// Every call, sorted by id.
        pub const SYSCALLS: &[Syscall] = &[$(entries::$variant),*];

        impl SyscallId {
            /// The call's description (a total lookup: every id has its entry).
            pub const fn syscall(self) -> &'static Syscall {
                match self {
                    $(SyscallId::$variant => &entries::$variant,)*
                }
            }
        }
    };
}

syscall_table! {
    /// `input_len() -> i32`: length in bytes of the job's input.
    InputLen = 1 => "input_len"() -> (I32), Base;
    /// `input_read(buffer, length, offset) -> i32`: copies up to `length` input bytes starting at
    /// `offset` into `buffer`; returns the count copied (0 at the end).
    InputRead = 2 => "input_read"(I32, I32, I32) -> (I32), Base;
    /// `output_write(buffer, length) -> i32`: appends to the job's output; 0, or
    /// `-LimitExceeded` past the output cap.
    OutputWrite = 3 => "output_write"(I32, I32) -> (I32), Base;
    /// `log(level, buffer, length) -> i32`: one log line at a [`LogLevel`]; UTF-8, truncated at
    /// the line cap.
    Log = 4 => "log"(I32, I32, I32) -> (I32), Base;
    /// `time_us() -> i64`: monotonic time in microseconds since boot.
    TimeMicros = 5 => "time_us"() -> (I64), Base;
    /// `random(buffer, length) -> i32`: fills `buffer` from the hardware RNG; 0 or an error.
    Random = 6 => "random"(I32, I32) -> (I32), Base;
    /// `yield() -> i32`: "I have nothing to do now": gives the rest of the device's current 1 ms
    /// frame back and returns 0 in a later frame, after the device polled the network (so a
    /// datagram that came meanwhile is queued for `udp_recv`). The device idles in between. A
    /// job that works between yields still finishes, a frame per yield slower at most.
    Yield = 7 => "yield"() -> (I32), Base;
    /// `exit(code)`: ends the job now with exit value `code`; does not return.
    Exit = 8 => "exit"(I32) -> (), Base;
    /// `udp_bind(port) -> i32`: a socket handle on a port the device grants, or an error.
    UdpBind = 16 => "udp_bind"(I32) -> (I32), Network;
    /// `udp_send(handle, endpoint, buffer, length) -> i32`: sends a datagram to the 8-byte
    /// [`Endpoint`] at `endpoint`; returns 0 or an error.
    UdpSend = 17 => "udp_send"(I32, I32, I32, I32) -> (I32), Network;
    /// `udp_recv(handle, buffer, length, endpoint) -> i32`: the next datagram's length (copied up
    /// to `length`, sender written as an [`Endpoint`] at `endpoint`), `-WouldBlock` if none.
    UdpRecv = 18 => "udp_recv"(I32, I32, I32, I32) -> (I32), Network;
    /// `udp_close(handle) -> i32`.
    UdpClose = 19 => "udp_close"(I32) -> (I32), Network;
    /// `screen_print(buffer, length) -> i32`: a line of text in the job area of the status screen.
    ScreenPrint = 24 => "screen_print"(I32, I32) -> (I32), Screen;
    /// `gpio_write(pin, level) -> i32`.
    GpioWrite = 32 => "gpio_write"(I32, I32) -> (I32), Gpio;
    /// `gpio_read(pin) -> i32`: 0 or 1, or an error.
    GpioRead = 33 => "gpio_read"(I32) -> (I32), Gpio;
}

/// Log levels for [`SyscallId::Log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum LogLevel {
    /// Something failed.
    Error = 1,
    /// Something looks wrong.
    Warn = 2,
    /// Normal progress.
    Info = 3,
    /// Detail for the author.
    Debug = 4,
}

impl TryFrom<u32> for LogLevel {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        Ok(match value {
            1 => LogLevel::Error,
            2 => LogLevel::Warn,
            3 => LogLevel::Info,
            4 => LogLevel::Debug,
            other => return Err(other),
        })
    }
}

/// An IPv4 UDP endpoint as guests see it: 4 address bytes (network order) then the port
/// (little-endian u16) and 2 bytes of zero padding; 8 bytes in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv4 address.
    pub address: [u8; 4],
    /// UDP port.
    pub port: u16,
}

impl Endpoint {
    /// Encoded size.
    pub const LEN: usize = 8;

    /// Encodes the endpoint.
    pub fn to_bytes(self) -> [u8; 8] {
        let [p0, p1] = self.port.to_le_bytes();
        let [a, b, c, d] = self.address;
        [a, b, c, d, p0, p1, 0, 0]
    }

    /// Decodes an endpoint; the padding must be zero.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        let [a, b, c, d, p0, p1, z0, z1] = bytes;
        (z0 == 0 && z1 == 0).then_some(Self { address: [a, b, c, d], port: u16::from_le_bytes([p0, p1]) })
    }
}

/// A call's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Syscall {
    /// Its stable id.
    pub id: SyscallId,
    /// The wasm import name (module [`WASM_IMPORT_MODULE`]) and the C SDK's `jos_` suffix.
    pub name: &'static str,
    /// Parameters and results.
    pub signature: Signature,
    /// The right a job needs to call it.
    pub capability: Capability,
    /// The ABI minor version that introduced it (major 1).
    pub since_minor: u16,
}

const fn call(
    id: SyscallId,
    name: &'static str,
    params: &'static [ValueType],
    results: &'static [ValueType],
    capability: Capability,
) -> Syscall {
    Syscall { id, name, signature: Signature { params, results }, capability, since_minor: 0 }
}

/// The largest id in use plus one: the size of an id-indexed dispatch table.
pub const SYSCALL_TABLE_LEN: usize = 34;

impl TryFrom<u32> for SyscallId {
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        SYSCALLS.iter().map(|call| call.id).find(|id| *id as u32 == value).ok_or(value)
    }
}

/// Looks up a call by its wasm import name.
pub fn by_name(name: &str) -> Option<&'static Syscall> {
    SYSCALLS.iter().find(|call| call.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_fits_the_dispatch_table() {
        for pair in SYSCALLS.windows(2) {
            assert!((pair[0].id as u32) < (pair[1].id as u32), "{:?} before {:?}", pair[0].id, pair[1].id);
            assert_ne!(pair[0].name, pair[1].name);
        }
        assert!(SYSCALLS.iter().all(|call| (call.id as usize) < SYSCALL_TABLE_LEN));
        assert_eq!(SYSCALLS.last().map(|call| call.id as usize + 1), Some(SYSCALL_TABLE_LEN));
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for call in SYSCALLS {
            assert_eq!(SyscallId::try_from(call.id as u32), Ok(call.id));
            assert_eq!(call.id.syscall().name, call.name);
            assert_eq!(by_name(call.name).map(|c| c.id), Some(call.id));
        }
        assert_eq!(SyscallId::try_from(0), Err(0));
        assert_eq!(SyscallId::try_from(9), Err(9));
        assert!(by_name("open").is_none());
    }

    #[test]
    fn stable_ids_do_not_move() {
        // Ids are part of the ABI: this test changes only when a call is added.
        let ids: Vec<(u32, &str)> = SYSCALLS.iter().map(|c| (c.id as u32, c.name)).collect();
        assert_eq!(&ids[..4], &[(1, "input_len"), (2, "input_read"), (3, "output_write"), (4, "log")]);
        assert_eq!(SyscallId::UdpBind as u32, 16);
        assert_eq!(SyscallId::ScreenPrint as u32, 24);
        assert_eq!(SyscallId::GpioRead as u32, 33);
    }

    #[test]
    fn version_rules() {
        let kernel = AbiVersion { major: 1, minor: 2 };
        assert!(kernel.accepts(AbiVersion { major: 1, minor: 0 }));
        assert!(kernel.accepts(AbiVersion { major: 1, minor: 2 }));
        assert!(!kernel.accepts(AbiVersion { major: 1, minor: 3 }));
        assert!(!kernel.accepts(AbiVersion { major: 2, minor: 0 }));
        assert!(!kernel.accepts(AbiVersion { major: 0, minor: 9 }));
        assert_eq!(AbiVersion::from_u32(kernel.to_u32()), kernel);
        assert_eq!(kernel.to_u32(), 0x0001_0002);
    }

    #[test]
    fn endpoint_bytes() {
        let endpoint = Endpoint { address: [10, 0, 2, 2], port: 0x1234 };
        assert_eq!(endpoint.to_bytes(), [10, 0, 2, 2, 0x34, 0x12, 0, 0]);
        assert_eq!(Endpoint::from_bytes(endpoint.to_bytes()), Some(endpoint));
        assert_eq!(Endpoint::from_bytes([1, 2, 3, 4, 5, 6, 0, 1]), None);
    }
}

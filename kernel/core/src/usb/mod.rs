//! USB logic that needs no hardware: standard requests, descriptor parsing, the hub class's
//! port status, CDC-ECM helpers and the SMSC LAN95xx framing and registers. The kernel's DWC2 driver moves the bytes; this module reads
//! and writes them, and host unit tests cover it.
//!
//! Every parser takes untrusted bytes from a device and returns [`Error`] on a short or
//! inconsistent descriptor; no function here panics on any input.

pub mod descriptor;
pub mod ecm;
pub mod hub;
pub mod setup;
pub mod smsc95xx;

/// Why a USB descriptor or reply could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Error {
    /// The buffer is shorter than the descriptor claims or needs.
    Truncated = 1,
    /// `bDescriptorType` is not the expected one.
    WrongType = 2,
    /// A length field is impossible (e.g. `bLength` smaller than the fixed part).
    BadLength = 3,
    /// A value is out of the range the standard allows.
    BadValue = 4,
    /// The device does not offer what the class driver needs.
    NotFound = 5,
}

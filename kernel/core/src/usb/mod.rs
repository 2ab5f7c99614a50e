//! The USB host stack above the host controller, generic over the board ([`host::UsbPlatform`])
//! so host tests run it against a fake controller and fake devices (`fake`, tests only):
//! - the pure rules: standard requests ([`setup`]), descriptor parsing ([`descriptor`]), the hub
//!   class's port status ([`hub`]), CDC-ECM helpers ([`ecm`]) and the SMSC LAN95xx framing and
//!   registers ([`smsc95xx`]);
//! - the stack: the controller trait and transfer types ([`host`]), control transfers and
//!   enumeration ([`bus`]), the class drivers ([`class`]: hub, CDC-ECM, SMSC LAN95xx) and the
//!   Ethernet data path they share ([`ethernet`]).
//!
//! The kernel's DWC2 driver (`kernel/src/board/bcm2835/usb/dwc2.rs`) moves the bytes. Every
//! parser takes untrusted bytes from a device and returns [`Error`] on a short or inconsistent
//! descriptor; no function here panics on any input.

pub mod bus;
pub mod class;
pub mod descriptor;
pub mod ecm;
pub mod ethernet;
#[cfg(test)]
mod fake;
pub mod host;
pub mod hub;
pub mod setup;
pub mod smsc95xx;
#[cfg(test)]
mod tests;

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

//! The 8-byte SETUP packet of a control transfer (USB 2.0, section 9.3) and the standard
//! requests (section 9.4) the host uses to enumerate devices.

/// `bmRequestType` direction bit: device to host.
pub const DIR_IN: u8 = 0x80;
/// `bmRequestType` type field: standard request.
pub const TYPE_STANDARD: u8 = 0x00;
/// `bmRequestType` type field: class request.
pub const TYPE_CLASS: u8 = 0x20;
/// `bmRequestType` recipient: device.
pub const RECIPIENT_DEVICE: u8 = 0x00;
/// `bmRequestType` recipient: interface.
pub const RECIPIENT_INTERFACE: u8 = 0x01;
/// `bmRequestType` recipient: other (a hub port).
pub const RECIPIENT_OTHER: u8 = 0x03;

/// Standard request GET_STATUS.
pub const GET_STATUS: u8 = 0;
/// Standard request CLEAR_FEATURE.
pub const CLEAR_FEATURE: u8 = 1;
/// Standard request SET_FEATURE.
pub const SET_FEATURE: u8 = 3;
/// Standard request SET_ADDRESS.
pub const SET_ADDRESS: u8 = 5;
/// Standard request GET_DESCRIPTOR.
pub const GET_DESCRIPTOR: u8 = 6;
/// Standard request SET_CONFIGURATION.
pub const SET_CONFIGURATION: u8 = 9;
/// Standard request SET_INTERFACE.
pub const SET_INTERFACE: u8 = 11;

/// A SETUP packet's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// `bmRequestType`: direction, type and recipient.
    pub request_type: u8,
    /// `bRequest`.
    pub request: u8,
    /// `wValue`.
    pub value: u16,
    /// `wIndex`.
    pub index: u16,
    /// `wLength`: bytes in the data stage.
    pub length: u16,
}

impl Setup {
    /// The 8 bytes on the wire (little-endian fields).
    pub fn to_bytes(&self) -> [u8; 8] {
        let v = self.value.to_le_bytes();
        let i = self.index.to_le_bytes();
        let l = self.length.to_le_bytes();
        [self.request_type, self.request, v[0], v[1], i[0], i[1], l[0], l[1]]
    }

    /// True when the data stage (if any) goes from device to host.
    pub fn is_in(&self) -> bool {
        self.request_type & DIR_IN != 0
    }

    /// GET_DESCRIPTOR of `kind` number `index` (language `language` for strings), `length` bytes.
    pub fn get_descriptor(kind: u8, index: u8, language: u16, length: u16) -> Self {
        Self {
            request_type: DIR_IN | TYPE_STANDARD | RECIPIENT_DEVICE,
            request: GET_DESCRIPTOR,
            value: (u16::from(kind) << 8) | u16::from(index),
            index: language,
            length,
        }
    }

    /// SET_ADDRESS to `address` (1..=127).
    pub fn set_address(address: u8) -> Self {
        Self { request_type: 0, request: SET_ADDRESS, value: u16::from(address), index: 0, length: 0 }
    }

    /// SET_CONFIGURATION to `value` (a `bConfigurationValue`).
    pub fn set_configuration(value: u8) -> Self {
        Self { request_type: 0, request: SET_CONFIGURATION, value: u16::from(value), index: 0, length: 0 }
    }

    /// SET_INTERFACE: select `alternate` on `interface`.
    pub fn set_interface(interface: u8, alternate: u8) -> Self {
        Self {
            request_type: RECIPIENT_INTERFACE,
            request: SET_INTERFACE,
            value: u16::from(alternate),
            index: u16::from(interface),
            length: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_get_device_descriptor() {
        let setup = Setup::get_descriptor(1, 0, 0, 18);
        assert_eq!(setup.to_bytes(), [0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00]);
        assert!(setup.is_in());
    }

    #[test]
    fn golden_string_and_address_and_interface() {
        assert_eq!(Setup::get_descriptor(3, 3, 0x0409, 255).to_bytes(), [0x80, 6, 3, 3, 0x09, 0x04, 255, 0]);
        assert_eq!(Setup::set_address(5).to_bytes(), [0, 5, 5, 0, 0, 0, 0, 0]);
        assert_eq!(Setup::set_configuration(2).to_bytes(), [0, 9, 2, 0, 0, 0, 0, 0]);
        assert_eq!(Setup::set_interface(1, 1).to_bytes(), [1, 11, 1, 0, 1, 0, 0, 0]);
        assert!(!Setup::set_address(5).is_in());
    }
}

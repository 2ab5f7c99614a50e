//! USB hub class (USB 2.0, chapter 11): the hub descriptor, port status and the class requests
//! a host uses to power, reset and enumerate a hub's ports.

use super::descriptor::HUB;
use super::setup::{
    Setup, CLEAR_FEATURE, DIR_IN, GET_DESCRIPTOR, GET_STATUS, RECIPIENT_OTHER, SET_FEATURE, TYPE_CLASS,
};
use super::Error;

/// Port feature selector PORT_RESET (USB 2.0, table 11-17).
pub const PORT_RESET: u16 = 4;
/// Port feature selector PORT_POWER.
pub const PORT_POWER: u16 = 8;
/// Port feature selector C_PORT_CONNECTION.
pub const C_PORT_CONNECTION: u16 = 16;
/// Port feature selector C_PORT_ENABLE.
pub const C_PORT_ENABLE: u16 = 17;
/// Port feature selector C_PORT_RESET.
pub const C_PORT_RESET: u16 = 20;

/// The parts of a hub descriptor the host uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubDescriptor {
    /// `bNbrPorts`.
    pub ports: u8,
    /// `wHubCharacteristics`.
    pub characteristics: u16,
    /// `bPwrOn2PwrGood` in milliseconds (the field counts 2 ms units).
    pub power_on_to_good_ms: u16,
}

impl HubDescriptor {
    /// Parses a hub descriptor (at least its 7 fixed bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 7 {
            return Err(Error::Truncated);
        }
        if bytes[1] != HUB {
            return Err(Error::WrongType);
        }
        if bytes[0] < 7 {
            return Err(Error::BadLength);
        }
        if bytes[2] == 0 {
            return Err(Error::BadValue);
        }
        Ok(Self {
            ports: bytes[2],
            characteristics: u16::from_le_bytes([bytes[3], bytes[4]]),
            power_on_to_good_ms: u16::from(bytes[5]) * 2,
        })
    }
}

/// Speed of the device on a hub port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 1.5 Mbit/s.
    Low,
    /// 12 Mbit/s.
    Full,
    /// 480 Mbit/s.
    High,
}

/// `wPortStatus` and `wPortChange` from GET_STATUS on a port (USB 2.0, section 11.24.2.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// `wPortStatus`.
    pub status: u16,
    /// `wPortChange`.
    pub change: u16,
}

impl PortStatus {
    /// Parses the 4-byte reply.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < 4 {
            return Err(Error::Truncated);
        }
        Ok(Self { status: u16::from_le_bytes([bytes[0], bytes[1]]), change: u16::from_le_bytes([bytes[2], bytes[3]]) })
    }

    /// A device is present on the port.
    pub fn connected(&self) -> bool {
        self.status & 1 != 0
    }

    /// The port is enabled (reset finished).
    pub fn enabled(&self) -> bool {
        self.status & (1 << 1) != 0
    }

    /// The port is in reset.
    pub fn resetting(&self) -> bool {
        self.status & (1 << 4) != 0
    }

    /// The port is powered.
    pub fn powered(&self) -> bool {
        self.status & (1 << 8) != 0
    }

    /// The reset-complete change bit.
    pub fn reset_changed(&self) -> bool {
        self.change & (1 << 4) != 0
    }

    /// The attached device's speed.
    pub fn speed(&self) -> Speed {
        if self.status & (1 << 9) != 0 {
            Speed::Low
        } else if self.status & (1 << 10) != 0 {
            Speed::High
        } else {
            Speed::Full
        }
    }
}

/// GET_DESCRIPTOR(HUB) for `length` bytes.
pub fn get_hub_descriptor(length: u16) -> Setup {
    Setup { request_type: DIR_IN | TYPE_CLASS, request: GET_DESCRIPTOR, value: u16::from(HUB) << 8, index: 0, length }
}

/// SET_FEATURE(`feature`) on `port` (1-based).
pub fn set_port_feature(port: u8, feature: u16) -> Setup {
    Setup {
        request_type: TYPE_CLASS | RECIPIENT_OTHER,
        request: SET_FEATURE,
        value: feature,
        index: u16::from(port),
        length: 0,
    }
}

/// CLEAR_FEATURE(`feature`) on `port` (1-based).
pub fn clear_port_feature(port: u8, feature: u16) -> Setup {
    Setup {
        request_type: TYPE_CLASS | RECIPIENT_OTHER,
        request: CLEAR_FEATURE,
        value: feature,
        index: u16::from(port),
        length: 0,
    }
}

/// GET_STATUS on `port` (1-based): 4 bytes back.
pub fn get_port_status(port: u8) -> Setup {
    Setup {
        request_type: DIR_IN | TYPE_CLASS | RECIPIENT_OTHER,
        request: GET_STATUS,
        value: 0,
        index: u16::from(port),
        length: 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_descriptor() {
        // QEMU usb-hub: 8 ports, per-port power, 2 ms (1 unit) power-on time.
        let d = HubDescriptor::parse(&[9, 0x29, 8, 0x0a, 0, 1, 0, 0, 0xff]).unwrap();
        assert_eq!((d.ports, d.characteristics, d.power_on_to_good_ms), (8, 0x0a, 2));
        assert_eq!(HubDescriptor::parse(&[9, 0x29, 8]), Err(Error::Truncated));
        assert_eq!(HubDescriptor::parse(&[9, 0x02, 8, 0, 0, 1, 0]), Err(Error::WrongType));
        assert_eq!(HubDescriptor::parse(&[9, 0x29, 0, 0, 0, 1, 0]), Err(Error::BadValue));
        assert_eq!(HubDescriptor::parse(&[6, 0x29, 2, 0, 0, 1, 0]), Err(Error::BadLength));
    }

    #[test]
    fn port_status_bits() {
        let s = PortStatus::parse(&[0x03, 0x01, 0x10, 0x00]).unwrap();
        assert!(s.connected() && s.enabled() && s.powered() && s.reset_changed() && !s.resetting());
        assert_eq!(s.speed(), Speed::Full);
        assert_eq!(PortStatus::parse(&[0x01, 0x03, 0, 0]).unwrap().speed(), Speed::Low);
        assert_eq!(PortStatus::parse(&[0x01, 0x05, 0, 0]).unwrap().speed(), Speed::High);
        assert_eq!(PortStatus::parse(&[1, 2, 3]), Err(Error::Truncated));
    }

    #[test]
    fn golden_requests() {
        assert_eq!(get_hub_descriptor(9).to_bytes(), [0xa0, 6, 0, 0x29, 0, 0, 9, 0]);
        assert_eq!(set_port_feature(1, PORT_POWER).to_bytes(), [0x23, 3, 8, 0, 1, 0, 0, 0]);
        assert_eq!(clear_port_feature(2, C_PORT_RESET).to_bytes(), [0x23, 1, 20, 0, 2, 0, 0, 0]);
        assert_eq!(get_port_status(3).to_bytes(), [0xa3, 0, 0, 0, 3, 0, 4, 0]);
    }
}

//! Standard USB descriptors (USB 2.0, section 9.6): device, configuration, interface, endpoint
//! and string, read from untrusted device bytes.
//!
//! [`DeviceDescriptor::parse`] and [`Descriptors`] check every length before reading; no
//! accessor can panic afterwards.

use super::Error;

/// `bDescriptorType` of a device descriptor.
pub const DEVICE: u8 = 1;
/// `bDescriptorType` of a configuration descriptor.
pub const CONFIGURATION: u8 = 2;
/// `bDescriptorType` of a string descriptor.
pub const STRING: u8 = 3;
/// `bDescriptorType` of an interface descriptor.
pub const INTERFACE: u8 = 4;
/// `bDescriptorType` of an endpoint descriptor.
pub const ENDPOINT: u8 = 5;
/// `bDescriptorType` of a class-specific interface descriptor (CDC 1.2, table 12).
pub const CS_INTERFACE: u8 = 0x24;
/// `bDescriptorType` of a hub descriptor (USB 2.0, section 11.23.2.1).
pub const HUB: u8 = 0x29;

/// Device class of a hub (USB 2.0, section 11.23.1).
pub const CLASS_HUB: u8 = 0x09;
/// Interface class Communications (CDC 1.2, section 4.2).
pub const CLASS_CDC: u8 = 0x02;
/// Interface class CDC Data (CDC 1.2, section 4.5).
pub const CLASS_CDC_DATA: u8 = 0x0A;
/// CDC subclass Ethernet Networking Control Model (CDC 1.2, table 4).
pub const SUBCLASS_ECM: u8 = 0x06;

/// The 18-byte device descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDescriptor {
    /// `bcdUSB`.
    pub usb_version: u16,
    /// `bDeviceClass`.
    pub class: u8,
    /// `bDeviceSubClass`.
    pub subclass: u8,
    /// `bDeviceProtocol`.
    pub protocol: u8,
    /// `bMaxPacketSize0`: 8, 16, 32 or 64.
    pub max_packet_size0: u8,
    /// `idVendor`.
    pub vendor: u16,
    /// `idProduct`.
    pub product: u16,
    /// `iManufacturer`.
    pub manufacturer_string: u8,
    /// `iProduct`.
    pub product_string: u8,
    /// `iSerialNumber`.
    pub serial_string: u8,
    /// `bNumConfigurations`.
    pub configurations: u8,
}

impl DeviceDescriptor {
    /// The descriptor's length on the wire.
    pub const LEN: usize = 18;

    /// Reads `bMaxPacketSize0` from the first 8 bytes, which is all a host may ask for before
    /// it knows the packet size.
    pub fn parse_max_packet_size0(bytes: &[u8]) -> Result<u8, Error> {
        if bytes.len() < 8 {
            return Err(Error::Truncated);
        }
        if bytes[1] != DEVICE {
            return Err(Error::WrongType);
        }
        match bytes[7] {
            size @ (8 | 16 | 32 | 64) => Ok(size),
            _ => Err(Error::BadValue),
        }
    }

    /// Parses a whole device descriptor.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        if bytes[1] != DEVICE {
            return Err(Error::WrongType);
        }
        if usize::from(bytes[0]) < Self::LEN {
            return Err(Error::BadLength);
        }
        let max_packet_size0 = Self::parse_max_packet_size0(bytes)?;
        let word = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        Ok(Self {
            usb_version: word(2),
            class: bytes[4],
            subclass: bytes[5],
            protocol: bytes[6],
            max_packet_size0,
            vendor: word(8),
            product: word(10),
            manufacturer_string: bytes[14],
            product_string: bytes[15],
            serial_string: bytes[16],
            configurations: bytes[17],
        })
    }
}

/// The 9-byte header of a configuration descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigurationHeader {
    /// `wTotalLength`: the configuration with all its interface and endpoint descriptors.
    pub total_length: u16,
    /// `bNumInterfaces`.
    pub interfaces: u8,
    /// `bConfigurationValue`: the argument of SET_CONFIGURATION.
    pub value: u8,
    /// `bmAttributes`.
    pub attributes: u8,
    /// `bMaxPower` in units of 2 mA.
    pub max_power: u8,
}

impl ConfigurationHeader {
    /// The header's length on the wire.
    pub const LEN: usize = 9;

    /// Parses the header at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < Self::LEN {
            return Err(Error::Truncated);
        }
        if bytes[1] != CONFIGURATION {
            return Err(Error::WrongType);
        }
        let total_length = u16::from_le_bytes([bytes[2], bytes[3]]);
        if usize::from(bytes[0]) < Self::LEN || usize::from(total_length) < Self::LEN {
            return Err(Error::BadLength);
        }
        Ok(Self { total_length, interfaces: bytes[4], value: bytes[5], attributes: bytes[7], max_power: bytes[8] })
    }
}

/// An interface descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceDescriptor {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bAlternateSetting`.
    pub alternate: u8,
    /// `bNumEndpoints`.
    pub endpoints: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
}

/// Endpoint transfer types (`bmAttributes` bits 1..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TransferType {
    /// Control.
    Control = 0,
    /// Isochronous.
    Isochronous = 1,
    /// Bulk.
    Bulk = 2,
    /// Interrupt.
    Interrupt = 3,
}

/// An endpoint descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointDescriptor {
    /// `bEndpointAddress`: number in bits 3..0, bit 7 set for IN.
    pub address: u8,
    /// Transfer type.
    pub transfer_type: TransferType,
    /// `wMaxPacketSize` bits 10..0.
    pub max_packet_size: u16,
    /// `bInterval`.
    pub interval: u8,
}

impl EndpointDescriptor {
    /// True for an IN (device to host) endpoint.
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// The endpoint number, 0..=15.
    pub fn number(&self) -> u8 {
        self.address & 0x0f
    }
}

/// One descriptor inside a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor<'a> {
    /// An interface descriptor.
    Interface(InterfaceDescriptor),
    /// An endpoint descriptor.
    Endpoint(EndpointDescriptor),
    /// Any other descriptor: its type and its whole bytes (length byte included).
    Other(u8, &'a [u8]),
}

/// Iterates over the descriptors of a whole configuration (header excluded). Stops at the first
/// malformed descriptor, yielding its error once.
#[derive(Clone, Debug)]
pub struct Descriptors<'a> {
    rest: &'a [u8],
}

impl<'a> Descriptors<'a> {
    /// The descriptors after the configuration header in `configuration` (the bytes of
    /// GET_DESCRIPTOR(CONFIGURATION) cut to `wTotalLength`).
    pub fn new(configuration: &'a [u8]) -> Result<Self, Error> {
        let header = ConfigurationHeader::parse(configuration)?;
        let total = usize::from(header.total_length).min(configuration.len());
        let start = usize::from(configuration[0]).min(total);
        Ok(Self { rest: &configuration[start..total] })
    }
}

impl<'a> Iterator for Descriptors<'a> {
    type Item = Result<Descriptor<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let length = usize::from(self.rest[0]);
        if length < 2 || length > self.rest.len() {
            self.rest = &[];
            return Some(Err(if length < 2 { Error::BadLength } else { Error::Truncated }));
        }
        let (bytes, rest) = self.rest.split_at(length);
        self.rest = rest;
        let kind = bytes[1];
        Some(match kind {
            INTERFACE if length >= 9 => Ok(Descriptor::Interface(InterfaceDescriptor {
                number: bytes[2],
                alternate: bytes[3],
                endpoints: bytes[4],
                class: bytes[5],
                subclass: bytes[6],
                protocol: bytes[7],
            })),
            ENDPOINT if length >= 7 => {
                let transfer_type = match bytes[3] & 3 {
                    0 => TransferType::Control,
                    1 => TransferType::Isochronous,
                    2 => TransferType::Bulk,
                    _ => TransferType::Interrupt,
                };
                Ok(Descriptor::Endpoint(EndpointDescriptor {
                    address: bytes[2],
                    transfer_type,
                    max_packet_size: u16::from_le_bytes([bytes[4], bytes[5]]) & 0x7ff,
                    interval: bytes[6],
                }))
            }
            INTERFACE | ENDPOINT => {
                self.rest = &[];
                Err(Error::BadLength)
            }
            _ => Ok(Descriptor::Other(kind, bytes)),
        })
    }
}

/// Decodes a string descriptor (UTF-16LE) into `out` as ASCII, replacing anything outside
/// printable ASCII with `?`. Returns the number of bytes written.
pub fn string_to_ascii(descriptor: &[u8], out: &mut [u8]) -> Result<usize, Error> {
    if descriptor.len() < 2 {
        return Err(Error::Truncated);
    }
    if descriptor[1] != STRING {
        return Err(Error::WrongType);
    }
    let length = usize::from(descriptor[0]);
    if length < 2 || length % 2 != 0 {
        return Err(Error::BadLength);
    }
    if length > descriptor.len() {
        return Err(Error::Truncated);
    }
    let mut written = 0;
    for unit in descriptor[2..length].chunks_exact(2) {
        if written == out.len() {
            break;
        }
        let code = u16::from_le_bytes([unit[0], unit[1]]);
        out[written] = if (0x20..0x7f).contains(&code) { code as u8 } else { b'?' };
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// usb-net's device descriptor as QEMU 7.2 reports it (VID 0525, PID a4a2, two configurations).
    const DEVICE_BYTES: [u8; 18] = [18, 1, 0x00, 0x02, 2, 0, 0, 64, 0x25, 0x05, 0xa2, 0xa4, 0x00, 0x00, 1, 2, 3, 2];

    #[test]
    fn device_descriptor_fields() {
        let d = DeviceDescriptor::parse(&DEVICE_BYTES).unwrap();
        assert_eq!((d.vendor, d.product, d.max_packet_size0, d.configurations), (0x0525, 0xa4a2, 64, 2));
        assert_eq!(d.usb_version, 0x0200);
        assert_eq!((d.manufacturer_string, d.product_string, d.serial_string), (1, 2, 3));
        assert_eq!(DeviceDescriptor::parse_max_packet_size0(&DEVICE_BYTES[..8]), Ok(64));
    }

    #[test]
    fn device_descriptor_rejects_bad_input() {
        assert_eq!(DeviceDescriptor::parse(&DEVICE_BYTES[..17]), Err(Error::Truncated));
        let mut wrong = DEVICE_BYTES;
        wrong[1] = 2;
        assert_eq!(DeviceDescriptor::parse(&wrong), Err(Error::WrongType));
        let mut bad_mps = DEVICE_BYTES;
        bad_mps[7] = 65;
        assert_eq!(DeviceDescriptor::parse(&bad_mps), Err(Error::BadValue));
        let mut short = DEVICE_BYTES;
        short[0] = 4;
        assert_eq!(DeviceDescriptor::parse(&short), Err(Error::BadLength));
        assert_eq!(DeviceDescriptor::parse_max_packet_size0(&[]), Err(Error::Truncated));
    }

    #[test]
    fn configuration_walk() {
        let bytes = [
            9, 2, 32, 0, 1, 1, 0, 0xc0, 50, // header, total 32
            9, 4, 0, 0, 2, 0xff, 0, 0, 0, // interface 0
            7, 5, 0x81, 2, 64, 0, 0, // bulk IN 1
            7, 5, 0x02, 3, 8, 0, 10, // interrupt OUT 2
        ];
        let header = ConfigurationHeader::parse(&bytes).unwrap();
        assert_eq!((header.total_length, header.value, header.interfaces), (32, 1, 1));
        let all: Vec<_> = Descriptors::new(&bytes).unwrap().collect();
        assert_eq!(all.len(), 3);
        assert!(matches!(all[0], Ok(Descriptor::Interface(InterfaceDescriptor { number: 0, endpoints: 2, .. }))));
        match all[1] {
            Ok(Descriptor::Endpoint(e)) => {
                assert!(e.is_in());
                assert_eq!((e.number(), e.transfer_type, e.max_packet_size), (1, TransferType::Bulk, 64));
            }
            ref other => panic!("{other:?}"),
        }
        match all[2] {
            Ok(Descriptor::Endpoint(e)) => {
                assert!(!e.is_in());
                assert_eq!((e.transfer_type, e.interval), (TransferType::Interrupt, 10));
            }
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn configuration_walk_stops_on_malformed() {
        // A descriptor with length 0 would loop forever in a naive walker.
        let zero = [9, 2, 12, 0, 1, 1, 0, 0, 0, 0, 4, 0];
        let all: Vec<_> = Descriptors::new(&zero).unwrap().collect();
        assert_eq!(all, vec![Err(Error::BadLength)]);
        // Length past the end.
        let long = [9, 2, 12, 0, 1, 1, 0, 0, 0, 9, 4, 0];
        let all: Vec<_> = Descriptors::new(&long).unwrap().collect();
        assert_eq!(all, vec![Err(Error::Truncated)]);
        // An interface descriptor too short for its fields.
        let short = [9, 2, 13, 0, 1, 1, 0, 0, 0, 4, 4, 0, 0];
        let all: Vec<_> = Descriptors::new(&short).unwrap().collect();
        assert_eq!(all, vec![Err(Error::BadLength)]);
        // wTotalLength shorter than the header.
        assert_eq!(Descriptors::new(&[9, 2, 3, 0, 0, 0, 0, 0, 0]).err(), Some(Error::BadLength));
    }

    #[test]
    fn string_decoding() {
        let s = [10, 3, b'4', 0, b'0', 0, 0x3a, 0x26, b'a', 0];
        let mut out = [0u8; 8];
        assert_eq!(string_to_ascii(&s, &mut out), Ok(4));
        assert_eq!(&out[..4], b"40?a");
        assert_eq!(string_to_ascii(&[3, 3, 0], &mut out), Err(Error::BadLength));
        assert_eq!(string_to_ascii(&[8, 3, 0, 0], &mut out), Err(Error::Truncated));
        assert_eq!(string_to_ascii(&[4, 2, 0, 0], &mut out), Err(Error::WrongType));
        let mut tiny = [0u8; 1];
        assert_eq!(string_to_ascii(&s, &mut tiny), Ok(1));
    }
}

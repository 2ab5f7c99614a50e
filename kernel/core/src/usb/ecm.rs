//! CDC Ethernet Control Model (CDC ECM 1.2) helpers: find the ECM function in a configuration,
//! read the MAC address string, the packet-filter request and the zero-length-packet rule.

use super::descriptor::{self, Descriptor, Descriptors, TransferType};
use super::setup::{Setup, RECIPIENT_INTERFACE, TYPE_CLASS};
use super::Error;

/// CDC functional descriptor subtype: Ethernet Networking (ECM 1.2, table 3).
pub const ETHERNET_NETWORKING: u8 = 0x0F;
/// CDC functional descriptor subtype: Union (CDC 1.2, table 13).
pub const UNION: u8 = 0x06;
/// Class request SET_ETHERNET_PACKET_FILTER (ECM 1.2, section 6.2.4).
pub const SET_ETHERNET_PACKET_FILTER: u8 = 0x43;
/// Packet filter bit: all multicast.
pub const FILTER_ALL_MULTICAST: u16 = 1 << 1;
/// Packet filter bit: directed (unicast to our address).
pub const FILTER_DIRECTED: u16 = 1 << 2;
/// Packet filter bit: broadcast.
pub const FILTER_BROADCAST: u16 = 1 << 3;

/// What the ECM class driver needs from a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcmFunction {
    /// The communications (control) interface number.
    pub control_interface: u8,
    /// The data interface number.
    pub data_interface: u8,
    /// The data interface's alternate setting that has the two bulk endpoints.
    pub data_alternate: u8,
    /// Bulk IN endpoint address.
    pub bulk_in: u8,
    /// Bulk IN max packet size.
    pub bulk_in_max_packet: u16,
    /// Bulk OUT endpoint address.
    pub bulk_out: u8,
    /// Bulk OUT max packet size.
    pub bulk_out_max_packet: u16,
    /// `iMACAddress`: the string descriptor index holding the MAC as 12 hex digits.
    pub mac_string: u8,
    /// `wMaxSegmentSize`.
    pub max_segment_size: u16,
}

/// Looks for a CDC-ECM function in a whole configuration descriptor.
pub fn find_ecm(configuration: &[u8]) -> Result<EcmFunction, Error> {
    #[derive(PartialEq)]
    enum In {
        Nothing,
        Control,
        Data,
    }
    let mut state = In::Nothing;
    let mut control = None;
    let mut mac_string = None;
    let mut max_segment_size = 0;
    let mut data_interface = None;
    let mut current = (0u8, 0u8);
    let mut bulk_in = None;
    let mut bulk_out = None;
    for item in Descriptors::new(configuration)? {
        match item? {
            Descriptor::Interface(i) => {
                if bulk_in.is_some() && bulk_out.is_some() {
                    break;
                }
                bulk_in = None;
                bulk_out = None;
                current = (i.number, i.alternate);
                state = if i.class == descriptor::CLASS_CDC && i.subclass == descriptor::SUBCLASS_ECM {
                    control = Some(i.number);
                    In::Control
                } else if i.class == descriptor::CLASS_CDC_DATA && control.is_some() {
                    In::Data
                } else {
                    In::Nothing
                };
            }
            Descriptor::Other(descriptor::CS_INTERFACE, bytes) if state == In::Control && bytes.len() >= 3 => {
                match bytes[2] {
                    ETHERNET_NETWORKING if bytes.len() >= 13 => {
                        mac_string = Some(bytes[3]);
                        max_segment_size = u16::from_le_bytes([bytes[8], bytes[9]]);
                    }
                    UNION if bytes.len() >= 5 => data_interface = Some(bytes[4]),
                    _ => {}
                }
            }
            Descriptor::Endpoint(e)
                if state == In::Data
                    && e.transfer_type == TransferType::Bulk
                    && data_interface.is_none_or(|d| d == current.0) =>
            {
                if e.is_in() {
                    bulk_in = Some(e);
                } else {
                    bulk_out = Some(e);
                }
            }
            _ => {}
        }
    }
    match (control, mac_string, bulk_in, bulk_out) {
        (Some(control_interface), Some(mac_string), Some(i), Some(o)) => Ok(EcmFunction {
            control_interface,
            data_interface: current.0,
            data_alternate: current.1,
            bulk_in: i.address,
            bulk_in_max_packet: i.max_packet_size,
            bulk_out: o.address,
            bulk_out_max_packet: o.max_packet_size,
            mac_string,
            max_segment_size,
        }),
        _ => Err(Error::NotFound),
    }
}

/// Parses the MAC address from the ASCII text of the `iMACAddress` string: 12 hex digits.
pub fn parse_mac(text: &[u8]) -> Result<[u8; 6], Error> {
    if text.len() != 12 {
        return Err(Error::BadLength);
    }
    let mut mac = [0u8; 6];
    for (byte, pair) in mac.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(Error::BadValue),
        };
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Ok(mac)
}

/// The SET_ETHERNET_PACKET_FILTER request for `interface` with the filter bits `filter`.
pub fn set_packet_filter(interface: u8, filter: u16) -> Setup {
    Setup {
        request_type: TYPE_CLASS | RECIPIENT_INTERFACE,
        request: SET_ETHERNET_PACKET_FILTER,
        value: filter,
        index: u16::from(interface),
        length: 0,
    }
}

/// True when an OUT frame of `length` bytes must be followed by a zero-length packet: a bulk
/// transfer ends at a short packet, and a frame that fills its last packet has none.
pub fn needs_zero_length_packet(length: usize, max_packet: u16) -> bool {
    max_packet != 0 && length.is_multiple_of(usize::from(max_packet))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of QEMU usb-net's ECM configuration (value 1): control interface 0 with
    /// header, union and Ethernet functional descriptors and an interrupt endpoint; data
    /// interface 1 alternate 0 with no endpoints and alternate 1 with bulk IN 0x82 / OUT 0x02.
    fn ecm_configuration() -> Vec<u8> {
        let mut c = vec![9, 2, 0, 0, 2, 1, 0, 0xc0, 0x32];
        c.extend([9, 4, 0, 0, 1, 2, 6, 0, 0]);
        c.extend([5, 0x24, 0x00, 0x10, 0x01]); // header
        c.extend([5, 0x24, 0x06, 0, 1]); // union: master 0, slave 1
        c.extend([13, 0x24, 0x0f, 3, 0, 0, 0, 0, 0xea, 0x05, 0, 0, 0]); // ethernet, iMAC 3, 1514
        c.extend([7, 5, 0x81, 3, 16, 0, 32]);
        c.extend([9, 4, 1, 0, 0, 0x0a, 0, 0, 0]);
        c.extend([9, 4, 1, 1, 2, 0x0a, 0, 0, 0]);
        c.extend([7, 5, 0x82, 2, 64, 0, 0]);
        c.extend([7, 5, 0x02, 2, 64, 0, 0]);
        let total = c.len() as u16;
        c[2..4].copy_from_slice(&total.to_le_bytes());
        c
    }

    #[test]
    fn finds_usb_net_ecm() {
        let ecm = find_ecm(&ecm_configuration()).unwrap();
        assert_eq!(
            ecm,
            EcmFunction {
                control_interface: 0,
                data_interface: 1,
                data_alternate: 1,
                bulk_in: 0x82,
                bulk_in_max_packet: 64,
                bulk_out: 0x02,
                bulk_out_max_packet: 64,
                mac_string: 3,
                max_segment_size: 1514,
            }
        );
    }

    #[test]
    fn rejects_configurations_without_ecm() {
        // RNDIS-like: class 2 subclass 2, no Ethernet functional descriptor.
        let mut c = ecm_configuration();
        c[9 + 6] = 2;
        assert_eq!(find_ecm(&c), Err(Error::NotFound));
        // Truncated in the middle of the endpoints.
        let c = ecm_configuration();
        let mut cut = c[..c.len() - 3].to_vec();
        let total = c.len() as u16;
        cut[2..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(find_ecm(&cut), Err(Error::Truncated));
        assert_eq!(find_ecm(&[]), Err(Error::Truncated));
    }

    #[test]
    fn mac_text() {
        assert_eq!(parse_mac(b"400102030405"), Ok([0x40, 1, 2, 3, 4, 5]));
        assert_eq!(parse_mac(b"aAbBcCdDeEfF"), Ok([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        assert_eq!(parse_mac(b"40010203040"), Err(Error::BadLength));
        assert_eq!(parse_mac(b"4001020304zz"), Err(Error::BadValue));
    }

    #[test]
    fn packet_filter_and_zlp() {
        let s = set_packet_filter(0, FILTER_DIRECTED | FILTER_BROADCAST | FILTER_ALL_MULTICAST);
        assert_eq!(s.to_bytes(), [0x21, 0x43, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert!(needs_zero_length_packet(128, 64));
        assert!(needs_zero_length_packet(1472, 64));
        assert!(!needs_zero_length_packet(1514, 64));
        assert!(!needs_zero_length_packet(60, 64));
        assert!(!needs_zero_length_packet(60, 0));
    }
}

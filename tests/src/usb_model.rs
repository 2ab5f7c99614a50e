//! Pieces shared by the emulated USB devices served over usbredir: the standard requests of
//! USB 2.0 chapter 9 (descriptors, GET_STATUS, endpoint halt), descriptor builders, and the
//! bulk IN stream that cuts a device's transfers into what the host asks for.

use crate::usbredir::Setup;

/// `bDescriptorType` values (USB 2.0, table 9-5).
pub mod descriptor {
    /// Device.
    pub const DEVICE: u8 = 1;
    /// Configuration.
    pub const CONFIGURATION: u8 = 2;
    /// String.
    pub const STRING: u8 = 3;
    /// Interface.
    pub const INTERFACE: u8 = 4;
    /// Endpoint.
    pub const ENDPOINT: u8 = 5;
    /// Device qualifier (high-speed devices).
    pub const DEVICE_QUALIFIER: u8 = 6;
}

/// The descriptors a device answers GET_DESCRIPTOR with.
#[derive(Clone, Debug)]
pub struct Descriptors {
    /// The 18-byte device descriptor.
    pub device: [u8; 18],
    /// Whole configuration descriptors, by index.
    pub configurations: Vec<Vec<u8>>,
    /// Strings 1.. (index 0 is the language list, US English).
    pub strings: Vec<String>,
}

/// A device descriptor (USB 2.0, table 9-8).
#[allow(clippy::too_many_arguments)]
pub fn device_descriptor(
    class: u8,
    subclass: u8,
    protocol: u8,
    vendor: u16,
    product: u16,
    version: u16,
    strings: [u8; 3],
    configurations: u8,
) -> [u8; 18] {
    let v = vendor.to_le_bytes();
    let p = product.to_le_bytes();
    let d = version.to_le_bytes();
    [
        18,
        descriptor::DEVICE,
        0x00,
        0x02,
        class,
        subclass,
        protocol,
        64,
        v[0],
        v[1],
        p[0],
        p[1],
        d[0],
        d[1],
        strings[0],
        strings[1],
        strings[2],
        configurations,
    ]
}

/// A configuration: header (value `value`, `interfaces` interfaces) followed by `body`, with
/// `wTotalLength` filled in.
pub fn configuration(value: u8, interfaces: u8, attributes: u8, body: &[u8]) -> Vec<u8> {
    let total = (9 + body.len()) as u16;
    let t = total.to_le_bytes();
    let mut c = vec![9, descriptor::CONFIGURATION, t[0], t[1], interfaces, value, 0, attributes, 1];
    c.extend_from_slice(body);
    c
}

/// An interface descriptor.
pub fn interface(number: u8, alternate: u8, endpoints: u8, class: u8, subclass: u8, protocol: u8) -> [u8; 9] {
    [9, descriptor::INTERFACE, number, alternate, endpoints, class, subclass, protocol, 0]
}

/// An endpoint descriptor.
pub fn endpoint(address: u8, attributes: u8, max_packet: u16, interval: u8) -> [u8; 7] {
    let m = max_packet.to_le_bytes();
    [7, descriptor::ENDPOINT, address, attributes, m[0], m[1], interval]
}

/// The outcome of a standard request.
pub enum Standard {
    /// Answered: IN data (empty for OUT requests).
    Answer(Vec<u8>),
    /// Refused: stall.
    Stall,
    /// Not a standard request this helper answers: the device decides.
    NotStandard,
}

/// Endpoint halt bits the standard requests read and change (bit n: OUT endpoint n; bit 16+n:
/// IN endpoint n).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Halts(pub u32);

impl Halts {
    fn bit(endpoint: u8) -> u32 {
        1 << (u32::from(endpoint & 0x0f) + if endpoint & 0x80 != 0 { 16 } else { 0 })
    }

    /// True when `endpoint` is halted.
    pub fn halted(&self, endpoint: u8) -> bool {
        self.0 & Self::bit(endpoint) != 0
    }

    /// Halts or releases `endpoint`.
    pub fn set(&mut self, endpoint: u8, halted: bool) {
        if halted {
            self.0 |= Self::bit(endpoint);
        } else {
            self.0 &= !Self::bit(endpoint);
        }
    }
}

/// Answers the standard requests: GET_DESCRIPTOR (device, configuration, string, device
/// qualifier), GET_STATUS, CLEAR_FEATURE / SET_FEATURE (endpoint halt, device remote wakeup).
/// `endpoint_exists` tells which endpoint addresses the active configuration has.
pub fn standard_request(
    descriptors: &Descriptors,
    halts: &mut Halts,
    setup: &Setup,
    endpoint_exists: impl Fn(u8) -> bool,
) -> Standard {
    if setup.request_type & 0x60 != 0 {
        return Standard::NotStandard;
    }
    let recipient = setup.request_type & 0x1f;
    match (setup.request_type & 0x80 != 0, setup.request) {
        (true, 6) => {
            let [index, kind] = setup.value.to_le_bytes();
            let bytes = match kind {
                descriptor::DEVICE => descriptors.device.to_vec(),
                descriptor::CONFIGURATION => match descriptors.configurations.get(usize::from(index)) {
                    Some(c) => c.clone(),
                    None => return Standard::Stall,
                },
                descriptor::STRING if index == 0 => vec![4, descriptor::STRING, 0x09, 0x04],
                descriptor::STRING => match descriptors.strings.get(usize::from(index) - 1) {
                    Some(text) => {
                        let mut s = vec![(2 + 2 * text.len()) as u8, descriptor::STRING];
                        for unit in text.encode_utf16() {
                            s.extend_from_slice(&unit.to_le_bytes());
                        }
                        s
                    }
                    None => return Standard::Stall,
                },
                descriptor::DEVICE_QUALIFIER => {
                    let d = &descriptors.device;
                    vec![10, descriptor::DEVICE_QUALIFIER, d[2], d[3], d[4], d[5], d[6], d[7], d[17], 0]
                }
                _ => return Standard::Stall,
            };
            Standard::Answer(bytes)
        }
        (true, 0) => match recipient {
            0 => Standard::Answer(vec![1, 0]), // self-powered
            1 => Standard::Answer(vec![0, 0]),
            2 if endpoint_exists(setup.index as u8) || setup.index & 0x0f == 0 => {
                Standard::Answer(vec![u8::from(halts.halted(setup.index as u8)), 0])
            }
            _ => Standard::Stall,
        },
        (false, 1) | (false, 3) => {
            let set = setup.request == 3;
            match (recipient, setup.value) {
                (0, 1) => Standard::Answer(Vec::new()), // DEVICE_REMOTE_WAKEUP
                (2, 0) if endpoint_exists(setup.index as u8) => {
                    halts.set(setup.index as u8, set);
                    Standard::Answer(Vec::new())
                }
                _ => Standard::Stall,
            }
        }
        _ => Standard::Stall,
    }
}

/// The bulk IN side of a device: transfers the device built, handed out in pieces as large as
/// the host's packets ask for, with the zero-length packet a transfer needs when it ends on a
/// packet boundary before the host's buffer is full.
#[derive(Clone, Debug, Default)]
pub struct InStream {
    transfer: Vec<u8>,
    offset: usize,
    zero_length_owed: bool,
}

impl InStream {
    /// True when a transfer is being sent or a zero-length packet is owed.
    pub fn busy(&self) -> bool {
        self.offset < self.transfer.len() || self.zero_length_owed
    }

    /// Drops what is being sent.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Starts sending `transfer` (the caller checked [`Self::busy`] is false).
    pub fn start(&mut self, transfer: Vec<u8>) {
        self.transfer = transfer;
        self.offset = 0;
    }

    /// The next piece for an IN packet of at most `max` bytes, `None` when idle.
    /// `max_packet` is the endpoint's `wMaxPacketSize`, `full` the size after which the host's
    /// buffer is full by agreement (the burst size), 0 for none.
    pub fn next(&mut self, max: usize, max_packet: usize, full: usize) -> Option<Vec<u8>> {
        if self.offset < self.transfer.len() {
            let n = max.min(self.transfer.len() - self.offset);
            let piece = self.transfer[self.offset..self.offset + n].to_vec();
            self.offset += n;
            if self.offset == self.transfer.len() {
                let total = self.transfer.len();
                // The last USB packet was full-sized: the host goes on asking unless the
                // transfer filled the buffer size both sides agreed on.
                self.zero_length_owed =
                    max_packet != 0 && total.is_multiple_of(max_packet) && (full == 0 || total < full);
                self.transfer.clear();
                self.offset = 0;
            }
            return Some(piece);
        }
        if self.zero_length_owed {
            self.zero_length_owed = false;
            return Some(Vec::new());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_stream_cuts_and_ends_transfers() {
        let mut s = InStream::default();
        // A 1,024-byte transfer into a 2,048-byte request: two full packets, then a ZLP.
        s.start(vec![7; 1024]);
        assert_eq!(s.next(2048, 512, 0).map(|v| v.len()), Some(1024));
        assert!(s.busy());
        assert_eq!(s.next(1024, 512, 0), Some(Vec::new()));
        assert!(!s.busy());
        assert_eq!(s.next(512, 512, 0), None);
        // Served in 512-byte requests: the third request gets the ZLP.
        s.start(vec![1; 1024]);
        assert_eq!(s.next(512, 512, 0).map(|v| v.len()), Some(512));
        assert_eq!(s.next(512, 512, 0).map(|v| v.len()), Some(512));
        assert_eq!(s.next(512, 512, 0), Some(Vec::new()));
        // A short transfer needs no ZLP; nor does one of exactly the burst size.
        s.start(vec![1; 700]);
        assert_eq!(s.next(2048, 512, 0).map(|v| v.len()), Some(700));
        assert!(!s.busy());
        s.start(vec![1; 2048]);
        assert_eq!(s.next(2048, 512, 2048).map(|v| v.len()), Some(2048));
        assert!(!s.busy());
    }

    #[test]
    fn standard_descriptors() {
        let descriptors = Descriptors {
            device: device_descriptor(0xff, 0, 0xff, 0x0424, 0xec00, 0x0200, [0, 0, 0], 1),
            configurations: vec![configuration(1, 1, 0xe0, &interface(0, 0, 0, 0xff, 0, 0xff))],
            strings: vec!["ab".into()],
        };
        let mut halts = Halts::default();
        let get = |value: u16, length: u16| Setup { request_type: 0x80, request: 6, value, index: 0, length };
        let Standard::Answer(d) = standard_request(&descriptors, &mut halts, &get(0x0100, 18), |_| false) else {
            panic!()
        };
        assert_eq!(&d[8..12], &[0x24, 0x04, 0x00, 0xec]);
        let Standard::Answer(c) = standard_request(&descriptors, &mut halts, &get(0x0200, 255), |_| false) else {
            panic!()
        };
        assert_eq!((c[2], c[5]), (18, 1));
        let Standard::Answer(s) = standard_request(&descriptors, &mut halts, &get(0x0301, 255), |_| false) else {
            panic!()
        };
        assert_eq!(s, vec![6, 3, b'a', 0, b'b', 0]);
        assert!(matches!(standard_request(&descriptors, &mut halts, &get(0x0201, 255), |_| false), Standard::Stall));
        assert!(matches!(standard_request(&descriptors, &mut halts, &get(0x0302, 255), |_| false), Standard::Stall));
        // CLEAR_FEATURE(ENDPOINT_HALT) on endpoint 2.
        halts.set(0x02, true);
        let clear = Setup { request_type: 0x02, request: 1, value: 0, index: 0x02, length: 0 };
        assert!(matches!(standard_request(&descriptors, &mut halts, &clear, |e| e == 0x02), Standard::Answer(_)));
        assert!(!halts.halted(0x02));
        let vendor = Setup { request_type: 0xc0, request: 0xa1, value: 0, index: 0, length: 4 };
        assert!(matches!(standard_request(&descriptors, &mut halts, &vendor, |_| false), Standard::NotStandard));
    }
}

//! A USB Ethernet adapter with two configurations, served over usbredir: configuration 1
//! (index 0) is a vendor-specific function (interface class 0xff with two bulk endpoints, the
//! way many adapters offer their own protocol first), configuration 2 (index 1) is CDC-ECM
//! (communications interface with header, union and Ethernet functional descriptors and an
//! interrupt endpoint; data interface with alternate 0 empty and alternate 1 holding bulk IN
//! 0x81 and bulk OUT 0x02). High speed, 512-byte bulk packets.
//!
//! The ECM data path: a bulk OUT transfer is one Ethernet frame (it ends with a short or
//! zero-length packet); a received frame is one bulk IN transfer, followed by a zero-length
//! packet when its length is a multiple of 512. Traffic only flows in configuration 2 with
//! the data interface's alternate setting 1, as CDC ECM 1.2 section 3.3 says. The vendor
//! configuration moves no frames.

use std::collections::VecDeque;

use crate::usb_model::{self, Descriptors, Halts, InStream, Standard};
use crate::usbredir::{self, BulkIn, ConnectInfo, Device, Endpoint, Interface, Setup, Speed, Stalled, Status};

/// Bulk IN endpoint.
pub const BULK_IN: u8 = 0x81;
/// Bulk OUT endpoint.
pub const BULK_OUT: u8 = 0x02;
/// Interrupt IN endpoint of the ECM communications interface.
pub const NOTIFY_IN: u8 = 0x83;
/// High-speed bulk max packet size.
pub const MAX_PACKET: usize = 512;
/// `bConfigurationValue` of the ECM configuration.
pub const ECM_CONFIGURATION: u8 = 2;
/// Frames kept while the host does not read.
const QUEUE: usize = 64;

/// The adapter.
pub struct EcmAdapter {
    descriptors: Descriptors,
    mac: [u8; 6],
    configuration: u8,
    data_alternate: u8,
    halts: Halts,
    filter: Option<u16>,
    rx: VecDeque<Vec<u8>>,
    in_stream: InStream,
    tx_partial: Vec<u8>,
    tx_out: Vec<Vec<u8>>,
    notified: bool,
    /// Frames dropped because the queue was full or the data interface was off.
    pub dropped: u64,
}

impl EcmAdapter {
    /// An adapter with MAC address `mac`.
    pub fn new(mac: [u8; 6]) -> Self {
        let vendor = [
            &usb_model::interface(0, 0, 2, 0xff, 0xff, 0x00)[..],
            &usb_model::endpoint(0x81, 2, MAX_PACKET as u16, 0)[..],
            &usb_model::endpoint(0x02, 2, MAX_PACKET as u16, 0)[..],
        ]
        .concat();
        let ecm = [
            &usb_model::interface(0, 0, 1, 0x02, 0x06, 0x00)[..],
            &[5, 0x24, 0x00, 0x10, 0x01][..], // header, CDC 1.10
            &[5, 0x24, 0x06, 0, 1][..],       // union: 0 controls 1
            &[13, 0x24, 0x0f, 3, 0, 0, 0, 0, 0xea, 0x05, 0, 0, 0][..], // Ethernet: iMACAddress 3, 1514
            &usb_model::endpoint(NOTIFY_IN, 3, 16, 8)[..],
            &usb_model::interface(1, 0, 0, 0x0a, 0x00, 0x00)[..],
            &usb_model::interface(1, 1, 2, 0x0a, 0x00, 0x00)[..],
            &usb_model::endpoint(BULK_IN, 2, MAX_PACKET as u16, 0)[..],
            &usb_model::endpoint(BULK_OUT, 2, MAX_PACKET as u16, 0)[..],
        ]
        .concat();
        let mac_text = hex::encode_upper(mac);
        let descriptors = Descriptors {
            device: usb_model::device_descriptor(0x00, 0x00, 0x00, 0x1209, 0x0001, 0x0100, [1, 2, 0], 2),
            configurations: vec![
                usb_model::configuration(1, 1, 0x80, &vendor),
                usb_model::configuration(ECM_CONFIGURATION, 2, 0x80, &ecm),
            ],
            strings: vec!["jos tests".into(), "two-configuration Ethernet adapter".into(), mac_text],
        };
        Self {
            descriptors,
            mac,
            configuration: 0,
            data_alternate: 0,
            halts: Halts::default(),
            filter: None,
            rx: VecDeque::new(),
            in_stream: InStream::default(),
            tx_partial: Vec::new(),
            tx_out: Vec::new(),
            notified: false,
            dropped: 0,
        }
    }

    /// The packet filter the host set with SET_ETHERNET_PACKET_FILTER.
    pub fn filter(&self) -> Option<u16> {
        self.filter
    }

    fn data_on(&self) -> bool {
        self.configuration == ECM_CONFIGURATION && self.data_alternate == 1
    }
}

impl Device for EcmAdapter {
    fn connect_info(&self) -> ConnectInfo {
        ConnectInfo {
            speed: Speed::High,
            class: 0,
            subclass: 0,
            protocol: 0,
            vendor: 0x1209,
            product: 0x0001,
            version_bcd: 0x0100,
        }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        let bulk = |address| Endpoint {
            address,
            kind: usbredir::transfer::BULK,
            interval: 0,
            interface: 0,
            max_packet: MAX_PACKET as u16,
        };
        match self.configuration {
            1 => vec![bulk(0x81), bulk(0x02)],
            ECM_CONFIGURATION => {
                let mut list = vec![Endpoint {
                    address: NOTIFY_IN,
                    kind: usbredir::transfer::INTERRUPT,
                    interval: 8,
                    interface: 0,
                    max_packet: 16,
                }];
                if self.data_alternate == 1 {
                    list.push(Endpoint { interface: 1, ..bulk(BULK_IN) });
                    list.push(Endpoint { interface: 1, ..bulk(BULK_OUT) });
                }
                list
            }
            _ => Vec::new(),
        }
    }

    fn interfaces(&self) -> Vec<Interface> {
        match self.configuration {
            1 => vec![Interface { number: 0, class: 0xff, subclass: 0xff, protocol: 0 }],
            ECM_CONFIGURATION => vec![
                Interface { number: 0, class: 0x02, subclass: 0x06, protocol: 0 },
                Interface { number: 1, class: 0x0a, subclass: 0, protocol: 0 },
            ],
            _ => Vec::new(),
        }
    }

    fn reset(&mut self) {
        let mac = self.mac;
        *self = Self::new(mac);
    }

    fn control(&mut self, setup: &Setup, _data: &[u8]) -> Result<Vec<u8>, Stalled> {
        let endpoints: Vec<u8> = self.endpoints().iter().map(|e| e.address).collect();
        match usb_model::standard_request(&self.descriptors, &mut self.halts, setup, |e| endpoints.contains(&e)) {
            Standard::Answer(bytes) => return Ok(bytes),
            Standard::Stall => return Err(Stalled),
            Standard::NotStandard => {}
        }
        // SET_ETHERNET_PACKET_FILTER (ECM 1.2, section 6.2.4) to the communications interface.
        if self.configuration == ECM_CONFIGURATION
            && setup.request_type == 0x21
            && setup.request == 0x43
            && setup.index == 0
        {
            self.filter = Some(setup.value);
            return Ok(Vec::new());
        }
        Err(Stalled)
    }

    fn set_configuration(&mut self, value: u8) -> bool {
        if value > 2 {
            return false;
        }
        self.configuration = value;
        self.data_alternate = 0;
        self.halts = Halts::default();
        self.in_stream.clear();
        true
    }

    fn configuration(&self) -> u8 {
        self.configuration
    }

    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        match (self.configuration, interface, alt) {
            (1, 0, 0) | (ECM_CONFIGURATION, 0, 0) => true,
            (ECM_CONFIGURATION, 1, 0 | 1) => {
                self.data_alternate = alt;
                self.in_stream.clear();
                self.notified = false;
                true
            }
            _ => false,
        }
    }

    fn alt_setting(&self, interface: u8) -> Option<u8> {
        match (self.configuration, interface) {
            (1, 0) | (ECM_CONFIGURATION, 0) => Some(0),
            (ECM_CONFIGURATION, 1) => Some(self.data_alternate),
            _ => None,
        }
    }

    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> Status {
        if endpoint != BULK_OUT || self.configuration == 0 || self.halts.halted(endpoint) {
            return Status::Stall;
        }
        if !self.data_on() {
            return Status::Success; // the vendor function swallows its bulk data
        }
        self.tx_partial.extend_from_slice(data);
        if !data.len().is_multiple_of(MAX_PACKET) || data.is_empty() {
            let frame = std::mem::take(&mut self.tx_partial);
            if frame.len() >= 14 {
                self.tx_out.push(frame);
            }
        }
        Status::Success
    }

    fn bulk_in(&mut self, endpoint: u8, max: usize) -> BulkIn {
        if endpoint != BULK_IN || self.configuration == 0 || self.halts.halted(endpoint) {
            return BulkIn::Stall;
        }
        if !self.data_on() {
            return BulkIn::Nak;
        }
        if !self.in_stream.busy() {
            match self.rx.pop_front() {
                Some(frame) => self.in_stream.start(frame),
                None => return BulkIn::Nak,
            }
        }
        match self.in_stream.next(max, MAX_PACKET, 0) {
            Some(piece) => BulkIn::Data(piece),
            None => BulkIn::Nak,
        }
    }

    fn interrupt_in(&mut self, endpoint: u8) -> Option<Vec<u8>> {
        if endpoint != NOTIFY_IN || !self.data_on() || self.notified {
            return None;
        }
        self.notified = true;
        // NETWORK_CONNECTION, connected (CDC 1.2, section 6.3.1).
        Some(vec![0xa1, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00])
    }

    fn wire_receive(&mut self, frame: &[u8]) {
        if !self.data_on() || self.rx.len() >= QUEUE {
            self.dropped += 1;
            return;
        }
        let destination = &frame[..6.min(frame.len())];
        let for_us = destination == self.mac || destination[0] & 1 != 0;
        if for_us {
            self.rx.push_back(frame.to_vec());
        }
    }

    fn wire_transmit(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_configurations_and_data_only_on_ecm_alt_1() {
        let mut a = EcmAdapter::new([2, 0x10, 0x20, 0x30, 0x40, 0x50]);
        let get = |value: u16| Setup { request_type: 0x80, request: 6, value, index: 0, length: 1024 };
        let device = a.control(&get(0x0100), &[]).unwrap();
        assert_eq!(device[17], 2, "two configurations");
        let first = a.control(&get(0x0200), &[]).unwrap();
        assert_eq!((first[5], first[9 + 5]), (1, 0xff), "index 0 is the vendor configuration");
        let second = a.control(&get(0x0201), &[]).unwrap();
        assert_eq!((second[5], second[9 + 5], second[9 + 6]), (2, 0x02, 0x06), "index 1 is CDC-ECM");
        let mac = a.control(&get(0x0303), &[]).unwrap();
        assert_eq!(mac.len(), 2 + 24);
        assert!(a.set_configuration(2));
        let frame = [vec![2, 0x10, 0x20, 0x30, 0x40, 0x50], vec![0u8; 1018]].concat();
        a.wire_receive(&frame);
        assert_eq!(a.dropped, 1, "alternate 0: no traffic");
        assert!(a.set_alt_setting(1, 1));
        a.wire_receive(&frame);
        // 1,024 bytes: two full packets, then the zero-length packet.
        assert_eq!(a.bulk_in(BULK_IN, 2048), BulkIn::Data(frame.clone()));
        assert_eq!(a.bulk_in(BULK_IN, 1024), BulkIn::Data(Vec::new()));
        assert_eq!(a.bulk_in(BULK_IN, 2048), BulkIn::Nak);
        assert_eq!(a.bulk_out(BULK_OUT, &frame[..512]), Status::Success);
        assert_eq!(a.bulk_out(BULK_OUT, &frame[512..]), Status::Success);
        assert!(a.wire_transmit().is_empty(), "no end of transfer yet");
        assert_eq!(a.bulk_out(BULK_OUT, &[]), Status::Success);
        assert_eq!(a.wire_transmit(), vec![frame]);
    }
}

//! The usbredir protocol, usb-host side: serves one emulated USB device to QEMU's `usb-redir`
//! device (the usb-guest) over a stream socket.
//!
//! Written from usbredir's public protocol description ("usb-redirection-protocol", version
//! 0.7): every packet starts with a header `type: u32, length: u32, id: u32 | u64` (all integers
//! little-endian, structures packed); `length` counts the type-specific header and the data
//! after the header. Both sides send `hello` first (always with 32-bit ids); capabilities in it
//! decide the rest: this host offers `connect_device_version`, `ep_info_max_packet_size` and
//! `64bits_ids`, and not `32bits_bulk_length` (so QEMU does not pipeline bulk IN packets and a
//! bulk packet is at most 65,535 bytes) nor buffered bulk receiving.
//!
//! What QEMU 7.2 does with it (hw/usb/redirect.c, read to write this): SET_ADDRESS is handled by
//! QEMU itself (the device never sees its address); SET_CONFIGURATION and SET_INTERFACE become
//! `set_configuration` / `set_alt_setting` commands, answered after fresh `ep_info` and
//! `interface_info`; every other control request arrives as a `control_packet`; each bulk or
//! interrupt-OUT USB packet the host controller issues is one `bulk_packet` /
//! `interrupt_packet`, answered with the same id whenever the device has an answer (a bulk IN
//! packet may wait: that is a NAK); interrupt IN endpoints are polled by this side after
//! `start_interrupt_receiving` and their packets sent unsolicited. A redirected device is one
//! device: QEMU routes packets by address, so a hub and the devices behind it cannot be carried
//! over one connection.
//!
//! [`Decoder`] checks every length before it reads; a malformed stream ends the session with
//! [`Error`], never a panic.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::mpsc;

/// Packet types (the protocol's `usb_redir_*` enumeration).
pub mod kind {
    /// Capabilities exchange, first packet each way.
    pub const HELLO: u32 = 0;
    /// A device is available (host to guest).
    pub const DEVICE_CONNECT: u32 = 1;
    /// The device went away (host to guest).
    pub const DEVICE_DISCONNECT: u32 = 2;
    /// Reset the device (guest to host).
    pub const RESET: u32 = 3;
    /// The interfaces of the active configuration (host to guest).
    pub const INTERFACE_INFO: u32 = 4;
    /// The endpoints of the active configuration (host to guest).
    pub const EP_INFO: u32 = 5;
    /// SET_CONFIGURATION (guest to host).
    pub const SET_CONFIGURATION: u32 = 6;
    /// GET_CONFIGURATION (guest to host).
    pub const GET_CONFIGURATION: u32 = 7;
    /// Answer to the two above (host to guest).
    pub const CONFIGURATION_STATUS: u32 = 8;
    /// SET_INTERFACE (guest to host).
    pub const SET_ALT_SETTING: u32 = 9;
    /// GET_INTERFACE (guest to host).
    pub const GET_ALT_SETTING: u32 = 10;
    /// Answer to the two above (host to guest).
    pub const ALT_SETTING_STATUS: u32 = 11;
    /// Start polling an interrupt IN endpoint (guest to host).
    pub const START_INTERRUPT_RECEIVING: u32 = 15;
    /// Stop polling an interrupt IN endpoint (guest to host).
    pub const STOP_INTERRUPT_RECEIVING: u32 = 16;
    /// Answer to the two above (host to guest).
    pub const INTERRUPT_RECEIVING_STATUS: u32 = 17;
    /// Cancel a data packet still pending (guest to host; `id` names it).
    pub const CANCEL_DATA_PACKET: u32 = 21;
    /// The guest's filter refused the device.
    pub const FILTER_REJECT: u32 = 22;
    /// The guest's device filter, as text.
    pub const FILTER_FILTER: u32 = 23;
    /// The guest saw a disconnect.
    pub const DEVICE_DISCONNECT_ACK: u32 = 24;
    /// A control transfer (both ways, same id).
    pub const CONTROL_PACKET: u32 = 100;
    /// A bulk packet (both ways, same id).
    pub const BULK_PACKET: u32 = 101;
    /// An isochronous packet (not served here).
    pub const ISO_PACKET: u32 = 102;
    /// An interrupt packet (OUT: both ways; IN: host to guest, unsolicited).
    pub const INTERRUPT_PACKET: u32 = 103;
}

/// Capability bit numbers of the `hello` packet.
pub mod cap {
    /// The `device_connect` packet has `device_version_bcd`.
    pub const CONNECT_DEVICE_VERSION: u32 = 1;
    /// `ep_info` has `max_packet_size`.
    pub const EP_INFO_MAX_PACKET_SIZE: u32 = 4;
    /// Packet ids are 64 bits wide.
    pub const IDS_64BIT: u32 = 5;
    /// Bulk packet lengths have 32 bits (`length_high`).
    pub const BULK_LENGTH_32BIT: u32 = 6;
}

/// The capabilities this host offers.
pub const OUR_CAPS: u32 =
    (1 << cap::CONNECT_DEVICE_VERSION) | (1 << cap::EP_INFO_MAX_PACKET_SIZE) | (1 << cap::IDS_64BIT);

/// The status codes of replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Done.
    Success = 0,
    /// Cancelled by the guest.
    Cancelled = 1,
    /// Invalid request.
    Invalid = 2,
    /// I/O error.
    IoError = 3,
    /// The endpoint stalled.
    Stall = 4,
    /// Timed out.
    Timeout = 5,
    /// The device sent more than asked.
    Babble = 6,
}

/// Device speeds of `device_connect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Speed {
    /// 1.5 Mbit/s.
    Low = 0,
    /// 12 Mbit/s.
    Full = 1,
    /// 480 Mbit/s.
    High = 2,
}

/// Endpoint transfer types of `ep_info` (the USB encoding; 255 = no such endpoint).
pub mod transfer {
    /// Control.
    pub const CONTROL: u8 = 0;
    /// Bulk.
    pub const BULK: u8 = 2;
    /// Interrupt.
    pub const INTERRUPT: u8 = 3;
    /// No endpoint at this address.
    pub const INVALID: u8 = 255;
}

/// Why a session ended.
#[derive(Debug)]
pub enum Error {
    /// The socket failed.
    Io(std::io::Error),
    /// The guest sent something impossible (what, as text).
    Protocol(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "usbredir socket: {e}"),
            Error::Protocol(what) => write!(f, "usbredir protocol: {what}"),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// The largest packet body accepted from the guest (a bulk packet carries at most 65,535 bytes
/// without the 32-bit length capability).
pub const MAX_BODY: usize = 70_000;

/// A SETUP packet as the guest's `control_packet` carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// `bmRequestType`.
    pub request_type: u8,
    /// `bRequest`.
    pub request: u8,
    /// `wValue`.
    pub value: u16,
    /// `wIndex`.
    pub index: u16,
    /// `wLength`.
    pub length: u16,
}

impl Setup {
    /// True for a device-to-host request.
    pub fn is_in(&self) -> bool {
        self.request_type & 0x80 != 0
    }
}

/// A packet from the guest, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// `hello`: the guest's version text and capability bits (first word).
    Hello {
        /// Free-form version text.
        version: String,
        /// Capability bits 0..31.
        caps: u32,
    },
    /// `reset`.
    Reset,
    /// `set_configuration`.
    SetConfiguration {
        /// Packet id.
        id: u64,
        /// `bConfigurationValue`.
        value: u8,
    },
    /// `get_configuration`.
    GetConfiguration {
        /// Packet id.
        id: u64,
    },
    /// `set_alt_setting`.
    SetAltSetting {
        /// Packet id.
        id: u64,
        /// Interface number.
        interface: u8,
        /// Alternate setting.
        alt: u8,
    },
    /// `get_alt_setting`.
    GetAltSetting {
        /// Packet id.
        id: u64,
        /// Interface number.
        interface: u8,
    },
    /// `start_interrupt_receiving`.
    StartInterruptReceiving {
        /// Packet id.
        id: u64,
        /// Endpoint address (IN).
        endpoint: u8,
    },
    /// `stop_interrupt_receiving`.
    StopInterruptReceiving {
        /// Packet id.
        id: u64,
        /// Endpoint address (IN).
        endpoint: u8,
    },
    /// `cancel_data_packet` for packet `id`.
    Cancel {
        /// The id of the packet to cancel.
        id: u64,
    },
    /// `control_packet`.
    Control {
        /// Packet id.
        id: u64,
        /// The request.
        setup: Setup,
        /// OUT data (empty for IN requests).
        data: Vec<u8>,
    },
    /// `bulk_packet`.
    Bulk {
        /// Packet id.
        id: u64,
        /// Endpoint address.
        endpoint: u8,
        /// Bytes asked for (IN) or sent (OUT).
        length: usize,
        /// OUT data.
        data: Vec<u8>,
    },
    /// `interrupt_packet` to an OUT endpoint.
    InterruptOut {
        /// Packet id.
        id: u64,
        /// Endpoint address.
        endpoint: u8,
        /// OUT data.
        data: Vec<u8>,
    },
    /// Anything this host ignores (filters, acks, iso, streams): the type.
    Ignored(u32),
}

/// Splits the guest's byte stream into packets.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Ids are 64 bits wide (both sides have the capability). False until the hello exchange.
    pub ids_64: bool,
    /// Bulk lengths carry `length_high` (both sides have the capability).
    pub bulk_32: bool,
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Decoder {
    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn header_len(&self) -> usize {
        if self.ids_64 {
            16
        } else {
            12
        }
    }

    /// The next whole packet, `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        let header = self.header_len();
        if self.buffer.len() < header {
            return Ok(None);
        }
        let kind = le32(&self.buffer, 0);
        let length = le32(&self.buffer, 4) as usize;
        if length > MAX_BODY {
            return Err(Error::Protocol(format!("packet type {kind} claims {length} bytes")));
        }
        if self.buffer.len() < header + length {
            return Ok(None);
        }
        let id = if self.ids_64 {
            u64::from(le32(&self.buffer, 8)) | (u64::from(le32(&self.buffer, 12)) << 32)
        } else {
            u64::from(le32(&self.buffer, 8))
        };
        let body: Vec<u8> = self.buffer[header..header + length].to_vec();
        self.buffer.drain(..header + length);
        self.parse(kind, id, &body).map(Some)
    }

    fn parse(&self, kind: u32, id: u64, body: &[u8]) -> Result<Packet, Error> {
        let need = |n: usize| {
            if body.len() < n {
                Err(Error::Protocol(format!("packet type {kind}: {} bytes, at least {n} needed", body.len())))
            } else {
                Ok(())
            }
        };
        Ok(match kind {
            kind::HELLO => {
                need(64)?;
                let text = &body[..64];
                let end = text.iter().position(|&b| b == 0).unwrap_or(64);
                let caps = if body.len() >= 68 { le32(body, 64) } else { 0 };
                Packet::Hello { version: String::from_utf8_lossy(&text[..end]).into_owned(), caps }
            }
            kind::RESET => Packet::Reset,
            kind::SET_CONFIGURATION => {
                need(1)?;
                Packet::SetConfiguration { id, value: body[0] }
            }
            kind::GET_CONFIGURATION => Packet::GetConfiguration { id },
            kind::SET_ALT_SETTING => {
                need(2)?;
                Packet::SetAltSetting { id, interface: body[0], alt: body[1] }
            }
            kind::GET_ALT_SETTING => {
                need(1)?;
                Packet::GetAltSetting { id, interface: body[0] }
            }
            kind::START_INTERRUPT_RECEIVING => {
                need(1)?;
                Packet::StartInterruptReceiving { id, endpoint: body[0] }
            }
            kind::STOP_INTERRUPT_RECEIVING => {
                need(1)?;
                Packet::StopInterruptReceiving { id, endpoint: body[0] }
            }
            kind::CANCEL_DATA_PACKET => Packet::Cancel { id },
            kind::CONTROL_PACKET => {
                need(10)?;
                let setup = Setup {
                    request: body[1],
                    request_type: body[2],
                    value: le16(body, 4),
                    index: le16(body, 6),
                    length: le16(body, 8),
                };
                let data = body[10..].to_vec();
                if !setup.is_in() && data.len() != usize::from(setup.length) {
                    return Err(Error::Protocol(format!(
                        "control OUT with wLength {} carries {} bytes",
                        setup.length,
                        data.len()
                    )));
                }
                Packet::Control { id, setup, data }
            }
            kind::BULK_PACKET => {
                let fixed = if self.bulk_32 { 10 } else { 8 };
                need(fixed)?;
                let endpoint = body[0];
                let mut length = usize::from(le16(body, 2));
                if self.bulk_32 {
                    length |= usize::from(le16(body, 8)) << 16;
                }
                let data = body[fixed..].to_vec();
                if endpoint & 0x80 == 0 && data.len() != length {
                    return Err(Error::Protocol(format!("bulk OUT of length {length} carries {} bytes", data.len())));
                }
                Packet::Bulk { id, endpoint, length, data }
            }
            kind::INTERRUPT_PACKET => {
                need(4)?;
                Packet::InterruptOut { id, endpoint: body[0], data: body[4..].to_vec() }
            }
            other => Packet::Ignored(other),
        })
    }
}

/// What `device_connect` says about the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectInfo {
    /// Bus speed.
    pub speed: Speed,
    /// `bDeviceClass`.
    pub class: u8,
    /// `bDeviceSubClass`.
    pub subclass: u8,
    /// `bDeviceProtocol`.
    pub protocol: u8,
    /// `idVendor`.
    pub vendor: u16,
    /// `idProduct`.
    pub product: u16,
    /// `bcdDevice`.
    pub version_bcd: u16,
}

/// One endpoint of the active configuration, for `ep_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Endpoint address (bit 7 set for IN).
    pub address: u8,
    /// [`transfer`] type.
    pub kind: u8,
    /// `bInterval`.
    pub interval: u8,
    /// The interface it belongs to.
    pub interface: u8,
    /// `wMaxPacketSize` in bytes.
    pub max_packet: u16,
}

/// One interface of the active configuration, for `interface_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// `bInterfaceNumber`.
    pub number: u8,
    /// `bInterfaceClass`.
    pub class: u8,
    /// `bInterfaceSubClass`.
    pub subclass: u8,
    /// `bInterfaceProtocol`.
    pub protocol: u8,
}

/// A request the device refuses: the endpoint answers STALL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stalled;

/// The answer to a bulk IN packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BulkIn {
    /// Data (possibly empty: a zero-length packet).
    Data(Vec<u8>),
    /// Nothing yet: the packet waits (the device NAKs).
    Nak,
    /// The endpoint is halted.
    Stall,
}

/// An emulated USB device, as the usb-host side serves it.
pub trait Device {
    /// What `device_connect` announces.
    fn connect_info(&self) -> ConnectInfo;
    /// The endpoints of the active configuration and alternate settings (endpoint 0 excluded).
    fn endpoints(&self) -> Vec<Endpoint>;
    /// The interfaces of the active configuration.
    fn interfaces(&self) -> Vec<Interface>;
    /// USB bus reset.
    fn reset(&mut self);
    /// A control request other than SET_ADDRESS, SET_CONFIGURATION and SET_INTERFACE: the IN
    /// data (at most `setup.length` bytes), or an empty vector for OUT.
    fn control(&mut self, setup: &Setup, data: &[u8]) -> Result<Vec<u8>, Stalled>;
    /// SET_CONFIGURATION; false stalls it.
    fn set_configuration(&mut self, value: u8) -> bool;
    /// The active `bConfigurationValue` (0 = unconfigured).
    fn configuration(&self) -> u8;
    /// SET_INTERFACE; false stalls it.
    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool;
    /// GET_INTERFACE.
    fn alt_setting(&self, interface: u8) -> Option<u8>;
    /// A bulk OUT packet.
    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> Status;
    /// A bulk IN packet of at most `max` bytes.
    fn bulk_in(&mut self, endpoint: u8, max: usize) -> BulkIn;
    /// The next packet of interrupt IN endpoint `endpoint`, if it has one.
    fn interrupt_in(&mut self, endpoint: u8) -> Option<Vec<u8>>;
    /// A frame from the Ethernet wire.
    fn wire_receive(&mut self, frame: &[u8]);
    /// Frames the device sent to the wire since the last call.
    fn wire_transmit(&mut self) -> Vec<Vec<u8>>;
}

/// Encodes packets for the guest.
pub struct Encoder {
    /// Ids are 64 bits wide.
    pub ids_64: bool,
    /// Bulk lengths carry `length_high`.
    pub bulk_32: bool,
    /// Peer has `connect_device_version`.
    pub device_version: bool,
    /// Peer has `ep_info_max_packet_size`.
    pub max_packet_size: bool,
}

impl Encoder {
    fn packet(&self, kind: u32, id: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + body.len());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        if self.ids_64 {
            out.extend_from_slice(&id.to_le_bytes());
        } else {
            out.extend_from_slice(&(id as u32).to_le_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    /// `hello` (always with a 32-bit id).
    pub fn hello(version: &str, caps: u32) -> Vec<u8> {
        let mut body = vec![0u8; 64];
        let text = version.as_bytes();
        let n = text.len().min(63);
        body[..n].copy_from_slice(&text[..n]);
        body.extend_from_slice(&caps.to_le_bytes());
        let plain = Encoder { ids_64: false, bulk_32: false, device_version: false, max_packet_size: false };
        plain.packet(kind::HELLO, 0, &body)
    }

    /// `device_connect`.
    pub fn device_connect(&self, info: &ConnectInfo) -> Vec<u8> {
        let mut body = vec![info.speed as u8, info.class, info.subclass, info.protocol];
        body.extend_from_slice(&info.vendor.to_le_bytes());
        body.extend_from_slice(&info.product.to_le_bytes());
        if self.device_version {
            body.extend_from_slice(&info.version_bcd.to_le_bytes());
        }
        self.packet(kind::DEVICE_CONNECT, 0, &body)
    }

    /// `ep_info` for endpoint 0 (control, `max_packet0`) and `endpoints`.
    pub fn ep_info(&self, max_packet0: u16, endpoints: &[Endpoint]) -> Vec<u8> {
        let mut types = [transfer::INVALID; 32];
        let mut intervals = [0u8; 32];
        let mut interfaces = [0u8; 32];
        let mut sizes = [0u16; 32];
        for index in [0usize, 16] {
            types[index] = transfer::CONTROL;
            sizes[index] = max_packet0;
        }
        for e in endpoints {
            let index = usize::from((e.address & 0x80) >> 3 | (e.address & 0x0f));
            types[index] = e.kind;
            intervals[index] = e.interval;
            interfaces[index] = e.interface;
            sizes[index] = e.max_packet;
        }
        let mut body = Vec::with_capacity(160);
        body.extend_from_slice(&types);
        body.extend_from_slice(&intervals);
        body.extend_from_slice(&interfaces);
        if self.max_packet_size {
            for size in sizes {
                body.extend_from_slice(&size.to_le_bytes());
            }
        }
        self.packet(kind::EP_INFO, 0, &body)
    }

    /// `interface_info`.
    pub fn interface_info(&self, interfaces: &[Interface]) -> Vec<u8> {
        let mut numbers = [0u8; 32];
        let mut classes = [0u8; 32];
        let mut subclasses = [0u8; 32];
        let mut protocols = [0u8; 32];
        let count = interfaces.len().min(32);
        for (i, interface) in interfaces.iter().take(32).enumerate() {
            numbers[i] = interface.number;
            classes[i] = interface.class;
            subclasses[i] = interface.subclass;
            protocols[i] = interface.protocol;
        }
        let mut body = (count as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&numbers);
        body.extend_from_slice(&classes);
        body.extend_from_slice(&subclasses);
        body.extend_from_slice(&protocols);
        self.packet(kind::INTERFACE_INFO, 0, &body)
    }

    /// `configuration_status`.
    pub fn configuration_status(&self, id: u64, status: Status, value: u8) -> Vec<u8> {
        self.packet(kind::CONFIGURATION_STATUS, id, &[status as u8, value])
    }

    /// `alt_setting_status`.
    pub fn alt_setting_status(&self, id: u64, status: Status, interface: u8, alt: u8) -> Vec<u8> {
        self.packet(kind::ALT_SETTING_STATUS, id, &[status as u8, interface, alt])
    }

    /// `interrupt_receiving_status`.
    pub fn interrupt_receiving_status(&self, id: u64, status: Status, endpoint: u8) -> Vec<u8> {
        self.packet(kind::INTERRUPT_RECEIVING_STATUS, id, &[status as u8, endpoint])
    }

    /// The answer to a `control_packet`: the request echoed with `status`, the actual length
    /// and, for IN, the data.
    pub fn control_reply(&self, id: u64, setup: &Setup, status: Status, actual: usize, data: &[u8]) -> Vec<u8> {
        let mut body = vec![setup.request_type & 0x80, setup.request, setup.request_type, status as u8];
        body.extend_from_slice(&setup.value.to_le_bytes());
        body.extend_from_slice(&setup.index.to_le_bytes());
        body.extend_from_slice(&(actual as u16).to_le_bytes());
        body.extend_from_slice(data);
        self.packet(kind::CONTROL_PACKET, id, &body)
    }

    /// The answer to a `bulk_packet`: `length` moved, IN data appended.
    pub fn bulk_reply(&self, id: u64, endpoint: u8, status: Status, length: usize, data: &[u8]) -> Vec<u8> {
        let mut body = vec![endpoint, status as u8];
        body.extend_from_slice(&(length as u16).to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes()); // stream id
        if self.bulk_32 {
            body.extend_from_slice(&((length >> 16) as u16).to_le_bytes());
        }
        body.extend_from_slice(data);
        self.packet(kind::BULK_PACKET, id, &body)
    }

    /// An `interrupt_packet` (IN data, or the answer to an OUT packet with no data).
    pub fn interrupt_packet(&self, id: u64, endpoint: u8, status: Status, length: usize, data: &[u8]) -> Vec<u8> {
        let mut body = vec![endpoint, status as u8];
        body.extend_from_slice(&(length as u16).to_le_bytes());
        body.extend_from_slice(data);
        self.packet(kind::INTERRUPT_PACKET, id, &body)
    }
}

/// What the session's main loop waits for.
pub enum Event {
    /// Bytes from the guest.
    Guest(Vec<u8>),
    /// The guest closed the socket (or reading failed).
    GuestClosed,
    /// A frame from the Ethernet wire.
    Frame(Vec<u8>),
}

/// A bulk IN packet the device has not answered yet.
struct PendingIn {
    id: u64,
    endpoint: u8,
    length: usize,
}

/// Serves `device` to one guest: `events` carries what the socket and the wire reader threads
/// read, `guest` is the socket's write half, `wire` sends frames to the Ethernet wire. Returns
/// when the guest closes the socket.
pub fn serve<D: Device>(
    device: &mut D,
    max_packet0: u16,
    version: &str,
    events: &mpsc::Receiver<Event>,
    guest: &mut impl Write,
    wire: &mut dyn FnMut(&[u8]),
) -> Result<(), Error> {
    guest.write_all(&Encoder::hello(version, OUR_CAPS))?;
    let mut decoder = Decoder::default();
    let mut encoder = Encoder { ids_64: false, bulk_32: false, device_version: false, max_packet_size: false };
    let mut greeted = false;
    let mut pending: VecDeque<PendingIn> = VecDeque::new();
    let mut interrupt_receiving = [false; 16];
    let mut interrupt_id = 0u64;
    let mut out = Vec::new();
    loop {
        let event = match events.recv() {
            Ok(event) => event,
            Err(_) => return Ok(()),
        };
        match event {
            Event::GuestClosed => return Ok(()),
            Event::Frame(frame) => device.wire_receive(&frame),
            Event::Guest(bytes) => {
                decoder.push(&bytes);
                while let Some(packet) = decoder.next_packet()? {
                    if let Packet::Hello { caps, .. } = &packet {
                        let both = caps & OUR_CAPS;
                        encoder = Encoder {
                            ids_64: both & (1 << cap::IDS_64BIT) != 0,
                            bulk_32: both & (1 << cap::BULK_LENGTH_32BIT) != 0,
                            device_version: both & (1 << cap::CONNECT_DEVICE_VERSION) != 0,
                            max_packet_size: both & (1 << cap::EP_INFO_MAX_PACKET_SIZE) != 0,
                        };
                        decoder.ids_64 = encoder.ids_64;
                        decoder.bulk_32 = encoder.bulk_32;
                        greeted = true;
                        // The device's endpoints and interfaces first, then the connect.
                        out.extend(encoder.ep_info(max_packet0, &device.endpoints()));
                        out.extend(encoder.interface_info(&device.interfaces()));
                        out.extend(encoder.device_connect(&device.connect_info()));
                        continue;
                    }
                    if !greeted {
                        return Err(Error::Protocol("a packet before hello".into()));
                    }
                    handle(device, max_packet0, &encoder, packet, &mut pending, &mut interrupt_receiving, &mut out);
                }
            }
        }
        // Move everything along: frames out, waiting IN packets, interrupt endpoints.
        for frame in device.wire_transmit() {
            wire(&frame);
        }
        let mut still = VecDeque::new();
        while let Some(p) = pending.pop_front() {
            match device.bulk_in(p.endpoint, p.length) {
                BulkIn::Nak => still.push_back(p),
                BulkIn::Data(data) => {
                    out.extend(encoder.bulk_reply(p.id, p.endpoint, Status::Success, data.len(), &data))
                }
                BulkIn::Stall => out.extend(encoder.bulk_reply(p.id, p.endpoint, Status::Stall, 0, &[])),
            }
        }
        pending = still;
        for (number, started) in interrupt_receiving.iter().enumerate() {
            if !*started {
                continue;
            }
            let endpoint = 0x80 | number as u8;
            while let Some(data) = device.interrupt_in(endpoint) {
                out.extend(encoder.interrupt_packet(interrupt_id, endpoint, Status::Success, data.len(), &data));
                interrupt_id += 1;
            }
        }
        if !out.is_empty() {
            guest.write_all(&out)?;
            out.clear();
        }
    }
}

fn handle<D: Device>(
    device: &mut D,
    max_packet0: u16,
    encoder: &Encoder,
    packet: Packet,
    pending: &mut VecDeque<PendingIn>,
    interrupt_receiving: &mut [bool; 16],
    out: &mut Vec<u8>,
) {
    match packet {
        Packet::Hello { .. } | Packet::Ignored(_) => {}
        Packet::Reset => {
            // Pending packets die with the reset (the guest cancels them too).
            device.reset();
            *interrupt_receiving = [false; 16];
            for p in pending.drain(..) {
                out.extend(encoder.bulk_reply(p.id, p.endpoint, Status::Cancelled, 0, &[]));
            }
            out.extend(encoder.ep_info(max_packet0, &device.endpoints()));
            out.extend(encoder.interface_info(&device.interfaces()));
        }
        Packet::SetConfiguration { id, value } => {
            let ok = device.set_configuration(value);
            *interrupt_receiving = [false; 16];
            out.extend(encoder.ep_info(max_packet0, &device.endpoints()));
            out.extend(encoder.interface_info(&device.interfaces()));
            let status = if ok { Status::Success } else { Status::Stall };
            out.extend(encoder.configuration_status(id, status, device.configuration()));
        }
        Packet::GetConfiguration { id } => {
            out.extend(encoder.configuration_status(id, Status::Success, device.configuration()));
        }
        Packet::SetAltSetting { id, interface, alt } => {
            let ok = device.set_alt_setting(interface, alt);
            out.extend(encoder.ep_info(max_packet0, &device.endpoints()));
            out.extend(encoder.interface_info(&device.interfaces()));
            let status = if ok { Status::Success } else { Status::Stall };
            out.extend(encoder.alt_setting_status(id, status, interface, device.alt_setting(interface).unwrap_or(0)));
        }
        Packet::GetAltSetting { id, interface } => match device.alt_setting(interface) {
            Some(alt) => out.extend(encoder.alt_setting_status(id, Status::Success, interface, alt)),
            None => out.extend(encoder.alt_setting_status(id, Status::Stall, interface, 0)),
        },
        Packet::StartInterruptReceiving { id, endpoint } => {
            let known = device.endpoints().iter().any(|e| e.address == endpoint && e.kind == transfer::INTERRUPT);
            if known {
                interrupt_receiving[usize::from(endpoint & 0x0f)] = true;
            }
            let status = if known { Status::Success } else { Status::Stall };
            out.extend(encoder.interrupt_receiving_status(id, status, endpoint));
        }
        Packet::StopInterruptReceiving { id, endpoint } => {
            interrupt_receiving[usize::from(endpoint & 0x0f)] = false;
            out.extend(encoder.interrupt_receiving_status(id, Status::Success, endpoint));
        }
        Packet::Cancel { id } => {
            if let Some(at) = pending.iter().position(|p| p.id == id) {
                let p = pending.remove(at).expect("position is in range");
                out.extend(encoder.bulk_reply(p.id, p.endpoint, Status::Cancelled, 0, &[]));
            }
        }
        Packet::Control { id, setup, data } => match device.control(&setup, &data) {
            Ok(reply) if setup.is_in() => {
                let n = reply.len().min(usize::from(setup.length));
                out.extend(encoder.control_reply(id, &setup, Status::Success, n, &reply[..n]));
            }
            Ok(_) => out.extend(encoder.control_reply(id, &setup, Status::Success, data.len(), &[])),
            Err(Stalled) => out.extend(encoder.control_reply(id, &setup, Status::Stall, 0, &[])),
        },
        Packet::Bulk { id, endpoint, length, data } => {
            if endpoint & 0x80 != 0 {
                if pending.iter().any(|p| p.endpoint == endpoint) {
                    // Keep the order: a later packet waits behind an earlier one.
                    pending.push_back(PendingIn { id, endpoint, length });
                    return;
                }
                match device.bulk_in(endpoint, length) {
                    BulkIn::Nak => pending.push_back(PendingIn { id, endpoint, length }),
                    BulkIn::Data(reply) => {
                        out.extend(encoder.bulk_reply(id, endpoint, Status::Success, reply.len(), &reply))
                    }
                    BulkIn::Stall => out.extend(encoder.bulk_reply(id, endpoint, Status::Stall, 0, &[])),
                }
            } else {
                let status = device.bulk_out(endpoint, &data);
                let moved = if status == Status::Success { data.len() } else { 0 };
                out.extend(encoder.bulk_reply(id, endpoint, status, moved, &[]));
            }
        }
        Packet::InterruptOut { id, endpoint, data } => {
            out.extend(encoder.interrupt_packet(id, endpoint, Status::Success, data.len(), &[]));
        }
    }
}

/// Reads the guest's socket into `events` until it closes.
pub fn spawn_guest_reader(mut socket: impl Read + Send + 'static, events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 65536];
        loop {
            match socket.read(&mut buffer) {
                Ok(0) | Err(_) => {
                    let _ = events.send(Event::GuestClosed);
                    return;
                }
                Ok(n) => {
                    if events.send(Event::Guest(buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_golden_bytes() {
        let bytes = Encoder::hello("x", OUR_CAPS);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[12], b'x');
        assert_eq!(&bytes[76..80], &OUR_CAPS.to_le_bytes());
        let mut decoder = Decoder::default();
        decoder.push(&bytes);
        assert_eq!(decoder.next_packet().unwrap(), Some(Packet::Hello { version: "x".into(), caps: OUR_CAPS }));
        assert_eq!(decoder.next_packet().unwrap(), None);
    }

    #[test]
    fn control_and_bulk_packets_decode() {
        let mut decoder = Decoder { ids_64: true, ..Decoder::default() };
        // A vendor OUT request with 4 bytes, split across two reads.
        let mut packet = Vec::new();
        packet.extend_from_slice(&kind::CONTROL_PACKET.to_le_bytes());
        packet.extend_from_slice(&14u32.to_le_bytes());
        packet.extend_from_slice(&7u64.to_le_bytes());
        packet.extend_from_slice(&[0x00, 0xa0, 0x40, 0, 0, 0, 0x14, 0, 4, 0, 1, 2, 3, 4]);
        decoder.push(&packet[..20]);
        assert_eq!(decoder.next_packet().unwrap(), None);
        decoder.push(&packet[20..]);
        let setup = Setup { request_type: 0x40, request: 0xa0, value: 0, index: 0x14, length: 4 };
        assert_eq!(decoder.next_packet().unwrap(), Some(Packet::Control { id: 7, setup, data: vec![1, 2, 3, 4] }));
        // A bulk IN request for 2048 bytes.
        let mut bulk = Vec::new();
        bulk.extend_from_slice(&kind::BULK_PACKET.to_le_bytes());
        bulk.extend_from_slice(&8u32.to_le_bytes());
        bulk.extend_from_slice(&9u64.to_le_bytes());
        bulk.extend_from_slice(&[0x81, 0, 0x00, 0x08, 0, 0, 0, 0]);
        decoder.push(&bulk);
        assert_eq!(
            decoder.next_packet().unwrap(),
            Some(Packet::Bulk { id: 9, endpoint: 0x81, length: 2048, data: vec![] })
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        let mut decoder = Decoder::default();
        let mut huge = kind::BULK_PACKET.to_le_bytes().to_vec();
        huge.extend_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
        huge.extend_from_slice(&0u32.to_le_bytes());
        decoder.push(&huge);
        assert!(matches!(decoder.next_packet(), Err(Error::Protocol(_))));
        // An OUT bulk packet whose data does not match its length.
        let mut decoder = Decoder::default();
        let mut short = kind::BULK_PACKET.to_le_bytes().to_vec();
        short.extend_from_slice(&9u32.to_le_bytes());
        short.extend_from_slice(&0u32.to_le_bytes());
        short.extend_from_slice(&[0x02, 0, 5, 0, 0, 0, 0, 0, 0xaa]);
        decoder.push(&short);
        assert!(matches!(decoder.next_packet(), Err(Error::Protocol(_))));
        // A control packet too short for its header.
        let mut decoder = Decoder::default();
        let mut control = kind::CONTROL_PACKET.to_le_bytes().to_vec();
        control.extend_from_slice(&3u32.to_le_bytes());
        control.extend_from_slice(&0u32.to_le_bytes());
        control.extend_from_slice(&[0, 0, 0]);
        decoder.push(&control);
        assert!(matches!(decoder.next_packet(), Err(Error::Protocol(_))));
    }

    #[test]
    fn ep_info_layout() {
        let encoder = Encoder { ids_64: true, bulk_32: false, device_version: true, max_packet_size: true };
        let endpoints = [
            Endpoint { address: 0x81, kind: transfer::BULK, interval: 0, interface: 0, max_packet: 512 },
            Endpoint { address: 0x02, kind: transfer::BULK, interval: 0, interface: 0, max_packet: 512 },
        ];
        let bytes = encoder.ep_info(64, &endpoints);
        let body = &bytes[16..];
        assert_eq!(body.len(), 32 * 3 + 64);
        assert_eq!(
            (body[0], body[16], body[17], body[2], body[3]),
            (0, 0, transfer::BULK, transfer::BULK, transfer::INVALID)
        );
        assert_eq!(le16(body, 96 + 17 * 2), 512);
        assert_eq!(le16(body, 96), 64);
        let connect = encoder.device_connect(&ConnectInfo {
            speed: Speed::High,
            class: 0xff,
            subclass: 0,
            protocol: 0xff,
            vendor: 0x0424,
            product: 0xec00,
            version_bcd: 0x0200,
        });
        assert_eq!(&connect[16..], &[2, 0xff, 0, 0xff, 0x24, 0x04, 0x00, 0xec, 0x00, 0x02]);
    }
}

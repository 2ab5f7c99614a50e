//! A fake board for host tests of the USB stack: a host controller that routes transfers to
//! fake devices by address (a hub with ports, a CDC-ECM adapter, an SMSC LAN95xx with a
//! register file and a PHY, anything else), a clock that advances as the stack waits, DMA memory
//! from the heap, and faults to inject (STALL, no answer, garbled descriptors).

use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::host::{Channel, Completion, EndpointType, HostController, Pid, Pipe, Speed, UsbError};
use super::smsc95xx::{self as chip, address};
use crate::drivers::{Clock, DmaMemory, Firmware};

/// HCINT bits the fake reports: channel halted + transfer complete / STALL / NAK / XactErr.
const HALTED: u32 = 1 << 1;
const STALL: u32 = 1 << 3;
const NAK: u32 = 1 << 4;
const XACT_ERR: u32 = 1 << 7;

/// A SETUP packet as the fake saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub request_type: u8,
    pub request: u8,
    pub value: u16,
    pub index: u16,
    pub length: u16,
}

impl Request {
    fn parse(bytes: &[u8]) -> Self {
        Self {
            request_type: bytes[0],
            request: bytes[1],
            value: u16::from_le_bytes([bytes[2], bytes[3]]),
            index: u16::from_le_bytes([bytes[4], bytes[5]]),
            length: u16::from_le_bytes([bytes[6], bytes[7]]),
        }
    }
}

/// What a device does with a control request.
enum Reply {
    Data(Vec<u8>),
    Stall,
    /// Never answers (the transfer times out).
    Silent,
}

/// One hub port.
#[derive(Clone, Debug, Default)]
pub struct Port {
    /// The device index behind the port.
    pub child: Option<usize>,
    /// The speed the port reports for its device.
    pub child_speed: Option<Speed>,
    pub powered: bool,
    pub enabled: bool,
    pub reset_changed: bool,
    pub resets: u32,
}

impl Port {
    /// A port with device `child` of `speed` behind it.
    pub fn with(child: usize, speed: Speed) -> Self {
        Self { child: Some(child), child_speed: Some(speed), ..Default::default() }
    }
}

/// The SMSC chip's state.
#[derive(Debug, Default)]
pub struct Smsc {
    pub registers: BTreeMap<u16, u32>,
    pub phy: [u16; 32],
    /// Every register write, in order (MII_DATA included).
    pub writes: Vec<(u16, u32)>,
    /// Every PHY register write, in order.
    pub phy_writes: Vec<(u8, u16)>,
}

/// What kind of device a fake is.
pub enum Kind {
    Hub { ports: Vec<Port> },
    Ecm { filter: Option<u16> },
    Smsc(Smsc),
    Other,
}

/// One fake device.
pub struct FakeDevice {
    /// The device's speed (hub ports report theirs with [`Port::with`]).
    #[allow(dead_code)]
    pub speed: Speed,
    pub address: Option<u8>,
    /// Reset and not yet addressed: answers address 0.
    pub default: bool,
    pub device_descriptor: Vec<u8>,
    pub configurations: Vec<Vec<u8>>,
    pub strings: Vec<(u8, String)>,
    pub configuration: Option<u8>,
    pub interface: Option<(u16, u16)>,
    pub kind: Kind,
    /// `(bmRequestType, bRequest)` answered with STALL.
    pub stall: Vec<(u8, u8)>,
    /// `(bmRequestType, bRequest)` never answered.
    pub silent: Vec<(u8, u8)>,
    /// Every control request the device received.
    pub requests: Vec<Request>,
    /// Bulk IN transfers waiting to be read (one transfer each).
    pub bulk_in: VecDeque<Vec<u8>>,
    /// Bulk OUT transfers received.
    pub bulk_out: Vec<Vec<u8>>,
    /// Interrupt IN packets waiting (none: NAK).
    pub interrupt_in: VecDeque<Vec<u8>>,
}

impl FakeDevice {
    pub fn new(speed: Speed, device_descriptor: Vec<u8>, configurations: Vec<Vec<u8>>, kind: Kind) -> Self {
        Self {
            speed,
            address: None,
            default: false,
            device_descriptor,
            configurations,
            strings: Vec::new(),
            configuration: None,
            interface: None,
            kind,
            stall: Vec::new(),
            silent: Vec::new(),
            requests: Vec::new(),
            bulk_in: VecDeque::new(),
            bulk_out: Vec::new(),
            interrupt_in: VecDeque::new(),
        }
    }

    pub fn with_string(mut self, index: u8, text: &str) -> Self {
        self.strings.push((index, text.into()));
        self
    }

    pub fn smsc(&self) -> &Smsc {
        match &self.kind {
            Kind::Smsc(smsc) => smsc,
            _ => panic!("not an SMSC device"),
        }
    }

    fn control(&mut self, request: Request, out: &[u8], ports: &mut Vec<(usize, bool)>) -> Reply {
        self.requests.push(request);
        let key = (request.request_type, request.request);
        if self.silent.contains(&key) {
            return Reply::Silent;
        }
        if self.stall.contains(&key) {
            return Reply::Stall;
        }
        match (request.request_type, request.request) {
            (0x80, 6) => {
                let [index, kind] = request.value.to_le_bytes();
                match kind {
                    1 => Reply::Data(self.device_descriptor.clone()),
                    2 => match self.configurations.get(usize::from(index)) {
                        Some(c) => Reply::Data(c.clone()),
                        None => Reply::Stall,
                    },
                    3 if index == 0 => Reply::Data(vec![4, 3, 0x09, 0x04]),
                    3 => match self.strings.iter().find(|(i, _)| *i == index) {
                        Some((_, text)) => {
                            let mut d = vec![(2 + 2 * text.len()) as u8, 3];
                            for c in text.encode_utf16() {
                                d.extend(c.to_le_bytes());
                            }
                            Reply::Data(d)
                        }
                        None => Reply::Stall,
                    },
                    _ => Reply::Stall,
                }
            }
            (0x00, 5) => {
                // Takes effect after the status stage, which this fake folds into the request.
                self.address = Some(request.value as u8);
                self.default = false;
                Reply::Data(Vec::new())
            }
            (0x00, 9) => {
                self.configuration = Some(request.value as u8);
                Reply::Data(Vec::new())
            }
            (0x01, 11) => {
                self.interface = Some((request.index, request.value));
                Reply::Data(Vec::new())
            }
            _ => self.class_request(request, out, ports),
        }
    }

    fn class_request(&mut self, request: Request, out: &[u8], resets: &mut Vec<(usize, bool)>) -> Reply {
        match &mut self.kind {
            Kind::Hub { ports } => {
                let port = usize::from(request.index).wrapping_sub(1);
                match (request.request_type, request.request) {
                    (0xa0, 6) => {
                        let count = ports.len() as u8;
                        Reply::Data(vec![9, 0x29, count, 0, 0, 50, 0, 0, 0xff])
                    }
                    (0xa3, 0) => {
                        let Some(p) = ports.get(port) else { return Reply::Stall };
                        let mut status = 0u16;
                        if p.child.is_some() {
                            status |= 1;
                        }
                        if p.enabled {
                            status |= 2;
                        }
                        if p.powered {
                            status |= 1 << 8;
                        }
                        match p.child_speed {
                            Some(Speed::Low) => status |= 1 << 9,
                            Some(Speed::High) => status |= 1 << 10,
                            _ => {}
                        }
                        let change: u16 = if p.reset_changed { 1 << 4 } else { 0 };
                        let mut reply = status.to_le_bytes().to_vec();
                        reply.extend(change.to_le_bytes());
                        Reply::Data(reply)
                    }
                    (0x23, 3) => {
                        let Some(p) = ports.get_mut(port) else { return Reply::Stall };
                        match request.value {
                            8 => p.powered = true,
                            4 => {
                                if let Some(child) = p.child {
                                    p.enabled = true;
                                    p.reset_changed = true;
                                    p.resets += 1;
                                    resets.push((child, true));
                                }
                            }
                            _ => return Reply::Stall,
                        }
                        Reply::Data(Vec::new())
                    }
                    (0x23, 1) => {
                        let Some(p) = ports.get_mut(port) else { return Reply::Stall };
                        if request.value == 20 {
                            p.reset_changed = false;
                        }
                        Reply::Data(Vec::new())
                    }
                    _ => Reply::Stall,
                }
            }
            Kind::Ecm { filter } if (request.request_type, request.request) == (0x21, 0x43) => {
                *filter = Some(request.value);
                Reply::Data(Vec::new())
            }
            Kind::Smsc(smsc) => match (request.request_type, request.request) {
                (0xc0, 0xa1) => Reply::Data(smsc.read(request.index).to_le_bytes().to_vec()),
                (0x40, 0xa0) if out.len() == 4 => {
                    smsc.write(request.index, u32::from_le_bytes([out[0], out[1], out[2], out[3]]));
                    Reply::Data(Vec::new())
                }
                _ => Reply::Stall,
            },
            _ => Reply::Stall,
        }
    }
}

impl Smsc {
    /// A LAN9512 after power-on: ID_REV 0xEC00 rev 2, the PHY's IDs, link up 100 full.
    pub fn lan9512() -> Self {
        let mut smsc = Smsc::default();
        smsc.registers.insert(address::ID_REV, 0xec00_0002);
        smsc.phy[2] = 0x0007;
        smsc.phy[3] = 0xc0c1;
        smsc.phy[1] = 0x7809 | chip::phy::BMSR_LINK | chip::phy::BMSR_ANEG_COMPLETE;
        smsc.phy[31] = 0x0018; // 100 Mb/s full duplex
        smsc
    }

    fn read(&mut self, register: u16) -> u32 {
        *self.registers.get(&register).unwrap_or(&0)
    }

    fn write(&mut self, register: u16, value: u32) {
        self.writes.push((register, value));
        let mut stored = value;
        match register {
            // Self-clearing resets (datasheet 7.3.5 HW_CFG.LRST, 7.3.8 PM_CTRL.PHY_RST).
            address::HW_CFG => stored &= !chip::value(chip::HW_CFG::LRST::SET),
            address::PM_CTRL => stored &= !chip::value(chip::PM_CTRL::PHY_RST::SET),
            address::INT_STS => stored = 0,
            address::MII_ADDR => {
                let index = ((value >> 6) & 0x1f) as usize;
                if value & chip::value(chip::MII_ADDR::WRITE::SET) != 0 {
                    let data = self.read(address::MII_DATA) as u16;
                    self.phy_writes.push((index as u8, data));
                    self.phy[index] = if index == 0 { data & !chip::phy::BMCR_RESET } else { data };
                } else {
                    self.registers.insert(address::MII_DATA, u32::from(self.phy[index]));
                }
                stored &= !chip::value(chip::MII_ADDR::BUSY::SET);
            }
            _ => {}
        }
        self.registers.insert(register, stored);
    }
}

/// A transfer in progress on a channel.
struct Running {
    pipe: Pipe,
    length: usize,
    pid: Pid,
    /// The result once known; `None`: still running (bulk IN waiting for data, or silent).
    result: Option<Result<usize, UsbError>>,
    /// Waiting for bulk IN data (asked again at each poll).
    waiting_in: Option<usize>,
}

/// Control transfer stages per channel: the request seen in the SETUP stage and OUT data.
#[derive(Default)]
struct ControlState {
    request: Option<(Request, usize)>,
    reply: Vec<u8>,
    out: Vec<u8>,
    silent: bool,
    stalled: bool,
}

/// The fake board.
pub struct FakeBoard {
    now: Cell<u64>,
    claimed: Cell<u16>,
    running: RefCell<Vec<Option<Running>>>,
    control: RefCell<Vec<ControlState>>,
    pub devices: RefCell<Vec<FakeDevice>>,
    pub serial: u64,
    pub configured_mac: Option<[u8; 6]>,
    /// Bytes of DMA memory handed out, and the limit.
    pub dma_used: Cell<usize>,
    pub dma_limit: usize,
    /// Transfers started (all channels).
    pub starts: Cell<u64>,
}

impl FakeBoard {
    /// A board with `devices`; device 0 sits on the root port, already reset.
    pub fn new(devices: Vec<FakeDevice>) -> &'static FakeBoard {
        Self::blank().install(devices)
    }

    /// A board with no devices, not yet leaked (to adjust before [`Self::install`]).
    pub fn blank() -> FakeBoard {
        FakeBoard {
            now: Cell::new(0),
            claimed: Cell::new(0),
            running: RefCell::new((0..8).map(|_| None).collect()),
            control: RefCell::new((0..8).map(|_| ControlState::default()).collect()),
            devices: RefCell::new(Vec::new()),
            serial: 0x1234_5678,
            configured_mac: None,
            dma_used: Cell::new(0),
            dma_limit: 1 << 20,
            starts: Cell::new(0),
        }
    }

    /// Puts `devices` on the board (device 0 on the root port, already reset) and leaks it.
    pub fn install(self, mut devices: Vec<FakeDevice>) -> &'static FakeBoard {
        if let Some(root) = devices.first_mut() {
            root.default = true;
        }
        *self.devices.borrow_mut() = devices;
        Box::leak(Box::new(self))
    }

    /// A board whose firmware configured `mac` (`smsc95xx.macaddr=`).
    pub fn with_mac(devices: Vec<FakeDevice>, mac: [u8; 6]) -> &'static FakeBoard {
        let mut board = Self::blank();
        board.configured_mac = Some(mac);
        board.install(devices)
    }

    /// A board with only `limit` bytes of DMA memory.
    pub fn with_dma_limit(devices: Vec<FakeDevice>, limit: usize) -> &'static FakeBoard {
        let mut board = Self::blank();
        board.dma_limit = limit;
        board.install(devices)
    }

    /// The clock without advancing it.
    pub fn now_micros_peek(&self) -> u64 {
        self.now.get()
    }

    pub fn device(&self, index: usize) -> std::cell::RefMut<'_, FakeDevice> {
        std::cell::RefMut::map(self.devices.borrow_mut(), |d| &mut d[index])
    }

    fn route(&self, address: u8) -> Option<usize> {
        self.devices.borrow().iter().position(|d| if address == 0 { d.default } else { d.address == Some(address) })
    }

    /// Runs a control stage; returns the bytes moved or the error.
    fn control_stage(
        &self,
        channel: usize,
        device: usize,
        pid: Pid,
        pipe: &Pipe,
        buffer: &mut [u8],
        length: usize,
    ) -> Option<Result<usize, UsbError>> {
        let mut states = self.control.borrow_mut();
        let state = &mut states[channel];
        if pid == Pid::Setup {
            let request = Request::parse(&buffer[..8]);
            *state = ControlState { request: Some((request, device)), ..Default::default() };
            if request.request_type & 0x80 != 0 || request.length == 0 {
                self.execute(state, &[]);
            }
            return if state.silent { None } else { Some(Ok(8)) };
        }
        let Some((request, _)) = state.request else { return Some(Err(UsbError::Stall(HALTED | STALL))) };
        if state.silent {
            return None;
        }
        let is_status = length == 0 && (state.reply.is_empty() || pipe.is_in != (request.request_type & 0x80 != 0));
        if !is_status && !pipe.is_in {
            state.out.extend_from_slice(&buffer[..length]);
            return Some(Ok(length));
        }
        if is_status && !pipe.is_in {
            return Some(Ok(0)); // status OUT after an IN data stage
        }
        if is_status && request.request_type & 0x80 == 0 && request.length > 0 {
            let out = core::mem::take(&mut state.out);
            self.execute(state, &out);
        }
        if state.silent {
            return None;
        }
        if state.stalled {
            return Some(Err(UsbError::Stall(HALTED | STALL)));
        }
        if is_status {
            return Some(Ok(0));
        }
        let n = state.reply.len().min(length);
        buffer[..n].copy_from_slice(&state.reply[..n]);
        Some(Ok(n))
    }

    fn execute(&self, state: &mut ControlState, out: &[u8]) {
        let (request, device) = state.request.expect("request");
        let mut resets = Vec::new();
        let reply = self.devices.borrow_mut()[device].control(request, out, &mut resets);
        for (child, reset) in resets {
            let mut devices = self.devices.borrow_mut();
            if reset {
                for other in devices.iter_mut() {
                    other.default = false;
                }
                devices[child].default = true;
                devices[child].address = None;
            }
        }
        match reply {
            Reply::Data(data) => state.reply = data,
            Reply::Stall => state.stalled = true,
            Reply::Silent => state.silent = true,
        }
    }

    fn bulk_in(&self, device: usize, buffer: &mut [u8], length: usize) -> Option<usize> {
        let mut devices = self.devices.borrow_mut();
        let data = devices[device].bulk_in.pop_front()?;
        let n = data.len().min(length).min(buffer.len());
        buffer[..n].copy_from_slice(&data[..n]);
        Some(n)
    }
}

impl Clock for FakeBoard {
    fn now_micros(&self) -> u64 {
        self.now.set(self.now.get() + 1);
        self.now.get()
    }

    fn delay_micros(&self, micros: u32) {
        self.now.set(self.now.get() + u64::from(micros));
    }
}

impl DmaMemory for FakeBoard {
    fn dma_alloc(&self, len: usize, _align: usize) -> Option<&'static mut [u8]> {
        if self.dma_used.get() + len > self.dma_limit {
            return None;
        }
        self.dma_used.set(self.dma_used.get() + len);
        Some(Box::leak(vec![0u8; len].into_boxed_slice()))
    }
}

impl HostController for FakeBoard {
    fn claim_channel(&self) -> Result<Channel, UsbError> {
        let bits = self.claimed.get();
        let free = (!bits).trailing_zeros();
        if free >= 8 {
            return Err(UsbError::NoChannel);
        }
        self.claimed.set(bits | 1 << free);
        Ok(Channel::new(free as u8))
    }

    fn release_channel(&self, channel: Channel) {
        self.claimed.set(self.claimed.get() & !(1 << channel.index()));
    }

    fn start(&self, channel: Channel, pipe: &Pipe, buffer: &mut [u8], length: usize, pid: Pid) -> Result<(), UsbError> {
        assert!(self.claimed.get() & (1 << channel.index()) != 0, "transfer on an unclaimed channel");
        if length > buffer.len() || pipe.max_packet == 0 {
            return Err(UsbError::BadLength);
        }
        self.starts.set(self.starts.get() + 1);
        let mut running = Running { pipe: *pipe, length, pid, result: None, waiting_in: None };
        // Data and status stages go to the device the SETUP went to (SET_ADDRESS takes effect
        // in this fake as soon as the request is seen).
        let target = match (pipe.kind, pid) {
            (EndpointType::Control, Pid::Setup) => self.route(pipe.device),
            (EndpointType::Control, _) => self.control.borrow()[channel.index()].request.map(|(_, device)| device),
            _ => self.route(pipe.device),
        };
        match target {
            None => running.result = Some(Err(UsbError::Transfer(HALTED | XACT_ERR))),
            Some(device) => match pipe.kind {
                EndpointType::Control => {
                    running.result = self.control_stage(channel.index(), device, pid, pipe, buffer, length);
                }
                EndpointType::Bulk if pipe.is_in => {
                    running.waiting_in = Some(device);
                    running.result = self.bulk_in(device, buffer, length).map(Ok);
                }
                EndpointType::Bulk => {
                    self.devices.borrow_mut()[device].bulk_out.push(buffer[..length].to_vec());
                    running.result = Some(Ok(length));
                }
                EndpointType::Interrupt => {
                    let packet = self.devices.borrow_mut()[device].interrupt_in.pop_front();
                    running.result = Some(match packet {
                        Some(data) => {
                            let n = data.len().min(length);
                            buffer[..n].copy_from_slice(&data[..n]);
                            Ok(n)
                        }
                        None => Err(UsbError::Nak(HALTED | NAK)),
                    });
                }
            },
        }
        self.running.borrow_mut()[channel.index()] = Some(running);
        Ok(())
    }

    fn poll(&self, channel: Channel, buffer: &mut [u8]) -> Option<Result<Completion, UsbError>> {
        let mut all = self.running.borrow_mut();
        let running = all[channel.index()].as_mut()?;
        if running.result.is_none() {
            if let Some(device) = running.waiting_in {
                running.result = self.bulk_in(device, buffer, running.length).map(Ok);
            }
        }
        let result = running.result?;
        let running = all[channel.index()].take()?;
        let packets = result.unwrap_or(0).div_ceil(usize::from(running.pipe.max_packet)).max(1);
        let toggled = if packets % 2 == 1 {
            match running.pid {
                Pid::Data0 => Pid::Data1,
                _ => Pid::Data0,
            }
        } else {
            running.pid
        };
        Some(result.map(|length| Completion { length, next_pid: toggled }))
    }

    fn abort(&self, channel: Channel) {
        self.running.borrow_mut()[channel.index()] = None;
    }

    fn status(&self, _channel: Channel) -> u32 {
        0
    }
}

impl Firmware for FakeBoard {
    fn board_serial(&self) -> Option<u64> {
        Some(self.serial)
    }

    fn configured_mac(&self) -> Option<[u8; 6]> {
        self.configured_mac
    }
}

/// Descriptor builders.
pub mod build {
    use std::vec;
    use std::vec::Vec;

    /// An 18-byte device descriptor.
    pub fn device(vendor: u16, product: u16, class: u8, max_packet0: u8, configurations: u8) -> Vec<u8> {
        let [v0, v1] = vendor.to_le_bytes();
        let [p0, p1] = product.to_le_bytes();
        vec![18, 1, 0, 2, class, 0, 0, max_packet0, v0, v1, p0, p1, 0, 1, 0, 2, 0, configurations]
    }

    /// A configuration with value `value` around `body` (interfaces, endpoints, ...).
    pub fn configuration(value: u8, interfaces: u8, body: &[u8]) -> Vec<u8> {
        let total = (9 + body.len()) as u16;
        let [t0, t1] = total.to_le_bytes();
        let mut c = vec![9, 2, t0, t1, interfaces, value, 0, 0xc0, 50];
        c.extend_from_slice(body);
        c
    }

    pub fn interface(number: u8, alternate: u8, endpoints: u8, class: u8, subclass: u8) -> Vec<u8> {
        vec![9, 4, number, alternate, endpoints, class, subclass, 0, 0]
    }

    pub fn endpoint(address: u8, attributes: u8, max_packet: u16, interval: u8) -> Vec<u8> {
        let [m0, m1] = max_packet.to_le_bytes();
        vec![7, 5, address, attributes, m0, m1, interval]
    }

    /// A hub's configuration: one interface of class 9 with its status-change endpoint.
    pub fn hub_configuration() -> Vec<u8> {
        let mut body = interface(0, 0, 1, 9, 0);
        body.extend(endpoint(0x81, 3, 1, 12));
        configuration(1, 1, &body)
    }

    /// A CDC-ECM configuration (value `value`): control interface 0 with the functional
    /// descriptors (iMACAddress 3), data interface 1 alternate 0 (no endpoints) and alternate 1
    /// (bulk IN 0x82, OUT 0x02 of `max_packet`).
    pub fn ecm_configuration(value: u8, max_packet: u16) -> Vec<u8> {
        let mut body = interface(0, 0, 1, 0x02, 0x06);
        body.extend([5, 0x24, 0x00, 0x10, 0x01]);
        body.extend([5, 0x24, 0x06, 0, 1]);
        body.extend([13, 0x24, 0x0f, 3, 0, 0, 0, 0, 0xea, 0x05, 0, 0, 0]);
        body.extend(endpoint(0x81, 3, 16, 32));
        body.extend(interface(1, 0, 0, 0x0a, 0));
        body.extend(interface(1, 1, 2, 0x0a, 0));
        body.extend(endpoint(0x82, 2, max_packet, 0));
        body.extend(endpoint(0x02, 2, max_packet, 0));
        configuration(value, 2, &body)
    }

    /// A vendor-specific configuration (class 0xff, bulk endpoints): no driver here takes it.
    pub fn vendor_configuration(value: u8) -> Vec<u8> {
        let mut body = interface(0, 0, 2, 0xff, 0xff);
        body.extend(endpoint(0x81, 2, 64, 0));
        body.extend(endpoint(0x01, 2, 64, 0));
        configuration(value, 1, &body)
    }

    /// The LAN9512 Ethernet function's configuration: bulk IN 0x81, OUT 0x02, interrupt 0x83.
    pub fn smsc_configuration(max_packet: u16) -> Vec<u8> {
        let mut body = interface(0, 0, 3, 0xff, 0x00);
        body.extend(endpoint(0x81, 2, max_packet, 0));
        body.extend(endpoint(0x02, 2, max_packet, 0));
        body.extend(endpoint(0x83, 3, 16, 4));
        configuration(1, 1, &body)
    }
}

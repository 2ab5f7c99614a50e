//! CDC-ECM (Ethernet Control Model) class driver: selects the ECM function, reads the MAC
//! address, sets the packet filter, and moves Ethernet frames over the bulk endpoints as a
//! smoltcp [`Device`](smoltcp::phy::Device).
//!
//! Frames go through preallocated DMA buffers: a ring of receive buffers of [`RX_BUFFER`] bytes
//! (so a whole frame arrives in one transfer) and a ring of transmit buffers. Nothing is
//! allocated per packet. An OUT frame whose length fills its last packet is followed by a
//! zero-length packet, which is how the device learns the frame ended.

use jos_kcore::usb::descriptor::DeviceDescriptor;
use jos_kcore::usb::ecm::{self as rules, EcmFunction};
use jos_kcore::usb::setup::Setup;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::dwc2::{Channel, Completion, Dwc2, EndpointType, Pid, Pipe, UsbError};
use super::{hal, Bus, Device, Slot};

/// Receive buffers in the ring.
pub const RX_BUFFERS: usize = 8;
/// Bytes per receive buffer: more than one frame, and over QEMU's 1536-byte pacing threshold.
pub const RX_BUFFER: usize = 2048;
/// Transmit buffers in the ring.
pub const TX_BUFFERS: usize = 8;
/// Bytes per transmit buffer.
pub const TX_BUFFER: usize = 1536;
/// Largest Ethernet frame without FCS.
pub const MTU: usize = 1514;
/// A transmit transfer not finished after this long is aborted and its frame dropped.
const TX_TIMEOUT_US: u64 = 200_000;

/// The Ethernet device, once attached.
pub static DEVICE: Slot<EcmDevice> = Slot::new();

/// Receive-side counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct RxCounters {
    /// Frames received (whether the stack or the pre-filter took them).
    pub frames: u64,
    /// Bytes in those frames.
    pub bytes: u64,
    /// Received transfers too short to be Ethernet frames.
    pub runts: u64,
    /// Receive transfers that ended in a USB error.
    pub errors: u64,
    /// The last USB error's HCINT bits.
    pub last_error: u32,
}

/// Transmit-side counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxCounters {
    /// Frames sent.
    pub frames: u64,
    /// Bytes in those frames.
    pub bytes: u64,
    /// Transfers that ended in a USB error or timed out, and frames too long (dropped).
    pub errors: u64,
    /// Times the stack wanted to send and every transmit buffer was in use.
    pub full: u64,
    /// The last USB error's HCINT bits.
    pub last_error: u32,
}

/// Link-level counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Receive side.
    pub rx: RxCounters,
    /// Transmit side.
    pub tx: TxCounters,
}

/// Accepts a configuration that has a CDC-ECM function.
pub fn probe(_device: &DeviceDescriptor, configuration: &[u8]) -> bool {
    rules::find_ecm(configuration).is_ok()
}

/// Selects the data interface, reads the MAC, sets the packet filter and starts receiving.
pub fn attach(bus: &mut Bus, device: &Device, configuration: &[u8]) -> Result<(), UsbError> {
    let function = rules::find_ecm(configuration).map_err(UsbError::Descriptor)?;
    let handle = (device.address, device.max_packet0, device.speed);
    let mut text = [0u8; 32];
    let length = bus.string(device, function.mac_string, &mut text)?;
    let mac = rules::parse_mac(&text[..length]).map_err(UsbError::Descriptor)?;
    bus.control(handle, Setup::set_interface(function.data_interface, function.data_alternate), &mut [])?;
    let filter = rules::FILTER_DIRECTED | rules::FILTER_BROADCAST | rules::FILTER_ALL_MULTICAST;
    if let Err(error) = bus.control(handle, rules::set_packet_filter(function.control_interface, filter), &mut []) {
        // Optional for the device (ECM 1.2, section 6.2.4): keep going with its default filter.
        bus.log(format_args!("usb: ecm: SET_ETHERNET_PACKET_FILTER refused ({error:?}); using the default filter"));
    }
    let ecm = EcmDevice::new(bus.host(), device, &function, mac)?;
    bus.log(format_args!(
        "usb: ecm: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, bulk IN {:#04x} OUT {:#04x}, interface {} alt {}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], function.bulk_in, function.bulk_out,
        function.data_interface, function.data_alternate
    ));
    DEVICE.put(ecm);
    Ok(())
}

/// Receive side: a ring of DMA buffers, one of them armed on the bulk IN channel.
struct RxRing {
    host: &'static Dwc2,
    channel: Channel,
    pipe: Pipe,
    pid: Pid,
    buffers: [&'static mut [u8]; RX_BUFFERS],
    lengths: [usize; RX_BUFFERS],
    /// Oldest filled buffer.
    head: usize,
    /// Filled buffers waiting for the stack.
    filled: usize,
    /// A transfer into buffer `(head + filled) % RX_BUFFERS` is running.
    armed: bool,
    counters: RxCounters,
}

/// Transmit side: a ring of DMA buffers sent in order on the bulk OUT channel.
struct TxRing {
    host: &'static Dwc2,
    channel: Channel,
    pipe: Pipe,
    pid: Pid,
    buffers: [&'static mut [u8]; TX_BUFFERS],
    lengths: [usize; TX_BUFFERS],
    /// Oldest queued frame (the one in flight, if any).
    head: usize,
    /// Queued frames, the one in flight included.
    queued: usize,
    state: TxState,
    started: u64,
    counters: TxCounters,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TxState {
    Idle,
    Frame,
    ZeroLength,
}

/// The CDC-ECM Ethernet device.
pub struct EcmDevice {
    mac: [u8; 6],
    /// The caller checks the IPv4 header and UDP checksums of every received frame before the
    /// stack sees it ([`EcmDevice::rx_checksums_checked`]).
    rx_checksums_checked: bool,
    rx: RxRing,
    tx: TxRing,
}

fn allocate<const N: usize>(size: usize) -> Result<[&'static mut [u8]; N], UsbError> {
    let mut error = false;
    let buffers = core::array::from_fn(|_| {
        hal::dma_alloc(size, 64).unwrap_or_else(|| {
            error = true;
            &mut []
        })
    });
    if error {
        Err(UsbError::NoMemory)
    } else {
        Ok(buffers)
    }
}

impl EcmDevice {
    fn new(host: &'static Dwc2, device: &Device, function: &EcmFunction, mac: [u8; 6]) -> Result<Self, UsbError> {
        let pipe = |address: u8, max_packet: u16| Pipe {
            device: device.address,
            endpoint: address & 0x0f,
            is_in: address & 0x80 != 0,
            kind: EndpointType::Bulk,
            max_packet,
            speed: device.speed,
        };
        let rx = RxRing {
            host,
            channel: host.claim_channel()?,
            pipe: pipe(function.bulk_in, function.bulk_in_max_packet),
            pid: Pid::Data0,
            buffers: allocate::<RX_BUFFERS>(RX_BUFFER)?,
            lengths: [0; RX_BUFFERS],
            head: 0,
            filled: 0,
            armed: false,
            counters: RxCounters::default(),
        };
        let tx = TxRing {
            host,
            channel: host.claim_channel()?,
            pipe: pipe(function.bulk_out, function.bulk_out_max_packet),
            pid: Pid::Data0,
            buffers: allocate::<TX_BUFFERS>(TX_BUFFER)?,
            lengths: [0; TX_BUFFERS],
            head: 0,
            queued: 0,
            state: TxState::Idle,
            started: 0,
            counters: TxCounters::default(),
        };
        let mut ecm = Self { mac, rx_checksums_checked: false, rx, tx };
        ecm.service();
        Ok(ecm)
    }

    /// The device's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Tells the stack (through [`phy::Device::capabilities`]) not to verify the IPv4 header and
    /// UDP checksums of received frames again: the caller promises to drop every frame whose
    /// checksums are wrong before it reaches the stack (the network manager's pre-filter does).
    /// Checksums are still computed for every frame sent; TCP and ICMP checksums are still
    /// verified by the stack. Takes effect for an interface made after the call.
    pub fn rx_checksums_checked(&mut self) {
        self.rx_checksums_checked = true;
    }

    /// The link counters.
    pub fn counters(&self) -> Counters {
        Counters { rx: self.rx.counters, tx: self.tx.counters }
    }

    /// Moves the transfers along: collects a finished receive and re-arms, finishes a send and
    /// starts the next. Never waits.
    pub fn service(&mut self) {
        self.rx.service();
        self.tx.service();
    }
}

impl RxRing {
    fn service(&mut self) {
        if self.armed {
            match self.host.poll(self.channel) {
                None => return,
                Some(Ok(Completion { length, next_pid })) => {
                    self.pid = next_pid;
                    self.armed = false;
                    let index = (self.head + self.filled) % RX_BUFFERS;
                    if length < 14 {
                        self.counters.runts += 1;
                    } else {
                        self.lengths[index] = length;
                        self.filled += 1;
                        self.counters.frames += 1;
                        self.counters.bytes += length as u64;
                    }
                }
                Some(Err(error)) => {
                    self.armed = false;
                    self.counters.errors += 1;
                    self.counters.last_error = hcint(error);
                }
            }
        }
        if !self.armed && self.filled < RX_BUFFERS {
            let index = (self.head + self.filled) % RX_BUFFERS;
            let bus = hal::bus_address(self.buffers[index].as_ptr() as usize);
            hal::clean_for_device(&self.buffers[index][..]);
            if self.host.start(self.channel, &self.pipe, bus, RX_BUFFER, self.pid).is_ok() {
                self.armed = true;
            }
        }
    }
}

impl TxRing {
    fn service(&mut self) {
        if self.state != TxState::Idle {
            match self.host.poll(self.channel) {
                None => {
                    if hal::now_micros() - self.started > TX_TIMEOUT_US {
                        self.counters.last_error = self.host.status(self.channel);
                        self.host.abort(self.channel);
                        self.counters.errors += 1;
                        self.finish();
                    }
                    return;
                }
                Some(Ok(done)) => {
                    self.pid = done.next_pid;
                    let length = self.lengths[self.head];
                    if self.state == TxState::Frame && rules::needs_zero_length_packet(length, self.pipe.max_packet) {
                        let bus = hal::bus_address(self.buffers[self.head].as_ptr() as usize);
                        if self.host.start(self.channel, &self.pipe, bus, 0, self.pid).is_ok() {
                            self.state = TxState::ZeroLength;
                            return;
                        }
                    }
                    self.counters.frames += 1;
                    self.counters.bytes += length as u64;
                    self.finish();
                }
                Some(Err(error)) => {
                    self.counters.errors += 1;
                    self.counters.last_error = hcint(error);
                    self.finish();
                }
            }
        }
        if self.state == TxState::Idle && self.queued > 0 {
            let length = self.lengths[self.head];
            let buffer = &self.buffers[self.head][..length];
            hal::clean_for_device(buffer);
            let bus = hal::bus_address(buffer.as_ptr() as usize);
            if self.host.start(self.channel, &self.pipe, bus, length, self.pid).is_ok() {
                self.state = TxState::Frame;
                self.started = hal::now_micros();
            } else {
                self.counters.errors += 1;
                self.finish();
            }
        }
    }

    fn finish(&mut self) {
        self.state = TxState::Idle;
        self.head = (self.head + 1) % TX_BUFFERS;
        self.queued -= 1;
    }
}

fn hcint(error: UsbError) -> u32 {
    match error {
        UsbError::Timeout(bits) | UsbError::Stall(bits) | UsbError::Nak(bits) | UsbError::Transfer(bits) => bits,
        _ => 0,
    }
}

/// A received frame, lent to the stack.
pub struct RxToken<'a> {
    ring: &'a mut RxRing,
}

/// A transmit buffer, lent to the stack.
pub struct TxToken<'a> {
    ring: &'a mut TxRing,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let index = self.ring.head;
        let length = self.ring.lengths[index];
        let frame = &self.ring.buffers[index][..length];
        hal::invalidate_for_cpu(frame);
        let result = f(frame);
        self.ring.head = (index + 1) % RX_BUFFERS;
        self.ring.filled -= 1;
        result
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
        let index = (self.ring.head + self.ring.queued) % TX_BUFFERS;
        let send = length <= TX_BUFFER;
        let length = length.min(TX_BUFFER);
        let result = f(&mut self.ring.buffers[index][..length]);
        if send {
            self.ring.lengths[index] = length;
            self.ring.queued += 1;
            self.ring.service();
        } else {
            self.ring.counters.errors += 1;
        }
        result
    }
}

impl EcmDevice {
    /// The oldest received frame without consuming it (for the network manager's filters).
    pub fn peek(&self) -> Option<&[u8]> {
        (self.rx.filled > 0).then(|| &self.rx.buffers[self.rx.head][..self.rx.lengths[self.rx.head]])
    }

    /// Answers the oldest received frame without the stack: `reply` gets the frame and a free
    /// transmit buffer, writes its answer there and returns the answer's length, or `None` to
    /// leave the frame for the stack. The frame is consumed and the answer queued (and started)
    /// only when `reply` gave a length. `None` when nothing was received, every transmit buffer
    /// is in use, or `reply` declined.
    pub fn answer(&mut self, reply: impl FnOnce(&[u8], &mut [u8]) -> Option<usize>) -> Option<usize> {
        if self.rx.filled == 0 || self.tx.queued == TX_BUFFERS {
            return None;
        }
        let frame = &self.rx.buffers[self.rx.head][..self.rx.lengths[self.rx.head]];
        hal::invalidate_for_cpu(frame);
        let index = (self.tx.head + self.tx.queued) % TX_BUFFERS;
        let length = reply(frame, &mut self.tx.buffers[index][..])?.min(TX_BUFFER);
        self.tx.lengths[index] = length;
        self.tx.queued += 1;
        self.tx.service();
        self.rx.head = (self.rx.head + 1) % RX_BUFFERS;
        self.rx.filled -= 1;
        Some(length)
    }

    /// Drops the oldest received frame.
    pub fn discard(&mut self) {
        if self.rx.filled > 0 {
            self.rx.head = (self.rx.head + 1) % RX_BUFFERS;
            self.rx.filled -= 1;
            self.rx.service();
        }
    }
}

impl phy::Device for EcmDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        self.service();
        if self.rx.filled == 0 || self.tx.queued == TX_BUFFERS {
            if self.rx.filled > 0 {
                self.tx.counters.full += 1;
            }
            return None;
        }
        Some((RxToken { ring: &mut self.rx }, TxToken { ring: &mut self.tx }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        self.tx.service();
        if self.tx.queued == TX_BUFFERS {
            self.tx.counters.full += 1;
            return None;
        }
        Some(TxToken { ring: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = MTU;
        capabilities.max_burst_size = Some(TX_BUFFERS);
        if self.rx_checksums_checked {
            capabilities.checksum.ipv4 = phy::Checksum::Tx;
            capabilities.checksum.udp = phy::Checksum::Tx;
        }
        capabilities
    }
}

//! The USB Ethernet data path the class drivers share (CDC-ECM, SMSC LAN95xx): rings of DMA
//! buffers on the bulk IN and bulk OUT channels, the framing each chip puts around frames, the
//! link counters, and the smoltcp [`Device`](smoltcp::phy::Device) the network manager drives.
//!
//! Receive: a ring of [`RX_BUFFERS`] DMA buffers, one of them always armed on the bulk IN
//! channel. CDC-ECM puts one frame in each transfer; the SMSC chip puts an RX status word before
//! each frame and several frames in a transfer ([`RxFrames`] walks
//! them), so a buffer is given back only when its last frame is consumed. Transmit: a ring of
//! [`TX_BUFFERS`] buffers sent in order, one frame per transfer (after the SMSC chip's two TX
//! command words); a transfer whose length fills its last packet is followed by a zero-length
//! packet. Nothing is allocated per packet, and nothing here waits.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::ecm as rules;
use super::host::{Channel, Completion, Pid, Pipe, UsbError, UsbPlatform};
use super::smsc95xx::{self as smsc, RxFrames};

/// Receive buffers in the ring.
pub const RX_BUFFERS: usize = 8;
/// Transmit buffers in the ring.
pub const TX_BUFFERS: usize = 8;
/// Bytes per transmit buffer: a whole frame and the SMSC command words.
pub const TX_BUFFER: usize = 1536;
/// Largest Ethernet frame without FCS.
pub const MTU: usize = 1514;
/// A transmit transfer not finished after this long is aborted and its frame dropped.
const TX_TIMEOUT_US: u64 = 200_000;

/// How frames travel in the bulk transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One bare frame per transfer (CDC-ECM).
    Raw,
    /// SMSC LAN95xx: TX command words A and B before each frame; RX status words, `rx_offset`
    /// bytes (HW_CFG.RXDOFF) and several frames per transfer.
    Smsc {
        /// Bytes between an RX status word and its frame.
        rx_offset: usize,
    },
}

/// Receive-side counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct RxCounters {
    /// Frames received (whether the stack or the pre-filter took them).
    pub frames: u64,
    /// Bytes in those frames.
    pub bytes: u64,
    /// Received transfers too short to be Ethernet frames.
    pub runts: u64,
    /// Receive transfers that ended in a USB error, and frames the device marked bad or framed
    /// wrongly (SMSC RX status errors, impossible lengths, a transfer ending inside a frame).
    pub errors: u64,
    /// The last USB error's HCINT bits (or the last bad RX status word).
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

/// What a chip needs besides the data path, serviced with it (the SMSC link monitor).
pub enum Controller<P: UsbPlatform> {
    /// Nothing (CDC-ECM).
    None,
    /// The SMSC LAN95xx's interrupt endpoint and PHY.
    Smsc(super::class::smsc95xx::Controller<P>),
}

/// Receive side: a ring of DMA buffers, one of them armed on the bulk IN channel.
struct RxRing<P: 'static> {
    platform: &'static P,
    channel: Channel,
    pipe: Pipe,
    pid: Pid,
    framing: Framing,
    buffers: [&'static mut [u8]; RX_BUFFERS],
    size: usize,
    lengths: [usize; RX_BUFFERS],
    /// Oldest filled buffer.
    head: usize,
    /// Filled buffers waiting for the stack.
    filled: usize,
    /// A transfer into buffer `(head + filled) % RX_BUFFERS` is running.
    armed: bool,
    /// The head buffer's next unread byte (SMSC: its next status word).
    cursor: usize,
    /// The head buffer's current frame: start and length.
    frame: Option<(usize, usize)>,
    counters: RxCounters,
}

/// Transmit side: a ring of DMA buffers sent in order on the bulk OUT channel.
struct TxRing<P: 'static> {
    platform: &'static P,
    channel: Channel,
    pipe: Pipe,
    pid: Pid,
    framing: Framing,
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

/// A USB Ethernet device.
pub struct EthernetDevice<P: UsbPlatform> {
    mac: [u8; 6],
    /// The caller checks the IPv4 header and UDP checksums of every received frame before the
    /// stack sees it ([`EthernetDevice::rx_checksums_checked`]).
    rx_checksums_checked: bool,
    rx: RxRing<P>,
    tx: TxRing<P>,
    controller: Controller<P>,
}

fn allocate<P: UsbPlatform, const N: usize>(platform: &P, size: usize) -> Result<[&'static mut [u8]; N], UsbError> {
    let mut error = false;
    let buffers = core::array::from_fn(|_| {
        platform.dma_alloc(size, 64).unwrap_or_else(|| {
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

/// The bytes in front of a frame in a transmit buffer.
fn tx_header_len(framing: Framing) -> usize {
    match framing {
        Framing::Raw => 0,
        Framing::Smsc { .. } => smsc::TX_HEADER,
    }
}

impl<P: UsbPlatform> EthernetDevice<P> {
    /// A device on the bulk pipes `bulk_in` and `bulk_out`: claims a channel for each, allocates
    /// the rings (`rx_buffer` bytes per receive buffer) and arms the first receive.
    pub fn new(
        platform: &'static P,
        framing: Framing,
        mac: [u8; 6],
        bulk_in: Pipe,
        bulk_out: Pipe,
        rx_buffer: usize,
        controller: Controller<P>,
    ) -> Result<Self, UsbError> {
        let rx = RxRing {
            platform,
            channel: platform.claim_channel()?,
            pipe: bulk_in,
            pid: Pid::Data0,
            framing,
            buffers: allocate::<P, RX_BUFFERS>(platform, rx_buffer)?,
            size: rx_buffer,
            lengths: [0; RX_BUFFERS],
            head: 0,
            filled: 0,
            armed: false,
            cursor: 0,
            frame: None,
            counters: RxCounters::default(),
        };
        let tx = TxRing {
            platform,
            channel: platform.claim_channel()?,
            pipe: bulk_out,
            pid: Pid::Data0,
            framing,
            buffers: allocate::<P, TX_BUFFERS>(platform, TX_BUFFER)?,
            lengths: [0; TX_BUFFERS],
            head: 0,
            queued: 0,
            state: TxState::Idle,
            started: 0,
            counters: TxCounters::default(),
        };
        let mut device = Self { mac, rx_checksums_checked: false, rx, tx, controller };
        device.service();
        Ok(device)
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
    /// starts the next, and services the chip's controller. Never waits for the wire (the SMSC
    /// link monitor's PHY reads, after a link interrupt, are bounded control transfers).
    pub fn service(&mut self) {
        self.rx.service();
        self.tx.service();
        if let Controller::Smsc(controller) = &mut self.controller {
            controller.service();
        }
    }
}

impl<P: UsbPlatform> RxRing<P> {
    fn service(&mut self) {
        if self.armed {
            let index = (self.head + self.filled) % RX_BUFFERS;
            match self.platform.poll(self.channel, self.buffers[index]) {
                None => return,
                Some(Ok(Completion { length, next_pid })) => {
                    self.pid = next_pid;
                    self.armed = false;
                    match self.framing {
                        Framing::Raw if length < 14 => self.counters.runts += 1,
                        // A zero-length packet ends an SMSC transfer that filled its last
                        // packet (or answers an empty FIFO): nothing to read.
                        Framing::Smsc { .. } if length == 0 => {}
                        _ => {
                            self.lengths[index] = length;
                            self.filled += 1;
                        }
                    }
                }
                Some(Err(error)) => {
                    self.armed = false;
                    self.counters.errors += 1;
                    self.counters.last_error = error.status_bits();
                }
            }
        }
        self.settle();
        self.arm();
    }

    fn arm(&mut self) {
        if !self.armed && self.filled < RX_BUFFERS {
            let index = (self.head + self.filled) % RX_BUFFERS;
            if self.platform.start(self.channel, &self.pipe, self.buffers[index], self.size, self.pid).is_ok() {
                self.armed = true;
            }
        }
    }

    /// Finds the head buffer's next frame, counting what it skips, and gives back buffers that
    /// have no frame left.
    fn settle(&mut self) {
        while self.frame.is_none() && self.filled > 0 {
            let head = self.head;
            let length = self.lengths[head];
            let found = match self.framing {
                Framing::Raw if self.cursor == 0 => {
                    self.cursor = length;
                    Some((0, length.min(self.size)))
                }
                Framing::Raw => None,
                Framing::Smsc { rx_offset } => {
                    let buffer = &self.buffers[head][..length.min(self.size)];
                    let mut walk = RxFrames::new(buffer, self.cursor, rx_offset, false);
                    let item = walk.next();
                    self.cursor = walk.position();
                    match item {
                        None => None,
                        Some(Ok(frame)) => Some((frame.start, frame.length)),
                        Some(Err(error)) => {
                            self.counters.errors += 1;
                            self.counters.last_error = match error {
                                smsc::RxError::Errored(status) | smsc::RxError::BadLength(status) => status,
                                smsc::RxError::Truncated => 0,
                            };
                            continue;
                        }
                    }
                }
            };
            match found {
                Some((start, len)) => {
                    self.counters.frames += 1;
                    self.counters.bytes += len as u64;
                    self.frame = Some((start, len));
                }
                None => {
                    self.head = (head + 1) % RX_BUFFERS;
                    self.filled -= 1;
                    self.cursor = 0;
                }
            }
        }
    }

    /// The current frame.
    fn current(&self) -> Option<&[u8]> {
        let (start, length) = self.frame?;
        Some(&self.buffers[self.head][start..start + length])
    }

    /// Done with the current frame.
    fn consume(&mut self) {
        self.frame = None;
        self.settle();
        self.arm();
    }
}

impl<P: UsbPlatform> TxRing<P> {
    fn service(&mut self) {
        if self.state != TxState::Idle {
            match self.platform.poll(self.channel, self.buffers[self.head]) {
                None => {
                    if self.platform.now_micros().saturating_sub(self.started) > TX_TIMEOUT_US {
                        self.counters.last_error = self.platform.status(self.channel);
                        self.platform.abort(self.channel);
                        self.counters.errors += 1;
                        self.finish();
                    }
                    return;
                }
                Some(Ok(done)) => {
                    self.pid = done.next_pid;
                    let length = self.lengths[self.head];
                    if self.state == TxState::Frame
                        && rules::needs_zero_length_packet(length, self.pipe.max_packet)
                        && self.platform.start(self.channel, &self.pipe, self.buffers[self.head], 0, self.pid).is_ok()
                    {
                        self.state = TxState::ZeroLength;
                        return;
                    }
                    self.counters.frames += 1;
                    self.counters.bytes += (length - tx_header_len(self.framing)) as u64;
                    self.finish();
                }
                Some(Err(error)) => {
                    self.counters.errors += 1;
                    self.counters.last_error = error.status_bits();
                    self.finish();
                }
            }
        }
        if self.state == TxState::Idle && self.queued > 0 {
            let length = self.lengths[self.head];
            if self.platform.start(self.channel, &self.pipe, self.buffers[self.head], length, self.pid).is_ok() {
                self.state = TxState::Frame;
                self.started = self.platform.now_micros();
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

    /// Queues the frame of `length` bytes written at [`tx_header_len`] in buffer `index` (the
    /// next free one): puts the chip's header in front and starts it if the channel is idle.
    /// A frame the buffer or the framing cannot carry is counted and dropped.
    fn queue(&mut self, index: usize, length: usize) {
        let header = tx_header_len(self.framing);
        if header + length > TX_BUFFER || length == 0 {
            self.counters.errors += 1;
            return;
        }
        if let Framing::Smsc { .. } = self.framing {
            match smsc::tx_header(length) {
                Ok(words) => self.buffers[index][..header].copy_from_slice(&words),
                Err(_) => {
                    self.counters.errors += 1;
                    return;
                }
            }
        }
        self.lengths[index] = header + length;
        self.queued += 1;
        self.service();
    }
}

/// A received frame, lent to the stack.
pub struct RxToken<'a, P: 'static> {
    ring: &'a mut RxRing<P>,
}

/// A transmit buffer, lent to the stack.
pub struct TxToken<'a, P: 'static> {
    ring: &'a mut TxRing<P>,
}

impl<P: UsbPlatform> phy::RxToken for RxToken<'_, P> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let result = f(self.ring.current().unwrap_or(&[]));
        self.ring.consume();
        result
    }
}

impl<P: UsbPlatform> phy::TxToken for TxToken<'_, P> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
        let index = (self.ring.head + self.ring.queued) % TX_BUFFERS;
        let header = tx_header_len(self.ring.framing);
        let room = TX_BUFFER - header;
        let result = f(&mut self.ring.buffers[index][header..header + length.min(room)]);
        if length <= room {
            self.ring.queue(index, length);
        } else {
            self.ring.counters.errors += 1;
        }
        result
    }
}

impl<P: UsbPlatform> EthernetDevice<P> {
    /// The oldest received frame without consuming it (for the network manager's filters).
    pub fn peek(&mut self) -> Option<&[u8]> {
        self.rx.settle();
        self.rx.current()
    }

    /// Answers the oldest received frame without the stack: `reply` gets the frame and a free
    /// transmit buffer, writes its answer there and returns the answer's length, or `None` to
    /// leave the frame for the stack. The frame is consumed and the answer queued (and started)
    /// only when `reply` gave a length. `None` when nothing was received, every transmit buffer
    /// is in use, or `reply` declined.
    pub fn answer(&mut self, reply: impl FnOnce(&[u8], &mut [u8]) -> Option<usize>) -> Option<usize> {
        self.rx.settle();
        if self.tx.queued == TX_BUFFERS {
            return None;
        }
        let frame = self.rx.current()?;
        let index = (self.tx.head + self.tx.queued) % TX_BUFFERS;
        let header = tx_header_len(self.tx.framing);
        let length = reply(frame, &mut self.tx.buffers[index][header..])?.min(TX_BUFFER - header);
        self.tx.queue(index, length);
        self.rx.consume();
        Some(length)
    }

    /// Drops the oldest received frame.
    pub fn discard(&mut self) {
        self.rx.settle();
        if self.rx.frame.is_some() {
            self.rx.consume();
        }
    }
}

impl<P: UsbPlatform> phy::Device for EthernetDevice<P> {
    type RxToken<'a> = RxToken<'a, P>;
    type TxToken<'a> = TxToken<'a, P>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_, P>, TxToken<'_, P>)> {
        self.service();
        if self.rx.frame.is_none() || self.tx.queued == TX_BUFFERS {
            if self.rx.frame.is_some() {
                self.tx.counters.full += 1;
            }
            return None;
        }
        Some((RxToken { ring: &mut self.rx }, TxToken { ring: &mut self.tx }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_, P>> {
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

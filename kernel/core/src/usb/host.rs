//! The USB host controller as the stack sees it: channels that run one transfer each, split
//! phase ([`HostController::start`], then [`HostController::poll`] until it reports), and the
//! [`UsbPlatform`] the stack is generic over (controller, clock, DMA memory, firmware).
//!
//! The kernel's DWC2 driver (`kernel/src/board/bcm2835/usb/dwc2.rs`) implements
//! [`HostController`]; host tests use the fake in `crate::usb::fake`.

use crate::drivers::{Clock, DmaMemory, Firmware};

/// Why a USB operation failed. Transfer errors carry the controller's status bits (DWC2:
/// the channel's HCINT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsbError {
    /// The controller's identification register is not the expected core (the value read).
    NotDwc2(u32),
    /// A core reset or FIFO flush did not finish in time.
    ResetTimeout,
    /// Nothing is connected to the root port.
    NoDevice,
    /// The root or hub port did not come out of reset enabled.
    PortNotEnabled,
    /// A transfer did not finish before its deadline (status bits at that moment).
    Timeout(u32),
    /// The endpoint answered STALL (status bits).
    Stall(u32),
    /// An interrupt endpoint answered NAK: no data now (status bits).
    Nak(u32),
    /// Transaction, babble, DMA, frame-overrun or toggle error (status bits).
    Transfer(u32),
    /// No free host channel.
    NoChannel,
    /// The transfer is longer than one channel can move, or the buffer is too small.
    BadLength,
    /// No DMA memory left.
    NoMemory,
    /// A descriptor or reply the device sent is malformed.
    Descriptor(super::Error),
    /// No class driver accepts the device.
    Unsupported,
}

impl UsbError {
    /// The controller status bits a transfer error carries (0 for other errors).
    pub fn status_bits(self) -> u32 {
        match self {
            UsbError::Timeout(bits) | UsbError::Stall(bits) | UsbError::Nak(bits) | UsbError::Transfer(bits) => bits,
            _ => 0,
        }
    }
}

/// Device speed on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 480 Mbit/s.
    High,
    /// 12 Mbit/s.
    Full,
    /// 1.5 Mbit/s.
    Low,
}

/// Endpoint types, numbered as the USB endpoint descriptor and the DWC2's HCCHAR encode them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum EndpointType {
    /// Control.
    Control = 0,
    /// Bulk.
    Bulk = 2,
    /// Interrupt.
    Interrupt = 3,
}

/// Data PIDs, numbered as the DWC2's HCTSIZ encodes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Pid {
    /// DATA0.
    Data0 = 0,
    /// DATA1.
    Data1 = 2,
    /// SETUP (control endpoints only).
    Setup = 3,
}

/// Everything a channel needs to know about an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pipe {
    /// Device address, 0..=127.
    pub device: u8,
    /// Endpoint number, 0..=15.
    pub endpoint: u8,
    /// True for IN.
    pub is_in: bool,
    /// Transfer type.
    pub kind: EndpointType,
    /// Max packet size.
    pub max_packet: u16,
    /// Device speed.
    pub speed: Speed,
}

/// A host channel handed out by [`HostController::claim_channel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel(u8);

impl Channel {
    /// Channel number `index` (controllers hand these out; the stack never makes one up).
    pub const fn new(index: u8) -> Self {
        Self(index)
    }

    /// The channel's number.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The state of a finished transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Bytes moved.
    pub length: usize,
    /// The data toggle for the endpoint's next transfer, as the controller left it.
    pub next_pid: Pid,
}

/// A USB host controller with DMA channels (the DWC2 in host mode).
///
/// `buffer` is the transfer's memory, from [`DmaMemory::dma_alloc`]: [`Self::start`] and
/// [`Self::poll`] get the same slice, and the caller leaves it alone in between (the controller
/// may be writing it). The implementation does the cache maintenance around the transfer.
pub trait HostController {
    /// Claims a free channel.
    fn claim_channel(&self) -> Result<Channel, UsbError>;

    /// Returns an idle channel to the pool.
    fn release_channel(&self, channel: Channel);

    /// Arms `channel` for one transfer of `length` bytes (at most `buffer.len()`) to or from
    /// `pipe`, starting with `pid`.
    fn start(&self, channel: Channel, pipe: &Pipe, buffer: &mut [u8], length: usize, pid: Pid) -> Result<(), UsbError>;

    /// The started transfer's outcome, `None` while it runs. An interrupt endpoint with nothing
    /// to report ends the transfer with [`UsbError::Nak`].
    fn poll(&self, channel: Channel, buffer: &mut [u8]) -> Option<Result<Completion, UsbError>>;

    /// Stops a running transfer (after a timeout).
    fn abort(&self, channel: Channel);

    /// The channel's status bits right now (for error reports).
    fn status(&self, channel: Channel) -> u32;
}

/// Everything the USB stack needs from the board: a host controller, a clock, DMA memory, and
/// the firmware (where a MAC address may come from). Every type with all four is one.
pub trait UsbPlatform: HostController + Clock + DmaMemory + Firmware + 'static {}

impl<T: HostController + Clock + DmaMemory + Firmware + 'static> UsbPlatform for T {}

/// Runs one transfer to completion or until `timeout_us` passes (then aborts it and returns
/// [`UsbError::Timeout`]).
pub fn transfer<P: UsbPlatform>(
    platform: &P,
    channel: Channel,
    pipe: &Pipe,
    buffer: &mut [u8],
    length: usize,
    pid: Pid,
    timeout_us: u64,
) -> Result<Completion, UsbError> {
    platform.start(channel, pipe, buffer, length, pid)?;
    let deadline = platform.now_micros() + timeout_us;
    loop {
        if let Some(result) = platform.poll(channel, buffer) {
            return result;
        }
        if platform.now_micros() > deadline {
            let bits = platform.status(channel);
            platform.abort(channel);
            return Err(UsbError::Timeout(bits));
        }
        platform.relax();
    }
}

//! The USB core: control transfers with retries and deadlines ([`ControlPipe`]), enumeration of
//! the device tree behind the root port ([`Bus::enumerate`]) and the registry of class drivers
//! (hub, SMSC LAN95xx, CDC-ECM). Generic over the board's [`UsbPlatform`], so it runs on the
//! host against the fake controller in `crate::usb::fake`.
//!
//! Enumeration runs once at boot with blocking, deadline-bounded control transfers; the
//! Ethernet device a class driver attaches is kept in the [`Bus`] for the caller to take.

use super::class::{ecm, hub, smsc95xx};
use super::descriptor::{self, ConfigurationHeader, DeviceDescriptor};
use super::ethernet::EthernetDevice;
use super::host::{self, Channel, EndpointType, Pid, Pipe, Speed, UsbError, UsbPlatform};
use super::setup::Setup;

/// Deadline of one control-transfer stage.
pub const CONTROL_TIMEOUT_US: u64 = 500_000;
/// Attempts of a whole control transfer when it ends in a transaction error or timeout.
pub const CONTROL_RETRIES: u32 = 3;
/// Bytes of a control transfer's data stage this stack accepts (configurations are cut here).
pub const CONTROL_BUFFER: usize = 1024;
/// Hub nesting the enumerator follows (USB 2.0 allows five hubs in a chain).
pub const MAX_DEPTH: u8 = 5;

/// Where control transfers to a device go: its address, endpoint 0's max packet size, and its
/// speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint0 {
    /// Bus address (0 before SET_ADDRESS).
    pub address: u8,
    /// Endpoint 0's max packet size.
    pub max_packet: u8,
    /// Device speed.
    pub speed: Speed,
}

/// An addressed device.
#[derive(Clone, Copy, Debug)]
pub struct Device {
    /// Bus address.
    pub address: u8,
    /// Speed.
    pub speed: Speed,
    /// Control endpoint max packet size.
    pub max_packet0: u8,
    /// The device descriptor.
    pub descriptor: DeviceDescriptor,
    /// Hub depth: 0 on the root port.
    pub depth: u8,
}

impl Device {
    /// Where control transfers to this device go.
    pub fn endpoint0(&self) -> Endpoint0 {
        Endpoint0 { address: self.address, max_packet: self.max_packet0, speed: self.speed }
    }

    /// The bulk or interrupt pipe to endpoint `address` (direction in bit 7).
    pub fn pipe(&self, address: u8, kind: EndpointType, max_packet: u16) -> Pipe {
        Pipe {
            device: self.address,
            endpoint: address & 0x0f,
            is_in: address & 0x80 != 0,
            kind,
            max_packet,
            speed: self.speed,
        }
    }
}

/// The class drivers, tried in this order on each configuration of each device: a vendor
/// driver that knows the device by VID:PID (smsc95xx) comes before the class drivers, so an
/// adapter with both a vendor and an ECM configuration goes to the driver that knows it best.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassDriver {
    /// USB hub (class 9).
    Hub,
    /// SMSC LAN95xx Ethernet.
    Smsc95xx,
    /// CDC-ECM Ethernet.
    Ecm,
}

impl ClassDriver {
    /// Every driver, in probing order.
    pub const ALL: [ClassDriver; 3] = [ClassDriver::Hub, ClassDriver::Smsc95xx, ClassDriver::Ecm];

    /// Short name for the log.
    pub fn name(self) -> &'static str {
        match self {
            ClassDriver::Hub => "hub",
            ClassDriver::Smsc95xx => "smsc95xx",
            ClassDriver::Ecm => "cdc-ecm",
        }
    }

    /// True when the driver can drive this device in this configuration.
    pub fn probe(self, device: &DeviceDescriptor, configuration: &[u8]) -> bool {
        match self {
            ClassDriver::Hub => hub::probe(device, configuration),
            ClassDriver::Smsc95xx => smsc95xx::probe(device, configuration),
            ClassDriver::Ecm => ecm::probe(device, configuration),
        }
    }

    fn attach<P: UsbPlatform>(self, bus: &mut Bus<P>, device: &Device, configuration: &[u8]) -> Result<(), UsbError> {
        match self {
            ClassDriver::Hub => hub::attach(bus, device, configuration),
            ClassDriver::Smsc95xx => smsc95xx::attach(bus, device, configuration),
            ClassDriver::Ecm => ecm::attach(bus, device, configuration),
        }
    }
}

/// A control channel with its DMA buffers: blocking, deadline-bounded control transfers to any
/// device. The enumerator has one; a class driver that needs control transfers after boot (the
/// SMSC95xx's register and PHY access) claims its own.
pub struct ControlPipe<P: 'static> {
    platform: &'static P,
    channel: Channel,
    setup: &'static mut [u8],
    data: &'static mut [u8],
}

impl<P: UsbPlatform> ControlPipe<P> {
    /// Claims a channel and DMA buffers for control transfers of up to `data_len` bytes.
    pub fn new(platform: &'static P, data_len: usize) -> Result<Self, UsbError> {
        let setup = platform.dma_alloc(64, 64).ok_or(UsbError::NoMemory)?;
        let data = platform.dma_alloc(data_len.max(64), 64).ok_or(UsbError::NoMemory)?;
        let channel = platform.claim_channel()?;
        Ok(Self { platform, channel, setup, data })
    }

    /// One control transfer to endpoint 0 of `device`. For IN requests the reply lands in
    /// `data`; for OUT, `data` is sent. Returns the data-stage length. A transaction error or
    /// timeout is retried from the SETUP stage, [`CONTROL_RETRIES`] attempts in all, in a later
    /// frame each (1 ms apart, as a URB resubmitted by Linux lands in a later frame; an
    /// immediate retry would hit a device in the same state).
    pub fn control(&mut self, device: Endpoint0, setup: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let mut attempt = 0;
        loop {
            match self.control_once(device, setup, data) {
                Err(UsbError::Transfer(_)) | Err(UsbError::Timeout(_)) if attempt + 1 < CONTROL_RETRIES => {
                    attempt += 1;
                    self.platform.delay_micros(1_000);
                }
                other => return other,
            }
        }
    }

    fn control_once(&mut self, device: Endpoint0, setup: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let length = usize::from(setup.length);
        if length > data.len() || length > self.data.len() {
            return Err(UsbError::BadLength);
        }
        let platform = self.platform;
        let mut pipe = Pipe {
            device: device.address,
            endpoint: 0,
            is_in: false,
            kind: EndpointType::Control,
            max_packet: u16::from(device.max_packet),
            speed: device.speed,
        };
        self.setup[..8].copy_from_slice(&setup.to_bytes());
        host::transfer(platform, self.channel, &pipe, &mut self.setup[..8], 8, Pid::Setup, CONTROL_TIMEOUT_US)?;
        let mut moved = 0;
        if length > 0 {
            pipe.is_in = setup.is_in();
            if !pipe.is_in {
                self.data[..length].copy_from_slice(&data[..length]);
            }
            let done = host::transfer(
                platform,
                self.channel,
                &pipe,
                &mut self.data[..],
                length,
                Pid::Data1,
                CONTROL_TIMEOUT_US,
            )?;
            moved = done.length.min(length);
            if pipe.is_in {
                data[..moved].copy_from_slice(&self.data[..moved]);
            }
        }
        pipe.is_in = !(length > 0 && setup.is_in());
        host::transfer(platform, self.channel, &pipe, &mut self.data[..], 0, Pid::Data1, CONTROL_TIMEOUT_US)?;
        Ok(moved)
    }
}

/// The USB core during enumeration: a control pipe, the next free address, and the Ethernet
/// device once a class driver attached one.
pub struct Bus<P: UsbPlatform> {
    platform: &'static P,
    pipe: ControlPipe<P>,
    next_address: u8,
    console: fn(core::fmt::Arguments),
    ethernet: Option<EthernetDevice<P>>,
}

impl<P: UsbPlatform> Bus<P> {
    /// Takes a channel and DMA buffers for control transfers.
    pub fn new(platform: &'static P, console: fn(core::fmt::Arguments)) -> Result<Self, UsbError> {
        let pipe = ControlPipe::new(platform, CONTROL_BUFFER)?;
        Ok(Self { platform, pipe, next_address: 1, console, ethernet: None })
    }

    /// The board platform (host controller, clock, DMA memory).
    pub fn platform(&self) -> &'static P {
        self.platform
    }

    /// The console sink the USB stack logs to.
    pub fn console(&self) -> fn(core::fmt::Arguments) {
        self.console
    }

    /// Writes a line to the console.
    pub fn log(&self, args: core::fmt::Arguments) {
        (self.console)(args);
    }

    /// Keeps the Ethernet device a class driver attached (the first one wins; a later one is
    /// logged and dropped).
    pub fn set_ethernet(&mut self, device: EthernetDevice<P>) {
        if self.ethernet.is_some() {
            self.log(format_args!("usb: a second Ethernet device is ignored"));
            return;
        }
        self.ethernet = Some(device);
    }

    /// The Ethernet device found during enumeration, if any.
    pub fn take_ethernet(&mut self) -> Option<EthernetDevice<P>> {
        self.ethernet.take()
    }

    /// One control transfer to endpoint 0 of `device` ([`ControlPipe::control`]).
    pub fn control(&mut self, device: Endpoint0, setup: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        self.pipe.control(device, setup, data)
    }

    /// Reads string descriptor `index` as ASCII into `out`; returns its length (0 for index 0).
    pub fn string(&mut self, device: &Device, index: u8, out: &mut [u8]) -> Result<usize, UsbError> {
        if index == 0 {
            return Ok(0);
        }
        let mut raw = [0u8; 255];
        let length =
            self.control(device.endpoint0(), Setup::get_descriptor(descriptor::STRING, index, 0x0409, 255), &mut raw)?;
        descriptor::string_to_ascii(&raw[..length], out).map_err(UsbError::Descriptor)
    }

    /// Enumerates the device that was just reset on a port (root or hub) and hands it to the
    /// first class driver that accepts one of its configurations.
    pub fn enumerate(&mut self, speed: Speed, depth: u8) -> Result<(), UsbError> {
        if depth > MAX_DEPTH {
            return Err(UsbError::Unsupported);
        }
        let mut buffer = [0u8; CONTROL_BUFFER];
        // Only 8 bytes until bMaxPacketSize0 is known (USB 2.0, section 9.1.2 and 5.5.3).
        let default = Endpoint0 { address: 0, max_packet: 8, speed };
        let got = self.control(default, Setup::get_descriptor(descriptor::DEVICE, 0, 0, 8), &mut buffer)?;
        let max_packet0 = DeviceDescriptor::parse_max_packet_size0(&buffer[..got]).map_err(UsbError::Descriptor)?;
        if self.next_address > 127 {
            return Err(UsbError::Unsupported);
        }
        let address = self.next_address;
        self.next_address += 1;
        self.control(Endpoint0 { max_packet: max_packet0, ..default }, Setup::set_address(address), &mut [])?;
        self.platform.delay_micros(10_000); // SET_ADDRESS recovery: 2 ms (USB 2.0, section 9.2.6.3)
        let handle = Endpoint0 { address, max_packet: max_packet0, speed };
        let got = self.control(handle, Setup::get_descriptor(descriptor::DEVICE, 0, 0, 18), &mut buffer)?;
        let descriptor = DeviceDescriptor::parse(&buffer[..got]).map_err(UsbError::Descriptor)?;
        let device = Device { address, speed, max_packet0, descriptor, depth };
        let mut product = [0u8; 48];
        let product_len = self.string(&device, descriptor.product_string, &mut product).unwrap_or(0);
        self.log(format_args!(
            "usb: device {address}: {:04x}:{:04x} class {} {:?} speed, {} configuration(s), \"{}\"",
            descriptor.vendor,
            descriptor.product,
            descriptor.class,
            speed,
            descriptor.configurations,
            core::str::from_utf8(&product[..product_len]).unwrap_or("?"),
        ));
        for index in 0..descriptor.configurations {
            let got =
                self.control(handle, Setup::get_descriptor(descriptor::CONFIGURATION, index, 0, 9), &mut buffer)?;
            let header = ConfigurationHeader::parse(&buffer[..got]).map_err(UsbError::Descriptor)?;
            let total = usize::from(header.total_length).min(CONTROL_BUFFER);
            let got = self.control(
                handle,
                Setup::get_descriptor(descriptor::CONFIGURATION, index, 0, total as u16),
                &mut buffer,
            )?;
            let configuration = &buffer[..got];
            let Some(driver) = ClassDriver::ALL.into_iter().find(|d| d.probe(&descriptor, configuration)) else {
                continue;
            };
            self.log(format_args!(
                "usb: device {address}: configuration index {index} (value {}) -> {}",
                header.value,
                driver.name()
            ));
            self.control(handle, Setup::set_configuration(header.value), &mut [])?;
            return driver.attach(self, &device, &buffer[..got]);
        }
        self.log(format_args!("usb: device {address}: no class driver"));
        Err(UsbError::Unsupported)
    }
}

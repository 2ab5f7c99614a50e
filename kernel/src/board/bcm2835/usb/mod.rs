//! USB host stack: the DWC2 controller driver, the USB core (control transfers, enumeration, a
//! small registry of class drivers), the hub, CDC-ECM and SMSC LAN95xx drivers, and the
//! Ethernet data path the last two share.
//!
//! Enumeration runs once at boot with blocking, deadline-bounded control transfers; the
//! Ethernet data path afterwards is split-phase and polled from the executive. The pure parts
//! (descriptors, requests, hub port bits, ECM rules) are in `jos_kcore::usb`, host-tested.

pub mod dwc2;
pub mod ecm;
pub mod ethernet;
pub mod hal;
pub mod hub;
pub mod smsc95xx;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use jos_kcore::usb::descriptor::{self, ConfigurationHeader, DeviceDescriptor};
use jos_kcore::usb::setup::Setup;

use dwc2::{Channel, Dwc2, EndpointType, Pid, Pipe, Speed, UsbError};

// SAFETY: DWC2_BASE is the only DWC2 block on the BCM2835 and this is its only driver instance.
/// The host controller.
pub static HOST: Dwc2 = unsafe { Dwc2::new(dwc2::DWC2_BASE) };

/// Deadline of one control-transfer stage.
const CONTROL_TIMEOUT_US: u64 = 500_000;
/// Retries of a whole control transfer after a transaction error.
const CONTROL_RETRIES: u32 = 3;
/// Bytes of a control transfer's data stage this stack accepts (configurations are cut here).
pub const CONTROL_BUFFER: usize = 1024;
/// Hub nesting the enumerator follows (USB 2.0 allows five hubs in a chain).
const MAX_DEPTH: u8 = 5;

/// A cell for a driver object that the main loop owns after boot. `with` refuses re-entry, so
/// two `&mut` to the object can never exist.
pub struct Slot<T> {
    value: UnsafeCell<Option<T>>,
    busy: AtomicBool,
}

// SAFETY: access goes through `with`, whose busy flag makes it exclusive; the kernel is
// single-core, and the slots are used from the main loop only (never from interrupt handlers).
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot.
    pub const fn new() -> Self {
        Self { value: UnsafeCell::new(None), busy: AtomicBool::new(false) }
    }

    /// Stores `value` (replacing any earlier one). Refused (value dropped, false) while in use.
    pub fn put(&self, value: T) -> bool {
        self.with_option(|slot| *slot = Some(value)).is_some()
    }

    /// Moves the stored object out, leaving the slot empty.
    pub fn take(&self) -> Option<T> {
        self.with_option(Option::take).flatten()
    }

    /// Runs `f` on the stored object; `None` when the slot is empty or already in use.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.with_option(|slot| slot.as_mut().map(f)).flatten()
    }

    fn with_option<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> Option<R> {
        if self.busy.swap(true, Ordering::Acquire) {
            return None;
        }
        // SAFETY: the busy flag was false and is now true, so this is the only reference.
        let result = f(unsafe { &mut *self.value.get() });
        self.busy.store(false, Ordering::Release);
        Some(result)
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
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

/// A class driver in the registry.
pub struct ClassDriver {
    /// Short name for the log.
    pub name: &'static str,
    /// True when the driver can drive this device in this configuration.
    pub probe: fn(&DeviceDescriptor, &[u8]) -> bool,
    /// Takes the device over; the configuration is already selected.
    pub attach: fn(&mut Bus, &Device, &[u8]) -> Result<(), UsbError>,
}

/// The class drivers, tried in order on each configuration of each device: a vendor driver
/// that knows the device by VID:PID (smsc95xx) comes before the class drivers, so an adapter
/// with both a vendor and an ECM configuration goes to the driver that knows it best.
static DRIVERS: &[ClassDriver] = &[
    ClassDriver { name: "hub", probe: hub::probe, attach: hub::attach },
    ClassDriver { name: "smsc95xx", probe: smsc95xx::probe, attach: smsc95xx::attach },
    ClassDriver { name: "cdc-ecm", probe: ecm::probe, attach: ecm::attach },
];

/// A control channel with its DMA buffers: blocking, deadline-bounded control transfers to any
/// device. The enumerator has one; a class driver that needs control transfers after boot (the
/// SMSC95xx's register and PHY access) claims its own.
pub struct ControlPipe {
    host: &'static Dwc2,
    channel: Channel,
    setup: &'static mut [u8],
    data: &'static mut [u8],
}

impl ControlPipe {
    /// Claims a channel and DMA buffers for control transfers of up to `data_len` bytes.
    pub fn new(host: &'static Dwc2, data_len: usize) -> Result<Self, UsbError> {
        let setup = hal::dma_alloc(64, 64).ok_or(UsbError::NoMemory)?;
        let data = hal::dma_alloc(data_len.max(64), 64).ok_or(UsbError::NoMemory)?;
        let channel = host.claim_channel()?;
        Ok(Self { host, channel, setup, data })
    }

    /// One control transfer to endpoint 0 of `device` (address, max packet, speed). For IN
    /// requests the reply lands in `data`; for OUT, `data` is sent. Returns the data-stage length.
    /// A transaction error or timeout is retried from the SETUP stage, [`CONTROL_RETRIES`]
    /// attempts in all, in a later frame each (1 ms apart, as a URB resubmitted by Linux lands in
    /// a later frame; an immediate retry would hit a device in the same state).
    pub fn control(&mut self, device: (u8, u8, Speed), setup: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        let mut attempt = 0;
        loop {
            match self.control_once(device, setup, data) {
                Err(UsbError::Transfer(_)) | Err(UsbError::Timeout(_)) if attempt + 1 < CONTROL_RETRIES => {
                    attempt += 1;
                    hal::delay_micros(1_000);
                }
                other => return other,
            }
        }
    }

    fn control_once(
        &mut self,
        (address, max_packet0, speed): (u8, u8, Speed),
        setup: Setup,
        data: &mut [u8],
    ) -> Result<usize, UsbError> {
        let length = usize::from(setup.length);
        if length > data.len() || length > self.data.len() {
            return Err(UsbError::BadLength);
        }
        let mut pipe = Pipe {
            device: address,
            endpoint: 0,
            is_in: false,
            kind: EndpointType::Control,
            max_packet: u16::from(max_packet0),
            speed,
        };
        self.setup[..8].copy_from_slice(&setup.to_bytes());
        hal::clean_for_device(&self.setup[..8]);
        let setup_bus = hal::bus_address(self.setup.as_ptr() as usize);
        let data_bus = hal::bus_address(self.data.as_ptr() as usize);
        self.host.transfer(self.channel, &pipe, setup_bus, 8, Pid::Setup, CONTROL_TIMEOUT_US)?;
        let mut moved = 0;
        if length > 0 {
            pipe.is_in = setup.is_in();
            if !pipe.is_in {
                self.data[..length].copy_from_slice(&data[..length]);
                hal::clean_for_device(&self.data[..length]);
            }
            let done = self.host.transfer(self.channel, &pipe, data_bus, length, Pid::Data1, CONTROL_TIMEOUT_US)?;
            moved = done.length.min(length);
            if pipe.is_in {
                hal::invalidate_for_cpu(&self.data[..moved]);
                data[..moved].copy_from_slice(&self.data[..moved]);
            }
        }
        pipe.is_in = !(length > 0 && setup.is_in());
        self.host.transfer(self.channel, &pipe, data_bus, 0, Pid::Data1, CONTROL_TIMEOUT_US)?;
        Ok(moved)
    }
}

/// The USB core during enumeration: a control pipe and the next free address.
pub struct Bus {
    host: &'static Dwc2,
    pipe: ControlPipe,
    next_address: u8,
    console: fn(core::fmt::Arguments),
}

impl Bus {
    /// Takes a channel and DMA buffers for control transfers.
    pub fn new(host: &'static Dwc2, console: fn(core::fmt::Arguments)) -> Result<Self, UsbError> {
        let pipe = ControlPipe::new(host, CONTROL_BUFFER)?;
        Ok(Self { host, pipe, next_address: 1, console })
    }

    /// The host controller.
    pub fn host(&self) -> &'static Dwc2 {
        self.host
    }

    /// The console sink the USB stack logs to.
    pub fn console(&self) -> fn(core::fmt::Arguments) {
        self.console
    }

    /// Writes a line to the console.
    pub fn log(&self, args: core::fmt::Arguments) {
        (self.console)(args);
    }

    /// One control transfer to endpoint 0 of `device` ([`ControlPipe::control`]).
    pub fn control(&mut self, device: (u8, u8, Speed), setup: Setup, data: &mut [u8]) -> Result<usize, UsbError> {
        self.pipe.control(device, setup, data)
    }

    /// Reads string descriptor `index` as ASCII into `out`; returns its length (0 for index 0).
    pub fn string(&mut self, device: &Device, index: u8, out: &mut [u8]) -> Result<usize, UsbError> {
        if index == 0 {
            return Ok(0);
        }
        let mut raw = [0u8; 255];
        let handle = (device.address, device.max_packet0, device.speed);
        let length = self.control(handle, Setup::get_descriptor(descriptor::STRING, index, 0x0409, 255), &mut raw)?;
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
        let got = self.control((0, 8, speed), Setup::get_descriptor(descriptor::DEVICE, 0, 0, 8), &mut buffer)?;
        let max_packet0 = DeviceDescriptor::parse_max_packet_size0(&buffer[..got]).map_err(UsbError::Descriptor)?;
        if self.next_address > 127 {
            return Err(UsbError::Unsupported);
        }
        let address = self.next_address;
        self.next_address += 1;
        self.control((0, max_packet0, speed), Setup::set_address(address), &mut [])?;
        hal::delay_micros(10_000); // SET_ADDRESS recovery: 2 ms (USB 2.0, section 9.2.6.3)
        let handle = (address, max_packet0, speed);
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
            let Some(driver) = DRIVERS.iter().find(|d| (d.probe)(&descriptor, configuration)) else {
                continue;
            };
            self.log(format_args!(
                "usb: device {address}: configuration index {index} (value {}) -> {}",
                header.value, driver.name
            ));
            self.control(handle, Setup::set_configuration(header.value), &mut [])?;
            return (driver.attach)(self, &device, &buffer[..got]);
        }
        self.log(format_args!("usb: device {address}: no class driver"));
        Err(UsbError::Unsupported)
    }
}

/// Brings up the controller and enumerates everything behind the root port. Afterwards
/// [`ethernet::DEVICE`] holds the Ethernet device if one was found.
pub fn start(console: fn(core::fmt::Arguments)) -> Result<(), UsbError> {
    let started = hal::now_micros();
    let speed = HOST.init()?;
    console(format_args!("usb: DWC2 core {:#010x}, root port {:?} speed", HOST.id(), speed));
    let mut bus = Bus::new(&HOST, console)?;
    let result = bus.enumerate(speed, 0);
    console(format_args!("usb: enumeration took {} ms", (hal::now_micros() - started) / 1000));
    result
}

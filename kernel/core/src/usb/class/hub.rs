//! USB hub class driver (USB 2.0, chapter 11): powers the ports, resets each connected one and
//! enumerates the device behind it.
//!
//! Ports are scanned once, at boot; hot-plug is not followed. A full- or low-speed device behind
//! a high-speed hub needs split transactions (HCSPLT), which this driver does not do yet: such a
//! device is reported and skipped. QEMU's hub and its devices are all full speed, so no split is
//! needed there; the Pi 1 B's LAN9512 is a high-speed hub with a high-speed Ethernet function,
//! which also needs none.

use crate::usb::bus::{Bus, Device};
use crate::usb::descriptor::{self, Descriptor, Descriptors, DeviceDescriptor, TransferType};
use crate::usb::host::{self, EndpointType, Pid, Speed, UsbError, UsbPlatform};
use crate::usb::hub::{self as class, HubDescriptor, PortStatus};

/// How long a port may stay in reset before we give up on it.
pub const RESET_TIMEOUT_US: u64 = 500_000;

/// Accepts hubs: device class 9, or an interface of class 9.
pub fn probe(device: &DeviceDescriptor, configuration: &[u8]) -> bool {
    device.class == descriptor::CLASS_HUB
        || Descriptors::new(configuration).is_ok_and(|mut all| {
            all.any(|d| matches!(d, Ok(Descriptor::Interface(i)) if i.class == descriptor::CLASS_HUB))
        })
}

/// Powers every port, then resets and enumerates each connected device.
pub fn attach<P: UsbPlatform>(bus: &mut Bus<P>, hub: &Device, configuration: &[u8]) -> Result<(), UsbError> {
    let handle = hub.endpoint0();
    let mut raw = [0u8; 16];
    let got = bus.control(handle, class::get_hub_descriptor(raw.len() as u16), &mut raw)?;
    let info = HubDescriptor::parse(&raw[..got]).map_err(UsbError::Descriptor)?;
    bus.log(format_args!("usb: hub {}: {} ports", hub.address, info.ports));
    for port in 1..=info.ports {
        bus.control(handle, class::set_port_feature(port, class::PORT_POWER), &mut [])?;
    }
    bus.platform().delay_micros((u32::from(info.power_on_to_good_ms).max(20)) * 1000);
    poll_status_change(bus, hub, configuration);
    let mut found = 0;
    for port in 1..=info.ports {
        let mut status = [0u8; 4];
        let got = bus.control(handle, class::get_port_status(port), &mut status)?;
        let status = PortStatus::parse(&status[..got]).map_err(UsbError::Descriptor)?;
        if !status.connected() {
            continue;
        }
        found += 1;
        match reset_port(bus, hub, port) {
            Ok(speed) if hub.speed == Speed::High && speed != Speed::High => {
                bus.log(format_args!(
                    "usb: hub {} port {port}: {speed:?}-speed device behind a high-speed hub needs split transactions (not implemented)",
                    hub.address
                ));
            }
            Ok(speed) => {
                if let Err(error) = bus.enumerate(speed, hub.depth + 1) {
                    bus.log(format_args!("usb: hub {} port {port}: enumeration failed: {error:?}", hub.address));
                }
            }
            Err(error) => bus.log(format_args!("usb: hub {} port {port}: reset failed: {error:?}", hub.address)),
        }
    }
    if found == 0 {
        bus.log(format_args!("usb: hub {}: no device on any port", hub.address));
    }
    Ok(())
}

/// Resets `port` and returns the speed of its device once the port is enabled.
fn reset_port<P: UsbPlatform>(bus: &mut Bus<P>, hub: &Device, port: u8) -> Result<Speed, UsbError> {
    let handle = hub.endpoint0();
    let platform = bus.platform();
    bus.control(handle, class::set_port_feature(port, class::PORT_RESET), &mut [])?;
    let deadline = platform.now_micros() + RESET_TIMEOUT_US;
    loop {
        platform.delay_micros(10_000);
        let mut raw = [0u8; 4];
        let got = bus.control(handle, class::get_port_status(port), &mut raw)?;
        let status = PortStatus::parse(&raw[..got]).map_err(UsbError::Descriptor)?;
        if status.reset_changed() || (!status.resetting() && status.enabled()) {
            bus.control(handle, class::clear_port_feature(port, class::C_PORT_RESET), &mut [])?;
            bus.control(handle, class::clear_port_feature(port, class::C_PORT_CONNECTION), &mut [])?;
            if !status.enabled() {
                return Err(UsbError::PortNotEnabled);
            }
            platform.delay_micros(10_000); // TRSTRCY
            return Ok(match status.speed() {
                class::Speed::Low => Speed::Low,
                class::Speed::Full => Speed::Full,
                class::Speed::High => Speed::High,
            });
        }
        if platform.now_micros() > deadline {
            return Err(UsbError::PortNotEnabled);
        }
    }
}

/// Reads the hub's status-change bitmap once through its interrupt IN endpoint and logs it.
/// An interrupt endpoint with nothing to report answers NAK, which halts the channel: that is
/// reported as "no change", not as an error.
fn poll_status_change<P: UsbPlatform>(bus: &mut Bus<P>, hub: &Device, configuration: &[u8]) {
    let Some(endpoint) = Descriptors::new(configuration).ok().and_then(|mut all| {
        all.find_map(|d| match d {
            Ok(Descriptor::Endpoint(e)) if e.is_in() && e.transfer_type == TransferType::Interrupt => Some(e),
            _ => None,
        })
    }) else {
        return;
    };
    let platform = bus.platform();
    let Ok(channel) = platform.claim_channel() else { return };
    let Some(buffer) = platform.dma_alloc(64, 64) else {
        platform.release_channel(channel);
        return;
    };
    let pipe = hub.pipe(0x80 | endpoint.number(), EndpointType::Interrupt, endpoint.max_packet_size.clamp(1, 64));
    let length = usize::from(pipe.max_packet);
    match host::transfer(platform, channel, &pipe, buffer, length, Pid::Data0, 50_000) {
        Ok(done) => {
            bus.log(format_args!(
                "usb: hub {}: status change bitmap {:02x?}",
                hub.address,
                &buffer[..done.length.min(4)]
            ));
        }
        Err(UsbError::Nak(_)) => {
            bus.log(format_args!("usb: hub {}: status change endpoint: no change (NAK)", hub.address))
        }
        Err(error) => bus.log(format_args!("usb: hub {}: status change endpoint: {error:?}", hub.address)),
    }
    platform.release_channel(channel);
}

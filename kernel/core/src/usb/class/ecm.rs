//! CDC-ECM (Ethernet Control Model) class driver: selects the ECM function, reads the MAC
//! address, sets the packet filter, and hands the bulk endpoints to the shared Ethernet data
//! path ([`crate::usb::ethernet`]) with one bare frame per transfer.
//!
//! The enumerator tries every configuration a device offers, so an adapter whose first
//! configuration is its vendor's own protocol and whose second is CDC-ECM gets the ECM one.

use crate::usb::bus::{Bus, Device};
use crate::usb::descriptor::DeviceDescriptor;
use crate::usb::ecm as rules;
use crate::usb::ethernet::{Controller, EthernetDevice, Framing};
use crate::usb::host::{EndpointType, UsbError, UsbPlatform};
use crate::usb::setup::Setup;

/// Bytes per receive buffer: more than one frame, and over QEMU's 1536-byte pacing threshold.
pub const RX_BUFFER: usize = 2048;

/// Accepts a configuration that has a CDC-ECM function.
pub fn probe(_device: &DeviceDescriptor, configuration: &[u8]) -> bool {
    rules::find_ecm(configuration).is_ok()
}

/// Selects the data interface, reads the MAC, sets the packet filter and starts receiving.
pub fn attach<P: UsbPlatform>(bus: &mut Bus<P>, device: &Device, configuration: &[u8]) -> Result<(), UsbError> {
    let function = rules::find_ecm(configuration).map_err(UsbError::Descriptor)?;
    let handle = device.endpoint0();
    let mut text = [0u8; 32];
    let length = bus.string(device, function.mac_string, &mut text)?;
    let mac = rules::parse_mac(&text[..length]).map_err(UsbError::Descriptor)?;
    bus.control(handle, Setup::set_interface(function.data_interface, function.data_alternate), &mut [])?;
    let filter = rules::FILTER_DIRECTED | rules::FILTER_BROADCAST | rules::FILTER_ALL_MULTICAST;
    if let Err(error) = bus.control(handle, rules::set_packet_filter(function.control_interface, filter), &mut []) {
        // Optional for the device (ECM 1.2, section 6.2.4): keep going with its default filter.
        bus.log(format_args!("usb: ecm: SET_ETHERNET_PACKET_FILTER refused ({error:?}); using the default filter"));
    }
    let ecm = EthernetDevice::new(
        bus.platform(),
        Framing::Raw,
        mac,
        device.pipe(function.bulk_in, EndpointType::Bulk, function.bulk_in_max_packet),
        device.pipe(function.bulk_out, EndpointType::Bulk, function.bulk_out_max_packet),
        RX_BUFFER,
        Controller::None,
    )?;
    bus.log(format_args!(
        "usb: ecm: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, bulk IN {:#04x} OUT {:#04x} ({} bytes), interface {} alt {}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        function.bulk_in,
        function.bulk_out,
        function.bulk_in_max_packet,
        function.data_interface,
        function.data_alternate
    ));
    bus.set_ethernet(ecm);
    Ok(())
}

//! CDC-ECM (Ethernet Control Model) class driver: selects the ECM function, reads the MAC
//! address, sets the packet filter, and hands the bulk endpoints to the shared Ethernet data
//! path ([`super::ethernet`]) with one bare frame per transfer.
//!
//! The enumerator tries every configuration a device offers, so an adapter whose first
//! configuration is its vendor's own protocol and whose second is CDC-ECM gets the ECM one.

use jos_kcore::usb::descriptor::DeviceDescriptor;
use jos_kcore::usb::ecm as rules;
use jos_kcore::usb::setup::Setup;

use super::dwc2::{EndpointType, Pipe, UsbError};
use super::ethernet::{self, Controller, EthernetDevice, Framing};
use super::{Bus, Device};

/// Bytes per receive buffer: more than one frame, and over QEMU's 1536-byte pacing threshold.
pub const RX_BUFFER: usize = 2048;

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
    let pipe = |address: u8, max_packet: u16| Pipe {
        device: device.address,
        endpoint: address & 0x0f,
        is_in: address & 0x80 != 0,
        kind: EndpointType::Bulk,
        max_packet,
        speed: device.speed,
    };
    let ecm = EthernetDevice::new(
        bus.host(),
        Framing::Raw,
        mac,
        pipe(function.bulk_in, function.bulk_in_max_packet),
        pipe(function.bulk_out, function.bulk_out_max_packet),
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
    ethernet::DEVICE.put(ecm);
    Ok(())
}

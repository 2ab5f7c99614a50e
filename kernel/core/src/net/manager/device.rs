//! What the network manager needs of an Ethernet device: smoltcp's token `Device` for the stack,
//! plus the pre-filter's look at the oldest received frame before smoltcp takes it.

use smoltcp::phy;

use crate::usb::ethernet::{Counters, EthernetDevice};
use crate::usb::host::UsbPlatform;

/// An Ethernet device the [`super::Manager`] drives: the USB Ethernet device on the board, a
/// fake wire in the host tests.
pub trait NetworkDevice: phy::Device {
    /// The device's MAC address.
    fn mac(&self) -> [u8; 6];

    /// The link counters.
    fn counters(&self) -> Counters;

    /// Moves transfers along (receive, send); never waits.
    fn service(&mut self);

    /// The oldest received frame without consuming it.
    fn peek(&mut self) -> Option<&[u8]>;

    /// Answers the oldest received frame without the stack: `reply` gets the frame and a free
    /// transmit buffer and returns the answer's length, or `None` to leave the frame for the
    /// stack. The frame is consumed and the answer sent only when `reply` gave a length.
    fn answer(&mut self, reply: impl FnOnce(&[u8], &mut [u8]) -> Option<usize>) -> Option<usize>;

    /// Drops the oldest received frame.
    fn discard(&mut self);

    /// Tells the device the caller drops every received frame with a wrong IPv4 header or UDP
    /// checksum before the stack sees it (so its capabilities need not ask smoltcp to check).
    fn rx_checksums_checked(&mut self);
}

impl<P: UsbPlatform> NetworkDevice for EthernetDevice<P> {
    fn mac(&self) -> [u8; 6] {
        EthernetDevice::mac(self)
    }

    fn counters(&self) -> Counters {
        EthernetDevice::counters(self)
    }

    fn service(&mut self) {
        EthernetDevice::service(self);
    }

    fn peek(&mut self) -> Option<&[u8]> {
        EthernetDevice::peek(self)
    }

    fn answer(&mut self, reply: impl FnOnce(&[u8], &mut [u8]) -> Option<usize>) -> Option<usize> {
        EthernetDevice::answer(self, reply)
    }

    fn discard(&mut self) {
        EthernetDevice::discard(self);
    }

    fn rx_checksums_checked(&mut self) {
        EthernetDevice::rx_checksums_checked(self);
    }
}

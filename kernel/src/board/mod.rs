//! Board support. jos runs on the BCM2835 (Raspberry Pi 1 and Zero; QEMU `raspi0`, `raspi1ap`).

pub mod bcm2835;

/// The Ethernet MAC address the Pi firmware put on the kernel command line
/// (`smsc95xx.macaddr=`), for the network drivers: the Pi 1 B/B+'s LAN951x has no EEPROM, so
/// this is the board's own address. `None` without ATAGs (QEMU's ELF boot) or without the
/// parameter. See [`bcm2835::firmware`].
pub fn cmdline_mac() -> Option<[u8; 6]> {
    bcm2835::firmware::cmdline_mac()
}

//! SMSC LAN95xx USB Ethernet (the Raspberry Pi 1 B/B+ LAN9512/LAN9514's Ethernet function,
//! USB 0424:ec00): the registers as the LAN950x/LAN9512 datasheet names them, the vendor
//! requests that read and write them, the MII access word, the TX command words and the RX
//! status words that frame Ethernet frames in bulk transfers, and the MAC address sources a Pi
//! has (the firmware's `smsc95xx.macaddr=` on the kernel command line, else the board serial).
//!
//! The registers are 32-bit values reached over USB, not memory-mapped: their fields are
//! described once with tock-registers and composed with [`LocalRegisterCopy`]. [`RxFrames`]
//! reads the untrusted bytes of a bulk IN transfer and checks every length before it slices;
//! no function here panics on any input.

use tock_registers::fields::FieldValue;
use tock_registers::LocalRegisterCopy;

use super::descriptor::{Descriptor, Descriptors, TransferType};
use super::setup::{Setup, DIR_IN, RECIPIENT_DEVICE};
use super::Error;

/// USB vendor ID of SMSC (now Microchip).
pub const VENDOR_SMSC: u16 = 0x0424;
/// Product IDs of the LAN95xx Ethernet functions Linux's `smsc95xx` drives (0xec00 is the
/// LAN9512/LAN9514 of the Pi 1 B/B+; the others share the register set).
pub const PRODUCTS: [u16; 18] = [
    0xec00, 0x9500, 0x9505, 0x9e00, 0x9e01, 0x9900, 0x9901, 0x9902, 0x9903, 0x9904, 0x9905, 0x9906, 0x9907, 0x9908,
    0x9909, 0x9530, 0x9730, 0x9e08,
];

/// `bmRequestType` of the vendor requests: vendor, device recipient.
const TYPE_VENDOR: u8 = 0x40;
/// Vendor request WRITE_REGISTER (datasheet section 5.2, "USB vendor commands").
pub const REQUEST_WRITE_REGISTER: u8 = 0xa0;
/// Vendor request READ_REGISTER.
pub const REQUEST_READ_REGISTER: u8 = 0xa1;

/// READ_REGISTER of `address`: 4 bytes, little-endian.
pub fn read_register(address: u16) -> Setup {
    Setup {
        request_type: DIR_IN | TYPE_VENDOR | RECIPIENT_DEVICE,
        request: REQUEST_READ_REGISTER,
        value: 0,
        index: address,
        length: 4,
    }
}

/// WRITE_REGISTER of `address`: the data stage is the value, 4 bytes little-endian.
pub fn write_register(address: u16) -> Setup {
    Setup {
        request_type: TYPE_VENDOR | RECIPIENT_DEVICE,
        request: REQUEST_WRITE_REGISTER,
        value: 0,
        index: address,
        length: 4,
    }
}

/// Register addresses. System control and status registers: datasheet section 7.3; MAC
/// control and status registers: section 7.4.
pub mod address {
    /// ID and revision (7.3.1).
    pub const ID_REV: u16 = 0x00;
    /// Interrupt status (7.3.2).
    pub const INT_STS: u16 = 0x08;
    /// Transmit configuration (7.3.4).
    pub const TX_CFG: u16 = 0x10;
    /// Hardware configuration (7.3.5).
    pub const HW_CFG: u16 = 0x14;
    /// Power management control (7.3.8).
    pub const PM_CTRL: u16 = 0x20;
    /// LED and GPIO configuration (7.3.9).
    pub const LED_GPIO_CFG: u16 = 0x24;
    /// Automatic flow control configuration (7.3.11).
    pub const AFC_CFG: u16 = 0x2c;
    /// Burst cap (7.3.14).
    pub const BURST_CAP: u16 = 0x38;
    /// Interrupt endpoint control (7.3).
    pub const INT_EP_CTL: u16 = 0x68;
    /// Bulk IN delay (7.3).
    pub const BULK_IN_DLY: u16 = 0x6c;
    /// MAC control (7.4.1).
    pub const MAC_CR: u16 = 0x100;
    /// MAC address high (7.4.2).
    pub const ADDRH: u16 = 0x104;
    /// MAC address low (7.4.3).
    pub const ADDRL: u16 = 0x108;
    /// MII access (7.4.6).
    pub const MII_ADDR: u16 = 0x114;
    /// MII data (7.4.7).
    pub const MII_DATA: u16 = 0x118;
    /// Flow control (7.4.8).
    pub const FLOW: u16 = 0x11c;
    /// Checksum offload engine control (7.4).
    pub const COE_CR: u16 = 0x130;
}

pub use fields::*;

/// The register fields. `register_bitfields!` makes a module per register and a constant per
/// value without documentation of their own; each field carries its datasheet text.
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;
    register_bitfields! {
        u32,
        /// ID_REV (7.3.1).
        pub ID_REV [
            /// Chip ID (0xEC00 for the LAN9512/LAN9514).
            CHIP_ID OFFSET(16) NUMBITS(16) [],
            /// Chip revision.
            CHIP_REV OFFSET(0) NUMBITS(16) []
        ],
        /// INT_STS (7.3.2): write 1 to clear.
        pub INT_STS [
            /// TX stopped.
            TX_STOP OFFSET(17) NUMBITS(1) [],
            /// RX stopped.
            RX_STOP OFFSET(16) NUMBITS(1) [],
            /// Interrupt from the internal PHY.
            PHY_INT OFFSET(15) NUMBITS(1) [],
            /// Transmitter error.
            TXE OFFSET(14) NUMBITS(1) [],
            /// TX data FIFO underrun.
            TDFU OFFSET(13) NUMBITS(1) [],
            /// TX data FIFO overrun.
            TDFO OFFSET(12) NUMBITS(1) [],
            /// RX dropped frame.
            RXDF OFFSET(11) NUMBITS(1) []
        ],
        /// TX_CFG (7.3.4).
        pub TX_CFG [
            /// Transmitter on.
            ON OFFSET(2) NUMBITS(1) [],
            /// Stop transmitter.
            STOP OFFSET(1) NUMBITS(1) [],
            /// TX FIFO flush.
            FIFO_FLUSH OFFSET(0) NUMBITS(1) []
        ],
        /// HW_CFG (7.3.5).
        pub HW_CFG [
            /// Bulk IN empty response: 1 = NAK when the RX FIFO is empty, 0 = zero-length packet.
            BIR OFFSET(12) NUMBITS(1) [],
            /// RX data offset: bytes between the RX status word and the frame.
            RXDOFF OFFSET(9) NUMBITS(2) [],
            /// Stall bulk OUT pipe disable (on a TX loss of sync).
            SBP OFFSET(8) NUMBITS(1) [],
            /// Discard errored RX frames.
            DRP OFFSET(6) NUMBITS(1) [],
            /// Multiple Ethernet frames per USB transfer.
            MEF OFFSET(5) NUMBITS(1) [],
            /// Lite reset (self-clearing).
            LRST OFFSET(3) NUMBITS(1) [],
            /// External PHY select (0: the internal PHY).
            PSEL OFFSET(2) NUMBITS(1) [],
            /// Burst cap enable (BURST_CAP limits bulk IN transfers).
            BCE OFFSET(1) NUMBITS(1) [],
            /// Soft reset (self-clearing).
            SRST OFFSET(0) NUMBITS(1) []
        ],
        /// PM_CTRL (7.3.8).
        pub PM_CTRL [
            /// Device ready.
            DEV_RDY OFFSET(7) NUMBITS(1) [],
            /// PHY reset (self-clearing).
            PHY_RST OFFSET(4) NUMBITS(1) []
        ],
        /// LED_GPIO_CFG (7.3.9).
        pub LED_GPIO_CFG [
            /// GPIO2 drives the speed LED.
            SPD_LED OFFSET(24) NUMBITS(1) [],
            /// GPIO1 drives the link/activity LED.
            LNK_LED OFFSET(20) NUMBITS(1) [],
            /// GPIO0 drives the full-duplex LED.
            FDX_LED OFFSET(16) NUMBITS(1) []
        ],
        /// INT_EP_CTL (7.3): which INT_STS bits send an interrupt endpoint packet.
        pub INT_EP_CTL [
            /// PHY interrupt.
            PHY_INT OFFSET(15) NUMBITS(1) []
        ],
        /// MAC_CR (7.4.1).
        pub MAC_CR [
            /// Receive all.
            RXALL OFFSET(31) NUMBITS(1) [],
            /// Disable receive own (half duplex).
            RCVOWN OFFSET(23) NUMBITS(1) [],
            /// Full-duplex mode.
            FDPX OFFSET(20) NUMBITS(1) [],
            /// Pass all multicast.
            MCPAS OFFSET(19) NUMBITS(1) [],
            /// Promiscuous.
            PRMS OFFSET(18) NUMBITS(1) [],
            /// Hash/perfect filtering.
            HPFILT OFFSET(13) NUMBITS(1) [],
            /// Disable broadcast frames.
            BCAST OFFSET(11) NUMBITS(1) [],
            /// Transmitter enable.
            TXEN OFFSET(3) NUMBITS(1) [],
            /// Receiver enable.
            RXEN OFFSET(2) NUMBITS(1) []
        ],
        /// MII_ADDR (7.4.6).
        pub MII_ADDR [
            /// PHY address (the internal PHY is 1).
            PHY OFFSET(11) NUMBITS(5) [],
            /// PHY register index.
            INDEX OFFSET(6) NUMBITS(5) [],
            /// 1 = write MII_DATA to the PHY, 0 = read into MII_DATA.
            WRITE OFFSET(1) NUMBITS(1) [],
            /// Set to start; the chip clears it when the access is done.
            BUSY OFFSET(0) NUMBITS(1) []
        ],
        /// COE_CR (7.4).
        pub COE_CR [
            /// TX checksum offload.
            TX_COE_EN OFFSET(16) NUMBITS(1) [],
            /// RX checksum offload (appends a 16-bit sum after each frame).
            RX_COE_EN OFFSET(0) NUMBITS(1) []
        ]
    }
}

/// ID_REV's chip ID of the LAN9512/LAN9514.
pub const CHIP_ID_LAN9512: u32 = 0xec00;
/// AFC_CFG as Linux's driver sets it (high 15.5 KB, low 3 KB, back pressure ~350 µs, any frame).
pub const AFC_CFG_DEFAULT: u32 = 0x00f8_30a1;
/// BULK_IN_DLY as Linux's driver sets it (0x2000 x 16.667 ns = 136 µs).
pub const BULK_IN_DELAY: u32 = 0x2000;
/// The MII address of the internal PHY.
pub const PHY_ADDRESS: u32 = 1;
/// High-speed bulk packets are 512 bytes: BURST_CAP counts them.
pub const HIGH_SPEED_PACKET: usize = 512;
/// Full-speed bulk packets are 64 bytes.
pub const FULL_SPEED_PACKET: usize = 64;

/// A register value built from fields.
pub fn value<R: tock_registers::RegisterLongName>(fields: FieldValue<u32, R>) -> u32 {
    let mut register: LocalRegisterCopy<u32, R> = LocalRegisterCopy::new(0);
    register.modify(fields);
    register.get()
}

/// The MII_ADDR word that starts a read (`write` false) or write of PHY register `index`.
pub fn mii_access(index: u8, write: bool) -> u32 {
    value(
        MII_ADDR::PHY.val(PHY_ADDRESS)
            + MII_ADDR::INDEX.val(u32::from(index & 0x1f))
            + MII_ADDR::WRITE.val(u32::from(write))
            + MII_ADDR::BUSY::SET,
    )
}

/// IEEE 802.3 clause 22 PHY registers and bits, and the LAN8700-family vendor registers the
/// internal PHY has (datasheet section 7.5, PHY registers).
pub mod phy {
    /// Basic control.
    pub const BMCR: u8 = 0;
    /// Basic status.
    pub const BMSR: u8 = 1;
    /// PHY identifier 1.
    pub const PHYSID1: u8 = 2;
    /// PHY identifier 2.
    pub const PHYSID2: u8 = 3;
    /// Autonegotiation advertisement.
    pub const ANAR: u8 = 4;
    /// Link partner ability.
    pub const ANLPAR: u8 = 5;
    /// Interrupt source flags (read clears).
    pub const INT_SRC: u8 = 29;
    /// Interrupt mask.
    pub const INT_MASK: u8 = 30;
    /// PHY special control/status: the resolved speed and duplex.
    pub const SPECIAL: u8 = 31;
    /// BMCR: reset (self-clearing).
    pub const BMCR_RESET: u16 = 1 << 15;
    /// BMCR: autonegotiation enable.
    pub const BMCR_ANENABLE: u16 = 1 << 12;
    /// BMCR: restart autonegotiation.
    pub const BMCR_ANRESTART: u16 = 1 << 9;
    /// BMSR: link up (latched low).
    pub const BMSR_LINK: u16 = 1 << 2;
    /// BMSR: autonegotiation complete.
    pub const BMSR_ANEG_COMPLETE: u16 = 1 << 5;
    /// ANAR: selector IEEE 802.3, 10/100 half and full duplex, symmetric pause.
    pub const ANAR_ALL: u16 = 0x0001 | 0x0020 | 0x0040 | 0x0080 | 0x0100 | 0x0400;
    /// INT_SRC / INT_MASK: autonegotiation complete.
    pub const INT_ANEG_COMPLETE: u16 = 1 << 6;
    /// INT_SRC / INT_MASK: link down.
    pub const INT_LINK_DOWN: u16 = 1 << 4;
    /// SPECIAL: speed indication bits 4:2 (001 10 half, 101 10 full, 010 100 half, 110 100 full).
    pub const SPECIAL_SPEED_MASK: u16 = 0x001c;
    /// SPECIAL: the full-duplex bit of the speed indication.
    pub const SPECIAL_FULL_DUPLEX: u16 = 0x0010;
    /// SPECIAL: the 100 Mb/s bit of the speed indication.
    pub const SPECIAL_100: u16 = 0x0008;
}

/// The link as the PHY reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Link up.
    pub up: bool,
    /// 100 Mb/s (else 10).
    pub fast: bool,
    /// Full duplex.
    pub full_duplex: bool,
}

impl Link {
    /// The link from BMSR and the PHY special register.
    pub fn from_phy(bmsr: u16, special: u16) -> Self {
        Self {
            up: bmsr & phy::BMSR_LINK != 0,
            fast: special & phy::SPECIAL_100 != 0,
            full_duplex: special & phy::SPECIAL_FULL_DUPLEX != 0,
        }
    }
}

/// TX command A (datasheet section 5.4.2.1, table 5-41): first segment.
pub const TX_CMD_A_FIRST_SEG: u32 = 1 << 13;
/// TX command A: last segment.
pub const TX_CMD_A_LAST_SEG: u32 = 1 << 12;
/// TX command A and B: buffer size / frame length (bits 10:0).
pub const TX_LENGTH_MASK: u32 = 0x7ff;
/// Bytes of the two TX command words in front of each buffer.
pub const TX_HEADER: usize = 8;
/// The largest frame the TX command words describe (11 bits).
pub const TX_MAX_FRAME: usize = 0x7ff;

/// The two TX command words for a whole frame of `length` bytes in one buffer (first and last
/// segment, no data offset, padding and CRC added by the MAC), little-endian.
pub fn tx_header(length: usize) -> Result<[u8; TX_HEADER], Error> {
    if length == 0 || length > TX_MAX_FRAME {
        return Err(Error::BadLength);
    }
    let a = length as u32 | TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG;
    let b = length as u32;
    let mut header = [0u8; TX_HEADER];
    header[..4].copy_from_slice(&a.to_le_bytes());
    header[4..].copy_from_slice(&b.to_le_bytes());
    Ok(header)
}

/// RX status word (datasheet section 5.3.1.1): filtering fail.
pub const RX_STS_FF: u32 = 1 << 30;
/// RX status word: frame length (bits 29:16), FCS and RX checksum word included.
pub const RX_STS_FL_SHIFT: u32 = 16;
/// RX status word: frame length mask (after the shift).
pub const RX_STS_FL_MASK: u32 = 0x3fff;
/// RX status word: error summary.
pub const RX_STS_ES: u32 = 1 << 15;
/// RX status word: broadcast frame.
pub const RX_STS_BF: u32 = 1 << 13;
/// RX status word: multicast frame.
pub const RX_STS_MF: u32 = 1 << 10;
/// RX status word: CRC error.
pub const RX_STS_CRC: u32 = 1 << 1;
/// Bytes of the FCS at the end of every received frame.
pub const FCS: usize = 4;
/// The longest frame length field accepted: 1,514 + VLAN tag 4 + FCS 4 + checksum word 2.
pub const RX_MAX_LENGTH: usize = 1524;

/// Why [`RxFrames`] skipped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxError {
    /// The status word's error summary bit (the status word).
    Errored(u32),
    /// The length field is too small for a frame or too large (the status word).
    BadLength(u32),
    /// The transfer ends inside the frame (or its status word): the rest of it is dropped.
    Truncated,
}

/// One frame of a bulk IN transfer: where it is and its status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFrame {
    /// First byte of the Ethernet frame in the transfer.
    pub start: usize,
    /// Length of the Ethernet frame, FCS (and checksum word) removed.
    pub length: usize,
    /// The RX status word.
    pub status: u32,
}

/// The frames of one bulk IN transfer: an RX status word, `offset` bytes (HW_CFG.RXDOFF), the
/// frame with its FCS (and a 2-byte checksum word when RX checksum offload is on), then
/// padding to the next 4-byte boundary before the next status word. Each item is a frame or why
/// one was skipped; after [`RxError::Truncated`] the iteration ends.
#[derive(Clone, Debug)]
pub struct RxFrames<'a> {
    transfer: &'a [u8],
    at: usize,
    offset: usize,
    checksum_word: bool,
}

impl<'a> RxFrames<'a> {
    /// The frames in `transfer` (the bytes the transfer moved), starting at byte `at` (where an
    /// earlier walk stopped, 0 for a new transfer).
    pub fn new(transfer: &'a [u8], at: usize, offset: usize, checksum_word: bool) -> Self {
        Self { transfer, at, offset, checksum_word }
    }

    /// Where the next status word is: a walk can stop and go on from here.
    pub fn position(&self) -> usize {
        self.at
    }
}

impl Iterator for RxFrames<'_> {
    type Item = Result<RxFrame, RxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.transfer.len() {
            return None;
        }
        let rest = &self.transfer[self.at..];
        if rest.len() < 4 {
            self.at = self.transfer.len();
            return Some(Err(RxError::Truncated));
        }
        let status = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let field = ((status >> RX_STS_FL_SHIFT) & RX_STS_FL_MASK) as usize;
        let trailer = FCS + if self.checksum_word { 2 } else { 0 };
        let start = self.at + 4 + self.offset;
        // The next status word: after the frame, padded so offset + frame ends on a DWORD.
        let next = start + field + (4 - (self.offset + field) % 4) % 4;
        if start + field > self.transfer.len() {
            self.at = self.transfer.len();
            return Some(Err(RxError::Truncated));
        }
        self.at = next;
        if status & RX_STS_ES != 0 {
            return Some(Err(RxError::Errored(status)));
        }
        if field < 14 + trailer || field > RX_MAX_LENGTH {
            return Some(Err(RxError::BadLength(status)));
        }
        Some(Ok(RxFrame { start, length: field - trailer, status }))
    }
}

/// The USB endpoints of a LAN95xx Ethernet function's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Bulk IN address.
    pub bulk_in: u8,
    /// Bulk IN max packet size.
    pub bulk_in_max_packet: u16,
    /// Bulk OUT address.
    pub bulk_out: u8,
    /// Bulk OUT max packet size.
    pub bulk_out_max_packet: u16,
    /// Interrupt IN address.
    pub interrupt_in: u8,
    /// Interrupt IN max packet size.
    pub interrupt_max_packet: u16,
    /// Interrupt IN `bInterval`.
    pub interrupt_interval: u8,
}

/// True for a device this driver takes: SMSC's vendor ID and a LAN95xx product ID.
pub fn is_lan95xx(vendor: u16, product: u16) -> bool {
    vendor == VENDOR_SMSC && PRODUCTS.contains(&product)
}

/// Finds the bulk IN, bulk OUT and interrupt IN endpoints of the first interface that has all
/// three (the LAN95xx has one interface, class 0xff).
pub fn find_endpoints(configuration: &[u8]) -> Result<Endpoints, Error> {
    // Bulk IN and bulk OUT (address, max packet), interrupt IN (address, max packet, interval).
    type Found = (Option<(u8, u16)>, Option<(u8, u16)>, Option<(u8, u16, u8)>);
    let mut found: Found = (None, None, None);
    for item in Descriptors::new(configuration)? {
        match item? {
            Descriptor::Interface(_) => {
                if let (Some(_), Some(_), Some(_)) = found {
                    break;
                }
                found = (None, None, None);
            }
            Descriptor::Endpoint(e) => match (e.transfer_type, e.is_in()) {
                (TransferType::Bulk, true) if found.0.is_none() => found.0 = Some((e.address, e.max_packet_size)),
                (TransferType::Bulk, false) if found.1.is_none() => found.1 = Some((e.address, e.max_packet_size)),
                (TransferType::Interrupt, true) if found.2.is_none() => {
                    found.2 = Some((e.address, e.max_packet_size, e.interval))
                }
                _ => {}
            },
            Descriptor::Other(..) => {}
        }
    }
    match found {
        (Some((bulk_in, i)), Some((bulk_out, o)), Some((interrupt_in, n, interval))) if i > 0 && o > 0 && n > 0 => {
            Ok(Endpoints {
                bulk_in,
                bulk_in_max_packet: i,
                bulk_out,
                bulk_out_max_packet: o,
                interrupt_in,
                interrupt_max_packet: n,
                interrupt_interval: interval,
            })
        }
        _ => Err(Error::NotFound),
    }
}

/// Whether `mac`, as the firmware wrote it on the command line (`smsc95xx.macaddr=`, parsed by
/// `jos_abi::atags::Cmdline::mac_address`), can be the interface's address: a unicast address
/// that is not all zeros. Anything else falls back to [`mac_from_serial`].
pub fn is_usable_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

/// A stable, locally administered unicast MAC address from the board serial number: 02:4A
/// ("J") then the serial's low 32 bits, so every board keeps its own address across boots.
pub fn mac_from_serial(serial: u64) -> [u8; 6] {
    let s = (serial as u32).to_be_bytes();
    [0x02, 0x4a, s[0], s[1], s[2], s[3]]
}

/// ADDRL and ADDRH for `mac` (byte 0 in ADDRL's low byte).
pub fn address_registers(mac: [u8; 6]) -> (u32, u32) {
    (u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]), u32::from_le_bytes([mac[4], mac[5], 0, 0]))
}

/// BURST_CAP for bulk IN buffers of `buffer` bytes and packets of `max_packet` bytes: the
/// number of whole packets that fit (8 bits), so no transfer overflows a buffer.
pub fn burst_cap(buffer: usize, max_packet: usize) -> u32 {
    if max_packet == 0 {
        return 0;
    }
    (buffer / max_packet).min(255) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_requests_golden_bytes() {
        assert_eq!(read_register(address::HW_CFG).to_bytes(), [0xc0, 0xa1, 0, 0, 0x14, 0, 4, 0]);
        assert_eq!(write_register(address::MAC_CR).to_bytes(), [0x40, 0xa0, 0, 0, 0x00, 0x01, 4, 0]);
    }

    #[test]
    fn register_values() {
        // What Linux's driver writes to HW_CFG for high speed with turbo mode and RXDOFF 2.
        let hw = value(HW_CFG::BIR::SET + HW_CFG::RXDOFF.val(2) + HW_CFG::MEF::SET + HW_CFG::BCE::SET);
        assert_eq!(hw, 0x1422);
        assert_eq!(value(MAC_CR::TXEN::SET + MAC_CR::RXEN::SET + MAC_CR::FDPX::SET), 0x0010_000c);
        assert_eq!(
            value(LED_GPIO_CFG::SPD_LED::SET + LED_GPIO_CFG::LNK_LED::SET + LED_GPIO_CFG::FDX_LED::SET),
            0x0111_0000
        );
        // MII read of BMSR on PHY 1; write of BMCR.
        assert_eq!(mii_access(phy::BMSR, false), (1 << 11) | (1 << 6) | 1);
        assert_eq!(mii_access(phy::BMCR, true), (1 << 11) | 2 | 1);
        assert_eq!(address_registers([0xb8, 0x27, 0xeb, 1, 2, 3]), (0x01eb_27b8, 0x0302));
        assert_eq!(burst_cap(4096, 512), 8);
        assert_eq!(burst_cap(1 << 20, 64), 255);
        assert_eq!(burst_cap(4096, 0), 0);
    }

    #[test]
    fn tx_header_words() {
        assert_eq!(tx_header(60), Ok([60, 0x30, 0, 0, 60, 0, 0, 0]));
        assert_eq!(tx_header(1514), Ok([0xea, 0x35, 0, 0, 0xea, 0x05, 0, 0]));
        assert_eq!(tx_header(0), Err(Error::BadLength));
        assert_eq!(tx_header(2048), Err(Error::BadLength));
    }

    fn rx_entry(frame_len: usize, offset: usize, checksum: bool, errored: bool) -> Vec<u8> {
        let field = frame_len + FCS + if checksum { 2 } else { 0 };
        let mut status = (field as u32) << RX_STS_FL_SHIFT;
        if errored {
            status |= RX_STS_ES | RX_STS_CRC;
        }
        let mut e = status.to_le_bytes().to_vec();
        e.resize(4 + offset, 0xee);
        e.extend((0..frame_len).map(|i| i as u8));
        e.resize(4 + offset + field, 0xcc);
        e
    }

    #[test]
    fn rx_frames_walk_a_multi_frame_transfer() {
        for (offset, checksum) in [(0, false), (2, false), (2, true), (0, true)] {
            let mut t = rx_entry(60, offset, checksum, false);
            t.resize(t.len().next_multiple_of(4), 0);
            t.extend(rx_entry(1514, offset, checksum, true));
            t.resize(t.len().next_multiple_of(4), 0);
            t.extend(rx_entry(99, offset, checksum, false));
            let all: Vec<_> = RxFrames::new(&t, 0, offset, checksum).collect();
            assert_eq!(all.len(), 3, "offset {offset} checksum {checksum}");
            let first = all[0].unwrap();
            assert_eq!((first.start, first.length), (4 + offset, 60));
            assert_eq!(&t[first.start..first.start + 4], &[0, 1, 2, 3]);
            assert!(matches!(all[1], Err(RxError::Errored(_))));
            let third = all[2].unwrap();
            assert_eq!(third.length, 99);
            assert_eq!(t[third.start + 98], 98);
        }
    }

    #[test]
    fn rx_frames_reject_bad_input() {
        // Empty transfer: nothing.
        assert_eq!(RxFrames::new(&[], 0, 0, false).count(), 0);
        // A status word cut short, a frame past the end, a too-short and a too-long length.
        assert_eq!(RxFrames::new(&[1, 2], 0, 0, false).collect::<Vec<_>>(), vec![Err(RxError::Truncated)]);
        let mut long = rx_entry(100, 0, false, false);
        long.truncate(50);
        assert_eq!(RxFrames::new(&long, 0, 0, false).collect::<Vec<_>>(), vec![Err(RxError::Truncated)]);
        let tiny = rx_entry(9, 0, false, false);
        assert!(matches!(RxFrames::new(&tiny, 0, 0, false).next(), Some(Err(RxError::BadLength(_)))));
        let mut huge = ((3000u32) << 16).to_le_bytes().to_vec();
        huge.resize(3100, 0);
        assert!(matches!(RxFrames::new(&huge, 0, 0, false).next(), Some(Err(RxError::BadLength(_)))));
        // Every prefix of a good transfer walks without a panic and ends.
        let mut t = rx_entry(200, 2, true, false);
        t.resize(t.len().next_multiple_of(4), 0);
        t.extend(rx_entry(64, 2, true, false));
        for cut in 0..=t.len() {
            let n = RxFrames::new(&t[..cut], 0, 2, true).take(10).count();
            assert!(n <= 2);
        }
        // Resuming at a position.
        let mut walk = RxFrames::new(&t, 0, 2, true);
        walk.next();
        let resumed = RxFrames::new(&t, walk.position(), 2, true).next().unwrap().unwrap();
        assert_eq!(resumed.length, 64);
    }

    #[test]
    fn endpoints_of_the_lan9512_configuration() {
        let mut c = vec![9, 2, 0, 0, 1, 1, 0, 0xe0, 1];
        c.extend([9, 4, 0, 0, 3, 0xff, 0x00, 0xff, 0]);
        c.extend([7, 5, 0x81, 2, 0x00, 0x02, 0]);
        c.extend([7, 5, 0x02, 2, 0x00, 0x02, 0]);
        c.extend([7, 5, 0x83, 3, 16, 0, 4]);
        let total = c.len() as u16;
        c[2..4].copy_from_slice(&total.to_le_bytes());
        let e = find_endpoints(&c).unwrap();
        assert_eq!(
            (e.bulk_in, e.bulk_in_max_packet, e.bulk_out, e.interrupt_in, e.interrupt_interval),
            (0x81, 512, 0x02, 0x83, 4)
        );
        c.truncate(c.len() - 7);
        let total = c.len() as u16;
        c[2..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(find_endpoints(&c), Err(Error::NotFound));
        assert!(is_lan95xx(0x0424, 0xec00));
        assert!(!is_lan95xx(0x0424, 0x9512), "the hub is not the Ethernet function");
        assert!(!is_lan95xx(0x0525, 0xec00));
    }

    #[test]
    fn mac_sources() {
        assert!(is_usable_mac(&[0xb8, 0x27, 0xeb, 0x12, 0x34, 0x56]));
        assert!(is_usable_mac(&[0x02, 0x4a, 0, 0, 0, 0]));
        assert!(!is_usable_mac(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]), "multicast");
        assert!(!is_usable_mac(&[0xff; 6]), "broadcast");
        assert!(!is_usable_mac(&[0; 6]));
        assert_eq!(mac_from_serial(0x1234_5678_9abc_def0), [0x02, 0x4a, 0x9a, 0xbc, 0xde, 0xf0]);
        let m = mac_from_serial(0);
        assert_eq!(m[0] & 0x03, 0x02, "locally administered unicast");
        assert_eq!(mac_from_serial(7), mac_from_serial(7));
    }

    #[test]
    fn link_from_phy_registers() {
        assert_eq!(Link::from_phy(0x782d, 0x1018), Link { up: true, fast: true, full_duplex: true });
        assert_eq!(Link::from_phy(0x7809, 0x0004), Link { up: false, fast: false, full_duplex: false });
    }
}

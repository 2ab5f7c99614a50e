//! A software model of the SMSC LAN9512/LAN9514's Ethernet function (USB 0424:ec00), written
//! from the LAN950x/LAN9512 datasheet and what Linux's `smsc95xx` driver expects of the chip,
//! served over usbredir ([`crate::usbredir`]) to QEMU's emulated DWC2.
//!
//! Modelled: the high-speed USB function (one configuration, interface 0 of class 0xff with
//! bulk IN 0x81 and bulk OUT 0x02 of 512 bytes and interrupt IN 0x83 of 16 bytes), the vendor
//! requests READ_REGISTER (0xA1) and WRITE_REGISTER (0xA0) with 4-byte little-endian values at
//! the register address in `wIndex`, the system control and status registers (datasheet
//! section 7.3) and MAC control and status registers (section 7.4) a driver touches, the
//! internal PHY at MII address 1 behind MII_ADDR/MII_DATA (LAN8700-like: BMCR/BMSR, PHY ID,
//! ANAR/ANLPAR, the vendor registers 17, 18, 27, 29, 30, 31; the link is up and
//! autonegotiation completes at once), no EEPROM (E2P_CMD commands time out, as on a Raspberry
//! Pi), bulk OUT buffers with TX command words A and B (first/last segment, buffer size, data
//! start offset, frame length, TX checksum offload), bulk IN with an RX status word per frame,
//! the RXDOFF offset, DWORD padding between frames in MEF mode, BURST_CAP with BCE, the
//! empty-FIFO response chosen by BIR (zero-length packet or NAK), the zero-length packet after
//! a transfer that ends on a packet boundary, RX checksum offload (a 16-bit sum after the
//! frame), the FCS on received frames, address filtering (perfect, broadcast, multicast hash,
//! promiscuous), an RX FIFO of [`RX_FIFO_BYTES`] that drops and counts on overflow
//! (INT_STS.RXDF), and the interrupt endpoint (INT_STS when a source enabled in INT_EP_CTL
//! rises).
//!
//! Not modelled: the hub in front (usbredir carries one device), full-speed operation, the bulk
//! IN delay timer (a transfer is ended as soon as the FIFO has nothing more), flow control and
//! pause frames, VLAN tags, wake-up frames and suspend modes, GPIOs and LEDs, the EEPROM, the
//! statistics request (0xA2), TX data FIFO sizes, link changes (the cable stays plugged).
//!
//! Every register write and every unusual event goes to the trace (`Lan9512::trace`).

use std::collections::VecDeque;
use std::io::Write;

use crate::usb_model::{self, Descriptors, Halts, InStream, Standard};
use crate::usbredir::{self, BulkIn, ConnectInfo, Device, Endpoint, Interface, Setup, Speed, Stalled, Status};

/// Vendor request: write a register (`wIndex` = address, 4 data bytes).
pub const WRITE_REGISTER: u8 = 0xa0;
/// Vendor request: read a register.
pub const READ_REGISTER: u8 = 0xa1;

/// Register addresses and bits (datasheet section 7.3, system control and status registers;
/// section 7.4, MAC control and status registers).
pub mod reg {
    /// Chip ID (bits 31:16) and revision.
    pub const ID_REV: u16 = 0x00;
    /// Interrupt status (write 1 to clear).
    pub const INT_STS: u16 = 0x08;
    /// Receive configuration.
    pub const RX_CFG: u16 = 0x0c;
    /// Transmit configuration.
    pub const TX_CFG: u16 = 0x10;
    /// Hardware configuration.
    pub const HW_CFG: u16 = 0x14;
    /// RX FIFO information.
    pub const RX_FIFO_INF: u16 = 0x18;
    /// TX FIFO information.
    pub const TX_FIFO_INF: u16 = 0x1c;
    /// Power management control.
    pub const PM_CTRL: u16 = 0x20;
    /// LED and GPIO configuration.
    pub const LED_GPIO_CFG: u16 = 0x24;
    /// GPIO configuration.
    pub const GPIO_CFG: u16 = 0x28;
    /// Automatic flow control configuration.
    pub const AFC_CFG: u16 = 0x2c;
    /// EEPROM command.
    pub const E2P_CMD: u16 = 0x30;
    /// EEPROM data.
    pub const E2P_DATA: u16 = 0x34;
    /// Burst cap, in USB packets.
    pub const BURST_CAP: u16 = 0x38;
    /// Configuration straps.
    pub const STRAP_STATUS: u16 = 0x3c;
    /// Data port select.
    pub const DP_SEL: u16 = 0x40;
    /// Data port command.
    pub const DP_CMD: u16 = 0x44;
    /// Data port address.
    pub const DP_ADDR: u16 = 0x48;
    /// Data port data 0.
    pub const DP_DATA0: u16 = 0x4c;
    /// Data port data 1.
    pub const DP_DATA1: u16 = 0x50;
    /// GPIO wake enable and polarity.
    pub const GPIO_WAKE: u16 = 0x64;
    /// Interrupt endpoint control.
    pub const INT_EP_CTL: u16 = 0x68;
    /// Bulk IN delay.
    pub const BULK_IN_DLY: u16 = 0x6c;
    /// MAC control.
    pub const MAC_CR: u16 = 0x100;
    /// MAC address high (bytes 4, 5).
    pub const ADDRH: u16 = 0x104;
    /// MAC address low (bytes 0..3).
    pub const ADDRL: u16 = 0x108;
    /// Multicast hash table high.
    pub const HASHH: u16 = 0x10c;
    /// Multicast hash table low.
    pub const HASHL: u16 = 0x110;
    /// MII access.
    pub const MII_ADDR: u16 = 0x114;
    /// MII data.
    pub const MII_DATA: u16 = 0x118;
    /// Flow control.
    pub const FLOW: u16 = 0x11c;
    /// VLAN1 tag.
    pub const VLAN1: u16 = 0x120;
    /// VLAN2 tag.
    pub const VLAN2: u16 = 0x124;
    /// Wake-up frame filter.
    pub const WUFF: u16 = 0x128;
    /// Wake-up control and status.
    pub const WUCSR: u16 = 0x12c;
    /// Checksum offload engine control.
    pub const COE_CR: u16 = 0x130;

    /// HW_CFG: soft reset (self-clearing).
    pub const HW_CFG_SRST: u32 = 1 << 0;
    /// HW_CFG: burst cap enable.
    pub const HW_CFG_BCE: u32 = 1 << 1;
    /// HW_CFG: external PHY select.
    pub const HW_CFG_PSEL: u32 = 1 << 2;
    /// HW_CFG: lite reset (self-clearing).
    pub const HW_CFG_LRST: u32 = 1 << 3;
    /// HW_CFG: discard errored RX frames.
    pub const HW_CFG_DRP: u32 = 1 << 6;
    /// HW_CFG: multiple Ethernet frames per USB transfer.
    pub const HW_CFG_MEF: u32 = 1 << 5;
    /// HW_CFG: stall bulk OUT pipe disable.
    pub const HW_CFG_SBP: u32 = 1 << 8;
    /// HW_CFG: RX data offset (bits 10:9).
    pub const HW_CFG_RXDOFF_SHIFT: u32 = 9;
    /// HW_CFG: bulk IN empty response (0 = zero-length packet, 1 = NAK).
    pub const HW_CFG_BIR: u32 = 1 << 12;
    /// PM_CTRL: PHY reset (self-clearing).
    pub const PM_CTRL_PHY_RST: u32 = 1 << 4;
    /// PM_CTRL: device ready.
    pub const PM_CTRL_DEV_RDY: u32 = 1 << 7;
    /// INT_STS: RX dropped frame.
    pub const INT_STS_RXDF: u32 = 1 << 11;
    /// INT_STS: transmitter error.
    pub const INT_STS_TXE: u32 = 1 << 14;
    /// INT_STS: PHY interrupt.
    pub const INT_STS_PHY_INT: u32 = 1 << 15;
    /// TX_CFG: FIFO flush (self-clearing).
    pub const TX_CFG_FIFO_FLUSH: u32 = 1 << 0;
    /// TX_CFG: stop transmitter.
    pub const TX_CFG_STOP: u32 = 1 << 1;
    /// TX_CFG: transmitter on.
    pub const TX_CFG_ON: u32 = 1 << 2;
    /// RX_CFG: RX FIFO flush (self-clearing).
    pub const RX_CFG_FIFO_FLUSH: u32 = 1 << 0;
    /// E2P_CMD: busy.
    pub const E2P_CMD_BUSY: u32 = 1 << 31;
    /// E2P_CMD: timeout.
    pub const E2P_CMD_TIMEOUT: u32 = 1 << 10;
    /// MAC_CR: receiver enable.
    pub const MAC_CR_RXEN: u32 = 1 << 2;
    /// MAC_CR: transmitter enable.
    pub const MAC_CR_TXEN: u32 = 1 << 3;
    /// MAC_CR: disable broadcast frames.
    pub const MAC_CR_BCAST: u32 = 1 << 11;
    /// MAC_CR: hash/perfect filtering.
    pub const MAC_CR_HPFILT: u32 = 1 << 13;
    /// MAC_CR: promiscuous.
    pub const MAC_CR_PRMS: u32 = 1 << 18;
    /// MAC_CR: pass all multicast.
    pub const MAC_CR_MCPAS: u32 = 1 << 19;
    /// MII_ADDR: busy.
    pub const MII_BUSY: u32 = 1 << 0;
    /// MII_ADDR: write.
    pub const MII_WRITE: u32 = 1 << 1;
    /// COE_CR: RX checksum offload enable.
    pub const COE_RX_EN: u32 = 1 << 0;
    /// COE_CR: TX checksum offload enable.
    pub const COE_TX_EN: u32 = 1 << 16;
}

/// ID_REV as the model reports it: chip 0xEC00 (LAN9512/LAN9514), revision 2.
pub const ID_REV_VALUE: u32 = 0xec00_0002;
/// The model's RX FIFO, in bytes of status words and frames.
pub const RX_FIFO_BYTES: usize = 20 * 1024;
/// Bulk IN endpoint.
pub const BULK_IN: u8 = 0x81;
/// Bulk OUT endpoint.
pub const BULK_OUT: u8 = 0x02;
/// Interrupt IN endpoint.
pub const INTERRUPT_IN: u8 = 0x83;
/// High-speed bulk max packet size.
pub const MAX_PACKET: usize = 512;
/// MII address of the internal PHY.
pub const PHY_ADDRESS: u32 = 1;

/// TX command A: first segment.
pub const TX_CMD_A_FIRST_SEG: u32 = 1 << 13;
/// TX command A: last segment.
pub const TX_CMD_A_LAST_SEG: u32 = 1 << 12;
/// TX command B: checksum enable.
pub const TX_CMD_B_CSUM: u32 = 1 << 14;
/// TX command B: disable padding.
pub const TX_CMD_B_DIS_PADDING: u32 = 1 << 12;
/// RX status: frame length (bits 29:16).
pub const RX_STS_FL_SHIFT: u32 = 16;
/// RX status: broadcast frame.
pub const RX_STS_BF: u32 = 1 << 13;
/// RX status: multicast frame.
pub const RX_STS_MF: u32 = 1 << 10;
/// RX status: frame type (Ethernet II).
pub const RX_STS_FT: u32 = 1 << 5;
/// RX status: error summary.
pub const RX_STS_ES: u32 = 1 << 15;
/// RX status: CRC error.
pub const RX_STS_CRC: u32 = 1 << 1;

/// The internal PHY (IEEE 802.3 clause 22 registers plus the LAN8700 vendor registers).
#[derive(Clone, Debug)]
struct Phy {
    regs: [u16; 32],
}

impl Phy {
    const BMCR_DEFAULT: u16 = 0x3100; // 100 Mb/s, autonegotiation, full duplex
    const BMSR: u16 = 0x7800 | 0x0020 | 0x0008 | 0x0004 | 0x0001; // abilities, aneg done, link
    const ANAR_DEFAULT: u16 = 0x01e1;
    const ANLPAR: u16 = 0x45e1; // acknowledge, pause, 100/10 full/half
    const ISF_ANEG_COMP: u16 = 0x0040;
    const ISF_ENERGY_ON: u16 = 0x0080;

    fn new() -> Self {
        let mut regs = [0u16; 32];
        regs[0] = Self::BMCR_DEFAULT;
        regs[1] = Self::BMSR;
        regs[2] = 0x0007;
        regs[3] = 0xc0c1; // OUI 00:80:0f, model 0x0c (LAN8700), revision 1
        regs[4] = Self::ANAR_DEFAULT;
        regs[5] = Self::ANLPAR;
        regs[6] = 0x0001;
        regs[17] = 0x0002; // ENERGYON
        regs[18] = 0x00e1; // all capable, PHY address 1
        regs[29] = Self::ISF_ANEG_COMP | Self::ISF_ENERGY_ON;
        regs[31] = 0x1018; // autonegotiation done, 100BASE-TX full duplex
        Self { regs }
    }

    fn read(&mut self, register: usize) -> u16 {
        let value = self.regs[register];
        if register == 29 {
            self.regs[29] = 0; // interrupt source flags clear on read
        }
        value
    }

    fn write(&mut self, register: usize, value: u16) {
        match register {
            0 => {
                if value & 0x8000 != 0 {
                    *self = Self::new();
                    return;
                }
                self.regs[0] = value & !0x0200;
                if value & 0x0200 != 0 || value & 0x1000 != 0 {
                    // Restart (or enable) autonegotiation: done at once, link up.
                    self.regs[29] |= Self::ISF_ANEG_COMP;
                }
            }
            1..=3 | 5 | 6 | 29 | 31 => {} // read-only
            17 => self.regs[17] = (value & !0x0002) | 0x0002,
            _ => self.regs[register] = value,
        }
    }

    fn interrupt(&self) -> bool {
        self.regs[29] & self.regs[30] != 0
    }
}

/// Counters of the model, for the test's checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames from the wire queued for the host.
    pub rx_frames: u64,
    /// Frames from the wire dropped by the address filter or because RX is off.
    pub rx_filtered: u64,
    /// Frames dropped because the RX FIFO was full.
    pub rx_overflow: u64,
    /// Frames sent to the wire.
    pub tx_frames: u64,
    /// TX command or length errors (each sets INT_STS.TXE).
    pub tx_errors: u64,
    /// Frames not sent because the transmitter was off.
    pub tx_disabled: u64,
    /// Register reads.
    pub register_reads: u64,
    /// Register writes.
    pub register_writes: u64,
    /// Accesses to addresses the model does not know.
    pub unknown_registers: u64,
    /// Bulk IN transfers sent (zero-length packets not counted).
    pub in_transfers: u64,
    /// Bulk IN transfers that carried more than one frame.
    pub multi_frame_transfers: u64,
    /// Frames delivered marked as received with a CRC error ([`Lan9512::inject_crc_errors`]).
    pub rx_crc_errors: u64,
    /// Errored frames dropped because HW_CFG.DRP was set.
    pub rx_errored_dropped: u64,
}

/// The LAN9512 Ethernet function.
pub struct Lan9512 {
    descriptors: Descriptors,
    configuration: u8,
    halts: Halts,
    regs: std::collections::BTreeMap<u16, u32>,
    phy: Phy,
    rx_fifo: VecDeque<Vec<u8>>,
    rx_fifo_bytes: usize,
    in_stream: InStream,
    tx_stream: Vec<u8>,
    tx_frame: Option<(u32, Vec<u8>)>,
    tx_out: Vec<Vec<u8>>,
    interrupt_reported: u32,
    crc_error_every: u64,
    /// Counters.
    pub counters: Counters,
    trace: Box<dyn Write + Send>,
}

fn ones_complement_sum(bytes: &[u8], big_endian: bool) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = match (pair.len(), big_endian) {
            (2, true) => u16::from_be_bytes([pair[0], pair[1]]),
            (2, false) => u16::from_le_bytes([pair[0], pair[1]]),
            (_, true) => u16::from(pair[0]) << 8,
            (_, false) => u16::from(pair[0]),
        };
        sum += u32::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Ethernet FCS of `frame` (CRC-32, sent least significant byte first).
pub fn fcs(frame: &[u8]) -> [u8; 4] {
    crc32fast::hash(frame).to_le_bytes()
}

/// The multicast hash bit of `address` (bits 31:26 of the CRC-32 in Linux's `ether_crc` order).
pub fn hash_bit(address: &[u8]) -> u32 {
    let crc_le = !crc32fast::hash(address); // crc32_le(~0, ...) without the final inversion
    (crc_le.reverse_bits() >> 26) & 0x3f
}

impl Lan9512 {
    /// A powered-up chip; `trace` receives one line per register write and event.
    pub fn new(trace: Box<dyn Write + Send>) -> Self {
        let config_body = [
            &usb_model::interface(0, 0, 3, 0xff, 0x00, 0xff)[..],
            &usb_model::endpoint(BULK_IN, 2, MAX_PACKET as u16, 0)[..],
            &usb_model::endpoint(BULK_OUT, 2, MAX_PACKET as u16, 0)[..],
            &usb_model::endpoint(INTERRUPT_IN, 3, 16, 4)[..],
        ]
        .concat();
        let descriptors = Descriptors {
            device: usb_model::device_descriptor(0xff, 0x00, 0x01, 0x0424, 0xec00, 0x0200, [0, 0, 0], 1),
            configurations: vec![usb_model::configuration(1, 1, 0xe0, &config_body)],
            strings: Vec::new(),
        };
        let mut model = Self {
            descriptors,
            configuration: 0,
            halts: Halts::default(),
            regs: Default::default(),
            phy: Phy::new(),
            rx_fifo: VecDeque::new(),
            rx_fifo_bytes: 0,
            in_stream: InStream::default(),
            tx_stream: Vec::new(),
            tx_frame: None,
            tx_out: Vec::new(),
            interrupt_reported: 0,
            crc_error_every: 0,
            counters: Counters::default(),
            trace,
        };
        model.reset_registers();
        model
    }

    /// Marks every `every`-th accepted frame from the wire as received with a CRC error (RX
    /// status ES and CRC set), as a damaged cable would; 0 turns it off. With HW_CFG.DRP set
    /// the chip drops such frames instead of passing them on.
    pub fn inject_crc_errors(&mut self, every: u64) {
        self.crc_error_every = every;
    }

    fn log(&mut self, line: std::fmt::Arguments) {
        let _ = writeln!(self.trace, "{line}");
        let _ = self.trace.flush();
    }

    fn reset_registers(&mut self) {
        self.regs.clear();
        for (address, value) in [
            (reg::ID_REV, ID_REV_VALUE),
            (reg::INT_STS, 0),
            (reg::RX_CFG, 0),
            (reg::TX_CFG, 0),
            (reg::HW_CFG, 0),
            (reg::PM_CTRL, reg::PM_CTRL_DEV_RDY),
            (reg::LED_GPIO_CFG, 0),
            (reg::GPIO_CFG, 0),
            (reg::AFC_CFG, 0),
            (reg::E2P_CMD, 0),
            (reg::E2P_DATA, 0),
            (reg::BURST_CAP, 0),
            (reg::STRAP_STATUS, 0),
            (reg::DP_SEL, 0),
            (reg::DP_CMD, 0),
            (reg::DP_ADDR, 0),
            (reg::DP_DATA0, 0),
            (reg::DP_DATA1, 0),
            (reg::GPIO_WAKE, 0),
            (reg::INT_EP_CTL, 0),
            (reg::BULK_IN_DLY, 0x800),
            (reg::MAC_CR, 0),
            (reg::ADDRH, 0xffff),
            (reg::ADDRL, 0xffff_ffff),
            (reg::HASHH, 0),
            (reg::HASHL, 0),
            (reg::MII_ADDR, 0),
            (reg::MII_DATA, 0),
            (reg::FLOW, 0),
            (reg::VLAN1, 0),
            (reg::VLAN2, 0),
            (reg::WUFF, 0),
            (reg::WUCSR, 0),
            (reg::COE_CR, 0),
        ] {
            self.regs.insert(address, value);
        }
        self.phy = Phy::new();
        self.rx_fifo.clear();
        self.rx_fifo_bytes = 0;
        self.in_stream.clear();
        self.tx_stream.clear();
        self.tx_frame = None;
        self.interrupt_reported = 0;
    }

    fn reg(&self, address: u16) -> u32 {
        self.regs.get(&address).copied().unwrap_or(0)
    }

    /// The MAC address in ADDRL/ADDRH.
    pub fn mac(&self) -> [u8; 6] {
        let low = self.reg(reg::ADDRL).to_le_bytes();
        let high = self.reg(reg::ADDRH).to_le_bytes();
        [low[0], low[1], low[2], low[3], high[0], high[1]]
    }

    /// The name of register `address`, for the trace.
    pub fn register_name(address: u16) -> &'static str {
        match address {
            reg::ID_REV => "ID_REV",
            reg::INT_STS => "INT_STS",
            reg::RX_CFG => "RX_CFG",
            reg::TX_CFG => "TX_CFG",
            reg::HW_CFG => "HW_CFG",
            reg::RX_FIFO_INF => "RX_FIFO_INF",
            reg::TX_FIFO_INF => "TX_FIFO_INF",
            reg::PM_CTRL => "PM_CTRL",
            reg::LED_GPIO_CFG => "LED_GPIO_CFG",
            reg::GPIO_CFG => "GPIO_CFG",
            reg::AFC_CFG => "AFC_CFG",
            reg::E2P_CMD => "E2P_CMD",
            reg::E2P_DATA => "E2P_DATA",
            reg::BURST_CAP => "BURST_CAP",
            reg::STRAP_STATUS => "STRAP_STATUS",
            reg::DP_SEL => "DP_SEL",
            reg::DP_CMD => "DP_CMD",
            reg::DP_ADDR => "DP_ADDR",
            reg::DP_DATA0 => "DP_DATA0",
            reg::DP_DATA1 => "DP_DATA1",
            reg::GPIO_WAKE => "GPIO_WAKE",
            reg::INT_EP_CTL => "INT_EP_CTL",
            reg::BULK_IN_DLY => "BULK_IN_DLY",
            reg::MAC_CR => "MAC_CR",
            reg::ADDRH => "ADDRH",
            reg::ADDRL => "ADDRL",
            reg::HASHH => "HASHH",
            reg::HASHL => "HASHL",
            reg::MII_ADDR => "MII_ADDR",
            reg::MII_DATA => "MII_DATA",
            reg::FLOW => "FLOW",
            reg::VLAN1 => "VLAN1",
            reg::VLAN2 => "VLAN2",
            reg::WUFF => "WUFF",
            reg::WUCSR => "WUCSR",
            reg::COE_CR => "COE_CR",
            _ => "?",
        }
    }

    fn int_sts(&self) -> u32 {
        let phy = if self.phy.interrupt() { reg::INT_STS_PHY_INT } else { 0 };
        (self.reg(reg::INT_STS) & !reg::INT_STS_PHY_INT) | phy
    }

    /// READ_REGISTER.
    pub fn read_register(&mut self, address: u16) -> u32 {
        self.counters.register_reads += 1;
        match address {
            reg::INT_STS => self.int_sts(),
            reg::RX_FIFO_INF => self.rx_fifo_bytes.min(0xffff) as u32,
            reg::TX_FIFO_INF => 0x4000,
            _ if self.regs.contains_key(&address) => self.reg(address),
            _ => {
                self.counters.unknown_registers += 1;
                self.log(format_args!("R {address:#05x} unknown register"));
                0
            }
        }
    }

    /// WRITE_REGISTER.
    pub fn write_register(&mut self, address: u16, value: u32) {
        self.counters.register_writes += 1;
        let name = Self::register_name(address);
        if name == "?" {
            self.counters.unknown_registers += 1;
            self.log(format_args!("W {address:#05x} {value:#010x} unknown register"));
            return;
        }
        self.log(format_args!("W {name} {value:#010x}"));
        match address {
            reg::ID_REV | reg::RX_FIFO_INF | reg::TX_FIFO_INF | reg::STRAP_STATUS => {}
            reg::INT_STS => {
                let now = self.reg(reg::INT_STS) & !value;
                self.regs.insert(reg::INT_STS, now);
                self.interrupt_reported &= self.int_sts();
            }
            reg::HW_CFG => {
                if value & (reg::HW_CFG_LRST | reg::HW_CFG_SRST) != 0 {
                    // Both resets return the registers, FIFOs and PHY to their defaults; the
                    // model keeps the MAC address over a lite reset.
                    let keep = value & reg::HW_CFG_SRST == 0;
                    let (addrh, addrl) = (self.reg(reg::ADDRH), self.reg(reg::ADDRL));
                    self.reset_registers();
                    if keep {
                        self.regs.insert(reg::ADDRH, addrh);
                        self.regs.insert(reg::ADDRL, addrl);
                    }
                    self.log(format_args!("event {} reset", if keep { "lite" } else { "soft" }));
                    return;
                }
                self.regs.insert(reg::HW_CFG, value & !(reg::HW_CFG_LRST | reg::HW_CFG_SRST));
            }
            reg::PM_CTRL => {
                if value & reg::PM_CTRL_PHY_RST != 0 {
                    self.phy = Phy::new();
                    self.log(format_args!("event PHY reset"));
                }
                self.regs.insert(reg::PM_CTRL, (value & !reg::PM_CTRL_PHY_RST) | reg::PM_CTRL_DEV_RDY);
            }
            reg::RX_CFG => {
                if value & reg::RX_CFG_FIFO_FLUSH != 0 {
                    self.rx_fifo.clear();
                    self.rx_fifo_bytes = 0;
                }
                self.regs.insert(reg::RX_CFG, value & !reg::RX_CFG_FIFO_FLUSH);
            }
            reg::TX_CFG => {
                let mut v = value;
                if value & reg::TX_CFG_FIFO_FLUSH != 0 {
                    self.tx_stream.clear();
                    self.tx_frame = None;
                }
                if value & reg::TX_CFG_STOP != 0 {
                    v &= !reg::TX_CFG_ON;
                }
                self.regs.insert(reg::TX_CFG, v & !(reg::TX_CFG_FIFO_FLUSH | reg::TX_CFG_STOP));
            }
            reg::E2P_CMD => {
                if value & reg::E2P_CMD_BUSY != 0 {
                    // No EEPROM: every command times out.
                    self.regs.insert(reg::E2P_CMD, (value & !reg::E2P_CMD_BUSY) | reg::E2P_CMD_TIMEOUT);
                } else {
                    self.regs.insert(reg::E2P_CMD, value);
                }
            }
            reg::MII_ADDR => {
                let phy = (value >> 11) & 0x1f;
                let register = ((value >> 6) & 0x1f) as usize;
                if value & reg::MII_BUSY != 0 {
                    if value & reg::MII_WRITE != 0 {
                        let data = self.reg(reg::MII_DATA) as u16;
                        if phy == PHY_ADDRESS {
                            self.log(format_args!("W PHY {register} {data:#06x}"));
                            self.phy.write(register, data);
                        }
                    } else {
                        let data = if phy == PHY_ADDRESS { self.phy.read(register) } else { 0xffff };
                        self.regs.insert(reg::MII_DATA, u32::from(data));
                    }
                }
                self.regs.insert(reg::MII_ADDR, value & !reg::MII_BUSY);
            }
            _ => {
                self.regs.insert(address, value);
            }
        }
    }

    fn rx_offset(&self) -> usize {
        ((self.reg(reg::HW_CFG) >> reg::HW_CFG_RXDOFF_SHIFT) & 3) as usize
    }

    fn accepts(&self, frame: &[u8]) -> bool {
        let mac_cr = self.reg(reg::MAC_CR);
        if mac_cr & reg::MAC_CR_PRMS != 0 {
            return true;
        }
        let destination = &frame[..6];
        if destination == [0xff; 6] {
            return mac_cr & reg::MAC_CR_BCAST == 0;
        }
        if destination[0] & 1 != 0 {
            if mac_cr & reg::MAC_CR_MCPAS != 0 {
                return true;
            }
            if mac_cr & reg::MAC_CR_HPFILT != 0 {
                let bit = hash_bit(destination);
                let table = if bit >= 32 { self.reg(reg::HASHH) } else { self.reg(reg::HASHL) };
                return table & (1 << (bit & 31)) != 0;
            }
            return false;
        }
        destination == self.mac()
    }

    fn queue_rx(&mut self, frame: &[u8]) {
        let mut data = frame.to_vec();
        if data.len() < 60 {
            data.resize(60, 0); // the sender's MAC pads short frames on the wire
        }
        data.extend_from_slice(&fcs(&data));
        if self.reg(reg::COE_CR) & reg::COE_RX_EN != 0 {
            // RX checksum offload: the 16-bit one's complement sum of the bytes after the
            // Ethernet header (FCS excluded), stored little-endian after the frame.
            let payload_end = data.len() - 4;
            let sum = ones_complement_sum(&data[14..payload_end], false);
            data.extend_from_slice(&sum.to_le_bytes());
        }
        let mut status = (data.len() as u32) << RX_STS_FL_SHIFT;
        if frame[..6] == [0xff; 6] {
            status |= RX_STS_BF;
        } else if frame[0] & 1 != 0 {
            status |= RX_STS_MF;
        }
        if u16::from_be_bytes([frame[12], frame[13]]) >= 0x0600 {
            status |= RX_STS_FT;
        }
        if self.crc_error_every != 0
            && (self.counters.rx_frames + self.counters.rx_errored_dropped + 1).is_multiple_of(self.crc_error_every)
        {
            if self.reg(reg::HW_CFG) & reg::HW_CFG_DRP != 0 {
                self.counters.rx_errored_dropped += 1;
                return;
            }
            status |= RX_STS_ES | RX_STS_CRC;
            self.counters.rx_crc_errors += 1;
            let count = self.counters.rx_crc_errors;
            self.log(format_args!("event RX frame {count} marked with a CRC error"));
        }
        let mut entry = status.to_le_bytes().to_vec();
        entry.resize(4 + self.rx_offset(), 0);
        entry.extend_from_slice(&data);
        if self.rx_fifo_bytes + entry.len() > RX_FIFO_BYTES {
            self.counters.rx_overflow += 1;
            let now = self.reg(reg::INT_STS) | reg::INT_STS_RXDF;
            self.regs.insert(reg::INT_STS, now);
            return;
        }
        self.rx_fifo_bytes += entry.len();
        self.rx_fifo.push_back(entry);
        self.counters.rx_frames += 1;
    }

    /// The bulk IN transfer the UTX would send next: one frame (SEF) or as many as fit the
    /// burst (MEF), frames after the first starting on a DWORD boundary.
    fn build_transfer(&mut self) -> Option<Vec<u8>> {
        let first = self.rx_fifo.pop_front()?;
        self.rx_fifo_bytes -= first.len();
        let hw_cfg = self.reg(reg::HW_CFG);
        let mut transfer = first;
        let mut frames = 1;
        if hw_cfg & reg::HW_CFG_MEF != 0 {
            let cap = self.burst_bytes().unwrap_or(16 * 1024);
            while let Some(next) = self.rx_fifo.front() {
                let start = transfer.len().next_multiple_of(4);
                if start + next.len() > cap {
                    break;
                }
                let next = self.rx_fifo.pop_front().expect("front exists");
                self.rx_fifo_bytes -= next.len();
                transfer.resize(start, 0);
                transfer.extend_from_slice(&next);
                frames += 1;
            }
        }
        self.counters.in_transfers += 1;
        if frames > 1 {
            self.counters.multi_frame_transfers += 1;
        }
        Some(transfer)
    }

    fn burst_bytes(&self) -> Option<usize> {
        let burst = self.reg(reg::BURST_CAP) as usize & 0xff;
        (self.reg(reg::HW_CFG) & reg::HW_CFG_BCE != 0 && burst > 0).then_some(burst * MAX_PACKET)
    }

    fn tx_error(&mut self, what: std::fmt::Arguments) {
        self.counters.tx_errors += 1;
        let now = self.reg(reg::INT_STS) | reg::INT_STS_TXE;
        self.regs.insert(reg::INT_STS, now);
        self.tx_stream.clear();
        self.tx_frame = None;
        self.log(format_args!("event TX error: {what}"));
    }

    /// Parses whole buffers from the TX stream; false on a loss of sync.
    fn parse_tx(&mut self) -> bool {
        loop {
            if self.tx_stream.len() < 8 {
                return true;
            }
            let a = u32::from_le_bytes(self.tx_stream[0..4].try_into().expect("4 bytes"));
            let b = u32::from_le_bytes(self.tx_stream[4..8].try_into().expect("4 bytes"));
            let offset = ((a >> 16) & 0x1f) as usize;
            let size = (a & 0x7ff) as usize;
            let need = 8 + (offset + size).next_multiple_of(4);
            if size == 0 {
                self.tx_error(format_args!("command A {a:#010x} with a buffer size of 0"));
                return false;
            }
            let first = a & TX_CMD_A_FIRST_SEG != 0;
            if first == self.tx_frame.is_some() {
                self.tx_error(format_args!("command A {a:#010x}: first-segment bit out of order"));
                return false;
            }
            if self.tx_stream.len() < need {
                return true;
            }
            let data = self.tx_stream[8 + offset..8 + offset + size].to_vec();
            self.tx_stream.drain(..need);
            let (command_b, mut frame) = self.tx_frame.take().unwrap_or((b, Vec::new()));
            if command_b & 0x7ff != b & 0x7ff {
                self.tx_error(format_args!("command B {b:#010x} differs from the frame's {command_b:#010x}"));
                return false;
            }
            frame.extend_from_slice(&data);
            if a & TX_CMD_A_LAST_SEG == 0 {
                self.tx_frame = Some((command_b, frame));
                continue;
            }
            let length = (b & 0x7ff) as usize;
            if frame.len() != length {
                self.tx_error(format_args!("frame of {} bytes, command B says {length}", frame.len()));
                return false;
            }
            self.transmit(command_b, frame);
        }
    }

    fn transmit(&mut self, command_b: u32, mut frame: Vec<u8>) {
        if command_b & TX_CMD_B_CSUM != 0 && self.reg(reg::COE_CR) & reg::COE_TX_EN != 0 {
            if frame.len() < 4 {
                self.tx_error(format_args!("checksum preamble missing"));
                return;
            }
            let preamble = u32::from_le_bytes(frame[..4].try_into().expect("4 bytes"));
            frame.drain(..4);
            let start = (preamble & 0xffff) as usize;
            let insert = (preamble >> 16) as usize;
            if start >= frame.len() || insert + 2 > frame.len() {
                self.tx_error(format_args!("checksum preamble {preamble:#010x} outside a {}-byte frame", frame.len()));
                return;
            }
            let sum = !ones_complement_sum(&frame[start..], true);
            frame[insert..insert + 2].copy_from_slice(&sum.to_be_bytes());
        }
        if frame.len() < 14 {
            self.tx_error(format_args!("frame of {} bytes", frame.len()));
            return;
        }
        if self.reg(reg::MAC_CR) & reg::MAC_CR_TXEN == 0 || self.reg(reg::TX_CFG) & reg::TX_CFG_ON == 0 {
            self.counters.tx_disabled += 1;
            return;
        }
        if frame.len() < 60 && command_b & TX_CMD_B_DIS_PADDING == 0 {
            frame.resize(60, 0);
        }
        self.counters.tx_frames += 1;
        self.tx_out.push(frame);
    }

    /// The state the trace's last line summarises.
    pub fn summary(&self) -> String {
        let c = &self.counters;
        format!(
            "summary rx_frames {} rx_filtered {} rx_overflow {} rx_crc_errors {} tx_frames {} tx_errors {} tx_disabled {} register_reads {} register_writes {} unknown_registers {} in_transfers {} multi_frame_transfers {} mac {:02x?}",
            c.rx_frames,
            c.rx_filtered,
            c.rx_overflow,
            c.rx_crc_errors,
            c.tx_frames,
            c.tx_errors,
            c.tx_disabled,
            c.register_reads,
            c.register_writes,
            c.unknown_registers,
            c.in_transfers,
            c.multi_frame_transfers,
            self.mac()
        )
    }

    /// Writes the counters to the trace.
    pub fn trace_summary(&mut self) {
        let line = self.summary();
        self.log(format_args!("{line}"));
    }
}

impl Device for Lan9512 {
    fn connect_info(&self) -> ConnectInfo {
        ConnectInfo {
            speed: Speed::High,
            class: 0xff,
            subclass: 0x00,
            protocol: 0x01,
            vendor: 0x0424,
            product: 0xec00,
            version_bcd: 0x0200,
        }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        if self.configuration != 1 {
            return Vec::new();
        }
        vec![
            Endpoint {
                address: BULK_IN,
                kind: usbredir::transfer::BULK,
                interval: 0,
                interface: 0,
                max_packet: MAX_PACKET as u16,
            },
            Endpoint {
                address: BULK_OUT,
                kind: usbredir::transfer::BULK,
                interval: 0,
                interface: 0,
                max_packet: MAX_PACKET as u16,
            },
            Endpoint {
                address: INTERRUPT_IN,
                kind: usbredir::transfer::INTERRUPT,
                interval: 4,
                interface: 0,
                max_packet: 16,
            },
        ]
    }

    fn interfaces(&self) -> Vec<Interface> {
        if self.configuration != 1 {
            return Vec::new();
        }
        vec![Interface { number: 0, class: 0xff, subclass: 0, protocol: 0xff }]
    }

    fn reset(&mut self) {
        self.configuration = 0;
        self.halts = Halts::default();
        self.reset_registers();
        self.log(format_args!("event USB reset"));
    }

    fn control(&mut self, setup: &Setup, data: &[u8]) -> Result<Vec<u8>, Stalled> {
        let configured = self.configuration == 1;
        match usb_model::standard_request(&self.descriptors, &mut self.halts, setup, |e| {
            configured && [BULK_IN, BULK_OUT, INTERRUPT_IN].contains(&e)
        }) {
            Standard::Answer(bytes) => return Ok(bytes),
            Standard::Stall => return Err(Stalled),
            Standard::NotStandard => {}
        }
        match (setup.request_type, setup.request) {
            (0xc0, READ_REGISTER) if setup.length == 4 => Ok(self.read_register(setup.index).to_le_bytes().to_vec()),
            (0x40, WRITE_REGISTER) if data.len() == 4 => {
                let value = u32::from_le_bytes(data.try_into().expect("4 bytes"));
                self.write_register(setup.index, value);
                Ok(Vec::new())
            }
            _ => {
                self.log(format_args!(
                    "event stalled request type {:#04x} request {:#04x} value {:#06x} index {:#06x} length {}",
                    setup.request_type, setup.request, setup.value, setup.index, setup.length
                ));
                Err(Stalled)
            }
        }
    }

    fn set_configuration(&mut self, value: u8) -> bool {
        if value > 1 {
            return false;
        }
        self.configuration = value;
        self.halts = Halts::default();
        true
    }

    fn configuration(&self) -> u8 {
        self.configuration
    }

    fn set_alt_setting(&mut self, interface: u8, alt: u8) -> bool {
        self.configuration == 1 && interface == 0 && alt == 0
    }

    fn alt_setting(&self, interface: u8) -> Option<u8> {
        (self.configuration == 1 && interface == 0).then_some(0)
    }

    fn bulk_out(&mut self, endpoint: u8, data: &[u8]) -> Status {
        if endpoint != BULK_OUT || self.configuration != 1 {
            return Status::Stall;
        }
        if self.halts.halted(BULK_OUT) {
            return Status::Stall;
        }
        self.tx_stream.extend_from_slice(data);
        if !data.len().is_multiple_of(MAX_PACKET) || data.is_empty() {
            // End of the USB transfer: the next one starts on a DWORD boundary.
            let aligned = self.tx_stream.len().next_multiple_of(4);
            self.tx_stream.resize(aligned, 0);
        }
        if !self.parse_tx() && self.reg(reg::HW_CFG) & reg::HW_CFG_SBP == 0 {
            self.halts.set(BULK_OUT, true);
            return Status::Stall;
        }
        Status::Success
    }

    fn bulk_in(&mut self, endpoint: u8, max: usize) -> BulkIn {
        if endpoint != BULK_IN || self.configuration != 1 || self.halts.halted(BULK_IN) {
            return BulkIn::Stall;
        }
        if !self.in_stream.busy() {
            match self.build_transfer() {
                Some(transfer) => self.in_stream.start(transfer),
                None if self.reg(reg::HW_CFG) & reg::HW_CFG_BIR != 0 => return BulkIn::Nak,
                None => return BulkIn::Data(Vec::new()),
            }
        }
        let full = self.burst_bytes().unwrap_or(0);
        match self.in_stream.next(max, MAX_PACKET, full) {
            Some(piece) => BulkIn::Data(piece),
            None => BulkIn::Nak,
        }
    }

    fn interrupt_in(&mut self, endpoint: u8) -> Option<Vec<u8>> {
        if endpoint != INTERRUPT_IN || self.configuration != 1 {
            return None;
        }
        let enabled = self.reg(reg::INT_EP_CTL) & 0x000f_ffff;
        let active = self.int_sts() & enabled;
        let fresh = active & !self.interrupt_reported;
        self.interrupt_reported = active;
        (fresh != 0).then(|| self.int_sts().to_le_bytes().to_vec())
    }

    fn wire_receive(&mut self, frame: &[u8]) {
        if frame.len() < 14 || frame.len() > 1518 {
            self.counters.rx_filtered += 1;
            return;
        }
        if self.reg(reg::MAC_CR) & reg::MAC_CR_RXEN == 0 || !self.accepts(frame) {
            self.counters.rx_filtered += 1;
            return;
        }
        self.queue_rx(frame);
    }

    fn wire_transmit(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Lan9512 {
        let mut m = Lan9512::new(Box::new(std::io::sink()));
        assert!(m.set_configuration(1));
        m
    }

    fn vendor(m: &mut Lan9512, write: Option<(u16, u32)>, read: Option<u16>) -> Option<u32> {
        if let Some((address, value)) = write {
            let setup = Setup { request_type: 0x40, request: WRITE_REGISTER, value: 0, index: address, length: 4 };
            m.control(&setup, &value.to_le_bytes()).unwrap();
        }
        read.map(|address| {
            let setup = Setup { request_type: 0xc0, request: READ_REGISTER, value: 0, index: address, length: 4 };
            u32::from_le_bytes(m.control(&setup, &[]).unwrap().try_into().unwrap())
        })
    }

    fn mdio_read(m: &mut Lan9512, register: u32) -> u16 {
        vendor(m, Some((reg::MII_ADDR, (1 << 11) | (register << 6) | reg::MII_BUSY)), None);
        assert_eq!(vendor(m, None, Some(reg::MII_ADDR)).unwrap() & reg::MII_BUSY, 0);
        vendor(m, None, Some(reg::MII_DATA)).unwrap() as u16
    }

    /// What Linux's driver does before traffic, in short.
    fn bring_up(m: &mut Lan9512, mac: [u8; 6]) {
        vendor(m, Some((reg::HW_CFG, reg::HW_CFG_LRST)), None);
        assert_eq!(vendor(m, None, Some(reg::HW_CFG)).unwrap() & reg::HW_CFG_LRST, 0);
        let low = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let high = u32::from_le_bytes([mac[4], mac[5], 0, 0]);
        vendor(m, Some((reg::ADDRL, low)), None);
        vendor(m, Some((reg::ADDRH, high)), None);
        let hw = reg::HW_CFG_BIR | reg::HW_CFG_MEF | reg::HW_CFG_BCE | (2 << reg::HW_CFG_RXDOFF_SHIFT);
        vendor(m, Some((reg::HW_CFG, hw)), None);
        vendor(m, Some((reg::BURST_CAP, 4)), None);
        vendor(m, Some((reg::COE_CR, reg::COE_RX_EN | reg::COE_TX_EN)), None);
        vendor(m, Some((reg::MAC_CR, reg::MAC_CR_TXEN | reg::MAC_CR_RXEN)), None);
        vendor(m, Some((reg::TX_CFG, reg::TX_CFG_ON)), None);
    }

    const MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 1, 2, 3];

    fn frame(destination: [u8; 6], length: usize, seed: u8) -> Vec<u8> {
        let mut f = destination.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        f.extend((0..length - 14).map(|i| (i as u8).wrapping_mul(seed)));
        f
    }

    #[test]
    fn registers_phy_and_eeprom() {
        let mut m = model();
        assert_eq!(vendor(&mut m, None, Some(reg::ID_REV)), Some(ID_REV_VALUE));
        assert_eq!(mdio_read(&mut m, 2), 0x0007);
        assert_eq!(mdio_read(&mut m, 3) & 0xfff0, 0xc0c0);
        assert_ne!(mdio_read(&mut m, 1) & 0x0004, 0, "link up");
        // No EEPROM: a read command times out.
        vendor(&mut m, Some((reg::E2P_CMD, reg::E2P_CMD_BUSY | 1)), None);
        let e2p = vendor(&mut m, None, Some(reg::E2P_CMD)).unwrap();
        assert_eq!(e2p & (reg::E2P_CMD_BUSY | reg::E2P_CMD_TIMEOUT), reg::E2P_CMD_TIMEOUT);
        // PHY interrupt: restart autonegotiation with the mask set raises INT_STS.PHY_INT and
        // one interrupt packet once INT_EP_CTL enables it.
        mdio_read(&mut m, 29);
        vendor(&mut m, Some((reg::MII_DATA, 0x0040)), None);
        vendor(&mut m, Some((reg::MII_ADDR, (1 << 11) | (30 << 6) | reg::MII_WRITE | reg::MII_BUSY)), None);
        vendor(&mut m, Some((reg::INT_EP_CTL, reg::INT_STS_PHY_INT)), None);
        assert_eq!(m.interrupt_in(INTERRUPT_IN), None);
        vendor(&mut m, Some((reg::MII_DATA, 0x1200)), None);
        vendor(&mut m, Some((reg::MII_ADDR, (1 << 11) | reg::MII_WRITE | reg::MII_BUSY)), None);
        assert_ne!(vendor(&mut m, None, Some(reg::INT_STS)).unwrap() & reg::INT_STS_PHY_INT, 0);
        let packet = m.interrupt_in(INTERRUPT_IN).expect("an interrupt packet");
        assert_ne!(u32::from_le_bytes(packet.try_into().unwrap()) & reg::INT_STS_PHY_INT, 0);
        assert_eq!(m.interrupt_in(INTERRUPT_IN), None, "one packet per event");
        assert_eq!(mdio_read(&mut m, 29), 0x0040, "source read clears it");
        assert_eq!(vendor(&mut m, None, Some(reg::INT_STS)).unwrap() & reg::INT_STS_PHY_INT, 0);
        // Unknown registers are counted.
        vendor(&mut m, Some((0x200, 1)), Some(0x204));
        assert_eq!(m.counters.unknown_registers, 2);
    }

    #[test]
    fn rx_framing_mef_offset_padding_and_checksum() {
        let mut m = model();
        bring_up(&mut m, MAC);
        // BIR set, nothing received: NAK.
        assert_eq!(m.bulk_in(BULK_IN, 2048), BulkIn::Nak);
        let a = frame(MAC, 100, 3);
        let b = frame([0xff; 6], 61, 5);
        let other = frame([2, 9, 9, 9, 9, 9], 80, 1);
        m.wire_receive(&a);
        m.wire_receive(&other);
        m.wire_receive(&b);
        assert_eq!(m.counters.rx_filtered, 1);
        let BulkIn::Data(t) = m.bulk_in(BULK_IN, 2048) else { panic!() };
        // Frame 1: status, 2 offset bytes, 100 + 4 (FCS) + 2 (checksum) bytes.
        let s1 = u32::from_le_bytes(t[0..4].try_into().unwrap());
        assert_eq!(s1 >> 16, 106);
        assert_eq!(&t[6..106], &a[..]);
        assert_eq!(&t[106..110], &fcs(&a));
        let sum = u16::from_le_bytes([t[110], t[111]]);
        assert_eq!(sum, ones_complement_sum(&a[14..], false));
        // Frame 2 starts on the next DWORD boundary: 4 + 2 + 106 = 112, already aligned.
        let s2 = u32::from_le_bytes(t[112..116].try_into().unwrap());
        assert_eq!(s2 >> 16, 61 + 4 + 2);
        assert_ne!(s2 & RX_STS_BF, 0);
        assert_eq!(&t[118..179], &b[..]);
        assert_eq!(t.len(), 112 + 4 + 2 + 67, "no padding after the last frame");
        assert_eq!(m.counters.multi_frame_transfers, 1);
        assert_eq!(m.bulk_in(BULK_IN, 2048), BulkIn::Nak);
        // A short frame is padded to 60 bytes before the FCS.
        m.wire_receive(&frame(MAC, 42, 7));
        let BulkIn::Data(t) = m.bulk_in(BULK_IN, 2048) else { panic!() };
        assert_eq!(u32::from_le_bytes(t[0..4].try_into().unwrap()) >> 16, 60 + 4 + 2);
    }

    #[test]
    fn burst_cap_splits_and_zero_length_packet() {
        let mut m = model();
        bring_up(&mut m, MAC);
        // Burst of 4 packets (2,048 bytes): three 1,000-byte frames do not fit one transfer.
        for seed in 1..=3 {
            m.wire_receive(&frame(MAC, 1000, seed));
        }
        let BulkIn::Data(t1) = m.bulk_in(BULK_IN, 2048) else { panic!() };
        let BulkIn::Data(t2) = m.bulk_in(BULK_IN, 2048) else { panic!() };
        assert_eq!(t1.len(), 1012 + 1012, "two frames, the second DWORD-aligned");
        assert_eq!(t2.len(), 1012);
        // A transfer of exactly 512 bytes is followed by a zero-length packet.
        m.wire_receive(&frame(MAC, 512 - 12, 9));
        let BulkIn::Data(t) = m.bulk_in(BULK_IN, 2048) else { panic!() };
        assert_eq!(t.len(), 512);
        assert_eq!(m.bulk_in(BULK_IN, 1536), BulkIn::Data(Vec::new()));
        assert_eq!(m.bulk_in(BULK_IN, 2048), BulkIn::Nak);
        // BIR clear: an empty FIFO answers with zero-length packets.
        vendor(&mut m, Some((reg::HW_CFG, reg::HW_CFG_MEF)), None);
        assert_eq!(m.bulk_in(BULK_IN, 2048), BulkIn::Data(Vec::new()));
    }

    #[test]
    fn injected_crc_errors_are_marked_or_dropped() {
        let mut m = model();
        bring_up(&mut m, MAC);
        m.inject_crc_errors(2);
        m.wire_receive(&frame(MAC, 100, 1));
        m.wire_receive(&frame(MAC, 100, 2));
        let BulkIn::Data(t) = m.bulk_in(BULK_IN, 4096) else { panic!() };
        let s1 = u32::from_le_bytes(t[0..4].try_into().unwrap());
        assert_eq!(s1 & RX_STS_ES, 0);
        let s2 = u32::from_le_bytes(t[112..116].try_into().unwrap());
        assert_eq!(s2 & (RX_STS_ES | RX_STS_CRC), RX_STS_ES | RX_STS_CRC);
        assert_eq!(m.counters.rx_crc_errors, 1);
        let hw = vendor(&mut m, None, Some(reg::HW_CFG)).unwrap();
        vendor(&mut m, Some((reg::HW_CFG, hw | reg::HW_CFG_DRP)), None);
        m.wire_receive(&frame(MAC, 100, 3));
        m.wire_receive(&frame(MAC, 100, 4));
        assert_eq!(m.counters.rx_errored_dropped, 1);
    }

    #[test]
    fn rx_overflow_is_counted() {
        let mut m = model();
        bring_up(&mut m, MAC);
        for _ in 0..30 {
            m.wire_receive(&frame(MAC, 1500, 1));
        }
        assert!(m.counters.rx_overflow > 0);
        assert_ne!(vendor(&mut m, None, Some(reg::INT_STS)).unwrap() & reg::INT_STS_RXDF, 0);
    }

    fn tx_buffer(a: u32, b: u32, data: &[u8]) -> Vec<u8> {
        let mut out = a.to_le_bytes().to_vec();
        out.extend_from_slice(&b.to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn tx_command_words_segments_and_checksum() {
        let mut m = model();
        bring_up(&mut m, MAC);
        // One frame in one transfer.
        let f = frame([2, 0, 0, 0, 0, 1], 100, 3);
        let cmd = |len: usize| (len as u32) | TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG;
        assert_eq!(m.bulk_out(BULK_OUT, &tx_buffer(cmd(100), 100, &f)), Status::Success);
        assert_eq!(m.wire_transmit(), vec![f.clone()]);
        // Two frames in one transfer (the first padded to a DWORD), a short one padded to 60.
        let g = frame([2, 0, 0, 0, 0, 1], 43, 5);
        let mut t = tx_buffer(cmd(43), 43, &g);
        t.resize(t.len().next_multiple_of(4), 0xee);
        t.extend(tx_buffer(cmd(100), 100, &f));
        assert_eq!(m.bulk_out(BULK_OUT, &t), Status::Success);
        let sent = m.wire_transmit();
        assert_eq!(sent.len(), 2);
        assert_eq!(&sent[0][..43], &g[..]);
        assert_eq!(sent[0].len(), 60);
        // A frame in two segments, sent as 512-byte USB packets.
        let big = frame([2, 0, 0, 0, 0, 1], 1400, 7);
        let mut t = tx_buffer(700 | TX_CMD_A_FIRST_SEG, 1400, &big[..700]);
        t.extend(tx_buffer(700 | TX_CMD_A_LAST_SEG, 1400, &big[700..]));
        for chunk in t.chunks(512) {
            assert_eq!(m.bulk_out(BULK_OUT, chunk), Status::Success);
        }
        assert_eq!(m.wire_transmit(), vec![big.clone()]);
        // Checksum offload: preamble (start 34, insert 40) in front of an IPv4/UDP frame.
        let mut udp = frame([2, 0, 0, 0, 0, 1], 60, 1);
        udp[40] = 0;
        udp[41] = 0;
        let preamble = (40u32 << 16) | 34;
        let mut data = preamble.to_le_bytes().to_vec();
        data.extend_from_slice(&udp);
        assert_eq!(m.bulk_out(BULK_OUT, &tx_buffer(cmd(64), 64 | TX_CMD_B_CSUM, &data)), Status::Success);
        let sent = m.wire_transmit();
        let expect = !ones_complement_sum(&udp[34..], true);
        assert_eq!(u16::from_be_bytes([sent[0][40], sent[0][41]]), expect);
        // Loss of sync (buffer size 0): TXE and a stalled pipe until CLEAR_FEATURE.
        assert_eq!(m.bulk_out(BULK_OUT, &tx_buffer(TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG, 0, &[])), Status::Stall);
        assert_eq!(m.counters.tx_errors, 1);
        assert_eq!(m.bulk_out(BULK_OUT, &tx_buffer(cmd(100), 100, &f)), Status::Stall);
        let clear = Setup { request_type: 0x02, request: 1, value: 0, index: u16::from(BULK_OUT), length: 0 };
        m.control(&clear, &[]).unwrap();
        assert_eq!(m.bulk_out(BULK_OUT, &tx_buffer(cmd(100), 100, &f)), Status::Success);
        assert_eq!(m.wire_transmit(), vec![f]);
    }

    #[test]
    fn multicast_hash_filter() {
        let mut m = model();
        bring_up(&mut m, MAC);
        let group = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
        m.wire_receive(&frame(group, 64, 1));
        assert_eq!(m.counters.rx_frames, 0);
        let bit = hash_bit(&group);
        // Linux's smsc95xx_hash() example: 01:00:5e:00:00:01 -> bit 31 ("returns bit number 31").
        assert_eq!(bit, 31);
        vendor(&mut m, Some((reg::HASHL, 1 << 31)), None);
        vendor(&mut m, Some((reg::MAC_CR, reg::MAC_CR_TXEN | reg::MAC_CR_RXEN | reg::MAC_CR_HPFILT)), None);
        m.wire_receive(&frame(group, 64, 1));
        assert_eq!(m.counters.rx_frames, 1);
    }
}

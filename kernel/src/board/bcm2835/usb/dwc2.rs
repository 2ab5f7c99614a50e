//! Synopsys DesignWare Hi-Speed USB 2.0 OTG controller (DWC2) in host mode, DMA mode.
//!
//! Register names and bits follow the DWC2 databook as used by the BCM2835 ("USB" chapter of the
//! BCM2835 ARM Peripherals document points to it): the core global registers at 0x000, the host
//! registers at 0x400, eight host channels at 0x500 + 0x20 * n, power and clock gating at 0xE00.
//!
//! Transfers are split-phase: [`Dwc2::start`] arms a channel and [`Dwc2::poll`] reports its
//! completion (the USB stack in `jos_kcore::usb` reaches them through the `HostController`
//! trait, implemented in [`super::hal`]). No wait in this file is unbounded: each has a timeout
//! from the system timer.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

pub use jos_kcore::usb::host::{Channel, Completion, EndpointType, Pid, Pipe, Speed, UsbError};

use super::hal;
use crate::board::bcm2835::mmio::Mmio;

register_bitfields! {
    u32,
    /// Core AHB configuration (GAHBCFG, offset 0x008).
    GAHBCFG [
        /// Global interrupt mask: 1 lets the core raise its interrupt line.
        GlblIntrMsk OFFSET(0) NUMBITS(1) [],
        /// Maximum AXI burst length (BCM2835's AXI bridge, not in the Synopsys databook):
        /// 0 lets the bridge choose; Circle and USPi clear it.
        MaxAxiBurst OFFSET(1) NUMBITS(2) [],
        /// Wait for AXI writes to complete before the core reports a DMA done (BCM2835's AXI
        /// bridge): without it a completion may be seen before the data is in memory.
        WaitAxiWrites OFFSET(4) NUMBITS(1) [],
        /// DMA enable: the core masters the AHB to move data (internal DMA mode).
        DMAEn OFFSET(5) NUMBITS(1) []
    ],
    /// Core USB configuration (GUSBCFG, offset 0x00C).
    GUSBCFG [
        /// PHY interface width: 0 = 8 bits (the BCM2835's UTMI+ PHY).
        PHYIf OFFSET(3) NUMBITS(1) [],
        /// ULPI or UTMI+ select: 0 = UTMI+.
        ULPIUTMISel OFFSET(4) NUMBITS(1) [],
        /// SRP capable (session request protocol; jos is a host only).
        SRPCap OFFSET(8) NUMBITS(1) [],
        /// HNP capable (host negotiation protocol; jos is a host only).
        HNPCap OFFSET(9) NUMBITS(1) [],
        /// ULPI FS/LS select (only with a ULPI high-speed PHY and a dedicated FS PHY).
        ULPIFsLs OFFSET(17) NUMBITS(1) [],
        /// ULPI clock suspend mode (same condition).
        ULPIClkSusM OFFSET(19) NUMBITS(1) [],
        /// ULPI external VBUS drive: 0 = the PHY drives VBUS internally.
        ULPIExtVbusDrv OFFSET(20) NUMBITS(1) [],
        /// TermSel DLine pulsing: 0 = data-line pulsing uses utmi_txvalid.
        TermSelDLPulse OFFSET(22) NUMBITS(1) [],
        /// Force host mode regardless of the ID pin.
        ForceHstMode OFFSET(29) NUMBITS(1) [],
        /// Force device mode.
        ForceDevMode OFFSET(30) NUMBITS(1) []
    ],
    /// Core reset (GRSTCTL, offset 0x010).
    GRSTCTL [
        /// Core soft reset; the core clears it when the reset is done.
        CSftRst OFFSET(0) NUMBITS(1) [],
        /// RxFIFO flush.
        RxFFlsh OFFSET(4) NUMBITS(1) [],
        /// TxFIFO flush.
        TxFFlsh OFFSET(5) NUMBITS(1) [],
        /// TxFIFO number to flush; 0x10 flushes all.
        TxFNum OFFSET(6) NUMBITS(5) [],
        /// AHB master idle.
        AHBIdle OFFSET(31) NUMBITS(1) []
    ],
    /// Core interrupt status (GINTSTS, offset 0x014).
    GINTSTS [
        /// Current mode of operation: 1 = host.
        CurMod OFFSET(0) NUMBITS(1) [],
        /// Host port interrupt.
        PrtInt OFFSET(24) NUMBITS(1) [],
        /// Host channels interrupt.
        HChInt OFFSET(25) NUMBITS(1) []
    ],
    /// FIFO size registers (GRXFSIZ 0x024, GNPTXFSIZ 0x028, HPTXFSIZ 0x100).
    FIFOSIZE [
        /// Start address in 32-bit words (not used by GRXFSIZ).
        StartAddr OFFSET(0) NUMBITS(16) [],
        /// Depth in 32-bit words (GRXFSIZ: bits 15..0 hold the depth; written with StartAddr).
        Depth OFFSET(16) NUMBITS(16) []
    ],
    /// User hardware configuration 2 (GHWCFG2, offset 0x048).
    GHWCFG2 [
        /// High-speed PHY interface: 0 none, 1 UTMI+, 2 ULPI, 3 both.
        HsPhyType OFFSET(6) NUMBITS(2) [],
        /// Full-speed PHY interface: 1 = dedicated.
        FsPhyType OFFSET(8) NUMBITS(2) [],
        /// Number of host channels minus one.
        NumHstChnl OFFSET(14) NUMBITS(4) []
    ],
    /// Host configuration (HCFG, offset 0x400).
    HCFG [
        /// FS/LS PHY clock select: 0 = 30/60 MHz (UTMI+), 1 = 48 MHz.
        FSLSPclkSel OFFSET(0) NUMBITS(2) []
    ],
    /// Host frame number / frame time remaining (HFNUM, offset 0x408).
    HFNUM [
        /// Frame number.
        FrNum OFFSET(0) NUMBITS(16) []
    ],
    /// Host port control and status (HPRT, offset 0x440). Bits 1, 2, 3 and 5 are
    /// write-1-to-clear (2, PrtEna, is cleared by a 1: writing it back disables the port).
    HPRT [
        /// Port connect status.
        PrtConnSts OFFSET(0) NUMBITS(1) [],
        /// Port connect detected (W1C).
        PrtConnDet OFFSET(1) NUMBITS(1) [],
        /// Port enable (W1C: software can only disable).
        PrtEna OFFSET(2) NUMBITS(1) [],
        /// Port enable/disable change (W1C).
        PrtEnChng OFFSET(3) NUMBITS(1) [],
        /// Port overcurrent active.
        PrtOvrCurrAct OFFSET(4) NUMBITS(1) [],
        /// Port overcurrent change (W1C).
        PrtOvrCurrChng OFFSET(5) NUMBITS(1) [],
        /// Port reset.
        PrtRst OFFSET(8) NUMBITS(1) [],
        /// Port power.
        PrtPwr OFFSET(12) NUMBITS(1) [],
        /// Port speed: 0 high, 1 full, 2 low.
        PrtSpd OFFSET(17) NUMBITS(2) [ High = 0, Full = 1, Low = 2 ]
    ],
    /// Host channel characteristics (HCCHARn, 0x500 + 0x20 * n).
    HCCHAR [
        /// Maximum packet size.
        MPS OFFSET(0) NUMBITS(11) [],
        /// Endpoint number.
        EPNum OFFSET(11) NUMBITS(4) [],
        /// Endpoint direction: 1 = IN.
        EPDir OFFSET(15) NUMBITS(1) [],
        /// Low-speed device.
        LSpdDev OFFSET(17) NUMBITS(1) [],
        /// Endpoint type.
        EPType OFFSET(18) NUMBITS(2) [ Control = 0, Isochronous = 1, Bulk = 2, Interrupt = 3 ],
        /// Multi count: transactions per microframe (1 for non-periodic).
        MC OFFSET(20) NUMBITS(2) [],
        /// Device address.
        DevAddr OFFSET(22) NUMBITS(7) [],
        /// Odd frame (periodic transfers).
        OddFrm OFFSET(29) NUMBITS(1) [],
        /// Channel disable.
        ChDis OFFSET(30) NUMBITS(1) [],
        /// Channel enable.
        ChEna OFFSET(31) NUMBITS(1) []
    ],
    /// Host channel split control (HCSPLTn).
    HCSPLT [
        /// Split enable.
        SpltEna OFFSET(31) NUMBITS(1) []
    ],
    /// Host channel interrupt (HCINTn; W1C) and its mask (HCINTMSKn).
    HCINT [
        /// Transfer completed normally.
        XferCompl OFFSET(0) NUMBITS(1) [],
        /// Channel halted (transfer ended, normally or not).
        ChHltd OFFSET(1) NUMBITS(1) [],
        /// AHB error during DMA.
        AHBErr OFFSET(2) NUMBITS(1) [],
        /// STALL response received.
        STALL OFFSET(3) NUMBITS(1) [],
        /// NAK response received.
        NAK OFFSET(4) NUMBITS(1) [],
        /// ACK response received/transmitted.
        ACK OFFSET(5) NUMBITS(1) [],
        /// NYET response received.
        NYET OFFSET(6) NUMBITS(1) [],
        /// Transaction error (CRC, timeout, bit stuff, false EOP).
        XactErr OFFSET(7) NUMBITS(1) [],
        /// Babble error.
        BblErr OFFSET(8) NUMBITS(1) [],
        /// Frame overrun.
        FrmOvrun OFFSET(9) NUMBITS(1) [],
        /// Data toggle error.
        DataTglErr OFFSET(10) NUMBITS(1) []
    ],
    /// Host channel transfer size (HCTSIZn).
    HCTSIZ [
        /// Transfer size in bytes; counts down as data moves.
        XferSize OFFSET(0) NUMBITS(19) [],
        /// Packet count; counts down.
        PktCnt OFFSET(19) NUMBITS(10) [],
        /// PID of the first packet; the core updates it to the next toggle.
        Pid OFFSET(29) NUMBITS(2) [ Data0 = 0, Data2 = 1, Data1 = 2, Setup = 3 ],
        /// Do PING (high-speed OUT).
        DoPng OFFSET(31) NUMBITS(1) []
    ]
}

register_structs! {
    #[allow(non_snake_case)]
    /// One host channel's registers (0x20 bytes).
    pub HostChannel {
        (0x00 => HCCHAR: ReadWrite<u32, HCCHAR::Register>),
        (0x04 => HCSPLT: ReadWrite<u32, HCSPLT::Register>),
        (0x08 => HCINT: ReadWrite<u32, HCINT::Register>),
        (0x0c => HCINTMSK: ReadWrite<u32, HCINT::Register>),
        (0x10 => HCTSIZ: ReadWrite<u32, HCTSIZ::Register>),
        (0x14 => HCDMA: ReadWrite<u32>),
        (0x18 => _reserved),
        (0x20 => @END),
    }
}

register_structs! {
    #[allow(non_snake_case)]
    /// The DWC2 register block.
    pub Registers {
        (0x000 => GOTGCTL: ReadWrite<u32>),
        (0x004 => GOTGINT: ReadWrite<u32>),
        (0x008 => GAHBCFG: ReadWrite<u32, GAHBCFG::Register>),
        (0x00c => GUSBCFG: ReadWrite<u32, GUSBCFG::Register>),
        (0x010 => GRSTCTL: ReadWrite<u32, GRSTCTL::Register>),
        (0x014 => GINTSTS: ReadWrite<u32, GINTSTS::Register>),
        (0x018 => GINTMSK: ReadWrite<u32>),
        (0x01c => _reserved0),
        (0x024 => GRXFSIZ: ReadWrite<u32>),
        (0x028 => GNPTXFSIZ: ReadWrite<u32, FIFOSIZE::Register>),
        (0x02c => _reserved1),
        (0x040 => GSNPSID: ReadOnly<u32>),
        (0x044 => GHWCFG1: ReadOnly<u32>),
        (0x048 => GHWCFG2: ReadOnly<u32, GHWCFG2::Register>),
        (0x04c => GHWCFG3: ReadOnly<u32>),
        (0x050 => GHWCFG4: ReadOnly<u32>),
        (0x054 => _reserved2),
        (0x100 => HPTXFSIZ: ReadWrite<u32, FIFOSIZE::Register>),
        (0x104 => _reserved3),
        (0x400 => HCFG: ReadWrite<u32, HCFG::Register>),
        (0x404 => HFIR: ReadWrite<u32>),
        (0x408 => HFNUM: ReadOnly<u32, HFNUM::Register>),
        (0x40c => _reserved4),
        (0x414 => HAINT: ReadOnly<u32>),
        (0x418 => HAINTMSK: ReadWrite<u32>),
        (0x41c => _reserved5),
        (0x440 => HPRT: ReadWrite<u32, HPRT::Register>),
        (0x444 => _reserved6),
        (0x500 => HC: [HostChannel; 8]),
        (0x600 => _reserved7),
        (0xe00 => PCGCCTL: ReadWrite<u32>),
        (0xe04 => @END),
    }
}

/// Base of the DWC2 block (BCM2835 ARM Peripherals, section 1.2: USB at 0x7E98_0000 bus).
pub const DWC2_BASE: usize = crate::board::bcm2835::PERIPHERAL_BASE + 0x0098_0000;
/// Channels this driver uses (the BCM2835 core and QEMU have 8).
pub const CHANNELS: usize = 8;
/// The largest transfer one channel takes (QEMU's limit; the core allows 512 KiB).
pub const MAX_TRANSFER: usize = 65_536;
/// How long a channel may take to halt after ChDis (a few frames at most on silicon).
pub const HALT_TIMEOUT_US: u64 = 10_000;
/// The PHY's settling time after a core soft reset (dwc_otg, Circle and USPi: 100 ms).
pub const RESET_SETTLE_US: u32 = 100_000;
/// How long the root port may take to see a device after port power (Circle's default).
pub const CONNECT_WAIT_US: u64 = 510_000;
/// Reset recovery after the root port reset (USB 2.0 TRSTRCY is 10 ms; Circle's 20 ms).
pub const RESET_RECOVERY_US: u32 = 20_000;

/// The DWC2 host controller driver. Methods take `&self`; the registers and the channel
/// bitmap are the only state.
pub struct Dwc2 {
    registers: Mmio<Registers>,
    claimed: core::sync::atomic::AtomicU8,
    requested: [core::sync::atomic::AtomicU32; CHANNELS],
    /// The channel's last transfer was a high-speed OUT the device answered NYET or NAK: the
    /// next OUT on it starts with the PING protocol (HCTSIZ.DoPng).
    ping: [core::sync::atomic::AtomicBool; CHANNELS],
    /// 1 when the transfer last started on the channel is a high-speed bulk or control OUT data
    /// transfer (one that may use PING), for the decision in [`Dwc2::poll`].
    started: [core::sync::atomic::AtomicU8; CHANNELS],
}

impl Dwc2 {
    /// Creates the driver for the block at `base`.
    ///
    /// # Safety
    /// `base` must be the DWC2 register block, mapped as device memory, and no other driver may
    /// program it.
    pub const unsafe fn new(base: usize) -> Self {
        Self {
            // SAFETY: the caller promises `base` is the DWC2 block for the kernel's lifetime.
            registers: unsafe { Mmio::new(base) },
            claimed: core::sync::atomic::AtomicU8::new(0),
            requested: [const { core::sync::atomic::AtomicU32::new(0) }; CHANNELS],
            ping: [const { core::sync::atomic::AtomicBool::new(false) }; CHANNELS],
            started: [const { core::sync::atomic::AtomicU8::new(0) }; CHANNELS],
        }
    }

    /// Waits until `done()` or `timeout_us` passes; true when `done()` held.
    fn wait(timeout_us: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = hal::now_micros() + timeout_us;
        loop {
            if done() {
                return true;
            }
            if hal::now_micros() > deadline {
                return done();
            }
            hal::relax();
        }
    }

    /// Powers the core, resets it, forces host mode with DMA, sizes the FIFOs, powers and resets
    /// the root port. Returns the speed of the device on the root port.
    ///
    /// The sequence and its waits follow what runs on the silicon: the Raspberry Pi's Linux
    /// `dwc_otg` driver (`dwc_otg_core_init`, `dwc_otg_core_host_init`, `dwc_otg_hcd`'s root
    /// port reset), Circle (`dwhcidevice.cpp`: `InitCore`, `InitHost`, `EnableRootPort`) and USPi,
    /// which agree on them:
    /// - GUSBCFG before the reset: the PHY drives VBUS itself (ULPIExtVbusDrv 0), no DLine
    ///   pulsing select (TermSelDLPulse 0);
    /// - core soft reset: AHB master idle first, CSftRst until it clears, then 100 ms for the
    ///   PHY (dwc_otg, Circle, USPi all wait 100 ms; QEMU needs none);
    /// - GUSBCFG after it: UTMI+ (ULPIUTMISel 0), 8-bit interface (PHYIf 0), no HNP/SRP;
    ///   ULPIFsLs / ULPIClkSusM and HCFG's 48 MHz FS/LS clock only with a ULPI high-speed PHY and
    ///   a dedicated FS PHY (GHWCFG2), otherwise the 30/60 MHz clock (the BCM2835's case);
    /// - GAHBCFG: DMA on, the BCM2835 AXI bridge's "wait for AXI writes" on, its burst field 0;
    /// - FIFO flushes followed by a microsecond (3 PHY clocks);
    /// - the root port: power, wait up to 510 ms for a connection (Circle's default USB power
    ///   delay), 100 ms debounce (USB 2.0 7.1.7.3), reset held 50 ms (TDRSTR), then 20 ms of
    ///   reset recovery (USB 2.0 asks 10 ms; Circle found some devices need 20).
    pub fn init(&self) -> Result<Speed, UsbError> {
        let r = &*self.registers;
        // A refused power request is not fatal: QEMU's controller is powered from reset, and
        // on hardware a missing power domain shows up as a bad GSNPSID just below.
        let _ = hal::power_on_usb();
        let id = r.GSNPSID.get();
        if id >> 16 != 0x4f54 {
            return Err(UsbError::NotDwc2(id));
        }
        r.GAHBCFG.modify(GAHBCFG::GlblIntrMsk::CLEAR);
        r.GUSBCFG.modify(GUSBCFG::ULPIExtVbusDrv::CLEAR + GUSBCFG::TermSelDLPulse::CLEAR);
        // Core soft reset: wait for the AHB master to idle, reset, wait for the bit to clear.
        if !Self::wait(100_000, || r.GRSTCTL.is_set(GRSTCTL::AHBIdle)) {
            return Err(UsbError::ResetTimeout);
        }
        r.GRSTCTL.write(GRSTCTL::CSftRst::SET);
        if !Self::wait(100_000, || !r.GRSTCTL.is_set(GRSTCTL::CSftRst)) {
            return Err(UsbError::ResetTimeout);
        }
        hal::delay_micros(RESET_SETTLE_US);
        if !Self::wait(100_000, || r.GRSTCTL.is_set(GRSTCTL::AHBIdle)) {
            return Err(UsbError::ResetTimeout);
        }
        // The PHY: UTMI+, 8 bits wide; FS/LS through ULPI only where the core has that pair.
        r.GUSBCFG.modify(
            GUSBCFG::ULPIUTMISel::CLEAR + GUSBCFG::PHYIf::CLEAR + GUSBCFG::HNPCap::CLEAR + GUSBCFG::SRPCap::CLEAR,
        );
        let ulpi_fsls = r.GHWCFG2.read(GHWCFG2::HsPhyType) == 2 && r.GHWCFG2.read(GHWCFG2::FsPhyType) == 1;
        if ulpi_fsls {
            r.GUSBCFG.modify(GUSBCFG::ULPIFsLs::SET + GUSBCFG::ULPIClkSusM::SET);
        } else {
            r.GUSBCFG.modify(GUSBCFG::ULPIFsLs::CLEAR + GUSBCFG::ULPIClkSusM::CLEAR);
        }
        r.PCGCCTL.set(0);
        // Host mode takes up to 25 ms to switch (databook: GUSBCFG.ForceHstMode).
        r.GUSBCFG.modify(GUSBCFG::ForceDevMode::CLEAR + GUSBCFG::ForceHstMode::SET);
        hal::delay_micros(25_000);
        // Internal DMA, interrupts stay masked: the executive polls.
        r.GINTMSK.set(0);
        r.GINTSTS.set(u32::MAX);
        r.GAHBCFG.write(GAHBCFG::DMAEn::SET + GAHBCFG::WaitAxiWrites::SET + GAHBCFG::MaxAxiBurst.val(0));
        // FIFOs, in 32-bit words: RX 1024, non-periodic TX 1024 at 1024, periodic TX 1024 at 2048.
        r.GRXFSIZ.set(1024);
        r.GNPTXFSIZ.write(FIFOSIZE::StartAddr.val(1024) + FIFOSIZE::Depth.val(1024));
        r.HPTXFSIZ.write(FIFOSIZE::StartAddr.val(2048) + FIFOSIZE::Depth.val(1024));
        r.GRSTCTL.write(GRSTCTL::TxFFlsh::SET + GRSTCTL::TxFNum.val(0x10));
        let tx_flushed = Self::wait(100_000, || !r.GRSTCTL.is_set(GRSTCTL::TxFFlsh));
        hal::delay_micros(1);
        r.GRSTCTL.write(GRSTCTL::RxFFlsh::SET);
        let rx_flushed = Self::wait(100_000, || !r.GRSTCTL.is_set(GRSTCTL::RxFFlsh));
        hal::delay_micros(1);
        if !(tx_flushed && rx_flushed) {
            return Err(UsbError::ResetTimeout);
        }
        r.HCFG.write(HCFG::FSLSPclkSel.val(u32::from(ulpi_fsls)));
        for channel in r.HC.iter() {
            channel.HCINTMSK.set(0);
            channel.HCINT.set(u32::MAX);
        }
        r.HAINTMSK.set(0);
        // Port power, then wait for a connection.
        self.write_port(HPRT::PrtPwr::SET.value);
        if !Self::wait(CONNECT_WAIT_US, || r.HPRT.is_set(HPRT::PrtConnSts)) {
            return Err(UsbError::NoDevice);
        }
        hal::delay_micros(100_000); // USB 2.0 7.1.7.3: debounce after connect
        self.write_port(HPRT::PrtPwr::SET.value | HPRT::PrtRst::SET.value);
        hal::delay_micros(50_000); // TDRSTR: root port reset at least 50 ms
        self.write_port(HPRT::PrtPwr::SET.value);
        if !Self::wait(100_000, || r.HPRT.is_set(HPRT::PrtEna)) {
            return Err(UsbError::PortNotEnabled);
        }
        hal::delay_micros(RESET_RECOVERY_US); // TRSTRCY: reset recovery
                                              // Acknowledge the connect and enable changes (write-1-to-clear; PrtEna is kept at 0).
        self.write_port(HPRT::PrtPwr::SET.value | HPRT::PrtConnDet::SET.value | HPRT::PrtEnChng::SET.value);
        Ok(match r.HPRT.read_as_enum(HPRT::PrtSpd) {
            Some(HPRT::PrtSpd::Value::High) => Speed::High,
            Some(HPRT::PrtSpd::Value::Low) => Speed::Low,
            _ => Speed::Full,
        })
    }

    /// Writes HPRT with `bits`, never writing 1 to a write-1-to-clear bit that is not in `bits`
    /// (a read-modify-write would disable the port by writing PrtEna back).
    fn write_port(&self, bits: u32) {
        let keep = self.registers.HPRT.get()
            & !(HPRT::PrtConnDet::SET.value
                | HPRT::PrtEna::SET.value
                | HPRT::PrtEnChng::SET.value
                | HPRT::PrtOvrCurrChng::SET.value
                | HPRT::PrtRst::SET.value);
        self.registers.HPRT.set(keep | bits);
    }

    /// The identification register, for the boot log.
    pub fn id(&self) -> u32 {
        self.registers.GSNPSID.get()
    }

    /// The current frame number (for logs only: QEMU's frame numbers jump).
    pub fn frame_number(&self) -> u32 {
        self.registers.HFNUM.read(HFNUM::FrNum)
    }

    /// Claims a free channel.
    pub fn claim_channel(&self) -> Result<Channel, UsbError> {
        use core::sync::atomic::Ordering;
        let mut chosen = None;
        self.claimed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let free = (!bits).trailing_zeros() as usize;
                if free >= CHANNELS {
                    return None;
                }
                chosen = Some(free as u8);
                Some(bits | (1 << free))
            })
            .map_err(|_| UsbError::NoChannel)?;
        chosen.map(Channel::new).ok_or(UsbError::NoChannel)
    }

    /// Returns a channel to the pool. The channel must be idle.
    pub fn release_channel(&self, channel: Channel) {
        self.claimed.fetch_and(!(1 << channel.index()), core::sync::atomic::Ordering::AcqRel);
    }

    /// Arms `channel` for one transfer of `length` bytes at bus address `bus` to or from `pipe`,
    /// starting with `pid`. The buffer must stay untouched by the CPU until [`Self::poll`]
    /// reports completion.
    ///
    /// A channel still enabled (its last transfer never halted) is halted first, as Circle's
    /// `StartTransaction` and dwc_otg do: reprogramming an enabled channel is undefined in the
    /// databook. If it does not halt, the transfer is refused with `Timeout` rather than
    /// started on a busy channel.
    pub fn start(&self, channel: Channel, pipe: &Pipe, bus: u32, length: usize, pid: Pid) -> Result<(), UsbError> {
        if length > MAX_TRANSFER || pipe.max_packet == 0 {
            return Err(UsbError::BadLength);
        }
        use core::sync::atomic::Ordering;
        let index = channel.index();
        let hc = &self.registers.HC[index];
        if hc.HCCHAR.is_set(HCCHAR::ChEna) && !self.halt(channel) {
            return Err(UsbError::Timeout(hc.HCINT.get()));
        }
        let packets = length.div_ceil(usize::from(pipe.max_packet)).max(1);
        self.requested[index].store(length as u32, Ordering::Relaxed);
        // High-speed bulk and control OUT use the PING protocol (USB 2.0, section 8.5.1) after
        // the device said NYET or NAK: ask before sending data again (databook: HCTSIZ.DoPng,
        // OUT only; in DMA mode the core runs the PING exchange itself).
        let ping_capable =
            !pipe.is_in && pipe.speed == Speed::High && matches!(pipe.kind, EndpointType::Bulk | EndpointType::Control);
        let do_ping = ping_capable && pid != Pid::Setup && self.ping[index].swap(false, Ordering::Relaxed);
        self.started[index].store(u8::from(ping_capable && pid != Pid::Setup), Ordering::Relaxed);
        hc.HCINT.set(u32::MAX);
        hc.HCINTMSK.set(0x7ff); // every cause in bits 10..0
        hc.HCSPLT.set(0);
        hc.HCTSIZ.write(
            HCTSIZ::XferSize.val(length as u32)
                + HCTSIZ::PktCnt.val(packets as u32)
                + HCTSIZ::Pid.val(pid as u32)
                + HCTSIZ::DoPng.val(u32::from(do_ping)),
        );
        hc.HCDMA.set(bus);
        hal::data_sync_barrier();
        let odd = self.frame_number() & 1 == 0; // periodic: aim at the next frame
        hc.HCCHAR.write(
            HCCHAR::MPS.val(u32::from(pipe.max_packet))
                + HCCHAR::EPNum.val(u32::from(pipe.endpoint))
                + HCCHAR::EPDir.val(u32::from(pipe.is_in))
                + HCCHAR::LSpdDev.val(u32::from(pipe.speed == Speed::Low))
                + HCCHAR::EPType.val(pipe.kind as u32)
                + HCCHAR::MC.val(1)
                + HCCHAR::DevAddr.val(u32::from(pipe.device))
                + HCCHAR::OddFrm.val(u32::from(odd && pipe.kind == EndpointType::Interrupt))
                + HCCHAR::ChEna::SET,
        );
        Ok(())
    }

    /// Reports a started transfer's outcome: `None` while it runs.
    ///
    /// In DMA mode the core halts the channel at the end of every transfer, whatever ended it,
    /// and the other HCINT bits give the reason (dwc_otg's `handle_hc_chhltd_intr_dma`, Circle's
    /// channel handler): a transfer is over when ChHltd is set, not at XferCompl, which the
    /// core may raise before the channel has let go of its DMA. Then XferCompl is success,
    /// STALL a stall, NAK without an error a NAK (interrupt endpoints: no data this interval;
    /// non-periodic NAKs are retried by the core itself and never end a transfer), anything else
    /// an error.
    pub fn poll(&self, channel: Channel) -> Option<Result<Completion, UsbError>> {
        let hc = &self.registers.HC[channel.index()];
        let status = hc.HCINT.extract();
        if !status.is_set(HCINT::ChHltd) {
            return None;
        }
        let bits = status.get();
        let index = channel.index();
        if self.started[index].load(core::sync::atomic::Ordering::Relaxed) != 0
            && status.matches_any(&[HCINT::NYET::SET, HCINT::NAK::SET])
        {
            self.ping[index].store(true, core::sync::atomic::Ordering::Relaxed);
        }
        hc.HCINT.set(u32::MAX);
        hal::data_sync_barrier();
        let size = hc.HCTSIZ.extract();
        let next_pid = match size.read(HCTSIZ::Pid) {
            2 => Pid::Data1,
            _ => Pid::Data0,
        };
        if status.is_set(HCINT::XferCompl) {
            let requested = self.requested[channel.index()].load(core::sync::atomic::Ordering::Relaxed);
            let remaining = size.read(HCTSIZ::XferSize).min(requested);
            return Some(Ok(Completion { length: (requested - remaining) as usize, next_pid }));
        }
        Some(Err(if status.is_set(HCINT::STALL) {
            UsbError::Stall(bits)
        } else if status.is_set(HCINT::NAK)
            && !status.matches_any(&[HCINT::XactErr::SET, HCINT::BblErr::SET, HCINT::AHBErr::SET])
        {
            UsbError::Nak(bits)
        } else {
            UsbError::Transfer(bits)
        }))
    }

    /// Stops a running transfer (on timeout) and waits briefly for the halt.
    pub fn abort(&self, channel: Channel) {
        let _ = self.halt(channel);
    }

    /// Halts `channel` if it is enabled: ChDis and ChEna written together, then ChHltd awaited
    /// (databook "Halting a Channel"; dwc_otg `dw_otg_hc_halt` in DMA mode, Circle). In DMA mode
    /// no request-queue check is needed: the core queues the disable itself. Returns whether the
    /// channel is idle now; HCINT is cleared either way.
    fn halt(&self, channel: Channel) -> bool {
        let hc = &self.registers.HC[channel.index()];
        let mut halted = true;
        if hc.HCCHAR.is_set(HCCHAR::ChEna) {
            hc.HCCHAR.modify(HCCHAR::ChDis::SET + HCCHAR::ChEna::SET);
            halted = Self::wait(HALT_TIMEOUT_US, || hc.HCINT.is_set(HCINT::ChHltd) || !hc.HCCHAR.is_set(HCCHAR::ChEna));
        }
        hc.HCINT.set(u32::MAX);
        halted
    }

    /// The HCINT bits of `channel` right now (for error reports).
    pub fn status(&self, channel: Channel) -> u32 {
        self.registers.HC[channel.index()].HCINT.get()
    }
}

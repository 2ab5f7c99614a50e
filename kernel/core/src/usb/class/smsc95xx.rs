//! SMSC LAN95xx USB Ethernet driver: the Ethernet function (USB 0424:ec00) of the LAN9512/LAN9514
//! hub-and-Ethernet chip on the Raspberry Pi 1 B/B+.
//!
//! Registers are read and written with the vendor requests READ_REGISTER/WRITE_REGISTER on the
//! control endpoint; the internal PHY behind MII_ADDR/MII_DATA. Bring-up (following the
//! datasheet and what Linux's `smsc95xx` does, docs/network.md "SMSC LAN9512"): lite reset
//! (HW_CFG.LRST), PHY reset (PM_CTRL.PHY_RST), the MAC address into ADDRL/ADDRH, BURST_CAP,
//! BULK_IN_DLY, HW_CFG with BIR (NAK an empty FIFO), MEF (several frames per bulk IN transfer)
//! and BCE (transfers no longer than BURST_CAP packets) and RXDOFF 0, the LEDs, flow control
//! and checksum offload off, PHY reset/advertisement/autonegotiation over MII with the PHY's
//! link interrupts enabled, INT_EP_CTL.PHY_INT, then MAC_CR.TXEN/RXEN (FDPX from the resolved
//! duplex) and TX_CFG.ON. The data path is [`crate::usb::ethernet`] with SMSC framing; the
//! [`Controller`] keeps an interrupt IN transfer armed and, when the chip reports a PHY
//! interrupt, reads the PHY's link and duplex and updates MAC_CR.
//!
//! Every wait has a deadline; a failed register access fails the attach (the error is logged
//! and the kernel goes on without a network) or, after boot, is counted.

use crate::usb::bus::{Bus, ControlPipe, Device, Endpoint0};
use crate::usb::descriptor::DeviceDescriptor;
use crate::usb::ethernet::{Controller as EthernetController, EthernetDevice, Framing};
use crate::usb::host::{Channel, EndpointType, Pid, Pipe, UsbError, UsbPlatform};
use crate::usb::smsc95xx::{self as chip, address, phy, Link};

/// Bytes per receive buffer: BURST_CAP is set so no bulk IN transfer is longer (8 high-speed
/// packets; several frames each).
pub const RX_BUFFER: usize = 4096;
/// How long a self-clearing reset bit may take (Linux waits up to 100 x 10 ms).
const RESET_TIMEOUT_US: u64 = 1_000_000;
/// How long an MII access may stay busy.
const MII_TIMEOUT_US: u64 = 100_000;
/// How long the PHY's own reset (BMCR.RESET) may take.
const PHY_RESET_TIMEOUT_US: u64 = 500_000;

/// Accepts the LAN95xx Ethernet function by VID:PID when its configuration has the bulk and
/// interrupt endpoints.
pub fn probe(device: &DeviceDescriptor, configuration: &[u8]) -> bool {
    chip::is_lan95xx(device.vendor, device.product) && chip::find_endpoints(configuration).is_ok()
}

/// Register access over a control pipe.
struct Registers<'a, P: UsbPlatform> {
    pipe: &'a mut ControlPipe<P>,
    device: Endpoint0,
    platform: &'static P,
}

impl<P: UsbPlatform> Registers<'_, P> {
    fn read(&mut self, register: u16) -> Result<u32, UsbError> {
        let mut bytes = [0u8; 4];
        let got = self.pipe.control(self.device, chip::read_register(register), &mut bytes)?;
        if got != 4 {
            return Err(UsbError::BadLength);
        }
        Ok(u32::from_le_bytes(bytes))
    }

    fn write(&mut self, register: u16, value: u32) -> Result<(), UsbError> {
        let mut bytes = value.to_le_bytes();
        self.pipe.control(self.device, chip::write_register(register), &mut bytes).map(|_| ())
    }

    /// Waits until `(register & mask) == 0`, up to `timeout_us`.
    fn wait_clear(&mut self, register: u16, mask: u32, timeout_us: u64) -> Result<(), UsbError> {
        let deadline = self.platform.now_micros() + timeout_us;
        loop {
            let value = self.read(register)?;
            if value & mask == 0 {
                return Ok(());
            }
            if self.platform.now_micros() > deadline {
                return Err(UsbError::Timeout(value));
            }
            self.platform.delay_micros(1_000);
        }
    }

    fn mii_read(&mut self, index: u8) -> Result<u16, UsbError> {
        let busy = chip::value(chip::MII_ADDR::BUSY::SET);
        self.wait_clear(address::MII_ADDR, busy, MII_TIMEOUT_US)?;
        self.write(address::MII_ADDR, chip::mii_access(index, false))?;
        self.wait_clear(address::MII_ADDR, busy, MII_TIMEOUT_US)?;
        Ok(self.read(address::MII_DATA)? as u16)
    }

    fn mii_write(&mut self, index: u8, value: u16) -> Result<(), UsbError> {
        let busy = chip::value(chip::MII_ADDR::BUSY::SET);
        self.wait_clear(address::MII_ADDR, busy, MII_TIMEOUT_US)?;
        self.write(address::MII_DATA, u32::from(value))?;
        self.write(address::MII_ADDR, chip::mii_access(index, true))?;
        self.wait_clear(address::MII_ADDR, busy, MII_TIMEOUT_US)
    }

    /// Reads the link from the PHY (BMSR twice: its link bit latches low).
    fn link(&mut self) -> Result<Link, UsbError> {
        let _ = self.mii_read(phy::BMSR)?;
        let bmsr = self.mii_read(phy::BMSR)?;
        let special = self.mii_read(phy::SPECIAL)?;
        Ok(Link::from_phy(bmsr, special))
    }

    /// MAC_CR with TXEN and RXEN and the duplex of `link`.
    fn mac_cr(&mut self, link: Link) -> Result<u32, UsbError> {
        let mut mac_cr = self.read(address::MAC_CR)?;
        let clear = chip::value(
            chip::MAC_CR::PRMS::SET
                + chip::MAC_CR::MCPAS::SET
                + chip::MAC_CR::HPFILT::SET
                + chip::MAC_CR::RCVOWN::SET
                + chip::MAC_CR::FDPX::SET,
        );
        mac_cr &= !clear;
        mac_cr |= chip::value(chip::MAC_CR::TXEN::SET + chip::MAC_CR::RXEN::SET);
        mac_cr |= if link.full_duplex {
            chip::value(chip::MAC_CR::FDPX::SET)
        } else {
            chip::value(chip::MAC_CR::RCVOWN::SET)
        };
        Ok(mac_cr)
    }
}

/// Where the MAC address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacSource {
    /// `smsc95xx.macaddr=` on the command line the firmware passed.
    CommandLine,
    /// Derived from the board serial number (locally administered).
    Serial,
}

/// The MAC address: the firmware's `smsc95xx.macaddr=` when the boot path recorded a command
/// line, else a stable locally administered address from the board serial number.
pub fn mac_address<P: UsbPlatform>(platform: &P) -> ([u8; 6], MacSource) {
    if let Some(mac) = platform.configured_mac().filter(chip::is_usable_mac) {
        return (mac, MacSource::CommandLine);
    }
    (chip::mac_from_serial(platform.board_serial().unwrap_or(0)), MacSource::Serial)
}

/// Resets and configures the chip and its PHY, then hands the bulk endpoints to the Ethernet
/// data path.
pub fn attach<P: UsbPlatform>(bus: &mut Bus<P>, device: &Device, configuration: &[u8]) -> Result<(), UsbError> {
    let endpoints = chip::find_endpoints(configuration).map_err(UsbError::Descriptor)?;
    let handle = device.endpoint0();
    let platform = bus.platform();
    let mut pipe = ControlPipe::new(platform, 64)?;
    let mut regs = Registers { pipe: &mut pipe, device: handle, platform };
    let id = regs.read(address::ID_REV)?;
    // Lite reset, then the PHY's reset (datasheet 7.3.5 HW_CFG.LRST, 7.3.8 PM_CTRL.PHY_RST).
    regs.write(address::HW_CFG, chip::value(chip::HW_CFG::LRST::SET))?;
    regs.wait_clear(address::HW_CFG, chip::value(chip::HW_CFG::LRST::SET), RESET_TIMEOUT_US)?;
    regs.write(address::PM_CTRL, chip::value(chip::PM_CTRL::PHY_RST::SET))?;
    regs.wait_clear(address::PM_CTRL, chip::value(chip::PM_CTRL::PHY_RST::SET), RESET_TIMEOUT_US)?;
    let (mac, source) = mac_address(platform);
    let (low, high) = chip::address_registers(mac);
    regs.write(address::ADDRL, low)?;
    regs.write(address::ADDRH, high)?;
    let max_packet = usize::from(endpoints.bulk_in_max_packet);
    let burst = chip::burst_cap(RX_BUFFER, max_packet);
    regs.write(address::BURST_CAP, burst)?;
    regs.write(address::BULK_IN_DLY, chip::BULK_IN_DELAY)?;
    let mut hw_cfg = regs.read(address::HW_CFG)?;
    hw_cfg &= !chip::value(chip::HW_CFG::RXDOFF.val(3));
    hw_cfg |= chip::value(chip::HW_CFG::BIR::SET + chip::HW_CFG::MEF::SET + chip::HW_CFG::BCE::SET);
    regs.write(address::HW_CFG, hw_cfg)?;
    regs.write(address::INT_STS, u32::MAX)?;
    regs.write(
        address::LED_GPIO_CFG,
        chip::value(
            chip::LED_GPIO_CFG::SPD_LED::SET + chip::LED_GPIO_CFG::LNK_LED::SET + chip::LED_GPIO_CFG::FDX_LED::SET,
        ),
    )?;
    regs.write(address::FLOW, 0)?;
    regs.write(address::AFC_CFG, chip::AFC_CFG_DEFAULT)?;
    // No checksum offload: the network manager checks what it receives and smoltcp computes
    // what it sends (an RX checksum word would also change the frame layout).
    regs.write(address::COE_CR, 0)?;
    // The PHY: identity, reset, advertise everything, link interrupts, autonegotiate.
    let phy_id = (u32::from(regs.mii_read(phy::PHYSID1)?) << 16) | u32::from(regs.mii_read(phy::PHYSID2)?);
    regs.mii_write(phy::BMCR, phy::BMCR_RESET)?;
    let deadline = platform.now_micros() + PHY_RESET_TIMEOUT_US;
    while regs.mii_read(phy::BMCR)? & phy::BMCR_RESET != 0 {
        if platform.now_micros() > deadline {
            return Err(UsbError::Timeout(u32::from(phy::BMCR_RESET)));
        }
        platform.delay_micros(1_000);
    }
    regs.mii_write(phy::ANAR, phy::ANAR_ALL)?;
    let _ = regs.mii_read(phy::INT_SRC)?;
    regs.mii_write(phy::INT_MASK, phy::INT_ANEG_COMPLETE | phy::INT_LINK_DOWN)?;
    regs.mii_write(phy::BMCR, phy::BMCR_ANENABLE | phy::BMCR_ANRESTART)?;
    regs.write(address::INT_EP_CTL, chip::value(chip::INT_EP_CTL::PHY_INT::SET))?;
    let link = regs.link()?;
    let mac_cr = regs.mac_cr(link)?;
    regs.write(address::MAC_CR, mac_cr)?;
    regs.write(address::TX_CFG, chip::value(chip::TX_CFG::ON::SET))?;

    let bulk = |address: u8, max_packet: u16| device.pipe(address, EndpointType::Bulk, max_packet);
    let interrupt = device.pipe(
        0x80 | endpoints.interrupt_in,
        EndpointType::Interrupt,
        endpoints.interrupt_max_packet.clamp(4, 64),
    );
    let controller = Controller::new(platform, pipe, handle, interrupt, link, bus.console())?;
    let ethernet = EthernetDevice::new(
        platform,
        Framing::Smsc { rx_offset: 0 },
        mac,
        bulk(endpoints.bulk_in, endpoints.bulk_in_max_packet),
        bulk(endpoints.bulk_out, endpoints.bulk_out_max_packet),
        RX_BUFFER,
        EthernetController::Smsc(controller),
    )?;
    bus.log(format_args!(
        "usb: smsc95xx: chip {:#06x} rev {}, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ({}), PHY {:08x}, bulk IN {:#04x} OUT {:#04x} ({} bytes, burst {}), {}",
        id >> 16,
        id & 0xffff,
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5],
        match source {
            MacSource::CommandLine => "firmware command line",
            MacSource::Serial => "from the board serial",
        },
        phy_id,
        endpoints.bulk_in,
        endpoints.bulk_out,
        endpoints.bulk_in_max_packet,
        burst,
        LinkText(link),
    ));
    bus.set_ethernet(ethernet);
    Ok(())
}

/// `link up 100 Mb/s full duplex` / `link down`.
struct LinkText(Link);

impl core::fmt::Display for LinkText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let link = self.0;
        if !link.up {
            return write!(f, "link down");
        }
        write!(
            f,
            "link up {} Mb/s {} duplex",
            if link.fast { 100 } else { 10 },
            if link.full_duplex { "full" } else { "half" }
        )
    }
}

/// Counters of the link monitor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControllerCounters {
    /// Interrupt endpoint packets received.
    pub interrupts: u64,
    /// Link changes seen.
    pub link_changes: u64,
    /// Register or PHY accesses that failed after boot.
    pub control_errors: u64,
}

/// The SMSC chip's link monitor: an interrupt IN transfer kept armed on the status endpoint;
/// a PHY interrupt makes it read the PHY's link and duplex and set MAC_CR to match.
pub struct Controller<P: UsbPlatform> {
    platform: &'static P,
    pipe: ControlPipe<P>,
    device: Endpoint0,
    channel: Channel,
    interrupt: Pipe,
    pid: Pid,
    buffer: &'static mut [u8],
    armed: bool,
    link: Link,
    log: fn(core::fmt::Arguments),
    /// Counters.
    pub counters: ControllerCounters,
}

impl<P: UsbPlatform> Controller<P> {
    fn new(
        platform: &'static P,
        pipe: ControlPipe<P>,
        device: Endpoint0,
        interrupt: Pipe,
        link: Link,
        log: fn(core::fmt::Arguments),
    ) -> Result<Self, UsbError> {
        let buffer = platform.dma_alloc(64, 64).ok_or(UsbError::NoMemory)?;
        let channel = platform.claim_channel()?;
        Ok(Self {
            platform,
            pipe,
            device,
            channel,
            interrupt,
            pid: Pid::Data0,
            buffer,
            armed: false,
            link,
            log,
            counters: Default::default(),
        })
    }

    /// The link as last read from the PHY.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Collects a finished interrupt transfer and re-arms it; on a PHY interrupt, updates the
    /// link. An interrupt endpoint with nothing to say answers NAK, which halts the channel:
    /// that is "no news", re-armed at the next call.
    pub fn service(&mut self) {
        if self.armed {
            match self.platform.poll(self.channel, self.buffer) {
                None => return,
                Some(Ok(done)) => {
                    self.armed = false;
                    self.pid = done.next_pid;
                    if done.length >= 4 {
                        let status =
                            u32::from_le_bytes([self.buffer[0], self.buffer[1], self.buffer[2], self.buffer[3]]);
                        self.counters.interrupts += 1;
                        if status & chip::value(chip::INT_STS::PHY_INT::SET) != 0 {
                            self.update_link();
                        }
                    }
                }
                Some(Err(_)) => self.armed = false,
            }
        }
        let length = usize::from(self.interrupt.max_packet);
        if self.platform.start(self.channel, &self.interrupt, self.buffer, length, self.pid).is_ok() {
            self.armed = true;
        }
    }

    fn update_link(&mut self) {
        let mut regs = Registers { pipe: &mut self.pipe, device: self.device, platform: self.platform };
        let result = (|| -> Result<Link, UsbError> {
            let _ = regs.mii_read(phy::INT_SRC)?; // read clears the PHY's interrupt
            regs.write(address::INT_STS, chip::value(chip::INT_STS::PHY_INT::SET))?;
            let link = regs.link()?;
            let mac_cr = regs.mac_cr(link)?;
            regs.write(address::MAC_CR, mac_cr)?;
            Ok(link)
        })();
        match result {
            Ok(link) => {
                if link != self.link {
                    self.counters.link_changes += 1;
                    (self.log)(format_args!("usb: smsc95xx: {}", LinkText(link)));
                }
                self.link = link;
            }
            Err(error) => {
                self.counters.control_errors += 1;
                (self.log)(format_args!("usb: smsc95xx: reading the link failed: {error:?}"));
            }
        }
    }
}

//! Host tests of the USB stack (enumeration, class drivers, the Ethernet data path) against the
//! fake board in [`super::fake`]: a device tree with a hub, the ECM configuration choice, the
//! SMSC bring-up sequence against a register file, several frames per bulk transfer, and the
//! error paths (STALL, no answer, short or garbled descriptors, no memory), none of which may
//! panic.

use std::cell::RefCell;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use smoltcp::phy::{Device as _, RxToken as _, TxToken as _};
use smoltcp::time::Instant;

use super::bus::Bus;
use super::ethernet::EthernetDevice;
use super::fake::{build, FakeBoard, FakeDevice, Kind, Port, Smsc};
use super::host::{Speed, UsbError};
use super::smsc95xx::{self as chip, address, phy};

std::thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(args: core::fmt::Arguments) {
    LOG.with(|log| log.borrow_mut().push(args.to_string()));
}

fn logged(text: &str) -> bool {
    LOG.with(|log| log.borrow().iter().any(|line| line.contains(text)))
}

/// Enumerates whatever is on the root port of `board`; returns the result and the Ethernet
/// device, if a driver attached one.
fn enumerate(board: &'static FakeBoard, speed: Speed) -> (Result<(), UsbError>, Option<EthernetDevice<FakeBoard>>) {
    LOG.with(|log| log.borrow_mut().clear());
    let mut bus = Bus::new(board, log).expect("bus");
    let result = bus.enumerate(speed, 0);
    (result, bus.take_ethernet())
}

fn hub(ports: Vec<Port>, speed: Speed) -> FakeDevice {
    FakeDevice::new(
        speed,
        build::device(0x0409, 0x55aa, 9, 64, 1),
        vec![build::hub_configuration()],
        Kind::Hub { ports },
    )
}

/// An adapter whose first configuration is its vendor's protocol and second CDC-ECM.
fn ecm_adapter(max_packet: u16) -> FakeDevice {
    FakeDevice::new(
        Speed::Full,
        build::device(0x0bda, 0x8152, 0, 64, 2),
        vec![build::vendor_configuration(1), build::ecm_configuration(2, max_packet)],
        Kind::Ecm { filter: None },
    )
    .with_string(2, "USB 10/100 LAN")
    .with_string(3, "400102030405")
}

fn vendor_only() -> FakeDevice {
    FakeDevice::new(
        Speed::Full,
        build::device(0x1234, 0x0001, 0xff, 8, 1),
        vec![build::vendor_configuration(1)],
        Kind::Other,
    )
}

fn lan9512() -> FakeDevice {
    FakeDevice::new(
        Speed::High,
        build::device(chip::VENDOR_SMSC, 0xec00, 0xff, 64, 1),
        vec![build::smsc_configuration(512)],
        Kind::Smsc(Smsc::lan9512()),
    )
}

fn frame(length: usize, tag: u8) -> Vec<u8> {
    let mut frame = vec![tag; length];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[12] = 0x08;
    frame[13] = 0x00;
    frame
}

/// Everything the stack receives until it has nothing more (servicing the rings as it goes).
fn receive_all(device: &mut EthernetDevice<FakeBoard>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for _ in 0..64 {
        match device.receive(Instant::ZERO) {
            Some((rx, _tx)) => frames.push(rx.consume(|bytes| bytes.to_vec())),
            None => device.service(),
        }
    }
    frames
}

#[test]
fn enumerates_a_hub_tree_and_picks_the_ecm_configuration() {
    // Hub (device 0) with an ECM adapter on port 1, nothing on port 2, a vendor-only device on
    // port 3, and nothing on port 4.
    let board = FakeBoard::new(vec![
        hub(
            vec![Port::with(1, Speed::Full), Port::default(), Port::with(2, Speed::Full), Port::default()],
            Speed::Full,
        ),
        ecm_adapter(64),
        vendor_only(),
    ]);
    let (result, ethernet) = enumerate(board, Speed::Full);
    assert_eq!(result, Ok(()));
    let ethernet = ethernet.expect("the ECM adapter became the Ethernet device");
    assert_eq!(ethernet.mac(), [0x40, 0x01, 0x02, 0x03, 0x04, 0x05]);

    let devices = board.devices.borrow();
    assert_eq!(devices[0].address, Some(1));
    assert_eq!(devices[1].address, Some(2));
    assert_eq!(devices[2].address, Some(3));
    // The vendor configuration comes first; the ECM driver takes the second (value 2), selects
    // the data interface's alternate with the bulk endpoints and sets the packet filter.
    assert_eq!(devices[1].configuration, Some(2));
    assert_eq!(devices[1].interface, Some((1, 1)));
    assert!(matches!(devices[1].kind, Kind::Ecm { filter: Some(0x0e) }));
    assert_eq!(devices[2].configuration, None, "no driver: not configured");
    let Kind::Hub { ports } = &devices[0].kind else { unreachable!() };
    assert!(ports.iter().all(|p| p.powered));
    assert_eq!(ports.iter().map(|p| p.resets).collect::<Vec<_>>(), [1, 0, 1, 0]);
    assert!(!ports.iter().any(|p| p.reset_changed), "C_PORT_RESET acknowledged");
    assert!(logged("usb: hub 1: 4 ports"));
    assert!(logged("configuration index 1 (value 2) -> cdc-ecm"));
    assert!(logged("\"USB 10/100 LAN\""));
    assert!(logged("usb: device 3: no class driver"));
    assert!(logged("status change endpoint: no change (NAK)"));
}

#[test]
fn a_vendor_driver_wins_over_ecm_in_the_same_configuration() {
    // One configuration with both a CDC-ECM function (interfaces 0 and 1) and the SMSC
    // interface (2): both drivers accept it, and smsc95xx, which knows the VID:PID, is asked
    // before the class drivers.
    let mut body = build::ecm_configuration(1, 512)[9..].to_vec();
    let mut vendor = build::smsc_configuration(512)[9..].to_vec();
    vendor[2] = 2;
    body.extend(vendor);
    let both = build::configuration(1, 3, &body);
    assert!(super::ecm::find_ecm(&both).is_ok() && chip::find_endpoints(&both).is_ok());
    let mut device = lan9512();
    device.configurations = vec![both];
    device.strings.push((3, "400102030405".into()));
    let board = FakeBoard::new(vec![device]);
    let (result, ethernet) = enumerate(board, Speed::High);
    assert_eq!(result, Ok(()));
    assert_ne!(ethernet.expect("attached").mac(), [0x40, 1, 2, 3, 4, 5], "not the ECM driver's MAC");
    assert!(logged("configuration index 0 (value 1) -> smsc95xx"));
}

#[test]
fn a_full_speed_device_behind_a_high_speed_hub_is_skipped() {
    let board = FakeBoard::new(vec![hub(vec![Port::with(1, Speed::Full)], Speed::High), ecm_adapter(64)]);
    let (result, ethernet) = enumerate(board, Speed::High);
    assert_eq!(result, Ok(()));
    assert!(ethernet.is_none());
    assert!(logged("needs split transactions"));
    assert_eq!(board.devices.borrow()[1].address, None);
}

#[test]
fn smsc_bring_up_writes_the_registers_linux_writes() {
    let board = FakeBoard::new(vec![lan9512()]);
    let (result, ethernet) = enumerate(board, Speed::High);
    assert_eq!(result, Ok(()));
    let ethernet = ethernet.expect("smsc95xx attached");
    let mac = chip::mac_from_serial(board.serial);
    assert_eq!(ethernet.mac(), mac);
    let (low, high) = chip::address_registers(mac);
    let devices = board.devices.borrow();
    let smsc = devices[0].smsc();
    let writes: Vec<(u16, u32)> =
        smsc.writes.iter().copied().filter(|(r, _)| *r != address::MII_ADDR && *r != address::MII_DATA).collect();
    // The values are those of Linux's smsc95xx on the LAN9512 model (docs/network.md), except
    // where jos chooses otherwise: PM_CTRL.PHY_RST, BURST_CAP 8 for 4 KiB buffers, RXDOFF 0,
    // no checksum offload, no multicast hash (no HPFILT).
    let expected = vec![
        (address::HW_CFG, 0x0000_0008),                               // lite reset
        (address::PM_CTRL, chip::value(chip::PM_CTRL::PHY_RST::SET)), // PHY reset
        (address::ADDRL, low),
        (address::ADDRH, high),
        (address::BURST_CAP, 8), // 4,096 / 512
        (address::BULK_IN_DLY, 0x0000_2000),
        (address::HW_CFG, 0x0000_1022), // BIR + MEF + BCE
        (address::INT_STS, 0xffff_ffff),
        (address::LED_GPIO_CFG, 0x0111_0000),
        (address::FLOW, 0),
        (address::AFC_CFG, 0x00f8_30a1),
        (address::COE_CR, 0),
        (address::INT_EP_CTL, 0x0000_8000), // PHY interrupts
        (address::MAC_CR, 0x0010_000c),     // TXEN + RXEN + FDPX
        (address::TX_CFG, 0x0000_0004),     // TX on
    ];
    assert_eq!(writes, expected);
    assert_eq!(
        smsc.phy_writes,
        vec![
            (phy::BMCR, phy::BMCR_RESET),
            (phy::ANAR, 0x05e1),
            (phy::INT_MASK, phy::INT_ANEG_COMPLETE | phy::INT_LINK_DOWN),
            (phy::BMCR, phy::BMCR_ANENABLE | phy::BMCR_ANRESTART),
        ]
    );
    assert!(logged("chip 0xec00 rev 2"));
    assert!(logged("from the board serial"));
    assert!(logged("link up 100 Mb/s full duplex"));
}

#[test]
fn smsc_takes_the_mac_the_firmware_configured_and_ignores_a_multicast_one() {
    for (configured, expected) in [
        ([0xb8, 0x27, 0xeb, 1, 2, 3], [0xb8, 0x27, 0xeb, 1, 2, 3]),
        ([0x01, 0x27, 0xeb, 1, 2, 3], chip::mac_from_serial(0x1234_5678)),
    ] {
        let board = FakeBoard::with_mac(vec![lan9512()], configured);
        let (result, ethernet) = enumerate(board, Speed::High);
        assert_eq!(result, Ok(()));
        assert_eq!(ethernet.expect("attached").mac(), expected);
        let (low, _) = chip::address_registers(expected);
        assert!(board.devices.borrow()[0].smsc().writes.contains(&(address::ADDRL, low)));
    }
}

/// One SMSC bulk IN transfer: each frame after its RX status word, padded to 4 bytes.
fn smsc_transfer(frames: &[(&[u8], u32)]) -> Vec<u8> {
    let mut transfer = Vec::new();
    for (frame, extra_status) in frames {
        let field = frame.len() + chip::FCS;
        let status = ((field as u32) << chip::RX_STS_FL_SHIFT) | chip::RX_STS_FF | extra_status;
        transfer.extend(status.to_le_bytes());
        transfer.extend_from_slice(frame);
        transfer.extend([0xfc; chip::FCS]);
        while transfer.len() % 4 != 0 {
            transfer.push(0);
        }
    }
    transfer
}

#[test]
fn smsc_receives_several_frames_per_transfer_and_counts_bad_ones() {
    let board = FakeBoard::new(vec![lan9512()]);
    let (result, ethernet) = enumerate(board, Speed::High);
    assert_eq!(result, Ok(()));
    let mut device = ethernet.expect("attached");
    let (a, b, c, d, e) = (frame(60, 1), frame(1514, 2), frame(99, 3), frame(70, 4), frame(64, 5));
    {
        let mut fake = board.device(0);
        // Three good frames and an errored one (ES) in one transfer; then one frame; then a
        // transfer that ends inside its second frame; then a zero-length packet.
        fake.bulk_in.push_back(smsc_transfer(&[(&a, 0), (&b, 0), (&c, chip::RX_STS_ES | chip::RX_STS_CRC), (&d, 0)]));
        fake.bulk_in.push_back(smsc_transfer(&[(&e, 0)]));
        let mut cut = smsc_transfer(&[(&a, 0), (&b, 0)]);
        cut.truncate(cut.len() - 100);
        fake.bulk_in.push_back(cut);
        fake.bulk_in.push_back(Vec::new());
    }
    let frames = receive_all(&mut device);
    assert_eq!(frames, vec![a.clone(), b, d, e, a]);
    let counters = device.counters();
    assert_eq!(counters.rx.frames, 5);
    assert_eq!(counters.rx.errors, 2, "the errored frame and the truncated one");
    assert_eq!(counters.rx.last_error, 0, "truncation has no status word");
}

#[test]
fn smsc_transmits_with_command_words_and_follows_the_link() {
    let board = FakeBoard::new(vec![lan9512()]);
    let (_, ethernet) = enumerate(board, Speed::High);
    let mut device = ethernet.expect("attached");
    let payload = frame(100, 7);
    let token = device.transmit(Instant::ZERO).expect("a free transmit buffer");
    token.consume(payload.len(), |buffer| buffer.copy_from_slice(&payload));
    device.service();
    let sent = board.device(0).bulk_out.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0][..chip::TX_HEADER], &chip::tx_header(payload.len()).unwrap());
    assert_eq!(&sent[0][chip::TX_HEADER..], &payload[..]);
    assert_eq!(device.counters().tx.frames, 1);

    // The PHY drops to 10 Mb/s half duplex and interrupts: the link monitor reads it and
    // clears FDPX (sets RCVOWN) in MAC_CR.
    {
        let mut fake = board.device(0);
        let Kind::Smsc(smsc) = &mut fake.kind else { unreachable!() };
        smsc.phy[31] = 0x0004;
        smsc.writes.clear();
        fake.interrupt_in.push_back(chip::value(chip::INT_STS::PHY_INT::SET).to_le_bytes().to_vec());
    }
    for _ in 0..3 {
        device.service();
    }
    let fake = board.device(0);
    let mac_cr = fake.smsc().writes.iter().rev().find(|(r, _)| *r == address::MAC_CR).expect("MAC_CR rewritten").1;
    assert_eq!(mac_cr, 0x0080_000c, "TXEN + RXEN + RCVOWN, no FDPX");
    drop(fake);
    assert!(logged("usb: smsc95xx: link up 10 Mb/s half duplex"));
}

#[test]
fn ecm_receives_one_frame_per_transfer_and_ends_full_packets_with_a_zlp() {
    let board = FakeBoard::new(vec![ecm_adapter(64)]);
    let (result, ethernet) = enumerate(board, Speed::Full);
    assert_eq!(result, Ok(()));
    let mut device = ethernet.expect("attached");
    let (a, b) = (frame(60, 1), frame(300, 2));
    {
        let mut fake = board.device(0);
        fake.bulk_in.push_back(a.clone());
        fake.bulk_in.push_back(vec![1, 2, 3]); // a runt
        fake.bulk_in.push_back(b.clone());
    }
    assert_eq!(receive_all(&mut device), vec![a, b]);
    assert_eq!(device.counters().rx.runts, 1);

    // 128 bytes fill two 64-byte packets exactly: a zero-length packet ends the transfer.
    let payload = frame(128, 9);
    device.transmit(Instant::ZERO).unwrap().consume(payload.len(), |buffer| buffer.copy_from_slice(&payload));
    for _ in 0..3 {
        device.service();
    }
    let sent = board.device(0).bulk_out.clone();
    assert_eq!(sent, vec![payload, Vec::new()]);
}

#[test]
fn a_stall_or_a_silent_device_fails_enumeration_with_an_error() {
    // STALL on GET_DESCRIPTOR.
    let mut device = ecm_adapter(64);
    device.stall.push((0x80, 6));
    let board = FakeBoard::new(vec![device]);
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Stall(_))));

    // No answer at all: each stage times out, three attempts, then Timeout.
    let mut device = ecm_adapter(64);
    device.silent.push((0x80, 6));
    let board = FakeBoard::new(vec![device]);
    let before = board.now_micros_peek();
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Timeout(_))));
    assert_eq!(board.devices.borrow()[0].requests.len(), 3);
    assert!(board.now_micros_peek() - before >= 3 * super::bus::CONTROL_TIMEOUT_US);

    // Nothing at address 0.
    let board = FakeBoard::new(Vec::new());
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Transfer(_))));

    // The ECM packet filter refused: optional, so the device is still attached.
    let mut device = ecm_adapter(64);
    device.stall.push((0x21, 0x43));
    let board = FakeBoard::new(vec![device]);
    let (result, ethernet) = enumerate(board, Speed::Full);
    assert_eq!(result, Ok(()));
    assert!(ethernet.is_some());
    assert!(logged("SET_ETHERNET_PACKET_FILTER refused"));
}

#[test]
fn a_failing_device_behind_a_hub_does_not_stop_the_others() {
    let mut broken = ecm_adapter(64);
    broken.stall.push((0x00, 9)); // SET_CONFIGURATION refused
    let board = FakeBoard::new(vec![
        hub(vec![Port::with(1, Speed::Full), Port::with(2, Speed::Full)], Speed::Full),
        broken,
        ecm_adapter(64),
    ]);
    let (result, ethernet) = enumerate(board, Speed::Full);
    assert_eq!(result, Ok(()));
    assert!(ethernet.is_some(), "the second adapter attached");
    assert!(logged("usb: hub 1 port 1: enumeration failed: Stall"));
    assert_eq!(board.devices.borrow()[2].configuration, Some(2));
}

#[test]
fn short_and_garbled_descriptors_are_errors() {
    // A device descriptor cut to 10 bytes.
    let mut device = ecm_adapter(64);
    device.device_descriptor.truncate(10);
    let board = FakeBoard::new(vec![device]);
    assert_eq!(enumerate(board, Speed::Full).0, Err(UsbError::Descriptor(super::Error::Truncated)));

    // bMaxPacketSize0 of 0.
    let mut device = ecm_adapter(64);
    device.device_descriptor[7] = 0;
    let board = FakeBoard::new(vec![device]);
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Descriptor(_))));

    // A configuration whose interface descriptor claims length 0: no driver takes it.
    let mut device = ecm_adapter(64);
    device.configurations[1][9] = 0;
    let board = FakeBoard::new(vec![device]);
    assert_eq!(enumerate(board, Speed::Full).0, Err(UsbError::Unsupported));

    // A configuration header that claims to be an interface.
    let mut device = ecm_adapter(64);
    device.configurations[0][1] = 4;
    let board = FakeBoard::new(vec![device]);
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Descriptor(_))));

    // A bad MAC string.
    let mut device = ecm_adapter(64);
    device.strings[1].1 = "40010203040G".into();
    let board = FakeBoard::new(vec![device]);
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Descriptor(_))));

    // A hub that reports no ports.
    let mut device = hub(Vec::new(), Speed::Full);
    device.stall.push((0xa0, 6));
    let board = FakeBoard::new(vec![device]);
    assert!(matches!(enumerate(board, Speed::Full).0, Err(UsbError::Stall(_))));
}

#[test]
fn running_out_of_dma_memory_or_channels_is_an_error() {
    let board = FakeBoard::with_dma_limit(vec![ecm_adapter(64)], 4096);
    assert_eq!(enumerate(board, Speed::Full).0, Err(UsbError::NoMemory));
    // Nine hubs in a chain would need more than the five levels USB allows.
    let mut devices = Vec::new();
    for level in 0..9 {
        devices.push(hub(vec![Port::with(level + 1, Speed::Full)], Speed::Full));
    }
    devices.push(ecm_adapter(64));
    let board = FakeBoard::new(devices);
    let (result, ethernet) = enumerate(board, Speed::Full);
    assert_eq!(result, Ok(()));
    assert!(ethernet.is_none());
    assert!(logged("enumeration failed: Unsupported"));
}

/// A small deterministic generator for the garbling test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn randomly_garbled_devices_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..400 {
        let mut devices = vec![
            hub(vec![Port::with(1, Speed::Full), Port::with(2, Speed::High)], Speed::Full),
            ecm_adapter(64),
            lan9512(),
        ];
        // Flip, cut or stretch some descriptor bytes of one device.
        let victim = (rng.next() % 3) as usize;
        let device = &mut devices[victim];
        let choice = rng.next() % 4;
        let target = if choice == 0 {
            &mut device.device_descriptor
        } else {
            let index = (rng.next() as usize) % device.configurations.len();
            &mut device.configurations[index]
        };
        for _ in 0..1 + rng.next() % 4 {
            if target.is_empty() {
                break;
            }
            let at = (rng.next() as usize) % target.len();
            match rng.next() % 3 {
                0 => target[at] = rng.next() as u8,
                1 => target.truncate(at),
                _ => target.extend((0..(rng.next() % 40)).map(|_| rng.next() as u8)),
            }
        }
        if round % 7 == 0 {
            devices[1].device_descriptor[0] = 0;
        }
        let board = FakeBoard::new(devices);
        let (_, ethernet) = enumerate(board, Speed::Full);
        if let Some(mut device) = ethernet {
            // Garbage on the bulk endpoint too.
            let len = (rng.next() % 3000) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let fake = if board.devices.borrow()[1].configuration.is_some() { 1 } else { 2 };
            board.device(fake).bulk_in.push_back(garbage);
            let _ = receive_all(&mut device);
        }
    }
}

//! Fuzz target body for the network pre-filter and the echo fast path (feature `fuzzing`):
//! [`classify`] and [`echo_reply`] on arbitrary frames. A panic or a broken invariant is a bug.
//!
//! The input's first byte sets the scene (bit 0: our address is configured; bit 1: the echo
//! port is 7, else 5007; bit 2: the frame's IPv4 and UDP checksums are made right first, so
//! that mutations reach past them); the rest is the received frame. Invariants:
//! - the verdict's `Malformed` and `Fragment` do not depend on which ports are open, and
//!   `ClosedPort` only comes for a port that is closed; `broadcast` is the destination MAC's;
//! - `echo_reply` answers exactly the frames classified `Echo`, and only when its buffer holds
//!   the reply;
//! - a reply goes from our MAC, address and echo port back to the sender's MAC, address and
//!   port, is IPv4 without options or fragments with a hop limit of [`REPLY_HOP_LIMIT`], carries
//!   the request's UDP payload byte for byte, has valid IPv4 and (non-zero) UDP checksums, is no
//!   longer than the request, and passes the pre-filter itself as seen by the sender;
//! - [`echo_reply_unchecked`] never panics, whatever it is given.
//!
//! The cargo-fuzz target `net` (`fuzz/fuzz_targets/net.rs`) calls [`net`]; the host test
//! `kernel/core/tests/fuzz_bodies.rs` runs it over `fuzz/corpus/net/` (written by [`seeds`]) and
//! deterministic mutations.

use std::vec::Vec;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};

use crate::net::{
    classify, echo_reply, echo_reply_unchecked, Local, Verdict, ETHERNET_HEADER, IPV4_HEADER, REPLY_HOP_LIMIT,
    UDP_HEADER,
};

/// Our MAC in the fuzzed scene.
pub const OUR_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Our address in the fuzzed scene (when configured), on a /24.
pub const OUR_ADDRESS: [u8; 4] = [10, 0, 2, 15];
/// A peer's MAC and address (for the seeds).
pub const PEER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
/// The peer's address.
pub const PEER_ADDRESS: [u8; 4] = [10, 0, 2, 2];

/// The scene flag: our address is configured.
pub const CONFIGURED: u8 = 1;
/// The scene flag: the echo port is 7 (else 5007).
pub const PORT_7: u8 = 2;
/// The scene flag: make the frame's checksums right before classifying it.
pub const FIX_CHECKSUMS: u8 = 4;

fn local(scene: u8) -> Local {
    Local {
        mac: EthernetAddress(OUR_MAC),
        address: (scene & CONFIGURED != 0).then(|| Ipv4Cidr::new(Ipv4Address::from(OUR_ADDRESS), 24)),
        echo_port: if scene & PORT_7 != 0 { 7 } else { 5007 },
    }
}

/// `frame` with its IPv4 header checksum, and its UDP checksum when it holds a UDP datagram
/// (and the datagram had one), computed afresh; unchanged where the headers do not check.
pub fn with_fixed_checksums(frame: &[u8]) -> Vec<u8> {
    let mut fixed = frame.to_vec();
    let Ok(mut ethernet) = EthernetFrame::new_checked(&mut fixed[..]) else { return fixed };
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return fixed;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(ethernet.payload_mut()) else { return fixed };
    ip.fill_checksum();
    if ip.next_header() == IpProtocol::Udp {
        let (source, destination) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
        if let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) {
            if udp.checksum() != 0 {
                udp.fill_checksum(&source, &destination);
            }
        }
    }
    fixed
}

/// The fuzz body (see the module's summary).
pub fn net(data: &[u8]) {
    let Some((&scene, frame)) = data.split_first() else { return };
    let fixed;
    let frame = if scene & FIX_CHECKSUMS != 0 {
        fixed = with_fixed_checksums(frame);
        &fixed[..]
    } else {
        frame
    };
    let local = local(scene);
    let open_port = |port: u16| port.is_multiple_of(3);
    let none = classify(frame, &local, |_| false);
    let all = classify(frame, &local, |_| true);
    let some = classify(frame, &local, open_port);

    // Which ports are open changes only ClosedPort into something else.
    for verdict in [none, all, some] {
        if matches!(none, Verdict::Malformed | Verdict::Fragment)
            || matches!(verdict, Verdict::Malformed | Verdict::Fragment)
        {
            assert_eq!(verdict, none, "the header checks do not depend on open ports");
        }
    }
    assert_ne!(all, Verdict::ClosedPort, "ClosedPort for a port that is open");
    if let Verdict::Keep { broadcast } = none {
        let ethernet = EthernetFrame::new_checked(frame).expect("a kept frame has an Ethernet header");
        assert_eq!(broadcast, ethernet.dst_addr().is_broadcast());
    }

    // echo_reply answers exactly the Echo frames.
    let mut reply = [0u8; 2048];
    let answered = echo_reply(frame, &local, &mut reply);
    assert_eq!(answered.is_some(), none == Verdict::Echo, "echo_reply answers exactly the Echo verdicts");
    if let Some(len) = answered {
        check_reply(frame, &reply[..len], &local);
        assert_eq!(echo_reply(frame, &local, &mut reply[..len - 1]), None, "a buffer one byte short");
        let mut again = [0u8; 2048];
        assert_eq!(echo_reply_unchecked(frame, &local, &mut again), Some(len));
        assert_eq!(again[..len], reply[..len]);
    }
    // Whatever it is given, the unchecked path must not panic.
    let mut scratch = [0u8; 2048];
    if let Some(len) = echo_reply_unchecked(frame, &local, &mut scratch) {
        assert!(len >= ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER && len <= frame.len(), "a reply of {len} bytes");
    }
}

/// The reply to an Echo request, checked field by field.
fn check_reply(request: &[u8], reply: &[u8], local: &Local) {
    let checksums = ChecksumCapabilities::default();
    let request_ethernet = EthernetFrame::new_checked(request).expect("an Echo request parses");
    let request_ip = Ipv4Packet::new_checked(request_ethernet.payload()).expect("IPv4");
    let request_udp = UdpPacket::new_checked(request_ip.payload()).expect("UDP");
    let ours = local.address.expect("Echo needs our address").address();

    assert!(reply.len() <= request.len(), "the reply is longer than the request");
    let ethernet = EthernetFrame::new_checked(reply).expect("the reply's Ethernet header");
    assert_eq!(ethernet.dst_addr(), request_ethernet.src_addr());
    assert_eq!(ethernet.src_addr(), local.mac);
    assert_eq!(ethernet.ethertype(), EthernetProtocol::Ipv4);
    let ip = Ipv4Packet::new_checked(ethernet.payload()).expect("the reply's IPv4 header");
    assert!(ip.verify_checksum(), "the reply's IPv4 checksum");
    let ip_repr = Ipv4Repr::parse(&ip, &checksums).expect("the reply's IPv4 parses");
    assert_eq!((ip_repr.src_addr, ip_repr.dst_addr), (ours, request_ip.src_addr()));
    assert_eq!((ip_repr.next_header, ip_repr.hop_limit), (IpProtocol::Udp, REPLY_HOP_LIMIT));
    assert!(usize::from(ip.header_len()) == IPV4_HEADER && !ip.more_frags() && ip.frag_offset() == 0);
    let udp = UdpPacket::new_checked(ip.payload()).expect("the reply's UDP header");
    assert_ne!(udp.checksum(), 0, "the reply carries a UDP checksum");
    let (source, destination) = (IpAddress::Ipv4(ip_repr.src_addr), IpAddress::Ipv4(ip_repr.dst_addr));
    let udp_repr = UdpRepr::parse(&udp, &source, &destination, &checksums).expect("the reply's UDP checksum");
    assert_eq!((udp_repr.src_port, udp_repr.dst_port), (local.echo_port, request_udp.src_port()));
    assert_eq!(udp.payload(), request_udp.payload(), "the payload is echoed byte for byte");
    assert_eq!(reply.len(), ETHERNET_HEADER + IPV4_HEADER + UDP_HEADER + udp.payload().len());

    // The sender's own pre-filter keeps the reply (it is well formed and no fragment).
    let sender = Local {
        mac: request_ethernet.src_addr(),
        address: Some(Ipv4Cidr::new(request_ip.src_addr(), 32)),
        echo_port: local.echo_port.wrapping_add(1),
    };
    let verdict = classify(reply, &sender, |_| true);
    assert!(matches!(verdict, Verdict::Keep { .. } | Verdict::Echo), "the sender would drop the reply: {verdict:?}");
}

/// A frame from `source`:`source_port` (MAC `from`) to `destination`:`port` (MAC `to`) holding
/// `payload` over UDP, with right checksums (`udp_checksum`: or none); `flags_fragment` the
/// IPv4 flags and fragment offset word, `options` IPv4 options (a multiple of 4 bytes).
#[allow(clippy::too_many_arguments)]
pub fn udp_frame(
    from: [u8; 6],
    to: [u8; 6],
    source: [u8; 4],
    destination: [u8; 4],
    source_port: u16,
    port: u16,
    options: &[u8],
    flags_fragment: u16,
    udp_checksum: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&to);
    frame.extend_from_slice(&from);
    frame.extend_from_slice(&[0x08, 0x00]);
    let header_len = IPV4_HEADER + options.len();
    let total = (header_len + UDP_HEADER + payload.len()) as u16;
    frame.extend_from_slice(&[0x40 | (header_len / 4) as u8, 0]);
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&[0x12, 0x34]);
    frame.extend_from_slice(&flags_fragment.to_be_bytes());
    frame.extend_from_slice(&[64, 17, 0, 0]);
    frame.extend_from_slice(&source);
    frame.extend_from_slice(&destination);
    frame.extend_from_slice(options);
    frame.extend_from_slice(&source_port.to_be_bytes());
    frame.extend_from_slice(&port.to_be_bytes());
    frame.extend_from_slice(&((UDP_HEADER + payload.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, u8::from(udp_checksum)]);
    frame.extend_from_slice(payload);
    let mut fixed = with_fixed_checksums(&frame);
    if !udp_checksum {
        let at = ETHERNET_HEADER + header_len + 6;
        fixed[at..at + 2].copy_from_slice(&[0, 0]);
    }
    fixed
}

/// The seed corpus of the `net` target: a scene byte, then a frame.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let scene = CONFIGURED | PORT_7;
    let seed = |scene: u8, frame: Vec<u8>| {
        let mut bytes = std::vec![scene];
        bytes.extend(frame);
        bytes
    };
    let request = |source_port, port, options: &[u8], fragment, checksum, payload: &[u8]| {
        udp_frame(PEER_MAC, OUR_MAC, PEER_ADDRESS, OUR_ADDRESS, source_port, port, options, fragment, checksum, payload)
    };
    let mut padded = request(40_000, 7, &[], 0x4000, true, b"pad");
    padded.resize(60, 0xee);
    let broadcast = udp_frame(PEER_MAC, [0xff; 6], PEER_ADDRESS, [10, 0, 2, 255], 40_000, 7, &[], 0, false, b"all");
    let mut tcp = request(40_000, 4748, &[], 0x4000, true, &[0; 20]);
    tcp[23] = 6;
    let tcp = with_fixed_checksums(&tcp);
    let mut arp = std::vec![0xff; 6];
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&PEER_ADDRESS);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&OUR_ADDRESS);
    std::vec![
        ("echo", seed(scene, request(40_000, 7, &[], 0x4000, true, b"Echo1"))),
        ("echo-fix", seed(scene | FIX_CHECKSUMS, request(40_001, 7, &[], 0x4000, true, b"fix me"))),
        ("echo-no-checksum", seed(scene, request(40_002, 7, &[], 0, false, b"zero"))),
        ("echo-padded", seed(scene, padded)),
        ("echo-1400", seed(scene | FIX_CHECKSUMS, request(40_003, 7, &[], 0x4000, true, &[0x5a; 1400]))),
        ("echo-port-5007", seed(CONFIGURED, request(40_004, 5007, &[], 0x4000, true, b"other port"))),
        ("options", seed(scene, request(40_005, 7, &[1, 1, 1, 0], 0x4000, true, b"options"))),
        ("fragment", seed(scene, request(40_006, 7, &[], 0x2000, true, b"more"))),
        ("closed-port", seed(scene | FIX_CHECKSUMS, request(40_007, 10, &[], 0x4000, true, b"closed"))),
        ("from-port-0", seed(scene, request(0, 7, &[], 0x4000, false, b"port0"))),
        ("unconfigured", seed(PORT_7, request(40_008, 7, &[], 0x4000, true, b"dhcp"))),
        ("broadcast", seed(scene, broadcast)),
        ("tcp", seed(scene, tcp)),
        ("arp", seed(scene, arp)),
    ]
}

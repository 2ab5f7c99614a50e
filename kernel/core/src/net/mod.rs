//! The network manager's frame logic that needs no hardware: the pre-filter that checks every
//! received frame before smoltcp sees it ([`classify`]), and the UDP echo service's fast path
//! ([`echo_reply`]), which answers a plain unicast echo request straight from the received frame
//! instead of through smoltcp's ingress, the echo socket and smoltcp's egress.
//!
//! Untrusted bytes go through smoltcp's checked views (`new_checked`) only, so nothing here can
//! panic on a malformed frame (the tests below feed it every kind).
//!
//! The network manager itself (the interface, its sockets, address configuration, the echo
//! services, job and client sockets) is [`manager`], generic over the Ethernet device and the
//! clock so it runs on the host against a fake wire.

pub mod manager;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Address, Ipv4Cidr, Ipv4Packet,
    Ipv4Repr, UdpPacket, UdpRepr,
};

/// Bytes of an Ethernet header (no VLAN tag).
pub const ETHERNET_HEADER: usize = 14;
/// Bytes of an IPv4 header without options.
pub const IPV4_HEADER: usize = 20;
/// Bytes of a UDP header.
pub const UDP_HEADER: usize = 8;
/// Hop limit (TTL) of the fast path's replies: smoltcp's default for a UDP socket's datagrams.
pub const REPLY_HOP_LIMIT: u8 = 64;
/// The end of the well-known UDP ports (1..1024), where services that answer any datagram live
/// (echo 7, daytime 13, qotd 17, chargen 19, time 37, DNS 53, NTP 123...). The echo service does
/// not answer a request from one of them: a forged request "from" another host's echo or
/// chargen port would start two services answering each other for ever ([`Verdict::EchoLoop`]).
pub const WELL_KNOWN_PORTS_END: u16 = 1024;

/// This host on the link: what the pre-filter and the echo fast path compare frames against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    /// Our MAC address.
    pub mac: EthernetAddress,
    /// Our IPv4 address and subnet, once configured.
    pub address: Option<Ipv4Cidr>,
    /// The UDP echo service's port.
    pub echo_port: u16,
}

/// What the pre-filter decided about a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the frame to smoltcp. `broadcast`: sent to the Ethernet broadcast address.
    Keep {
        /// The destination MAC is the broadcast address.
        broadcast: bool,
    },
    /// A plain UDP echo request to us that [`echo_reply`] may answer without smoltcp: unicast
    /// to our MAC and address, from a unicast address and a port of at least
    /// [`WELL_KNOWN_PORTS_END`], IPv4 without options
    /// or fragments, header checksum right, UDP length equal to the IP payload, UDP checksum
    /// right (or zero: none sent).
    Echo,
    /// Bad IPv4 header or checksum, bad UDP length or checksum: dropped.
    Malformed,
    /// An IPv4 fragment (no reassembly): dropped.
    Fragment,
    /// UDP to one of our addresses on a port nothing listens on: dropped silently.
    ClosedPort,
    /// UDP to the echo port from a well-known port (1..[`WELL_KNOWN_PORTS_END`]): answering
    /// could start a loop with another service that answers everything; dropped.
    EchoLoop,
}

/// Checks the IPv4 and UDP layers of a received frame. `open` says whether something listens
/// on a UDP port (the echo port counts as open without asking).
pub fn classify(frame: &[u8], local: &Local, open: impl Fn(u16) -> bool) -> Verdict {
    let Ok(ethernet) = EthernetFrame::new_checked(frame) else { return Verdict::Malformed };
    let broadcast = ethernet.dst_addr().is_broadcast();
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return Verdict::Keep { broadcast };
    }
    let Ok(ip) = Ipv4Packet::new_checked(ethernet.payload()) else { return Verdict::Malformed };
    if !ip.verify_checksum() {
        return Verdict::Malformed;
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Verdict::Fragment;
    }
    if ip.next_header() != IpProtocol::Udp {
        return Verdict::Keep { broadcast };
    }
    let Ok(udp) = UdpPacket::new_checked(ip.payload()) else { return Verdict::Malformed };
    let source = IpAddress::Ipv4(ip.src_addr());
    let destination = IpAddress::Ipv4(ip.dst_addr());
    if usize::from(udp.len()) != ip.payload().len() || !udp.verify_checksum(&source, &destination) {
        return Verdict::Malformed;
    }
    let ours = local.address.map(|cidr| cidr.address());
    let to_us = Some(ip.dst_addr()) == ours || ip.dst_addr().is_broadcast();
    let port = udp.dst_port();
    if to_us && port != local.echo_port && !open(port) {
        return Verdict::ClosedPort;
    }
    let source_port = udp.src_port();
    let plain_echo = port == local.echo_port
        && Some(ip.dst_addr()) == ours
        && ethernet.dst_addr() == local.mac
        && ethernet.src_addr().is_unicast()
        && ip.version() == 4
        && usize::from(ip.header_len()) == IPV4_HEADER
        && is_unicast(ip.src_addr(), local.address)
        && source_port >= WELL_KNOWN_PORTS_END;
    if plain_echo {
        Verdict::Echo
    } else if port == local.echo_port && source_port != 0 && source_port < WELL_KNOWN_PORTS_END {
        // Checked only off the fast path: a plain request costs the one compare above (which
        // was `!= 0` before; port 0 is left to smoltcp, which drops it as unanswerable).
        Verdict::EchoLoop
    } else {
        Verdict::Keep { broadcast }
    }
}

/// An address smoltcp would answer: not broadcast (limited or our subnet's), multicast or
/// unspecified.
fn is_unicast(address: Ipv4Address, subnet: Option<Ipv4Cidr>) -> bool {
    !(address.is_broadcast() || address.is_multicast() || address.is_unspecified())
        && subnet.and_then(|cidr| cidr.broadcast()) != Some(address)
}

/// Writes into `reply` the answer to a frame [`classify`] found to be a plain echo request
/// ([`Verdict::Echo`]): Ethernet from our MAC back to the sender's, IPv4 from our address to
/// the sender's (no options, identification 0, don't fragment, hop limit [`REPLY_HOP_LIMIT`],
/// header checksum), UDP from the echo port to the sender's port with the same payload and its
/// checksum: the datagram smoltcp's echo socket would send. Returns the reply's length, or
/// `None` when `request` is not a plain echo request after all or the reply does not fit
/// `reply` (the caller then hands the frame to smoltcp).
pub fn echo_reply(request: &[u8], local: &Local, reply: &mut [u8]) -> Option<usize> {
    if classify(request, local, |_| false) != Verdict::Echo {
        return None;
    }
    echo_reply_unchecked(request, local, reply)
}

/// [`echo_reply`] for a frame the caller has just classified as [`Verdict::Echo`]: the
/// checksums are not verified again (the lengths are: nothing here can panic).
pub fn echo_reply_unchecked(request: &[u8], local: &Local, reply: &mut [u8]) -> Option<usize> {
    let ethernet = EthernetFrame::new_checked(request).ok()?;
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    let ours = local.address?.address();
    let payload = udp.payload();
    let udp_length = UDP_HEADER + payload.len();
    let length = ETHERNET_HEADER + IPV4_HEADER + udp_length;
    let reply = reply.get_mut(..length)?;
    let mut frame = EthernetFrame::new_unchecked(&mut *reply);
    frame.set_dst_addr(ethernet.src_addr());
    frame.set_src_addr(local.mac);
    frame.set_ethertype(EthernetProtocol::Ipv4);
    let sender = ip.src_addr();
    let ip_repr = Ipv4Repr {
        src_addr: ours,
        dst_addr: sender,
        next_header: IpProtocol::Udp,
        payload_len: udp_length,
        hop_limit: REPLY_HOP_LIMIT,
    };
    let checksums = ChecksumCapabilities::default();
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip_repr.emit(&mut packet, &checksums);
    let udp_repr = UdpRepr { src_port: local.echo_port, dst_port: udp.src_port() };
    udp_repr.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &IpAddress::Ipv4(ours),
        &IpAddress::Ipv4(sender),
        payload.len(),
        |data| data.copy_from_slice(payload),
        &checksums,
    );
    Some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUR_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const PEER_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
    const OUR_IP: [u8; 4] = [10, 0, 2, 15];
    const PEER_IP: [u8; 4] = [10, 0, 2, 2];

    fn local() -> Local {
        Local {
            mac: EthernetAddress(OUR_MAC),
            address: Some(Ipv4Cidr::new(Ipv4Address::from(OUR_IP), 24)),
            echo_port: 7,
        }
    }

    fn sum(words: &[u8]) -> u32 {
        words.chunks(2).map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))).sum()
    }

    fn fold(mut total: u32) -> u16 {
        while total > 0xffff {
            total = (total & 0xffff) + (total >> 16);
        }
        !(total as u16)
    }

    /// "Echo1" from 10.0.2.2:40000 to 10.0.2.15:7, checksums computed here (not by smoltcp).
    fn request(ip_header: &[u8], udp_checksum: bool, data: &[u8]) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend_from_slice(&OUR_MAC);
        frame.extend_from_slice(&PEER_MAC);
        frame.extend_from_slice(&[0x08, 0x00]);
        let udp_length = (8 + data.len()) as u16;
        let total = (ip_header.len() + 8 + data.len()) as u16;
        let mut ip = ip_header.to_vec();
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let checksum = fold(sum(&ip));
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        frame.extend_from_slice(&ip);
        let mut udp = vec![0x9c, 0x40, 0x00, 0x07];
        udp.extend_from_slice(&udp_length.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(data);
        if udp_checksum {
            let pseudo = [&PEER_IP[..], &OUR_IP[..], &[0, 17], &udp_length.to_be_bytes()[..]].concat();
            let mut checksum = fold(sum(&pseudo) + sum(&udp));
            if checksum == 0 {
                checksum = 0xffff;
            }
            udp[6..8].copy_from_slice(&checksum.to_be_bytes());
        }
        frame.extend_from_slice(&udp);
        frame
    }

    /// A plain IPv4 header from the peer to us (length and checksum filled in by `request`).
    fn header() -> Vec<u8> {
        let mut ip = vec![0x45, 0x00, 0, 0, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x11, 0, 0];
        ip.extend_from_slice(&PEER_IP);
        ip.extend_from_slice(&OUR_IP);
        ip
    }

    /// The reply to `request(header(), _, b"Echo1")`, written out by hand; its checksums
    /// (IPv4 0x22bc, UDP 0x6ca9) computed apart from smoltcp with an RFC 1071 sum.
    const GOLDEN_REPLY: [u8; 47] = [
        0x52, 0x55, 0x0a, 0x00, 0x02, 0x02, // to the sender's MAC
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // from ours
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x21, // version 4, IHL 5, total 33
        0x00, 0x00, 0x40, 0x00, // identification 0, don't fragment
        0x40, 0x11, 0x22, 0xbc, // hop limit 64, UDP, checksum
        10, 0, 2, 15, // from us
        10, 0, 2, 2, // to the sender
        0x00, 0x07, 0x9c, 0x40, // port 7 to 40000
        0x00, 0x0d, 0x6c, 0xa9, // length 13, checksum
        b'E', b'c', b'h', b'o', b'1',
    ];

    #[test]
    fn plain_echo_request_is_answered_with_golden_bytes() {
        let frame = request(&header(), true, b"Echo1");
        assert_eq!(classify(&frame, &local(), |_| false), Verdict::Echo);
        let mut reply = [0u8; 1536];
        let length = echo_reply(&frame, &local(), &mut reply).expect("a reply");
        assert_eq!(&reply[..length], &GOLDEN_REPLY[..]);
        let mut unchecked = [0u8; 1536];
        assert_eq!(echo_reply_unchecked(&frame, &local(), &mut unchecked), Some(length));
        assert_eq!(reply, unchecked);
    }

    #[test]
    fn reply_parses_with_valid_checksums_for_every_size() {
        for size in [0usize, 1, 2, 3, 5, 63, 64, 1000, 1472] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            for with_checksum in [true, false] {
                let frame = request(&header(), with_checksum, &data);
                let mut reply = vec![0u8; 1536];
                let length = echo_reply(&frame, &local(), &mut reply).expect("a reply");
                let ethernet = EthernetFrame::new_checked(&reply[..length]).expect("ethernet");
                assert_eq!(ethernet.dst_addr(), EthernetAddress(PEER_MAC));
                let ip = Ipv4Packet::new_checked(ethernet.payload()).expect("ipv4");
                let repr = Ipv4Repr::parse(&ip, &ChecksumCapabilities::default()).expect("valid IPv4");
                assert_eq!((repr.src_addr, repr.dst_addr), (Ipv4Address::from(OUR_IP), Ipv4Address::from(PEER_IP)));
                let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
                assert_ne!(udp.checksum(), 0, "the reply always carries a checksum");
                let (source, destination) = (IpAddress::Ipv4(repr.src_addr), IpAddress::Ipv4(repr.dst_addr));
                let udp_repr =
                    UdpRepr::parse(&udp, &source, &destination, &ChecksumCapabilities::default()).expect("valid UDP");
                assert_eq!((udp_repr.src_port, udp_repr.dst_port), (7, 40_000));
                assert_eq!(udp.payload(), &data[..]);
            }
        }
    }

    #[test]
    fn ethernet_padding_after_the_datagram_is_not_echoed() {
        let mut frame = request(&header(), true, b"hi");
        frame.resize(60, 0xee);
        assert_eq!(classify(&frame, &local(), |_| false), Verdict::Echo);
        let mut reply = [0u8; 1536];
        let length = echo_reply(&frame, &local(), &mut reply).expect("a reply");
        assert_eq!(length, 14 + 20 + 8 + 2);
        assert_eq!(&reply[length - 2..length], b"hi");
    }

    #[test]
    fn unusual_requests_go_to_smoltcp() {
        let keep = Verdict::Keep { broadcast: false };
        let plain = request(&header(), true, b"Echo1");
        // IPv4 options: smoltcp's path.
        let mut with_options = header();
        with_options[0] = 0x46;
        with_options.extend_from_slice(&[1, 1, 1, 0]);
        assert_eq!(classify(&request(&with_options, true, b"x"), &local(), |_| false), keep);
        // To the broadcast MAC, to the subnet's broadcast address.
        let mut frame = plain.clone();
        frame[..6].copy_from_slice(&[0xff; 6]);
        assert_eq!(classify(&frame, &local(), |_| false), Verdict::Keep { broadcast: true });
        let mut to_subnet = header();
        to_subnet[16..20].copy_from_slice(&[10, 0, 2, 255]);
        assert_eq!(classify(&request(&to_subnet, false, b"x"), &local(), |_| false), keep);
        // To another MAC, from a multicast MAC.
        let mut frame = plain.clone();
        frame[5] ^= 1;
        assert_eq!(classify(&frame, &local(), |_| false), keep);
        let mut frame = plain.clone();
        frame[6] |= 1;
        assert_eq!(classify(&frame, &local(), |_| false), keep);
        // From the subnet's broadcast, an unspecified or a multicast address.
        for source in [[10, 0, 2, 255], [0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255]] {
            let mut from = header();
            from[12..16].copy_from_slice(&source);
            let frame = request(&from, false, b"x");
            assert_eq!(classify(&frame, &local(), |_| false), keep, "from {source:?}");
            assert_eq!(echo_reply(&frame, &local(), &mut [0u8; 1536]), None);
        }
        // From port 0 (no port to answer).
        let mut frame = plain.clone();
        frame[34..36].copy_from_slice(&[0, 0]);
        frame[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
        assert_eq!(classify(&frame, &local(), |_| false), keep);
        // Not yet configured: smoltcp decides.
        let unconfigured = Local { address: None, ..local() };
        assert_eq!(classify(&plain, &unconfigured, |_| false), keep);
        assert_eq!(echo_reply(&plain, &unconfigured, &mut [0u8; 1536]), None);
        // Another port that is open.
        let mut frame = plain.clone();
        frame[36..38].copy_from_slice(&68u16.to_be_bytes());
        frame[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(classify(&frame, &local(), |port| port == 68), keep);
        // A reply buffer too small.
        assert_eq!(echo_reply(&plain, &local(), &mut [0u8; 46]), None);
    }

    #[test]
    fn echo_requests_from_well_known_ports_are_dropped() {
        let plain = request(&header(), true, b"Echo1");
        for (source, expected) in [
            (7u16, Verdict::EchoLoop),
            (19, Verdict::EchoLoop),
            (1, Verdict::EchoLoop),
            (1023, Verdict::EchoLoop),
            (1024, Verdict::Echo),
            (40_000, Verdict::Echo),
            (0, Verdict::Keep { broadcast: false }),
        ] {
            let mut frame = plain.clone();
            frame[34..36].copy_from_slice(&source.to_be_bytes());
            frame[40..42].copy_from_slice(&[0, 0]); // no UDP checksum
            assert_eq!(classify(&frame, &local(), |_| false), expected, "from port {source}");
            assert_eq!(echo_reply(&frame, &local(), &mut [0u8; 1536]).is_some(), expected == Verdict::Echo);
        }
        // Broadcast requests from port 7 too.
        let mut frame = plain.clone();
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[34..36].copy_from_slice(&7u16.to_be_bytes());
        frame[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(classify(&frame, &local(), |_| false), Verdict::EchoLoop);
        // Other open ports are not affected (the DHCP client's replies come from port 67).
        let mut frame = plain.clone();
        frame[34..36].copy_from_slice(&67u16.to_be_bytes());
        frame[36..38].copy_from_slice(&68u16.to_be_bytes());
        frame[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(classify(&frame, &local(), |port| port == 68), Verdict::Keep { broadcast: false });
    }

    #[test]
    fn bad_frames_are_sorted_out() {
        let plain = request(&header(), true, b"Echo1");
        let verdict = |frame: &[u8]| classify(frame, &local(), |_| false);
        assert_eq!(verdict(&plain[..10]), Verdict::Malformed);
        let mut frame = plain.clone();
        frame[24] ^= 0xff; // IPv4 header checksum
        assert_eq!(verdict(&frame), Verdict::Malformed);
        let mut frame = plain.clone();
        frame[45] ^= 0x20; // payload: UDP checksum no longer matches
        assert_eq!(verdict(&frame), Verdict::Malformed);
        let mut frame = plain.clone();
        frame[38..40].copy_from_slice(&200u16.to_be_bytes()); // UDP length
        assert_eq!(verdict(&frame), Verdict::Malformed);
        let mut fragment = header();
        fragment[6] = 0x20; // more fragments
        assert_eq!(verdict(&request(&fragment, true, b"x")), Verdict::Fragment);
        let mut frame = plain.clone();
        frame[36..38].copy_from_slice(&9u16.to_be_bytes());
        frame[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(verdict(&frame), Verdict::ClosedPort);
        let mut version = header();
        version[0] = 0x65; // IPv6 version in an IPv4 frame: smoltcp rejects it
        assert_eq!(verdict(&request(&version, true, b"x")), Verdict::Keep { broadcast: false });
        for length in 0..plain.len() {
            assert!(echo_reply(&plain[..length], &local(), &mut [0u8; 1536]).is_none(), "length {length}");
            let _ = echo_reply_unchecked(&plain[..length], &local(), &mut [0u8; 1536]);
        }
    }
}

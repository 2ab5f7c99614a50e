//! Raw Ethernet frames straight to the kernel: QEMU's `-netdev socket,udp=` carries each frame
//! in one UDP datagram on loopback, so this test is the kernel's only Ethernet peer. It sends
//! runts, bad IPv4 headers and checksums, bad UDP lengths and checksums, fragments, unknown
//! EtherTypes, oversized frames and a thousand random frames, then checks that a well-formed
//! UDP echo request is still answered byte for byte and that the counters show the drops.
//!
//! Echo requests from well-known ports (7, 19, ...) are not answered (echo loops), and TCP
//! SYNs that never complete leave the offload service's listeners for a few seconds only.
//!
//! No DHCP server is on this link: the kernel uses its static 10.0.2.15/24; this peer is
//! 10.0.2.1 with a made-up MAC and answers the kernel's ARP requests.

use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant};

use jos_tests::{kernel_elf, offload_counters, BootOptions, Qemu};

const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const PEER_IP: [u8; 4] = [10, 0, 2, 1];
const KERNEL_IP: [u8; 4] = [10, 0, 2, 15];

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for chunk in chunks {
        for pair in chunk.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&PEER_MAC);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An IPv4 packet (no options) around `payload`.
fn ipv4(protocol: u8, flags_fragment: u16, payload: &[u8]) -> Vec<u8> {
    ipv4_from(PEER_IP, &[], protocol, flags_fragment, payload)
}

/// An IPv4 packet from `source` to the kernel, with `options` (a multiple of 4 bytes).
fn ipv4_from(source: [u8; 4], options: &[u8], protocol: u8, flags_fragment: u16, payload: &[u8]) -> Vec<u8> {
    let header_length = 20 + options.len();
    let total = (header_length + payload.len()) as u16;
    let mut header = vec![0x40 | (header_length / 4) as u8, 0];
    header.extend_from_slice(&total.to_be_bytes());
    header.extend_from_slice(&[0x12, 0x34]);
    header.extend_from_slice(&flags_fragment.to_be_bytes());
    header.extend_from_slice(&[64, protocol, 0, 0]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&KERNEL_IP);
    header.extend_from_slice(options);
    let sum = checksum(&[&header]);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
    header.extend_from_slice(payload);
    header
}

/// A UDP datagram from 10.0.2.1:`source` to the kernel's `port`, with a correct checksum.
fn udp(source: u16, port: u16, data: &[u8]) -> Vec<u8> {
    udp_from(PEER_IP, source, port, data, true)
}

/// A UDP datagram from `address`:`source` to the kernel's `port`; without `with_checksum` its
/// checksum field is 0 (none sent).
fn udp_from(address: [u8; 4], source: u16, port: u16, data: &[u8], with_checksum: bool) -> Vec<u8> {
    let length = (8 + data.len()) as u16;
    let mut datagram = Vec::new();
    datagram.extend_from_slice(&source.to_be_bytes());
    datagram.extend_from_slice(&port.to_be_bytes());
    datagram.extend_from_slice(&length.to_be_bytes());
    datagram.extend_from_slice(&[0, 0]);
    datagram.extend_from_slice(data);
    if with_checksum {
        let pseudo = [&address[..], &KERNEL_IP[..], &[0, 17], &length.to_be_bytes()[..]].concat();
        let mut sum = checksum(&[&pseudo, &datagram]);
        if sum == 0 {
            sum = 0xffff;
        }
        datagram[6..8].copy_from_slice(&sum.to_be_bytes());
    }
    datagram
}

/// A TCP segment from 10.0.2.1:`source` to the kernel's `port` with only SYN set (no options),
/// with a correct checksum.
fn tcp_syn(source: u16, port: u16, sequence: u32) -> Vec<u8> {
    let mut segment = Vec::new();
    segment.extend_from_slice(&source.to_be_bytes());
    segment.extend_from_slice(&port.to_be_bytes());
    segment.extend_from_slice(&sequence.to_be_bytes());
    segment.extend_from_slice(&[0, 0, 0, 0]); // acknowledgment
    segment.extend_from_slice(&[0x50, 0x02]); // header 20 bytes, SYN
    segment.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
    let pseudo = [&PEER_IP[..], &KERNEL_IP[..], &[0, 6], &(segment.len() as u16).to_be_bytes()[..]].concat();
    let sum = checksum(&[&pseudo, &segment]);
    segment[16..18].copy_from_slice(&sum.to_be_bytes());
    segment
}

/// The TCP flags and destination port of a frame from the kernel's `from_port`, if it is one.
fn tcp_from(frame: &[u8], from_port: u16) -> Option<(u8, u16)> {
    let is_tcp = frame.len() >= 54 && frame[12..14] == [0x08, 0x00] && frame[23] == 6 && frame[26..30] == KERNEL_IP;
    let header = 14 + usize::from(frame.get(14)? & 0x0f) * 4;
    let segment = frame.get(header..header + 20)?;
    (is_tcp && segment[..2] == from_port.to_be_bytes())
        .then(|| (segment[13], u16::from_be_bytes([segment[2], segment[3]])))
}

/// The test's side of the link.
struct Peer {
    socket: UdpSocket,
    qemu_port: u16,
    kernel_mac: Option<[u8; 6]>,
}

impl Peer {
    fn send(&self, frame: &[u8]) {
        self.socket.send_to(frame, ("127.0.0.1", self.qemu_port)).expect("send frame");
    }

    /// Reads frames until `want` returns something or the time is up; answers ARP requests.
    fn receive<T>(&mut self, timeout: Duration, mut want: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 4096];
        while Instant::now() < deadline {
            let Ok(length) = self.socket.recv(&mut buffer) else { continue };
            let frame = &buffer[..length];
            if frame.len() >= 42 && frame[12..14] == [0x08, 0x06] && frame[20..22] == [0, 1] && frame[38..42] == PEER_IP
            {
                let mut kernel_mac = [0u8; 6];
                kernel_mac.copy_from_slice(&frame[22..28]);
                self.kernel_mac = Some(kernel_mac);
                let mut reply = vec![0, 1, 8, 0, 6, 4, 0, 2];
                reply.extend_from_slice(&PEER_MAC);
                reply.extend_from_slice(&PEER_IP);
                reply.extend_from_slice(&frame[22..32]);
                self.send(&ethernet(kernel_mac, 0x0806, &reply));
                continue;
            }
            if let Some(found) = want(frame) {
                return Some(found);
            }
        }
        None
    }

    /// Sends a UDP echo request to port 7 and waits for the reply's payload.
    fn echo(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let destination = self.kernel_mac.unwrap_or([0xff; 6]);
        self.send(&ethernet(destination, 0x0800, &ipv4(17, 0x4000, &udp(40_000, 7, data))));
        self.receive(Duration::from_secs(3), |frame| {
            let is_reply = frame.len() >= 42
                && frame[12..14] == [0x08, 0x00]
                && frame[23] == 17
                && frame[26..30] == KERNEL_IP
                && frame[34..36] == 7u16.to_be_bytes()
                && frame[36..38] == 40_000u16.to_be_bytes();
            is_reply.then(|| {
                let length = usize::from(u16::from_be_bytes([frame[38], frame[39]])).saturating_sub(8);
                frame[42..(42 + length).min(frame.len())].to_vec()
            })
        })
    }
}

/// Checks a reply frame field by field (Ethernet, IPv4 without options and with a right header
/// checksum, UDP from port 7 with a right, non-zero checksum) and returns its payload.
fn check_reply(frame: &[u8], kernel: [u8; 6], port: u16) -> Result<Vec<u8>, String> {
    let fail = |what: &str| Err(format!("{what}: {frame:02x?}"));
    if frame.len() < 42 || frame[..6] != PEER_MAC || frame[6..12] != kernel || frame[12..14] != [0x08, 0x00] {
        return fail("Ethernet header");
    }
    let ip = &frame[14..34];
    if ip[0] != 0x45 || ip[9] != 17 || ip[12..16] != KERNEL_IP || ip[16..20] != PEER_IP || ip[8] == 0 {
        return fail("IPv4 header");
    }
    if checksum(&[ip]) != 0 {
        return fail("IPv4 header checksum");
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let Some(datagram) = frame.get(34..14 + total) else { return fail("IPv4 total length") };
    let length = usize::from(u16::from_be_bytes([datagram[4], datagram[5]]));
    if datagram[..2] != 7u16.to_be_bytes() || datagram[2..4] != port.to_be_bytes() || length != datagram.len() {
        return fail("UDP header");
    }
    let pseudo = [&KERNEL_IP[..], &PEER_IP[..], &[0, 17], &(length as u16).to_be_bytes()[..]].concat();
    if datagram[6..8] == [0, 0] || checksum(&[&pseudo, datagram]) != 0 {
        return fail("UDP checksum");
    }
    Ok(datagram[8..].to_vec())
}

fn stat(output: &str, name: &str) -> u64 {
    output
        .lines()
        .rev()
        .find(|l| l.starts_with("net: stats "))
        .and_then(|line| line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Boots raspi0 with this test as its only Ethernet peer; returns once the kernel has its
/// static address.
fn boot() -> (Qemu, Peer) {
    boot_with(None)
}

/// [`boot`], with an offload boot configuration (so the offload service listens).
fn boot_with(config: Option<&Path>) -> (Qemu, Peer) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let our_port = socket.local_addr().expect("addr").port();
    let qemu_port = UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.extra_args = vec![
        "-netdev".into(),
        format!("socket,id=n0,udp=127.0.0.1:{our_port},localaddr=127.0.0.1:{qemu_port}"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
    ];
    if let Some(path) = config {
        options.extra_args.push("-device".into());
        options.extra_args.push(format!("loader,file={},addr=0x01F00000,force-raw=on", path.display()));
    }
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let ip = qemu.wait_for_line("net: ip ", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    assert!(ip.starts_with("10.0.2.15/24 via static"), "expected the static fallback, got {ip:?}");
    (qemu, Peer { socket, qemu_port, kernel_mac: None })
}

#[test]
fn malformed_frames_are_dropped_and_counted() {
    let (qemu, mut peer) = boot();
    let first = peer.echo(b"before");
    assert_eq!(first.as_deref(), Some(&b"before"[..]), "no echo before the bad frames:\n{}", qemu.output());
    let kernel = peer.kernel_mac.unwrap_or([0xff; 6]);

    let good = ipv4(17, 0x4000, &udp(40_000, 7, b"x"));
    let mut bad: Vec<Vec<u8>> = Vec::new();
    bad.push(vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // runt
    let mut header_sum = good.clone();
    header_sum[10] ^= 0xff;
    bad.push(ethernet(kernel, 0x0800, &header_sum)); // IPv4 header checksum
    let mut too_long = good.clone();
    too_long[2..4].copy_from_slice(&1400u16.to_be_bytes());
    bad.push(ethernet(kernel, 0x0800, &too_long)); // total length past the frame
    let mut short_ihl = good.clone();
    short_ihl[0] = 0x43;
    bad.push(ethernet(kernel, 0x0800, &short_ihl)); // header length below 20
    let mut udp_length = udp(40_000, 7, b"hello");
    udp_length[4..6].copy_from_slice(&200u16.to_be_bytes());
    bad.push(ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp_length))); // UDP length
    let mut udp_sum = udp(40_000, 7, b"hello");
    udp_sum[6] ^= 0x55;
    bad.push(ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp_sum))); // UDP checksum
    bad.push(ethernet(kernel, 0x0800, &ipv4(17, 0x2000, &udp(40_000, 7, &[7; 64])))); // fragment
    bad.push(ethernet(kernel, 0x88b5, &[0xaa; 100])); // unknown EtherType
    bad.push(ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(40_000, 9, b"closed")))); // closed port
    bad.push(ethernet(kernel, 0x0800, &vec![0x45; 1990])); // jumbo garbage (over 1514)
    bad.push(ethernet(kernel, 0x0800, &vec![0x45; 3000])); // larger than a receive buffer
    for frame in &bad {
        peer.send(frame);
    }
    let mut state = 0x1234_5678u32;
    for _ in 0..1000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let length = (state % 1600) as usize;
        let mut frame: Vec<u8> = (0..length).map(|i| (state >> (i % 24)) as u8).collect();
        if frame.len() >= 14 {
            frame[..6].copy_from_slice(&kernel);
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        peer.send(&frame);
        if state.is_multiple_of(50) {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Drain what the kernel sent meanwhile (ICMP errors, ARP), then check the echo still works.
    let _ = peer.receive(Duration::from_millis(500), |_| None::<()>);
    let mut answered = None;
    for attempt in 0..20 {
        let data = format!("after {attempt}");
        if let Some(reply) = peer.echo(data.as_bytes()) {
            answered = Some((data, reply));
            break;
        }
    }
    let (data, reply) = answered.unwrap_or_else(|| panic!("no echo after the bad frames:\n{}", qemu.output()));
    assert_eq!(reply, data.as_bytes());
    std::thread::sleep(Duration::from_millis(2500));
    let output = qemu.output();
    println!("{}", output.lines().rev().find(|l| l.starts_with("net: stats ")).unwrap_or("no stats line"));
    assert!(stat(&output, "malformed") >= 5, "malformed frames not counted:\n{output}");
    assert!(stat(&output, "fragments") >= 1, "fragment not counted:\n{output}");
    assert!(stat(&output, "closed_port") >= 1, "closed-port datagram not counted:\n{output}");
    assert!(!output.contains("PANIC"), "{output}");
}

/// Echo requests of every shape the kernel answers (its fast path for plain ones, smoltcp for
/// the rest) get well-formed replies, requests with no address or port to answer are dropped
/// without stopping the service, and the counters count every echo whichever path answered.
#[test]
fn echo_replies_are_well_formed_on_every_path() {
    let (qemu, mut peer) = boot();
    let first = peer.echo(b"before");
    assert_eq!(first.as_deref(), Some(&b"before"[..]), "no echo:\n{}", qemu.output());
    let kernel = peer.kernel_mac.unwrap_or([0xff; 6]);
    // Echoes answered and requests sent (a request resent after a loss may be answered twice).
    let (mut answered, mut sent) = (1u64, 1u64);
    let mut padded = ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(40_001, 7, b"pad")));
    padded.resize(60, 0xee); // Ethernet padding after the datagram is not part of it
    let big: Vec<u8> = (0..1400).map(|i| (i * 13) as u8).collect();
    let cases: Vec<(&str, Vec<u8>, u16, Vec<u8>)> = vec![
        ("plain", ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(40_000, 7, b"Echo1"))), 40_000, b"Echo1".to_vec()),
        (
            "no UDP checksum",
            ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp_from(PEER_IP, 40_002, 7, b"zero", false))),
            40_002,
            b"zero".to_vec(),
        ),
        ("padded", padded, 40_001, b"pad".to_vec()),
        (
            "IPv4 options",
            ethernet(kernel, 0x0800, &ipv4_from(PEER_IP, &[1, 1, 1, 0], 17, 0x4000, &udp(40_003, 7, b"options"))),
            40_003,
            b"options".to_vec(),
        ),
        ("1400 bytes", ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(40_004, 7, &big))), 40_004, big.clone()),
        ("empty", ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(40_005, 7, b""))), 40_005, Vec::new()),
    ];
    for (name, frame, port, data) in &cases {
        let mut reply = None;
        for _ in 0..3 {
            peer.send(frame);
            sent += 1;
            reply = peer.receive(Duration::from_secs(3), |frame| {
                (frame.len() >= 38 && frame[12..14] == [0x08, 0x00] && frame[36..38] == port.to_be_bytes())
                    .then(|| frame.to_vec())
            });
            if reply.is_some() {
                break;
            }
        }
        let reply = reply.unwrap_or_else(|| panic!("{name}: no reply:\n{}", qemu.output()));
        let payload = check_reply(&reply, kernel, *port).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&payload, data, "{name}: payload");
        answered += 1;
    }
    // No port or no address to answer: dropped (counted), and the service goes on.
    let from_port_zero = ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp_from(PEER_IP, 0, 7, b"port0", false)));
    let from_nowhere = ethernet(
        kernel,
        0x0800,
        &ipv4_from([0, 0, 0, 0], &[], 17, 0x4000, &udp_from([0, 0, 0, 0], 40_006, 7, b"nowhere", true)),
    );
    peer.send(&from_port_zero);
    peer.send(&from_nowhere);
    let unexpected = peer.receive(Duration::from_millis(500), |frame| {
        (frame.len() >= 38
            && frame[12..14] == [0x08, 0x00]
            && (frame[36..38] == [0, 0] || frame[36..38] == 40_006u16.to_be_bytes()))
        .then_some(())
    });
    assert!(unexpected.is_none(), "answered a request with no address or port to answer");
    for attempt in 0..20 {
        let data = format!("after {attempt}");
        sent += 1;
        if peer.echo(data.as_bytes()).as_deref() == Some(data.as_bytes()) {
            answered += 1;
            break;
        }
        assert!(attempt < 19, "the echo service stopped after requests it cannot answer:\n{}", qemu.output());
    }
    std::thread::sleep(Duration::from_millis(2500));
    let output = qemu.output();
    println!("{}", output.lines().rev().find(|l| l.starts_with("net: stats ")).unwrap_or("no stats line"));
    let counted = stat(&output, "udp_echo");
    assert!(
        (answered..=sent).contains(&counted),
        "{answered} echoes answered of {sent} requests, {counted} counted:\n{output}"
    );
    assert_eq!(stat(&output, "udp_drop"), 2, "the two unanswerable requests counted:\n{output}");
    assert!(!output.contains("PANIC"), "{output}");
}

/// An echo request "from" another host's echo (7), chargen (19) or any well-known port is not
/// answered: two services that answer everything would answer each other for ever. Counted as
/// `echo_loop`; requests from other ports are still answered.
#[test]
fn echo_requests_from_well_known_ports_are_not_answered() {
    let (qemu, mut peer) = boot();
    assert_eq!(peer.echo(b"first").as_deref(), Some(&b"first"[..]), "no echo:\n{}", qemu.output());
    let kernel = peer.kernel_mac.unwrap_or([0xff; 6]);
    for source in [7u16, 19, 1023] {
        peer.send(&ethernet(kernel, 0x0800, &ipv4(17, 0x4000, &udp(source, 7, b"loop?"))));
    }
    let answered = peer.receive(Duration::from_millis(1500), |frame| {
        let to_low_port = frame.len() >= 38
            && frame[12..14] == [0x08, 0x00]
            && frame[23] == 17
            && u16::from_be_bytes([frame[36], frame[37]]) < 1024;
        to_low_port.then(|| u16::from_be_bytes([frame[36], frame[37]]))
    });
    assert_eq!(answered, None, "an echo request from a well-known port was answered");
    assert_eq!(peer.echo(b"after").as_deref(), Some(&b"after"[..]), "the echo service still answers");
    std::thread::sleep(Duration::from_millis(2500));
    let output = qemu.output();
    assert_eq!(stat(&output, "echo_loop"), 3, "the three counted:\n{output}");
    assert!(!output.contains("PANIC"), "{output}");
}

/// SYNs to the offload port that never complete: the kernel answers each listener's SYN-ACK,
/// then resets the half-open sockets after about 3 s (`half_open_resets`), and they listen again.
#[test]
fn half_open_session_sockets_are_reset_and_listen_again() {
    let config = jos_tests::config::TestConfig::new("half-open", [0x71; 32], [0x72; 32])
        .client([0x73; 32])
        .max_module_len(1 << 20)
        .limits(jos_abi::wire::Limits { fuel: 1_000_000, memory: 1 << 20, deadline_ms: 1000, output: 1024 })
        .queue_len(1)
        .write("half-open");
    let (mut qemu, mut peer) = boot_with(Some(&config));
    assert_eq!(peer.echo(b"up").as_deref(), Some(&b"up"[..]), "no echo:\n{}", qemu.output());
    let kernel = peer.kernel_mac.unwrap_or([0xff; 6]);
    // 12 SYNs for 10 listeners: 10 SYN-ACKs, 2 resets.
    // (Paced: QEMU's usb-net drops a frame that arrives while its one receive buffer is busy.)
    for index in 0..12u16 {
        peer.send(&ethernet(kernel, 0x0800, &ipv4(6, 0x4000, &tcp_syn(50_000 + index, 4748, 1000))));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut syn_acked = std::collections::BTreeSet::new();
    let mut reset = std::collections::BTreeSet::new();
    let started = Instant::now();
    let _ = peer.receive(Duration::from_secs(8), |frame| {
        if let Some((flags, port)) = tcp_from(frame, 4748) {
            if flags & 0x12 == 0x12 {
                syn_acked.insert(port);
            } else if flags & 0x04 != 0 && syn_acked.contains(&port) && started.elapsed() > Duration::from_secs(2) {
                reset.insert(port);
            }
        }
        (reset.len() == 10).then_some(())
    });
    assert_eq!(syn_acked.len(), 10, "a SYN-ACK from each listener: {syn_acked:?}");
    assert_eq!(reset, syn_acked, "each half-open socket reset after a few seconds");
    // They listen again: a new SYN is answered (sent again if QEMU dropped it).
    let mut answered = None;
    for _ in 0..3 {
        peer.send(&ethernet(kernel, 0x0800, &ipv4(6, 0x4000, &tcp_syn(51_000, 4748, 2000))));
        answered = peer.receive(Duration::from_secs(2), |frame| {
            tcp_from(frame, 4748).filter(|(flags, port)| flags & 0x12 == 0x12 && *port == 51_000).map(|_| ())
        });
        if answered.is_some() {
            break;
        }
    }
    assert!(answered.is_some(), "no SYN-ACK after the resets:\n{}", qemu.output());
    let counters = offload_counters(&mut qemu);
    assert!(counters["half_open_resets"] >= 10, "{counters:?}");
    assert_eq!(counters["sessions_opened"], 0);
    let _ = std::fs::remove_file(config);
}

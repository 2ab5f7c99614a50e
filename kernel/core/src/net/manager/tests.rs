//! The network manager on the host: a fake Ethernet device wired to a second smoltcp interface
//! (the peer: a host on the same link), and a clock the test moves. Address configuration
//! (DHCP, the static fallback, the boot configuration's address), the pre-filter's drops, the
//! echo services, the job sockets and the client sockets are driven through real frames.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::string::String;
use std::vec::Vec;

use jos_abi::config::Network;
use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{self, Checksum, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame, HardwareAddress, IpAddress, IpCidr,
    IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv4Packet, UdpPacket,
};

use super::*;
use crate::fuzzing::udp_frame;
use crate::usb::ethernet::MTU;

const DEVICE_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// One direction of the wire.
type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// A clock the test moves.
#[derive(Default)]
struct FakeClock(Cell<u64>);

impl Clock for FakeClock {
    fn now_micros(&self) -> u64 {
        self.0.get()
    }
}

impl FakeClock {
    fn advance(&self, micros: u64) {
        self.0.set(self.0.get() + micros);
    }
}

/// The manager's Ethernet device: receives what the peer sent, sends to the peer.
struct FakeDevice {
    rx: Queue,
    tx: Queue,
    /// The oldest received frame, once peeked.
    current: Option<Vec<u8>>,
    counters: LinkCounters,
    sent: Rc<Cell<u64>>,
    checked: bool,
}

impl FakeDevice {
    fn next(&mut self) -> Option<Vec<u8>> {
        let frame = self.current.take().or_else(|| self.rx.borrow_mut().pop_front())?;
        self.counters.rx.frames += 1;
        self.counters.rx.bytes += frame.len() as u64;
        Some(frame)
    }
}

struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct TxToken {
    queue: Queue,
    sent: Rc<Cell<u64>>,
}

impl phy::TxToken for TxToken {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.queue.borrow_mut().push_back(frame);
        self.sent.set(self.sent.get() + 1);
        result
    }
}

fn capabilities(checked: bool) -> DeviceCapabilities {
    let mut capabilities = DeviceCapabilities::default();
    capabilities.medium = Medium::Ethernet;
    capabilities.max_transmission_unit = MTU;
    if checked {
        capabilities.checksum.ipv4 = Checksum::Tx;
        capabilities.checksum.udp = Checksum::Tx;
    }
    capabilities
}

impl phy::Device for FakeDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken)> {
        let frame = self.next()?;
        Some((RxToken(frame), TxToken { queue: self.tx.clone(), sent: self.sent.clone() }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken> {
        Some(TxToken { queue: self.tx.clone(), sent: self.sent.clone() })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(self.checked)
    }
}

impl NetworkDevice for FakeDevice {
    fn mac(&self) -> [u8; 6] {
        DEVICE_MAC
    }

    fn counters(&self) -> LinkCounters {
        let mut counters = self.counters;
        counters.tx.frames = self.sent.get();
        counters
    }

    fn service(&mut self) {}

    fn peek(&mut self) -> Option<&[u8]> {
        if self.current.is_none() {
            self.current = self.rx.borrow_mut().pop_front();
        }
        self.current.as_deref()
    }

    fn answer(&mut self, reply: impl FnOnce(&[u8], &mut [u8]) -> Option<usize>) -> Option<usize> {
        let mut buffer = vec![0; MTU];
        let length = reply(self.peek()?, &mut buffer)?;
        let _ = self.next();
        buffer.truncate(length);
        self.tx.borrow_mut().push_back(buffer);
        self.sent.set(self.sent.get() + 1);
        Some(length)
    }

    fn discard(&mut self) {
        let _ = self.next();
    }

    fn rx_checksums_checked(&mut self) {
        self.checked = true;
    }
}

/// The peer's device: the other end of the same two queues.
struct PeerDevice {
    rx: Queue,
    tx: Queue,
    sent: Rc<Cell<u64>>,
}

impl phy::Device for PeerDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken)> {
        let frame = self.rx.borrow_mut().pop_front()?;
        Some((RxToken(frame), TxToken { queue: self.tx.clone(), sent: self.sent.clone() }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken> {
        Some(TxToken { queue: self.tx.clone(), sent: self.sent.clone() })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        capabilities(false)
    }
}

/// Memory for a socket buffer that lives as long as the test (smoltcp here has no `alloc`).
fn leak<T>(buffer: Vec<T>) -> &'static mut [T] {
    Vec::leak(buffer)
}

/// A host on the link: its own smoltcp interface and sockets.
struct Peer {
    device: PeerDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
}

impl Peer {
    fn new(address: Ipv4Cidr, gateway: Option<Ipv4Address>) -> Self {
        let mut device = PeerDevice { rx: Queue::default(), tx: Queue::default(), sent: Rc::default() };
        let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(PEER_MAC)));
        let mut iface = Interface::new(config, &mut device, Instant::from_micros(0));
        iface.update_ip_addrs(|addresses| addresses.push(IpCidr::Ipv4(address)).unwrap());
        if let Some(gateway) = gateway {
            iface.routes_mut().add_default_ipv4_route(gateway).unwrap();
        }
        let storage: &'static mut [SocketStorage<'static>] = Vec::leak((0..8).map(|_| SocketStorage::EMPTY).collect());
        Peer { device, iface, sockets: SocketSet::new(storage) }
    }

    fn udp(&mut self, port: u16) -> SocketHandle {
        let buffer = || udp::PacketBuffer::new(leak(vec![udp::PacketMetadata::EMPTY; 8]), leak(vec![0; 8192]));
        let mut socket = udp::Socket::new(buffer(), buffer());
        socket.bind(port).unwrap();
        self.sockets.add(socket)
    }

    fn tcp(&mut self) -> SocketHandle {
        let socket =
            tcp::Socket::new(tcp::SocketBuffer::new(leak(vec![0; 8192])), tcp::SocketBuffer::new(leak(vec![0; 8192])));
        self.sockets.add(socket)
    }

    fn poll(&mut self, now: u64) {
        let _ = self.iface.poll(Instant::from_micros(now as i64), &mut self.device, &mut self.sockets);
    }
}

std::thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static STATUS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static ATTACHED: Cell<usize> = const { Cell::new(0) };
    static SERVED: Cell<usize> = const { Cell::new(0) };
}

fn log(args: core::fmt::Arguments) {
    LOG.with(|log| log.borrow_mut().push(std::format!("{args}")));
}

fn status(args: core::fmt::Arguments) {
    STATUS.with(|lines| lines.borrow_mut().push(std::format!("{args}")));
}

fn logged(text: &str) -> bool {
    LOG.with(|log| log.borrow().iter().any(|line| line.contains(text)))
}

/// The manager wired to a peer.
struct Bench {
    manager: Manager<'static, FakeDevice, FakeClock>,
    clock: &'static FakeClock,
    peer: Peer,
}

impl Bench {
    /// A manager without a hosted service, and a peer at `peer_address`.
    fn new(hosted: Option<&'static HostedService>, peer_address: Ipv4Cidr) -> Self {
        let clock: &'static FakeClock = Box::leak(Box::default());
        let storage: &'static mut Storage<'static> = Box::leak(Box::new(Storage::new()));
        let peer = Peer::new(peer_address, None);
        let device = FakeDevice {
            rx: peer.device.tx.clone(),
            tx: peer.device.rx.clone(),
            current: None,
            counters: LinkCounters::default(),
            sent: Rc::default(),
            checked: false,
        };
        let manager = Manager::new(device, clock, storage, hosted, Sinks { log, status });
        Bench { manager, clock, peer }
    }

    /// A manager on the static fallback address (DHCP timed out), and the peer at its gateway.
    fn on_static_address() -> Self {
        let mut bench = Bench::new(None, Ipv4Cidr::new(STATIC_GATEWAY, 24));
        bench.manager.poll();
        bench.clock.advance(DHCP_TIMEOUT_US + 1);
        bench.manager.poll();
        assert_eq!(bench.manager.address(), Some(STATIC_ADDRESS));
        // Drop the DHCP requests the peer would otherwise read.
        bench.peer.device.rx.borrow_mut().clear();
        bench
    }

    /// Polls both sides `rounds` times, a millisecond apart.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            self.manager.poll();
            self.peer.poll(self.clock.now_micros());
            self.clock.advance(1000);
        }
    }

    fn device_endpoint(&self, port: u16) -> IpEndpoint {
        IpEndpoint::new(IpAddress::Ipv4(STATIC_ADDRESS.address()), port)
    }
}

#[test]
fn without_dhcp_the_static_fallback_is_applied_after_the_timeout() {
    let mut bench = Bench::new(None, Ipv4Cidr::new(STATIC_GATEWAY, 24));
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Discovering);
    assert_eq!(bench.manager.address(), None);
    // The manager asked DHCP: a broadcast from port 68 to port 67.
    let discover = bench.peer.device.rx.borrow_mut().pop_front().expect("a DHCP discover");
    let udp = dhcp_udp(&discover).expect("a UDP frame");
    assert_eq!((udp.0, udp.1), (68, 67));
    bench.clock.advance(DHCP_TIMEOUT_US - 1000);
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Discovering, "not before the timeout");
    bench.clock.advance(2000);
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Static);
    assert_eq!(bench.manager.address(), Some(STATIC_ADDRESS));
    assert_eq!(bench.manager.gateway(), Some(STATIC_GATEWAY));
    assert!(logged("via static gateway 10.0.2.2 (no DHCP answer)"));
}

/// `(source port, destination port, UDP payload)` of a UDP frame.
fn dhcp_udp(frame: &[u8]) -> Option<(u16, u16, Vec<u8>)> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    Some((udp.src_port(), udp.dst_port(), udp.payload().to_vec()))
}

/// A DHCP server's answer to a discover (offer) or request (ack), leasing 192.168.7.20/24.
fn dhcp_answer(request: &[u8]) -> Option<Vec<u8>> {
    let (_, 67, payload) = dhcp_udp(request)? else { return None };
    let packet = DhcpPacket::new_checked(&payload[..]).ok()?;
    let asked = DhcpRepr::parse(&packet).ok()?;
    let message_type = match asked.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => DhcpMessageType::Ack,
        _ => return None,
    };
    let server = Ipv4Address::new(192, 168, 7, 1);
    let mut dns = heapless::Vec::new();
    dns.push(Ipv4Address::new(192, 168, 7, 53)).unwrap();
    let answer = DhcpRepr {
        message_type,
        transaction_id: asked.transaction_id,
        secs: 0,
        client_hardware_address: asked.client_hardware_address,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::new(192, 168, 7, 20),
        server_ip: server,
        router: Some(server),
        subnet_mask: Some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(server),
        parameter_request_list: None,
        dns_servers: Some(dns),
        max_size: None,
        lease_duration: Some(3600),
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut bytes = vec![0; answer.buffer_len()];
    answer.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..])).ok()?;
    Some(udp_frame(PEER_MAC, DEVICE_MAC, server.octets(), [255; 4], 67, 68, &[], 0, true, &bytes))
}

#[test]
fn a_dhcp_lease_sets_address_gateway_and_dns() {
    let mut bench = Bench::new(None, Ipv4Cidr::new(Ipv4Address::new(192, 168, 7, 1), 24));
    for _ in 0..20 {
        bench.manager.poll();
        let requests: Vec<Vec<u8>> = bench.peer.device.rx.borrow_mut().drain(..).collect();
        for request in requests {
            if let Some(answer) = dhcp_answer(&request) {
                bench.peer.device.tx.borrow_mut().push_back(answer);
            }
        }
        bench.clock.advance(1000);
        if bench.manager.address_state() == AddressState::Dhcp {
            break;
        }
    }
    assert_eq!(bench.manager.address_state(), AddressState::Dhcp);
    assert_eq!(bench.manager.address(), Some(Ipv4Cidr::new(Ipv4Address::new(192, 168, 7, 20), 24)));
    assert_eq!(bench.manager.gateway(), Some(Ipv4Address::new(192, 168, 7, 1)));
    assert_eq!(bench.manager.dns(), Some(Ipv4Address::new(192, 168, 7, 53)));
    assert!(logged("net: ip 192.168.7.20/24 via dhcp gateway 192.168.7.1 dns 192.168.7.53"));
    // A lease is kept past the fallback's timeout.
    bench.clock.advance(2 * DHCP_TIMEOUT_US);
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Dhcp);
}

static CONFIGURED: HostedService = HostedService {
    enabled: || true,
    configure_socket: |socket| socket.set_nagle_enabled(false),
    attach: |_, sessions| ATTACHED.with(|attached| attached.set(sessions.len())),
    configured_network: || {
        Some(Network::Static { address: [192, 168, 1, 50], prefix_len: 24, gateway: [192, 168, 1, 1] })
    },
    serve: |_| SERVED.with(|served| served.set(served.get() + 1)),
};

#[test]
fn the_boot_configuration_fixes_the_address_and_the_hosted_service_gets_its_sockets() {
    let mut bench = Bench::new(Some(&CONFIGURED), Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 1), 24));
    assert_eq!(ATTACHED.with(Cell::get), sizes::OFFLOAD_TCP_SOCKETS, "every session listener handed over");
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Configured);
    assert_eq!(bench.manager.address(), Some(Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 50), 24)));
    assert_eq!(bench.manager.gateway(), Some(Ipv4Address::new(192, 168, 1, 1)));
    assert!(logged("net: ip 192.168.1.50/24 via static (boot configuration) gateway 192.168.1.1"));
    assert!(SERVED.with(Cell::get) > 0, "the hosted service is served every poll");
    // No DHCP: no discover on the wire, and no fallback after the timeout.
    bench.clock.advance(DHCP_TIMEOUT_US + 1);
    bench.manager.poll();
    assert_eq!(bench.manager.address_state(), AddressState::Configured);
    let sent: Vec<Vec<u8>> = bench.peer.device.rx.borrow_mut().drain(..).collect();
    assert!(sent.iter().all(|frame| dhcp_udp(frame).is_none_or(|(source, _, _)| source != 68)));
    // The discovery port is open to the pre-filter.
    let probe = udp_frame(PEER_MAC, DEVICE_MAC, [192, 168, 1, 1], [192, 168, 1, 50], 40000, 4747, &[], 0, true, b"?");
    bench.peer.device.tx.borrow_mut().push_back(probe);
    bench.manager.poll();
    assert_eq!(bench.manager.counters().closed_port, 0);
}

#[test]
fn udp_echo_answers_and_the_pre_filter_drops_what_it_must() {
    let mut bench = Bench::on_static_address();
    let socket = bench.peer.udp(40000);
    let to = bench.device_endpoint(UDP_ECHO_PORT);
    bench.peer.sockets.get_mut::<udp::Socket>(socket).send_slice(b"ping", to).unwrap();
    bench.run(10);
    let (payload, meta) = bench.peer.sockets.get_mut::<udp::Socket>(socket).recv().expect("an echo");
    assert_eq!((payload, meta.endpoint), (&b"ping"[..], to));
    assert_eq!(bench.manager.counters().udp_echoes, 1);

    // From a well-known port: dropped, counted, unanswered.
    let looping = bench.peer.udp(19);
    bench.peer.sockets.get_mut::<udp::Socket>(looping).send_slice(b"chargen", to).unwrap();
    // To a closed port: dropped without an ICMP answer.
    let closed = bench.device_endpoint(9999);
    bench.peer.sockets.get_mut::<udp::Socket>(socket).send_slice(b"x", closed).unwrap();
    bench.run(10);
    let counters = bench.manager.counters();
    assert_eq!((counters.echo_loops, counters.closed_port, counters.udp_echoes), (1, 1, 1));
    assert!(!bench.peer.sockets.get_mut::<udp::Socket>(looping).can_recv());

    // A malformed frame (bad IPv4 checksum) and a fragment.
    let mut bad = udp_frame(PEER_MAC, DEVICE_MAC, [10, 0, 2, 2], [10, 0, 2, 15], 40000, 7, &[], 0, true, b"a");
    bad[24] ^= 0xff;
    let fragment = udp_frame(PEER_MAC, DEVICE_MAC, [10, 0, 2, 2], [10, 0, 2, 15], 40000, 7, &[], 0x2000, true, b"a");
    bench.peer.device.tx.borrow_mut().extend([bad, fragment]);
    bench.manager.poll();
    let counters = bench.manager.counters();
    assert_eq!((counters.malformed, counters.fragments, counters.udp_echoes), (1, 1, 1));
}

#[test]
fn tcp_echo_returns_the_bytes_and_counts_the_connection() {
    let mut bench = Bench::on_static_address();
    let socket = bench.peer.tcp();
    let to = bench.device_endpoint(TCP_ECHO_PORT);
    let context = bench.peer.iface.context();
    bench.peer.sockets.get_mut::<tcp::Socket>(socket).connect(context, to, 50000).unwrap();
    bench.run(10);
    assert!(bench.peer.sockets.get_mut::<tcp::Socket>(socket).may_send(), "connected");
    bench.peer.sockets.get_mut::<tcp::Socket>(socket).send_slice(b"hello, echo").unwrap();
    bench.run(10);
    let mut answer = [0u8; 64];
    let got = bench.peer.sockets.get_mut::<tcp::Socket>(socket).recv_slice(&mut answer).unwrap();
    assert_eq!(&answer[..got], b"hello, echo");
    let counters = bench.manager.counters();
    assert_eq!((counters.tcp_connections, counters.tcp_echo_bytes), (1, 11));
}

#[test]
fn job_sockets_bind_send_receive_and_close() {
    let mut bench = Bench::on_static_address();
    let peer_socket = bench.peer.udp(41000);
    let manager = &mut bench.manager;
    assert_eq!(manager.job_bind(UDP_ECHO_PORT), Err(ErrorCode::InUse), "the device's own port");
    assert_eq!(manager.job_bind(0), Err(ErrorCode::InUse));
    assert_eq!(manager.job_bind(5000), Ok(0));
    assert_eq!(manager.job_bind(5000), Err(ErrorCode::InUse), "bound already");
    assert_eq!(manager.job_bind(5001), Ok(1));
    assert_eq!(manager.job_bind(5002), Ok(2));
    assert_eq!(manager.job_bind(5003), Ok(3));
    assert_eq!(manager.job_bind(5004), Err(ErrorCode::LimitExceeded));
    assert!(manager.job_port_bound(5002));
    let mut buffer = [0u8; 16];
    assert_eq!(manager.job_recv(0, &mut buffer), Err(ErrorCode::WouldBlock));

    // The peer's datagram reaches the job socket, with its sender.
    let to = bench.device_endpoint(5000);
    bench.peer.sockets.get_mut::<udp::Socket>(peer_socket).send_slice(b"to the job", to).unwrap();
    bench.run(10);
    let (length, from) = bench.manager.job_recv(0, &mut buffer[..6]).unwrap();
    assert_eq!((length, &buffer[..6]), (10, &b"to the"[..]), "the full length, the copy truncated");
    assert_eq!(from, Endpoint { address: [10, 0, 2, 2], port: 41000 });

    // The job's datagram reaches the peer.
    let peer = Endpoint { address: [10, 0, 2, 2], port: 41000 };
    assert_eq!(bench.manager.job_send(0, peer, b"from the job"), Ok(()));
    assert_eq!(bench.manager.job_send(0, peer, &[0; sizes::JOB_BUFFER + 1]), Err(ErrorCode::LimitExceeded));
    bench.run(10);
    let (payload, meta) = bench.peer.sockets.get_mut::<udp::Socket>(peer_socket).recv().expect("the job's datagram");
    assert_eq!((payload, meta.endpoint.port), (&b"from the job"[..], 5000));

    // Closed: the port is free again and its datagrams are dropped as to a closed port.
    bench.manager.job_close(0);
    bench.manager.release_jobs(1 << 3);
    assert_eq!(bench.manager.job_send(0, peer, b"x"), Err(ErrorCode::NotFound));
    assert_eq!(bench.manager.job_recv(3, &mut buffer), Err(ErrorCode::NotFound));
    assert_eq!(bench.manager.job_recv(sizes::JOB_SOCKETS, &mut buffer), Err(ErrorCode::NotFound));
    assert!(!bench.manager.job_port_bound(5000));
    bench.peer.sockets.get_mut::<udp::Socket>(peer_socket).send_slice(b"late", to).unwrap();
    bench.run(10);
    assert_eq!(bench.manager.counters().closed_port, 1);
    assert_eq!(bench.manager.job_bind(5004), Ok(0), "a freed socket is reused");
}

#[test]
fn a_client_socket_connects_out_and_only_one_is_allowed() {
    let mut bench = Bench::on_static_address();
    let listener = bench.peer.tcp();
    bench.peer.sockets.get_mut::<tcp::Socket>(listener).listen(1883).unwrap();
    let buffers = || tcp::SocketBuffer::new(leak(vec![0; 4096]));
    let handle = bench.manager.add_client_socket(tcp::Socket::new(buffers(), buffers())).unwrap();
    assert_eq!(
        bench.manager.add_client_socket(tcp::Socket::new(buffers(), buffers())).err(),
        Some(ErrorCode::LimitExceeded)
    );
    let broker = IpEndpoint::new(IpAddress::Ipv4(STATIC_GATEWAY), 1883);
    bench.manager.with_client_socket(handle, |socket, context| socket.connect(context, broker, 49152)).unwrap();
    bench.run(10);
    assert_eq!(bench.manager.with_client_socket(handle, |socket, _| socket.state()), tcp::State::Established);
    bench.manager.with_client_socket(handle, |socket, _| socket.send_slice(b"CONNECT")).unwrap();
    bench.run(10);
    let mut received = [0u8; 16];
    let got = bench.peer.sockets.get_mut::<tcp::Socket>(listener).recv_slice(&mut received).unwrap();
    assert_eq!(&received[..got], b"CONNECT");
    bench.peer.sockets.get_mut::<tcp::Socket>(listener).send_slice(b"CONNACK").unwrap();
    bench.run(10);
    let got = bench.manager.with_client_socket(handle, |socket, _| socket.recv_slice(&mut received)).unwrap();
    assert_eq!(&received[..got], b"CONNACK");
}

#[test]
fn the_status_line_and_the_counters_are_reported_once_a_second() {
    // The boot configuration's address: no DHCP socket, so no traffic the test does not make.
    let mut bench = Bench::new(Some(&CONFIGURED), Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 1), 24));
    bench.manager.poll();
    let socket = bench.peer.udp(40000);
    let to = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(192, 168, 1, 50)), UDP_ECHO_PORT);
    bench.peer.sockets.get_mut::<udp::Socket>(socket).send_slice(b"ping", to).unwrap();
    bench.run(10);
    assert!(STATUS.with(|lines| lines.borrow().is_empty()), "nothing before the first period");
    bench.clock.advance(REPORT_PERIOD_US);
    bench.manager.poll();
    let line = STATUS.with(|lines| lines.borrow().last().cloned()).expect("a status line");
    assert!(line.starts_with("192.168.1.50/24 configured rx 2 tx 2 drop 0 err 0"), "{line}");
    assert!(logged("udp_echo 1 "), "{:?}", LOG.with(|log| log.borrow().clone()));
    // Half a period later: nothing; a period later with nothing changed: the status line is
    // refreshed, the counters are not logged again.
    LOG.with(|log| log.borrow_mut().clear());
    bench.clock.advance(REPORT_PERIOD_US / 2);
    bench.manager.poll();
    assert_eq!(STATUS.with(|lines| lines.borrow().len()), 1);
    bench.clock.advance(REPORT_PERIOD_US);
    bench.manager.poll();
    assert_eq!(STATUS.with(|lines| lines.borrow().len()), 2);
    assert!(!logged("net: stats"), "{:?}", LOG.with(|log| log.borrow().clone()));
}

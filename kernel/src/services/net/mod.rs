//! The network manager: a smoltcp interface over the USB Ethernet device (CDC-ECM or SMSC LAN95xx), DHCPv4 with a static
//! fallback, ARP and ICMP echo (answered by smoltcp), and the UDP and TCP echo services.
//! [`poll`] runs from the executive every minor frame; it never waits.
//!
//! Socket counts and buffer sizes are set in one place ([`sizes`]). Frames that would only cost
//! work (malformed IPv4/UDP, datagrams to closed UDP ports) are dropped and counted before the
//! stack sees them, so a flood to a closed port draws no ICMP replies. A plain unicast UDP echo
//! request is answered by the pre-filter's fast path straight from the received frame
//! (`jos_kcore::net`, docs/network.md "The echo fast path"); anything unusual goes to smoltcp.
//! An echo request from a well-known port (1..1024) is dropped and counted (`echo_loops`): its
//! answer could start a loop with another host's echo or chargen service.
//!
//! The files: [`sizes`] (socket counts and buffers), `storage` (the socket memory), `address`
//! (DHCP, static fallback, boot configuration), `client` (outgoing sockets other services own),
//! `echo` (the echo services and fast path), `jobs` (job UDP sockets), `report` (status line and
//! counters); this file holds the manager, its
//! start ([`init`]) and its poll.

mod address;
mod client;
mod echo;
mod jobs;
mod report;
pub mod sizes;
mod storage;

pub use client::{add_client_socket, with_client_socket};
use jobs::job_port_bound;
pub use jobs::{job_bind, job_close, job_recv, job_send};

use core::sync::atomic::Ordering;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, Ipv4Address, Ipv4Cidr};

use jos_kcore::net::{classify, Local, Verdict};

use crate::board::bcm2835::usb::ethernet::{self, EthernetDevice};
use crate::board::bcm2835::usb::{hal, Slot};

/// What the service that owns the discovery and session sockets (the offload service, which
/// sits above this module) gives the network manager. It registers it with [`host`] before
/// [`init`]; the manager calls it and never names that service (the arrows run one way:
/// `offload` -> `jobio` -> `net`).
pub struct HostedService {
    /// Whether the service runs (the manager then opens its sockets).
    pub enabled: fn() -> bool,
    /// Sets the service's options on each session socket as the manager makes it.
    pub configure_socket: fn(&mut tcp::Socket<'_>),
    /// Hands the service its discovery socket and session listeners (once).
    pub attach: fn(SocketHandle, [SocketHandle; sizes::OFFLOAD_TCP_SOCKETS]),
    /// The boot configuration's network settings, if any.
    pub configured_network: fn() -> Option<jos_abi::config::Network>,
    /// Moves bytes between the service's sockets and the service (every poll).
    pub serve: fn(&mut SocketSet<'_>),
}

/// The registered service (null: none).
static HOSTED: core::sync::atomic::AtomicPtr<HostedService> = core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Registers the service that owns the offload sockets (call before [`init`]).
pub fn host(service: &'static HostedService) {
    HOSTED.store(core::ptr::from_ref(service).cast_mut(), Ordering::Release);
}

fn hosted() -> Option<&'static HostedService> {
    // SAFETY: HOSTED is null or was set by `host` from a `&'static HostedService`, never freed
    // and only read through shared references.
    unsafe { HOSTED.load(Ordering::Acquire).as_ref() }
}

/// UDP echo service port.
pub const UDP_ECHO_PORT: u16 = 7;
/// TCP echo service port.
pub const TCP_ECHO_PORT: u16 = 7;
/// A TCP echo connection whose peer sends nothing (not even an ACK) for this long is reset
/// (smoltcp's socket timeout), so a silent stranger cannot keep the two echo sockets.
pub const TCP_ECHO_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(30);
/// UDP ports the stack listens on (echo, the DHCP client, offload discovery).
const OPEN_UDP_PORTS: [u16; 3] = [UDP_ECHO_PORT, 68, jos_abi::wire::discovery::DISCOVERY_PORT];
/// Without a DHCP lease after this long, the static configuration is applied.
pub const DHCP_TIMEOUT_US: u64 = 8_000_000;
/// The static fallback address (until the boot configuration provides one).
pub const STATIC_ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
/// The static fallback gateway.
pub const STATIC_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// How often the counters go to the console when they changed.
const REPORT_PERIOD_US: u64 = 1_000_000;
/// Frames processed per poll at most, so one poll stays short under a flood.
const FRAMES_PER_POLL: usize = 32;

/// Where the address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressState {
    /// Asking DHCP.
    Discovering,
    /// Leased by DHCP.
    Dhcp,
    /// The static fallback after a DHCP timeout.
    Static,
    /// The fixed address of the boot configuration (`jos-cli provision --static`): no DHCP.
    Configured,
}

/// The network manager's counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// Link counters from the Ethernet driver.
    pub link: ethernet::Counters,
    /// Malformed frames dropped (bad IPv4 header or checksum, bad UDP length or checksum).
    pub malformed: u64,
    /// IPv4 fragments dropped (no reassembly: datagrams must fit one frame).
    pub fragments: u64,
    /// UDP datagrams to closed ports dropped.
    pub closed_port: u64,
    /// Broadcast frames received.
    pub broadcasts: u64,
    /// UDP echo replies sent.
    pub udp_echoes: u64,
    /// UDP echo replies that did not fit the transmit buffer (dropped).
    pub udp_echo_drops: u64,
    /// UDP echo requests from a well-known source port (1..1024) dropped: answering could start
    /// an endless exchange with another host's echo, chargen or other answering service.
    pub echo_loops: u64,
    /// TCP echo bytes sent back.
    pub tcp_echo_bytes: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// Microseconds spent in polls that moved at least one frame.
    pub busy_us: u64,
}

struct Net {
    device: EthernetDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    dhcp: SocketHandle,
    udp: SocketHandle,
    tcp: [SocketHandle; sizes::TCP_SOCKETS],
    tcp_open: [bool; sizes::TCP_SOCKETS],
    jobs: [SocketHandle; sizes::JOB_SOCKETS],
    state: AddressState,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
    dns: Option<Ipv4Address>,
    started_us: u64,
    last_report_us: u64,
    reported: (u64, u64, u64),
    counters: Counters,
    /// Copy buffer of the UDP and TCP echo services ([`sizes::SCRATCH`]).
    scratch: [u8; sizes::SCRATCH],
    log: fn(core::fmt::Arguments),
}

static NET: Slot<Net> = Slot::new();

fn now(micros: u64) -> Instant {
    Instant::from_micros(micros as i64)
}

/// Why the network manager did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No Ethernet device was enumerated.
    NoDevice,
    /// `init` ran before.
    AlreadyStarted,
}

/// Builds the interface and sockets over the enumerated Ethernet device.
pub fn init(log: fn(core::fmt::Arguments)) -> Result<(), InitError> {
    if ethernet::DEVICE.with(|_| ()).is_none() {
        return Err(InitError::NoDevice);
    }
    let Some(storage) = storage::take() else {
        return Err(InitError::AlreadyStarted);
    };
    // Move the device out of the driver's slot: the network manager owns it from now on.
    let Some(mut ethernet_device) = ethernet::DEVICE.take() else {
        return Err(InitError::NoDevice);
    };
    // The pre-filter (`classify`, in `poll`) drops every frame with a wrong IPv4 header or UDP
    // checksum before smoltcp sees it: smoltcp need not verify them again.
    ethernet_device.rx_checksums_checked();
    let started = hal::now_micros();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(ethernet_device.mac())));
    config.random_seed = started
        ^ u64::from_le_bytes([
            ethernet_device.mac()[0],
            ethernet_device.mac()[1],
            ethernet_device.mac()[2],
            ethernet_device.mac()[3],
            ethernet_device.mac()[4],
            ethernet_device.mac()[5],
            0x5a,
            0xa5,
        ]);
    let iface = Interface::new(config, &mut ethernet_device, now(started));
    let mut sockets = SocketSet::new(&mut storage.sockets[..]);
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let mut udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(&mut storage.udp_rx_meta[..], &mut storage.udp_rx[..]),
        udp::PacketBuffer::new(&mut storage.udp_tx_meta[..], &mut storage.udp_tx[..]),
    );
    // Binding a fresh socket to a non-zero port cannot fail.
    let _ = udp_socket.bind(UDP_ECHO_PORT);
    let udp = sockets.add(udp_socket);
    let mut tcp_rx = storage.tcp_rx.iter_mut();
    let mut tcp_tx = storage.tcp_tx.iter_mut();
    let tcp = core::array::from_fn(|_| {
        let (Some(rx), Some(tx)) = (tcp_rx.next(), tcp_tx.next()) else { unreachable!("one buffer pair per socket") };
        let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
        socket.set_timeout(Some(TCP_ECHO_TIMEOUT));
        sockets.add(socket)
    });
    if let Some(service) = hosted().filter(|service| (service.enabled)()) {
        // The offload service's sockets: discovery on UDP 4747, one TCP 4748 listener per session.
        let mut discovery = udp::Socket::new(
            udp::PacketBuffer::new(&mut storage.discovery_rx_meta[..], &mut storage.discovery_rx[..]),
            udp::PacketBuffer::new(&mut storage.discovery_tx_meta[..], &mut storage.discovery_tx[..]),
        );
        let _ = discovery.bind(jos_abi::wire::discovery::DISCOVERY_PORT);
        let discovery = sockets.add(discovery);
        let mut rx = storage.offload_rx.iter_mut();
        let mut tx = storage.offload_tx.iter_mut();
        let sessions = core::array::from_fn(|_| {
            let (Some(rx), Some(tx)) = (rx.next(), tx.next()) else { unreachable!("one buffer pair per socket") };
            let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
            (service.configure_socket)(&mut socket);
            sockets.add(socket)
        });
        (service.attach)(discovery, sessions);
    }
    // The job sockets: added once, unbound until a job binds one (`job_bind`).
    let mut rx_meta = storage.job_rx_meta.iter_mut();
    let mut rx = storage.job_rx.iter_mut();
    let mut tx_meta = storage.job_tx_meta.iter_mut();
    let mut tx = storage.job_tx.iter_mut();
    let jobs = core::array::from_fn(|_| {
        let (Some(rx_meta), Some(rx), Some(tx_meta), Some(tx)) = (rx_meta.next(), rx.next(), tx_meta.next(), tx.next())
        else {
            unreachable!("one buffer set per socket")
        };
        sockets.add(udp::Socket::new(
            udp::PacketBuffer::new(&mut rx_meta[..], &mut rx[..]),
            udp::PacketBuffer::new(&mut tx_meta[..], &mut tx[..]),
        ))
    });
    let net = Net {
        device: ethernet_device,
        iface,
        sockets,
        dhcp,
        udp,
        tcp,
        tcp_open: [false; sizes::TCP_SOCKETS],
        jobs,
        state: AddressState::Discovering,
        address: None,
        gateway: None,
        dns: None,
        started_us: started,
        last_report_us: started,
        reported: (0, 0, 0),
        counters: Counters::default(),
        scratch: [0; sizes::SCRATCH],
        log,
    };
    log(format_args!("net: udp echo on port {UDP_ECHO_PORT}, tcp echo on port {TCP_ECHO_PORT}; asking DHCP"));
    NET.put(net);
    Ok(())
}

/// Writes one line to the kernel log (the console sink the USB stack and this service use).
pub fn log_line(args: core::fmt::Arguments) {
    crate::kprintln!("{args}");
}

/// One step of the network: move frames, run the stack, serve the echo sockets, report.
pub fn poll() {
    NET.with(Net::poll);
}
/// The counters, if the network is up.
pub fn counters() -> Option<Counters> {
    NET.with(|net| {
        net.counters.link = net.device.counters();
        net.counters
    })
}

impl Net {
    fn poll(&mut self) {
        self.release_jobs();
        let started = hal::now_micros();
        let timestamp = now(started);
        let before = self.device.counters();
        self.device.service();
        let local = Local { mac: EthernetAddress(self.device.mac()), address: self.address, echo_port: UDP_ECHO_PORT };
        let open = |port: u16| OPEN_UDP_PORTS.contains(&port) || job_port_bound(port);
        let mut frames = 0;
        while frames < FRAMES_PER_POLL {
            let Some(frame) = self.device.peek() else { break };
            frames += 1;
            match classify(frame, &local, open) {
                Verdict::Malformed => {
                    self.counters.malformed += 1;
                    self.device.discard();
                    continue;
                }
                Verdict::Fragment => {
                    self.counters.fragments += 1;
                    self.device.discard();
                    continue;
                }
                Verdict::ClosedPort => {
                    self.counters.closed_port += 1;
                    self.device.discard();
                    continue;
                }
                Verdict::EchoLoop => {
                    self.counters.echo_loops += 1;
                    self.device.discard();
                    continue;
                }
                Verdict::Echo => {
                    if self.echo_fast(&local) {
                        continue;
                    }
                }
                Verdict::Keep { broadcast } => {
                    if broadcast {
                        self.counters.broadcasts += 1;
                    }
                }
            }
            let _ = self.iface.poll_ingress_single(timestamp, &mut self.device, &mut self.sockets);
            self.serve();
        }
        self.iface.poll_maintenance(timestamp);
        self.dhcp(started);
        self.serve();
        let _ = self.iface.poll_egress(timestamp, &mut self.device, &mut self.sockets);
        self.device.service();
        let after = self.device.counters();
        if after.rx.frames != before.rx.frames || after.tx.frames != before.tx.frames || frames > 0 {
            self.counters.busy_us += hal::now_micros() - started;
        }
        self.report(started);
    }
}

/// Whether the network has an IPv4 address (DHCP lease or static fallback); `None` when the
/// network manager did not start (no Ethernet device). For the status LED.
pub fn has_address() -> Option<bool> {
    NET.with(|net| net.address.is_some())
}

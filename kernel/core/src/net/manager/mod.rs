//! The network manager: a smoltcp interface over an Ethernet device (on the board, the USB
//! CDC-ECM or SMSC LAN95xx device), DHCPv4 with a static fallback, ARP and ICMP echo (answered
//! by smoltcp), the UDP and TCP echo services, the job UDP sockets and the client sockets other
//! services own. [`Manager::poll`] runs from the executive every minor frame; it never waits.
//!
//! The manager is generic over the device ([`NetworkDevice`]: smoltcp's `Device` plus the
//! pre-filter's peek, answer and discard) and the [`Clock`], so the host tests drive it over a
//! fake wire against a second smoltcp interface (`tests.rs`); the kernel's
//! `services::net` owns the one instance and its socket memory.
//!
//! Socket counts and buffer sizes are set in one place ([`sizes`]). Frames that would only cost
//! work (malformed IPv4/UDP, datagrams to closed UDP ports) are dropped and counted before the
//! stack sees them, so a flood to a closed port draws no ICMP replies. A plain unicast UDP echo
//! request is answered by the pre-filter's fast path straight from the received frame
//! ([`super::echo_reply_unchecked`], docs/network.md "The echo fast path"); anything unusual goes
//! to smoltcp. An echo request from a well-known port (1..1024) is dropped and counted
//! (`echo_loops`): its answer could start a loop with another host's echo or chargen service.
//!
//! The files: [`sizes`] (socket counts and buffers), `storage` (the socket memory's shape),
//! `device` (the device trait), `address` (DHCP, static fallback, boot configuration), `client`
//! (outgoing sockets other services own), `echo` (the echo services and fast path), `jobs` (job
//! UDP sockets), `report` (status line and counters); this file holds the manager, its
//! construction and its poll.

mod address;
mod client;
mod device;
mod echo;
mod jobs;
mod report;
pub mod sizes;
mod storage;
#[cfg(test)]
mod tests;

pub use device::NetworkDevice;
pub use storage::Storage;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, Ipv4Address, Ipv4Cidr};

use super::{classify, Local, Verdict};
use crate::drivers::Clock;
use crate::usb::ethernet::Counters as LinkCounters;

/// What the service that owns the discovery and session sockets (the kernel's offload service)
/// gives the network manager: the manager calls it and never names that service.
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

/// Where the manager's lines go.
#[derive(Clone, Copy)]
pub struct Sinks {
    /// Log lines (address changes, counters once a second when they changed).
    pub log: fn(core::fmt::Arguments),
    /// The status screen's network line (once a second).
    pub status: fn(core::fmt::Arguments),
}

/// UDP echo service port.
pub const UDP_ECHO_PORT: u16 = 7;
/// TCP echo service port.
pub const TCP_ECHO_PORT: u16 = 7;
/// A TCP echo connection whose peer sends nothing (not even an ACK) for this long is reset
/// (smoltcp's socket timeout), so a silent stranger cannot keep the two echo sockets.
pub const TCP_ECHO_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(30);
/// UDP ports the stack listens on (echo, the DHCP client, offload discovery).
pub const OPEN_UDP_PORTS: [u16; 3] = [UDP_ECHO_PORT, 68, jos_abi::wire::discovery::DISCOVERY_PORT];
/// Without a DHCP lease after this long, the static configuration is applied.
pub const DHCP_TIMEOUT_US: u64 = 8_000_000;
/// The static fallback address (until the boot configuration provides one).
pub const STATIC_ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24);
/// The static fallback gateway.
pub const STATIC_GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// How often the counters go to the console when they changed.
pub const REPORT_PERIOD_US: u64 = 1_000_000;
/// Frames processed per poll at most, so one poll stays short under a flood.
pub const FRAMES_PER_POLL: usize = 32;

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
    pub link: LinkCounters,
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

/// The network manager over device `D` and clock `C`; `'a` is the socket memory's lifetime
/// (`'static` on the board).
pub struct Manager<'a, D: NetworkDevice, C: Clock> {
    device: D,
    clock: &'a C,
    hosted: Option<&'a HostedService>,
    sinks: Sinks,
    iface: Interface,
    sockets: SocketSet<'a>,
    dhcp: SocketHandle,
    udp: SocketHandle,
    tcp: [SocketHandle; sizes::TCP_SOCKETS],
    tcp_open: [bool; sizes::TCP_SOCKETS],
    jobs: [SocketHandle; sizes::JOB_SOCKETS],
    /// The port each job socket is bound to (0: free); read by the frame pre-filter.
    job_ports: [u16; sizes::JOB_SOCKETS],
    /// Client sockets added so far (at most [`sizes::CLIENT_SOCKETS`]).
    client_sockets: usize,
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
}

fn instant(micros: u64) -> Instant {
    Instant::from_micros(micros as i64)
}

impl<'a, D: NetworkDevice, C: Clock> Manager<'a, D, C> {
    /// Builds the interface and sockets over `device` in `storage`. When `hosted` is given and
    /// enabled, opens its discovery socket and session listeners and hands them over.
    pub fn new(
        mut device: D,
        clock: &'a C,
        storage: &'a mut Storage<'a>,
        hosted: Option<&'a HostedService>,
        sinks: Sinks,
    ) -> Self {
        // The pre-filter (`classify`, in `poll`) drops every frame with a wrong IPv4 header or UDP
        // checksum before smoltcp sees it: smoltcp need not verify them again.
        device.rx_checksums_checked();
        let started = clock.now_micros();
        let mac = device.mac();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = started ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0x5a, 0xa5]);
        let iface = Interface::new(config, &mut device, instant(started));
        let Storage {
            sockets: socket_storage,
            udp_rx_meta,
            udp_rx,
            udp_tx_meta,
            udp_tx,
            tcp_rx,
            tcp_tx,
            discovery_rx_meta,
            discovery_rx,
            discovery_tx_meta,
            discovery_tx,
            offload_rx,
            offload_tx,
            job_rx_meta,
            job_rx,
            job_tx_meta,
            job_tx,
        } = storage;
        let mut sockets = SocketSet::new(&mut socket_storage[..]);
        let dhcp = sockets.add(dhcpv4::Socket::new());
        let mut udp_socket = udp::Socket::new(
            udp::PacketBuffer::new(&mut udp_rx_meta[..], &mut udp_rx[..]),
            udp::PacketBuffer::new(&mut udp_tx_meta[..], &mut udp_tx[..]),
        );
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = udp_socket.bind(UDP_ECHO_PORT);
        let udp = sockets.add(udp_socket);
        let mut tcp_rx = tcp_rx.iter_mut();
        let mut tcp_tx = tcp_tx.iter_mut();
        let tcp = core::array::from_fn(|_| {
            let (Some(rx), Some(tx)) = (tcp_rx.next(), tcp_tx.next()) else {
                unreachable!("one buffer pair per socket")
            };
            let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
            socket.set_timeout(Some(TCP_ECHO_TIMEOUT));
            sockets.add(socket)
        });
        if let Some(service) = hosted.filter(|service| (service.enabled)()) {
            // The offload service's sockets: discovery on UDP 4747, one TCP 4748 listener per session.
            let mut discovery = udp::Socket::new(
                udp::PacketBuffer::new(&mut discovery_rx_meta[..], &mut discovery_rx[..]),
                udp::PacketBuffer::new(&mut discovery_tx_meta[..], &mut discovery_tx[..]),
            );
            let _ = discovery.bind(jos_abi::wire::discovery::DISCOVERY_PORT);
            let discovery = sockets.add(discovery);
            let mut rx = offload_rx.iter_mut();
            let mut tx = offload_tx.iter_mut();
            let sessions = core::array::from_fn(|_| {
                let (Some(rx), Some(tx)) = (rx.next(), tx.next()) else { unreachable!("one buffer pair per socket") };
                let mut socket =
                    tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
                (service.configure_socket)(&mut socket);
                sockets.add(socket)
            });
            (service.attach)(discovery, sessions);
        }
        // The job sockets: added once, unbound until a job binds one (`job_bind`).
        let mut rx_meta = job_rx_meta.iter_mut();
        let mut rx = job_rx.iter_mut();
        let mut tx_meta = job_tx_meta.iter_mut();
        let mut tx = job_tx.iter_mut();
        let jobs = core::array::from_fn(|_| {
            let (Some(rx_meta), Some(rx), Some(tx_meta), Some(tx)) =
                (rx_meta.next(), rx.next(), tx_meta.next(), tx.next())
            else {
                unreachable!("one buffer set per socket")
            };
            sockets.add(udp::Socket::new(
                udp::PacketBuffer::new(&mut rx_meta[..], &mut rx[..]),
                udp::PacketBuffer::new(&mut tx_meta[..], &mut tx[..]),
            ))
        });
        (sinks.log)(format_args!(
            "net: udp echo on port {UDP_ECHO_PORT}, tcp echo on port {TCP_ECHO_PORT}; asking DHCP"
        ));
        Manager {
            device,
            clock,
            hosted,
            sinks,
            iface,
            sockets,
            dhcp,
            udp,
            tcp,
            tcp_open: [false; sizes::TCP_SOCKETS],
            jobs,
            job_ports: [0; sizes::JOB_SOCKETS],
            client_sockets: 0,
            state: AddressState::Discovering,
            address: None,
            gateway: None,
            dns: None,
            started_us: started,
            last_report_us: started,
            reported: (0, 0, 0),
            counters: Counters::default(),
            scratch: [0; sizes::SCRATCH],
        }
    }

    /// One step of the network: move frames, run the stack, serve the echo sockets, report.
    pub fn poll(&mut self) {
        let started = self.clock.now_micros();
        let timestamp = instant(started);
        let before = self.device.counters();
        self.device.service();
        let local = Local { mac: EthernetAddress(self.device.mac()), address: self.address, echo_port: UDP_ECHO_PORT };
        let job_ports = self.job_ports;
        let open = |port: u16| OPEN_UDP_PORTS.contains(&port) || jobs::bound(&job_ports, port);
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
            self.counters.busy_us += self.clock.now_micros() - started;
        }
        self.report(started);
    }

    /// The counters (with the device's link counters as they are now).
    pub fn counters(&mut self) -> Counters {
        self.counters.link = self.device.counters();
        self.counters
    }

    /// The IPv4 address (DHCP lease, static fallback or boot configuration), if one is set.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.address
    }

    /// Where the address came from.
    pub fn address_state(&self) -> AddressState {
        self.state
    }

    /// The default gateway, if one is set.
    pub fn gateway(&self) -> Option<Ipv4Address> {
        self.gateway
    }

    /// The first DNS server the DHCP lease named.
    pub fn dns(&self) -> Option<Ipv4Address> {
        self.dns
    }

    /// The device (the host tests reach their fake wire through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }
}

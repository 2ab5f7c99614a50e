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

use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};

use jos_abi::syscall::Endpoint;
use jos_abi::ErrorCode;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv4Cidr};

use jos_kcore::net::{classify, echo_reply_unchecked, Local, Verdict};

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

/// Socket counts and buffer sizes, in one place.
pub mod sizes {
    /// UDP echo: receive and transmit payload bytes.
    pub const UDP_BUFFER: usize = 16 * 1024;
    /// UDP echo: datagrams queued per direction.
    pub const UDP_PACKETS: usize = 16;
    /// TCP echo sockets (connections served at once).
    pub const TCP_SOCKETS: usize = 2;
    /// TCP echo: receive and transmit buffer bytes per socket.
    pub const TCP_BUFFER: usize = 16 * 1024;
    /// Offload sessions: TCP sockets listening on port 4748 (the sessions served at once, and
    /// two more: the offload service checks that its `LISTENERS` equals this when compiling).
    pub const OFFLOAD_TCP_SOCKETS: usize = 10;
    /// Offload sessions: receive and transmit buffer bytes per socket.
    pub const OFFLOAD_TCP_BUFFER: usize = 16 * 1024;
    /// Offload discovery: payload bytes per direction.
    pub const DISCOVERY_BUFFER: usize = 2048;
    /// Offload discovery: datagrams queued per direction.
    pub const DISCOVERY_PACKETS: usize = 4;
    /// Job UDP sockets (`udp_bind`): sockets one job may hold at once.
    pub const JOB_SOCKETS: usize = 4;
    /// Job UDP sockets: receive and transmit payload bytes per socket.
    pub const JOB_BUFFER: usize = 4 * 1024;
    /// Job UDP sockets: datagrams queued per direction per socket.
    pub const JOB_PACKETS: usize = 8;
    /// Outgoing TCP sockets other services add ([`super::add_client_socket`]): the fleet's
    /// broker connection.
    pub const CLIENT_SOCKETS: usize = 1;
    /// All sockets: DHCP, UDP echo, the TCP echo sockets, offload discovery and sessions, the
    /// job sockets and the client sockets.
    pub const SOCKETS: usize = 2 + TCP_SOCKETS + 1 + OFFLOAD_TCP_SOCKETS + JOB_SOCKETS + CLIENT_SOCKETS;
    /// Largest UDP datagram echoed (IPv4 without fragments carries at most 1472 bytes).
    pub const UDP_CHUNK: usize = 2048;
    /// Bytes moved from a TCP receive buffer to its transmit buffer per step.
    pub const TCP_CHUNK: usize = 2048;
    /// The echo services' copy buffer, kept in the network manager rather than a fresh zeroed
    /// stack array per call: zeroing 2 KiB arrays three times per `serve` was most of an echo's
    /// cost (docs/network.md "Where an echo's instructions go").
    pub const SCRATCH: usize = if UDP_CHUNK > TCP_CHUNK { UDP_CHUNK } else { TCP_CHUNK };
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

/// Socket memory, handed out once.
struct Storage {
    sockets: [SocketStorage<'static>; sizes::SOCKETS],
    udp_rx_meta: [udp::PacketMetadata; sizes::UDP_PACKETS],
    udp_rx: [u8; sizes::UDP_BUFFER],
    udp_tx_meta: [udp::PacketMetadata; sizes::UDP_PACKETS],
    udp_tx: [u8; sizes::UDP_BUFFER],
    tcp_rx: [[u8; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    tcp_tx: [[u8; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    discovery_rx_meta: [udp::PacketMetadata; sizes::DISCOVERY_PACKETS],
    discovery_rx: [u8; sizes::DISCOVERY_BUFFER],
    discovery_tx_meta: [udp::PacketMetadata; sizes::DISCOVERY_PACKETS],
    discovery_tx: [u8; sizes::DISCOVERY_BUFFER],
    offload_rx: [[u8; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    offload_tx: [[u8; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    job_rx_meta: [[udp::PacketMetadata; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    job_rx: [[u8; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
    job_tx_meta: [[udp::PacketMetadata; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    job_tx: [[u8; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
}

struct StorageCell(UnsafeCell<Storage>);
// SAFETY: the storage is handed out once, guarded by STORAGE_TAKEN; nothing else touches it.
unsafe impl Sync for StorageCell {}

static STORAGE: StorageCell = StorageCell(UnsafeCell::new(Storage {
    sockets: [SocketStorage::EMPTY; sizes::SOCKETS],
    udp_rx_meta: [udp::PacketMetadata::EMPTY; sizes::UDP_PACKETS],
    udp_rx: [0; sizes::UDP_BUFFER],
    udp_tx_meta: [udp::PacketMetadata::EMPTY; sizes::UDP_PACKETS],
    udp_tx: [0; sizes::UDP_BUFFER],
    tcp_rx: [[0; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    tcp_tx: [[0; sizes::TCP_BUFFER]; sizes::TCP_SOCKETS],
    discovery_rx_meta: [udp::PacketMetadata::EMPTY; sizes::DISCOVERY_PACKETS],
    discovery_rx: [0; sizes::DISCOVERY_BUFFER],
    discovery_tx_meta: [udp::PacketMetadata::EMPTY; sizes::DISCOVERY_PACKETS],
    discovery_tx: [0; sizes::DISCOVERY_BUFFER],
    offload_rx: [[0; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    offload_tx: [[0; sizes::OFFLOAD_TCP_BUFFER]; sizes::OFFLOAD_TCP_SOCKETS],
    job_rx_meta: [[udp::PacketMetadata::EMPTY; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    job_rx: [[0; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
    job_tx_meta: [[udp::PacketMetadata::EMPTY; sizes::JOB_PACKETS]; sizes::JOB_SOCKETS],
    job_tx: [[0; sizes::JOB_BUFFER]; sizes::JOB_SOCKETS],
}));
static STORAGE_TAKEN: AtomicBool = AtomicBool::new(false);

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
    if STORAGE_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(InitError::AlreadyStarted);
    }
    // SAFETY: STORAGE_TAKEN was false, so this is the only reference ever made to the storage.
    let storage: &'static mut Storage = unsafe { &mut *STORAGE.0.get() };
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

/// A short status line for the console and the status screen, e.g.
/// `10.0.2.15/24 dhcp rx 12 tx 10 drop 0 err 0` (the executive's status task shows it as the
/// screen's network row; [`poll`] refreshes it once a second).
pub fn status_line() -> Line {
    let mut line = Line::new();
    if NET.with(|net| net.write_status(&mut line)).is_none() {
        let _ = line.write_str("down");
    }
    line
}

/// The counters, if the network is up.
pub fn counters() -> Option<Counters> {
    NET.with(|net| {
        net.counters.link = net.device.counters();
        net.counters
    })
}

/// Client sockets added so far (at most [`sizes::CLIENT_SOCKETS`]).
static CLIENT_SOCKETS_ADDED: AtomicU32 = AtomicU32::new(0);

/// Adds an outgoing TCP socket that another service owns (the fleet's broker connection; its
/// buffers are the caller's) and returns its handle. `LimitExceeded` past
/// [`sizes::CLIENT_SOCKETS`], `Io` when the network is down.
pub fn add_client_socket(socket: tcp::Socket<'static>) -> Result<SocketHandle, ErrorCode> {
    NET.with(|net| {
        if CLIENT_SOCKETS_ADDED.load(Ordering::Relaxed) as usize >= sizes::CLIENT_SOCKETS {
            return Err(ErrorCode::LimitExceeded);
        }
        CLIENT_SOCKETS_ADDED.fetch_add(1, Ordering::Relaxed);
        Ok(net.sockets.add(socket))
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Runs `f` on a socket added by [`add_client_socket`], with the interface's context (to
/// `connect`); `None` when the network is down or busy. Queued bytes leave on the next [`poll`].
pub fn with_client_socket<R>(
    handle: SocketHandle,
    f: impl FnOnce(&mut tcp::Socket<'static>, &mut smoltcp::iface::Context) -> R,
) -> Option<R> {
    NET.with(|net| f(net.sockets.get_mut::<tcp::Socket<'static>>(handle), net.iface.context()))
}

/// The port each job socket is bound to (0: free); read by the frame pre-filter.
static JOB_PORTS: [AtomicU16; sizes::JOB_SOCKETS] = [const { AtomicU16::new(0) }; sizes::JOB_SOCKETS];
/// Job sockets whose owner ended while the network manager was busy (bit per socket): freed by
/// the next [`poll`] or job socket call.
static JOB_RELEASE: AtomicU32 = AtomicU32::new(0);

fn job_port_bound(port: u16) -> bool {
    port != 0 && JOB_PORTS.iter().any(|bound| bound.load(Ordering::Relaxed) == port)
}

/// Job sockets in use (for tests and the leak check).
pub fn job_sockets_in_use() -> usize {
    JOB_PORTS.iter().filter(|bound| bound.load(Ordering::Relaxed) != 0).count()
}

/// Binds a free job socket to `port` (the caller has checked the port against the policy);
/// returns its index. `InUse` if the port is bound already (by the device or a job socket),
/// `LimitExceeded` when every job socket is taken, `Io` when the network is down.
pub fn job_bind(port: u16) -> Result<usize, ErrorCode> {
    NET.with(|net| {
        net.release_jobs();
        if OPEN_UDP_PORTS.contains(&port) || job_port_bound(port) {
            return Err(ErrorCode::InUse);
        }
        let index =
            JOB_PORTS.iter().position(|bound| bound.load(Ordering::Relaxed) == 0).ok_or(ErrorCode::LimitExceeded)?;
        let socket = net.sockets.get_mut::<udp::Socket>(net.jobs[index]);
        socket.bind(port).map_err(|_| ErrorCode::InUse)?;
        JOB_PORTS[index].store(port, Ordering::Relaxed);
        Ok(index)
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Queues a datagram on job socket `index` and moves it to the wire at once.
pub fn job_send(index: usize, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
    let handle = job_handle(index)?;
    NET.with(|net| {
        let socket = net.sockets.get_mut::<udp::Socket>(handle);
        if data.len() > socket.payload_send_capacity() {
            return Err(ErrorCode::LimitExceeded);
        }
        let [a, b, c, d] = to.address;
        let remote = smoltcp::wire::IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::new(a, b, c, d)), to.port);
        match socket.send_slice(data, remote) {
            Ok(()) => {}
            Err(udp::SendError::BufferFull) => return Err(ErrorCode::WouldBlock),
            Err(udp::SendError::Unaddressable) => return Err(ErrorCode::InvalidArgument),
        }
        net.flush();
        Ok(())
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// The next datagram on job socket `index`, copied into `buffer` (truncated); returns its full
/// length and sender, or `WouldBlock`.
pub fn job_recv(index: usize, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
    let handle = job_handle(index)?;
    NET.with(|net| {
        let socket = net.sockets.get_mut::<udp::Socket>(handle);
        let (payload, metadata) = socket.recv().map_err(|_| ErrorCode::WouldBlock)?;
        let count = payload.len().min(buffer.len());
        buffer[..count].copy_from_slice(&payload[..count]);
        let address = match metadata.endpoint.addr {
            IpAddress::Ipv4(address) => address.octets(),
        };
        Ok((payload.len(), Endpoint { address, port: metadata.endpoint.port }))
    })
    .unwrap_or(Err(ErrorCode::Io))
}

/// Closes job socket `index` after moving what it queued to the wire. When the network manager
/// is busy (the owner ended inside its poll), the socket is freed by the next poll instead.
pub fn job_close(index: usize) {
    if index >= sizes::JOB_SOCKETS {
        return;
    }
    JOB_RELEASE.fetch_or(1 << index, Ordering::AcqRel);
    NET.with(|net| {
        net.flush();
        net.release_jobs();
    });
}

fn job_handle(index: usize) -> Result<SocketHandle, ErrorCode> {
    let bound = JOB_PORTS.get(index).ok_or(ErrorCode::NotFound)?;
    if bound.load(Ordering::Relaxed) == 0 || JOB_RELEASE.load(Ordering::Relaxed) & (1 << index) != 0 {
        return Err(ErrorCode::NotFound);
    }
    NET.with(|net| net.jobs[index]).ok_or(ErrorCode::Io)
}

impl Net {
    /// Frees the job sockets marked in `JOB_RELEASE`.
    fn release_jobs(&mut self) {
        let marked = JOB_RELEASE.swap(0, Ordering::AcqRel);
        for (index, (handle, port)) in self.jobs.iter().zip(JOB_PORTS.iter()).enumerate() {
            if marked & (1 << index) != 0 {
                self.sockets.get_mut::<udp::Socket>(*handle).close();
                port.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Moves queued frames to the device now (a job's datagram leaves before its next slice).
    fn flush(&mut self) {
        let timestamp = now(hal::now_micros());
        let _ = self.iface.poll_egress(timestamp, &mut self.device, &mut self.sockets);
        self.device.service();
    }

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

    fn dhcp(&mut self, now_us: u64) {
        if self.state == AddressState::Configured {
            return;
        }
        if let Some(jos_abi::config::Network::Static { address, prefix_len, gateway }) =
            hosted().and_then(|service| (service.configured_network)())
        {
            // The boot configuration fixes the address: no DHCP socket, no fallback.
            let cidr = Ipv4Cidr::new(Ipv4Address::from_octets(address), prefix_len);
            let router = (gateway != [0; 4]).then(|| Ipv4Address::from_octets(gateway));
            self.sockets.remove(self.dhcp);
            self.configure(cidr, router, AddressState::Configured);
            let mut line = Line::new();
            let _ = write!(line, "net: ip {cidr} via static (boot configuration)");
            if let Some(router) = router {
                let _ = write!(line, " gateway {router}");
            }
            (self.log)(format_args!("{}", line.as_str()));
            return;
        }
        let event = self.sockets.get_mut::<dhcpv4::Socket>(self.dhcp).poll();
        match event {
            Some(dhcpv4::Event::Configured(config)) => {
                let address = config.address;
                let router = config.router;
                let dns = config.dns_servers.first().copied();
                self.configure(address, router, AddressState::Dhcp);
                self.dns = dns;
                let mut line = Line::new();
                let _ = write!(line, "net: ip {} via dhcp", address);
                if let Some(gateway) = router {
                    let _ = write!(line, " gateway {gateway}");
                }
                if let Some(dns) = dns {
                    let _ = write!(line, " dns {dns}");
                }
                (self.log)(format_args!("{}", line.as_str()));
            }
            Some(dhcpv4::Event::Deconfigured) if self.state == AddressState::Dhcp => {
                self.iface.update_ip_addrs(|addresses| addresses.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
                self.address = None;
                self.state = AddressState::Discovering;
                self.started_us = now_us;
                (self.log)(format_args!("net: dhcp lease lost"));
            }
            Some(dhcpv4::Event::Deconfigured) | None => {}
        }
        if self.state == AddressState::Discovering && now_us - self.started_us > DHCP_TIMEOUT_US {
            self.configure(STATIC_ADDRESS, Some(STATIC_GATEWAY), AddressState::Static);
            (self.log)(format_args!("net: ip {STATIC_ADDRESS} via static gateway {STATIC_GATEWAY} (no DHCP answer)"));
        }
    }

    fn configure(&mut self, address: Ipv4Cidr, gateway: Option<Ipv4Address>, state: AddressState) {
        self.iface.update_ip_addrs(|addresses| {
            addresses.clear();
            let _ = addresses.push(IpCidr::Ipv4(address));
        });
        match gateway {
            Some(gateway) => {
                let _ = self.iface.routes_mut().add_default_ipv4_route(gateway);
            }
            None => {
                self.iface.routes_mut().remove_default_ipv4_route();
            }
        }
        self.address = Some(address);
        self.gateway = gateway;
        self.state = state;
    }

    /// The UDP echo service's fast path: answers the oldest received frame, a plain echo request
    /// ([`Verdict::Echo`]), straight into a transmit buffer (`jos_kcore::net::echo_reply_unchecked`:
    /// the frame was just classified), with no smoltcp ingress, socket or egress. Only while the echo socket holds nothing, so replies
    /// leave in the order requests came; `false` (the frame stays for smoltcp) when it does, or
    /// every transmit buffer is taken.
    fn echo_fast(&mut self, local: &Local) -> bool {
        let socket = self.sockets.get::<udp::Socket>(self.udp);
        if socket.can_recv() || socket.send_queue() != 0 {
            return false;
        }
        if self.device.answer(|request, reply| echo_reply_unchecked(request, local, reply)).is_none() {
            return false;
        }
        self.counters.udp_echoes += 1;
        true
    }

    /// UDP and TCP echo.
    fn serve(&mut self) {
        let udp_socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        let scratch = &mut self.scratch[..sizes::UDP_CHUNK];
        while udp_socket.can_recv() {
            // Copy, send, and only then dequeue: a datagram is never taken and then lost for
            // want of transmit space; it waits for the next poll instead.
            let Ok((payload, metadata)) = udp_socket.peek() else { break };
            let remote = metadata.endpoint;
            let Some(copy) = scratch.get_mut(..payload.len()) else {
                let _ = udp_socket.recv();
                self.counters.udp_echo_drops += 1;
                continue;
            };
            copy.copy_from_slice(payload);
            let length = copy.len();
            if length > udp_socket.payload_send_capacity() {
                let _ = udp_socket.recv();
                self.counters.udp_echo_drops += 1;
                continue;
            }
            match udp_socket.send_slice(&scratch[..length], remote) {
                Ok(()) => {
                    let _ = udp_socket.recv();
                    self.counters.udp_echoes += 1;
                }
                // No address or port to answer (a request from 0.0.0.0 or from port 0): dropped,
                // or it would stay at the head of the queue and stop the service.
                Err(udp::SendError::Unaddressable) => {
                    let _ = udp_socket.recv();
                    self.counters.udp_echo_drops += 1;
                }
                Err(udp::SendError::BufferFull) => break,
            }
        }
        for (index, handle) in self.tcp.into_iter().enumerate() {
            let socket = self.sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                if self.tcp_open[index] {
                    self.tcp_open[index] = false;
                }
                let _ = socket.listen(TCP_ECHO_PORT);
                continue;
            }
            if socket.is_active() && !self.tcp_open[index] {
                self.tcp_open[index] = true;
                self.counters.tcp_connections += 1;
            }
            let chunk = &mut self.scratch[..sizes::TCP_CHUNK];
            while socket.can_recv() && socket.can_send() {
                let room = (socket.send_capacity() - socket.send_queue()).min(chunk.len());
                if room == 0 {
                    break;
                }
                let Ok(got) = socket.recv_slice(&mut chunk[..room]) else { break };
                if got == 0 {
                    break;
                }
                let sent = socket.send_slice(&chunk[..got]).unwrap_or(0);
                self.counters.tcp_echo_bytes += sent as u64;
            }
            if !socket.may_recv() && socket.send_queue() == 0 && socket.state() == tcp::State::CloseWait {
                socket.close();
            }
        }
        if let Some(service) = hosted() {
            (service.serve)(&mut self.sockets);
        }
    }

    fn write_status(&mut self, line: &mut Line) {
        let link = self.device.counters();
        self.counters.link = link;
        let _ = match self.address {
            Some(address) => write!(
                line,
                "{address} {}",
                match self.state {
                    AddressState::Dhcp => "dhcp",
                    AddressState::Static => "static",
                    AddressState::Configured => "configured",
                    AddressState::Discovering => "-",
                }
            ),
            None => write!(line, "asking DHCP"),
        };
        let drops = self.counters.malformed
            + self.counters.fragments
            + self.counters.closed_port
            + link.rx.runts
            + self.counters.udp_echo_drops
            + self.counters.echo_loops;
        let _ = write!(
            line,
            " rx {} tx {} drop {} err {}",
            link.rx.frames,
            link.tx.frames,
            drops,
            link.rx.errors + link.tx.errors
        );
    }

    fn report(&mut self, now_us: u64) {
        if now_us - self.last_report_us < REPORT_PERIOD_US {
            return;
        }
        self.last_report_us = now_us;
        let mut line = Line::new();
        self.write_status(&mut line);
        crate::services::status::set_network_line(format_args!("{}", line.as_str()));
        let link = self.device.counters();
        let key = (
            link.rx.frames + link.rx.runts + link.rx.errors,
            link.tx.frames + link.tx.errors,
            self.counters.malformed + self.counters.fragments + self.counters.closed_port + self.counters.echo_loops,
        );
        if key == self.reported {
            return;
        }
        self.reported = key;
        let c = self.counters;
        (self.log)(format_args!(
            "net: stats rx {} ({} B) tx {} ({} B) runts {} malformed {} fragments {} closed_port {} broadcast {} rx_err {} tx_err {} tx_busy {} udp_echo {} udp_drop {} echo_loop {} tcp_conn {} tcp_bytes {} busy_us {} at_us {}",
            link.rx.frames,
            link.rx.bytes,
            link.tx.frames,
            link.tx.bytes,
            link.rx.runts,
            c.malformed,
            c.fragments,
            c.closed_port,
            c.broadcasts,
            link.rx.errors,
            link.tx.errors,
            link.tx.full,
            c.udp_echoes,
            c.udp_echo_drops,
            c.echo_loops,
            c.tcp_connections,
            c.tcp_echo_bytes,
            c.busy_us,
            now_us,
        ));
    }
}

/// A short fixed-capacity text line (no allocation).
pub struct Line {
    bytes: [u8; 96],
    length: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Self { bytes: [0; 96], length: 0 }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.length]).unwrap_or("")
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    /// Appends what fits; the rest is cut at a character boundary.
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let room = self.bytes.len() - self.length;
        let mut take = text.len().min(room);
        while !text.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.length..self.length + take].copy_from_slice(&text.as_bytes()[..take]);
        self.length += take;
        Ok(())
    }
}

/// Whether the network has an IPv4 address (DHCP lease or static fallback); `None` when the
/// network manager did not start (no Ethernet device). For the status LED.
pub fn has_address() -> Option<bool> {
    NET.with(|net| net.address.is_some())
}

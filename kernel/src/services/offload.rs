//! The offload service: reads the boot configuration at `CONFIG_ADDRESS`, runs the
//! `jos_offload::Server` on the network manager's sockets (UDP 4747 discovery, TCP 4748 sessions),
//! and runs the current job in fuel slices for part of every executive frame ([`poll`]).
//!
//! A missing or corrupt configuration is reported on the console and the screen; the service then
//! stays off, so the device accepts nothing (no socket is opened).
//!
//! Sessions hold no resource a stranger can keep (docs/security.md, "Resource limits: sessions
//! and unauthenticated traffic"): [`LISTENERS`] sockets listen for [`SESSIONS`] sessions, so a
//! new connection always finds one and the server can evict a stalled handshake for it; the
//! server's deadlines run every frame ([`poll`]); a socket left half-open or closing too long is
//! reset here; smoltcp's keep-alive and timeout find peers that vanished. Native blobs run through
//! `services::native` (adverts list `wasm` and `native-armv6`), in steps that the executive's
//! frame tick preempts, so the network task runs in every frame while a blob computes.

use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr};

use jos_abi::config::{PortRange, CONFIG_ADDRESS, CONFIG_MAX_LEN};
use jos_abi::syscall::Endpoint;
use jos_abi::wire::Format;
use jos_abi::ErrorCode;
use jos_kcore::drivers::RandomSource;
use jos_kcore::text::Line;
use jos_offload::timing::Timing;
use jos_offload::{DeviceConfig, Entropy, Platform, Server, ServerOptions, SessionId, Slice};
use jos_runtime::Capabilities;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;

use crate::board::bcm2835::rng::Rng;
use crate::board::bcm2835::usb::Slot;
use crate::board::bcm2835::{RNG, TIMER};
use crate::services::jobio::JobDevices;
use crate::{error, info};

/// TCP sessions served at once (`ServerOptions::max_sessions`).
pub const SESSIONS: usize = 8;
/// TCP 4748 sockets listening: one per session and two more, so that a connection that arrives
/// while every session is taken still finds a listener (smoltcp would reset it unanswered) and
/// the server can evict the oldest unauthenticated connection for it, or tell it `Busy`.
pub const LISTENERS: usize = SESSIONS + 2;
/// smoltcp keep-alive on session sockets: an idle connection is probed this often, so a peer
/// that vanished (no FIN, no RST) is found by [`TCP_TIMEOUT`] even while its job waits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// smoltcp timeout on session sockets: a peer that answers nothing (not even keep-alives or a
/// SYN-ACK) for this long is reset.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a socket may stay half-open (SYN received, handshake of TCP not finished) before it
/// is reset and listens again: a SYN flood holds a listener this long at most.
pub const HALF_OPEN_US: u64 = 3_000_000;
/// How long a socket the device closed may take to finish closing (the peer reads what was
/// sent and closes its side) before it is reset and listens again.
pub const LINGER_US: u64 = 500_000;
/// Most fuel per slice: the job returns to the loop at least this often (about 0.7 ms of MD5 on
/// the ARM1176; slices are normally cut to the time left in the frame, see [`poll`]).
pub const SLICE_FUEL: u64 = 100_000;
/// Time kept free at the end of each 1 ms executive frame, after the job's last slice, for the
/// error of the slice-length estimate (the status and heartbeat tasks that may follow in the
/// frame are short; a few microseconds late is no missed frame). Measured on MD5: 5 us leaves
/// 15 us idle per frame and no overruns; 20 us left 45 us idle (docs/runtime.md).
pub const FRAME_RESERVE_MICROS: u32 = 5;
/// The shortest slice worth starting at the end of a frame; also the slice a frame gives the job
/// when the frame has no time left (so a job always moves on).
pub const MIN_SLICE_FUEL: u64 = 1_000;
/// The fuel rate assumed before a slice was measured, in fuel per millisecond (cautious: MD5
/// runs at about 136 fuel per microsecond).
const INITIAL_FUEL_PER_MS: u64 = 20_000;

/// Randomness for the Noise handshake from a [`RandomSource`].
struct HardwareEntropy<R: 'static>(&'static R);

impl<R: RandomSource + Sync> Entropy for HardwareEntropy<R> {
    fn fill(&self, buffer: &mut [u8]) -> bool {
        self.0.fill(buffer).is_ok()
    }
}

/// The Noise handshake's randomness: the BCM2835 hardware RNG.
static ENTROPY: HardwareEntropy<Rng> = HardwareEntropy(&RNG);

/// What a wasm job sees of the device: its input, the clock, the RNG and (when its signer
/// granted them; the runtime checks) the job devices.
pub struct KernelHost {
    input: Vec<u8>,
    random: &'static (dyn RandomSource + Sync),
    devices: JobDevices,
}

impl jos_runtime::Host for KernelHost {
    fn input_len(&self) -> usize {
        self.input.len()
    }

    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let Some(rest) = self.input.get(offset..) else { return 0 };
        let count = rest.len().min(buffer.len());
        buffer[..count].copy_from_slice(&rest[..count]);
        count
    }

    fn time_us(&self) -> u64 {
        TIMER.now_micros()
    }

    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
        self.random.fill(buffer).map_err(|_| ErrorCode::Io)
    }

    fn udp_bind(&mut self, port: u16) -> Result<u32, ErrorCode> {
        self.devices.udp_bind(port)
    }

    fn udp_send(&mut self, handle: u32, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
        self.devices.udp_send(handle, to, data)
    }

    fn udp_recv(&mut self, handle: u32, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
        self.devices.udp_recv(handle, buffer)
    }

    fn udp_close(&mut self, handle: u32) -> Result<(), ErrorCode> {
        self.devices.udp_close(handle)
    }

    fn screen_print(&mut self, line: &str) -> Result<(), ErrorCode> {
        self.devices.screen_print(line)
    }

    fn gpio_write(&mut self, pin: u32, high: bool) -> Result<(), ErrorCode> {
        self.devices.gpio_write(pin, high)
    }

    fn gpio_read(&mut self, pin: u32) -> Result<bool, ErrorCode> {
        self.devices.gpio_read(pin)
    }
}

/// The board side of the server.
struct KernelPlatform {
    /// The policy's job port range.
    job_ports: PortRange,
}

impl Platform for KernelPlatform {
    type Host = KernelHost;

    fn host(&mut self, input: Vec<u8>) -> KernelHost {
        KernelHost { input, random: &RNG, devices: JobDevices::new(self.job_ports) }
    }

    fn runs_native(&self) -> bool {
        true
    }

    fn start_native(
        &mut self,
        blob: &[u8],
        input: &[u8],
        limits: &jos_abi::job::Limits,
        capabilities: Capabilities,
    ) -> Result<(), jos_runtime::JobResult> {
        crate::services::native::start(blob, input, limits, capabilities, self.job_ports)
    }

    fn step_native(&mut self) -> jos_runtime::StepOutcome {
        crate::services::native::step()
    }

    fn step_wasm(&mut self, job: &mut jos_runtime::wasm::Job<KernelHost>, slice_fuel: u64) -> jos_runtime::StepOutcome {
        crate::services::wasm_stack::step(job, slice_fuel)
    }

    fn abort_native(&mut self) {
        crate::services::native::abort()
    }

    fn free_memory(&self) -> u32 {
        let heap = crate::memory::heap::HEAP.stats();
        u32::try_from(heap.size.saturating_sub(heap.used)).unwrap_or(u32::MAX)
    }

    fn heap_meter(&self) -> Option<&'static dyn jos_runtime::host::HeapMeter> {
        Some(&crate::memory::heap::JOB_HEAP)
    }

    fn now_us(&self) -> u64 {
        TIMER.now_micros()
    }

    /// One console line per push and per job (docs/protocol.md, "Timing reports").
    fn timing(&mut self, timing: &Timing) {
        let name = |format: Format| if format == Format::Wasm { "wasm" } else { "native" };
        match timing {
            Timing::Push(push) => info!(
                "offload: timing push {} bytes={} accepted={} handshake_us={} transfer_us={} verify_us={} session_us={}",
                name(push.format),
                push.bytes,
                push.accepted,
                push.handshake_us,
                push.transfer_us,
                push.verify_us,
                push.session_us
            ),
            Timing::Job(job) => info!(
                "offload: timing job {} status={:?} queued_us={} instantiate_us={} run_us={} result_us={} total_us={}",
                name(job.format),
                job.status,
                job.queued_us,
                job.instantiate_us,
                job.run_us,
                job.result_us,
                job.total_us
            ),
        }
    }
}

/// Why a session socket with no session is not listening, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// SYN received, TCP handshake not finished.
    HalfOpen(u64),
    /// The device closed it; the peer has not finished closing.
    Closing(u64),
}

struct Service {
    server: Server<KernelPlatform>,
    udp: Option<SocketHandle>,
    tcp: [Option<SocketHandle>; LISTENERS],
    sessions: [Option<SessionId>; LISTENERS],
    waiting: [Option<Waiting>; LISTENERS],
    /// Sockets reset after [`HALF_OPEN_US`] half-open.
    half_open_resets: u64,
    /// Sockets reset after [`LINGER_US`] closing.
    linger_resets: u64,
    last_status: (u64, u64),
    /// The figures of the guard line last shown.
    last_guard: [u64; 12],
    /// Fuel per millisecond the job's slices ran at (see [`poll`]).
    fuel_per_ms: u64,
}

static SERVICE: Slot<Service> = Slot::new();

/// The network settings of the boot configuration (`None`: no valid configuration).
static NETWORK: crate::sync::IrqLock<Option<jos_abi::config::Network>> = crate::sync::IrqLock::new(None);

/// A copy of the boot configuration's bytes (a checked [`jos_abi::config::Config`]), taken
/// before the window was wiped; `None` until [`init`] ran or when the window held no valid
/// configuration.
static BOOT_CONFIGURATION: crate::sync::IrqLock<Option<&'static [u8]>> = crate::sync::IrqLock::new(None);

/// The boot configuration's bytes as the firmware loaded them (the window itself is zeroed once
/// [`init`] has read it; docs/security.md "Keys"): for services that read sections the offload
/// service does not use.
pub fn boot_configuration() -> Option<&'static [u8]> {
    BOOT_CONFIGURATION.lock(|slot| *slot)
}

/// How the boot configuration says the device gets its address (`jos-cli provision --dhcp` or
/// `--static`); `None` without a valid configuration. Read by the network manager.
pub fn configured_network() -> Option<jos_abi::config::Network> {
    NETWORK.lock(|network| *network)
}

/// The network manager's hooks into this service (registered by [`init`]).
static HOSTED: crate::services::net::HostedService =
    crate::services::net::HostedService { enabled, configure_socket, attach, configured_network, serve };

// The network manager sizes its socket storage for the listeners.
const _: () = assert!(LISTENERS == crate::services::net::sizes::OFFLOAD_TCP_SOCKETS);

/// Parses the boot configuration window into owned values (the device's keys go into the heap,
/// kernel data), then zeroes the whole window, 1 MiB from `CONFIG_ADDRESS`, whatever the file's
/// length and whether it parsed, and cleans it from the D-cache so that the zeros, not the keys,
/// are in RAM: after boot the secrets exist only in the kernel's own data (docs/security.md
/// "Keys").
fn read_and_wipe_configuration(
) -> (Result<DeviceConfig, jos_abi::config::ConfigError>, Option<jos_abi::config::Network>) {
    const _: () = assert!(CONFIG_ADDRESS == jos_kcore::memory_map::BOOT_CONFIG_BASE);
    const _: () = assert!(CONFIG_MAX_LEN <= jos_kcore::memory_map::BOOT_CONFIG_SIZE);
    let (config, network) = {
        // SAFETY: the configuration window 0x01F0_0000..0x0200_0000 is mapped normal memory that
        // nothing else uses (docs/memory.md); it is only read while this borrow lives.
        let window = unsafe { core::slice::from_raw_parts(CONFIG_ADDRESS as *const u8, CONFIG_MAX_LEN) };
        let config = DeviceConfig::from_bytes(window);
        let checked = jos_abi::config::Config::new_checked(window).ok();
        let network = checked
            .as_ref()
            .and_then(|checked| jos_abi::config::ConfigRepr::parse(checked).ok().map(|repr| repr.network));
        // The other services that read the configuration (the fleet's broker section) read this
        // copy, kernel data like the parsed keys.
        if let Some(checked) = &checked {
            let copy: &'static [u8] = alloc::boxed::Box::leak(window[..checked.total_len()].into());
            BOOT_CONFIGURATION.lock(|slot| *slot = Some(copy));
        }
        (config, network)
    };
    let window_len = jos_kcore::memory_map::BOOT_CONFIG_SIZE;
    // SAFETY: the window is kernel data nothing else uses, and no reference into it is alive
    // (the parsed configuration owns copies).
    unsafe { crate::arch::zero::zero(CONFIG_ADDRESS, window_len) };
    crate::arch::cache::clean_dcache_range(CONFIG_ADDRESS, window_len);
    (config, network)
}

/// Reads and checks the boot configuration; starts the service if it is valid, and registers
/// its sockets with the network manager (`services::net::host`). Returns whether the service
/// runs.
pub fn init() -> bool {
    crate::services::net::host(&HOSTED);
    let (config, network) = read_and_wipe_configuration();
    let config = match config {
        Ok(config) => config,
        Err(error) => {
            // `error!` reports on the console and the screen.
            error!("offload: no valid configuration at {CONFIG_ADDRESS:#010x}: {error}; accepting nothing");
            crate::services::status::set_job_line(format_args!("offload off: no configuration"));
            return false;
        }
    };
    if let Some(network) = network {
        NETWORK.lock(|slot| *slot = Some(network));
    }
    info!(
        "offload: device {:?}, {} client key(s), {} signer(s), module cap {} bytes, queue {}",
        config.name,
        config.clients.len(),
        config.signers.len(),
        config.policy.max_module_len,
        config.policy.queue_len
    );
    let options = ServerOptions { slice_fuel: SLICE_FUEL, max_sessions: SESSIONS, ..ServerOptions::default() };
    info!(
        "offload: {} sessions on {} listeners; handshake deadline {} ms, idle timeout {} s, outbox cap {} KiB",
        SESSIONS,
        LISTENERS,
        options.handshake_timeout_us / 1000,
        options.idle_timeout_us / 1_000_000,
        options.max_outbox / 1024
    );
    let platform = KernelPlatform { job_ports: config.policy.job_ports };
    info!("offload: job ports {}..={}", platform.job_ports.first, platform.job_ports.last);
    let server = Server::new(config, options, platform, &ENTROPY);
    let heap = crate::memory::heap::HEAP.stats();
    info!("offload: ready; heap used {} of {} bytes", heap.used, heap.size);
    crate::services::status::set_job_line(format_args!("jobs: idle, 0 done, 0 failed"));
    SERVICE.put(Service {
        server,
        udp: None,
        tcp: [None; LISTENERS],
        sessions: [None; LISTENERS],
        waiting: [None; LISTENERS],
        half_open_resets: 0,
        linger_resets: 0,
        last_status: (0, 0),
        last_guard: [u64::MAX; 12],
        fuel_per_ms: INITIAL_FUEL_PER_MS,
    })
}

/// Whether the service runs (the network manager then opens its sockets).
pub fn enabled() -> bool {
    SERVICE.with(|_| ()).is_some()
}

/// Sets smoltcp's keep-alive and timeout on a session socket (the network manager calls it for
/// each of the [`LISTENERS`] when it makes them; they survive `listen` and `abort`).
pub fn configure_socket(socket: &mut tcp::Socket<'_>) {
    socket.set_keep_alive(Some(KEEP_ALIVE));
    socket.set_timeout(Some(TCP_TIMEOUT));
}

/// Hands the service its sockets (called once by the network manager).
pub fn attach(udp: SocketHandle, tcp: [SocketHandle; LISTENERS]) {
    SERVICE.with(|service| {
        service.udp = Some(udp);
        service.tcp = tcp.map(Some);
    });
}

/// Prints the offload counters on the console as `key=value` pairs (the shell's `offload`
/// command; tests read them), or that the service is off.
pub fn print_counters() {
    let printed = SERVICE.with(|service| {
        let status = service.server.status();
        let c = status.counters;
        crate::kprintln!(
            "offload: counters sessions={} waiting={} sessions_opened={} sessions_killed={} replays_refused={} dropped_unauthenticated={} errors_sent={} pushes_ok={} jobs_ok={} jobs_failed={} jobs_aborted={} adverts_sent={} handshake_timeouts={} idle_timeouts={} evicted={} refused_busy={} outbox_overflows={} flush_timeouts={} hellos_refused={} hellos_rate_limited={} probes_rate_limited={} probes_too_short={} half_open_resets={} linger_resets={}",
            status.sessions,
            status.waiting,
            c.sessions_opened,
            c.sessions_killed,
            c.replays_refused,
            c.dropped_unauthenticated,
            c.errors_sent,
            c.pushes_ok,
            c.jobs_ok,
            c.jobs_failed,
            c.jobs_aborted,
            c.adverts_sent,
            c.handshake_timeouts,
            c.idle_timeouts,
            c.evicted,
            c.refused_busy,
            c.outbox_overflows,
            c.flush_timeouts,
            c.hellos_refused,
            c.hellos_rate_limited,
            c.probes_rate_limited,
            c.probes_too_short,
            service.half_open_resets,
            service.linger_resets
        );
    });
    if printed.is_none() {
        crate::kprintln!("offload: off (no valid configuration) or busy");
    }
}

/// Jobs finished, jobs failed, and whether a job runs or waits (for the fleet's status);
/// `None` when the service is off or busy.
pub fn job_figures() -> Option<(u64, u64, bool)> {
    SERVICE.with(|service| {
        let status = service.server.status();
        (status.counters.jobs_ok, status.counters.jobs_failed, status.current.is_some() || status.queued > 0)
    })
}

/// Sets the fleet key (the configuration's fleet key section) for fleet jobs.
pub fn set_fleet_key(secret: Option<[u8; 32]>) {
    SERVICE.with(|service| service.server.set_fleet_key(secret));
}

/// Hands a fleet job message to the server (`jos_offload::Server::fleet_job`); `None` when the
/// service is off or busy.
pub fn fleet_job(message: &[u8]) -> Option<Result<[u8; 16], jos_offload::FleetRefusal>> {
    SERVICE.with(|service| service.server.fleet_job(message))
}

/// The next sealed fleet result to publish.
pub fn take_fleet_result() -> Option<jos_offload::FleetResult> {
    SERVICE.with(|service| service.server.take_fleet_result()).flatten()
}

/// The server's fleet counters.
pub fn fleet_counters() -> Option<jos_offload::FleetCounters> {
    SERVICE.with(|service| service.server.fleet_counters())
}

/// Moves bytes between the sockets and the server (called by the network manager's poll).
pub fn serve(sockets: &mut SocketSet<'_>) {
    SERVICE.with(|service| service.serve(sockets));
}

/// Runs the current job (executive task, every frame) in fuel slices until it ends, yields or the
/// frame has only [`FRAME_RESERVE_MICROS`] left. Each slice gets the fuel the time left holds at
/// the rate earlier slices ran at (at most [`SLICE_FUEL`]), so the job uses what the frame's other
/// tasks leave while the network task still runs every frame. A job that yields gets no further
/// slice in this frame (docs/kernel.md "Yield"). A native job gets one step: it runs until the
/// next frame tick preempts it (or it yields or ends).
pub fn poll() {
    SERVICE.with(|service| {
        // The deadlines of sessions (here rather than in `serve`, which runs on every network
        // poll: the echo path does not pay for them).
        service.server.expire();
        let mut first = true;
        loop {
            let left = crate::services::executive::micros_left_in_frame().saturating_sub(FRAME_RESERVE_MICROS);
            let fuel = (service.fuel_per_ms.saturating_mul(u64::from(left)) / 1000).min(SLICE_FUEL);
            if fuel < MIN_SLICE_FUEL && !first {
                break;
            }
            first = false;
            let fuel = fuel.max(MIN_SLICE_FUEL);
            let before = service.server.status().current.map(|(_, _, used)| used);
            let start = TIMER.now_micros();
            let slice = service.server.poll_slice(start, fuel);
            let took = TIMER.now_micros().saturating_sub(start);
            // A job that yielded has nothing to do now: the rest of the frame is given back (the
            // core idles until the next tick) and the job resumes in the next frame, after the
            // network task has filled its sockets. Nothing reaches a job socket between two
            // network polls, so waking it sooner would find nothing new.
            if slice == Slice::Yielded {
                break;
            }
            let Some((format, _, fuel_after)) = service.server.status().current else { break };
            // A native job runs until the frame tick preempts it: the frame is over, and its
            // steps say nothing about the fuel rate.
            if format != Format::Wasm {
                break;
            }
            // Only slices of a job that was already running (a job's first slice also
            // instantiates it) and long enough to time well. A slower slice sets the rate at
            // once (slow host calls must not make the next slices overrun the frame); a faster
            // one moves it a quarter of the way.
            if let (Some(fuel_before), true) = (before, took >= 50) {
                let rate = fuel_after.saturating_sub(fuel_before).saturating_mul(1000) / took;
                let average = service.fuel_per_ms.saturating_mul(3).saturating_add(rate) / 4;
                service.fuel_per_ms = rate.min(average).max(MIN_SLICE_FUEL);
            }
        }
        service.status();
    });
}

impl Service {
    fn serve(&mut self, sockets: &mut SocketSet<'_>) {
        if let Some(handle) = self.udp {
            let socket = sockets.get_mut::<udp::Socket>(handle);
            // This runs in every network poll: the buffers (zeroed where they are declared) are
            // made only when a probe waits (docs/network.md "Where an echo's instructions go").
            if socket.can_recv() {
                let mut datagram = [0u8; 512];
                let mut advert = [0u8; Server::<KernelPlatform>::MAX_ADVERT_LEN];
                while let Ok((len, metadata)) = socket.recv_slice(&mut datagram) {
                    let source = IpAddr::from(metadata.endpoint.addr);
                    if let Some(reply) = self.server.discovery_from(source, &datagram[..len], &mut advert) {
                        let _ = socket.send_slice(&advert[..reply], metadata.endpoint);
                    }
                }
            }
        }
        for index in 0..LISTENERS {
            let Some(handle) = self.tcp[index] else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                if let Some(id) = self.sessions[index].take() {
                    self.server.disconnect(id);
                }
                self.waiting[index] = None;
                let _ = socket.listen(jos_abi::wire::OFFLOAD_PORT);
                continue;
            }
            if self.sessions[index].is_none() {
                match socket.state() {
                    tcp::State::Listen => continue,
                    tcp::State::Established if !matches!(self.waiting[index], Some(Waiting::Closing(_))) => {}
                    _ => {
                        // Half-open, or closing: reset it if it takes too long.
                        let now = TIMER.now_micros();
                        let waiting = *self.waiting[index].get_or_insert(Waiting::HalfOpen(now));
                        let expired = match waiting {
                            Waiting::HalfOpen(since) => now.saturating_sub(since) > HALF_OPEN_US,
                            Waiting::Closing(since) => now.saturating_sub(since) > LINGER_US,
                        };
                        if expired {
                            match waiting {
                                Waiting::HalfOpen(_) => self.half_open_resets += 1,
                                Waiting::Closing(_) => self.linger_resets += 1,
                            }
                            socket.abort();
                            self.waiting[index] = None;
                        }
                        continue;
                    }
                }
                let peer =
                    socket.remote_endpoint().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |endpoint| endpoint.addr.into());
                self.waiting[index] = None;
                match self.server.connect_from(peer) {
                    Some(id) => self.sessions[index] = Some(id),
                    None => {
                        socket.abort();
                        continue;
                    }
                }
            }
            let Some(id) = self.sessions[index] else { continue };
            if self.server.wants_abort(id) {
                self.server.disconnect(id);
                self.sessions[index] = None;
                socket.abort();
                continue;
            }
            if socket.can_recv() {
                let mut chunk = [0u8; 2048];
                while socket.can_recv() {
                    match socket.recv_slice(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(got) => self.server.receive(id, &chunk[..got]),
                    }
                }
                if self.server.wants_abort(id) {
                    self.server.disconnect(id);
                    self.sessions[index] = None;
                    socket.abort();
                    continue;
                }
            }
            while socket.can_send() && !self.server.pending(id).is_empty() {
                match socket.send_slice(self.server.pending(id)) {
                    Ok(0) | Err(_) => break,
                    Ok(sent) => self.server.consume(id, sent),
                }
            }
            let flushed = self.server.pending(id).is_empty() && socket.send_queue() == 0;
            let peer_gone = !socket.may_recv() && matches!(socket.state(), tcp::State::CloseWait);
            if peer_gone || (self.server.wants_close(id) && flushed) {
                self.server.disconnect(id);
                self.sessions[index] = None;
                socket.close();
                self.waiting[index] = Some(Waiting::Closing(TIMER.now_micros()));
            }
        }
    }

    /// The status screen's sessions and limits rows, when their figures changed: sessions in
    /// use and waiting for a handshake; connections closed for a stalled handshake, idleness,
    /// eviction, Busy (every session authenticated) or not reading; probes rate-limited and too
    /// short; Hellos rate-limited and denied; echo requests dropped as loops (the network
    /// manager's count).
    fn guard(&mut self, status: &jos_offload::Status) {
        let c = status.counters;
        let loops = crate::services::net::counters().map_or(0, |net| net.echo_loops);
        let figures = [
            status.sessions as u64,
            status.waiting as u64,
            c.handshake_timeouts,
            c.idle_timeouts,
            c.evicted,
            c.refused_busy,
            c.outbox_overflows,
            c.probes_rate_limited,
            c.probes_too_short,
            c.hellos_rate_limited,
            c.hellos_refused,
            loops,
        ];
        if figures == self.last_guard {
            return;
        }
        self.last_guard = figures;
        let [sessions, waiting, stalled, idle, evicted, busy, unread, probes, short, hellos, denied, loops] = figures;
        crate::services::status::set_sessions_line(format_args!(
            "{sessions}/{SESSIONS}, {waiting} waiting; closed: stall {stalled} idle {idle} evict {evicted} busy {busy} unread {unread}"
        ));
        crate::services::status::set_limits_line(format_args!(
            "probes {probes} limited {short} short; hellos {hellos} limited {denied} denied; echo loops {loops}"
        ));
    }

    /// The status screen's job line, when the figures changed.
    fn status(&mut self) {
        let status = self.server.status();
        self.guard(&status);
        let figures = (status.counters.jobs_ok, status.counters.jobs_failed);
        let running = status.current.is_some();
        if figures == self.last_status && !running {
            return;
        }
        self.last_status = figures;
        let mut line: Line<80> = Line::new();
        match status.current {
            Some((format, hash, fuel)) => {
                let _ = write!(
                    line,
                    "job {:?} {:02x}{:02x}{:02x}{:02x} fuel {fuel}, ",
                    format, hash[0], hash[1], hash[2], hash[3]
                );
            }
            None => {
                let _ = write!(line, "jobs idle, ");
            }
        }
        let _ = write!(line, "{} done, {} failed", figures.0, figures.1);
        if let Some((result, exit)) = status.last {
            let _ = write!(line, ", last {result:?} {exit}");
        }
        crate::services::status::set_job_line(format_args!("{}", line.as_str()));
    }
}

//! The offload server: sessions, handshake, push, invoke, the job queue and discovery.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr};

use jos_abi::blob::{Arch, Blob};
use jos_abi::config::{Config, ConfigError, ConfigRepr, Policy};
use jos_abi::job::{clip, JobStatus, Limits, Value};
use jos_abi::signature::{self, TrustedSigner};
use jos_abi::wire::discovery::{AdvertKey, AdvertRepr, LoadState, Probe, PROBE_LEN};
use jos_abi::wire::{self, Format, Formats, Message, MAX_FRAME_LEN};
use jos_abi::{AbiVersion, ErrorCode};
use jos_runtime::host::HeapMeter;
use jos_runtime::wasm::ModuleCache;
use jos_runtime::{Capabilities, Entry, Host, Job, JobResult, Sandbox, SandboxConfig, StepOutcome};

use crate::noise::{self, Entropy};
use crate::ratelimit::{Limiter, Rate, RateLimits};
use crate::records::Recent;
use crate::session::{Phase, Push, Scratch, Session};
use crate::timing::{JobTiming, PushTiming, Timing};

/// The device's identity, trust lists and policy, owned (read once from the boot configuration).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Device name (in adverts).
    pub name: String,
    /// X25519 static secret of the Noise channel.
    pub noise_secret: [u8; 32],
    /// Ed25519 seed that signs adverts.
    pub advert_seed: [u8; 32],
    /// Static keys of the clients allowed to open a session.
    pub clients: Vec<[u8; 32]>,
    /// Code signers and their rights.
    pub signers: Vec<TrustedSigner>,
    /// Caps and defaults.
    pub policy: Policy,
}

impl core::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("name", &self.name)
            .field("clients", &self.clients.len())
            .field("signers", &self.signers.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DeviceConfig {
    /// Copies the parts of a parsed configuration the server uses.
    pub fn from_repr(repr: &ConfigRepr<'_>) -> Self {
        DeviceConfig {
            name: repr.name.to_string(),
            noise_secret: repr.noise_secret,
            advert_seed: repr.advert_seed,
            clients: (0..repr.clients.len()).filter_map(|i| repr.clients.get(i)).collect(),
            signers: (0..repr.signers.len()).filter_map(|i| repr.signers.get(i)).collect(),
            policy: repr.policy,
        }
    }

    /// Checks and parses a configuration image (the window at `CONFIG_ADDRESS` on the device).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config = Config::new_checked(bytes)?;
        let repr = ConfigRepr::parse(&config)?;
        Ok(DeviceConfig::from_repr(&repr))
    }

    /// The device's X25519 public key (the IK responder key).
    pub fn noise_public_key(&self) -> [u8; 32] {
        noise::public_key(&self.noise_secret)
    }
}

/// What the board provides to the server.
pub trait Platform {
    /// The runtime host each wasm job gets.
    type Host: Host + 'static;

    /// A host for a job with this input.
    fn host(&mut self, input: Vec<u8>) -> Self::Host;

    /// Whether native ARMv6 blobs can run here.
    fn runs_native(&self) -> bool {
        false
    }

    /// Starts a native blob the server verified when it was pushed (the platform need not check
    /// its signature again) as the current native job (the kernel arms its deadline,
    /// `limits.deadline_ms`, from its timer; the deadline runs while the job is suspended too).
    /// `capabilities` are the rights of the signer that verified the blob: capability calls
    /// beyond them answer `PermissionDenied`. `Err` holds the result of a job that could not
    /// start (`Rejected`). The server runs one job at a time: it never starts a second native
    /// job before the first finished or was aborted.
    // The refusal is the job's whole result, once per job start.
    #[allow(clippy::result_large_err)]
    fn start_native(
        &mut self,
        blob: &[u8],
        input: &[u8],
        limits: &Limits,
        capabilities: Capabilities,
    ) -> Result<(), JobResult> {
        let _ = (blob, input, limits, capabilities);
        Err(JobResult::rejected(jos_runtime::LoadError::Malformed(
            "native blobs do not run on this device".to_string(),
        )))
    }

    /// Runs the current native job until the platform preempts it (`Running`: call again in a
    /// later slice), it yields (`Yielded`) or it ends (`Finished`; faults end it with `Trap`,
    /// the deadline with `Deadline`).
    fn step_native(&mut self) -> StepOutcome {
        StepOutcome::Finished(JobResult::rejected(jos_runtime::LoadError::Malformed(
            "native blobs do not run on this device".to_string(),
        )))
    }

    /// Drops the current native job without running it further (its client left): its memory
    /// and sockets are freed.
    fn abort_native(&mut self) {}

    /// Free heap bytes (reported in adverts).
    fn free_memory(&self) -> u32;

    /// The device's heap for the wasm sandbox (`jos_runtime::host::HeapMeter`): with it, jobs
    /// cannot grow into what the device keeps for itself, a module is compiled only when its
    /// worst case fits, and cached modules are charged what they really take. The default has
    /// none.
    fn heap_meter(&self) -> Option<&'static dyn HeapMeter> {
        None
    }

    /// A monotonic clock in microseconds: the server times each slice of a wasm job with it
    /// (their sum is the job's `cpu_us`) and the phases of pushes and jobs ([`Platform::timing`]).
    fn now_us(&self) -> u64;

    /// A push or job ended: its phases in [`Platform::now_us`] time (the kernel logs them).
    fn timing(&mut self, timing: &Timing) {
        let _ = timing;
    }
}

/// Tunables that are not in the boot configuration (`docs/security.md`, "Resource limits:
/// sessions and unauthenticated traffic", gives each value and what happens at it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Most sessions at once, authenticated or waiting for their handshake. A connection that
    /// finds them all taken evicts the unauthenticated one that waited longest, or, when every
    /// one is authenticated, is answered `Error(Busy)` and closed ([`Server::connect_from`]).
    pub max_sessions: usize,
    /// Microseconds a connection has, from its arrival, to complete its handshake; then it is
    /// reset ([`Counters::handshake_timeouts`]).
    pub handshake_timeout_us: u64,
    /// Microseconds an authenticated session may send nothing while it has no job queued or
    /// running; then it is closed ([`Counters::idle_timeouts`]).
    pub idle_timeout_us: u64,
    /// Unsent bytes a session may hold: past this its client is not reading, and the session is
    /// reset ([`Counters::outbox_overflows`]).
    pub max_outbox: usize,
    /// Microseconds a session the device closed has to send what it has left (an Error, a
    /// result); then it is reset ([`Counters::flush_timeouts`]).
    pub flush_timeout_us: u64,
    /// Discovery probes answered, overall and per source address ([`Counters::probes_rate_limited`]).
    pub probe_limits: RateLimits,
    /// Handshakes that reach the X25519 work and fail (untrusted keys, undecryptable Hellos),
    /// overall and per source address; a trusted client's handshake gives its token back
    /// ([`Counters::hellos_rate_limited`]).
    pub hello_limits: RateLimits,
    /// Fuel per slice (one slice per [`Server::poll`]).
    pub slice_fuel: u64,
    /// Microseconds between Progress messages while a job runs.
    pub progress_interval_us: u64,
    /// Handshake first messages remembered to refuse replays.
    pub replay_memory: usize,
    /// Bytes of native blobs kept for invoke by hash.
    pub native_cache_bytes: usize,
    /// TCP port named in adverts.
    pub port: u16,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_sessions: 8,
            handshake_timeout_us: 5_000_000,
            idle_timeout_us: 30_000_000,
            max_outbox: 2 * (MAX_FRAME_LEN + wire::FRAME_HEADER_LEN),
            flush_timeout_us: 5_000_000,
            probe_limits: RateLimits {
                global: Rate { burst: 64, per_second: 64 },
                per_source: Rate { burst: 32, per_second: 16 },
                sources: 16,
            },
            hello_limits: RateLimits {
                global: Rate { burst: 16, per_second: 8 },
                per_source: Rate { burst: 8, per_second: 2 },
                sources: 16,
            },
            slice_fuel: 100_000,
            progress_interval_us: 250_000,
            replay_memory: 1024,
            native_cache_bytes: 8 * 1024 * 1024,
            port: wire::OFFLOAD_PORT,
        }
    }
}

/// Event counts (for the status screen, logs and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Unauthenticated connections or datagrams dropped without an answer: a first frame that
    /// is not a Hello of this version (or is longer than the largest Hello), a handshake that
    /// does not decrypt, a replay, a datagram that is not a probe, a connection beyond the
    /// closing ones [`Server::connect_from`] keeps.
    pub dropped_unauthenticated: u64,
    /// Handshakes refused because the first message was seen before.
    pub replays_refused: u64,
    /// Handshakes completed.
    pub sessions_opened: u64,
    /// Sessions ended because a frame failed to decrypt (altered, replayed or reordered).
    pub sessions_killed: u64,
    /// Error messages sent.
    pub errors_sent: u64,
    /// Modules accepted.
    pub pushes_ok: u64,
    /// Jobs that ended with status Ok.
    pub jobs_ok: u64,
    /// Jobs that ended otherwise (including aborted).
    pub jobs_failed: u64,
    /// Jobs aborted because their client left.
    pub jobs_aborted: u64,
    /// Discovery probes answered.
    pub adverts_sent: u64,
    /// Connections reset because their handshake was not done within
    /// [`ServerOptions::handshake_timeout_us`] (stalled or silent).
    pub handshake_timeouts: u64,
    /// Authenticated sessions closed after [`ServerOptions::idle_timeout_us`] without a byte
    /// from their client or a job of theirs.
    pub idle_timeouts: u64,
    /// Unauthenticated connections closed (after `Error(Busy)`) to make room for a newer one.
    pub evicted: u64,
    /// Connections answered `Error(Busy)` and closed because every session was authenticated
    /// and in use.
    pub refused_busy: u64,
    /// Sessions reset because their client did not read ([`ServerOptions::max_outbox`]).
    pub outbox_overflows: u64,
    /// Sessions the device had closed, reset because what they had left to send did not go out
    /// within [`ServerOptions::flush_timeout_us`].
    pub flush_timeouts: u64,
    /// Handshakes answered `Error(PermissionDenied)`: the client's key is not trusted (or the
    /// client does not hold its secret).
    pub hellos_refused: u64,
    /// Hellos answered `Error(Busy)` without the handshake's work ([`ServerOptions::hello_limits`]).
    pub hellos_rate_limited: u64,
    /// Valid probes not answered ([`ServerOptions::probe_limits`]).
    pub probes_rate_limited: u64,
    /// Datagrams shorter than a probe ([`PROBE_LEN`]), dropped unanswered.
    pub probes_too_short: u64,
}

/// What the status screen shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Current job: (format, first 4 bytes of its hash, fuel used so far).
    pub current: Option<(Format, [u8; 4], u64)>,
    /// Jobs waiting.
    pub queued: usize,
    /// Sessions (authenticated, waiting for their handshake, or closing).
    pub sessions: usize,
    /// Connections waiting for their handshake.
    pub waiting: usize,
    /// Last result: status and exit value.
    pub last: Option<(JobStatus, i32)>,
    /// Counters.
    pub counters: Counters,
}

/// How one [`Server::poll_slice`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// No job ran: none was running or queued.
    Idle,
    /// The slice's fuel ran out, or the platform preempted the native job; the job goes on in
    /// the next slice.
    Ran,
    /// The wasm job called `yield`: it has nothing to do now. The kernel gives it no further
    /// slice in the current executive frame (docs/kernel.md "Yield").
    Yielded,
    /// A job ended (or was refused before it ran) in this call.
    Ended,
}

/// How many pushed modules the server remembers (capabilities and SHA-256s), and how many
/// (client, module) push limits.
pub const RECORDS: usize = 256;

/// How many SHA-256s of pushes one module record remembers.
const ALIASES: usize = 4;

/// What the server keeps about a module that was pushed, by its identity (the SHA-256 of its
/// signed content): its latest pushes, most recent first, each with the SHA-256 of the bytes
/// pushed (what `PushOk` named, and what a client may invoke it by) and the capabilities of
/// the signer whose signature verified that push.
struct ModuleRecord {
    pushed_as: [Option<([u8; 32], Capabilities)>; ALIASES],
}

/// Identifies a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u32);

/// A job waiting or running.
struct Request {
    session: SessionId,
    format: Format,
    hash: [u8; 32],
    limits: Limits,
    input: Vec<u8>,
    entry: Entry,
    /// When the Invoke arrived (platform clock).
    received_us: u64,
    capabilities: Capabilities,
}

/// What runs: a wasm job the server steps, or the platform's native job.
// One value, held by the server while a job runs: its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum RunningJob<H: 'static> {
    Wasm(Job<H>),
    Native,
}

impl<H: Host + 'static> RunningJob<H> {
    /// Fuel used so far (native jobs use none).
    fn fuel_used(&self) -> u64 {
        match self {
            RunningJob::Wasm(job) => job.fuel_used(),
            RunningJob::Native => 0,
        }
    }
}

/// The running job.
struct Running<H: 'static> {
    session: SessionId,
    format: Format,
    hash: [u8; 32],
    job: RunningJob<H>,
    started_us: u64,
    last_progress_us: u64,
    /// [`Platform::now_us`] before the job started.
    began_us: u64,
    /// Microseconds the job held the CPU so far (its start and every slice, by
    /// [`Platform::now_us`]).
    cpu_us: u64,
    /// When the Invoke arrived and when the job was instantiated (platform clock).
    received_us: u64,
    instantiated_us: u64,
}

/// The device side of the offload protocol.
pub struct Server<P: Platform> {
    config: DeviceConfig,
    options: ServerOptions,
    platform: P,
    entropy: &'static dyn Entropy,
    noise_public: [u8; 32],
    /// The Noise `ss` results for the trusted clients, computed once.
    static_shared: Arc<noise::StaticShared>,
    /// The advert signing key and its public key, derived once.
    advert_key: AdvertKey,
    advert_public: [u8; 32],
    probe_limiter: Limiter,
    hello_limiter: Limiter,
    sandbox: Sandbox,
    /// Verified native blobs by identity, least recently used evicted first.
    natives: ModuleCache<Arc<Vec<u8>>>,
    /// What the device knows of each recently pushed module, by identity.
    records: Recent<[u8; 32], ModuleRecord>,
    /// Each client's push limits per module: (client key, module identity).
    defaults: Recent<([u8; 32], [u8; 32]), Limits>,
    sessions: BTreeMap<u32, Session>,
    next_session: u32,
    queue: VecDeque<Request>,
    running: Option<Running<P::Host>>,
    replay: Vec<[u8; 32]>,
    replay_next: usize,
    scratch: Scratch,
    counters: Counters,
    last: Option<(JobStatus, i32)>,
}

impl<P: Platform> Server<P> {
    /// A server for `config`; `entropy` supplies handshake randomness.
    pub fn new(config: DeviceConfig, options: ServerOptions, platform: P, entropy: &'static dyn Entropy) -> Self {
        let mut sandbox = Sandbox::new(SandboxConfig {
            max_module_bytes: config.policy.max_module_len as usize,
            ..SandboxConfig::default()
        });
        sandbox.set_heap_meter(platform.heap_meter());
        let advert_key = AdvertKey::from_seed(&config.advert_seed);
        let now_us = platform.now_us();
        Server {
            noise_public: config.noise_public_key(),
            static_shared: Arc::new(noise::StaticShared::new(&config.noise_secret, &config.clients)),
            advert_public: advert_key.public_key(),
            advert_key,
            probe_limiter: Limiter::new(options.probe_limits, now_us),
            hello_limiter: Limiter::new(options.hello_limits, now_us),
            config,
            options,
            platform,
            entropy,
            sandbox,
            natives: ModuleCache::new(options.native_cache_bytes),
            records: Recent::new(RECORDS),
            defaults: Recent::new(RECORDS),
            sessions: BTreeMap::new(),
            next_session: 0,
            queue: VecDeque::new(),
            running: None,
            replay: alloc::vec![[0; 32]; options.replay_memory.max(1)],
            replay_next: 0,
            scratch: Scratch::new(),
            counters: Counters::default(),
            last: None,
        }
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The platform, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The configuration in use.
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    /// Counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Formats this device accepts.
    pub fn formats(&self) -> Formats {
        if self.platform.runs_native() {
            Formats::ALL
        } else {
            Formats::WASM
        }
    }

    /// The status screen's figures.
    pub fn status(&self) -> Status {
        Status {
            current: self.running.as_ref().map(|running| {
                let mut short = [0; 4];
                short.copy_from_slice(&running.hash[..4]);
                (running.format, short, running.job.fuel_used())
            }),
            queued: self.queue.len(),
            sessions: self.sessions.len(),
            waiting: self.sessions.values().filter(|session| session.is_unauthenticated()).count(),
            last: self.last,
            counters: self.counters,
        }
    }

    /// A new connection whose peer address is not known ([`Server::connect_from`] with
    /// 0.0.0.0: such connections share one per-source rate limit).
    pub fn connect(&mut self) -> Option<SessionId> {
        self.connect_from(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// A new connection from `peer`. When all [`ServerOptions::max_sessions`] slots are taken,
    /// the unauthenticated connection that has waited longest is answered `Error(Busy)` in
    /// clear and closed to make room ([`Counters::evicted`]); when every slot holds an
    /// authenticated session, this connection gets that answer instead
    /// ([`Counters::refused_busy`]: send its pending bytes, then close it, as
    /// [`Server::wants_close`] says). `None` (close it at once, no answer) only when as many
    /// connections again as there are slots are still closing.
    pub fn connect_from(&mut self, peer: IpAddr) -> Option<SessionId> {
        if self.sessions.len() >= 2 * self.options.max_sessions.max(1) {
            self.counters.dropped_unauthenticated += 1;
            return None;
        }
        let mut session = Session::new(peer, self.platform.now_us());
        let open = self.sessions.values().filter(|session| !session.is_closed()).count();
        if open >= self.options.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .filter(|(_, session)| session.is_unauthenticated())
                .min_by_key(|(id, session)| (session.opened_us, **id))
                .map(|(id, _)| *id);
            match oldest.and_then(|id| self.sessions.remove(&id).map(|session| (id, session))) {
                Some((id, mut oldest)) => {
                    self.counters.evicted += 1;
                    self.refuse(
                        &mut oldest,
                        ErrorCode::Busy,
                        "too many connections wait for a handshake and this one waited longest: retry",
                    );
                    self.sessions.insert(id, oldest);
                }
                None => {
                    self.counters.refused_busy += 1;
                    let mut text = String::new();
                    let _ = write!(text, "all {} sessions are in use: retry in a moment", self.options.max_sessions);
                    self.refuse(&mut session, ErrorCode::Busy, &text);
                }
            }
        }
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        self.sessions.insert(id, session);
        Some(SessionId(id))
    }

    /// Answers an unauthenticated connection with an `Error` in clear (the only thing that can be
    /// said before a handshake) and closes it.
    fn refuse(&mut self, session: &mut Session, code: ErrorCode, message: &str) {
        let mut buffer = [0u8; 8 + wire::MAX_ERROR_MESSAGE_LEN];
        let message = Message::Error { code, message: clip(message, wire::MAX_ERROR_MESSAGE_LEN) };
        if let Ok(len) = message.emit(&mut buffer) {
            session.send_clear(&buffer[..len]);
            self.counters.errors_sent += 1;
        }
        session.close();
    }

    /// Applies the deadlines; call it often (the kernel calls it every executive frame). A
    /// connection whose handshake is not done [`ServerOptions::handshake_timeout_us`] after it
    /// arrived is reset ([`Server::wants_abort`]); an authenticated session that sent nothing
    /// and had no job queued or running for [`ServerOptions::idle_timeout_us`] is closed
    /// ([`Server::wants_close`]); a closed session whose transport has not finished sending
    /// within [`ServerOptions::flush_timeout_us`] is reset.
    pub fn expire(&mut self) {
        let now = self.platform.now_us();
        let (queue, running, counters) = (&self.queue, &self.running, &mut self.counters);
        for (id, session) in self.sessions.iter_mut() {
            match session.phase {
                Phase::AwaitHello => {
                    if now.saturating_sub(session.opened_us) >= self.options.handshake_timeout_us {
                        counters.handshake_timeouts += 1;
                        session.abort();
                    }
                }
                Phase::Open(_) => {
                    let id = SessionId(*id);
                    let busy = running.as_ref().is_some_and(|running| running.session == id)
                        || queue.iter().any(|request| request.session == id);
                    if busy {
                        session.active_us = now;
                    } else if now.saturating_sub(session.active_us) >= self.options.idle_timeout_us {
                        counters.idle_timeouts += 1;
                        session.close();
                    }
                }
                Phase::Closed => {
                    if !session.abort {
                        let since = *session.closed_us.get_or_insert(now);
                        if now.saturating_sub(since) >= self.options.flush_timeout_us {
                            counters.flush_timeouts += 1;
                            session.abort();
                        }
                    }
                }
            }
        }
    }

    /// The connection is gone: frees the session and aborts its jobs.
    pub fn disconnect(&mut self, id: SessionId) {
        if self.sessions.remove(&id.0).is_none() {
            return;
        }
        let before = self.queue.len();
        self.queue.retain(|request| request.session != id);
        let mut aborted = (before - self.queue.len()) as u64;
        if self.running.as_ref().is_some_and(|running| running.session == id) {
            if let Some(Running { job: RunningJob::Native, .. }) = self.running.take() {
                self.platform.abort_native();
            }
            aborted += 1;
            self.last = Some((JobStatus::Aborted, 0));
        }
        self.counters.jobs_aborted += aborted;
        self.counters.jobs_failed += aborted;
    }

    /// Whether the device ended this session: send what is pending, then close the connection
    /// and call [`Server::disconnect`] (or reset it at once if [`Server::wants_abort`]).
    pub fn wants_close(&self, id: SessionId) -> bool {
        self.sessions.get(&id.0).is_none_or(Session::is_closed)
    }

    /// Whether the device ended this session without anything left to send (a stalled
    /// handshake, a client that does not read): reset the connection now and call
    /// [`Server::disconnect`].
    pub fn wants_abort(&self, id: SessionId) -> bool {
        self.sessions.get(&id.0).is_some_and(|session| session.abort)
    }

    /// Bytes waiting to be sent on this connection.
    pub fn pending(&self, id: SessionId) -> &[u8] {
        self.sessions.get(&id.0).map_or(&[], Session::pending)
    }

    /// `count` pending bytes were sent.
    pub fn consume(&mut self, id: SessionId, count: usize) {
        if let Some(session) = self.sessions.get_mut(&id.0) {
            session.consume(count);
        }
    }

    /// Bytes received on a connection: handles every whole frame. Before the handshake, a
    /// first frame announced longer than the largest Hello ([`wire::MAX_HELLO_LEN`]) ends the
    /// connection at once, so a stranger never makes a session buffer more than that.
    pub fn receive(&mut self, id: SessionId, bytes: &[u8]) {
        let Some(mut session) = self.sessions.remove(&id.0) else { return };
        if !session.is_closed() {
            session.active_us = self.platform.now_us();
            session.inbox.extend_from_slice(bytes);
            loop {
                if session.is_unauthenticated() {
                    let announced = session
                        .inbox
                        .get(..wire::FRAME_HEADER_LEN)
                        .map(|header| u16::from_le_bytes([header[0], header[1]]));
                    if announced.is_some_and(|len| usize::from(len) > wire::MAX_HELLO_LEN) {
                        self.kill(&mut session);
                        session.abort();
                        break;
                    }
                }
                match session.next_frame() {
                    Ok(Some(len)) => {
                        let frame: Vec<u8> = session.inbox.drain(..len).collect();
                        self.frame(id, &mut session, &frame[wire::FRAME_HEADER_LEN..]);
                        self.check_outbox(&mut session);
                        if session.is_closed() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.kill(&mut session);
                        break;
                    }
                }
            }
        }
        self.sessions.insert(id.0, session);
    }

    /// Resets a session whose unsent bytes went past [`ServerOptions::max_outbox`]: its client
    /// is not reading.
    fn check_outbox(&mut self, session: &mut Session) {
        if !session.abort && session.pending_len() > self.options.max_outbox {
            self.counters.outbox_overflows += 1;
            session.abort();
        }
    }

    fn kill(&mut self, session: &mut Session) {
        match session.phase {
            Phase::Open(_) => self.counters.sessions_killed += 1,
            _ => self.counters.dropped_unauthenticated += 1,
        }
        session.close();
    }

    fn frame(&mut self, id: SessionId, session: &mut Session, payload: &[u8]) {
        match &mut session.phase {
            Phase::AwaitHello => self.handshake(session, payload),
            Phase::Open(transport) => {
                let mut received = core::mem::take(&mut self.scratch.received);
                match transport.read_message(payload, &mut received) {
                    Ok(len) => self.message(id, session, &received[..len]),
                    Err(_) => {
                        // Altered, replayed or reordered: Noise's nonce no longer matches.
                        self.counters.sessions_killed += 1;
                        session.close();
                    }
                }
                self.scratch.received = received;
            }
            Phase::Closed => {}
        }
    }

    fn handshake(&mut self, session: &mut Session, payload: &[u8]) {
        let hello_us = self.platform.now_us();
        let drop = |server: &mut Self, session: &mut Session| {
            server.counters.dropped_unauthenticated += 1;
            session.close();
        };
        let Ok(Message::Hello { version, handshake }) = Message::parse(payload) else {
            return drop(self, session);
        };
        if version != wire::PROTOCOL_VERSION || handshake.len() < 32 {
            return drop(self, session);
        }
        let mut ephemeral = [0u8; 32];
        ephemeral.copy_from_slice(&handshake[..32]);
        if self.replay.contains(&ephemeral) {
            self.counters.replays_refused += 1;
            return drop(self, session);
        }
        // Everything above was cheap; what follows costs an X25519. A token per Hello, given back
        // when the client turns out to be trusted: only failing handshakes spend the budget.
        if !self.hello_limiter.allow(session.peer, hello_us) {
            self.counters.hellos_rate_limited += 1;
            return self.refuse(session, ErrorCode::Busy, "too many handshakes at once: retry in a moment");
        }
        let Ok(mut state) = noise::responder(&self.config.noise_secret, self.entropy, &self.static_shared) else {
            return drop(self, session);
        };
        let mut client_payload = [0u8; wire::MAX_HANDSHAKE_LEN];
        let read = state.read_message(handshake, &mut client_payload);
        let remote: Option<[u8; 32]> = state.get_remote_static().and_then(|key| key.try_into().ok());
        let Some(remote) = remote else {
            // Not even the client's static key decrypted: not a handshake with this device's key.
            return drop(self, session);
        };
        if read.is_err() || !self.config.clients.contains(&remote) {
            // The key is not a trusted client's (the strict resolver refused its `ss`), or the
            // client does not hold its secret: either way the same answer, so that it tells no
            // one which keys are trusted.
            self.counters.hellos_refused += 1;
            return self.refuse(
                session,
                ErrorCode::PermissionDenied,
                "this client's key is not in the device's configuration",
            );
        }
        self.hello_limiter.refund(session.peer);
        // Only a message that decrypted under a trusted key is remembered, so strangers cannot
        // flush the replay memory.
        self.replay[self.replay_next] = ephemeral;
        self.replay_next = (self.replay_next + 1) % self.replay.len();
        let mut answer = [0u8; 128];
        let Ok(len) = state.write_message(&[], &mut answer) else { return drop(self, session) };
        let Ok(transport) = state.into_transport_mode() else { return drop(self, session) };
        let hello = Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &answer[..len] };
        let mut buffer = [0u8; 256];
        let Ok(hello_len) = hello.emit(&mut buffer) else { return drop(self, session) };
        session.send_clear(&buffer[..hello_len]);
        session.client_key = remote;
        session.phase = Phase::Open(transport);
        session.hello_us = hello_us;
        session.handshake_us = self.platform.now_us().saturating_sub(hello_us);
        self.counters.sessions_opened += 1;
    }

    fn error(&mut self, session: &mut Session, code: ErrorCode, message: &str) {
        self.counters.errors_sent += 1;
        let message = clip(message, wire::MAX_ERROR_MESSAGE_LEN);
        session.send(&Message::Error { code, message }, &mut self.scratch);
    }

    fn message(&mut self, id: SessionId, session: &mut Session, bytes: &[u8]) {
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(error) => {
                let mut text = String::new();
                let _ = write!(text, "message: {error}");
                return self.error(session, error.code(), &text);
            }
        };
        match message {
            Message::Hello { .. } => {
                self.error(session, ErrorCode::Unsupported, "Hello after the handshake");
                session.close();
            }
            Message::Ping { nonce } => {
                session.send(&Message::Pong { nonce }, &mut self.scratch);
            }
            Message::Pong { .. } | Message::Error { .. } => {}
            Message::PushBegin { format, total_len, sha256, limits } => {
                self.push_begin(session, format, total_len, sha256, limits)
            }
            Message::PushChunk { offset, bytes } => self.push_chunk(session, offset, bytes),
            Message::PushEnd => self.push_end(session),
            Message::Invoke { hash, limits, input, call } => {
                let entry = match call {
                    None => Entry::Default,
                    Some(call) => Entry::Call {
                        name: call.name.to_string(),
                        args: call.args().iter().map(|arg| Value::I64(*arg)).collect(),
                    },
                };
                self.invoke(id, session, hash, limits, input, entry)
            }
            Message::PushOk { .. } | Message::Progress { .. } | Message::JobResult { .. } => {
                self.error(session, ErrorCode::Unsupported, "message only the device sends")
            }
        }
    }

    fn push_begin(&mut self, session: &mut Session, format: Format, total_len: u32, sha256: [u8; 32], limits: Limits) {
        session.push = None;
        if !self.formats().contains(format) {
            return self.error(session, ErrorCode::Unsupported, "format not accepted by this device");
        }
        if total_len > self.config.policy.max_module_len {
            let mut text = String::new();
            let _ = write!(
                text,
                "module of {total_len} bytes: the device takes at most {}",
                self.config.policy.max_module_len
            );
            return self.error(session, ErrorCode::LimitExceeded, &text);
        }
        if total_len == 0 {
            return self.error(session, ErrorCode::InvalidArgument, "empty module");
        }
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(total_len as usize).is_err() {
            return self.error(session, ErrorCode::Busy, "no memory for the module now");
        }
        let begun_us = self.platform.now_us();
        session.push = Some(Push { format, total_len: total_len as usize, sha256, limits, bytes, begun_us });
    }

    fn push_chunk(&mut self, session: &mut Session, offset: u32, chunk: &[u8]) {
        let Some(push) = session.push.as_mut() else {
            return self.error(session, ErrorCode::InvalidArgument, "chunk without PushBegin");
        };
        if offset as usize != push.bytes.len() {
            let mut text = String::new();
            let _ = write!(text, "chunk at offset {offset}, expected {}; push abandoned", push.bytes.len());
            session.push = None;
            return self.error(session, ErrorCode::InvalidArgument, &text);
        }
        if push.bytes.len() + chunk.len() > push.total_len {
            session.push = None;
            return self.error(session, ErrorCode::InvalidArgument, "chunk past the announced length; push abandoned");
        }
        push.bytes.extend_from_slice(chunk);
    }

    fn push_end(&mut self, session: &mut Session) {
        let Some(push) = session.push.take() else {
            return self.error(session, ErrorCode::InvalidArgument, "PushEnd without PushBegin");
        };
        let end_us = self.platform.now_us();
        if push.bytes.len() != push.total_len {
            let mut text = String::new();
            let _ = write!(text, "module incomplete: {} of {} bytes", push.bytes.len(), push.total_len);
            return self.error(session, ErrorCode::InvalidArgument, &text);
        }
        if signature::sha256(&push.bytes) != push.sha256 {
            return self.error(session, ErrorCode::InvalidArgument, "SHA-256 of the module differs from PushBegin's");
        }
        let signers = &self.config.signers;
        // The module's identity (the SHA-256 of its signed content, `jos_runtime::wasm::module_id`)
        // and the capabilities of the signer that verified it.
        let verdict = match push.format {
            Format::Wasm => self
                .sandbox
                .compile_signed(&push.bytes, signers)
                .map(|(module, signer)| {
                    let rights = signers
                        .get(signer)
                        .map_or(Capabilities::NONE, |signer| Capabilities::from_rights(signer.rights));
                    (*module.hash(), rights)
                })
                .map_err(|error| {
                    let mut text = String::new();
                    let _ = write!(text, "{error}");
                    (error.code(), text)
                }),
            Format::NativeArmv6 => self.check_native(&push.bytes),
        };
        let (format, bytes, accepted) = (push.format, push.total_len, verdict.is_ok());
        match verdict {
            Ok((identity, capabilities)) => {
                if push.format == Format::NativeArmv6 {
                    self.store_native(identity, push.bytes);
                }
                self.record_push(identity, capabilities, push.sha256);
                // This client's limits for this module; other clients keep their own.
                self.defaults.insert((session.client_key, identity), push.limits);
                self.counters.pushes_ok += 1;
                session.send(&Message::PushOk { sha256: push.sha256 }, &mut self.scratch);
            }
            Err((code, text)) => self.error(session, code, &text),
        }
        let done_us = self.platform.now_us();
        self.platform.timing(&Timing::Push(PushTiming {
            format,
            bytes,
            accepted,
            handshake_us: session.handshake_us,
            transfer_us: end_us.saturating_sub(push.begun_us),
            verify_us: done_us.saturating_sub(end_us),
            session_us: done_us.saturating_sub(session.hello_us),
        }));
    }

    /// Checks a native blob; returns its identity (the SHA-256 of its signed part) and the
    /// capabilities of the signer that verified it.
    fn check_native(&self, bytes: &[u8]) -> Result<([u8; 32], Capabilities), (ErrorCode, String)> {
        let fail = |code: ErrorCode, what: &dyn core::fmt::Display| {
            let mut text = String::new();
            let _ = write!(text, "{what}");
            (code, text)
        };
        let blob = Blob::new_checked(bytes).map_err(|error| fail(error.code(), &error))?;
        if !AbiVersion::CURRENT.accepts(blob.abi_version()) {
            let mut text = String::new();
            let _ = write!(text, "blob needs ABI {}, device has {}", blob.abi_version(), AbiVersion::CURRENT);
            return Err((ErrorCode::AbiMismatch, text));
        }
        if blob.arch() != Some(Arch::Armv6) {
            return Err((ErrorCode::Unsupported, "blob is not for ARMv6".to_string()));
        }
        let verified =
            signature::verify_blob(&blob, &self.config.signers).map_err(|error| fail(error.code(), &error))?;
        Ok((verified.content_hash, Capabilities::from_rights(verified.rights)))
    }

    /// Keeps a verified blob under its identity (least recently used blobs make room).
    fn store_native(&mut self, identity: [u8; 32], bytes: Vec<u8>) {
        let cost = bytes.len();
        // Moved, not copied: the push buffer becomes the cache entry.
        self.natives.insert(identity, Arc::new(bytes), cost);
    }

    /// Remembers that `identity` was pushed as bytes whose SHA-256 is `sha256`, verified by a
    /// signer granting `capabilities`.
    fn record_push(&mut self, identity: [u8; 32], capabilities: Capabilities, sha256: [u8; 32]) {
        let mut pushed_as = [None; ALIASES];
        pushed_as[0] = Some((sha256, capabilities));
        if let Some(record) = self.records.get(&identity) {
            let older = record.pushed_as.iter().flatten().filter(|(hash, _)| *hash != sha256);
            for (slot, push) in pushed_as[1..].iter_mut().zip(older) {
                *slot = Some(*push);
            }
        }
        self.records.insert(identity, ModuleRecord { pushed_as });
    }

    /// The identity of the module `hash` names and the capabilities it runs with: by its
    /// identity, those of its latest push; by the SHA-256 of the bytes of one of its recent
    /// pushes, those of that push's signer. `None` if no cached module goes by `hash`. A module
    /// whose record was evicted runs with no capabilities (push it again).
    fn resolve(&mut self, hash: &[u8; 32]) -> Option<([u8; 32], Capabilities)> {
        if self.sandbox.cache().contains(hash) || self.natives.contains(hash) {
            let latest = self.records.get(hash).and_then(|record| record.pushed_as[0]);
            return Some((*hash, latest.map_or(Capabilities::NONE, |(_, capabilities)| capabilities)));
        }
        let pushed = |record: &ModuleRecord| record.pushed_as.iter().flatten().any(|(sha256, _)| sha256 == hash);
        let identity = *self.records.find_key(pushed)?;
        let record = self.records.get(&identity)?;
        let (_, capabilities) = record.pushed_as.iter().flatten().find(|(sha256, _)| sha256 == hash)?;
        Some((identity, *capabilities))
    }

    fn invoke(
        &mut self,
        id: SessionId,
        session: &mut Session,
        hash: [u8; 32],
        limits: Limits,
        input: &[u8],
        entry: Entry,
    ) {
        let resolved = self.resolve(&hash);
        let format = match resolved {
            Some((identity, _)) if self.sandbox.cache().contains(&identity) => Format::Wasm,
            Some((identity, _)) if self.natives.contains(&identity) => Format::NativeArmv6,
            _ => return self.error(session, ErrorCode::NotFound, "no cached module with this SHA-256: push it first"),
        };
        let (hash, capabilities) = resolved.unwrap_or((hash, Capabilities::NONE));
        if self.queue.len() >= usize::from(self.config.policy.queue_len) {
            return self.error(session, ErrorCode::Busy, "job queue full");
        }
        // A client that did not push the module gets no push limits but its own request's and
        // the policy's.
        let defaults = self.defaults.get(&(session.client_key, hash)).copied().unwrap_or_default();
        let limits = limits.or(defaults).capped_by(self.config.policy.limits);
        let received_us = self.platform.now_us();
        self.queue.push_back(Request {
            session: id,
            format,
            hash,
            limits,
            input: input.to_vec(),
            entry,
            received_us,
            capabilities,
        });
    }

    /// Runs one slice of the current job (starting the next queued one if none runs); sends
    /// Progress and JobResult messages. `now_us` is the device's clock. Returns how the slice
    /// ended.
    pub fn poll(&mut self, now_us: u64) -> Slice {
        self.poll_slice(now_us, self.options.slice_fuel)
    }

    /// [`poll`](Self::poll) with a slice of `slice_fuel` instead of the configured one (the
    /// kernel shortens the last slice of a frame to what the frame has left, and gives a job that
    /// returned [`Slice::Yielded`] no further slice in that frame).
    pub fn poll_slice(&mut self, now_us: u64, slice_fuel: u64) -> Slice {
        if self.running.is_none() {
            let Some(request) = self.queue.pop_front() else { return Slice::Idle };
            match request.format {
                Format::Wasm => {
                    let Some(module) = self.sandbox.cached(&request.hash) else {
                        let result = JobResult::rejected(jos_runtime::LoadError::Malformed(
                            "module left the cache before it ran; push it again".to_string(),
                        ));
                        self.finish(request.session, &result, 0, 0);
                        return Slice::Ended;
                    };
                    let host = self.platform.host(request.input);
                    let start_began = self.platform.now_us();
                    let job = self.sandbox.start(
                        &module,
                        host,
                        jos_runtime::Limits::default().with_request(&request.limits),
                        request.capabilities,
                        request.entry,
                    );
                    let instantiated_us = self.platform.now_us();
                    let start_cpu_us = instantiated_us.saturating_sub(start_began);
                    self.running = Some(Running {
                        session: request.session,
                        format: request.format,
                        hash: request.hash,
                        job: RunningJob::Wasm(job),
                        started_us: now_us,
                        last_progress_us: now_us,
                        began_us: start_began,
                        cpu_us: start_cpu_us,
                        received_us: request.received_us,
                        instantiated_us,
                    });
                }
                Format::NativeArmv6 => {
                    let start_us = self.platform.now_us();
                    let started = match self.natives.get(&request.hash) {
                        Some(blob) => self.platform.start_native(
                            blob.as_slice(),
                            &request.input,
                            &request.limits,
                            request.capabilities,
                        ),
                        None => Err(JobResult::rejected(jos_runtime::LoadError::Malformed(
                            "blob left the cache before it ran; push it again".to_string(),
                        ))),
                    };
                    let loaded_us = self.platform.now_us();
                    if let Err(result) = started {
                        let phases = (request.received_us, start_us, loaded_us);
                        let took = loaded_us.saturating_sub(start_us);
                        self.finish_timed(request.session, Format::NativeArmv6, phases, &result, (took, took));
                        return Slice::Ended;
                    }
                    // The blob runs in steps below, like a wasm job's slices: its CPU time is the
                    // sum of its steps (and the load), not the frames it waited through.
                    self.running = Some(Running {
                        session: request.session,
                        format: request.format,
                        hash: request.hash,
                        job: RunningJob::Native,
                        started_us: now_us,
                        last_progress_us: now_us,
                        began_us: start_us,
                        cpu_us: loaded_us.saturating_sub(start_us),
                        received_us: request.received_us,
                        instantiated_us: loaded_us,
                    });
                }
            }
        }
        let Some(running) = self.running.as_mut() else { return Slice::Idle };
        let slice_began = self.platform.now_us();
        let outcome = match &mut running.job {
            RunningJob::Wasm(job) => job.step(slice_fuel),
            RunningJob::Native => self.platform.step_native(),
        };
        let slice_ended = self.platform.now_us();
        running.cpu_us += slice_ended.saturating_sub(slice_began);
        let yielded = outcome == StepOutcome::Yielded;
        match outcome {
            StepOutcome::Running | StepOutcome::Yielded => {
                if now_us.saturating_sub(running.last_progress_us) >= self.options.progress_interval_us {
                    running.last_progress_us = now_us;
                    let progress = Message::Progress {
                        fuel_used: running.job.fuel_used(),
                        elapsed_us: now_us.saturating_sub(running.started_us),
                        output_len: 0,
                    };
                    let id = running.session;
                    if let Some(mut session) = self.sessions.remove(&id.0) {
                        session.send(&progress, &mut self.scratch);
                        self.check_outbox(&mut session);
                        self.sessions.insert(id.0, session);
                    }
                }
                if yielded {
                    Slice::Yielded
                } else {
                    Slice::Ran
                }
            }
            StepOutcome::Finished(result) => {
                let (session, format, cpu_us) = (running.session, running.format, running.cpu_us);
                let time_us = slice_ended.saturating_sub(running.began_us);
                let phases = (running.received_us, running.began_us, running.instantiated_us);
                self.running = None;
                self.finish_timed(session, format, phases, &result, (time_us, cpu_us));
                Slice::Ended
            }
        }
    }

    /// [`Server::finish`], then the job's [`JobTiming`] to the platform. `phases` are when the
    /// Invoke arrived, the job started and it was instantiated; `times` its `time_us` and `cpu_us`.
    fn finish_timed(
        &mut self,
        id: SessionId,
        format: Format,
        phases: (u64, u64, u64),
        result: &JobResult,
        times: (u64, u64),
    ) {
        let (received_us, start_us, instantiated_us) = phases;
        let finished_us = self.platform.now_us();
        self.finish(id, result, times.0, times.1);
        let done_us = self.platform.now_us();
        self.platform.timing(&Timing::Job(JobTiming {
            format,
            status: result.status,
            queued_us: start_us.saturating_sub(received_us),
            instantiate_us: instantiated_us.saturating_sub(start_us),
            run_us: finished_us.saturating_sub(instantiated_us),
            result_us: done_us.saturating_sub(finished_us),
            total_us: done_us.saturating_sub(received_us),
        }));
    }

    /// Reports a finished job to its session: `time_us` from its start to its end, `cpu_us` the
    /// part of it the job held the CPU.
    fn finish(&mut self, id: SessionId, result: &JobResult, time_us: u64, cpu_us: u64) {
        let status = result.reported_status();
        self.last = Some((status, result.exit_value.unwrap_or(0)));
        if status == JobStatus::Ok {
            self.counters.jobs_ok += 1;
        } else {
            self.counters.jobs_failed += 1;
        }
        let Some(mut session) = self.sessions.remove(&id.0) else { return };
        let sent = result.to_wire(time_us, cpu_us, |message| session.send(message, &mut self.scratch));
        if !sent {
            self.error(&mut session, ErrorCode::LimitExceeded, "job result does not fit a frame");
        }
        self.check_outbox(&mut session);
        self.sessions.insert(id.0, session);
    }

    /// Answers a discovery datagram from an unknown address ([`Server::discovery_from`] with
    /// 0.0.0.0).
    pub fn discovery(&mut self, datagram: &[u8], reply: &mut [u8]) -> Option<usize> {
        self.discovery_from(IpAddr::V4(Ipv4Addr::UNSPECIFIED), datagram, reply)
    }

    /// Answers a discovery datagram from `source`: `Some(len)` of the advert written into
    /// `reply`, `None` if the datagram is shorter than a probe (so the answer could be larger
    /// than the question), is not a valid probe, or the probe budget is spent
    /// ([`ServerOptions::probe_limits`]); each is counted.
    pub fn discovery_from(&mut self, source: IpAddr, datagram: &[u8], reply: &mut [u8]) -> Option<usize> {
        if datagram.len() < PROBE_LEN {
            self.counters.probes_too_short += 1;
            return None;
        }
        let Ok(probe) = Probe::parse(datagram) else {
            self.counters.dropped_unauthenticated += 1;
            return None;
        };
        if !self.probe_limiter.allow(source, self.platform.now_us()) {
            self.counters.probes_rate_limited += 1;
            return None;
        }
        let advert = AdvertRepr {
            nonce: probe.nonce,
            abi_version: AbiVersion::CURRENT,
            formats: self.formats(),
            state: if self.running.is_some() { LoadState::Busy } else { LoadState::Idle },
            queued: u16::try_from(self.queue.len()).unwrap_or(u16::MAX),
            free_memory: self.platform.free_memory(),
            port: self.options.port,
            noise_key: self.noise_public,
            signing_key: self.advert_public,
            name: &self.config.name,
        };
        let len = advert.emit_signed(reply, &self.advert_key).ok()?;
        self.counters.adverts_sent += 1;
        Some(len)
    }

    /// The largest datagram [`Server::discovery`] writes.
    pub const MAX_ADVERT_LEN: usize = jos_abi::wire::discovery::ADVERT_FIXED_LEN + jos_abi::config::MAX_NAME_LEN;

    /// Largest frame a session sends (for transport buffer sizing).
    pub const MAX_FRAME: usize = MAX_FRAME_LEN + wire::FRAME_HEADER_LEN;
}

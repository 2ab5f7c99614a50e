//! The offload server: the [`Server`] state machine and what it keeps, split by concern:
//! - `config`: the device's configuration and the server's tunables;
//! - `platform`: what the board provides ([`Platform`]);
//! - `sessions`: connections, the Noise handshake, framing and message dispatch;
//! - `push`: pushes, verification and the module and blob caches;
//! - `scheduler`: the job queue and the slices of the running job;
//! - `results`: a finished job's result to its session, and its timing (`crate::timing`);
//! - `discovery`: answers to discovery probes.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use jos_abi::job::{Engine, JobStatus, Limits};
use jos_abi::wire::discovery::AdvertKey;
use jos_abi::wire::{self, Format, Formats, MAX_FRAME_LEN};
use jos_runtime::wasm::ModuleCache;
use jos_runtime::{Capabilities, Entry, Host, Job, Sandbox, SandboxConfig};

use crate::noise::{self, Entropy};
use crate::ratelimit::Limiter;
use crate::records::Recent;
use crate::session::{Scratch, Session};

mod config;
mod discovery;
mod fleet;
mod platform;
mod push;
mod results;
mod scheduler;
mod sessions;

pub use config::{DeviceConfig, ServerOptions};
pub use fleet::{FleetCounters, FleetRefusal, FleetResult, FLEET_REPLAY_SLOTS};
pub use platform::Platform;

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
    /// Datagrams shorter than a probe ([`PROBE_LEN`](jos_abi::wire::discovery::PROBE_LEN)), dropped unanswered.
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
    /// What runs it: the interpreter for wasm, native or AOT for a blob (by its flags).
    engine: Engine,
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
    engine: Engine,
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
    /// Fleet jobs: key, clock estimate, seen ids, pending jobs and sealed results.
    fleet: fleet::FleetState,
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
            fleet: fleet::FleetState::default(),
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

    /// Largest frame a session sends (for transport buffer sizing).
    pub const MAX_FRAME: usize = MAX_FRAME_LEN + wire::FRAME_HEADER_LEN;
}

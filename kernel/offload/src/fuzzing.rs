//! Fuzz target body for the server's whole receive path (feature `fuzzing`): the input is a
//! script that drives a [`Server`] with a fixed key set, a deterministic entropy source and a
//! scripted clock through connections, real Noise handshakes (from trusted and unknown keys,
//! split at arbitrary points), encrypted messages (arbitrary plaintext, or well-formed pushes,
//! invokes and pings), raw bytes, disconnects, discovery datagrams, polls and reads, and fleet
//! job messages from the broker (valid, cached, badly signed, altered, replayed, expired, or
//! arbitrary bytes: [`fleet`]). A panic or a broken invariant is a bug.
//!
//! Invariants checked after every step: the session count matches the connections, the queue
//! stays within the policy, counters never go back, an unauthenticated connection is answered
//! with nothing but a handshake `Hello`, every frame sent on an authenticated session decrypts
//! in order and is a message the device may send (an echo job's output is one of the inputs
//! sent, a call's result is one `i64`), a session's output stays within a fixed multiple of what
//! it was sent, a valid probe gets a signed advert with its nonce and anything else no answer;
//! the fleet invariants of [`fleet`] (every accepted job gets exactly one sealed result that
//! opens as the device's, refusals are counted). At the end every session is read, every job
//! finished, every fleet result taken and every connection closed: nothing may be left.
//!
//! The cargo-fuzz target `server` (`fuzz/fuzz_targets/server.rs`) calls [`server`]; the host test
//! `kernel/offload/tests/fuzz_bodies.rs` runs it over the seed corpus `fuzz/corpus/server/`
//! (written by [`seeds`]) and deterministic mutations. docs/fuzzing.md has the campaigns.

use std::boxed::Box;
use std::string::String;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::vec::Vec;

use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Table};
use jos_abi::config::{Policy, PortRange};
use jos_abi::job::Value;
use jos_abi::signature::{public_key as signing_public_key, sha256, sign_blob, sign_wasm, SignerRights, TrustedSigner};
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe, PROBE_LEN};
use jos_abi::wire::{
    self, Call, Format, JobStatus, Limits, Message, FRAME_HEADER_LEN, MAX_CHUNK_LEN, MAX_FRAME_LEN, MAX_MESSAGE_LEN,
};
use jos_abi::{AbiVersion, ErrorCode};
use jos_runtime::{Capabilities, Host, JobResult, StepOutcome};

use crate::noise::{self, Entropy, Resolver, StaticShared};
use crate::server::{Counters, DeviceConfig, FleetCounters, Platform, Server, ServerOptions, SessionId};

pub mod fleet;

pub use fleet::{FleetKind, FleetMessage, FLEET_SECRET};

/// The device's Noise secret.
pub const DEVICE_SECRET: [u8; 32] = [0x11; 32];
/// The Noise secrets of the two trusted clients.
pub const CLIENT_SECRETS: [[u8; 32]; 2] = [[0x22; 32], [0x23; 32]];
/// A client the device does not know.
pub const STRANGER_SECRET: [u8; 32] = [0x33; 32];
/// The signer the device trusts with every right.
pub const SIGNER_SEED: [u8; 32] = [0x5e; 32];
/// A signer the device does not know.
pub const UNKNOWN_SIGNER_SEED: [u8; 32] = [0x77; 32];
/// Policy: largest module.
pub const MAX_MODULE: u32 = 64 * 1024;
/// Handshakes a script may run (later ones are skipped).
pub const MAX_HANDSHAKES: usize = 6;
/// Policy: jobs waiting at most.
pub const QUEUE_LEN: u16 = 4;
/// Most bytes a session may be sent per byte it sent and per poll, plus two frames: a bound on
/// amplification.
pub const AMPLIFICATION: usize = 64;

/// A wasm module (text in `kernel/offload/tests/fuzz_bodies.rs`): `run` reads its input, writes
/// it to its output and returns its length; `add(i64, i64) -> i64`.
#[rustfmt::skip]
pub const ECHO_WASM: &[u8] = &[
    0, 97, 115, 109, 1, 0, 0, 0, 1, 24, 4, 96, 0, 1, 127, 96, 3, 127, 127, 127, 1, 127, 96, 2, 127, 127, 1, 127, 96, 2,
    126, 126, 1, 126, 2, 53, 3, 3, 106, 111, 115, 9, 105, 110, 112, 117, 116, 95, 108, 101, 110, 0, 0, 3, 106, 111, 115,
    10, 105, 110, 112, 117, 116, 95, 114, 101, 97, 100, 0, 1, 3, 106, 111, 115, 12, 111, 117, 116, 112, 117, 116, 95, 119,
    114, 105, 116, 101, 0, 2, 3, 3, 2, 0, 3, 5, 3, 1, 0, 1, 7, 22, 3, 6, 109, 101, 109, 111, 114, 121, 2, 0, 3, 114, 117,
    110, 0, 3, 3, 97, 100, 100, 0, 4, 10, 33, 2, 23, 1, 1, 127, 65, 0, 16, 0, 65, 0, 16, 1, 33, 0, 65, 0, 32, 0, 16, 2,
    26, 32, 0, 11, 7, 0, 32, 0, 32, 1, 124, 11,
];

/// A wasm module whose `run` never ends (it runs out of fuel, or is aborted).
#[rustfmt::skip]
pub const SPIN_WASM: &[u8] = &[
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 16, 2, 6, 109, 101, 109, 111, 114,
    121, 2, 0, 3, 114, 117, 110, 0, 0, 10, 11, 1, 9, 0, 3, 64, 12, 0, 11, 65, 0, 11,
];

/// The modules a script can push, by index: echo signed by the trusted signer, echo signed by
/// an unknown signer, a native blob signed by the trusted signer, spin signed by the trusted
/// signer.
pub fn modules() -> &'static [(Format, Vec<u8>); 4] {
    static MODULES: OnceLock<[(Format, Vec<u8>); 4]> = OnceLock::new();
    MODULES.get_or_init(|| {
        let sign = |module: &[u8], seed| sign_wasm(module, seed, true).expect("a fixed module signs");
        [
            (Format::Wasm, sign(ECHO_WASM, &SIGNER_SEED)),
            (Format::Wasm, sign(ECHO_WASM, &UNKNOWN_SIGNER_SEED)),
            (Format::NativeArmv6, native_blob()),
            (Format::Wasm, sign(SPIN_WASM, &SIGNER_SEED)),
        ]
    })
}

/// A minimal ARMv6 blob (`mov r0, #7; bx lr`) signed by [`SIGNER_SEED`].
fn native_blob() -> Vec<u8> {
    const TEXT: [u8; 8] = [0x07, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1];
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &TEXT,
        rodata: &[],
        data: &[],
        bss_len: 0,
        align: 8,
        imports: Table::from_slice(&[]),
        relocations: Table::from_slice(&[]),
        wasm_source: None,
    };
    let mut bytes = std::vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes).expect("a fixed blob emits");
    sign_blob(&bytes, &SIGNER_SEED, true).expect("a fixed blob signs")
}

/// The fuzzed device's configuration (its public keys computed once).
pub fn config() -> DeviceConfig {
    static CONFIG: OnceLock<DeviceConfig> = OnceLock::new();
    CONFIG.get_or_init(build_config).clone()
}

fn build_config() -> DeviceConfig {
    DeviceConfig {
        name: "fuzz-device".into(),
        noise_secret: DEVICE_SECRET,
        advert_seed: [0x44; 32],
        clients: CLIENT_SECRETS.iter().map(noise::public_key).collect(),
        signers: std::vec![TrustedSigner { public_key: signing_public_key(&SIGNER_SEED), rights: SignerRights::ALL }],
        policy: Policy {
            max_module_len: MAX_MODULE,
            // Little fuel: a spinning job ends in a few slices (the interpreter dominates the run time).
            limits: Limits { fuel: 20_000, memory: 4 * 65536, deadline_ms: 2_000, output: 8192 },
            queue_len: QUEUE_LEN,
            job_ports: PortRange::DEFAULT,
        },
    }
}

/// The fuzzed device's options: few sessions (so the limit is reached), short slices.
pub fn options() -> ServerOptions {
    ServerOptions {
        max_sessions: 4,
        slice_fuel: 5_000,
        progress_interval_us: 1_000,
        replay_memory: 8,
        ..ServerOptions::default()
    }
}

/// A deterministic entropy source (SplitMix64 from a seed reset for every input), so a run
/// replays exactly: the device's and the clients' ephemeral keys are the same each time.
pub struct FuzzEntropy {
    state: AtomicU64,
}

impl FuzzEntropy {
    /// Starts the stream again from `seed`.
    pub fn reset(&self, seed: u64) {
        self.state.store(seed, Ordering::Relaxed);
    }
}

impl Entropy for FuzzEntropy {
    fn fill(&self, buffer: &mut [u8]) -> bool {
        for chunk in buffer.chunks_mut(8) {
            let mut z =
                self.state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed).wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        true
    }
}

/// The entropy every fuzzed server and client uses.
pub static ENTROPY: FuzzEntropy = FuzzEntropy { state: AtomicU64::new(0) };

/// A job's view of the fuzzed device: its input, the scripted clock, fixed random bytes.
pub struct FuzzHost {
    input: Vec<u8>,
    clock: Arc<AtomicU64>,
}

impl Host for FuzzHost {
    fn input_len(&self) -> usize {
        self.input.len()
    }
    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let rest = self.input.get(offset..).unwrap_or(&[]);
        let count = rest.len().min(buffer.len());
        buffer[..count].copy_from_slice(&rest[..count]);
        count
    }
    fn time_us(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
        buffer.fill(0x42);
        Ok(())
    }
}

/// The fuzzed board: the scripted clock, and native jobs that run `steps` steps and end with
/// exit value 0 (there is no ARM CPU here). It checks the server's promise to run one native
/// job at a time.
pub struct FuzzPlatform {
    clock: Arc<AtomicU64>,
    native: Option<u32>,
}

impl Platform for FuzzPlatform {
    type Host = FuzzHost;

    fn host(&mut self, input: Vec<u8>) -> FuzzHost {
        FuzzHost { input, clock: Arc::clone(&self.clock) }
    }

    fn runs_native(&self) -> bool {
        true
    }

    fn start_native(&mut self, blob: &[u8], _: &[u8], _: &Limits, _: Capabilities) -> Result<(), JobResult> {
        assert!(self.native.is_none(), "a second native job started before the first ended");
        self.native = Some(blob.len() as u32 % 3);
        Ok(())
    }

    fn step_native(&mut self) -> StepOutcome {
        match self.native.as_mut() {
            Some(left) if *left > 0 => {
                *left -= 1;
                StepOutcome::Running
            }
            Some(_) => {
                self.native = None;
                StepOutcome::Finished(JobResult {
                    status: jos_runtime::JobStatus::Ok,
                    error: None,
                    exit_value: Some(0),
                    values: Vec::new(),
                    output: Vec::new(),
                    logs: Vec::new(),
                    stats: jos_runtime::Stats::default(),
                })
            }
            None => panic!("a native step without a native job"),
        }
    }

    fn abort_native(&mut self) {
        assert!(self.native.take().is_some(), "abort without a native job");
    }

    fn free_memory(&self) -> u32 {
        8 << 20
    }

    fn now_us(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }
}

/// Reads the script: bytes, numbers, and zeros once it is used up.
struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn done(&self) -> bool {
        self.bytes.is_empty()
    }
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.bytes.split_first() else { return 0 };
        self.bytes = rest;
        first
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.iter_mut().for_each(|byte| *byte = self.byte());
        u64::from_le_bytes(bytes)
    }
    fn take(&mut self, len: usize) -> &[u8] {
        let (taken, rest) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }
}

/// The script's operations (the first byte of each, modulo their count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// A new connection.
    Connect = 0,
    /// `session, key, splits, split positions...`: a Noise handshake (key 0 and 1 trusted,
    /// 2 a stranger, 3 the device's own) delivered in pieces.
    Handshake = 1,
    /// `session, len u16, bytes...`: arbitrary plaintext, encrypted when the session is open
    /// (else in a clear frame), delivered in two pieces.
    Seal = 2,
    /// `session, nonce`: a Ping.
    Ping = 3,
    /// `session, module, chunk u16, flags, limits...`: PushBegin, chunks, PushEnd.
    Push = 4,
    /// `session, module, input len, input..., call, limits...`: an Invoke.
    Invoke = 5,
    /// `session, len u16, bytes...`: raw bytes on the connection.
    Raw = 6,
    /// `session`: the connection closes.
    Disconnect = 7,
    /// `kind, ...`: a valid probe with a nonce, or a raw datagram.
    Discovery = 8,
    /// `count, fuel u16, step u16`: polls, the clock moving `step` microseconds before each.
    Poll = 9,
    /// `session, count u16`: the client reads up to `count` bytes (0: all).
    Read = 10,
    /// `milliseconds u16`: the clock jumps (deadlines, progress).
    Clock = 11,
    /// `kind, ...`: a fleet job message from the broker ([`FleetKind`]).
    Fleet = 12,
}

const OPS: u8 = 13;

/// One connection as the scripted client sees it.
enum Client {
    /// No session from the client's side: the device may send a handshake answer only.
    Clear,
    /// A handshake answer came to bytes the client did not send as a handshake: frames are
    /// checked for shape only.
    Opaque,
    /// An authenticated session: every frame must decrypt.
    Open(Box<snow::TransportState>),
}

struct Connection {
    id: SessionId,
    client: Client,
    /// Device bytes not yet read.
    inbox: Vec<u8>,
    /// Bytes the script delivered, and bytes the device produced, on this connection.
    received: usize,
    produced: usize,
    /// Inputs of the echo invokes sent (an Ok result must echo one of them).
    inputs: Vec<Vec<u8>>,
    /// Hashes of modules pushed whole on this session.
    pushed: Vec<[u8; 32]>,
}

/// What the device was sent and did, to check its counters against.
#[derive(Default)]
struct Tally {
    handshakes_answered: u64,
    adverts: u64,
    push_oks_seen: u64,
    errors_seen: u64,
    results_seen: u64,
}

struct Harness {
    server: Server<FuzzPlatform>,
    clock: Arc<AtomicU64>,
    connections: Vec<Connection>,
    tally: Tally,
    last: Counters,
    /// Polls so far.
    polls: usize,
    /// Handshakes so far.
    handshakes: usize,
    /// The scripted fleet client.
    fleet: fleet::FleetClient,
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(MAX_FRAME_LEN)];
    let mut out = (payload.len() as u16).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn encode(message: &Message<'_>) -> Vec<u8> {
    let mut buffer = std::vec![0u8; message.buffer_len()];
    let len = message.emit(&mut buffer).expect("the script's messages are within the caps");
    buffer.truncate(len);
    buffer
}

/// Limits from the script: a flags byte, then a field for each flag set (zero fields take the
/// module's defaults, as on the wire).
fn limits(script: &mut Script<'_>) -> Limits {
    let flags = script.byte();
    let mut limits = Limits::default();
    if flags & 1 != 0 {
        limits.fuel = u64::from(script.u16()) * 16;
    }
    if flags & 2 != 0 {
        limits.memory = u32::from(script.byte()) * 16384;
    }
    if flags & 4 != 0 {
        limits.deadline_ms = u32::from(script.u16());
    }
    if flags & 8 != 0 {
        limits.output = u32::from(script.u16());
    }
    limits
}

impl Harness {
    fn new() -> Self {
        let clock = Arc::new(AtomicU64::new(1_000));
        let platform = FuzzPlatform { clock: Arc::clone(&clock), native: None };
        let mut server = Server::new(config(), options(), platform, &ENTROPY);
        server.set_fleet_key(Some(FLEET_SECRET));
        Harness {
            server,
            clock,
            connections: Vec::new(),
            tally: Tally::default(),
            last: Counters::default(),
            polls: 0,
            handshakes: 0,
            fleet: fleet::FleetClient::default(),
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn pick(&self, selector: u8) -> Option<usize> {
        (!self.connections.is_empty()).then(|| usize::from(selector) % self.connections.len())
    }

    /// Hands `bytes` to the device on connection `index`, in pieces cut at `cuts`.
    fn deliver(&mut self, index: usize, bytes: &[u8], cuts: &[u8]) {
        let id = self.connections[index].id;
        let mut points: Vec<usize> = cuts.iter().map(|&cut| usize::from(cut) * bytes.len() / 256).collect();
        points.sort_unstable();
        let mut start = 0;
        for point in points.into_iter().chain([bytes.len()]) {
            if point > start {
                self.server.receive(id, &bytes[start..point]);
                start = point;
            }
        }
        self.connections[index].received += bytes.len();
        self.collect(index);
    }

    /// Moves what the device queued on connection `index` into the client's inbox.
    fn collect(&mut self, index: usize) {
        let id = self.connections[index].id;
        let pending = self.server.pending(id).to_vec();
        self.server.consume(id, pending.len());
        let connection = &mut self.connections[index];
        connection.produced += pending.len();
        connection.inbox.extend_from_slice(&pending);
        // Progress messages come with polls, not with what the client sent: each poll counts.
        let allowance = AMPLIFICATION * (connection.received + self.polls) + 2 * (MAX_FRAME_LEN + FRAME_HEADER_LEN);
        assert!(
            connection.produced <= allowance,
            "session {:?} was sent {} bytes for the {} it sent",
            id,
            connection.produced,
            connection.received
        );
    }

    /// The client reads whole frames from connection `index`'s inbox, up to `limit` bytes.
    fn read(&mut self, index: usize, limit: usize) {
        let connection = &mut self.connections[index];
        let mut taken = 0;
        while let Ok(Some(len)) = wire::frame_len(&connection.inbox) {
            if taken + len > limit {
                break;
            }
            taken += len;
            let frame: Vec<u8> = connection.inbox.drain(..len).collect();
            let payload = &frame[FRAME_HEADER_LEN..];
            match &mut connection.client {
                Client::Clear => {
                    // Only a handshake answer, or the refusal of one, may come before a session.
                    assert!(
                        matches!(
                            Message::parse(payload),
                            Ok(Message::Hello { .. }
                                | Message::Error { code: ErrorCode::Busy | ErrorCode::PermissionDenied, .. })
                        ),
                        "an unauthenticated connection was sent something else than a Hello or a refusal"
                    );
                    connection.client = Client::Opaque;
                }
                Client::Opaque => {}
                Client::Open(transport) => {
                    let mut plain = std::vec![0u8; payload.len()];
                    let len =
                        transport.read_message(payload, &mut plain).expect("every device frame decrypts in order");
                    let message = Message::parse(&plain[..len]).expect("the device sends valid messages");
                    check_device_message(&message, &connection.inputs, &connection.pushed, &mut self.tally);
                }
            }
        }
        assert!(wire::frame_len(&connection.inbox).is_ok(), "the device sent an impossible frame header");
    }

    fn handshake(&mut self, index: usize, key: u8, cuts: &[u8]) {
        let secret = match key % 4 {
            0 => CLIENT_SECRETS[0],
            1 => CLIENT_SECRETS[1],
            2 => STRANGER_SECRET,
            _ => DEVICE_SECRET,
        };
        // The device's key, and each client's `ss` with it, once (X25519 dominates a run).
        static DEVICE: OnceLock<[u8; 32]> = OnceLock::new();
        static SHARED: OnceLock<[Arc<StaticShared>; 4]> = OnceLock::new();
        let device = *DEVICE.get_or_init(|| noise::public_key(&DEVICE_SECRET));
        let shared = SHARED.get_or_init(|| {
            [CLIENT_SECRETS[0], CLIENT_SECRETS[1], STRANGER_SECRET, DEVICE_SECRET]
                .map(|secret| Arc::new(StaticShared::new(&secret, &[noise::public_key(&DEVICE_SECRET)])))
        });
        let resolver = Resolver::with_shared(&ENTROPY, Arc::clone(&shared[usize::from(key % 4)]));
        let mut state = snow::Builder::with_resolver(noise::params(), Box::new(resolver))
            .local_private_key(&secret)
            .and_then(|builder| builder.remote_public_key(&device))
            .and_then(|builder| builder.prologue(noise::PROLOGUE))
            .and_then(|builder| builder.build_initiator())
            .expect("an initiator builds");
        let mut message = [0u8; 256];
        let len = state.write_message(&[], &mut message).expect("a first handshake message");
        let hello = frame(&encode(&Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &message[..len] }));
        if !self.connections[index].inbox.is_empty() {
            // Bytes from before this handshake: read (and check) them first.
            self.read(index, usize::MAX);
        }
        let was_clear = matches!(self.connections[index].client, Client::Clear);
        let before = self.connections[index].inbox.len();
        self.deliver(index, &hello, cuts);
        if !was_clear || self.connections[index].inbox.len() == before {
            return;
        }
        // An answer: the handshake's second message for a trusted key only; an untrusted key is
        // told `PermissionDenied`; any key may be told `Busy` (evicted for a newer connection,
        // or the Hello rate limit).
        let connection = &mut self.connections[index];
        let len = wire::frame_len(&connection.inbox).ok().flatten().expect("a whole answer frame");
        let answer: Vec<u8> = connection.inbox.drain(..len).collect();
        let trusted = key % 4 < 2;
        let handshake = match Message::parse(&answer[FRAME_HEADER_LEN..]) {
            Ok(Message::Hello { handshake, .. }) => {
                assert!(trusted, "the device answered the handshake of an untrusted key");
                handshake
            }
            Ok(Message::Error { code: ErrorCode::PermissionDenied, .. }) => {
                assert!(!trusted, "a trusted key was told PermissionDenied");
                connection.client = Client::Opaque;
                assert!(connection.inbox.is_empty(), "the device sent more than its refusal");
                return;
            }
            Ok(Message::Error { code: ErrorCode::Busy, .. }) => {
                connection.client = Client::Opaque;
                assert!(connection.inbox.is_empty(), "the device sent more than its refusal");
                return;
            }
            other => panic!("the handshake answer is neither a Hello nor a refusal: {other:?}"),
        };
        let mut payload = [0u8; 64];
        state.read_message(handshake, &mut payload).expect("the device's handshake answer verifies");
        connection.client = Client::Open(Box::new(state.into_transport_mode().expect("transport mode")));
        self.tally.handshakes_answered += 1;
        assert!(connection.inbox.is_empty(), "the device sent more than its answer to a Hello");
    }

    /// Encrypts `message` for connection `index` (or frames it in clear when the client has no
    /// session) and delivers it in pieces.
    fn send(&mut self, index: usize, plain: &[u8], cuts: &[u8]) {
        let bytes = match &mut self.connections[index].client {
            Client::Open(transport) => {
                let mut cipher = std::vec![0u8; plain.len() + wire::NOISE_TAG_LEN];
                let len = transport.write_message(plain, &mut cipher).expect("a message within the cap encrypts");
                frame(&cipher[..len])
            }
            _ => frame(plain),
        };
        self.deliver(index, &bytes, cuts);
    }

    fn step(&mut self, op: u8, script: &mut Script<'_>) {
        match op % OPS {
            0 => {
                let crowded = self.server.status().sessions >= 2 * options().max_sessions;
                match self.server.connect() {
                    Some(id) => {
                        assert!(!crowded, "a connection was taken while twice the session limit is closing");
                        self.connections.push(Connection {
                            id,
                            client: Client::Clear,
                            inbox: Vec::new(),
                            received: 0,
                            produced: 0,
                            inputs: Vec::new(),
                            pushed: Vec::new(),
                        });
                    }
                    None => {
                        assert!(crowded, "a connection was refused without an answer below twice the session limit")
                    }
                }
            }
            1 => {
                let (selector, key, splits) = (script.byte(), script.byte(), script.byte() % 4);
                let cuts = script.take(usize::from(splits)).to_vec();
                // X25519 dominates a run: a few handshakes per script reach every path.
                if let (Some(index), true) = (self.pick(selector), self.handshakes < MAX_HANDSHAKES) {
                    self.handshakes += 1;
                    self.handshake(index, key, &cuts);
                }
            }
            2 => {
                let selector = script.byte();
                let len = usize::from(script.u16()) % (MAX_MESSAGE_LEN + 1);
                let plain = script.take(len).to_vec();
                let cut = [script.byte()];
                if let Some(index) = self.pick(selector) {
                    // A sealed message that is a well-formed push or invoke counts as one.
                    if matches!(self.connections[index].client, Client::Open(_)) {
                        match Message::parse(&plain) {
                            Ok(Message::Invoke { input, call: None, .. }) => {
                                self.connections[index].inputs.push(input.to_vec())
                            }
                            Ok(Message::PushBegin { sha256, .. }) => self.connections[index].pushed.push(sha256),
                            _ => {}
                        }
                    }
                    self.send(index, &plain, &cut);
                }
            }
            3 => {
                let (selector, nonce) = (script.byte(), u64::from(script.byte()));
                if let Some(index) = self.pick(selector) {
                    self.send(index, &encode(&Message::Ping { nonce }), &[]);
                }
            }
            4 => self.push(script),
            5 => self.invoke(script),
            6 => {
                let selector = script.byte();
                let len = usize::from(script.u16()) % 4096;
                let bytes = script.take(len).to_vec();
                if let Some(index) = self.pick(selector) {
                    let id = self.connections[index].id;
                    self.server.receive(id, &bytes);
                    self.connections[index].received += bytes.len();
                    self.collect(index);
                    // The stream is no longer the client's: its later frames are shapes only.
                    if !matches!(self.connections[index].client, Client::Clear) {
                        self.read(index, usize::MAX);
                        self.connections[index].client = Client::Opaque;
                    }
                }
            }
            7 => {
                if let Some(index) = self.pick(script.byte()) {
                    let connection = self.connections.swap_remove(index);
                    self.server.disconnect(connection.id);
                }
            }
            8 => self.discovery(script),
            9 => {
                let (count, fuel, step) = (script.byte() % 8 + 1, script.u16(), script.u16());
                for _ in 0..count {
                    self.clock.fetch_add(u64::from(step), Ordering::Relaxed);
                    self.server.expire();
                    self.server.poll_slice(self.now(), u64::from(fuel).max(1));
                    self.polls += 1;
                }
                for index in 0..self.connections.len() {
                    self.collect(index);
                }
                self.fleet_drain();
            }
            10 => {
                let (selector, count) = (script.byte(), script.u16());
                if let Some(index) = self.pick(selector) {
                    self.collect(index);
                    self.read(index, if count == 0 { usize::MAX } else { usize::from(count) });
                }
            }
            11 => {
                self.clock.fetch_add(u64::from(script.u16()) * 1000, Ordering::Relaxed);
                self.server.expire();
            }
            _ => self.fleet(script),
        }
        self.reap();
        self.check();
    }

    /// What the kernel does with connections the device ended: one it wants reset is dropped at
    /// once; one it wants closed gets its last bytes read by the client, then goes.
    fn reap(&mut self) {
        let mut index = 0;
        while index < self.connections.len() {
            let id = self.connections[index].id;
            if self.server.wants_abort(id) {
                self.server.disconnect(id);
                self.connections.swap_remove(index);
            } else if self.server.wants_close(id) {
                self.collect(index);
                self.read(index, usize::MAX);
                self.server.disconnect(id);
                self.connections.swap_remove(index);
            } else {
                index += 1;
            }
        }
        let open = self.connections.len();
        assert!(open <= options().max_sessions, "{open} connections open past the session limit");
    }

    fn push(&mut self, script: &mut Script<'_>) {
        let (selector, module) = (script.byte(), usize::from(script.byte()) % modules().len());
        let chunk = (usize::from(script.u16()) % MAX_CHUNK_LEN).max(1);
        let flags = script.byte();
        let limits = limits(script);
        let cut = [script.byte()];
        let Some(index) = self.pick(selector) else { return };
        let (format, bytes) = &modules()[module];
        let mut sha = sha256(bytes);
        if flags & 1 != 0 {
            sha[0] ^= 1;
        }
        let mut plain = Vec::new();
        let mut messages = std::vec![encode(&Message::PushBegin {
            format: *format,
            total_len: bytes.len() as u32,
            sha256: sha,
            limits
        })];
        for (number, piece) in bytes.chunks(chunk).enumerate() {
            let offset = if flags & 4 != 0 && number == 1 { 1 } else { number * chunk };
            messages.push(encode(&Message::PushChunk { offset: offset as u32, bytes: piece }));
        }
        if flags & 2 == 0 {
            messages.push(encode(&Message::PushEnd));
        }
        // A push with the right hash may complete (a wrong offset past the last chunk, or a
        // PushEnd sent later as a sealed message): its PushOk is expected.
        if flags & 1 == 0 {
            self.connections[index].pushed.push(sha);
        }
        for message in messages {
            plain.clear();
            plain.extend_from_slice(&message);
            self.send(index, &plain, &cut);
        }
    }

    fn invoke(&mut self, script: &mut Script<'_>) {
        let (selector, module) = (script.byte(), usize::from(script.byte()) % (modules().len() + 1));
        let len = usize::from(script.byte()) * 4;
        let input = script.take(len).to_vec();
        let call_kind = script.byte() % 3;
        let (a, b) = (i64::from(script.byte() as i8), i64::from(script.byte() as i8));
        let name_len = usize::from(script.byte() % 16);
        let name = String::from_utf8_lossy(script.take(name_len)).into_owned();
        let limits = limits(script);
        let hash = match modules().get(module) {
            Some((_, bytes)) => sha256(bytes),
            None => {
                let mut hash = [0u8; 32];
                hash[..8].copy_from_slice(&script.u64().to_le_bytes());
                hash
            }
        };
        let Some(index) = self.pick(selector) else { return };
        let call = match call_kind {
            0 => None,
            1 => Call::new("add", &[a, b]),
            _ => Call::new(&name, &[a]),
        };
        if call.is_none() {
            self.connections[index].inputs.push(input.clone());
        }
        let message = encode(&Message::Invoke { hash, limits, input: &input, call });
        self.send(index, &message, &[]);
    }

    fn discovery(&mut self, script: &mut Script<'_>) {
        let datagram = if script.byte().is_multiple_of(2) {
            let mut probe = [0u8; PROBE_LEN];
            Probe { nonce: script.u64() }.emit(&mut probe).expect("a probe fits");
            probe.to_vec()
        } else {
            let len = usize::from(script.byte());
            script.take(len).to_vec()
        };
        let mut reply = std::vec![0u8; Server::<FuzzPlatform>::MAX_ADVERT_LEN];
        let limited = self.server.counters().probes_rate_limited;
        let answer = self.server.discovery(&datagram, &mut reply);
        match Probe::parse(&datagram) {
            Ok(probe) => {
                // A valid probe is answered unless the probe budget is spent, which is counted.
                let Some(len) = answer else {
                    assert_eq!(
                        self.server.counters().probes_rate_limited,
                        limited + 1,
                        "a valid probe went unanswered without the rate limit"
                    );
                    return;
                };
                let advert = Advert::new_checked(&reply[..len]).expect("the device's advert checks");
                assert!(advert.verify_signature(), "the advert's signature verifies");
                let repr = AdvertRepr::parse(&advert).expect("a checked advert parses");
                assert_eq!(repr.nonce, probe.nonce);
                assert_eq!(repr.name, "fuzz-device");
                assert_eq!(repr.noise_key, self.server.config().noise_public_key());
                self.tally.adverts += 1;
            }
            Err(_) => assert!(answer.is_none(), "a datagram that is no probe was answered"),
        }
    }

    /// The invariants that hold after every step.
    fn check(&mut self) {
        let status = self.server.status();
        let counters = status.counters;
        assert_eq!(status.sessions, self.connections.len(), "sessions and connections differ");
        assert!(status.queued <= usize::from(QUEUE_LEN), "the queue grew past the policy");
        let before = [
            self.last.dropped_unauthenticated,
            self.last.replays_refused,
            self.last.sessions_opened,
            self.last.sessions_killed,
            self.last.errors_sent,
            self.last.pushes_ok,
            self.last.jobs_ok,
            self.last.jobs_failed,
            self.last.jobs_aborted,
            self.last.adverts_sent,
        ];
        let after = [
            counters.dropped_unauthenticated,
            counters.replays_refused,
            counters.sessions_opened,
            counters.sessions_killed,
            counters.errors_sent,
            counters.pushes_ok,
            counters.jobs_ok,
            counters.jobs_failed,
            counters.jobs_aborted,
            counters.adverts_sent,
        ];
        assert!(
            before.iter().zip(after).all(|(old, new)| *old <= new),
            "a counter went back: {:?} -> {counters:?}",
            self.last
        );
        assert_eq!(counters.adverts_sent, self.tally.adverts, "adverts counted");
        assert!(counters.sessions_opened >= self.tally.handshakes_answered, "sessions opened");
        assert!(counters.pushes_ok >= self.tally.push_oks_seen && counters.errors_sent >= self.tally.errors_seen);
        assert!(counters.jobs_ok + counters.jobs_failed >= self.tally.results_seen, "job results counted");
        assert!(counters.jobs_aborted <= counters.jobs_failed, "aborted jobs count as failed");
        self.last = counters;
        self.fleet_check();
    }

    /// Reads everything, runs every job out, closes every connection: nothing may be left.
    fn finish(&mut self) {
        for _ in 0..200 {
            if self.server.status().current.is_none() && self.server.status().queued == 0 {
                break;
            }
            self.clock.fetch_add(10_000, Ordering::Relaxed);
            self.server.poll_slice(self.now(), options().slice_fuel);
            self.polls += 1;
            for index in 0..self.connections.len() {
                self.collect(index);
                self.read(index, usize::MAX);
            }
            self.fleet_drain();
        }
        let status = self.server.status();
        assert!(status.current.is_none() && status.queued == 0, "jobs still there after 200 polls: {status:?}");
        for index in 0..self.connections.len() {
            self.collect(index);
            self.read(index, usize::MAX);
        }
        self.check();
        self.fleet_finish();
        for connection in self.connections.drain(..) {
            self.server.disconnect(connection.id);
        }
        let status = self.server.status();
        assert_eq!(status.sessions, 0);
        assert!(status.current.is_none() && status.queued == 0);
        assert_eq!(self.server.poll(self.now() + 1), crate::Slice::Idle, "nothing runs without sessions");
    }
}

fn check_device_message(message: &Message<'_>, inputs: &[Vec<u8>], pushed: &[[u8; 32]], tally: &mut Tally) {
    match message {
        Message::PushOk { sha256 } => {
            assert!(pushed.contains(sha256), "PushOk for a module this session did not push whole");
            tally.push_oks_seen += 1;
        }
        Message::Error { code, message } => {
            assert!(*code as u32 != 0 && message.len() <= wire::MAX_ERROR_MESSAGE_LEN);
            tally.errors_seen += 1;
        }
        Message::Pong { .. } | Message::Progress { .. } => {}
        Message::JobResult { status, exit_value, output, results, .. } => {
            tally.results_seen += 1;
            if *status == JobStatus::Ok {
                let values: Vec<Value> = results.iter().collect();
                match values.as_slice() {
                    // An entry-point run: the echo module's output is an input it was sent;
                    // the native job's is empty.
                    [] => {
                        assert_eq!(*exit_value as usize, output.len(), "exit value and output length");
                        assert!(
                            output.is_empty() || inputs.iter().any(|input| input == output),
                            "output is no input sent"
                        );
                    }
                    [Value::I64(_)] => assert!(output.is_empty(), "add writes no output"),
                    other => panic!("unexpected call results {other:?}"),
                }
            }
        }
        other => panic!("the device sent a message only clients send: kind {}", other.kind()),
    }
}

/// The fuzz body: runs `data` as a script against a fresh server (see the module's summary).
pub fn server(data: &[u8]) {
    run(data);
}

/// Runs `data` as a script (at most 256 operations) and returns the device's counters at the
/// end, for tests that check where a script reached.
pub fn run(data: &[u8]) -> Counters {
    run_with_fleet(data).0
}

/// As [`run`], with the device's fleet counters too.
pub fn run_with_fleet(data: &[u8]) -> (Counters, FleetCounters) {
    // The entropy source is one static stream: two runs at once (parallel host tests) would
    // interleave their draws, and a script would no longer replay (the same ephemeral key drawn
    // twice reads as a replayed handshake). One run at a time; a run that panicked leaves the
    // lock usable.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    ENTROPY.reset(0x6a6f_735f_7365_7276);
    let mut harness = Harness::new();
    let mut script = Script { bytes: data };
    let mut steps = 0;
    while !script.done() && steps < 256 {
        let op = script.byte();
        harness.step(op, &mut script);
        steps += 1;
    }
    harness.finish();
    (harness.server.counters(), harness.server.fleet_counters())
}

/// Builds scripts (the seed corpus, and tests).
#[derive(Clone, Debug, Default)]
pub struct ScriptBuilder {
    bytes: Vec<u8>,
}

impl ScriptBuilder {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }
    fn op(mut self, op: Op, operands: &[u8]) -> Self {
        self.bytes.push(op as u8);
        self.bytes.extend_from_slice(operands);
        self
    }
    /// A connection.
    pub fn connect(self) -> Self {
        self.op(Op::Connect, &[])
    }
    /// A handshake with key `key` (0, 1 trusted; 2 stranger; 3 the device's) in pieces cut at
    /// `cuts` (each 0..=255 of the Hello's length; at most 3).
    pub fn handshake(self, session: u8, key: u8, cuts: &[u8]) -> Self {
        let mut operands = std::vec![session, key, cuts.len() as u8];
        operands.extend_from_slice(cuts);
        self.op(Op::Handshake, &operands)
    }
    /// Arbitrary plaintext, encrypted when the session is open.
    pub fn seal(self, session: u8, plain: &[u8], cut: u8) -> Self {
        let mut operands = std::vec![session];
        operands.extend_from_slice(&(plain.len() as u16).to_le_bytes());
        operands.extend_from_slice(plain);
        operands.push(cut);
        self.op(Op::Seal, &operands)
    }
    /// A Ping.
    pub fn ping(self, session: u8, nonce: u8) -> Self {
        self.op(Op::Ping, &[session, nonce])
    }
    /// A push of module `module` in chunks of `chunk` bytes; `flags` bit 0 a wrong SHA-256,
    /// bit 1 no PushEnd, bit 2 a chunk at a wrong offset.
    pub fn push(self, session: u8, module: u8, chunk: u16, flags: u8) -> Self {
        let mut operands = std::vec![session, module];
        operands.extend_from_slice(&chunk.to_le_bytes());
        operands.extend_from_slice(&[flags, 0, 0x80]);
        self.op(Op::Push, &operands)
    }
    /// An Invoke of module `module` (4: an unknown hash) with `input` (a multiple of 4 bytes,
    /// at most 1020), as a call of `add(a, b)` when `call`.
    pub fn invoke(self, session: u8, module: u8, input: &[u8], call: bool, a: i8, b: i8) -> Self {
        let mut operands = std::vec![session, module, (input.len() / 4) as u8];
        operands.extend_from_slice(input);
        operands.extend_from_slice(&[u8::from(call), a as u8, b as u8, 0, 0]);
        if module >= 4 {
            operands.extend_from_slice(&[7; 8]);
        }
        self.op(Op::Invoke, &operands)
    }
    /// Raw bytes on the connection.
    pub fn raw(self, session: u8, bytes: &[u8]) -> Self {
        let mut operands = std::vec![session];
        operands.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        operands.extend_from_slice(bytes);
        self.op(Op::Raw, &operands)
    }
    /// The connection closes.
    pub fn disconnect(self, session: u8) -> Self {
        self.op(Op::Disconnect, &[session])
    }
    /// A valid probe.
    pub fn probe(self, nonce: u64) -> Self {
        let mut operands = std::vec![0];
        operands.extend_from_slice(&nonce.to_le_bytes());
        self.op(Op::Discovery, &operands)
    }
    /// A datagram that may be anything.
    pub fn datagram(self, bytes: &[u8]) -> Self {
        let mut operands = std::vec![1, bytes.len() as u8];
        operands.extend_from_slice(bytes);
        self.op(Op::Discovery, &operands)
    }
    /// `count` polls of `fuel`, the clock moving `step` microseconds before each.
    pub fn poll(self, count: u8, fuel: u16, step: u16) -> Self {
        let mut operands = std::vec![count.saturating_sub(1)];
        operands.extend_from_slice(&fuel.to_le_bytes());
        operands.extend_from_slice(&step.to_le_bytes());
        self.op(Op::Poll, &operands)
    }
    /// The client reads everything.
    pub fn read(self, session: u8) -> Self {
        self.op(Op::Read, &[session, 0, 0])
    }
    /// The clock jumps `milliseconds`.
    pub fn clock(self, milliseconds: u16) -> Self {
        self.op(Op::Clock, &milliseconds.to_le_bytes())
    }
    /// A fleet job message from the broker.
    pub fn fleet(self, message: FleetMessage<'_>) -> Self {
        self.op(Op::Fleet, &message.operands())
    }
    /// The script's bytes.
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }
}

/// The seed corpus of the `server` target: each a script that reaches somewhere deep.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let open = || ScriptBuilder::new().connect().handshake(0, 0, &[]);
    std::vec![
        (
            "push-invoke",
            open().push(0, 0, 512, 0).read(0).invoke(0, 0, b"Echo", false, 0, 0).poll(4, 20_000, 100).read(0).build()
        ),
        ("call", open().push(0, 0, 4096, 0).invoke(0, 0, b"", true, 40, 2).poll(2, 20_000, 10).read(0).build()),
        ("native", open().push(0, 2, 64, 0).invoke(0, 2, b"jos!", false, 0, 0).poll(4, 1000, 10).read(0).build()),
        (
            "spin-abort",
            open()
                .push(0, 3, 32, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .poll(3, 5000, 2000)
                .read(0)
                .disconnect(0)
                .poll(1, 5000, 10)
                .build()
        ),
        ("untrusted-signer", open().push(0, 1, 256, 0).read(0).build()),
        (
            "bad-push",
            open()
                .push(0, 0, 100, 1)
                .push(0, 0, 100, 4)
                .push(0, 0, 100, 2)
                .invoke(0, 4, b"", false, 0, 0)
                .read(0)
                .build()
        ),
        (
            "split-handshakes",
            ScriptBuilder::new()
                .connect()
                .connect()
                .handshake(0, 1, &[10, 100, 200])
                .handshake(1, 2, &[50])
                .ping(0, 9)
                .read(0)
                .build()
        ),
        ("garbage-message", open().seal(0, &[0x0a, 0xff, 0xff, 1, 2], 128).seal(0, b"", 0).ping(0, 1).read(0).build()),
        ("raw-after-open", open().ping(0, 3).raw(0, &[0x05, 0x00, 1, 2, 3, 4, 5]).read(0).build()),
        (
            "clear-garbage",
            ScriptBuilder::new().connect().raw(0, &[0, 0, 0xff, 0xff]).connect().seal(1, b"\x01\x00", 0).build()
        ),
        (
            "full",
            ScriptBuilder::new().connect().connect().connect().connect().connect().disconnect(2).connect().build()
        ),
        ("deadlines", ScriptBuilder::new().connect().clock(6_000).connect().handshake(0, 0, &[]).clock(31_000).build()),
        ("discovery", ScriptBuilder::new().probe(42).datagram(b"JOSD\x01\x01\0\0").datagram(&[]).build()),
        (
            "queue",
            open()
                .push(0, 3, 8192, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .invoke(0, 3, b"", false, 0, 0)
                .clock(3000)
                .poll(8, 20_000, 1000)
                .read(0)
                .build()
        ),
        (
            "fleet-job",
            ScriptBuilder::new()
                .fleet(FleetMessage::Inline { module: 0, input: b"fleet echo" })
                .poll(4, 20_000, 100)
                .fleet(FleetMessage::Cached { module: 0, input: b"cached" })
                .poll(4, 20_000, 100)
                .fleet(FleetMessage::Call { module: 0, a: 40, b: 2 })
                .poll(4, 20_000, 100)
                .build()
        ),
        (
            "fleet-after-push",
            open()
                .push(0, 0, 4096, 0)
                .fleet(FleetMessage::Cached { module: 0, input: b"pushed" })
                .poll(4, 20_000, 100)
                .read(0)
                .build()
        ),
        (
            "fleet-replay",
            ScriptBuilder::new()
                .fleet(FleetMessage::Inline { module: 0, input: b"once" })
                .fleet(FleetMessage::Replay)
                .poll(4, 20_000, 100)
                .clock(2)
                .fleet(FleetMessage::Expired { module: 0, ago: 10 })
                .build()
        ),
        (
            "fleet-refusals",
            ScriptBuilder::new()
                .fleet(FleetMessage::AlteredSeal { module: 0, offset: 40, mask: 1 })
                .fleet(FleetMessage::AlteredSigned { module: 0, offset: 30, mask: 0x80 })
                .fleet(FleetMessage::UnknownSigner { module: 0 })
                .fleet(FleetMessage::Bytes(b"JOSJ\x01\x01"))
                .fleet(FleetMessage::Cached { module: 9, input: b"" })
                .poll(2, 20_000, 100)
                .build()
        ),
        (
            "fleet-modules",
            ScriptBuilder::new()
                .fleet(FleetMessage::Inline { module: 1, input: b"" })
                .fleet(FleetMessage::Inline { module: 2, input: b"jos!" })
                .fleet(FleetMessage::Inline { module: 3, input: b"" })
                .poll(8, 20_000, 2000)
                .build()
        ),
    ]
}

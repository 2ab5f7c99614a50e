//! Shared pieces of the host tests: keys, a test platform, modules, and a snow initiator client.
#![allow(dead_code)]

use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Table};
use jos_abi::config::Policy;
use jos_abi::job::Value;
use jos_abi::signature::{public_key, sign_blob, sign_wasm, SignerRights, TrustedSigner};
use jos_abi::wire::{self, Format, Limits, Message};
use jos_abi::AbiVersion;
use jos_offload::host::HostPlatform;
use jos_offload::noise::{self, Resolver};
use jos_offload::{DeviceConfig, OsEntropy, Platform, Server, ServerOptions, SessionId};
use jos_runtime::StdHost;

/// Device's Noise secret.
pub const DEVICE_SECRET: [u8; 32] = [0x11; 32];
/// A trusted client's Noise secret.
pub const CLIENT_SECRET: [u8; 32] = [0x22; 32];
/// A second trusted client.
pub const CLIENT2_SECRET: [u8; 32] = [0x23; 32];
/// A client the device does not know.
pub const STRANGER_SECRET: [u8; 32] = [0x33; 32];
/// Signer with every right (both formats, every capability).
pub const DEVELOPER: [u8; 32] = [7; 32];
/// Signer with the wasm right only.
pub const WASM_ONLY: [u8; 32] = [8; 32];
/// A signer trusted for native blobs whose jobs get the network capability only.
pub const NATIVE_NET: [u8; 32] = [9; 32];
/// Signer the device does not know.
pub const UNKNOWN_SIGNER: [u8; 32] = [9; 32];
/// Policy's module cap in tests.
pub const MAX_MODULE: u32 = 4 * 1024 * 1024;

pub static ENTROPY: OsEntropy = OsEntropy;

pub fn config() -> DeviceConfig {
    config_with_fuel(50_000_000)
}

pub fn config_with_fuel(fuel: u64) -> DeviceConfig {
    DeviceConfig {
        name: "test-device".into(),
        noise_secret: DEVICE_SECRET,
        advert_seed: [0x44; 32],
        clients: vec![noise::public_key(&CLIENT_SECRET), noise::public_key(&CLIENT2_SECRET)],
        signers: vec![
            TrustedSigner { public_key: public_key(&DEVELOPER), rights: SignerRights::ALL },
            TrustedSigner { public_key: public_key(&WASM_ONLY), rights: SignerRights::WASM },
            TrustedSigner { public_key: public_key(&NATIVE_NET), rights: SignerRights::NATIVE | SignerRights::NETWORK },
        ],
        policy: Policy {
            max_module_len: MAX_MODULE,
            limits: Limits { fuel, memory: 16 * 65536, deadline_ms: 20_000, output: 32 * 1024 },
            queue_len: 16,
            job_ports: jos_abi::config::PortRange::DEFAULT,
        },
    }
}

/// The host-test platform: wasm jobs get a `StdHost`; native blobs are accepted at push (so
/// signer rights are checked) but not run (no ARM CPU here): a "native job" reports the
/// capabilities the server granted as its exit value (bit 0 network, bit 1 screen, bit 2 gpio)
/// after `native_steps` steps that answer `Running`, as a preempted blob's do.
pub struct TestPlatform {
    /// The host platform (wasm hosts, clock, free memory).
    pub host: HostPlatform,
    /// Steps a native job answers `Running` before it finishes.
    pub native_steps: u32,
    /// The current native job: its capability bits and the steps it has left.
    pub native: Option<(i32, u32)>,
    /// Native jobs started, stepped and aborted.
    pub started: u32,
    pub steps: u32,
    pub aborted: u32,
    /// Microseconds added to the host clock ([`TestPlatform::advance`]): deadlines without
    /// waiting.
    pub skip_us: u64,
    /// When set, the host clock stands still at this reading (only [`TestPlatform::advance`]
    /// moves time): for tests that count what a rate limit lets through, which a loaded host
    /// would otherwise refill while they run.
    pub frozen_us: Option<u64>,
}

impl TestPlatform {
    /// Moves the platform clock `us` microseconds ahead.
    pub fn advance(&mut self, us: u64) {
        self.skip_us += us;
    }
}

/// A [`TestPlatform`] value.
pub fn platform() -> TestPlatform {
    TestPlatform {
        host: HostPlatform::accepting_native(),
        native_steps: 0,
        native: None,
        started: 0,
        steps: 0,
        aborted: 0,
        skip_us: 0,
        frozen_us: None,
    }
}

impl Platform for TestPlatform {
    type Host = StdHost;

    fn host(&mut self, input: Vec<u8>) -> StdHost {
        self.host.host(input)
    }

    fn runs_native(&self) -> bool {
        self.host.runs_native()
    }

    fn start_native(
        &mut self,
        _blob: &[u8],
        _input: &[u8],
        _limits: &Limits,
        capabilities: jos_runtime::Capabilities,
    ) -> Result<(), jos_runtime::JobResult> {
        assert!(self.native.is_none(), "a second native job started before the first ended");
        let bits =
            i32::from(capabilities.network) | i32::from(capabilities.screen) << 1 | i32::from(capabilities.gpio) << 2;
        self.native = Some((bits, self.native_steps));
        self.started += 1;
        Ok(())
    }

    fn step_native(&mut self) -> jos_runtime::StepOutcome {
        self.steps += 1;
        match self.native.as_mut() {
            Some((_, left)) if *left > 0 => {
                *left -= 1;
                jos_runtime::StepOutcome::Running
            }
            Some(&mut (bits, _)) => {
                self.native = None;
                jos_runtime::StepOutcome::Finished(jos_runtime::JobResult {
                    status: jos_runtime::JobStatus::Ok,
                    error: None,
                    exit_value: Some(bits),
                    values: Vec::new(),
                    output: Vec::new(),
                    logs: Vec::new(),
                    stats: jos_runtime::Stats::default(),
                })
            }
            None => panic!("step without a native job"),
        }
    }

    fn abort_native(&mut self) {
        assert!(self.native.take().is_some(), "abort without a native job");
        self.aborted += 1;
    }

    fn free_memory(&self) -> u32 {
        self.host.free_memory()
    }

    fn now_us(&self) -> u64 {
        self.frozen_us.unwrap_or_else(|| self.host.now_us()) + self.skip_us
    }
}

pub fn server(options: ServerOptions) -> Server<TestPlatform> {
    Server::new(config(), options, platform(), &ENTROPY)
}

/// A [`server`] whose clock moves only by [`TestPlatform::advance`].
pub fn frozen_server(options: ServerOptions) -> Server<TestPlatform> {
    let mut platform = platform();
    platform.frozen_us = Some(platform.host.now_us());
    Server::new(config(), options, platform, &ENTROPY)
}

pub fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid wat")
}

/// Echoes its input to its output, returns the input length.
pub const ECHO: &str = r#"
(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (local.get $n)))
"#;

/// Never ends.
pub const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

/// `module` with a custom section appended.
pub fn with_custom(mut module: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut value: usize) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(&mut body, name.len());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    module.push(0);
    leb(&mut module, body.len());
    module.extend(body);
    module
}

pub fn signed_wasm(text: &str, seed: &[u8; 32]) -> Vec<u8> {
    sign_wasm(&wasm(text), seed, true).expect("signs")
}

/// A minimal well-formed ARMv6 blob (`mov r0, #7; bx lr`), signed by `seed`.
pub fn signed_blob(seed: &[u8; 32], abi: AbiVersion) -> Vec<u8> {
    signed_blob_from(seed, abi, None)
}

/// [`signed_blob`], marked AOT with `wasm_source` as its source module's SHA-256 when given.
pub fn signed_blob_from(seed: &[u8; 32], abi: AbiVersion, wasm_source: Option<[u8; 32]>) -> Vec<u8> {
    const TEXT: [u8; 8] = [0x07, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1];
    let repr = BlobRepr {
        abi_version: abi,
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
        wasm_source,
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).expect("emits");
    sign_blob(&bytes, seed, true).expect("signs")
}

/// An owned decoded message (enough of it for the tests).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    PushOk([u8; 32]),
    Error(u32, String),
    Pong(u64),
    Progress(u64),
    Result { status: wire::JobStatus, exit_value: i32, output: Vec<u8>, results: Vec<Value>, logs: Vec<String> },
    Other(u8),
}

thread_local! {
    /// The engine the last JobResult [`reply`] decoded on this thread named.
    pub static LAST_ENGINE: std::cell::Cell<Option<wire::Engine>> = const { std::cell::Cell::new(None) };
}

pub fn reply(bytes: &[u8]) -> Reply {
    let message = Message::parse(bytes).expect("device sends valid messages");
    if let Message::JobResult { stats, .. } = message {
        LAST_ENGINE.with(|engine| engine.set(Some(stats.engine)));
    }
    match message {
        Message::PushOk { sha256 } => Reply::PushOk(sha256),
        Message::Error { code, message } => Reply::Error(code as u32, message.into()),
        Message::Pong { nonce } => Reply::Pong(nonce),
        Message::Progress { fuel_used, .. } => Reply::Progress(fuel_used),
        Message::JobResult { status, exit_value, output, results, logs, .. } => Reply::Result {
            status,
            exit_value,
            output: output.to_vec(),
            results: results.iter().collect(),
            logs: logs.iter().map(|line| line.text.to_string()).collect(),
        },
        other => Reply::Other(other.kind()),
    }
}

pub use jos_offload::host::{encode, frame};

/// A snow IK initiator for `secret` against the device key.
pub fn initiator(secret: &[u8; 32]) -> snow::HandshakeState {
    snow::Builder::with_resolver(noise::params(), Box::new(Resolver::new(&ENTROPY)))
        .local_private_key(secret)
        .unwrap()
        .remote_public_key(&noise::public_key(&DEVICE_SECRET))
        .unwrap()
        .prologue(noise::PROLOGUE)
        .unwrap()
        .build_initiator()
        .unwrap()
}

/// The first handshake frame (a Hello carrying `-> e, es, s, ss`).
pub fn hello_frame(state: &mut snow::HandshakeState) -> Vec<u8> {
    let mut message = [0u8; 256];
    let len = state.write_message(&[], &mut message).unwrap();
    frame(&encode(&Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &message[..len] }))
}

/// Splits whole frames off the front of `buffer`.
pub fn take_frames(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Ok(Some(len)) = wire::frame_len(buffer) {
        frames.push(buffer[2..len].to_vec());
        buffer.drain(..len);
    }
    frames
}

/// Encrypts one message into a frame.
pub fn seal(transport: &mut snow::TransportState, message: &Message<'_>) -> Vec<u8> {
    let plain = encode(message);
    let mut cipher = vec![0; plain.len() + 16];
    let len = transport.write_message(&plain, &mut cipher).unwrap();
    frame(&cipher[..len])
}

/// Decrypts one frame payload.
pub fn open(transport: &mut snow::TransportState, payload: &[u8]) -> Reply {
    reply(&open_plain(transport, payload))
}

/// Decrypts one frame payload to the encoded message.
pub fn open_plain(transport: &mut snow::TransportState, payload: &[u8]) -> Vec<u8> {
    let mut plain = vec![0; payload.len()];
    let len = transport.read_message(payload, &mut plain).expect("device frames decrypt");
    plain.truncate(len);
    plain
}

/// PushBegin + chunks + PushEnd frames for a module.
pub fn push_frames(transport: &mut snow::TransportState, format: Format, module: &[u8], chunk: usize) -> Vec<u8> {
    let sha256 = jos_abi::signature::sha256(module);
    let mut out = seal(
        transport,
        &Message::PushBegin { format, total_len: module.len() as u32, sha256, limits: Limits::default() },
    );
    for (index, bytes) in module.chunks(chunk).enumerate() {
        out.extend(seal(transport, &Message::PushChunk { offset: (index * chunk) as u32, bytes }));
    }
    out.extend(seal(transport, &Message::PushEnd));
    out
}

/// A client driving a `Server` directly in memory (no sockets).
pub struct MemoryClient {
    pub id: SessionId,
    pub transport: snow::TransportState,
    pub inbox: Vec<u8>,
}

/// How a handshake in memory ended without a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The device closed the connection without an answer.
    Silent,
    /// The device answered an `Error` in clear (code, message) and closed the connection.
    Error(u32, String),
    /// `connect` itself returned `None`.
    NoConnection,
}

impl MemoryClient {
    pub fn connect<P: Platform>(server: &mut Server<P>, secret: &[u8; 32]) -> Option<MemoryClient> {
        Self::try_connect(server, secret).ok()
    }

    /// [`MemoryClient::connect`], from `peer`.
    pub fn connect_from<P: Platform>(
        server: &mut Server<P>,
        secret: &[u8; 32],
        peer: std::net::IpAddr,
    ) -> Result<MemoryClient, Refusal> {
        let id = server.connect_from(peer).ok_or(Refusal::NoConnection)?;
        Self::handshake(server, id, secret)
    }

    /// Connects and runs the handshake; says how the device refused it.
    pub fn try_connect<P: Platform>(server: &mut Server<P>, secret: &[u8; 32]) -> Result<MemoryClient, Refusal> {
        let id = server.connect().ok_or(Refusal::NoConnection)?;
        Self::handshake(server, id, secret)
    }

    fn handshake<P: Platform>(
        server: &mut Server<P>,
        id: SessionId,
        secret: &[u8; 32],
    ) -> Result<MemoryClient, Refusal> {
        let mut state = initiator(secret);
        server.receive(id, &hello_frame(&mut state));
        let mut inbox = server.pending(id).to_vec();
        server.consume(id, inbox.len());
        let frames = take_frames(&mut inbox);
        let [hello] = frames.as_slice() else {
            assert!(frames.is_empty(), "at most one frame answers a Hello");
            assert!(server.wants_close(id), "a Hello without an answer ends the connection");
            server.disconnect(id);
            return Err(Refusal::Silent);
        };
        let handshake = match Message::parse(hello) {
            Ok(Message::Hello { handshake, .. }) => handshake,
            Ok(Message::Error { code, message }) => {
                assert!(server.wants_close(id), "an Error before the handshake ends the connection");
                server.disconnect(id);
                return Err(Refusal::Error(code as u32, message.to_string()));
            }
            other => panic!("device answers a Hello or an Error, not {other:?}"),
        };
        let mut payload = [0u8; 64];
        state.read_message(handshake, &mut payload).expect("device's handshake message reads");
        Ok(MemoryClient { id, transport: state.into_transport_mode().unwrap(), inbox })
    }

    pub fn send<P: Platform>(&mut self, server: &mut Server<P>, message: &Message<'_>) {
        let frame = seal(&mut self.transport, message);
        server.receive(self.id, &frame);
    }

    /// Replies the server has queued so far.
    pub fn replies<P: Platform>(&mut self, server: &mut Server<P>) -> Vec<Reply> {
        self.plain_replies(server).iter().map(|plain| reply(plain)).collect()
    }

    /// Replies the server has queued so far, as encoded messages.
    pub fn plain_replies<P: Platform>(&mut self, server: &mut Server<P>) -> Vec<Vec<u8>> {
        let pending = server.pending(self.id).to_vec();
        server.consume(self.id, pending.len());
        self.inbox.extend(pending);
        take_frames(&mut self.inbox).iter().map(|payload| open_plain(&mut self.transport, payload)).collect()
    }
}

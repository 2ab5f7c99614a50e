//! A small test device on loopback sockets, for the client tests: answers discovery probes with
//! a signed advert, and serves offload sessions (Noise IK responder, only the configuration's
//! client keys) that push, verify and cache wasm modules and run them with `jos_runtime`. It
//! follows docs/protocol.md; it is a test double of the real device side (`jos-offload`), with
//! switches to misbehave (`busy`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jos_abi::config::{Config, ConfigRepr};
use jos_abi::signature::TrustedSigner;
use jos_abi::wire::call::{CallValue, TYPE_I64};
use jos_abi::wire::discovery::{AdvertRepr, LoadState, Probe};
use jos_abi::wire::{self, Format, Formats, JobStatus, LogLine, Logs, Message, Results, Stats};
use jos_abi::{AbiVersion, ErrorCode};
use jos_runtime::{Capabilities, Entry, Sandbox, SandboxConfig, StdHost, Value};

/// A running fake device.
pub struct FakeDevice {
    /// Its discovery address.
    pub discovery: SocketAddr,
    /// Answer every Invoke with Busy.
    pub busy: Arc<AtomicBool>,
    /// Pushes completed.
    pub pushes: Arc<Mutex<u32>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct State {
    name: String,
    noise_secret: [u8; 32],
    advert_seed: [u8; 32],
    clients: Vec<[u8; 32]>,
    signers: Vec<TrustedSigner>,
    cache: Mutex<HashMap<[u8; 32], Vec<u8>>>,
    busy: Arc<AtomicBool>,
    pushes: Arc<Mutex<u32>>,
}

impl FakeDevice {
    /// Starts a device from a boot configuration (as `jos-cli provision` writes it).
    pub fn start(config: &[u8]) -> FakeDevice {
        let checked = Config::new_checked(config).expect("a valid configuration");
        let repr = ConfigRepr::parse(&checked).unwrap();
        let busy = Arc::new(AtomicBool::new(false));
        let pushes = Arc::new(Mutex::new(0));
        let state = Arc::new(State {
            name: repr.name.into(),
            noise_secret: repr.noise_secret,
            advert_seed: repr.advert_seed,
            clients: repr.clients.iter().collect(),
            signers: repr.signers.iter().collect(),
            cache: Mutex::new(HashMap::new()),
            busy: busy.clone(),
            pushes: pushes.clone(),
        });
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let discovery = udp.local_addr().unwrap();
        let session = tcp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (state, stop) = (state.clone(), stop.clone());
            let port = session.port();
            std::thread::spawn(move || {
                udp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut buffer = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from)) = udp.recv_from(&mut buffer) else { continue };
                    let Ok(probe) = Probe::parse(&buffer[..len]) else { continue };
                    let advert = AdvertRepr {
                        nonce: probe.nonce,
                        abi_version: AbiVersion::CURRENT,
                        formats: Formats::WASM,
                        state: LoadState::Idle,
                        queued: 0,
                        free_memory: 1 << 20,
                        port,
                        noise_key: jos_cli::store::x25519_public(&state.noise_secret),
                        signing_key: jos_abi::signature::public_key(&state.advert_seed),
                        name: &state.name,
                    };
                    let mut out = vec![0u8; advert.buffer_len()];
                    advert.emit(&mut out, &state.advert_seed).unwrap();
                    let _ = udp.send_to(&out, from);
                }
            });
        }
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                tcp.set_nonblocking(true).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match tcp.accept() {
                        Ok((stream, _)) => {
                            let state = state.clone();
                            std::thread::spawn(move || {
                                stream.set_nonblocking(false).unwrap();
                                let _ = serve(&state, stream);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        FakeDevice { discovery, busy, pushes, stop }
    }
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header)?;
    let mut payload = vec![0u8; usize::from(u16::from_le_bytes(header))];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let mut frame = vec![0u8; payload.len() + 2];
    wire::emit_frame(payload, &mut frame).unwrap();
    stream.write_all(&frame)
}

fn send(stream: &mut TcpStream, transport: &mut snow::TransportState, message: &Message<'_>) -> std::io::Result<()> {
    let mut plain = vec![0u8; message.buffer_len()];
    message.emit(&mut plain).unwrap();
    let mut cipher = vec![0u8; plain.len() + 16];
    let len = transport.write_message(&plain, &mut cipher).unwrap();
    write_frame(stream, &cipher[..len])
}

fn error(
    stream: &mut TcpStream,
    transport: &mut snow::TransportState,
    code: ErrorCode,
    text: &str,
) -> std::io::Result<()> {
    send(stream, transport, &Message::Error { code, message: text })
}

fn serve(state: &State, mut stream: TcpStream) -> std::io::Result<()> {
    let params = "Noise_IK_25519_ChaChaPoly_SHA256".parse().unwrap();
    let mut handshake = snow::Builder::new(params)
        .local_private_key(&state.noise_secret)
        .unwrap()
        .prologue(b"jos offload v1")
        .unwrap()
        .build_responder()
        .unwrap();
    let hello = read_frame(&mut stream)?;
    let Ok(Message::Hello { handshake: first, .. }) = Message::parse(&hello) else { return Ok(()) };
    let mut payload = [0u8; 1024];
    if handshake.read_message(first, &mut payload).is_err() {
        return Ok(());
    }
    let remote: [u8; 32] = handshake.get_remote_static().unwrap().try_into().unwrap();
    if !state.clients.contains(&remote) {
        return Ok(()); // an unknown client: the connection is closed
    }
    let mut answer = [0u8; 1024];
    let len = handshake.write_message(&[], &mut answer).unwrap();
    let hello = Message::Hello { version: wire::PROTOCOL_VERSION, handshake: &answer[..len] };
    let mut plain = vec![0u8; hello.buffer_len()];
    hello.emit(&mut plain).unwrap();
    write_frame(&mut stream, &plain)?;
    let mut transport = handshake.into_transport_mode().unwrap();
    let mut module: Vec<u8> = Vec::new();
    let mut begun: Option<([u8; 32], u32)> = None;
    loop {
        let frame = read_frame(&mut stream)?;
        let mut plain = vec![0u8; frame.len()];
        let Ok(len) = transport.read_message(&frame, &mut plain) else { return Ok(()) };
        let Ok(message) = Message::parse(&plain[..len]) else {
            error(&mut stream, &mut transport, ErrorCode::Malformed, "malformed message")?;
            continue;
        };
        match message {
            Message::Ping { nonce } => send(&mut stream, &mut transport, &Message::Pong { nonce })?,
            Message::PushBegin { format, total_len, sha256, .. } => {
                module.clear();
                begun = None;
                if format != Format::Wasm {
                    error(&mut stream, &mut transport, ErrorCode::Unsupported, "format not accepted by this device")?;
                } else {
                    begun = Some((sha256, total_len));
                }
            }
            Message::PushChunk { offset, bytes } => {
                if begun.is_some() && offset as usize == module.len() {
                    module.extend_from_slice(bytes);
                } else {
                    begun = None;
                    error(&mut stream, &mut transport, ErrorCode::InvalidArgument, "chunk out of order")?;
                }
            }
            Message::PushEnd => {
                let Some((hash, total_len)) = begun.take() else { continue };
                if module.len() != total_len as usize || jos_abi::signature::sha256(&module) != hash {
                    error(&mut stream, &mut transport, ErrorCode::InvalidArgument, "length or hash mismatch")?;
                    continue;
                }
                if let Err(failure) = jos_abi::signature::verify_wasm(&module, &state.signers) {
                    error(&mut stream, &mut transport, failure.code(), failure.message())?;
                    continue;
                }
                state.cache.lock().unwrap().insert(hash, std::mem::take(&mut module));
                *state.pushes.lock().unwrap() += 1;
                send(&mut stream, &mut transport, &Message::PushOk { sha256: hash })?;
            }
            Message::Invoke { hash, limits, input, call } => {
                if state.busy.load(Ordering::Relaxed) {
                    error(&mut stream, &mut transport, ErrorCode::Busy, "the job queue is full")?;
                    continue;
                }
                let Some(bytes) = state.cache.lock().unwrap().get(&hash).cloned() else {
                    error(&mut stream, &mut transport, ErrorCode::NotFound, "no module with this hash")?;
                    continue;
                };
                let entry = match call {
                    None => Entry::Default,
                    Some(call) => {
                        let types = param_types(&bytes, call.name);
                        let args = call
                            .args()
                            .iter()
                            .zip(types.iter().chain(std::iter::repeat(&TYPE_I64)))
                            .map(|(slot, ty)| to_value(CallValue::from_slot(*ty, *slot).unwrap()))
                            .collect();
                        Entry::Call { name: call.name.into(), args }
                    }
                };
                send(&mut stream, &mut transport, &Message::Progress { fuel_used: 0, elapsed_us: 0, output_len: 0 })?;
                let runtime_limits = jos_runtime::Limits {
                    fuel_budget: if limits.fuel == 0 { 10_000_000_000 } else { limits.fuel },
                    max_output_bytes: wire::MAX_OUTPUT_LEN,
                    ..jos_runtime::Limits::default()
                };
                let mut sandbox = Sandbox::new(SandboxConfig::default());
                let (result, _) = sandbox.run(
                    &bytes,
                    StdHost::new(input.to_vec()),
                    runtime_limits,
                    Capabilities::default(),
                    entry,
                    1_000_000,
                );
                let status = match result.status {
                    jos_runtime::JobStatus::Ok => JobStatus::Ok,
                    jos_runtime::JobStatus::Trap => JobStatus::Trap,
                    jos_runtime::JobStatus::OutOfFuel => JobStatus::OutOfFuel,
                    jos_runtime::JobStatus::LimitExceeded => JobStatus::LimitExceeded,
                    jos_runtime::JobStatus::Rejected => JobStatus::Rejected,
                    jos_runtime::JobStatus::Deadline => JobStatus::Deadline,
                };
                let values: Vec<CallValue> = result.values.iter().map(|value| from_value(*value)).collect();
                let lines: Vec<LogLine<'_>> =
                    result.logs.iter().map(|line| LogLine { level: line.level, text: &line.text }).collect();
                let stats = Stats {
                    fuel_used: result.stats.fuel_used,
                    time_us: result.stats.time_us,
                    cpu_us: result.stats.time_us,
                    cycles: 0,
                    peak_memory: result.stats.peak_memory_bytes as u32,
                };
                let exit_value = result.exit_value.unwrap_or(0);
                let message =
                    Message::JobResult {
                        status,
                        exit_value,
                        stats,
                        output: &result.output,
                        results: Results::from_slice(&values),
                        logs: Logs::from_slice(&lines),
                    };
                send(&mut stream, &mut transport, &message)?;
            }
            _ => error(&mut stream, &mut transport, ErrorCode::Unsupported, "unexpected message")?,
        }
    }
}

fn param_types(module: &[u8], name: &str) -> Vec<u8> {
    jos_cli::client::call::export_signature(module, name).map(|signature| signature.params).unwrap_or_default()
}

fn to_value(value: CallValue) -> Value {
    match value {
        CallValue::I32(v) => Value::I32(v),
        CallValue::I64(v) => Value::I64(v),
        CallValue::F32(v) => Value::F32(v),
        CallValue::F64(v) => Value::F64(v),
    }
}

fn from_value(value: Value) -> CallValue {
    match value {
        Value::I32(v) => CallValue::I32(v),
        Value::I64(v) => CallValue::I64(v),
        Value::F32(v) => CallValue::F32(v),
        Value::F64(v) => CallValue::F64(v),
    }
}

//! Real snow initiators over loopback TCP and UDP against `jos_offload::host::serve`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_offload::host::Client;
use jos_offload::{Counters, ServerOptions};

struct Device {
    tcp: std::net::SocketAddr,
    udp: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Counters>>,
}

impl Device {
    fn start() -> Device {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tcp_addr, udp_addr) = (listener.local_addr().unwrap(), udp.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            // Progress after every slice, and a fuel cap so high that SPIN jobs end only when their
            // client leaves: the checks below do not depend on how fast this machine runs wasm.
            let options = ServerOptions { progress_interval_us: 0, ..ServerOptions::default() };
            let mut server = jos_offload::Server::new(config_with_fuel(1 << 40), options, platform(), &ENTROPY);
            jos_offload::host::serve(&mut server, &listener, Some(&udp), &flag);
            server.counters()
        });
        Device { tcp: tcp_addr, udp: udp_addr, stop, thread: Some(thread) }
    }

    fn stop(mut self) -> Counters {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// A session over TCP (`jos_offload::host::Client`) with its replies decoded.
struct TcpClient {
    inner: Client,
}

impl TcpClient {
    fn connect(device: &Device, secret: &[u8; 32]) -> Option<TcpClient> {
        let device_key = jos_offload::noise::public_key(&DEVICE_SECRET);
        Client::connect(device.tcp, secret, &device_key, Duration::from_secs(30)).ok().map(|inner| TcpClient { inner })
    }

    fn send_bytes(&mut self, bytes: &[u8]) {
        self.inner.send_bytes(bytes).unwrap();
    }

    fn send(&mut self, message: &Message<'_>) {
        self.inner.send(message).unwrap();
    }

    fn next(&mut self) -> Option<Reply> {
        self.inner.next_plain().map(|plain| reply(&plain))
    }

    /// Replies up to and including the JobResult.
    fn result(&mut self) -> (Vec<Reply>, Reply) {
        let mut progress = Vec::new();
        loop {
            match self.next().expect("connection stays up until the result") {
                reply @ Reply::Result { .. } => return (progress, reply),
                other => progress.push(other),
            }
        }
    }
}

#[test]
fn push_invoke_and_cached_invoke_over_tcp() {
    let device = Device::start();
    let mut client = TcpClient::connect(&device, &CLIENT_SECRET).expect("handshake");
    let module = signed_wasm(ECHO, &DEVELOPER);
    let hash = sha256(&module);
    let frames = push_frames(client.inner.transport(), Format::Wasm, &module, 64);
    client.send_bytes(&frames);
    assert_eq!(client.next(), Some(Reply::PushOk(hash)));
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"over tcp", call: None });
    let (_, result) = client.result();
    assert_eq!(
        result,
        Reply::Result {
            status: JobStatus::Ok,
            exit_value: 8,
            output: b"over tcp".to_vec(),
            results: vec![],
            logs: vec![]
        }
    );
    drop(client);

    let mut again = TcpClient::connect(&device, &CLIENT2_SECRET).expect("handshake");
    again.send(&Message::Invoke { hash, limits: Limits::default(), input: b"cached", call: None });
    let (_, result) = again.result();
    assert_eq!(
        result,
        Reply::Result {
            status: JobStatus::Ok,
            exit_value: 6,
            output: b"cached".to_vec(),
            results: vec![],
            logs: vec![]
        }
    );
    assert!(again.inner.sent < 200, "invoke by hash sends no module: {} bytes", again.inner.sent);
    drop(again);
    let counters = device.stop();
    assert_eq!(counters.pushes_ok, 1);
}

#[test]
fn unknown_key_is_told_permission_denied_and_the_connection_closes() {
    let device = Device::start();
    let device_key = jos_offload::noise::public_key(&DEVICE_SECRET);
    match Client::connect(device.tcp, &STRANGER_SECRET, &device_key, Duration::from_secs(30)) {
        Err(jos_offload::host::ConnectError::Denied { code, message, .. }) => {
            assert_eq!(code, jos_abi::ErrorCode::PermissionDenied, "{message}");
        }
        other => panic!("expected PermissionDenied, got {:?}", other.err()),
    }
    let mut bystander = TcpClient::connect(&device, &CLIENT_SECRET).expect("trusted client still gets in");
    bystander.send(&Message::Ping { nonce: 3 });
    assert_eq!(bystander.next(), Some(Reply::Pong(3)));
    drop(bystander);
    let counters = device.stop();
    assert_eq!(counters.hellos_refused, 1);
    assert_eq!(counters.sessions_opened, 1);
}

/// Reads until the device closes `stream` (end of file or reset) or `wait` passes; returns
/// the bytes read and whether it closed.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (bytes, true),
            Ok(len) => bytes.extend_from_slice(&buffer[..len]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (bytes, true),
        }
    }
    (bytes, false)
}

#[test]
fn eight_stalled_connections_do_not_lock_out_a_trusted_client() {
    // Eight connections that each send half a frame header's worth of a Hello and stall.
    let device = Device::start();
    let mut stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(device.tcp).unwrap();
            stream.write_all(&[0x60, 0x00, 0x01]).unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut client = TcpClient::connect(&device, &CLIENT_SECRET).expect("a trusted client gets a session");
    client.send(&Message::Ping { nonce: 8 });
    assert_eq!(client.next(), Some(Reply::Pong(8)));
    assert!(started.elapsed() < Duration::from_secs(2), "promptly: {:?}", started.elapsed());
    // The oldest stalled connection made room: it was told Busy (in clear) and closed.
    let (answer, closed) = read_until_closed(&mut stalled[0], Duration::from_secs(2));
    assert!(closed, "the evicted connection is closed");
    let mut answer = answer;
    let frames = take_frames(&mut answer);
    assert!(
        matches!(
            frames.first().map(|frame| Message::parse(frame)),
            Some(Ok(Message::Error { code: jos_abi::ErrorCode::Busy, .. }))
        ),
        "{frames:?}"
    );
    drop(client);
    device.stop();
}

#[test]
fn a_client_that_sends_pings_and_never_reads_is_disconnected() {
    let device = Device::start();
    let mut flooder = TcpClient::connect(&device, &CLIENT_SECRET).expect("handshake");
    // 40 000 Pings, about 1.3 MB of Pongs if they were all kept: written from a thread, since
    // the device stops reading them once it has closed the session.
    let frames: Vec<u8> = (0..40_000u64).flat_map(|nonce| flooder.inner.seal(&Message::Ping { nonce })).collect();
    let mut writer = flooder.inner.stream().try_clone().unwrap();
    let sender = thread::spawn(move || writer.write_all(&frames).is_ok());
    let sent_all = sender.join().unwrap();
    // The device dropped the session: the stream ends (the Pongs that made it are discarded).
    let (_, closed) = read_until_closed(flooder.inner.stream(), Duration::from_secs(10));
    assert!(closed || !sent_all, "the connection of a client that does not read is closed");
    let mut other = TcpClient::connect(&device, &CLIENT2_SECRET).expect("others are served");
    other.send(&Message::Ping { nonce: 1 });
    assert_eq!(other.next(), Some(Reply::Pong(1)));
    drop((flooder, other));
    let counters = device.stop();
    assert_eq!(counters.outbox_overflows, 1, "{counters:?}");
}

#[test]
fn eight_clients_at_once_each_get_their_own_result() {
    let device = Device::start();
    let module = signed_wasm(ECHO, &DEVELOPER);
    let hash = sha256(&module);
    let mut first = TcpClient::connect(&device, &CLIENT_SECRET).unwrap();
    let frames = push_frames(first.inner.transport(), Format::Wasm, &module, 1000);
    first.send_bytes(&frames);
    assert_eq!(first.next(), Some(Reply::PushOk(hash)));
    drop(first);

    let mut clients: Vec<TcpClient> = (0..8)
        .map(|index| {
            let secret = if index % 2 == 0 { CLIENT_SECRET } else { CLIENT2_SECRET };
            TcpClient::connect(&device, &secret).expect("handshake")
        })
        .collect();
    for (index, client) in clients.iter_mut().enumerate() {
        let input = format!("client number {index}");
        client.send(&Message::Invoke { hash, limits: Limits::default(), input: input.as_bytes(), call: None });
    }
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(index, mut client)| {
            thread::spawn(move || {
                let (_, result) = client.result();
                (index, result)
            })
        })
        .collect();
    for handle in handles {
        let (index, result) = handle.join().unwrap();
        let expected = format!("client number {index}").into_bytes();
        assert_eq!(
            result,
            Reply::Result {
                status: JobStatus::Ok,
                exit_value: expected.len() as i32,
                output: expected,
                results: vec![],
                logs: vec![]
            }
        );
    }
    let counters = device.stop();
    assert_eq!(counters.jobs_ok, 8);
}

#[test]
fn long_job_sends_progress_while_discovery_and_other_sessions_answer() {
    // (Running out of fuel is checked in sessions.rs; here the job runs until its client leaves.)
    let device = Device::start();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    let mut worker = TcpClient::connect(&device, &CLIENT_SECRET).unwrap();
    let frames = push_frames(worker.inner.transport(), Format::Wasm, &module, 1000);
    worker.send_bytes(&frames);
    assert_eq!(worker.next(), Some(Reply::PushOk(hash)));
    worker.send(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: None });
    assert!(matches!(worker.next(), Some(Reply::Progress(_))), "progress arrives while the job runs");

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut probe = [0u8; wire::discovery::PROBE_LEN];
    Probe { nonce: 42 }.emit(&mut probe).unwrap();
    udp.send_to(&probe, device.udp).unwrap();
    let mut datagram = [0u8; 512];
    let (len, _) = udp.recv_from(&mut datagram).expect("advert while a job runs");
    let advert = Advert::new_checked(&datagram[..len]).unwrap();
    assert!(advert.verify_signature());
    let repr = AdvertRepr::parse(&advert).unwrap();
    assert_eq!(repr.nonce, 42);
    assert_eq!(repr.state, wire::discovery::LoadState::Busy);

    let mut other = TcpClient::connect(&device, &CLIENT2_SECRET).expect("new session while a job runs");
    other.send(&Message::Ping { nonce: 9 });
    assert_eq!(other.next(), Some(Reply::Pong(9)));

    for _ in 0..3 {
        assert!(matches!(worker.next(), Some(Reply::Progress(_))), "still running, still reporting");
    }
    drop((worker, other));
    thread::sleep(Duration::from_millis(100));
    let counters = device.stop();
    assert_eq!(counters.jobs_aborted, 1, "the job ended when its client left");
}

#[test]
fn a_client_vanishing_mid_job_aborts_it() {
    let device = Device::start();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    let mut client = TcpClient::connect(&device, &CLIENT_SECRET).unwrap();
    let frames = push_frames(client.inner.transport(), Format::Wasm, &module, 1000);
    client.send_bytes(&frames);
    assert_eq!(client.next(), Some(Reply::PushOk(hash)));
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: None });
    assert!(matches!(client.next(), Some(Reply::Progress(_))));
    drop(client);
    // The device notices the closed connection and drops the job; a new client gets served.
    let mut next = TcpClient::connect(&device, &CLIENT2_SECRET).unwrap();
    next.send(&Message::Ping { nonce: 1 });
    assert_eq!(next.next(), Some(Reply::Pong(1)));
    thread::sleep(Duration::from_millis(100));
    drop(next);
    let counters = device.stop();
    assert_eq!(counters.jobs_aborted, 1);
}

/// Exports `mix(i32, f64) -> (i32, f64)`, which also writes output and a log line.
const MIX: &str = r#"
(module
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "side effect\n")
  (func (export "run") (result i32) (i32.const 0))
  (func (export "mix") (param $a i32) (param $b f64) (result i32 f64)
    (drop (call $output_write (i32.const 0) (i32.const 12)))
    (drop (call $log (i32.const 3) (i32.const 0) (i32.const 11)))
    (i32.add (local.get $a) (i32.const 1))
    (f64.mul (local.get $b) (f64.const 2))))
"#;

#[test]
fn a_called_function_that_writes_output_returns_both_over_tcp() {
    use jos_abi::job::Value;
    let device = Device::start();
    let mut client = TcpClient::connect(&device, &CLIENT_SECRET).expect("handshake");
    let module = signed_wasm(MIX, &DEVELOPER);
    let hash = sha256(&module);
    let frames = push_frames(client.inner.transport(), Format::Wasm, &module, 256);
    client.send_bytes(&frames);
    assert_eq!(client.next(), Some(Reply::PushOk(hash)));
    let args = [Value::I32(41).to_slot(), Value::F64(1.25).to_slot()];
    let call = wire::Call::new("mix", &args).unwrap();
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: Some(call) });
    let (_, result) = client.result();
    assert_eq!(
        result,
        Reply::Result {
            status: JobStatus::Ok,
            exit_value: 0,
            output: b"side effect\n".to_vec(),
            results: vec![Value::I32(42), Value::F64(2.5)],
            logs: vec!["side effect".into()],
        }
    );
    // The entry point of the same module sends no results.
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: None });
    let (_, result) = client.result();
    assert_eq!(
        result,
        Reply::Result { status: JobStatus::Ok, exit_value: 0, output: vec![], results: vec![], logs: vec![] }
    );
    drop(client);
    device.stop();
}

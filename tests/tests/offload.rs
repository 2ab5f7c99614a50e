//! Offload end to end under QEMU: the boot configuration through QEMU's loader device, discovery
//! on UDP 4747, Noise IK sessions on TCP 4748 (snow initiators here), push and invoke of signed
//! wasm, the cached module, bad input, a long job while UDP echo answers, 8 clients at once, and
//! a boot without configuration; native blobs (md5 built by jos-cli, deadline, faults) on
//! another boot; a native md5 of seconds that leaves echo, discovery and a second session
//! served (preemption) on a fourth; a replayed handshake and an altered ciphertext against the device's counters
//! (its console's `offload` command) on a third. One QEMU boot serves most checks.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights};
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe};
use jos_abi::wire::{self, Format, Formats, JobStatus, Limits, Message};
use jos_offload::host;
use jos_offload::noise;
use jos_tests::config::TestConfig;
use jos_tests::{free_port, kernel_elf, BootOptions, Qemu, ECHO};

const DEVICE_SECRET: [u8; 32] = [0x51; 32];
const ADVERT_SEED: [u8; 32] = [0x52; 32];
const CLIENT_SECRET: [u8; 32] = [0x53; 32];
const STRANGER_SECRET: [u8; 32] = [0x54; 32];
const DEVELOPER: [u8; 32] = [0x55; 32];
const WASM_ONLY: [u8; 32] = [0x56; 32];

const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

fn config_file() -> PathBuf {
    config_file_named("")
}

fn config_file_named(tag: &str) -> PathBuf {
    TestConfig::new("qemu-offload", DEVICE_SECRET, ADVERT_SEED)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&DEVELOPER), SignerRights::ALL)
        .signer(public_key(&WASM_ONLY), SignerRights::WASM)
        .write(&format!("offload{tag}"))
}

struct Device {
    qemu: Qemu,
    tcp: u16,
    discovery: u16,
    echo: u16,
}

fn boot(config: Option<&PathBuf>) -> Device {
    boot_with(config, None)
}

/// [`boot`] with QEMU's `-icount shift` (guest time follows the instruction count, as the
/// benchmarks run).
fn boot_with(config: Option<&PathBuf>, icount_shift: Option<u32>) -> Device {
    let (tcp, discovery, echo) = (free_port(false), free_port(true), free_port(true));
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.icount_shift = icount_shift;
    let netdev = format!(
        "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748,hostfwd=udp:127.0.0.1:{discovery}-:4747,hostfwd=udp:127.0.0.1:{echo}-:7"
    );
    options.extra_args = vec!["-netdev".into(), netdev, "-device".into(), "usb-net,netdev=n0,port=1".into()];
    if let Some(path) = config {
        options.extra_args.push("-device".into());
        options.extra_args.push(format!("loader,file={},addr=0x01F00000,force-raw=on", path.display()));
    }
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    Device { qemu, tcp, discovery, echo }
}

/// A session (`jos_offload::host::Client`) with its replies decoded.
struct Client {
    inner: host::Client,
}

#[derive(Debug, PartialEq)]
enum Reply {
    PushOk([u8; 32]),
    Error(u32),
    Pong(u64),
    Progress,
    Result { status: JobStatus, exit_value: i32, output: Vec<u8> },
}

/// Serializes the two long QEMU tests of this file (two boots at once slow both on a loaded host).
static ONE_BOOT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The logs of the last job result (`Client::next` keeps them here).
static LAST_LOGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
/// The stats of the last job result (`Client::next` keeps them here).
static LAST_STATS: std::sync::Mutex<Option<wire::Stats>> = std::sync::Mutex::new(None);

impl Client {
    fn connect(port: u16, secret: &[u8; 32]) -> Option<Client> {
        Client::connect_with_hello(port, secret).0
    }

    /// Opens a session; also returns the first frame sent (the Hello with the handshake's first
    /// message), to replay it.
    fn connect_with_hello(port: u16, secret: &[u8; 32]) -> (Option<Client>, Vec<u8>) {
        let device_key = noise::public_key(&DEVICE_SECRET);
        match host::Client::connect(("127.0.0.1", port), secret, &device_key, Duration::from_secs(60)) {
            Ok(inner) => {
                let hello = inner.hello.clone();
                (Some(Client { inner }), hello)
            }
            Err(host::ConnectError::Refused { hello } | host::ConnectError::Denied { hello, .. }) => (None, hello),
            Err(error) => panic!("connecting: {error:?}"),
        }
    }

    /// Sends `message` with one bit of its ciphertext flipped (the frame stays well formed).
    fn send_altered(&mut self, message: &Message<'_>) {
        self.inner.send_altered(message).unwrap();
    }

    fn send(&mut self, message: &Message<'_>) {
        self.inner.send(message).unwrap();
    }

    fn next(&mut self) -> Reply {
        let plain = self.inner.next_plain().expect("device answers");
        match Message::parse(&plain).unwrap() {
            Message::PushOk { sha256 } => Reply::PushOk(sha256),
            Message::Error { code, .. } => Reply::Error(code as u32),
            Message::Pong { nonce } => Reply::Pong(nonce),
            Message::Progress { .. } => Reply::Progress,
            Message::JobResult { status, exit_value, stats, output, logs, .. } => {
                *LAST_LOGS.lock().unwrap() = logs.iter().map(|line| line.text.to_string()).collect();
                *LAST_STATS.lock().unwrap() = Some(stats);
                Reply::Result { status, exit_value, output: output.to_vec() }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn result(&mut self) -> (usize, Reply) {
        let mut progress = 0;
        loop {
            match self.next() {
                Reply::Progress => progress += 1,
                reply => return (progress, reply),
            }
        }
    }

    fn push(&mut self, format: Format, module: &[u8]) -> Reply {
        let sha = sha256(module);
        self.send(&Message::PushBegin {
            format,
            total_len: module.len() as u32,
            sha256: sha,
            limits: Limits::default(),
        });
        for (index, chunk) in module.chunks(wire::MAX_CHUNK_LEN).enumerate() {
            self.send(&Message::PushChunk { offset: (index * wire::MAX_CHUNK_LEN) as u32, bytes: chunk });
        }
        self.send(&Message::PushEnd);
        self.next()
    }
}

fn signed(text: &str, seed: &[u8; 32]) -> Vec<u8> {
    sign_wasm(&wat::parse_str(text).unwrap(), seed, true).unwrap()
}

/// The free heap bytes a fresh advert reports.
fn free_memory(udp: &UdpSocket, port: u16) -> u32 {
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 7 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    for _ in 0..5 {
        udp.send_to(&probe, ("127.0.0.1", port)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            let advert = Advert::new_checked(&datagram[..len]).unwrap();
            return AdvertRepr::parse(&advert).unwrap().free_memory;
        }
    }
    panic!("no advert");
}

#[test]
fn offload_end_to_end_on_one_boot() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let config = config_file();
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));

    // Discovery.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 0x1234 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    let mut answered = None;
    for _ in 0..5 {
        udp.send_to(&probe, ("127.0.0.1", device.discovery)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            answered = Some(len);
            break;
        }
    }
    let len = answered.expect("advert");
    let advert = Advert::new_checked(&datagram[..len]).unwrap();
    assert!(advert.verify_signature());
    let repr = AdvertRepr::parse(&advert).unwrap();
    assert_eq!((repr.nonce, repr.name, repr.port), (0x1234, "qemu-offload", 4748));
    assert_eq!(repr.noise_key, noise::public_key(&DEVICE_SECRET));
    assert!(repr.free_memory > 100 << 20, "free heap reported: {}", repr.free_memory);

    // Unknown client key: told PermissionDenied in clear, then the connection closes.
    let device_key = noise::public_key(&DEVICE_SECRET);
    match host::Client::connect(("127.0.0.1", device.tcp), &STRANGER_SECRET, &device_key, Duration::from_secs(60)) {
        Err(host::ConnectError::Denied { code, .. }) => assert_eq!(code, jos_abi::ErrorCode::PermissionDenied),
        other => panic!("a stranger's handshake: {:?}", other.err()),
    }

    // Push and invoke; invoke the cached module from a new session without resending.
    let echo = signed(ECHO, &DEVELOPER);
    let hash = sha256(&echo);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::Wasm, &echo), Reply::PushOk(hash));
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"hello device", call: None });
    assert_eq!(
        client.result().1,
        Reply::Result { status: JobStatus::Ok, exit_value: 12, output: b"hello device".to_vec() }
    );
    drop(client);
    let mut again = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    again.send(&Message::Invoke { hash, limits: Limits::default(), input: b"cached", call: None });
    assert_eq!(again.result().1, Reply::Result { status: JobStatus::Ok, exit_value: 6, output: b"cached".to_vec() });
    assert!(again.inner.sent < 300, "no module resent: {} bytes", again.inner.sent);

    // Bad input: each gets its code and the session goes on.
    assert_eq!(again.push(Format::Wasm, &wat::parse_str(ECHO).unwrap()), Reply::Error(10));
    assert_eq!(again.push(Format::Wasm, &signed(ECHO, &[0x77; 32])), Reply::Error(11));
    let mut corrupt = echo.clone();
    let last = corrupt.len() - 2;
    corrupt[last] ^= 1;
    again.send(&Message::PushBegin {
        format: Format::Wasm,
        total_len: echo.len() as u32,
        sha256: hash,
        limits: Limits::default(),
    });
    again.send(&Message::PushChunk { offset: 0, bytes: &corrupt });
    again.send(&Message::PushEnd);
    assert_eq!(again.next(), Reply::Error(1), "corrupt chunk: SHA-256 mismatch");
    again.send(&Message::PushBegin {
        format: Format::Wasm,
        total_len: (4 << 20) + 1,
        sha256: [0; 32],
        limits: Limits::default(),
    });
    assert_eq!(again.next(), Reply::Error(3));
    again.send(&Message::Invoke { hash: [0xab; 32], limits: Limits::default(), input: b"", call: None });
    assert_eq!(again.next(), Reply::Error(6));
    again.send(&Message::Ping { nonce: 99 });
    assert_eq!(again.next(), Reply::Pong(99));
    drop(again);

    // A long job: out of fuel in the end, while UDP echo keeps answering.
    let spin = signed(SPIN, &DEVELOPER);
    let mut worker = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(worker.push(Format::Wasm, &spin), Reply::PushOk(sha256(&spin)));
    worker.send(&Message::Invoke {
        hash: sha256(&spin),
        limits: Limits { fuel: 40_000_000, ..Limits::default() },
        input: b"",
        call: None,
    });
    assert_eq!(worker.next(), Reply::Progress, "progress while the job runs");
    let echo_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    echo_socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut echoes = 0;
    for index in 0..20u32 {
        echo_socket.send_to(&index.to_le_bytes(), ("127.0.0.1", device.echo)).unwrap();
        let mut reply = [0u8; 16];
        if let Ok((4, _)) = echo_socket.recv_from(&mut reply) {
            echoes += u32::from(reply[..4] == index.to_le_bytes());
        }
    }
    let (progress, result) = worker.result();
    assert!(matches!(result, Reply::Result { status: JobStatus::OutOfFuel, .. }), "{result:?}");
    assert!(progress >= 1);
    assert!(echoes >= 18, "UDP echo answered {echoes} of 20 during the job");
    drop(worker); // its session would be a ninth beside the 8 below
                  // QEMU's user network accepts a host connection before the guest has a socket listening for
                  // it, and closes it if the guest refuses the SYN: give the device a moment to see the
                  // worker's FIN and listen on that socket again, or the 8th client below may find all 8 busy.
    std::thread::sleep(Duration::from_millis(300));

    // 8 clients at once.
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|index| {
            let port = device.tcp;
            std::thread::spawn(move || {
                let mut client = Client::connect(port, &CLIENT_SECRET).expect("handshake");
                let input = format!("client {index} says hi");
                client.send(&Message::Invoke { hash, limits: Limits::default(), input: input.as_bytes(), call: None });
                (input, client.result().1)
            })
        })
        .collect();
    for handle in handles {
        let (input, result) = handle.join().unwrap();
        assert_eq!(
            result,
            Reply::Result { status: JobStatus::Ok, exit_value: input.len() as i32, output: input.into_bytes() }
        );
    }
    assert!(started.elapsed() < Duration::from_secs(60));

    // 200 sequential sessions that push the (cached) module leave the heap where it started:
    // the advert reports free heap bytes.
    let free_before = free_memory(&udp, device.discovery);
    for round in 0..200 {
        let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
        assert_eq!(client.push(Format::Wasm, &echo), Reply::PushOk(hash), "round {round}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut free_after = free_memory(&udp, device.discovery);
    while free_after != free_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        free_after = free_memory(&udp, device.discovery);
    }
    assert_eq!(free_after, free_before, "free heap bytes before and after 200 pushes");
    let _ = std::fs::remove_file(config);
}

/// Builds a native blob with jos-build (the builder `jos-cli build` uses) and signs it with `seed`.
fn native_blob(source: &std::path::Path, seed: &[u8; 32]) -> Vec<u8> {
    jos_tests::build_signed(source, Format::NativeArmv6, seed).unwrap_or_else(|e| panic!("{e}"))
}

/// Lower-case hex digits and a newline, as the md5 example prints a digest.
fn hex_line(bytes: &[u8]) -> String {
    hex::encode(bytes) + "\n"
}

fn last_logs() -> Vec<String> {
    LAST_LOGS.lock().unwrap().clone()
}

/// The device still answers: UDP echo and a Ping on a new session.
fn still_answers(device: &Device) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut answered = false;
    for _ in 0..5 {
        socket.send_to(b"ping", ("127.0.0.1", device.echo)).unwrap();
        let mut reply = [0u8; 16];
        if let Ok((4, _)) = socket.recv_from(&mut reply) {
            answered = &reply[..4] == b"ping";
            break;
        }
    }
    assert!(answered, "UDP echo answers");
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    client.send(&Message::Ping { nonce: 5 });
    assert_eq!(client.next(), Reply::Pong(5));
}

#[test]
fn native_blobs_run_on_the_device() {
    use md5::Digest;
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = config_file_named("-native");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));

    // The advert lists native-armv6.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 9 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    let mut formats = None;
    for _ in 0..5 {
        udp.send_to(&probe, ("127.0.0.1", device.discovery)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            let advert = Advert::new_checked(&datagram[..len]).unwrap();
            formats = Some(AdvertRepr::parse(&advert).unwrap().formats);
            break;
        }
    }
    let formats = formats.expect("advert");
    assert_eq!(formats, Formats::ALL, "the advert lists wasm and native-armv6");

    // md5 built by jos-cli, signed by a native signer: the host's MD5; then invoked from the cache.
    let md5 = native_blob(&root.join("../guest-examples/c/md5.c"), &DEVELOPER);
    let hash = sha256(&md5);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::NativeArmv6, &md5), Reply::PushOk(hash));
    let text = "The quick brown fox jumps over the lazy dog";
    let expected = hex_line(&md5::Md5::digest(text.as_bytes()));
    let input = format!("1 {text}");
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: input.as_bytes(), call: None });
    match client.result().1 {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(String::from_utf8_lossy(&output), expected, "md5 on the device")
        }
        other => panic!("md5 push: {other:?} {:?}", last_logs()),
    }
    drop(client);
    let mut again = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    let expected = hex_line(&md5::Md5::digest(b"abc"));
    again.send(&Message::Invoke { hash, limits: Limits::default(), input: b"3 abc", call: None });
    match again.result().1 {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(String::from_utf8_lossy(&output), expected, "cached md5 on the device")
        }
        other => panic!("md5 invoke: {other:?} {:?}", last_logs()),
    }
    // A wasm-only signer may not push native code.
    assert_eq!(
        again.push(Format::NativeArmv6, &native_blob(&root.join("native/spin.c"), &WASM_ONLY)),
        Reply::Error(11)
    );
    drop(again);

    // A blob that never returns ends at its deadline; the device keeps answering.
    let spin = native_blob(&root.join("native/spin.c"), &DEVELOPER);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::NativeArmv6, &spin), Reply::PushOk(sha256(&spin)));
    let started = Instant::now();
    let limits = Limits { deadline_ms: 300, ..Limits::default() };
    client.send(&Message::Invoke { hash: sha256(&spin), limits, input: b"", call: None });
    let result = client.result().1;
    assert!(matches!(result, Reply::Result { status: JobStatus::Deadline, .. }), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "ended near its deadline");
    let logs = last_logs();
    assert!(logs.contains(&"spinning".to_string()), "logs written before the deadline are kept: {logs:?}");
    assert!(logs.iter().any(|line| line.contains("deadline")), "the deadline is reported: {logs:?}");
    drop(client);
    still_answers(&device);

    // Faults inside a blob end the job with Trap and a report; the kernel goes on.
    for (source, kind) in [("native/bad_load.c", "data abort"), ("native/undefined.c", "undefined instruction")] {
        let blob = native_blob(&root.join(source), &DEVELOPER);
        let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
        assert_eq!(client.push(Format::NativeArmv6, &blob), Reply::PushOk(sha256(&blob)));
        client.send(&Message::Invoke { hash: sha256(&blob), limits: Limits::default(), input: b"", call: None });
        let result = client.result().1;
        assert!(matches!(result, Reply::Result { status: JobStatus::Trap, .. }), "{source}: {result:?}");
        let logs = last_logs();
        assert!(logs.iter().any(|line| line.starts_with("fault: ") && line.contains(kind)), "{source}: {logs:?}");
        if kind == "data abort" {
            assert!(logs.iter().any(|line| line.contains("far=0xf0000000")), "{logs:?}");
        }
        drop(client);
        still_answers(&device);
    }

    // And the md5 blob still runs after all that.
    let mut last = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    last.send(&Message::Invoke { hash, limits: Limits::default(), input: b"3 abc", call: None });
    assert!(matches!(last.result().1, Reply::Result { status: JobStatus::Ok, .. }));
    let _ = std::fs::remove_file(config);
}

/// Sends a discovery probe; the advert's load state if one came back.
fn advert_state(udp: &UdpSocket, port: u16) -> Option<wire::discovery::LoadState> {
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 11 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    for _ in 0..5 {
        udp.send_to(&probe, ("127.0.0.1", port)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            let advert = Advert::new_checked(&datagram[..len]).unwrap();
            return Some(AdvertRepr::parse(&advert).unwrap().state);
        }
    }
    None
}

/// A native blob is preempted at every 1 ms frame tick: while md5 computes 10^6 digests (seconds
/// of guest time) UDP echo and discovery answer, a second client's session opens, answers a Ping
/// and its Invoke is queued and runs after; the digest is right; a client that leaves mid-run
/// has its job aborted and the next job runs; a native job's socket is freed however it ends
/// (abort, deadline, trap, job stack overflow, exit); registers and stack survive preemption.
#[test]
fn native_blob_does_not_stop_the_device() {
    use md5::Digest;
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = config_file_named("-preempt");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let md5 = native_blob(&root.join("../guest-examples/c/md5.c"), &DEVELOPER);
    let hash = sha256(&md5);
    let mut first = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(first.push(Format::NativeArmv6, &md5), Reply::PushOk(hash));
    let limits = Limits { deadline_ms: 60_000, ..Limits::default() };
    let started = Instant::now();
    first.send(&Message::Invoke { hash, limits, input: b"1000000 jon", call: None });
    assert_eq!(first.next(), Reply::Progress, "Progress while the native job runs");

    // Meanwhile: UDP echo, discovery (Busy), a second session (Ping, then a queued Invoke).
    let echo_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    echo_socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut echoes = 0;
    let mut round_trips = Vec::new();
    for index in 0..20u32 {
        let sent = Instant::now();
        echo_socket.send_to(&index.to_le_bytes(), ("127.0.0.1", device.echo)).unwrap();
        let mut reply = [0u8; 16];
        if let Ok((4, _)) = echo_socket.recv_from(&mut reply) {
            if reply[..4] == index.to_le_bytes() {
                echoes += 1;
                round_trips.push(sent.elapsed());
            }
        }
    }
    round_trips.sort();
    eprintln!(
        "preempt: UDP echo answered {echoes} of 20 during native md5, median round trip {:?}",
        round_trips.get(round_trips.len() / 2)
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(advert_state(&udp, device.discovery), Some(wire::discovery::LoadState::Busy), "discovery answers Busy");
    let mut second = Client::connect(device.tcp, &CLIENT_SECRET).expect("a session opens while the blob runs");
    second.send(&Message::Ping { nonce: 77 });
    assert_eq!(second.next(), Reply::Pong(77), "Ping answered while the blob runs");
    second.send(&Message::Invoke { hash, limits: Limits::default(), input: b"3 abc", call: None });
    let busy_checks_done = started.elapsed();

    let (progress, result) = first.result();
    let first_done = started.elapsed();
    let expected = hex_line(&md5::Md5::digest(b"jon"));
    match result {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(String::from_utf8_lossy(&output), expected, "digest")
        }
        other => panic!("md5 10^6: {other:?} {:?}", last_logs()),
    }
    let stats = LAST_STATS.lock().unwrap().expect("stats");
    eprintln!(
        "preempt: native md5 10^6: time_us {} cpu_us {} ({:.3}), {} more Progress, host wall {:?} (checks done at {:?})",
        stats.time_us,
        stats.cpu_us,
        stats.cpu_us as f64 / stats.time_us as f64,
        progress,
        first_done,
        busy_checks_done
    );
    assert!(echoes >= 18, "UDP echo answered {echoes} of 20 during the native job");
    assert!(busy_checks_done < first_done, "the checks ran while the job ran");
    assert!(
        stats.cpu_us <= stats.time_us && stats.cpu_us * 10 >= stats.time_us * 8,
        "the blob held most frames: {stats:?}"
    );
    match second.result().1 {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(String::from_utf8_lossy(&output), hex_line(&md5::Md5::digest(b"abc")), "queued job's digest")
        }
        other => panic!("queued md5: {other:?} {:?}", last_logs()),
    }
    drop(first);
    drop(second);

    // A client that leaves mid-run: its job is aborted; the next job runs.
    let before = counters(&mut device);
    let mut leaving = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    leaving.send(&Message::Invoke { hash, limits, input: b"1000000 jon", call: None });
    assert_eq!(leaving.next(), Reply::Progress);
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = counters(&mut device);
    while after["jobs_aborted"] == before["jobs_aborted"] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = counters(&mut device);
    }
    assert_eq!(after["jobs_aborted"], before["jobs_aborted"] + 1, "{after:?}");
    assert_eq!(after["jobs_ok"], before["jobs_ok"], "the aborted job did not finish: {after:?}");
    assert_eq!(advert_state(&udp, device.discovery), Some(wire::discovery::LoadState::Idle), "idle again");
    let mut next = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    next.send(&Message::Invoke { hash, limits: Limits::default(), input: b"3 abc", call: None });
    assert!(matches!(next.result().1, Reply::Result { status: JobStatus::Ok, .. }), "{:?}", last_logs());
    drop(next);

    // A native job's socket is freed however it ends: abort (client left), deadline, trap, a job
    // stack overflow (the guard page: a data abort) and exit; each next job binds the same port.
    let bind_then = native_blob(&root.join("native/bind_then.c"), &DEVELOPER);
    let bind_hash = sha256(&bind_then);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::NativeArmv6, &bind_then), Reply::PushOk(bind_hash));
    let mut leaving = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    leaving.send(&Message::Invoke { hash: bind_hash, limits, input: b"7001 spin", call: None });
    assert_eq!(leaving.next(), Reply::Progress, "the spinning blob runs");
    drop(leaving);
    std::thread::sleep(Duration::from_millis(300));
    let short = Limits { deadline_ms: 300, ..Limits::default() };
    client.send(&Message::Invoke { hash: bind_hash, limits: short, input: b"7001 spin", call: None });
    let result = client.result().1;
    assert!(
        matches!(result, Reply::Result { status: JobStatus::Deadline, .. }),
        "after an abort: {result:?} {:?}",
        last_logs()
    );
    assert!(last_logs().contains(&"bound".to_string()), "the port was free after the abort: {:?}", last_logs());
    for (input, kind) in [(&b"7001 trap"[..], "data abort"), (&b"7001 deep"[..], "data abort")] {
        client.send(&Message::Invoke { hash: bind_hash, limits: Limits::default(), input, call: None });
        let result = client.result().1;
        assert!(matches!(result, Reply::Result { status: JobStatus::Trap, .. }), "{result:?} {:?}", last_logs());
        let logs = last_logs();
        assert!(logs.contains(&"bound".to_string()), "the port was free: {logs:?}");
        let fault = logs
            .iter()
            .find(|line| line.starts_with("fault: ") && line.contains(kind))
            .unwrap_or_else(|| panic!("{logs:?}"));
        eprintln!("preempt: {} -> {fault}", String::from_utf8_lossy(input));
        if input.ends_with(b"deep") {
            // Below the job stack: a page translation fault in its unmapped guard page (DFSR
            // status 0b0111, ARM1176 TRM 3.2.23), or, when a frame larger than the guard skips
            // it (gcc inlines `deep` into 9 KiB frames), a page permission fault (0b1111) on the
            // kernel stack below, which user mode may not write.
            let dfsr =
                fault.split("dfsr=0x").nth(1).and_then(|rest| u32::from_str_radix(&rest[..8], 16).ok()).expect("dfsr");
            assert!(matches!(dfsr & 0x40f, 0x7 | 0xf), "the overflow stops below the job stack: {fault}");
            assert!(fault.contains("(translation)") || fault.contains("(permission)"), "{fault}");
        }
    }
    client.send(&Message::Invoke { hash: bind_hash, limits: Limits::default(), input: b"7001 exit", call: None });
    let result = client.result().1;
    assert!(
        matches!(result, Reply::Result { status: JobStatus::Ok, exit_value: 100.., .. }),
        "{result:?} {:?}",
        last_logs()
    );
    client.send(&Message::Invoke { hash: bind_hash, limits: Limits::default(), input: b"7001 return", call: None });
    let result = client.result().1;
    assert!(
        matches!(result, Reply::Result { status: JobStatus::Ok, exit_value: 0.., .. }),
        "after exit: {result:?} {:?}",
        last_logs()
    );
    drop(client);

    // Registers and stack survive preemption: tests/native/registers.c against the same in Rust.
    let registers = native_blob(&root.join("native/registers.c"), &DEVELOPER);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::NativeArmv6, &registers), Reply::PushOk(sha256(&registers)));
    let rounds = 1000;
    client.send(&Message::Invoke {
        hash: sha256(&registers),
        limits,
        input: rounds.to_string().as_bytes(),
        call: None,
    });
    match client.result().1 {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(output, registers_expected(rounds), "registers.c output")
        }
        other => panic!("registers: {other:?} {:?}", last_logs()),
    }
    let stats = LAST_STATS.lock().unwrap().expect("stats");
    eprintln!("preempt: registers.c {rounds} rounds: time_us {} cpu_us {}", stats.time_us, stats.cpu_us);
    assert!(stats.time_us > 50_000, "the blob ran over 50 frames, so it was preempted often: {stats:?}");
    drop(client);
    still_answers(&device);
    let _ = std::fs::remove_file(config);
}

/// What tests/native/registers.c outputs for `rounds`.
fn registers_expected(rounds: u32) -> Vec<u8> {
    fn dive(depth: u32, seed: u32) -> u32 {
        let buffer: Vec<u32> =
            (0..128).map(|i| seed.wrapping_mul(2654435761).wrapping_add(i).wrapping_add(depth)).collect();
        let mut sum = if depth != 0 { dive(depth - 1, seed ^ depth.wrapping_mul(40503)) } else { 0 };
        for value in buffer {
            sum = sum.wrapping_mul(31).wrapping_add(value);
        }
        sum
    }
    let mut check = 0u32;
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    for round in 0..rounds {
        check = check.wrapping_mul(7).wrapping_add(dive(64, round));
        for i in 0..2000u32 {
            a = a * 0.75 + b;
            b = b * 0.5 + c;
            c = c * 0.25 + d;
            d = d * 0.125 + e;
            e = e * 0.875 + f;
            f = f * 0.625 + g;
            g = g * 0.375 + h;
            h = h * 0.0625 + f64::from(i & 7);
        }
    }
    let mut out = check.to_le_bytes().to_vec();
    for value in [a, b, c, d, e, f, g, h] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

#[test]
fn missing_configuration_is_reported_and_nothing_is_accepted() {
    let mut device = boot(None);
    let text = device.qemu.output();
    assert!(text.contains("offload: no valid configuration"), "{text}");
    let mut stream = TcpStream::connect(("127.0.0.1", device.tcp)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(&[1, 0, 1]);
    let mut buffer = [0u8; 16];
    assert!(matches!(stream.read(&mut buffer), Ok(0) | Err(_)), "no offload service without configuration");
    device.qemu.kill();
}

/// Issue 13: the boot configuration (the device's secret keys) is gone from RAM once the kernel
/// has read it. After boot and a job, the whole 1 MiB window QEMU's loader filled
/// (`BOOT_CONFIG_BASE`), read from outside through QMP `pmemsave`, is zero, and the device still
/// uses its keys: a signed advert with its Noise key, a new session's handshake and a job.
#[test]
fn boot_configuration_is_wiped_after_boot() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let config = config_file_named("-wipe");
    let loaded = std::fs::read(&config).unwrap();
    assert!(loaded.len() > 256 && loaded.iter().any(|&byte| byte != 0), "a configuration to wipe");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let echo = signed(ECHO, &DEVELOPER);
    let hash = sha256(&echo);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::Wasm, &echo), Reply::PushOk(hash));
    client.send(&Message::Invoke { hash, limits: Limits::default(), input: b"keys kept", call: None });
    assert_eq!(
        client.result().1,
        Reply::Result { status: JobStatus::Ok, exit_value: 9, output: b"keys kept".to_vec() }
    );
    drop(client);

    let base = jos_kcore::memory_map::BOOT_CONFIG_BASE;
    let window = device.qemu.read_physical(base as u64, jos_kcore::memory_map::BOOT_CONFIG_SIZE).expect("pmemsave");
    let left: Vec<usize> = window.iter().enumerate().filter(|(_, &byte)| byte != 0).map(|(at, _)| at).collect();
    assert!(
        left.is_empty(),
        "{} non-zero bytes left in the boot configuration window, the first at {:#010x}; the configuration's first 16 bytes there: {:02x?}",
        left.len(),
        base + left[0],
        &window[..16]
    );

    // The keys were kept: a signed advert with the device's Noise key, a new handshake, a job.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 0x5150 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    let mut answered = None;
    for _ in 0..5 {
        udp.send_to(&probe, ("127.0.0.1", device.discovery)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            answered = Some(len);
            break;
        }
    }
    let advert = Advert::new_checked(&datagram[..answered.expect("advert")]).unwrap();
    assert!(advert.verify_signature());
    let repr = AdvertRepr::parse(&advert).unwrap();
    assert_eq!(repr.noise_key, noise::public_key(&DEVICE_SECRET));
    still_answers(&device);
    let mut again = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake after the wipe");
    again.send(&Message::Invoke { hash, limits: Limits::default(), input: b"again", call: None });
    assert_eq!(again.result().1, Reply::Result { status: JobStatus::Ok, exit_value: 5, output: b"again".to_vec() });
    device.qemu.kill();
    let _ = std::fs::remove_file(config);
}

/// [`ECHO`] after 40 million loop turns first (a job of many slices: seconds on QEMU).
fn slow_echo() -> String {
    let spin = "(local $i i32) (local.set $i (i32.const 40000000)) \
        (loop $turn (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $turn (local.get $i)))";
    let slow = ECHO.replacen("(local $n i32)", &format!("(local $n i32) {spin}"), 1);
    assert_ne!(slow, ECHO, "ECHO declares $n");
    slow
}

/// The device's offload counters, from a fresh `offload` console command.
fn counters(device: &mut Device) -> std::collections::HashMap<String, u64> {
    const PREFIX: &str = "offload: counters ";
    let complete_lines = |text: &str| -> Vec<String> {
        text.split_inclusive('\n')
            .filter(|line| line.ends_with('\n') && line.starts_with(PREFIX))
            .map(|line| line.trim_end().to_string())
            .collect()
    };
    let before = complete_lines(&device.qemu.output()).len();
    device.qemu.send("offload\r").expect("type a command");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(line) = complete_lines(&device.qemu.output()).get(before) {
            return line[PREFIX.len()..]
                .split_whitespace()
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
                    (key.to_string(), value.parse().unwrap_or_else(|_| panic!("not a number: {line}")))
                })
                .collect();
        }
        assert!(Instant::now() < deadline, "no counters line; console:\n{}", device.qemu.output());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the device closed `stream` without sending a byte (waits up to 20 s).
fn closed_without_answer(stream: &mut TcpStream) -> Result<(), String> {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(0) => Ok(()),
        Ok(len) => Err(format!("the device answered {len} bytes: {:02x?}", &buffer[..len])),
        Err(error)
            if matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) =>
        {
            Ok(())
        }
        Err(error) => Err(format!("the connection stayed open: {error}")),
    }
}

#[test]
fn replayed_hello_and_altered_ciphertext_are_refused_on_the_device() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let config = config_file_named("-security");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));

    // (a) A client's first handshake message, captured from a real session, replayed on a new
    // connection: no handshake answer, the connection closes, one replay counted.
    let (client, hello) = Client::connect_with_hello(device.tcp, &CLIENT_SECRET);
    let mut client = client.expect("handshake");
    client.send(&Message::Ping { nonce: 1 });
    assert_eq!(client.next(), Reply::Pong(1));
    let start = counters(&mut device);
    let mut replay = TcpStream::connect(("127.0.0.1", device.tcp)).unwrap();
    replay.write_all(&hello).unwrap();
    closed_without_answer(&mut replay).unwrap_or_else(|error| panic!("replayed Hello: {error}"));
    let after = counters(&mut device);
    assert_eq!(after["replays_refused"], start["replays_refused"] + 1, "{after:?}");
    assert_eq!(after["sessions_opened"], start["sessions_opened"], "the replay opened no session: {after:?}");
    // The session whose Hello was replayed is untouched.
    client.send(&Message::Ping { nonce: 2 });
    assert_eq!(client.next(), Reply::Pong(2));
    drop(client);

    // (b) One flipped ciphertext bit kills only that session: a second session's job, running
    // meanwhile, finishes correctly, and a new session afterwards works.
    let slow = signed(&slow_echo(), &DEVELOPER);
    let slow_hash = sha256(&slow);
    let mut victim = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    let mut bystander = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    victim.send(&Message::Ping { nonce: 3 });
    assert_eq!(victim.next(), Reply::Pong(3));
    assert_eq!(bystander.push(Format::Wasm, &slow), Reply::PushOk(slow_hash));
    bystander.send(&Message::Invoke { hash: slow_hash, limits: Limits::default(), input: b"bystander", call: None });
    assert_eq!(bystander.next(), Reply::Progress, "the bystander's job runs");
    let before = counters(&mut device);
    victim.send_altered(&Message::Ping { nonce: 4 });
    closed_without_answer(victim.inner.stream()).unwrap_or_else(|error| panic!("altered frame: {error}"));
    let during = counters(&mut device);
    assert_eq!(during["jobs_ok"], before["jobs_ok"], "the bystander's job still ran when the victim's session died");
    let (_, result) = bystander.result();
    assert_eq!(result, Reply::Result { status: JobStatus::Ok, exit_value: 9, output: b"bystander".to_vec() });
    let stats = LAST_STATS.lock().unwrap().expect("stats of the last result");
    assert!(stats.cpu_us > 0 && stats.cpu_us <= stats.time_us, "cpu time within the job's time: {stats:?}");
    let after = counters(&mut device);
    assert_eq!(after["sessions_killed"], before["sessions_killed"] + 1, "{after:?}");
    assert_eq!(after["jobs_ok"], before["jobs_ok"] + 1, "{after:?}");
    bystander.send(&Message::Ping { nonce: 5 });
    assert_eq!(bystander.next(), Reply::Pong(5), "the bystander's session goes on");
    drop(bystander);
    let echo = signed(ECHO, &DEVELOPER);
    let mut fresh = Client::connect(device.tcp, &CLIENT_SECRET).expect("a new session after the kill");
    assert_eq!(fresh.push(Format::Wasm, &echo), Reply::PushOk(sha256(&echo)));
    fresh.send(&Message::Invoke { hash: sha256(&echo), limits: Limits::default(), input: b"afterwards", call: None });
    assert_eq!(
        fresh.result().1,
        Reply::Result { status: JobStatus::Ok, exit_value: 10, output: b"afterwards".to_vec() }
    );
    drop(fresh);
    device.qemu.kill();
    let _ = std::fs::remove_file(config);
}

/// The address of `name` in the kernel ELF (or of the mangled Rust symbol ending in `name`, e.g.
/// `3mmu6TABLES` for the page tables).
fn kernel_symbol(name: &str) -> u32 {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(kernel_elf("")).expect("kernel ELF");
    let file = object::File::parse(&*bytes).expect("ELF");
    let symbol = file
        .symbols()
        .find(|symbol| {
            symbol.name().is_ok_and(|symbol_name| {
                symbol_name == name || (symbol_name.starts_with("_R") && symbol_name.ends_with(name))
            })
        })
        .unwrap_or_else(|| panic!("kernel symbol {name}"));
    symbol.address() as u32
}

/// Issue 13: a hostile native corpus (tests/native/hostile.c), signed with the `native` right and
/// pushed through the offload service, one job per attack. Each ends in Trap (with a `fault:` line
/// naming the kind), Deadline, or a -JOS_EFAULT return, and after each the device still answers UDP
/// echo, discovery and a session, runs a normal job with the right result, and has its heap where
/// it was. On a kernel that runs native code privileged most of these writes succeed silently.
/// Then a job finds nothing of the previous job in its stack, bss or page padding
/// (tests/native/leftovers.c).
#[test]
fn hostile_native_blobs_cannot_harm_the_device() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = config_file_named("-hostile");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    let hostile = native_blob(&root.join("native/hostile.c"), &DEVELOPER);
    let hash = sha256(&hostile);
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(client.push(Format::NativeArmv6, &hostile), Reply::PushOk(hash));
    drop(client);
    // Each job on its own session, closed afterwards (a session's buffers keep the size of its
    // largest message while it lives).
    let invoke = |input: &str, deadline_ms: u32| {
        let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
        let limits = Limits { deadline_ms, ..Limits::default() };
        client.send(&Message::Invoke { hash, limits, input: input.as_bytes(), call: None });
        client.result().1
    };
    let settled_heap = |expected: Option<u32>| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let free = free_memory(&udp, device.discovery);
            if expected.is_none_or(|expected| free == expected) || Instant::now() > deadline {
                return free;
            }
        }
    };
    // A normal run first: the blob works, and the heap figure to come back to.
    assert!(
        matches!(invoke("ok", 0), Reply::Result { status: JobStatus::Ok, exit_value: 42, .. }),
        "{:?}",
        last_logs()
    );
    still_answers(&device);
    let heap = settled_heap(None);

    let kernel_code = kernel_symbol("kernel_main");
    let kernel_data = kernel_symbol("__bss_start");
    let vectors = kernel_symbol("jos_vectors");
    let tables = kernel_symbol("3mmu6TABLES");
    let svc_stack = kernel_symbol("__svc_stack_top") - 64;
    let irq_stack = kernel_symbol("__irq_stack_top") - 64;
    let stubs = kernel_symbol("jos_user_stubs");
    let heap_base = jos_kcore::memory_map::HEAP_BASE as u32;
    let dma = jos_kcore::memory_map::DMA_BASE as u32;
    let config_base = jos_kcore::memory_map::BOOT_CONFIG_BASE as u32;
    // MMIO (BCM2835 ARM Peripherals): UART0, system timer, interrupt controller, DWC2 USB, GPIO,
    // the power manager's watchdog (PM_RSTC).
    let mmio = [0x2020_1000u32, 0x2000_3000, 0x2000_B200, 0x2098_0000, 0x2020_0000, 0x2010_001C];

    enum Expect {
        Trap(&'static str),
        Deadline,
        Fault,
    }
    use Expect::*;
    let mut attacks: Vec<(String, Expect)> = vec![
        (format!("write {kernel_code:x}"), Trap("data abort (permission)")),
        (format!("write {kernel_data:x}"), Trap("data abort (permission)")),
        (format!("write {vectors:x}"), Trap("data abort (permission)")),
        (format!("write {tables:x}"), Trap("data abort (permission)")),
        (format!("write {heap_base:x}"), Trap("data abort (permission)")),
        (format!("write {svc_stack:x}"), Trap("data abort (permission)")),
        (format!("write {irq_stack:x}"), Trap("data abort (permission)")),
        (format!("write {dma:x}"), Trap("data abort (permission)")),
        (format!("write {stubs:x}"), Trap("data abort (permission)")),
        ("write 0".to_string(), Trap("data abort (translation)")),
        ("selfwrite".to_string(), Trap("data abort (permission)")),
        (format!("read {config_base:x}"), Trap("data abort (permission)")),
        (format!("read {kernel_data:x}"), Trap("data abort (permission)")),
        (format!("jump {kernel_code:x}"), Trap("prefetch abort (permission)")),
        ("cpsid".to_string(), Deadline),
        ("msr".to_string(), Deadline),
        ("spin".to_string(), Deadline),
        ("mmuoff".to_string(), Trap("undefined instruction")),
        ("ttbr".to_string(), Trap("undefined instruction")),
        ("dacr".to_string(), Trap("undefined instruction")),
        ("dcache".to_string(), Trap("undefined instruction")),
        ("icache".to_string(), Trap("undefined instruction")),
        ("tlb".to_string(), Trap("undefined instruction")),
        ("svc200".to_string(), Trap("unknown system call (svc #200)")),
        ("svc9".to_string(), Trap("unknown system call (svc #9)")),
        (format!("out {kernel_code:x}"), Fault),
        (format!("out {config_base:x}"), Fault),
        ("out f0000000".to_string(), Fault),
        ("out fffffff0".to_string(), Fault),
        (format!("log {kernel_data:x}"), Fault),
        (format!("random {kernel_data:x}"), Fault),
        (format!("random {stubs:x}"), Fault),
        (format!("inread {kernel_data:x}"), Fault),
        ("outwrap".to_string(), Fault),
        ("inwrap".to_string(), Fault),
        ("udpsend".to_string(), Fault),
        (format!("udpkernel {kernel_data:x}"), Fault),
        (format!("udprecv {kernel_data:x}"), Fault),
        ("execdata".to_string(), Trap("prefetch abort (permission)")),
        ("execstack".to_string(), Trap("prefetch abort (permission)")),
        ("overflow".to_string(), Trap("data abort")),
        ("ldrd".to_string(), Trap("data abort (alignment)")),
    ];
    attacks.extend(mmio.iter().map(|address| (format!("write {address:x}"), Trap("data abort (permission)"))));
    let mut failures = Vec::new();
    for (input, expect) in &attacks {
        let deadline = if matches!(expect, Deadline) { 300 } else { 5_000 };
        let result = invoke(input, deadline);
        let logs = last_logs();
        let ok = match (expect, &result) {
            (Trap(kind), Reply::Result { status: JobStatus::Trap, .. }) => {
                logs.iter().any(|line| line.starts_with("fault: ") && line.contains(kind))
            }
            (Deadline, Reply::Result { status: JobStatus::Deadline, .. }) => true,
            (Fault, Reply::Result { status: JobStatus::Ok, exit_value, .. }) => {
                *exit_value == -(jos_abi::ErrorCode::BadAddress as i32)
            }
            _ => false,
        };
        eprintln!("hostile: {input:<24} -> {result:?} {}", logs.last().map(String::as_str).unwrap_or(""));
        if !ok {
            failures.push(format!("{input}: {result:?} {logs:?}"));
        }
        // The device is unharmed: echo, discovery, a session, a normal job, the heap.
        still_answers(&device);
        assert!(
            matches!(invoke("ok", 0), Reply::Result { status: JobStatus::Ok, exit_value: 42, .. }),
            "after {input}: {:?}",
            last_logs()
        );
        let free = settled_heap(Some(heap));
        assert_eq!(free, heap, "the heap after {input}");
    }
    assert!(failures.is_empty(), "attacks that did not end in Trap, Deadline or -JOS_EFAULT:\n{}", failures.join("\n"));
    // One job sees nothing of the previous one: a job fills its stack, its bss and the rest of
    // its last page with a marker; the next job of the same blob (same region size, the same
    // heap block) finds only zeros there. `both` shows the probe sees a marker when one is there.
    let leftovers = native_blob(&root.join("native/leftovers.c"), &DEVELOPER);
    let leftovers_hash = sha256(&leftovers);
    let mut session = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(session.push(Format::NativeArmv6, &leftovers), Reply::PushOk(leftovers_hash));
    let mut leftover_job = |input: &[u8]| {
        session.send(&Message::Invoke { hash: leftovers_hash, limits: Limits::default(), input, call: None });
        match session.result().1 {
            Reply::Result { status: JobStatus::Ok, exit_value, .. } => exit_value,
            other => panic!("leftovers {}: {other:?} {:?}", String::from_utf8_lossy(input), last_logs()),
        }
    };
    let seen_in_one_job = leftover_job(b"both");
    assert!(seen_in_one_job > 49_000, "the probe sees its own marker: {seen_in_one_job} non-zero words");
    assert_eq!(leftover_job(b"dirty"), 0);
    assert_eq!(leftover_job(b"peek"), 0, "non-zero words the previous job left in the stack, bss or page");
    drop(session);
    // The offloaded md5 still gives the right digest at the end.
    use md5::Digest;
    let md5 = native_blob(&root.join("../guest-examples/c/md5.c"), &DEVELOPER);
    let mut last = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(last.push(Format::NativeArmv6, &md5), Reply::PushOk(sha256(&md5)));
    last.send(&Message::Invoke { hash: sha256(&md5), limits: Limits::default(), input: b"3 abc", call: None });
    match last.result().1 {
        Reply::Result { status: JobStatus::Ok, output, .. } => {
            assert_eq!(String::from_utf8_lossy(&output), hex_line(&md5::Md5::digest(b"abc")))
        }
        other => panic!("md5 after the corpus: {other:?}"),
    }
    let _ = std::fs::remove_file(config);
}

/// Issue 14: a native job's memory is zeroed when it first touches it, not all at load
/// (tests/native/bigbss.c, a 6 MiB bss over several sections). A job fills its whole bss with a
/// marker; the next job of the same blob (the same heap block) reads its whole bss, the far end
/// first, and finds only zeros. A system call given a buffer the job never touched reads zeros
/// (output, log), and one that writes into such a buffer (input) keeps what it wrote. Each check
/// follows a `fill`, so stale bytes would be there to see.
#[test]
fn native_memory_is_zeroed_on_first_touch() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = config_file_named("-first-touch");
    let mut device = boot(Some(&config));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let blob = native_blob(&root.join("native/bigbss.c"), &DEVELOPER);
    let hash = sha256(&blob);
    let mut session = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    assert_eq!(session.push(Format::NativeArmv6, &blob), Reply::PushOk(hash));
    let mut run = |input: &[u8]| {
        session.send(&Message::Invoke { hash, limits: Limits::default(), input, call: None });
        session.result().1
    };
    // Executing never-touched bss ends the job: it is not committed for an instruction fetch.
    match run(b"exec") {
        Reply::Result { status: JobStatus::Trap, .. } => {
            let logs = last_logs();
            assert!(logs.iter().any(|line| line.contains("prefetch abort (translation)")), "{logs:?}")
        }
        other => panic!("bigbss exec: {other:?} {:?}", last_logs()),
    }
    let mut job = |input: &[u8]| match run(input) {
        Reply::Result { status: JobStatus::Ok, exit_value, output, .. } => (exit_value, output),
        other => {
            panic!("bigbss {}: {other:?} {:?}", String::from_utf8_lossy(&input[..input.len().min(16)]), last_logs())
        }
    };
    let words = (6 * 1024 * 1024 + 1000) / 4;
    // The probe sees its own marker: every word, and the far end read first.
    assert_eq!(job(b"both").0, words + 1, "the probe counts the marker");
    assert_eq!(job(b"fill").0, 0);
    assert_eq!(job(b"peek").0, 0, "non-zero words of the previous job in the bss");
    // Never-touched memory read by the kernel on the job's behalf.
    assert_eq!(job(b"fill").0, 0);
    assert_eq!(job(b"out"), (0, vec![0u8; 4096]), "output_write of never-touched bss");
    assert_eq!(job(b"fill").0, 0);
    assert_eq!(job(b"log").0, 0);
    assert_eq!(last_logs(), vec!["\0".repeat(48)], "log of never-touched bss");
    // Never-touched memory written by the kernel (input_read, several calls), then read back.
    assert_eq!(job(b"fill").0, 0);
    let mut input = b"inread ".to_vec();
    input.extend((0..10_000u32).map(|i| (i % 251 + 1) as u8));
    let (rest, output) = job(&input);
    assert!(output == input, "input_read into never-touched bss came back changed");
    assert_eq!(rest, 0, "non-zero bytes after the input in the never-touched page");
    // The device still runs a normal job afterwards.
    assert_eq!(job(b"peek").0, 0);
    still_answers(&device);
    let _ = std::fs::remove_file(config);
}

/// An AOT build of guest-examples md5 (jos-build `--format aot`, `push --aot`'s 240-page memory
/// cap), signed by `seed`.
fn aot_md5(seed: &[u8; 32]) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::env::temp_dir().join(format!("jos-offload-aot-md5-{}.blob", std::process::id()));
    let request = jos_build::BuildRequest {
        sources: vec![root.join("../guest-examples/c/md5.c")],
        format: jos_build::Format::Aot,
        output: Some(output.clone()),
        max_memory_pages: 240,
        keep_names: false,
        verbose: false,
    };
    jos_build::build(&request).unwrap_or_else(|e| panic!("AOT md5: {e}"));
    let blob = std::fs::read(&output).unwrap();
    let _ = std::fs::remove_file(output);
    jos_abi::signature::sign_blob(&blob, seed, true).unwrap()
}

/// A native job's deadline does not outlive it: its timer compare stays set after the job and
/// matches later, here while a wasm job runs; the next native job (a plain blob, then an AOT one)
/// must run to its end, not be ended at its first step with Deadline by that stale match
/// (`cargo xtask bench --full` met it at its first AOT job, after the long wasm series).
#[test]
fn a_native_deadline_does_not_end_a_later_job() {
    use md5::Digest;
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = config_file_named("-stale-deadline");
    let mut device = boot_with(Some(&config), Some(0));
    device.qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    let md5 = native_blob(&root.join("../guest-examples/c/md5.c"), &DEVELOPER);
    let aot = aot_md5(&DEVELOPER);
    let wasm = jos_tests::build_signed(&root.join("../guest-examples/c/md5.c"), Format::Wasm, &DEVELOPER)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut client = Client::connect(device.tcp, &CLIENT_SECRET).expect("handshake");
    for (format, blob) in [(Format::NativeArmv6, &md5), (Format::NativeArmv6, &aot), (Format::Wasm, &wasm)] {
        assert_eq!(client.push(format, blob), Reply::PushOk(sha256(blob)));
    }
    let expected = hex_line(&md5::Md5::digest(b"abc"));
    let short = Limits { deadline_ms: 300, ..Limits::default() };
    for (later, name) in [(&md5, "native md5"), (&aot, "AOT md5")] {
        // A native job with a short deadline, then a wasm job that runs past that deadline (the
        // stale compare matches meanwhile), then the later native job with the default deadline.
        for (blob, limits, input) in
            [(&md5, short, "3 abc"), (&wasm, Limits::default(), "40000"), (later, Limits::default(), "3 abc")]
        {
            let started = Instant::now();
            client.send(&Message::Invoke { hash: sha256(blob), limits, input: input.as_bytes(), call: None });
            match client.result().1 {
                Reply::Result { status: JobStatus::Ok, output, .. } if blob != &wasm => {
                    assert_eq!(String::from_utf8_lossy(&output), expected, "{name}")
                }
                Reply::Result { status: JobStatus::Ok, .. } => {
                    assert!(started.elapsed() > Duration::from_millis(400), "the wasm job outlasts the deadline")
                }
                other => panic!("{name} after an earlier job's deadline passed: {other:?} {:?}", last_logs()),
            }
        }
    }
    let _ = std::fs::remove_file(config);
}

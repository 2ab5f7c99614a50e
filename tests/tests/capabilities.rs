//! Capabilities under QEMU: a job gets the rights of the signer that verified it. The `echo`
//! guest (C as wasm and native, Rust as wasm, built by jos-build (the builder `jos-cli build` uses)) serves UDP on a job port the
//! policy grants, reached from the host through a QEMU port forward; a signer without `net`, a
//! port outside the policy range, sockets freed after every way a job ends (a second job binds
//! the same port, the heap returns to where it was), `screen_print` and a GPIO write/read round
//! trip, while the device keeps answering discovery and UDP echo. A second boot (under `-icount`)
//! checks what `yield` means: a job that yields gives the rest of its 1 ms frame back, so an idle
//! echo job (wasm or native) holds the CPU for a small part of its time and still answers at
//! once, a job's yields each take a frame, and a job that never yields still gets whole frames.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jos_abi::config::PortRange;
use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights};
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_abi::ErrorCode;
use jos_offload::host;
use jos_offload::noise;
use jos_tests::config::{TestConfig, STANDARD_POLICY};
use jos_tests::{free_port, kernel_elf, BootOptions, Qemu};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
/// Holds every right (both formats, net, screen, gpio).
const TRUSTED: [u8; 32] = [0x64; 32];
/// May sign both formats, but its jobs get no capabilities.
const PLAIN: [u8; 32] = [0x65; 32];
/// The policy's job ports in this test.
const JOB_PORTS: PortRange = PortRange { first: 7000, last: 7009 };
const JOB_PORT: u16 = 7000;

const PERMISSION_DENIED: i32 = -(ErrorCode::PermissionDenied as i32);

/// Prints a line, then drives GPIO 17 high and low reading it back each time, then tries a
/// kernel pin (14) and a pin that does not exist (60), then binds UDP 7001 twice (and ends
/// without closing). Output: eight little-endian i32 results (screen_print, read after high,
/// read after low, write 14, read 60, write 17, first bind, second bind).
const DEVICES: &str = r#"
(module
  (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
  (import "jos" "gpio_write" (func $write (param i32 i32) (result i32)))
  (import "jos" "gpio_read" (func $read (param i32) (result i32)))
  (import "jos" "output_write" (func $output (param i32 i32) (result i32)))
  (import "jos" "udp_bind" (func $bind (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "capabilities test line")
  (func (export "run") (result i32)
    (i32.store (i32.const 0) (call $print (i32.const 256) (i32.const 22)))
    (i32.store (i32.const 20) (call $write (i32.const 17) (i32.const 1)))
    (i32.store (i32.const 4) (call $read (i32.const 17)))
    (drop (call $write (i32.const 17) (i32.const 0)))
    (i32.store (i32.const 8) (call $read (i32.const 17)))
    (i32.store (i32.const 12) (call $write (i32.const 14) (i32.const 1)))
    (i32.store (i32.const 16) (call $read (i32.const 60)))
    (i32.store (i32.const 24) (call $bind (i32.const 7001)))
    (i32.store (i32.const 28) (call $bind (i32.const 7001)))
    (drop (call $output (i32.const 0) (i32.const 32)))
    (i32.const 0)))
"#;

/// Binds the port in its input (decimal digits) and then traps, runs out of fuel or spins
/// forever (input "PORT trap" / "PORT spin"); returns udp_bind's answer if that fails.
const BIND_THEN: &str = r#"
(module
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "udp_bind" (func $bind (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $handle i32)
    (drop (call $input_read (i32.const 0) (i32.const 16) (i32.const 0)))
    ;; Port: four ASCII digits at 0..4.
    (local.set $handle (call $bind
      (i32.add
        (i32.add (i32.mul (i32.sub (i32.load8_u (i32.const 0)) (i32.const 48)) (i32.const 1000))
                 (i32.mul (i32.sub (i32.load8_u (i32.const 1)) (i32.const 48)) (i32.const 100)))
        (i32.add (i32.mul (i32.sub (i32.load8_u (i32.const 2)) (i32.const 48)) (i32.const 10))
                 (i32.sub (i32.load8_u (i32.const 3)) (i32.const 48))))))
    (if (i32.lt_s (local.get $handle) (i32.const 0)) (then (return (local.get $handle))))
    (if (i32.eq (i32.load8_u (i32.const 5)) (i32.const 116)) (then unreachable))
    (loop $l (br $l))
    (i32.const 0)))
"#;

/// The test's boot configuration, in a file named after `tag` (each test of this file writes and
/// removes its own).
fn config_file(tag: &str) -> PathBuf {
    TestConfig::new("qemu-caps", DEVICE_SECRET, ADVERT_SEED)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&TRUSTED), SignerRights::ALL)
        .signer(public_key(&PLAIN), SignerRights::FORMATS)
        .limits(Limits { fuel: 20_000_000_000, ..STANDARD_POLICY.limits })
        .job_ports(JOB_PORTS)
        .write(tag)
}

/// The booted device and its forwarded host ports.
struct Device {
    qemu: Qemu,
    tcp: u16,
    discovery: u16,
    echo: u16,
    job: u16,
    outside: u16,
}

fn boot(config: &Path) -> Device {
    boot_with(config, None)
}

/// [`boot`] with `-icount shift=N` when `icount_shift` is set (guest time then counts
/// instructions, so the device's CPU figures do not follow the host's load).
fn boot_with(config: &Path, icount_shift: Option<u32>) -> Device {
    let (tcp, discovery, echo, job, outside) =
        (free_port(false), free_port(true), free_port(true), free_port(true), free_port(true));
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.icount_shift = icount_shift;
    let netdev = format!(
        "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748,hostfwd=udp:127.0.0.1:{discovery}-:4747,\
         hostfwd=udp:127.0.0.1:{echo}-:7,hostfwd=udp:127.0.0.1:{job}-:{JOB_PORT},hostfwd=udp:127.0.0.1:{outside}-:7500"
    );
    options.extra_args = vec![
        "-netdev".into(),
        netdev,
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-device".into(),
        format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
    ];
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    qemu.wait_for_line_containing("offload: ready", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    Device { qemu, tcp, discovery, echo, job, outside }
}

/// A job's result as the test needs it.
#[derive(Debug, PartialEq)]
enum Reply {
    PushOk([u8; 32]),
    Error(u32),
    Result { status: JobStatus, exit_value: i32, output: Vec<u8>, logs: Vec<String>, stats: wire::Stats },
}

/// An offload session (`jos_offload::host::Client`, a snow IK initiator), every read bounded by a
/// timeout.
struct Client(host::Client);

impl Client {
    fn connect(port: u16) -> Client {
        let device_key = noise::public_key(&DEVICE_SECRET);
        match host::Client::connect(("127.0.0.1", port), &CLIENT_SECRET, &device_key, Duration::from_secs(90)) {
            Ok(client) => Client(client),
            Err(_) => panic!("the device refused or did not answer the handshake"),
        }
    }

    fn send(&mut self, message: &Message<'_>) {
        self.0.send(message).expect("the session is open");
    }

    /// The next reply that is not Progress.
    fn next(&mut self) -> Reply {
        loop {
            let plain = self.0.next_plain().expect("the device answers in time");
            match Message::parse(&plain).unwrap() {
                Message::PushOk { sha256 } => return Reply::PushOk(sha256),
                Message::Error { code, .. } => return Reply::Error(code as u32),
                Message::Progress { .. } => continue,
                Message::JobResult { status, exit_value, output, logs, stats, .. } => {
                    return Reply::Result {
                        status,
                        exit_value,
                        output: output.to_vec(),
                        logs: logs.iter().map(|line| line.text.to_string()).collect(),
                        stats,
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn push(&mut self, format: Format, module: &[u8]) {
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
        assert_eq!(self.next(), Reply::PushOk(sha), "push accepted");
    }

    fn invoke(&mut self, module: &[u8], input: &str, limits: Limits) {
        self.send(&Message::Invoke { hash: sha256(module), limits, input: input.as_bytes(), call: None });
    }

    /// Invokes and waits for the result.
    fn run(&mut self, module: &[u8], input: &str, limits: Limits) -> Reply {
        self.invoke(module, input, limits);
        self.next()
    }
}

/// Builds `source` with jos-build (the builder `jos-cli build` uses); signs it with `seed`.
fn build(source: &Path, format: Format, seed: &[u8; 32]) -> Vec<u8> {
    jos_tests::build_signed(source, format, seed).unwrap_or_else(|e| panic!("{e}"))
}

fn signed_wat(text: &str, seed: &[u8; 32]) -> Vec<u8> {
    sign_wasm(&wat::parse_str(text).unwrap(), seed, true).unwrap()
}

/// A UDP socket on the host with a short receive timeout.
fn host_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    socket
}

/// Sends `payload` to `port` until an answer comes (the job may not have bound its port yet);
/// returns the answer. Bounded by `within`.
fn exchange(socket: &UdpSocket, port: u16, payload: &[u8], within: Duration) -> Option<Vec<u8>> {
    let started = Instant::now();
    let mut buffer = [0u8; 2048];
    while started.elapsed() < within {
        socket.send_to(payload, ("127.0.0.1", port)).unwrap();
        if let Ok((len, _)) = socket.recv_from(&mut buffer) {
            return Some(buffer[..len].to_vec());
        }
    }
    None
}

/// Answers that are still queued (late echoes of resent datagrams).
fn drain(socket: &UdpSocket) -> Vec<Vec<u8>> {
    let mut late = Vec::new();
    let mut buffer = [0u8; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buffer) {
        late.push(buffer[..len].to_vec());
    }
    late
}

/// The free heap bytes a fresh advert reports (None if no advert came).
fn advert_free_memory(port: u16) -> Option<u32> {
    let socket = host_socket();
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 9 }.emit(&mut probe).unwrap();
    let reply = exchange(&socket, port, &probe, Duration::from_secs(10))?;
    let advert = Advert::new_checked(&reply[..]).ok()?;
    Some(AdvertRepr::parse(&advert).ok()?.free_memory)
}

/// The device's UDP echo (port 7) answers.
fn udp_echo_answers(device: &Device) -> bool {
    let socket = host_socket();
    exchange(&socket, device.echo, b"still there?", Duration::from_secs(10)).as_deref() == Some(&b"still there?"[..])
}

/// Serves an echo job from the host: `count` datagrams (each echoed), then "quit" → "bye" if
/// `quit`; checks every echo; returns how many echoes the host received in all. While the job
/// runs it checks UDP echo on port 7 (and discovery when `discovery` is set).
fn talk_to_echo(device: &Device, count: usize, quit: bool, discovery: bool) -> usize {
    let socket = host_socket();
    let first = exchange(&socket, device.job, b"datagram 0", Duration::from_secs(60)).expect("the echo job answers");
    assert_eq!(first, b"datagram 0");
    assert!(udp_echo_answers(device), "UDP echo on port 7 answers while the job runs");
    if discovery {
        assert!(advert_free_memory(device.discovery).is_some(), "discovery answers while a wasm job runs");
    }
    // Resent datagrams may have been echoed late.
    let mut received = 1 + drain(&socket).len();
    let mut index = 1;
    while received < count {
        let payload = format!("datagram {index}");
        let answer = exchange(&socket, device.job, payload.as_bytes(), Duration::from_secs(20)).expect("echo");
        assert_eq!(answer, payload.as_bytes(), "echoed byte for byte");
        received += 1 + drain(&socket).len();
        index += 1;
    }
    if quit {
        let mut buffer = [0u8; 64];
        socket.send_to(b"quit", ("127.0.0.1", device.job)).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (len, _) = socket.recv_from(&mut buffer).expect("an answer to quit");
        assert_eq!(&buffer[..len], b"bye");
    }
    received
}

fn expect_ok(reply: Reply) -> (i32, Vec<u8>, Vec<String>) {
    let (exit_value, output, logs, _) = expect_ok_stats(reply);
    (exit_value, output, logs)
}

/// [`expect_ok`] with the job's device-reported stats.
fn expect_ok_stats(reply: Reply) -> (i32, Vec<u8>, Vec<String>, wire::Stats) {
    match reply {
        Reply::Result { status: JobStatus::Ok, exit_value, output, logs, stats } => (exit_value, output, logs, stats),
        other => panic!("not an Ok result: {other:?}"),
    }
}

#[test]
fn capabilities_on_the_device() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let echo_source = root.join("../guest-examples/c/echo.c");
    let config = config_file("caps");
    let mut device = boot(&config);

    let echo_wasm = build(&echo_source, Format::Wasm, &TRUSTED);
    let echo_native = build(&echo_source, Format::NativeArmv6, &TRUSTED);
    let echo_rust = build(&root.join("../guest-examples/rust/echo"), Format::Wasm, &TRUSTED);
    let echo_wasm_plain = build(&echo_source, Format::Wasm, &PLAIN);
    let echo_native_plain = build(&echo_source, Format::NativeArmv6, &PLAIN);
    let devices = signed_wat(DEVICES, &TRUSTED);
    let devices_plain = signed_wat(DEVICES, &PLAIN);
    let devices_native = build(&root.join("native/devices.c"), Format::NativeArmv6, &TRUSTED);
    let devices_native_plain = build(&root.join("native/devices.c"), Format::NativeArmv6, &PLAIN);
    let bind_then = signed_wat(BIND_THEN, &TRUSTED);

    let mut client = Client::connect(device.tcp);
    for (format, module) in [
        (Format::Wasm, &echo_wasm),
        (Format::NativeArmv6, &echo_native),
        (Format::Wasm, &echo_rust),
        (Format::Wasm, &echo_wasm_plain),
        (Format::NativeArmv6, &echo_native_plain),
        (Format::Wasm, &devices),
        (Format::Wasm, &devices_plain),
        (Format::NativeArmv6, &devices_native),
        (Format::NativeArmv6, &devices_native_plain),
        (Format::Wasm, &bind_then),
    ] {
        client.push(format, module);
    }
    let modules = Modules {
        echo_wasm,
        echo_native,
        echo_rust,
        echo_wasm_plain,
        echo_native_plain,
        devices,
        devices_plain,
        devices_native,
        devices_native_plain,
        bind_then,
    };
    // The first round warms every path up (first-time allocations); the second must leave the
    // heap exactly where the first left it: no socket, job or session state leaks.
    every_job(&mut device, &mut client, &modules);
    let heap_before = advert_free_memory(device.discovery).expect("advert");
    every_job(&mut device, &mut client, &modules);
    let heap_after = advert_free_memory(device.discovery).expect("advert");
    assert_eq!(heap_after, heap_before, "free heap bytes after the first and the second round of jobs");
    assert!(udp_echo_answers(&device));
    drop(client);
    device.qemu.kill();
    let _ = std::fs::remove_file(config);
}

/// The modules the rounds run (all pushed and cached before the first round).
struct Modules {
    echo_wasm: Vec<u8>,
    echo_native: Vec<u8>,
    echo_rust: Vec<u8>,
    echo_wasm_plain: Vec<u8>,
    echo_native_plain: Vec<u8>,
    devices: Vec<u8>,
    devices_plain: Vec<u8>,
    devices_native: Vec<u8>,
    devices_native_plain: Vec<u8>,
    bind_then: Vec<u8>,
}

/// One round of every capability check.
fn every_job(device: &mut Device, client: &mut Client, modules: &Modules) {
    let Modules {
        echo_wasm,
        echo_native,
        echo_rust,
        echo_wasm_plain,
        echo_native_plain,
        devices,
        devices_plain,
        devices_native,
        devices_native_plain,
        bind_then,
    } = modules;
    // wasm echo, signer with `net`: several datagrams, then quit -> bye, "echoed K".
    client.invoke(echo_wasm, &format!("{JOB_PORT}"), Limits::default());
    let received = talk_to_echo(device, 5, true, true);
    let (exit, output, logs) = expect_ok(client.next());
    assert_eq!(exit, 0, "{logs:?}");
    assert_eq!(String::from_utf8_lossy(&output), format!("echoed {received}\n"));
    assert!(received >= 5);

    // The same port again (the socket was freed), native this time, stopping after 3 datagrams.
    client.invoke(echo_native, &format!("{JOB_PORT} 3"), Limits::default());
    let received = talk_to_echo(device, 3, false, false);
    let (exit, output, logs) = expect_ok(client.next());
    assert_eq!(exit, 0, "{logs:?}");
    assert_eq!(received, 3, "a count-limited job answers its count");
    assert_eq!(String::from_utf8_lossy(&output), "echoed 3\n");
    assert!(udp_echo_answers(device), "UDP echo answers after the native job");

    // The Rust echo (wasm), quit after two datagrams.
    client.invoke(echo_rust, &format!("{JOB_PORT}"), Limits::default());
    let received = talk_to_echo(device, 2, true, false);
    let (exit, output, logs) = expect_ok(client.next());
    assert_eq!(exit, 0, "{logs:?}");
    assert_eq!(String::from_utf8_lossy(&output), format!("echoed {received}\n"));

    // Signed by a signer without `net`: udp_bind answers PermissionDenied, wasm and native.
    for module in [&echo_wasm_plain, &echo_native_plain] {
        let (exit, _, logs) = expect_ok(client.run(module, &format!("{JOB_PORT}"), Limits::default()));
        assert_eq!(exit, PERMISSION_DENIED, "{logs:?}");
        assert!(logs.iter().any(|line| line.contains("udp_bind failed")), "{logs:?}");
    }

    // A port outside the policy's range (forwarded, so a bound socket would answer), and one
    // of the device's own ports.
    for port in [7500u16, 4747, 7] {
        let (exit, _, logs) = expect_ok(client.run(echo_wasm, &format!("{port} 1"), Limits::default()));
        assert_eq!(exit, PERMISSION_DENIED, "port {port}: {logs:?}");
    }
    let (exit, _, _) = expect_ok(client.run(echo_native, "7500 1", Limits::default()));
    assert_eq!(exit, PERMISSION_DENIED, "native, port outside the range");
    let probe = host_socket();
    assert!(exchange(&probe, device.outside, b"anyone?", Duration::from_secs(2)).is_none(), "nothing bound 7500");

    // Sockets are freed however a job ends: trap, out of fuel, abort on disconnect.
    let port = format!("{JOB_PORT}");
    match client.run(bind_then, &format!("{port} trap"), Limits::default()) {
        Reply::Result { status: JobStatus::Trap, .. } => {}
        other => panic!("bind then trap: {other:?}"),
    }
    let limits = Limits { fuel: 2_000_000, ..Limits::default() };
    match client.run(bind_then, &format!("{port} spin"), limits) {
        Reply::Result { status: JobStatus::OutOfFuel, .. } => {}
        other => panic!("bind then spin: {other:?}"),
    }
    let mut leaving = Client::connect(device.tcp);
    leaving.invoke(bind_then, &format!("{port} spin"), Limits::default());
    std::thread::sleep(Duration::from_millis(500));
    drop(leaving);
    // The aborted job's socket is freed: the next echo job binds the same port.
    client.invoke(echo_wasm, &format!("{JOB_PORT} 2"), Limits::default());
    let received = talk_to_echo(device, 2, false, true);
    let (exit, output, _) = expect_ok(client.next());
    assert_eq!((exit, received), (0, 2));
    assert_eq!(String::from_utf8_lossy(&output), "echoed 2\n");

    // screen_print, GPIO and a double bind: granted (wasm and native), then refused.
    for (module, line) in [(devices, "capabilities test line"), (devices_native, "capabilities test line (native)")] {
        let (exit, output, logs) = expect_ok(client.run(module, "", Limits::default()));
        assert_eq!(exit, 0, "{logs:?}");
        let values: Vec<i32> = output.chunks(4).map(|word| i32::from_le_bytes(word.try_into().unwrap())).collect();
        assert_eq!(values.len(), 8, "{values:?}");
        assert_eq!(
            values[..6],
            [0, 1, 0, -(ErrorCode::InUse as i32), -(ErrorCode::NotFound as i32), 0],
            "{line}: screen_print, read after high, read after low, kernel pin 14, pin 60, write 17"
        );
        assert!(values[6] >= 0, "first bind of 7001 gives a handle: {values:?}");
        assert_eq!(values[7], -(ErrorCode::InUse as i32), "second bind of 7001 in the same job");
        device
            .qemu
            .wait_for_line_containing(&format!("screen: job: {line}"), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for module in [devices_plain, devices_native_plain] {
        let (exit, output, _) = expect_ok(client.run(module, "", Limits::default()));
        assert_eq!(exit, 0);
        let values: Vec<i32> = output.chunks(4).map(|word| i32::from_le_bytes(word.try_into().unwrap())).collect();
        assert_eq!(values, vec![PERMISSION_DENIED; 8], "no screen, gpio or network without the rights");
    }
}

/// A job's CPU time over its time from start to result.
fn cpu_share(stats: &wire::Stats) -> f64 {
    assert!(stats.time_us > 0 && stats.cpu_us <= stats.time_us, "{stats:?}");
    stats.cpu_us as f64 / stats.time_us as f64
}

/// Serves an echo job that was just invoked: waits for it to answer, leaves it idle for `idle`,
/// then times `count` echoes one by one, then "quit" -> "bye". Returns the round trips.
fn idle_then_echo(device: &Device, idle: Duration, count: usize) -> Vec<Duration> {
    let socket = host_socket();
    let first = exchange(&socket, device.job, b"hello", Duration::from_secs(60)).expect("the echo job answers");
    assert_eq!(first, b"hello");
    std::thread::sleep(idle);
    drain(&socket);
    let mut round_trips = Vec::new();
    let mut buffer = [0u8; 64];
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for index in 0..count {
        let payload = format!("timed {index}");
        let sent = Instant::now();
        socket.send_to(payload.as_bytes(), ("127.0.0.1", device.job)).unwrap();
        let (len, _) = socket.recv_from(&mut buffer).expect("an echo within 5 s");
        round_trips.push(sent.elapsed());
        assert_eq!(&buffer[..len], payload.as_bytes());
    }
    socket.send_to(b"quit", ("127.0.0.1", device.job)).unwrap();
    let (len, _) = socket.recv_from(&mut buffer).expect("an answer to quit");
    assert_eq!(&buffer[..len], b"bye");
    round_trips
}

#[test]
fn yield_gives_the_rest_of_the_frame_back() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = config_file("caps-yield");
    let device = boot_with(&config, Some(0));
    let echo_source = root.join("../guest-examples/c/echo.c");
    let yields_source = root.join("native/yields.c");
    let echo_wasm = build(&echo_source, Format::Wasm, &TRUSTED);
    let echo_native = build(&echo_source, Format::NativeArmv6, &TRUSTED);
    let yields_wasm = build(&yields_source, Format::Wasm, &TRUSTED);
    let yields_native = build(&yields_source, Format::NativeArmv6, &TRUSTED);
    let mut client = Client::connect(device.tcp);
    for (format, module) in [
        (Format::Wasm, &echo_wasm),
        (Format::NativeArmv6, &echo_native),
        (Format::Wasm, &yields_wasm),
        (Format::NativeArmv6, &yields_native),
    ] {
        client.push(format, module);
    }

    // Idle echo jobs hold the CPU for a small part of their time (the wasm one held about 88% of
    // it when a yield only ended its slice) and answer at once after idling.
    for (name, module) in [("wasm", &echo_wasm), ("native", &echo_native)] {
        client.invoke(module, &format!("{JOB_PORT}"), Limits::default());
        let round_trips = idle_then_echo(&device, Duration::from_secs(2), 20);
        let (exit, output, logs, stats) = expect_ok_stats(client.next());
        assert_eq!(exit, 0, "{name}: {logs:?}");
        assert_eq!(String::from_utf8_lossy(&output), "echoed 21\n", "{name}");
        let share = cpu_share(&stats);
        eprintln!("yield: idle {name} echo job: cpu_us {} of time_us {} ({share:.3})", stats.cpu_us, stats.time_us);
        // 2 s of host time; guest time under -icount runs slower while the guest is busy.
        assert!(stats.time_us >= 1_000_000, "{name}: the job lived through the idle time: {stats:?}");
        assert!(share < 0.1, "{name}: an idle echo job holds the CPU {share:.3} of its time: {stats:?}");
        let mut sorted = round_trips.clone();
        sorted.sort();
        eprintln!("yield: {name} echo round trips after idling: median {:?}, max {:?}", sorted[10], sorted[19]);
        assert!(sorted[10] < Duration::from_millis(200), "{name}: median round trip {:?}", sorted[10]);
    }

    // 200 yields and no work: each yield waits for the next frame, so the job takes at least 200
    // frames of 1 ms, and holds the CPU for a small part of them. wasm and native alike.
    for (name, module) in [("wasm", &yields_wasm), ("native", &yields_native)] {
        let (exit, output, logs, stats) = expect_ok_stats(client.run(module, "0 200", Limits::default()));
        assert_eq!((exit, output.len()), (0, 4), "{name}: {logs:?}");
        let share = cpu_share(&stats);
        eprintln!("yield: 200 yields ({name}): time_us {} cpu_us {} ({share:.3})", stats.time_us, stats.cpu_us);
        assert!(stats.time_us >= 195_000, "{name}: 200 yields took {} us, less than 200 frames", stats.time_us);
        assert!(share < 0.2, "{name}: yielding job held the CPU {share:.3} of its time: {stats:?}");
    }

    // Work that never yields gets every frame's time the network task leaves (unchanged by
    // yield's meaning); the same work with yields spread over it still finishes with the same
    // result, later.
    for (name, module, work) in [("wasm", &yields_wasm, 300_000u32), ("native", &yields_native, 3_000_000)] {
        let (exit, plain, logs, stats) = expect_ok_stats(client.run(module, &format!("{work} 0"), Limits::default()));
        assert_eq!(exit, 0, "{name}: {logs:?}");
        let share = cpu_share(&stats);
        eprintln!(
            "yield: compute ({name}, {work} iterations, no yield): time_us {} cpu_us {} ({share:.3})",
            stats.time_us, stats.cpu_us
        );
        assert!(stats.time_us >= 20_000, "{name}: the compute job is long enough to span frames: {stats:?}");
        assert!(share > 0.9, "{name}: a job that never yields holds the CPU {share:.3} of its time: {stats:?}");
        let (exit, yielding, logs, slow) =
            expect_ok_stats(client.run(module, &format!("{work} 100"), Limits::default()));
        assert_eq!(exit, 0, "{name}: {logs:?}");
        assert_eq!(yielding, plain, "{name}: the same result with yields");
        assert!(
            slow.time_us >= 95_000 && slow.time_us > stats.time_us,
            "{name}: 100 yields: {slow:?} against {stats:?}"
        );
    }
    assert!(udp_echo_answers(&device), "UDP echo answers after the yielding jobs");
    drop(client);
    let mut device = device;
    device.qemu.kill();
    let _ = std::fs::remove_file(config);
}

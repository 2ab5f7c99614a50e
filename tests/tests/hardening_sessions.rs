//! Sessions and unauthenticated traffic on the emulated device (docs/security.md, "Resource
//! limits: sessions and unauthenticated traffic"), through QEMU's user network like
//! `tests/tests/offload.rs`: a client that sends requests and never reads is reset and the heap
//! returns; eight connections that send part of a frame and stall do not keep a push out, and
//! are closed by the handshake deadline (or evicted) and counted; a silent authenticated
//! session is closed after the idle timeout, a silent TCP echo connection after its own; a probe
//! shorter than an advert gets no answer and a padded one does; a burst of probes is
//! rate-limited (counted) and discovery works again afterwards. The device's counters come from
//! its console's `offload` command.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights};
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe, HEADER_LEN, PROBE_LEN};
use jos_abi::wire::{Format, JobStatus, Limits, Message};
use jos_client::{discover, Session, Target};
use jos_offload::{host, noise};
use jos_tests::config::TestConfig;
use jos_tests::{free_port, kernel_elf, offload_counters, BootOptions, Qemu, ECHO};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const DEVELOPER: [u8; 32] = [0x65; 32];

/// Writes 32 000 bytes of output (its memory's zeros) and returns 0.
const FLOOD: &str = r#"
(module
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32) (drop (call $output_write (i32.const 0) (i32.const 32000))) (i32.const 0)))
"#;

/// Two boots at once slow both on a loaded host.
static ONE_BOOT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config_file(tag: &str) -> PathBuf {
    TestConfig::new("qemu-hardening", DEVICE_SECRET, ADVERT_SEED)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&DEVELOPER), SignerRights::ALL)
        .max_module_len(1024 * 1024)
        .limits(Limits { fuel: 100_000_000, memory: 1 << 20, deadline_ms: 60_000, output: 32 * 1024 })
        .queue_len(4)
        .write(&format!("hardening-{tag}"))
}

struct Device {
    qemu: Qemu,
    tcp: u16,
    discovery: u16,
    tcp_echo: u16,
    config: PathBuf,
}

impl Drop for Device {
    fn drop(&mut self) {
        self.qemu.kill();
        let _ = std::fs::remove_file(&self.config);
    }
}

fn boot(tag: &str) -> Device {
    let config = config_file(tag);
    let (tcp, discovery, tcp_echo) = (free_port(false), free_port(true), free_port(false));
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    let netdev = format!(
        "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748,hostfwd=udp:127.0.0.1:{discovery}-:4747,hostfwd=tcp:127.0.0.1:{tcp_echo}-:7"
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
    qemu.wait_for_line_containing("offload: ready", Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
    Device { qemu, tcp, discovery, tcp_echo, config }
}

fn session_address(device: &Device) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], device.tcp))
}

fn client(device: &Device) -> host::Client {
    let device_key = noise::public_key(&DEVICE_SECRET);
    host::Client::connect(session_address(device), &CLIENT_SECRET, &device_key, Duration::from_secs(60))
        .unwrap_or_else(|error| panic!("a trusted session: {error:?}"))
}

/// Reads until the device closes `stream` (end of file or reset); `Err` if it is still open
/// after `wait`. Returns the bytes read on the way.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + wait;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    while Instant::now() < deadline {
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(bytes),
            Ok(len) => bytes.extend_from_slice(&buffer[..len]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Ok(bytes),
        }
    }
    Err(format!("still open after {wait:?} ({} bytes read)", bytes.len()))
}

fn probe(nonce: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; PROBE_LEN];
    Probe { nonce }.emit(&mut bytes).unwrap();
    bytes
}

/// The free heap bytes a fresh advert reports.
fn free_memory(device: &Device) -> u32 {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut datagram = [0u8; 512];
    for nonce in 0..5 {
        udp.send_to(&probe(nonce), ("127.0.0.1", device.discovery)).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            return AdvertRepr::parse(&Advert::new_checked(&datagram[..len]).unwrap()).unwrap().free_memory;
        }
    }
    panic!("no advert");
}

/// `counter` now minus at `start`.
fn grew(
    now: &std::collections::HashMap<String, u64>,
    start: &std::collections::HashMap<String, u64>,
    counter: &str,
) -> u64 {
    let value = |map: &std::collections::HashMap<String, u64>| {
        *map.get(counter).unwrap_or_else(|| panic!("no counter {counter}: {map:?}"))
    };
    value(now) - value(start)
}

#[test]
fn stalled_silent_and_unread_sessions_are_closed_and_a_push_gets_through() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut device = boot("sessions");
    let start = offload_counters(&mut device.qemu);

    // 1. A client that sends requests and never reads is reset; the heap returns. Its requests
    // are Invokes of a job that writes 32 KB, then Pings: the answers pile up faster than the
    // emulated link drains them. (A pure Ping flood's Pongs leave as fast as its Pings arrive,
    // about 100 KB/s here, and QEMU's and the host's socket buffers take megabytes of them
    // before the device's cap is reached: kernel/offload/tests checks Ping floods.)
    let module = sign_wasm(&wat::parse_str(FLOOD).unwrap(), &DEVELOPER, true).unwrap();
    let hash = sha256(&module);
    let mut setup = client(&device);
    setup
        .send(&Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: hash,
            limits: Limits::default(),
        })
        .unwrap();
    setup.send(&Message::PushChunk { offset: 0, bytes: &module }).unwrap();
    setup.send(&Message::PushEnd).unwrap();
    assert!(matches!(Message::parse(&setup.next_plain().expect("an answer")), Ok(Message::PushOk { .. })));
    setup.send(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: None }).unwrap();
    loop {
        let plain = setup.next_plain().expect("the warm-up job's result");
        if let Ok(Message::JobResult { status, output, .. }) = Message::parse(&plain) {
            assert_eq!((status, output.len()), (JobStatus::Ok, 32_000));
            break;
        }
    }
    drop(setup);
    std::thread::sleep(Duration::from_millis(500));
    let free_before = free_memory(&device);
    let mut flooder = client(&device);
    let invokes = (0..300)
        .flat_map(|_| flooder.seal(&Message::Invoke { hash, limits: Limits::default(), input: b"", call: None }));
    let mut frames: Vec<u8> = invokes.collect();
    frames.extend((0..20_000u64).flat_map(|nonce| flooder.seal(&Message::Ping { nonce })));
    let mut writer = flooder.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&frames);
    });
    // It reads only after the device has given up on it (what it then reads was queued in the
    // host's and QEMU's buffers before).
    std::thread::sleep(Duration::from_secs(3));
    closed_within(flooder.stream(), Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the flooder: {e}\n{}", device.qemu.output()));
    sender.join().unwrap();
    let after_flood = offload_counters(&mut device.qemu);
    assert_eq!(grew(&after_flood, &start, "outbox_overflows"), 1, "{after_flood:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut free_after = free_memory(&device);
    while free_after != free_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        free_after = free_memory(&device);
    }
    assert_eq!(free_after, free_before, "free heap before the flood and after its session was reset");

    // 2. A silent authenticated session and a silent TCP echo connection (checked in 4).
    let mut idle = client(&device);
    idle.send(&Message::Ping { nonce: 1 }).unwrap();
    let pong = idle.next_plain().expect("a Pong");
    assert!(matches!(Message::parse(&pong), Ok(Message::Pong { nonce: 1 })));
    let idle_since = Instant::now();
    let mut echo = TcpStream::connect(("127.0.0.1", device.tcp_echo)).unwrap();
    echo.write_all(b"e").unwrap();
    let mut byte = [0u8; 1];
    echo.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    echo.read_exact(&mut byte).expect("TCP echo answers");
    let echo_since = Instant::now();

    // 3. Eight connections that send part of a frame and stall: a push still gets through,
    // promptly, and every stalled one is closed by the deadline (5 s) or evicted.
    let before_stall = offload_counters(&mut device.qemu);
    let mut stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", device.tcp)).unwrap();
            stream.write_all(&[0x60, 0x00, 0x01]).unwrap();
            stream
        })
        .collect();
    let stalled_at = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let module = sign_wasm(&wat::parse_str(ECHO).unwrap(), &DEVELOPER, true).unwrap();
    let pushed = Instant::now();
    let device_key = noise::public_key(&DEVICE_SECRET);
    let mut session = Session::connect(session_address(&device), &CLIENT_SECRET, &device_key, Duration::from_secs(30))
        .unwrap_or_else(|error| {
            panic!("a trusted client next to 8 stalled connections: {error} ({error:?})\n{}", device.qemu.output())
        });
    let hash = session.push(Format::Wasm, &module, Limits::default(), &mut |_| {}).expect("push");
    assert_eq!(hash, sha256(&module));
    let outcome = session.invoke(hash, Limits::default(), b"through", None, &mut |_| {}).expect("invoke");
    assert_eq!((outcome.status, outcome.output.as_slice()), (JobStatus::Ok, &b"through"[..]));
    assert!(pushed.elapsed() < Duration::from_secs(5), "promptly: {:?}", pushed.elapsed());
    drop(session);
    for (index, stream) in stalled.iter_mut().enumerate() {
        closed_within(stream, Duration::from_secs(15)).unwrap_or_else(|e| panic!("stalled connection {index}: {e}"));
    }
    assert!(stalled_at.elapsed() >= Duration::from_secs(5), "the ones not evicted waited for the deadline");
    let after_stall = offload_counters(&mut device.qemu);
    let (timeouts, evicted) =
        (grew(&after_stall, &before_stall, "handshake_timeouts"), grew(&after_stall, &before_stall, "evicted"));
    assert_eq!(timeouts + evicted, 8, "each stalled connection closed once: {after_stall:?}");
    assert!(evicted >= 1 && timeouts >= 1, "evicted {evicted}, timed out {timeouts}");
    assert_eq!(grew(&after_stall, &before_stall, "sessions_opened"), 1);

    // 4. The silent session is closed 30 s after its last message; the silent echo connection
    // 30 s after its last byte.
    closed_within(idle.stream(), Duration::from_secs(45)).unwrap_or_else(|e| panic!("the idle session: {e}"));
    let idle_for = idle_since.elapsed();
    assert!(idle_for >= Duration::from_secs(29), "closed after {idle_for:?}, not at the idle timeout");
    closed_within(&mut echo, Duration::from_secs(45)).unwrap_or_else(|e| panic!("the idle TCP echo connection: {e}"));
    assert!(echo_since.elapsed() >= Duration::from_secs(29), "echo closed after {:?}", echo_since.elapsed());
    let end = offload_counters(&mut device.qemu);
    assert_eq!(grew(&end, &start, "idle_timeouts"), 1, "{end:?}");

    // The status screen's sessions and limits rows (the shell's `status` prints the panel).
    device.qemu.send("status\r").unwrap();
    let row = device.qemu.wait_for_line("status: sessions ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    for (label, counter) in [
        ("stall", "handshake_timeouts"),
        ("idle", "idle_timeouts"),
        ("evict", "evicted"),
        ("unread", "outbox_overflows"),
    ] {
        assert!(
            row.contains(&format!("{label} {} ", end[counter])) || row.ends_with(&format!("{label} {}", end[counter])),
            "{label} in {row:?}: {end:?}"
        );
    }
    let row = device.qemu.wait_for_line("status: limits ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(row.contains("probes 0 limited") && row.contains("echo loops 0"), "{row:?}");

    // The device still serves.
    let mut last = client(&device);
    last.send(&Message::Ping { nonce: 9 }).unwrap();
    assert!(matches!(Message::parse(&last.next_plain().expect("a Pong")), Ok(Message::Pong { nonce: 9 })));
    assert!(!device.qemu.output().contains("PANIC"));
}

#[test]
fn short_probes_get_nothing_and_a_burst_is_rate_limited() {
    let _serial = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut device = boot("probes");
    let start = offload_counters(&mut device.qemu);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = ("127.0.0.1", device.discovery);
    let mut datagram = [0u8; 1024];

    // A probe as long as its header only (the old 16-byte probe): no answer.
    udp.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    udp.send_to(&probe(1)[..HEADER_LEN], target).unwrap();
    assert!(udp.recv_from(&mut datagram).is_err(), "a short probe was answered");
    // A padded one is, with an advert no larger than it.
    let mut answer = None;
    for _ in 0..3 {
        udp.send_to(&probe(2), target).unwrap();
        if let Ok((len, _)) = udp.recv_from(&mut datagram) {
            answer = Some(len);
            break;
        }
    }
    let len = answer.expect("an advert to a padded probe");
    assert!(len <= PROBE_LEN, "advert {len} bytes, probe {PROBE_LEN}");
    assert!(Advert::new_checked(&datagram[..len]).unwrap().verify_signature());

    // A burst of 200 probes: some answered, the rest rate-limited (and counted).
    for nonce in 0..200 {
        udp.send_to(&probe(1000 + nonce), target).unwrap();
    }
    udp.set_read_timeout(Some(Duration::from_millis(2000))).unwrap();
    let mut answered = 0;
    while udp.recv_from(&mut datagram).is_ok() {
        answered += 1;
    }
    let after = offload_counters(&mut device.qemu);
    let limited = grew(&after, &start, "probes_rate_limited");
    assert!(grew(&after, &start, "probes_too_short") >= 1, "{after:?}");
    assert!(limited >= 100, "{limited} of 200 probes rate-limited, {answered} answered: {after:?}");
    assert!((1..=64).contains(&answered), "{answered} of 200 answered");

    // A normal discovery, a moment later, finds the device.
    std::thread::sleep(Duration::from_secs(2));
    let found = discover(
        &[Target::Unicast(SocketAddr::from(([127, 0, 0, 1], device.discovery)))],
        Duration::from_secs(3),
        true,
    )
    .expect("discovery runs");
    assert_eq!(found.adverts.len(), 1, "{:?}", found.refused);
    assert_eq!(found.adverts[0].name, "qemu-hardening");
    assert!(!device.qemu.output().contains("PANIC"));
}

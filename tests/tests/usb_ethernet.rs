//! jos on the USB Ethernet device models served over usbredir (`jos-lan9512`), attached at high
//! speed to QEMU's DWC2, with a TAP device in a network namespace the test makes as the wire
//! and dnsmasq as its DHCP server:
//!
//! - `jos_drives_the_lan9512_model`: the SMSC LAN9512 Ethernet function (the Pi 1 B/B+ NIC,
//!   the model Linux validates in `lan9512_linux.rs`): jos picks its smsc95xx driver by VID:PID,
//!   gets a DHCP lease, answers ping, 1,000 UDP echoes of 1..=1400 bytes with none lost, 1 MiB
//!   of TCP echo, and an offload push and invoke of a signed wasm module of about 100 KiB; its
//!   counters show no link error, and the model saw the register writes the driver promises
//!   and multi-frame bulk IN transfers.
//! - `damaged_frames_are_counted_and_echo_goes_on`: the model marks every 7th frame from the
//!   wire as received with a CRC error (RX status word ES and CRC bits); jos drops each one,
//!   counts it in `rx_err` (as many as the model marked) and keeps answering the rest.
//! - `ecm_in_the_second_configuration_is_chosen`: a two-configuration adapter (vendor protocol
//!   first, CDC-ECM second, as many Pi Zero USB adapters are): jos walks both configurations,
//!   selects the ECM one, gets a lease and echoes frames whose transfers end on 512-byte
//!   packet boundaries (zero-length packets at high speed).
//!
//! Needs root for the namespace; without it the tests say "skipped: <reason>" and pass.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_offload::{host, noise};
use jos_tests::config::TestConfig;
use jos_tests::netns::{last_write, Model, Namespace, GUEST_ADDRESS};
use jos_tests::{kernel_elf, BootOptions, Qemu};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const DEVELOPER: [u8; 32] = [0x64; 32];

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Boots jos on raspi0 with `model` on the root port (and a boot configuration); waits for the
/// DHCP lease.
fn boot(model: &Model, config: Option<&Path>) -> Qemu {
    boot_expecting(model, config, "10.0.2.15/24 via dhcp")
}

/// [`boot`], waiting for an address line that starts with `expected`.
fn boot_expecting(model: &Model, config: Option<&Path>, expected: &str) -> Qemu {
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.extra_args = model.qemu_args();
    if let Some(path) = config {
        options.extra_args.push("-device".into());
        options.extra_args.push(format!("loader,file={},addr=0x01F00000,force-raw=on", path.display()));
    }
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let ip = qemu
        .wait_for_line("net: ip ", Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\nmodel trace:\n{}", model.trace_text()));
    assert!(ip.starts_with(expected), "expected {expected:?}, got {ip:?}");
    qemu
}

/// Deterministic bytes for request `index` of `length`.
fn payload(index: usize, length: usize) -> Vec<u8> {
    let mut state = (index as u32).wrapping_mul(2_654_435_761).wrapping_add(length as u32) | 1;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// UDP echoes of the given sizes to the guest, one at a time, 3 s each; the problems seen.
fn udp_echo(sizes: &[usize]) -> Vec<String> {
    udp_echo_waiting(sizes, Duration::from_secs(3))
}

/// [`udp_echo`] waiting at most `timeout` for each reply.
fn udp_echo_waiting(sizes: &[usize], timeout: Duration) -> Vec<String> {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    socket.connect((GUEST_ADDRESS, 7)).expect("connect");
    let mut reply = vec![0u8; 4096];
    let mut problems = Vec::new();
    for (index, &size) in sizes.iter().enumerate() {
        let request = payload(index, size);
        socket.send(&request).expect("send");
        match socket.recv(&mut reply) {
            Ok(n) if reply[..n] == request[..] => {}
            Ok(n) => problems.push(format!("request {index} ({size} bytes): a reply of {n} bytes differs")),
            Err(e) => problems.push(format!("request {index} ({size} bytes): {e}")),
        }
    }
    problems
}

/// Sends `data` to the guest's TCP echo and reads it back concurrently.
fn tcp_echo(data: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect((GUEST_ADDRESS, 7)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let expected = data.len();
    std::thread::scope(|scope| {
        let receiver = scope.spawn(move || {
            let mut got = Vec::with_capacity(expected);
            let mut buffer = vec![0u8; 65536];
            while got.len() < expected {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buffer[..n]),
                }
            }
            got
        });
        let mut writer = stream;
        writer.write_all(data).expect("send");
        let got = receiver.join().expect("receiver");
        let _ = writer.shutdown(Shutdown::Both);
        got
    })
}

/// The last `net: stats` line's counter `name`.
fn stat(output: &str, name: &str) -> Option<u64> {
    let line = output.lines().rev().find(|l| l.starts_with("net: stats "))?;
    line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok()
}

/// A counter of the model's closing summary line.
fn summary_count(trace: &str, name: &str) -> u64 {
    let summary = trace
        .lines()
        .rev()
        .find(|l| l.starts_with("summary "))
        .unwrap_or_else(|| panic!("no summary in the trace:\n{trace}"));
    summary
        .split_whitespace()
        .skip_while(|w| *w != name)
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {summary}"))
}

/// A boot configuration that trusts this file's client and developer keys, with DHCP.
fn config() -> std::path::PathBuf {
    TestConfig::new("lan9512-model", DEVICE_SECRET, ADVERT_SEED)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&DEVELOPER), SignerRights::ALL)
        .write("usb-ethernet")
}

/// An echo module padded with a data segment to about 100 KiB, so the push moves many frames.
fn big_echo_module() -> Vec<u8> {
    let filler: String = (0..100_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let text = format!(
        r#"(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 65536) "{filler}")
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (local.get $n)))"#
    );
    sign_wasm(&wat::parse_str(text).expect("wat"), &DEVELOPER, true).expect("sign")
}

/// Pushes `module` and invokes it with `input`; the job's output.
fn push_and_invoke(module: &[u8], input: &[u8]) -> Result<Vec<u8>, String> {
    let device_key = noise::public_key(&DEVICE_SECRET);
    let mut client = host::Client::connect((GUEST_ADDRESS, 4748), &CLIENT_SECRET, &device_key, Duration::from_secs(60))
        .map_err(|e| format!("connect: {e:?}"))?;
    let hash = sha256(module);
    let send =
        |client: &mut host::Client, message: &Message<'_>| client.send(message).map_err(|e| format!("send: {e}"));
    send(
        &mut client,
        &Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: hash,
            limits: Limits::default(),
        },
    )?;
    for (index, chunk) in module.chunks(wire::MAX_CHUNK_LEN).enumerate() {
        send(&mut client, &Message::PushChunk { offset: (index * wire::MAX_CHUNK_LEN) as u32, bytes: chunk })?;
    }
    send(&mut client, &Message::PushEnd)?;
    let plain = client.next_plain().ok_or("no answer to the push")?;
    match Message::parse(&plain) {
        Ok(Message::PushOk { sha256 }) if sha256 == hash => {}
        other => return Err(format!("push answered {other:?}")),
    }
    send(&mut client, &Message::Invoke { hash, limits: Limits::default(), input, call: None })?;
    loop {
        let plain = client.next_plain().ok_or("no job result")?;
        match Message::parse(&plain) {
            Ok(Message::Progress { .. }) => continue,
            Ok(Message::JobResult { status: JobStatus::Ok, output, .. }) => return Ok(output.to_vec()),
            other => return Err(format!("invoke answered {other:?}")),
        }
    }
}

#[test]
fn jos_drives_the_lan9512_model() {
    if !root() {
        println!("skipped: making a network namespace needs root");
        return;
    }
    let namespace = Namespace::create("smsc", true).unwrap_or_else(|e| panic!("namespace: {e}"));
    let mut model = Model::start(Path::new(env!("CARGO_BIN_EXE_jos-lan9512")), &namespace, "lan9512")
        .unwrap_or_else(|e| panic!("{e}"));
    let config = config();
    let mut qemu = boot(&model, Some(&config));
    let output = qemu.output();
    assert!(
        output.contains("usb: device 1: 0424:ec00 class 255 High speed"),
        "not enumerated at high speed:\n{output}"
    );
    assert!(output.contains("-> smsc95xx"), "smsc95xx not chosen:\n{output}");
    let attach = output
        .lines()
        .find(|l| l.starts_with("usb: smsc95xx: chip 0xec00"))
        .unwrap_or_else(|| panic!("no attach line:\n{output}"));
    assert!(attach.contains("(512 bytes, burst 8)") && attach.contains("link up 100 Mb/s full duplex"), "{attach}");
    assert!(attach.contains("MAC 02:4a:00:00:00:00 (from the board serial)"), "QEMU's serial is 0: {attach}");

    let sizes: Vec<usize> = (0..1000).map(|i| 1 + (i * 7919) % 1400).collect();
    let problems = namespace.run_in(|| udp_echo(&sizes));
    assert!(
        problems.is_empty(),
        "{} of 1000 UDP echoes failed: {:?}\n{}",
        problems.len(),
        &problems[..problems.len().min(10)],
        qemu.output()
    );

    let data = payload(99, 1 << 20);
    let echoed = namespace.run_in(|| tcp_echo(&data));
    assert_eq!(echoed.len(), data.len(), "TCP echo: {} of {} bytes came back", echoed.len(), data.len());
    assert!(echoed == data, "TCP echo: the bytes differ");

    // (A ping before any traffic loses its first reply: dnsmasq's lease gave the namespace the
    // guest's MAC, but smoltcp answers an echo request from an unknown neighbour with an ARP
    // request and drops the reply. By now both sides know each other.)
    let ping = namespace.exec("ping", &["-c", "3", "-W", "3", GUEST_ADDRESS]);
    let ping_text = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.status.success() && ping_text.contains("3 received"), "ping:\n{ping_text}\n{}", qemu.output());

    let module = big_echo_module();
    let output = namespace.run_in(|| push_and_invoke(&module, b"through the LAN9512"));
    assert_eq!(output.unwrap_or_else(|e| panic!("offload: {e}\n{}", qemu.output())), b"through the LAN9512");

    std::thread::sleep(Duration::from_millis(1500));
    let log = qemu.output();
    assert_eq!(stat(&log, "rx_err"), Some(0), "link receive errors:\n{log}");
    assert_eq!(stat(&log, "tx_err"), Some(0), "link transmit errors:\n{log}");
    assert!(stat(&log, "udp_echo").unwrap_or(0) >= 1000, "echo count:\n{log}");
    qemu.kill();
    let trace = model.finish(Duration::from_secs(5));
    let hw_cfg = last_write(&trace, "HW_CFG").expect("HW_CFG written");
    assert_eq!(hw_cfg & 0x1622, 0x1022, "HW_CFG {hw_cfg:#x}: BIR, RXDOFF 0, MEF, BCE");
    assert_eq!(last_write(&trace, "BURST_CAP"), Some(8), "BURST_CAP: 4 KiB buffers / 512");
    assert_eq!(last_write(&trace, "MAC_CR").map(|v| v & 0x0010_000c), Some(0x0010_000c), "MAC_CR: TXEN, RXEN, FDPX");
    assert_eq!(last_write(&trace, "TX_CFG"), Some(4));
    assert_eq!(last_write(&trace, "ADDRL"), Some(0x0000_4a02));
    assert!(
        trace.contains("W PHY 0 0x8000") && trace.contains("W PHY 0 0x1200"),
        "PHY reset and autonegotiation over MII:\n{trace}"
    );
    assert_eq!(summary_count(&trace, "unknown_registers"), 0);
    assert_eq!(summary_count(&trace, "tx_errors"), 0);
    assert_eq!(summary_count(&trace, "rx_overflow"), 0);
    assert!(summary_count(&trace, "tx_frames") >= 1500 && summary_count(&trace, "rx_frames") >= 1500, "{trace}");
    assert!(summary_count(&trace, "multi_frame_transfers") > 0, "no bulk IN transfer carried several frames");
}

#[test]
fn ecm_in_the_second_configuration_is_chosen() {
    if !root() {
        println!("skipped: making a network namespace needs root");
        return;
    }
    let namespace = Namespace::create("ecm", true).unwrap_or_else(|e| panic!("namespace: {e}"));
    let mut model =
        Model::start(Path::new(env!("CARGO_BIN_EXE_jos-lan9512")), &namespace, "ecm").unwrap_or_else(|e| panic!("{e}"));
    let mut qemu = boot(&model, None);
    let output = qemu.output();
    assert!(output.contains("usb: device 1: 1209:0001 class 0 High speed, 2 configuration(s)"), "{output}");
    assert!(
        output.contains("usb: device 1: configuration index 1 (value 2) -> cdc-ecm"),
        "ECM configuration not chosen:\n{output}"
    );
    assert!(output.contains("usb: ecm: MAC 02:6a:6f:73:00:01, bulk IN 0x81 OUT 0x02 (512 bytes)"), "{output}");
    // Frames of 512 and 1,024 bytes end their transfers on a packet boundary: the device sends
    // a zero-length packet after them, and jos must send one after its replies.
    let mut sizes = vec![512 - 42, 1024 - 42, 1, 1400];
    sizes.extend((0..100).map(|i| 1 + (i * 7919) % 1400));
    let problems = namespace.run_in(|| udp_echo(&sizes));
    assert!(problems.is_empty(), "UDP echo over ECM: {problems:?}\n{}", qemu.output());
    // Through the TCP echo (smoltcp's path, which learns the namespace's MAC by ARP), then ping.
    let data = payload(5, 64 * 1024);
    assert!(namespace.run_in(|| tcp_echo(&data)) == data, "TCP echo over ECM");
    let ping = namespace.exec("ping", &["-c", "2", "-W", "3", GUEST_ADDRESS]);
    let ping_text = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.status.success() && ping_text.contains("2 received"), "ping:\n{ping_text}");
    qemu.kill();
    let trace = model.finish(Duration::from_secs(5));
    assert!(trace.contains("summary configuration 2 filter Some(14)"), "the model's view:\n{trace}");
}

#[test]
fn damaged_frames_are_counted_and_echo_goes_on() {
    if !root() {
        println!("skipped: making a network namespace needs root");
        return;
    }
    let namespace = Namespace::create("crc", true).unwrap_or_else(|e| panic!("namespace: {e}"));
    let binary = Path::new(env!("CARGO_BIN_EXE_jos-lan9512"));
    let mut model =
        Model::start_with(binary, &namespace, "lan9512", &["--rx-crc-errors", "7"]).unwrap_or_else(|e| panic!("{e}"));
    // A damaged DHCP answer costs a retry; the lease or the static fallback both give 10.0.2.15.
    let mut qemu = boot_expecting(&model, None, "10.0.2.15/24 via");
    // A lost request costs its whole wait: 500 ms each (a round trip takes a few).
    let sizes: Vec<usize> = (0..200).map(|i| 1 + (i * 7919) % 1400).collect();
    let problems = namespace.run_in(|| udp_echo_waiting(&sizes, Duration::from_millis(500)));
    // About one request in seven reaches jos damaged and is not answered.
    assert!(problems.len() >= 12 && problems.len() <= 60, "{} of 200 echoes lost: {problems:?}", problems.len());
    // jos reports its counters once a second when they moved: wait until its receive errors
    // match the frames the model marked (the trace has a line per marked frame).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (rx_err, marked) = loop {
        let rx_err = stat(&qemu.output(), "rx_err").unwrap_or(0);
        let marked = model.trace_text().matches("marked with a CRC error").count() as u64;
        if rx_err == marked || std::time::Instant::now() > deadline {
            break (rx_err, marked);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(rx_err, marked, "jos counted {rx_err} receive errors, the model marked {marked} frames");
    assert!(marked >= 12, "the model marked {marked} frames");
    let log = qemu.output();
    assert!(stat(&log, "udp_echo").unwrap_or(0) >= 140, "echo went on:\n{log}");
    qemu.kill();
    let trace = model.finish(Duration::from_secs(5));
    assert!(summary_count(&trace, "rx_crc_errors") >= marked);
}

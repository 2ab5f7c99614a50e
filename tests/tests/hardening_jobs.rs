//! Jobs that must not freeze or exhaust the device, under QEMU: a signed module whose start
//! function loops, huge `random` calls, hundreds of distinct modules and re-signed copies pushed
//! one after the other, nested constant expressions, jobs that ask for more memory than the
//! device has, and jobs that drive the interpreter deep into its native stack (with the default
//! and the tail-call dispatch). Through all of it the device answers discovery and serves other sessions, and its
//! heap comes back.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jos_abi::config::Policy;
use jos_abi::signature::{public_key, sha256, sign_wasm, ContentType, SignatureRepr, SignerRights};
use jos_abi::wire::discovery::{Advert, AdvertRepr, Probe};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_offload::{host, noise};
use jos_tests::config::{TestConfig, STANDARD_POLICY};
use jos_tests::{free_port, kernel_elf, BootOptions, Qemu};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const DEVELOPER: [u8; 32] = [0x65; 32];
const WASM_ONLY: [u8; 32] = [0x66; 32];

/// One boot at a time: these tests load the machine.
static ONE_BOOT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn policy(memory: u32) -> Policy {
    Policy { limits: Limits { memory, ..STANDARD_POLICY.limits }, ..STANDARD_POLICY }
}

struct Device {
    qemu: Qemu,
    tcp: u16,
    discovery: u16,
    config: PathBuf,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

fn boot(policy: Policy, tag: &str) -> Device {
    boot_kernel(policy, tag, "")
}

/// Boots the kernel built with `features` (`jos_tests::kernel_elf`).
fn boot_kernel(policy: Policy, tag: &str, features: &str) -> Device {
    let config = TestConfig::new("qemu-hardening", DEVICE_SECRET, ADVERT_SEED)
        .client(noise::public_key(&CLIENT_SECRET))
        .signer(public_key(&DEVELOPER), SignerRights::ALL)
        .signer(public_key(&WASM_ONLY), SignerRights::WASM)
        .policy(policy)
        .write(&format!("hardening-{tag}"));
    let (tcp, discovery) = (free_port(false), free_port(true));
    let mut options = BootOptions::new("raspi0", kernel_elf(features));
    let netdev = format!("user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748,hostfwd=udp:127.0.0.1:{discovery}-:4747");
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
    Device { qemu, tcp, discovery, config }
}

#[derive(Debug, PartialEq)]
enum Reply {
    PushOk([u8; 32]),
    Error(u32, String),
    Pong(u64),
    Progress,
    Result { status: JobStatus, exit_value: i32, logs: Vec<String> },
}

struct Client {
    inner: host::Client,
}

impl Client {
    fn connect(device: &Device) -> Client {
        let key = noise::public_key(&DEVICE_SECRET);
        let inner = host::Client::connect(("127.0.0.1", device.tcp), &CLIENT_SECRET, &key, Duration::from_secs(60))
            .unwrap_or_else(|error| panic!("connecting: {error:?}"));
        Client { inner }
    }

    fn send(&mut self, message: &Message<'_>) {
        self.inner.send(message).expect("send");
    }

    fn next(&mut self) -> Reply {
        let plain = self.inner.next_plain().expect("the device answers");
        match Message::parse(&plain).unwrap() {
            Message::PushOk { sha256 } => Reply::PushOk(sha256),
            Message::Error { code, message } => Reply::Error(code as u32, message.to_string()),
            Message::Pong { nonce } => Reply::Pong(nonce),
            Message::Progress { .. } => Reply::Progress,
            Message::JobResult { status, exit_value, logs, .. } => {
                Reply::Result { status, exit_value, logs: logs.iter().map(|line| line.text.to_string()).collect() }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The next reply that is not a Progress.
    fn result(&mut self) -> Reply {
        loop {
            match self.next() {
                Reply::Progress => {}
                reply => return reply,
            }
        }
    }

    fn push(&mut self, module: &[u8]) -> Reply {
        let sha = sha256(module);
        self.send(&Message::PushBegin {
            format: Format::Wasm,
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

    fn invoke(&mut self, hash: [u8; 32], limits: Limits) {
        self.send(&Message::Invoke { hash, limits, input: b"", call: None });
    }

    fn ping(&mut self, nonce: u64) {
        self.send(&Message::Ping { nonce });
        assert_eq!(self.result(), Reply::Pong(nonce));
    }
}

fn signed(text: &str) -> Vec<u8> {
    sign_wasm(&wat::parse_str(text).expect("valid text"), &DEVELOPER, true).unwrap()
}

/// The advert's free heap bytes if the device answers a probe within `within`.
fn advert_within(device: &Device, within: Duration) -> Option<u32> {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 0x4242 }.emit(&mut probe).unwrap();
    let mut datagram = [0u8; 512];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        udp.send_to(&probe, ("127.0.0.1", device.discovery)).unwrap();
        let sent = Instant::now();
        while sent.elapsed() < Duration::from_millis(300) {
            if let Ok((len, _)) = udp.recv_from(&mut datagram) {
                let advert = Advert::new_checked(&datagram[..len]).unwrap();
                return Some(AdvertRepr::parse(&advert).unwrap().free_memory);
            }
        }
    }
    None
}

/// Discovery answers within a second, `times` times in a row, a quarter second apart.
fn discovery_keeps_answering(device: &Device, times: usize, what: &str) {
    for probe in 0..times {
        assert!(
            advert_within(device, Duration::from_secs(1)).is_some(),
            "{what}: probe {probe} got no advert within 1 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The free heap once it stops moving (a second apart), as adverts report it.
fn settled_free_heap(device: &Device) -> u32 {
    let mut last = advert_within(device, Duration::from_secs(5)).expect("advert");
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = advert_within(device, Duration::from_secs(5)).expect("advert");
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

const ECHO: &str = r#"
(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (i32.add (local.get $n) (i32.const 40))))
"#;

/// A start function that never returns.
const LOOPING_START: &str = r#"
(module
  (memory (export "memory") 1)
  (func $forever (loop $l (br $l)))
  (start $forever)
  (func (export "run") (result i32) (i32.const 1)))
"#;

#[test]
fn a_start_function_that_loops_leaves_the_device_serving() {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let mut device = boot(policy(16 << 20), "start");
    let looping = signed(LOOPING_START);
    let echo = signed(ECHO);
    let mut worker = Client::connect(&device);
    assert_eq!(worker.push(&looping), Reply::PushOk(sha256(&looping)));
    assert_eq!(worker.push(&echo), Reply::PushOk(sha256(&echo)));

    // The looping start function, with a 3 s deadline.
    let started = Instant::now();
    worker.invoke(sha256(&looping), Limits { deadline_ms: 3000, ..Limits::default() });
    std::thread::sleep(Duration::from_millis(300));
    discovery_keeps_answering(&device, 4, "while the start function loops");
    // Another session is served meanwhile: a Ping, a push, and a job that waits its turn.
    let mut other = Client::connect(&device);
    other.ping(1);
    let fresh = signed(&ECHO.replace("40", "41"));
    assert_eq!(other.push(&fresh), Reply::PushOk(sha256(&fresh)));
    other.invoke(sha256(&echo), Limits::default());
    let result = worker.result();
    assert!(matches!(result, Reply::Result { status: JobStatus::Deadline, .. }), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "ended near its deadline: {:?}", started.elapsed());
    assert!(matches!(other.result(), Reply::Result { status: JobStatus::Ok, exit_value: 40, .. }));

    // Once more without a short deadline, then the client leaves: the job is aborted and the
    // next one runs at once.
    worker.invoke(sha256(&looping), Limits::default());
    std::thread::sleep(Duration::from_millis(1500));
    discovery_keeps_answering(&device, 2, "while the start function loops again");
    drop(worker);
    std::thread::sleep(Duration::from_millis(500));
    let after = Instant::now();
    other.invoke(sha256(&fresh), Limits::default());
    assert!(matches!(other.result(), Reply::Result { status: JobStatus::Ok, exit_value: 41, .. }));
    assert!(after.elapsed() < Duration::from_secs(5), "the aborted job let the next run: {:?}", after.elapsed());
    device.qemu.send("offload\r").expect("console");
    let counters = device
        .qemu
        .wait_for_line_containing("offload: counters", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(counters.contains("jobs_aborted=1"), "{counters}");
}

/// Asks for 16 MiB of random bytes again and again.
const RANDOM_FLOOD: &str = r#"
(module
  (import "jos" "random" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func (export "run") (result i32)
    (loop $again (drop (call $random (i32.const 0) (i32.const 16777216))) (br $again))
    (i32.const 0)))
"#;

#[test]
fn huge_random_calls_end_promptly_and_keep_the_frame() {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let device = boot(policy(16 << 20), "random");
    let flood = signed(RANDOM_FLOOD);
    let mut client = Client::connect(&device);
    assert_eq!(client.push(&flood), Reply::PushOk(sha256(&flood)));

    // Each call costs 16 Mi x 64 fuel: the first is paid for and done in slices, the second is
    // more than the rest of the 2e9 budget. The job ends out of fuel, or at its deadline if the
    // device produces random bytes more slowly; the device answers discovery meanwhile.
    let started = Instant::now();
    client.invoke(sha256(&flood), Limits { deadline_ms: 5000, ..Limits::default() });
    std::thread::sleep(Duration::from_millis(300));
    discovery_keeps_answering(&device, 4, "during 16 MiB random calls");
    let result = client.result();
    assert!(matches!(result, Reply::Result { status: JobStatus::OutOfFuel | JobStatus::Deadline, .. }), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    // A budget that cannot pay for one call: out of fuel at once.
    let started = Instant::now();
    client.invoke(sha256(&flood), Limits { fuel: 100_000_000, ..Limits::default() });
    let result = client.result();
    assert!(matches!(result, Reply::Result { status: JobStatus::OutOfFuel, .. }), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

/// A distinct module of about 17 KiB whose compiled form is large (a `br_table` of 16,000
/// targets compiles to some 30 bytes a target).
fn bulky_module(index: u32) -> Vec<u8> {
    let targets: String = (0..16_000u32).map(|target| format!("{} ", (target + index) % 4)).collect();
    signed(&format!(
        r#"(module
          (func (export "run") (result i32) (local $x i32)
            (local.set $x (i32.const {index}))
            (block (block (block (block (br_table {targets} (local.get $x))))))
            (local.get $x)))"#
    ))
}

/// `module` re-signed by the developer with an extra signature set (a hash and a signature of
/// an algorithm the device skips) that differs by `variant`: other bytes, the same content.
fn re_signed(module: &[u8], variant: u32) -> Vec<u8> {
    let split = jos_abi::signature::split_wasm(module).unwrap();
    let content = split.content;
    let repr = SignatureRepr::sign(ContentType::WasmModule, content, &DEVELOPER, variant.is_multiple_of(2));
    let mut first = vec![1u8];
    first.extend_from_slice(&repr.hash);
    let mut entry = Vec::new();
    match repr.key_id {
        Some(id) => {
            entry.push(id.len() as u8);
            entry.extend_from_slice(&id);
        }
        None => entry.push(0),
    }
    entry.push(1);
    entry.push(64);
    entry.extend_from_slice(&repr.signature);
    first.push(1);
    first.push(entry.len() as u8);
    first.extend_from_slice(&entry);
    let mut junk = vec![1u8];
    let mut hash = [0u8; 32];
    hash[..4].copy_from_slice(&variant.to_le_bytes());
    junk.extend_from_slice(&hash);
    junk.extend_from_slice(&[1, 5, 0, 2, 2, 0xaa, 0xbb]);
    let mut payload = vec![1u8, ContentType::WasmModule as u8, 1, 2];
    for set in [&first, &junk] {
        varuint(&mut payload, set.len());
        payload.extend_from_slice(set);
    }
    let mut body = Vec::new();
    varuint(&mut body, 9);
    body.extend_from_slice(b"signature");
    body.extend_from_slice(&payload);
    let mut out = jos_abi::signature::WASM_PREAMBLE.to_vec();
    out.push(0);
    varuint(&mut out, body.len());
    out.extend_from_slice(&body);
    out.extend_from_slice(content);
    out
}

fn varuint(out: &mut Vec<u8>, mut value: usize) {
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

#[test]
fn the_heap_comes_back_after_hundreds_of_distinct_and_re_signed_modules() {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let device = boot(policy(16 << 20), "modules");
    let start = settled_free_heap(&device);
    let mut client = Client::connect(&device);
    let round = |from: u32, client: &mut Client| {
        for index in from..from + 100 {
            let module = bulky_module(index);
            assert_eq!(client.push(&module), Reply::PushOk(sha256(&module)), "module {index}");
            if index % 25 == 0 {
                client.invoke(sha256(&module), Limits::default());
                assert_eq!(
                    client.result(),
                    Reply::Result { status: JobStatus::Ok, exit_value: index as i32, logs: vec![] }
                );
            }
        }
        settled_free_heap(&device)
    };
    // 100 modules fill the 32 MiB cache of compiled modules several times over; the next
    // hundreds find the heap where the first left it.
    let first = round(0, &mut client);
    let second = round(100, &mut client);
    let third = round(200, &mut client);
    const SLACK: u32 = 2 << 20;
    eprintln!("free heap: start {start}, after 100 modules {first}, 200 {second}, 300 {third}");
    assert!(start - first <= (32 << 20) + SLACK, "the cache holds at most its budget: {start} -> {first}");
    assert!(second.abs_diff(first) <= SLACK, "steady after 100 and 200 modules: {first} -> {second}");
    assert!(third.abs_diff(first) <= SLACK, "steady after 100 and 300 modules: {first} -> {third}");

    // Re-signed copies of one module are that module: no compilation, no new cache entry.
    let original = bulky_module(1000);
    assert_eq!(client.push(&original), Reply::PushOk(sha256(&original)));
    let with_one = settled_free_heap(&device);
    for variant in 0..100 {
        let copy = re_signed(&original, variant);
        assert_eq!(client.push(&copy), Reply::PushOk(sha256(&copy)), "variant {variant}");
    }
    // The device knows the module by its last pushes' SHA-256s and by its identity.
    let identity = sha256(jos_abi::signature::split_wasm(&original).unwrap().content);
    for hash in [sha256(&re_signed(&original, 99)), identity] {
        client.invoke(hash, Limits::default());
        assert_eq!(client.result(), Reply::Result { status: JobStatus::Ok, exit_value: 1000, logs: vec![] });
    }
    let with_copies = settled_free_heap(&device);
    assert!(with_copies.abs_diff(with_one) <= 256 << 10, "100 re-signed copies: {with_one} -> {with_copies}");
    drop(client);
}

/// A module with a global whose initialiser nests `depth` additions (binary: wat would recurse).
fn nested_const_module(depth: usize) -> Vec<u8> {
    let mut expr = vec![0x41, 0x01];
    for _ in 1..depth {
        expr.extend_from_slice(&[0x41, 0x01, 0x6a]);
    }
    expr.push(0x0b);
    let mut globals = vec![1u8, 0x7f, 0x00];
    globals.extend_from_slice(&expr);
    // Type section: () -> i32; function section: one; export "run"; code: global.get 0.
    let mut module = jos_abi::signature::WASM_PREAMBLE.to_vec();
    module.extend_from_slice(&[0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f]);
    module.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]);
    module.push(0x06);
    varuint(&mut module, globals.len());
    module.extend_from_slice(&globals);
    module.extend_from_slice(&[0x07, 0x07, 0x01, 0x03, b'r', b'u', b'n', 0x00, 0x00]);
    module.extend_from_slice(&[0x0a, 0x06, 0x01, 0x04, 0x00, 0x23, 0x00, 0x0b]);
    sign_wasm(&module, &DEVELOPER, true).unwrap()
}

#[test]
fn nested_constant_expressions_are_refused_and_the_kernel_stack_holds() {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let device = boot(policy(16 << 20), "constexpr");
    let mut client = Client::connect(&device);
    // At the bound: accepted and run (the global is the number of additions plus one).
    let fine = nested_const_module(jos_runtime::wasm::MAX_CONST_EXPR_DEPTH as usize);
    assert_eq!(client.push(&fine), Reply::PushOk(sha256(&fine)));
    client.invoke(sha256(&fine), Limits::default());
    let expected = jos_runtime::wasm::MAX_CONST_EXPR_DEPTH as i32;
    let result = client.result();
    assert!(
        matches!(result, Reply::Result { status: JobStatus::Ok, exit_value, .. } if exit_value == expected),
        "{result:?}"
    );
    // Far deeper than the kernel stack allows: refused at push as malformed.
    for depth in [20_000, 200_000] {
        let deep = nested_const_module(depth);
        let refused = client.push(&deep);
        assert!(
            matches!(refused, Reply::Error(9, ref message) if message.contains("nested deeper")),
            "{depth}: {refused:?}"
        );
        client.invoke(sha256(&deep), Limits::default());
        assert!(matches!(client.result(), Reply::Error(6, _)), "not cached");
    }
    client.ping(3);
    assert!(advert_within(&device, Duration::from_secs(2)).is_some());
}

/// Grows its memory by the number of pages its input names (4 bytes, little-endian), then as far
/// as the device lets it (large steps first), holds it for a while (yielding), then returns the
/// pages it got.
const GREEDY: &str = r#"
(module
  (import "jos" "yield" (func $yield (result i32)))
  (import "jos" "time_us" (func $time (result i64)))
  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "holding the memory")
  (func (export "run") (result i32)
    (local $step i32) (local $until i64)
    (drop (call $input_read (i32.const 0) (i32.const 4) (i32.const 0)))
    (drop (memory.grow (i32.load (i32.const 0))))
    (local.set $step (i32.const 65535))
    (block $done
      (loop $try
        (br_if $done (i32.eqz (local.get $step)))
        (if (i32.eq (memory.grow (local.get $step)) (i32.const -1))
          (then (local.set $step (i32.shr_u (local.get $step) (i32.const 1)))))
        (br $try)))
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 18)))
    (local.set $until (i64.add (call $time) (i64.const 4000000)))
    (loop $hold
      (drop (call $yield))
      (br_if $hold (i64.lt_u (call $time) (local.get $until))))
    (memory.size)))
"#;

#[test]
fn jobs_cannot_take_the_memory_the_device_keeps() {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    // The policy lets a job have 4 GiB, more than the device has.
    let device = boot(policy(u32::MAX), "memory");
    let start = settled_free_heap(&device);
    let greedy = signed(GREEDY);
    let mut client = Client::connect(&device);
    assert_eq!(client.push(&greedy), Reply::PushOk(sha256(&greedy)));
    // First all but 1 MiB of what is free now, in one step.
    let pages = (start - (1 << 20)) / 65536;
    client.send(&Message::Invoke {
        hash: sha256(&greedy),
        limits: Limits::default(),
        input: &pages.to_le_bytes(),
        call: None,
    });
    std::thread::sleep(Duration::from_millis(2500));
    // While the job holds all it could get, the device keeps its reserve and serves.
    let during =
        advert_within(&device, Duration::from_secs(2)).expect("discovery answers while the job holds its memory");
    let mut other = Client::connect(&device);
    other.ping(9);
    let result = client.result();
    let Reply::Result { status: JobStatus::Ok, exit_value: pages, .. } = result else { panic!("{result:?}") };
    eprintln!("free heap: start {start}, while the job held {pages} pages {during}");
    assert!(during >= 16 << 20, "the device kept its 16 MiB: {during} bytes free");
    assert!(
        u64::from(pages as u32) * 65536 > u64::from(start) / 4,
        "the job got a large part of the heap: {pages} pages"
    );
    // An initial memory larger than the device can give: refused, nothing allocated.
    let huge = signed(r#"(module (memory 30000) (func (export "run") (result i32) (i32.const 0)))"#);
    assert_eq!(client.push(&huge), Reply::PushOk(sha256(&huge)));
    client.invoke(sha256(&huge), Limits::default());
    let result = client.result();
    assert!(
        matches!(result, Reply::Result { status: JobStatus::LimitExceeded, ref logs, .. } if logs[0].contains("device memory")),
        "{result:?}"
    );
    other.ping(10);
    drop(client);
    drop(other);
    let end = settled_free_heap(&device);
    assert!(end.abs_diff(start) <= 512 << 10, "the heap came back: {start} -> {end}");
}

/// Unbounded wasm recursion: wasmi's call-depth limit ends it.
const DEEP_RECURSION: &str =
    r#"(module (func $f (call $f)) (func (export "run") (result i32) (call $f) (i32.const 0)))"#;

/// `memory.grow` in a loop that ignores the refusal: with wasmi 2.0's tail-call dispatch every
/// `memory.grow` adds a native frame (docs/runtime.md "Dispatch features").
const GROW_LOOP: &str = r#"(module (memory 1 16)
  (func (export "run") (result i32) (loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i32.const 0)))"#;

const ANSWER: &str = r#"(module (func (export "run") (result i32) (i32.const 42)))"#;

/// Pushes and runs the stack-hungry modules on the kernel built with `features`: each ends with
/// the status expected of that dispatch (`grow_status` for the `memory.grow` loop, whose log
/// must contain `grow_log`), and after each the device answers a ping and runs the next job.
fn stack_hungry_jobs_end_and_the_next_runs(features: &str, grow_status: JobStatus, grow_log: &str) {
    let _one = ONE_BOOT_AT_A_TIME.lock().unwrap_or_else(|poison| poison.into_inner());
    let device = boot_kernel(policy(16 << 20), &format!("stack{features}"), features);
    let mut client = Client::connect(&device);
    let limits = Limits { fuel: 50_000_000, ..Limits::default() };
    let answer = signed(ANSWER);
    let cases = [(GROW_LOOP, grow_status, grow_log), (DEEP_RECURSION, JobStatus::Trap, "")];
    for module in [ANSWER, GROW_LOOP, DEEP_RECURSION].map(signed) {
        assert_eq!(client.push(&module), Reply::PushOk(sha256(&module)));
    }
    // The cached modules and a first run of each count in `start`; what later runs leak does not.
    for (text, status, log) in cases {
        client.invoke(sha256(&signed(text)), limits);
        let result = client.result();
        assert!(
            matches!(&result, Reply::Result { status: got, logs, .. }
                if *got == status && logs.iter().any(|line| line.contains(log))),
            "{features}: first run: {result:?}"
        );
    }
    let start = settled_free_heap(&device);
    for (round, (text, status, log)) in cases.into_iter().enumerate() {
        client.invoke(sha256(&signed(text)), limits);
        let result = client.result();
        match &result {
            Reply::Result { status: got, logs, .. } => {
                assert_eq!(*got, status, "{features}: {text}: {result:?}");
                assert!(logs.iter().any(|line| line.contains(log)), "{features}: {text}: {result:?}");
            }
            other => panic!("{features}: {text}: {other:?}"),
        }
        client.ping(round as u64);
        client.invoke(sha256(&answer), limits);
        let next = client.result();
        assert!(matches!(next, Reply::Result { status: JobStatus::Ok, exit_value: 42, .. }), "{features}: {next:?}");
    }
    drop(client);
    let end = settled_free_heap(&device);
    eprintln!("{features}: free heap {start} before the rounds, {end} after");
    // Abandoned frames leak what they owned: a bound, so that a device survives many such jobs.
    assert!(end + (64 << 10) >= start, "{features}: the heap came back: {start} -> {end}");
}

#[test]
fn stack_hungry_wasm_jobs_end_and_the_device_serves_default_dispatch() {
    // The loop dispatch keeps native stack use bounded: the loop runs until its fuel is gone.
    stack_hungry_jobs_end_and_the_next_runs("", JobStatus::OutOfFuel, "");
}

#[test]
fn stack_hungry_wasm_jobs_end_and_the_device_serves_tail_call_dispatch() {
    // Tail-call dispatch (`cargo xtask kernel --wasm-dispatch indirect`): the loop exhausts the
    // wasm stack; the guard page ends the job, not the device.
    stack_hungry_jobs_end_and_the_next_runs("wasm-indirect", JobStatus::Trap, "native stack exhausted");
}

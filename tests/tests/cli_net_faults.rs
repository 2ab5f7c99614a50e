//! Faults on the path: the kernel boots in QEMU behind an impaired link (`jos_tests::link`: 5%
//! loss, 2% duplication, 5% reordering, 10 ± 5 ms delay, 0.1% corruption, from a logged seed),
//! and the real `jos-cli`, inside a network namespace whose TAP device is the link's other end,
//! pushes modules of 1 KiB to 1 MiB and invokes them with inputs of 1 to 32 KiB. Every command
//! must end with the right result, or with a clear error (exit 8, 19 or 20 and an `error:` line)
//! within its time bound. Then the link goes dead in the middle of a 1 MiB push, which must fail
//! with a clear error after the client's wait. Afterwards, on a clean link, the device must be healthy: it answers
//! discovery and UDP echo, takes a normal push, holds no session, and its heap is back where it
//! was after the same pushes on a clean link.
//!
//! The host kernel has no `tc netem` (docs/network.md, "Fault injection"), so the impairment is
//! done in user space between the TAP device and QEMU's `-netdev socket`. A failure prints the
//! seed: `JOS_LINK_SEED=N` replays the link's decisions. Without the rights to make a namespace
//! the test prints "skipped: <reason>" and passes, as `discover_tap.rs` does.

#[path = "support/output.rs"]
mod output;

use std::io::Read;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use jos_tests::link::{seed_from_env, Impairment, Link, LinkStats, Namespace};
use jos_tests::{BootOptions, Qemu};
use output::{assert_success, json, text};

/// Exit codes a command may end with when the link defeats it: unreachable, protocol, timeout.
const FAULT_EXITS: [i32; 3] = [8, 19, 20];
/// Longest a jos-cli command may take: its 30 s I/O wait, discovery and connection on top.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// Longest the whole test may take before it gives up.
const TEST_LIMIT: Duration = Duration::from_secs(240);

/// A module of about `size` bytes: echoes its input and returns a checksum of its `size`-byte
/// data segment (placed at 64 KiB), so a result proves the whole module arrived.
struct TestModule {
    path: PathBuf,
    bytes: usize,
    checksum: i32,
}

fn test_module(dir: &Path, size: usize, seed: u64) -> TestModule {
    let data_len = (size.saturating_sub(400) & !3).max(4);
    let mut state = seed | 1;
    let data: Vec<u8> = (0..data_len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let checksum = data
        .chunks(4)
        .fold(0i32, |sum, word| sum.wrapping_mul(31).wrapping_add(i32::from_le_bytes(word.try_into().unwrap())));
    let escaped: String = data.iter().map(|byte| format!("\\{byte:02x}")).collect();
    let pages = 2 + data_len.div_ceil(65536);
    let text = format!(
        r#"(module
          (import "jos" "input_len" (func $input_len (result i32)))
          (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
          (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
          (memory (export "memory") {pages})
          (data (i32.const 65536) "{escaped}")
          (func (export "run") (result i32)
            (local $n i32) (local $i i32) (local $sum i32)
            (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
            (drop (call $output_write (i32.const 0) (local.get $n)))
            (block $done
              (loop $next
                (br_if $done (i32.ge_u (local.get $i) (i32.const {data_len})))
                (local.set $sum (i32.add (i32.mul (local.get $sum) (i32.const 31))
                  (i32.load (i32.add (i32.const 65536) (local.get $i)))))
                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                (br $next)))
            (local.get $sum)))"#
    );
    let module = wat::parse_str(&text).expect("the test module assembles");
    let path = dir.join(format!("module-{size}.wasm"));
    std::fs::write(&path, &module).unwrap();
    TestModule { bytes: module.len(), path, checksum }
}

/// Runs `jos-cli ARGS` inside the namespace with a hard time limit (killed past it).
fn jos_cli(namespace: &Namespace, dir: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = namespace
        .command(jos_tests::cli::jos_cli())
        .args(args)
        .current_dir(dir)
        .env("JOS_HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run jos-cli in the namespace");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for jos-cli") {
            break status;
        }
        if started.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            panic!("jos-cli {} still runs after {COMMAND_LIMIT:?}: it must time out by itself", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    (output, started.elapsed())
}

/// Sends `command` on the kernel's console and returns the first new line starting with
/// `prefix` (waits up to 10 s).
fn console(qemu: &mut Qemu, command: &str, prefix: &str) -> String {
    let before = qemu.output().lines().filter(|line| line.starts_with(prefix)).count();
    qemu.send(&format!("{command}\n")).expect("type on the console");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = qemu.output();
        let complete = &output[..output.rfind('\n').map_or(0, |at| at + 1)];
        if let Some(line) = complete.lines().filter(|line| line.starts_with(prefix)).nth(before) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "no `{prefix}` line after `{command}`:\n{output}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `name=` or `name ` in a console line.
fn field(line: &str, name: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .enumerate()
        .find_map(|(index, word)| match word.strip_prefix(&format!("{name}=")) {
            Some(value) => value.parse().ok(),
            None if *word == name => words.get(index + 1)?.parse().ok(),
            None => None,
        })
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

/// Waits (up to 30 s) until the device holds no session; returns its `heap` line's `used`.
fn settled_heap(qemu: &mut Qemu) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counters = console(qemu, "offload", "offload: counters");
        if field(&counters, "sessions") == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "sessions still open 30 s after the last client left: {counters}");
        std::thread::sleep(Duration::from_millis(500));
    }
    field(&console(qemu, "heap", "heap: size"), "used")
}

/// What one push or invoke must give: the input echoed and the module's checksum.
fn check_job(output: &Output, input: &[u8], module: &TestModule) -> Result<String, String> {
    if !output.status.success() {
        return Err(text(output));
    }
    let report = json(output);
    let hex = hex::encode(input);
    if report["status"] != "ok" || report["output_hex"] != hex.as_str() || report["exit_value"] != module.checksum {
        return Err(format!(
            "wrong result for a {}-byte module, {}-byte input: status {}, exit value {} (want {}), output {} bytes",
            module.bytes,
            input.len(),
            report["status"],
            report["exit_value"],
            module.checksum,
            report["output_hex"].as_str().map_or(0, |text| text.len() / 2)
        ));
    }
    Ok(report["hash"].as_str().expect("a hash").to_string())
}

/// A command the link defeated must say so clearly: a fault exit code and an `error:` line.
fn check_failure(output: &Output, took: Duration, what: &str) {
    let code = output.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        FAULT_EXITS.contains(&code) && stderr.contains("error: "),
        "{what} failed without a clear fault error (exit {code}, after {took:?}):\n{}",
        text(output)
    );
}

fn input(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(salt)).collect()
}

fn report(link: &Link, started: Instant) -> String {
    let LinkStats { to_device, to_client } = link.stats();
    format!(
        "link seed {} (replay with JOS_LINK_SEED={}), after {:?}\n  to device: {to_device:?}\n  to client: {to_client:?}",
        link.seed(),
        link.seed(),
        started.elapsed()
    )
}

#[test]
fn pushes_and_invokes_survive_a_lossy_link() {
    let started = Instant::now();
    let id = std::process::id() % 100_000;
    let namespace = match Namespace::create(&format!("jos-fault-{id}"), &format!("josfault{id}")) {
        Ok(namespace) => namespace,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let tap = namespace.open_tap().expect("attach to the TAP device");
    let link = Link::start(tap, seed_from_env()).expect("start the link");
    println!("link seed {} (replay with JOS_LINK_SEED={})", link.seed(), link.seed());

    let dir = tempfile::Builder::new().prefix("jos-net-faults").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = dir.path();
    assert_success(&jos_cli(&namespace, dir, &["keygen"]).0);
    assert_success(
        &jos_cli(
            &namespace,
            dir,
            &[
                "provision",
                "--name",
                "fault-pi",
                "--static",
                "10.0.2.15/24",
                "--gateway",
                "10.0.2.1",
                "-o",
                "config.bin",
            ],
        )
        .0,
    );
    let modules: Vec<TestModule> = [1 << 10, 16 << 10, 128 << 10, 512 << 10, 1 << 20]
        .iter()
        .map(|&size| test_module(dir, size, size as u64))
        .collect();

    let mut options = BootOptions::new("raspi0", jos_tests::kernel_elf(""));
    options.extra_args = link.qemu_args();
    options.extra_args.extend([
        "-device".to_string(),
        format!("loader,file={},addr=0x01F00000,force-raw=on", dir.join("config.bin").display()),
    ]);
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    qemu.wait_for("offload: ready", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let ip = qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(ip.starts_with("10.0.2.15/24 via static"), "expected the static address, got {ip:?}");

    // Clean link: every module once, so the device's caches hold what the faulty phase pushes.
    let one_kib = input(1024, 1);
    std::fs::write(dir.join("input-1k"), &one_kib).unwrap();
    let mut hashes = Vec::new();
    for module in &modules {
        let (output, took) = jos_cli(
            &namespace,
            dir,
            &["push", module.path.to_str().unwrap(), "--input", "input-1k", "--json", "--timeout", "10000"],
        );
        let hash = check_job(&output, &one_kib, module)
            .unwrap_or_else(|e| panic!("clean push: {e}\n{}", report(&link, started)));
        println!("clean push of {} bytes: {took:?}", module.bytes);
        hashes.push(hash);
    }
    let baseline = settled_heap(&mut qemu);
    println!("heap used after the clean pushes: {baseline} bytes");

    // The faulty link: pushes and invokes of every size.
    link.set(Impairment::LOSSY);
    let inputs: Vec<(String, Vec<u8>)> = [(1usize << 10, 2u8), (8 << 10, 3), (32 << 10, 4)]
        .iter()
        .map(|&(len, salt)| {
            let name = format!("input-{len}");
            let bytes = input(len, salt);
            std::fs::write(dir.join(&name), &bytes).unwrap();
            (name, bytes)
        })
        .collect();
    let (mut succeeded, mut failed) = (0, 0);
    for (index, module) in modules.iter().enumerate() {
        let (name, bytes) = &inputs[index % inputs.len()];
        let (output, took) = jos_cli(
            &namespace,
            dir,
            &["push", module.path.to_str().unwrap(), "--input", name, "--json", "--timeout", "10000"],
        );
        match check_job(&output, bytes, module) {
            Ok(hash) => {
                assert_eq!(hash, hashes[index], "the same module under another hash");
                succeeded += 1;
                println!("lossy push of {} bytes with {} input bytes: {took:?}", module.bytes, bytes.len());
            }
            Err(error) => {
                check_failure(&output, took, "a push over the lossy link");
                failed += 1;
                println!("lossy push of {} bytes failed after {took:?}: {error}", module.bytes);
            }
        }
        for (name, bytes) in &inputs {
            let (output, took) =
                jos_cli(&namespace, dir, &["invoke", &hashes[index], "--input", name, "--json", "--timeout", "10000"]);
            match check_job(&output, bytes, module) {
                Ok(_) => succeeded += 1,
                Err(error) => {
                    check_failure(&output, took, "an invoke over the lossy link");
                    failed += 1;
                    println!("lossy invoke of the {}-byte module failed after {took:?}: {error}", module.bytes);
                }
            }
        }
        assert!(started.elapsed() < TEST_LIMIT, "the test ran past {TEST_LIMIT:?}\n{}", report(&link, started));
    }
    let (discover, took) =
        jos_cli(&namespace, dir, &["discover", "--address", "10.0.2.15", "--timeout", "2000", "--json"]);
    if !discover.status.success() {
        check_failure(&discover, took, "discovery over the lossy link");
    }
    let faulty = link.stats();
    println!("lossy phase: {succeeded} commands right, {failed} failed clearly\n{}", report(&link, started));
    assert!(
        succeeded >= 3 * (succeeded + failed) / 4,
        "too few commands got through: {succeeded} of {}",
        succeeded + failed
    );
    for direction in [faulty.to_device, faulty.to_client] {
        assert!(
            direction.lost > 0 && direction.duplicated > 0 && direction.reordered > 0,
            "the link did not impair: {faulty:?}"
        );
    }

    // The link goes dead in the middle of a 1 MiB push: jos-cli must give up by itself with a
    // clear error once its 30 s wait is over.
    link.set(Impairment::NONE);
    let before = link.stats().to_device.frames;
    let (output, took) = std::thread::scope(|scope| {
        let push = scope.spawn(|| {
            jos_cli(
                &namespace,
                dir,
                &["push", modules[4].path.to_str().unwrap(), "--input", "input-1k", "--json", "--timeout", "10000"],
            )
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while link.stats().to_device.frames < before + 200 && Instant::now() < deadline && !push.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        link.set(Impairment { loss: 1.0, ..Impairment::NONE });
        push.join().expect("the push thread")
    });
    println!("push during a blackout: exit {:?} after {took:?}", output.status.code());
    check_failure(&output, took, "a push into a dead link");
    assert!(
        (Duration::from_secs(25)..=Duration::from_secs(40)).contains(&took),
        "gave up after {took:?}, not after its 30 s wait:\n{}",
        text(&output)
    );
    // The client's host forgets the connection while the link is still down, as a reboot would
    // (`ss -K` aborts it; the reset is lost): no FIN or RST ever reaches the device, which must
    // find out by itself that its peer is gone.
    let killed =
        namespace.command("ss").args(["-K", "dst", "10.0.2.15", "dport", "=", "4748"]).output().expect("run ss");
    assert!(killed.status.success(), "ss -K: {}", String::from_utf8_lossy(&killed.stderr));
    std::thread::sleep(Duration::from_secs(2));

    // Clean again: the device must be as healthy as before.
    link.set(Impairment::NONE);
    let (discover, _) =
        jos_cli(&namespace, dir, &["discover", "--address", "10.0.2.15", "--timeout", "2000", "--json"]);
    assert_success(&discover);
    assert_eq!(json(&discover)["devices"][0]["name"], "fault-pi");
    let echoes = namespace
        .run(|| {
            let socket = UdpSocket::bind("10.0.2.1:0").expect("bind in the namespace");
            socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            (0..5u8)
                .filter(|round| {
                    let payload = [b'E', b'c', b'h', b'o', b'0' + round];
                    let _ = socket.send_to(&payload, "10.0.2.15:7");
                    let mut buffer = [0u8; 64];
                    matches!(socket.recv_from(&mut buffer), Ok((5, _)) if buffer[..5] == payload)
                })
                .count()
        })
        .expect("run in the namespace");
    assert_eq!(echoes, 5, "UDP echo after the faults");
    let (output, _) = jos_cli(
        &namespace,
        dir,
        &["push", modules[0].path.to_str().unwrap(), "--input", "input-1k", "--json", "--timeout", "10000"],
    );
    check_job(&output, &one_kib, &modules[0]).unwrap_or_else(|e| panic!("push after the faults: {e}"));
    let after = settled_heap(&mut qemu);
    println!("heap used after the faults: {after} bytes (before: {baseline})");
    assert_eq!(after, baseline, "the heap is not back where it was");
    let output = qemu.output();
    assert!(!output.contains("PANIC"), "{output}");
    println!("{}", console(&mut qemu, "offload", "offload: counters"));
    println!("{}", report(&link, started));
}

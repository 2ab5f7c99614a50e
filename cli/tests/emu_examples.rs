//! Every guest example, end to end as a user types it, against one emulated device (one QEMU boot
//! for this whole file): `jos-cli build` each of md5, sha256, fib and imagefilter in C and in Rust
//! as wasm and as native, `jos-cli run --local` the wasm module, `jos-cli push` the wasm module,
//! `jos-cli push --aot` the same module (compiled ahead of time) and `jos-cli push --native` the
//! blob to `jos-cli emu start`'s device, and check that the four outputs are byte-identical and
//! equal to what the host computes (the `md-5` and `sha2` crates, a Rust fib, the filter's luma
//! formula), and that each result names the engine that ran it (`stats.engine`: wasm, aot,
//! native); an AOT blob invoked again by its hash gives the same output. Then the device-side exit codes, each produced by a
//! real failure on the emulated device (see `cli/tests/exit_codes.rs` for the full table).
//! echo (a network-serving job) runs with the `net` right: `run --local --grant net` and pushed
//! as wasm, AOT and native, each answering three datagrams (through `emu start`'s forwarded job port
//! for the device), all printing the same "echoed 3".

#[path = "support/examples.rs"]
mod examples;
#[path = "support/kernel.rs"]
mod kernel;
#[path = "support/output.rs"]
mod output;

use examples::case;
use kernel::kernel;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use jos_guest_examples::Language;
use output::{assert_exit, assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// A folder with a user's `$JOS_HOME` (`home/`) and the built files; the emulator it started is
/// stopped when this is dropped, also when an assertion failed.
struct Emu {
    dir: tempfile::TempDir,
}

impl Emu {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, home: &str, args: &[&str]) -> Command {
        let mut command = Command::new(JOS_CLI);
        command.args(args).current_dir(self.dir.path()).env("JOS_HOME", self.path(home)).env_remove("XDG_CONFIG_HOME");
        command
    }

    /// Runs jos-cli as the user who owns the emulator.
    fn run(&self, args: &[&str]) -> Output {
        self.run_as("home", args)
    }

    /// Runs jos-cli with another `$JOS_HOME` under the folder.
    fn run_as(&self, home: &str, args: &[&str]) -> Output {
        self.command(home, args).output().expect("run jos-cli")
    }

    /// Starts jos-cli in the background.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command("home", args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn jos-cli")
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.run(&["emu", "stop"]);
    }
}

fn output_hex(report: &serde_json::Value, what: &str) -> String {
    assert_eq!(report["status"], "ok", "{what}: {report}");
    if report["place"] == "emu" {
        // The device names the engine: push --aot and --native give blobs, the rest wasm.
        let engine = if what.contains("--aot") {
            "aot"
        } else if what.contains("native") {
            "native"
        } else {
            "wasm"
        };
        assert_eq!(report["stats"]["engine"], engine, "{what}: {report}");
    }
    report["output_hex"].as_str().unwrap_or_else(|| panic!("{what}: no output_hex in {report}")).to_string()
}

#[test]
fn examples_and_device_exit_codes_on_one_emulated_device() {
    let emu = Emu {
        dir: tempfile::Builder::new().prefix("jos-emu-examples").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
    };
    // Build everything before the emulator runs.
    let mut built = Vec::new();
    for example in jos_guest_examples::EXAMPLES {
        for language in jos_guest_examples::LANGUAGES {
            let source = example.source(language);
            let stem = format!("{}-{}", example.name, if language == Language::C { "c" } else { "rust" });
            for (format, extension) in [("wasm", "wasm"), ("native", "blob")] {
                let file = format!("{stem}.{extension}");
                let output = emu.run(&["build", source.to_str().unwrap(), "--format", format, "-o", &file, "--json"]);
                assert_success(&output);
                assert_eq!(json(&output)["format"], format);
            }
            if !example.network {
                built.push((example, stem));
            }
        }
    }
    build_failing_guests(&emu);

    // The device `emu`, provisioned by the user with a one-job queue (to reach `Busy`) and the
    // `net` right for their own signatures (for echo), then booted: `emu start` keeps an existing
    // configuration.
    assert_success(&emu.run(&["keygen"]));
    std::fs::create_dir_all(emu.path("home/emu")).unwrap();
    assert_success(&emu.run(&[
        "provision",
        "--name",
        "emu",
        "--dhcp",
        "--queue",
        "1",
        "--signer",
        "self:wasm,native,net",
        "-o",
        "home/emu/config.bin",
    ]));
    let kernel = kernel();
    let output = emu.run(&["emu", "start", "--kernel", kernel.to_str().unwrap(), "--json"]);
    assert_success(&output);
    let started = json(&output);
    assert_eq!(started["answered"], true);
    let discovery = started["discovery"].as_str().unwrap().to_string();
    let job_port = started["job_port"]["host"].as_str().expect("emu start forwards a job port").to_string();
    let device_port = started["job_port"]["device"].as_u64().unwrap();

    for (example, stem) in &built {
        let (input, expected) = case(example);
        let input_file = format!("{stem}.input");
        emu.write(&input_file, &input);
        let what = |how: &str| format!("{stem} {how}");
        let local = emu.run(&["run", "--local", &format!("{stem}.wasm"), "--input", &input_file, "--json"]);
        assert_success(&local);
        let local = output_hex(&json(&local), &what("run --local"));
        let wasm = emu.run(&["push", &format!("{stem}.wasm"), "--input", &input_file, "--json"]);
        assert_success(&wasm);
        let wasm_report = json(&wasm);
        assert_eq!(wasm_report["place"], "emu");
        let wasm = output_hex(&wasm_report, &what("push (wasm)"));
        let native = emu.run(&["push", &format!("{stem}.blob"), "--native", "--input", &input_file, "--json"]);
        assert_success(&native);
        let native = output_hex(&json(&native), &what("push --native"));
        let aot = emu.run(&["push", &format!("{stem}.wasm"), "--aot", "--input", &input_file, "--json"]);
        assert_success(&aot);
        let aot_report = json(&aot);
        let aot = output_hex(&aot_report, &what("push --aot"));
        assert_eq!(local, hex::encode(&expected), "{}: run --local differs from the host's result", what(""));
        assert_eq!(wasm, local, "{}: the device's wasm result differs from run --local", what(""));
        assert_eq!(native, local, "{}: the device's native result differs from run --local", what(""));
        assert_eq!(aot, local, "{}: the device's AOT result differs from run --local", what(""));
        assert_ne!(aot_report["hash"], wasm_report["hash"], "{}: the AOT blob is not the wasm module", what(""));
        if stem == "md5-c" {
            // Cached on the device: invoked by its hash (a prefix of it), not sent again.
            let hash = aot_report["hash"].as_str().unwrap();
            let invoked = emu.run(&["invoke", &hash[..12], "--input", &input_file, "--json"]);
            assert_success(&invoked);
            let invoked = json(&invoked);
            assert_eq!(invoked["bytes_sent"].as_u64().map(|sent| sent < 2048), Some(true), "{invoked}");
            assert_eq!(output_hex(&invoked, &what("invoke --aot blob")), local);
        }
    }

    echo(&emu, &job_port, device_port);
    device_exit_codes(&emu, &discovery);

    let output = emu.run(&["emu", "stop", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["stopped"], true);
}

/// Sends three datagrams to `to` and checks each comes back unchanged. The first is sent again
/// every second until an answer comes (the job may not have bound its port yet; datagrams before
/// that are dropped, and an answer takes milliseconds, so none is answered twice).
fn exchange(to: &str) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for index in 1..=3 {
        let message = format!("datagram {index} from the test");
        let mut reply = [0u8; 64];
        let count = loop {
            client.send_to(message.as_bytes(), to).unwrap();
            client.set_read_timeout(Some(Duration::from_secs(if index == 1 { 1 } else { 20 }))).unwrap();
            match client.recv_from(&mut reply) {
                Ok((count, _)) => break count,
                Err(error) => {
                    assert!(index == 1 && std::time::Instant::now() < deadline, "no echo of datagram {index}: {error}")
                }
            }
        };
        assert_eq!(&reply[..count], message.as_bytes());
    }
}

/// echo in C and Rust: `run --local --grant net` on a free loopback port, then pushed to the
/// device as wasm and as native with input "PORT 3" (PORT the device's job port, forwarded from
/// `job_port` on this machine); all answer three datagrams and print the same output.
fn echo(emu: &Emu, job_port: &str, device_port: u64) {
    for stem in ["echo-c", "echo-rust"] {
        let local_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        emu.write("echo-local.input", format!("{local_port} 3").as_bytes());
        let job = emu.spawn(&[
            "run",
            "--local",
            &format!("{stem}.wasm"),
            "--input",
            "echo-local.input",
            "--grant",
            "net",
            "--json",
        ]);
        exchange(&format!("127.0.0.1:{local_port}"));
        let output = job.wait_with_output().unwrap();
        assert_success(&output);
        let local = output_hex(&json(&output), &format!("{stem} run --local"));
        assert_eq!(local, hex::encode(b"echoed 3\n"), "{stem} run --local");

        emu.write("echo-device.input", format!("{device_port} 3").as_bytes());
        let wasm = format!("{stem}.wasm");
        for (file, how) in [(wasm.clone(), None), (wasm, Some("--aot")), (format!("{stem}.blob"), Some("--native"))] {
            let mut args = vec!["push", file.as_str(), "--input", "echo-device.input", "--json"];
            args.extend(how);
            let job = emu.spawn(&args);
            exchange(job_port);
            let output = job.wait_with_output().unwrap();
            assert_success(&output);
            let what = format!("{file} {}", how.unwrap_or(""));
            assert_eq!(output_hex(&json(&output), &what), local, "{what}: the device's echo differs from run --local");
        }
    }
}

/// C guests that fail on purpose: `spin` loops forever, `trap` traps (wasm `unreachable`, an
/// undefined instruction natively), `flood` writes more than the 32 KiB output cap.
fn build_failing_guests(emu: &Emu) {
    let guests: [(&str, &str); 3] = [
        ("spin", "int run(void) {\n    volatile jos_u32 counter = 0;\n    for (;;) counter++;\n    return 0;\n}\n"),
        ("trap", "int run(void) {\n    __builtin_trap();\n}\n"),
        (
            "flood",
            "static jos_u8 block[1024];\nint run(void) {\n    for (int i = 0; i < 40; i++) {\n        if (jos_output_write(block, sizeof block) < 0) return 1;\n    }\n    return 0;\n}\n",
        ),
    ];
    for (name, body) in guests {
        emu.write(&format!("{name}.c"), format!("#include \"jos.h\"\n{body}").as_bytes());
        for (format, extension) in [("wasm", "wasm"), ("native", "blob")] {
            assert_success(&emu.run(&[
                "build",
                &format!("{name}.c"),
                "--format",
                format,
                "-o",
                &format!("{name}.{extension}"),
            ]));
        }
    }
}

/// Copies the user's keys and trust store into another `$JOS_HOME` whose pinned `emu` device has
/// its session address replaced by `session` (a TCP listener of the test).
fn home_with_session(emu: &Emu, name: &str, session: &str) {
    let to = emu.path(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(emu.path("home")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    assert!(session_of(emu, name).is_some(), "emu start records the session address");
    set_session(emu, name, session);
}

/// The session address pinned for `emu` in a home's trust store.
fn session_of(emu: &Emu, home: &str) -> Option<String> {
    let trust: serde_json::Value =
        serde_json::from_slice(&std::fs::read(emu.path(home).join("trust.json")).unwrap()).unwrap();
    let device = trust["devices"].as_array()?.iter().find(|device| device["name"] == "emu")?;
    device["session"].as_str().map(str::to_string)
}

/// Sets the session address pinned for `emu` in a home's trust store (what `emu start` records
/// for its own user: the emulated device sits behind QEMU's port forward).
fn set_session(emu: &Emu, home: &str, session: &str) {
    let path = emu.path(home).join("trust.json");
    let mut trust: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let device =
        trust["devices"].as_array_mut().unwrap().iter_mut().find(|device| device["name"] == "emu").expect("emu pinned");
    device["session"] = serde_json::json!(session);
    std::fs::write(path, serde_json::to_vec_pretty(&trust).unwrap()).unwrap();
}

/// A TCP listener that accepts connections and never answers (a handshake without an answer).
fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

/// A TCP listener that answers the handshake with a well-framed message that is no jos message
/// (for `Protocol`).
fn garbage_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut hello = [0u8; 64];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(&[4, 0, 0xde, 0xad, 0xbe, 0xef]);
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    address
}

/// The device-side exit codes against the emulated device (queue of one job).
fn device_exit_codes(emu: &Emu, discovery: &str) {
    // 8 Unreachable (no session): a session address that accepts the connection and never
    // answers the handshake. Waits the client's 10 s handshake wait, so it runs in the
    // background while the other cases go on. (20 Timeout, a session silent after its
    // handshake, is tests/tests/cli_sessions.rs.)
    home_with_session(emu, "home-silent", &silent_listener());
    let silent = emu
        .command("home-silent", &["push", "fib-c.wasm", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jos-cli");

    // 19 Protocol: the session answers with something that is no jos message.
    home_with_session(emu, "home-garbage", &garbage_listener());
    let output = emu.run_as("home-garbage", &["push", "fib-c.wasm"]);
    assert_exit(&output, 19);
    assert!(String::from_utf8_lossy(&output.stderr).contains("protocol error"), "{}", text(&output));

    // 12 Trap, wasm and native (the kernel recovers from the undefined instruction).
    for (file, native) in [("trap.wasm", false), ("trap.blob", true)] {
        let mut args = vec!["push", file, "--json"];
        if native {
            args.push("--native");
        }
        let output = emu.run(&args);
        assert_exit(&output, 12);
        assert_eq!(json(&output)["status"], "trap", "{file}");
    }
    // 13 OutOfFuel.
    let output = emu.run(&["push", "spin.wasm", "--fuel", "1000000", "--json"]);
    assert_exit(&output, 13);
    assert_eq!(json(&output)["stats"]["fuel_used"], 1_000_000);
    // 14 LimitExceeded: output past the 32 KiB cap.
    for file in ["flood.wasm", "flood.blob"] {
        let output = emu.run(&["push", file, "--json"]);
        assert_exit(&output, 14);
        assert_eq!(json(&output)["status"], "limit-exceeded", "{file}");
    }
    // 15 Deadline, native (the kernel stops the blob from its timer interrupt; the device serves
    // no network meanwhile) and wasm.
    let output = emu.run(&["push", "spin.blob", "--native", "--timeout", "1000", "--json"]);
    assert_exit(&output, 15);
    assert_eq!(json(&output)["status"], "deadline");
    // 16 Busy: one wasm job runs (the device serves the network between its slices), one waits
    // in the one-job queue, the third is refused; the first two end at their deadlines.
    // Margins of seconds, for a loaded machine.
    let running = emu.spawn(&["push", "spin.wasm", "--timeout", "7000", "--json"]);
    std::thread::sleep(Duration::from_millis(2500));
    let waiting = emu.spawn(&["push", "spin.wasm", "--timeout", "1000", "--json"]);
    std::thread::sleep(Duration::from_millis(2000));
    let output = emu.run(&["push", "fib-c.wasm"]);
    assert_exit(&output, 16);
    assert!(String::from_utf8_lossy(&output.stderr).contains("busy"), "{}", text(&output));
    for (child, what) in [(running, "running"), (waiting, "waiting")] {
        let output = child.wait_with_output().unwrap();
        assert_exit(&output, 15);
        assert_eq!(json(&output)["status"], "deadline", "{what}");
    }
    // 17 NotCached.
    assert_exit(&emu.run(&["invoke", &"5a".repeat(32)]), 17);
    // 11 Rejected by the device: a signed file changed afterwards, sent with --raw so that the
    // client's own checks do not stop it first; and an unsigned one.
    assert_success(&emu.run(&["sign", "fib-c.wasm", "-o", "signed.wasm"]));
    let mut tampered = std::fs::read(emu.path("signed.wasm")).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    emu.write("tampered.wasm", &tampered);
    let output = emu.run(&["push", "tampered.wasm", "--raw"]);
    assert_exit(&output, 11);
    assert!(String::from_utf8_lossy(&output.stderr).contains("BadSignature"), "{}", text(&output));
    assert_success(&emu.run(&["sign", "fib-c.blob", "-o", "signed.blob"]));
    let mut tampered = std::fs::read(emu.path("signed.blob")).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x40;
    emu.write("tampered.blob", &tampered);
    let output = emu.run(&["push", "tampered.blob", "--native", "--raw"]);
    assert_exit(&output, 11);
    assert!(String::from_utf8_lossy(&output.stderr).contains("BadSignature"), "{}", text(&output));
    assert_exit(&emu.run(&["push", "fib-c.wasm", "--raw", "--unsigned"]), 11);

    // 9 Untrusted, then 10 NotAuthorized: another user, first without pinning the device, then
    // pinning it (trust on first use) while the device does not know their client key.
    assert_success(&emu.run_as("stranger", &["keygen"]));
    let output = emu.run_as("stranger", &["push", "fib-c.wasm", "--device", discovery]);
    assert_exit(&output, 9);
    assert!(String::from_utf8_lossy(&output.stderr).contains("fingerprint"), "{}", text(&output));
    assert_success(&emu.run_as("stranger", &["trust", "--accept-new", "--address", discovery]));
    // The advert names the device's own port (4748); behind QEMU's forward the session is
    // elsewhere, which only `emu start` records: the stranger's store gets it the same way.
    set_session(emu, "stranger", &session_of(emu, "home").unwrap());
    assert_exit(&emu.run_as("stranger", &["push", "fib-c.wasm"]), 10);

    let output = silent.wait_with_output().unwrap();
    assert_exit(&output, 8);
    assert!(String::from_utf8_lossy(&output.stdout).contains("did not answer the handshake"), "{}", text(&output));

    // The device still works after all of that.
    emu.write("fib.input", b"10");
    let output = emu.run(&["push", "fib-rust.blob", "--native", "--input", "fib.input"]);
    assert_success(&output);
    assert_eq!(output.stdout, b"55\n");
}

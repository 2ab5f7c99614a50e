//! `discover`, `trust`, `push` and `invoke` as processes against a device on loopback sockets
//! (real UDP discovery, real TCP, a real Noise IK handshake): the real device side
//! (`jos_offload::Server` behind `jos_offload::host::serve`, `support/device.rs`), provisioned
//! by `jos-cli provision`. Checks outputs, `--json`, the bytes on the wire and the device's
//! counters (`invoke` does not resend the module), and the device-side exit codes.

#[path = "support/device.rs"]
mod device;

#[path = "support/output.rs"]
mod output;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use device::Device;
use output::{assert_exit, assert_success, json, text};

struct User {
    dir: tempfile::TempDir,
    name: &'static str,
}

impl User {
    fn new(name: &'static str) -> Self {
        let dir = tempfile::Builder::new().prefix("jos-cli-device").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let user = User { dir, name };
        assert_success(&user.run(&["keygen"]));
        user
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(jos_tests::cli::jos_cli());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run jos-cli")
    }

    /// Starts `jos-cli` in the background (output discarded).
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start jos-cli")
    }

    /// Waits until `discover --json` shows the device with `check` true of its entry.
    fn wait_for_advert(&self, address: &str, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let output = self.run(&["discover", "--address", address, "--json"]);
            if output.status.success() && check(&json(&output)["devices"][0]) {
                return;
            }
            assert!(Instant::now() < deadline, "the advert never showed {what}: {}", text(&output));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }
}

const MODULE_WAT: &str = r#"
(module
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 60000) "reversed")
  (func (export "run") (result i32)
    (local $len i32) (local $i i32)
    (local.set $len (call $input_read (i32.const 0) (i32.const 50000) (i32.const 0)))
    (block $done
      (loop $copy
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8 (i32.add (i32.const 65536) (local.get $i))
          (i32.load8_u (i32.sub (i32.sub (local.get $len) (local.get $i)) (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $copy)))
    (drop (call $output_write (i32.const 65536) (local.get $len)))
    (drop (call $log (i32.const 3) (i32.const 60000) (i32.const 8)))
    (local.get $len))
  (func (export "mul") (param i32 f64) (result f64)
    (f64.mul (f64.convert_i32_s (local.get 0)) (local.get 1)))
  (func (export "trap") (result i32) unreachable)
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  ;; padding so that the module needs several 32 KiB chunks
  (data (i32.const 70000) "PADDING"))
"#;

fn module() -> Vec<u8> {
    let mut bytes = wat::parse_str(MODULE_WAT).unwrap();
    // A custom section of 100 KiB: three chunks and a bit.
    let payload = vec![0x5a; 100 * 1024];
    let name = b"padding";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    bytes.push(0);
    let mut len = section.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&section);
    bytes
}

/// A user with keys, a device provisioned by that user (`extra` provision options) and running.
fn provisioned(user: &User, extra: &[&str]) -> Device {
    let mut args = vec!["provision", "--name", user.name, "-o", "device.bin"];
    args.extend_from_slice(extra);
    assert_success(&user.run(&args));
    Device::start(&std::fs::read(user.path("device.bin")).unwrap())
}

#[test]
fn push_then_invoke_without_resending() {
    let user = User::new("bench");
    // A queue of one waiting job, so that the test can fill it.
    let device = provisioned(&user, &["--queue", "1"]);
    let address = device.address();
    user.write("reverse.wasm", &module());
    user.write("input.txt", b"hello device");
    let module_len = module().len() as u64;

    let output = user.run(&["push", "reverse.wasm", "--device", &address, "--input", "input.txt"]);
    assert_success(&output);
    assert_eq!(output.stdout, b"ecived olleh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[info] reversed") && stderr.contains("bench: ok (exit value 12)"), "{stderr}");

    let output = user.run(&["push", "reverse.wasm", "--device", &address, "--input", "input.txt", "--json"]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["output"], "ecived olleh");
    assert_eq!(report["place"], "bench");
    assert!(report["bytes_sent"].as_u64().unwrap() > module_len, "the module went over the wire: {report}");
    let hash = report["hash"].as_str().unwrap().to_string();

    // The pinned device now has its address: the default device needs no --device.
    let output = user.run(&["invoke", &hash, "--input", "input.txt", "--json"]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["output"], "ecived olleh");
    assert!(report["bytes_sent"].as_u64().unwrap() < 2048, "invoke resent the module: {report}");

    // Typed calls through the local copy, by a hash prefix.
    let output = user.run(&["invoke", &hash[..12], "--call", "mul", "3", "1.5"]);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "4.5\n");
    let output = user.run(&["push", "reverse.wasm", "--json", "--call", "mul", "-2", "0.25"]);
    assert_success(&output);
    assert_eq!(json(&output)["results"][0], serde_json::json!({"type": "f64", "value": -0.5}));

    // Failures as exit codes.
    assert_exit(&user.run(&["invoke", &hash, "--call", "trap"]), 12);
    let output = user.run(&["invoke", &hash, "--fuel", "50000", "--json", "--call", "spin"]);
    assert_exit(&output, 13);
    assert_eq!(json(&output)["status"], "out-of-fuel");
    assert_exit(&user.run(&["invoke", &"ab".repeat(32)]), 17);
    // A full queue: one job running, one waiting, the next is refused as busy. The background
    // clients' jobs end when they are killed (their connections drop).
    let mut running = user.spawn(&["invoke", &hash, "--call", "spin"]);
    user.wait_for_advert(&address, "a running job", |device| device["state"] == "busy");
    let mut waiting = user.spawn(&["invoke", &hash, "--call", "spin"]);
    user.wait_for_advert(&address, "a queued job", |device| device["queued"] == 1);
    let output = user.run(&["invoke", &hash, "--json"]);
    for child in [&mut running, &mut waiting] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_exit(&output, 16);
    user.wait_for_advert(&address, "the device idle again", |device| device["state"] == "idle");

    // The device's own checks: unsigned, or signed by a key it does not trust.
    let output = user.run(&["push", "reverse.wasm", "--raw", "--unsigned"]);
    assert_exit(&output, 11);
    assert!(String::from_utf8_lossy(&output.stderr).contains("BadSignature"), "{}", text(&output));
    let stranger = User::new("stranger");
    assert_success(&stranger.run(&[
        "sign",
        user.path("reverse.wasm").to_str().unwrap(),
        "-o",
        user.path("foreign.wasm").to_str().unwrap(),
    ]));
    let output = user.run(&["push", "foreign.wasm"]);
    assert_exit(&output, 11);
    assert!(String::from_utf8_lossy(&output.stderr).contains("UntrustedSigner"), "{}", text(&output));
    // A format the device does not advertise.
    let blob = std::fs::read(user.path("device.bin")).unwrap(); // not a blob: client check first
    user.write("fake.blob", &blob);
    assert_exit(&user.run(&["push", "fake.blob", "--native"]), 11);

    // The device's own count: three pushes (two plain, one with --call; the unsigned and the
    // foreign one were refused): the invokes sent no module.
    let counters = device.stop();
    assert_eq!(counters.pushes_ok, 3, "{counters:?}");
}

#[test]
fn discover_and_trust_on_first_use() {
    let owner = User::new("owner");
    let device = provisioned(&owner, &[]);
    let address = device.address();

    let output = owner.run(&["discover", "--address", &address, "--json"]);
    assert_success(&output);
    let found = json(&output);
    assert_eq!(found["devices"][0]["name"], "owner");
    assert_eq!(found["devices"][0]["trusted"], true);
    assert_eq!(found["devices"][0]["formats"], serde_json::json!(["wasm"]));
    let fingerprint = found["devices"][0]["fingerprint"].as_str().unwrap().to_string();
    let table = owner.run(&["discover", "--address", &address]);
    assert_success(&table);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&fingerprint));

    // Another user: the device is untrusted, then pinned by fingerprint, then refuses the
    // handshake because this user's client key is not in its configuration.
    let other = User::new("other");
    let output = other.run(&["discover", "--address", &address, "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["devices"][0]["trusted"], false);
    other.write("m.wasm", &module());
    let output = other.run(&["push", "m.wasm", "--device", &address]);
    assert_exit(&output, 9);
    assert!(String::from_utf8_lossy(&output.stderr).contains(&fingerprint), "{}", text(&output));
    // With --json, the same failure as the documented JSON error object.
    let output = other.run(&["push", "m.wasm", "--device", &address, "--json"]);
    assert_exit(&output, 9);
    let error = &json(&output)["error"];
    assert_eq!(
        (error["kind"].as_str(), error["exit_code"].as_i64()),
        (Some("Untrusted"), Some(9)),
        "{}",
        text(&output)
    );
    assert!(error["message"].as_str().unwrap().contains(&fingerprint), "{}", text(&output));
    assert_exit(&other.run(&["trust", "0000:0000:0000", "--address", &address]), 8);
    // A session address that is not IP:PORT is a usage error; one where nothing listens is
    // pinned, and then sessions go there (unreachable) instead of the advert's port.
    assert_exit(&other.run(&["trust", &fingerprint[..14], "--address", &address, "--session", "nowhere"]), 2);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let output = other.run(&["trust", &fingerprint[..14], "--address", &address, "--session", &dead, "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["pinned"][0]["session"], dead.as_str());
    assert_exit(&other.run(&["push", "m.wasm", "--device", "owner"]), 8);
    let output = other.run(&["trust", &fingerprint[..14], "--address", &address, "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["pinned"][0]["fingerprint"], fingerprint.as_str());
    let output = other.run(&["push", "m.wasm", "--device", "owner"]);
    assert_exit(&output, 10);
    assert!(String::from_utf8_lossy(&output.stderr).contains("--trust-client"), "{}", text(&output));
    let output = other.run(&["invoke", &"ab".repeat(32), "--device", "owner", "--json"]);
    assert_exit(&output, 10);
    let error = &json(&output)["error"];
    assert_eq!(
        (error["kind"].as_str(), error["exit_code"].as_i64()),
        (Some("NotAuthorized"), Some(10)),
        "{}",
        text(&output)
    );
    assert!(error["hint"].as_str().unwrap().contains("--trust-client"), "{}", text(&output));

    // Trust on first use needs the flag and prints the fingerprint.
    let third = User::new("third");
    let output = third.run(&["trust", "--accept-new", "--address", &address]);
    assert_success(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains(&fingerprint), "{}", text(&output));
    let list = json(&third.run(&["trust", "list", "--json"]));
    assert_eq!(list["devices"][0]["fingerprint"], fingerprint.as_str());
}

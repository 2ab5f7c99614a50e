//! `jos-cli` against the real device-side protocol code: `jos_offload::Server` behind its host
//! TCP/UDP adapter (`jos_offload::host::serve`) on loopback sockets, configured from the file
//! `jos-cli provision` wrote. discover, push (chunked, signed), invoke (no resend), typed calls,
//! and the device's refusals as exit codes.

#[path = "support/device.rs"]
mod device;
#[path = "support/output.rs"]
mod output;

use std::path::PathBuf;
use std::process::{Command, Output};

use device::Device;
use output::{assert_exit, assert_success, json};

struct User {
    dir: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("jos-cli-offload").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let user = User { dir };
        assert_success(&user.run(&["keygen"]));
        user
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(jos_tests::cli::jos_cli())
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.path("home"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run jos-cli")
    }
}

const MODULE: &str = r#"
(module
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $len i32)
    (local.set $len (call $input_read (i32.const 0) (i32.const 60000) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $len)))
    (local.get $len))
  (func (export "add") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1)))
  (func (export "scale") (param i32 f64) (result f64 f32)
    (f64.mul (f64.convert_i32_s (local.get 0)) (local.get 1)) (f32.const 0.5))
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0))
  (data (i32.const 60000) "chatty says hi")
  (func (export "chatty") (param i32) (result i32 i64)
    (drop (call $output_write (i32.const 60000) (i32.const 14)))
    (i32.mul (local.get 0) (i32.const 3)) (i64.const -7)))
"#;

#[test]
fn push_invoke_and_refusals_against_jos_offload() {
    let user = User::new();
    assert_success(&user.run(&["provision", "--name", "offload", "-o", "device.bin"]));
    let device = Device::start(&std::fs::read(user.path("device.bin")).unwrap());
    std::fs::write(user.path("echo.wasm"), wat::parse_str(MODULE).unwrap()).unwrap();
    std::fs::write(user.path("input.txt"), vec![b'j'; 20_000]).unwrap();

    let address = device.address();
    let found = user.run(&["discover", "--address", &address, "--json"]);
    assert_success(&found);
    assert_eq!(json(&found)["devices"][0]["trusted"], true);

    let output = user.run(&["push", "echo.wasm", "--device", &address, "--input", "input.txt", "--json"]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["exit_value"], 20_000);
    assert_eq!(report["output"].as_str().unwrap().len(), 20_000);
    let sent = report["bytes_sent"].as_u64().unwrap();
    let hash = report["hash"].as_str().unwrap().to_string();

    let output = user.run(&["invoke", &hash, "--json", "--input", "input.txt"]);
    assert_success(&output);
    let again = json(&output);
    assert_eq!(again["output"], report["output"]);
    let module_len = std::fs::metadata(user.path("echo.wasm")).unwrap().len();
    assert!(again["bytes_sent"].as_u64().unwrap() + module_len <= sent, "invoke resent the module");

    let output = user.run(&["invoke", &hash, "--call", "add", "40", "2"]);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "42\n");
    let output = user.run(&["invoke", &hash, "--call", "scale", "-3", "1.5"]);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "-4.5\n0.5\n");
    // A called function that also writes output: both arrive, the results on lines of their own.
    let output = user.run(&["invoke", &hash, "--call", "chatty", "5"]);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "chatty says hi\n15\n-7\n");
    let output = user.run(&["invoke", &hash, "--json", "--call", "chatty", "-2"]);
    assert_success(&output);
    let called = json(&output);
    assert_eq!(called["output"], "chatty says hi");
    assert_eq!(called["results"], serde_json::json!([{"type": "i32", "value": -6}, {"type": "i64", "value": -7}]));
    let (time_us, cpu_us) = (called["stats"]["time_us"].as_u64().unwrap(), called["stats"]["cpu_us"].as_u64().unwrap());
    assert!(cpu_us <= time_us, "cpu {cpu_us} us within the job's {time_us} us");
    assert_exit(&user.run(&["invoke", &hash, "--fuel", "100000", "--call", "spin"]), 13);
    assert_exit(&user.run(&["invoke", &"cd".repeat(32)]), 17);
    let output = user.run(&["push", "echo.wasm", "--raw", "--unsigned"]);
    assert_exit(&output, 11);

    // A client whose key the device does not know cannot complete the handshake.
    let stranger = User::new();
    assert_success(&stranger.run(&["trust", "--accept-new", "--address", &address]));
    std::fs::copy(user.path("echo.wasm"), stranger.path("echo.wasm")).unwrap();
    assert_exit(&stranger.run(&["push", "echo.wasm"]), 10);
}

//! The device-independent commands as a user meets them: the `jos-cli` binary run as a process
//! with a temporary `JOS_HOME`: keygen, provision (output parsed with `jos_abi::config`), trust,
//! sign/verify (interop with `wasmsign2` both ways, wasm and native), `run --local`, `--json`
//! outputs parsed, and the exit codes these commands can produce without a device.

#[path = "support/output.rs"]
mod output;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Table};
use jos_abi::config::{Config, ConfigRepr, Network};
use jos_abi::signature::{self, SignerRights};
use jos_abi::AbiVersion;
use output::{assert_exit, assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// A temporary `JOS_HOME` and work folder.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new().prefix("jos-cli-test").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut command = Command::new(JOS_CLI);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("JOS_KERNEL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("run jos-cli");
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn keygen(&self) {
        let output = self.run(&["keygen"]);
        assert_success(&output);
    }
}

fn read_key(path: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().find(|line| !line.starts_with('#')).unwrap();
    let bytes: Vec<u8> = hex::decode(line).unwrap();
    bytes.try_into().unwrap()
}

/// A module that copies its input to its output, and exports `add`, `trap` and `spin`.
const ECHO_WAT: &str = r#"
(module
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 60000) "echo ran")
  (func (export "run") (result i32)
    (local $len i32)
    (local.set $len (call $input_read (i32.const 0) (i32.const 50000) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $len)))
    (drop (call $log (i32.const 3) (i32.const 60000) (i32.const 8)))
    (i32.const 7))
  (func (export "add") (param i32 i64) (result i64)
    (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "half") (param f64) (result f64 f32)
    (f64.div (local.get 0) (f64.const 2)) (f32.const 0.25))
  (func (export "trap") (result i32) unreachable)
  (func (export "spin") (result i32) (loop $forever (br $forever)) (i32.const 0)))
"#;

fn echo_module() -> Vec<u8> {
    wat::parse_str(ECHO_WAT).unwrap()
}

fn blob() -> Vec<u8> {
    let text = [0x00, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1]; // mov r0, #0; bx lr
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &text,
        rodata: &[],
        data: &[],
        bss_len: 0,
        align: 8,
        imports: Table::from_slice(&[]),
        relocations: Table::from_slice(&[]),
        wasm_source: None,
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    bytes
}

#[test]
fn keygen_writes_keys_and_never_overwrites_without_force() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&["keygen", "--json"]);
    assert_success(&output);
    let report = json(&output);
    let home = sandbox.home();
    let signing_pub = read_key(&home.join("signing.pub"));
    let seed = read_key(&home.join("signing.key"));
    assert_eq!(signature::public_key(&seed), signing_pub);
    assert_eq!(report["signing_public_key"], hex::encode(signing_pub));
    assert!(home.join("client.key").exists() && home.join("client.pub").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in ["signing.key", "client.key"] {
            let mode = std::fs::metadata(home.join(secret)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{secret} is readable by others");
        }
    }

    let before = std::fs::read(home.join("signing.key")).unwrap();
    let again = sandbox.run(&["keygen"]);
    assert_exit(&again, 22);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "{}", text(&again));
    assert_eq!(std::fs::read(home.join("signing.key")).unwrap(), before, "keygen without --force changed the key");

    assert_success(&sandbox.run(&["keygen", "--force"]));
    assert_ne!(std::fs::read(home.join("signing.key")).unwrap(), before, "--force kept the old key");
}

#[test]
fn provision_writes_a_config_that_parses_and_pins_the_device() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.run(&["provision", "--name", "lab", "-o", "config.bin"]), 21);
    sandbox.keygen();
    let output = sandbox.run(&[
        "provision",
        "--name",
        "lab-pi",
        "--static",
        "10.0.2.15/24",
        "--gateway",
        "10.0.2.2",
        "-o",
        "config.bin",
        "--json",
    ]);
    assert_success(&output);
    let report = json(&output);
    let bytes = std::fs::read(sandbox.path("config.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).expect("the configuration checks");
    let repr = ConfigRepr::parse(&config).unwrap();
    assert_eq!(repr.name, "lab-pi");
    assert_eq!(repr.network, Network::Static { address: [10, 0, 2, 15], prefix_len: 24, gateway: [10, 0, 2, 2] });
    let home = sandbox.home();
    let client_pub = read_key(&home.join("client.pub"));
    let signing_pub = read_key(&home.join("signing.pub"));
    assert_eq!(repr.clients.iter().collect::<Vec<_>>(), vec![client_pub]);
    let signers: Vec<_> = repr.signers.iter().collect();
    assert_eq!(signers.len(), 1);
    assert_eq!(signers[0].public_key, signing_pub);
    // Without --signer: both formats, no capabilities; the default job port range.
    assert_eq!(signers[0].rights, SignerRights::FORMATS);
    assert!(repr.policy.max_module_len >= 4 * 1024 * 1024);
    assert_eq!(repr.policy.job_ports, jos_abi::config::PortRange { first: 7000, last: 7099 });

    // The trust store pins the keys the configuration holds.
    let trust: serde_json::Value = serde_json::from_slice(&std::fs::read(home.join("trust.json")).unwrap()).unwrap();
    let device = &trust["devices"][0];
    let hex = |key: &[u8]| hex::encode(key);
    assert_eq!(device["name"], "lab-pi");
    assert_eq!(device["advert_key"], hex(&signature::public_key(&repr.advert_seed)));
    assert_eq!(report["advert_key"], device["advert_key"]);
    let noise_public = {
        let builder = snow_public(&repr.noise_secret);
        hex(&builder)
    };
    assert_eq!(device["noise_key"], noise_public);

    let list = sandbox.run(&["trust", "list", "--json"]);
    assert_success(&list);
    let list = json(&list);
    assert_eq!(list["devices"][0]["name"], "lab-pi");
    assert_eq!(list["devices"][0]["default"], true);
    assert_eq!(list["devices"][0]["fingerprint"], report["fingerprint"]);

    // Never overwrite; bad arguments are usage errors.
    assert_exit(&sandbox.run(&["provision", "--name", "lab-pi", "-o", "config.bin"]), 22);
    assert_exit(&sandbox.run(&["provision", "--name", "x", "--static", "10.0.0.1/40", "-o", "x.bin"]), 2);
    assert_exit(&sandbox.run(&["provision", "--name", &"n".repeat(33), "-o", "x.bin"]), 2);
    assert_exit(&sandbox.run(&["provision", "--name", "x", "--signer", "self:root", "-o", "x.bin"]), 2);
    // Capabilities alone sign nothing; job ports never include the device's own.
    assert_exit(&sandbox.run(&["provision", "--name", "x", "--signer", "self:net,gpio", "-o", "x.bin"]), 2);
    for ports in ["4700-4800", "7099-7000", "0-10", "7000", "a-b"] {
        assert_exit(&sandbox.run(&["provision", "--name", "x", "--job-ports", ports, "-o", "x.bin"]), 2);
    }
    // Every right, and a port range of our own.
    let output = sandbox.run(&[
        "provision",
        "--name",
        "iot",
        "--signer",
        "self:wasm,native,net,screen,gpio",
        "--job-ports",
        "7100-7109",
        "--no-default",
        "--json",
        "-o",
        "iot.bin",
    ]);
    assert_success(&output);
    assert_eq!(json(&output)["job_ports"], serde_json::json!({ "first": 7100, "last": 7109 }));
    let bytes = std::fs::read(sandbox.path("iot.bin")).unwrap();
    let iot = Config::new_checked(&bytes[..]).unwrap();
    let iot = ConfigRepr::parse(&iot).unwrap();
    assert_eq!(iot.signers.iter().next().unwrap().rights, SignerRights::ALL);
    assert_eq!(iot.policy.job_ports, jos_abi::config::PortRange { first: 7100, last: 7109 });
    assert_success(&sandbox.run(&["trust", "remove", "iot"]));
    assert_exit(&sandbox.run(&["provision", "--name", "x", "--trust-client", "missing.pub", "-o", "x.bin"]), 3);

    // DHCP, another client and a wasm-only signer given as files.
    let other = sandbox.write("other.pub", format!("{}\n", hex(&[9; 32])).as_bytes());
    let signer = format!("{}:wasm", home.join("signing.pub").display());
    let output = sandbox.run(&[
        "provision",
        "--name",
        "second",
        "--dhcp",
        "--trust-client",
        "self",
        "--trust-client",
        other.to_str().unwrap(),
        "--signer",
        &signer,
        "-o",
        "second.bin",
    ]);
    assert_success(&output);
    let bytes = std::fs::read(sandbox.path("second.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).unwrap();
    let repr = ConfigRepr::parse(&config).unwrap();
    assert_eq!(repr.network, Network::Dhcp);
    assert_eq!(repr.clients.iter().collect::<Vec<_>>(), vec![client_pub, [9; 32]]);
    assert_eq!(repr.signers.iter().next().unwrap().rights, SignerRights::WASM);

    assert_success(&sandbox.run(&["trust", "remove", "second"]));
    let list = json(&sandbox.run(&["trust", "list", "--json"]));
    assert_eq!(list["devices"].as_array().unwrap().len(), 1);
    assert_exit(&sandbox.run(&["trust", "remove", "second"]), 3);
}

/// X25519 public key of a secret, computed with snow (as the device does).
/// `--broker` and `--fleet` add the broker section; its fields are checked before anything is
/// written.
#[test]
fn provision_writes_broker_settings() {
    use jos_abi::config::Sections;
    let sandbox = Sandbox::new();
    sandbox.keygen();
    sandbox.write("broker.pass", b"s3cret\n");
    let output = sandbox.run(&[
        "provision",
        "--name",
        "rack-3",
        "--broker",
        "192.168.7.1:1884",
        "--fleet",
        "lab",
        "--mqtt-username",
        "pi",
        "--mqtt-password-file",
        "broker.pass",
        "-o",
        "config.bin",
        "--json",
    ]);
    assert_success(&output);
    assert_eq!(json(&output)["broker"]["fleet"], "lab");
    let bytes = std::fs::read(sandbox.path("config.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).expect("the configuration checks");
    let broker = Sections::parse(&config).unwrap().broker.expect("a broker section");
    assert_eq!(broker.address, [192, 168, 7, 1]);
    assert_eq!(broker.port, 1884);
    assert_eq!(broker.fleet, "lab");
    assert_eq!(broker.client_id, None, "derived on the device");
    assert_eq!(broker.username, Some("pi"));
    assert_eq!(broker.password, Some(&b"s3cret"[..]), "the final newline is dropped");
    // The fleet key: made once for fleet `lab` in $JOS_HOME/fleets (mode 0600), written into the
    // configuration; a second device of the fleet gets the same key.
    let key_file = sandbox.home().join("fleets/lab.key");
    let fleet_key = Sections::parse(&config).unwrap().fleet_key.expect("a fleet key section").0;
    let text = std::fs::read_to_string(&key_file).expect("the fleet key file");
    assert!(text.contains(&hex::encode(fleet_key)), "the configuration holds the stored key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_success(&sandbox.run(&[
        "provision",
        "--name",
        "rack-4",
        "--broker",
        "192.168.7.1",
        "--fleet",
        "lab",
        "-o",
        "rack-4.bin",
    ]));
    let bytes = std::fs::read(sandbox.path("rack-4.bin")).unwrap();
    let second = Sections::parse(&Config::new_checked(&bytes[..]).unwrap()).unwrap().fleet_key.unwrap().0;
    assert_eq!(second, fleet_key, "one key per fleet");

    // The default port, an explicit client id.
    let output = sandbox.run(&[
        "provision",
        "--name",
        "b",
        "--broker",
        "10.0.2.2",
        "--fleet",
        "f",
        "--mqtt-client-id",
        "board-1",
        "-o",
        "b.bin",
    ]);
    assert_success(&output);
    let bytes = std::fs::read(sandbox.path("b.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).unwrap();
    let broker = Sections::parse(&config).unwrap().broker.unwrap();
    assert_eq!((broker.port, broker.client_id, broker.username), (1883, Some("board-1"), None));
    // Without --broker: no section.
    assert_success(&sandbox.run(&["provision", "--name", "c", "-o", "c.bin"]));
    let bytes = std::fs::read(sandbox.path("c.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).unwrap();
    let sections = Sections::parse(&config).unwrap();
    assert_eq!((sections.broker, sections.fleet_key.is_some()), (None, false), "no fleet, no fleet key");

    // Refused with a usage error, nothing written.
    let refused: [&[&str]; 7] = [
        &["--broker", "broker.example:1883", "--fleet", "lab"],
        &["--broker", "10.0.2.2:0", "--fleet", "lab"],
        &["--broker", "0.0.0.0", "--fleet", "lab"],
        &["--broker", "10.0.2.2", "--fleet", "a/b"],
        &["--broker", "10.0.2.2", "--fleet", "lab", "--mqtt-client-id", "a+b"],
        &["--broker", "10.0.2.2"],
        &["--fleet", "lab"],
    ];
    for extra in refused {
        let mut args = vec!["provision", "--name", "x", "-o", "x.bin"];
        args.extend_from_slice(extra);
        let output = sandbox.run(&args);
        assert_exit(&output, 2);
        assert!(!sandbox.path("x.bin").exists(), "{extra:?}");
    }
    sandbox.write("empty.pass", b"\n");
    let output = sandbox.run(&[
        "provision",
        "--name",
        "x",
        "--broker",
        "10.0.2.2",
        "--fleet",
        "l",
        "--mqtt-password-file",
        "empty.pass",
        "-o",
        "x.bin",
    ]);
    assert_exit(&output, 2);
}

fn snow_public(secret: &[u8; 32]) -> [u8; 32] {
    jos_client::store::x25519_public(secret)
}

fn wasmsign2_keys(seed: &[u8; 32]) -> (wasmsign2::SecretKey, wasmsign2::PublicKey) {
    let public = signature::public_key(seed);
    let mut secret = vec![0x81];
    secret.extend_from_slice(seed);
    secret.extend_from_slice(&public);
    let mut public_bytes = vec![0x01];
    public_bytes.extend_from_slice(&public);
    (wasmsign2::SecretKey::from_bytes(&secret).unwrap(), wasmsign2::PublicKey::from_bytes(&public_bytes).unwrap())
}

#[test]
fn sign_and_verify_interoperate_with_wasmsign2_both_ways() {
    let sandbox = Sandbox::new();
    assert_exit(&sandbox.run(&["sign", "none.wasm"]), 3);
    sandbox.write("module.wasm", &echo_module());
    assert_exit(&sandbox.run(&["sign", "module.wasm"]), 21);
    sandbox.keygen();
    let seed = read_key(&sandbox.home().join("signing.key"));
    let (wasmsign2_secret, wasmsign2_public) = wasmsign2_keys(&seed);

    // Unsigned: verify fails with 23.
    assert_exit(&sandbox.run(&["verify", "module.wasm"]), 23);

    // jos-cli signs, wasmsign2 verifies.
    let output = sandbox.run(&["sign", "module.wasm", "-o", "signed.wasm", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["format"], "wasm");
    let signed = std::fs::read(sandbox.path("signed.wasm")).unwrap();
    let mut reader = &signed[..];
    wasmsign2_public.verify(&mut reader, None).expect("wasmsign2 accepts jos-cli's signature");
    let output = sandbox.run(&["verify", "signed.wasm", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["valid"], true);

    // wasmsign2 signs, jos-cli verifies (with its .pub and with the wasmsign2 key file).
    let module = wasmsign2::Module::deserialize(&mut &echo_module()[..]).unwrap();
    let signed_by_wasmsign2 = wasmsign2_secret.sign(module, None).unwrap();
    let mut bytes = Vec::new();
    signed_by_wasmsign2.serialize(&mut bytes).unwrap();
    sandbox.write("ws2.wasm", &bytes);
    let mut raw_public = vec![0x01];
    raw_public.extend_from_slice(&signature::public_key(&seed));
    sandbox.write("ws2.pub", &raw_public);
    assert_success(&sandbox.run(&["verify", "ws2.wasm"]));
    assert_success(&sandbox.run(&["verify", "ws2.wasm", "--key", "ws2.pub"]));

    // A wasmsign2 secret key file signs through jos-cli too.
    let mut raw_secret = vec![0x81];
    raw_secret.extend_from_slice(&seed);
    raw_secret.extend_from_slice(&signature::public_key(&seed));
    sandbox.write("ws2.key", &raw_secret);
    assert_success(&sandbox.run(&["sign", "module.wasm", "--key", "ws2.key", "-o", "by-ws2-key.wasm"]));
    assert_eq!(
        std::fs::read(sandbox.path("by-ws2-key.wasm")).unwrap(),
        signed,
        "same key, same bytes (Ed25519 is deterministic)"
    );

    // Tampered content, or another key: 23, with the reason.
    let mut tampered = signed.clone();
    *tampered.last_mut().unwrap() ^= 1;
    sandbox.write("tampered.wasm", &tampered);
    let output = sandbox.run(&["verify", "tampered.wasm", "--json"]);
    assert_exit(&output, 23);
    assert_eq!(json(&output)["valid"], false);
    sandbox.write("other.pub", format!("{}\n", "11".repeat(32)).as_bytes());
    // 0x11.. is not a valid key for every curve check, so use a real other key.
    let other_public = signature::public_key(&[5; 32]);
    sandbox.write("other.pub", format!("{}\n", hex::encode(other_public)).as_bytes());
    assert_exit(&sandbox.run(&["verify", "signed.wasm", "--key", "other.pub"]), 23);
    assert_exit(&sandbox.run(&["verify", "README.md"]), 3);
}

#[test]
fn sign_and_verify_native_blobs() {
    let sandbox = Sandbox::new();
    sandbox.keygen();
    sandbox.write("code.blob", &blob());
    assert_exit(&sandbox.run(&["verify", "code.blob"]), 23);
    let output = sandbox.run(&["sign", "code.blob", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["format"], "native");
    let signed = std::fs::read(sandbox.path("code.blob")).unwrap();
    let seed = read_key(&sandbox.home().join("signing.key"));
    let checked = jos_abi::blob::Blob::new_checked(&signed[..]).unwrap();
    let signer = signature::TrustedSigner { public_key: signature::public_key(&seed), rights: SignerRights::NATIVE };
    signature::verify_blob(&checked, &[signer]).expect("the trailer verifies");
    assert_success(&sandbox.run(&["verify", "code.blob"]));
    let mut tampered = signed.clone();
    tampered[72] ^= 1;
    sandbox.write("bad.blob", &tampered);
    assert_exit(&sandbox.run(&["verify", "bad.blob"]), 23);
}

#[test]
fn run_local_runs_the_device_sandbox() {
    let sandbox = Sandbox::new();
    sandbox.write("echo.wasm", &echo_module());
    sandbox.write("input.txt", b"hello jos");

    let output = sandbox.run(&["run", "--local", "echo.wasm", "--input", "input.txt"]);
    assert_success(&output);
    assert_eq!(output.stdout, b"hello jos");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[info] echo ran") && stderr.contains("exit value 7"), "{stderr}");

    let output =
        sandbox.run_with_stdin(&["run", "--local", "echo.wasm", "--input", "-", "--json"], Some(b"from stdin"));
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["status"], "ok");
    assert_eq!(report["output"], "from stdin");
    assert_eq!(report["exit_value"], 7);
    assert_eq!(report["logs"][0]["text"], "echo ran");
    assert!(report["stats"]["fuel_used"].as_u64().unwrap() > 0);

    // --call with typed arguments, wasmtime-style, results one per line.
    let output = sandbox.run(&["run", "--local", "echo.wasm", "--call", "add", "-5", "12"]);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "7\n");
    let output = sandbox.run(&["run", "--local", "echo.wasm", "--json", "--call", "half", "3"]);
    assert_success(&output);
    let report = json(&output);
    assert_eq!(report["results"][0], serde_json::json!({"type": "f64", "value": 1.5}));
    assert_eq!(report["results"][1], serde_json::json!({"type": "f32", "value": 0.25}));
    assert_exit(&sandbox.run(&["run", "--local", "echo.wasm", "--call", "add", "1"]), 2);
    assert_exit(&sandbox.run(&["run", "--local", "echo.wasm", "--call", "add", "1.5", "2"]), 2);
    assert_exit(&sandbox.run(&["run", "--local", "echo.wasm", "--call", "nothing"]), 2);

    // Failure kinds and their exit codes.
    let output = sandbox.run(&["run", "--local", "echo.wasm", "--call", "trap"]);
    assert_exit(&output, 12);
    let output = sandbox.run(&["run", "--local", "echo.wasm", "--fuel", "100000", "--json", "--call", "spin"]);
    assert_exit(&output, 13);
    assert_eq!(json(&output)["status"], "out-of-fuel");
    let output = sandbox.run(&["run", "--local", "echo.wasm", "--timeout", "200", "--call", "spin"]);
    assert_exit(&output, 15);
    let big = vec![b'x'; 40 * 1024];
    sandbox.write("big.txt", &big);
    assert_exit(&sandbox.run(&["run", "--local", "echo.wasm", "--input", "big.txt"]), 14);
    let bad = wat::parse_str(
        r#"(module (import "jos" "format_disk" (func)) (func (export "run") (result i32) i32.const 0))"#,
    )
    .unwrap();
    sandbox.write("bad.wasm", &bad);
    let output = sandbox.run(&["run", "--local", "bad.wasm"]);
    assert_exit(&output, 11);
    assert!(String::from_utf8_lossy(&output.stderr).contains("format_disk"), "{}", text(&output));
    sandbox.write("code.blob", &blob());
    assert_exit(&sandbox.run(&["run", "--local", "code.blob"]), 3);
    assert_exit(&sandbox.run(&["run", "echo.wasm"]), 2);
}

#[test]
fn device_commands_fail_with_their_codes_without_a_device() {
    let sandbox = Sandbox::new();
    sandbox.write("echo.wasm", &echo_module());
    // No keys: not set up.
    assert_exit(&sandbox.run(&["push", "echo.wasm"]), 21);
    sandbox.keygen();
    // No device pinned: not set up.
    assert_exit(&sandbox.run(&["push", "echo.wasm"]), 21);
    // Nothing listens there: unreachable.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let output = sandbox.run(&["push", "echo.wasm", "--device", &address]);
    assert_exit(&output, 8);
    assert!(String::from_utf8_lossy(&output.stderr).contains("hint:"), "{}", text(&output));
    assert_exit(&sandbox.run(&["discover", "--address", &address, "--timeout", "200"]), 8);
    let output = sandbox.run(&["discover", "--address", &address, "--timeout", "200", "--json"]);
    assert_exit(&output, 8);
    assert_eq!(json(&output)["devices"], serde_json::json!([]));
    // Client-side checks before any network: a module the device would refuse.
    let bad =
        wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "run") (result i32) i32.const 0))"#).unwrap();
    sandbox.write("bad.wasm", &bad);
    assert_exit(&sandbox.run(&["push", "bad.wasm", "--device", &address]), 11);
    assert_exit(&sandbox.run(&["push", "echo.wasm", "--native", "--device", &address]), 3);
    assert_exit(&sandbox.run(&["invoke", "abc"]), 2);
    assert_exit(&sandbox.run(&["emu", "console"]), 24);
    assert_exit(&sandbox.run(&["emu", "screenshot", "x.png"]), 24);
    let output = sandbox.run(&["emu", "status", "--json"]);
    assert_exit(&output, 24);
    assert_eq!(json(&output)["running"], false);
    let output = sandbox.run(&["emu", "stop", "--json"]);
    assert_success(&output);
    assert_eq!(json(&output)["stopped"], false);
    let output = sandbox.run(&["emu", "start", "--kernel", "missing.elf"]);
    assert_exit(&output, 24);
    assert!(String::from_utf8_lossy(&output.stderr).contains("cargo xtask kernel"), "{}", text(&output));
}

#[test]
fn every_command_has_help_with_examples() {
    let sandbox = Sandbox::new();
    for command in ["keygen", "provision", "discover", "trust", "sign", "verify", "push", "invoke", "run", "emu"] {
        let output = sandbox.run(&[command, "--help"]);
        assert_success(&output);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Examples:"), "{command} --help has no examples:\n{help}");
    }
    let help = String::from_utf8_lossy(&sandbox.run(&["--help"]).stdout).to_string();
    for code in 0..=24 {
        assert!(help.contains(&format!("{code} ")), "--help lacks exit code {code}");
    }
}

/// The documented JSON error object on stdout (`{"error": {"kind", "exit_code", "message",
/// "hint"}}`), the same exit code, and the human form still on stderr.
#[track_caller]
fn assert_json_error(output: &Output, code: i32, kind: &str) -> serde_json::Value {
    assert_exit(output, code);
    let value = json(output);
    let error = &value["error"];
    assert_eq!(error["kind"], kind, "{}", text(output));
    assert_eq!(error["exit_code"], code, "{}", text(output));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{}", text(output));
    assert!(error["hint"].is_string() || error["hint"].is_null(), "{}", text(output));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("error: {message}")), "{}", text(output));
    value
}

#[test]
fn json_commands_print_a_json_error_when_they_fail_early() {
    let sandbox = Sandbox::new();
    sandbox.write("echo.wasm", &echo_module());
    // No keys: not set up, with what to do.
    let value = assert_json_error(&sandbox.run(&["push", "echo.wasm", "--json"]), 21, "NotSetUp");
    assert!(value["error"]["hint"].as_str().unwrap().contains("keygen"), "{value}");
    assert_json_error(&sandbox.run(&["sign", "echo.wasm", "--json"]), 21, "NotSetUp");
    sandbox.keygen();
    assert_json_error(&sandbox.run(&["keygen", "--json"]), 22, "Exists");
    // No device pinned yet.
    assert_json_error(&sandbox.run(&["invoke", &"ab".repeat(32), "--json"]), 21, "NotSetUp");
    // A missing file, and bad arguments found after parsing.
    assert_json_error(&sandbox.run(&["push", "missing.wasm", "--json"]), 3, "Input");
    assert_json_error(&sandbox.run(&["run", "--local", "echo.wasm", "--json", "--call", "nothing"]), 2, "Usage");
    assert_json_error(&sandbox.run(&["invoke", "abc", "--json"]), 2, "Usage");
    // A usage error clap finds: the same JSON shape, exit 2.
    assert_json_error(&sandbox.run(&["push", "echo.wasm", "--fuel", "lots", "--json"]), 2, "Usage");
    // Nothing answers at that address: unreachable.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let value =
        assert_json_error(&sandbox.run(&["push", "echo.wasm", "--device", &address, "--json"]), 8, "Unreachable");
    assert!(value["error"]["hint"].as_str().unwrap().contains("discover"), "{value}");
    // A name that is neither pinned nor an address.
    let output = sandbox.run(&["push", "echo.wasm", "--device", "no-such-device", "--json"]);
    assert_ne!(output.status.code(), Some(0));
    let kind = json(&output)["error"]["kind"].as_str().unwrap().to_string();
    assert_json_error(&output, output.status.code().unwrap(), &kind);
    // discover prints one object: the empty list and the error.
    let output = sandbox.run(&["discover", "--address", &address, "--timeout", "200", "--json"]);
    let value = assert_json_error(&output, 8, "Unreachable");
    assert_eq!(value["devices"], serde_json::json!([]));
    // Without --json, stdout stays empty on failure.
    let output = sandbox.run(&["push", "echo.wasm", "--device", &address]);
    assert_exit(&output, 8);
    assert!(output.stdout.is_empty(), "{}", text(&output));
}

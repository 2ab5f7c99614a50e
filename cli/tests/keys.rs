//! Keys and secret files as a user meets them, `jos-cli` run as a process with a temporary
//! `JOS_HOME`: `provision` refuses weak and repeated keys (exit 3 and 2) and policies past the
//! device's bounds (exit 2), and writes nothing;
//! secret files are 0600 from their first byte (an old file is replaced, never rewritten in
//! place: a reader that opened it before sees none of the new secrets), `$JOS_HOME` is 0700;
//! reading a secret key others may read warns; `trust` never pins a device with a weak advert or
//! Noise key (a fake device on loopback answers the probe).

#[path = "support/output.rs"]
mod output;

use std::io::Read;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use jos_abi::config::{Config, ConfigRepr, LOW_ORDER_X25519};
use jos_abi::signature::public_key;
use jos_abi::wire::discovery::{AdvertRepr, LoadState, Probe};
use jos_abi::wire::Formats;
use jos_abi::AbiVersion;
use output::{assert_exit, assert_success, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// The Ed25519 identity point (small order) and a point of order 8, as key files hold them.
const IDENTITY: &str = "0100000000000000000000000000000000000000000000000000000000000000";
const ORDER_8: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
/// The identity with its sign bit set: a non-canonical encoding.
const IDENTITY_NON_CANONICAL: &str = "0100000000000000000000000000000000000000000000000000000000000080";

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::Builder::new().prefix("jos-cli-keys").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(JOS_CLI)
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run jos-cli")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn provision_refuses_weak_and_repeated_keys() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    let trust_before = std::fs::read(sandbox.home().join("trust.json")).ok();

    // Signer keys no secret key has: exit 3 (Input), the reason named, no file written.
    for (name, key, reason) in [
        ("identity.pub", IDENTITY, "small order"),
        ("order8.pub", ORDER_8, "small order"),
        ("noncanonical.pub", IDENTITY_NON_CANONICAL, "canonical"),
    ] {
        let file = sandbox.write(name, &format!("# weak\n{key}\n"));
        let output =
            sandbox.run(&["provision", "--name", "lab", "--signer", &format!("{file}:wasm"), "-o", "weak.bin"]);
        assert_exit(&output, 3);
        assert!(stderr(&output).contains(reason) && stderr(&output).contains("signer key"), "{}", text(&output));
        // As 64 hex digits on the command line too.
        let output =
            sandbox.run(&["provision", "--name", "lab", "--signer", &format!("{key}:wasm,native"), "-o", "weak.bin"]);
        assert_exit(&output, 3);
        // Beside a good signer: still refused.
        let output = sandbox.run(&[
            "provision",
            "--name",
            "lab",
            "--signer",
            "self:wasm",
            "--signer",
            &format!("{file}:native"),
            "-o",
            "weak.bin",
        ]);
        assert_exit(&output, 3);
    }
    // Low-order X25519 client keys: exit 3.
    for low in LOW_ORDER_X25519 {
        let file = sandbox.write("low.pub", &format!("{}\n", hex(&low)));
        let output = sandbox.run(&["provision", "--name", "lab", "--trust-client", &file, "-o", "weak.bin"]);
        assert_exit(&output, 3);
        assert!(stderr(&output).contains("low-order"), "{}", text(&output));
    }
    // The same key twice: exit 2, whatever its rights.
    let client_pub = sandbox.home().join("client.pub").display().to_string();
    let signing_pub = sandbox.home().join("signing.pub").display().to_string();
    let output = sandbox.run(&[
        "provision",
        "--name",
        "lab",
        "--trust-client",
        "self",
        "--trust-client",
        &client_pub,
        "-o",
        "weak.bin",
    ]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("same key"), "{}", text(&output));
    let output = sandbox.run(&[
        "provision",
        "--name",
        "lab",
        "--signer",
        "self:wasm",
        "--signer",
        &format!("{signing_pub}:native,net"),
        "-o",
        "weak.bin",
    ]);
    assert_exit(&output, 2);

    assert!(!sandbox.path("weak.bin").exists(), "a refused provision writes no configuration");
    assert_eq!(std::fs::read(sandbox.home().join("trust.json")).ok(), trust_before, "and pins nothing");

    // Policies past the bounds the device enforces: exit 2, as any other policy error.
    for (option, value) in [("--queue", "65"), ("--max-module", "16777217")] {
        let output = sandbox.run(&["provision", "--name", "lab", option, value, "-o", "weak.bin"]);
        assert_exit(&output, 2);
    }
    let output =
        sandbox.run(&["provision", "--name", "edge", "--queue", "64", "--max-module", "16777216", "-o", "edge.bin"]);
    assert_success(&output);
    assert!(Config::new_checked(&std::fs::read(sandbox.path("edge.bin")).unwrap()[..]).is_ok());

    // Strong keys pass, and the device accepts what provision wrote.
    let output =
        sandbox.run(&["provision", "--name", "lab", "--signer", &format!("{signing_pub}:wasm"), "-o", "good.bin"]);
    assert_success(&output);
    let bytes = std::fs::read(sandbox.path("good.bin")).unwrap();
    let config = Config::new_checked(&bytes[..]).expect("the device accepts it");
    assert_eq!(ConfigRepr::parse(&config).unwrap().signers.len(), 1);
}

#[test]
fn secret_files_are_private_from_their_first_byte() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    let home = sandbox.home();
    assert_eq!(mode(&home), 0o700, "$JOS_HOME holds secret keys");
    for secret in ["signing.key", "client.key"] {
        assert_eq!(mode(&home.join(secret)), 0o600, "{secret}");
    }

    // Key files left readable by others (an old tool, a copy): `keygen --force` replaces them
    // with private files rather than rewriting them in place.
    for secret in ["signing.key", "client.key"] {
        std::fs::set_permissions(home.join(secret), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut reader = std::fs::File::open(home.join("signing.key")).unwrap();
    assert_success(&sandbox.run(&["keygen", "--force"]));
    for secret in ["signing.key", "client.key"] {
        assert_eq!(mode(&home.join(secret)), 0o600, "{secret} after keygen --force");
    }
    let new_key = std::fs::read_to_string(home.join("signing.key")).unwrap();
    let mut seen = String::new();
    reader.read_to_string(&mut seen).unwrap();
    assert_ne!(seen, new_key, "a reader that opened the old 0644 file got the new secret key");

    // provision: 0600 at creation (even with a permissive umask), and an old world-readable
    // output is replaced by a new private file: whoever opened the old one reads no new secret.
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("umask 000 && exec {JOS_CLI} provision --name lab -o fresh.bin"))
        .current_dir(sandbox.dir.path())
        .env("JOS_HOME", &home)
        .output()
        .unwrap();
    assert_success(&output);
    assert_eq!(mode(&sandbox.path("fresh.bin")), 0o600);

    let old = sandbox.path("config.bin");
    std::fs::write(&old, b"an old configuration, readable by all").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut reader = std::fs::File::open(&old).unwrap();
    assert_exit(&sandbox.run(&["provision", "--name", "lab", "-o", "config.bin"]), 22);
    assert_success(&sandbox.run(&["provision", "--name", "lab", "--force", "-o", "config.bin"]));
    assert_eq!(mode(&old), 0o600);
    let written = std::fs::read(&old).unwrap();
    let secrets = {
        let config = Config::new_checked(&written[..]).unwrap();
        let repr = ConfigRepr::parse(&config).unwrap();
        (repr.noise_secret, repr.advert_seed)
    };
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, b"an old configuration, readable by all", "the old file was rewritten in place");
    assert!(!seen.windows(32).any(|window| window == secrets.0 || window == secrets.1));
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn reading_a_secret_key_others_can_read_warns() {
    let sandbox = Sandbox::new();
    assert_success(&sandbox.run(&["keygen"]));
    let module =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#)
            .unwrap();
    std::fs::write(sandbox.path("job.wasm"), &module).unwrap();
    let key = sandbox.home().join("signing.key");

    let quiet = sandbox.run(&["sign", "job.wasm"]);
    assert_success(&quiet);
    assert!(!stderr(&quiet).contains("warning"), "{}", text(&quiet));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loud = sandbox.run(&["sign", "job.wasm"]);
    assert_success(&loud);
    let message = stderr(&loud);
    assert!(
        message.contains("warning") && message.contains("0644") && message.contains("chmod 600"),
        "{}",
        text(&loud)
    );
    assert!(message.contains(&key.display().to_string()));
    // The same for a key given with --key, and for the client key (read by provision `self`).
    let copy = sandbox.path("copy.key");
    std::fs::copy(&key, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o640)).unwrap();
    let given = sandbox.run(&["sign", "job.wasm", "--key", "copy.key"]);
    assert_success(&given);
    assert!(stderr(&given).contains("0640"), "{}", text(&given));
    std::fs::set_permissions(sandbox.home().join("client.key"), std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let provision = sandbox.run(&["provision", "--name", "lab", "-o", "lab.bin"]);
    assert_success(&provision);
    assert!(stderr(&provision).contains("client.key") && stderr(&provision).contains("0604"), "{}", text(&provision));
}

#[test]
fn verify_accepts_no_forgery_under_a_small_order_key() {
    let sandbox = Sandbox::new();
    let module =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))"#)
            .unwrap();
    // Any signature section, then its signature replaced by R = identity, s = 0: it passes a
    // cofactorless check under the identity key, for any content.
    let mut forged = jos_abi::signature::sign_wasm(&module, &[0x31; 32], false).unwrap();
    let section_end = 8 + jos_abi::signature::split_wasm(&forged).unwrap().section.len();
    forged[section_end - 64..section_end].fill(0);
    forged[section_end - 64] = 1;
    std::fs::write(sandbox.path("forged.wasm"), &forged).unwrap();
    let identity = sandbox.write("identity.pub", &format!("{IDENTITY}\n"));
    let output = sandbox.run(&["verify", "forged.wasm", "--key", &identity]);
    assert_exit(&output, 23);
}

/// A fake device on loopback: answers one probe with `advert` (built for the probe's nonce),
/// then ends.
fn answer_one_probe(advert: impl FnOnce(u64) -> Vec<u8> + Send + 'static) -> (String, std::thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let address = socket.local_addr().unwrap().to_string();
    let thread = std::thread::spawn(move || {
        let mut buffer = [0u8; jos_abi::wire::discovery::PROBE_LEN];
        let Ok((len, from)) = socket.recv_from(&mut buffer) else { return };
        let probe = Probe::parse(&buffer[..len]).expect("jos-cli sends a probe");
        socket.send_to(&advert(probe.nonce), from).unwrap();
    });
    (address, thread)
}

fn advert(nonce: u64, seed: &[u8; 32], signing_key: [u8; 32], noise_key: [u8; 32]) -> Vec<u8> {
    let repr = AdvertRepr {
        nonce,
        abi_version: AbiVersion::CURRENT,
        formats: Formats::WASM,
        state: LoadState::Idle,
        queued: 0,
        free_memory: 1 << 20,
        port: 4748,
        noise_key,
        signing_key,
        name: "stranger",
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes, seed).unwrap();
    bytes
}

#[test]
fn trust_never_pins_a_device_with_a_weak_key() {
    let sandbox = Sandbox::new();
    let real_noise_key = jos_client::store::x25519_public(&[0x21; 32]);

    // An advert "signed" under the identity key: R = identity, s = 0 verifies for any message
    // without strict checks.
    let (address, device) = answer_one_probe(move |nonce| {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut bytes = advert(nonce, &[0x22; 32], identity, real_noise_key);
        let signature_at = bytes.len() - 64;
        bytes[signature_at..].fill(0);
        bytes[signature_at] = 1;
        bytes
    });
    let output = sandbox.run(&["trust", "--accept-new", "--address", &address, "--timeout", "1500"]);
    device.join().unwrap();
    assert_exit(&output, 8);
    assert!(
        stderr(&output).contains("not signed by the key it carries"),
        "the forged advert is named: {}",
        text(&output)
    );

    // A well-signed advert whose Noise key has low order (u = 0): never pinned.
    for noise_key in [LOW_ORDER_X25519[0], LOW_ORDER_X25519[2]] {
        let (address, device) =
            answer_one_probe(move |nonce| advert(nonce, &[0x23; 32], public_key(&[0x23; 32]), noise_key));
        let output = sandbox.run(&["trust", "--accept-new", "--address", &address, "--timeout", "1500"]);
        device.join().unwrap();
        assert_exit(&output, 9);
        assert!(stderr(&output).contains("Noise key"), "{}", text(&output));
    }
    let trust = std::fs::read_to_string(sandbox.home().join("trust.json")).unwrap_or_default();
    assert!(!trust.contains("stranger"), "nothing was pinned: {trust}");

    // The same advert with strong keys is pinned.
    let (address, device) =
        answer_one_probe(move |nonce| advert(nonce, &[0x24; 32], public_key(&[0x24; 32]), real_noise_key));
    let output = sandbox.run(&["trust", "--accept-new", "--address", &address, "--timeout", "1500"]);
    device.join().unwrap();
    assert_success(&output);
    assert!(std::fs::read_to_string(sandbox.home().join("trust.json")).unwrap().contains("stranger"));
}

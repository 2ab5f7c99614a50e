//! `jos-cli` when a device gives it no session, against the device side of the protocol
//! (`jos_offload::Server` on loopback, `support/device.rs`) and against fake session ends: eight
//! stalled connections do not lock a trusted client out; a device whose sessions are all in use
//! answers Busy (exit 16); a connection closed or left unanswered before the handshake is
//! "unreachable" with a hint that says so (exit 8), never "not authorised" (exit 10, which stays
//! for a device that refuses the client's key); a session that goes silent after its handshake
//! times out (exit 20).

#[path = "support/device.rs"]
mod device;
#[path = "support/output.rs"]
mod output;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use device::Device;
use jos_offload::host::HostPlatform;
use jos_offload::{DeviceConfig, OsEntropy, Server, ServerOptions};
use output::{assert_exit, assert_success, json, text};

const MODULE: &str = r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 7)))"#;

struct User {
    dir: tempfile::TempDir,
}

impl User {
    /// A user with keys, a provisioned device configuration (`device.bin`, name `offload`) and
    /// a module (`seven.wasm`).
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("jos-cli-sessions").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let user = User { dir };
        assert_success(&user.run(&["keygen"]));
        assert_success(&user.run(&["provision", "--name", "offload", "-o", "device.bin"]));
        std::fs::write(user.path("seven.wasm"), wat::parse_str(MODULE).unwrap()).unwrap();
        user
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> Vec<u8> {
        std::fs::read(self.path("device.bin")).unwrap()
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

    /// Pins `device` (trust on first use), for a user who did not provision it.
    fn pin(&self, device: &Device) {
        assert_success(&self.run(&["trust", "--accept-new", "--address", &device.address()]));
    }

    /// `jos-cli push seven.wasm --device ADDRESS --json` (the user provisioned `device`: its keys
    /// are pinned since `provision`).
    fn push(&self, device: &Device) -> Output {
        self.run(&["push", "seven.wasm", "--device", &device.address(), "--json"])
    }

    /// Points the pinned device's session at `session` (its discovery still goes to the real
    /// device, so the keys are the real ones).
    fn set_session(&self, session: SocketAddr) {
        let path = self.path("home").join("trust.json");
        let mut trust: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let device = trust["devices"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|device| device["name"] == "offload")
            .expect("pinned");
        device["session"] = serde_json::json!(session.to_string());
        std::fs::write(path, serde_json::to_vec_pretty(&trust).unwrap()).unwrap();
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn eight_stalled_connections_do_not_lock_out_a_push() {
    let user = User::new();
    let device = Device::start(&user.config());
    // Eight connections that each send part of a frame and stall (the issue's lock-out).
    let stalled: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = TcpStream::connect(device.session).unwrap();
            stream.write_all(&[0x60, 0x00, 0x01]).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let output = user.push(&device);
    assert_success(&output);
    assert_eq!(json(&output)["exit_value"], 7);
    assert!(started.elapsed() < Duration::from_secs(10), "promptly: {:?}", started.elapsed());
    drop(stalled);
    let counters = device.stop();
    assert!(counters.evicted >= 1, "{counters:?}");
}

#[test]
fn every_session_in_use_is_busy_not_unauthorised() {
    let user = User::new();
    let device = Device::start_with(&user.config(), ServerOptions { max_sessions: 1, ..ServerOptions::default() });
    // One trusted session holds the only slot.
    let key = jos_client::store::Home::at(user.path("home")).client_key().unwrap();
    let device_key = DeviceConfig::from_bytes(&user.config()).unwrap().noise_public_key();
    let mut holder = jos_client::Session::connect(device.session, &key.secret, &device_key, Duration::from_secs(10))
        .expect("the first session");
    holder.ping(1).unwrap();
    let output = user.push(&device);
    assert_exit(&output, 16);
    let error = &json(&output)["error"];
    assert_eq!(error["kind"], "Busy", "{}", text(&output));
    assert!(error["message"].as_str().unwrap().contains("sessions are in use"), "{}", text(&output));
    assert!(error["hint"].as_str().unwrap().contains("every session is taken"), "{}", text(&output));
    // The holder was not disturbed; once it leaves, the push goes through.
    holder.ping(2).unwrap();
    drop(holder);
    std::thread::sleep(Duration::from_millis(100));
    assert_success(&user.push(&device));
    let counters = device.stop();
    assert_eq!(counters.refused_busy, 1, "{counters:?}");
}

/// A listener that reads what a client sends first, then closes the connection.
fn closing_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut hello = [0u8; 256];
            let _ = stream.read(&mut hello);
        }
    });
    address
}

/// A listener that accepts connections and never answers.
fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

#[test]
fn a_connection_closed_or_unanswered_before_the_handshake_is_unreachable() {
    let user = User::new();
    let device = Device::start(&user.config());

    user.set_session(closing_listener());
    let output = user.push(&device);
    assert_exit(&output, 8);
    let error = &json(&output)["error"];
    assert!(
        error["message"].as_str().unwrap().contains("closed the connection without answering the handshake"),
        "{}",
        text(&output)
    );
    assert!(error["hint"].as_str().unwrap().contains("retry"), "{}", text(&output));
    assert!(!stderr(&output).contains("client's key"), "not about the key: {}", text(&output));

    user.set_session(silent_listener());
    let started = Instant::now();
    let output = user.push(&device);
    assert_exit(&output, 8);
    assert!(
        json(&output)["error"]["message"].as_str().unwrap().contains("did not answer the handshake within 10 s"),
        "{}",
        text(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(25), "the handshake wait is short: {:?}", started.elapsed());
    drop(device);
}

#[test]
fn an_untrusted_key_is_still_not_authorised() {
    let user = User::new();
    let device = Device::start(&user.config());
    let stranger = User::new();
    stranger.pin(&device);
    std::fs::copy(user.path("seven.wasm"), stranger.path("seven.wasm")).unwrap();
    let output = stranger.run(&["push", "seven.wasm", "--device", &device.address()]);
    assert_exit(&output, 10);
    assert!(stderr(&output).contains("not in the device's configuration"), "{}", text(&output));
    assert!(stderr(&output).contains("--trust-client"), "the hint names the fix: {}", text(&output));
    let counters = device.stop();
    assert_eq!(counters.hellos_refused, 1);
}

/// A device end that completes handshakes and pushes (the server's `receive`) but never runs a
/// job (no `poll`): an Invoke waits for ever.
fn mute_device(config: &[u8], stop: Arc<AtomicBool>) -> SocketAddr {
    static ENTROPY: OsEntropy = OsEntropy;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut server =
        Server::new(DeviceConfig::from_bytes(config).unwrap(), ServerOptions::default(), HostPlatform::new(), &ENTROPY);
    std::thread::spawn(move || {
        let mut connections = Vec::new();
        let mut buffer = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            while let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(true).unwrap();
                if let Some(id) = server.connect() {
                    connections.push((stream, id));
                }
            }
            for (stream, id) in &mut connections {
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(len) => server.receive(*id, &buffer[..len]),
                        Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                let pending = server.pending(*id).to_vec();
                if stream.write_all(&pending).is_ok() {
                    server.consume(*id, pending.len());
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    address
}

#[test]
fn a_session_silent_after_its_handshake_times_out() {
    let user = User::new();
    let device = Device::start(&user.config());
    let stop = Arc::new(AtomicBool::new(false));
    user.set_session(mute_device(&user.config(), stop.clone()));
    let output = user.push(&device);
    stop.store(true, Ordering::Relaxed);
    assert_exit(&output, 20);
    assert!(
        json(&output)["error"]["message"].as_str().unwrap().contains("did not answer in time"),
        "{}",
        text(&output)
    );
    drop(device);
}

//! The echo example (a network-serving job) through `jos-cli run --local --grant net`: built in C
//! and in Rust as wasm, run as a process with input "PORT 3", sent three datagrams by the test on
//! loopback, answered each, and ends printing "echoed 3". Without `--grant net` the bind is
//! refused (PermissionDenied), as on a device that grants no network.

#[path = "support/output.rs"]
mod output;

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jos_guest_examples::Language;
use output::{assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

struct User {
    dir: tempfile::TempDir,
}

impl User {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(JOS_CLI);
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
}

/// A loopback UDP port that is free now.
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something holds `port` (the job bound it): binding it fails then.
fn wait_bound(port: u16, job: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(job.try_wait().unwrap().is_none(), "the job ended before binding port {port}");
        assert!(Instant::now() < deadline, "the job never bound port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends three datagrams to `port` and checks each comes back unchanged from that port.
fn exchange(port: u16) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    for index in 1..=3 {
        let message = format!("datagram {index} from the test");
        client.send_to(message.as_bytes(), ("127.0.0.1", port)).unwrap();
        let mut reply = [0u8; 64];
        let (count, from) = client.recv_from(&mut reply).expect("an echo");
        assert_eq!(&reply[..count], message.as_bytes());
        assert_eq!(from.port(), port);
    }
}

#[test]
fn run_local_echo_answers_datagrams_with_grant_net() {
    let user =
        User { dir: tempfile::Builder::new().prefix("jos-cli-echo").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap() };
    let echo = jos_guest_examples::Example::named("echo").unwrap();
    for language in jos_guest_examples::LANGUAGES {
        let file = format!("echo-{}.wasm", if language == Language::C { "c" } else { "rust" });
        assert_success(&user.run(&["build", echo.source(language).to_str().unwrap(), "--format", "wasm", "-o", &file]));

        let port = free_port();
        std::fs::write(user.path("input.txt"), format!("{port} 3")).unwrap();
        let mut job = user
            .command(&["run", "--local", &file, "--input", "input.txt", "--grant", "net", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_bound(port, &mut job);
        exchange(port);
        let output = job.wait_with_output().unwrap();
        assert_success(&output);
        let report = json(&output);
        assert_eq!(report["output"], "echoed 3\n", "{file}");
        // The job closed its socket, and jos-cli ended: the port is free again.
        UdpSocket::bind(("127.0.0.1", port)).unwrap_or_else(|error| panic!("{file}: port {port} still held: {error}"));

        // Without the grant the job cannot bind: it reports the error and ends.
        let output = user.run(&["run", "--local", &file, "--input", "input.txt", "--json"]);
        let report = json(&output);
        assert_ne!(report["exit_value"], 0, "{}", text(&output));
        assert_eq!(report["output"], "", "{file}");
    }
    // A right that does not exist is a usage error.
    let output = user.run(&["run", "--local", "echo-c.wasm", "--grant", "root"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

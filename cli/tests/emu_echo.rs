//! The echo example served by the emulated device, as a user does it: `jos-cli emu start` (whose
//! own signing key holds every right, `net` included, and which forwards a host UDP port to the
//! first job port), `jos-cli build` echo.c as wasm and as native, `jos-cli push` each with input
//! "7000 ..." in the background, datagrams from the host to the forwarded port (`emu status
//! --json` names it), each echoed, "quit" answered "bye", and push printing "echoed K".

#[path = "support/kernel.rs"]
mod kernel;
#[path = "support/output.rs"]
mod output;

use kernel::kernel;
use std::io::Write;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use output::{assert_success, json, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// A user's folder; the emulator is stopped when this is dropped, also after a failed assertion.
struct User {
    dir: tempfile::TempDir,
}

impl User {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(JOS_CLI);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("JOS_HOME", self.dir.path().join("home"))
            .env_remove("XDG_CONFIG_HOME");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run jos-cli")
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = self.run(&["emu", "stop"]);
    }
}

/// Sends `payload` until an answer comes (the job may not have bound its port yet), for at most
/// `within`.
fn exchange(socket: &UdpSocket, port: u16, payload: &[u8], within: Duration) -> Option<Vec<u8>> {
    let started = Instant::now();
    let mut buffer = [0u8; 2048];
    while started.elapsed() < within {
        socket.send_to(payload, ("127.0.0.1", port)).unwrap();
        if let Ok((len, _)) = socket.recv_from(&mut buffer) {
            return Some(buffer[..len].to_vec());
        }
    }
    None
}

/// Answers still queued (late echoes of resent datagrams).
fn drain(socket: &UdpSocket) -> usize {
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buffer = [0u8; 2048];
    let mut late = 0;
    while socket.recv_from(&mut buffer).is_ok() {
        late += 1;
    }
    socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    late
}

/// Pushes `file` with `input` in the background and serves it at least `count` datagrams (then
/// "quit" if `quit`); returns push's output and the number of echoes received (a datagram
/// resent while the job was starting may be echoed twice).
fn serve(user: &User, file: &str, input: &str, port: u16, count: usize, quit: bool) -> (Output, usize) {
    let mut push = user
        .command(&["push", file, "--input", "-", "--timeout", "60000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jos-cli push");
    push.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut answered = 0;
    let mut served = || -> Result<(), String> {
        let mut index = 0;
        while answered < count {
            let payload = format!("datagram {index}");
            let within = Duration::from_secs(if index == 0 { 90 } else { 20 });
            let answer = exchange(&socket, port, payload.as_bytes(), within).ok_or(format!("no echo of {payload}"))?;
            if answer != payload.as_bytes() {
                return Err(format!("{payload} echoed as {:?}", String::from_utf8_lossy(&answer)));
            }
            answered += 1 + drain(&socket);
            index += 1;
        }
        if quit {
            let answer = exchange(&socket, port, b"quit", Duration::from_secs(20)).ok_or("no answer to quit")?;
            if answer != b"bye" {
                return Err(format!("quit answered {:?}", String::from_utf8_lossy(&answer)));
            }
        }
        Ok(())
    };
    let outcome = served();
    if outcome.is_err() {
        let _ = push.kill();
    }
    let output = push.wait_with_output().expect("jos-cli push ends");
    if let Err(error) = outcome {
        panic!("{error}; push: {}", text(&output));
    }
    (output, answered)
}

#[test]
fn the_echo_example_serves_udp_from_the_emulated_device() {
    let dir = tempfile::Builder::new().prefix("jos-emu-echo").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let user = User { dir };
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/echo.c");
    let source = source.to_str().unwrap();
    assert_success(&user.run(&["build", source, "--format", "wasm", "-o", "echo.wasm"]));
    assert_success(&user.run(&["build", source, "--format", "native", "-o", "echo.blob"]));
    let started = user.run(&["emu", "start", "--kernel", kernel().to_str().unwrap(), "--json"]);
    assert_success(&started);
    let status = user.run(&["emu", "status", "--json"]);
    assert_success(&status);
    let status = json(&status);
    assert_eq!(status["job_port"]["device"], 7000);
    let host = status["job_port"]["host"].as_str().expect("a forwarded job port");
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();

    // wasm: three datagrams, then quit.
    let (output, answered) = serve(&user, "echo.wasm", "7000", port, 3, true);
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout), format!("echoed {answered}\n"), "{}", text(&output));

    // native: stops by itself after two datagrams (its `yield` lets the network run).
    let (output, answered) = serve(&user, "echo.blob", "7000 2", port, 2, false);
    assert_success(&output);
    assert_eq!(answered, 2);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "echoed 2\n", "{}", text(&output));
}

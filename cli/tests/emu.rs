//! `jos-cli emu` as a process with the real kernel (`build/jos-kernel.elf`, built by
//! `cargo xtask kernel` before the tests): start in the background, status, console, screenshot
//! (a PNG that decodes), stop, and nothing left running.

#[path = "support/kernel.rs"]
mod kernel;
#[path = "support/output.rs"]
mod output;

use kernel::kernel;
use output::{json, text};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(JOS_CLI).args(args).env("JOS_HOME", home).env_remove("XDG_CONFIG_HOME").output().expect("run jos-cli")
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| cmdline.contains("qemu"))
}

/// Stops the emulator even when an assertion fails.
struct Guard<'a>(&'a Path);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = run(self.0, &["emu", "stop"]);
    }
}

#[test]
fn emu_boots_in_the_background_and_stops_without_leftovers() {
    let dir = tempfile::Builder::new().prefix("jos-emu").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = dir.path().join("home");
    let kernel = kernel();
    let output = run(&home, &["emu", "start", "--kernel", kernel.to_str().unwrap(), "--no-wait", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let _guard = Guard(&home);
    let started = json(&output);
    let pid = started["pid"].as_u64().unwrap();
    assert!(alive(pid), "QEMU is not running after emu start");
    // emu start provisioned the device and made it the default.
    let config = std::fs::read(home.join("emu/config.bin")).unwrap();
    let checked = jos_abi::config::Config::new_checked(&config[..]).expect("emu/config.bin checks");
    // The developer's own emulator: their signing key holds every right; jobs get the default
    // port range, whose first port is forwarded from the host.
    let repr = jos_abi::config::ConfigRepr::parse(&checked).unwrap();
    assert_eq!(repr.signers.iter().next().unwrap().rights, jos_abi::signature::SignerRights::ALL);
    assert_eq!(repr.policy.job_ports, jos_abi::config::PortRange::DEFAULT);
    assert_eq!(started["job_port"]["device"], 7000);
    assert!(started["job_port"]["host"].as_str().unwrap().starts_with("127.0.0.1:"));
    let trust = json(&run(&home, &["trust", "list", "--json"]));
    assert_eq!(trust["devices"][0]["name"], "emu");
    assert_eq!(trust["devices"][0]["default"], true);
    assert_eq!(trust["devices"][0]["discovery"], started["discovery"]);

    // A second start refuses while the first runs.
    assert_eq!(
        run(&home, &["emu", "start", "--kernel", kernel.to_str().unwrap(), "--no-wait"]).status.code(),
        Some(22)
    );

    let status = run(&home, &["emu", "status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(json(&status)["running"], true);
    assert_eq!(json(&status)["pid"], pid);
    assert_eq!(json(&status)["job_port"], started["job_port"]);

    // The UART log fills up as the kernel boots.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let console = run(&home, &["emu", "console"]);
        assert!(console.status.success(), "{}", text(&console));
        if String::from_utf8_lossy(&console.stdout).contains("self-test: PASS") {
            break;
        }
        assert!(Instant::now() < deadline, "no self-test verdict on the console:\n{}", text(&console));
        std::thread::sleep(Duration::from_millis(500));
    }

    // The status screen (banner, figures) gets drawn: the picture is not one flat colour. Taken
    // again for a while in case the first frame is not drawn yet.
    let picture = dir.path().join("screen.png");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = run(&home, &["emu", "screenshot", picture.to_str().unwrap()]);
        assert!(output.status.success(), "{}", text(&output));
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&picture).unwrap()));
        let mut reader = decoder.read_info().expect("a PNG");
        let (width, height) = (reader.info().width, reader.info().height);
        assert!(width >= 320 && height >= 200, "screen {width}x{height}");
        let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut pixels).expect("PNG pixels");
        let first = &pixels[..3];
        let differing = pixels.chunks_exact(3).filter(|pixel| *pixel != first).count();
        if differing > 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "the screenshot stays flat ({differing} differing pixels)");
        std::thread::sleep(Duration::from_millis(500));
    }

    let output = run(&home, &["emu", "stop", "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(json(&output)["stopped"], true);
    assert!(!alive(pid), "QEMU still runs after emu stop");
    assert!(!home.join("emu/state.json").exists() && !home.join("emu/qemu.pid").exists());
    assert_eq!(run(&home, &["emu", "status"]).status.code(), Some(24));
}

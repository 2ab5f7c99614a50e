//! The kernel on a TAP device inside a network namespace that the test makes: the Linux side
//! pings it and sends it a UDP broadcast, which it must receive (it echoes it back and counts
//! it). Without the rights to make a namespace, the test says "skipped: <reason>" and passes.
//!
//! No DHCP server is on this link, so the kernel falls back to its static 10.0.2.15/24; the
//! namespace side is 10.0.2.1/24. Traffic stays inside the namespace.

use std::process::Command;
use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu};

/// A network namespace with a TAP device, deleted on drop.
struct Namespace {
    name: String,
}

impl Namespace {
    fn create(name: &str, tap: &str) -> Result<Self, String> {
        let run = |args: &[&str]| -> Result<(), String> {
            let output = Command::new("ip").args(args).output().map_err(|e| format!("cannot run ip: {e}"))?;
            if output.status.success() {
                Ok(())
            } else {
                Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
            }
        };
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        run(&["netns", "add", name])?;
        let namespace = Self { name: name.into() };
        run(&["-n", name, "link", "set", "lo", "up"])?;
        run(&["-n", name, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        run(&["-n", name, "addr", "add", "10.0.2.1/24", "brd", "10.0.2.255", "dev", tap])?;
        run(&["-n", name, "link", "set", tap, "up"])?;
        Ok(namespace)
    }

    fn exec(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("run a command in the namespace")
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

#[test]
fn tap_in_namespace_ping_and_broadcast() {
    let id = std::process::id() % 100_000;
    let (name, tap) = (format!("jos-net-{id}"), format!("jostap{id}"));
    let namespace = match Namespace::create(&name, &tap) {
        Ok(namespace) => namespace,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.command_prefix = vec!["ip".into(), "netns".into(), "exec".into(), name.clone()];
    options.extra_args = vec![
        "-netdev".into(),
        format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
    ];
    let mut qemu = Qemu::boot(&options).expect("start QEMU in the namespace");
    let ip = qemu.wait_for_line("net: ip ", Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    assert!(ip.starts_with("10.0.2.15/24 via static"), "expected the static fallback, got {ip:?}");

    let ping = namespace.exec("ping", &["-c", "3", "-W", "3", "10.0.2.15"]);
    let ping_text = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success(),
        "ping failed:\n{ping_text}{}\n{}",
        String::from_utf8_lossy(&ping.stderr),
        qemu.output()
    );
    assert!(ping_text.contains("3 received"), "ping: {ping_text}");

    let probe = env!("CARGO_BIN_EXE_jos-net-probe");
    let unicast = namespace.exec(probe, &["echo", "10.0.2.15:7", "5"]);
    assert!(
        unicast.status.success(),
        "unicast echo: {}{}",
        String::from_utf8_lossy(&unicast.stdout),
        String::from_utf8_lossy(&unicast.stderr)
    );
    let broadcast = namespace.exec(probe, &["echo", "10.0.2.255:7", "3", "--broadcast"]);
    let text = String::from_utf8_lossy(&broadcast.stdout).to_string();
    assert!(
        broadcast.status.success() && text.contains("3/3 echoed from 10.0.2.15:7"),
        "broadcast echo: {text}{}\n{}",
        String::from_utf8_lossy(&broadcast.stderr),
        qemu.output()
    );
    // The kernel's own count of broadcast frames proves it saw them (ARP requests also count).
    std::thread::sleep(Duration::from_millis(2500));
    let output = qemu.output();
    let line = output.lines().rev().find(|l| l.starts_with("net: stats ")).expect("a stats line");
    let broadcasts: u64 = line
        .split_whitespace()
        .skip_while(|w| *w != "broadcast")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("broadcast counter");
    assert!(broadcasts >= 3, "broadcast frames not counted: {line}");
    qemu.kill();
}

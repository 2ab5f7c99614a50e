//! The LAN9512 model (`jos_tests::lan9512`, served by `jos-lan9512` over usbredir) validated by
//! Linux before jos is tested on it: Debian's rpi kernel (the benchmarks' guest) on QEMU raspi0
//! with the model on the DWC2's root port binds its own `smsc95xx` driver to it, attaches the
//! SMSC PHY driver over MII, brings eth0 up with a DHCP lease from dnsmasq in the test's network
//! namespace, answers ping and 200 UDP echoes of 1..=1472 bytes (sizes around the 512-byte USB
//! packet boundaries included), and pings the namespace itself. Linux's own counters must show
//! no receive or transmit error and its log no checksum-offload fault; the model's trace must
//! show the register writes Linux's driver is known to make (the reference recorded in
//! docs/network.md) and no access to a register the model does not know.
//!
//! Needs root for the namespace; without it the test says "skipped: <reason>" and passes.

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use jos_tests::netns::{Model, Namespace, GUEST_ADDRESS, HOST_ADDRESS};
use jos_tests::{BootOptions, Qemu};

const APPEND: &str = "console=ttyAMA0,115200 rdinit=/smsc-init initcall_blacklist=bcm2835_power_driver_init";

/// Runs `command`, killing it after `limit`; true when it succeeded.
fn run_with_limit(command: &mut Command, limit: Duration) -> bool {
    let mut child = command.spawn().expect("start");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Deterministic bytes for request `index` of `length`.
fn payload(index: usize, length: usize) -> Vec<u8> {
    (0..length).map(|i| (i as u8).wrapping_mul(31).wrapping_add(index as u8)).collect()
}

/// Types `command` into the guest's shell and returns what it printed before the marker.
fn shell(qemu: &mut Qemu, command: &str, id: u32) -> Vec<String> {
    let marker = format!("@@done-{}", id * 3);
    let start = qemu.output().len();
    qemu.send(&format!("{command}; echo @@done-$(({id}*3))\n")).expect("type into the guest");
    qemu.wait_for_line(&marker, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let output = qemu.output();
    output[start..].lines().take_while(|l| !l.starts_with(&marker)).map(|l| l.trim_end().to_string()).collect()
}

/// The value of the last write to register `name` in the trace.
fn last_write(trace: &str, name: &str) -> Option<u32> {
    let prefix = format!("W {name} ");
    trace
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
}

#[test]
fn linux_smsc95xx_drives_the_model() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: making a network namespace needs root");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    assert!(run_with_limit(&mut Command::new(root.join("bench/linux/mkinitrd.sh")), Duration::from_secs(300)));
    let linux = jos_tests::build_dir().join("linux");
    let namespace = Namespace::create("lnx", true).unwrap_or_else(|e| panic!("namespace: {e}"));
    let mut model = Model::start(Path::new(env!("CARGO_BIN_EXE_jos-lan9512")), &namespace, "lan9512")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut options = BootOptions::new("raspi0", linux.join("vmlinuz"));
    options.extra_args = vec![
        "-dtb".into(),
        linux.join("rpi-zero.dtb").display().to_string(),
        "-initrd".into(),
        linux.join("initrd.gz").display().to_string(),
        "-append".into(),
        APPEND.into(),
    ];
    options.extra_args.extend(model.qemu_args());
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let lease = qemu
        .wait_for_line("smsc: lease ", Duration::from_secs(240))
        .unwrap_or_else(|e| panic!("{e}\nmodel trace:\n{}", model.trace_text()));
    assert!(lease.starts_with(GUEST_ADDRESS), "lease {lease:?}");
    qemu.wait_for_line("smsc: ready", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let boot_log = qemu.output();
    for expected in
        ["new high-speed USB device", "idVendor=0424, idProduct=ec00", "SMSC LAN8700", "Link is Up - 100Mbps/Full"]
    {
        assert!(boot_log.contains(expected), "no {expected:?} in Linux's log:\n{boot_log}");
    }
    let mac = boot_log.lines().find_map(|l| l.strip_prefix("smsc: mac ")).expect("the MAC line").trim().to_string();

    let ping = namespace.exec("ping", &["-c", "3", "-W", "3", GUEST_ADDRESS]);
    let ping_text = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.status.success() && ping_text.contains("3 received"), "ping from the namespace:\n{ping_text}");

    // UDP echo through Linux's echo-udp: every size class, the 512-byte packet boundaries of
    // the bulk transfers (status word, 2-byte offset, FCS and checksum word around the frame)
    // and the largest datagram.
    let mut sizes: Vec<usize> = (0..170).map(|i| 1 + (i * 7919) % 1472).collect();
    for boundary in [512usize, 1024, 1536] {
        // UDP payload + 42 header bytes + 4 FCS + 2 checksum + 4 status + 2 offset around the boundary.
        for delta in 0..10 {
            let total = boundary - 5 + delta;
            if let Some(size) = total.checked_sub(42 + 12) {
                if (1..=1472).contains(&size) {
                    sizes.push(size);
                }
            }
        }
    }
    sizes.push(1472);
    let problems = namespace.run_in(|| {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
        socket.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        socket.connect((GUEST_ADDRESS, 7)).expect("connect");
        let mut reply = vec![0u8; 4096];
        let mut problems = Vec::new();
        for (index, &size) in sizes.iter().enumerate() {
            let request = payload(index, size);
            socket.send(&request).expect("send");
            match socket.recv(&mut reply) {
                Ok(n) if reply[..n] == request[..] => {}
                Ok(n) => problems.push(format!("{size} bytes: a reply of {n} bytes differs")),
                Err(e) => problems.push(format!("{size} bytes: {e}")),
            }
        }
        problems
    });
    assert!(problems.is_empty(), "UDP echo through Linux: {problems:?}\nmodel trace tail:\n{}", model.trace_text());

    let ping_out = shell(&mut qemu, &format!("ping -c 3 -W 3 {HOST_ADDRESS} >/dev/null; echo ping-status $?"), 1);
    assert!(ping_out.iter().any(|l| l == "ping-status 0"), "Linux pinging the namespace: {ping_out:?}");
    let stats = shell(&mut qemu, "s=/sys/class/net/eth0/statistics; echo counters $(cat $s/rx_errors $s/tx_errors $s/rx_dropped $s/tx_dropped $s/rx_length_errors $s/rx_crc_errors)", 2);
    let counters = stats.iter().find_map(|l| l.strip_prefix("counters ")).expect("the counters line");
    assert_eq!(
        counters.trim(),
        "0 0 0 0 0 0",
        "Linux's eth0 rx_errors tx_errors rx_dropped tx_dropped rx_length_errors rx_crc_errors"
    );
    // A checksum-offload fault ("hw csum failure") comes with a dump of the frame that can push
    // its first line out of the log buffer: look for any of its lines.
    let faults = shell(&mut qemu, "dmesg | grep -i -E 'csum|skb len|tailroom|smsc95xx.*(fail|error|unexpected|timeout waiting)|usb 1-1.*(reset|error)' | head -5", 3);
    assert!(faults.iter().all(|l| !l.contains("] ")), "Linux logged faults: {faults:?}");
    qemu.kill();
    let trace = model.finish(Duration::from_secs(5));

    // The reference: what smsc95xx's bind, reset and open wrote (docs/network.md).
    let hw_cfg = last_write(&trace, "HW_CFG").expect("HW_CFG written");
    assert_eq!(hw_cfg & 0x1622, 0x1422, "HW_CFG {hw_cfg:#x}: BIR, RXDOFF 2, MEF, BCE");
    assert_eq!(last_write(&trace, "BURST_CAP"), Some(37), "BURST_CAP: 18,944-byte URBs / 512");
    assert_eq!(last_write(&trace, "BULK_IN_DLY"), Some(0x2000));
    assert_eq!(last_write(&trace, "COE_CR"), Some(0x0001_0001), "RX and TX checksum offload");
    let mac_cr = last_write(&trace, "MAC_CR").expect("MAC_CR written");
    assert_eq!(mac_cr & 0x0010_000c, 0x0010_000c, "MAC_CR {mac_cr:#x}: TXEN, RXEN, full duplex");
    assert_eq!(last_write(&trace, "TX_CFG"), Some(4), "TX_CFG.ON");
    let m: Vec<u8> = mac.split(':').map(|b| u8::from_str_radix(b, 16).expect("hex")).collect();
    assert_eq!(last_write(&trace, "ADDRL"), Some(u32::from_le_bytes([m[0], m[1], m[2], m[3]])), "ADDRL for {mac}");
    assert_eq!(last_write(&trace, "ADDRH"), Some(u32::from_le_bytes([m[4], m[5], 0, 0])), "ADDRH for {mac}");
    assert!(trace.contains("W E2P_CMD 0x8"), "Linux looked for an EEPROM");
    assert!(trace.contains("W PHY 0 "), "Linux wrote the PHY's BMCR over MII");
    let summary = trace.lines().rev().find(|l| l.starts_with("summary ")).expect("the model's summary");
    let count = |name: &str| -> u64 {
        summary
            .split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {summary}"))
    };
    assert_eq!(count("unknown_registers"), 0, "{summary}");
    assert_eq!(count("tx_errors"), 0, "{summary}");
    assert!(count("rx_frames") >= 200 && count("tx_frames") >= 200, "{summary}");
    println!("LAN9512 model, register writes by Linux's smsc95xx (MII data writes left out):");
    for line in trace.lines().filter(|l| {
        l.starts_with("W ") && !l.starts_with("W MII_") || l.starts_with("event") || l.starts_with("summary")
    }) {
        println!("  {line}");
    }
}

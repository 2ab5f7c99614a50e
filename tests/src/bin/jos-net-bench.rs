//! Network benchmark (a figure, not a test): boots the kernel with usb-net under
//! `-icount shift=0` (guest time follows the instruction count), sends UDP echo requests one at
//! a time and prints round trips per second (host wall clock and guest clock) and the guest time
//! the kernel spent per request (its `busy_us` counter: time in network polls that moved frames).
//!
//! ```text
//! jos-net-bench KERNEL.elf [REQUESTS] [PAYLOAD_BYTES]
//! ```

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use jos_tests::{net_stats as stats, BootOptions, Qemu};

/// Network benchmark: UDP echo round trips against a kernel booted with usb-net under `-icount`.
#[derive(Debug, Parser)]
#[command(name = "jos-net-bench")]
struct Args {
    /// The kernel ELF to boot.
    #[arg(value_name = "KERNEL.elf")]
    kernel: PathBuf,
    /// Echo requests to send, one at a time.
    #[arg(default_value_t = 2000)]
    requests: u64,
    /// Bytes of payload per request.
    #[arg(default_value_t = 5, value_name = "PAYLOAD_BYTES")]
    size: usize,
}

fn main() -> ExitCode {
    let Args { kernel, requests, size } = Args::parse();
    let port = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).unwrap_or(17_777);
    let mut options = BootOptions::new("raspi0", kernel);
    options.icount_shift = Some(0);
    options.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=udp:127.0.0.1:{port}-:7"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
    ];
    let mut qemu = match Qemu::boot(&options) {
        Ok(qemu) => qemu,
        Err(e) => {
            eprintln!("cannot start QEMU: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = qemu.wait_for_line("net: ip ", Duration::from_secs(120)) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    socket.connect(("127.0.0.1", port)).expect("connect");
    let payload: Vec<u8> = if size == 5 { b"Echo1".to_vec() } else { (0..size).map(|i| i as u8).collect() };
    let mut reply = vec![0u8; 4096];
    // Warm up (ARP, first-use paths) and take the starting counters.
    for _ in 0..10 {
        let _ = socket.send(&payload);
        let _ = socket.recv(&mut reply);
    }
    let Some((echoes0, busy0, at0)) = stats(&mut qemu, 10) else {
        eprintln!("no stats line from the kernel:\n{}", qemu.output());
        return ExitCode::FAILURE;
    };
    let started = Instant::now();
    let mut lost = 0u64;
    for _ in 0..requests {
        socket.send(&payload).expect("send");
        match socket.recv(&mut reply) {
            Ok(n) if reply[..n] == payload[..] => {}
            _ => lost += 1,
        }
    }
    let wall = started.elapsed();
    let Some((echoes1, busy1, at1)) = stats(&mut qemu, echoes0 + requests - lost) else {
        eprintln!("no final stats line:\n{}", qemu.output());
        return ExitCode::FAILURE;
    };
    let served = echoes1 - echoes0;
    let guest_seconds = (at1 - at0) as f64 / 1e6;
    println!("jos-net-bench: {requests} UDP echo requests of {size} bytes, one at a time, raspi0, -icount shift=0");
    println!("  lost:                       {lost}");
    println!(
        "  host wall clock:            {:.2} s, {:.0} round trips/s, {:.0} us per round trip",
        wall.as_secs_f64(),
        requests as f64 / wall.as_secs_f64(),
        wall.as_secs_f64() * 1e6 / requests as f64
    );
    println!(
        "  guest clock (stats window): {:.2} s for {served} echoes, {:.0} round trips/s",
        guest_seconds,
        served as f64 / guest_seconds
    );
    println!(
        "  guest time in the kernel:   {:.1} us per request (busy_us {} over {served} echoes)",
        (busy1 - busy0) as f64 / served.max(1) as f64,
        busy1 - busy0
    );
    qemu.kill();
    if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

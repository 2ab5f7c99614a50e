//! jos itself on the network: boot, platform figures (image sizes, boot and network-ready times,
//! heap and DMA use) and the kernel's UDP echo service.

use std::path::Path;
use std::time::Duration;

use jos_tests::{net_stats, BootOptions, Qemu};
use serde_json::{json, Map, Value};

use crate::echo::{after, echo_run, free_port, guest_clock_us, net_args};
use crate::json_object;
use crate::results::EchoResult;

/// Boots jos with the network and measures the platform figures and the echo service.
pub fn jos(kernel: &Path, requests: u64) -> Result<(Map<String, Value>, EchoResult), String> {
    let port = free_port()?;
    let mut options = BootOptions::new("raspi0", kernel.into());
    options.icount_shift = Some(0);
    options.extra_args = net_args(port);
    let mut qemu = Qemu::boot(&options).map_err(|e| format!("cannot start QEMU: {e}"))?;
    let boot = qemu.wait_for_line("boot: verdict ", Duration::from_secs(120))?;
    qemu.wait_for_line("net: ip ", Duration::from_secs(120))?;
    // Read as soon as the line is seen: an upper bound for the network-ready time.
    let ready_clock_us = guest_clock_us(&qemu)?;
    let clock0 = guest_clock_us(&qemu)?;
    let run = echo_run(port, requests)?;
    let clock1 = guest_clock_us(&qemu)?;
    let answered = run.latencies_us.len() as u64;
    // The warm-up echoes count too: the stats must show at least the answered ones.
    let (echoes, busy, _) = net_stats(&mut qemu, answered).ok_or("no net: stats line after the echo run")?;
    // Platform figures: the boot line, the network-ready bounds and the heap with the network up.
    let output = qemu.output();
    let stamp = |line: &str| -> Option<f64> {
        let inner = line.strip_prefix('[')?.split(']').next()?;
        inner.trim().parse::<f64>().ok().map(|s| s * 1e6)
    };
    let lines: Vec<&str> = output.lines().collect();
    let ip_index = lines.iter().position(|l| l.starts_with("net: ip ")).ok_or("no net: ip line")?;
    let ready_after_us = lines[..ip_index].iter().rev().find_map(|l| stamp(l));
    let ready_before_us =
        lines[ip_index..].iter().find(|l| l.starts_with("net: stats ")).and_then(|l| after(l, "at_us"));
    qemu.send("heap\r").map_err(|e| e.to_string())?;
    let heap = qemu.wait_for_line("heap: size ", Duration::from_secs(30))?;
    let heap_used = after(&format!("size {heap}"), "used");
    // The status panel's memory row also shows the DMA region in use (USB and network buffers).
    qemu.send("status\r").map_err(|e| e.to_string())?;
    let memory = qemu.wait_for_line("status: memory ", Duration::from_secs(30))?;
    let dma_kib = after(&memory, "dma");
    let elf_bytes = std::fs::metadata(kernel).map(|m| m.len()).map_err(|e| e.to_string())?;
    let boot_field = |name: &str| after(&boot, name);
    let platform = json_object(json!({
        "status": "ok",
        "kernel_elf_bytes": elf_bytes,
        "image_bytes": boot_field("image"),
        "bss_bytes": boot_field("bss"),
        "boot_verdict_us": boot.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()),
        "idle_heap_bytes_at_boot": boot.split("idle heap ").nth(1).and_then(|r| r.split_whitespace().next()?.parse::<f64>().ok()),
        "heap_bytes_with_network": heap_used,
        "heap_size_bytes": after(&format!("size {heap}"), "size"),
        "dma_kib_with_network": dma_kib,
        "network_ready_after_us": ready_after_us,
        "network_ready_before_us": ready_before_us.map(|v| v.min(ready_clock_us as f64)),
        "network_ready_source": "after: last time-stamped log line before `net: ip`; before: system timer read through QMP when the host saw the line (or the first stats line's at_us, if earlier)",
    }));
    let mut echo = EchoResult::measured(run.latencies());
    echo.note("served_total", echoes);
    echo.guest_us_per_request = Some(busy as f64 / echoes.max(1) as f64);
    echo.guest_us_per_request_source = Some("kernel busy_us (network polls that moved frames) over all echoes".into());
    echo.guest_clock_us_per_round_trip = Some((clock1 - clock0) as f64 / answered.max(1) as f64);
    eprintln!("bench: jos echo: mean {:.0} us p99 {:.0} us, lost {}", run.mean(), run.percentile(99.0), run.lost);
    qemu.kill();
    Ok((platform, echo))
}

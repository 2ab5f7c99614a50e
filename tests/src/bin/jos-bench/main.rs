//! The seed's experiments on the emulated board, jos next to Linux (docs/benchmarks.md): boots
//! jos and Debian's Pi Zero/1 Linux kernel on QEMU raspi0 under `-icount shift=0` (guest time
//! follows the instruction count, so figures repeat), runs the MD5 compute benchmark and the UDP
//! echo benchmark against both, reads jos's platform figures, and writes `bench-results.json`
//! and PNG plots.
//!
//! ```text
//! jos-bench [--quick | --full] [--kernel ELF] [--linux DIR] [--json PATH] [--img DIR]
//! jos-bench --syscalls [--quick | --full] [--kernel ELF]
//! jos-bench --replot [--json PATH] [--img DIR]
//! ```
//! `--replot` measures nothing: it redraws the plots and reprints the tables from the JSON.
//! `--syscalls` measures only the native system-call costs and native MD5 at N = 10^5 on the
//! given kernel and prints one table row (for before/after comparisons of two kernels).
//! `--quick` (the test command's mode) stops MD5 at N = 100 and sends 200 echoes; the default
//! goes to N = 10^5 with 3 runs and 10^4 echoes; `--full` to N = 10^6 with 10 runs and 10^5
//! echoes. The Linux guest comes from `bench/linux/mkinitrd.sh` (kernel, device tree and
//! initramfs in `build/linux/`). The jos MD5 variants (native blob and wasm), the push/invoke
//! costs by phase and the heap per running wasm job go through the kernel's offload service on a
//! second jos boot with a configuration (`offload.rs`).

mod offload;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use jos_tests::{build_dir, net_stats, BootOptions, Qemu};
use plotters::prelude::*;
use serde_json::{json, Value};

/// MD5 of "jon" (`printf jon | md5sum`): every run must end with this digest.
const JON_MD5: &str = "006cb570acdab0e0bfc8e3dcb7bb4edf";
/// The echo payload of the seed's experiment.
const ECHO_PAYLOAD: &[u8] = b"Echo1";
/// The Linux guest's kernel command line (PLATFORM-NOTES: the power driver panics on this QEMU).
const LINUX_APPEND: &str = "console=ttyAMA0,115200 rdinit=/init initcall_blacklist=bcm2835_power_driver_init quiet";
/// The TTF file the plots' text is drawn with (Debian package fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// How much to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Quick,
    Standard,
    Full,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Standard => "standard",
            Mode::Full => "full",
        }
    }
    /// The MD5 repetition counts N.
    fn md5_counts(self) -> Vec<u64> {
        let last = match self {
            Mode::Quick => 2,
            Mode::Standard => 5,
            Mode::Full => 6,
        };
        (0..=last).map(|e| 10u64.pow(e)).collect()
    }
    /// Runs per N.
    fn runs(self) -> u64 {
        match self {
            Mode::Quick => 2,
            Mode::Standard => 3,
            Mode::Full => 10,
        }
    }
    /// UDP echo requests per variant.
    fn echoes(self) -> u64 {
        match self {
            Mode::Quick => 200,
            Mode::Standard => 10_000,
            Mode::Full => 100_000,
        }
    }
}

/// Command-line settings.
struct Settings {
    mode: Mode,
    kernel: PathBuf,
    linux: PathBuf,
    json: PathBuf,
    img: PathBuf,
    replot: bool,
    /// Only the native system-call costs and native MD5 at N = 10^5 (before/after comparisons).
    syscalls: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        mode: Mode::Standard,
        kernel: build_dir().join("jos-kernel.elf"),
        linux: build_dir().join("linux"),
        json: repo_root().join("bench-results.json"),
        img: repo_root().join("docs/img"),
        replot: false,
        syscalls: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => settings.mode = Mode::Quick,
            "--full" => settings.mode = Mode::Full,
            "--replot" => settings.replot = true,
            "--syscalls" => settings.syscalls = true,
            "--kernel" => settings.kernel = value("--kernel")?.into(),
            "--linux" => settings.linux = value("--linux")?.into(),
            "--json" => settings.json = value("--json")?.into(),
            "--img" => settings.img = value("--img")?.into(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(settings)
}

/// A free UDP port on 127.0.0.1 for a `hostfwd`.
fn free_port() -> Result<u16, String> {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// The network devices both guests get: usb-net on the root port, slirp, UDP port 7 forwarded.
fn net_args(port: u16) -> Vec<String> {
    vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=udp:127.0.0.1:{port}-:7"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
    ]
}

/// Round-trip latencies of one echo run, seen from the host.
struct EchoRun {
    latencies_us: Vec<f64>,
    lost: u64,
    wall_s: f64,
}

impl EchoRun {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[index]
    }
    fn mean(&self) -> f64 {
        self.latencies_us.iter().sum::<f64>() / self.latencies_us.len().max(1) as f64
    }
    fn to_json(&self) -> Value {
        json!({
            "answered": self.latencies_us.len(),
            "lost": self.lost,
            "wall_s": self.wall_s,
            "mean_us": self.mean(),
            "p50_us": self.percentile(50.0),
            "p99_us": self.percentile(99.0),
            "p999_us": self.percentile(99.9),
            "max_us": self.percentile(100.0),
        })
    }
}

/// Sends `requests` echo requests one at a time (1 s timeout each) after 10 warm-up ones.
fn echo_run(port: u16, requests: u64) -> Result<EchoRun, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
    socket.connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 2048];
    let mut warm = 0;
    for _ in 0..50 {
        socket.send(ECHO_PAYLOAD).map_err(|e| e.to_string())?;
        if matches!(socket.recv(&mut reply), Ok(n) if &reply[..n] == ECHO_PAYLOAD) {
            warm += 1;
            if warm == 10 {
                break;
            }
        }
    }
    if warm < 10 {
        return Err(format!("the echo service answered only {warm} of the warm-up requests"));
    }
    let mut run = EchoRun { latencies_us: Vec::with_capacity(requests as usize), lost: 0, wall_s: 0.0 };
    let started = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        socket.send(ECHO_PAYLOAD).map_err(|e| e.to_string())?;
        match socket.recv(&mut reply) {
            Ok(n) if &reply[..n] == ECHO_PAYLOAD => run.latencies_us.push(sent.elapsed().as_secs_f64() * 1e6),
            _ => run.lost += 1,
        }
    }
    run.wall_s = started.elapsed().as_secs_f64();
    Ok(run)
}

/// Sends one datagram and returns the reply as text.
fn udp_query(port: u16, query: &[u8]) -> Result<String, String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 512];
    for _ in 0..5 {
        socket.send_to(query, ("127.0.0.1", port)).map_err(|e| e.to_string())?;
        if let Ok(n) = socket.recv(&mut reply) {
            return Ok(String::from_utf8_lossy(&reply[..n]).into_owned());
        }
    }
    Err(format!("no answer to {:?}", String::from_utf8_lossy(query)))
}

/// `name=value` out of a line of such pairs.
fn field(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

/// The word after `name` in a line of `name value` pairs.
fn after(line: &str, name: &str) -> Option<f64> {
    line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok()
}

/// The guest's clock in microseconds: the BCM2835 system timer's counter (CLO/CHI at
/// 0x2000_3004, BCM2835 ARM Peripherals section 12), read through QMP's `xp`. Under `-icount`
/// this is guest time; both OSes run from this counter, so the reading means the same for both.
fn guest_clock_us(qemu: &Qemu) -> Result<u64, String> {
    let reply = qemu
        .qmp(r#"{"execute":"human-monitor-command","arguments":{"command-line":"xp /2wx 0x20003004"}}"#)
        .map_err(|e| format!("QMP: {e}"))?;
    let words: Vec<u64> = reply
        .split(':')
        .nth(2)
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x").trim_end_matches(['\\', 'r', 'n', '"', '}']), 16).ok())
        .take(2)
        .collect();
    match words[..] {
        [low, high] => Ok(high << 32 | low),
        _ => Err(format!("cannot read the system timer: {reply}")),
    }
}

/// Mean of a list.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The Linux guest: Debian's rpi kernel with the busybox initramfs of `bench/linux`.
struct Linux {
    qemu: Qemu,
    port: u16,
    commands: u32,
    ready_uptime_s: f64,
}

impl Linux {
    fn boot(dir: &Path) -> Result<Linux, String> {
        for file in ["vmlinuz", "rpi-zero.dtb", "initrd.gz"] {
            if !dir.join(file).exists() {
                return Err(format!("{} is missing: run bench/linux/mkinitrd.sh", dir.join(file).display()));
            }
        }
        let port = free_port()?;
        let mut options = BootOptions::new("raspi0", dir.join("vmlinuz"));
        options.icount_shift = Some(0);
        options.extra_args = vec![
            "-dtb".into(),
            dir.join("rpi-zero.dtb").display().to_string(),
            "-initrd".into(),
            dir.join("initrd.gz").display().to_string(),
            "-append".into(),
            LINUX_APPEND.into(),
        ];
        options.extra_args.extend(net_args(port));
        let mut qemu = Qemu::boot(&options).map_err(|e| format!("cannot start QEMU: {e}"))?;
        let ready = qemu.wait_for_line("bench: ready uptime ", Duration::from_secs(300))?;
        let ready_uptime_s = ready.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
        Ok(Linux { qemu, port, commands: 0, ready_uptime_s })
    }

    /// Types `command` into the guest's shell and returns the lines it printed.
    fn run(&mut self, command: &str, timeout: Duration) -> Result<Vec<String>, String> {
        self.commands += 1;
        let id = self.commands;
        // The shell echoes what is typed; the marker is computed so only its output matches.
        let marker = format!("@@done-{}", id * 2);
        let start = self.qemu.output().len();
        self.qemu.send(&format!("{command}; echo @@done-$(({id}*2))\n")).map_err(|e| e.to_string())?;
        self.qemu.wait_for_line(&marker, timeout)?;
        let output = self.qemu.output();
        Ok(output[start..]
            .lines()
            .take_while(|l| !l.starts_with(&marker))
            .map(|l| l.trim_end().to_string())
            .collect())
    }

    /// The non-idle CPU time of the whole system from `/proc/stat`, in seconds (USER_HZ 100).
    fn busy_s(&mut self) -> Result<f64, String> {
        let lines = self.run("head -1 /proc/stat", Duration::from_secs(30))?;
        let line = lines.iter().find(|l| l.starts_with("cpu ")).ok_or("no cpu line in /proc/stat")?;
        let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        if ticks.len() < 7 {
            return Err(format!("short /proc/stat line {line:?}"));
        }
        // user nice system idle iowait irq softirq [steal ...]: busy = all but idle and iowait.
        let busy: f64 = ticks.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
        Ok(busy / 100.0)
    }

    /// Guest seconds since the kernel started (`/proc/uptime`).
    fn uptime_s(&mut self) -> Result<f64, String> {
        // The shell's `read` built-in: no process is started, so the reading costs little.
        let lines = self.run("read up idle < /proc/uptime; echo \"up $up\"", Duration::from_secs(30))?;
        lines
            .iter()
            .find_map(|l| l.strip_prefix("up ")?.trim().parse().ok())
            .ok_or_else(|| "no /proc/uptime line".to_string())
    }
}

/// Runs `md5 N RUNS` on the Linux guest for every N; one JSON point per N.
fn linux_md5(linux: &mut Linux, mode: Mode) -> Result<Value, String> {
    let runs = mode.runs();
    let mut points = Vec::new();
    for n in mode.md5_counts() {
        // About 2.4 us of guest time per hash under -icount shift=0; wall time is of that order.
        let timeout = Duration::from_secs(120 + n * runs / 20_000);
        let lines = linux.run(&format!("md5 {n} {runs}"), timeout)?;
        let results: Vec<&String> = lines.iter().filter(|l| l.starts_with("md5: n=")).collect();
        if results.len() as u64 != runs {
            return Err(format!("md5 {n} {runs}: expected {runs} result lines, got:\n{}", lines.join("\n")));
        }
        let mut cpu = Vec::new();
        let mut exec = Vec::new();
        for line in results {
            if !line.ends_with(&format!("digest={JON_MD5}")) {
                return Err(format!("wrong digest: {line}"));
            }
            cpu.push(field(line, "cpu_us").ok_or_else(|| format!("no cpu_us in {line}"))?);
            exec.push(field(line, "exec_us").ok_or_else(|| format!("no exec_us in {line}"))?);
        }
        eprintln!("bench: linux md5 N={n}: exec {:.0} us, cpu {:.0} us (mean of {runs})", mean(&exec), mean(&cpu));
        points.push(json!({"n": n, "cpu_us": cpu, "exec_us": exec, "mean_cpu_us": mean(&cpu), "mean_exec_us": mean(&exec)}));
    }
    Ok(json!({"status": "ok", "runs": runs, "points": points}))
}

/// The UDP echo benchmark against the Linux guest's C server.
fn linux_echo(linux: &mut Linux, requests: u64) -> Result<Value, String> {
    let busy0 = linux.busy_s()?;
    let up0 = linux.uptime_s()?;
    let stats0 = udp_query(linux.port, b"stats?")?;
    let clock0 = guest_clock_us(&linux.qemu)?;
    let run = echo_run(linux.port, requests)?;
    let clock1 = guest_clock_us(&linux.qemu)?;
    let stats1 = udp_query(linux.port, b"stats?")?;
    let up1 = linux.uptime_s()?;
    let busy1 = linux.busy_s()?;
    let served = field(&stats1, "served").unwrap_or(0.0) - field(&stats0, "served").unwrap_or(0.0);
    let server_cpu_us = field(&stats1, "cpu_us").unwrap_or(0.0) - field(&stats0, "cpu_us").unwrap_or(0.0);
    let answered = run.latencies_us.len() as f64;
    let mut value = run.to_json();
    value["status"] = json!("ok");
    value["served"] = json!(served);
    value["server_cpu_us_per_request"] = json!(server_cpu_us / served.max(1.0));
    value["guest_clock_us_per_round_trip"] = json!((clock1 - clock0) as f64 / answered.max(1.0));
    value["uptime_us_per_round_trip"] = json!((up1 - up0) * 1e6 / answered.max(1.0));
    // Whole-system CPU per request: the echo server's SCHED_IDLE meter counts only when nothing
    // else runs. Its rate with no traffic against its rate during a shorter second run gives
    // the CPU time the echoes took (interrupts, softirq, usbnet, the server, switches).
    let meter = udp_query(linux.port, b"spin!")?;
    if meter != "spin=on" {
        return Err(format!("the CPU meter did not start: {meter}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    let idle0 = udp_query(linux.port, b"stats?")?;
    std::thread::sleep(Duration::from_secs(2));
    let idle1 = udp_query(linux.port, b"stats?")?;
    let metered = (requests / 5).max(200);
    let _ = echo_run(linux.port, metered)?;
    let load1 = udp_query(linux.port, b"stats?")?;
    let delta = |a: &str, b: &str, name: &str| field(b, name).unwrap_or(0.0) - field(a, name).unwrap_or(0.0);
    let rate = delta(&idle0, &idle1, "spin") / delta(&idle0, &idle1, "mono_us").max(1.0);
    let window_us = delta(&idle1, &load1, "mono_us");
    let meter_us = delta(&idle1, &load1, "spin") / rate.max(f64::MIN_POSITIVE);
    let metered_served = delta(&idle1, &load1, "served");
    value["guest_us_per_request"] = json!((window_us - meter_us) / metered_served.max(1.0));
    value["guest_us_per_request_source"] = json!(format!(
        "whole-system CPU: idle-priority meter, {metered} requests after the latency run ({rate:.3} counts/us idle)"
    ));
    value["proc_stat_us_per_request"] = json!((busy1 - busy0) * 1e6 / answered.max(1.0));
    eprintln!("bench: linux echo: mean {:.0} us p99 {:.0} us, lost {}", run.mean(), run.percentile(99.0), run.lost);
    Ok(value)
}

/// Boots jos with the network and measures the platform figures and the echo service.
fn jos(kernel: &Path, requests: u64) -> Result<(Value, Value), String> {
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
    let ready_before_us = lines[ip_index..]
        .iter()
        .find(|l| l.starts_with("net: stats "))
        .and_then(|l| after(l, "at_us"));
    qemu.send("heap\r").map_err(|e| e.to_string())?;
    let heap = qemu.wait_for_line("heap: size ", Duration::from_secs(30))?;
    let heap_used = after(&format!("size {heap}"), "used");
    // The status panel's memory row also shows the DMA region in use (USB and network buffers).
    qemu.send("status\r").map_err(|e| e.to_string())?;
    let memory = qemu.wait_for_line("status: memory ", Duration::from_secs(30))?;
    let dma_kib = after(&memory, "dma");
    let elf_bytes = std::fs::metadata(kernel).map(|m| m.len()).map_err(|e| e.to_string())?;
    let boot_field = |name: &str| after(&boot, name);
    let platform = json!({
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
    });
    let mut echo = run.to_json();
    echo["status"] = json!("ok");
    echo["served_total"] = json!(echoes);
    echo["guest_us_per_request"] = json!(busy as f64 / echoes.max(1) as f64);
    echo["guest_us_per_request_source"] = json!("kernel busy_us (network polls that moved frames) over all echoes");
    echo["guest_clock_us_per_round_trip"] = json!((clock1 - clock0) as f64 / answered.max(1) as f64);
    eprintln!("bench: jos echo: mean {:.0} us p99 {:.0} us, lost {}", run.mean(), run.percentile(99.0), run.lost);
    qemu.kill();
    Ok((platform, echo))
}

/// Registers the plots' font; plotters' ab_glyph backend draws from these bytes only.
fn register_font() -> Result<(), String> {
    let bytes = std::fs::read(FONT).map_err(|e| format!("{FONT}: {e} (scripts/setup.sh installs fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{FONT}: not a usable font"))
}

/// `docs/img/md5.png`: mean time per run against N, log-log, one line per measured series.
fn plot_md5(path: &Path, series: &[(String, Vec<(f64, f64)>)], seed: &[(String, f64)]) -> Result<(), String> {
    let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max_n = series.iter().flat_map(|(_, p)| p.iter().map(|(n, _)| *n)).fold(10.0, f64::max).max(1e6);
    let all_y = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).chain(seed.iter().map(|(_, y)| *y));
    let (min_y, max_y) = all_y.fold((f64::MAX, 1.0f64), |(lo, hi), y| (lo.min(y.max(1e-3)), hi.max(y)));
    let mut chart = ChartBuilder::on(&root)
        .caption("MD5 of \"jon\" N times: time per run (QEMU raspi0, -icount shift=0)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1.0..max_n * 1.5).log_scale(), (min_y / 2.0..max_y * 2.0).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("N (hashes)")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { format!("{v}") })
        .y_desc("time per run (ms, guest time)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN, RGBColor(230, 130, 0)];
    for (index, (name, points)) in series.iter().enumerate() {
        let colour = colours[index % colours.len()];
        // CPU-time series are dashed with hollow marks, so they stay visible where they coincide
        // with the execution time of the same variant.
        if name.contains("CPU time") {
            chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 6, colour.stroke_width(2)))).map_err(|e| e.to_string())?;
        } else {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled()))).map_err(|e| e.to_string())?;
        }
    }
    for (index, (name, y)) in seed.iter().enumerate() {
        let colour = [BLACK, RGBColor(130, 130, 130)][index % 2];
        chart
            .draw_series(std::iter::once(TriangleMarker::new((1e6, *y), 8, colour.filled())))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Grouped bars on `area`: one group per name, one bar per kind (`values[name][kind]`).
fn bar_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    names: &[String],
    kinds: &[(&str, RGBColor)],
    values: &[Vec<f64>],
) -> Result<(), String> {
    let max_y = values.iter().flatten().copied().fold(f64::MIN_POSITIVE, f64::max);
    let count = names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..count, 0.0..max_y * 1.2)
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < names.len() {
                names[i].clone()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    let width = 0.7 / kinds.len() as f64;
    for (k, (label, colour)) in kinds.iter().enumerate() {
        let colour = *colour;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + 0.15 + k as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v[k])], colour.filled())
            }))
            .map_err(|e| format!("{e:?}"))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// `docs/img/echo.png`: left, the round trip from the host (mean, p50, p99, in ms) per variant;
/// right, the guest CPU time per request (µs).
fn plot_echo(path: &Path, names: &[String], round_trips_ms: &[Vec<f64>], cpu_us: &[Vec<f64>]) -> Result<(), String> {
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(800);
    bar_chart(
        &left,
        "UDP echo of \"Echo1\": round trip from the host (-icount shift=0)",
        "round trip (ms)",
        names,
        &[("mean", BLUE), ("p50", GREEN), ("p99", RED)],
        round_trips_ms,
    )?;
    bar_chart(&right, "Guest CPU time per request", "guest CPU per request (us)", names, &[("guest CPU", MAGENTA)], cpu_us)?;
    root.present().map_err(|e| e.to_string())
}

/// The phases of the offload plot: (label, key in `first_push_10k.mean`, key in `invoke_cached.mean`).
const OFFLOAD_PHASES: &[(&str, Option<&str>, &str)] = &[
    ("handshake", Some("handshake_us"), ""),
    ("transfer", Some("transfer_us"), ""),
    ("verify", Some("verify_us"), ""),
    ("queued", Some("job_queued_us"), "queued_us"),
    ("instantiate", Some("job_instantiate_us"), "instantiate_us"),
    ("run", Some("job_run_us"), "run_us"),
    ("result", Some("job_result_us"), "result_us"),
];

/// `docs/img/offload.png`: the device's guest time per phase (log scale, µs) of a first push of
/// a 10 KiB wasm module (with its first run) and of an invoke of the cached module, one bar per
/// phase and kind, each labelled with its value.
fn plot_offload(path: &Path, offload: &Value) -> Result<(), String> {
    let first = &offload["first_push_10k"]["mean"];
    let cached = &offload["invoke_cached"]["mean"];
    if offload["first_push_10k"]["status"] != "ok" || offload["invoke_cached"]["status"] != "ok" {
        return Ok(());
    }
    let kinds = [("first push of a 10 KiB wasm module, then its first run", BLUE), ("invoke of the cached module", RED)];
    let values: Vec<[Option<f64>; 2]> = OFFLOAD_PHASES
        .iter()
        .map(|(_, push_key, job_key)| {
            let push = push_key.and_then(|k| first[k].as_f64());
            let job = if job_key.is_empty() { None } else { cached[*job_key].as_f64() };
            [push, job]
        })
        .collect();
    let max = values.iter().flatten().flatten().copied().fold(1.0, f64::max);
    let root = BitMapBackend::new(path, (1100, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let count = OFFLOAD_PHASES.len();
    let mut chart = ChartBuilder::on(&root)
        .caption("Offload costs by phase: device guest time (-icount shift=0)", ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..count as f64, (1.0..max * 8.0).log_scale())
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 && i < count {
                OFFLOAD_PHASES[i].0.to_string()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| format!("{v:.0}"))
        .y_desc("guest time (us, log scale)")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (k, (label, colour)) in kinds.iter().enumerate() {
        let colour = *colour;
        let bars: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((i as f64 + 0.15 + k as f64 * 0.35, v[k]?.max(1.0))))
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x0, y)| Rectangle::new([(x0, 1.0), (x0 + 0.32, y)], colour.filled())))
            .map_err(|e| format!("{e:?}"))?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
        chart
            .draw_series(bars.iter().map(|&(x0, y)| {
                Text::new(format!("{y:.0}"), (x0 + 0.02, y * 1.25), ("sans-serif", 13).into_font().color(&BLACK))
            }))
            .map_err(|e| format!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    root.present().map_err(|e| e.to_string())
}

/// The seed's figures on a real Pi 1 B (a different machine: for reference only).
fn seed_reference() -> Value {
    json!({
        "machine": "Raspberry Pi 1 B, real hardware, direct cable (the seed's paper; not this emulated board)",
        "md5_n1e6": {"serverkernel_s": 7.025, "linux_cpu_s": 10.177, "linux_real_s": 18.065},
        "echo_1e5": {"serverkernel_s": 7.19, "serverkernel_us_per_request": 72, "linux_s": 62.83, "linux_us_per_request": 628},
    })
}

fn main() -> ExitCode {
    let settings = match parse_args() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jos-bench: {e}\nusage: jos-bench [--quick | --full] [--kernel ELF] [--linux DIR] [--json PATH] [--img DIR]\n       jos-bench --syscalls [--quick | --full] [--kernel ELF]\n       jos-bench --replot [--json PATH] [--img DIR]");
            return ExitCode::from(2);
        }
    };
    match bench(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jos-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(settings: &Settings) -> Result<(), String> {
    if settings.replot {
        let text = std::fs::read_to_string(&settings.json).map_err(|e| format!("{}: {e}", settings.json.display()))?;
        let results: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", settings.json.display()))?;
        return draw(settings, &results);
    }
    let mode = settings.mode;
    if !settings.kernel.exists() {
        return Err(format!("{} is missing: run `cargo xtask kernel`", settings.kernel.display()));
    }
    let qemu_version = std::process::Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
        .map_err(|e| format!("qemu-system-arm: {e}"))?;

    if settings.syscalls {
        let device = offload::Device::boot(&settings.kernel)?;
        let syscalls = offload::syscalls(&device, mode.runs())?;
        let md5 = offload::native_md5_cpu(&device, mode.runs())?;
        println!("| kernel | input_len (null) | output_write 64 B | udp_recv, nothing waiting | native MD5 N=10^5 CPU |");
        println!("|---|---|---|---|---|");
        let calls = &syscalls["calls"];
        let per_call = |name: &str| calls[name]["per_call_instructions"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} ms |",
            settings.kernel.display(),
            per_call("input_len"),
            per_call("output_write_64"),
            per_call("udp_recv_empty"),
            md5 / 1000.0
        );
        return Ok(());
    }
    eprintln!("bench: jos (platform figures, echo x{})", mode.echoes());
    let (mut platform, jos_echo) = jos(&settings.kernel, mode.echoes())?;

    eprintln!("bench: jos with the offload service (md5 native and wasm, push/invoke costs, heap per job)");
    let device = offload::Device::boot(&settings.kernel)?;
    let (jos_native, jos_wasm) = offload::md5(&device, mode)?;
    let (first_push, invoke_cached) = offload::costs(&device, mode.runs())?;
    let heap_job = offload::heap_per_wasm_job(&device)?;
    let syscalls = offload::syscalls(&device, mode.runs())?;
    eprintln!("bench: jos offloaded echo job x{}", mode.echoes());
    let echo_job = offload::echo_job(&device, mode.echoes())?;
    platform["heap_per_wasm_job_bytes"] = heap_job["bytes"].clone();
    platform["heap_per_wasm_job"] = heap_job;
    drop(device);

    eprintln!("bench: booting the Linux guest");
    let mut linux = Linux::boot(&settings.linux)?;
    let linux_md5 = linux_md5(&mut linux, mode)?;
    let linux_echo = linux_echo(&mut linux, mode.echoes())?;
    let linux_platform = json!({
        "status": "ok",
        "ready_uptime_s": linux.ready_uptime_s,
        "ready_source": "/proc/uptime when init has usb0 up and the echo server started",
        "vmlinuz_bytes": std::fs::metadata(settings.linux.join("vmlinuz")).map(|m| m.len()).ok(),
        "initrd_bytes": std::fs::metadata(settings.linux.join("initrd.gz")).map(|m| m.len()).ok(),
    });
    linux.qemu.kill();

    let results = json!({
        "schema": 1,
        "mode": mode.name(),
        "qemu": qemu_version,
        "machine": "raspi0",
        "icount_shift": 0,
        "compute": {
            "what": "MD5 of the 3-byte string \"jon\", computed N times per run",
            "ns": mode.md5_counts(),
            "variants": {"linux_c": linux_md5, "jos_native": jos_native, "jos_wasm": jos_wasm},
        },
        "echo": {
            "payload": "Echo1",
            "requests": mode.echoes(),
            "variants": {"jos_service": jos_echo, "linux_c": linux_echo, "jos_offloaded": echo_job},
        },
        "offload": {"first_push_10k": first_push, "invoke_cached": invoke_cached, "native_syscalls": syscalls},
        "platform": {"jos": platform, "linux": linux_platform},
        "seed_real_hardware": seed_reference(),
    });
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&settings.json, text + "\n").map_err(|e| format!("{}: {e}", settings.json.display()))?;
    eprintln!("bench: wrote {}", settings.json.display());
    draw(settings, &results)
}

/// Draws the plots from `results` and prints the tables.
fn draw(settings: &Settings, results: &Value) -> Result<(), String> {
    std::fs::create_dir_all(&settings.img).map_err(|e| format!("{}: {e}", settings.img.display()))?;
    register_font()?;
    let mut md5_series = Vec::new();
    let points = |variant: &str, key: &str| -> Vec<(f64, f64)> {
        results["compute"]["variants"][variant]["points"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["n"].as_f64()?, p[key].as_f64()? / 1000.0)))
            .collect()
    };
    md5_series.push(("Linux C, execution time".to_string(), points("linux_c", "mean_exec_us")));
    md5_series.push(("Linux C, CPU time".to_string(), points("linux_c", "mean_cpu_us")));
    for (variant, name) in [("jos_native", "jos native blob"), ("jos_wasm", "jos wasm")] {
        let exec = points(variant, "mean_exec_us");
        if !exec.is_empty() {
            md5_series.push((format!("{name}, execution time"), exec));
        }
        let cpu = points(variant, "mean_cpu_us");
        if !cpu.is_empty() {
            md5_series.push((format!("{name}, CPU time"), cpu));
        }
    }
    let seed = [
        ("seed, real Pi 1 B: serverkernel (other machine)".to_string(), 7025.0),
        ("seed, real Pi 1 B: Linux real time (other machine)".to_string(), 18065.0),
    ];
    plot_md5(&settings.img.join("md5.png"), &md5_series, &seed)?;
    let echo = &results["echo"]["variants"];
    let mut names = vec!["jos echo service".to_string(), "Linux C echo server".to_string()];
    let mut keys = vec!["jos_service", "linux_c"];
    if echo["jos_offloaded"]["status"] == "ok" {
        names.push("jos echo job (wasm)".to_string());
        keys.push("jos_offloaded");
    }
    let ms = |v: &Value, key: &str| v[key].as_f64().unwrap_or(0.0) / 1000.0;
    let round_trips: Vec<Vec<f64>> =
        keys.iter().map(|k| vec![ms(&echo[k], "mean_us"), ms(&echo[k], "p50_us"), ms(&echo[k], "p99_us")]).collect();
    let cpu: Vec<Vec<f64>> = keys.iter().map(|k| vec![echo[k]["guest_us_per_request"].as_f64().unwrap_or(0.0)]).collect();
    plot_echo(&settings.img.join("echo.png"), &names, &round_trips, &cpu)?;
    plot_offload(&settings.img.join("offload.png"), &results["offload"])?;
    eprintln!("bench: wrote {}/md5.png, echo.png and offload.png", settings.img.display());
    print_tables(results);
    Ok(())
}

/// Prints the results as the Markdown tables of docs/benchmarks.md.
fn print_tables(results: &Value) {
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "n/a".into());
    let variants = &results["compute"]["variants"];
    let at = |variant: &str, n: &Value, key: &str| -> Option<f64> {
        variants[variant]["points"].as_array()?.iter().find(|p| &p["n"] == n)?[key].as_f64()
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    let time = |v: Option<f64>| match v {
        Some(us) if us < 1000.0 => format!("{us:.0} µs"),
        Some(us) if us < 1e6 => format!("{:.2} ms", us / 1e3),
        Some(us) => format!("{:.3} s", us / 1e6),
        None => "n/a".into(),
    };
    println!("| N | Linux exec | Linux CPU | jos native exec | jos native CPU | jos wasm exec | jos wasm CPU | jos native / Linux (exec) | wasm / native (exec) | wasm / native (CPU) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for point in variants["linux_c"]["points"].as_array().into_iter().flatten() {
        let n = &point["n"];
        let (native, native_cpu) = (at("jos_native", n, "mean_exec_us"), at("jos_native", n, "mean_cpu_us"));
        let (wasm, wasm_cpu) = (at("jos_wasm", n, "mean_exec_us"), at("jos_wasm", n, "mean_cpu_us"));
        let linux = point["mean_exec_us"].as_f64();
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            time(linux),
            time(point["mean_cpu_us"].as_f64()),
            time(native),
            time(native_cpu),
            time(wasm),
            time(wasm_cpu),
            ratio(native, linux),
            ratio(wasm, native),
            ratio(wasm_cpu, native_cpu)
        );
    }
    println!();
    let first = &results["offload"]["first_push_10k"];
    let cached = &results["offload"]["invoke_cached"];
    let spread = |runs: &Value, key: &str| -> String {
        let values: Vec<f64> = runs.as_array().into_iter().flatten().filter_map(|r| r[key].as_f64()).collect();
        if values.is_empty() {
            return "n/a".into();
        }
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        format!("{} ({}-{})", time(Some(mean(&values))), time(Some(lo)), time(Some(hi)))
    };
    println!("| phase (device guest time) | first push of a 10 KiB wasm module: mean (min-max) | invoke of the cached module: mean (min-max) |");
    println!("|---|---|---|");
    for (label, push_key, job_key) in OFFLOAD_PHASES {
        let push = push_key.map_or("n/a".into(), |k| spread(&first["runs"], k));
        let job = if job_key.is_empty() { "n/a".into() } else { spread(&cached["runs"], job_key) };
        println!("| {label} | {push} | {job} |");
    }
    println!("| Hello to PushOk (session_us) | {} | |", spread(&first["runs"], "session_us"));
    println!("| Invoke to JobResult (total_us) | {} | {} |", spread(&first["runs"], "job_total_us"), spread(&cached["runs"], "total_us"));
    println!();
    println!("| variant | answered | lost | mean (us) | p50 (us) | p99 (us) | p99.9 (us) | max (us) | guest clock per round trip (us) | guest CPU per request (us) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in ["jos_service", "linux_c", "jos_offloaded"] {
        let v = &results["echo"]["variants"][name];
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["answered"], v["lost"], f(&v["mean_us"]), f(&v["p50_us"]), f(&v["p99_us"]), f(&v["p999_us"]),
            f(&v["max_us"]), f(&v["guest_clock_us_per_round_trip"]), f(&v["guest_us_per_request"])
        );
    }
    println!("linux echo server process CPU per request: {} us", f(&results["echo"]["variants"]["linux_c"]["server_cpu_us_per_request"]));
    let job = &results["echo"]["variants"]["jos_offloaded"];
    println!(
        "jos echo job guest CPU per request: {} us = job {} us (cpu_us above its idle rate {}) + network manager {} us",
        f(&job["guest_us_per_request"]),
        f(&job["job_cpu_us_per_request"]),
        job["job_idle_cpu_rate"].as_f64().map(|r| format!("{r:.4}")).unwrap_or_else(|| "n/a".into()),
        f(&job["network_busy_us_per_request"])
    );
    println!();
    println!("platform: {}", results["platform"]);
}

//! The seed's experiments on the emulated board, jos next to Linux (docs/benchmarks.md): boots
//! jos and Debian's Pi Zero/1 Linux kernel on QEMU raspi0 under `-icount shift=0` (guest time
//! follows the instruction count, so figures repeat), runs the MD5 compute benchmark and the UDP
//! echo benchmark against both, reads jos's platform figures, and writes `bench-results.json`
//! and PNG plots.
//!
//! ```text
//! jos-bench [--quick | --full] [--kernel ELF] [--linux DIR] [--json PATH] [--img DIR]
//! jos-bench --syscalls [--quick | --full] [--kernel ELF]
//! jos-bench --echo [--quick | --full] [--kernel ELF] [--linux DIR]
//! jos-bench --fleet [--quick | --full] [--kernel ELF]
//! jos-bench --md5 [--quick | --full] [--kernel ELF]
//! jos-bench --replot [--json PATH] [--img DIR]
//! ```
//! One file per concern: `echo.rs` (the host side of the network: echo runs, queries, the guest
//! clock), `jos.rs` (jos's platform figures and echo service), `linux.rs` (the Linux baseline),
//! `offload.rs` (the variants through the offload service), `results.rs` (the JSON file's serde
//! types), `plots.rs` and `tables.rs` (what is drawn and printed from the results).
//! `--replot` measures nothing: it redraws the plots and reprints the tables from the JSON.
//! `--syscalls` measures only the native system-call costs and native MD5 at N = 10^5 and N = 1
//! (a job's fixed start cost) on the given kernel and prints one table row (for before/after
//! comparisons of two kernels); `--echo` only the three echo variants, with their marginal CPU
//! per request (the slope over a run of a fifth of the echoes and one of all of them); `--fleet`
//! only the fleet figures (`fleet.rs`: jobs per second through Mosquitto for 1-3 devices, guest
//! CPU per job against a direct push); `--md5` only jos's MD5 series (native, wasm, AOT).
//! `--quick` (the test command's mode) stops MD5 at N = 100 and sends 200 echoes; the default
//! goes to N = 10^5 with 3 runs and 10^4 echoes; `--full` to N = 10^6 with 10 runs and 10^5
//! echoes. The Linux guest comes from `bench/linux/mkinitrd.sh` (kernel, device tree and
//! initramfs in `build/linux/`). The jos MD5 variants (native blob and wasm), the push/invoke
//! costs by phase and the heap per running wasm job go through the kernel's offload service on a
//! second jos boot with a configuration (`offload.rs`).

mod echo;
mod fleet;
mod jos;
mod linux;
mod offload;
mod plots;
mod results;
mod tables;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use jos_tests::build_dir;
use serde_json::{json, Map, Value};

use crate::results::{Compute, ComputeVariants, Echo, EchoVariants, Engines, Offload, Platforms, Results, SCHEMA};

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
pub enum Mode {
    /// N up to 100, 200 echoes (the test command's mode).
    Quick,
    /// N up to 10^5 with 3 runs, 10^4 echoes.
    Standard,
    /// N up to 10^6 with 10 runs, 10^5 echoes.
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
    /// MD5 repetitions of the wasm3 comparison (`offload::peer_modules`, `linux::linux_wasm3`).
    fn peer_n(self) -> u64 {
        match self {
            Mode::Quick => 100,
            _ => 10_000,
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

/// The seed's experiments on the emulated board, jos next to Linux: writes bench-results.json and
/// the plots in docs/img.
#[derive(Debug, Parser)]
#[command(name = "jos-bench")]
struct Settings {
    /// Stop MD5 at N = 100 and send 200 echoes (the test command's mode).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Go to N = 10^6 with 10 runs and 10^5 echoes.
    #[arg(long)]
    full: bool,
    /// Measure nothing: redraw the plots and reprint the tables from the JSON.
    #[arg(long, conflicts_with_all = ["quick", "full"])]
    replot: bool,
    /// The jos kernel ELF [default: build/jos-kernel.elf].
    #[arg(long, value_name = "ELF")]
    kernel: Option<PathBuf>,
    /// The Linux guest's folder (bench/linux/mkinitrd.sh) [default: build/linux].
    #[arg(long, value_name = "DIR")]
    linux: Option<PathBuf>,
    /// The results file [default: bench-results.json in the repository].
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Where the plots go [default: docs/img in the repository].
    #[arg(long, value_name = "DIR")]
    img: Option<PathBuf>,
    /// Only the three echo variants (the kernel's service, the offloaded job, the Linux server):
    /// their figures and marginal costs printed, no results file.
    #[arg(long, conflicts_with_all = ["replot", "syscalls"])]
    echo: bool,
    /// Only the native system-call costs and native MD5 at N = 10^5 (before/after comparisons
    /// of two kernels): one table row, no results file.
    #[arg(long, conflicts_with = "replot")]
    syscalls: bool,
    /// Only the fleet figures (`fleet.rs`): jobs per second through an MQTT 5 broker for 1, 2
    /// and 3 devices (wasm MD5, N = 10^4), the scaling ratio, and the device's guest CPU per job
    /// against a direct push; printed as JSON, no results file.
    #[arg(long, conflicts_with_all = ["replot", "syscalls", "echo"])]
    fleet: bool,
    /// Only jos's MD5 series (native blob, wasm, AOT) through the offload service: printed, no
    /// results file.
    #[arg(long, conflicts_with_all = ["replot", "syscalls", "echo", "fleet"])]
    md5: bool,
}

impl Settings {
    fn mode(&self) -> Mode {
        match (self.quick, self.full) {
            (true, _) => Mode::Quick,
            (_, true) => Mode::Full,
            _ => Mode::Standard,
        }
    }
    fn kernel(&self) -> PathBuf {
        self.kernel.clone().unwrap_or_else(|| build_dir().join("jos-kernel.elf"))
    }
    fn linux(&self) -> PathBuf {
        self.linux.clone().unwrap_or_else(|| build_dir().join("linux"))
    }
    fn json(&self) -> PathBuf {
        self.json.clone().unwrap_or_else(|| repo_root().join("bench-results.json"))
    }
    fn img(&self) -> PathBuf {
        self.img.clone().unwrap_or_else(|| repo_root().join("docs/img"))
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A JSON object literal as a map (the descriptive fields of a result).
pub fn json_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// How the wasm3 peer is built and run (the JSON's `engines.wasm3_source`).
const WASM3_SOURCE: &str = "wasm3 0.4.7 from the wasm3-sys 0.3.0 crate's C sources with bench/wasm3/wasm3-md5.c, arm-linux-gnueabi-gcc -static -O3 -mcpu=arm1176jzf-s -mfloat-abi=soft -Dd_m3LogOutput=0 -DNDEBUG (bench/linux/mkinitrd.sh), run in the Linux guest; CPU time getrusage and execution time CLOCK_MONOTONIC around the call of run (module loaded and its functions compiled by an untimed call with N = 1 first)";

/// sha256 and imagefilter (guest-examples/c) as wasm, native blob and AOT blob on the same input:
/// sha256 of 32,000 pseudo-random bytes (checked against the host's digest), imagefilter of a
/// 96 x 96 PPM picture (the three outputs must be the same bytes).
fn guest_examples(device: &offload::Device, runs: u64) -> Result<Vec<results::GuestFormats>, String> {
    let mut state = 0x2545_f491u32;
    let mut bytes = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    };
    let data = bytes(32_000);
    let digest: String = jos_abi::signature::sha256(&data).iter().map(|b| format!("{b:02x}")).collect();
    let expected = format!("{digest}\n").into_bytes();
    let sha256 = offload::guest_formats(device, "sha256", &data, Some(&expected), runs)?;
    let mut picture = b"P6\n96 96\n255\n".to_vec();
    picture.extend(bytes(96 * 96 * 3));
    let image = offload::guest_formats(device, "imagefilter", &picture, None, runs)?;
    Ok(vec![sha256, image])
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
    match bench(&Settings::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jos-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(settings: &Settings) -> Result<(), String> {
    let json_path = settings.json();
    if settings.replot {
        let text = std::fs::read_to_string(&json_path).map_err(|e| format!("{}: {e}", json_path.display()))?;
        let results: Results = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", json_path.display()))?;
        if results.schema != SCHEMA {
            return Err(format!("{}: schema {} (this jos-bench reads {SCHEMA})", json_path.display(), results.schema));
        }
        return draw(settings, &results);
    }
    let (mode, kernel, linux_dir) = (settings.mode(), settings.kernel(), settings.linux());
    if !kernel.exists() {
        return Err(format!("{} is missing: run `cargo xtask kernel`", kernel.display()));
    }
    let qemu_version = std::process::Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_string())
        .map_err(|e| format!("qemu-system-arm: {e}"))?;

    if settings.syscalls {
        let device = offload::Device::boot(&kernel)?;
        let syscalls = offload::syscalls(&device, mode.runs())?;
        let md5 = offload::native_md5_cpu(&device, mode.runs(), 100_000)?;
        let md5_one = offload::native_md5_cpu(&device, mode.runs(), 1)?;
        for line in device.qemu.output().lines().filter(|l| l.contains("(TEMP)")) {
            eprintln!("{line}");
        }
        println!(
            "| kernel | input_len (null) | output_write 64 B | udp_recv, nothing waiting | native MD5 N=10^5 CPU | native MD5 N=1 CPU |"
        );
        println!("|---|---|---|---|---|---|");
        let calls = &syscalls["calls"];
        let per_call = |name: &str| calls[name]["per_call_instructions"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.2} ms | {:.1} µs |",
            kernel.display(),
            per_call("input_len"),
            per_call("output_write_64"),
            per_call("udp_recv_empty"),
            md5 / 1000.0,
            md5_one
        );
        return Ok(());
    }
    if settings.fleet {
        let (jobs, direct_runs) = match mode {
            Mode::Quick => (6, 2),
            Mode::Standard => (30, 5),
            Mode::Full => (90, 10),
        };
        let figures = fleet::fleet(&kernel, jobs, 10_000, direct_runs)?;
        println!("{}", serde_json::to_string_pretty(&figures).map_err(|e| e.to_string())?);
        return Ok(());
    }
    if settings.md5 {
        let device = offload::Device::boot(&kernel)?;
        let md5 = offload::md5(&device, mode)?;
        drop(device);
        let variants = json!({
            "jos_native": md5.native,
            "jos_wasm": md5.wasm,
            "jos_aot": md5.aot,
            "jos_aot_unrolled": md5.aot_unrolled,
        });
        let view = json!({ "compute": { "variants": variants } });
        println!("kernel {}", kernel.display());
        tables::print_aot(&view);
        return Ok(());
    }
    if settings.echo {
        let (_, jos_service) = jos::jos(&kernel, mode.echoes())?;
        let device = offload::Device::boot(&kernel)?;
        let jos_offloaded = offload::echo_job(&device, mode.echoes())?;
        drop(device);
        let mut linux = linux::Linux::boot(&linux_dir)?;
        let linux_c = linux::linux_echo(&mut linux, mode.echoes())?;
        linux.qemu.kill();
        let echo = Echo {
            payload: "Echo1".into(),
            requests: mode.echoes(),
            variants: EchoVariants { jos_service, linux_c, jos_offloaded },
        };
        let view = json!({ "echo": serde_json::to_value(&echo).map_err(|e| e.to_string())? });
        println!("kernel {}", kernel.display());
        tables::print_marginal(&view);
        return Ok(());
    }
    eprintln!("bench: jos (platform figures, echo x{})", mode.echoes());
    let (mut platform, jos_echo) = jos::jos(&kernel, mode.echoes())?;

    eprintln!("bench: jos with the offload service (md5 native, wasm and AOT, push/invoke costs, heap per job)");
    let device = offload::Device::boot(&kernel)?;
    let md5 = offload::md5(&device, mode)?;
    eprintln!("bench: jos: the wasm3 comparison's modules (wasmi, AOT), sha256 and imagefilter as wasm, native, AOT");
    let mut peers = offload::peer_modules(&device, &linux_dir.join("wasm3"), mode.peer_n(), mode.runs())?;
    let guests = guest_examples(&device, mode.runs())?;
    let (first_push, invoke_cached) = offload::costs(&device, mode.runs())?;
    let heap_job = offload::heap_per_wasm_job(&device)?;
    let native_syscalls = offload::syscalls(&device, mode.runs())?;
    eprintln!("bench: jos offloaded echo job x{}", mode.echoes());
    let echo_job = offload::echo_job(&device, mode.echoes())?;
    platform.insert("heap_per_wasm_job_bytes".into(), heap_job["bytes"].clone());
    platform.insert("heap_per_wasm_job".into(), heap_job);
    drop(device);

    eprintln!("bench: booting the Linux guest");
    let mut linux = linux::Linux::boot(&linux_dir)?;
    let linux_md5 = linux::linux_md5(&mut linux, mode)?;
    for peer in &mut peers {
        peer.wasm3 = Some(linux::linux_wasm3(&mut linux, &format!("md5-{}", peer.module), peer.n, mode.runs())?);
    }
    let linux_echo = linux::linux_echo(&mut linux, mode.echoes())?;
    let linux_platform = json_object(json!({
        "status": "ok",
        "ready_uptime_s": linux.ready_uptime_s,
        "ready_source": "/proc/uptime when init has usb0 up and the echo server started",
        "vmlinuz_bytes": std::fs::metadata(linux_dir.join("vmlinuz")).map(|m| m.len()).ok(),
        "initrd_bytes": std::fs::metadata(linux_dir.join("initrd.gz")).map(|m| m.len()).ok(),
    }));
    linux.qemu.kill();

    let results = Results {
        schema: SCHEMA,
        mode: mode.name().into(),
        qemu: qemu_version,
        machine: "raspi0".into(),
        icount_shift: 0,
        compute: Compute {
            what: "MD5 of the 3-byte string \"jon\", computed N times per run".into(),
            ns: mode.md5_counts(),
            variants: ComputeVariants {
                linux_c: linux_md5,
                jos_native: md5.native,
                jos_wasm: md5.wasm,
                jos_aot: Some(md5.aot),
                jos_aot_unrolled: Some(md5.aot_unrolled),
            },
        },
        echo: Echo {
            payload: "Echo1".into(),
            requests: mode.echoes(),
            variants: EchoVariants { jos_service: jos_echo, linux_c: linux_echo, jos_offloaded: echo_job },
        },
        offload: Offload { first_push_10k: first_push, invoke_cached, native_syscalls: Some(native_syscalls) },
        platform: Platforms { jos: platform, linux: linux_platform },
        seed_real_hardware: seed_reference(),
        engines: Some(Engines { peers, guests, wasm3_source: WASM3_SOURCE.into() }),
    };
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!("bench: wrote {}", json_path.display());
    draw(settings, &results)
}

/// Draws the plots from `results` and prints the tables.
fn draw(settings: &Settings, results: &Results) -> Result<(), String> {
    let img = settings.img();
    std::fs::create_dir_all(&img).map_err(|e| format!("{}: {e}", img.display()))?;
    plots::register_font()?;
    let mut md5_series = Vec::new();
    let variants = &results.compute.variants;
    let points = |series: &results::Md5Series, exec: bool| -> Vec<(f64, f64)> {
        let value = |p: &results::Md5Point| if exec { p.mean_exec_us } else { p.mean_cpu_us };
        series.points.iter().map(|p| (p.n as f64, value(p) / 1000.0)).collect()
    };
    md5_series.push(("Linux C, execution time".to_string(), points(&variants.linux_c, true)));
    md5_series.push(("Linux C, CPU time".to_string(), points(&variants.linux_c, false)));
    let mut shown = vec![(&variants.jos_native, "jos native blob"), (&variants.jos_wasm, "jos wasm")];
    if let Some(aot) = &variants.jos_aot {
        shown.push((aot, "jos AOT (-O2 wasm)"));
    }
    if let Some(aot) = &variants.jos_aot_unrolled {
        shown.push((aot, "jos AOT (jos-cli: -O3 unrolled wasm)"));
    }
    for (series, name) in shown {
        let exec = points(series, true);
        if !exec.is_empty() {
            md5_series.push((format!("{name}, execution time"), exec));
        }
        let cpu = points(series, false);
        if !cpu.is_empty() {
            md5_series.push((format!("{name}, CPU time"), cpu));
        }
    }
    // wasm3 (the Linux guest) at the comparison's N, CPU time, one point per module.
    for peer in results.engines.iter().flat_map(|e| &e.peers) {
        if let Some(wasm3) = &peer.wasm3 {
            let label = format!("wasm3, {} module (no bulk memory), CPU time", peer.module);
            md5_series.push((label, vec![(peer.n as f64, wasm3.mean_cpu_us / 1000.0)]));
        }
    }
    let seed = [
        ("seed, real Pi 1 B: serverkernel (other machine)".to_string(), 7025.0),
        ("seed, real Pi 1 B: Linux real time (other machine)".to_string(), 18065.0),
    ];
    plots::plot_md5(&img.join("md5.png"), &md5_series, &seed)?;
    let echo = &results.echo.variants;
    let mut names = vec!["jos echo service".to_string(), "Linux C echo server".to_string()];
    let mut shown = vec![&echo.jos_service, &echo.linux_c];
    if echo.jos_offloaded.status == "ok" {
        names.push("jos echo job (wasm)".to_string());
        shown.push(&echo.jos_offloaded);
    }
    let ms = |value: Option<f64>| value.unwrap_or(0.0) / 1000.0;
    let round_trips: Vec<Vec<f64>> =
        shown.iter().map(|v| vec![ms(v.latencies.mean_us), ms(v.latencies.p50_us), ms(v.latencies.p99_us)]).collect();
    let cpu: Vec<Vec<f64>> = shown.iter().map(|v| vec![v.guest_us_per_request.unwrap_or(0.0)]).collect();
    plots::plot_echo(&img.join("echo.png"), &names, &round_trips, &cpu)?;
    // The offload plot and the tables read the results through their JSON view.
    let view = serde_json::to_value(results).map_err(|e| e.to_string())?;
    plots::plot_offload(&img.join("offload.png"), &view["offload"])?;
    eprintln!("bench: wrote {}/md5.png, echo.png and offload.png", img.display());
    tables::print_tables(&view);
    Ok(())
}

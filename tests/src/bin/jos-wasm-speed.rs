//! jos-wasm-speed: wasm against the native blob on the board, in guest time. Builds
//! guest-examples/c/md5.c with jos-cli as a wasm module and as a native blob (or takes prebuilt
//! ones), boots the kernel on QEMU (`jos-cli emu start --icount`: `-icount shift=0`, so guest time
//! counts instructions), pushes both with N = 10^4 and 10^5 (or `--n`), and prints each job's
//! `time_us` (start to result on the device), `cpu_us` when the device reports it (time the job
//! held the CPU), fuel, and the wasm/native ratios. docs/runtime.md ("wasm speed on the board")
//! records what it measured; docs/benchmarks.md ("wasmi dispatch modes") what it measured with
//! `--kernel build/jos-kernel-wasm-MODE.elf` (`cargo xtask kernel --wasm-dispatch MODE`).
//!
//! ```text
//! cargo xtask kernel && cargo build --release -p jos-cli -p jos-tests --bin jos-wasm-speed
//! target/release/jos-wasm-speed [--n 10000,100000] [--runs 3] [--kernel ELF] [--cli PATH]
//!                               [--wasm FILE] [--native FILE] [--machine raspi1ap|raspi0]
//! ```
//!
//! Everything runs under a temporary `JOS_HOME`; the emulator is stopped on every path.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use jos_tests::build_dir;
use serde_json::Value;

/// wasm against the native blob on the emulated board, in guest time: MD5 of "jon" N times,
/// pushed as both through `jos-cli emu start --icount`.
#[derive(Debug, Parser)]
#[command(name = "jos-wasm-speed")]
struct Settings {
    /// The MD5 repetition counts N, comma-separated.
    #[arg(long = "n", value_name = "N,N..", value_delimiter = ',', default_values_t = [10_000u64, 100_000])]
    counts: Vec<u64>,
    /// Runs per N (the median is reported).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The kernel ELF [default: build/jos-kernel.elf].
    #[arg(long, value_name = "ELF")]
    kernel: Option<PathBuf>,
    /// The jos-cli binary [default: jos-cli next to this program].
    #[arg(long, value_name = "PATH")]
    cli: Option<PathBuf>,
    /// A prebuilt md5 wasm module instead of building guest-examples/c/md5.c.
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// A prebuilt md5 native blob instead of building guest-examples/c/md5.c.
    #[arg(long, value_name = "FILE")]
    native: Option<PathBuf>,
    /// The emulated board.
    #[arg(long, default_value = "raspi1ap", value_parser = ["raspi1ap", "raspi0"])]
    machine: String,
}

impl Settings {
    fn kernel(&self) -> PathBuf {
        self.kernel.clone().unwrap_or_else(|| build_dir().join("jos-kernel.elf"))
    }

    fn cli(&self) -> Result<PathBuf, String> {
        match &self.cli {
            Some(path) => Ok(path.clone()),
            None => Ok(std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("jos-cli")),
        }
    }
}

/// The emulated device under a temporary `JOS_HOME`, stopped when dropped.
struct Emu {
    cli: PathBuf,
    home: PathBuf,
}

impl Emu {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.cli);
        command.env("JOS_HOME", &self.home);
        command
    }

    /// Runs jos-cli with `args`; its stdout, or an error with its stderr.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self.command().args(args).output().map_err(|e| format!("start {}: {e}", self.cli.display()))?;
        if !output.status.success() {
            return Err(format!(
                "jos-cli {} failed ({}): {}{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Emu {
    fn drop(&mut self) {
        let _ = self.command().args(["emu", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// One job's figures.
struct Job {
    time_us: u64,
    cpu_us: Option<u64>,
    fuel: u64,
    output: String,
}

fn push(emu: &Emu, file: &Path, input: &Path) -> Result<Job, String> {
    let text = emu.run(&["push", &file.to_string_lossy(), "--input", &input.to_string_lossy(), "--json"])?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("push printed no JSON ({e}): {text}"))?;
    if json["status"] != "ok" {
        return Err(format!("{} ended {}: {text}", file.display(), json["status"]));
    }
    let stats = &json["stats"];
    let time_us = stats["time_us"].as_u64().ok_or_else(|| format!("no stats.time_us: {text}"))?;
    let output = json["output"].as_str().unwrap_or_default().trim().to_string();
    if output.len() != 32 || !output.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{} printed {output:?}, not an MD5 digest", file.display()));
    }
    Ok(Job { time_us, cpu_us: stats["cpu_us"].as_u64(), fuel: stats["fuel_used"].as_u64().unwrap_or(0), output })
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Runs a variant `runs` times (the first push also sends and, for wasm, translates the module).
fn measure(emu: &Emu, file: &Path, input: &Path, runs: usize) -> Result<(u64, Option<u64>, u64, String), String> {
    let mut times = Vec::new();
    let mut cpus = Vec::new();
    let mut fuel = 0;
    let mut output = String::new();
    for _ in 0..runs {
        let job = push(emu, file, input)?;
        if !output.is_empty() && job.output != output {
            return Err(format!("{} gave two digests: {output} and {}", file.display(), job.output));
        }
        times.push(job.time_us);
        cpus.extend(job.cpu_us);
        fuel = job.fuel;
        output = job.output;
    }
    let cpu = if cpus.len() == times.len() { Some(median(&mut cpus)) } else { None };
    Ok((median(&mut times), cpu, fuel, output))
}

fn main() -> ExitCode {
    match speed(&Settings::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("jos-wasm-speed: {error}");
            ExitCode::FAILURE
        }
    }
}

fn speed(settings: &Settings) -> Result<(), String> {
    let (cli, kernel) = (settings.cli()?, settings.kernel());
    if !cli.exists() {
        return Err(format!("{} not found: cargo build --release -p jos-cli (or pass --cli)", cli.display()));
    }
    if !kernel.exists() {
        return Err(format!("{} not found: cargo xtask kernel (or pass --kernel)", kernel.display()));
    }
    let home = std::env::temp_dir().join(format!("jos-wasm-speed-{}", std::process::id()));
    std::fs::create_dir_all(&home).map_err(|e| format!("create {}: {e}", home.display()))?;
    let emu = Emu { cli, home: home.clone() };
    emu.run(&["keygen"])?;

    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/md5.c");
    let source = source.to_string_lossy();
    let wasm = match &settings.wasm {
        Some(path) => path.clone(),
        None => {
            let path = home.join("md5.wasm");
            emu.run(&["build", &source, "--format", "wasm", "-o", &path.to_string_lossy()])?;
            path
        }
    };
    let native = match &settings.native {
        Some(path) => path.clone(),
        None => {
            let path = home.join("md5.blob");
            emu.run(&["build", &source, "--format", "native", "-o", &path.to_string_lossy()])?;
            path
        }
    };

    eprintln!("jos-wasm-speed: booting {} on {} with -icount shift=0", kernel.display(), settings.machine);
    emu.run(&["emu", "start", "--machine", &settings.machine, "--icount", "--kernel", &kernel.to_string_lossy()])?;

    println!("MD5 of \"jon\" N times; guest microseconds, median of {} run(s)", settings.runs);
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8} {:>8}",
        "N", "native", "wasm", "wasm cpu", "native cpu", "wasm fuel", "ratio", "cpu"
    );
    for &n in &settings.counts {
        let input = home.join(format!("input-{n}"));
        std::fs::write(&input, n.to_string()).map_err(|e| format!("write {}: {e}", input.display()))?;
        let (native_us, native_cpu, _, native_digest) = measure(&emu, &native, &input, settings.runs as usize)?;
        let (wasm_us, wasm_cpu, fuel, wasm_digest) = measure(&emu, &wasm, &input, settings.runs as usize)?;
        if native_digest != wasm_digest {
            return Err(format!("N={n}: native printed {native_digest}, wasm {wasm_digest}"));
        }
        let ratio = wasm_us as f64 / native_us.max(1) as f64;
        let cpu_ratio = match (wasm_cpu, native_cpu) {
            (Some(w), Some(n)) => format!("{:.2}", w as f64 / n.max(1) as f64),
            _ => "-".into(),
        };
        let show = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        println!(
            "{n:>8} {native_us:>12} {wasm_us:>12} {:>12} {:>12} {fuel:>12} {ratio:>8.2} {cpu_ratio:>8}",
            show(wasm_cpu),
            show(native_cpu)
        );
    }
    Ok(())
}

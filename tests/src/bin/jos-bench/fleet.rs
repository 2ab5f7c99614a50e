//! `jos-bench --fleet`: jobs through an MQTT 5 broker (Mosquitto) to 1, 2 and 3 emulated
//! devices (`jos_tests::fleet_lab`, QEMU raspi0 under `-icount shift=0`), wasm MD5 of "jon" at
//! N = 10^4 per job, through `jos_client::fleet` as an application would: jobs per second (host
//! wall time) for each fleet size and the scaling ratio; and the device's guest CPU per job for
//! the fleet path against a direct push (a Noise session per job, module pushed, then invoked),
//! from the executive's busy counter (guest microseconds of task time: one instruction one
//! nanosecond under `-icount shift=0`) minus the idle rate measured on the same device.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jos_abi::wire::{Format, JobStatus, Limits};
use jos_client::fleet::{FleetClient, RunOptions, Task};
use jos_client::Session;
use jos_tests::fleet_lab::{FleetLab, CLIENT_SECRET, DEVELOPER};
use jos_tests::Qemu;
use serde_json::{json, Value};

use crate::JON_MD5;

/// The executive's `(frames, busy_us)` from a fresh `executive` console command (frames are
/// 1 ms of guest time each).
fn executive(qemu: &mut Qemu) -> Result<(f64, f64), String> {
    const PREFIX: &str = "executive: frames ";
    let count = |text: &str| text.lines().filter(|line| line.starts_with(PREFIX)).count();
    let before = count(&qemu.output());
    qemu.send("executive\r").map_err(|e| format!("console: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = qemu.output();
        let lines: Vec<&str> = text.split_inclusive('\n').filter(|line| line.starts_with(PREFIX)).collect();
        if lines.len() > before && lines[before].ends_with('\n') {
            let line = lines[before];
            let word =
                |name: &str| -> Option<f64> { line.split_whitespace().skip_while(|w| *w != name).nth(1)?.parse().ok() };
            return match (word("frames"), word("busy")) {
                (Some(frames), Some(busy)) => Ok((frames, busy)),
                _ => Err(format!("cannot read {line:?}")),
            };
        }
        if Instant::now() > deadline {
            return Err("no `executive` line within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Guest CPU (µs) the device spent over `work`, minus its idle rate times the guest time it took.
fn cpu_of(qemu: &mut Qemu, idle_rate: f64, work: impl FnOnce() -> Result<(), String>) -> Result<f64, String> {
    let (frames0, busy0) = executive(qemu)?;
    work()?;
    let (frames1, busy1) = executive(qemu)?;
    Ok((busy1 - busy0) - idle_rate * (frames1 - frames0) * 1000.0)
}

/// The device's busy fraction while idle (a few seconds of wall time).
fn idle_rate(qemu: &mut Qemu) -> Result<f64, String> {
    let (frames0, busy0) = executive(qemu)?;
    std::thread::sleep(Duration::from_secs(4));
    let (frames1, busy1) = executive(qemu)?;
    Ok((busy1 - busy0) / ((frames1 - frames0) * 1000.0).max(1.0))
}

fn tasks(module: &Arc<[u8]>, count: usize, n: u64) -> Vec<Task> {
    (0..count).map(|_| Task::wasm(module.clone(), format!("{n} jon").as_bytes())).collect()
}

/// Runs `tasks` on the lab; returns the wall seconds and how many jobs each device answered.
fn run_fleet(lab: &FleetLab, tasks: &[Task]) -> Result<(f64, Vec<usize>), String> {
    let mut client = FleetClient::connect(&lab.settings()).map_err(|e| format!("broker: {e}"))?;
    let options = RunOptions { job_timeout: Duration::from_secs(300), max_attempts: 2, ..RunOptions::default() };
    let started = Instant::now();
    let run = client.run(tasks, &lab.keys(), &options, &mut |_| {}).map_err(|e| format!("fleet run: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut counts = vec![0; lab.devices.len()];
    for result in &run.results {
        if let Some(index) = lab.devices.iter().position(|device| device.name == result.device) {
            counts[index] += 1;
        }
        match &result.outcome {
            Ok(job) if job.status == JobStatus::Ok && String::from_utf8_lossy(&job.output).trim() == JON_MD5 => {}
            other => return Err(format!("a fleet job failed: {other:?}")),
        }
    }
    if run.republished > 0 {
        eprintln!("bench: fleet: {} job(s) published again (the figure includes their wait)", run.republished);
    }
    Ok((seconds, counts))
}

/// Runs the fleet benchmark: `jobs` jobs per fleet size, MD5 N = `n`.
pub fn fleet(kernel: &Path, jobs: usize, n: u64, direct_runs: usize) -> Result<Value, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/md5.c");
    let module: Arc<[u8]> = Arc::from(jos_tests::build_signed(&source, Format::Wasm, &DEVELOPER)?.as_slice());
    let mut sizes = Vec::new();
    let mut cpu = Value::Null;
    for devices in 1..=3usize {
        eprintln!("bench: fleet of {devices} device(s), {jobs} jobs of MD5 N = {n}");
        let mut lab = FleetLab::start_with(kernel, devices, Some(0), Duration::from_secs(240))?;
        // One job per device first (connections warm, module cached), not timed.
        run_fleet(&lab, &tasks(&module, devices, n))?;
        let before = lab.devices.iter_mut().map(|device| executive(&mut device.qemu)).collect::<Result<Vec<_>, _>>()?;
        let (seconds, counts) = run_fleet(&lab, &tasks(&module, jobs, n))?;
        let after = lab.devices.iter_mut().map(|device| executive(&mut device.qemu)).collect::<Result<Vec<_>, _>>()?;
        let rate = jobs as f64 / seconds;
        // Each device's jobs over its own guest time (1 ms per frame) across the run, summed.
        let guest_rate: f64 = counts
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(count, ((frames0, _), (frames1, _)))| *count as f64 / ((frames1 - frames0) / 1000.0).max(1e-3))
            .sum();
        eprintln!(
            "bench: {devices} device(s): {jobs} jobs in {seconds:.2} s wall, {rate:.2} jobs/s wall, {guest_rate:.2} jobs per guest second; per device {counts:?}"
        );
        sizes.push(json!({
            "devices": devices,
            "jobs": jobs,
            "wall_s": seconds,
            "jobs_per_s": rate,
            "jobs_per_guest_s": guest_rate,
            "jobs_per_device": counts,
        }));
        if devices == 1 {
            cpu = cpu_per_job(&mut lab, &module, n, direct_runs)?;
        }
    }
    let rate = |index: usize| sizes[index]["jobs_per_s"].as_f64().unwrap_or(f64::NAN);
    let guest = |index: usize| sizes[index]["jobs_per_guest_s"].as_f64().unwrap_or(f64::NAN);
    let host_cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    Ok(json!({
        "what": format!("wasm MD5 of \"jon\", N = {n}, one job per task, inline signed module"),
        "host_cores": host_cores,
        "sizes": sizes,
        "scaling_2_over_1": rate(1) / rate(0),
        "scaling_3_over_1": rate(2) / rate(0),
        "guest_scaling_2_over_1": guest(1) / guest(0),
        "guest_scaling_3_over_1": guest(2) / guest(0),
        "cpu_per_job": cpu,
    }))
}

/// Guest CPU per job on one device: fleet jobs against direct push-and-invoke sessions.
fn cpu_per_job(lab: &mut FleetLab, module: &Arc<[u8]>, n: u64, runs: usize) -> Result<Value, String> {
    let device_key = jos_client::store::x25519_public(&lab.devices[0].noise_secret);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], lab.devices[0].session_port));
    let idle = idle_rate(&mut lab.devices[0].qemu)?;
    let work = tasks(module, runs, n);
    let mqtt = {
        let settings = lab.settings();
        let keys = lab.keys();
        let mut client = FleetClient::connect(&settings).map_err(|e| format!("broker: {e}"))?;
        let options = RunOptions { job_timeout: Duration::from_secs(300), max_attempts: 1, ..RunOptions::default() };
        let qemu = &mut lab.devices[0].qemu;
        cpu_of(qemu, idle, || {
            let run = client.run(&work, &keys, &options, &mut |_| {}).map_err(|e| format!("fleet run: {e}"))?;
            match run.failed() {
                0 => Ok(()),
                failed => Err(format!("{failed} fleet job(s) failed")),
            }
        })?
    };
    let direct = cpu_of(&mut lab.devices[0].qemu, idle, || {
        for _ in 0..runs {
            let mut session = Session::connect(address, &CLIENT_SECRET, &device_key, Duration::from_secs(120))
                .map_err(|e| format!("direct session: {e}"))?;
            let hash = session.push(Format::Wasm, module, Limits::default(), &mut |_| {}).map_err(|e| e.to_string())?;
            let input = format!("{n} jon");
            let job = session
                .invoke(hash, Limits::default(), input.as_bytes(), None, &mut |_| {})
                .map_err(|e| format!("direct invoke: {e}"))?;
            if job.status != JobStatus::Ok || String::from_utf8_lossy(&job.output).trim() != JON_MD5 {
                return Err(format!("a direct job failed: {job:?}"));
            }
        }
        Ok(())
    })?;
    let (mqtt, direct) = (mqtt / runs as f64, direct / runs as f64);
    eprintln!("bench: guest CPU per job: fleet {:.1} ms, direct push {:.1} ms", mqtt / 1000.0, direct / 1000.0);
    Ok(json!({
        "runs": runs,
        "idle_busy_fraction": idle,
        "fleet_us": mqtt,
        "direct_push_us": direct,
        "fleet_over_direct": mqtt / direct,
    }))
}

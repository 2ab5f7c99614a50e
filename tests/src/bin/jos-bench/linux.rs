//! The Linux baseline: Debian's Pi Zero/1 kernel with the busybox initramfs of `bench/linux`,
//! driven through its serial shell; its MD5 runs and its C echo server's figures.

use std::path::Path;
use std::time::Duration;

use jos_tests::{BootOptions, Qemu};

use crate::echo::{echo_run, field, free_port, guest_clock_us, mean, net_args, slope_counts, udp_query};
use crate::results::{EchoResult, Md5Point, Md5Series, Timing};
use crate::{Mode, JON_MD5, LINUX_APPEND};

/// The Linux guest: Debian's rpi kernel with the busybox initramfs of `bench/linux`.
pub struct Linux {
    /// The guest.
    pub qemu: Qemu,
    /// The host port forwarded to its UDP 7.
    pub port: u16,
    commands: u32,
    /// `/proc/uptime` when its init said it was ready.
    pub ready_uptime_s: f64,
}

impl Linux {
    /// Boots the guest from `dir` (`bench/linux/mkinitrd.sh`'s output) and waits until it is ready.
    pub fn boot(dir: &Path) -> Result<Linux, String> {
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
        Ok(output[start..].lines().take_while(|l| !l.starts_with(&marker)).map(|l| l.trim_end().to_string()).collect())
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
pub fn linux_md5(linux: &mut Linux, mode: Mode) -> Result<Md5Series, String> {
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
        let (mean_cpu_us, mean_exec_us) = (mean(&cpu), mean(&exec));
        points.push(Md5Point { n, exec_us: exec, cpu_us: cpu, mean_exec_us, mean_cpu_us, fuel_used: None });
    }
    Ok(Md5Series { status: "ok".into(), runs, points, about: Default::default() })
}

/// The UDP echo benchmark against the Linux guest's C server.
pub fn linux_echo(linux: &mut Linux, requests: u64) -> Result<EchoResult, String> {
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
    let mut value = EchoResult::measured(run.latencies());
    value.note("served", served);
    value.note("server_cpu_us_per_request", server_cpu_us / served.max(1.0));
    value.guest_clock_us_per_round_trip = Some((clock1 - clock0) as f64 / answered.max(1.0));
    value.note("uptime_us_per_round_trip", (up1 - up0) * 1e6 / answered.max(1.0));
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
    // The CPU the echoes took between two `stats?` answers: the window less the meter's share.
    let busy_between = |from: &str, to: &str| {
        let window_us = delta(from, to, "mono_us");
        let meter_us = delta(from, to, "spin") / rate.max(f64::MIN_POSITIVE);
        (delta(from, to, "served"), window_us - meter_us)
    };
    let (metered_served, metered_cpu) = busy_between(&idle1, &load1);
    value.guest_us_per_request = Some(metered_cpu / metered_served.max(1.0));
    value.guest_us_per_request_source = Some(format!(
        "whole-system CPU: idle-priority meter, {metered} requests after the latency run ({rate:.3} counts/us idle)"
    ));
    // The marginal cost: the same meter over a short and a long run (the slope_counts).
    let [short_requests, long_requests] = slope_counts(requests);
    let mut runs = Vec::new();
    for count in [short_requests, long_requests] {
        let from = udp_query(linux.port, b"stats?")?;
        let _ = echo_run(linux.port, count)?;
        let to = udp_query(linux.port, b"stats?")?;
        runs.push(busy_between(&from, &to));
    }
    value.set_marginal(runs[0], runs[1], "whole-system CPU (idle-priority meter) over the echoes of each run");
    value.note("proc_stat_us_per_request", (busy1 - busy0) * 1e6 / answered.max(1.0));
    eprintln!(
        "bench: linux echo: mean {:.0} us p99 {:.0} us, lost {}; whole system {:.1} us per request, marginal {:.1} us",
        run.mean(),
        run.percentile(99.0),
        run.lost,
        value.guest_us_per_request.unwrap_or(f64::NAN),
        value.marginal_us_per_request.unwrap_or(f64::NAN)
    );
    Ok(value)
}

/// Runs `wasm3-md5 /wasm3/MODULE.wasm N RUNS` on the Linux guest (wasm3, the interpreter peer,
/// `bench/wasm3/wasm3-md5.c`): per run the CPU time of the call of `run` (getrusage) and its
/// execution time (CLOCK_MONOTONIC); every digest must be the host's.
pub fn linux_wasm3(linux: &mut Linux, module: &str, n: u64, runs: u64) -> Result<Timing, String> {
    // wasm3 took about 40 us of guest time per hash on the plain module in the figures.
    let timeout = Duration::from_secs(120 + n * runs / 2_000);
    let lines = linux.run(&format!("wasm3-md5 /wasm3/{module}.wasm {n} {runs}"), timeout)?;
    let results: Vec<&String> = lines.iter().filter(|l| l.starts_with("wasm3: n=")).collect();
    if results.len() as u64 != runs {
        return Err(format!("wasm3-md5 {module} {n} {runs}: expected {runs} result lines, got:\n{}", lines.join("\n")));
    }
    let (mut cpu, mut exec) = (Vec::new(), Vec::new());
    for line in results {
        if !line.ends_with(&format!("digest={JON_MD5}")) {
            return Err(format!("wasm3: wrong digest: {line}"));
        }
        cpu.push(field(line, "cpu_us").ok_or_else(|| format!("no cpu_us in {line}"))?);
        exec.push(field(line, "exec_us").ok_or_else(|| format!("no exec_us in {line}"))?);
    }
    eprintln!(
        "bench: linux wasm3 {module} md5 N={n}: exec {:.0} us, cpu {:.0} us (mean of {runs})",
        mean(&exec),
        mean(&cpu)
    );
    Ok(Timing::of(exec, cpu))
}

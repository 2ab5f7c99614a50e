//! The jos variants that go through the kernel's offload service: MD5 as a native blob and as a
//! wasm job, the first push of a 10 KiB signed wasm module and the invoke of a cached one by
//! phase, and the heap a running wasm job holds.
//!
//! jos boots with a configuration (QEMU loader device, as `tests/tests/offload.rs` does) that
//! trusts this harness's client and signing keys; the harness speaks the protocol through
//! `jos_client::Session` (Noise IK over TCP 4748) and reads the device's own figures: a
//! JobResult's `Stats` (guest time from the job's start to its result) and the kernel's
//! `offload: timing` console lines (docs/protocol.md, "Timing reports").

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jos_abi::codec::List;
use jos_abi::config::{ConfigRepr, Network, Policy, PortRange};
use jos_abi::signature::{public_key, sign_wasm, SignerRights, TrustedSigner};
use jos_abi::wire::discovery::{Advert, AdvertRepr, LoadState, Probe};
use jos_abi::wire::{Format, JobStatus, Limits, Message};
use jos_client::store::x25519_public;
use jos_client::{JobOutcome, Session};
use jos_tests::{BootOptions, Qemu};
use serde_json::{json, Map, Value};

use crate::echo::{after, echo_run, field, free_port, guest_clock_us, mean, slope_counts};
use crate::results::{BuildFigures, EchoResult, GuestFormats, Md5Point, Md5Series, PeerModule, PhaseRuns, Timing};
use crate::{json_object, Mode, JON_MD5};

/// The device's Noise secret, advert seed, the harness's client secret and signing seed: fixed
/// test keys (the device only lives for one benchmark run).
const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const SIGNER: [u8; 32] = [0x64; 32];
/// The UDP port the offloaded echo job binds (in the configuration's job port range).
const JOB_PORT: u16 = 7000;
/// Size of the module of the first-push measurement, signed (10 KiB).
pub const PUSH_MODULE_BYTES: usize = 10 * 1024;

/// A booted jos with its configuration, and the host ports forwarded to it.
pub struct Device {
    pub qemu: Qemu,
    tcp: u16,
    discovery: u16,
    /// Host UDP port forwarded to [`JOB_PORT`].
    job: u16,
    _config: Scratch,
}

/// A file removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn free_tcp_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

/// The boot configuration: this harness's client key and signer, generous limits (the MD5 jobs
/// of the full mode run for seconds).
fn config_bytes() -> Result<Vec<u8>, String> {
    let clients = [x25519_public(&CLIENT_SECRET)];
    let signers = [TrustedSigner { public_key: public_key(&SIGNER), rights: SignerRights::ALL }];
    let repr = ConfigRepr {
        name: "jos-bench",
        noise_secret: DEVICE_SECRET,
        advert_seed: ADVERT_SEED,
        network: Network::Dhcp,
        clients: List::from_slice(&clients),
        signers: List::from_slice(&signers),
        policy: Policy {
            max_module_len: 4 << 20,
            limits: Limits { fuel: 1 << 40, memory: 16 << 20, deadline_ms: 3_600_000, output: 32 * 1024 },
            queue_len: 16,
            job_ports: PortRange { first: JOB_PORT, last: JOB_PORT + 9 },
        },
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).map_err(|e| format!("configuration: {e}"))?;
    Ok(bytes)
}

impl Device {
    /// Boots jos under `-icount shift=0` with usb-net, TCP 4748, UDP 4747 and the job port forwarded
    /// and the configuration loaded at `CONFIG_ADDRESS`; waits for `offload: ready`.
    pub fn boot(kernel: &Path) -> Result<Device, String> {
        let (tcp, discovery, job) = (free_tcp_port()?, free_port()?, free_port()?);
        let config = Scratch(std::env::temp_dir().join(format!("jos-bench-config-{}.bin", std::process::id())));
        std::fs::write(&config.0, config_bytes()?).map_err(|e| format!("{}: {e}", config.0.display()))?;
        let mut options = BootOptions::new("raspi0", kernel.into());
        options.icount_shift = Some(0);
        options.extra_args = vec![
            "-netdev".into(),
            format!(
                "user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748,hostfwd=udp:127.0.0.1:{discovery}-:4747,hostfwd=udp:127.0.0.1:{job}-:{JOB_PORT}"
            ),
            "-device".into(),
            "usb-net,netdev=n0,port=1".into(),
            "-device".into(),
            format!("loader,file={},addr={:#x},force-raw=on", config.0.display(), jos_abi::config::CONFIG_ADDRESS),
        ];
        let mut qemu = Qemu::boot(&options).map_err(|e| format!("cannot start QEMU: {e}"))?;
        qemu.wait_for_line_containing("offload: ready", Duration::from_secs(120))?;
        qemu.wait_for_line("net: ip ", Duration::from_secs(120))?;
        Ok(Device { qemu, tcp, discovery, job, _config: config })
    }

    /// A new authenticated session (the handshake happens here).
    pub fn session(&self) -> Result<Session, String> {
        let address = SocketAddr::from(([127, 0, 0, 1], self.tcp));
        let mut session =
            Session::connect(address, &CLIENT_SECRET, &x25519_public(&DEVICE_SECRET), Duration::from_secs(60))
                .map_err(|e| format!("session: {e}"))?;
        // Progress messages come every 250 ms of guest time; a long job is not an idle session.
        session.set_idle_timeout(Duration::from_secs(600));
        Ok(session)
    }

    /// The free heap bytes and load state of a fresh advert.
    pub fn advert(&self) -> Result<(u32, LoadState), String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
        let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
        Probe { nonce: 0xbe4c }.emit(&mut probe).map_err(|e| e.to_string())?;
        let mut datagram = [0u8; 512];
        for _ in 0..5 {
            socket.send_to(&probe, ("127.0.0.1", self.discovery)).map_err(|e| e.to_string())?;
            if let Ok((len, _)) = socket.recv_from(&mut datagram) {
                let advert = Advert::new_checked(&datagram[..len]).map_err(|e| format!("advert: {e}"))?;
                let repr = AdvertRepr::parse(&advert).map_err(|e| format!("advert: {e}"))?;
                return Ok((repr.free_memory, repr.state));
            }
        }
        Err("no advert from the device".into())
    }

    /// The whole `offload: timing KIND` lines so far (a line the UART is still sending is not
    /// one yet: read half-way, it would lack its last fields).
    fn timings(&self, kind: &str) -> Vec<String> {
        let prefix = format!("offload: timing {kind} ");
        self.qemu
            .output()
            .split_inclusive('\n')
            .filter(|raw| raw.ends_with('\n'))
            .filter_map(|line| Some(line.trim_end().split_once(&prefix)?.1.to_string()))
            .collect()
    }

    /// Waits for the timing line number `index` (0-based) of `kind`.
    fn timing(&self, kind: &str, index: usize) -> Result<String, String> {
        for _ in 0..100 {
            if let Some(line) = self.timings(kind).into_iter().nth(index) {
                return Ok(line);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("no `offload: timing {kind}` line number {index} on the console"))
    }
}

/// Pushes `module` on `session`; returns its hash.
fn push(session: &mut Session, format: Format, module: &[u8]) -> Result<[u8; 32], String> {
    session.push(format, module, Limits::default(), &mut |_| {}).map_err(|e| format!("push: {e}"))
}

/// Invokes `hash` with `input`; the job must end Ok.
fn invoke(session: &mut Session, hash: [u8; 32], input: &[u8]) -> Result<JobOutcome, String> {
    let job = session.invoke(hash, Limits::default(), input, None, &mut |_| {}).map_err(|e| format!("invoke: {e}"))?;
    if job.status != JobStatus::Ok {
        return Err(format!("job ended {:?}: {:?} {:?}", job.status, job.logs, job.stats));
    }
    Ok(job)
}

/// `guest-examples/c/NAME.c` built by jos-build (the builder `jos-cli build` uses) in `format`, signed.
fn guest_example(name: &str, format: Format) -> Result<Vec<u8>, String> {
    let source = crate::repo_root().join("guest-examples/c").join(format!("{name}.c"));
    jos_tests::build_signed(&source, format, &SIGNER)
}

/// The memory cap of the benchmark's AOT builds, in 64 KiB pages: `jos-cli push --aot`'s default
/// (15 MiB, so the blob with its code, data and memory arena fits the policy's 16 MiB).
pub const AOT_MEMORY_PAGES: u64 = 240;

/// A guest built by jos-build and signed, with the build's host wall time and sizes.
pub struct Built {
    /// The signed module or blob.
    pub bytes: Vec<u8>,
    /// How it is pushed (AOT blobs are native blobs).
    pub wire: Format,
    /// Host wall time of the build (for AOT: wasm build, wasm2c, arm-none-eabi-gcc, conversion).
    pub build_ms: f64,
    /// The unsigned output's size in bytes.
    pub unsigned_bytes: u64,
    /// What was built, for the JSON.
    pub label: &'static str,
}

/// Builds `source` (C files, or a `.wasm` module for AOT) in `format` with jos-build, signed.
pub fn build(source: &Path, format: jos_build::Format, label: &'static str) -> Result<Built, String> {
    let folder =
        Scratch(std::env::temp_dir().join(format!("jos-bench-{label}-{}.{}", std::process::id(), format.extension())));
    let output = folder.0.clone();
    let request = jos_build::BuildRequest {
        sources: vec![source.to_path_buf()],
        format,
        output: Some(output.clone()),
        max_memory_pages: if format == jos_build::Format::Aot {
            AOT_MEMORY_PAGES
        } else {
            jos_build::DEFAULT_MAX_MEMORY_PAGES
        },
        keep_names: false,
        verbose: false,
    };
    let started = std::time::Instant::now();
    jos_build::build(&request).map_err(|e| format!("building {} ({label}): {e}", source.display()))?;
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let plain = std::fs::read(&output).map_err(|e| format!("read {}: {e}", output.display()))?;
    let (bytes, wire) = match format {
        jos_build::Format::Wasm => (sign_wasm(&plain, &SIGNER, true).map_err(|e| e.to_string())?, Format::Wasm),
        _ => (jos_abi::signature::sign_blob(&plain, &SIGNER, true).map_err(|e| e.to_string())?, Format::NativeArmv6),
    };
    Ok(Built { bytes, wire, build_ms, unsigned_bytes: plain.len() as u64, label })
}

/// A prebuilt wasm module file (the wasm3 comparison's modules), signed.
pub fn prebuilt_wasm(path: &Path, label: &'static str) -> Result<Built, String> {
    let plain = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = sign_wasm(&plain, &SIGNER, true).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Built { bytes, wire: Format::Wasm, build_ms: 0.0, unsigned_bytes: plain.len() as u64, label })
}

/// `guest-examples/c/NAME.c`'s path.
pub fn example_source(name: &str) -> PathBuf {
    crate::repo_root().join("guest-examples/c").join(format!("{name}.c"))
}

/// MD5 of "jon" N times on jos, one variant: push once, then `runs` invokes with "N" for every N.
/// Per run the JobResult's guest-time figures: `time_us` (start to result: execution time) and
/// `cpu_us` (the time the job held the CPU: CPU time).
fn md5_variant(device: &Device, mode: Mode, built: &Built) -> Result<Md5Series, String> {
    let runs = mode.runs();
    let points = md5_points(device, built, &mode.md5_counts(), runs)?;
    let about = json_object(json!({
        "module_bytes": built.bytes.len(),
        "unsigned_bytes": built.unsigned_bytes,
        "build": built.label,
        "build_ms": built.build_ms,
        "source": "guest-examples/c/md5.c built by jos-build (the builder `jos-cli build` uses), signed; pushed once, invoked with \"N\"",
        "exec_source": "JobResult stats.time_us: guest time from the job's start to its result",
        "cpu_source": "JobResult stats.cpu_us: guest time the job held the CPU (wasm: its start and fuel slices; native and AOT: its run)",
    }));
    Ok(Md5Series { status: "ok".into(), runs, points, about })
}

/// Pushes `built` once and invokes it `runs` times with "N" for each of `counts`; checks every
/// digest; one point per N.
pub fn md5_points(device: &Device, built: &Built, counts: &[u64], runs: u64) -> Result<Vec<Md5Point>, String> {
    let mut session = device.session()?;
    let hash = push(&mut session, built.wire, &built.bytes)?;
    let mut points = Vec::new();
    for &n in counts {
        let mut exec = Vec::new();
        let mut cpu = Vec::new();
        let mut fuel = Vec::new();
        for _ in 0..runs {
            let job = invoke(&mut session, hash, n.to_string().as_bytes()).map_err(|e| {
                let console = device.qemu.output();
                let tail: Vec<&str> = console.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("md5 {n} on jos ({}): {e}\ndevice console, last lines:\n{}", built.label, tail.join("\n"))
            })?;
            let digest = String::from_utf8_lossy(&job.output);
            if digest.trim_end() != JON_MD5 {
                return Err(format!("md5 {n} on jos ({}): wrong digest {digest:?}", built.label));
            }
            if job.stats.cpu_us == 0 || job.stats.cpu_us > job.stats.time_us {
                return Err(format!("md5 {n} on jos ({}): implausible stats {:?}", built.label, job.stats));
            }
            exec.push(job.stats.time_us as f64);
            cpu.push(job.stats.cpu_us as f64);
            fuel.push(job.stats.fuel_used as f64);
        }
        eprintln!(
            "bench: jos {} md5 N={n}: exec {:.0} us, cpu {:.0} us (mean of {runs})",
            built.label,
            mean(&exec),
            mean(&cpu)
        );
        let (mean_exec_us, mean_cpu_us) = (mean(&exec), mean(&cpu));
        points.push(Md5Point { n, exec_us: exec, cpu_us: cpu, mean_exec_us, mean_cpu_us, fuel_used: Some(fuel) });
    }
    Ok(points)
}

/// The system-call figures: the two values of N (times the call is made per run); `output_write`
/// uses [`WRITE_COUNTS`] (64 bytes each must fit the policy's 32 KiB output cap).
const SYSCALL_COUNTS: [u64; 2] = [1_000, 10_000];
/// N for `output_write` of 64 bytes.
const WRITE_COUNTS: [u64; 2] = [50, 500];

/// The cost of one native system call in guest instructions (`-icount shift=0`: 1 ns of guest
/// time per instruction), for `input_len` (a null call), `output_write` of 64 bytes and
/// `udp_recv` with nothing waiting: tests/native/syscall_bench.c makes the call N times; the
/// cost is the slope of the job's CPU time (`stats.cpu_us`) between the two N of
/// [`SYSCALL_COUNTS`] or [`WRITE_COUNTS`] (the job's fixed costs cancel), mean of `runs` runs each.
pub fn syscalls(device: &Device, runs: u64) -> Result<Value, String> {
    let source = crate::repo_root().join("tests/native/syscall_bench.c");
    let module = jos_tests::build_signed(&source, Format::NativeArmv6, &SIGNER)?;
    let mut session = device.session()?;
    let hash = push(&mut session, Format::NativeArmv6, &module)?;
    let mut calls = serde_json::Map::new();
    for (mode, name) in [("null", "input_len"), ("write", "output_write_64"), ("recv", "udp_recv_empty")] {
        let counts = if mode == "write" { WRITE_COUNTS } else { SYSCALL_COUNTS };
        let mut cpu = Vec::new();
        for n in counts {
            let mut samples = Vec::new();
            for _ in 0..runs {
                let job = invoke(&mut session, hash, format!("{mode} {n}").as_bytes())?;
                if job.exit_value != 0 {
                    return Err(format!("syscall_bench {mode} {n}: returned {}", job.exit_value));
                }
                samples.push(job.stats.cpu_us as f64);
            }
            cpu.push(mean(&samples));
        }
        let per_call_ns = (cpu[1] - cpu[0]) * 1000.0 / (counts[1] - counts[0]) as f64;
        eprintln!("bench: jos native {name}: {per_call_ns:.0} instructions per call");
        calls.insert(name.into(), json!({"counts": counts, "cpu_us": cpu, "per_call_instructions": per_call_ns}));
    }
    Ok(json!({
        "status": "ok",
        "runs": runs,
        "source": "tests/native/syscall_bench.c: the call N times; slope of JobResult stats.cpu_us over N (-icount shift=0: 1 ns = 1 instruction)",
        "calls": Value::Object(calls),
    }))
}

/// MD5 of "jon" `n` times as a native blob: the mean CPU time of `runs` runs (for `--syscalls`:
/// N = 10^5 for the compute figure, N = 1 for a job's fixed start cost).
pub fn native_md5_cpu(device: &Device, runs: u64, n: u64) -> Result<f64, String> {
    let module = guest_example("md5", Format::NativeArmv6)?;
    let mut session = device.session()?;
    let hash = push(&mut session, Format::NativeArmv6, &module)?;
    let mut cpu = Vec::new();
    for _ in 0..runs {
        let job = invoke(&mut session, hash, n.to_string().as_bytes())?;
        if String::from_utf8_lossy(&job.output).trim_end() != JON_MD5 {
            return Err(format!("md5 {n}: wrong digest"));
        }
        cpu.push(job.stats.cpu_us as f64);
    }
    Ok(mean(&cpu))
}

/// jos's MD5 series: the native blob and the wasm module as jos-cli builds them from
/// guest-examples/c/md5.c, the AOT blob like for like with the native one (the same source
/// through a wasm module compiled at -O2, [`md5_o2_module`], then wasm2c and arm-none-eabi-gcc
/// -O2), and the AOT blob as `jos-cli build --format aot` makes it from the C source (through
/// jos-cli's unrolled -O3 wasm module).
pub struct Md5Variants {
    pub native: Md5Series,
    pub wasm: Md5Series,
    pub aot: Md5Series,
    pub aot_unrolled: Md5Series,
}

/// Measures [`Md5Variants`].
pub fn md5(device: &Device, mode: Mode) -> Result<Md5Variants, String> {
    let source = example_source("md5");
    let native = build(&source, jos_build::Format::Native, "native")?;
    let wasm = build(&source, jos_build::Format::Wasm, "wasm")?;
    let o2 = md5_o2_module()?;
    let aot = build(&o2.0, jos_build::Format::Aot, "aot -O2")?;
    let aot_unrolled = build(&source, jos_build::Format::Aot, "aot (jos-cli)")?;
    let native = md5_variant(device, mode, &native)?;
    let wasm = md5_variant(device, mode, &wasm)?;
    let mut aot_series = md5_variant(device, mode, &aot)?;
    aot_series.about.insert(
        "source".into(),
        json!("guest-examples/c/md5.c + jos-rt.c, clang --target=wasm32 -mbulk-memory -nostdlib -O2 (jos-cli's wasm flags at -O2, no extra unrolling), then jos-build --format aot from that module (wasm2c, arm-none-eabi-gcc -O2); signed, pushed once, invoked with \"N\""),
    );
    Ok(Md5Variants { native, wasm, aot: aot_series, aot_unrolled: md5_variant(device, mode, &aot_unrolled)? })
}

/// guest-examples/c/md5.c built to wasm with jos-cli's clang flags (builder's `WASM_CFLAGS`) at
/// -O2 and without the unrolling option: the module an AOT build at native's optimisation level
/// starts from. Removed when the returned guard is dropped.
fn md5_o2_module() -> Result<Scratch, String> {
    let root = crate::repo_root();
    let include = root.join("abi/include");
    let out = Scratch(std::env::temp_dir().join(format!("jos-bench-md5-o2-{}.wasm", std::process::id())));
    let mut skip = false;
    let flags: Vec<&str> = jos_build::WASM_CFLAGS
        .iter()
        .copied()
        .filter(|flag| {
            let drop = skip || *flag == "-mllvm";
            skip = *flag == "-mllvm";
            !drop
        })
        .map(|flag| if flag == "-O3" { "-O2" } else { flag })
        .collect();
    let status = std::process::Command::new("clang")
        .args(&flags)
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&out.0)
        .arg(root.join("guest-examples/c/md5.c"))
        .arg(include.join("jos-rt.c"))
        .status()
        .map_err(|e| format!("clang: {e}"))?;
    if !status.success() {
        return Err(format!("clang {flags:?} md5.c: {status}"));
    }
    Ok(out)
}

/// The wasm3 comparison's modules (`bench/linux/mkinitrd.sh` leaves them in `dir`) on jos, MD5
/// at `n`: each module in wasmi, its `-bulk` build in wasmi, and the module compiled AOT (from the
/// module file itself). wasm3's figures are filled in from the Linux guest later.
pub fn peer_modules(device: &Device, dir: &Path, n: u64, runs: u64) -> Result<Vec<PeerModule>, String> {
    let one = |built: &Built| -> Result<(Timing, f64), String> {
        let point = md5_points(device, built, &[n], runs)?.pop().ok_or("no point")?;
        let fuel = point.fuel_used.as_deref().map(mean).unwrap_or(0.0);
        Ok((Timing::of(point.exec_us, point.cpu_us), fuel))
    };
    let mut peers = Vec::new();
    for (module, flags) in [("plain", "-O2"), ("unrolled", "-O3 -mllvm -unroll-threshold=3000")] {
        let path = dir.join(format!("md5-{module}.wasm"));
        let wasm = prebuilt_wasm(&path, if module == "plain" { "wasmi plain" } else { "wasmi unrolled" })?;
        let (wasmi, wasmi_fuel) = one(&wasm)?;
        let bulk = prebuilt_wasm(&dir.join(format!("md5-{module}-bulk.wasm")), "wasmi bulk")?;
        let (wasmi_bulk, bulk_fuel) = one(&bulk)?;
        let aot = build(&path, jos_build::Format::Aot, "aot of the module")?;
        let (aot, _) = one(&aot)?;
        peers.push(PeerModule {
            module: module.into(),
            build: format!(
                "guest-examples/c/md5.c + abi/include/jos-rt.c, clang --target=wasm32 -nostdlib {flags} -Wl,--no-entry -Wl,--export=run (bench/linux/mkinitrd.sh; no -mbulk-memory)"
            ),
            module_bytes: wasm.unsigned_bytes,
            n,
            wasm3: None,
            wasmi,
            wasmi_fuel,
            wasmi_bulk: Some(wasmi_bulk),
            wasmi_bulk_fuel: Some(bulk_fuel),
            aot: Some(aot),
        });
    }
    Ok(peers)
}

/// One guest example as wasm, native and AOT on the same input: each run's output must be the
/// same bytes in all three (and `expected`, when given); per format the mean guest time of
/// `runs` runs and the build figures.
pub fn guest_formats(
    device: &Device,
    name: &str,
    input: &[u8],
    expected: Option<&[u8]>,
    runs: u64,
) -> Result<GuestFormats, String> {
    let source = example_source(name);
    let mut reference: Option<Vec<u8>> = expected.map(<[u8]>::to_vec);
    let mut times = Vec::new();
    let mut builds = Vec::new();
    for (format, label) in
        [(jos_build::Format::Wasm, "wasm"), (jos_build::Format::Native, "native"), (jos_build::Format::Aot, "aot")]
    {
        let built = build(&source, format, label)?;
        let mut session = device.session()?;
        let hash = push(&mut session, built.wire, &built.bytes)?;
        let (mut exec, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let job = invoke(&mut session, hash, input).map_err(|e| format!("{name} ({label}): {e}"))?;
            match &reference {
                Some(want) if &job.output != want => {
                    return Err(format!("{name} ({label}): output differs ({} bytes)", job.output.len()))
                }
                Some(_) => {}
                None => reference = Some(job.output.clone()),
            }
            exec.push(job.stats.time_us as f64);
            cpu.push(job.stats.cpu_us as f64);
        }
        eprintln!("bench: jos {label} {name}: exec {:.0} us, cpu {:.0} us (mean of {runs})", mean(&exec), mean(&cpu));
        times.push(Timing::of(exec, cpu));
        builds.push(built);
    }
    let [wasm, native, aot]: [Timing; 3] = times.try_into().map_err(|_| "three formats".to_string())?;
    Ok(GuestFormats {
        name: name.into(),
        input_bytes: input.len() as u64,
        runs,
        build: build_figures(&builds),
        wasm,
        native,
        aot,
    })
}

/// The sizes and host build times of a wasm, native and AOT build of one source.
pub fn build_figures(builds: &[Built]) -> BuildFigures {
    let find = |label: &str| builds.iter().find(|b| b.label == label);
    let size = |label: &str| find(label).map(|b| b.unsigned_bytes);
    let time = |label: &str| find(label).map(|b| b.build_ms);
    BuildFigures {
        wasm_module_bytes: size("wasm"),
        native_blob_bytes: size("native"),
        aot_blob_bytes: size("aot"),
        wasm_build_ms: time("wasm"),
        native_build_ms: time("native"),
        aot_build_ms: time("aot"),
    }
}

/// A wasm module of exactly [`PUSH_MODULE_BYTES`] once signed: a data segment of
/// pseudo-random bytes (different for each `seed`, so each is a first push) and a `run` that
/// echoes its input followed by the segment's first 16 bytes.
pub fn ten_kib_module(seed: u32) -> Result<(Vec<u8>, Vec<u8>), String> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut filler = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect()
    };
    let build = |data: &[u8]| -> Result<Vec<u8>, String> {
        let escaped: String = data.iter().map(|b| format!("\\{b:02x}")).collect();
        let text = format!(
            r#"(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{escaped}")
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (drop (call $output_write (i32.const 1024) (i32.const 16)))
    (local.get $n)))"#
        );
        let module = wat::parse_str(&text).map_err(|e| format!("10 KiB module: {e}"))?;
        sign_wasm(&module, &SIGNER, true).map_err(|e| format!("signing: {e}"))
    };
    // The data length that makes the signed module 10 KiB (LEB128 lengths shift by a byte or two).
    let mut len = PUSH_MODULE_BYTES - 400;
    for _ in 0..8 {
        let data = filler(len);
        let module = build(&data)?;
        if module.len() == PUSH_MODULE_BYTES {
            return Ok((module, data[..16].to_vec()));
        }
        len = (len as isize + PUSH_MODULE_BYTES as isize - module.len() as isize) as usize;
    }
    Err("cannot size the module to 10 KiB".into())
}

/// `name=value` as a number.
fn number(line: &str, name: &str) -> Result<f64, String> {
    field(line, name).ok_or_else(|| format!("no {name} in `{line}`"))
}

/// Phases of a push line and of a job line, as JSON numbers.
fn phases(line: &str, names: &[&str]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for name in names {
        map.insert((*name).into(), json!(number(line, name)?));
    }
    Ok(map)
}

const PUSH_PHASES: &[&str] = &["handshake_us", "transfer_us", "verify_us", "session_us"];
const JOB_PHASES: &[&str] = &["queued_us", "instantiate_us", "run_us", "result_us", "total_us"];

/// Means of each phase over runs.
fn phase_means(runs: &[Map<String, Value>], names: &[&str]) -> Map<String, Value> {
    let mut map = Map::new();
    for name in names {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.get(*name)?.as_f64()).collect();
        map.insert((*name).into(), json!(mean(&values)));
    }
    map
}

/// First push of a 10 KiB signed wasm module (a new module each run, on a new session) and the
/// invoke of a cached module (a new session each run, as `jos-cli invoke` does), by phase from
/// the device's timing lines.
pub fn costs(device: &Device, runs: u64) -> Result<(PhaseRuns, PhaseRuns), String> {
    let mut pushes = Vec::new();
    let mut hashes = Vec::new();
    for run in 0..runs {
        let (module, head) = ten_kib_module(run as u32 + 1)?;
        let (push_lines, job_lines) = (device.timings("push").len(), device.timings("job").len());
        let mut session = device.session()?;
        let hash = push(&mut session, Format::Wasm, &module)?;
        let job = invoke(&mut session, hash, b"first")?;
        let mut expected = b"first".to_vec();
        expected.extend_from_slice(&head);
        if job.output != expected {
            return Err(format!("10 KiB module: output {:?}, expected {expected:?}", job.output));
        }
        drop(session);
        let push_line = device.timing("push", push_lines)?;
        if !push_line.starts_with(&format!("wasm bytes={PUSH_MODULE_BYTES} accepted=true ")) {
            return Err(format!("unexpected push timing line `{push_line}`"));
        }
        let job_line = device.timing("job", job_lines)?;
        let mut record = phases(&push_line, PUSH_PHASES)?;
        let job_phases = phases(&job_line, JOB_PHASES)?;
        for name in JOB_PHASES {
            record.insert(format!("job_{name}"), job_phases[*name].clone());
        }
        pushes.push(record);
        hashes.push(hash);
    }
    let mut invokes = Vec::new();
    for run in 0..runs {
        let job_lines = device.timings("job").len();
        let mut session = device.session()?;
        let job = invoke(&mut session, hashes[0], b"cached")?;
        if !job.output.starts_with(b"cached") {
            return Err(format!("cached invoke {run}: output {:?}", job.output));
        }
        drop(session);
        invokes.push(phases(&device.timing("job", job_lines)?, JOB_PHASES)?);
    }
    let mut push_names: Vec<&str> = PUSH_PHASES.to_vec();
    let job_names: Vec<String> = JOB_PHASES.iter().map(|n| format!("job_{n}")).collect();
    push_names.extend(job_names.iter().map(String::as_str));
    let mean = phase_means(&pushes, &push_names);
    let first = json!({
        "module_bytes": PUSH_MODULE_BYTES,
        "module": "wat: a 1-page memory, a data segment of pseudo-random bytes sized so the signed module is 10 KiB, a run that echoes its input and 16 data bytes; a new module (new hash) per run",
        "source": "kernel `offload: timing push` and `offload: timing job` console lines (platform clock, guest time)",
    });
    let first = PhaseRuns { status: "ok".into(), runs: pushes, mean, about: json_object(first) };
    let mean = phase_means(&invokes, JOB_PHASES);
    let cached = json!({
        "what": "a new session per run (handshake not counted here), Invoke of the cached 10 KiB module",
        "source": "kernel `offload: timing job` console lines (platform clock, guest time)",
    });
    let cached = PhaseRuns { status: "ok".into(), runs: invokes, mean, about: json_object(cached) };
    Ok((first, cached))
}

/// Heap a running wasm job holds: the advert's free heap with a session open and the md5 module
/// cached, against the same while the md5 job runs (the advert then says Busy).
pub fn heap_per_wasm_job(device: &Device) -> Result<Value, String> {
    let module = guest_example("md5", Format::Wasm)?;
    let mut session = device.session()?;
    let hash = push(&mut session, Format::Wasm, &module)?;
    let mut n = 20_000u64;
    for _ in 0..4 {
        let (idle_free, idle_state) = device.advert()?;
        if idle_state != LoadState::Idle {
            return Err("the device is busy before the heap measurement".into());
        }
        session
            .send(&Message::Invoke { hash, limits: Limits::default(), input: n.to_string().as_bytes(), call: None })
            .map_err(|e| format!("invoke: {e}"))?;
        std::thread::sleep(Duration::from_millis(300));
        let (busy_free, busy_state) = device.advert()?;
        let job = wait_result(&mut session)?;
        if busy_state == LoadState::Busy && job.status == JobStatus::Ok {
            return Ok(json!({
                "bytes": f64::from(idle_free) - f64::from(busy_free),
                "idle_free_bytes": idle_free,
                "busy_free_bytes": busy_free,
                "job_peak_linear_memory_bytes": job.stats.peak_memory_bytes,
                "job": format!("guest-examples md5 (wasm), input \"{n}\""),
                "source": "advert free_memory (heap size - used) while the job runs, against the same just before the Invoke with the session open and the module cached",
            }));
        }
        n *= 4;
    }
    Err("the md5 job never ran while the advert was probed".into())
}

/// Reads messages until the JobResult.
fn wait_result(session: &mut Session) -> Result<JobOutcome, String> {
    loop {
        let plain = session.receive().map_err(|e| format!("waiting for the result: {e}"))?;
        match Message::parse(&plain).map_err(|e| e.to_string())? {
            Message::Progress { .. } | Message::Pong { .. } => {}
            Message::JobResult { status, exit_value, stats, output, .. } => {
                return Ok(JobOutcome {
                    status,
                    exit_value,
                    stats,
                    output: output.to_vec(),
                    results: Vec::new(),
                    logs: Vec::new(),
                })
            }
            Message::Error { code, message } => return Err(format!("device error {code:?}: {message}")),
            other => return Err(format!("unexpected message kind {}", other.kind())),
        }
    }
}

/// `busy_us` and `at_us` of the kernel's last `net: stats` line.
fn net_busy(device: &Device) -> Option<(f64, f64)> {
    let output = device.qemu.output();
    let line = output.lines().rev().find(|l| l.starts_with("net: stats "))?;
    Some((after(line, "busy_us")?, after(line, "at_us")?))
}

/// [`net_busy`], waiting up to 10 s for the first `net: stats` line (printed at most once a
/// second of guest time while counters move: a quick run can reach here before the first one).
fn first_net_busy(device: &Device) -> Option<(f64, f64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let busy = net_busy(device);
        if busy.is_some() || std::time::Instant::now() >= deadline {
            return busy;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends "quit" to the echo job until it answers "bye".
fn quit_echo_job(device: &Device) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut reply = [0u8; 64];
    for _ in 0..10 {
        socket.send_to(b"quit", ("127.0.0.1", device.job)).map_err(|e| e.to_string())?;
        if matches!(socket.recv(&mut reply), Ok(n) if &reply[..n] == b"bye") {
            return Ok(());
        }
    }
    Err("the echo job did not answer \"quit\"".into())
}

/// The echo job's result: Ok, with the number of datagrams it says it echoed.
fn echo_result(session: &mut Session) -> Result<(JobOutcome, f64), String> {
    let job = wait_result(session)?;
    if job.status != JobStatus::Ok {
        return Err(format!("the echo job ended {:?}", job.status));
    }
    let text = String::from_utf8_lossy(&job.output).into_owned();
    let echoed = text
        .trim()
        .strip_prefix("echoed ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("echo job output {text:?}"))?;
    Ok((job, echoed))
}

/// Guest time the echo job is left idle to measure its idle cost rate.
const ECHO_IDLE_GUEST_US: u64 = 2_000_000;

/// The offloaded echo: `guest-examples/c/echo.c` as wasm, pushed and invoked with the job port
/// (the job binds it with its signer's network right), then the same measurement as against the
/// kernel's echo service, then "quit". Then the job again, left idle for about 2 s of guest time
/// and sent "quit": its idle cost rate (`cpu_us / time_us` when no datagram comes; it wakes once
/// per frame to find nothing and yields). Guest CPU per request, a marginal cost like the Linux
/// meter's: (the job's `cpu_us` over the timed run - idle rate x its `time_us`) / datagrams it
/// echoed, plus the network manager's `busy_us` over the run per echo.
pub fn echo_job(device: &Device, requests: u64) -> Result<EchoResult, String> {
    let module = guest_example("echo", Format::Wasm)?;
    let mut session = device.session()?;
    let hash = push(&mut session, Format::Wasm, &module)?;
    let input = JOB_PORT.to_string();
    let invoke_echo = |session: &mut Session| {
        session
            .send(&Message::Invoke { hash, limits: Limits::default(), input: input.as_bytes(), call: None })
            .map_err(|e| format!("invoke echo: {e}"))
    };
    // One job run of `count` requests: the run, the job's result and datagrams echoed, and the
    // network manager's busy_us over it (the stats line comes once a second while counters move).
    let mut job_run = |count: u64| -> Result<_, String> {
        invoke_echo(&mut session)?;
        let busy0 = first_net_busy(device);
        let clock0 = guest_clock_us(&device.qemu)?;
        let run = echo_run(device.job, count)?;
        let clock1 = guest_clock_us(&device.qemu)?;
        quit_echo_job(device)?;
        let (job, echoed) = echo_result(&mut session)?;
        std::thread::sleep(Duration::from_millis(2500));
        let busy1 = net_busy(device);
        let network_us = match (busy0, busy1) {
            (Some((b0, _)), Some((b1, _))) => b1 - b0,
            _ => return Err("no net: stats lines around the echo job's run".into()),
        };
        Ok((run, clock1 - clock0, job, echoed, network_us))
    };
    let [short_requests, _] = slope_counts(requests);
    let (_, _, short_job, short_echoed, short_network_us) = job_run(short_requests)?;
    let (run, clock_us, job, echoed, network_us) = job_run(requests)?;

    // The idle run: the same job, bound (it answers a first datagram), then left alone.
    invoke_echo(&mut session)?;
    let probe = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    probe.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
    let mut answer = [0u8; 64];
    let mut bound = false;
    for _ in 0..120 {
        probe.send_to(b"Echo1", ("127.0.0.1", device.job)).map_err(|e| e.to_string())?;
        if matches!(probe.recv(&mut answer), Ok(n) if &answer[..n] == b"Echo1") {
            bound = true;
            break;
        }
    }
    if !bound {
        return Err("the idle echo job never answered".into());
    }
    let idle_from = guest_clock_us(&device.qemu)?;
    while guest_clock_us(&device.qemu)?.saturating_sub(idle_from) < ECHO_IDLE_GUEST_US {
        std::thread::sleep(Duration::from_millis(100));
    }
    quit_echo_job(device)?;
    let (idle_job, _) = echo_result(&mut session)?;
    if idle_job.stats.time_us < ECHO_IDLE_GUEST_US {
        return Err(format!("the idle echo job lived {} us, less than the idle time", idle_job.stats.time_us));
    }
    let idle_rate = idle_job.stats.cpu_us as f64 / idle_job.stats.time_us as f64;

    let answered = run.latencies_us.len() as f64;
    let mut value = EchoResult::measured(run.latencies());
    value.note("echoed_by_job", echoed);
    value.note("job_cpu_us", job.stats.cpu_us);
    value.note("job_time_us", job.stats.time_us);
    value.note("job_idle_cpu_us", idle_job.stats.cpu_us);
    value.note("job_idle_time_us", idle_job.stats.time_us);
    value.note("job_idle_cpu_rate", idle_rate);
    value.guest_clock_us_per_round_trip = Some(clock_us as f64 / answered.max(1.0));
    let network_per_request = network_us / echoed.max(1.0);
    let above_idle = |job: &JobOutcome| job.stats.cpu_us as f64 - idle_rate * job.stats.time_us as f64;
    let job_per_request = above_idle(&job) / echoed.max(1.0);
    // The marginal cost: job CPU above its idle rate plus the network manager's busy_us, over a
    // short and a long run; also split into the job's and the network's slopes.
    value.set_marginal(
        (short_echoed, above_idle(&short_job) + short_network_us),
        (echoed, above_idle(&job) + network_us),
        "(job cpu_us - idle rate x time_us) + network busy_us over the datagrams the job echoed in each run",
    );
    if let (Some(job_slope), Some(network_slope)) = (
        crate::echo::slope((short_echoed, above_idle(&short_job)), (echoed, above_idle(&job))),
        crate::echo::slope((short_echoed, short_network_us), (echoed, network_us)),
    ) {
        value.note("marginal_job_us_per_request", job_slope);
        value.note("marginal_network_us_per_request", network_slope);
    }
    value.note("network_busy_us_per_request", network_per_request);
    value.note("job_cpu_us_per_request", job_per_request);
    value.guest_us_per_request = Some(job_per_request + network_per_request);
    value.guest_us_per_request_source = Some(format!(
        "marginal: (job cpu_us over the run - idle rate {idle_rate:.5} x its time_us) / echoes, idle rate from the same job left idle for {} s of guest time; plus the network manager's busy_us over the run / echoes",
        ECHO_IDLE_GUEST_US / 1_000_000
    ));
    eprintln!(
        "bench: jos echo job: mean {:.0} us p99 {:.0} us, lost {}; job {job_per_request:.1} us + network {network_per_request:.1} us per request (idle rate {idle_rate:.4}), marginal {:.1} us",
        run.mean(),
        run.percentile(99.0),
        run.lost,
        value.marginal_us_per_request.unwrap_or(f64::NAN)
    );
    Ok(value)
}

//! The shape of `bench-results.json` as serde types: what `jos-bench` writes after measuring and
//! reads back with `--replot`. Each variant keeps its measured figures in typed fields; the
//! descriptive texts and per-variant extras (sources, device counters) ride along in `about`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version of this layout, written as `schema`.
pub const SCHEMA: u32 = 1;

/// The whole file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `quick`, `standard` or `full`.
    pub mode: String,
    /// `qemu-system-arm --version`'s first line.
    pub qemu: String,
    /// The emulated board.
    pub machine: String,
    /// QEMU's `-icount shift`.
    pub icount_shift: u32,
    /// The MD5 compute benchmark.
    pub compute: Compute,
    /// The UDP echo benchmark.
    pub echo: Echo,
    /// Push and invoke costs by phase (device console timing lines).
    pub offload: Offload,
    /// Platform figures of each OS.
    pub platform: Platforms,
    /// The seed's figures on real hardware, for reference.
    pub seed_real_hardware: Value,
    /// wasm3 against wasmi on the same modules, and the guest examples as AOT, native and wasm
    /// (absent in files from before these were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engines: Option<Engines>,
}

/// The MD5 benchmark.
#[derive(Debug, Serialize, Deserialize)]
pub struct Compute {
    /// What is computed.
    pub what: String,
    /// The repetition counts N.
    pub ns: Vec<u64>,
    /// One series per OS and format.
    pub variants: ComputeVariants,
}

/// The MD5 series.
#[derive(Debug, Serialize, Deserialize)]
pub struct ComputeVariants {
    /// Linux, the C program.
    pub linux_c: Md5Series,
    /// jos, the native blob.
    pub jos_native: Md5Series,
    /// jos, the wasm module.
    pub jos_wasm: Md5Series,
    /// jos, the same source compiled ahead of time like for like with the native blob: a wasm
    /// module at -O2, then wasm2c and gcc -O2 (absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jos_aot: Option<Md5Series>,
    /// jos, the AOT blob `jos-cli build --format aot` makes from the C source (through its
    /// unrolled -O3 wasm module; absent in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jos_aot_unrolled: Option<Md5Series>,
}

/// One MD5 series: a point per N.
#[derive(Debug, Serialize, Deserialize)]
pub struct Md5Series {
    /// `ok` when measured.
    pub status: String,
    /// Runs per N.
    pub runs: u64,
    /// The measurements.
    pub points: Vec<Md5Point>,
    /// Sources and sizes (`source`, `module_bytes`, ...).
    #[serde(flatten)]
    pub about: Map<String, Value>,
}

/// The runs at one N, in guest microseconds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Md5Point {
    /// Repetitions of MD5 per run.
    pub n: u64,
    /// Start-to-result time of each run.
    pub exec_us: Vec<f64>,
    /// CPU time of each run.
    pub cpu_us: Vec<f64>,
    /// Mean of `exec_us`.
    pub mean_exec_us: f64,
    /// Mean of `cpu_us`.
    pub mean_cpu_us: f64,
    /// Fuel of each run (wasm and native jobs on jos).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<Vec<f64>>,
}

/// The echo benchmark.
#[derive(Debug, Serialize, Deserialize)]
pub struct Echo {
    /// The datagram sent.
    pub payload: String,
    /// Requests per variant.
    pub requests: u64,
    /// One result per server.
    pub variants: EchoVariants,
}

/// The echo servers.
#[derive(Debug, Serialize, Deserialize)]
pub struct EchoVariants {
    /// jos's echo service (UDP 7).
    pub jos_service: EchoResult,
    /// Linux, the C server.
    pub linux_c: EchoResult,
    /// jos, an offloaded wasm echo job.
    pub jos_offloaded: EchoResult,
}

/// Round-trip latencies of one run seen from the host, in microseconds (absent when no request
/// was answered).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latencies {
    /// Requests answered.
    pub answered: u64,
    /// Requests not answered within 1 s.
    pub lost: u64,
    /// Host wall time of the run, seconds.
    pub wall_s: f64,
    /// Mean round trip.
    pub mean_us: Option<f64>,
    /// Median.
    pub p50_us: Option<f64>,
    /// 99th percentile.
    pub p99_us: Option<f64>,
    /// 99.9th percentile.
    pub p999_us: Option<f64>,
    /// Slowest.
    pub max_us: Option<f64>,
}

/// One echo server's result.
#[derive(Debug, Serialize, Deserialize)]
pub struct EchoResult {
    /// `ok` when measured.
    pub status: String,
    /// The host's view.
    #[serde(flatten)]
    pub latencies: Latencies,
    /// Guest CPU time per request (how it is counted: `guest_us_per_request_source`).
    #[serde(default)]
    pub guest_us_per_request: Option<f64>,
    /// How `guest_us_per_request` is counted.
    #[serde(default)]
    pub guest_us_per_request_source: Option<String>,
    /// Guest clock per round trip.
    #[serde(default)]
    pub guest_clock_us_per_round_trip: Option<f64>,
    /// Guest CPU per request as a marginal cost that does not depend on the run's length: the
    /// slope of the same CPU figure between a short and a long run (`marginal_source`), so the
    /// run's fixed costs cancel.
    #[serde(default)]
    pub marginal_us_per_request: Option<f64>,
    /// How `marginal_us_per_request` is measured (the two runs' requests and CPU totals).
    #[serde(default)]
    pub marginal_source: Option<String>,
    /// The server's own counters (served, job CPU, network time, ...).
    #[serde(flatten)]
    pub about: Map<String, Value>,
}

impl EchoResult {
    /// A measured result with these latencies; the other figures are filled in by the caller.
    pub fn measured(latencies: Latencies) -> Self {
        EchoResult {
            status: "ok".into(),
            latencies,
            guest_us_per_request: None,
            guest_us_per_request_source: None,
            guest_clock_us_per_round_trip: None,
            marginal_us_per_request: None,
            marginal_source: None,
            about: Map::new(),
        }
    }

    /// Records the marginal cost from two runs `(requests, CPU µs)`, short then long; `what`
    /// names the CPU figure.
    pub fn set_marginal(&mut self, short: (f64, f64), long: (f64, f64), what: &str) {
        self.marginal_us_per_request = crate::echo::slope(short, long);
        self.marginal_source = Some(format!(
            "slope of {what} between two runs: {:.0} requests, {:.0} us; {:.0} requests, {:.0} us",
            short.0, short.1, long.0, long.1
        ));
    }

    /// Adds a counter or note.
    pub fn note(&mut self, name: &str, value: impl Into<Value>) {
        self.about.insert(name.into(), value.into());
    }
}

/// Push and invoke costs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Offload {
    /// First push of a 10 KiB module with its first run: `runs` (phase times per run) and
    /// `mean`.
    pub first_push_10k: PhaseRuns,
    /// Invoke of the cached module.
    pub invoke_cached: PhaseRuns,
    /// Guest instructions per native system call (`offload::syscalls`); absent in files from
    /// before native jobs ran in user mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_syscalls: Option<Value>,
}

/// Phase times (guest microseconds) of several runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct PhaseRuns {
    /// `ok` when measured.
    pub status: String,
    /// One map of phase name to microseconds per run.
    pub runs: Vec<Map<String, Value>>,
    /// The mean of each phase.
    pub mean: Map<String, Value>,
    /// What was measured and how.
    #[serde(flatten)]
    pub about: Map<String, Value>,
}

/// Platform figures.
#[derive(Debug, Serialize, Deserialize)]
pub struct Platforms {
    /// jos: image sizes, boot and network-ready times, heap.
    pub jos: Map<String, Value>,
    /// Linux: ready time, image sizes.
    pub linux: Map<String, Value>,
}

/// Mean guest times of several runs of one job, in microseconds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Timing {
    /// Start-to-result time of each run.
    pub exec_us: Vec<f64>,
    /// CPU time of each run.
    pub cpu_us: Vec<f64>,
    /// Mean of `exec_us`.
    pub mean_exec_us: f64,
    /// Mean of `cpu_us`.
    pub mean_cpu_us: f64,
}

impl Timing {
    /// The runs and their means.
    pub fn of(exec_us: Vec<f64>, cpu_us: Vec<f64>) -> Timing {
        let (mean_exec_us, mean_cpu_us) = (crate::echo::mean(&exec_us), crate::echo::mean(&cpu_us));
        Timing { exec_us, cpu_us, mean_exec_us, mean_cpu_us }
    }
}

/// Sizes (unsigned, bytes) and host wall times (ms) of one source's wasm, native and AOT builds
/// by jos-build; the AOT time is the whole pipeline (clang to wasm, wasm2c, arm-none-eabi-gcc,
/// conversion to a blob).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BuildFigures {
    /// The wasm module.
    pub wasm_module_bytes: Option<u64>,
    /// The native blob (gcc -O2).
    pub native_blob_bytes: Option<u64>,
    /// The AOT blob.
    pub aot_blob_bytes: Option<u64>,
    /// Host wall time of the wasm build.
    pub wasm_build_ms: Option<f64>,
    /// Host wall time of the native build.
    pub native_build_ms: Option<f64>,
    /// Host wall time of the AOT build.
    pub aot_build_ms: Option<f64>,
}

/// A guest example run as wasm, native blob and AOT blob on the same input (same output bytes).
#[derive(Debug, Serialize, Deserialize)]
pub struct GuestFormats {
    /// `guest-examples/c/NAME.c`.
    pub name: String,
    /// The input's size.
    pub input_bytes: u64,
    /// Runs per format.
    pub runs: u64,
    /// The builds' sizes and times.
    pub build: BuildFigures,
    /// wasm (wasmi on the device).
    pub wasm: Timing,
    /// The native blob.
    pub native: Timing,
    /// The AOT blob.
    pub aot: Timing,
}

/// One wasm module in wasm3 (under the Linux guest) and in jos's wasmi (and compiled AOT), at
/// the same N.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerModule {
    /// `plain` (clang -O2) or `unrolled` (clang -O3 -mllvm -unroll-threshold=3000).
    pub module: String,
    /// How the module was built.
    pub build: String,
    /// The module's size in bytes (unsigned).
    pub module_bytes: u64,
    /// MD5 repetitions per run.
    pub n: u64,
    /// wasm3 in the Linux guest: CPU time from getrusage, execution time from CLOCK_MONOTONIC,
    /// around the call of `run` (the module parsed, loaded and compiled before).
    pub wasm3: Option<Timing>,
    /// jos's wasmi (JobResult time_us / cpu_us), fuel metering on.
    pub wasmi: Timing,
    /// The fuel wasmi used per run.
    pub wasmi_fuel: f64,
    /// jos's wasmi on the same source and flags built with `-mbulk-memory` (what jos-cli builds;
    /// wasm3 0.4.7 cannot run it).
    pub wasmi_bulk: Option<Timing>,
    /// The fuel of a `wasmi_bulk` run.
    pub wasmi_bulk_fuel: Option<f64>,
    /// The same module compiled AOT on jos (JobResult figures).
    pub aot: Option<Timing>,
}

/// The engines on the same board: wasm3 against wasmi, and the guest examples as AOT/native/wasm.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Engines {
    /// wasm3 and wasmi (and AOT) on the same modules.
    pub peers: Vec<PeerModule>,
    /// The guest examples in three formats.
    pub guests: Vec<GuestFormats>,
    /// How wasm3 was built and run.
    pub wasm3_source: String,
}

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
            about: Map::new(),
        }
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

//! `jos-cli run --local`: run a wasm module on this machine through `jos_runtime`, the sandbox
//! the device uses, with the device's default limits; and the job report that `push` and
//! `invoke` share.

use std::path::PathBuf;

use jos_abi::job::{JobStatus, Stats, Value};
use jos_client::call::{export_signature, format_value, parse_args};
use jos_client::{status_name, JobLog};
use jos_runtime::{Capabilities, Entry, Sandbox, SandboxConfig, StdHost};

use crate::exit::Exit;

use super::{is_wasm, print_json, read_input, read_job_input, write_stdout, CliError, CommandResult};

/// The default fuel budget of a job (the device's default policy).
pub const DEFAULT_FUEL: u64 = 10_000_000_000;
/// Fuel per slice on the host (the device slices the same way inside its executive).
const SLICE_FUEL: u64 = 1_000_000;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli run --local md5.wasm --input message.txt
  echo -n hello | jos-cli run --local sha256.wasm --input -
  jos-cli run --local fib.wasm --fuel 1000000 --json
  jos-cli run --local fib.wasm --call fib 20           # --call NAME ARGS... comes last
  echo -n '7007 3' | jos-cli run --local echo.wasm --input - --grant net
  jos-cli run --local --aot md5.wasm --input message.txt  # compiled ahead of time (wasm2c + cc)

The module runs in the device's sandbox (jos_runtime) with its limits: 16 MiB of memory, 32 KiB
of output, 10^10 fuel unless --fuel says less. Output goes to stdout, logs to stderr.
It holds no rights unless --grant gives them: `net` lets it open UDP sockets on 127.0.0.1 (this
machine's loopback; they close when the job ends), `screen` prints its screen lines on stderr as
`[screen] ...`. Without the right, those calls answer PermissionDenied, as on a device.
Exit codes as for push: 0 ok, 11 rejected, 12 trap, 13 out of fuel, 14 limit, 15 deadline.")]
pub struct Args {
    /// Run on this machine (required: to run on a device, use `jos-cli push`).
    #[arg(long, required = true)]
    pub local: bool,
    /// The wasm module.
    pub file: PathBuf,
    /// The job's input: a file, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// Fuel budget.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Wall-clock limit in milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Give the job a right: `net` (UDP sockets on 127.0.0.1), `screen` (lines on stderr);
    /// repeatable or comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "RIGHT")]
    pub grant: Vec<Right>,
    /// Compile the module ahead of time (wabt's wasm2c + this machine's cc, the runtime of
    /// `build --format aot`) and run the native program instead of interpreting it. No fuel:
    /// an endless loop ends at --timeout (default 60 s). Not with --call or --fuel.
    #[arg(long)]
    pub aot: bool,
    /// Call an exported function with numeric arguments instead of the entry point.
    #[arg(long, num_args = 1.., value_name = "NAME ARGS", allow_hyphen_values = true)]
    pub call: Option<Vec<String>>,
}

/// A right `run --local` can give a job (the capabilities a device grants per signer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Right {
    /// UDP sockets (`udp_bind`, `udp_send`, `udp_recv`, `udp_close`), bound on 127.0.0.1.
    Net,
    /// The status screen (`screen_print`): lines printed on stderr.
    Screen,
}

/// A finished job, local or remote, as printed.
#[derive(Clone, Debug)]
pub struct JobReport {
    /// Where it ran (`local` or the device's name).
    pub place: String,
    /// The module's hash.
    pub hash: Option<[u8; 32]>,
    /// How it ended.
    pub status: JobStatus,
    /// Detail of a failure.
    pub detail: Option<String>,
    /// Exit value.
    pub exit_value: i32,
    /// Output bytes (a called function may write output too).
    pub output: Vec<u8>,
    /// Call results (`--call`; `None` for the entry point or a failed call).
    pub results: Option<Vec<Value>>,
    /// Log lines.
    pub logs: Vec<JobLog>,
    /// Usage.
    pub stats: Stats,
    /// Bytes sent and received on the network, if any.
    pub traffic: Option<(u64, u64)>,
}

impl JobReport {
    /// Prints the report (output on stdout, logs and summary on stderr, or JSON on stdout) and
    /// returns the exit code for its status.
    pub fn print(&self, json: bool) -> CommandResult {
        let exit = Exit::from_status(self.status);
        if json {
            let logs: Vec<_> =
                self.logs.iter().map(|line| serde_json::json!({"level": line.level, "text": line.text})).collect();
            let mut value = serde_json::json!({
                "place": self.place,
                "status": status_name(self.status),
                "exit_code": exit.code(),
                "exit_value": self.exit_value,
                "output": String::from_utf8_lossy(&self.output),
                "output_hex": hex::encode(&self.output),
                "logs": logs,
                "stats": {
                    "fuel_used": self.stats.fuel_used,
                    "time_us": self.stats.time_us,
                    "cpu_us": self.stats.cpu_us,
                    "cycles": self.stats.cycles,
                    "peak_memory": self.stats.peak_memory_bytes,
                    "engine": self.stats.engine.name(),
                },
            });
            if let Some(hash) = self.hash {
                value["hash"] = serde_json::json!(hex::encode(hash));
            }
            if let Some(detail) = &self.detail {
                value["error"] = serde_json::json!(detail);
            }
            if let Some(results) = &self.results {
                value["results"] =
                    serde_json::json!(results.iter().map(|value| value_json(*value)).collect::<Vec<_>>());
            }
            if let Some((sent, received)) = self.traffic {
                value["bytes_sent"] = serde_json::json!(sent);
                value["bytes_received"] = serde_json::json!(received);
            }
            print_json(&value);
            return Ok(exit);
        }
        for line in &self.logs {
            eprintln!("[{}] {}", line.level, line.text);
        }
        // The job's output, then a call's results one per line (on a line of their own).
        write_stdout(&self.output)?;
        if let Some(results) = &self.results {
            let mut text = String::new();
            if self.output.last().is_some_and(|byte| *byte != b'\n') {
                text.push('\n');
            }
            text.extend(results.iter().map(|value| format_value(*value) + "\n"));
            write_stdout(text.as_bytes())?;
        }
        let time_ms = self.stats.time_us as f64 / 1000.0;
        let cpu_ms = self.stats.cpu_us as f64 / 1000.0;
        let mut summary = format!(
            "{}: {} (exit value {}), {} engine, {time_ms:.1} ms, cpu {cpu_ms:.1} ms",
            self.place,
            status_name(self.status),
            self.exit_value,
            self.stats.engine.name()
        );
        if self.stats.fuel_used > 0 {
            summary += &format!(", fuel {}", self.stats.fuel_used);
        }
        if let Some(hash) = self.hash {
            summary += &format!(", module {}", hex::encode(hash));
        }
        eprintln!("{summary}");
        if let Some(detail) = &self.detail {
            eprintln!("error: {detail}");
        }
        Ok(exit)
    }
}

/// Parses `--call NAME ARGS...` against the module's export.
pub fn parse_call(module: &[u8], call: &[String]) -> Result<(String, Vec<Value>), CliError> {
    let (name, args) = call.split_first().ok_or_else(|| CliError::new(Exit::Usage, "--call needs a function name"))?;
    let signature = export_signature(module, name).map_err(|error| CliError::new(Exit::Usage, error))?;
    let values = parse_args(name, args, &signature).map_err(|error| CliError::new(Exit::Usage, error))?;
    Ok((name.clone(), values))
}

/// Runs `run --local`.
pub fn run(args: Args) -> CommandResult {
    let module = read_input(&args.file)?;
    if !is_wasm(&module) {
        return Err(CliError::new(Exit::Input, format!("{} is not a wasm module", args.file.display()))
            .hint("native blobs run only on a device: `jos-cli push FILE --native`"));
    }
    let input = read_job_input(args.input.as_deref())?;
    if args.aot {
        return super::run_aot::run(&args, &module, &input);
    }
    let entry = match &args.call {
        Some(call) => {
            let (name, values) = parse_call(&module, call)?;
            Entry::Call { name, args: values }
        }
        None => Entry::Default,
    };
    let limits = jos_runtime::Limits {
        fuel_budget: args.fuel.unwrap_or(DEFAULT_FUEL),
        max_output_bytes: jos_abi::wire::MAX_OUTPUT_LEN,
        deadline_us: args.timeout.map(|ms| ms.saturating_mul(1000)),
        ..jos_runtime::Limits::default()
    };
    let capabilities = Capabilities {
        network: args.grant.contains(&Right::Net),
        screen: args.grant.contains(&Right::Screen),
        gpio: false,
    };
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    // The host (and with it every socket the job opened) is dropped once the job has ended.
    let (result, host) = sandbox.run(&module, StdHost::new(input), limits, capabilities, entry, SLICE_FUEL);
    for line in &host.screen {
        eprintln!("[screen] {line}");
    }
    drop(host);
    let report = JobReport {
        place: "local".into(),
        hash: Some(jos_abi::signature::sha256(&module)),
        status: result.status,
        detail: result.error.as_ref().map(ToString::to_string),
        exit_value: result.exit_value.unwrap_or(0),
        output: result.output.clone(),
        results: args.call.as_ref().map(|_| result.values.clone()),
        logs: result
            .logs
            .iter()
            .map(|line| JobLog { level: jos_client::session::level_name(line.level as u32), text: line.text.clone() })
            .collect(),
        // The job ran in one go on this thread: it held the CPU all its time (`cpu_us`); the
        // interpreter ran it (the default engine).
        stats: result.stats,
        traffic: None,
    };
    report.print(args.json)
}

/// The JSON form of a result: `{"type": "i32", "value": 3}` (floats as numbers, or strings for
/// `inf`/`nan`).
pub fn value_json(value: Value) -> serde_json::Value {
    let (ty, number) = match value {
        Value::I32(value) => ("i32", serde_json::json!(value)),
        Value::I64(value) => ("i64", serde_json::json!(value)),
        Value::F32(value) if value.is_finite() => ("f32", serde_json::json!(value)),
        Value::F64(value) if value.is_finite() => ("f64", serde_json::json!(value)),
        Value::F32(value) => ("f32", serde_json::json!(value.to_string())),
        Value::F64(value) => ("f64", serde_json::json!(value.to_string())),
    };
    serde_json::json!({ "type": ty, "value": number })
}

//! `jos-cli fleet status | push | invoke`: a fleet of devices behind an MQTT 5 broker
//! (docs/fleet.md), through `jos_client::fleet`: the devices' retained statuses, and one job per
//! input file, results written beside the inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use jos_abi::wire::{Format, JobStatus, Limits};
use jos_client::fleet::{Code, FleetClient, FleetKeys, FleetProgress, FleetRun, FleetSettings, RunOptions, Task};
use jos_client::status_name;
use jos_client::store::Home;

use crate::exit::Exit;

use super::push::{cache_dir, cached_module, check_module, compile_aot, AOT_MEMORY_PAGES};
use super::run::parse_call;
use super::sign::{default_signing_key, is_signed, sign_bytes};
use super::{home, is_blob, is_wasm, print_json, read_input, CliError, CommandResult};

/// Arguments of `fleet`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli fleet --broker 192.168.7.1 status
  jos-cli fleet --broker 192.168.7.1 --fleet lab push md5.wasm --inputs messages/
  jos-cli fleet push md5.blob --native --inputs messages/ --json
  jos-cli fleet invoke 3b5d5c37 --inputs more-messages/

The devices join a fleet with `jos-cli provision --broker IP --fleet NAME`, which also creates the
fleet key in $JOS_HOME/fleets/NAME.key: job inputs are sealed to it, results are sealed to this
client and accepted only from devices in the trust store, and each job is signed with
$JOS_HOME/signing.key. See docs/fleet.md.")]
pub struct Args {
    /// The broker, `HOST[:PORT]` (port 1883 when left out).
    #[arg(long, global = true, value_name = "HOST[:PORT]", default_value = "127.0.0.1")]
    pub broker: String,
    /// The fleet (default: the only fleet with a key in $JOS_HOME/fleets).
    #[arg(long, global = true, value_name = "NAME")]
    pub fleet: Option<String>,
    /// The user name to log in to the broker with.
    #[arg(long, global = true, value_name = "NAME", requires = "mqtt_password_file")]
    pub mqtt_username: Option<String>,
    /// A file holding the broker password (one line).
    #[arg(long, global = true, value_name = "FILE", requires = "mqtt_username")]
    pub mqtt_password_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `fleet` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// The fleet's devices from their retained statuses: state, load, jobs done, refusals.
    Status {
        /// How long to collect statuses, milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 2000)]
        wait: u64,
        /// Print the devices as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One job per file in DIR, spread over the fleet; each result written beside its input.
    #[command(after_help = "\
For each file INPUT in DIR (not recursive; hidden files and *.out, *.err skipped), the job's
output goes to INPUT.out; a job that did not end with status ok also leaves INPUT.err saying why.
A job whose result did not come back within --job-timeout is published again (a new job id);
every file gets exactly one result. Exit 0 when every job ended ok, else the exit code of the
first failure (docs/cli.md).")]
    Push(PushArgs),
    /// One job per file in DIR, running a module the devices have cached (by hash).
    Invoke(InvokeArgs),
}

/// Options of `fleet push` and `fleet invoke`.
#[derive(Debug, clap::Args)]
pub struct JobOptions {
    /// The folder of input files (one job each).
    #[arg(long, value_name = "DIR")]
    pub inputs: PathBuf,
    /// Fuel budget per job (wasm), capped by the devices' policy.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Deadline of each run on a device, milliseconds.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u32>,
    /// Publish a job again (with a new job id) when its result has not come back after this
    /// many seconds (also the job's lifetime; at most 900).
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub job_timeout: u64,
    /// Publish a task at most this many times.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub attempts: u32,
    /// Jobs unanswered at most at once (0: twice the devices online).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub in_flight: usize,
    /// Print the results as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Call an exported wasm function with numeric arguments instead of the entry point
    /// (NAME then ARGS, last on the command line).
    #[arg(long, num_args = 1.., value_name = "NAME ARGS", allow_hyphen_values = true)]
    pub call: Option<Vec<String>>,
}

/// Arguments of `fleet push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The wasm module or native blob (signed with $JOS_HOME/signing.key when unsigned).
    pub file: PathBuf,
    /// The file is a native ARMv6 blob (detected from its magic when not given).
    #[arg(long, conflicts_with = "aot")]
    pub native: bool,
    /// Compile the wasm module ahead of time first and send the AOT blob (as `push --aot`).
    #[arg(long)]
    pub aot: bool,
    /// Job options.
    #[command(flatten)]
    pub job: JobOptions,
}

/// Arguments of `fleet invoke`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// The module's SHA-256 (hex), or a prefix of a module pushed from this machine.
    pub hash: String,
    /// Job options.
    #[command(flatten)]
    pub job: JobOptions,
}

impl Args {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match &self.action {
            Action::Status { json, .. } => *json,
            Action::Push(args) => args.job.json,
            Action::Invoke(args) => args.job.json,
        }
    }

    fn settings(&self, home: &Home) -> Result<FleetSettings, CliError> {
        let fleet = match &self.fleet {
            Some(fleet) => fleet.clone(),
            None => {
                let fleets = home.fleets();
                match fleets.as_slice() {
                    [only] => only.clone(),
                    [] => {
                        return Err(CliError::new(Exit::Usage, "which fleet? pass --fleet NAME")
                            .hint("`jos-cli provision --broker IP --fleet NAME ...` makes a fleet's key"))
                    }
                    _ => {
                        return Err(CliError::new(
                            Exit::Usage,
                            format!("several fleets have keys here ({}): pass --fleet NAME", fleets.join(", ")),
                        ))
                    }
                }
            }
        };
        let (host, port) = match self.broker.rsplit_once(':') {
            Some((host, port)) => (
                host.to_string(),
                port.parse::<u16>().ok().filter(|port| *port != 0).ok_or_else(|| {
                    CliError::new(Exit::Usage, format!("--broker `{}` is not HOST[:PORT]", self.broker))
                })?,
            ),
            None => (self.broker.clone(), jos_abi::fleet::DEFAULT_PORT),
        };
        let mut settings = FleetSettings::new(&host, port, &fleet);
        if let (Some(user), Some(path)) = (&self.mqtt_username, &self.mqtt_password_file) {
            let text = std::fs::read_to_string(path).map_err(|error| {
                CliError::new(Exit::Usage, format!("cannot read --mqtt-password-file {}: {error}", path.display()))
            })?;
            settings.credentials = Some((user.clone(), text.trim_end_matches(['\n', '\r']).to_string()));
        }
        settings.check()?;
        Ok(settings)
    }
}

/// Runs `fleet`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    let settings = args.settings(&home)?;
    match &args.action {
        Action::Status { wait, json } => status(&home, &settings, Duration::from_millis(*wait), *json),
        Action::Push(push) => {
            let (code, module) = push_code(&home, push)?;
            run_jobs(&home, &settings, code, module.as_deref(), &push.job)
        }
        Action::Invoke(invoke) => {
            let (hash, module) = cached_module(&home, &invoke.hash)?;
            run_jobs(&home, &settings, Code::Cached(hash), module.as_deref(), &invoke.job)
        }
    }
}

fn status(home: &Home, settings: &FleetSettings, wait: Duration, json: bool) -> CommandResult {
    let mut client = FleetClient::connect(settings)?;
    let devices = client.statuses(wait);
    let trust = home.trust()?.devices;
    if json {
        let list: Vec<_> = devices
            .iter()
            .map(|device| {
                serde_json::json!({
                    "client_id": device.client_id,
                    "name": device.name,
                    "state": device.state.name(),
                    "trusted_as": device.pinned(&trust).map(|pinned| pinned.name.clone()),
                    "heap_free": device.heap_free,
                    "heap_size": device.heap_size,
                    "uptime_s": device.uptime_s,
                    "jobs_done": device.jobs_done,
                    "jobs_failed": device.jobs_failed,
                    "fleet_messages": device.fleet_messages,
                    "fleet_jobs": device.fleet_jobs,
                    "connects": device.connects,
                    "refusals": {
                        "replayed": device.refusals.replayed,
                        "bad_signature": device.refusals.bad_signature,
                        "bad_seal": device.refusals.bad_seal,
                        "malformed": device.refusals.malformed,
                        "busy": device.refusals.busy,
                    },
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "broker": format!("{}:{}", settings.host, settings.port),
            "fleet": settings.fleet,
            "devices": list,
        }));
        return Ok(Exit::Success);
    }
    let online = devices.iter().filter(|device| device.state != jos_abi::fleet::DeviceState::Offline).count();
    println!(
        "fleet `{}` at {}:{}: {} device(s), {online} online",
        settings.fleet,
        settings.host,
        settings.port,
        devices.len()
    );
    if devices.is_empty() {
        return Ok(Exit::Success);
    }
    println!(
        "{:<20} {:<8} {:>5} {:>9} {:>7} {:>10} {:>8} {:>8}  REFUSED (replay/signature/seal/malformed/busy)",
        "NAME", "STATE", "HEAP", "JOBS DONE", "FAILED", "FLEET JOBS", "UPTIME", "TRUSTED"
    );
    for device in &devices {
        let heap = if device.heap_size > 0 {
            format!("{}%", 100 - u64::from(device.heap_free) * 100 / u64::from(device.heap_size))
        } else {
            "-".into()
        };
        let refused = device.refusals;
        println!(
            "{:<20} {:<8} {:>5} {:>9} {:>7} {:>10} {:>7}s {:>8}  {} ({}/{}/{}/{}/{})",
            device.name,
            device.state.name(),
            heap,
            device.jobs_done,
            device.jobs_failed,
            device.fleet_jobs,
            device.uptime_s,
            if device.pinned(&trust).is_some() { "yes" } else { "no" },
            refused.total(),
            refused.replayed,
            refused.bad_signature,
            refused.bad_seal,
            refused.malformed,
            refused.busy,
        );
    }
    Ok(Exit::Success)
}

/// The code of `fleet push`: read, compiled ahead of time with --aot, checked, signed when
/// unsigned (as `push`).
fn push_code(home: &Home, args: &PushArgs) -> Result<(Code, Option<Vec<u8>>), CliError> {
    let mut module = read_input(&args.file)?;
    if args.aot {
        if args.job.call.is_some() {
            return Err(CliError::new(Exit::Usage, "--call works with wasm modules only, not with --aot"));
        }
        module = compile_aot(&args.file, &module, AOT_MEMORY_PAGES)?;
    }
    let format = if args.native || args.aot || is_blob(&module) { Format::NativeArmv6 } else { Format::Wasm };
    match format {
        Format::NativeArmv6 if is_wasm(&module) => {
            return Err(
                CliError::new(Exit::Input, "--native given, but the file is a wasm module").hint("drop --native")
            )
        }
        Format::Wasm if !is_wasm(&module) => {
            return Err(CliError::new(
                Exit::Input,
                format!("{} is neither a wasm module nor a jos blob", args.file.display()),
            )
            .hint("build it with `jos-cli build SRC --format wasm|native`"))
        }
        _ => check_module(&module, format)?,
    }
    if !is_signed(&module) {
        let key = default_signing_key(home)?;
        module = sign_bytes(&module, &key, true)?;
    }
    let bytes: Arc<[u8]> = Arc::from(module.as_slice());
    Ok((Code::Inline { format, bytes }, Some(module)))
}

/// The input files of `--inputs DIR`, sorted.
fn input_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        CliError::new(Exit::Input, format!("cannot read --inputs {}: {error}", dir.display()))
            .hint("name a folder holding one input file per job")
    })?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter(|path| {
            let name = path.file_name().and_then(|name| name.to_str()).unwrap_or(".");
            !name.starts_with('.') && !name.ends_with(".out") && !name.ends_with(".err")
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::new(Exit::Input, format!("{} holds no input files", dir.display())));
    }
    Ok(files)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn run_jobs(
    home: &Home,
    settings: &FleetSettings,
    code: Code,
    module: Option<&[u8]>,
    job: &JobOptions,
) -> CommandResult {
    let files = input_files(&job.inputs)?;
    let call = match (&job.call, module) {
        (Some(_), Some(module)) if is_blob(module) => {
            return Err(CliError::new(Exit::Usage, "--call works with wasm modules only"))
        }
        (Some(call), Some(module)) => Some(parse_call(module, call)?),
        (Some(_), None) => {
            return Err(CliError::new(
                Exit::Usage,
                "--call needs the module in the local cache (push it from here once)",
            ))
        }
        (None, _) => None,
    };
    if job.job_timeout == 0 || job.job_timeout * 1000 > jos_abi::fleet_job::MAX_JOB_LIFETIME_MS {
        return Err(CliError::new(Exit::Usage, "--job-timeout is 1..=900 seconds"));
    }
    let keys = FleetKeys::from_home(home, &settings.fleet)?;
    let limits = Limits { fuel: job.fuel.unwrap_or(0), memory: 0, deadline_ms: job.timeout.unwrap_or(0), output: 0 };
    let mut tasks = Vec::with_capacity(files.len());
    for file in &files {
        tasks.push(Task { code: code.clone(), input: read_input(file)?, limits, call: call.clone() });
    }
    let options = RunOptions {
        job_timeout: Duration::from_secs(job.job_timeout),
        max_attempts: job.attempts.max(1),
        in_flight: job.in_flight,
        ..RunOptions::default()
    };
    let mut client = FleetClient::connect(settings)?;
    let bar = if job.json { ProgressBar::hidden() } else { ProgressBar::new(tasks.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} jobs {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("publishing");
    let mut republished = 0u32;
    let run = client.run(&tasks, &keys, &options, &mut |progress| match progress {
        FleetProgress::Finished { .. } => bar.inc(1),
        FleetProgress::Republished { task, attempt } => {
            republished += 1;
            bar.set_message(format!("{republished} published again"));
            bar.println(format!(
                "{}: no result within {} s, published again (attempt {attempt})",
                files[task].display(),
                job.job_timeout
            ));
        }
        FleetProgress::BrokerDown(error) => bar.set_message(format!("broker lost: {error}")),
        FleetProgress::BrokerUp => bar.set_message("broker back"),
        FleetProgress::Dropped { reason } => bar.println(format!("dropped {reason}")),
        FleetProgress::Published { .. } => {}
    });
    bar.finish_and_clear();
    let run = run?;
    write_results(&files, &run)?;
    // As `push` does: kept for `fleet invoke` (and `invoke`) by a hash prefix once a device ran it.
    if let (Some(module), true) = (module, run.results.iter().any(|result| result.outcome.is_ok())) {
        let extension = if is_blob(module) { "blob" } else { "wasm" };
        let path = cache_dir(home).join(format!("{}.{extension}", hex::encode(code.hash())));
        jos_client::store::write_file(&path, module, false).ok();
    }
    report(&files, &run, &code.hash(), job.json)
}

fn failure(result: &jos_client::fleet::TaskResult) -> Option<(Exit, String)> {
    match &result.outcome {
        Ok(job) if job.status == JobStatus::Ok => None,
        Ok(job) => Some((
            Exit::from_status(job.status),
            format!("{} (exit value {})", status_name(job.status), job.exit_value),
        )),
        Err(error) => Some((Exit::from_client(error), error.to_string())),
    }
}

fn write_results(files: &[PathBuf], run: &FleetRun) -> Result<(), CliError> {
    for (file, result) in files.iter().zip(&run.results) {
        let write = |path: PathBuf, bytes: &[u8]| {
            std::fs::write(&path, bytes)
                .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", path.display())))
        };
        if let Ok(job) = &result.outcome {
            write(with_suffix(file, ".out"), &job.output)?;
        }
        let err = with_suffix(file, ".err");
        match failure(result) {
            Some((_, text)) => {
                let mut text = format!("{text}\n");
                if let Ok(job) = &result.outcome {
                    for line in &job.logs {
                        text += &format!("[{}] {}\n", line.level, line.text);
                    }
                }
                write(err, text.as_bytes())?;
            }
            None => {
                let _ = std::fs::remove_file(err);
            }
        }
    }
    Ok(())
}

fn report(files: &[PathBuf], run: &FleetRun, hash: &[u8; 32], json: bool) -> CommandResult {
    let mut per_device: BTreeMap<&str, usize> = BTreeMap::new();
    for result in &run.results {
        if !result.device.is_empty() {
            *per_device.entry(result.device.as_str()).or_default() += 1;
        }
    }
    let first_failure = run.results.iter().find_map(failure);
    let exit = first_failure.as_ref().map_or(Exit::Success, |(exit, _)| *exit);
    let seconds = run.elapsed.as_secs_f64();
    if json {
        let tasks: Vec<_> = files
            .iter()
            .zip(&run.results)
            .map(|(file, result)| {
                let mut value = serde_json::json!({
                    "input": file.display().to_string(),
                    "device": result.device,
                    "attempts": result.attempts,
                });
                match &result.outcome {
                    Ok(job) => {
                        value["status"] = serde_json::json!(status_name(job.status));
                        value["exit_value"] = serde_json::json!(job.exit_value);
                        value["output_file"] = serde_json::json!(with_suffix(file, ".out").display().to_string());
                        value["cpu_us"] = serde_json::json!(job.stats.cpu_us);
                    }
                    Err(error) => {
                        value["status"] = serde_json::json!("error");
                        value["error"] = serde_json::json!(error.to_string());
                    }
                }
                value
            })
            .collect();
        print_json(&serde_json::json!({
            "hash": hex::encode(hash),
            "tasks": tasks,
            "failed": run.failed(),
            "republished": run.republished,
            "dropped": run.dropped,
            "elapsed_ms": run.elapsed.as_millis() as u64,
            "devices": per_device,
            "exit_code": exit.code(),
        }));
        return Ok(exit);
    }
    for (file, result) in files.iter().zip(&run.results) {
        if let Some((_, text)) = failure(result) {
            eprintln!("{}: {text}", file.display());
        }
    }
    let spread: Vec<String> = per_device.iter().map(|(name, count)| format!("{name} {count}")).collect();
    eprintln!(
        "{} job(s), {} ok, {} failed in {seconds:.1} s ({:.2} jobs/s); {} published again, {} duplicate or stray result(s) dropped; by device: {}",
        run.results.len(),
        run.results.len() - run.failed(),
        run.failed(),
        run.results.len() as f64 / seconds.max(1e-3),
        run.republished,
        run.dropped,
        if spread.is_empty() { "none".into() } else { spread.join(", ") }
    );
    eprintln!("results written beside the inputs in {}", files[0].parent().unwrap_or(Path::new(".")).display());
    if run.results.iter().any(|result| result.outcome.is_ok()) {
        eprintln!(
            "module {} (run it again with `jos-cli fleet invoke {}`)",
            hex::encode(hash),
            &hex::encode(hash)[..12]
        );
    }
    Ok(exit)
}

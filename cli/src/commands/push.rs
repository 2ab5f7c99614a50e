//! `jos-cli push` and `jos-cli invoke`: send code to a device (signing it when unsigned), run it,
//! print its output, logs and status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use jos_abi::blob::Blob;
use jos_abi::wire::{Format, Limits};
use jos_abi::AbiVersion;
use jos_build::{BuildRequest, Format as BuildFormat};
use jos_client::call::parse_args_untyped;
use jos_client::store::{from_hex, Home};
use jos_client::{Client, ClientError, DeviceSpec, Progress, PushRequest, ResolvedDevice, RunOutcome};
use jos_runtime::{Sandbox, SandboxConfig};

use crate::exit::Exit;

use super::run::{parse_call, JobReport};
use super::sign::{default_signing_key, is_signed, sign_bytes};
use super::{home, is_blob, is_wasm, read_input, read_job_input, CliError, CommandResult};

/// Options shared by `push` and `invoke`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The device: a pinned device's name, or an address IP or IP:PORT (default: the default device).
    #[arg(long, value_name = "NAME|ADDR")]
    pub device: Option<String>,
    /// The job's input: a file, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// Fuel budget (wasm), capped by the device's policy.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Deadline for the job in milliseconds (the device aborts it past that).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u32>,
    /// Print the result as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Call an exported wasm function with numeric arguments instead of the entry point
    /// (NAME then ARGS, last on the command line).
    #[arg(long, num_args = 1.., value_name = "NAME ARGS", allow_hyphen_values = true)]
    pub call: Option<Vec<String>>,
}

/// Arguments of `push`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli push md5.wasm --input message.txt
  jos-cli push md5.blob --native --device lab-pi --timeout 2000
  jos-cli push md5.wasm --aot --input message.txt   # compiled to a native blob here first
  echo -n abc | jos-cli push sha256.wasm --input - --json
  jos-cli push fib.wasm --call fib 30
  jos-cli push broken.wasm --raw --unsigned        # exercise the device's own checks

An unsigned file is signed with $JOS_HOME/signing.key first. The job's output goes to stdout,
its logs to stderr. Exit codes: 0 ok, 8 unreachable, 9 untrusted device, 10 client not
authorized, 11 module rejected, 12 trap, 13 out of fuel, 14 limit, 15 deadline, 16 busy,
19 protocol error, 20 timeout (docs/cli.md).")]
pub struct Args {
    /// The wasm module or native blob.
    pub file: PathBuf,
    /// The file is a native ARMv6 blob (detected from its magic when not given).
    #[arg(long, conflicts_with = "aot")]
    pub native: bool,
    /// Compile the wasm module ahead of time first (as `build --format aot`: wasm2c and
    /// arm-none-eabi-gcc) and push the AOT blob, signed like a native blob (the device runs it as
    /// a native job: the signer needs the `native` right). The entry point only: no --call.
    #[arg(long)]
    pub aot: bool,
    /// With --aot: the cap on the module's memory maximum, in 64 KiB pages. An AOT blob reserves
    /// its whole memory up front (as bss), and the device refuses a blob larger than its memory
    /// policy: the default, 240 pages (15 MiB), leaves 1 MiB for code and data under the default
    /// 16 MiB policy.
    #[arg(long, value_name = "PAGES", default_value_t = AOT_MEMORY_PAGES, requires = "aot")]
    pub max_memory_pages: u64,
    /// Send the file without client-side checks (still signed unless --unsigned).
    #[arg(long)]
    pub raw: bool,
    /// Do not sign an unsigned file.
    #[arg(long)]
    pub unsigned: bool,
    /// Shared job options.
    #[command(flatten)]
    pub job: JobArgs,
}

/// Arguments of `invoke`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  jos-cli invoke 3b5d5c3712955042212316173ccf37be800a1e8b1d1b5f7b6d5d6c0a3e0f1a2b --input msg.txt
  jos-cli invoke 3b5d5c37 --call fib 25      # a prefix works for modules pushed from here

Runs a module the device has cached (the hash `push` printed) without sending it again.
Exits 17 when the device no longer has it.")]
pub struct InvokeArgs {
    /// The module's SHA-256 (hex), or a prefix of a module pushed from this machine.
    pub hash: String,
    /// Shared job options.
    #[command(flatten)]
    pub job: JobArgs,
}

fn limits(job: &JobArgs) -> Limits {
    Limits { fuel: job.fuel.unwrap_or(0), memory: 0, deadline_ms: job.timeout.unwrap_or(0), output: 0 }
}

fn client_for(home: Home, job: &JobArgs) -> Result<(Client, ResolvedDevice), CliError> {
    let mut client = Client::new(home).map_err(|error| CliError::from(error).hint("run `jos-cli keygen` first"))?;
    // The device sends progress while a job runs; a silent device past this is gone.
    let wait = job.timeout.map_or(30_000, |ms| u64::from(ms) + 10_000).max(30_000);
    client.io_timeout = Duration::from_millis(wait);
    let spec = job.device.clone().map_or(DeviceSpec::Default, DeviceSpec::Named);
    let device = client.resolve(&spec)?;
    Ok((client, device))
}

/// Progress display: a byte bar while sending, a spinner while the job runs.
struct Display {
    bar: Option<ProgressBar>,
}

impl Display {
    fn new(json: bool) -> Self {
        Display { bar: (!json).then(ProgressBar::hidden) }
    }

    fn update(&mut self, progress: Progress) {
        let Some(bar) = &mut self.bar else { return };
        match progress {
            Progress::Sent { sent, total } => {
                if bar.is_hidden() {
                    *bar = ProgressBar::new(total);
                    bar.set_style(
                        ProgressStyle::with_template("{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    bar.set_message("sending");
                }
                bar.set_position(sent);
            }
            Progress::Verifying => bar.set_message("verifying"),
            Progress::Running { fuel_used, elapsed_us, output_len } => {
                if bar.length().is_some() {
                    bar.finish_and_clear();
                    *bar = ProgressBar::new_spinner();
                }
                bar.set_message(format!(
                    "running: {:.1} s, fuel {fuel_used}, output {output_len} B",
                    elapsed_us as f64 / 1e6
                ));
                bar.tick();
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn report(device: &ResolvedDevice, outcome: RunOutcome, call: bool) -> Result<JobReport, CliError> {
    let job = outcome.job;
    if !call && !job.results.is_empty() {
        return Err(CliError::from(ClientError::Protocol(format!(
            "the device sent {} call result(s) for a run of the entry point",
            job.results.len()
        ))));
    }
    let results = (call && job.status == jos_abi::wire::JobStatus::Ok).then_some(job.results);
    Ok(JobReport {
        place: device.advert.name.clone(),
        hash: Some(outcome.hash),
        status: job.status,
        detail: None,
        exit_value: job.exit_value,
        output: job.output,
        results,
        logs: job.logs,
        stats: job.stats,
        traffic: Some((outcome.traffic.bytes_sent, outcome.traffic.bytes_received)),
    })
}

/// The local copy of pushed wasm modules (for typed `invoke --call` and hash prefixes).
pub(crate) fn cache_dir(home: &Home) -> PathBuf {
    home.root().join("cache")
}

pub(crate) fn check_module(bytes: &[u8], format: Format) -> Result<(), CliError> {
    match format {
        Format::Wasm => {
            let mut sandbox = Sandbox::new(SandboxConfig::default());
            sandbox.compile(bytes).map(|_| ()).map_err(|error| {
                CliError::new(Exit::Rejected, format!("the module would be refused: {error}"))
                    .hint("fix the module (see `jos-cli build`), or send it anyway with --raw")
            })
        }
        Format::NativeArmv6 => {
            let blob = Blob::new_checked(bytes).map_err(|error| {
                CliError::new(Exit::Rejected, format!("not a valid jos blob: {error}"))
                    .hint("rebuild it with `jos-cli build --format native`")
            })?;
            if !AbiVersion::CURRENT.accepts(blob.abi_version()) {
                return Err(CliError::new(Exit::Rejected, format!("the blob needs ABI {:?}", blob.abi_version())));
            }
            Ok(())
        }
    }
}

/// `push --aot`'s default memory cap in 64 KiB pages (15 MiB: the blob, its code and data
/// included, fits the default 16 MiB memory policy of `jos-cli provision`).
pub const AOT_MEMORY_PAGES: u64 = 240;

/// `push --aot`: the wasm module compiled into an unsigned AOT blob (`jos_build`'s
/// `build --format aot`, in a scratch folder) with its memory capped at `max_memory_pages`.
pub(crate) fn compile_aot(file: &Path, module: &[u8], max_memory_pages: u64) -> Result<Vec<u8>, CliError> {
    if !is_wasm(module) {
        return Err(CliError::new(Exit::Input, format!("--aot takes a wasm module; {} is not one", file.display()))
            .hint("build one with `jos-cli build SRC --format wasm`, or push a blob with --native"));
    }
    let scratch = tempfile::Builder::new()
        .prefix("jos-push-aot-")
        .tempdir()
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot create a temporary folder: {error}")))?;
    let source = scratch.path().join("module.wasm");
    let output = scratch.path().join("module.blob");
    std::fs::write(&source, module)
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write {}: {error}", source.display())))?;
    let request = BuildRequest {
        sources: vec![source],
        format: BuildFormat::Aot,
        output: Some(output.clone()),
        max_memory_pages,
        keep_names: false,
        verbose: false,
    };
    jos_build::build(&request).map_err(|error| {
        CliError::new(Exit::from_build(&error), format!("cannot compile {} ahead of time: {error}", file.display()))
            .hint("`jos-cli build FILE --format aot --verbose` shows each step")
    })?;
    read_input(&output)
}

/// Runs `push`.
pub fn run(args: Args) -> CommandResult {
    let home = home()?;
    let mut module = read_input(&args.file)?;
    if args.aot {
        if args.job.call.is_some() {
            return Err(CliError::new(Exit::Usage, "--call works with wasm modules only, not with --aot")
                .hint("an AOT blob runs its entry point `run`"));
        }
        module = compile_aot(&args.file, &module, args.max_memory_pages)?;
    }
    let format = if args.native || args.aot || is_blob(&module) { Format::NativeArmv6 } else { Format::Wasm };
    if !args.raw {
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
    }
    if !args.unsigned && !is_signed(&module) {
        let key = default_signing_key(&home)?;
        module = sign_bytes(&module, &key, true)?;
    }
    let call = match &args.job.call {
        Some(_) if format == Format::NativeArmv6 => {
            return Err(CliError::new(Exit::Usage, "--call works with wasm modules only"))
        }
        Some(call) => Some(parse_call(&module, call)?),
        None => None,
    };
    let input = read_job_input(args.job.input.as_deref())?;
    let (client, device) = client_for(home.clone(), &args.job)?;
    let request = PushRequest { format, module: &module, input: &input, limits: limits(&args.job), call };
    let mut display = Display::new(args.job.json);
    let outcome = client.push_and_run(&device, &request, &mut |progress| display.update(progress));
    display.finish();
    let outcome = outcome?;
    // Kept for `invoke` by a hash prefix (and, for wasm, the typed `--call`).
    let extension = if format == Format::Wasm { "wasm" } else { "blob" };
    let path = cache_dir(&home).join(format!("{}.{extension}", hex::encode(outcome.hash)));
    jos_client::store::write_file(&path, &module, false).ok();
    report(&device, outcome, args.job.call.is_some())?.print(args.job.json)
}

/// The module a hash (64 hex digits) or a hash prefix of a module pushed from here names, and
/// the local copy of it when there is one (`push` keeps one per module).
pub fn cached_module(home: &Home, text: &str) -> Result<([u8; 32], Option<Vec<u8>>), CliError> {
    let typed = text.to_ascii_lowercase();
    let local = std::fs::read_dir(cache_dir(home))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| typed.len() >= 8 && name.starts_with(&typed))
        });
    let hash: [u8; 32] = match from_hex(&typed).and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()) {
        Some(hash) => hash,
        None => local
            .as_ref()
            .and_then(|path| path.file_stem()?.to_str().and_then(from_hex)?.try_into().ok())
            .ok_or_else(|| {
                CliError::new(
                    Exit::Usage,
                    format!("`{}` is not a SHA-256 (64 hex digits) of a module pushed from here", text),
                )
                .hint("use the hash `jos-cli push` printed")
            })?,
    };
    let module = local.and_then(|path| std::fs::read(path).ok());
    Ok((hash, module))
}

/// Runs `invoke`.
pub fn run_invoke(args: InvokeArgs) -> CommandResult {
    let home = home()?;
    let (hash, module) = cached_module(&home, &args.hash)?;
    let call = match (&args.job.call, &module) {
        (Some(_), Some(module)) if is_blob(module) => {
            return Err(CliError::new(Exit::Usage, "--call works with wasm modules only; this hash names a blob"))
        }
        (Some(call), Some(module)) => Some(parse_call(module, call)?),
        (Some(call), None) => {
            let (name, rest) =
                call.split_first().ok_or_else(|| CliError::new(Exit::Usage, "--call needs a function name"))?;
            eprintln!("warning: module not in the local cache: integers sent as i64, other numbers as f64");
            Some((name.clone(), parse_args_untyped(rest).map_err(|error| CliError::new(Exit::Usage, error))?))
        }
        (None, _) => None,
    };
    let input = read_job_input(args.job.input.as_deref())?;
    let (client, device) = client_for(home, &args.job)?;
    let request = PushRequest { format: Format::Wasm, module: &[], input: &input, limits: limits(&args.job), call };
    let mut display = Display::new(args.job.json);
    let outcome = client.invoke(&device, hash, &request, &mut |progress| display.update(progress));
    display.finish();
    report(&device, outcome?, args.job.call.is_some())?.print(args.job.json)
}

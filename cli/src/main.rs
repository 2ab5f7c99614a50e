//! jos-cli: the user's tool. Argument parsing and output only; the work is in the `jos_cli`
//! library's commands, over the `jos-client` and `jos-build` crates. Exit codes: see
//! `jos_cli::exit::Exit` and `docs/cli.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use jos_build::{self as build, BuildOutput, BuildRequest, Format};
use jos_cli::commands;
use jos_cli::exit::Exit;

/// The jos user's tool: build, sign and push code to jos devices, get results.
#[derive(Debug, Parser)]
#[command(name = "jos-cli", version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "\
Exit codes: 0 success, 1 unexpected failure, 2 usage error, 3 bad input file, 4 tool missing,
5 compile error, 6 ABI violation (e.g. unknown import), 7 not expressible as a native blob,
8 device unreachable, 9 untrusted device, 10 client not authorized, 11 module rejected, 12 trap,
13 out of fuel, 14 limit exceeded, 15 deadline, 16 busy, 17 not cached, 18 aborted,
19 protocol error, 20 timeout, 21 not set up, 22 would overwrite, 23 bad signature, 24 emulator.
See docs/cli.md.

Getting started:
  jos-cli keygen && jos-cli emu start
  jos-cli build guest-examples/c/md5.c --format wasm && jos-cli push md5.wasm --input README.md";

#[derive(Debug, Subcommand)]
enum Command {
    /// Build C sources or a Rust guest crate into a wasm module or a native jos blob.
    #[command(after_help = BUILD_EXAMPLES)]
    Build(BuildArgs),
    /// Create the developer signing key and the client key in $JOS_HOME.
    Keygen(commands::keygen::Args),
    /// Write a device's boot configuration and pin the device in the trust store.
    Provision(commands::provision::Args),
    /// Make the SD card that boots jos on a Raspberry Pi 1 or Zero (image file or the card).
    Image(commands::image::Args),
    /// Find devices on the network (UDP probe) and show whether they are trusted.
    Discover(commands::discover::Args),
    /// Pin a discovered device by fingerprint; list or remove pinned devices.
    Trust(commands::trust::Args),
    /// Sign a wasm module or native blob with the developer key.
    Sign(commands::sign::Args),
    /// Check a wasm module's or native blob's signature.
    Verify(commands::sign::VerifyArgs),
    /// Send a module or blob to a device, run it, print its output.
    Push(commands::push::Args),
    /// Run a module the device has cached, by its hash.
    Invoke(commands::push::InvokeArgs),
    /// Run a wasm module on this machine in the device's sandbox (`run --local`).
    Run(commands::run::Args),
    /// The emulated device: start, stop, status, console, screenshot.
    Emu(commands::emu::Args),
    /// A fleet of devices behind an MQTT 5 broker: status, push and invoke jobs by the many.
    Fleet(commands::fleet::Args),
}

const BUILD_EXAMPLES: &str = "\
Examples:
  jos-cli build guest-examples/c/md5.c --format wasm
  jos-cli build guest-examples/c/md5.c --format native -o md5.blob
  jos-cli build guest-examples/rust/sha256 --format wasm -o sha256.wasm
  jos-cli build main.c util.c --format native --verbose
  jos-cli build md5.wasm --format aot -o md5.blob      # wasm compiled ahead of time

C guests include \"jos.h\" (provided by jos-cli) and define `int run(void)`. Rust guests are
cdylib crates using the jos-guest crate and its `entry!` macro. See docs/guests.md.";

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// C files (.c, and .S for native), or one Rust crate folder (or, for aot, one .wasm file).
    #[arg(required = true, value_name = "SRC")]
    sources: Vec<PathBuf>,
    /// The output format.
    #[arg(long, short, value_enum)]
    format: FormatArg,
    /// The output file [default: NAME.wasm or NAME.blob in the current folder].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Cap on the wasm memory maximum, in 64 KiB pages (an AOT blob reserves it as bss).
    #[arg(long, default_value_t = build::DEFAULT_MAX_MEMORY_PAGES, value_name = "PAGES")]
    max_memory_pages: u64,
    /// Keep the wasm `name` section (function names in trap messages).
    #[arg(long)]
    keep_names: bool,
    /// Print each compiler, linker and cargo command before it runs.
    #[arg(long, short)]
    verbose: bool,
    /// Print the result (or the error) as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    /// A WebAssembly module.
    Wasm,
    /// A native ARMv6 jos blob.
    Native,
    /// A wasm module compiled ahead of time (wabt's wasm2c + arm-none-eabi-gcc) into a native
    /// blob marked AOT; from a .wasm file, C files or a Rust crate. Needs the `native` right.
    Aot,
}

impl Command {
    /// Whether the command was asked for JSON output (its `--json`).
    fn json(&self) -> bool {
        match self {
            Command::Build(args) => args.json,
            Command::Keygen(args) => args.json,
            Command::Provision(args) => args.json,
            Command::Image(args) => args.json,
            Command::Discover(args) => args.json,
            Command::Trust(args) => {
                args.json || matches!(args.action, Some(commands::trust::Action::List { json: true }))
            }
            Command::Sign(args) => args.json,
            Command::Verify(args) => args.json,
            Command::Push(args) => args.job.json,
            Command::Invoke(args) => args.job.json,
            Command::Run(args) => args.json,
            Command::Emu(args) => match &args.action {
                commands::emu::Action::Start(start) => start.json,
                commands::emu::Action::Stop { json } | commands::emu::Action::Status { json } => *json,
                _ => false,
            },
            Command::Fleet(args) => args.json(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with 0; a usage error goes to stderr with 2, and
            // also as a JSON error object on stdout when `--json` is on the command line.
            let _ = error.print();
            let code = error.exit_code();
            if error.use_stderr() && std::env::args_os().skip(1).any(|arg| arg == "--json") {
                let rendered = error.render().to_string();
                let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                let hint = "see `jos-cli help` and the command's --help";
                commands::print_json(&commands::error_json(Exit::Usage, &message, Some(hint)));
            }
            return ExitCode::from(u8::try_from(code).unwrap_or(Exit::Usage.code()));
        }
    };
    let json = cli.command.json();
    match cli.command {
        Command::Build(args) => build_command(args),
        Command::Keygen(args) => finish(commands::keygen::run(args), json),
        Command::Provision(args) => finish(commands::provision::run(args), json),
        Command::Image(args) => finish(commands::image::run(args), json),
        Command::Discover(args) => finish(commands::discover::run(args), json),
        Command::Trust(args) => finish(commands::trust::run(args), json),
        Command::Sign(args) => finish(commands::sign::run(args), json),
        Command::Verify(args) => finish(commands::sign::run_verify(args), json),
        Command::Push(args) => finish(commands::push::run(args), json),
        Command::Invoke(args) => finish(commands::push::run_invoke(args), json),
        Command::Run(args) => finish(commands::run::run(args), json),
        Command::Emu(args) => finish(commands::emu::run(args), json),
        Command::Fleet(args) => finish(commands::fleet::run(args), json),
    }
    .into()
}

/// The exit code of a command; a failure is reported on stderr, and with `--json` also as a
/// JSON error object on stdout (docs/cli.md).
fn finish(result: commands::CommandResult, json: bool) -> Exit {
    result.unwrap_or_else(|error| if json { error.report_json() } else { error.report() })
}

fn build_command(args: BuildArgs) -> Exit {
    let format = match args.format {
        FormatArg::Wasm => Format::Wasm,
        FormatArg::Native => Format::Native,
        FormatArg::Aot => Format::Aot,
    };
    let request = BuildRequest {
        sources: args.sources,
        format,
        output: args.output,
        max_memory_pages: args.max_memory_pages,
        keep_names: args.keep_names,
        verbose: args.verbose,
    };
    match build::build(&request) {
        Ok(output) if args.json => {
            println!("{}", build_json(&output, format));
            Exit::Success
        }
        Ok(output) => {
            println!("built {}", output.path.display());
            println!("{}", output.report);
            Exit::Success
        }
        Err(error) => {
            eprintln!("error: {error}");
            let exit = Exit::from_build(&error);
            if args.json {
                commands::print_json(&commands::error_json(exit, &error.to_string(), None));
            }
            exit
        }
    }
}

/// The result as the JSON object `jos-cli build --json` prints (docs/cli.md).
fn build_json(output: &BuildOutput, format: Format) -> serde_json::Value {
    let report = &output.report;
    serde_json::json!({
        "output": output.path.display().to_string(),
        "format": match format { Format::Wasm => "wasm", Format::Native => "native", Format::Aot => "aot" },
        "compiled_bytes": report.compiled,
        "total_bytes": report.total,
        "code_bytes": report.code,
        "data_bytes": report.data,
        "bss_bytes": report.bss,
        "custom_bytes": report.custom,
        "imports": report.imports,
        "relocations": report.relocations,
        "memory_max_pages": report.memory_max_pages,
    })
}

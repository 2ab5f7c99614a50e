//! The `jos-cli` subcommands other than `build`, one file each: argument structs (clap derive)
//! and what they print. The work is in the `jos-client` crate (`jos_client`, with its `store`) and `jos-build`.

pub mod discover;
pub mod emu;
pub mod fleet;
pub mod image;
pub mod keygen;
pub mod provision;
pub mod push;
pub mod run;
pub mod run_aot;
pub mod sign;
pub mod trust;

use std::fmt;
use std::path::Path;

use jos_client::store::{Home, StoreError};
use jos_client::ClientError;

use crate::exit::Exit;

/// A failed command: the exit code, the message, and what to do next.
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub exit: Exit,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl CliError {
    /// An error with an exit code and a message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, message: message.into(), hint: None }
    }

    /// Adds what to do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prints `error: ...` and the hint on stderr; returns the exit code.
    pub fn report(&self) -> Exit {
        eprintln!("error: {}", self.message);
        if let Some(hint) = &self.hint {
            eprintln!("  hint: {hint}");
        }
        self.exit
    }

    /// [`CliError::report`], and the error as a JSON object on stdout ([`error_json`]), for
    /// commands run with `--json`; returns the exit code.
    pub fn report_json(&self) -> Exit {
        print_json(&error_json(self.exit, &self.message, self.hint.as_deref()));
        self.report()
    }
}

/// The JSON object a command run with `--json` prints on stdout when it fails before any result:
/// `{"error": {"kind": "Unreachable", "exit_code": 8, "message": "...", "hint": "..." | null}}`,
/// `kind` being the [`Exit`] variant's name and `exit_code` the process's exit code.
pub fn error_json(exit: Exit, message: &str, hint: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "error": { "kind": format!("{exit:?}"), "exit_code": exit.code(), "message": message, "hint": hint }
    })
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        CliError { exit: Exit::from_client(&error), message: error.to_string(), hint: error.hint().map(Into::into) }
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        CliError::from(ClientError::from(error))
    }
}

/// The result of a command: the exit code to end with.
pub type CommandResult = Result<Exit, CliError>;

/// `$JOS_HOME` ([`Home::locate`]).
pub fn home() -> Result<Home, CliError> {
    Home::locate().map_err(CliError::from)
}

/// Reads a file the user named, with an error saying which.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|error| {
        CliError::new(Exit::Input, format!("cannot read {}: {error}", path.display())).hint("check the path")
    })
}

/// Reads `--input FILE` (or `-` for standard input); empty when absent.
pub fn read_job_input(input: Option<&Path>) -> Result<Vec<u8>, CliError> {
    match input {
        None => Ok(Vec::new()),
        Some(path) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|error| CliError::new(Exit::Input, format!("cannot read standard input: {error}")))?;
            Ok(bytes)
        }
        Some(path) => read_input(path),
    }
}

/// Prints a JSON value on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Writes bytes to stdout (job output), flushing.
pub fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::new(Exit::Failure, format!("cannot write the output: {error}")))
}

/// Whether a file is a wasm module (by its preamble).
pub fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

/// Whether a file is a jos native blob (by its magic).
pub fn is_blob(bytes: &[u8]) -> bool {
    bytes.starts_with(&jos_abi::blob::MAGIC)
}

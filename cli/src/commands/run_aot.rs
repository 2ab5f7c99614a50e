//! `jos-cli run --local --aot`: a wasm module compiled ahead of time and run on this machine.
//!
//! The module goes through the same translation as `build --format aot` (wasm2c, the glue, the
//! runtime `abi/aot/jos-aot-rt.c`), compiled by the host's `cc` with `abi/aot/jos-aot-host.c`
//! instead of arm-none-eabi-gcc, and runs as a child process. The system calls behave as in
//! `run --local` (input, output capped at the wire's 32 KiB, logs capped as the interpreter caps
//! them, UDP on 127.0.0.1 with `--grant net`, screen lines on stderr with `--grant screen`). AOT
//! code has no fuel: an endless loop ends at the deadline (`--timeout`, default
//! [`DEFAULT_AOT_TIMEOUT_MS`]), when the child is killed.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jos_abi::job::{Engine, JobStatus, Stats};
use jos_abi::syscall::LogLevel;
use jos_runtime::{JobError, LimitKind, TrapCode};

use crate::exit::Exit;
use jos_build::{aot, wasm, DEFAULT_MAX_MEMORY_PAGES};
use jos_client::JobLog;

use super::run::{Args, JobReport, Right};
use super::{CliError, CommandResult};

/// The deadline of `run --local --aot` without `--timeout`: AOT code has no fuel to run out of.
pub const DEFAULT_AOT_TIMEOUT_MS: u64 = 60_000;

/// wasm2c's `wasm_rt_trap_t` numbers as jos trap codes (wasm2c merges some kinds: an
/// out-of-bounds table access reads as a memory one, and every failed `call_indirect` as a
/// signature mismatch; docs/runtime.md lists it).
fn trap_code(number: i64) -> TrapCode {
    match number {
        1 => TrapCode::MemoryOutOfBounds,
        2 => TrapCode::IntegerOverflow,
        3 => TrapCode::IntegerDivisionByZero,
        4 => TrapCode::BadConversionToInteger,
        5 => TrapCode::Unreachable,
        6 => TrapCode::BadSignature,
        8 => TrapCode::StackOverflow,
        _ => TrapCode::Other,
    }
}

/// Reads the program's log records (level byte, little-endian u32 length, text), applying the
/// interpreter's caps on line and total length. Level 0 is a screen line.
fn read_logs(bytes: &[u8]) -> (Vec<JobLog>, Vec<String>) {
    let limits = jos_runtime::wasm::Limits::default();
    let (mut logs, mut screen, mut total) = (Vec::new(), Vec::new(), 0usize);
    let mut rest = bytes;
    while rest.len() >= 5 {
        let level = rest[0];
        let length = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(text) = rest.get(5..5 + length) else { break };
        rest = &rest[5 + length..];
        if level == 0 {
            screen.push(String::from_utf8_lossy(text).into_owned());
            continue;
        }
        let kept = jos_runtime::job::log_bytes_kept(text.len());
        if total + kept > limits.max_log_bytes {
            continue;
        }
        total += kept;
        // An unknown level reads as debug, as `level_name` names it.
        let level = LogLevel::try_from(u32::from(level)).unwrap_or(LogLevel::Debug);
        let line = jos_runtime::job::log_line(level, text);
        logs.push(JobLog { level: jos_client::session::level_name(level as u32), text: line.text });
    }
    (logs, screen)
}

fn io_error(action: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |error| CliError::new(Exit::Failure, format!("{action}: {error}"))
}

/// Runs `run --local --aot` on `module` with `input`.
pub fn run(args: &Args, module: &[u8], input: &[u8]) -> CommandResult {
    if args.call.is_some() {
        return Err(CliError::new(
            Exit::Usage,
            "--call is not available with --aot: AOT code runs its entry point `run`",
        ));
    }
    if args.fuel.is_some() {
        return Err(CliError::new(Exit::Usage, "--fuel does not apply to --aot (AOT code has no fuel); use --timeout"));
    }
    let scratch =
        tempfile::Builder::new().prefix("jos-aot-run-").tempdir().map_err(io_error("create a temporary folder"))?;
    let dir = scratch.path();
    let options = wasm::Options { max_memory_pages: DEFAULT_MAX_MEMORY_PAGES, keep_names: false };
    let program = aot::host_program(dir, module, &options, false)
        .map_err(|error| CliError::new(Exit::from_build(&error), error.to_string()))?;
    let (input_path, result_path, log_path, output_path) =
        (dir.join("input"), dir.join("result"), dir.join("log"), dir.join("output"));
    std::fs::write(&input_path, input).map_err(io_error("write the job's input"))?;
    let output_file = std::fs::File::create(&output_path).map_err(io_error("create the output file"))?;
    let rights = u32::from(args.grant.contains(&Right::Net)) | (u32::from(args.grant.contains(&Right::Screen)) << 1);
    let timeout = Duration::from_millis(args.timeout.unwrap_or(DEFAULT_AOT_TIMEOUT_MS));
    let started = Instant::now();
    let mut child = Command::new(&program)
        .arg(&input_path)
        .arg(&result_path)
        .arg(&log_path)
        .arg(jos_abi::wire::MAX_OUTPUT_LEN.to_string())
        .arg(rights.to_string())
        .stdin(Stdio::null())
        .stdout(output_file)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io_error("start the AOT program"))?;
    let exit = loop {
        if let Some(status) = child.try_wait().map_err(io_error("wait for the AOT program"))? {
            break Some(status);
        }
        if started.elapsed() >= timeout {
            // The child is ours; kill and reap it so nothing is left running.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed_us = started.elapsed().as_micros() as u64;
    let output = read_file(&output_path);
    let (logs, screen) = read_logs(&read_file(&log_path));
    for line in &screen {
        eprintln!("[screen] {line}");
    }
    let result = String::from_utf8_lossy(&read_file(&result_path)).into_owned();
    let fields: Vec<&str> = result.split_whitespace().collect();
    let number = |index: usize| fields.get(index).and_then(|text| text.parse::<i64>().ok()).unwrap_or(0);
    let peak_memory = (number(2) as u64).saturating_mul(jos_runtime::wasm::PAGE_BYTES);
    let (status, detail, exit_value) = match (exit, fields.first().copied()) {
        (None, _) => {
            (JobStatus::Deadline, Some(JobError::Deadline { limit_us: timeout.as_micros() as u64 }.to_string()), 0)
        }
        (Some(_), Some("ok")) => (JobStatus::Ok, None, number(1) as i32),
        (Some(_), Some("output")) => {
            (JobStatus::LimitExceeded, Some(JobError::Limit(LimitKind::Output).to_string()), 0)
        }
        (Some(_), Some("trap")) => {
            let error = JobError::Trap { code: trap_code(number(1)), function: "run".into() };
            (JobStatus::Trap, Some(error.to_string()), 0)
        }
        (Some(status), _) => (JobStatus::Trap, Some(format!("the AOT program ended without a result ({status})")), 0),
    };
    let report = JobReport {
        place: "local (aot)".into(),
        hash: Some(jos_abi::signature::sha256(module)),
        status,
        detail,
        exit_value,
        output,
        results: None,
        logs,
        stats: Stats {
            fuel_used: 0,
            time_us: elapsed_us,
            cpu_us: elapsed_us,
            cycles: 0,
            peak_memory_bytes: peak_memory,
            engine: Engine::Aot,
            ..Stats::default()
        },
        traffic: None,
    };
    report.print(args.json)
}

fn read_file(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_end(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_are_capped_like_the_interpreter() {
        let mut bytes = Vec::new();
        for (level, text) in [(3u8, "hello".to_string()), (0, "on screen".into()), (1, "x".repeat(5000))] {
            bytes.push(level);
            bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
            bytes.extend_from_slice(text.as_bytes());
        }
        bytes.extend_from_slice(&[3, 9, 0]); // a torn record at the end is dropped
        let (logs, screen) = read_logs(&bytes);
        assert_eq!(screen, vec!["on screen".to_string()]);
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].text, "hello");
        assert_eq!(logs[1].text.len(), jos_abi::job::MAX_LOG_LINE_LEN);
    }

    #[test]
    fn trap_numbers_map_to_jos_codes() {
        assert_eq!(trap_code(1), TrapCode::MemoryOutOfBounds);
        assert_eq!(trap_code(5), TrapCode::Unreachable);
        assert_eq!(trap_code(8), TrapCode::StackOverflow);
        assert_eq!(trap_code(99), TrapCode::Other);
    }
}

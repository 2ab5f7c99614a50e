//! Job results: status, exit value, output, logs and statistics, shared by wasm and native jobs.
//!
//! The job model itself (status, stats, log lines, values, caps) is `jos_abi::job`; this module
//! adds what only the runtime knows (why a job failed, its whole result) and the rules that
//! apply the caps: [`log_line`] for every log line and [`JobResult::to_wire`] for the result a
//! device sends.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::fmt::Write as _;

use jos_abi::job::{clip, MAX_LOG_LINES, MAX_LOG_LINE_LEN, MAX_OUTPUT_LEN};
pub use jos_abi::job::{Engine, JobStatus, Stats, Value};
use jos_abi::syscall::LogLevel;
use jos_abi::wire::{self, Message, MAX_CALL_RESULTS};
use jos_abi::ErrorCode;

/// A wasm trap, with stable numbers (independent of wasmi's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TrapCode {
    /// `unreachable` executed.
    Unreachable = 1,
    /// A load or store outside linear memory.
    MemoryOutOfBounds = 2,
    /// A table access outside the table.
    TableOutOfBounds = 3,
    /// `call_indirect` through a null entry.
    IndirectCallToNull = 4,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero = 5,
    /// Integer overflow (e.g. `i32.div_s` of `i32::MIN` by -1).
    IntegerOverflow = 6,
    /// A float that cannot be converted to the integer type.
    BadConversionToInteger = 7,
    /// The call stack or value stack limit was reached (deep recursion).
    StackOverflow = 8,
    /// `call_indirect` with a mismatching signature.
    BadSignature = 9,
    /// A growth operation was refused by a limit and configured to trap.
    GrowthOperationLimited = 10,
    /// A trap the runtime does not classify further.
    Other = 255,
}

impl TrapCode {
    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            TrapCode::Unreachable => "unreachable executed",
            TrapCode::MemoryOutOfBounds => "memory access out of bounds",
            TrapCode::TableOutOfBounds => "table access out of bounds",
            TrapCode::IndirectCallToNull => "indirect call to null",
            TrapCode::IntegerDivisionByZero => "integer division by zero",
            TrapCode::IntegerOverflow => "integer overflow",
            TrapCode::BadConversionToInteger => "invalid conversion to integer",
            TrapCode::StackOverflow => "call stack exhausted",
            TrapCode::BadSignature => "indirect call signature mismatch",
            TrapCode::GrowthOperationLimited => "growth refused by a limit",
            TrapCode::Other => "trap",
        }
    }
}

impl fmt::Display for TrapCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Which limit a job went past.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Module size in bytes.
    ModuleSize,
    /// Linear memory pages.
    MemoryPages,
    /// Table elements.
    TableElements,
    /// Instances, tables or memories per job.
    Instances,
    /// Output bytes.
    Output,
    /// The device's free memory: linear memory, a table or the value stack could not grow
    /// without leaving the device less than it keeps for itself, or a module could not be
    /// compiled for the same reason ([`crate::host::HeapMeter`]).
    DeviceMemory,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::ModuleSize => "module size",
            LimitKind::MemoryPages => "linear memory pages",
            LimitKind::TableElements => "table elements",
            LimitKind::Instances => "instances, tables or memories",
            LimitKind::Output => "output bytes",
            LimitKind::DeviceMemory => "device memory (not enough free heap now)",
        })
    }
}

/// Why a module was refused before it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The bytes are not a valid module (decoding or validation failed); wasmi's message.
    Malformed(String),
    /// An import that the syscall table does not have (or not a function, or not module `jos`).
    UnknownImport {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
    },
    /// A known call imported with the wrong signature.
    ImportSignature {
        /// The call's name.
        name: String,
        /// The signature the syscall table gives, e.g. `(i32, i32) -> i32`.
        expected: String,
        /// The signature the module declares.
        found: String,
    },
    /// The `jos.abi` custom section is malformed or names an ABI this runtime does not accept.
    AbiMismatch {
        /// The packed version found (`major << 16 | minor`), or `None` if the section is malformed.
        found: Option<u32>,
    },
    /// The module has neither the requested export nor a usable entry point.
    MissingEntry(String),
    /// The entry export exists but has the wrong type.
    EntrySignature(String),
    /// Arguments given to `call` do not match the function's parameters.
    BadArguments(String),
    /// A limit was exceeded while loading or instantiating.
    Limit(LimitKind),
    /// The module's signature did not verify, or its signer lacks the `wasm` right.
    Signature(jos_abi::signature::SignatureError),
    /// Instantiation failed for another reason (e.g. a data segment out of bounds); wasmi's
    /// message.
    Instantiation(String),
}

impl LoadError {
    /// The ABI error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            LoadError::Malformed(_) => ErrorCode::Malformed,
            LoadError::UnknownImport { .. } | LoadError::MissingEntry(_) => ErrorCode::NotFound,
            LoadError::ImportSignature { .. } | LoadError::EntrySignature(_) | LoadError::BadArguments(_) => {
                ErrorCode::InvalidArgument
            }
            LoadError::AbiMismatch { .. } => ErrorCode::AbiMismatch,
            // Transient: the same request may succeed once memory is freed.
            LoadError::Limit(LimitKind::DeviceMemory) => ErrorCode::Busy,
            LoadError::Limit(_) => ErrorCode::LimitExceeded,
            LoadError::Instantiation(_) => ErrorCode::InvalidArgument,
            LoadError::Signature(error) => error.code(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Malformed(message) => write!(f, "malformed module: {message}"),
            LoadError::UnknownImport { module, name } => write!(f, "unknown import {module}.{name}"),
            LoadError::ImportSignature { name, expected, found } => {
                write!(f, "import jos.{name} has signature {found}, expected {expected}")
            }
            LoadError::AbiMismatch { found: Some(version) } => {
                let version = jos_abi::AbiVersion::from_u32(*version);
                write!(f, "module needs ABI {version}, device has {}", jos_abi::AbiVersion::CURRENT)
            }
            LoadError::AbiMismatch { found: None } => f.write_str("malformed jos.abi section (want 4 bytes)"),
            LoadError::MissingEntry(name) => write!(f, "no exported function {name}"),
            LoadError::EntrySignature(message) => write!(f, "entry point: {message}"),
            LoadError::BadArguments(message) => write!(f, "bad arguments: {message}"),
            LoadError::Limit(kind) => write!(f, "limit exceeded: {kind}"),
            LoadError::Instantiation(message) => write!(f, "instantiation failed: {message}"),
            LoadError::Signature(error) => write!(f, "signature: {error}"),
        }
    }
}

/// The detail behind a status other than [`JobStatus::Ok`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobError {
    /// Refused before running ([`JobStatus::Rejected`], or [`JobStatus::LimitExceeded`] for
    /// [`LoadError::Limit`]).
    Load(LoadError),
    /// A trap in the function called as entry point (or in the start function).
    Trap {
        /// What trapped.
        code: TrapCode,
        /// The exported function the job was running (`start` for the start function).
        function: String,
    },
    /// The whole fuel budget was used.
    OutOfFuel {
        /// The budget.
        budget: u64,
    },
    /// A limit that ends the job was passed while running.
    Limit(LimitKind),
    /// The wall-clock deadline passed.
    Deadline {
        /// The deadline in microseconds after start.
        limit_us: u64,
    },
    /// A host error the runtime did not raise itself; its message.
    Host(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Load(error) => error.fmt(f),
            JobError::Trap { code, function } => write!(f, "trap in {function}: {code}"),
            JobError::OutOfFuel { budget } => write!(f, "out of fuel (budget {budget})"),
            JobError::Limit(kind) => write!(f, "limit exceeded: {kind}"),
            JobError::Deadline { limit_us } => write!(f, "deadline of {limit_us} us passed"),
            JobError::Host(message) => write!(f, "host error: {message}"),
        }
    }
}

/// One log line a job wrote (its text owned).
pub type LogLine = jos_abi::job::LogLine<String>;

/// The log line a job's `log` call makes of `bytes`: the first [`MAX_LOG_LINE_LEN`] bytes,
/// invalid UTF-8 replaced, cut at a character boundary to at most [`MAX_LOG_LINE_LEN`] bytes.
/// The one rule for wasm and native jobs; a job is charged (wasm fuel) for
/// [`log_bytes_kept`] bytes.
pub fn log_line(level: LogLevel, bytes: &[u8]) -> LogLine {
    let kept = &bytes[..log_bytes_kept(bytes.len())];
    let mut text = String::from_utf8_lossy(kept).into_owned();
    let len = clip(&text, MAX_LOG_LINE_LEN).len();
    text.truncate(len);
    LogLine { level, text }
}

/// How many of a log call's `length` bytes its line keeps.
pub const fn log_bytes_kept(length: usize) -> usize {
    if length < MAX_LOG_LINE_LEN {
        length
    } else {
        MAX_LOG_LINE_LEN
    }
}

/// Everything a job produced.
#[derive(Clone, Debug, PartialEq)]
pub struct JobResult {
    /// How it ended.
    pub status: JobStatus,
    /// The detail when `status` is not `Ok`.
    pub error: Option<JobError>,
    /// `run`'s result, or the `exit` code; `None` if the job did not end normally or returned
    /// nothing (`_start` returns 0).
    pub exit_value: Option<i32>,
    /// The results of a function called with `call`.
    pub values: Vec<Value>,
    /// The bytes written with `output_write` (up to the output cap).
    pub output: Vec<u8>,
    /// The log lines (up to the log cap).
    pub logs: Vec<LogLine>,
    /// Measurements.
    pub stats: Stats,
}

impl JobResult {
    /// A result for a job refused before it ran.
    pub fn rejected(error: LoadError) -> Self {
        let status = match error {
            LoadError::Limit(_) => JobStatus::LimitExceeded,
            _ => JobStatus::Rejected,
        };
        JobResult {
            status,
            error: Some(JobError::Load(error)),
            exit_value: None,
            values: Vec::new(),
            output: Vec::new(),
            logs: Vec::new(),
            stats: Stats::default(),
        }
    }
}

impl JobResult {
    /// The status a device reports: the job's own, or [`JobStatus::LimitExceeded`] when a call
    /// returned more than the protocol's [`MAX_CALL_RESULTS`] values (said rather than cut).
    pub fn reported_status(&self) -> JobStatus {
        if self.values.len() > MAX_CALL_RESULTS {
            JobStatus::LimitExceeded
        } else {
            self.status
        }
    }

    /// The line that explains a failed job (what [`JobResult::error`] says, with the load
    /// error's code), or why the call's results were not sent; empty for a job that went well.
    pub fn detail(&self) -> String {
        let mut detail = String::new();
        if self.values.len() > MAX_CALL_RESULTS {
            let _ = write!(
                detail,
                "the call returned {} results; the protocol carries at most {}",
                self.values.len(),
                MAX_CALL_RESULTS
            );
        }
        if let Some(error) = &self.error {
            let _ = write!(detail, "{error}");
            if let JobError::Load(load) = error {
                let _ = write!(detail, " (code {})", load.code() as u32);
            }
        }
        detail
    }

    /// Hands `send` the `JobResult` message a device sends for this result, `time_us` from the
    /// job's start to its end, `cpu_us` the part of it the job held the CPU and `engine` what
    /// ran it: the [`JobResult::reported_status`], the [`JobResult::detail`] as a first `Error`
    /// line, then the job's lines, [`MAX_LOG_LINES`] in all, each clipped to [`MAX_LOG_LINE_LEN`]; the call's
    /// values (none when there are too many); the output cut to [`MAX_OUTPUT_LEN`].
    pub fn to_wire<R>(&self, time_us: u64, cpu_us: u64, engine: Engine, send: impl FnOnce(&Message<'_>) -> R) -> R {
        let detail = self.detail();
        let mut lines: Vec<wire::LogLine<'_>> = Vec::new();
        if !detail.is_empty() {
            lines.push(wire::LogLine { level: LogLevel::Error, text: clip(&detail, MAX_LOG_LINE_LEN) });
        }
        for line in &self.logs {
            if lines.len() >= MAX_LOG_LINES {
                break;
            }
            lines.push(wire::LogLine { level: line.level, text: clip(&line.text, MAX_LOG_LINE_LEN) });
        }
        let values: &[Value] = if self.values.len() > MAX_CALL_RESULTS { &[] } else { &self.values };
        send(&Message::JobResult {
            status: self.reported_status(),
            exit_value: self.exit_value.unwrap_or(0),
            stats: Stats { time_us, cpu_us, engine, ..self.stats },
            output: &self.output[..self.output.len().min(MAX_OUTPUT_LEN)],
            results: wire::Results::from_slice(values),
            logs: wire::Logs::from_slice(&lines),
        })
    }
}

/// What one [`Job::step`](crate::wasm::Job::step) did.
// `Finished` carries the job's whole result once per job; boxing it would add an allocation to
// every job's end for no gain (the value is moved, not copied, on the way out).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum StepOutcome {
    /// The slice's fuel ran out; call `step` again.
    Running,
    /// The job called `yield`: it has nothing to do now. Call `step` again when it may have
    /// (the kernel waits for its next executive frame, after the network task ran).
    Yielded,
    /// The job ended.
    Finished(JobResult),
}

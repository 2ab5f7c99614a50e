//! Job results: status, exit value, output, logs and statistics, shared by wasm and native jobs.
//!
//! These are the runtime's own types; the wire protocol's job result (in `jos_abi`) is built from
//! them by the offload server.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use jos_abi::syscall::LogLevel;
use jos_abi::ErrorCode;

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum JobStatus {
    /// It returned (or called `exit`) normally.
    Ok = 0,
    /// It trapped (see [`JobError::Trap`]).
    Trap = 1,
    /// It used its whole fuel budget.
    OutOfFuel = 2,
    /// It went past a limit (output size, memory, table, instances, stack) that ends the job.
    LimitExceeded = 3,
    /// It was refused before it ran (malformed, bad import, ABI mismatch, start-up failure).
    Rejected = 4,
    /// It ran past its wall-clock deadline.
    Deadline = 5,
}

impl JobStatus {
    /// A short lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Trap => "trap",
            JobStatus::OutOfFuel => "out of fuel",
            JobStatus::LimitExceeded => "limit exceeded",
            JobStatus::Rejected => "rejected",
            JobStatus::Deadline => "deadline",
        }
    }
}

impl JobStatus {
    /// The wire protocol's status (same numbers; the wire adds `Aborted`, which only the offload
    /// server produces).
    pub const fn to_wire(self) -> jos_abi::wire::JobStatus {
        match self {
            JobStatus::Ok => jos_abi::wire::JobStatus::Ok,
            JobStatus::Trap => jos_abi::wire::JobStatus::Trap,
            JobStatus::OutOfFuel => jos_abi::wire::JobStatus::OutOfFuel,
            JobStatus::LimitExceeded => jos_abi::wire::JobStatus::LimitExceeded,
            JobStatus::Rejected => jos_abi::wire::JobStatus::Rejected,
            JobStatus::Deadline => jos_abi::wire::JobStatus::Deadline,
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

/// A numeric wasm value, for `call` arguments and results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float.
    F32(f32),
    /// A 64-bit float.
    F64(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "{v}:i32"),
            Value::I64(v) => write!(f, "{v}:i64"),
            Value::F32(v) => write!(f, "{v}:f32"),
            Value::F64(v) => write!(f, "{v}:f64"),
        }
    }
}

/// One log line a job wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// Its text (invalid UTF-8 replaced, truncated at the line cap).
    pub text: String,
}

/// Measurements of one job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Fuel consumed (wasm); 0 for native jobs.
    pub fuel_used: u64,
    /// Wall-clock time from start to end, in microseconds of the host clock.
    pub time_us: u64,
    /// The largest total linear memory the job held, in bytes.
    pub peak_memory_bytes: u64,
    /// Fuel slices the job ran in (1 for a job that finished in its first slice).
    pub slices: u64,
    /// Log lines dropped because the log cap was reached.
    pub logs_dropped: u32,
    /// CPU cycles the job used, when the board has a cycle counter (native jobs on the device);
    /// 0 when not measured (wasm jobs, QEMU).
    pub cycles: u64,
}

impl Stats {
    /// The wire protocol's stats (`cycles` as measured by the caller, 0 when not; `cpu_us` is
    /// `time_us`, true of a job run in one go: a caller that interleaves the job's slices with
    /// other work sets the sum of its slices instead; peak memory saturated at `u32::MAX`;
    /// `engine` names what ran the job).
    pub fn to_wire(&self, engine: jos_abi::wire::Engine) -> jos_abi::wire::Stats {
        jos_abi::wire::Stats {
            fuel_used: self.fuel_used,
            time_us: self.time_us,
            cpu_us: self.time_us,
            cycles: self.cycles,
            peak_memory: u32::try_from(self.peak_memory_bytes).unwrap_or(u32::MAX),
            engine,
        }
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

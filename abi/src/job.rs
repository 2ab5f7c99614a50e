//! The job model: what a job may use ([`Limits`]), how it ended ([`JobStatus`]), what it used
//! ([`Stats`]), the lines it logged ([`LogLine`]) and the values of a called function
//! ([`Value`]). One definition each, shared by the runtime (which produces them for wasm and
//! native jobs), the kernel's offload server (which sends them) and the client (which reads
//! them); the wire protocol ([`crate::wire`]) encodes these very types.
//!
//! The caps every job gets, whatever runs it, are here too: [`MAX_OUTPUT_LEN`] output bytes,
//! [`MAX_LOG_LINES`] log lines of at most [`MAX_LOG_LINE_LEN`] bytes each. The runtime applies
//! them (`jos_runtime::job`), so a job's result fits the wire as it is.

use core::fmt;

use crate::codec::{Cursor, Writer};
use crate::syscall::LogLevel;
use crate::wire::WireError;

/// The largest output of a job (a device's output cap is at most this): the job's
/// `output_write` past it answers `-LimitExceeded` and the job ends
/// [`JobStatus::LimitExceeded`].
pub const MAX_OUTPUT_LEN: usize = 32 * 1024;
/// Most log lines a job result carries (the runtime's detail line for a failed job included).
pub const MAX_LOG_LINES: usize = 64;
/// The longest log line, in bytes of UTF-8: a job's longer line is cut to it (at a character
/// boundary), for wasm and native jobs alike.
pub const MAX_LOG_LINE_LEN: usize = 200;
/// Linear memory page size (bytes), the unit of a wasm job's memory limit.
pub const PAGE_BYTES: u32 = 65536;

/// Limits of a job, as a client asks for them and a device's policy caps them. Zero in a field
/// means "the default" (the module's pushed defaults, then the device's policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Limits {
    /// wasm fuel (instructions, roughly).
    pub fuel: u64,
    /// Linear memory (wasm) or loaded size (native), in bytes.
    pub memory: u32,
    /// Wall-clock deadline in milliseconds (native blobs are aborted past it).
    pub deadline_ms: u32,
    /// Output cap in bytes.
    pub output: u32,
}

impl Limits {
    /// Encoded size.
    pub const LEN: usize = 20;

    pub(crate) fn read(cursor: &mut Cursor<'_>) -> Option<Self> {
        Some(Limits { fuel: cursor.u64()?, memory: cursor.u32()?, deadline_ms: cursor.u32()?, output: cursor.u32()? })
    }

    pub(crate) fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u64(self.fuel)?;
        writer.u32(self.memory)?;
        writer.u32(self.deadline_ms)?;
        writer.u32(self.output)
    }

    /// Each zero field of `self` replaced by the field of `defaults`.
    pub fn or(self, defaults: Limits) -> Limits {
        fn pick<T: Copy + Default + PartialEq>(request: T, default: T) -> T {
            if request == T::default() {
                default
            } else {
                request
            }
        }
        Limits {
            fuel: pick(self.fuel, defaults.fuel),
            memory: pick(self.memory, defaults.memory),
            deadline_ms: pick(self.deadline_ms, defaults.deadline_ms),
            output: pick(self.output, defaults.output),
        }
    }

    /// Each field of `self` capped by `policy`; a zero field takes the policy's value.
    pub fn capped_by(self, policy: Limits) -> Limits {
        fn cap<T: Copy + Ord + Default>(request: T, policy: T) -> T {
            if request == T::default() {
                policy
            } else {
                request.min(policy)
            }
        }
        Limits {
            fuel: cap(self.fuel, policy.fuel),
            memory: cap(self.memory, policy.memory),
            deadline_ms: cap(self.deadline_ms, policy.deadline_ms),
            output: cap(self.output, policy.output),
        }
    }

    /// The output cap of a job with these limits: `output` bytes, at most [`MAX_OUTPUT_LEN`]
    /// (also when `output` is zero).
    pub fn output_cap(&self) -> usize {
        match self.output {
            0 => MAX_OUTPUT_LEN,
            bytes => (bytes as usize).min(MAX_OUTPUT_LEN),
        }
    }

    /// The linear-memory pages of a wasm job with these limits (`None` when `memory` is zero):
    /// `memory` rounded down to whole pages, at least one, so a job never gets more than it was
    /// granted.
    pub fn memory_pages(&self) -> Option<u32> {
        (self.memory != 0).then(|| (self.memory / PAGE_BYTES).max(1))
    }
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum JobStatus {
    /// It returned (or called `exit`).
    Ok = 0,
    /// A wasm trap, or a native fault (abort, undefined instruction); details in the logs.
    Trap = 1,
    /// The fuel budget ran out.
    OutOfFuel = 2,
    /// A memory, output or other cap was reached.
    LimitExceeded = 3,
    /// It never ran: refused at load (bad module, bad signature, unknown import).
    Rejected = 4,
    /// It ran past its wall-clock deadline and was stopped.
    Deadline = 5,
    /// Stopped from outside (client gone, device shutting down); only the offload server
    /// reports it, never the runtime.
    Aborted = 6,
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
            JobStatus::Aborted => "aborted",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u8> for JobStatus {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        Ok(match value {
            0 => JobStatus::Ok,
            1 => JobStatus::Trap,
            2 => JobStatus::OutOfFuel,
            3 => JobStatus::LimitExceeded,
            4 => JobStatus::Rejected,
            5 => JobStatus::Deadline,
            6 => JobStatus::Aborted,
            other => return Err(other),
        })
    }
}

/// Which engine ran a job (a field of [`Stats`], on the wire since protocol 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Engine {
    /// The wasm interpreter ran a wasm module.
    #[default]
    WasmInterpreter = 1,
    /// A native blob ran in user mode.
    Native = 2,
    /// A native blob compiled ahead of time from a wasm module (`BlobFlags::AOT`) ran in user
    /// mode.
    Aot = 3,
}

impl Engine {
    /// The lower-case name jos-cli prints (`wasm`, `native`, `aot`).
    pub const fn name(self) -> &'static str {
        match self {
            Engine::WasmInterpreter => "wasm",
            Engine::Native => "native",
            Engine::Aot => "aot",
        }
    }
}

impl TryFrom<u8> for Engine {
    type Error = WireError;

    fn try_from(value: u8) -> Result<Self, WireError> {
        match value {
            1 => Ok(Engine::WasmInterpreter),
            2 => Ok(Engine::Native),
            3 => Ok(Engine::Aot),
            _ => Err(WireError::BadValue),
        }
    }
}

/// What a job used. The wire carries `fuel_used`, `time_us`, `cpu_us`, `cycles`,
/// `peak_memory_bytes` (saturated to 32 bits) and `engine`; the rest is the device's own record (a parsed
/// result has it zero). New fields go at the end and default to zero, so code that builds a
/// `Stats` with `..Stats::default()` keeps working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stats {
    /// wasm fuel consumed (0 for native).
    pub fuel_used: u64,
    /// Microseconds from the job's start to its result (wall clock, including the time other
    /// work had the CPU between the job's slices).
    pub time_us: u64,
    /// Microseconds the job actually held the CPU: the sum of its fuel slices (wasm), its run
    /// time less the time it waited idle in `yield` (native). A job run in one go has
    /// `cpu_us == time_us`.
    pub cpu_us: u64,
    /// CPU cycles (native on a board with a cycle counter; 0 when not measured: wasm, QEMU).
    pub cycles: u64,
    /// Peak memory in bytes (the largest total linear memory, or the loaded size).
    pub peak_memory_bytes: u64,
    /// The engine that ran the job (or would have: a job refused at load names the engine of
    /// its module's format).
    pub engine: Engine,
    /// Slices (wasm fuel slices, native steps) the job ran in; not on the wire.
    pub slices: u64,
    /// Log lines dropped because the log cap was reached; not on the wire.
    pub logs_dropped: u32,
}

impl Stats {
    /// Encoded size.
    pub const LEN: usize = 37;

    /// `Err(Truncated)` when bytes are missing, `Err(BadValue)` for an unknown engine.
    pub(crate) fn read(cursor: &mut Cursor<'_>) -> Result<Self, WireError> {
        let mut field = || cursor.u64().ok_or(WireError::Truncated);
        let (fuel_used, time_us, cpu_us, cycles) = (field()?, field()?, field()?, field()?);
        let peak_memory_bytes = u64::from(cursor.u32().ok_or(WireError::Truncated)?);
        let engine = Engine::try_from(cursor.u8().ok_or(WireError::Truncated)?)?;
        Ok(Stats { fuel_used, time_us, cpu_us, cycles, peak_memory_bytes, engine, ..Stats::default() })
    }

    pub(crate) fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u64(self.fuel_used)?;
        writer.u64(self.time_us)?;
        writer.u64(self.cpu_us)?;
        writer.u64(self.cycles)?;
        writer.u32(u32::try_from(self.peak_memory_bytes).unwrap_or(u32::MAX))?;
        writer.u8(self.engine as u8)
    }
}

/// One log line of a job: its level and its text, owned (`LogLine<String>`, as the runtime
/// collects them) or borrowed (`LogLine<&str>`, as the wire parses and emits them). The text is
/// UTF-8 of at most [`MAX_LOG_LINE_LEN`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogLine<T> {
    /// Its level.
    pub level: LogLevel,
    /// Its text.
    pub text: T,
}

/// `text` cut to at most `max` bytes at a character boundary.
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A numeric wasm value: an argument or result of a called function. How it crosses the wire
/// is in [`crate::wire::call`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// 32-bit integer.
    I32(i32),
    /// 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rounds_down_to_whole_pages_and_never_to_zero() {
        let pages = |memory| Limits { memory, ..Limits::default() }.memory_pages();
        assert_eq!(pages(0), None);
        assert_eq!(pages(1), Some(1));
        assert_eq!(pages(PAGE_BYTES), Some(1));
        assert_eq!(pages(PAGE_BYTES + 1), Some(1));
        assert_eq!(pages(2 * PAGE_BYTES - 1), Some(1));
        assert_eq!(pages(16 << 20), Some(256));
        assert_eq!(pages(u32::MAX), Some(65535));
    }

    #[test]
    fn output_cap_is_the_request_at_most_the_wire_cap() {
        let cap = |output| Limits { output, ..Limits::default() }.output_cap();
        assert_eq!(cap(0), MAX_OUTPUT_LEN);
        assert_eq!(cap(10), 10);
        assert_eq!(cap(MAX_OUTPUT_LEN as u32), MAX_OUTPUT_LEN);
        assert_eq!(cap(u32::MAX), MAX_OUTPUT_LEN);
    }

    #[test]
    fn defaults_fill_zero_fields_and_policy_caps_the_rest() {
        let request = Limits { fuel: 5, memory: 0, deadline_ms: 100, output: 0 };
        let defaults = Limits { fuel: 9, memory: 7, deadline_ms: 0, output: 0 };
        assert_eq!(request.or(defaults), Limits { fuel: 5, memory: 7, deadline_ms: 100, output: 0 });
        let policy = Limits { fuel: 4, memory: 8, deadline_ms: 50, output: 16 };
        assert_eq!(request.or(defaults).capped_by(policy), Limits { fuel: 4, memory: 7, deadline_ms: 50, output: 16 });
    }

    #[test]
    fn statuses_round_trip_their_numbers() {
        for number in 0..=6u8 {
            let status = JobStatus::try_from(number).unwrap();
            assert_eq!(status as u8, number);
        }
        assert_eq!(JobStatus::try_from(7), Err(7));
        assert_eq!(JobStatus::OutOfFuel.to_string(), "out of fuel");
    }

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abc", 2), "ab");
        // "é" is two bytes: a cut inside it keeps the character out.
        assert_eq!(clip("aé", 2), "a");
        assert_eq!(clip("", 0), "");
    }
}

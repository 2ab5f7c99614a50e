//! The offload wire protocol: framing, messages, job limits and results (`docs/protocol.md`).
//!
//! On the offload TCP connection ([`OFFLOAD_PORT`]) every unit is a [`Frame`]: a 2-byte
//! little-endian length then that many bytes, at most [`MAX_FRAME_LEN`] (the Noise message
//! limit). The first frame each way carries a [`Message::Hello`] in clear with a Noise IK
//! handshake message; every later frame is one Noise transport message whose plaintext is one
//! encoded [`Message`] (at most [`MAX_MESSAGE_LEN`] bytes: the frame less the 16-byte tag).
//!
//! A message is a kind byte then its fields, little-endian, with no trailing bytes.
//! [`Message::parse`] validates every length, count, enum value and UTF-8 string against the
//! caps in this module, so it never panics and never returns a field past its cap;
//! [`Message::emit`] writes exactly [`Message::buffer_len`] bytes. Discovery datagrams are in
//! [`discovery`].

pub mod call;
pub mod discovery;

use core::fmt;

use crate::codec::{Cursor, Writer};
use crate::error::ErrorCode;
use crate::syscall::LogLevel;
use call::RESULT_LEN;

/// The job model the messages carry, defined in [`crate::job`].
pub use crate::job::{Engine, JobStatus, Limits, Stats, Value, MAX_LOG_LINES, MAX_LOG_LINE_LEN, MAX_OUTPUT_LEN};

/// A log line as a JobResult carries it: borrowed text.
pub type LogLine<'a> = crate::job::LogLine<&'a str>;

/// The TCP port of the offload service.
pub const OFFLOAD_PORT: u16 = 4748;
/// The protocol version a [`Message::Hello`] carries (3 added [`Stats::engine`]).
pub const PROTOCOL_VERSION: u16 = 3;
/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 2;
/// The largest frame payload: a Noise message.
pub const MAX_FRAME_LEN: usize = 65535;
/// Bytes a Noise transport message adds to its plaintext (the AEAD tag).
pub const NOISE_TAG_LEN: usize = 16;
/// The largest encoded message inside an encrypted frame.
pub const MAX_MESSAGE_LEN: usize = MAX_FRAME_LEN - NOISE_TAG_LEN;
/// The largest Noise handshake message a Hello carries.
pub const MAX_HANDSHAKE_LEN: usize = 1024;
/// The largest encoded [`Message::Hello`]: kind, version, the handshake's length and the
/// handshake. Before the handshake a device refuses any first frame longer than this, so an
/// unauthenticated connection never makes it buffer more.
pub const MAX_HELLO_LEN: usize = 1 + 2 + 2 + MAX_HANDSHAKE_LEN;
/// The largest chunk of a pushed module.
pub const MAX_CHUNK_LEN: usize = 32 * 1024;
/// The largest job input an Invoke carries.
pub const MAX_INPUT_LEN: usize = 32 * 1024;
/// The longest call name in an Invoke.
pub const MAX_CALL_NAME_LEN: usize = 64;
/// Most numeric arguments of a call.
pub const MAX_CALL_ARGS: usize = 8;
/// Most results of a call a JobResult carries.
pub const MAX_CALL_RESULTS: usize = 16;
/// The longest error message.
pub const MAX_ERROR_MESSAGE_LEN: usize = 256;

/// Why bytes were refused by a wire decoder or could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum WireError {
    /// Fewer bytes than the message or frame needs.
    Truncated = 1,
    /// Bytes left over after the message.
    TrailingBytes = 2,
    /// A frame or field longer than its cap.
    TooLong = 3,
    /// The message kind is not defined.
    UnknownKind = 4,
    /// An enum field (format, status, level, error code, load state, flag) has an unknown value.
    BadValue = 5,
    /// A text field is not UTF-8.
    BadUtf8 = 6,
    /// A discovery datagram's magic is not `JOSD`.
    BadMagic = 7,
    /// A version this crate does not speak.
    UnsupportedVersion = 8,
    /// A reserved field is not zero.
    Reserved = 9,
    /// (emit only) the output buffer is too small.
    BufferTooSmall = 10,
}

impl WireError {
    /// The code this error crosses the wire with.
    pub const fn code(self) -> ErrorCode {
        match self {
            WireError::TooLong => ErrorCode::LimitExceeded,
            WireError::UnsupportedVersion => ErrorCode::Unsupported,
            WireError::BufferTooSmall => ErrorCode::InvalidArgument,
            _ => ErrorCode::Malformed,
        }
    }

    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::TrailingBytes => "trailing bytes",
            WireError::TooLong => "field or frame too long",
            WireError::UnknownKind => "unknown message kind",
            WireError::BadValue => "unknown enum value",
            WireError::BadUtf8 => "text is not UTF-8",
            WireError::BadMagic => "bad magic",
            WireError::UnsupportedVersion => "unsupported version",
            WireError::Reserved => "reserved field not zero",
            WireError::BufferTooSmall => "buffer too small",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A checked view of one frame: a 2-byte little-endian length then the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that the buffer holds a whole frame (it may hold more: see [`Frame::total_len`]).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        match frame_len(buffer.as_ref())? {
            Some(_) => Ok(Frame { buffer }),
            None => Err(WireError::Truncated),
        }
    }

    /// Header plus payload length.
    pub fn total_len(&self) -> usize {
        self.payload().len() + FRAME_HEADER_LEN
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let len = bytes.get(..2).map_or(0, |header| u16::from_le_bytes([header[0], header[1]]) as usize);
        bytes.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len).unwrap_or(&[])
    }
}

/// For stream reassembly: the total length of the frame at the start of `bytes` once it is all
/// there (`Ok(Some)`), `Ok(None)` while more bytes are needed.
pub fn frame_len(bytes: &[u8]) -> Result<Option<usize>, WireError> {
    let Some(header) = bytes.get(..FRAME_HEADER_LEN) else { return Ok(None) };
    let total = FRAME_HEADER_LEN + u16::from_le_bytes([header[0], header[1]]) as usize;
    Ok((bytes.len() >= total).then_some(total))
}

/// Writes a frame holding `payload` into `buffer`; returns the frame's length.
pub fn emit_frame(payload: &[u8], buffer: &mut [u8]) -> Result<usize, WireError> {
    let len = u16::try_from(payload.len()).map_err(|_| WireError::TooLong)?;
    let mut writer = Writer::new(buffer);
    writer.u16(len).ok_or(WireError::BufferTooSmall)?;
    writer.bytes(payload).ok_or(WireError::BufferTooSmall)?;
    Ok(writer.len())
}

/// The kind of code pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Format {
    /// A WebAssembly module, signed with a `signature` custom section.
    Wasm = 1,
    /// A signed jos native blob for ARMv6 ([`crate::blob`]).
    NativeArmv6 = 2,
}

impl TryFrom<u8> for Format {
    type Error = WireError;

    fn try_from(value: u8) -> Result<Self, WireError> {
        match value {
            1 => Ok(Format::Wasm),
            2 => Ok(Format::NativeArmv6),
            _ => Err(WireError::BadValue),
        }
    }
}

impl Format {
    /// The set holding only this format.
    pub const fn flag(self) -> Formats {
        match self {
            Format::Wasm => Formats::WASM,
            Format::NativeArmv6 => Formats::NATIVE_ARMV6,
        }
    }
}

bitflags::bitflags! {
    /// A set of [`Format`]s, as adverts list them: bit 0 wasm, bit 1 native ARMv6 (the advert's
    /// `formats` byte, docs/protocol.md). Other bits are refused by
    /// [`from_bits`](Self::from_bits).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Formats: u8 {
        /// wasm.
        const WASM = 1;
        /// native ARMv6.
        const NATIVE_ARMV6 = 2;
        /// Both.
        const ALL = Self::WASM.bits() | Self::NATIVE_ARMV6.bits();
    }
}

impl Formats {
    /// No format.
    pub const NONE: Formats = Formats::empty();

    /// Whether the set accepts `format` (bitflags' own `contains` takes a set).
    pub const fn accepts(self, format: Format) -> bool {
        self.contains(format.flag())
    }
}

impl From<Format> for Formats {
    fn from(format: Format) -> Formats {
        format.flag()
    }
}

/// A function call an Invoke asks for instead of the module's default entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Call<'a> {
    /// The exported function's name (UTF-8, at most [`MAX_CALL_NAME_LEN`] bytes).
    pub name: &'a str,
    /// Numeric arguments; only the first `arg_count` are used.
    pub args: [i64; MAX_CALL_ARGS],
    /// Number of arguments (at most [`MAX_CALL_ARGS`]).
    pub arg_count: u8,
}

impl<'a> Call<'a> {
    /// A call with the given arguments; `None` if there are too many or the name is too long.
    pub fn new(name: &'a str, args: &[i64]) -> Option<Self> {
        if args.len() > MAX_CALL_ARGS || name.len() > MAX_CALL_NAME_LEN {
            return None;
        }
        let mut all = [0; MAX_CALL_ARGS];
        all[..args.len()].copy_from_slice(args);
        Some(Call { name, args: all, arg_count: args.len() as u8 })
    }

    /// The arguments in use.
    pub fn args(&self) -> &[i64] {
        self.args.get(..self.arg_count as usize).unwrap_or(&self.args)
    }
}

/// The log lines of a JobResult: encoded (from a checked parse) or a slice (to emit).
#[derive(Clone, Copy)]
pub struct Logs<'a> {
    storage: LogStorage<'a>,
}

#[derive(Clone, Copy)]
enum LogStorage<'a> {
    Encoded { bytes: &'a [u8], count: usize },
    Decoded(&'a [LogLine<'a>]),
}

impl<'a> Logs<'a> {
    /// Lines in memory.
    pub const fn from_slice(lines: &'a [LogLine<'a>]) -> Self {
        Logs { storage: LogStorage::Decoded(lines) }
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        match self.storage {
            LogStorage::Encoded { count, .. } => count,
            LogStorage::Decoded(lines) => lines.len(),
        }
    }

    /// Whether there are no lines.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lines in order.
    pub fn iter(&self) -> LogIter<'a> {
        match self.storage {
            LogStorage::Encoded { bytes, count } => LogIter { cursor: Cursor::new(bytes), left: count, decoded: &[] },
            LogStorage::Decoded(lines) => LogIter { cursor: Cursor::new(&[]), left: lines.len(), decoded: lines },
        }
    }

    fn encoded_len(&self) -> usize {
        self.iter().map(|line| 3 + line.text.len()).sum()
    }
}

impl PartialEq for Logs<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Logs<'_> {}

impl fmt::Debug for Logs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The results of an exported-function call in a JobResult (empty for the entry point):
/// encoded records (from a checked parse) or a slice (to emit). Two lists are equal when their
/// values have the same types and bits (so a NaN equals itself).
#[derive(Clone, Copy)]
pub struct Results<'a> {
    storage: ResultStorage<'a>,
}

#[derive(Clone, Copy)]
enum ResultStorage<'a> {
    Encoded(&'a [u8]),
    Decoded(&'a [Value]),
}

impl<'a> Results<'a> {
    /// No results (a run of the entry point, or a function that returns nothing).
    pub const EMPTY: Results<'static> = Results { storage: ResultStorage::Decoded(&[]) };

    /// Values in memory.
    pub const fn from_slice(values: &'a [Value]) -> Self {
        Results { storage: ResultStorage::Decoded(values) }
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        match self.storage {
            ResultStorage::Encoded(bytes) => bytes.len() / RESULT_LEN,
            ResultStorage::Decoded(values) => values.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The results in order.
    pub fn iter(&self) -> ResultIter<'a> {
        match self.storage {
            ResultStorage::Encoded(bytes) => ResultIter { encoded: bytes.chunks_exact(RESULT_LEN), decoded: [].iter() },
            ResultStorage::Decoded(values) => {
                ResultIter { encoded: [].chunks_exact(RESULT_LEN), decoded: values.iter() }
            }
        }
    }
}

impl PartialEq for Results<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| a.type_byte() == b.type_byte() && a.bits() == b.bits())
    }
}

impl Eq for Results<'_> {}

impl fmt::Debug for Results<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over [`Results`].
#[derive(Clone)]
pub struct ResultIter<'a> {
    encoded: core::slice::ChunksExact<'a, u8>,
    decoded: core::slice::Iter<'a, Value>,
}

impl Iterator for ResultIter<'_> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if let Some(value) = self.decoded.next() {
            return Some(*value);
        }
        // Encoded records were checked by `Message::parse`.
        self.encoded.next().and_then(|record| Value::parse(record).ok())
    }
}

/// Iterator over [`Logs`].
#[derive(Clone)]
pub struct LogIter<'a> {
    cursor: Cursor<'a>,
    left: usize,
    decoded: &'a [LogLine<'a>],
}

impl<'a> Iterator for LogIter<'a> {
    type Item = LogLine<'a>;

    fn next(&mut self) -> Option<LogLine<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if let Some((first, rest)) = self.decoded.split_first() {
            self.decoded = rest;
            return Some(*first);
        }
        read_log_line(&mut self.cursor).ok()
    }
}

fn read_log_line<'a>(cursor: &mut Cursor<'a>) -> Result<LogLine<'a>, WireError> {
    let level =
        LogLevel::try_from(u32::from(cursor.u8().ok_or(WireError::Truncated)?)).map_err(|_| WireError::BadValue)?;
    let text = read_text(cursor, cursor_u16_len, MAX_LOG_LINE_LEN)?;
    Ok(LogLine { level, text })
}

fn cursor_u16_len(cursor: &mut Cursor<'_>) -> Option<usize> {
    cursor.u16().map(usize::from)
}

fn cursor_u8_len(cursor: &mut Cursor<'_>) -> Option<usize> {
    cursor.u8().map(usize::from)
}

fn cursor_u32_len(cursor: &mut Cursor<'_>) -> Option<usize> {
    cursor.u32().map(|len| len as usize)
}

/// A length (read by `len`), checked against `cap`, then that many bytes.
fn read_bytes<'a>(
    cursor: &mut Cursor<'a>,
    len: fn(&mut Cursor<'_>) -> Option<usize>,
    cap: usize,
) -> Result<&'a [u8], WireError> {
    let len = len(cursor).ok_or(WireError::Truncated)?;
    if len > cap {
        return Err(WireError::TooLong);
    }
    cursor.take(len).ok_or(WireError::Truncated)
}

fn read_text<'a>(
    cursor: &mut Cursor<'a>,
    len: fn(&mut Cursor<'_>) -> Option<usize>,
    cap: usize,
) -> Result<&'a str, WireError> {
    core::str::from_utf8(read_bytes(cursor, len, cap)?).map_err(|_| WireError::BadUtf8)
}

/// Message kind bytes.
pub mod kind {
    /// [`super::Message::Hello`].
    pub const HELLO: u8 = 1;
    /// [`super::Message::PushBegin`].
    pub const PUSH_BEGIN: u8 = 2;
    /// [`super::Message::PushChunk`].
    pub const PUSH_CHUNK: u8 = 3;
    /// [`super::Message::PushEnd`].
    pub const PUSH_END: u8 = 4;
    /// [`super::Message::PushOk`].
    pub const PUSH_OK: u8 = 5;
    /// [`super::Message::Invoke`].
    pub const INVOKE: u8 = 6;
    /// [`super::Message::Progress`].
    pub const PROGRESS: u8 = 7;
    /// [`super::Message::JobResult`].
    pub const JOB_RESULT: u8 = 8;
    /// [`super::Message::Error`].
    pub const ERROR: u8 = 9;
    /// [`super::Message::Ping`].
    pub const PING: u8 = 10;
    /// [`super::Message::Pong`].
    pub const PONG: u8 = 11;
}

/// One protocol message (the `Repr`); see `docs/protocol.md` for direction and meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Both ways, in clear, first: protocol version and one Noise handshake message.
    Hello {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// The Noise IK handshake message (at most [`MAX_HANDSHAKE_LEN`] bytes).
        handshake: &'a [u8],
    },
    /// Client to device: a module of `total_len` bytes follows in chunks.
    PushBegin {
        /// Its format.
        format: Format,
        /// Its size in bytes.
        total_len: u32,
        /// SHA-256 of all its bytes: the cache key that Invoke names.
        sha256: [u8; 32],
        /// Default limits for invocations of this module that send zeros.
        limits: Limits,
    },
    /// Client to device: bytes of the module at `offset` (in order, no gaps).
    PushChunk {
        /// Offset of these bytes in the module.
        offset: u32,
        /// At most [`MAX_CHUNK_LEN`] bytes.
        bytes: &'a [u8],
    },
    /// Client to device: all chunks sent; verify and cache.
    PushEnd,
    /// Device to client: the module verified and is cached under this hash.
    PushOk {
        /// SHA-256 of the module.
        sha256: [u8; 32],
    },
    /// Client to device: run a cached module.
    Invoke {
        /// SHA-256 of the module.
        hash: [u8; 32],
        /// Requested limits (capped by device policy; zero = default).
        limits: Limits,
        /// The job's input (at most [`MAX_INPUT_LEN`] bytes).
        input: &'a [u8],
        /// An exported function to call with numeric arguments, instead of the entry point.
        call: Option<Call<'a>>,
    },
    /// Device to client, while a job runs.
    Progress {
        /// Fuel used so far.
        fuel_used: u64,
        /// Microseconds since the job started.
        elapsed_us: u64,
        /// Output bytes so far.
        output_len: u32,
    },
    /// Device to client: how the job ended.
    JobResult {
        /// Status.
        status: JobStatus,
        /// Exit value (`exit` code or the entry's result; 0 otherwise).
        exit_value: i32,
        /// Usage figures.
        stats: Stats,
        /// Output bytes (at most [`MAX_OUTPUT_LEN`]).
        output: &'a [u8],
        /// The results of an exported-function call (at most [`MAX_CALL_RESULTS`]; empty for
        /// the entry point).
        results: Results<'a>,
        /// Log lines (at most [`MAX_LOG_LINES`]).
        logs: Logs<'a>,
    },
    /// Either way: a request failed; the session goes on.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Detail for people (UTF-8, at most [`MAX_ERROR_MESSAGE_LEN`] bytes).
        message: &'a str,
    },
    /// Either way: liveness check.
    Ping {
        /// Echoed in the Pong.
        nonce: u64,
    },
    /// The answer to a Ping.
    Pong {
        /// The Ping's nonce.
        nonce: u64,
    },
}

impl<'a> Message<'a> {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => kind::HELLO,
            Message::PushBegin { .. } => kind::PUSH_BEGIN,
            Message::PushChunk { .. } => kind::PUSH_CHUNK,
            Message::PushEnd => kind::PUSH_END,
            Message::PushOk { .. } => kind::PUSH_OK,
            Message::Invoke { .. } => kind::INVOKE,
            Message::Progress { .. } => kind::PROGRESS,
            Message::JobResult { .. } => kind::JOB_RESULT,
            Message::Error { .. } => kind::ERROR,
            Message::Ping { .. } => kind::PING,
            Message::Pong { .. } => kind::PONG,
        }
    }

    /// Decodes one message, checking every field; the bytes must be exactly one message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        use WireError::Truncated;
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(WireError::TooLong);
        }
        let mut cursor = Cursor::new(bytes);
        let kind = cursor.u8().ok_or(Truncated)?;
        let message = match kind {
            kind::HELLO => Message::Hello {
                version: cursor.u16().ok_or(Truncated)?,
                handshake: read_bytes(&mut cursor, cursor_u16_len, MAX_HANDSHAKE_LEN)?,
            },
            kind::PUSH_BEGIN => Message::PushBegin {
                format: Format::try_from(cursor.u8().ok_or(Truncated)?)?,
                total_len: cursor.u32().ok_or(Truncated)?,
                sha256: cursor.array().ok_or(Truncated)?,
                limits: Limits::read(&mut cursor).ok_or(Truncated)?,
            },
            kind::PUSH_CHUNK => Message::PushChunk {
                offset: cursor.u32().ok_or(Truncated)?,
                bytes: read_bytes(&mut cursor, cursor_u16_len, MAX_CHUNK_LEN)?,
            },
            kind::PUSH_END => Message::PushEnd,
            kind::PUSH_OK => Message::PushOk { sha256: cursor.array().ok_or(Truncated)? },
            kind::INVOKE => {
                let hash = cursor.array().ok_or(Truncated)?;
                let limits = Limits::read(&mut cursor).ok_or(Truncated)?;
                let input = read_bytes(&mut cursor, cursor_u32_len, MAX_INPUT_LEN)?;
                let call = match cursor.u8().ok_or(Truncated)? {
                    0 => None,
                    1 => {
                        let name = read_text(&mut cursor, cursor_u8_len, MAX_CALL_NAME_LEN)?;
                        let arg_count = cursor.u8().ok_or(Truncated)?;
                        if usize::from(arg_count) > MAX_CALL_ARGS {
                            return Err(WireError::TooLong);
                        }
                        let mut args = [0; MAX_CALL_ARGS];
                        for arg in args.iter_mut().take(arg_count.into()) {
                            *arg = cursor.i64().ok_or(Truncated)?;
                        }
                        Some(Call { name, args, arg_count })
                    }
                    _ => return Err(WireError::BadValue),
                };
                Message::Invoke { hash, limits, input, call }
            }
            kind::PROGRESS => Message::Progress {
                fuel_used: cursor.u64().ok_or(Truncated)?,
                elapsed_us: cursor.u64().ok_or(Truncated)?,
                output_len: cursor.u32().ok_or(Truncated)?,
            },
            kind::JOB_RESULT => {
                let status = JobStatus::try_from(cursor.u8().ok_or(Truncated)?).map_err(|_| WireError::BadValue)?;
                let exit_value = cursor.u32().ok_or(Truncated)? as i32;
                let stats = Stats::read(&mut cursor)?;
                let output = read_bytes(&mut cursor, cursor_u32_len, MAX_OUTPUT_LEN)?;
                let result_count = usize::from(cursor.u8().ok_or(Truncated)?);
                if result_count > MAX_CALL_RESULTS {
                    return Err(WireError::TooLong);
                }
                let records = cursor.take(result_count * RESULT_LEN).ok_or(Truncated)?;
                for record in records.chunks_exact(RESULT_LEN) {
                    Value::parse(record)?;
                }
                let count = usize::from(cursor.u16().ok_or(Truncated)?);
                if count > MAX_LOG_LINES {
                    return Err(WireError::TooLong);
                }
                let start = cursor.rest();
                for _ in 0..count {
                    read_log_line(&mut cursor)?;
                }
                let bytes = &start[..start.len() - cursor.rest().len()];
                Message::JobResult {
                    status,
                    exit_value,
                    stats,
                    output,
                    results: Results { storage: ResultStorage::Encoded(records) },
                    logs: Logs { storage: LogStorage::Encoded { bytes, count } },
                }
            }
            kind::ERROR => Message::Error {
                code: ErrorCode::try_from(cursor.u32().ok_or(Truncated)?).map_err(|_| WireError::BadValue)?,
                message: read_text(&mut cursor, cursor_u16_len, MAX_ERROR_MESSAGE_LEN)?,
            },
            kind::PING => Message::Ping { nonce: cursor.u64().ok_or(Truncated)? },
            kind::PONG => Message::Pong { nonce: cursor.u64().ok_or(Truncated)? },
            _ => return Err(WireError::UnknownKind),
        };
        if !cursor.is_empty() {
            return Err(WireError::TrailingBytes);
        }
        Ok(message)
    }

    /// Encoded length. Fields past their caps still count here; [`Message::emit`] refuses them.
    pub fn buffer_len(&self) -> usize {
        1 + match self {
            Message::Hello { handshake, .. } => 2 + 2 + handshake.len(),
            Message::PushBegin { .. } => 1 + 4 + 32 + Limits::LEN,
            Message::PushChunk { bytes, .. } => 4 + 2 + bytes.len(),
            Message::PushEnd => 0,
            Message::PushOk { .. } => 32,
            Message::Invoke { input, call, .. } => {
                32 + Limits::LEN
                    + 4
                    + input.len()
                    + 1
                    + call.map_or(0, |call| 1 + call.name.len() + 1 + 8 * call.args().len())
            }
            Message::Progress { .. } => 8 + 8 + 4,
            Message::JobResult { output, results, logs, .. } => {
                1 + 4 + Stats::LEN + 4 + output.len() + 1 + RESULT_LEN * results.len() + 2 + logs.encoded_len()
            }
            Message::Error { message, .. } => 4 + 2 + message.len(),
            Message::Ping { .. } | Message::Pong { .. } => 8,
        }
    }

    /// Checks every cap, as [`Message::parse`] will on the other side.
    fn check_caps(&self) -> Result<(), WireError> {
        let fits = match self {
            Message::Hello { handshake, .. } => handshake.len() <= MAX_HANDSHAKE_LEN,
            Message::PushChunk { bytes, .. } => bytes.len() <= MAX_CHUNK_LEN,
            Message::Invoke { input, call, .. } => {
                input.len() <= MAX_INPUT_LEN
                    && call.is_none_or(|call| {
                        call.name.len() <= MAX_CALL_NAME_LEN && usize::from(call.arg_count) <= MAX_CALL_ARGS
                    })
            }
            Message::JobResult { output, results, logs, .. } => {
                output.len() <= MAX_OUTPUT_LEN
                    && results.len() <= MAX_CALL_RESULTS
                    && logs.len() <= MAX_LOG_LINES
                    && logs.iter().all(|line| line.text.len() <= MAX_LOG_LINE_LEN)
            }
            Message::Error { message, .. } => message.len() <= MAX_ERROR_MESSAGE_LEN,
            _ => true,
        };
        if fits && self.buffer_len() <= MAX_MESSAGE_LEN {
            Ok(())
        } else {
            Err(WireError::TooLong)
        }
    }

    /// Writes the message into `buffer`; returns the length written ([`Message::buffer_len`]).
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, WireError> {
        self.check_caps()?;
        let mut writer = Writer::new(buffer);
        self.write(&mut writer).ok_or(WireError::BufferTooSmall)?;
        Ok(writer.len())
    }

    fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u8(self.kind())?;
        match self {
            Message::Hello { version, handshake } => {
                writer.u16(*version)?;
                writer.u16(handshake.len() as u16)?;
                writer.bytes(handshake)
            }
            Message::PushBegin { format, total_len, sha256, limits } => {
                writer.u8(*format as u8)?;
                writer.u32(*total_len)?;
                writer.bytes(sha256)?;
                limits.write(writer)
            }
            Message::PushChunk { offset, bytes } => {
                writer.u32(*offset)?;
                writer.u16(bytes.len() as u16)?;
                writer.bytes(bytes)
            }
            Message::PushEnd => Some(()),
            Message::PushOk { sha256 } => writer.bytes(sha256),
            Message::Invoke { hash, limits, input, call } => {
                writer.bytes(hash)?;
                limits.write(writer)?;
                writer.u32(input.len() as u32)?;
                writer.bytes(input)?;
                match call {
                    None => writer.u8(0),
                    Some(call) => {
                        writer.u8(1)?;
                        writer.u8(call.name.len() as u8)?;
                        writer.bytes(call.name.as_bytes())?;
                        writer.u8(call.args().len() as u8)?;
                        call.args().iter().try_for_each(|arg| writer.i64(*arg))
                    }
                }
            }
            Message::Progress { fuel_used, elapsed_us, output_len } => {
                writer.u64(*fuel_used)?;
                writer.u64(*elapsed_us)?;
                writer.u32(*output_len)
            }
            Message::JobResult { status, exit_value, stats, output, results, logs } => {
                writer.u8(*status as u8)?;
                writer.u32(*exit_value as u32)?;
                stats.write(writer)?;
                writer.u32(output.len() as u32)?;
                writer.bytes(output)?;
                writer.u8(results.len() as u8)?;
                results.iter().try_for_each(|value| {
                    writer.u8(value.type_byte())?;
                    writer.u64(value.bits())
                })?;
                writer.u16(logs.len() as u16)?;
                logs.iter().try_for_each(|line| {
                    writer.u8(line.level as u8)?;
                    writer.u16(line.text.len() as u16)?;
                    writer.bytes(line.text.as_bytes())
                })
            }
            Message::Error { code, message } => {
                writer.u32(*code as u32)?;
                writer.u16(message.len() as u16)?;
                writer.bytes(message.as_bytes())
            }
            Message::Ping { nonce } | Message::Pong { nonce } => writer.u64(*nonce),
        }
    }
}

/// A checked view of one encoded message: [`MessageView::new_checked`] runs the full
/// [`Message::parse`], so the kind and body of a view are always a valid message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> MessageView<T> {
    /// Validates the buffer as exactly one message.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        Message::parse(buffer.as_ref())?;
        Ok(MessageView { buffer })
    }

    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref().first().copied().unwrap_or(0)
    }

    /// The fields after the kind byte.
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(1..).unwrap_or(&[])
    }

    /// The message (cannot fail after `new_checked`; returns the error if it somehow does).
    pub fn message(&self) -> Result<Message<'_>, WireError> {
        Message::parse(self.buffer.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: Message<'_>, golden: &[u8]) {
        assert_eq!(message.buffer_len(), golden.len(), "{message:?}");
        let mut buffer = vec![0u8; golden.len()];
        assert_eq!(message.emit(&mut buffer), Ok(golden.len()));
        assert_eq!(buffer, golden, "{message:?}");
        assert_eq!(Message::parse(golden), Ok(message));
        assert!(MessageView::new_checked(golden).is_ok());
        // Every shorter prefix is refused, and so is one extra byte.
        for len in 0..golden.len() {
            assert!(Message::parse(&golden[..len]).is_err(), "{message:?} cut at {len}");
        }
        let mut longer = golden.to_vec();
        longer.push(0);
        assert_eq!(Message::parse(&longer), Err(WireError::TrailingBytes));
        if !golden.is_empty() {
            let mut short = vec![0u8; golden.len() - 1];
            assert_eq!(message.emit(&mut short), Err(WireError::BufferTooSmall));
        }
    }

    #[test]
    fn the_largest_hello_is_max_hello_len() {
        let handshake = [7u8; MAX_HANDSHAKE_LEN];
        let hello = Message::Hello { version: PROTOCOL_VERSION, handshake: &handshake };
        assert_eq!(hello.buffer_len(), MAX_HELLO_LEN);
        let too_long = [7u8; MAX_HANDSHAKE_LEN + 1];
        assert!(Message::Hello { version: PROTOCOL_VERSION, handshake: &too_long }.emit(&mut [0u8; 2048]).is_err());
    }

    #[test]
    fn golden_messages() {
        round_trip(Message::Hello { version: 1, handshake: &[0xaa, 0xbb] }, &[1, 1, 0, 2, 0, 0xaa, 0xbb]);
        let limits = Limits { fuel: 0x0102, memory: 0x0304, deadline_ms: 5, output: 6 };
        let limit_bytes = [2, 1, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0];
        let mut push_begin = vec![2, 2, 0x10, 0, 0, 0];
        push_begin.extend_from_slice(&[0x5a; 32]);
        push_begin.extend_from_slice(&limit_bytes);
        round_trip(
            Message::PushBegin { format: Format::NativeArmv6, total_len: 16, sha256: [0x5a; 32], limits },
            &push_begin,
        );
        round_trip(Message::PushChunk { offset: 0x100, bytes: b"abc" }, &[3, 0, 1, 0, 0, 3, 0, b'a', b'b', b'c']);
        round_trip(Message::PushEnd, &[4]);
        let mut push_ok = vec![5];
        push_ok.extend_from_slice(&[0x77; 32]);
        round_trip(Message::PushOk { sha256: [0x77; 32] }, &push_ok);

        let mut invoke = vec![6];
        invoke.extend_from_slice(&[0x11; 32]);
        invoke.extend_from_slice(&limit_bytes);
        invoke.extend_from_slice(&[3, 0, 0, 0, b'j', b'o', b'n', 0]);
        round_trip(Message::Invoke { hash: [0x11; 32], limits, input: b"jon", call: None }, &invoke);
        let mut invoke_call = invoke.clone();
        invoke_call.pop();
        invoke_call.extend_from_slice(&[1, 3, b'a', b'd', b'd', 2]);
        invoke_call.extend_from_slice(&2i64.to_le_bytes());
        invoke_call.extend_from_slice(&(-3i64).to_le_bytes());
        let call = Call::new("add", &[2, -3]).unwrap();
        round_trip(Message::Invoke { hash: [0x11; 32], limits, input: b"jon", call: Some(call) }, &invoke_call);

        let mut progress = vec![7];
        progress.extend_from_slice(&9u64.to_le_bytes());
        progress.extend_from_slice(&10u64.to_le_bytes());
        progress.extend_from_slice(&11u32.to_le_bytes());
        round_trip(Message::Progress { fuel_used: 9, elapsed_us: 10, output_len: 11 }, &progress);

        let stats = Stats {
            fuel_used: 1,
            time_us: 2,
            cpu_us: 5,
            cycles: 3,
            peak_memory_bytes: 4,
            engine: Engine::Aot,
            ..Stats::default()
        };
        let lines = [LogLine { level: LogLevel::Info, text: "hi" }, LogLine { level: LogLevel::Error, text: "" }];
        let mut result = vec![8, 2];
        result.extend_from_slice(&(-1i32).to_le_bytes());
        for value in [1u64, 2, 5, 3] {
            result.extend_from_slice(&value.to_le_bytes());
        }
        result.extend_from_slice(&4u32.to_le_bytes());
        // The engine (3: AOT), the last byte of the stats.
        result.push(3);
        let engine_at = result.len() - 1;
        result.extend_from_slice(&[2, 0, 0, 0, 0xde, 0xad]);
        let results_at = result.len();
        result.push(0);
        result.extend_from_slice(&[2, 0, 3, 2, 0, b'h', b'i', 1, 0, 0]);
        round_trip(
            Message::JobResult {
                status: JobStatus::OutOfFuel,
                exit_value: -1,
                stats,
                output: &[0xde, 0xad],
                results: Results::EMPTY,
                logs: Logs::from_slice(&lines),
            },
            &result,
        );
        // A call's results travel beside the output, typed.
        let values = [Value::I32(-2), Value::F64(1.5)];
        let mut with_results = result[..results_at].to_vec();
        with_results
            .extend_from_slice(&[2, 0x7F, 0xFE, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7C, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F]);
        with_results.extend_from_slice(&result[results_at + 1..]);
        round_trip(
            Message::JobResult {
                status: JobStatus::OutOfFuel,
                exit_value: -1,
                stats,
                output: &[0xde, 0xad],
                results: Results::from_slice(&values),
                logs: Logs::from_slice(&lines),
            },
            &with_results,
        );
        let Ok(Message::JobResult { results, .. }) = Message::parse(&with_results) else { panic!("parses") };
        assert!(results.iter().eq(values));
        // Each engine round-trips; an unknown one (0, 4) is refused.
        for engine in [Engine::WasmInterpreter, Engine::Native, Engine::Aot] {
            let mut bytes = result.clone();
            bytes[engine_at] = engine as u8;
            let Ok(Message::JobResult { stats, .. }) = Message::parse(&bytes) else { panic!("parses") };
            assert_eq!(stats.engine, engine);
            assert_eq!(Engine::try_from(engine as u8), Ok(engine));
        }
        for bad in [0, 4, 0xff] {
            let mut bytes = result.clone();
            bytes[engine_at] = bad;
            assert_eq!(Message::parse(&bytes), Err(WireError::BadValue), "engine {bad}");
        }
        // Stats cut inside the engine byte.
        assert_eq!(Message::parse(&result[..engine_at]), Err(WireError::Truncated));
        round_trip(
            Message::Error { code: ErrorCode::Busy, message: "busy" },
            &[9, 7, 0, 0, 0, 4, 0, b'b', b'u', b's', b'y'],
        );
        round_trip(Message::Ping { nonce: 0x0807_0605_0403_0201 }, &[10, 1, 2, 3, 4, 5, 6, 7, 8]);
        round_trip(Message::Pong { nonce: 1 }, &[11, 1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn bad_fields_are_refused() {
        let cases: &[(&[u8], WireError)] = &[
            (&[], WireError::Truncated),
            (&[0], WireError::UnknownKind),
            (&[12], WireError::UnknownKind),
            (&[1, 1, 0, 0x01, 0x04], WireError::TooLong),
            (&[3, 0, 0, 0, 0, 0x01, 0x80], WireError::TooLong),
            (&[9, 0, 0, 0, 0, 0, 0], WireError::BadValue),
            (&[9, 15, 0, 0, 0, 0, 0], WireError::BadValue),
            (&[9, 1, 0, 0, 0, 1, 0, 0xff], WireError::BadUtf8),
            (&[9, 1, 0, 0, 0, 0x01, 0x01], WireError::TooLong),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Message::parse(bytes), Err(*expected), "{bytes:?}");
        }
        let mut begin = vec![2, 3, 0, 0, 0, 0];
        begin.extend_from_slice(&[0; 32 + Limits::LEN]);
        assert_eq!(Message::parse(&begin), Err(WireError::BadValue), "unknown format");

        let mut invoke = vec![6];
        invoke.extend_from_slice(&[0; 32 + Limits::LEN]);
        let prefix = invoke.clone();
        invoke.extend_from_slice(&[0, 0x81, 0, 0]);
        assert_eq!(Message::parse(&invoke), Err(WireError::TooLong), "input over the cap");
        let mut bad_flag = prefix.clone();
        bad_flag.extend_from_slice(&[0, 0, 0, 0, 2]);
        assert_eq!(Message::parse(&bad_flag), Err(WireError::BadValue));
        let mut many_args = prefix.clone();
        many_args.extend_from_slice(&[0, 0, 0, 0, 1, 1, b'f', 9]);
        assert_eq!(Message::parse(&many_args), Err(WireError::TooLong));

        let mut result = vec![8, 7];
        result.extend_from_slice(&[0; 4 + Stats::LEN + 4 + 1 + 2]);
        assert_eq!(Message::parse(&result), Err(WireError::BadValue), "unknown status");
        let mut results = vec![8, 0];
        results.extend_from_slice(&[0; 4 + Stats::LEN + 4]);
        // Zero stats but a known engine (the interpreter).
        results[2 + 4 + Stats::LEN - 1] = Engine::WasmInterpreter as u8;
        let results_prefix = results.clone();
        results.extend_from_slice(&[17]);
        results.extend_from_slice(&[0; 17 * 9 + 2]);
        assert_eq!(Message::parse(&results), Err(WireError::TooLong), "too many results");
        let mut bad_type = results_prefix.clone();
        bad_type.extend_from_slice(&[1, 0x7B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Message::parse(&bad_type), Err(WireError::BadValue), "unknown result type");
        let mut wide_i32 = results_prefix.clone();
        wide_i32.extend_from_slice(&[1, 0x7F, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(Message::parse(&wide_i32), Err(WireError::BadValue), "i32 result with high bits");
        let mut short_results = results_prefix.clone();
        short_results.extend_from_slice(&[2, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Message::parse(&short_results), Err(WireError::Truncated), "fewer records than counted");
        let mut logs = results_prefix;
        logs.push(0);
        let logs_prefix = logs.clone();
        logs.extend_from_slice(&[65, 0]);
        assert_eq!(Message::parse(&logs), Err(WireError::TooLong), "too many lines");
        let mut level = logs_prefix.clone();
        level.extend_from_slice(&[1, 0, 9, 0, 0]);
        assert_eq!(Message::parse(&level), Err(WireError::BadValue), "unknown log level");
        let mut long_line = logs_prefix;
        long_line.extend_from_slice(&[1, 0, 1, 201, 0]);
        assert_eq!(Message::parse(&long_line), Err(WireError::TooLong));

        let huge = vec![4u8; MAX_MESSAGE_LEN + 1];
        assert_eq!(Message::parse(&huge), Err(WireError::TooLong));
    }

    #[test]
    fn emit_refuses_what_parse_would() {
        let mut buffer = vec![0u8; 70_000];
        let big = vec![0u8; MAX_CHUNK_LEN + 1];
        assert_eq!(Message::PushChunk { offset: 0, bytes: &big }.emit(&mut buffer), Err(WireError::TooLong));
        let long = "x".repeat(MAX_ERROR_MESSAGE_LEN + 1);
        assert_eq!(Message::Error { code: ErrorCode::Io, message: &long }.emit(&mut buffer), Err(WireError::TooLong));
        let lines = [LogLine { level: LogLevel::Info, text: "x" }; MAX_LOG_LINES + 1];
        let result = Message::JobResult {
            status: JobStatus::Ok,
            exit_value: 0,
            stats: Stats::default(),
            output: &[],
            results: Results::EMPTY,
            logs: Logs::from_slice(&lines),
        };
        assert_eq!(result.emit(&mut buffer), Err(WireError::TooLong));
        let values = [Value::I64(1); MAX_CALL_RESULTS + 1];
        let result = Message::JobResult {
            status: JobStatus::Ok,
            exit_value: 0,
            stats: Stats::default(),
            output: &[],
            results: Results::from_slice(&values),
            logs: Logs::from_slice(&[]),
        };
        assert_eq!(result.emit(&mut buffer), Err(WireError::TooLong));
        assert!(Call::new("f", &[0; MAX_CALL_ARGS + 1]).is_none());
        // The largest result fits a frame.
        let text = "y".repeat(MAX_LOG_LINE_LEN);
        let lines = [LogLine { level: LogLevel::Debug, text: &text }; MAX_LOG_LINES];
        let output = vec![0u8; MAX_OUTPUT_LEN];
        let values = [Value::F64(f64::NAN); MAX_CALL_RESULTS];
        let result = Message::JobResult {
            status: JobStatus::Ok,
            exit_value: 0,
            stats: Stats::default(),
            output: &output,
            results: Results::from_slice(&values),
            logs: Logs::from_slice(&lines),
        };
        let len = result.emit(&mut buffer).unwrap();
        assert!(len <= MAX_MESSAGE_LEN);
        assert_eq!(Message::parse(&buffer[..len]), Ok(result));
    }

    #[test]
    fn frames() {
        let mut buffer = [0u8; 8];
        assert_eq!(emit_frame(b"abc", &mut buffer), Ok(5));
        assert_eq!(&buffer[..5], &[3, 0, b'a', b'b', b'c']);
        assert_eq!(frame_len(&buffer[..1]), Ok(None));
        assert_eq!(frame_len(&buffer[..4]), Ok(None));
        assert_eq!(frame_len(&buffer[..5]), Ok(Some(5)));
        assert_eq!(frame_len(&buffer), Ok(Some(5)));
        let frame = Frame::new_checked(&buffer[..]).unwrap();
        assert_eq!(frame.payload(), b"abc");
        assert_eq!(frame.total_len(), 5);
        assert_eq!(Frame::new_checked(&buffer[..4]), Err(WireError::Truncated));
        assert_eq!(emit_frame(b"abcdefg", &mut buffer), Err(WireError::BufferTooSmall));
        let big = vec![0u8; MAX_FRAME_LEN + 1];
        let mut out = vec![0u8; MAX_FRAME_LEN + 4];
        assert_eq!(emit_frame(&big, &mut out), Err(WireError::TooLong));
    }

    #[test]
    fn limits_are_capped_by_policy() {
        let policy = Limits { fuel: 1000, memory: 1 << 20, deadline_ms: 500, output: 4096 };
        let request = Limits { fuel: 0, memory: 2 << 20, deadline_ms: 100, output: 0 };
        assert_eq!(request.capped_by(policy), Limits { fuel: 1000, memory: 1 << 20, deadline_ms: 100, output: 4096 });
    }

    #[test]
    fn enums_round_trip() {
        for value in 0..=255u8 {
            if let Ok(status) = JobStatus::try_from(value) {
                assert_eq!(status as u8, value);
            }
            if let Ok(format) = Format::try_from(value) {
                assert_eq!(format as u8, value);
                assert!(Formats::ALL.accepts(format));
                assert_eq!(Formats::from(format).bits(), 1 << (value - 1));
            }
        }
        assert!(!Formats::WASM.accepts(Format::NativeArmv6));
        assert!(Formats::WASM.accepts(Format::Wasm));
        assert!(!Formats::NONE.accepts(Format::Wasm));
        assert_eq!(Formats::from_bits(4), None);
        assert_eq!(Formats::from_bits(3), Some(Formats::ALL));
        assert_eq!(WireError::TooLong.code(), ErrorCode::LimitExceeded);
    }
}

//! The `jos` import module: every system call of the syscall table as a wasmi host function.
//!
//! Imports are checked against [`jos_abi::syscall::SYSCALLS`] before anything is defined: an
//! import from another module, of another kind, with an unknown name or with a signature other
//! than the table's is refused with the import's module and name. Only the calls a module imports
//! are defined in its linker. Every call charges its fuel ([`super::cost`]) through
//! [`charge`] before it does its work.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use jos_abi::syscall::{self, Endpoint, LogLevel, Syscall, SyscallId, ValueType, WASM_IMPORT_MODULE};
use jos_abi::ErrorCode;
use wasmi::errors::LinkerError;
use wasmi::{Caller, Error, ExternType, FuncType, Linker, Module, ValType};

use super::{cost, JobState};
use crate::host::Host;
use crate::job::{log_bytes_kept, log_line, LoadError};

/// Raised by `yield`: the job's slice ends (`step` returns `StepOutcome::Yielded`, and the kernel
/// gives it no further slice in that frame) and it resumes later with result 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct YieldSignal;

impl fmt::Display for YieldSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("job yielded")
    }
}

impl wasmi::errors::HostError for YieldSignal {}

/// Raised by a host call whose work goes on over later slices (`random` into a large buffer):
/// `step` returns `Running`, and the next steps do the rest of [`JobState::pending`] before the
/// call returns to the job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostWork;

impl fmt::Display for HostWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("host call continues in the next slice")
    }
}

impl wasmi::errors::HostError for HostWork {}

/// Work a host call left for later slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// `random`: the bytes `[at, end)` of linear memory are still to be filled.
    Random { at: usize, end: usize },
}

/// The job's fuel as seen inside a host call of the current slice.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Meter {
    /// Fuel the job could still use when the slice began (its budget minus what it used).
    pub left_at_slice: u64,
    /// Fuel the store was given for the slice.
    pub given: u64,
    /// Fuel host calls charged in this slice beyond what the store's fuel covered.
    pub extra: u64,
}

impl Meter {
    /// Fuel the job can still use, the store holding `store_fuel` now.
    pub fn left(&self, store_fuel: u64) -> u64 {
        self.left_at_slice.saturating_sub(self.given.saturating_sub(store_fuel).saturating_add(self.extra))
    }
}

fn out_of_fuel() -> Error {
    Error::from(wasmi::TrapCode::OutOfFuel)
}

/// Whether the job can still pay `cost`: an `OutOfFuel` trap (the job ends) if not.
fn affordable<H>(caller: &Ctx<'_, H>, cost: u64) -> Result<(), Error> {
    let fuel = caller.get_fuel().unwrap_or(0);
    if cost > caller.data().meter.left(fuel) {
        return Err(out_of_fuel());
    }
    Ok(())
}

/// Charges `cost` fuel to the job: from the slice's fuel as far as it goes, the rest counted
/// beside it (the slice then ends after this call). Ends the job with `OutOfFuel` (an error the
/// call returns) if its budget cannot pay.
pub(crate) fn charge<H>(caller: &mut Ctx<'_, H>, cost: u64) -> Result<(), Error> {
    affordable(caller, cost)?;
    let fuel = caller.get_fuel().unwrap_or(0);
    let from_store = cost.min(fuel);
    caller.data_mut().meter.extra += cost - from_store;
    caller.set_fuel(fuel - from_store)
}

/// The size of the job's exported `memory`, if it has one.
fn memory_size<H>(caller: &Ctx<'_, H>) -> Option<usize> {
    let memory = caller.get_export("memory")?.into_memory()?;
    Some(memory.data_size(caller))
}

/// Checks every import of `module` and defines the calls it uses in a new linker.
pub(crate) fn link<H: Host + 'static>(
    engine: &wasmi::Engine,
    module: &Module,
) -> Result<Linker<JobState<H>>, LoadError> {
    let mut linker = Linker::new(engine);
    // A module may import the same call more than once; it is defined once.
    let mut defined = 0u64;
    for import in module.imports() {
        let call = check_import(import.module(), import.name(), import.ty())?;
        let bit = 1u64 << (call.id as u32 % 64);
        if defined & bit != 0 {
            continue;
        }
        defined |= bit;
        define::<H>(&mut linker, call).map_err(|error| LoadError::Instantiation(error.to_string()))?;
    }
    Ok(linker)
}

/// The syscall an import names, if the import is one the table has with the table's signature.
pub(crate) fn check_import(module: &str, name: &str, ty: &ExternType) -> Result<&'static Syscall, LoadError> {
    let unknown = || LoadError::UnknownImport { module: module.into(), name: name.into() };
    if module != WASM_IMPORT_MODULE {
        return Err(unknown());
    }
    let call = syscall::by_name(name).ok_or_else(unknown)?;
    let ExternType::Func(func_type) = ty else {
        return Err(unknown());
    };
    let matches = |want: &[ValueType], have: &[ValType]| {
        want.len() == have.len()
            && want
                .iter()
                .zip(have)
                .all(|(w, h)| matches!((w, h), (ValueType::I32, ValType::I32) | (ValueType::I64, ValType::I64)))
    };
    if !matches(call.signature.params, func_type.params()) || !matches(call.signature.results, func_type.results()) {
        return Err(LoadError::ImportSignature {
            name: name.into(),
            expected: table_signature(call),
            found: wasm_signature(func_type),
        });
    }
    Ok(call)
}

fn table_signature(call: &Syscall) -> String {
    let name = |t: &ValueType| match t {
        ValueType::I32 => "i32",
        ValueType::I64 => "i64",
    };
    let params: Vec<&str> = call.signature.params.iter().map(name).collect();
    let results: Vec<&str> = call.signature.results.iter().map(name).collect();
    format!("({}) -> ({})", params.join(", "), results.join(", "))
}

fn wasm_signature(func_type: &FuncType) -> String {
    let name = |t: &ValType| match t {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::FuncRef => "funcref",
        ValType::ExternRef => "externref",
        #[allow(unreachable_patterns, reason = "V128 exists only with wasmi's simd feature")]
        _ => "v128",
    };
    let params: Vec<&str> = func_type.params().iter().map(name).collect();
    let results: Vec<&str> = func_type.results().iter().map(name).collect();
    format!("({}) -> ({})", params.join(", "), results.join(", "))
}

type Ctx<'a, H> = Caller<'a, JobState<H>>;

/// The byte range `[pointer, pointer + length)` of linear memory, if it lies inside `size`.
/// Pointers and lengths are unsigned 32-bit, as in wasm32.
fn guest_range(pointer: i32, length: i32, size: usize) -> Result<Range<usize>, ErrorCode> {
    let start = pointer as u32 as usize;
    let end = start.checked_add(length as u32 as usize).ok_or(ErrorCode::BadAddress)?;
    if end > size {
        return Err(ErrorCode::BadAddress);
    }
    Ok(start..end)
}

/// Runs `body` with the job's exported `memory` and state; `BadAddress` if there is no memory.
fn with_memory<H: Host + 'static>(
    caller: &mut Ctx<'_, H>,
    body: impl FnOnce(&mut [u8], &mut JobState<H>) -> Result<i32, ErrorCode>,
) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(|export| export.into_memory()) else {
        return ErrorCode::BadAddress.to_return();
    };
    let (bytes, state) = memory.data_and_store_mut(caller);
    body(bytes, state).unwrap_or_else(ErrorCode::to_return)
}

fn gate<H>(state: &JobState<H>, id: SyscallId) -> Result<(), ErrorCode> {
    if state.capabilities.allows(id.syscall().capability) {
        Ok(())
    } else {
        Err(ErrorCode::PermissionDenied)
    }
}

fn status(result: Result<(), ErrorCode>) -> i32 {
    result.map_or_else(ErrorCode::to_return, |()| 0)
}

fn define<H: Host + 'static>(linker: &mut Linker<JobState<H>>, call: &Syscall) -> Result<(), LinkerError> {
    let m = WASM_IMPORT_MODULE;
    let name = call.name;
    match call.id {
        SyscallId::InputLen => linker.func_wrap(m, name, |mut caller: Ctx<'_, H>| -> Result<i32, Error> {
            charge(&mut caller, cost::CALL)?;
            Ok(i32::try_from(caller.data().host.input_len()).unwrap_or(i32::MAX))
        }),
        SyscallId::InputRead => {
            linker.func_wrap(
                m,
                name,
                |mut caller: Ctx<'_, H>, buffer: i32, length: i32, offset: i32| -> Result<i32, Error> {
                    // Charged for what can be copied: the requested length, cut at the input's end.
                    let available = caller.data().host.input_len().saturating_sub(offset as u32 as usize);
                    let copied = (length as u32 as usize).min(available) as u64;
                    charge(&mut caller, cost::CALL + cost::copy(copied))?;
                    Ok(with_memory(&mut caller, |memory, state| {
                        let range = guest_range(buffer, length, memory.len())?;
                        let copied = state.host.input_read(offset as u32 as usize, &mut memory[range]);
                        Ok(i32::try_from(copied).unwrap_or(i32::MAX))
                    }))
                },
            )
        }
        SyscallId::OutputWrite => {
            linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, buffer: i32, length: i32| -> Result<i32, Error> {
                let state = caller.data();
                let room = state.limits.max_output_bytes.saturating_sub(state.output.len());
                let copied = (length as u32 as usize).min(room) as u64;
                charge(&mut caller, cost::CALL + cost::copy(copied))?;
                Ok(with_memory(&mut caller, |memory, state| {
                    let range = guest_range(buffer, length, memory.len())?;
                    if state.output.len() + range.len() > state.limits.max_output_bytes {
                        state.output_overflow = true;
                        return Err(ErrorCode::LimitExceeded);
                    }
                    state.output.extend_from_slice(&memory[range]);
                    Ok(0)
                }))
            })
        }
        SyscallId::Log => linker.func_wrap(
            m,
            name,
            |mut caller: Ctx<'_, H>, level: i32, buffer: i32, length: i32| -> Result<i32, Error> {
                let kept = log_bytes_kept(length as u32 as usize) as u64;
                charge(&mut caller, cost::CALL + kept * cost::LOG_PER_BYTE)?;
                Ok(with_memory(&mut caller, |memory, state| {
                    let level = LogLevel::try_from(level as u32).map_err(|_| ErrorCode::InvalidArgument)?;
                    let range = guest_range(buffer, length, memory.len())?;
                    let bytes = &memory[range];
                    let kept = log_bytes_kept(bytes.len());
                    if state.log_bytes + kept > state.limits.max_log_bytes {
                        state.logs_dropped = state.logs_dropped.saturating_add(1);
                        return Err(ErrorCode::LimitExceeded);
                    }
                    state.log_bytes += kept;
                    let line = log_line(level, bytes);
                    state.host.on_log(level, &line.text);
                    state.logs.push(line);
                    Ok(0)
                }))
            },
        ),
        SyscallId::TimeMicros => linker.func_wrap(m, name, |mut caller: Ctx<'_, H>| -> Result<i64, Error> {
            charge(&mut caller, cost::CALL)?;
            Ok(i64::try_from(caller.data().host.time_us()).unwrap_or(i64::MAX))
        }),
        SyscallId::Random => {
            linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, buffer: i32, length: i32| -> Result<i32, Error> {
                charge(&mut caller, cost::CALL)?;
                let Some(size) = memory_size(&caller) else { return Ok(ErrorCode::BadAddress.to_return()) };
                let range = match guest_range(buffer, length, size) {
                    Ok(range) => range,
                    Err(code) => return Ok(code.to_return()),
                };
                // The whole call must be affordable before any of it is done; then the part this
                // slice's fuel pays for is done now and the rest in the next slices.
                affordable(&caller, range.len() as u64 * cost::RANDOM_PER_BYTE)?;
                let now = (caller.get_fuel().unwrap_or(0) / cost::RANDOM_PER_BYTE).min(range.len() as u64) as usize;
                charge(&mut caller, now as u64 * cost::RANDOM_PER_BYTE)?;
                let filled = with_memory(&mut caller, |memory, state| {
                    state.host.random(&mut memory[range.start..range.start + now]).map(|()| 0)
                });
                if filled != 0 || now == range.len() {
                    return Ok(filled);
                }
                caller.data_mut().pending = Some(Pending::Random { at: range.start + now, end: range.end });
                Err(Error::host(HostWork))
            })
        }
        SyscallId::Yield => {
            linker.func_wrap(m, name, |_caller: Ctx<'_, H>| -> Result<i32, Error> { Err(Error::host(YieldSignal)) })
        }
        SyscallId::Exit => linker
            .func_wrap(m, name, |_caller: Ctx<'_, H>, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) }),
        SyscallId::UdpBind => linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, port: i32| -> Result<i32, Error> {
            charge(&mut caller, cost::CALL + cost::UDP_SOCKET)?;
            let state = caller.data_mut();
            let result = gate(state, SyscallId::UdpBind)
                .and_then(|()| u16::try_from(port).map_err(|_| ErrorCode::InvalidArgument))
                .and_then(|port| state.host.udp_bind(port))
                .and_then(|handle| i32::try_from(handle).map_err(|_| ErrorCode::Io));
            Ok(result.unwrap_or_else(ErrorCode::to_return))
        }),
        SyscallId::UdpSend => linker.func_wrap(
            m,
            name,
            |mut caller: Ctx<'_, H>, handle: i32, endpoint: i32, buffer: i32, length: i32| -> Result<i32, Error> {
                charge(&mut caller, cost::CALL + cost::copy(length as u32 as u64))?;
                Ok(with_memory(&mut caller, |memory, state| {
                    gate(state, SyscallId::UdpSend)?;
                    let at = guest_range(endpoint, Endpoint::LEN as i32, memory.len())?;
                    let mut raw = [0u8; Endpoint::LEN];
                    raw.copy_from_slice(&memory[at]);
                    let to = Endpoint::from_bytes(raw).ok_or(ErrorCode::InvalidArgument)?;
                    let range = guest_range(buffer, length, memory.len())?;
                    state.host.udp_send(handle as u32, to, &memory[range]).map(|()| 0)
                }))
            },
        ),
        SyscallId::UdpRecv => linker.func_wrap(
            m,
            name,
            |mut caller: Ctx<'_, H>, handle: i32, buffer: i32, length: i32, endpoint: i32| -> Result<i32, Error> {
                charge(&mut caller, cost::CALL)?;
                let mut copied = 0;
                let result = with_memory(&mut caller, |memory, state| {
                    gate(state, SyscallId::UdpRecv)?;
                    let at = guest_range(endpoint, Endpoint::LEN as i32, memory.len())?;
                    let range = guest_range(buffer, length, memory.len())?;
                    let capacity = range.len();
                    let (received, from) = state.host.udp_recv(handle as u32, &mut memory[range])?;
                    memory[at].copy_from_slice(&from.to_bytes());
                    copied = received.min(capacity) as u64;
                    Ok(i32::try_from(received).unwrap_or(i32::MAX))
                });
                // Charged after: the datagram's length is known once it is taken.
                charge(&mut caller, cost::copy(copied))?;
                Ok(result)
            },
        ),
        SyscallId::UdpClose => linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, handle: i32| -> Result<i32, Error> {
            charge(&mut caller, cost::CALL + cost::UDP_SOCKET)?;
            let state = caller.data_mut();
            Ok(status(gate(state, SyscallId::UdpClose).and_then(|()| state.host.udp_close(handle as u32))))
        }),
        SyscallId::ScreenPrint => {
            linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, buffer: i32, length: i32| -> Result<i32, Error> {
                charge(&mut caller, cost::CALL + cost::SCREEN_LINE)?;
                Ok(with_memory(&mut caller, |memory, state| {
                    gate(state, SyscallId::ScreenPrint)?;
                    let range = guest_range(buffer, length, memory.len())?;
                    // Only the first SCREEN_LINE_BYTES bytes are looked at (a multi-byte character
                    // cut at that end is dropped): the device shows less than that anyway.
                    let bytes = &memory[range.start..range.end.min(range.start + cost::SCREEN_LINE_BYTES)];
                    let line = match core::str::from_utf8(bytes) {
                        Ok(line) => line,
                        Err(error) if error.error_len().is_none() && range.len() > bytes.len() => {
                            core::str::from_utf8(&bytes[..error.valid_up_to()])
                                .map_err(|_| ErrorCode::InvalidArgument)?
                        }
                        Err(_) => return Err(ErrorCode::InvalidArgument),
                    };
                    state.host.screen_print(line).map(|()| 0)
                }))
            })
        }
        SyscallId::GpioWrite => {
            linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, pin: i32, level: i32| -> Result<i32, Error> {
                charge(&mut caller, cost::CALL)?;
                let state = caller.data_mut();
                let result = gate(state, SyscallId::GpioWrite).and_then(|()| match level {
                    0 | 1 => state.host.gpio_write(pin as u32, level == 1),
                    _ => Err(ErrorCode::InvalidArgument),
                });
                Ok(status(result))
            })
        }
        SyscallId::GpioRead => linker.func_wrap(m, name, |mut caller: Ctx<'_, H>, pin: i32| -> Result<i32, Error> {
            charge(&mut caller, cost::CALL)?;
            let state = caller.data_mut();
            let result = gate(state, SyscallId::GpioRead).and_then(|()| state.host.gpio_read(pin as u32));
            Ok(result.map_or_else(ErrorCode::to_return, i32::from))
        }),
    }
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_ranges_are_bounded() {
        assert_eq!(guest_range(0, 4, 4), Ok(0..4));
        assert_eq!(guest_range(4, 0, 4), Ok(4..4));
        assert_eq!(guest_range(1, 4, 4), Err(ErrorCode::BadAddress));
        assert_eq!(guest_range(-1, 1, 65536), Err(ErrorCode::BadAddress));
        assert_eq!(guest_range(0, -1, 65536), Err(ErrorCode::BadAddress));
        assert_eq!(guest_range(i32::MAX, i32::MAX, usize::MAX), Ok(i32::MAX as usize..2 * i32::MAX as usize));
    }

    #[test]
    fn signatures_print_like_the_table() {
        assert_eq!(table_signature(SyscallId::Log.syscall()), "(i32, i32, i32) -> (i32)");
        assert_eq!(table_signature(SyscallId::Exit.syscall()), "(i32) -> ()");
    }
}

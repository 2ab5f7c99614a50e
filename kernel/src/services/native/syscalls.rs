//! The native job's system calls: the SVC hook ([`system_call`]), which dispatches by the number
//! in the `svc` instruction into [`HANDLERS`] (one array index, no lookup by name), the handlers
//! of ABI 1.0, and the checks every pointer and length goes through before the kernel touches the
//! job's memory ([`user_buffer`]: the job's region or stack, overflow included, else
//! `-JOS_EFAULT`). The loader's [`dispatch_table`] binds each import to its call's stub in the
//! user page. The job's state lives in the parent module.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;

use jos_abi::job::MAX_LOG_LINES;
use jos_abi::syscall::{Capability, Endpoint, LogLevel, SyscallId, SYSCALLS, SYSCALL_TABLE_LEN};
use jos_abi::ErrorCode;
use jos_kcore::page_table::PAGE_SIZE;
use jos_runtime::native::DispatchTable;
use jos_runtime::LogLine;

use super::{
    commit_through, with_job, Job, EXPIRED, IN_SYSCALL, OUTCOME, OUTCOME_DEADLINE, OUTCOME_EXIT, OUTCOME_PREEMPTED,
    OUTCOME_TRAP, OUTCOME_YIELDED, REGION_DATA, REGION_END, REGION_START, RUNNING, STEP_TICKS,
};
use crate::arch::exceptions::{SvcExit, TrapFrame};
use crate::arch::user;
use crate::board::bcm2835::{RNG, TIMER};

/// A buffer the job passed: `Some` only if `[address, address + length)` lies in the job's own
/// memory (its region, or for `write` its writable part, or its stack), with no overflow.
/// A buffer in the region is committed first ([`commit_through`]: zeroed and mapped where the
/// job never touched it), so the kernel reads zeros there, not the block's earlier contents, and
/// what it writes is not wiped by a later first touch. An empty buffer is always fine (nothing
/// is touched).
fn user_buffer(address: usize, length: usize, write: bool) -> Option<(usize, usize)> {
    if length == 0 {
        return Some((PAGE_SIZE, 0));
    }
    let end = address.checked_add(length)?;
    let inside = |(start, stop): (usize, usize)| address >= start && end <= stop;
    let region_start =
        if write { REGION_DATA.load(Ordering::Relaxed) } else { REGION_START.load(Ordering::Relaxed) } as usize;
    let region = (region_start, REGION_END.load(Ordering::Relaxed) as usize);
    if region.1 > region.0 && inside(region) {
        return commit_through(end - 1).then_some((address, length));
    }
    inside(crate::memory::layout::job_stack()).then_some((address, length))
}

/// The job's bytes at `[address, address + length)` (checked by [`user_buffer`]).
fn user_bytes<'a>(address: u32, length: u32) -> Result<&'a [u8], ErrorCode> {
    let (address, length) = user_buffer(address as usize, length as usize, false).ok_or(ErrorCode::BadAddress)?;
    // SAFETY: `user_buffer` proved the range lies in the job's mapped memory, which stays
    // mapped and allocated until the job ends (never during a system call).
    Ok(unsafe { core::slice::from_raw_parts(address as *const u8, length) })
}

/// The job's writable bytes at `[address, address + length)` (checked by [`user_buffer`]).
fn user_bytes_mut<'a>(address: u32, length: u32) -> Result<&'a mut [u8], ErrorCode> {
    let (address, length) = user_buffer(address as usize, length as usize, true).ok_or(ErrorCode::BadAddress)?;
    // SAFETY: as in `user_bytes`, in the writable part; the kernel holds no other reference
    // into the job's memory.
    Ok(unsafe { core::slice::from_raw_parts_mut(address as *mut u8, length) })
}

/// Ends the job at a system call's entry if its deadline passed.
fn check_expired() {
    if EXPIRED.load(Ordering::Relaxed) {
        OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
        RUNNING.store(false, Ordering::Relaxed);
        // SAFETY: called from the SVC hook in SVC mode, with no lock or borrow held: the
        // recovery context is live while RUNNING.
        unsafe { user::leave(0) }
    }
}

/// Whether the executive's frame tick came since the current step began.
pub(super) fn tick_came() -> bool {
    crate::services::executive::ticks() != STEP_TICKS.load(Ordering::Relaxed)
}

/// Ends the job from the SVC hook with Trap and `report` as its fault line.
fn trap(report: String) -> ! {
    crate::arch::disable_interrupts();
    IN_SYSCALL.store(false, Ordering::Relaxed);
    with_job(|job| job.fault = Some(report));
    OUTCOME.store(OUTCOME_TRAP, Ordering::Relaxed);
    RUNNING.store(false, Ordering::Relaxed);
    // SAFETY: as in `check_expired`.
    unsafe { user::leave(0) }
}

/// The SVC number of the instruction before `frame.pc` (ARM: 24 bits, Thumb: 8 bits).
fn svc_number(frame: &TrapFrame) -> (u32, u32) {
    if frame.spsr & (1 << 5) != 0 {
        // SAFETY: the job just executed this halfword from memory mapped for it, which the
        // kernel may read too.
        (u32::from(unsafe { core::ptr::read_volatile((frame.pc - 2) as *const u16) }) & 0xFF, 2)
    } else {
        // SAFETY: as above, a word-aligned ARM instruction.
        (unsafe { core::ptr::read_volatile((frame.pc - 4) as *const u32) } & 0x00FF_FFFF, 4)
    }
}

/// A system call's handler: reads its arguments from the frame's r0-r3 and writes its result
/// into r0 (and r1 for 64-bit results).
type Handler = fn(&mut TrapFrame) -> SvcExit;

/// The handler of each call of the table (`jos_abi::syscall::SYSCALLS`): an exhaustive match,
/// so a call added to the table does not build until the kernel serves it (or says here that it
/// does not, with `None`).
const fn handler(id: SyscallId) -> Option<Handler> {
    Some(match id {
        SyscallId::InputLen => sys_input_len,
        SyscallId::InputRead => sys_input_read,
        SyscallId::OutputWrite => sys_output_write,
        SyscallId::Log => sys_log,
        SyscallId::TimeMicros => sys_time_us,
        SyscallId::Random => sys_random,
        SyscallId::Yield => sys_yield,
        SyscallId::Exit => sys_exit,
        SyscallId::UdpBind => sys_udp_bind,
        SyscallId::UdpSend => sys_udp_send,
        SyscallId::UdpRecv => sys_udp_recv,
        SyscallId::UdpClose => sys_udp_close,
        SyscallId::ScreenPrint => sys_screen_print,
        SyscallId::GpioWrite => sys_gpio_write,
        SyscallId::GpioRead => sys_gpio_read,
    })
}

/// The system calls by number, built from the table at compile time: one array index per call,
/// no lookup by name; `None` for the numbers the table does not use.
static HANDLERS: [Option<Handler>; SYSCALL_TABLE_LEN] = {
    let mut table: [Option<Handler>; SYSCALL_TABLE_LEN] = [None; SYSCALL_TABLE_LEN];
    let mut index = 0;
    while index < SYSCALLS.len() {
        let id = SYSCALLS[index].id;
        table[id as usize] = handler(id);
        index += 1;
    }
    table
};

/// The SVC hook (registered with `arch::exceptions::set_hooks`): the job's system call. Ends the
/// job if its deadline passed; if the frame tick came while the job ran (it may live in system
/// calls), rewinds the PC to the `svc` and suspends the job, so the call runs when it is resumed;
/// otherwise runs the handler with IRQs enabled. An unknown number ends the job with Trap.
pub fn system_call(frame: &mut TrapFrame) -> SvcExit {
    let (number, length) = svc_number(frame);
    if !RUNNING.load(Ordering::Relaxed) {
        frame.r[0] = ErrorCode::Unsupported.to_return() as u32;
        return SvcExit::Return;
    }
    check_expired();
    if tick_came() {
        frame.pc -= length;
        OUTCOME.store(OUTCOME_PREEMPTED, Ordering::Relaxed);
        RUNNING.store(false, Ordering::Relaxed);
        return SvcExit::Suspend;
    }
    let Some(handler) = HANDLERS.get(number as usize).copied().flatten() else {
        let base = REGION_START.load(Ordering::Relaxed);
        trap(format!(
            "fault: unknown system call (svc #{number}) at pc={:#010x} (blob+{:#x})",
            frame.pc - length,
            (frame.pc - length).wrapping_sub(base)
        ))
    };
    IN_SYSCALL.store(true, Ordering::Relaxed);
    crate::arch::enable_interrupts();
    let exit = handler(frame);
    crate::arch::disable_interrupts();
    IN_SYSCALL.store(false, Ordering::Relaxed);
    exit
}

/// Sets the call's 32-bit result.
fn answer(frame: &mut TrapFrame, value: i32) -> SvcExit {
    frame.r[0] = value as u32;
    SvcExit::Return
}

/// The result of a call that answers a value or an error.
fn answer_result(frame: &mut TrapFrame, result: Result<i32, ErrorCode>) -> SvcExit {
    answer(frame, result.unwrap_or_else(ErrorCode::to_return))
}

fn sys_input_len(frame: &mut TrapFrame) -> SvcExit {
    let len = with_job(|job| i32::try_from(job.input.len()).unwrap_or(i32::MAX)).unwrap_or(0);
    answer(frame, len)
}

fn sys_input_read(frame: &mut TrapFrame) -> SvcExit {
    let [address, length, offset, _] = [frame.r[0], frame.r[1], frame.r[2], frame.r[3]];
    let result = user_bytes_mut(address, length).map(|target| {
        with_job(|job| {
            let Some(rest) = job.input.get(offset as usize..) else { return 0 };
            let count = rest.len().min(target.len());
            target[..count].copy_from_slice(&rest[..count]);
            i32::try_from(count).unwrap_or(i32::MAX)
        })
        .unwrap_or(0)
    });
    answer_result(frame, result)
}

fn sys_output_write(frame: &mut TrapFrame) -> SvcExit {
    let result = user_bytes(frame.r[0], frame.r[1]).and_then(|bytes| {
        with_job(|job| {
            if job.output.len() + bytes.len() > job.output_cap {
                job.output_overflow = true;
                return Err(ErrorCode::LimitExceeded);
            }
            job.output.extend_from_slice(bytes);
            Ok(0)
        })
        .unwrap_or(Ok(0))
    });
    answer_result(frame, result)
}

fn sys_log(frame: &mut TrapFrame) -> SvcExit {
    let result = LogLevel::try_from(frame.r[0]).map_err(|_| ErrorCode::InvalidArgument).and_then(|level| {
        let bytes = user_bytes(frame.r[1], frame.r[2])?;
        let line = jos_runtime::job::log_line(level, bytes);
        with_job(|job| push_log(job, line));
        Ok(0)
    });
    answer_result(frame, result)
}

/// Keeps `line`, or counts it dropped past the job's [`MAX_LOG_LINES`].
pub(super) fn push_log(job: &mut Job, line: LogLine) {
    if job.logs.len() < MAX_LOG_LINES {
        job.logs.push(line);
    } else {
        job.logs_dropped += 1;
    }
}

fn sys_time_us(frame: &mut TrapFrame) -> SvcExit {
    let now = TIMER.now_micros();
    frame.r[0] = now as u32;
    frame.r[1] = (now >> 32) as u32;
    SvcExit::Return
}

fn sys_random(frame: &mut TrapFrame) -> SvcExit {
    let result = user_bytes_mut(frame.r[0], frame.r[1]).and_then(|target| {
        if target.is_empty() {
            return Ok(0);
        }
        RNG.fill(target).map(|()| 0).map_err(|_| ErrorCode::Io)
    });
    answer_result(frame, result)
}

/// `yield`: the blob has nothing to do now (see `docs/kernel.md`, "Native yield"). It gives
/// the rest of this frame back: the job is suspended with the call answering 0, the offload
/// task returns to the executive, and the job is resumed in the next frame (after the network
/// task ran). The time suspended is not the job's CPU time.
fn sys_yield(frame: &mut TrapFrame) -> SvcExit {
    frame.r[0] = 0;
    crate::arch::disable_interrupts();
    OUTCOME.store(OUTCOME_YIELDED, Ordering::Relaxed);
    RUNNING.store(false, Ordering::Relaxed);
    SvcExit::Suspend
}

/// `exit(code)`: the job ends with `code` (also reached when its entry function returns: its
/// LR is the Exit stub).
fn sys_exit(frame: &mut TrapFrame) -> SvcExit {
    let code = frame.r[0] as i32;
    crate::arch::disable_interrupts();
    IN_SYSCALL.store(false, Ordering::Relaxed);
    OUTCOME.store(OUTCOME_EXIT, Ordering::Relaxed);
    RUNNING.store(false, Ordering::Relaxed);
    // SAFETY: called from the SVC hook in SVC mode; nothing here holds a lock or owns memory.
    unsafe { user::leave(code) }
}

/// Runs a capability call: `PermissionDenied` unless the blob's signer granted `capability`.
fn gated(
    frame: &mut TrapFrame,
    capability: Capability,
    call: impl FnOnce(&mut Job, [u32; 4]) -> Result<i32, ErrorCode>,
) -> SvcExit {
    let arguments = [frame.r[0], frame.r[1], frame.r[2], frame.r[3]];
    let result = with_job(|job| {
        if !job.capabilities.allows(capability) {
            return Err(ErrorCode::PermissionDenied);
        }
        call(job, arguments)
    })
    .unwrap_or(Err(ErrorCode::Io));
    answer_result(frame, result)
}

/// Reads an 8-byte endpoint the blob passed.
fn read_endpoint(address: u32) -> Result<Endpoint, ErrorCode> {
    let bytes = user_bytes(address, Endpoint::LEN as u32)?;
    let mut raw = [0u8; Endpoint::LEN];
    raw.copy_from_slice(bytes);
    Endpoint::from_bytes(raw).ok_or(ErrorCode::InvalidArgument)
}

fn sys_udp_bind(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Network, |job, [port, ..]| {
        let port = u16::try_from(port).map_err(|_| ErrorCode::InvalidArgument)?;
        job.devices.udp_bind(port).map(|handle| handle as i32)
    })
}

fn sys_udp_send(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Network, |job, [handle, endpoint, address, length]| {
        let to = read_endpoint(endpoint)?;
        let data = user_bytes(address, length)?;
        job.devices.udp_send(handle, to, data).map(|()| 0)
    })
}

fn sys_udp_recv(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Network, |job, [handle, address, length, endpoint]| {
        let from_slot = user_bytes_mut(endpoint, Endpoint::LEN as u32)?;
        let target = user_bytes_mut(address, length)?;
        let (received, from) = job.devices.udp_recv(handle, target)?;
        from_slot.copy_from_slice(&from.to_bytes());
        Ok(i32::try_from(received).unwrap_or(i32::MAX))
    })
}

fn sys_udp_close(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Network, |job, [handle, ..]| job.devices.udp_close(handle).map(|()| 0))
}

fn sys_screen_print(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Screen, |job, [address, length, ..]| {
        let bytes = user_bytes(address, length)?;
        let line = core::str::from_utf8(bytes).map_err(|_| ErrorCode::InvalidArgument)?;
        job.devices.screen_print(line).map(|()| 0)
    })
}

fn sys_gpio_write(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Gpio, |job, [pin, level, ..]| match level {
        0 | 1 => job.devices.gpio_write(pin, level == 1).map(|()| 0),
        _ => Err(ErrorCode::InvalidArgument),
    })
}

fn sys_gpio_read(frame: &mut TrapFrame) -> SvcExit {
    gated(frame, Capability::Gpio, |job, [pin, ..]| job.devices.gpio_read(pin).map(i32::from))
}

/// The loader's dispatch table: for every call the kernel serves, the address of its stub in
/// the user page (`svc #id; bx lr`); 0 for the rest (the loader refuses blobs importing them).
/// The capability calls are bound for every blob (binding stays one lookup per import) and
/// answer `PermissionDenied` at call time when the blob's signer did not grant the capability,
/// as in the wasm sandbox.
pub(super) fn dispatch_table() -> DispatchTable {
    let mut table = [0usize; SYSCALL_TABLE_LEN];
    for (id, slot) in table.iter_mut().enumerate() {
        if HANDLERS[id].is_some() {
            *slot = user::stub_address(id);
        }
    }
    table
}

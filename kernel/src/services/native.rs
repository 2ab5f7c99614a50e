//! Native ARMv6 blobs on the device, in user mode behind the MMU.
//!
//! [`start`] loads a blob (`jos_runtime::native::load_verified`) into a page-aligned region of
//! the heap whose import slots get the addresses of the system-call stubs in the user page
//! (`arch::user::stub_address`), maps that region for user mode (`arch::mmu::map_user`: code
//! read-only and executable, data read/write and never executable) and arms its deadline.
//! Each [`step`] enters or resumes it in user mode on the job stack (`arch::user`) until the
//! executive's next frame tick preempts it, it yields, or it ends; [`abort`] drops it. The job
//! reaches the kernel only by `svc`: [`system_call`] (the SVC hook) dispatches by the number
//! into `HANDLERS`, one array index, after checking the deadline and the frame tick, and every
//! pointer and length a call receives is checked against the job's own memory (region and job
//! stack, overflow included) before the kernel touches it: a bad one answers
//! `-JOS_EFAULT` (`ErrorCode::BadAddress`). Faults in user mode (and an unknown SVC number) end
//! the job with Trap and a `fault:` line ([`recover_from_fault`]); the deadline and preemption
//! come from the IRQ exit ([`irq_redirect`]), which user code cannot mask. The kernel is
//! mono-task, so one static job describes the current job.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use core::alloc::Layout;

use jos_abi::blob::Blob;
use jos_abi::config::PortRange;
use jos_abi::syscall::{Capability, Endpoint};
use jos_abi::syscall::{LogLevel, SyscallId, SYSCALL_TABLE_LEN};
use jos_abi::wire::Limits;
use jos_abi::ErrorCode;
use jos_kcore::page_table::{UserRegion, PAGE_SIZE};
use jos_runtime::native::{CacheMaintenance, DispatchTable};
use jos_runtime::{
    Capabilities, JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, StepOutcome, TrapCode,
};

use crate::services::jobio::JobDevices;

use crate::arch::exceptions::{fault_status_name, ExceptionKind, FaultRegisters, IrqExit, SvcExit, TrapFrame};
use crate::arch::{cache, mmu, user};
use crate::board::bcm2835::timer::Channel;
use crate::board::bcm2835::{IRQ, RNG, TIMER};

/// Deadline used when the request gives none (milliseconds).
pub const DEFAULT_DEADLINE_MS: u32 = 10_000;
/// Longest deadline the device grants (milliseconds).
pub const MAX_DEADLINE_MS: u32 = 60_000;
/// Output cap when the request gives none (bytes).
pub const DEFAULT_OUTPUT: u32 = 1 << 20;
/// Most log lines kept per job.
pub const MAX_LOG_LINES: usize = 64;
/// Longest log line kept (bytes).
pub const MAX_LOG_LINE: usize = 256;

/// How the blob left the CPU (set before `jos_native_recover` runs).
const OUTCOME_RETURNED: u32 = 0;
const OUTCOME_EXIT: u32 = 1;
const OUTCOME_DEADLINE: u32 = 2;
const OUTCOME_TRAP: u32 = 3;
/// Suspended at the frame tick (IRQ exit) or at a system call's entry after the tick: resume it
/// in a later frame.
const OUTCOME_PREEMPTED: u32 = 4;
/// Suspended by `yield`: it gives the rest of the frame back.
const OUTCOME_YIELDED: u32 = 5;

/// The current job's state.
struct Job {
    /// What the blob's signer granted (capability calls beyond it answer `PermissionDenied`).
    capabilities: Capabilities,
    /// Its sockets (closed when the job is dropped, however it ended).
    devices: JobDevices,
    input: Vec<u8>,
    output: Vec<u8>,
    output_cap: usize,
    /// A write went past `output_cap` (the job then ends `LimitExceeded`, as a wasm job does).
    output_overflow: bool,
    logs: Vec<LogLine>,
    logs_dropped: u32,
    fault: Option<String>,
    /// The blob's memory (code, data, its heap): held (the blob uses it through raw addresses,
    /// never through this field) and freed when the job is dropped, after it was unmapped.
    #[allow(dead_code)]
    memory: UserMemory,
    /// The blob's entry point (for the first step).
    entry: usize,
    /// Whether the blob was entered (later steps resume its frame).
    entered: bool,
    /// Granted deadline (ms) and memory (bytes), for the result.
    deadline_ms: u32,
    memory_len: usize,
    /// When the job started (timer microseconds, cycle counter).
    started_us: u64,
    started_ticks: u32,
    /// Steps taken (the result's `slices`).
    steps: u32,
}

/// A page-aligned heap block for a job's region (freed on drop).
struct UserMemory {
    start: core::ptr::NonNull<u8>,
    layout: Layout,
}

impl UserMemory {
    /// `len` bytes (rounded up to whole pages) aligned to `align` (at least a page), zeroed;
    /// `None` if the heap cannot give them.
    fn allocate(len: usize, align: usize) -> Option<Self> {
        let len = len.max(1).checked_next_multiple_of(PAGE_SIZE)?;
        let layout = Layout::from_size_align(len, align.max(PAGE_SIZE)).ok()?;
        // SAFETY: the layout has a non-zero size.
        let start = core::ptr::NonNull::new(unsafe { alloc::alloc::alloc_zeroed(layout) })?;
        Some(Self { start, layout })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the block is `layout.size()` bytes, owned by this value, zeroed at allocation.
        unsafe { core::slice::from_raw_parts_mut(self.start.as_ptr(), self.layout.size()) }
    }
}

impl Drop for UserMemory {
    fn drop(&mut self) {
        // SAFETY: allocated by `allocate` with this layout, freed once.
        unsafe { alloc::alloc::dealloc(self.start.as_ptr(), self.layout) }
    }
}

struct JobCell(UnsafeCell<Option<Job>>);

// SAFETY: the kernel runs on one core; the job is touched by the system calls (called by the
// blob, in SVC mode), by the fault path, which runs while the blob is stopped, and by
// `start`/`step`/`abort` while the blob is not on the CPU.
unsafe impl Sync for JobCell {}

static JOB: JobCell = JobCell(UnsafeCell::new(None));
/// Whether a job exists (started, not yet ended): its deadline interrupt is armed.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether the blob is on the CPU now (inside a step).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The executive's tick count when the current step began: a later tick preempts the blob.
static STEP_TICKS: AtomicU32 = AtomicU32::new(0);
/// The deadline passed (set by the compare-3 interrupt).
static EXPIRED: AtomicBool = AtomicBool::new(false);
/// How the blob ended.
static OUTCOME: AtomicU32 = AtomicU32::new(OUTCOME_RETURNED);
/// The blob's memory: [start, end), writable from REGION_DATA (a page boundary).
static REGION_START: AtomicU32 = AtomicU32::new(0);
static REGION_DATA: AtomicU32 = AtomicU32::new(0);
static REGION_END: AtomicU32 = AtomicU32::new(0);
/// A system call is being served (a fault now is the kernel's, on the job's behalf).
static IN_SYSCALL: AtomicBool = AtomicBool::new(false);

fn with_job<R>(f: impl FnOnce(&mut Job) -> R) -> Option<R> {
    // SAFETY: see `JobCell`: only one context touches the job at a time.
    unsafe { (*JOB.0.get()).as_mut().map(f) }
}

/// A buffer the job passed: `Some` only if `[address, address + length)` lies in the job's own
/// memory (its region, or for `write` its writable part, or its stack), with no overflow.
/// An empty buffer is always fine (nothing is touched).
fn user_buffer(address: usize, length: usize, write: bool) -> Option<(usize, usize)> {
    if length == 0 {
        return Some((PAGE_SIZE, 0));
    }
    let end = address.checked_add(length)?;
    let inside = |(start, stop): (usize, usize)| address >= start && end <= stop;
    let region_start =
        if write { REGION_DATA.load(Ordering::Relaxed) } else { REGION_START.load(Ordering::Relaxed) } as usize;
    let region = (region_start, REGION_END.load(Ordering::Relaxed) as usize);
    (region.1 > region.0 && inside(region) || inside(crate::memory::layout::job_stack())).then_some((address, length))
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
fn tick_came() -> bool {
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

/// The system calls by number (the SyscallId): one array index per call, no lookup by name.
static HANDLERS: [Option<Handler>; SYSCALL_TABLE_LEN] = {
    let mut table: [Option<Handler>; SYSCALL_TABLE_LEN] = [None; SYSCALL_TABLE_LEN];
    table[SyscallId::InputLen as usize] = Some(sys_input_len);
    table[SyscallId::InputRead as usize] = Some(sys_input_read);
    table[SyscallId::OutputWrite as usize] = Some(sys_output_write);
    table[SyscallId::Log as usize] = Some(sys_log);
    table[SyscallId::TimeMicros as usize] = Some(sys_time_us);
    table[SyscallId::Random as usize] = Some(sys_random);
    table[SyscallId::Yield as usize] = Some(sys_yield);
    table[SyscallId::Exit as usize] = Some(sys_exit);
    table[SyscallId::UdpBind as usize] = Some(sys_udp_bind);
    table[SyscallId::UdpSend as usize] = Some(sys_udp_send);
    table[SyscallId::UdpRecv as usize] = Some(sys_udp_recv);
    table[SyscallId::UdpClose as usize] = Some(sys_udp_close);
    table[SyscallId::ScreenPrint as usize] = Some(sys_screen_print);
    table[SyscallId::GpioWrite as usize] = Some(sys_gpio_write);
    table[SyscallId::GpioRead as usize] = Some(sys_gpio_read);
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
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LOG_LINE)]).into_owned();
        with_job(|job| push_log(job, level, text));
        Ok(0)
    });
    answer_result(frame, result)
}

fn push_log(job: &mut Job, level: LogLevel, text: String) {
    if job.logs.len() < MAX_LOG_LINES {
        job.logs.push(LogLine { level, text });
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
fn dispatch_table() -> DispatchTable {
    let mut table = [0usize; SYSCALL_TABLE_LEN];
    for (id, slot) in table.iter_mut().enumerate() {
        if HANDLERS[id].is_some() {
            *slot = user::stub_address(id);
        }
    }
    table
}

/// Cache maintenance for freshly written code: clean the D-cache range to memory, then
/// invalidate the I-cache (ARM1176 TRM 3.2.22).
struct KernelCache;

impl CacheMaintenance for KernelCache {
    fn sync_code(&mut self, address: usize, len: usize) {
        cache::clean_dcache_range(address, len);
        cache::data_sync_barrier();
        cache::invalidate_icache_all();
        cache::instruction_barrier();
    }
}

/// Compare-3 interrupt while a blob runs: marks the deadline passed (the redirect happens in
/// [`irq_redirect`] on the way out of the IRQ).
fn on_deadline() {
    TIMER.acknowledge(Channel::Three);
    if ACTIVE.load(Ordering::Relaxed) {
        EXPIRED.store(true, Ordering::Relaxed);
    }
}

fn in_blob(pc: u32) -> bool {
    pc >= REGION_START.load(Ordering::Relaxed) && pc < REGION_END.load(Ordering::Relaxed)
}

const MODE_MASK: u32 = 0x1f;
const MODE_USER: u32 = 0x10;
const MODE_SVC: u32 = 0x13;

/// Called at the end of every IRQ with the interrupted PC and CPSR. Only when the interrupted
/// code is the running job (user mode: never a system call holding kernel state):
/// [`IrqExit::End`] if its deadline passed, [`IrqExit::Preempt`] if the executive's frame tick
/// came since the step began. User code cannot mask IRQs, so both always come. If the deadline
/// passed while the job was in a system call, the call returns first and the timer retries in
/// 1 ms; a tick that finds it in a system call suspends it at its next call's entry, or at the
/// next IRQ that finds it in user mode.
pub fn irq_redirect(_pc: u32, spsr: u32) -> IrqExit {
    if !RUNNING.load(Ordering::Relaxed) {
        return IrqExit::Return;
    }
    let user_mode = spsr & MODE_MASK == MODE_USER;
    if EXPIRED.load(Ordering::Relaxed) {
        if user_mode {
            OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
            RUNNING.store(false, Ordering::Relaxed);
            return IrqExit::End;
        }
        TIMER.arm_in(Channel::Three, 1000);
        return IrqExit::Return;
    }
    if user_mode && tick_came() {
        OUTCOME.store(OUTCOME_PREEMPTED, Ordering::Relaxed);
        RUNNING.store(false, Ordering::Relaxed);
        return IrqExit::Preempt;
    }
    IrqExit::Return
}

/// The fault hook (registered with `arch::exceptions::set_hooks`): if a job is running and the
/// fault came from it in user mode (or from the kernel while serving its system call, which the
/// pointer checks should make impossible), records a `fault:` line naming the kind, its status
/// and the addresses, rewrites `frame` so the exception return enters the recovery routine in
/// SVC mode with IRQs masked, and returns true.
pub fn recover_from_fault(kind: ExceptionKind, frame: &mut TrapFrame, registers: &FaultRegisters) -> bool {
    let mode = frame.spsr & MODE_MASK;
    let in_call = mode == MODE_SVC && IN_SYSCALL.load(Ordering::Relaxed);
    if !RUNNING.load(Ordering::Relaxed) || !(mode == MODE_USER || in_call) {
        return false;
    }
    RUNNING.store(false, Ordering::Relaxed);
    IN_SYSCALL.store(false, Ordering::Relaxed);
    let base = REGION_START.load(Ordering::Relaxed);
    let place = if in_blob(frame.pc) {
        format!("blob+{:#x}", frame.pc - base)
    } else if in_call {
        String::from("in the kernel, serving a system call")
    } else {
        String::from("outside the blob")
    };
    let status = match kind {
        ExceptionKind::DataAbort => format!(" ({})", fault_status_name(registers.dfsr)),
        ExceptionKind::PrefetchAbort => format!(" ({})", fault_status_name(registers.ifsr)),
        _ => String::new(),
    };
    let report = format!(
        "fault: {}{status} at pc={:#010x} ({place}) lr={:#010x} far={:#010x} dfsr={:#010x} ifsr={:#010x} ifar={:#010x}",
        kind.name(),
        frame.pc,
        frame.lr,
        registers.far,
        registers.dfsr,
        registers.ifsr,
        registers.ifar
    );
    with_job(|job| job.fault = Some(report));
    OUTCOME.store(OUTCOME_TRAP, Ordering::Relaxed);
    frame.pc = user::recovery_address();
    frame.r[0] = 0;
    frame.spsr = MODE_SVC | 0xc0;
    true
}

fn rejected(message: String) -> JobResult {
    JobResult::rejected(LoadError::Malformed(message))
}

/// Loads a blob the offload server verified when it was pushed (its signature is not checked
/// again: `jos_runtime::native::load_verified`; every structural check is) and makes it the
/// current job (the first [`step`] enters it). Arms its
/// deadline (timer compare 3), which runs while the job is suspended too. `capabilities` are
/// its signer's; `job_ports` the policy's UDP port range. A job that cannot start gets its
/// result (`Rejected`) at once.
pub fn start(
    blob: &[u8],
    input: &[u8],
    limits: &Limits,
    capabilities: Capabilities,
    job_ports: PortRange,
) -> Result<(), JobResult> {
    if ACTIVE.load(Ordering::Relaxed) {
        return Err(rejected(String::from("a native job is already running")));
    }
    let (align, memory_len, text_len) = match Blob::new_checked(blob) {
        Ok(view) => (view.align() as usize, view.memory_len() as usize, view.text_len() as usize),
        Err(error) => return Err(rejected(format!("native blob: {error:?}"))),
    };
    if limits.memory != 0 && memory_len > limits.memory as usize {
        return Err(JobResult::rejected(LoadError::Limit(jos_runtime::LimitKind::MemoryPages)));
    }
    // The region comes from the heap only if the device keeps its reserve (a failed allocation
    // here would end the kernel, not the job). It is page-aligned and whole pages, so the pages
    // mapped for user mode hold nothing of the kernel's.
    let region_len = memory_len.max(1).next_multiple_of(PAGE_SIZE);
    let memory =
        if region_len.saturating_add(align) > jos_runtime::host::HeapMeter::available(&crate::memory::heap::JOB_HEAP) {
            None
        } else {
            UserMemory::allocate(region_len, align)
        };
    let Some(mut memory) = memory else {
        return Err(JobResult::rejected(LoadError::Limit(jos_runtime::LimitKind::DeviceMemory)));
    };
    let dispatch = dispatch_table();
    let loaded = match jos_runtime::native::load_verified(blob, memory.as_mut_slice(), &dispatch, &mut KernelCache) {
        Ok(loaded) => loaded,
        Err(error) => return Err(rejected(format!("native blob: {error:?}"))),
    };
    let base = loaded.base as usize;
    let code_end = base + text_len;
    let region = UserRegion {
        start: base,
        code_end,
        data_start: code_end,
        end: memory.start.as_ptr() as usize + memory.layout.size(),
    };
    if let Err(error) = mmu::map_user(&region) {
        return Err(rejected(format!("native blob: cannot map its memory: {error:?}")));
    }
    // The job stack may hold the previous job's values: it starts zeroed.
    let (stack_bottom, stack_top) = crate::memory::layout::job_stack();
    // SAFETY: the job stack is kernel-owned memory used only by native jobs, and none runs.
    unsafe { core::ptr::write_bytes(stack_bottom as *mut u8, 0, stack_top - stack_bottom) };
    let deadline_ms = match limits.deadline_ms {
        0 => DEFAULT_DEADLINE_MS,
        ms => ms.min(MAX_DEADLINE_MS),
    };
    let output_cap = match limits.output {
        0 => DEFAULT_OUTPUT,
        cap => cap,
    } as usize;
    REGION_START.store(region.start as u32, Ordering::Relaxed);
    REGION_DATA.store((region.data_start & !(PAGE_SIZE - 1)) as u32, Ordering::Relaxed);
    REGION_END.store(region.end as u32, Ordering::Relaxed);
    let started_us = TIMER.now_micros();
    // SAFETY: no blob is active (checked above), so nothing else touches the job.
    unsafe {
        *JOB.0.get() = Some(Job {
            capabilities,
            devices: JobDevices::new(job_ports),
            input: input.to_vec(),
            output: Vec::new(),
            output_cap,
            output_overflow: false,
            logs: Vec::new(),
            logs_dropped: 0,
            fault: None,
            memory,
            entry: loaded.entry as usize,
            entered: false,
            deadline_ms,
            memory_len,
            started_us,
            started_ticks: crate::arch::cycles::read(),
            steps: 0,
        })
    };
    EXPIRED.store(false, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Relaxed);
    let _ = IRQ.register(Channel::Three.irq(), on_deadline);
    TIMER.arm_in(Channel::Three, deadline_ms.saturating_mul(1000));
    Ok(())
}

/// Whether a native job is active (started, not ended or aborted).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Runs the current job until the executive's next frame tick preempts it ([`StepOutcome::Running`]),
/// it yields ([`StepOutcome::Yielded`]) or it ends ([`StepOutcome::Finished`], the job is then
/// gone). A deadline that passed while the job was suspended ends it without resuming it.
pub fn step() -> StepOutcome {
    if !ACTIVE.load(Ordering::Relaxed) {
        return StepOutcome::Finished(rejected(String::from("no native job is running")));
    }
    if EXPIRED.load(Ordering::Relaxed) {
        OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
        return StepOutcome::Finished(finish(0));
    }
    let Some((entry, entered)) = with_job(|job| {
        job.steps += 1;
        let entered = job.entered;
        job.entered = true;
        (job.entry, entered)
    }) else {
        return StepOutcome::Finished(rejected(String::from("native job state lost")));
    };
    let mut context: user::Context = [0; user::CONTEXT_WORDS];
    let masked = crate::arch::disable_interrupts();
    STEP_TICKS.store(crate::services::executive::ticks(), Ordering::Relaxed);
    OUTCOME.store(OUTCOME_RETURNED, Ordering::Relaxed);
    RUNNING.store(true, Ordering::Relaxed);
    crate::arch::enable_interrupts();
    let value = if entered {
        // SAFETY: the job's frame was saved by the IRQ or SVC exit when it left the CPU
        // (OUTCOME_PREEMPTED / OUTCOME_YIELDED, the only outcomes that keep the job); its region
        // is still mapped for user mode. Every way out restores the context saved here.
        unsafe { user::resume(&mut context) }
    } else {
        // SAFETY: the blob is loaded, relocated, bound to the stubs, synced to the I-cache and
        // mapped for user mode with the job stack; it returns through the Exit stub. Every way
        // out restores the context saved here.
        unsafe {
            user::enter(
                entry,
                crate::memory::layout::job_stack().1,
                user::stub_address(SyscallId::Exit as usize),
                &mut context,
            )
        }
    };
    crate::arch::disable_interrupts();
    RUNNING.store(false, Ordering::Relaxed);
    crate::arch::restore_interrupts(masked);
    match OUTCOME.load(Ordering::Relaxed) {
        OUTCOME_PREEMPTED => StepOutcome::Running,
        OUTCOME_YIELDED => StepOutcome::Yielded,
        _ => StepOutcome::Finished(finish(value)),
    }
}

/// Ends the current job without running it further (its client left): frees its memory and
/// sockets and disarms its deadline. Nothing happens when no job is active.
pub fn abort() {
    if ACTIVE.load(Ordering::Relaxed) {
        let _ = end_job();
    }
}

/// Disarms the deadline and takes the job's state out (the caller drops it: region and sockets).
fn end_job() -> Option<Job> {
    let masked = crate::arch::disable_interrupts();
    ACTIVE.store(false, Ordering::Relaxed);
    EXPIRED.store(false, Ordering::Relaxed);
    let _ = IRQ.unregister(Channel::Three.irq());
    TIMER.acknowledge(Channel::Three);
    crate::arch::restore_interrupts(masked);
    mmu::unmap_user();
    REGION_START.store(0, Ordering::Relaxed);
    REGION_DATA.store(0, Ordering::Relaxed);
    REGION_END.store(0, Ordering::Relaxed);
    // SAFETY: the blob is not on the CPU (between steps), so nothing else touches the job.
    unsafe { (*JOB.0.get()).take() }
}

/// The ended job's result (`value`: what the blob returned or passed to `exit`).
fn finish(value: i32) -> JobResult {
    let outcome = OUTCOME.load(Ordering::Relaxed);
    let Some(mut job) = end_job() else { return rejected(String::from("native job state lost")) };
    let elapsed = TIMER.now_micros().saturating_sub(job.started_us);
    // 0 without a counter (QEMU): never an estimate.
    let cycles = crate::arch::cycles::cycles_between(job.started_ticks, crate::arch::cycles::read());
    let deadline_ms = job.deadline_ms;
    let (status, error, exit_value) = match outcome {
        OUTCOME_DEADLINE => {
            (JobStatus::Deadline, Some(JobError::Deadline { limit_us: u64::from(deadline_ms) * 1000 }), None)
        }
        OUTCOME_TRAP => {
            let report = job.fault.take().unwrap_or_default();
            push_log(&mut job, LogLevel::Error, report.clone());
            crate::warn!("offload: native job trapped: {report}");
            (JobStatus::Trap, Some(JobError::Trap { code: TrapCode::Other, function: String::from("_start") }), None)
        }
        _ if job.output_overflow => (JobStatus::LimitExceeded, Some(JobError::Limit(LimitKind::Output)), Some(value)),
        _ => (JobStatus::Ok, None, Some(value)),
    };
    JobResult {
        status,
        error,
        exit_value,
        values: Vec::new(),
        output: job.output,
        logs: job.logs,
        stats: Stats {
            time_us: elapsed,
            peak_memory_bytes: job.memory_len as u64,
            slices: u64::from(job.steps),
            logs_dropped: job.logs_dropped,
            cycles,
            ..Stats::default()
        },
    }
}

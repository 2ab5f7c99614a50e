//! Native ARMv6 blobs on the device: the loader (`jos_runtime::native::load`) binds the blob's
//! imports to the `extern "C"` system calls below, then the blob runs in SVC mode on the kernel
//! stack with IRQs enabled, entered through `jos_native_enter`, which saves a recovery context
//! (r4-r11, SP, LR, d8-d15, FPSCR, CPSR). Every way out goes through `jos_native_recover`, which
//! restores that context: a normal return, `exit`, the deadline (timer compare 3 interrupt that
//! rewrites the IRQ return address when it interrupted the blob's own code) and faults (the
//! abort / undefined-instruction entries rewrite their exception return). The kernel is
//! mono-task, so one static context describes the current job.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use jos_abi::blob::Blob;
use jos_abi::signature::TrustedSigner;
use jos_abi::syscall::{LogLevel, SyscallId, SYSCALL_TABLE_LEN};
use jos_abi::wire::Limits;
use jos_abi::ErrorCode;
use jos_runtime::native::{CacheMaintenance, DispatchTable};
use jos_abi::config::PortRange;
use jos_abi::syscall::{Capability, Endpoint};
use jos_runtime::{Capabilities, JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, TrapCode};

use crate::services::jobio::JobDevices;

use crate::arch::cache;
use crate::arch::exceptions::{ExceptionKind, FaultRegisters, TrapFrame};
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
/// Largest single buffer a system call accepts (bytes): larger lengths are refused cheaply.
const MAX_BUFFER: usize = 64 << 20;
/// Lowest address a buffer may start at (the first page holds nothing a job may touch).
const MIN_ADDRESS: usize = 0x1000;
/// End of RAM that a buffer may reach (the peripherals start at 0x2000_0000).
const RAM_END: usize = 0x2000_0000;

/// How the blob ended (set before `jos_native_recover` runs).
const OUTCOME_RETURNED: u32 = 0;
const OUTCOME_EXIT: u32 = 1;
const OUTCOME_DEADLINE: u32 = 2;
const OUTCOME_TRAP: u32 = 3;

/// Words of the recovery context (see `jos_native_enter`).
const CONTEXT_WORDS: usize = 28;

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .section .text.native, "ax"
    .arm

@ jos_native_enter(entry, context) -> i32: saves r4-r11, SP, LR, d8-d15, FPSCR and CPSR in
@ `context`, publishes it, calls `entry()` and leaves through jos_native_recover.
    .global jos_native_enter
jos_native_enter:
    mov     r12, r1
    stmia   r12!, {{r4-r11}}
    str     sp, [r12], #4
    str     lr, [r12], #4
    vstmia  r12!, {{d8-d15}}
    vmrs    r2, fpscr
    mrs     r3, cpsr
    stmia   r12, {{r2, r3}}
    ldr     r2, =jos_native_context
    str     r1, [r2]
    blx     r0
    @ fall through with the blob's r0

@ jos_native_recover(value): in SVC mode; restores the saved context (stack, callee-saved
@ registers, VFP state, CPSR with its interrupt mask) and returns `value` from jos_native_enter.
    .global jos_native_recover
jos_native_recover:
    ldr     r2, =jos_native_context
    ldr     r12, [r2]
    mov     r3, #0
    str     r3, [r2]
    ldmia   r12!, {{r4-r11}}
    ldr     sp, [r12], #4
    ldr     lr, [r12], #4
    vldmia  r12!, {{d8-d15}}
    ldmia   r12, {{r2, r3}}
    vmsr    fpscr, r2
    msr     cpsr_c, r3
    bx      lr
    .ltorg
"#
);

extern "C" {
    fn jos_native_enter(entry: usize, context: *mut u32) -> i32;
    fn jos_native_recover(value: i32) -> !;
}

/// The published recovery context (null when no blob runs); read by the assembly.
#[no_mangle]
#[allow(non_upper_case_globals)]
static mut jos_native_context: *mut u32 = core::ptr::null_mut();

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
    /// Microseconds spent idle in `yield` waiting for the next frame.
    idle_us: u64,
}

struct JobCell(UnsafeCell<Option<Job>>);

// SAFETY: the kernel runs on one core; the job is touched by the system calls (called by the
// blob, in SVC mode) and by the fault path, which runs while the blob is stopped.
unsafe impl Sync for JobCell {}

static JOB: JobCell = JobCell(UnsafeCell::new(None));
/// Whether a blob is running now.
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The deadline passed (set by the compare-3 interrupt).
static EXPIRED: AtomicBool = AtomicBool::new(false);
/// How the blob ended.
static OUTCOME: AtomicU32 = AtomicU32::new(OUTCOME_RETURNED);
/// The blob's memory: [start, end).
static REGION_START: AtomicU32 = AtomicU32::new(0);
static REGION_END: AtomicU32 = AtomicU32::new(0);

fn with_job<R>(f: impl FnOnce(&mut Job) -> R) -> Option<R> {
    // SAFETY: see `JobCell`: only one context touches the job at a time.
    unsafe { (*JOB.0.get()).as_mut().map(f) }
}

/// A buffer passed by the blob, if its range is plausible RAM (cheap checks only: native code
/// is trusted, but a bad length must not take the kernel down).
fn buffer(address: usize, length: usize) -> Option<(usize, usize)> {
    if length == 0 {
        return Some((MIN_ADDRESS, 0));
    }
    let end = address.checked_add(length)?;
    (length <= MAX_BUFFER && address >= MIN_ADDRESS && end <= RAM_END).then_some((address, length))
}

/// Ends the job at a system call's entry if its deadline passed.
fn check_deadline() {
    if EXPIRED.load(Ordering::Relaxed) {
        OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
        // SAFETY: called from a system call the blob made, in SVC mode, with no lock held: the
        // recovery context is live while RUNNING.
        unsafe { jos_native_recover(0) }
    }
}

extern "C" fn sys_input_len() -> i32 {
    check_deadline();
    with_job(|job| i32::try_from(job.input.len()).unwrap_or(i32::MAX)).unwrap_or(0)
}

extern "C" fn sys_input_read(address: usize, length: usize, offset: usize) -> i32 {
    check_deadline();
    let Some((address, length)) = buffer(address, length) else { return ErrorCode::BadAddress.to_return() };
    with_job(|job| {
        let Some(rest) = job.input.get(offset..) else { return 0 };
        let count = rest.len().min(length);
        // SAFETY: `buffer` checked the range lies in RAM; the blob owns what it points at.
        let target = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, count) };
        target.copy_from_slice(&rest[..count]);
        i32::try_from(count).unwrap_or(i32::MAX)
    })
    .unwrap_or(0)
}

extern "C" fn sys_output_write(address: usize, length: usize) -> i32 {
    check_deadline();
    let Some((address, length)) = buffer(address, length) else { return ErrorCode::BadAddress.to_return() };
    with_job(|job| {
        if job.output.len() + length > job.output_cap {
            job.output_overflow = true;
            return ErrorCode::LimitExceeded.to_return();
        }
        // SAFETY: `buffer` checked the range lies in RAM.
        let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, length) };
        job.output.extend_from_slice(bytes);
        0
    })
    .unwrap_or(0)
}

extern "C" fn sys_log(level: u32, address: usize, length: usize) -> i32 {
    check_deadline();
    let Ok(level) = LogLevel::try_from(level) else { return ErrorCode::InvalidArgument.to_return() };
    let Some((address, length)) = buffer(address, length) else { return ErrorCode::BadAddress.to_return() };
    // SAFETY: `buffer` checked the range lies in RAM.
    let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, length.min(MAX_LOG_LINE)) };
    let text = String::from_utf8_lossy(bytes).into_owned();
    with_job(|job| push_log(job, level, text));
    0
}

fn push_log(job: &mut Job, level: LogLevel, text: String) {
    if job.logs.len() < MAX_LOG_LINES {
        job.logs.push(LogLine { level, text });
    } else {
        job.logs_dropped += 1;
    }
}

extern "C" fn sys_time_us() -> u64 {
    check_deadline();
    TIMER.now_micros()
}

extern "C" fn sys_random(address: usize, length: usize) -> i32 {
    check_deadline();
    let Some((address, length)) = buffer(address, length) else { return ErrorCode::BadAddress.to_return() };
    if length == 0 {
        return 0;
    }
    // SAFETY: `buffer` checked the range lies in RAM.
    let target = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, length) };
    match RNG.fill(target) {
        Ok(()) => 0,
        Err(_) => ErrorCode::Io.to_return(),
    }
}

/// `yield`: the blob has nothing to do now (see `docs/kernel.md`, "Native yield"). The core
/// idles (WFI) until the executive's next frame tick (or the deadline), then one network manager
/// poll moves frames and serves the device's own sockets and the job sockets; the offload
/// service's sessions are deferred until the blob ends (its slot is busy while a blob runs). The
/// wait counts as the job's `idle_us`, not its CPU time.
extern "C" fn sys_yield() -> i32 {
    check_deadline();
    let began = TIMER.now_micros();
    crate::services::executive::wait_for_tick(|| EXPIRED.load(Ordering::Relaxed));
    let waited = TIMER.now_micros().saturating_sub(began);
    with_job(|job| job.idle_us = job.idle_us.saturating_add(waited));
    check_deadline();
    crate::services::net::poll();
    0
}

/// Runs a capability call: `PermissionDenied` unless the blob's signer granted `capability`.
fn gated(capability: Capability, call: impl FnOnce(&mut Job) -> Result<i32, ErrorCode>) -> i32 {
    check_deadline();
    with_job(|job| {
        if !job.capabilities.allows(capability) {
            return ErrorCode::PermissionDenied.to_return();
        }
        call(job).unwrap_or_else(ErrorCode::to_return)
    })
    .unwrap_or(ErrorCode::Io.to_return())
}

/// Reads an 8-byte endpoint the blob passed.
fn read_endpoint(address: usize) -> Result<Endpoint, ErrorCode> {
    let (address, _) = buffer(address, Endpoint::LEN).ok_or(ErrorCode::BadAddress)?;
    let mut raw = [0u8; Endpoint::LEN];
    // SAFETY: `buffer` checked the 8 bytes lie in RAM.
    raw.copy_from_slice(unsafe { core::slice::from_raw_parts(address as *const u8, Endpoint::LEN) });
    Endpoint::from_bytes(raw).ok_or(ErrorCode::InvalidArgument)
}

extern "C" fn sys_udp_bind(port: u32) -> i32 {
    gated(Capability::Network, |job| {
        let port = u16::try_from(port).map_err(|_| ErrorCode::InvalidArgument)?;
        job.devices.udp_bind(port).map(|handle| handle as i32)
    })
}

extern "C" fn sys_udp_send(handle: u32, endpoint: usize, address: usize, length: usize) -> i32 {
    gated(Capability::Network, |job| {
        let to = read_endpoint(endpoint)?;
        let (address, length) = buffer(address, length).ok_or(ErrorCode::BadAddress)?;
        // SAFETY: `buffer` checked the range lies in RAM.
        let data = unsafe { core::slice::from_raw_parts(address as *const u8, length) };
        job.devices.udp_send(handle, to, data).map(|()| 0)
    })
}

extern "C" fn sys_udp_recv(handle: u32, address: usize, length: usize, endpoint: usize) -> i32 {
    gated(Capability::Network, |job| {
        let (endpoint, _) = buffer(endpoint, Endpoint::LEN).ok_or(ErrorCode::BadAddress)?;
        let (address, length) = buffer(address, length).ok_or(ErrorCode::BadAddress)?;
        // SAFETY: `buffer` checked the range lies in RAM; the blob owns it.
        let target = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, length) };
        let (received, from) = job.devices.udp_recv(handle, target)?;
        // SAFETY: `buffer` checked the 8 endpoint bytes lie in RAM.
        unsafe { core::slice::from_raw_parts_mut(endpoint as *mut u8, Endpoint::LEN) }.copy_from_slice(&from.to_bytes());
        Ok(i32::try_from(received).unwrap_or(i32::MAX))
    })
}

extern "C" fn sys_udp_close(handle: u32) -> i32 {
    gated(Capability::Network, |job| job.devices.udp_close(handle).map(|()| 0))
}

extern "C" fn sys_screen_print(address: usize, length: usize) -> i32 {
    gated(Capability::Screen, |job| {
        let (address, length) = buffer(address, length).ok_or(ErrorCode::BadAddress)?;
        // SAFETY: `buffer` checked the range lies in RAM.
        let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, length) };
        let line = core::str::from_utf8(bytes).map_err(|_| ErrorCode::InvalidArgument)?;
        job.devices.screen_print(line).map(|()| 0)
    })
}

extern "C" fn sys_gpio_write(pin: u32, level: u32) -> i32 {
    gated(Capability::Gpio, |job| match level {
        0 | 1 => job.devices.gpio_write(pin, level == 1).map(|()| 0),
        _ => Err(ErrorCode::InvalidArgument),
    })
}

extern "C" fn sys_gpio_read(pin: u32) -> i32 {
    gated(Capability::Gpio, |job| job.devices.gpio_read(pin).map(i32::from))
}

extern "C" fn sys_exit(code: i32) -> ! {
    OUTCOME.store(OUTCOME_EXIT, Ordering::Relaxed);
    // SAFETY: called by the running blob in SVC mode; nothing here holds a lock or owns memory.
    unsafe { jos_native_recover(code) }
}

/// The dispatch table: every call of ABI 1.0. The capability calls are bound for every blob
/// (binding stays one lookup per import) and answer `PermissionDenied` at call time when the
/// blob's signer did not grant the capability, as in the wasm sandbox.
fn dispatch_table() -> DispatchTable {
    let mut table = [0usize; SYSCALL_TABLE_LEN];
    table[SyscallId::InputLen as usize] = sys_input_len as *const () as usize;
    table[SyscallId::InputRead as usize] = sys_input_read as *const () as usize;
    table[SyscallId::OutputWrite as usize] = sys_output_write as *const () as usize;
    table[SyscallId::Log as usize] = sys_log as *const () as usize;
    table[SyscallId::TimeMicros as usize] = sys_time_us as *const () as usize;
    table[SyscallId::Random as usize] = sys_random as *const () as usize;
    table[SyscallId::Yield as usize] = sys_yield as *const () as usize;
    table[SyscallId::Exit as usize] = sys_exit as *const () as usize;
    table[SyscallId::UdpBind as usize] = sys_udp_bind as *const () as usize;
    table[SyscallId::UdpSend as usize] = sys_udp_send as *const () as usize;
    table[SyscallId::UdpRecv as usize] = sys_udp_recv as *const () as usize;
    table[SyscallId::UdpClose as usize] = sys_udp_close as *const () as usize;
    table[SyscallId::ScreenPrint as usize] = sys_screen_print as *const () as usize;
    table[SyscallId::GpioWrite as usize] = sys_gpio_write as *const () as usize;
    table[SyscallId::GpioRead as usize] = sys_gpio_read as *const () as usize;
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
    if RUNNING.load(Ordering::Relaxed) {
        EXPIRED.store(true, Ordering::Relaxed);
    }
}

fn in_blob(pc: u32) -> bool {
    pc >= REGION_START.load(Ordering::Relaxed) && pc < REGION_END.load(Ordering::Relaxed)
}

const MODE_MASK: u32 = 0x1f;
const MODE_SVC: u32 = 0x13;

/// Called at the end of every IRQ with the interrupted PC and CPSR: true when the interrupted
/// code is the running blob's own code (SVC mode, PC in its region) and its deadline passed;
/// the IRQ exit then returns to `jos_native_recover`. If the deadline passed while the blob was
/// in a system call, the call ends the job at its next entry and the timer retries in 1 ms.
pub fn irq_redirect(pc: u32, spsr: u32) -> bool {
    if !RUNNING.load(Ordering::Relaxed) || !EXPIRED.load(Ordering::Relaxed) {
        return false;
    }
    if spsr & MODE_MASK == MODE_SVC && spsr & (1 << 5) == 0 && in_blob(pc) {
        OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
        RUNNING.store(false, Ordering::Relaxed);
        return true;
    }
    TIMER.arm_in(Channel::Three, 1000);
    false
}

/// The address the IRQ and fault exits return to when they end a blob.
pub fn recovery_address() -> u32 {
    jos_native_recover as *const () as usize as u32
}

/// Called by the fault entry: if a blob is running and the fault came from SVC mode (the blob or
/// a system call it made), records a report line in the job's logs, rewrites `frame` so the
/// exception return enters `jos_native_recover` in SVC mode with IRQs masked, and returns true.
pub fn recover_from_fault(kind: ExceptionKind, frame: &mut TrapFrame, registers: &FaultRegisters) -> bool {
    if !RUNNING.load(Ordering::Relaxed) || frame.spsr & MODE_MASK != MODE_SVC {
        return false;
    }
    RUNNING.store(false, Ordering::Relaxed);
    let base = REGION_START.load(Ordering::Relaxed);
    let place = if in_blob(frame.pc) { format!("blob+{:#x}", frame.pc - base) } else { String::from("outside the blob") };
    let report = format!(
        "fault: {} at pc={:#010x} ({place}) lr={:#010x} far={:#010x} dfsr={:#010x} ifsr={:#010x}",
        kind.name(),
        frame.pc,
        frame.lr,
        registers.far,
        registers.dfsr,
        registers.ifsr
    );
    with_job(|job| job.fault = Some(report));
    OUTCOME.store(OUTCOME_TRAP, Ordering::Relaxed);
    frame.pc = recovery_address();
    frame.r[0] = 0;
    frame.spsr = MODE_SVC | 0xc0;
    true
}

fn rejected(message: String) -> JobResult {
    JobResult::rejected(LoadError::Malformed(message))
}

/// Loads and runs one verified blob to its end (see the module doc). `capabilities` are its
/// signer's; `job_ports` the policy's UDP port range.
pub fn run(
    blob: &[u8],
    signers: &[TrustedSigner],
    input: &[u8],
    limits: &Limits,
    capabilities: Capabilities,
    job_ports: PortRange,
) -> JobResult {
    let (align, memory_len) = match Blob::new_checked(blob) {
        Ok(view) => (view.align() as usize, view.memory_len() as usize),
        Err(error) => return rejected(format!("native blob: {error:?}")),
    };
    if limits.memory != 0 && memory_len > limits.memory as usize {
        return JobResult::rejected(LoadError::Limit(jos_runtime::LimitKind::MemoryPages));
    }
    let mut region = vec![0u8; memory_len + align];
    let dispatch = dispatch_table();
    let loaded = match jos_runtime::native::load(blob, signers, &mut region, &dispatch, &mut KernelCache) {
        Ok(loaded) => loaded,
        Err(error) => return rejected(format!("native blob: {error:?}")),
    };
    let deadline_ms = match limits.deadline_ms {
        0 => DEFAULT_DEADLINE_MS,
        ms => ms.min(MAX_DEADLINE_MS),
    };
    let output_cap = match limits.output {
        0 => DEFAULT_OUTPUT,
        cap => cap,
    } as usize;
    // SAFETY: no blob runs, so nothing else touches the job.
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
            idle_us: 0,
        })
    };
    REGION_START.store(loaded.base, Ordering::Relaxed);
    REGION_END.store(loaded.base + loaded.memory_len as u32, Ordering::Relaxed);
    OUTCOME.store(OUTCOME_RETURNED, Ordering::Relaxed);
    EXPIRED.store(false, Ordering::Relaxed);
    let _ = IRQ.register(Channel::Three.irq(), on_deadline);
    let mut context = [0u32; CONTEXT_WORDS];
    let started = TIMER.now_micros();
    let started_ticks = crate::arch::cycles::read();
    TIMER.arm_in(Channel::Three, deadline_ms.saturating_mul(1000));
    RUNNING.store(true, Ordering::Relaxed);
    let masked = crate::arch::interrupts_masked();
    crate::arch::enable_interrupts();
    // SAFETY: the blob is loaded, relocated, bound and synced to the I-cache; it follows the
    // AAPCS and runs in SVC mode on this stack. Every way out restores the context saved here.
    let value = unsafe { jos_native_enter(loaded.entry as usize, context.as_mut_ptr()) };
    crate::arch::disable_interrupts();
    RUNNING.store(false, Ordering::Relaxed);
    let _ = IRQ.unregister(Channel::Three.irq());
    TIMER.acknowledge(Channel::Three);
    if !masked {
        crate::arch::enable_interrupts();
    }
    let elapsed = TIMER.now_micros().saturating_sub(started);
    // 0 without a counter (QEMU): never an estimate.
    let cycles = crate::arch::cycles::cycles_between(started_ticks, crate::arch::cycles::read());
    REGION_START.store(0, Ordering::Relaxed);
    REGION_END.store(0, Ordering::Relaxed);
    // SAFETY: the blob has stopped.
    let job = unsafe { (*JOB.0.get()).take() };
    let Some(mut job) = job else { return rejected(String::from("native job state lost")) };
    drop(region);
    let (status, error, exit_value) = match OUTCOME.load(Ordering::Relaxed) {
        OUTCOME_DEADLINE => (JobStatus::Deadline, Some(JobError::Deadline { limit_us: u64::from(deadline_ms) * 1000 }), None),
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
            peak_memory_bytes: memory_len as u64,
            slices: 1,
            logs_dropped: job.logs_dropped,
            cycles,
            idle_us: job.idle_us.min(elapsed),
            ..Stats::default()
        },
    }
}

//! Native ARMv6 blobs on the device: the loader (`jos_runtime::native::load`) binds the blob's
//! imports to the `extern "C"` system calls below; the blob runs in SVC mode with IRQs enabled,
//! on its own job stack (`__job_stack_bottom..__job_stack_top`, above an unmapped guard page),
//! in steps: [`start`] loads it, each [`step`] enters or resumes it until the executive's next
//! frame tick preempts it, it yields, or it ends; [`abort`] drops it. A step saves a recovery
//! context (r4-r11, SP, LR, d8-d15, FPSCR, CPSR) in `jos_native_enter` / `jos_native_resume`;
//! every way off the CPU goes through `jos_native_recover`, which restores it: a normal return,
//! `exit`, the deadline (timer compare 3 interrupt that rewrites the IRQ return address when it
//! interrupted the blob's own code), faults (the abort / undefined-instruction entries rewrite
//! their exception return), preemption (the IRQ exit saves the blob's whole frame in
//! `jos_native_frame` first) and `yield` (`jos_native_suspend` saves the caller's frame). The
//! kernel is mono-task, so one static context, frame and job describe the current job.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use jos_abi::blob::Blob;
use jos_abi::syscall::{LogLevel, SyscallId, SYSCALL_TABLE_LEN};
use jos_abi::wire::Limits;
use jos_abi::ErrorCode;
use jos_runtime::native::{CacheMaintenance, DispatchTable};
use jos_abi::config::PortRange;
use jos_abi::syscall::{Capability, Endpoint};
use jos_runtime::{Capabilities, JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, StepOutcome, TrapCode};

use crate::services::jobio::JobDevices;

use crate::arch::cache;
use crate::arch::exceptions::{ExceptionKind, FaultRegisters, IrqExit, TrapFrame};
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

/// Words of the recovery context (see `jos_native_enter`).
const CONTEXT_WORDS: usize = 28;
/// Words of a suspended blob's frame (`jos_native_frame`): r0-r12 (0-12), PC (13), SP (14),
/// LR (15), SPSR (16), FPSCR (17), d0-d15 (18-49). The IRQ exit in
/// kernel/src/arch/arm1176/exceptions.rs writes the same offsets.
const FRAME_WORDS: usize = 50;

core::arch::global_asm!(
    r#"
    .arch armv6k
    .fpu vfpv2
    .section .text.native, "ax"
    .arm

@ jos_native_enter(entry, context) -> i32: saves the kernel's r4-r11, SP, LR, d8-d15, FPSCR and
@ CPSR in `context`, publishes it, switches SP to the job stack (the blob and its system calls
@ run there, so its frames survive while it is suspended and the kernel runs on the SVC
@ stack), calls `entry()` and leaves through jos_native_recover.
    .global jos_native_enter
jos_native_enter:
    mov     r12, r1                 @ r12: write cursor in the context
    stmia   r12!, {{r4-r11}}        @ words 0-7: callee-saved integer registers
    str     sp, [r12], #4           @ word 8: the kernel's SVC stack pointer
    str     lr, [r12], #4           @ word 9: where jos_native_enter returns
    vstmia  r12!, {{d8-d15}}        @ words 10-25: callee-saved VFP registers
    vmrs    r2, fpscr
    mrs     r3, cpsr
    stmia   r12, {{r2, r3}}         @ words 26-27: FPSCR and CPSR (interrupt mask)
    ldr     r2, =jos_native_context
    str     r1, [r2]                @ published: every way out restores it
    ldr     sp, =__job_stack_top    @ the blob runs on the job stack
    blx     r0
    @ fall through with the blob's r0

@ jos_native_recover(value): in SVC mode; restores the saved context (stack, callee-saved
@ registers, VFP state, CPSR with its interrupt mask) and returns `value` from the
@ jos_native_enter or jos_native_resume that saved it.
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

@ jos_native_resume(frame, context) -> i32: saves the kernel context in `context` as
@ jos_native_enter does, then restores the suspended blob's whole frame (layout: FRAME_WORDS)
@ and returns into it as an exception return does; the blob leaves again through
@ jos_native_recover, whose value this call returns.
    .global jos_native_resume
jos_native_resume:
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
    cpsid   if                      @ no IRQ while SP, LR and SPSR hold the blob's values
    add     r1, r0, #72
    vldmia  r1, {{d0-d15}}          @ words 18-49: every VFP register
    ldr     r1, [r0, #68]
    vmsr    fpscr, r1               @ word 17: FPSCR
    ldr     sp, [r0, #56]           @ word 14: the blob's SP (on the job stack)
    ldr     lr, [r0, #60]           @ word 15: the blob's LR
    ldr     r1, [r0, #64]
    msr     spsr_cxsf, r1           @ word 16: its CPSR (SVC, IRQs enabled, its T bit)
    ldmia   r0, {{r0-r12, pc}}^     @ words 0-13: r0-r12 and PC; CPSR = SPSR (no write-back,
                                    @ so loading the base register r0 is defined)

@ jos_native_suspend() -> i32: called (IRQs masked, OUTCOME and RUNNING already set) from a
@ system call the blob made, on the job stack: saves the callee-saved state with PC = the
@ return address and r0 = 0 in the frame, then leaves through jos_native_recover. Resuming
@ the frame returns 0 from this call, with the job stack untouched meanwhile.
    .global jos_native_suspend
jos_native_suspend:
    ldr     r12, =jos_native_frame
    add     r1, r12, #16
    stmia   r1, {{r4-r11}}          @ words 4-11
    mov     r1, #0
    str     r1, [r12]               @ word 0: r0 = 0, the call's result
    str     sp, [r12, #56]          @ word 14: SP as the caller left it
    str     lr, [r12, #60]          @ word 15
    mrs     r1, cpsr
    bic     r1, r1, #0x80           @ resumed with IRQs enabled
    tst     lr, #1                  @ a Thumb caller resumes in Thumb state
    orrne   r1, r1, #0x20
    bic     r2, lr, #1
    str     r2, [r12, #52]          @ word 13: PC = the return address
    str     r1, [r12, #64]          @ word 16: SPSR
    vmrs    r1, fpscr
    str     r1, [r12, #68]          @ word 17
    add     r1, r12, #72
    vstmia  r1, {{d0-d15}}          @ words 18-49
    mov     r0, #0
    b       jos_native_recover
    .ltorg
"#
);

extern "C" {
    fn jos_native_enter(entry: usize, context: *mut u32) -> i32;
    fn jos_native_resume(frame: *const u32, context: *mut u32) -> i32;
    fn jos_native_suspend() -> i32;
    fn jos_native_recover(value: i32) -> !;
}

/// The published recovery context (null when no blob runs); read by the assembly.
#[no_mangle]
#[allow(non_upper_case_globals)]
static mut jos_native_context: *mut u32 = core::ptr::null_mut();

/// The suspended blob's frame (layout: [`FRAME_WORDS`]); written by the IRQ exit's preemption
/// path and by `jos_native_suspend`, read by `jos_native_resume`.
#[no_mangle]
#[allow(non_upper_case_globals)]
static mut jos_native_frame: [u32; FRAME_WORDS] = [0; FRAME_WORDS];

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
    /// never through this field) and freed when the job is dropped.
    #[allow(dead_code)]
    region: Vec<u8>,
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

/// At a system call's entry: ends the job if its deadline passed; suspends it if the frame
/// tick came while the blob was in an earlier call (the IRQ exit preempts only the blob's own
/// code), so a blob that lives in system calls still leaves the CPU in time.
fn check_deadline() {
    check_expired();
    if tick_came() {
        switch_out(OUTCOME_PREEMPTED);
    }
}

/// Ends the job at a system call's entry if its deadline passed.
fn check_expired() {
    if EXPIRED.load(Ordering::Relaxed) {
        OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
        // SAFETY: called from a system call the blob made, in SVC mode, with no lock held: the
        // recovery context is live while RUNNING.
        unsafe { jos_native_recover(0) }
    }
}

/// Whether the executive's frame tick came since the current step began.
fn tick_came() -> bool {
    crate::services::executive::ticks() != STEP_TICKS.load(Ordering::Relaxed)
}

/// Suspends the blob from inside a system call (no borrow of the job held): it leaves the CPU
/// with `outcome`, and this returns once a later step resumes it.
fn switch_out(outcome: u32) {
    crate::arch::disable_interrupts();
    OUTCOME.store(outcome, Ordering::Relaxed);
    RUNNING.store(false, Ordering::Relaxed);
    // SAFETY: called from a system call the blob made, in SVC mode on the job stack, with IRQs
    // masked and no lock or borrow held: the recovery context is live (saved by the step), and
    // the frame written here is resumed only by `step`, with the job stack untouched meanwhile
    // (the kernel runs on the SVC stack). The call follows the AAPCS and returns 0.
    let _ = unsafe { jos_native_suspend() };
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

/// `yield`: the blob has nothing to do now (see `docs/kernel.md`, "Native yield"). It gives
/// the rest of this frame back: the blob is suspended here, the offload task returns to the
/// executive, and the blob is resumed in the next frame (after the network task ran); the call
/// then returns 0. The time suspended is not the job's CPU time.
extern "C" fn sys_yield() -> i32 {
    check_expired();
    switch_out(OUTCOME_YIELDED);
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
    if ACTIVE.load(Ordering::Relaxed) {
        EXPIRED.store(true, Ordering::Relaxed);
    }
}

fn in_blob(pc: u32) -> bool {
    pc >= REGION_START.load(Ordering::Relaxed) && pc < REGION_END.load(Ordering::Relaxed)
}

const MODE_MASK: u32 = 0x1f;
const MODE_SVC: u32 = 0x13;

/// Called at the end of every IRQ with the interrupted PC and CPSR. Only when the interrupted
/// code is the running blob's own code (SVC mode, ARM state, PC in its region: never a system
/// call holding kernel state): [`IrqExit::End`] if its deadline passed, [`IrqExit::Preempt`] if
/// the executive's frame tick came since the step began. If the deadline passed while the blob
/// was in a system call, the call ends the job at its next entry and the timer retries in 1 ms;
/// a tick that finds it in a system call suspends it at its next call's entry, or at the next
/// IRQ that finds it in its own code.
pub fn irq_redirect(pc: u32, spsr: u32) -> IrqExit {
    if !RUNNING.load(Ordering::Relaxed) {
        return IrqExit::Return;
    }
    let own_code = spsr & MODE_MASK == MODE_SVC && spsr & (1 << 5) == 0 && in_blob(pc);
    if EXPIRED.load(Ordering::Relaxed) {
        if own_code {
            OUTCOME.store(OUTCOME_DEADLINE, Ordering::Relaxed);
            RUNNING.store(false, Ordering::Relaxed);
            return IrqExit::End;
        }
        TIMER.arm_in(Channel::Three, 1000);
        return IrqExit::Return;
    }
    if own_code && tick_came() {
        OUTCOME.store(OUTCOME_PREEMPTED, Ordering::Relaxed);
        RUNNING.store(false, Ordering::Relaxed);
        return IrqExit::Preempt;
    }
    IrqExit::Return
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
    let (align, memory_len) = match Blob::new_checked(blob) {
        Ok(view) => (view.align() as usize, view.memory_len() as usize),
        Err(error) => return Err(rejected(format!("native blob: {error:?}"))),
    };
    if limits.memory != 0 && memory_len > limits.memory as usize {
        return Err(JobResult::rejected(LoadError::Limit(jos_runtime::LimitKind::MemoryPages)));
    }
    // The region comes from the heap only if the device keeps its reserve (a failed allocation
    // here would end the kernel, not the job).
    let region_len = memory_len.saturating_add(align);
    let mut region = Vec::new();
    if region_len > jos_runtime::host::HeapMeter::available(&crate::memory::heap::JOB_HEAP) || region.try_reserve_exact(region_len).is_err() {
        return Err(JobResult::rejected(LoadError::Limit(jos_runtime::LimitKind::DeviceMemory)));
    }
    region.resize(region_len, 0);
    let dispatch = dispatch_table();
    let loaded = match jos_runtime::native::load_verified(blob, &mut region, &dispatch, &mut KernelCache) {
        Ok(loaded) => loaded,
        Err(error) => return Err(rejected(format!("native blob: {error:?}"))),
    };
    let deadline_ms = match limits.deadline_ms {
        0 => DEFAULT_DEADLINE_MS,
        ms => ms.min(MAX_DEADLINE_MS),
    };
    let output_cap = match limits.output {
        0 => DEFAULT_OUTPUT,
        cap => cap,
    } as usize;
    REGION_START.store(loaded.base, Ordering::Relaxed);
    REGION_END.store(loaded.base + loaded.memory_len as u32, Ordering::Relaxed);
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
            region,
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
    let mut context = [0u32; CONTEXT_WORDS];
    let masked = crate::arch::disable_interrupts();
    STEP_TICKS.store(crate::services::executive::ticks(), Ordering::Relaxed);
    OUTCOME.store(OUTCOME_RETURNED, Ordering::Relaxed);
    RUNNING.store(true, Ordering::Relaxed);
    crate::arch::enable_interrupts();
    let value = if entered {
        // SAFETY: the job's frame was saved by the IRQ exit or `jos_native_suspend` when it left
        // the CPU (OUTCOME_PREEMPTED / OUTCOME_YIELDED, the only outcomes that keep the job); its
        // region and job stack are untouched since. Every way out restores the context saved here.
        unsafe { jos_native_resume(core::ptr::addr_of!(jos_native_frame).cast::<u32>(), context.as_mut_ptr()) }
    } else {
        // SAFETY: the blob is loaded, relocated, bound and synced to the I-cache; it follows the
        // AAPCS and runs in SVC mode on the job stack. Every way out restores the context saved here.
        unsafe { jos_native_enter(entry, context.as_mut_ptr()) }
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
    REGION_START.store(0, Ordering::Relaxed);
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
            peak_memory_bytes: job.memory_len as u64,
            slices: u64::from(job.steps),
            logs_dropped: job.logs_dropped,
            cycles,
            ..Stats::default()
        },
    }
}

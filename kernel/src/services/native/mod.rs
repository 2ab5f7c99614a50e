//! Native ARMv6 blobs on the device, in user mode behind the MMU.
//!
//! [`start`] loads a blob (`jos_runtime::native::load_verified`) into a page-aligned region of
//! the heap whose import slots get the addresses of the system-call stubs in the user page
//! (`arch::user::stub_address`), maps that region for user mode (`arch::mmu::map_user`: code
//! read-only and executable, data read/write and never executable) and arms its deadline.
//! Each [`step`] enters or resumes it in user mode on the job stack (`arch::user`) until the
//! executive's next frame tick preempts it, it yields, or it ends; [`abort`] drops it. The job
//! reaches the kernel only by `svc`: [`system_call`] (the SVC hook) dispatches by the number
//! into `HANDLERS` (`syscalls.rs`), one array index, after checking the deadline and the frame tick, and every
//! pointer and length a call receives is checked against the job's own memory (region and job
//! stack, overflow included) and committed ([`commit_through`]) before the kernel touches it:
//! a bad one answers
//! `-JOS_EFAULT` (`ErrorCode::BadAddress`). Faults in user mode (and an unknown SVC number) end
//! the job with Trap and a `fault:` line ([`recover_from_fault`]); the deadline and preemption
//! come from the IRQ exit ([`irq_redirect`]), which user code cannot mask. The kernel is
//! mono-task, so one static job describes the current job.
//!
//! The job's memory is zeroed on first touch: the loader writes the image and zeros to the end of
//! its last page, and the pages above that (the zeroed watermark, `REGION_WATERMARK`) are mapped
//! invalid. A user-mode data abort there (the commit hook, [`commit_on_fault`]) zeroes and maps
//! the next [`COMMIT_CHUNK`] bytes from the watermark and retries the access, and a system call
//! commits the buffers it is given before touching them, so a job pays only for the memory it
//! uses and neither it nor the kernel ever reads a byte of the block that was not zeroed for it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use core::alloc::Layout;

use jos_abi::blob::Blob;
use jos_abi::config::PortRange;
use jos_abi::job::Limits;
use jos_abi::syscall::{LogLevel, SyscallId};
use jos_kcore::page_table::{UserRegion, COMMIT_CHUNK, PAGE_SIZE};
use jos_runtime::native::CacheMaintenance;
use jos_runtime::{
    Capabilities, JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, StepOutcome, TrapCode,
};

use crate::services::jobio::JobDevices;

mod syscalls;

pub use syscalls::system_call;
use syscalls::{dispatch_table, push_log, tick_came};

use crate::arch::exceptions::{fault_status_name, ExceptionKind, FaultRegisters, IrqExit, TrapFrame};
use crate::arch::{cache, mmu, user};
use crate::board::bcm2835::timer::Channel;
use crate::board::bcm2835::{IRQ, TIMER};

/// Deadline used when the request gives none (milliseconds).
pub const DEFAULT_DEADLINE_MS: u32 = 10_000;
/// Longest deadline the device grants (milliseconds).
pub const MAX_DEADLINE_MS: u32 = 60_000;

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
    /// `len` bytes (rounded up to whole pages) aligned to `align` (at least a page), **not
    /// zeroed** (it may hold the kernel's or an earlier job's freed data): the loader writes the
    /// image and zeros to the end of its last page, [`UserMemory::zero_loaded_pages`] the rest
    /// of those pages before the block is mapped for user mode, and the pages above are zeroed
    /// when first touched ([`commit_step`]); `None` if the heap cannot give them.
    fn allocate(len: usize, align: usize) -> Option<Self> {
        let len = len.max(1).checked_next_multiple_of(PAGE_SIZE)?;
        let layout = Layout::from_size_align(len, align.max(PAGE_SIZE)).ok()?;
        // SAFETY: the layout has a non-zero size.
        let start = core::ptr::NonNull::new(unsafe { alloc::alloc::alloc(layout) })?;
        Some(Self { start, layout })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the block is `layout.size()` bytes, owned by this value; `u8` has no invalid
        // values, so uninitialised heap bytes are only stale data, which the loader overwrites.
        unsafe { core::slice::from_raw_parts_mut(self.start.as_ptr(), self.layout.size()) }
    }

    /// Zeroes what the loader did not write of the pages it wrote, `[offset, offset + len)`:
    /// any alignment gap before them and the rest of the last of them (page padding past a
    /// small blob's memory); returns the end of those pages, the first zeroed watermark. Nothing
    /// stale is mapped for user mode below it; nothing above it is mapped yet.
    fn zero_loaded_pages(&mut self, offset: usize, len: usize) -> usize {
        let start = self.start.as_ptr() as usize;
        let end = start + self.layout.size();
        let head = offset.min(self.layout.size());
        let loaded_end = (start + head).saturating_add(len).min(end);
        let watermark = jos_kcore::page_table::first_watermark(start, loaded_end - start, end);
        // SAFETY: both ranges lie inside this block, which this value owns; no reference into
        // it is alive.
        unsafe {
            crate::arch::zero::zero(start, head);
            crate::arch::zero::zero(loaded_end, watermark - loaded_end);
        }
        watermark
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
/// The zeroed watermark: the region's pages below it are zeroed (or hold the image) and mapped,
/// those from it on are mapped invalid until committed ([`commit_step`]).
static REGION_WATERMARK: AtomicU32 = AtomicU32::new(0);
/// A system call is being served (a fault now is the kernel's, on the job's behalf).
static IN_SYSCALL: AtomicBool = AtomicBool::new(false);

fn with_job<R>(f: impl FnOnce(&mut Job) -> R) -> Option<R> {
    // SAFETY: see `JobCell`: only one context touches the job at a time.
    unsafe { (*JOB.0.get()).as_mut().map(f) }
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

/// One step of committing the job's region for `address`: if it lies in the region at or above
/// the watermark, maps the next [`COMMIT_CHUNK`] bytes from the watermark (at most to the
/// region's end) for the job, zeroes them and advances the watermark. Returns whether it did.
/// Called with IRQs masked, while the job is stopped (its data abort or its system call).
fn commit_step(address: usize) -> bool {
    let watermark = REGION_WATERMARK.load(Ordering::Relaxed) as usize;
    let end = REGION_END.load(Ordering::Relaxed) as usize;
    let Some((from, to)) = jos_kcore::page_table::commit_step(watermark, end, address, COMMIT_CHUNK) else {
        return false;
    };
    if mmu::commit_user(from, to).is_err() {
        return false;
    }
    // SAFETY: `[from, to)` are whole pages of the job's own heap block (inside the region),
    // mapped read/write for the kernel as for the job just above; the job is stopped and no
    // reference into them is alive.
    unsafe { crate::arch::zero::zero(from, to - from) };
    REGION_WATERMARK.store(to as u32, Ordering::Relaxed);
    true
}

/// The commit hook (registered with `arch::exceptions::set_hooks`): a data abort from user mode
/// that is a translation fault at or above the running job's watermark, inside its region, is
/// its first touch of that memory: one [`commit_step`], and the access is retried (it faults
/// again if it lies further up). Anything else is left to [`recover_from_fault`].
pub fn commit_on_fault(registers: &FaultRegisters) -> bool {
    RUNNING.load(Ordering::Relaxed) && registers.data_translation_fault() && commit_step(registers.far as usize)
}

/// Commits the job's region through `last` (an address in it), chunk by chunk with IRQs masked
/// for each: what a system call does before it reads or writes a buffer of the job's, so that
/// it never reads another job's bytes nor has a later first touch wipe what it wrote. False if
/// a step failed (`last` not in the region).
pub(super) fn commit_through(last: usize) -> bool {
    while last >= REGION_WATERMARK.load(Ordering::Relaxed) as usize {
        let masked = crate::arch::disable_interrupts();
        let stepped = commit_step(last);
        crate::arch::restore_interrupts(masked);
        if !stepped {
            return false;
        }
    }
    true
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
// The refusal is the job's whole result, handed once to the server per job start: boxing it
// would only add an allocation on a path that already failed.
#[allow(clippy::result_large_err)]
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
    let (align, memory_len, text_len, rodata_len) = match Blob::new_checked(blob) {
        Ok(view) => {
            (view.align() as usize, view.memory_len() as usize, view.text_len() as usize, view.rodata_len() as usize)
        }
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
    let watermark = memory.zero_loaded_pages(loaded.offset, loaded.loaded_len);
    let base = loaded.base as usize;
    // Code pages: up to the end of .text (read-only, executable). Data pages: from the page
    // holding the start of .data on (read/write, never executable). Read-only data in pages of
    // its own is mapped as data (never executable). A page holding both code and data (a blob
    // whose .data does not start on a page: jos-native.ld aligns it) is both.
    let code_end = base + text_len;
    let region = UserRegion {
        start: base,
        code_end,
        data_start: code_end + rodata_len,
        end: memory.start.as_ptr() as usize + memory.layout.size(),
    };
    if let Err(error) = mmu::map_user(&region, watermark) {
        return Err(rejected(format!("native blob: cannot map its memory: {error:?}")));
    }
    // The job stack may hold the previous job's values: it starts zeroed, 32 bytes per store
    // (`arch::zero`; docs/memory.md "What a job can see of the previous one").
    let (stack_bottom, stack_top) = crate::memory::layout::job_stack();
    // SAFETY: the job stack is kernel-owned memory used only by native jobs, and none runs.
    unsafe { crate::arch::zero::zero(stack_bottom, stack_top - stack_bottom) };
    let deadline_ms = match limits.deadline_ms {
        0 => DEFAULT_DEADLINE_MS,
        ms => ms.min(MAX_DEADLINE_MS),
    };
    let output_cap = limits.output_cap();
    REGION_START.store(region.start as u32, Ordering::Relaxed);
    REGION_DATA.store((region.data_start & !(PAGE_SIZE - 1)) as u32, Ordering::Relaxed);
    REGION_END.store(region.end as u32, Ordering::Relaxed);
    REGION_WATERMARK.store(watermark as u32, Ordering::Relaxed);
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
    // The compare is armed (which clears its match bit) before its interrupt is unmasked: the
    // previous job's compare stays in the timer and matches once while no job runs (its deadline
    // after that job's start), leaving the bit set; unmasked first, that stale match fired at
    // once and ended this job with Deadline before it ran (`cargo xtask bench --full` met it at
    // its first AOT job, 190 s after the last native one had started).
    TIMER.arm_in(Channel::Three, deadline_ms.saturating_mul(1000));
    EXPIRED.store(false, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Relaxed);
    let _ = IRQ.register(Channel::Three.irq(), on_deadline);
    Ok(())
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
    REGION_WATERMARK.store(0, Ordering::Relaxed);
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
            push_log(&mut job, LogLine { level: LogLevel::Error, text: report.clone() });
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

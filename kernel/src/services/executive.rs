//! The cyclic executive: one loop, no threads. The system timer's compare channel 1 interrupts
//! every minor frame ([`FRAME_MICROS`]); its handler only counts the tick. The loop waits for a
//! tick, then runs the registered tasks due in this frame (`jos_kcore::executive::Schedule`),
//! and counts an overrun when the tasks of one frame were still running at the next tick.
//!
//! Services plug in with [`register`] (before or after [`run`] starts; a task may register
//! another). Tasks run with IRQs enabled and must return quickly: a long job is cut into
//! slices, one per call.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use jos_kcore::executive::{FrameAccount, Schedule, ScheduleError, Task, MAX_TASKS};

use crate::board::bcm2835::timer::Channel;
use crate::board::bcm2835::{IRQ, TIMER};
use crate::sync::IrqLock;

/// Length of a minor frame in microseconds.
pub const FRAME_MICROS: u32 = 1000;

/// A task: a plain function called in its frames.
pub type TaskFn = fn();

static SCHEDULE: IrqLock<Schedule<TaskFn>> = IrqLock::new(Schedule::new());
static ACCOUNT: IrqLock<FrameAccount> = IrqLock::new(FrameAccount { frames: 0, overruns: 0, missed: 0 });
/// Timer ticks not yet consumed by the loop.
static TICKS: AtomicU32 = AtomicU32::new(0);
/// Total ticks since `run` started.
static TOTAL_TICKS: AtomicU32 = AtomicU32::new(0);
/// Microseconds spent running tasks.
static BUSY_MICROS: IrqLock<u64> = IrqLock::new(0);
static RUNNING: AtomicBool = AtomicBool::new(false);
/// The timer's low word at the end of the frame whose tasks run now (the next tick's compare
/// value, read when the frame starts).
static FRAME_END: AtomicU32 = AtomicU32::new(0);

/// The executive's counters, for the status screen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Frames whose tasks ran.
    pub frames: u64,
    /// Frames whose tasks overran into the next frame.
    pub overruns: u32,
    /// Frames skipped because of overruns.
    pub missed: u64,
    /// Timer ticks taken.
    pub ticks: u32,
    /// Microseconds spent in tasks.
    pub busy_micros: u64,
    /// Registered tasks.
    pub tasks: usize,
}

/// Registers `task` to run every `period_frames` frames under `name`.
pub fn register(name: &'static str, period_frames: u32, task: TaskFn) -> Result<(), ScheduleError> {
    SCHEDULE.lock(|schedule| schedule.register(name, period_frames, task)).map(|_| ())
}

/// The counters now.
pub fn stats() -> Stats {
    let account = ACCOUNT.try_lock(|account| *account).unwrap_or_default();
    Stats {
        frames: account.frames,
        overruns: account.overruns,
        missed: account.missed,
        ticks: TOTAL_TICKS.load(Ordering::Relaxed),
        busy_micros: BUSY_MICROS.try_lock(|busy| *busy).unwrap_or(0),
        tasks: SCHEDULE.try_lock(|schedule| schedule.len()).unwrap_or(0),
    }
}

/// Calls `f` with each registered task (name, period, runs, longest run).
pub fn for_each_task(mut f: impl FnMut(&Task<TaskFn>)) {
    let copy = SCHEDULE.try_lock(|schedule| {
        let mut tasks = [None; MAX_TASKS];
        for (slot, task) in tasks.iter_mut().zip(schedule.tasks()) {
            *slot = Some(*task);
        }
        tasks
    });
    for task in copy.into_iter().flatten().flatten() {
        f(&task);
    }
}

/// Microseconds left in the current frame (0 once its end has passed, or before [`run`]): how
/// long the task running now may still take without making the next frame late.
pub fn micros_left_in_frame() -> u32 {
    if !running() {
        return 0;
    }
    let left = FRAME_END.load(Ordering::Relaxed).wrapping_sub(TIMER.now_low()) as i32;
    u32::try_from(left).unwrap_or(0).min(FRAME_MICROS)
}

/// Frame ticks taken since [`run`] started (wraps): a change tells that the next frame is due
/// (the native job's preemption, docs/kernel.md "Native blobs").
pub fn ticks() -> u32 {
    TOTAL_TICKS.load(Ordering::Relaxed)
}

/// True once [`run`] has started.
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed)
}

fn on_tick() {
    let skipped = TIMER.advance_compare(Channel::One, FRAME_MICROS);
    let ticks = 1 + skipped;
    TICKS.fetch_add(ticks, Ordering::Relaxed);
    TOTAL_TICKS.fetch_add(ticks, Ordering::Relaxed);
}

/// Starts the frame timer and runs the loop forever.
pub fn run() -> ! {
    RUNNING.store(true, Ordering::Relaxed);
    TIMER.arm_in(Channel::One, FRAME_MICROS);
    if IRQ.register(Channel::One.irq(), on_tick).is_err() {
        crate::error!("executive: cannot register the frame interrupt");
    }
    crate::arch::enable_interrupts();
    loop {
        // Wait for a tick with IRQs masked, so a tick between the check and the wait still wakes
        // the core (WFI wakes on a pending IRQ even when masked).
        let saved = crate::arch::disable_interrupts();
        while TICKS.load(Ordering::Relaxed) == 0 {
            crate::arch::wait_for_interrupt();
            crate::arch::restore_interrupts(saved);
            crate::arch::disable_interrupts();
        }
        let ticks = TICKS.swap(0, Ordering::Relaxed);
        FRAME_END.store(TIMER.compare(Channel::One), Ordering::Relaxed);
        crate::arch::restore_interrupts(saved);

        let frame = ACCOUNT.lock(|account| account.start_frame(ticks));
        let mut due = [(usize::MAX, None::<TaskFn>); MAX_TASKS];
        SCHEDULE.lock(|schedule| {
            for (slot, index) in due.iter_mut().zip(schedule.due(frame, ticks)) {
                *slot = (index, schedule.task(index).map(|task| task.run));
            }
        });
        for (index, task) in due {
            let Some(task) = task else { break };
            let start = TIMER.now_low();
            task();
            let took = TIMER.now_low().wrapping_sub(start);
            SCHEDULE.lock(|schedule| schedule.record_run(index, took));
            BUSY_MICROS.lock(|busy| *busy += u64::from(took));
        }
    }
}

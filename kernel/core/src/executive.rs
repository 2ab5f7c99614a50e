//! The cyclic executive's schedule: which registered tasks run in which minor frame, and the
//! per-frame accounting (frames run, overruns, frames missed). The kernel drives it from the
//! system timer; this part needs no hardware.

/// How many tasks the executive can hold.
pub const MAX_TASKS: usize = 16;

/// Why a task could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// All [`MAX_TASKS`] slots are taken.
    Full,
    /// The period is zero frames.
    ZeroPeriod,
    /// A task with this name is already registered.
    Duplicate,
}

/// One periodic task.
#[derive(Clone, Copy, Debug)]
pub struct Task<F: Copy> {
    /// Its name, for the status screen and logs.
    pub name: &'static str,
    /// Runs every `period` frames.
    pub period: u32,
    /// In frames where `frame % period == phase` (spreads tasks of equal period).
    pub phase: u32,
    /// What to run.
    pub run: F,
    /// Times it ran.
    pub runs: u32,
    /// Longest run, in microseconds.
    pub max_micros: u32,
}

/// The task table.
pub struct Schedule<F: Copy> {
    tasks: [Option<Task<F>>; MAX_TASKS],
    count: usize,
}

impl<F: Copy> Default for Schedule<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Copy> Schedule<F> {
    /// An empty schedule.
    pub const fn new() -> Self {
        Self { tasks: [None; MAX_TASKS], count: 0 }
    }

    /// Adds a task that runs every `period` frames. Tasks with the same period are given
    /// different phases, so they do not all land in the same frame.
    pub fn register(&mut self, name: &'static str, period: u32, run: F) -> Result<usize, ScheduleError> {
        if period == 0 {
            return Err(ScheduleError::ZeroPeriod);
        }
        if self.tasks().any(|task| task.name == name) {
            return Err(ScheduleError::Duplicate);
        }
        if self.count == MAX_TASKS {
            return Err(ScheduleError::Full);
        }
        let same_period = self.tasks().filter(|task| task.period == period).count() as u32;
        let phase = same_period % period;
        self.tasks[self.count] = Some(Task { name, period, phase, run, runs: 0, max_micros: 0 });
        self.count += 1;
        Ok(self.count - 1)
    }

    /// The registered tasks in registration order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task<F>> {
        self.tasks[..self.count].iter().flatten()
    }

    /// Number of registered tasks.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no task is registered.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The indices of the tasks due in `frame`, in registration order, when this frame stands
    /// for the `span` frames ending at `frame` (more than 1 after an overrun skipped frames): a
    /// task whose slot fell in a skipped frame runs now, once, instead of waiting a whole period.
    pub fn due(&self, frame: u64, span: u32) -> impl Iterator<Item = usize> + '_ {
        let first = frame.saturating_sub(u64::from(span.max(1)) - 1);
        self.tasks[..self.count].iter().enumerate().filter_map(move |(index, task)| {
            let task = task.as_ref()?;
            let (period, phase) = (u64::from(task.period), u64::from(task.phase));
            if frame < phase {
                return None;
            }
            let latest_slot = frame - (frame - phase) % period;
            (latest_slot >= first).then_some(index)
        })
    }

    /// The task at `index`.
    pub fn task(&self, index: usize) -> Option<&Task<F>> {
        self.tasks.get(index)?.as_ref()
    }

    /// Records that the task at `index` ran for `micros`.
    pub fn record_run(&mut self, index: usize, micros: u32) {
        if let Some(Some(task)) = self.tasks.get_mut(index) {
            task.runs = task.runs.wrapping_add(1);
            task.max_micros = task.max_micros.max(micros);
        }
    }
}

/// Frame accounting: the timer interrupt counts frame ticks; the loop consumes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameAccount {
    /// Frames whose tasks ran.
    pub frames: u64,
    /// Frames in which the tasks were still running when the next tick came.
    pub overruns: u32,
    /// Ticks that passed without their own frame (skipped because of an overrun).
    pub missed: u64,
}

impl FrameAccount {
    /// Starts the frame, given `ticks`: the timer ticks seen since the last frame started (at
    /// least 1 when called). Returns the frame number to run. When more than one tick passed,
    /// the previous frame overran and the extra ticks are counted as missed frames; the
    /// schedule carries on from the newest tick so that time stays true.
    pub fn start_frame(&mut self, ticks: u32) -> u64 {
        if ticks > 1 {
            self.overruns = self.overruns.wrapping_add(1);
            self.missed = self.missed.wrapping_add(u64::from(ticks - 1));
        }
        let frame = self.frames + self.missed;
        self.frames += 1;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() {}

    #[test]
    fn registration() {
        let mut schedule: Schedule<fn()> = Schedule::new();
        assert_eq!(schedule.register("net", 1, noop), Ok(0));
        assert_eq!(schedule.register("screen", 500, noop), Ok(1));
        assert_eq!(schedule.register("net", 5, noop), Err(ScheduleError::Duplicate));
        assert_eq!(schedule.register("zero", 0, noop), Err(ScheduleError::ZeroPeriod));
        for name in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"] {
            schedule.register(name, 10, noop).unwrap();
        }
        assert_eq!(schedule.register("overflow", 10, noop), Err(ScheduleError::Full));
        assert_eq!(schedule.len(), MAX_TASKS);
    }

    #[test]
    fn due_tasks_follow_periods_and_phases() {
        let mut schedule: Schedule<fn()> = Schedule::new();
        schedule.register("every", 1, noop).unwrap();
        schedule.register("tenth-a", 10, noop).unwrap();
        schedule.register("tenth-b", 10, noop).unwrap();
        let runs = |frame| schedule.due(frame, 1).collect::<Vec<_>>();
        assert_eq!(runs(0), vec![0, 1]);
        assert_eq!(runs(1), vec![0, 2], "the second task of period 10 gets phase 1");
        assert_eq!(runs(2), vec![0]);
        assert_eq!(runs(10), vec![0, 1]);
        assert_eq!(runs(11), vec![0, 2]);
        let over_100: usize = (0..100).map(|frame| schedule.due(frame, 1).count()).sum();
        assert_eq!(over_100, 100 + 10 + 10);
    }

    #[test]
    fn skipped_slots_run_late_but_once() {
        let mut schedule: Schedule<fn()> = Schedule::new();
        schedule.register("every", 1, noop).unwrap();
        schedule.register("tenth", 10, noop).unwrap();
        // Frames 9..=11 were one long frame: the slot at 10 was skipped, so the task runs at 11.
        assert_eq!(schedule.due(11, 3).collect::<Vec<_>>(), vec![0, 1]);
        // A span covering two slots still runs the task once.
        assert_eq!(schedule.due(25, 20).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(schedule.due(19, 9).collect::<Vec<_>>(), vec![0]);
        // Huge spans at the start do not underflow.
        assert_eq!(schedule.due(3, 1000).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn run_statistics() {
        let mut schedule: Schedule<fn()> = Schedule::new();
        schedule.register("t", 2, noop).unwrap();
        schedule.record_run(0, 30);
        schedule.record_run(0, 10);
        schedule.record_run(7, 10);
        let task = schedule.task(0).unwrap();
        assert_eq!((task.runs, task.max_micros), (2, 30));
    }

    #[test]
    fn overruns_and_missed_frames() {
        let mut account = FrameAccount::default();
        assert_eq!(account.start_frame(1), 0);
        assert_eq!(account.start_frame(1), 1);
        // Frame 1 took three ticks: frames 2 and 3 are missed, frame 4 runs.
        assert_eq!(account.start_frame(3), 4);
        assert_eq!((account.frames, account.overruns, account.missed), (3, 1, 2));
        assert_eq!(account.start_frame(1), 5);
    }
}

//! A finished job's result to its session ([`jos_runtime::JobResult::to_wire`]) and its timing
//! to the platform.

use jos_abi::job::{Engine, JobStatus};
use jos_abi::wire::Format;
use jos_abi::ErrorCode;
use jos_runtime::JobResult;

use super::{Platform, Server, SessionId};
use crate::timing::{JobTiming, Timing};

/// When a job's phases began, in microseconds of the platform clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct JobPhases {
    /// The Invoke arrived.
    pub received_us: u64,
    /// The job started (left the queue).
    pub started_us: u64,
    /// The job was instantiated (wasm) or loaded (native).
    pub instantiated_us: u64,
}

/// What a job was: its module's format and the engine that ran it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct JobKind {
    /// The module's format.
    pub format: Format,
    /// The engine that ran it (reported in the result's stats).
    pub engine: Engine,
}

/// What a job took, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct JobTimes {
    /// From its start to its end.
    pub time_us: u64,
    /// The part of `time_us` the job held the CPU.
    pub cpu_us: u64,
}

impl<P: Platform> Server<P> {
    /// [`Server::finish`], then the job's [`JobTiming`] to the platform.
    pub(super) fn finish_timed(
        &mut self,
        id: SessionId,
        kind: JobKind,
        phases: JobPhases,
        result: &JobResult,
        times: JobTimes,
    ) {
        let JobPhases { received_us, started_us, instantiated_us } = phases;
        let finished_us = self.platform.now_us();
        self.finish(id, kind.engine, result, times);
        let done_us = self.platform.now_us();
        self.platform.timing(&Timing::Job(JobTiming {
            format: kind.format,
            status: result.status,
            queued_us: started_us.saturating_sub(received_us),
            instantiate_us: instantiated_us.saturating_sub(started_us),
            run_us: finished_us.saturating_sub(instantiated_us),
            result_us: done_us.saturating_sub(finished_us),
            total_us: done_us.saturating_sub(received_us),
        }));
    }

    /// Reports a finished job to its session, with the engine that ran it and its [`JobTimes`].
    pub(super) fn finish(&mut self, id: SessionId, engine: Engine, result: &JobResult, times: JobTimes) {
        let status = result.reported_status();
        self.last = Some((status, result.exit_value.unwrap_or(0)));
        if status == JobStatus::Ok {
            self.counters.jobs_ok += 1;
        } else {
            self.counters.jobs_failed += 1;
        }
        if self.finish_fleet(id, engine, result, times) {
            return;
        }
        let Some(mut session) = self.sessions.remove(&id.0) else { return };
        let sent =
            result.to_wire(times.time_us, times.cpu_us, engine, |message| session.send(message, &mut self.scratch));
        if !sent {
            self.error(&mut session, ErrorCode::LimitExceeded, "job result does not fit a frame");
        }
        self.check_outbox(&mut session);
        self.sessions.insert(id.0, session);
    }
}

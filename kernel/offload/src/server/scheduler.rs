//! The job queue and the running job: Invoke, then one slice per [`Server::poll_slice`].

use alloc::string::ToString;

use jos_abi::blob::{Blob, BlobFlags};
use jos_abi::job::{Engine, Limits};
use jos_abi::wire::{Format, Message};
use jos_abi::ErrorCode;
use jos_runtime::{Capabilities, Entry, JobResult, StepOutcome};

use crate::session::Session;

use super::results::{JobKind, JobPhases, JobTimes};
use super::{Platform, Request, Running, RunningJob, Server, SessionId, Slice};

impl<P: Platform> Server<P> {
    /// The engine of a cached blob: [`Engine::Aot`] when it is marked compiled from wasm.
    fn native_engine(&mut self, identity: &[u8; 32]) -> Engine {
        let aot = self.natives.get(identity).is_some_and(|bytes| {
            Blob::new_checked(bytes.as_slice()).is_ok_and(|blob| blob.flags().contains(BlobFlags::AOT))
        });
        if aot {
            Engine::Aot
        } else {
            Engine::Native
        }
    }

    pub(super) fn invoke(
        &mut self,
        id: SessionId,
        session: &mut Session,
        hash: [u8; 32],
        limits: Limits,
        input: &[u8],
        entry: Entry,
    ) {
        let client_key = session.client_key;
        if let Err((code, text)) = self.enqueue(id, Some(client_key), hash, limits, input, entry) {
            self.error(session, code, text);
        }
    }

    /// The format of the cached module `hash` names, if any.
    pub(super) fn cached_format(&mut self, hash: &[u8; 32]) -> Option<Format> {
        match self.resolve(hash) {
            Some((identity, _)) if self.sandbox.cache().contains(&identity) => Some(Format::Wasm),
            Some((identity, _)) if self.natives.contains(&identity) => Some(Format::NativeArmv6),
            _ => None,
        }
    }

    /// Queues a run of the cached module `hash` for session `id` (a direct session, or a fleet
    /// job's own id): the one scheduler both paths share. `client_key`: the pushing client's
    /// key, whose push limits are the defaults (a fleet job has none: its own limits and the
    /// policy's). `Err`: why not, for an Error message.
    pub(super) fn enqueue(
        &mut self,
        id: SessionId,
        client_key: Option<[u8; 32]>,
        hash: [u8; 32],
        limits: Limits,
        input: &[u8],
        entry: Entry,
    ) -> Result<(), (ErrorCode, &'static str)> {
        let resolved = self.resolve(&hash);
        let format = match resolved {
            Some((identity, _)) if self.sandbox.cache().contains(&identity) => Format::Wasm,
            Some((identity, _)) if self.natives.contains(&identity) => Format::NativeArmv6,
            _ => return Err((ErrorCode::NotFound, "no cached module with this SHA-256: push it first")),
        };
        let (hash, capabilities) = resolved.unwrap_or((hash, Capabilities::NONE));
        let engine = match format {
            Format::Wasm => Engine::WasmInterpreter,
            Format::NativeArmv6 => self.native_engine(&hash),
        };
        if self.queue.len() >= usize::from(self.config.policy.queue_len) {
            return Err((ErrorCode::Busy, "job queue full"));
        }
        // A client that did not push the module gets no push limits but its own request's and
        // the policy's.
        let defaults = client_key.and_then(|key| self.defaults.get(&(key, hash)).copied()).unwrap_or_default();
        let limits = limits.or(defaults).capped_by(self.config.policy.limits);
        let received_us = self.platform.now_us();
        self.queue.push_back(Request {
            session: id,
            format,
            engine,
            hash,
            limits,
            input: input.to_vec(),
            entry,
            received_us,
            capabilities,
        });
        Ok(())
    }

    /// Runs one slice of the current job (starting the next queued one if none runs); sends
    /// Progress and JobResult messages. `now_us` is the device's clock. Returns how the slice
    /// ended.
    pub fn poll(&mut self, now_us: u64) -> Slice {
        self.poll_slice(now_us, self.options.slice_fuel)
    }

    /// [`poll`](Self::poll) with a slice of `slice_fuel` instead of the configured one (the
    /// kernel shortens the last slice of a frame to what the frame has left, and gives a job that
    /// returned [`Slice::Yielded`] no further slice in that frame).
    pub fn poll_slice(&mut self, now_us: u64, slice_fuel: u64) -> Slice {
        if self.running.is_none() {
            let Some(request) = self.queue.pop_front() else { return Slice::Idle };
            match request.format {
                Format::Wasm => {
                    let Some(module) = self.sandbox.cached(&request.hash) else {
                        let result = JobResult::rejected(jos_runtime::LoadError::Malformed(
                            "module left the cache before it ran; push it again".to_string(),
                        ));
                        self.finish(request.session, request.engine, &result, JobTimes::default());
                        return Slice::Ended;
                    };
                    let host = self.platform.host(request.input);
                    let start_began = self.platform.now_us();
                    let job = self.sandbox.start(
                        &module,
                        host,
                        jos_runtime::Limits::default().with_request(&request.limits),
                        request.capabilities,
                        request.entry,
                    );
                    let instantiated_us = self.platform.now_us();
                    let start_cpu_us = instantiated_us.saturating_sub(start_began);
                    self.running = Some(Running {
                        session: request.session,
                        format: request.format,
                        engine: request.engine,
                        hash: request.hash,
                        job: RunningJob::Wasm(job),
                        started_us: now_us,
                        last_progress_us: now_us,
                        began_us: start_began,
                        cpu_us: start_cpu_us,
                        received_us: request.received_us,
                        instantiated_us,
                    });
                }
                Format::NativeArmv6 => {
                    let start_us = self.platform.now_us();
                    let started = match self.natives.get(&request.hash) {
                        Some(blob) => self.platform.start_native(
                            blob.as_slice(),
                            &request.input,
                            &request.limits,
                            request.capabilities,
                        ),
                        None => Err(JobResult::rejected(jos_runtime::LoadError::Malformed(
                            "blob left the cache before it ran; push it again".to_string(),
                        ))),
                    };
                    let loaded_us = self.platform.now_us();
                    if let Err(result) = started {
                        let phases = JobPhases {
                            received_us: request.received_us,
                            started_us: start_us,
                            instantiated_us: loaded_us,
                        };
                        let took = loaded_us.saturating_sub(start_us);
                        let times = JobTimes { time_us: took, cpu_us: took };
                        let kind = JobKind { format: Format::NativeArmv6, engine: request.engine };
                        self.finish_timed(request.session, kind, phases, &result, times);
                        return Slice::Ended;
                    }
                    // The blob runs in steps below, like a wasm job's slices: its CPU time is the
                    // sum of its steps (and the load), not the frames it waited through.
                    self.running = Some(Running {
                        session: request.session,
                        format: request.format,
                        engine: request.engine,
                        hash: request.hash,
                        job: RunningJob::Native,
                        started_us: now_us,
                        last_progress_us: now_us,
                        began_us: start_us,
                        cpu_us: loaded_us.saturating_sub(start_us),
                        received_us: request.received_us,
                        instantiated_us: loaded_us,
                    });
                }
            }
        }
        let Some(running) = self.running.as_mut() else { return Slice::Idle };
        let slice_began = self.platform.now_us();
        let outcome = match &mut running.job {
            RunningJob::Wasm(job) => self.platform.step_wasm(job, slice_fuel),
            RunningJob::Native => self.platform.step_native(),
        };
        let slice_ended = self.platform.now_us();
        running.cpu_us += slice_ended.saturating_sub(slice_began);
        let yielded = outcome == StepOutcome::Yielded;
        match outcome {
            StepOutcome::Running | StepOutcome::Yielded => {
                if now_us.saturating_sub(running.last_progress_us) >= self.options.progress_interval_us {
                    running.last_progress_us = now_us;
                    let progress = Message::Progress {
                        fuel_used: running.job.fuel_used(),
                        elapsed_us: now_us.saturating_sub(running.started_us),
                        output_len: 0,
                    };
                    let id = running.session;
                    if let Some(mut session) = self.sessions.remove(&id.0) {
                        session.send(&progress, &mut self.scratch);
                        self.check_outbox(&mut session);
                        self.sessions.insert(id.0, session);
                    }
                }
                if yielded {
                    Slice::Yielded
                } else {
                    Slice::Ran
                }
            }
            StepOutcome::Finished(result) => {
                let (session, kind) = (running.session, JobKind { format: running.format, engine: running.engine });
                let times = JobTimes { time_us: slice_ended.saturating_sub(running.began_us), cpu_us: running.cpu_us };
                let phases = JobPhases {
                    received_us: running.received_us,
                    started_us: running.began_us,
                    instantiated_us: running.instantiated_us,
                };
                self.running = None;
                self.finish_timed(session, kind, phases, &result, times);
                Slice::Ended
            }
        }
    }
}

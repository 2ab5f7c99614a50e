//! What the board provides to the server: [`Platform`].

use alloc::string::ToString;
use alloc::vec::Vec;

use jos_abi::job::Limits;
use jos_runtime::host::HeapMeter;
use jos_runtime::wasm::Job;
use jos_runtime::{Capabilities, Host, JobResult, StepOutcome};

use crate::timing::Timing;

/// What the board provides to the server.
pub trait Platform {
    /// The runtime host each wasm job gets.
    type Host: Host + 'static;

    /// A host for a job with this input.
    fn host(&mut self, input: Vec<u8>) -> Self::Host;

    /// Whether native ARMv6 blobs can run here.
    fn runs_native(&self) -> bool {
        false
    }

    /// Starts a native blob the server verified when it was pushed (the platform need not check
    /// its signature again) as the current native job (the kernel arms its deadline,
    /// `limits.deadline_ms`, from its timer; the deadline runs while the job is suspended too).
    /// `capabilities` are the rights of the signer that verified the blob: capability calls
    /// beyond them answer `PermissionDenied`. `Err` holds the result of a job that could not
    /// start (`Rejected`). The server runs one job at a time: it never starts a second native
    /// job before the first finished or was aborted.
    // The refusal is the job's whole result, once per job start.
    #[allow(clippy::result_large_err)]
    fn start_native(
        &mut self,
        blob: &[u8],
        input: &[u8],
        limits: &Limits,
        capabilities: Capabilities,
    ) -> Result<(), JobResult> {
        let _ = (blob, input, limits, capabilities);
        Err(JobResult::rejected(jos_runtime::LoadError::Malformed(
            "native blobs do not run on this device".to_string(),
        )))
    }

    /// Runs the current native job until the platform preempts it (`Running`: call again in a
    /// later slice), it yields (`Yielded`) or it ends (`Finished`; faults end it with `Trap`,
    /// the deadline with `Deadline`).
    fn step_native(&mut self) -> StepOutcome {
        StepOutcome::Finished(JobResult::rejected(jos_runtime::LoadError::Malformed(
            "native blobs do not run on this device".to_string(),
        )))
    }

    /// Runs one slice of wasm job `job` with `slice_fuel` fuel: [`Job::step`] by default. The
    /// kernel runs it on a stack of its own above a guard page, so that an interpreter that
    /// exhausts it ends the job ([`Job::end_stack_exhausted`]) instead of the device.
    fn step_wasm(&mut self, job: &mut Job<Self::Host>, slice_fuel: u64) -> StepOutcome {
        job.step(slice_fuel)
    }

    /// Drops the current native job without running it further (its client left): its memory
    /// and sockets are freed.
    fn abort_native(&mut self) {}

    /// Free heap bytes (reported in adverts).
    fn free_memory(&self) -> u32;

    /// The device's heap for the wasm sandbox (`jos_runtime::host::HeapMeter`): with it, jobs
    /// cannot grow into what the device keeps for itself, a module is compiled only when its
    /// worst case fits, and cached modules are charged what they really take. The default has
    /// none.
    fn heap_meter(&self) -> Option<&'static dyn HeapMeter> {
        None
    }

    /// A monotonic clock in microseconds: the server times each slice of a wasm job with it
    /// (their sum is the job's `cpu_us`) and the phases of pushes and jobs ([`Platform::timing`]).
    fn now_us(&self) -> u64;

    /// A push or job ended: its phases in [`Platform::now_us`] time (the kernel logs them).
    fn timing(&mut self, timing: &Timing) {
        let _ = timing;
    }
}

//! Guest-time phases of a push and of a job, measured with [`Platform::now_us`] and handed to
//! [`Platform::timing`] once each is over (the kernel prints them as `offload: timing` lines,
//! docs/protocol.md "Timing reports"; the benchmark harness reads them).
//!
//! [`Platform::now_us`]: crate::Platform::now_us
//! [`Platform::timing`]: crate::Platform::timing

use jos_abi::wire::{Format, JobStatus};

/// One push, from its session's Hello to the PushOk or Error it ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushTiming {
    /// The module's format.
    pub format: Format,
    /// Its length in bytes.
    pub bytes: usize,
    /// Whether the device accepted it (PushOk).
    pub accepted: bool,
    /// The session's handshake: the client's Hello in to the answer queued (Noise IK, key checks).
    pub handshake_us: u64,
    /// PushBegin in to PushEnd in (chunks arriving; bounded by the network).
    pub transfer_us: u64,
    /// PushEnd in to the verdict queued: SHA-256, signature, and for wasm validation and
    /// compilation into the module cache.
    pub verify_us: u64,
    /// The session's Hello in to the verdict queued (includes the client's round trips).
    pub session_us: u64,
}

/// One job, from its Invoke to its JobResult.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTiming {
    /// The module's format.
    pub format: Format,
    /// How it ended.
    pub status: JobStatus,
    /// Invoke in to the job's start (waiting in the queue for the next executive frame).
    pub queued_us: u64,
    /// Instantiation (wasm: linking, memory, start function; 0 for native blobs, whose loading
    /// is inside `run_us`).
    pub instantiate_us: u64,
    /// Instantiated to finished (fuel slices interleaved with the rest of each frame for wasm).
    pub run_us: u64,
    /// Finished to the JobResult queued (encoding and encryption).
    pub result_us: u64,
    /// Invoke in to the JobResult queued.
    pub total_us: u64,
}

/// What [`crate::Platform::timing`] receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// A push ended.
    Push(PushTiming),
    /// A job ended.
    Job(JobTiming),
}

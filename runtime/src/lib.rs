//! Executes a jos job independent of the board: the wasm sandbox and the native blob loader.
//!
//! - [`host`]: the [`Host`] trait, what the device provides to a job (`StdHost` on a PC, with the
//!   `std` feature).
//! - [`wasm`]: the sandbox over wasmi: load checks, limits, fuel slices, module cache.
//! - [`native`]: the native blob loader (validate, verify, place, relocate, bind imports).
//! - [`job`]: the result of a job, shared by both forms.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod host;
pub mod job;
pub mod native;
pub mod wasm;

#[cfg(any(feature = "std", test))]
pub use host::StdHost;
pub use host::{Capabilities, Host};
pub use job::{JobError, JobResult, JobStatus, LimitKind, LoadError, LogLine, Stats, StepOutcome, TrapCode, Value};
pub use wasm::{CompiledModule, Entry, Job, Limits, Sandbox, SandboxConfig};
/// The wasmi version this runtime is built on, re-exported for tools (such as the spec-suite
/// runner) that must use the very same engine configuration.
pub use wasmi;

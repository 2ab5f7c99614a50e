//! The contract shared by the jos kernel, runtime, CLI and guests: every wire and file format.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

pub mod atags;
pub mod blob;
pub mod codec;
pub mod config;
pub mod error;
pub mod fleet;
pub mod fleet_job;
#[cfg(any(feature = "fuzzing", test))]
pub mod fuzzing;
pub mod job;
pub mod signature;
pub mod syscall;
pub mod wire;

pub use error::ErrorCode;
pub use syscall::{AbiVersion, SyscallId};

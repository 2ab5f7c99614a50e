//! The contract shared by the jos kernel, runtime, CLI and guests: every wire and file format.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod blob;
pub mod error;
pub mod syscall;

pub use error::ErrorCode;
pub use syscall::{AbiVersion, SyscallId};

//! jos-cli as a library: what the `jos-cli` binary does, callable from other programs.
//!
//! - [`build`]: C sources or a Rust guest crate to a checked wasm module or a native jos blob.
//! - [`exit`]: the process exit codes, one per failure kind (documented in `docs/cli.md`).
//!
//! The binary (`src/main.rs`) only parses arguments and prints.

pub mod build;
pub mod exit;
pub mod sdk;

//! jos-cli as a library: the `jos-cli` commands, callable from other programs. The work is in two
//! libraries without any terminal or command-line dependency, which applications should use
//! directly instead of this crate:
//!
//! - `jos-build` (`jos_build`): C sources or a Rust guest crate to a checked wasm module or a
//!   native jos blob.
//! - `jos-client` (`jos_client`): discover, trust check, Noise session, push, invoke, and
//!   `$JOS_HOME` (keys, trust store, default device).
//!
//! This crate adds:
//! - [`exit`]: the process exit codes, one per failure kind (documented in `docs/cli.md`), and
//!   the mapping of the libraries' errors onto them.
//! - [`commands`]: the subcommands other than `build` (keygen, provision, image, discover, trust,
//!   sign, verify, push, invoke, run --local, emu): arguments, progress bars and printing.
//!
//! The binary (`src/main.rs`) only parses arguments and prints.

pub mod commands;
pub mod exit;

//! jos-cli as a library: what the `jos-cli` binary does, callable from other programs.
//!
//! - [`build`]: C sources or a Rust guest crate to a checked wasm module or a native jos blob.
//! - [`exit`]: the process exit codes, one per failure kind (documented in `docs/cli.md`).
//! - [`client`]: the embeddable client: discover, trust check, Noise session, push, invoke.
//! - [`store`]: `$JOS_HOME`: keys, trust store, default device.
//! - [`commands`]: the other subcommands (keygen, provision, discover, trust, sign, verify, push,
//!   invoke, run --local, emu).
//!
//! The binary (`src/main.rs`) only parses arguments and prints.

pub mod build;
pub mod client;
pub mod commands;
pub mod exit;
pub mod sdk;
pub mod store;

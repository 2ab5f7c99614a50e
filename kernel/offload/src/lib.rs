//! The device side of the jos offload protocol, independent of the board.
//!
//! [`Server`] is a state machine over abstract byte streams: the kernel (or the host adapter in
//! `host`, feature `std`) feeds it the bytes each TCP connection received
//! ([`Server::receive`]), sends what it has to send ([`Server::pending`] / [`Server::consume`]),
//! tells it when a connection closes ([`Server::disconnect`]), answers discovery datagrams
//! ([`Server::discovery`]), and calls [`Server::poll`] once per executive frame to run one fuel
//! slice of the current job. Sessions are Noise IK (`snow`, no_std) with the device as responder;
//! only client keys in the configuration's trusted list complete a handshake. The server has a
//! clock ([`Platform::now_us`]): [`Server::expire`] applies the handshake deadline and the idle
//! timeout, and token buckets ([`ratelimit`]) bound the work probes and failing handshakes cost.
//! The protocol is in `docs/protocol.md`, the trust model, error handling and resource limits in
//! `docs/security.md`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod noise;
pub mod ratelimit;
mod records;
mod server;
mod session;
pub mod timing;

#[cfg(feature = "std")]
pub mod host;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(feature = "std")]
pub use noise::OsEntropy;
pub use noise::{Entropy, NOISE_PATTERN, PROLOGUE};
pub use ratelimit::{Rate, RateLimits};
pub use server::{
    Counters, DeviceConfig, FleetCounters, FleetRefusal, FleetResult, Platform, Server, ServerOptions, SessionId,
    Slice, Status, FLEET_REPLAY_SLOTS,
};

//! The device's configuration ([`DeviceConfig`], read once from the boot configuration) and the
//! server's tunables ([`ServerOptions`]).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use jos_abi::config::{Config, ConfigError, ConfigRepr, Policy};
use jos_abi::signature::TrustedSigner;
use jos_abi::wire::{self, MAX_FRAME_LEN};

use crate::noise;
use crate::ratelimit::{Rate, RateLimits};

/// The device's identity, trust lists and policy, owned (read once from the boot configuration).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Device name (in adverts).
    pub name: String,
    /// X25519 static secret of the Noise channel.
    pub noise_secret: [u8; 32],
    /// Ed25519 seed that signs adverts.
    pub advert_seed: [u8; 32],
    /// Static keys of the clients allowed to open a session.
    pub clients: Vec<[u8; 32]>,
    /// Code signers and their rights.
    pub signers: Vec<TrustedSigner>,
    /// Caps and defaults.
    pub policy: Policy,
}

impl core::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("name", &self.name)
            .field("clients", &self.clients.len())
            .field("signers", &self.signers.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DeviceConfig {
    /// Copies the parts of a parsed configuration the server uses.
    pub fn from_repr(repr: &ConfigRepr<'_>) -> Self {
        DeviceConfig {
            name: repr.name.to_string(),
            noise_secret: repr.noise_secret,
            advert_seed: repr.advert_seed,
            clients: (0..repr.clients.len()).filter_map(|i| repr.clients.get(i)).collect(),
            signers: (0..repr.signers.len()).filter_map(|i| repr.signers.get(i)).collect(),
            policy: repr.policy,
        }
    }

    /// Checks and parses a configuration image (the window at `CONFIG_ADDRESS` on the device).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config = Config::new_checked(bytes)?;
        let repr = ConfigRepr::parse(&config)?;
        Ok(DeviceConfig::from_repr(&repr))
    }

    /// The device's X25519 public key (the IK responder key).
    pub fn noise_public_key(&self) -> [u8; 32] {
        noise::public_key(&self.noise_secret)
    }
}

/// Tunables that are not in the boot configuration (`docs/security.md`, "Resource limits:
/// sessions and unauthenticated traffic", gives each value and what happens at it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Most sessions at once, authenticated or waiting for their handshake. A connection that
    /// finds them all taken evicts the unauthenticated one that waited longest, or, when every
    /// one is authenticated, is answered `Error(Busy)` and closed ([`Server::connect_from`](super::Server::connect_from)).
    pub max_sessions: usize,
    /// Microseconds a connection has, from its arrival, to complete its handshake; then it is
    /// reset ([`Counters::handshake_timeouts`](super::Counters::handshake_timeouts)).
    pub handshake_timeout_us: u64,
    /// Microseconds an authenticated session may send nothing while it has no job queued or
    /// running; then it is closed ([`Counters::idle_timeouts`](super::Counters::idle_timeouts)).
    pub idle_timeout_us: u64,
    /// Unsent bytes a session may hold: past this its client is not reading, and the session is
    /// reset ([`Counters::outbox_overflows`](super::Counters::outbox_overflows)).
    pub max_outbox: usize,
    /// Microseconds a session the device closed has to send what it has left (an Error, a
    /// result); then it is reset ([`Counters::flush_timeouts`](super::Counters::flush_timeouts)).
    pub flush_timeout_us: u64,
    /// Discovery probes answered, overall and per source address ([`Counters::probes_rate_limited`](super::Counters::probes_rate_limited)).
    pub probe_limits: RateLimits,
    /// Handshakes that reach the X25519 work and fail (untrusted keys, undecryptable Hellos),
    /// overall and per source address; a trusted client's handshake gives its token back
    /// ([`Counters::hellos_rate_limited`](super::Counters::hellos_rate_limited)).
    pub hello_limits: RateLimits,
    /// Fuel per slice (one slice per [`Server::poll`](super::Server::poll)).
    pub slice_fuel: u64,
    /// Microseconds between Progress messages while a job runs.
    pub progress_interval_us: u64,
    /// Handshake first messages remembered to refuse replays.
    pub replay_memory: usize,
    /// Bytes of native blobs kept for invoke by hash.
    pub native_cache_bytes: usize,
    /// TCP port named in adverts.
    pub port: u16,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_sessions: 8,
            handshake_timeout_us: 5_000_000,
            idle_timeout_us: 30_000_000,
            max_outbox: 2 * (MAX_FRAME_LEN + wire::FRAME_HEADER_LEN),
            flush_timeout_us: 5_000_000,
            probe_limits: RateLimits {
                global: Rate { burst: 64, per_second: 64 },
                per_source: Rate { burst: 32, per_second: 16 },
                sources: 16,
            },
            hello_limits: RateLimits {
                global: Rate { burst: 16, per_second: 8 },
                per_source: Rate { burst: 8, per_second: 2 },
                sources: 16,
            },
            slice_fuel: 100_000,
            progress_interval_us: 250_000,
            replay_memory: 1024,
            native_cache_bytes: 8 * 1024 * 1024,
            port: wire::OFFLOAD_PORT,
        }
    }
}

//! Answers to discovery probes: signed adverts, rate-limited.

use core::net::{IpAddr, Ipv4Addr};

use jos_abi::wire::discovery::{AdvertRepr, LoadState, Probe, PROBE_LEN};
use jos_abi::AbiVersion;

use super::{Platform, Server};

impl<P: Platform> Server<P> {
    /// Answers a discovery datagram from an unknown address ([`Server::discovery_from`] with
    /// 0.0.0.0).
    pub fn discovery(&mut self, datagram: &[u8], reply: &mut [u8]) -> Option<usize> {
        self.discovery_from(IpAddr::V4(Ipv4Addr::UNSPECIFIED), datagram, reply)
    }

    /// Answers a discovery datagram from `source`: `Some(len)` of the advert written into
    /// `reply`, `None` if the datagram is shorter than a probe (so the answer could be larger
    /// than the question), is not a valid probe, or the probe budget is spent
    /// ([`ServerOptions::probe_limits`](super::ServerOptions::probe_limits)); each is counted.
    pub fn discovery_from(&mut self, source: IpAddr, datagram: &[u8], reply: &mut [u8]) -> Option<usize> {
        if datagram.len() < PROBE_LEN {
            self.counters.probes_too_short += 1;
            return None;
        }
        let Ok(probe) = Probe::parse(datagram) else {
            self.counters.dropped_unauthenticated += 1;
            return None;
        };
        if !self.probe_limiter.allow(source, self.platform.now_us()) {
            self.counters.probes_rate_limited += 1;
            return None;
        }
        let advert = AdvertRepr {
            nonce: probe.nonce,
            abi_version: AbiVersion::CURRENT,
            formats: self.formats(),
            state: if self.running.is_some() { LoadState::Busy } else { LoadState::Idle },
            queued: u16::try_from(self.queue.len()).unwrap_or(u16::MAX),
            free_memory: self.platform.free_memory(),
            port: self.options.port,
            noise_key: self.noise_public,
            signing_key: self.advert_public,
            name: &self.config.name,
        };
        let len = advert.emit_signed(reply, &self.advert_key).ok()?;
        self.counters.adverts_sent += 1;
        Some(len)
    }

    /// The largest datagram [`Server::discovery`] writes.
    pub const MAX_ADVERT_LEN: usize = jos_abi::wire::discovery::ADVERT_FIXED_LEN + jos_abi::config::MAX_NAME_LEN;
}

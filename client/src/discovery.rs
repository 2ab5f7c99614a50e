//! Discovery: send a probe (UDP, unicast or broadcast) and collect the adverts that answer it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use jos_abi::wire::discovery::{Advert, AdvertRepr, LoadState, Probe, DISCOVERY_PORT, PROBE_LEN};
use jos_abi::wire::{Format, Formats};
use jos_abi::AbiVersion;

use super::ClientError;
use crate::store::{fingerprint, Key};

/// An advert, owned and checked (fields valid, signature verified by its own key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAdvert {
    /// Where the advert came from.
    pub from: SocketAddr,
    /// The device's name.
    pub name: String,
    /// The ABI it implements.
    pub abi_version: AbiVersion,
    /// Formats it accepts.
    pub formats: Formats,
    /// Whether it is running a job.
    pub busy: bool,
    /// Jobs waiting.
    pub queued: u16,
    /// Free heap in bytes.
    pub free_memory: u32,
    /// TCP port of its offload service.
    pub port: u16,
    /// Its Noise (X25519) static key.
    pub noise_key: Key,
    /// Its Ed25519 advert key.
    pub advert_key: Key,
}

impl DeviceAdvert {
    /// Checks a datagram: every field, the probe's nonce, the signature by the advert's own key.
    /// Whether that key is trusted is the caller's decision.
    pub fn from_datagram(bytes: &[u8], from: SocketAddr, nonce: u64) -> Result<Self, ClientError> {
        let protocol = |what: String| ClientError::Protocol(format!("advert from {from}: {what}"));
        let advert = Advert::new_checked(bytes).map_err(|error| protocol(error.to_string()))?;
        let repr = AdvertRepr::parse(&advert).map_err(|error| protocol(error.to_string()))?;
        if repr.nonce != nonce {
            return Err(protocol("stale (nonce does not match the probe)".into()));
        }
        if !advert.verify_signature() {
            return Err(ClientError::Untrusted(format!(
                "advert from {from} is not signed by the key it carries: not a jos device, or a forgery"
            )));
        }
        Ok(DeviceAdvert {
            from,
            name: repr.name.into(),
            abi_version: repr.abi_version,
            formats: repr.formats,
            busy: repr.state == LoadState::Busy,
            queued: repr.queued,
            free_memory: repr.free_memory,
            port: repr.port,
            noise_key: repr.noise_key,
            advert_key: repr.signing_key,
        })
    }

    /// The device's fingerprint (what `trust` takes).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.advert_key, &self.noise_key)
    }

    /// The formats as names (`wasm`, `native-armv6`).
    pub fn format_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.formats.accepts(Format::Wasm) {
            names.push("wasm");
        }
        if self.formats.accepts(Format::NativeArmv6) {
            names.push("native-armv6");
        }
        names
    }
}

/// Where to send the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// One address (port [`DISCOVERY_PORT`] unless given).
    Unicast(SocketAddr),
    /// The IPv4 limited broadcast `255.255.255.255:4747`.
    Broadcast,
}

/// Parses `IP` or `IP:PORT` (default port [`DISCOVERY_PORT`]); host names are resolved.
pub fn parse_address(text: &str, default_port: u16) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address);
    }
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, default_port));
    }
    let with_port = if text.contains(':') { text.to_string() } else { format!("{text}:{default_port}") };
    with_port.to_socket_addrs().ok()?.next()
}

/// What one probe round found: the good adverts, and the datagrams refused (with why).
#[derive(Debug, Default)]
pub struct Discovery {
    /// Checked adverts, one per device (first answer wins).
    pub adverts: Vec<DeviceAdvert>,
    /// Datagrams that were not valid adverts.
    pub refused: Vec<ClientError>,
}

/// Probes `targets` and collects adverts for `timeout`. With `stop_after_first`, returns as soon
/// as one valid advert arrived (unicast look-ups).
pub fn discover(targets: &[Target], timeout: Duration, stop_after_first: bool) -> Result<Discovery, ClientError> {
    let socket =
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|error| ClientError::Io(format!("UDP socket: {error}")))?;
    let mut nonce_bytes = [0u8; 8];
    crate::store::random_bytes(&mut nonce_bytes).map_err(|error| ClientError::Io(error.to_string()))?;
    let nonce = u64::from_le_bytes(nonce_bytes);
    let mut probe = [0u8; PROBE_LEN];
    Probe { nonce }.emit(&mut probe).map_err(|error| ClientError::Protocol(error.to_string()))?;
    for target in targets {
        let address = match target {
            Target::Unicast(address) => *address,
            Target::Broadcast => {
                socket.set_broadcast(true).map_err(|error| ClientError::Io(format!("broadcast: {error}")))?;
                SocketAddr::from((Ipv4Addr::BROADCAST, DISCOVERY_PORT))
            }
        };
        if let Err(error) = socket.send_to(&probe, address) {
            // An unroutable broadcast (no interface) is not fatal when other targets exist.
            if targets.len() == 1 {
                return Err(ClientError::Unreachable(format!("cannot send a probe to {address}: {error}")));
            }
        }
    }
    let deadline = Instant::now() + timeout;
    let mut found = Discovery::default();
    let mut buffer = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        socket.set_read_timeout(Some(deadline - now)).map_err(|error| ClientError::Io(error.to_string()))?;
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                break
            }
            // ICMP port unreachable from a unicast target shows up as ConnectionRefused on Linux.
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(error) => return Err(ClientError::Io(format!("receiving adverts: {error}"))),
        };
        match DeviceAdvert::from_datagram(&buffer[..len], from, nonce) {
            Ok(advert) => {
                if !found.adverts.iter().any(|known| known.advert_key == advert.advert_key) {
                    found.adverts.push(advert);
                }
                if stop_after_first {
                    break;
                }
            }
            Err(error) => found.refused.push(error),
        }
    }
    Ok(found)
}

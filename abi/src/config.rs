//! The device boot configuration: identity keys, network, trusted keys and policy.
//!
//! `jos-cli provision` writes it; QEMU's generic loader
//! (`-device loader,file=config.bin,addr=0x01F00000,force-raw=on`) or a real Pi's
//! `initramfs config.bin 0x01F00000` line in `config.txt` puts it at [`CONFIG_ADDRESS`], where the
//! kernel reads it at boot. A 44-byte header (magic, version, header length, body length, SHA-256
//! of the body) guards it; the body follows. Layout and checks: `docs/formats.md`.
//!
//! Optional sections may follow the policy (`docs/formats.md`): each a tag (u8), a length (u16)
//! and that many bytes, tags strictly increasing, so every section appears at most once. Tag 1
//! ([`SECTION_BROKER`]) is the fleet's MQTT broker ([`crate::fleet::BrokerSettings`]), tag 2
//! ([`SECTION_FLEET_KEY`]) the fleet's X25519 secret ([`FleetKey`]), which opens job inputs. A
//! configuration without sections is the same bytes as before sections existed. [`Sections`]
//! reads them; [`ConfigRepr::emit_with`] writes them.
//!
//! Keys: the device has two, as the offload issue allows: an X25519 static secret for the Noise IK
//! channel and an Ed25519 seed that signs discovery adverts. Deriving one from the other would
//! save 32 bytes but tie the channel and the advert signature to one secret and need a birational
//! map the crates do not expose; two independent keys are simpler to audit.
//!
//! [`Config::new_checked`] validates the header, the checksum and every body field (lengths,
//! counts, UTF-8, network settings, signer rights, policy caps) and every key ([`check_keys`]:
//! strong signer and client keys, no duplicates, device secrets that are not zero and not reused);
//! afterwards no accessor can panic. A configuration with one weak key is refused whole: the
//! kernel then reports the reason and accepts nothing, rather than run with a trust list other
//! than the one written. The buffer may be longer than the configuration (the kernel passes a
//! fixed-size window of memory).

use core::fmt;

use crate::codec::{Cursor, List, Record, Writer};
use crate::error::ErrorCode;
use crate::fleet::BrokerSettings;
use crate::signature::{check_signer_key, public_key, sha256, SignerRights, TrustedSigner, WeakKey};
use crate::wire::{Limits, MAX_OUTPUT_LEN};

/// Physical address where the boot loader (QEMU's loader device, or the Pi firmware's
/// `initramfs` line) places the configuration: 31 MiB, above the kernel image and below its heap.
pub const CONFIG_ADDRESS: usize = 0x01F0_0000;
/// The most bytes the kernel reads at [`CONFIG_ADDRESS`]; a configuration is never longer.
pub const CONFIG_MAX_LEN: usize = 64 * 1024;
/// The magic at offset 0.
pub const MAGIC: [u8; 4] = *b"JOSC";
/// The format version (2: the policy gained the job port range; signer rights gained the
/// capability bits).
pub const VERSION: u16 = 2;
/// Length of the header.
pub const HEADER_LEN: usize = 44;
/// The longest device name, in bytes of UTF-8 (as in discovery adverts).
pub const MAX_NAME_LEN: usize = crate::wire::discovery::MAX_NAME_LEN;
/// Section tag of the fleet's broker settings ([`Sections::broker`]).
pub const SECTION_BROKER: u8 = 1;
/// Section tag of the fleet key ([`Sections::fleet_key`]).
pub const SECTION_FLEET_KEY: u8 = 2;
/// Most trusted client keys.
pub const MAX_CLIENTS: usize = 32;
/// Most trusted signers.
pub const MAX_SIGNERS: usize = 32;
/// The largest [`Policy::max_module_len`]: 16 MiB. Every session may reserve a push buffer of
/// the module cap at once (8 sessions: 128 MiB), which must stay well inside the heap of the
/// smallest board (a Pi 1 with 256 MiB of RAM).
pub const MAX_MODULE_LEN: u32 = 16 << 20;
/// The largest [`Policy::queue_len`]: 64. Each queued request holds its input (up to one frame,
/// 64 KiB): 4 MiB at most.
pub const MAX_QUEUE_LEN: u16 = 64;

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ConfigError {
    /// Shorter than its header or than header plus body length.
    Truncated = 1,
    /// The magic is not `JOSC` (for example: nothing was loaded).
    BadMagic = 2,
    /// A version this crate does not read.
    UnsupportedVersion = 3,
    /// The header length field is not 44.
    BadHeaderLen = 4,
    /// The body length is more than [`CONFIG_MAX_LEN`] allows.
    TooLong = 5,
    /// The body's SHA-256 does not match the header (corrupt).
    BadChecksum = 6,
    /// The name is empty, too long or not UTF-8.
    BadName = 7,
    /// Unknown network mode, prefix length over 32, a static address of 0.0.0.0, or non-zero
    /// address bytes with DHCP.
    BadNetwork = 8,
    /// More than [`MAX_CLIENTS`] client keys or [`MAX_SIGNERS`] signers.
    TooMany = 9,
    /// A signer with no rights or an unknown rights bit.
    BadRights = 10,
    /// A signer key that is not an Ed25519 point.
    BadKey = 11,
    /// A policy cap of zero, an output cap over the wire's [`MAX_OUTPUT_LEN`], a module cap over
    /// [`MAX_MODULE_LEN`], a queue over [`MAX_QUEUE_LEN`], or a job port range that is empty,
    /// holds port 0 or one of the device's own ports.
    BadPolicy = 12,
    /// Bytes left in the body after the last field. (Kept for its code: since sections exist,
    /// bytes after the policy read as a section and a stray byte gives [`ConfigError::BadSection`].)
    TrailingBytes = 13,
    /// (emit only) the buffer is too small or a field is over its cap.
    BufferTooSmall = 14,
    /// A signer key no honest signer has ([`check_signer_key`]): small order (signatures under
    /// it can be forged), a small-order component, or a non-canonical encoding.
    WeakSignerKey = 15,
    /// A client key of low order on Curve25519 or its twist (the Noise `ss` term with it is
    /// all-zero, so anyone could complete that client's handshake), or not in canonical form
    /// ([`is_strong_x25519_key`]).
    WeakClientKey = 16,
    /// The Noise secret is zero once clamped or the advert seed is all zero (keys nobody
    /// generated), the two are the same bytes, or the advert key is also a code signer.
    WeakDeviceKey = 17,
    /// The same client key, or the same signer key, twice.
    DuplicateKey = 18,
    /// A section after the policy with an unknown tag, a tag not above the one before it, or a
    /// length past the end of the body.
    BadSection = 19,
    /// The broker section does not parse ([`crate::fleet::BrokerSettings::parse`] says why).
    BadBroker = 20,
    /// The fleet key section is not 32 bytes, or the key is zero once clamped.
    BadFleetKey = 21,
}

impl ConfigError {
    /// The code this error is reported with.
    pub const fn code(self) -> ErrorCode {
        match self {
            ConfigError::UnsupportedVersion => ErrorCode::Unsupported,
            ConfigError::BufferTooSmall => ErrorCode::InvalidArgument,
            _ => ErrorCode::Malformed,
        }
    }

    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            ConfigError::Truncated => "configuration truncated",
            ConfigError::BadMagic => "no configuration (bad magic)",
            ConfigError::UnsupportedVersion => "unsupported configuration version",
            ConfigError::BadHeaderLen => "bad configuration header length",
            ConfigError::TooLong => "configuration too long",
            ConfigError::BadChecksum => "configuration checksum mismatch",
            ConfigError::BadName => "bad device name",
            ConfigError::BadNetwork => "bad network settings",
            ConfigError::TooMany => "too many trusted keys",
            ConfigError::BadRights => "bad signer rights",
            ConfigError::BadKey => "invalid signer key (not an Ed25519 point)",
            ConfigError::WeakSignerKey => "weak signer key (small order, mixed order or non-canonical)",
            ConfigError::WeakClientKey => "weak client key (low order or non-canonical X25519 key)",
            ConfigError::WeakDeviceKey => "weak device key (zero secret, or a key used twice)",
            ConfigError::DuplicateKey => "duplicate client or signer key",
            ConfigError::BadPolicy => "bad policy caps",
            ConfigError::TrailingBytes => "trailing bytes in configuration",
            ConfigError::BufferTooSmall => "buffer too small",
            ConfigError::BadSection => "unknown, repeated or truncated configuration section",
            ConfigError::BadBroker => "bad broker settings",
            ConfigError::BadFleetKey => "bad fleet key (32 bytes, not zero)",
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// How the device gets its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Ask a DHCP server.
    Dhcp,
    /// A fixed address.
    Static {
        /// The device's address.
        address: [u8; 4],
        /// Network prefix length (0..=32).
        prefix_len: u8,
        /// The default gateway (0.0.0.0 for none).
        gateway: [u8; 4],
    },
}

impl Network {
    /// Encoded size: mode, address, prefix length, gateway.
    pub const LEN: usize = 10;

    fn read(cursor: &mut Cursor<'_>) -> Result<Self, ConfigError> {
        let bytes: [u8; Self::LEN] = cursor.array().ok_or(ConfigError::Truncated)?;
        let address = [bytes[1], bytes[2], bytes[3], bytes[4]];
        let prefix_len = bytes[5];
        let gateway = [bytes[6], bytes[7], bytes[8], bytes[9]];
        match bytes[0] {
            0 if bytes[1..].iter().all(|byte| *byte == 0) => Ok(Network::Dhcp),
            1 if prefix_len <= 32 && address != [0; 4] => Ok(Network::Static { address, prefix_len, gateway }),
            _ => Err(ConfigError::BadNetwork),
        }
    }

    fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        match self {
            Network::Dhcp => writer.bytes(&[0; Self::LEN]),
            Network::Static { address, prefix_len, gateway } => {
                writer.u8(1)?;
                writer.bytes(address)?;
                writer.u8(*prefix_len)?;
                writer.bytes(gateway)
            }
        }
    }
}

/// The most a request may ask for on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// The largest module or blob accepted, in bytes.
    pub max_module_len: u32,
    /// Caps (and defaults) for job limits; every field non-zero, output at most
    /// [`MAX_OUTPUT_LEN`].
    pub limits: Limits,
    /// Most jobs waiting; beyond it requests get `Busy`.
    pub queue_len: u16,
    /// The UDP ports jobs holding the network capability may bind; never one of the device's own
    /// ports ([`DEVICE_PORTS`]).
    pub job_ports: PortRange,
}

/// UDP ports the device itself uses (echo 7, the DHCP client 68, discovery 4747, offload 4748):
/// a [`Policy::job_ports`] range may not include them.
pub const DEVICE_PORTS: [u16; 4] = [7, 68, crate::wire::discovery::DISCOVERY_PORT, crate::wire::OFFLOAD_PORT];

/// An inclusive range of UDP ports, `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// The lowest port of the range (non-zero).
    pub first: u16,
    /// The highest port of the range (at least `first`).
    pub last: u16,
}

impl PortRange {
    /// The range `jos-cli provision` grants when not told otherwise: 7000..=7099.
    pub const DEFAULT: PortRange = PortRange { first: 7000, last: 7099 };

    /// Whether `port` is in the range.
    pub const fn contains(self, port: u16) -> bool {
        port >= self.first && port <= self.last
    }

    /// Whether the range is usable: non-empty, without port 0 and without the device's own ports.
    pub fn is_valid(self) -> bool {
        self.first != 0 && self.first <= self.last && !DEVICE_PORTS.iter().any(|port| self.contains(*port))
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::DEFAULT
    }
}

impl Policy {
    /// Encoded size.
    pub const LEN: usize = 4 + Limits::LEN + 2 + 4;

    fn read(cursor: &mut Cursor<'_>) -> Result<Self, ConfigError> {
        let truncated = ConfigError::Truncated;
        let policy = Policy {
            max_module_len: cursor.u32().ok_or(truncated)?,
            limits: Limits {
                fuel: cursor.u64().ok_or(truncated)?,
                memory: cursor.u32().ok_or(truncated)?,
                deadline_ms: cursor.u32().ok_or(truncated)?,
                output: cursor.u32().ok_or(truncated)?,
            },
            queue_len: cursor.u16().ok_or(truncated)?,
            job_ports: PortRange { first: cursor.u16().ok_or(truncated)?, last: cursor.u16().ok_or(truncated)? },
        };
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let limits = self.limits;
        let positive = self.max_module_len > 0
            && limits.fuel > 0
            && limits.memory > 0
            && limits.deadline_ms > 0
            && limits.output > 0
            && self.queue_len > 0;
        let bounded = limits.output as usize <= MAX_OUTPUT_LEN
            && self.max_module_len <= MAX_MODULE_LEN
            && self.queue_len <= MAX_QUEUE_LEN;
        if positive && bounded && self.job_ports.is_valid() {
            Ok(())
        } else {
            Err(ConfigError::BadPolicy)
        }
    }

    fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u32(self.max_module_len)?;
        writer.u64(self.limits.fuel)?;
        writer.u32(self.limits.memory)?;
        writer.u32(self.limits.deadline_ms)?;
        writer.u32(self.limits.output)?;
        writer.u16(self.queue_len)?;
        writer.u16(self.job_ports.first)?;
        writer.u16(self.job_ports.last)
    }
}

impl Record for TrustedSigner {
    const LEN: usize = 36;

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut cursor = Cursor::new(bytes);
        let public_key = cursor.array()?;
        let rights = SignerRights::from_bits(cursor.u32()?)?;
        Some(TrustedSigner { public_key, rights })
    }

    fn encode(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.bytes(&self.public_key)?;
        writer.u32(self.rights.bits())
    }
}

/// The configuration's contents (the `Repr`). `Debug` does not print the secrets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConfigRepr<'a> {
    /// The device's name (1..=32 bytes of UTF-8).
    pub name: &'a str,
    /// The X25519 static secret of the device's Noise channel.
    pub noise_secret: [u8; 32],
    /// The Ed25519 seed that signs the device's adverts.
    pub advert_seed: [u8; 32],
    /// Network settings.
    pub network: Network,
    /// X25519 static public keys of the clients allowed to connect.
    pub clients: List<'a, [u8; 32]>,
    /// Code signers and their rights.
    pub signers: List<'a, TrustedSigner>,
    /// Caps on requests.
    pub policy: Policy,
}

impl fmt::Debug for ConfigRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigRepr")
            .field("name", &self.name)
            .field("noise_secret", &"<secret>")
            .field("advert_seed", &"<secret>")
            .field("network", &self.network)
            .field("clients", &self.clients)
            .field("signers", &self.signers)
            .field("policy", &self.policy)
            .finish()
    }
}

/// The Curve25519 u-coordinates of low order (on the curve or its twist), bit 255 clear: 0 and
/// the identity, 1 (order 4), two points of order 8, p - 1 (order 4 on the twist), and p and
/// p + 1, the non-canonical names of 0 and 1 (RFC 7748 section 7; the list libsodium refuses).
/// X25519 of a clamped secret with any of them is all-zero.
pub const LOW_ORDER_X25519: [[u8; 32]; 7] = {
    let mut points = [[0u8; 32]; 7];
    points[1][0] = 1;
    points[2] = [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
        0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ];
    points[3] = [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44,
        0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ];
    let mut index = 4;
    while index < 7 {
        let mut point = [0xff; 32];
        point[0] = 0xec + (index as u8 - 4); // p - 1, p, p + 1
        point[31] = 0x7f;
        points[index] = point;
        index += 1;
    }
    points
};

/// Whether `key` is an X25519 public key a key pair can have: its canonical encoding (bit 255
/// clear, u below p = 2^255 - 19) and not of low order ([`LOW_ORDER_X25519`]). Every key an X25519
/// secret yields passes. Client keys in the configuration must pass; `jos-cli` also checks a
/// device's Noise key with it before pinning.
pub fn is_strong_x25519_key(key: &[u8; 32]) -> bool {
    let below_p = key[31] < 0x7f || key[1..31].iter().any(|byte| *byte != 0xff) || key[0] < 0xed;
    key[31] & 0x80 == 0 && below_p && !LOW_ORDER_X25519.contains(key)
}

/// Whether an X25519 secret is zero once clamped (bits 0-2 and 255 cleared, bit 254 set): such a
/// secret is the same key as the all-zero one, which nobody generated.
fn is_zero_secret(secret: &[u8; 32]) -> bool {
    secret[0] & 0xf8 == 0 && secret[1..31].iter().all(|byte| *byte == 0) && secret[31] & 0x3f == 0
}

/// The key checks of a configuration, shared by [`Config::new_checked`] and
/// [`ConfigRepr::emit`]: signer keys pass [`check_signer_key`] (`BadKey`, `WeakSignerKey`), client
/// keys [`is_strong_x25519_key`] (`WeakClientKey`), no key appears twice in its list
/// (`DuplicateKey`), and the device's own keys are not zero, not equal, and the advert key is not
/// a signer (`WeakDeviceKey`). Costs one scalar multiplication per signer, plus one for the
/// advert key when there are signers.
pub fn check_keys(
    noise_secret: &[u8; 32],
    advert_seed: &[u8; 32],
    clients: List<'_, [u8; 32]>,
    signers: List<'_, TrustedSigner>,
) -> Result<(), ConfigError> {
    if is_zero_secret(noise_secret) || *advert_seed == [0; 32] || noise_secret == advert_seed {
        return Err(ConfigError::WeakDeviceKey);
    }
    for (index, client) in clients.iter().enumerate() {
        if !is_strong_x25519_key(&client) {
            return Err(ConfigError::WeakClientKey);
        }
        if clients.iter().take(index).any(|earlier| earlier == client) {
            return Err(ConfigError::DuplicateKey);
        }
    }
    for (index, signer) in signers.iter().enumerate() {
        match check_signer_key(&signer.public_key) {
            Ok(()) => {}
            Err(WeakKey::NotAPoint) => return Err(ConfigError::BadKey),
            Err(_) => return Err(ConfigError::WeakSignerKey),
        }
        if signers.iter().take(index).any(|earlier| earlier.public_key == signer.public_key) {
            return Err(ConfigError::DuplicateKey);
        }
    }
    if !signers.is_empty() {
        let advert_key = public_key(advert_seed);
        if signers.iter().any(|signer| signer.public_key == advert_key) {
            return Err(ConfigError::WeakDeviceKey);
        }
    }
    Ok(())
}

/// The fleet's X25519 secret (section [`SECTION_FLEET_KEY`]): every device of a fleet has it,
/// and job inputs are sealed to its public key (`jos_abi::fleet_job`). `Debug` does not print it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FleetKey(pub [u8; 32]);

impl FleetKey {
    /// Checks the key: not zero once clamped ([`ConfigError::BadFleetKey`]).
    pub fn check(&self) -> Result<(), ConfigError> {
        if is_zero_secret(&self.0) {
            return Err(ConfigError::BadFleetKey);
        }
        Ok(())
    }
}

impl fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FleetKey(<secret>)")
    }
}

/// The optional sections after the policy. The default has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sections<'a> {
    /// The fleet's MQTT broker (section [`SECTION_BROKER`]); `None`: the device joins no fleet.
    pub broker: Option<BrokerSettings<'a>>,
    /// The fleet key (section [`SECTION_FLEET_KEY`]); `None`: the device refuses fleet jobs
    /// (counted as malformed).
    pub fleet_key: Option<FleetKey>,
}

impl<'a> Sections<'a> {
    /// Reads the sections of a checked configuration.
    pub fn parse<T: AsRef<[u8]>>(config: &'a Config<T>) -> Result<Self, ConfigError> {
        parse_all(config.checked_body()?).map(|(_, sections)| sections)
    }

    fn read(cursor: &mut Cursor<'a>) -> Result<Self, ConfigError> {
        let mut sections = Sections::default();
        let mut last_tag = 0;
        while !cursor.is_empty() {
            let tag = cursor.u8().ok_or(ConfigError::BadSection)?;
            let len = usize::from(cursor.u16().ok_or(ConfigError::BadSection)?);
            let bytes = cursor.take(len).ok_or(ConfigError::BadSection)?;
            if tag <= last_tag {
                return Err(ConfigError::BadSection);
            }
            last_tag = tag;
            match tag {
                SECTION_BROKER => {
                    sections.broker = Some(BrokerSettings::parse(bytes).map_err(|_| ConfigError::BadBroker)?);
                }
                SECTION_FLEET_KEY => {
                    let key = FleetKey(bytes.try_into().map_err(|_| ConfigError::BadFleetKey)?);
                    key.check()?;
                    sections.fleet_key = Some(key);
                }
                _ => return Err(ConfigError::BadSection),
            }
        }
        Ok(sections)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(broker) = self.broker {
            broker.check().map_err(|_| ConfigError::BadBroker)?;
        }
        self.fleet_key.map_or(Ok(()), |key| key.check())
    }

    /// Encoded length of every section.
    fn len(&self) -> usize {
        self.broker.map_or(0, |broker| 3 + broker.buffer_len()) + self.fleet_key.map_or(0, |_| 3 + 32)
    }

    fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        if let Some(broker) = self.broker {
            writer.u8(SECTION_BROKER)?;
            writer.u16(u16::try_from(broker.buffer_len()).ok()?)?;
            broker.write(writer)?;
        }
        if let Some(key) = self.fleet_key {
            writer.u8(SECTION_FLEET_KEY)?;
            writer.u16(32)?;
            writer.bytes(&key.0)?;
        }
        Some(())
    }
}

/// Parses and validates a body.
fn parse_body(body: &[u8]) -> Result<ConfigRepr<'_>, ConfigError> {
    parse_all(body).map(|(repr, _)| repr)
}

/// Parses and validates a body and its sections.
fn parse_all(body: &[u8]) -> Result<(ConfigRepr<'_>, Sections<'_>), ConfigError> {
    use ConfigError::Truncated;
    let mut cursor = Cursor::new(body);
    let name_len = usize::from(cursor.u8().ok_or(Truncated)?);
    let name = cursor.take(name_len).ok_or(Truncated)?;
    let name = core::str::from_utf8(name).map_err(|_| ConfigError::BadName)?;
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ConfigError::BadName);
    }
    let noise_secret = cursor.array().ok_or(Truncated)?;
    let advert_seed = cursor.array().ok_or(Truncated)?;
    let network = Network::read(&mut cursor)?;

    let client_count = usize::from(cursor.u8().ok_or(Truncated)?);
    if client_count > MAX_CLIENTS {
        return Err(ConfigError::TooMany);
    }
    let clients = List::checked(cursor.take(client_count * 32).ok_or(Truncated)?).ok_or(Truncated)?;

    let signer_count = usize::from(cursor.u8().ok_or(Truncated)?);
    if signer_count > MAX_SIGNERS {
        return Err(ConfigError::TooMany);
    }
    let signer_bytes = cursor.take(signer_count * TrustedSigner::LEN).ok_or(Truncated)?;
    for record in signer_bytes.chunks_exact(TrustedSigner::LEN) {
        let rights = u32::from_le_bytes(record[32..].try_into().map_err(|_| Truncated)?);
        if !SignerRights::from_bits(rights).is_some_and(signs_a_format) {
            return Err(ConfigError::BadRights);
        }
    }
    let signers = List::checked(signer_bytes).ok_or(ConfigError::BadRights)?;

    let policy = Policy::read(&mut cursor)?;
    let sections = Sections::read(&mut cursor)?;
    check_keys(&noise_secret, &advert_seed, clients, signers)?;
    Ok((ConfigRepr { name, noise_secret, advert_seed, network, clients, signers, policy }, sections))
}

/// A signer must be allowed at least one format: capability bits alone sign nothing.
fn signs_a_format(rights: SignerRights) -> bool {
    rights.contains(SignerRights::WASM) || rights.contains(SignerRights::NATIVE)
}

/// A checked view of a configuration at the start of a buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Config<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> fmt::Debug for Config<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config").field("total_len", &self.total_len()).finish_non_exhaustive()
    }
}

impl<T: AsRef<[u8]>> Config<T> {
    /// Validates header, checksum and body; bytes after the configuration are ignored.
    pub fn new_checked(buffer: T) -> Result<Self, ConfigError> {
        let config = Config { buffer };
        parse_body(config.checked_body()?)?;
        Ok(config)
    }

    fn checked_body(&self) -> Result<&[u8], ConfigError> {
        let bytes = self.buffer.as_ref();
        let mut cursor = Cursor::new(bytes);
        let magic = cursor.array::<4>().ok_or(ConfigError::Truncated)?;
        if magic != MAGIC {
            return Err(ConfigError::BadMagic);
        }
        if cursor.u16().ok_or(ConfigError::Truncated)? != VERSION {
            return Err(ConfigError::UnsupportedVersion);
        }
        if usize::from(cursor.u16().ok_or(ConfigError::Truncated)?) != HEADER_LEN {
            return Err(ConfigError::BadHeaderLen);
        }
        let body_len = cursor.u32().ok_or(ConfigError::Truncated)? as usize;
        if body_len > CONFIG_MAX_LEN - HEADER_LEN {
            return Err(ConfigError::TooLong);
        }
        let checksum: [u8; 32] = cursor.array().ok_or(ConfigError::Truncated)?;
        let body = cursor.take(body_len).ok_or(ConfigError::Truncated)?;
        if sha256(body) != checksum {
            return Err(ConfigError::BadChecksum);
        }
        Ok(body)
    }

    /// Header plus body length.
    pub fn total_len(&self) -> usize {
        self.body().len() + HEADER_LEN
    }

    /// The body (empty on an unchecked buffer that does not hold one).
    pub fn body(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let len = bytes.get(8..12).map_or(0, |len| u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize);
        HEADER_LEN.checked_add(len).and_then(|end| bytes.get(HEADER_LEN..end)).unwrap_or(&[])
    }
}

impl<'a> ConfigRepr<'a> {
    /// Reads a checked configuration.
    pub fn parse<T: AsRef<[u8]>>(config: &'a Config<T>) -> Result<Self, ConfigError> {
        parse_body(config.checked_body()?)
    }

    fn body_len(&self) -> usize {
        1 + self.name.len()
            + 64
            + Network::LEN
            + 1
            + 32 * self.clients.len()
            + 1
            + TrustedSigner::LEN * self.signers.len()
            + Policy::LEN
    }

    /// Encoded length, header included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    /// Encoded length with these sections, header included.
    pub fn buffer_len_with(&self, sections: &Sections<'_>) -> usize {
        self.buffer_len() + sections.len()
    }

    /// [`ConfigRepr::emit`] followed by the sections (checked as the parser checks them:
    /// [`ConfigError::BadBroker`] for broker settings it would refuse).
    pub fn emit_with(&self, sections: &Sections<'_>, buffer: &mut [u8]) -> Result<usize, ConfigError> {
        sections.check()?;
        let len = self.buffer_len_with(sections);
        // Check the rest first, into the front of the buffer, then move the body's end on.
        let core = self.emit(buffer)?;
        let out = buffer.get_mut(..len).ok_or(ConfigError::BufferTooSmall)?;
        let mut writer = Writer::new(&mut out[core..]);
        sections.write(&mut writer).ok_or(ConfigError::BufferTooSmall)?;
        let (header, body) = out.split_at_mut(HEADER_LEN);
        header[8..12].copy_from_slice(&(body.len() as u32).to_le_bytes());
        header[12..HEADER_LEN].copy_from_slice(&sha256(body));
        Ok(len)
    }

    /// Writes the configuration with its checksum; returns its length. Refuses fields over
    /// their caps, signers without a format right and weak or repeated keys (with
    /// [`ConfigError::BufferTooSmall`] for a short buffer, or the error [`Config::new_checked`]
    /// would report).
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, ConfigError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(ConfigError::BadName);
        }
        if self.clients.len() > MAX_CLIENTS || self.signers.len() > MAX_SIGNERS {
            return Err(ConfigError::TooMany);
        }
        if !self.signers.iter().all(|signer| signs_a_format(signer.rights)) {
            return Err(ConfigError::BadRights);
        }
        self.policy.check()?;
        check_keys(&self.noise_secret, &self.advert_seed, self.clients, self.signers)?;
        let len = self.buffer_len();
        let out = buffer.get_mut(..len).ok_or(ConfigError::BufferTooSmall)?;
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let mut writer = Writer::new(body);
        self.write_body(&mut writer).ok_or(ConfigError::BufferTooSmall)?;
        let mut writer = Writer::new(header);
        writer.bytes(&MAGIC).ok_or(ConfigError::BufferTooSmall)?;
        writer.u16(VERSION).ok_or(ConfigError::BufferTooSmall)?;
        writer.u16(HEADER_LEN as u16).ok_or(ConfigError::BufferTooSmall)?;
        writer.u32(body.len() as u32).ok_or(ConfigError::BufferTooSmall)?;
        writer.bytes(&sha256(body)).ok_or(ConfigError::BufferTooSmall)?;
        Ok(len)
    }

    fn write_body(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.u8(self.name.len() as u8)?;
        writer.bytes(self.name.as_bytes())?;
        writer.bytes(&self.noise_secret)?;
        writer.bytes(&self.advert_seed)?;
        self.network.write(writer)?;
        writer.u8(self.clients.len() as u8)?;
        self.clients.encode(writer)?;
        writer.u8(self.signers.len() as u8)?;
        self.signers.encode(writer)?;
        self.policy.write(writer)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::VerifyingKey;

    use super::*;

    fn policy() -> Policy {
        Policy {
            max_module_len: 4 << 20,
            limits: Limits { fuel: 1_000_000_000, memory: 16 << 20, deadline_ms: 10_000, output: 16384 },
            queue_len: 4,
            job_ports: PortRange { first: 7000, last: 7099 },
        }
    }

    #[test]
    fn golden_round_trip() {
        let clients = [[0x41; 32]];
        let signers = [TrustedSigner { public_key: public_key(&[1; 32]), rights: SignerRights::ALL }];
        let repr = ConfigRepr {
            name: "pi",
            noise_secret: [0xaa; 32],
            advert_seed: [0xbb; 32],
            network: Network::Static { address: [10, 0, 2, 15], prefix_len: 24, gateway: [10, 0, 2, 2] },
            clients: List::from_slice(&clients),
            signers: List::from_slice(&signers),
            policy: policy(),
        };
        let mut buffer = vec![0u8; repr.buffer_len() + 10];
        let len = repr.emit(&mut buffer).unwrap();
        assert_eq!(len, HEADER_LEN + 3 + 64 + 10 + 33 + 37 + Policy::LEN);

        let mut body = vec![2, b'p', b'i'];
        body.extend_from_slice(&[0xaa; 32]);
        body.extend_from_slice(&[0xbb; 32]);
        body.extend_from_slice(&[1, 10, 0, 2, 15, 24, 10, 0, 2, 2, 1]);
        body.extend_from_slice(&[0x41; 32]);
        body.push(1);
        body.extend_from_slice(&signers[0].public_key);
        body.extend_from_slice(&[0x1f, 0, 0, 0]);
        body.extend_from_slice(&(4u32 << 20).to_le_bytes());
        body.extend_from_slice(&1_000_000_000u64.to_le_bytes());
        body.extend_from_slice(&(16u32 << 20).to_le_bytes());
        body.extend_from_slice(&10_000u32.to_le_bytes());
        body.extend_from_slice(&16384u32.to_le_bytes());
        body.extend_from_slice(&4u16.to_le_bytes());
        body.extend_from_slice(&7000u16.to_le_bytes());
        body.extend_from_slice(&7099u16.to_le_bytes());
        let mut golden = vec![b'J', b'O', b'S', b'C', 2, 0, 44, 0];
        golden.extend_from_slice(&(body.len() as u32).to_le_bytes());
        golden.extend_from_slice(&sha256(&body));
        golden.extend_from_slice(&body);
        assert_eq!(&buffer[..len], &golden[..]);

        // Bytes after the configuration (the rest of the kernel's memory window) are ignored.
        buffer[len..].fill(0xee);
        let config = Config::new_checked(&buffer[..]).unwrap();
        assert_eq!(config.total_len(), len);
        assert_eq!(ConfigRepr::parse(&config), Ok(repr));
        let debug = format!("{repr:?}");
        assert!(!debug.contains(&format!("{:?}", repr.noise_secret)), "secrets stay out of Debug output");
        assert!(!debug.contains(&format!("{:?}", repr.advert_seed)));

        for cut in 0..len {
            assert!(Config::new_checked(&golden[..cut]).is_err(), "length {cut}");
        }
    }

    /// Builds a configuration from a raw body with a correct header.
    fn with_body(body: &[u8]) -> Vec<u8> {
        let mut bytes = vec![b'J', b'O', b'S', b'C', 2, 0, 44, 0];
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&sha256(body));
        bytes.extend_from_slice(body);
        bytes
    }

    fn body(name: &[u8], network: [u8; 10], clients: u8, signer: Option<([u8; 32], u32)>, policy: &Policy) -> Vec<u8> {
        let mut body = vec![name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[0x0a; 32]);
        body.extend_from_slice(&[0x0b; 32]);
        body.extend_from_slice(&network);
        body.push(clients);
        body.extend(std::iter::repeat_n(0x42, 32 * usize::from(clients.min(40))));
        match signer {
            None => body.push(0),
            Some((key, rights)) => {
                body.push(1);
                body.extend_from_slice(&key);
                body.extend_from_slice(&rights.to_le_bytes());
            }
        }
        let mut writer_buffer = [0u8; Policy::LEN];
        policy.write(&mut Writer::new(&mut writer_buffer)).unwrap();
        body.extend_from_slice(&writer_buffer);
        body
    }

    #[test]
    fn every_check() {
        let dhcp = [0u8; 10];
        let good_key = public_key(&[1; 32]);
        let ok = with_body(&body(b"pi", dhcp, 1, Some((good_key, 1)), &policy()));
        assert!(Config::new_checked(&ok[..]).is_ok());

        let mut header_cases: Vec<(Vec<u8>, ConfigError)> = Vec::new();
        let mut bad = ok.clone();
        bad[0] = 0;
        header_cases.push((bad, ConfigError::BadMagic));
        let mut bad = ok.clone();
        bad[4] = 1; // a version-1 configuration (before job ports and capability rights)
        header_cases.push((bad, ConfigError::UnsupportedVersion));
        let mut bad = ok.clone();
        bad[4] = 3;
        header_cases.push((bad, ConfigError::UnsupportedVersion));
        let mut bad = ok.clone();
        bad[6] = 40;
        header_cases.push((bad, ConfigError::BadHeaderLen));
        let mut bad = ok.clone();
        bad[8..12].copy_from_slice(&(CONFIG_MAX_LEN as u32).to_le_bytes());
        header_cases.push((bad, ConfigError::TooLong));
        let mut bad = ok.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        header_cases.push((bad, ConfigError::TooLong));
        let mut bad = ok.clone();
        *bad.last_mut().unwrap() ^= 1;
        header_cases.push((bad, ConfigError::BadChecksum));
        let mut bad = ok.clone();
        bad[20] ^= 1;
        header_cases.push((bad, ConfigError::BadChecksum));
        header_cases.push((vec![0; 4], ConfigError::BadMagic));
        header_cases.push((Vec::new(), ConfigError::Truncated));
        for (bytes, expected) in header_cases {
            assert_eq!(Config::new_checked(&bytes[..]).map(|_| ()), Err(expected));
        }

        let zero_fuel = Policy { limits: Limits { fuel: 0, ..policy().limits }, ..policy() };
        let big_output = Policy { limits: Limits { output: MAX_OUTPUT_LEN as u32 + 1, ..policy().limits }, ..policy() };
        let no_queue = Policy { queue_len: 0, ..policy() };
        let long_queue = Policy { queue_len: MAX_QUEUE_LEN + 1, ..policy() };
        let huge_modules = Policy { max_module_len: MAX_MODULE_LEN + 1, ..policy() };
        let at_the_caps = Policy { queue_len: MAX_QUEUE_LEN, max_module_len: MAX_MODULE_LEN, ..policy() };
        assert!(Config::new_checked(&with_body(&body(b"pi", dhcp, 0, None, &at_the_caps))[..]).is_ok());
        let bad_ports = |first, last| Policy { job_ports: PortRange { first, last }, ..policy() };
        // The first y coordinate with no point on the curve.
        let not_a_point = (2u8..)
            .map(|y| {
                let mut key = [0u8; 32];
                key[0] = y;
                key
            })
            .find(|key| VerifyingKey::from_bytes(key).is_err())
            .unwrap();
        let body_cases: Vec<(Vec<u8>, ConfigError)> = vec![
            (body(b"", dhcp, 0, None, &policy()), ConfigError::BadName),
            (body(&[b'n'; 33], dhcp, 0, None, &policy()), ConfigError::BadName),
            (body(&[0xff], dhcp, 0, None, &policy()), ConfigError::BadName),
            (body(b"pi", [2, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, None, &policy()), ConfigError::BadNetwork),
            (body(b"pi", [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], 0, None, &policy()), ConfigError::BadNetwork),
            (body(b"pi", [1, 0, 0, 0, 0, 24, 0, 0, 0, 0], 0, None, &policy()), ConfigError::BadNetwork),
            (body(b"pi", [1, 10, 0, 0, 1, 33, 0, 0, 0, 0], 0, None, &policy()), ConfigError::BadNetwork),
            (body(b"pi", dhcp, 33, None, &policy()), ConfigError::TooMany),
            (body(b"pi", dhcp, 0, Some((good_key, 0)), &policy()), ConfigError::BadRights),
            (body(b"pi", dhcp, 0, Some((good_key, 4)), &policy()), ConfigError::BadRights),
            (body(b"pi", dhcp, 0, Some((good_key, 0x1c)), &policy()), ConfigError::BadRights),
            (body(b"pi", dhcp, 0, Some((good_key, 0x20)), &policy()), ConfigError::BadRights),
            (body(b"pi", dhcp, 0, Some((not_a_point, 1)), &policy()), ConfigError::BadKey),
            (body(b"pi", dhcp, 0, None, &zero_fuel), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &big_output), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &no_queue), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &long_queue), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &huge_modules), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &bad_ports(0, 10)), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &bad_ports(7100, 7000)), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &bad_ports(4700, 4800)), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &bad_ports(1, 7)), ConfigError::BadPolicy),
            (body(b"pi", dhcp, 0, None, &bad_ports(60, 70)), ConfigError::BadPolicy),
            ([body(b"pi", dhcp, 0, None, &policy()), vec![0]].concat(), ConfigError::BadSection),
        ];
        for (body, expected) in body_cases {
            let bytes = with_body(&body);
            assert_eq!(Config::new_checked(&bytes[..]).map(|_| ()), Err(expected), "{expected:?}");
        }
        let static_ok = with_body(&body(b"pi", [1, 10, 0, 0, 1, 8, 0, 0, 0, 0], 0, None, &policy()));
        let config = Config::new_checked(&static_ok[..]).unwrap();
        let repr = ConfigRepr::parse(&config).unwrap();
        assert_eq!(repr.network, Network::Static { address: [10, 0, 0, 1], prefix_len: 8, gateway: [0; 4] });
        assert!(repr.signers.is_empty());
    }

    /// A body with these keys (DHCP, the test policy).
    fn keyed_body(noise: [u8; 32], advert: [u8; 32], clients: &[[u8; 32]], signers: &[([u8; 32], u32)]) -> Vec<u8> {
        let mut body = vec![2, b'p', b'i'];
        body.extend_from_slice(&noise);
        body.extend_from_slice(&advert);
        body.extend_from_slice(&[0; 10]);
        body.push(clients.len() as u8);
        clients.iter().for_each(|client| body.extend_from_slice(client));
        body.push(signers.len() as u8);
        for (key, rights) in signers {
            body.extend_from_slice(key);
            body.extend_from_slice(&rights.to_le_bytes());
        }
        let mut policy_bytes = [0u8; Policy::LEN];
        policy().write(&mut Writer::new(&mut policy_bytes)).unwrap();
        body.extend_from_slice(&policy_bytes);
        body
    }

    fn hex32(text: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect();
        bytes.try_into().unwrap()
    }

    /// The result of parsing, and of emitting the same fields (which must agree).
    fn refusal(
        noise: [u8; 32],
        advert: [u8; 32],
        clients: &[[u8; 32]],
        signers: &[([u8; 32], u32)],
    ) -> Result<(), ConfigError> {
        let bytes = with_body(&keyed_body(noise, advert, clients, signers));
        let parsed = Config::new_checked(&bytes[..]).map(|_| ());
        let trusted: Vec<TrustedSigner> = signers
            .iter()
            .map(|(key, rights)| TrustedSigner { public_key: *key, rights: SignerRights::from_bits(*rights).unwrap() })
            .collect();
        let repr = ConfigRepr {
            name: "pi",
            noise_secret: noise,
            advert_seed: advert,
            network: Network::Dhcp,
            clients: List::from_slice(clients),
            signers: List::from_slice(&trusted),
            policy: policy(),
        };
        let mut buffer = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buffer).map(|_| ()), parsed, "emit and parse agree");
        parsed
    }

    #[test]
    fn weak_and_repeated_keys_are_refused() {
        let noise = [0x0a; 32];
        let advert = [0x0b; 32];
        let client = crate::signature::sha256(b"a client key"); // any 32 bytes below 2^254
        let mut client = client;
        client[31] &= 0x3f;
        let signer = public_key(&[1; 32]);
        let second = public_key(&[2; 32]);
        assert_eq!(refusal(noise, advert, &[client], &[(signer, 1), (second, 3)]), Ok(()));

        // Signer keys: the eight small-order points, non-canonical encodings, a mixed-order key.
        let small_order = [
            "0100000000000000000000000000000000000000000000000000000000000000",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000080",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
            "0100000000000000000000000000000000000000000000000000000000000080",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ];
        for text in small_order {
            let weak = hex32(text);
            assert!(VerifyingKey::from_bytes(&weak).is_ok(), "{text} is a point");
            assert_eq!(refusal(noise, advert, &[client], &[(weak, 1)]), Err(ConfigError::WeakSignerKey), "{text}");
            assert_eq!(
                refusal(noise, advert, &[], &[(signer, 3), (weak, 1)]),
                Err(ConfigError::WeakSignerKey),
                "{text}"
            );
        }
        let torsion = curve25519_dalek::constants::EIGHT_TORSION[3];
        let mixed = (curve25519_dalek::edwards::CompressedEdwardsY(signer).decompress().unwrap() + torsion)
            .compress()
            .to_bytes();
        assert_eq!(refusal(noise, advert, &[], &[(mixed, 1)]), Err(ConfigError::WeakSignerKey));

        // Client keys: every low-order u, with and without bit 255, and non-canonical ones.
        for low in LOW_ORDER_X25519 {
            assert_eq!(refusal(noise, advert, &[client, low], &[]), Err(ConfigError::WeakClientKey), "{low:02x?}");
            let mut high = low;
            high[31] |= 0x80;
            assert_eq!(refusal(noise, advert, &[high], &[]), Err(ConfigError::WeakClientKey));
        }
        let mut high_bit = client;
        high_bit[31] |= 0x80;
        assert_eq!(refusal(noise, advert, &[high_bit], &[]), Err(ConfigError::WeakClientKey));
        let mut p_plus_2 = [0xff; 32];
        p_plus_2[0] = 0xef;
        p_plus_2[31] = 0x7f;
        assert_eq!(refusal(noise, advert, &[p_plus_2], &[]), Err(ConfigError::WeakClientKey));
        let mut p_minus_2 = p_plus_2;
        p_minus_2[0] = 0xeb;
        assert!(is_strong_x25519_key(&p_minus_2), "p - 2 is canonical and not of low order");

        // The device's own keys.
        let mut clamped_zero = [0u8; 32];
        clamped_zero[0] = 7;
        clamped_zero[31] = 0xc0;
        for (noise_secret, advert_seed) in [([0; 32], advert), (clamped_zero, advert), (noise, [0; 32]), (noise, noise)]
        {
            assert_eq!(refusal(noise_secret, advert_seed, &[client], &[(signer, 1)]), Err(ConfigError::WeakDeviceKey));
        }
        // The advert key is a code signer: refused (the device's secret would sign code).
        assert_eq!(refusal(noise, [1; 32], &[], &[(second, 1), (signer, 3)]), Err(ConfigError::WeakDeviceKey));
        assert_eq!(refusal(noise, [1; 32], &[client], &[]), Ok(()));

        // Repeated keys.
        assert_eq!(refusal(noise, advert, &[client, [0x41; 32], client], &[]), Err(ConfigError::DuplicateKey));
        assert_eq!(
            refusal(noise, advert, &[], &[(signer, 1), (second, 1), (signer, 2)]),
            Err(ConfigError::DuplicateKey)
        );
        // 32 distinct clients and 32 distinct signers are fine.
        let clients: Vec<[u8; 32]> = (0..32u8).map(|i| [0x10 + i; 32]).collect();
        let signers: Vec<([u8; 32], u32)> = (0..32u8).map(|i| (public_key(&[0x40 + i; 32]), 1)).collect();
        assert_eq!(refusal(noise, advert, &clients, &signers), Ok(()));
    }

    #[test]
    fn low_order_client_keys_give_an_all_zero_shared_secret() {
        use curve25519_dalek::montgomery::MontgomeryPoint;
        // Every listed u: X25519 with any secret is all-zero (the `ss` anyone can compute);
        // the generated public keys of some secrets are accepted and give non-zero results.
        let secrets: Vec<[u8; 32]> = (1..=8u8).map(|i| crate::signature::sha256(&[i])).collect();
        for low in LOW_ORDER_X25519 {
            for secret in &secrets {
                assert_eq!(MontgomeryPoint(low).mul_clamped(*secret).to_bytes(), [0; 32], "{low:02x?}");
            }
        }
        for secret in &secrets {
            let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
            assert!(is_strong_x25519_key(&public));
            assert_ne!(MontgomeryPoint(public).mul_clamped(secrets[0]).to_bytes(), [0; 32]);
        }
    }

    #[test]
    fn broker_section() {
        use crate::fleet::BrokerSettings;
        let broker = BrokerSettings {
            address: [10, 0, 2, 2],
            port: 1883,
            fleet: "lab",
            client_id: None,
            username: None,
            password: None,
        };
        let sections = Sections { broker: Some(broker), fleet_key: None };
        let repr = ConfigRepr {
            name: "pi",
            noise_secret: [0x0a; 32],
            advert_seed: [0x0b; 32],
            network: Network::Dhcp,
            clients: List::from_slice(&[]),
            signers: List::from_slice(&[]),
            policy: policy(),
        };
        let mut buffer = vec![0u8; 4096];
        let len = repr.emit_with(&sections, &mut buffer).unwrap();
        assert_eq!(len, repr.buffer_len_with(&sections));
        assert_eq!(len, repr.buffer_len() + 3 + 4 + 2 + 4 + 3);
        let config = Config::new_checked(&buffer[..len]).unwrap();
        assert_eq!(ConfigRepr::parse(&config), Ok(repr));
        assert_eq!(Sections::parse(&config), Ok(sections));
        // The section's bytes: tag 1, length 13, then the broker record.
        let plain = repr.buffer_len();
        assert_eq!(&buffer[plain..plain + 3], &[SECTION_BROKER, 13, 0]);
        // Without sections: the same bytes as `emit`.
        let mut plain_bytes = vec![0u8; plain];
        repr.emit(&mut plain_bytes).unwrap();
        let none = repr.emit_with(&Sections::default(), &mut buffer).unwrap();
        assert_eq!(&buffer[..none], &plain_bytes[..]);
        assert_eq!(Sections::parse(&Config::new_checked(&plain_bytes[..]).unwrap()), Ok(Sections::default()));
        // Emit refuses what parse refuses.
        let bad = Sections { broker: Some(BrokerSettings { port: 0, ..broker }), fleet_key: None };
        assert_eq!(repr.emit_with(&bad, &mut buffer), Err(ConfigError::BadBroker));
        assert_eq!(repr.emit_with(&sections, &mut buffer[..len - 1]), Err(ConfigError::BufferTooSmall));
        // The fleet key section: tag 2, 32 bytes; read back, kept out of Debug output.
        let keyed = Sections { broker: Some(broker), fleet_key: Some(FleetKey([0x5c; 32])) };
        let keyed_len = repr.emit_with(&keyed, &mut buffer).unwrap();
        assert_eq!(keyed_len, len + 3 + 32);
        assert_eq!(&buffer[len..len + 3], &[SECTION_FLEET_KEY, 32, 0]);
        assert_eq!(Sections::parse(&Config::new_checked(&buffer[..keyed_len]).unwrap()), Ok(keyed));
        assert!(!format!("{keyed:?}").contains("92"), "the fleet key stays out of Debug output");
        let zero = Sections { fleet_key: Some(FleetKey([0; 32])), ..keyed };
        assert_eq!(repr.emit_with(&zero, &mut buffer), Err(ConfigError::BadFleetKey));

        let mut base = vec![0u8; plain];
        repr.emit(&mut base).unwrap();
        let base_body = base[HEADER_LEN..].to_vec();
        let mut record = vec![0u8; broker.buffer_len()];
        broker.emit(&mut record).unwrap();
        let section = |tag: u8, bytes: &[u8]| {
            let mut out = vec![tag];
            out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
            out.extend_from_slice(bytes);
            out
        };
        let mut bad_port = record.clone();
        bad_port[4..6].copy_from_slice(&[0, 0]);
        let cases: Vec<(Vec<u8>, ConfigError)> = vec![
            (section(3, &record), ConfigError::BadSection),
            (section(2, &record), ConfigError::BadFleetKey),
            (section(2, &[0; 32]), ConfigError::BadFleetKey),
            ([section(2, &[5; 32]), section(1, &record)].concat(), ConfigError::BadSection),
            (section(0, &record), ConfigError::BadSection),
            ([section(1, &record), section(1, &record)].concat(), ConfigError::BadSection),
            (section(1, &record)[..10].to_vec(), ConfigError::BadSection),
            (vec![1, 0], ConfigError::BadSection),
            (section(1, &bad_port), ConfigError::BadBroker),
            (section(1, &record[..record.len() - 1]), ConfigError::BadBroker),
            (section(1, &[record.clone(), vec![0]].concat()), ConfigError::BadBroker),
        ];
        for (extra, expected) in cases {
            let bytes = with_body(&[base_body.clone(), extra].concat());
            assert_eq!(Config::new_checked(&bytes[..]).map(|_| ()), Err(expected), "{expected:?}");
        }
        let bytes = with_body(&[base_body.clone(), section(1, &record)].concat());
        assert_eq!(&bytes[..], &buffer_of(&repr, &sections)[..]);
    }

    fn buffer_of(repr: &ConfigRepr<'_>, sections: &Sections<'_>) -> Vec<u8> {
        let mut bytes = vec![0u8; repr.buffer_len_with(sections)];
        repr.emit_with(sections, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn emit_refuses_bad_fields() {
        let repr = ConfigRepr {
            name: "",
            noise_secret: [0x0a; 32],
            advert_seed: [0x0b; 32],
            network: Network::Dhcp,
            clients: List::from_slice(&[]),
            signers: List::from_slice(&[]),
            policy: policy(),
        };
        let mut buffer = vec![0u8; 4096];
        assert_eq!(repr.emit(&mut buffer), Err(ConfigError::BadName));
        let named = ConfigRepr { name: "pi", ..repr };
        assert_eq!(named.emit(&mut buffer[..10]), Err(ConfigError::BufferTooSmall));
        let len = named.emit(&mut buffer).unwrap();
        assert_eq!(ConfigRepr::parse(&Config::new_checked(&buffer[..len]).unwrap()), Ok(named));
        assert_eq!(CONFIG_ADDRESS, 0x01F0_0000);
    }
}

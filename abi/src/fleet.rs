//! The fleet's formats: the broker settings of the boot configuration, the MQTT topic tree and
//! the retained status message a device publishes (layouts: `docs/fleet.md`).
//!
//! [`BrokerSettings::parse`] and [`StatusRepr::parse`] take untrusted bytes and check every
//! length, count and character; afterwards no accessor can panic. Both re-emit the same bytes
//! ([`BrokerSettings::emit`], [`StatusRepr::emit`]).
//!
//! Topics (all under `jos/<fleet>/`):
//! - `jos/<fleet>/jobs`: job messages; devices subscribe with the shared subscription
//!   `$share/<fleet>/jos/<fleet>/jobs`, so the broker hands each job to one device.
//! - `jos/<fleet>/status/<client id>`: a device's retained [`StatusRepr`]; its last will is a
//!   retained status with [`DeviceState::Offline`].

use core::fmt;

use crate::codec::{Cursor, Writer};

/// The port MQTT brokers listen on for plain TCP.
pub const DEFAULT_PORT: u16 = 1883;
/// The longest fleet name, in bytes.
pub const MAX_FLEET_LEN: usize = 32;
/// The longest MQTT client id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;
/// The longest user name, in bytes of UTF-8.
pub const MAX_USERNAME_LEN: usize = 128;
/// The longest password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 128;
/// The longest topic this module builds: `$share/<fleet>/jos/<fleet>/status/<client id>` fits.
pub const MAX_TOPIC_LEN: usize = 8 + MAX_FLEET_LEN + 5 + MAX_FLEET_LEN + 8 + MAX_CLIENT_ID_LEN;
/// The prefix of a derived client id ([`default_client_id`]).
pub const CLIENT_ID_PREFIX: &str = "jos-";
/// Length of a derived client id: the prefix and 8 bytes of the advert key in hex.
pub const DEFAULT_CLIENT_ID_LEN: usize = CLIENT_ID_PREFIX.len() + 16;

/// Why broker settings or a status message were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum FleetError {
    /// Shorter than its fields say.
    Truncated = 1,
    /// The broker address is 0.0.0.0, broadcast or multicast, or the port is 0.
    BadAddress = 2,
    /// The fleet name is empty, too long, or has a character outside `A-Z a-z 0-9 - _ .`.
    BadFleet = 3,
    /// The client id is too long or has a character outside `A-Z a-z 0-9 - _ .`.
    BadClientId = 4,
    /// The user name is too long, not UTF-8 or holds a control character.
    BadUsername = 5,
    /// The password is too long.
    BadPassword = 6,
    /// Bytes after the last field.
    TrailingBytes = 7,
    /// A status version this crate does not read.
    UnsupportedVersion = 8,
    /// A status state or format bit this crate does not know, or a bad device name.
    BadStatus = 9,
    /// (emit only) the buffer is too small.
    BufferTooSmall = 10,
    /// A job or result message does not start with its magic.
    BadMagic = 11,
    /// A job message's code does not match its header (format, presence, SHA-256), or a field
    /// has an unknown value.
    BadJob = 12,
    /// A job's `expires_at` is not after its `issued_at`, or more than 15 minutes after it.
    BadLifetime = 13,
    /// A length over its cap.
    TooLong = 14,
    /// The fleet key is zero once clamped.
    BadKey = 15,
}

impl FleetError {
    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            FleetError::Truncated => "fleet record truncated",
            FleetError::BadAddress => "bad broker address or port",
            FleetError::BadFleet => "bad fleet name (1 to 32 of A-Z a-z 0-9 - _ .)",
            FleetError::BadClientId => "bad client id (at most 64 of A-Z a-z 0-9 - _ .)",
            FleetError::BadUsername => "bad broker user name (at most 128 bytes of UTF-8, no control characters)",
            FleetError::BadPassword => "bad broker password (at most 128 bytes)",
            FleetError::TrailingBytes => "trailing bytes in fleet record",
            FleetError::UnsupportedVersion => "unsupported fleet status version",
            FleetError::BadStatus => "bad fleet status",
            FleetError::BufferTooSmall => "buffer too small",
            FleetError::BadMagic => "bad fleet message magic",
            FleetError::BadJob => "bad fleet job message",
            FleetError::BadLifetime => "bad job lifetime (expiry after issue, at most 15 minutes)",
            FleetError::TooLong => "fleet message field too long",
            FleetError::BadKey => "bad fleet key",
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Whether `text` is a name the topic tree can hold: `A-Z a-z 0-9 - _ .` only (no `/`, no MQTT
/// wildcard, no `$`), at most `max` bytes, and not empty.
pub fn is_topic_name(text: &[u8], max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.iter().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// Where a device's broker is and how it logs in: the boot configuration's broker section
/// (`jos_abi::config`, section tag [`crate::config::SECTION_BROKER`]). `Debug` does not print
/// the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BrokerSettings<'a> {
    /// The broker's IPv4 address (host names are not resolved: the device has no DNS client).
    pub address: [u8; 4],
    /// The broker's TCP port (1883 for plain MQTT).
    pub port: u16,
    /// The fleet the device serves: names its topics and its shared subscription.
    pub fleet: &'a str,
    /// The MQTT client id; `None`: derived from the device's advert key ([`default_client_id`]).
    pub client_id: Option<&'a str>,
    /// The user name to log in with, if any.
    pub username: Option<&'a str>,
    /// The password to log in with, if any.
    pub password: Option<&'a [u8]>,
}

impl fmt::Debug for BrokerSettings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerSettings")
            .field("address", &self.address)
            .field("port", &self.port)
            .field("fleet", &self.fleet)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<secret>"))
            .finish()
    }
}

/// Reads a `u8` length and that many bytes.
fn short_field<'a>(cursor: &mut Cursor<'a>) -> Result<&'a [u8], FleetError> {
    let len = usize::from(cursor.u8().ok_or(FleetError::Truncated)?);
    cursor.take(len).ok_or(FleetError::Truncated)
}

/// Writes a `u8` length and the bytes.
fn write_short(writer: &mut Writer<'_>, bytes: &[u8]) -> Option<()> {
    writer.u8(u8::try_from(bytes.len()).ok()?)?;
    writer.bytes(bytes)
}

impl<'a> BrokerSettings<'a> {
    /// Parses and checks a broker section body: address (4), port (u16), then fleet, client id,
    /// user name and password, each a `u8` length and its bytes (length 0: none or derived).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FleetError> {
        let mut cursor = Cursor::new(bytes);
        let address = cursor.array().ok_or(FleetError::Truncated)?;
        let port = cursor.u16().ok_or(FleetError::Truncated)?;
        let fleet = short_field(&mut cursor)?;
        let client_id = short_field(&mut cursor)?;
        let username = short_field(&mut cursor)?;
        let password = short_field(&mut cursor)?;
        if !cursor.is_empty() {
            return Err(FleetError::TrailingBytes);
        }
        let text = |bytes: &'a [u8], error| core::str::from_utf8(bytes).map_err(|_| error);
        let settings = BrokerSettings {
            address,
            port,
            fleet: text(fleet, FleetError::BadFleet)?,
            client_id: (!client_id.is_empty()).then(|| text(client_id, FleetError::BadClientId)).transpose()?,
            username: (!username.is_empty()).then(|| text(username, FleetError::BadUsername)).transpose()?,
            password: (!password.is_empty()).then_some(password),
        };
        settings.check()?;
        Ok(settings)
    }

    /// Checks every field (what [`BrokerSettings::parse`] and [`BrokerSettings::emit`] refuse).
    pub fn check(&self) -> Result<(), FleetError> {
        let [first, ..] = self.address;
        if self.address == [0; 4] || self.address == [255; 4] || (224..=239).contains(&first) || self.port == 0 {
            return Err(FleetError::BadAddress);
        }
        if !is_topic_name(self.fleet.as_bytes(), MAX_FLEET_LEN) {
            return Err(FleetError::BadFleet);
        }
        if self.client_id.is_some_and(|id| !is_topic_name(id.as_bytes(), MAX_CLIENT_ID_LEN)) {
            return Err(FleetError::BadClientId);
        }
        if self
            .username
            .is_some_and(|name| name.is_empty() || name.len() > MAX_USERNAME_LEN || name.chars().any(char::is_control))
        {
            return Err(FleetError::BadUsername);
        }
        if self.password.is_some_and(|password| password.is_empty() || password.len() > MAX_PASSWORD_LEN) {
            return Err(FleetError::BadPassword);
        }
        Ok(())
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        4 + 2
            + 1
            + self.fleet.len()
            + 1
            + self.client_id.map_or(0, str::len)
            + 1
            + self.username.map_or(0, str::len)
            + 1
            + self.password.map_or(0, <[u8]>::len)
    }

    /// Writes the section body after checking it; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, FleetError> {
        self.check()?;
        let mut writer = Writer::new(buffer);
        self.write(&mut writer).ok_or(FleetError::BufferTooSmall)?;
        Ok(writer.len())
    }

    /// Writes the (checked) fields.
    pub(crate) fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.bytes(&self.address)?;
        writer.u16(self.port)?;
        write_short(writer, self.fleet.as_bytes())?;
        write_short(writer, self.client_id.unwrap_or("").as_bytes())?;
        write_short(writer, self.username.unwrap_or("").as_bytes())?;
        write_short(writer, self.password.unwrap_or(&[]))
    }
}

/// A topic or client id built in place (no allocation), at most [`MAX_TOPIC_LEN`] bytes.
#[derive(Clone, Copy)]
pub struct Name {
    bytes: [u8; MAX_TOPIC_LEN],
    len: usize,
}

impl Name {
    /// An empty name.
    pub const fn new() -> Self {
        Name { bytes: [0; MAX_TOPIC_LEN], len: 0 }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are appended (`write_str` refuses what does not fit whole).
        core::str::from_utf8(self.bytes.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }

    fn from_parts(parts: &[&str]) -> Self {
        let mut name = Name::new();
        for part in parts {
            // Every caller's parts fit MAX_TOPIC_LEN: fleet and client id are checked.
            let _ = fmt::Write::write_str(&mut name, part);
        }
        name
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::new()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Write for Name {
    /// Appends `text` whole, or refuses it (nothing appended) when it does not fit.
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len.checked_add(text.len()).ok_or(fmt::Error)?;
        self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The client id a device uses when its configuration names none: `jos-` and the first 8 bytes
/// of its advert (Ed25519) public key in lower-case hex, 20 characters (within the 23 every MQTT
/// broker must accept) and distinct per device, so two boards never take over each other's
/// session.
pub fn default_client_id(advert_key: &[u8; 32]) -> Name {
    let mut name = Name::from_parts(&[CLIENT_ID_PREFIX]);
    for byte in &advert_key[..8] {
        let _ = fmt::Write::write_fmt(&mut name, format_args!("{byte:02x}"));
    }
    name
}

/// The topic clients publish jobs to: `jos/<fleet>/jobs`.
pub fn jobs_topic(fleet: &str) -> Name {
    Name::from_parts(&["jos/", fleet, "/jobs"])
}

/// The shared subscription devices take on the job topic: `$share/<fleet>/jos/<fleet>/jobs`.
pub fn jobs_subscription(fleet: &str) -> Name {
    Name::from_parts(&["$share/", fleet, "/jos/", fleet, "/jobs"])
}

/// A device's status topic: `jos/<fleet>/status/<client id>`.
pub fn status_topic(fleet: &str, client_id: &str) -> Name {
    Name::from_parts(&["jos/", fleet, "/status/", client_id])
}

/// The filter that matches every device's status in a fleet: `jos/<fleet>/status/+`.
pub fn status_filter(fleet: &str) -> Name {
    Name::from_parts(&["jos/", fleet, "/status/+"])
}

/// What a device is doing, as its status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DeviceState {
    /// Not connected (the last will).
    Offline = 0,
    /// Connected, running no job.
    Idle = 1,
    /// Connected, running or holding jobs.
    Busy = 2,
}

impl DeviceState {
    /// The state with this code.
    pub const fn from_u8(code: u8) -> Option<Self> {
        match code {
            0 => Some(DeviceState::Offline),
            1 => Some(DeviceState::Idle),
            2 => Some(DeviceState::Busy),
            _ => None,
        }
    }

    /// A lower-case name (`offline`, `idle`, `busy`).
    pub const fn name(self) -> &'static str {
        match self {
            DeviceState::Offline => "offline",
            DeviceState::Idle => "idle",
            DeviceState::Busy => "busy",
        }
    }
}

/// Status format bit: the device runs signed wasm modules.
pub const FORMAT_WASM: u8 = 1;
/// Status format bit: the device runs signed native blobs.
pub const FORMAT_NATIVE: u8 = 2;
/// The status format version.
pub const STATUS_VERSION: u8 = 2;
/// Length of a status before the device name.
pub const STATUS_FIXED_LEN: usize = 68;

/// The refusal counters of a device's fleet job messages: each refused message (dropped, no
/// result) counts once, under the first check it failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Refusals {
    /// The job id was seen before, or the job had expired by the device's estimate of now.
    pub replayed: u32,
    /// The envelope signature did not verify, or its signer is unknown or may sign neither
    /// format.
    pub bad_signature: u32,
    /// The sealed input did not open with the fleet key (altered, or sealed to another fleet).
    pub bad_seal: u32,
    /// The message did not parse, or the device has no fleet key.
    pub malformed: u32,
    /// The replay table was full of unexpired job ids.
    pub busy: u32,
}

impl Refusals {
    /// All refusals.
    pub fn total(&self) -> u64 {
        [self.replayed, self.bad_signature, self.bad_seal, self.malformed, self.busy]
            .iter()
            .map(|n| u64::from(*n))
            .sum()
    }
}

/// A device's retained status message (`jos/<fleet>/status/<client id>`), little-endian:
/// version (u8, 2), state (u8), formats (u8 bits), name length (u8, 1..=32), ABI version (u32,
/// `major << 16 | minor`), free heap, heap size, uptime in seconds (u32 each), jobs done, jobs
/// failed (u64 each), fleet job messages received, broker connections made, fleet jobs answered,
/// then the refusals: replayed or expired, bad envelope signature or untrusted signer, sealed
/// input that does not open, malformed message, replay table full (u32 each), then the device
/// name (UTF-8). Version 2 added the fleet-job counters from `fleet_jobs` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRepr<'a> {
    /// What the device is doing.
    pub state: DeviceState,
    /// Formats it runs ([`FORMAT_WASM`], [`FORMAT_NATIVE`]).
    pub formats: u8,
    /// The ABI version its kernel implements ([`crate::AbiVersion::to_u32`]).
    pub abi: u32,
    /// Heap bytes free.
    pub heap_free: u32,
    /// Heap bytes in all.
    pub heap_size: u32,
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Jobs finished (direct or fleet).
    pub jobs_done: u64,
    /// Jobs that ended in an error.
    pub jobs_failed: u64,
    /// Job messages received on the fleet's job topic.
    pub fleet_messages: u32,
    /// Times the device connected to the broker since boot (1 on the first connection).
    pub connects: u32,
    /// Fleet jobs answered with a sealed result (since boot).
    pub fleet_jobs: u32,
    /// The device's refusals of fleet job messages (since boot).
    pub refusals: Refusals,
    /// The device's name (1..=32 bytes, as in its configuration).
    pub name: &'a str,
}

impl<'a> StatusRepr<'a> {
    /// Parses and checks a status message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FleetError> {
        let truncated = FleetError::Truncated;
        let mut cursor = Cursor::new(bytes);
        if cursor.u8().ok_or(truncated)? != STATUS_VERSION {
            return Err(FleetError::UnsupportedVersion);
        }
        let state = DeviceState::from_u8(cursor.u8().ok_or(truncated)?).ok_or(FleetError::BadStatus)?;
        let formats = cursor.u8().ok_or(truncated)?;
        let name_len = usize::from(cursor.u8().ok_or(truncated)?);
        let status = StatusRepr {
            state,
            formats,
            abi: cursor.u32().ok_or(truncated)?,
            heap_free: cursor.u32().ok_or(truncated)?,
            heap_size: cursor.u32().ok_or(truncated)?,
            uptime_s: cursor.u32().ok_or(truncated)?,
            jobs_done: cursor.u64().ok_or(truncated)?,
            jobs_failed: cursor.u64().ok_or(truncated)?,
            fleet_messages: cursor.u32().ok_or(truncated)?,
            connects: cursor.u32().ok_or(truncated)?,
            fleet_jobs: cursor.u32().ok_or(truncated)?,
            refusals: Refusals {
                replayed: cursor.u32().ok_or(truncated)?,
                bad_signature: cursor.u32().ok_or(truncated)?,
                bad_seal: cursor.u32().ok_or(truncated)?,
                malformed: cursor.u32().ok_or(truncated)?,
                busy: cursor.u32().ok_or(truncated)?,
            },
            name: core::str::from_utf8(cursor.take(name_len).ok_or(truncated)?).map_err(|_| FleetError::BadStatus)?,
        };
        if !cursor.is_empty() {
            return Err(FleetError::TrailingBytes);
        }
        status.check()?;
        Ok(status)
    }

    fn check(&self) -> Result<(), FleetError> {
        let known = FORMAT_WASM | FORMAT_NATIVE;
        if self.formats & !known != 0 || self.name.is_empty() || self.name.len() > crate::config::MAX_NAME_LEN {
            return Err(FleetError::BadStatus);
        }
        Ok(())
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        STATUS_FIXED_LEN + self.name.len()
    }

    /// Writes the message; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, FleetError> {
        self.check()?;
        let mut writer = Writer::new(buffer);
        let written = (|| {
            writer.u8(STATUS_VERSION)?;
            writer.u8(self.state as u8)?;
            writer.u8(self.formats)?;
            writer.u8(u8::try_from(self.name.len()).ok()?)?;
            writer.u32(self.abi)?;
            writer.u32(self.heap_free)?;
            writer.u32(self.heap_size)?;
            writer.u32(self.uptime_s)?;
            writer.u64(self.jobs_done)?;
            writer.u64(self.jobs_failed)?;
            writer.u32(self.fleet_messages)?;
            writer.u32(self.connects)?;
            writer.u32(self.fleet_jobs)?;
            writer.u32(self.refusals.replayed)?;
            writer.u32(self.refusals.bad_signature)?;
            writer.u32(self.refusals.bad_seal)?;
            writer.u32(self.refusals.malformed)?;
            writer.u32(self.refusals.busy)?;
            writer.bytes(self.name.as_bytes())
        })();
        written.ok_or(FleetError::BufferTooSmall)?;
        Ok(writer.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BrokerSettings<'static> {
        BrokerSettings {
            address: [10, 0, 2, 2],
            port: 1883,
            fleet: "lab",
            client_id: None,
            username: Some("pi"),
            password: Some(b"hunter2"),
        }
    }

    #[test]
    fn broker_golden_round_trip() {
        let repr = settings();
        let mut buffer = [0u8; 64];
        let len = repr.emit(&mut buffer).unwrap();
        let golden: &[u8] = &[
            10, 0, 2, 2, 0x5b, 0x07, 3, b'l', b'a', b'b', 0, 2, b'p', b'i', 7, b'h', b'u', b'n', b't', b'e', b'r', b'2',
        ];
        assert_eq!(&buffer[..len], golden);
        assert_eq!(repr.buffer_len(), len);
        assert_eq!(BrokerSettings::parse(golden), Ok(repr));
        for cut in 0..golden.len() {
            assert_eq!(BrokerSettings::parse(&golden[..cut]), Err(FleetError::Truncated), "length {cut}");
        }
        assert_eq!(BrokerSettings::parse(&[golden, &[0]].concat()), Err(FleetError::TrailingBytes));
        assert!(!format!("{repr:?}").contains("hunter2"), "the password stays out of Debug output");
        assert_eq!(repr.emit(&mut buffer[..len - 1]), Err(FleetError::BufferTooSmall));
        let with_id = BrokerSettings { client_id: Some("board-7"), username: None, password: None, ..repr };
        let len = with_id.emit(&mut buffer).unwrap();
        assert_eq!(BrokerSettings::parse(&buffer[..len]), Ok(with_id));
    }

    #[test]
    fn broker_fields_are_checked() {
        let cases: [(BrokerSettings<'static>, FleetError); 13] = [
            (BrokerSettings { address: [0; 4], ..settings() }, FleetError::BadAddress),
            (BrokerSettings { address: [255; 4], ..settings() }, FleetError::BadAddress),
            (BrokerSettings { address: [224, 0, 0, 1], ..settings() }, FleetError::BadAddress),
            (BrokerSettings { port: 0, ..settings() }, FleetError::BadAddress),
            (BrokerSettings { fleet: "", ..settings() }, FleetError::BadFleet),
            (BrokerSettings { fleet: "a/b", ..settings() }, FleetError::BadFleet),
            (BrokerSettings { fleet: "+", ..settings() }, FleetError::BadFleet),
            (BrokerSettings { fleet: "abcdefghijabcdefghijabcdefghijabc", ..settings() }, FleetError::BadFleet),
            (BrokerSettings { client_id: Some("a#"), ..settings() }, FleetError::BadClientId),
            (BrokerSettings { client_id: Some(""), ..settings() }, FleetError::BadClientId),
            (BrokerSettings { username: Some("a\nb"), ..settings() }, FleetError::BadUsername),
            (BrokerSettings { password: Some(&[0; 129]), ..settings() }, FleetError::BadPassword),
            (BrokerSettings { password: Some(&[]), ..settings() }, FleetError::BadPassword),
        ];
        for (repr, expected) in cases {
            let mut buffer = [0u8; 512];
            assert_eq!(repr.emit(&mut buffer), Err(expected), "{repr:?}");
            // The same fields written without the check are refused by the parser.
            let mut writer = Writer::new(&mut buffer);
            repr.write(&mut writer).unwrap();
            let len = writer.len();
            let parsed = BrokerSettings::parse(&buffer[..len]);
            // An empty client id or password reads as "none", which is valid.
            if repr.client_id == Some("") || repr.password == Some(&[]) {
                assert!(parsed.is_ok());
            } else {
                assert_eq!(parsed, Err(expected), "{repr:?}");
            }
        }
        let mut bad_utf8 = [0u8; 32];
        let len = settings().emit(&mut bad_utf8).unwrap();
        bad_utf8[7] = 0xff; // the fleet name's first byte
        assert_eq!(BrokerSettings::parse(&bad_utf8[..len]), Err(FleetError::BadFleet));
    }

    #[test]
    fn topics_and_client_ids() {
        assert_eq!(jobs_topic("lab").as_str(), "jos/lab/jobs");
        assert_eq!(jobs_subscription("lab").as_str(), "$share/lab/jos/lab/jobs");
        assert_eq!(status_topic("lab", "jos-0102").as_str(), "jos/lab/status/jos-0102");
        assert_eq!(status_filter("lab").as_str(), "jos/lab/status/+");
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff]);
        let id = default_client_id(&key);
        assert_eq!(id.as_str(), "jos-deadbeef000102ff");
        assert_eq!(id.as_str().len(), DEFAULT_CLIENT_ID_LEN);
        assert!(is_topic_name(id.as_str().as_bytes(), MAX_CLIENT_ID_LEN));
        // The longest names fit.
        let fleet = "f".repeat(MAX_FLEET_LEN);
        let client = "c".repeat(MAX_CLIENT_ID_LEN);
        assert_eq!(status_topic(&fleet, &client).as_str().len(), 4 + 32 + 8 + 64);
        assert_eq!(jobs_subscription(&fleet).as_str().len(), 7 + 32 + 5 + 32 + 5);
    }

    #[test]
    fn status_golden_round_trip() {
        let status = StatusRepr {
            state: DeviceState::Busy,
            formats: FORMAT_WASM | FORMAT_NATIVE,
            abi: 0x0001_0000,
            heap_free: 0x1000,
            heap_size: 0x2000,
            uptime_s: 7,
            jobs_done: 3,
            jobs_failed: 1,
            fleet_messages: 2,
            connects: 1,
            fleet_jobs: 5,
            refusals: Refusals { replayed: 6, bad_signature: 7, bad_seal: 8, malformed: 9, busy: 10 },
            name: "pi",
        };
        let mut buffer = [0u8; 128];
        let len = status.emit(&mut buffer).unwrap();
        let mut golden = vec![2, 2, 3, 2, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 7, 0, 0, 0];
        golden.extend_from_slice(&3u64.to_le_bytes());
        golden.extend_from_slice(&1u64.to_le_bytes());
        golden.extend_from_slice(&2u32.to_le_bytes());
        golden.extend_from_slice(&1u32.to_le_bytes());
        for counter in 5u32..=10 {
            golden.extend_from_slice(&counter.to_le_bytes());
        }
        golden.extend_from_slice(b"pi");
        assert_eq!(&buffer[..len], &golden[..]);
        assert_eq!(status.buffer_len(), len);
        assert_eq!(StatusRepr::parse(&golden), Ok(status));
        for cut in 0..golden.len() {
            assert!(StatusRepr::parse(&golden[..cut]).is_err(), "length {cut}");
        }
        assert_eq!(status.refusals.total(), 40);
        let mut bad = golden.clone();
        bad[0] = 1;
        assert_eq!(StatusRepr::parse(&bad), Err(FleetError::UnsupportedVersion));
        let mut bad = golden.clone();
        bad[1] = 3;
        assert_eq!(StatusRepr::parse(&bad), Err(FleetError::BadStatus));
        let mut bad = golden.clone();
        bad[2] = 4;
        assert_eq!(StatusRepr::parse(&bad), Err(FleetError::BadStatus));
        let mut bad = golden.clone();
        bad[3] = 0;
        assert_eq!(StatusRepr::parse(&bad[..len - 2]), Err(FleetError::BadStatus));
        assert_eq!(StatusRepr::parse(&[&golden[..], &[0]].concat()), Err(FleetError::TrailingBytes));
        assert_eq!(status.emit(&mut buffer[..len - 1]), Err(FleetError::BufferTooSmall));
        assert_eq!(StatusRepr { name: "", ..status }.emit(&mut buffer), Err(FleetError::BadStatus));
    }
}

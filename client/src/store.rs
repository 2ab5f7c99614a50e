//! `$JOS_HOME`: the user's keys, the trust store of pinned devices, and settings (default device).
//!
//! Location: `$JOS_HOME`, else `$XDG_CONFIG_HOME/jos`, else `~/.config/jos`. Files:
//!
//! | file | content |
//! |---|---|
//! | `signing.key` / `signing.pub` | developer Ed25519 seed / public key (hex), signs modules and blobs |
//! | `client.key` / `client.pub` | client X25519 secret / public key (hex), the Noise IK initiator key |
//! | `trust.json` | pinned devices: name, advert key, Noise key, last known addresses |
//! | `settings.json` | the default device's name |
//! | `emu/` | the emulated device: its `config.bin`, QEMU's pidfile, ports, UART log |
//!
//! Secret files (`*.key`, the emulator's `config.bin`, `provision`'s output) are created with mode
//! 0600 from their first byte: written to a fresh file made with that mode, then renamed over the
//! old one, so a file of looser mode that was there is replaced, never reused; folders jos-cli
//! creates for them get mode 0700. Reading a secret key file that others may read or write
//! prints a warning (as ssh does) and goes on. Key files are text: comment lines starting with
//! `#`, then one line of 64 hex digits.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A 32-byte key (public or secret).
pub type Key = [u8; 32];

/// What went wrong reading or writing `$JOS_HOME`.
#[derive(Debug)]
pub enum StoreError {
    /// No home folder can be found (no `JOS_HOME`, `XDG_CONFIG_HOME` or `HOME`).
    NoHome,
    /// A file the command needs does not exist.
    Missing(PathBuf),
    /// A file exists but does not hold what it should.
    Corrupt(PathBuf, String),
    /// A file or folder could not be read or written.
    Io(PathBuf, std::io::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NoHome => write!(f, "no home folder: set JOS_HOME (or HOME)"),
            StoreError::Missing(path) => write!(f, "{} does not exist", path.display()),
            StoreError::Corrupt(path, why) => write!(f, "{} is not valid: {why}", path.display()),
            StoreError::Io(path, error) => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {}

/// Parses hex (upper or lower case; `:` and spaces ignored, as in fingerprints and pasted keys)
/// into bytes.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: String = text.chars().filter(|c| *c != ':' && !c.is_ascii_whitespace()).collect();
    hex::decode(digits).ok()
}

/// Parses exactly 32 bytes of hex.
pub fn key_from_hex(text: &str) -> Option<Key> {
    from_hex(text)?.try_into().ok()
}

/// A device's fingerprint: the first 16 bytes of SHA-256 over its advert key then its Noise key,
/// as hex in groups of four digits joined by `:` (what `discover` shows and `trust` takes).
pub fn fingerprint(advert_key: &Key, noise_key: &Key) -> String {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(advert_key);
    both[32..].copy_from_slice(noise_key);
    let digest = jos_abi::signature::sha256(&both);
    let digits = hex::encode(&digest[..16]);
    digits.as_bytes().chunks(4).map(|group| std::str::from_utf8(group).unwrap_or("")).collect::<Vec<_>>().join(":")
}

/// Whether `typed` (any case, with or without `:`, at least 8 digits) is a prefix of
/// `fingerprint`.
pub fn fingerprint_matches(fingerprint: &str, typed: &str) -> bool {
    let clean = |text: &str| text.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
    let (full, typed) = (clean(fingerprint), clean(typed));
    typed.len() >= 8 && full.starts_with(&typed)
}

/// Fills `buffer` from the operating system's random source.
pub fn random_bytes(buffer: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buffer).map_err(|error| std::io::Error::other(error.to_string()))
}

/// A fresh random 32-byte secret.
pub fn random_key() -> std::io::Result<Key> {
    let mut key = [0; 32];
    random_bytes(&mut key)?;
    Ok(key)
}

/// The X25519 public key of `secret`, through snow's own Diffie-Hellman (the same code the
/// session uses).
pub fn x25519_public(secret: &Key) -> Key {
    let resolver = snow::resolvers::DefaultResolver;
    use snow::resolvers::CryptoResolver;
    let mut dh = resolver.resolve_dh(&snow::params::DHChoice::Curve25519).expect("snow has Curve25519");
    dh.set(secret);
    let mut public = [0; 32];
    public.copy_from_slice(dh.pubkey());
    public
}

/// The permission bits of `path` that let others (group or world) read or write it, if any.
#[cfg(unix)]
pub fn loose_permissions(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Warns on stderr when others may read or write the secret key file `path` (the key is still
/// used: the warning says how to fix the mode, and to replace the key if others did read it).
pub fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    if let Some(mode) = loose_permissions(path) {
        eprintln!(
            "warning: {} holds a secret key but has mode {mode:04o} (others may read it): run `chmod 600 {}`, \
             and make a new key if others did read it",
            path.display(),
            path.display()
        );
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Reads a secret key file like [`read_key_file`], with [`warn_if_exposed`].
pub fn read_secret_key_file(path: &Path) -> Result<Key, StoreError> {
    let key = read_key_file(path)?;
    warn_if_exposed(path);
    Ok(key)
}

/// Reads a key file: `#` comment lines, then 64 hex digits.
pub fn read_key_file(path: &Path) -> Result<Key, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::Missing(path.into())),
        Err(error) => return Err(StoreError::Io(path.into(), error)),
    };
    let line = text.lines().map(str::trim).find(|line| !line.is_empty() && !line.starts_with('#')).unwrap_or("");
    key_from_hex(line).ok_or_else(|| StoreError::Corrupt(path.into(), "expected one line of 64 hex digits".into()))
}

/// Writes a key file with a comment line; `secret` files get mode 0600.
pub fn write_key_file(path: &Path, comment: &str, key: &Key, secret: bool) -> Result<(), StoreError> {
    let text = format!("# {comment}\n{}\n", hex::encode(key));
    write_file(path, text.as_bytes(), secret)
}

/// Writes a file (creating its folder). A `secret` file is created with mode 0600 before any
/// byte is written, as a new file beside `path` renamed over it: whatever mode an old file at
/// `path` had, the new one is 0600 (and a folder made for it 0700).
pub fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(parent).map_err(|error| StoreError::Io(parent.into(), error))?;
    }
    if !secret {
        let mut file = fs::File::create(path).map_err(|error| StoreError::Io(path.into(), error))?;
        return file.write_all(bytes).map_err(|error| StoreError::Io(path.into(), error));
    }
    let name = path.file_name().map_or_else(|| "secret".into(), |name| name.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    // A file of that name can only be left by a crashed run of this same process id.
    let _ = fs::remove_file(&temporary);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        // The umask can only remove bits from 0600; set it exactly anyway.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&temporary, path));
    renamed.map_err(|error| {
        let _ = fs::remove_file(&temporary);
        StoreError::Io(path.into(), error)
    })
}

/// The developer's signing key (Ed25519).
#[derive(Clone, Copy)]
pub struct SigningKey {
    /// The 32-byte seed.
    pub seed: Key,
    /// Its public key.
    pub public: Key,
}

/// The client's Noise key (X25519).
#[derive(Clone, Copy)]
pub struct ClientKey {
    /// The secret.
    pub secret: Key,
    /// Its public key.
    pub public: Key,
}

/// A pinned device in the trust store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    /// The device's name (from provisioning or its advert).
    pub name: String,
    /// Its Ed25519 advert key, hex.
    pub advert_key: String,
    /// Its X25519 Noise key, hex.
    pub noise_key: String,
    /// Where it answered discovery last (`IP:PORT`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    /// Where its offload service is reached (`IP:PORT`) when it differs from the discovery
    /// address plus the advert's port (the emulator's port forwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl TrustedDevice {
    /// A device record from its keys.
    pub fn new(name: &str, advert_key: &Key, noise_key: &Key) -> Self {
        TrustedDevice {
            name: name.into(),
            advert_key: hex::encode(advert_key),
            noise_key: hex::encode(noise_key),
            discovery: None,
            session: None,
        }
    }

    /// The advert key.
    pub fn advert_key(&self) -> Option<Key> {
        key_from_hex(&self.advert_key)
    }

    /// The Noise key.
    pub fn noise_key(&self) -> Option<Key> {
        key_from_hex(&self.noise_key)
    }

    /// The fingerprint ([`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        match (self.advert_key(), self.noise_key()) {
            (Some(advert), Some(noise)) => fingerprint(&advert, &noise),
            _ => "(corrupt key)".into(),
        }
    }
}

/// The trust store: pinned devices.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrustStore {
    /// The devices, in the order they were pinned.
    pub devices: Vec<TrustedDevice>,
}

impl TrustStore {
    /// The device pinned with this advert key.
    pub fn by_advert_key(&self, advert_key: &Key) -> Option<&TrustedDevice> {
        self.devices.iter().find(|device| device.advert_key() == Some(*advert_key))
    }

    /// The device with this name.
    pub fn by_name(&self, name: &str) -> Option<&TrustedDevice> {
        self.devices.iter().find(|device| device.name == name)
    }

    /// Adds or replaces (same advert key, or same name) a device.
    pub fn pin(&mut self, device: TrustedDevice) {
        self.devices.retain(|old| old.advert_key != device.advert_key && old.name != device.name);
        self.devices.push(device);
    }
}

/// User settings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Settings {
    /// The device commands use without `--device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_device: Option<String>,
}

/// The `$JOS_HOME` folder.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$JOS_HOME`, else `$XDG_CONFIG_HOME/jos`, else `$HOME/.config/jos`.
    pub fn locate() -> Result<Home, StoreError> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
        if let Some(root) = non_empty("JOS_HOME") {
            return Ok(Home { root });
        }
        if let Some(config) = non_empty("XDG_CONFIG_HOME") {
            return Ok(Home { root: config.join("jos") });
        }
        non_empty("HOME").map(|home| Home { root: home.join(".config").join("jos") }).ok_or(StoreError::NoHome)
    }

    /// A home at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `signing.key`.
    pub fn signing_key_path(&self) -> PathBuf {
        self.root.join("signing.key")
    }

    /// `signing.pub`.
    pub fn signing_public_path(&self) -> PathBuf {
        self.root.join("signing.pub")
    }

    /// `client.key`.
    pub fn client_key_path(&self) -> PathBuf {
        self.root.join("client.key")
    }

    /// `client.pub`.
    pub fn client_public_path(&self) -> PathBuf {
        self.root.join("client.pub")
    }

    /// `emu/`: the emulated device's files.
    pub fn emu_dir(&self) -> PathBuf {
        self.root.join("emu")
    }

    /// The developer signing key (a warning on stderr if others may read its file).
    pub fn signing_key(&self) -> Result<SigningKey, StoreError> {
        let seed = read_secret_key_file(&self.signing_key_path())?;
        Ok(SigningKey { seed, public: jos_abi::signature::public_key(&seed) })
    }

    /// The client Noise key (a warning on stderr if others may read its file).
    pub fn client_key(&self) -> Result<ClientKey, StoreError> {
        let secret = read_secret_key_file(&self.client_key_path())?;
        Ok(ClientKey { secret, public: x25519_public(&secret) })
    }

    /// Writes both keys (new random ones).
    pub fn write_new_keys(&self) -> Result<(SigningKey, ClientKey), StoreError> {
        let io = |error| StoreError::Io(self.root.clone(), error);
        let seed = random_key().map_err(io)?;
        let secret = random_key().map_err(io)?;
        let signing = SigningKey { seed, public: jos_abi::signature::public_key(&seed) };
        let client = ClientKey { secret, public: x25519_public(&secret) };
        write_key_file(&self.signing_key_path(), "jos developer signing key (Ed25519 seed): keep secret", &seed, true)?;
        write_key_file(
            &self.signing_public_path(),
            "jos developer signing key (Ed25519 public)",
            &signing.public,
            false,
        )?;
        write_key_file(&self.client_key_path(), "jos client key (X25519 secret): keep secret", &secret, true)?;
        write_key_file(&self.client_public_path(), "jos client key (X25519 public)", &client.public, false)?;
        Ok((signing, client))
    }

    fn read_json<T: for<'de> Deserialize<'de> + Default>(&self, name: &str) -> Result<T, StoreError> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| StoreError::Corrupt(path, error.to_string())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(error) => Err(StoreError::Io(path, error)),
        }
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StoreError> {
        let path = self.root.join(name);
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|error| StoreError::Corrupt(path.clone(), error.to_string()))?;
        text.push('\n');
        // Written aside then renamed, so that a crash never leaves half a trust store.
        let temporary = self.root.join(format!(".{name}.tmp"));
        write_file(&temporary, text.as_bytes(), false)?;
        fs::rename(&temporary, &path).map_err(|error| StoreError::Io(path, error))
    }

    /// The trust store (empty if none yet).
    pub fn trust(&self) -> Result<TrustStore, StoreError> {
        self.read_json("trust.json")
    }

    /// Saves the trust store.
    pub fn save_trust(&self, store: &TrustStore) -> Result<(), StoreError> {
        self.write_json("trust.json", store)
    }

    /// The settings (defaults if none yet).
    pub fn settings(&self) -> Result<Settings, StoreError> {
        self.read_json("settings.json")
    }

    /// Saves the settings.
    pub fn save_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        self.write_json("settings.json", settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_hex() {
        let key = [0xab; 32];
        assert_eq!(key_from_hex(&hex::encode(key)), Some(key));
        assert_eq!(key_from_hex("abc"), None);
        assert_eq!(key_from_hex(&"zz".repeat(32)), None);
        assert_eq!(key_from_hex(&"00".repeat(31)), None);
    }

    #[test]
    fn fingerprints_are_grouped_and_match_prefixes() {
        let print = fingerprint(&[1; 32], &[2; 32]);
        assert_eq!(print.len(), 32 + 7);
        assert!(fingerprint_matches(&print, &print));
        assert!(fingerprint_matches(&print, &print.replace(':', "").to_uppercase()[..12]));
        assert!(!fingerprint_matches(&print, &print[..4]));
        assert_ne!(print, fingerprint(&[2; 32], &[1; 32]));
    }

    #[test]
    fn x25519_public_matches_snow_keypair() {
        let builder = snow::Builder::new("Noise_IK_25519_ChaChaPoly_SHA256".parse().unwrap());
        let pair = builder.generate_keypair().unwrap();
        let secret: Key = pair.private.as_slice().try_into().unwrap();
        assert_eq!(x25519_public(&secret).as_slice(), pair.public.as_slice());
    }
}

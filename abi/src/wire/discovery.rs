//! Discovery datagrams: a client's probe and a device's signed advert (UDP, [`DISCOVERY_PORT`]).
//!
//! Both start with `JOSD`, a version byte and a kind byte, then a reserved zero `u16` and the
//! probe's nonce, which the advert echoes. The advert ends with an Ed25519 signature by the
//! device's advert key over every byte before it, so a client that pinned that key knows the
//! advert (and its Noise key) came from the device, and the nonce shows it is fresh.
//!
//! A probe is padded with zeros to the longest advert ([`PROBE_LEN`] = [`MAX_ADVERT_LEN`]): the
//! answer to a probe is never larger than the probe, so a forged source address gets no
//! amplification out of a device (devices drop shorter datagrams unanswered).
//! [`Advert::new_checked`] validates every field but not the signature: call
//! [`Advert::verify_signature`], then check the key against the trust store.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::{Formats, WireError};
use crate::codec::{Cursor, Writer};
use crate::syscall::AbiVersion;

/// The UDP port devices listen on for probes.
pub const DISCOVERY_PORT: u16 = 4747;
/// The magic of both datagrams.
pub const MAGIC: [u8; 4] = *b"JOSD";
/// The discovery version.
pub const VERSION: u8 = 1;
/// Kind byte of a probe.
pub const KIND_PROBE: u8 = 1;
/// Kind byte of an advert.
pub const KIND_ADVERT: u8 = 2;
/// The longest device name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 32;
/// Length of an advert without its name.
pub const ADVERT_FIXED_LEN: usize = HEADER_LEN + 4 + 1 + 1 + 2 + 4 + 2 + 32 + 32 + 1 + 64;
/// Length of the longest advert (a name of [`MAX_NAME_LEN`] bytes).
pub const MAX_ADVERT_LEN: usize = ADVERT_FIXED_LEN + MAX_NAME_LEN;
/// Length of the header both datagrams start with (magic, version, kind, reserved, nonce).
pub const HEADER_LEN: usize = 4 + 1 + 1 + 2 + 8;
/// Length of a probe: its header, then zeros up to the longest advert, so that no answer is
/// larger than the probe that asked for it.
pub const PROBE_LEN: usize = MAX_ADVERT_LEN;
/// Length of the advert signature.
pub const ADVERT_SIGNATURE_LEN: usize = 64;

fn read_header(cursor: &mut Cursor<'_>, kind: u8) -> Result<u64, WireError> {
    if cursor.array::<4>().ok_or(WireError::Truncated)? != MAGIC {
        return Err(WireError::BadMagic);
    }
    if cursor.u8().ok_or(WireError::Truncated)? != VERSION {
        return Err(WireError::UnsupportedVersion);
    }
    if cursor.u8().ok_or(WireError::Truncated)? != kind {
        return Err(WireError::BadValue);
    }
    if cursor.u16().ok_or(WireError::Truncated)? != 0 {
        return Err(WireError::Reserved);
    }
    cursor.u64().ok_or(WireError::Truncated)
}

fn write_header(writer: &mut Writer<'_>, kind: u8, nonce: u64) -> Option<()> {
    writer.bytes(&MAGIC)?;
    writer.u8(VERSION)?;
    writer.u8(kind)?;
    writer.u16(0)?;
    writer.u64(nonce)
}

/// A probe (the `Repr`; a probe is fixed-size, so it is also its own view).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Probe {
    /// Echoed by every advert that answers.
    pub nonce: u64,
}

impl Probe {
    /// Decodes a probe; the datagram must be exactly [`PROBE_LEN`] bytes: the header, then
    /// zeros (`Truncated` if shorter, `Reserved` if a padding byte is not zero).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut cursor = Cursor::new(bytes);
        let nonce = read_header(&mut cursor, KIND_PROBE)?;
        let padding = cursor.take(PROBE_LEN - HEADER_LEN).ok_or(WireError::Truncated)?;
        if padding.iter().any(|byte| *byte != 0) {
            return Err(WireError::Reserved);
        }
        if !cursor.is_empty() {
            return Err(WireError::TrailingBytes);
        }
        Ok(Probe { nonce })
    }

    /// [`PROBE_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PROBE_LEN
    }

    /// Writes the probe and its zero padding; returns its length ([`PROBE_LEN`]).
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, WireError> {
        let out = buffer.get_mut(..PROBE_LEN).ok_or(WireError::BufferTooSmall)?;
        let mut writer = Writer::new(out);
        write_header(&mut writer, KIND_PROBE, self.nonce).ok_or(WireError::BufferTooSmall)?;
        out[HEADER_LEN..].fill(0);
        Ok(PROBE_LEN)
    }
}

/// A device's advert signing key, derived once from its seed: signing an advert with it costs
/// one Ed25519 signature (one fixed-base scalar multiplication), where [`AdvertRepr::emit`]
/// also derives the key pair from the seed first (another).
#[derive(Clone)]
pub struct AdvertKey {
    key: SigningKey,
}

impl AdvertKey {
    /// The key pair of `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        AdvertKey { key: SigningKey::from_bytes(seed) }
    }

    /// The Ed25519 public key (what adverts carry as `signing_key`).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

impl core::fmt::Debug for AdvertKey {
    /// Shows the public key only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdvertKey").field("public_key", &self.public_key()).finish_non_exhaustive()
    }
}

/// Whether a device is running a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LoadState {
    /// No job running.
    Idle = 0,
    /// A job is running.
    Busy = 1,
}

/// A device's advert (the `Repr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertRepr<'a> {
    /// The probe's nonce.
    pub nonce: u64,
    /// The ABI the device implements.
    pub abi_version: AbiVersion,
    /// Formats it accepts.
    pub formats: Formats,
    /// Idle or busy.
    pub state: LoadState,
    /// Jobs waiting.
    pub queued: u16,
    /// Free heap in bytes.
    pub free_memory: u32,
    /// The TCP port of the offload service.
    pub port: u16,
    /// The device's static Noise (X25519) public key.
    pub noise_key: [u8; 32],
    /// The device's Ed25519 advert key (signs this advert).
    pub signing_key: [u8; 32],
    /// The device's name (UTF-8, at most [`MAX_NAME_LEN`] bytes).
    pub name: &'a str,
}

impl<'a> AdvertRepr<'a> {
    /// Reads a checked advert.
    pub fn parse<T: AsRef<[u8]>>(advert: &'a Advert<T>) -> Result<Self, WireError> {
        parse_advert(advert.buffer.as_ref()).map(|(repr, _)| repr)
    }

    /// Encoded length, signature included.
    pub fn buffer_len(&self) -> usize {
        ADVERT_FIXED_LEN + self.name.len()
    }

    /// Writes the advert signed with the Ed25519 key of `seed` (whose public key should be
    /// `signing_key`); returns its length.
    pub fn emit(&self, buffer: &mut [u8], seed: &[u8; 32]) -> Result<usize, WireError> {
        self.emit_signed(buffer, &AdvertKey::from_seed(seed))
    }

    /// Writes the advert signed with `key` (whose public key should be `signing_key`); returns
    /// its length.
    pub fn emit_signed(&self, buffer: &mut [u8], key: &AdvertKey) -> Result<usize, WireError> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(WireError::TooLong);
        }
        let len = self.buffer_len();
        let out = buffer.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let mut writer = Writer::new(out);
        self.write_unsigned(&mut writer).ok_or(WireError::BufferTooSmall)?;
        let signed_len = writer.len();
        let signature = key.key.sign(&out[..signed_len]).to_bytes();
        out[signed_len..].copy_from_slice(&signature);
        Ok(len)
    }

    fn write_unsigned(&self, writer: &mut Writer<'_>) -> Option<()> {
        write_header(writer, KIND_ADVERT, self.nonce)?;
        writer.u32(self.abi_version.to_u32())?;
        writer.u8(self.formats.bits())?;
        writer.u8(self.state as u8)?;
        writer.u16(self.queued)?;
        writer.u32(self.free_memory)?;
        writer.u16(self.port)?;
        writer.bytes(&self.noise_key)?;
        writer.bytes(&self.signing_key)?;
        writer.u8(self.name.len() as u8)?;
        writer.bytes(self.name.as_bytes())
    }
}

/// Parses an advert; returns it and the length of its signed part.
fn parse_advert(bytes: &[u8]) -> Result<(AdvertRepr<'_>, usize), WireError> {
    use WireError::Truncated;
    let mut cursor = Cursor::new(bytes);
    let nonce = read_header(&mut cursor, KIND_ADVERT)?;
    let abi_version = AbiVersion::from_u32(cursor.u32().ok_or(Truncated)?);
    let formats = Formats::from_bits(cursor.u8().ok_or(Truncated)?).ok_or(WireError::BadValue)?;
    let state = match cursor.u8().ok_or(Truncated)? {
        0 => LoadState::Idle,
        1 => LoadState::Busy,
        _ => return Err(WireError::BadValue),
    };
    let queued = cursor.u16().ok_or(Truncated)?;
    let free_memory = cursor.u32().ok_or(Truncated)?;
    let port = cursor.u16().ok_or(Truncated)?;
    let noise_key = cursor.array().ok_or(Truncated)?;
    let signing_key = cursor.array().ok_or(Truncated)?;
    let name_len = usize::from(cursor.u8().ok_or(Truncated)?);
    if name_len > MAX_NAME_LEN {
        return Err(WireError::TooLong);
    }
    let name = core::str::from_utf8(cursor.take(name_len).ok_or(Truncated)?).map_err(|_| WireError::BadUtf8)?;
    let signed_len = bytes.len() - cursor.rest().len();
    cursor.take(ADVERT_SIGNATURE_LEN).ok_or(Truncated)?;
    if !cursor.is_empty() {
        return Err(WireError::TrailingBytes);
    }
    let repr =
        AdvertRepr { nonce, abi_version, formats, state, queued, free_memory, port, noise_key, signing_key, name };
    Ok((repr, signed_len))
}

/// A checked view of an advert datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Advert<T> {
    /// Validates every field (not the signature).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        parse_advert(buffer.as_ref())?;
        Ok(Advert { buffer })
    }

    /// Whether the signature verifies strictly (no small-order key or `R`) with the advert's own
    /// Ed25519 key. Whether that key is trusted is the client's decision (its trust store).
    pub fn verify_signature(&self) -> bool {
        let bytes = self.buffer.as_ref();
        let Ok((repr, signed_len)) = parse_advert(bytes) else { return false };
        let Ok(signature) = <[u8; ADVERT_SIGNATURE_LEN]>::try_from(&bytes[signed_len..]) else { return false };
        let Ok(key) = VerifyingKey::from_bytes(&repr.signing_key) else { return false };
        // Strict: a small-order key or signature component (a forgery anyone can make) fails.
        key.verify_strict(&bytes[..signed_len], &Signature::from_bytes(&signature)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::public_key;

    #[test]
    fn probe_golden() {
        let header = [b'J', b'O', b'S', b'D', 1, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        let mut golden = [0u8; 191];
        golden[..16].copy_from_slice(&header);
        assert_eq!(PROBE_LEN, 191, "the probe is as long as the longest advert");
        let probe = Probe { nonce: 0x0807_0605_0403_0201 };
        let mut buffer = [0xeeu8; PROBE_LEN];
        assert_eq!(probe.emit(&mut buffer), Ok(PROBE_LEN));
        assert_eq!(buffer, golden, "header, then zeros");
        assert_eq!(Probe::parse(&golden), Ok(probe));
        for len in 0..PROBE_LEN {
            assert_eq!(Probe::parse(&golden[..len]), Err(WireError::Truncated), "length {len}");
        }
        let cases: &[(usize, u8, WireError)] = &[
            (0, b'X', WireError::BadMagic),
            (4, 2, WireError::UnsupportedVersion),
            (5, 2, WireError::BadValue),
            (6, 1, WireError::Reserved),
            (16, 1, WireError::Reserved),
            (190, 0x80, WireError::Reserved),
        ];
        for &(at, value, expected) in cases {
            let mut bytes = golden;
            bytes[at] = value;
            assert_eq!(Probe::parse(&bytes), Err(expected), "byte {at}");
        }
        assert_eq!(Probe::parse(&[&golden[..], &[0]].concat()), Err(WireError::TrailingBytes));
        assert_eq!(probe.emit(&mut [0u8; PROBE_LEN - 1]), Err(WireError::BufferTooSmall));
    }

    #[test]
    fn no_advert_is_larger_than_a_probe() {
        let seed = [5u8; 32];
        let longest = AdvertRepr { name: "abcdefghijklmnopqrstuvwxyz012345", ..advert(&seed) };
        assert_eq!(longest.name.len(), MAX_NAME_LEN);
        let mut buffer = [0u8; 512];
        assert_eq!(longest.emit(&mut buffer, &seed), Ok(PROBE_LEN));
        assert_eq!(Advert::new_checked(&buffer[..PROBE_LEN]).map(|view| view.verify_signature()), Ok(true));
    }

    #[test]
    fn a_cached_advert_key_signs_as_the_seed_does() {
        let seed = [9u8; 32];
        let key = AdvertKey::from_seed(&seed);
        assert_eq!(key.public_key(), public_key(&seed));
        let repr = advert(&seed);
        let (mut by_seed, mut by_key) = ([0u8; 256], [0u8; 256]);
        let len = repr.emit(&mut by_seed, &seed).unwrap();
        assert_eq!(repr.emit_signed(&mut by_key, &key), Ok(len));
        assert_eq!(by_seed[..len], by_key[..len], "Ed25519 signatures are deterministic");
        assert!(!format!("{key:?}").contains(&format!("{:?}", seed[0..4].to_vec())), "Debug shows no secret");
    }

    fn advert(seed: &[u8; 32]) -> AdvertRepr<'static> {
        AdvertRepr {
            nonce: 42,
            abi_version: AbiVersion::CURRENT,
            formats: Formats::ALL,
            state: LoadState::Busy,
            queued: 3,
            free_memory: 0x0010_0000,
            port: 4748,
            noise_key: [0x33; 32],
            signing_key: public_key(seed),
            name: "pi-zero",
        }
    }

    #[test]
    fn advert_round_trip_and_signature() {
        let seed = [5u8; 32];
        let repr = advert(&seed);
        let mut buffer = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buffer, &seed), Ok(ADVERT_FIXED_LEN + 7));
        let mut expected_start = vec![b'J', b'O', b'S', b'D', 1, 2, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0];
        expected_start.extend_from_slice(&[0, 0, 1, 0, 3, 1, 3, 0, 0, 0, 0x10, 0, 0x8c, 0x12]);
        assert_eq!(&buffer[..expected_start.len()], &expected_start[..]);
        let name_at = ADVERT_FIXED_LEN - 64 - 1;
        assert_eq!(&buffer[name_at..name_at + 8], b"\x07pi-zero");

        let view = Advert::new_checked(&buffer[..]).unwrap();
        assert!(view.verify_signature());
        assert_eq!(AdvertRepr::parse(&view), Ok(repr));

        // Any changed byte in the signed part breaks the signature (or the parse).
        for at in [8, 20, 40, name_at + 2] {
            let mut changed = buffer.clone();
            changed[at] ^= 1;
            if let Ok(view) = Advert::new_checked(&changed[..]) {
                assert!(!view.verify_signature(), "byte {at}");
            }
        }
        // Signed with another key than the one it names.
        let mut forged = vec![0u8; repr.buffer_len()];
        repr.emit(&mut forged, &[6u8; 32]).unwrap();
        assert!(!Advert::new_checked(&forged[..]).unwrap().verify_signature());

        for len in 0..buffer.len() {
            assert!(Advert::new_checked(&buffer[..len]).is_err(), "length {len}");
        }
        let mut bad_state = buffer.clone();
        bad_state[21] = 2;
        assert_eq!(Advert::new_checked(&bad_state[..]), Err(WireError::BadValue));
        let mut bad_formats = buffer.clone();
        bad_formats[20] = 4;
        assert_eq!(Advert::new_checked(&bad_formats[..]), Err(WireError::BadValue));
        let long = AdvertRepr { name: "a-name-that-is-longer-than-32-bytes", ..repr };
        assert_eq!(long.emit(&mut vec![0u8; 300], &seed), Err(WireError::TooLong));
    }
}

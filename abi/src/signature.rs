//! Code signatures: Ed25519 over SHA-256, in the WebAssembly tool-conventions format.
//!
//! A **wasm module** carries its signature in a custom section named `signature` that must be the
//! module's first section. The section holds a *signature payload* (below); the signed content is
//! every byte of the module after that section, hashed with SHA-256. A module signed by the
//! `wasmsign2` tool verifies here and the other way round (tested both ways).
//!
//! A **native blob** ([`crate::blob`]) carries the same payload as its trailer, after
//! `signed_len`; the signed content is the blob's signed part (header, image, tables). Its content
//! type is [`ContentType::NativeBlob`], so a wasm signature never passes for a blob or back.
//!
//! Payload (varuint = unsigned LEB128 u32; `vec` = varuint length then bytes):
//! ```text
//! spec_version u7 (1) | content_type u7 | hash_function u7 (1 = SHA-256) |
//! varuint set_count (<= 64) | set_count x vec(signed_hashes)
//! signed_hashes = varuint hash_count (<= 64) | hash_count x 32 bytes |
//!                 varuint signature_count (<= 256) | signature_count x vec(signature)
//! signature     = vec(key_id, empty = none) | algorithm u8 (1 = Ed25519) | vec(64-byte signature)
//! ```
//! Each signature signs `"wasmsig" | spec_version | content_type | hash_function | hashes...` of
//! its set (pure Ed25519, checked strictly: [`verify_strict_parts`]). A module verifies when some
//! trusted key's signature verifies over a set that contains the SHA-256 of the content, and that
//! key has the right for the format ([`SignerRights`]); when several do, the verdict does not
//! depend on the order of the signers ([`verify_payload`]). Key ids are
//! `HMAC-SHA256(key = public key, message = "key_id")[..12]`, the same default ids `wasmsign2`
//! attaches. [`check_signer_key`] refuses keys no honest signer has (small order, mixed order,
//! non-canonical encodings); the boot configuration and `jos-cli provision` apply it.
//!
//! Untrusted bytes go through [`SignaturePayload::new_checked`] (or [`split_wasm`]), which walks
//! every length once; afterwards no accessor can panic. Verification is no_std and allocates
//! nothing; signing for the host needs the `alloc` feature only to build the signed module.

use core::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::ed25519::signature::{MultipartSigner, MultipartVerifier};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::blob::Blob;
use crate::error::ErrorCode;

/// The custom section name of a wasm signature.
pub const SECTION_NAME: &[u8] = b"signature";
/// The payload format version.
pub const SPEC_VERSION: u8 = 1;
/// Hash function id of SHA-256.
pub const HASH_SHA256: u8 = 1;
/// Algorithm id of Ed25519.
pub const ALGORITHM_ED25519: u8 = 1;
/// The domain string every signed message starts with.
pub const DOMAIN: &[u8; 7] = b"wasmsig";
/// Most hashes in a set, and most sets in a payload.
pub const MAX_HASHES: usize = 64;
/// Most signatures in a set, and in a whole payload (all sets together).
pub const MAX_SIGNATURES: usize = 256;
/// Most Ed25519 verifications one payload may need against one list of signers: a signature with
/// a key id needs one for each trusted key with that id, one without a key id one for each
/// trusted key. A payload that needs more is refused with [`SignatureError::TooMany`] whatever
/// the order of the signers, after at most this many verifications. 32 is the configuration's
/// most signers (`config::MAX_SIGNERS`), so one anonymous signature (as `wasmsign2` writes
/// without a key id) is always checked against every trusted key.
pub const MAX_VERIFICATIONS: usize = 32;
/// Length of a key id.
pub const KEY_ID_LEN: usize = 12;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;
/// The first 8 bytes of a wasm module (magic and version 1).
pub const WASM_PREAMBLE: [u8; 8] = *b"\0asm\x01\0\0\0";

/// What a payload signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ContentType {
    /// A WebAssembly module (the tool-conventions value).
    WasmModule = 0x01,
    /// A jos native blob (jos's own value, `'J'`).
    NativeBlob = 0x4a,
}

impl TryFrom<u8> for ContentType {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        match value {
            0x01 => Ok(ContentType::WasmModule),
            0x4a => Ok(ContentType::NativeBlob),
            other => Err(other),
        }
    }
}

bitflags::bitflags! {
    /// What a trusted signer may sign, and what the code it signs may use: a bitset.
    ///
    /// Bits 0-1 say which formats the signer may sign ([`WASM`](Self::WASM),
    /// [`NATIVE`](Self::NATIVE)); bits 2-4 are the capabilities a job signed by it is granted
    /// ([`NETWORK`](Self::NETWORK), [`SCREEN`](Self::SCREEN), [`GPIO`](Self::GPIO)). Other bits are
    /// refused by [`from_bits`](Self::from_bits). Layout: `docs/formats.md`; trust model:
    /// `docs/security.md`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SignerRights: u32 {
        /// May sign wasm modules.
        const WASM = 1;
        /// May sign native blobs (code that runs at kernel level).
        const NATIVE = 2;
        /// Code it signs may use UDP sockets (`udp_bind`, `udp_send`, `udp_recv`, `udp_close`) on
        /// the ports the device policy grants.
        const NETWORK = 4;
        /// Code it signs may print on the status screen (`screen_print`).
        const SCREEN = 8;
        /// Code it signs may drive and read GPIO pins (`gpio_write`, `gpio_read`).
        const GPIO = 16;
        /// Both formats, no capabilities (what a signer had before capabilities existed).
        const FORMATS = Self::WASM.bits() | Self::NATIVE.bits();
        /// Every right: both formats and every capability.
        const ALL = Self::FORMATS.bits() | Self::NETWORK.bits() | Self::SCREEN.bits() | Self::GPIO.bits();
    }
}

impl SignerRights {
    /// No rights.
    pub const NONE: SignerRights = SignerRights::empty();

    /// The right a content type needs.
    pub const fn for_content(content: ContentType) -> SignerRights {
        match content {
            ContentType::WasmModule => SignerRights::WASM,
            ContentType::NativeBlob => SignerRights::NATIVE,
        }
    }
}

/// A key the device trusts to sign code, with its rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrustedSigner {
    /// The Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// What it may sign.
    pub rights: SignerRights,
}

/// A successful verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Index in the list given to the verifier of the chosen signer ([`verify_payload`]).
    pub signer: usize,
    /// The signer's public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// The signer's rights.
    pub rights: SignerRights,
    /// SHA-256 of the signed content.
    pub content_hash: [u8; HASH_LEN],
}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum SignatureError {
    /// No signature: the module's first section is not `signature`, or the blob has no trailer,
    /// or the payload holds no Ed25519 signature.
    Missing = 1,
    /// The wasm module's preamble or first section is malformed.
    MalformedModule = 2,
    /// The signature payload is malformed (a length past the end, trailing bytes, bad varuint,
    /// a signature that is not 64 bytes).
    Malformed = 3,
    /// The payload's spec version is not 1.
    UnsupportedVersion = 4,
    /// The payload's content type is not the one of the verified content.
    WrongContentType = 5,
    /// The payload's hash function is not SHA-256.
    UnsupportedHash = 6,
    /// More than [`MAX_HASHES`] sets or hashes, or [`MAX_SIGNATURES`] signatures (in a set or in
    /// the payload), or the signatures would need more than [`MAX_VERIFICATIONS`] Ed25519
    /// verifications.
    TooMany = 7,
    /// No trusted key made any of the signatures.
    UnknownKey = 8,
    /// A signature names a trusted key by its id but does not verify.
    BadSignature = 9,
    /// A trusted key's signature verifies, but over different bytes (the content was changed).
    ContentMismatch = 10,
    /// The signer is trusted, but not for this format (e.g. a wasm-only signer on a native blob).
    NotPermitted = 11,
}

impl SignatureError {
    /// The code this error crosses the ABI and the wire with.
    pub const fn code(self) -> ErrorCode {
        match self {
            SignatureError::Missing | SignatureError::BadSignature | SignatureError::ContentMismatch => {
                ErrorCode::BadSignature
            }
            SignatureError::MalformedModule | SignatureError::Malformed | SignatureError::TooMany => {
                ErrorCode::Malformed
            }
            SignatureError::UnsupportedVersion | SignatureError::UnsupportedHash => ErrorCode::Unsupported,
            SignatureError::WrongContentType => ErrorCode::BadSignature,
            SignatureError::UnknownKey | SignatureError::NotPermitted => ErrorCode::UntrustedSigner,
        }
    }

    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            SignatureError::Missing => "not signed",
            SignatureError::MalformedModule => "malformed wasm module header or signature section",
            SignatureError::Malformed => "malformed signature payload",
            SignatureError::UnsupportedVersion => "unsupported signature format version",
            SignatureError::WrongContentType => "signature is for another kind of content",
            SignatureError::UnsupportedHash => "unsupported hash function",
            SignatureError::TooMany => "too many hashes or signatures",
            SignatureError::UnknownKey => "signed by no trusted key",
            SignatureError::BadSignature => "signature does not verify",
            SignatureError::ContentMismatch => "signature is over different bytes",
            SignatureError::NotPermitted => "signer not trusted for this format",
        }
    }

    /// Rank for reporting the most specific failure among several signatures.
    fn rank(self) -> u8 {
        match self {
            SignatureError::NotPermitted => 4,
            SignatureError::ContentMismatch => 3,
            SignatureError::BadSignature => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; HASH_LEN] {
    Sha256::digest(bytes).into()
}

/// HMAC-SHA256 (RFC 2104), by the `hmac` crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; HASH_LEN] {
    use hmac::{KeyInit, Mac};
    // HMAC takes a key of any length.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(key) else { unreachable!("HMAC accepts every key length") };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The key id of a public key: `HMAC-SHA256(key = public_key, message = "key_id")[..12]`.
pub fn key_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let mac = hmac_sha256(public_key, b"key_id");
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&mac[..KEY_ID_LEN]);
    id
}

/// The Ed25519 public key of a 32-byte secret seed.
pub fn public_key(seed: &[u8; 32]) -> [u8; PUBLIC_KEY_LEN] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Why [`check_signer_key`] refuses an Ed25519 public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeakKey {
    /// The 32 bytes are not the encoding of a curve point.
    NotAPoint,
    /// A point, but not in its canonical encoding (y not reduced, or the sign bit set on x = 0):
    /// the same key under a second name.
    NonCanonical,
    /// One of the eight points of small order (the identity and the torsion points): a
    /// signature under it can be made without any secret, valid for almost every message.
    SmallOrder,
    /// A point with a small-order component (not in the prime-order subgroup): no secret key
    /// yields it, and cofactored and cofactorless verifiers disagree on its signatures.
    MixedOrder,
}

impl WeakKey {
    /// A short lower-case description.
    pub const fn message(self) -> &'static str {
        match self {
            WeakKey::NotAPoint => "not an Ed25519 point",
            WeakKey::NonCanonical => "not the canonical encoding of its point",
            WeakKey::SmallOrder => "a point of small order (signatures under it can be forged)",
            WeakKey::MixedOrder => "a point with a small-order component (no secret key has it)",
        }
    }
}

impl fmt::Display for WeakKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Checks that `key` is an Ed25519 public key an honest signer can have: a canonically encoded
/// point of the prime-order subgroup, not the identity. Every key [`public_key`] returns passes;
/// the boot configuration refuses a signer that does not ([`crate::config::ConfigError`]), and
/// so does `jos-cli provision`. Costs one scalar multiplication (the torsion check).
pub fn check_signer_key(key: &[u8; PUBLIC_KEY_LEN]) -> Result<(), WeakKey> {
    let point = CompressedEdwardsY(*key).decompress().ok_or(WeakKey::NotAPoint)?;
    if point.compress().to_bytes() != *key {
        return Err(WeakKey::NonCanonical);
    }
    if point.is_small_order() {
        return Err(WeakKey::SmallOrder);
    }
    if !point.is_torsion_free() {
        return Err(WeakKey::MixedOrder);
    }
    Ok(())
}

#[cfg(test)]
std::thread_local! {
    /// Ed25519 verifications this thread ran (tests count the work a payload causes).
    static VERIFICATIONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Strict Ed25519 verification of a message given in parts: `ed25519-dalek`'s `verify_strict`
/// semantics (the key and the signature's `R` must not be of small order; `s` must be reduced and
/// `R` canonical, as in every `ed25519-dalek` verification) with its multipart message. A
/// signature that passes has no malleable or small-order component; a small-order key passes
/// nothing.
///
/// `R` needs no decompression for this: the final check compares `R`'s bytes with the canonical
/// encoding of a point, so an `R` that is not one never passes, and a canonical `R` of small
/// order is one of the eight [`SMALL_ORDER_POINTS`] (a byte comparison).
pub fn verify_strict_parts(key: &VerifyingKey, message: &[&[u8]], signature: &[u8; SIGNATURE_LEN]) -> bool {
    #[cfg(test)]
    VERIFICATIONS.with(|count| count.set(count.get() + 1));
    let r = &signature[..32];
    if SMALL_ORDER_POINTS.iter().any(|point| point[..] == *r) || key.is_weak() {
        return false;
    }
    key.multipart_verify(message, &Signature::from_bytes(signature)).is_ok()
}

/// The canonical encodings of the eight Ed25519 points of small order (the identity, one point
/// of order 2, two of order 4, four of order 8).
pub const SMALL_ORDER_POINTS: [[u8; 32]; 8] = {
    let order_8 = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ];
    let other_order_8 = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    let mut points = [[0u8; 32]; 8];
    points[0][0] = 1; // the identity, y = 1
    points[1] = [0xff; 32]; // y = -1 = p - 1
    points[1][0] = 0xec;
    points[1][31] = 0x7f;
    points[3][31] = 0x80; // y = 0 with x negative (points[2]: x positive)
    points[4] = order_8;
    points[5] = order_8;
    points[5][31] |= 0x80;
    points[6] = other_order_8;
    points[7] = other_order_8;
    points[7][31] |= 0x80;
    points
};

/// A cursor over untrusted bytes; every read is bounds-checked and returns `None` past the end.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    /// A one-byte varuint7.
    fn u7(&mut self) -> Option<u8> {
        self.byte().filter(|byte| *byte < 0x80)
    }

    /// An unsigned LEB128 u32 of at most 5 bytes, without bits past 32.
    pub(crate) fn varuint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for index in 0..5 {
            let byte = self.byte()?;
            if index == 4 && byte > 0x0f {
                return None;
            }
            value |= u32::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.bytes.len() {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(taken)
    }

    /// A varuint length then that many bytes.
    pub(crate) fn vec(&mut self) -> Option<&'a [u8]> {
        let len = self.varuint()? as usize;
        self.take(len)
    }
}

/// Bytes of the unsigned LEB128 encoding of `value`.
fn varuint_len(value: usize) -> usize {
    let mut len = 1;
    let mut value = value >> 7;
    while value != 0 {
        len += 1;
        value >>= 7;
    }
    len
}

/// Writes `value` as unsigned LEB128 at `out[*at..]`; the caller sized `out` with
/// [`varuint_len`].
fn put_varuint(out: &mut [u8], at: &mut usize, mut value: usize) {
    loop {
        let mut byte = (value & 0x7f) as u8;
        value >>= 7;
        if value != 0 {
            byte |= 0x80;
        }
        out[*at] = byte;
        *at += 1;
        if value == 0 {
            return;
        }
    }
}

fn put_bytes(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
    out[*at..*at + bytes.len()].copy_from_slice(bytes);
    *at += bytes.len();
}

/// A checked view of a signature payload; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignaturePayload<'a> {
    content_type: ContentType,
    sets: &'a [u8],
    set_count: usize,
}

impl<'a> SignaturePayload<'a> {
    /// Validates a payload: every length, count and nested vector, with no trailing bytes.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, SignatureError> {
        use SignatureError::Malformed;
        let mut reader = Reader::new(bytes);
        if reader.u7().ok_or(Malformed)? != SPEC_VERSION {
            return Err(SignatureError::UnsupportedVersion);
        }
        let content_type =
            ContentType::try_from(reader.u7().ok_or(Malformed)?).map_err(|_| SignatureError::WrongContentType)?;
        if reader.u7().ok_or(Malformed)? != HASH_SHA256 {
            return Err(SignatureError::UnsupportedHash);
        }
        let set_count = reader.varuint().ok_or(Malformed)? as usize;
        if set_count > MAX_HASHES {
            return Err(SignatureError::TooMany);
        }
        let sets = reader.rest();
        let mut signatures = 0;
        for _ in 0..set_count {
            signatures += check_set(reader.vec().ok_or(Malformed)?)?;
            // Bounds the walks over every signature that verification makes once per signer.
            if signatures > MAX_SIGNATURES {
                return Err(SignatureError::TooMany);
            }
        }
        if !reader.is_empty() {
            return Err(Malformed);
        }
        Ok(SignaturePayload { content_type, sets, set_count })
    }

    /// What the payload signs.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// The signed hash sets.
    pub fn sets(&self) -> SetIter<'a> {
        SetIter { reader: Reader::new(self.sets), left: self.set_count }
    }

    /// Whether the payload holds at least one Ed25519 signature.
    pub fn has_signature(&self) -> bool {
        self.sets().any(|set| set.signatures().any(|signature| signature.algorithm == ALGORITHM_ED25519))
    }
}

/// Checks one set; returns its number of signatures.
fn check_set(bytes: &[u8]) -> Result<usize, SignatureError> {
    use SignatureError::Malformed;
    let mut reader = Reader::new(bytes);
    let hash_count = reader.varuint().ok_or(Malformed)? as usize;
    if hash_count > MAX_HASHES {
        return Err(SignatureError::TooMany);
    }
    reader.take(hash_count * HASH_LEN).ok_or(Malformed)?;
    let signature_count = reader.varuint().ok_or(Malformed)? as usize;
    if signature_count > MAX_SIGNATURES {
        return Err(SignatureError::TooMany);
    }
    for _ in 0..signature_count {
        parse_signature(reader.vec().ok_or(Malformed)?).ok_or(Malformed)?;
    }
    if !reader.is_empty() {
        return Err(Malformed);
    }
    Ok(signature_count)
}

fn parse_signature(bytes: &[u8]) -> Option<SignatureEntry<'_>> {
    let mut reader = Reader::new(bytes);
    let key_id = reader.vec()?;
    let algorithm = reader.byte()?;
    let signature = reader.vec()?;
    if !reader.is_empty() || (algorithm == ALGORITHM_ED25519 && signature.len() != SIGNATURE_LEN) {
        return None;
    }
    Some(SignatureEntry { key_id: (!key_id.is_empty()).then_some(key_id), algorithm, signature })
}

/// Iterator over the sets of a [`SignaturePayload`].
#[derive(Clone)]
pub struct SetIter<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for SetIter<'a> {
    type Item = SignedHashes<'a>;

    fn next(&mut self) -> Option<SignedHashes<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut reader = Reader::new(self.reader.vec()?);
        let hash_count = reader.varuint()? as usize;
        let hashes = reader.take(hash_count.checked_mul(HASH_LEN)?)?;
        let signature_count = reader.varuint()? as usize;
        Some(SignedHashes { hashes, signatures: reader.rest(), signature_count })
    }
}

/// One set of hashes and the signatures over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedHashes<'a> {
    hashes: &'a [u8],
    signatures: &'a [u8],
    signature_count: usize,
}

impl<'a> SignedHashes<'a> {
    /// The hashes, concatenated (each [`HASH_LEN`] bytes): the signed message after its prefix.
    pub fn hash_bytes(&self) -> &'a [u8] {
        self.hashes
    }

    /// The hashes.
    pub fn hashes(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.hashes.chunks_exact(HASH_LEN)
    }

    /// The signatures.
    pub fn signatures(&self) -> SignatureIter<'a> {
        SignatureIter { reader: Reader::new(self.signatures), left: self.signature_count }
    }
}

/// Iterator over the signatures of a [`SignedHashes`].
#[derive(Clone)]
pub struct SignatureIter<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for SignatureIter<'a> {
    type Item = SignatureEntry<'a>;

    fn next(&mut self) -> Option<SignatureEntry<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        parse_signature(self.reader.vec()?)
    }
}

/// One signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureEntry<'a> {
    /// The signer's key id, if the signature names one.
    pub key_id: Option<&'a [u8]>,
    /// Algorithm id ([`ALGORITHM_ED25519`] is the only one that can verify).
    pub algorithm: u8,
    /// The signature bytes (64 for Ed25519).
    pub signature: &'a [u8],
}

/// The signed prefix of every message: domain, version, content type, hash function.
fn message_prefix(content_type: ContentType) -> [u8; 10] {
    let mut prefix = [0u8; 10];
    prefix[..7].copy_from_slice(DOMAIN);
    prefix[7] = SPEC_VERSION;
    prefix[8] = content_type as u8;
    prefix[9] = HASH_SHA256;
    prefix
}

/// Whether `candidate` is chosen over `other` when both verify: more rights first (counted in
/// bits), then the larger rights value, then the smaller public key. A total order on
/// `(rights, key)`, so the choice does not depend on where either sits in the signer list.
fn preferred(candidate: &Verified, other: &Verified) -> bool {
    let rank = |verified: &Verified| (verified.rights.bits().count_ones(), verified.rights.bits());
    match rank(candidate).cmp(&rank(other)) {
        core::cmp::Ordering::Equal => candidate.public_key < other.public_key,
        order => order == core::cmp::Ordering::Greater,
    }
}

/// Verifies a checked payload over content whose SHA-256 is `content_hash`, against `signers`;
/// the signer must hold the right for `content_type`.
///
/// The verdict does not depend on the order of `signers`:
/// - **Work.** Each Ed25519 signature entry is a candidate for each trusted key it may be from:
///   the key its key id names, or every trusted key when it has none (no cheaper test tells an
///   anonymous signature's key). When the candidates number more than [`MAX_VERIFICATIONS`] the
///   payload is refused with [`SignatureError::TooMany`], however the signers are ordered, after
///   at most that many verifications. Small-order keys are no candidates (strict verification
///   passes nothing under them).
/// - **Choice.** When several trusted signers verify (each with the right for the format), the
///   one with the most rights is chosen, ties broken by the larger rights value and then the
///   smaller public key ([`Verified`] names it and its index). A job then holds the rights of
///   one signer, never a union: the same rights as if the other signatures had been stripped,
///   which anyone holding the module can do.
/// - **Failure.** Otherwise the most specific failure over all candidates is reported.
pub fn verify_payload(
    payload: &SignaturePayload<'_>,
    content_type: ContentType,
    content_hash: &[u8; HASH_LEN],
    signers: &[TrustedSigner],
) -> Result<Verified, SignatureError> {
    if payload.content_type() != content_type {
        return Err(SignatureError::WrongContentType);
    }
    if !payload.has_signature() {
        return Err(SignatureError::Missing);
    }
    let required = SignerRights::for_content(content_type);
    let prefix = message_prefix(content_type);
    let mut failure = SignatureError::UnknownKey;
    let mut note = |error: SignatureError| {
        if error.rank() > failure.rank() {
            failure = error;
        }
    };
    let mut candidates = 0;
    let mut chosen: Option<Verified> = None;
    for (index, signer) in signers.iter().enumerate() {
        let Ok(key) = VerifyingKey::from_bytes(&signer.public_key) else { continue };
        if key.is_weak() {
            continue;
        }
        let id = key_id(&signer.public_key);
        // Once this signer verified, its other signatures are counted but not checked again.
        let mut verified = false;
        for set in payload.sets() {
            for entry in set.signatures() {
                let Ok(bytes) = <&[u8; SIGNATURE_LEN]>::try_from(entry.signature) else { continue };
                if entry.algorithm != ALGORITHM_ED25519 || entry.key_id.is_some_and(|named| named != id) {
                    continue;
                }
                // Each verification costs a double scalar multiplication: bound the work a
                // payload can ask for by counting candidates, not attempts, so the bound is met
                // or missed whatever the signer order.
                candidates += 1;
                if candidates > MAX_VERIFICATIONS {
                    return Err(SignatureError::TooMany);
                }
                if verified {
                    continue;
                }
                if !verify_strict_parts(&key, &[&prefix, set.hash_bytes()], bytes) {
                    if entry.key_id.is_some() {
                        note(SignatureError::BadSignature);
                    }
                    continue;
                }
                if !set.hashes().any(|hash| hash == content_hash) {
                    note(SignatureError::ContentMismatch);
                    continue;
                }
                if !signer.rights.contains(required) {
                    note(SignatureError::NotPermitted);
                    continue;
                }
                verified = true;
                let found = Verified {
                    signer: index,
                    public_key: signer.public_key,
                    rights: signer.rights,
                    content_hash: *content_hash,
                };
                if chosen.as_ref().is_none_or(|other| preferred(&found, other)) {
                    chosen = Some(found);
                }
            }
        }
    }
    chosen.ok_or(failure)
}

/// A wasm module split at its signature section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedModule<'a> {
    /// The checked payload of the `signature` section.
    pub payload: SignaturePayload<'a>,
    /// The whole signature section (id, size, name, payload).
    pub section: &'a [u8],
    /// The signed content: every byte after the signature section.
    pub content: &'a [u8],
}

/// Finds and checks the signature section, which must be the module's first section.
pub fn split_wasm(module: &[u8]) -> Result<SignedModule<'_>, SignatureError> {
    let (section, content) = first_signature_section(module)?.ok_or(SignatureError::Missing)?;
    let mut reader = Reader::new(section);
    reader.byte();
    let body = reader.vec().ok_or(SignatureError::MalformedModule)?;
    let mut body = Reader::new(body);
    body.vec().ok_or(SignatureError::MalformedModule)?;
    let payload = SignaturePayload::new_checked(body.rest())?;
    Ok(SignedModule { payload, section, content })
}

/// A module split into its signature section and the rest.
type SectionSplit<'a> = (&'a [u8], &'a [u8]);

/// `(signature section, rest)` if the first section is a `signature` custom section, `None` if
/// the module has another first section (or none).
fn first_signature_section(module: &[u8]) -> Result<Option<SectionSplit<'_>>, SignatureError> {
    use SignatureError::MalformedModule;
    let sections = module.strip_prefix(&WASM_PREAMBLE[..]).ok_or(MalformedModule)?;
    let mut reader = Reader::new(sections);
    match reader.byte() {
        Some(0) => {}
        _ => return Ok(None),
    }
    let body = reader.vec().ok_or(MalformedModule)?;
    let mut name = Reader::new(body);
    if name.vec().ok_or(MalformedModule)? != SECTION_NAME {
        return Ok(None);
    }
    let section_len = sections.len() - reader.rest().len();
    Ok(Some((&sections[..section_len], reader.rest())))
}

/// Verifies a wasm module's embedded signature; the signer needs [`SignerRights::WASM`].
pub fn verify_wasm(module: &[u8], signers: &[TrustedSigner]) -> Result<Verified, SignatureError> {
    let signed = split_wasm(module)?;
    verify_payload(&signed.payload, ContentType::WasmModule, &sha256(signed.content), signers)
}

/// Verifies a checked blob's trailer over its signed part; the signer needs
/// [`SignerRights::NATIVE`].
pub fn verify_blob<T: AsRef<[u8]>>(blob: &Blob<T>, signers: &[TrustedSigner]) -> Result<Verified, SignatureError> {
    if blob.trailer().is_empty() {
        return Err(SignatureError::Missing);
    }
    let payload = SignaturePayload::new_checked(blob.trailer())?;
    verify_payload(&payload, ContentType::NativeBlob, &sha256(blob.signed_part()), signers)
}

/// The payload jos writes: one set with one hash and one signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureRepr {
    /// What is signed.
    pub content_type: ContentType,
    /// SHA-256 of the content.
    pub hash: [u8; HASH_LEN],
    /// The signer's key id, if attached.
    pub key_id: Option<[u8; KEY_ID_LEN]>,
    /// The Ed25519 signature.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignatureRepr {
    /// Signs `content` with the Ed25519 key of `seed`, attaching the key id if asked.
    pub fn sign(content_type: ContentType, content: &[u8], seed: &[u8; 32], with_key_id: bool) -> Self {
        let key = SigningKey::from_bytes(seed);
        let hash = sha256(content);
        let signature = key.multipart_sign(&[&message_prefix(content_type), &hash]).to_bytes();
        let key_id = with_key_id.then(|| key_id(&key.verifying_key().to_bytes()));
        SignatureRepr { content_type, hash, key_id, signature }
    }

    /// Reads a payload of exactly one set with one hash and one Ed25519 signature; other shapes
    /// (valid for verification) are refused with [`SignatureError::TooMany`].
    pub fn parse(payload: &SignaturePayload<'_>) -> Result<Self, SignatureError> {
        let mut sets = payload.sets();
        let (Some(set), None) = (sets.next(), sets.next()) else { return Err(SignatureError::TooMany) };
        let mut signatures = set.signatures();
        let (Some(entry), None) = (signatures.next(), signatures.next()) else {
            return Err(SignatureError::TooMany);
        };
        let hash = <[u8; HASH_LEN]>::try_from(set.hash_bytes()).map_err(|_| SignatureError::TooMany)?;
        let signature = <[u8; SIGNATURE_LEN]>::try_from(entry.signature).map_err(|_| SignatureError::Malformed)?;
        let key_id = match entry.key_id {
            None => None,
            Some(id) => Some(<[u8; KEY_ID_LEN]>::try_from(id).map_err(|_| SignatureError::Malformed)?),
        };
        if entry.algorithm != ALGORITHM_ED25519 {
            return Err(SignatureError::Malformed);
        }
        Ok(SignatureRepr { content_type: payload.content_type(), hash, key_id, signature })
    }

    fn entry_len(&self) -> usize {
        let key_id_len = if self.key_id.is_some() { KEY_ID_LEN } else { 0 };
        varuint_len(key_id_len) + key_id_len + 1 + varuint_len(SIGNATURE_LEN) + SIGNATURE_LEN
    }

    fn set_len(&self) -> usize {
        let entry = self.entry_len();
        varuint_len(1) + HASH_LEN + varuint_len(1) + varuint_len(entry) + entry
    }

    /// Length of the encoded payload.
    pub fn buffer_len(&self) -> usize {
        let set = self.set_len();
        3 + varuint_len(1) + varuint_len(set) + set
    }

    /// Writes the payload into `buffer[..buffer_len()]`; `None` if the buffer is too short.
    pub fn emit(&self, buffer: &mut [u8]) -> Option<()> {
        let out = buffer.get_mut(..self.buffer_len())?;
        let mut at = 0;
        put_bytes(out, &mut at, &[SPEC_VERSION, self.content_type as u8, HASH_SHA256]);
        put_varuint(out, &mut at, 1);
        put_varuint(out, &mut at, self.set_len());
        put_varuint(out, &mut at, 1);
        put_bytes(out, &mut at, &self.hash);
        put_varuint(out, &mut at, 1);
        put_varuint(out, &mut at, self.entry_len());
        match &self.key_id {
            Some(id) => {
                put_varuint(out, &mut at, KEY_ID_LEN);
                put_bytes(out, &mut at, id);
            }
            None => put_varuint(out, &mut at, 0),
        }
        put_bytes(out, &mut at, &[ALGORITHM_ED25519]);
        put_varuint(out, &mut at, SIGNATURE_LEN);
        put_bytes(out, &mut at, &self.signature);
        Some(())
    }
}

/// Host-side signing (needs `alloc`).
#[cfg(any(feature = "alloc", test))]
mod signing {
    use alloc::vec::Vec;

    use super::*;
    use crate::blob::BlobError;

    /// Signs a wasm module: returns the module with a `signature` section first, replacing the
    /// one already there (as `wasmsign2` does). Fails only on a module without a wasm preamble
    /// or with a malformed first section.
    pub fn sign_wasm(module: &[u8], seed: &[u8; 32], with_key_id: bool) -> Result<Vec<u8>, SignatureError> {
        let content = match first_signature_section(module)? {
            Some((_, rest)) => rest,
            None => &module[WASM_PREAMBLE.len()..],
        };
        let repr = SignatureRepr::sign(ContentType::WasmModule, content, seed, with_key_id);
        let payload_len = repr.buffer_len();
        let body_len = varuint_len(SECTION_NAME.len()) + SECTION_NAME.len() + payload_len;
        let section_len = 1 + varuint_len(body_len) + body_len;
        let mut out = Vec::with_capacity(WASM_PREAMBLE.len() + section_len + content.len());
        out.extend_from_slice(&WASM_PREAMBLE);
        let mut section = alloc::vec![0u8; section_len];
        let mut at = 0;
        put_bytes(&mut section, &mut at, &[0]);
        put_varuint(&mut section, &mut at, body_len);
        put_varuint(&mut section, &mut at, SECTION_NAME.len());
        put_bytes(&mut section, &mut at, SECTION_NAME);
        repr.emit(&mut section[at..]).ok_or(SignatureError::Malformed)?;
        out.extend_from_slice(&section);
        out.extend_from_slice(content);
        Ok(out)
    }

    /// Signs a native blob: returns its signed part followed by a new signature trailer
    /// (replacing any trailer it had).
    pub fn sign_blob(blob: &[u8], seed: &[u8; 32], with_key_id: bool) -> Result<Vec<u8>, BlobError> {
        let blob = Blob::new_checked(blob)?;
        let signed = blob.signed_part();
        let repr = SignatureRepr::sign(ContentType::NativeBlob, signed, seed, with_key_id);
        let mut out = alloc::vec![0u8; signed.len() + repr.buffer_len()];
        out[..signed.len()].copy_from_slice(signed);
        repr.emit(&mut out[signed.len()..]).ok_or(BlobError::BufferTooSmall)?;
        Ok(out)
    }
}

#[cfg(any(feature = "alloc", test))]
pub use signing::{sign_blob, sign_wasm};

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;
    use sha2::Digest;

    use super::*;
    use crate::blob::{Arch, BlobFlags, BlobRepr, Import, Table};
    use crate::syscall::{AbiVersion, SyscallId};

    const SEED: [u8; 32] = [7; 32];
    const OTHER_SEED: [u8; 32] = [9; 32];

    /// A valid module: type `() -> ()`, one function, its body.
    #[rustfmt::skip]
    const MODULE: &[u8] = &[
        0, b'a', b's', b'm', 1, 0, 0, 0,
        1, 4, 1, 0x60, 0, 0,        // type section
        3, 2, 1, 0,                 // function section
        10, 4, 1, 2, 0, 0x0b,       // code section
    ];

    fn signer(seed: &[u8; 32], rights: SignerRights) -> TrustedSigner {
        TrustedSigner { public_key: public_key(seed), rights }
    }

    #[test]
    fn golden_payload_bytes() {
        let repr = SignatureRepr {
            content_type: ContentType::WasmModule,
            hash: [0x11; 32],
            key_id: Some([0x22; 12]),
            signature: [0x33; 64],
        };
        let mut expected = vec![1, 1, 1, 1, 114, 1];
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[1, 79, 12]);
        expected.extend_from_slice(&[0x22; 12]);
        expected.extend_from_slice(&[1, 64]);
        expected.extend_from_slice(&[0x33; 64]);
        assert_eq!(repr.buffer_len(), expected.len());
        let mut buffer = vec![0; repr.buffer_len()];
        repr.emit(&mut buffer).unwrap();
        assert_eq!(buffer, expected);
        assert!(repr.emit(&mut buffer[1..]).is_none());

        let payload = SignaturePayload::new_checked(&expected).unwrap();
        assert_eq!(SignatureRepr::parse(&payload), Ok(repr));
        let set = payload.sets().next().unwrap();
        assert_eq!(set.hashes().collect::<Vec<_>>(), vec![&[0x11; 32][..]]);
        let entry = set.signatures().next().unwrap();
        assert_eq!(entry.key_id, Some(&[0x22; 12][..]));

        for len in 0..expected.len() {
            assert!(SignaturePayload::new_checked(&expected[..len]).is_err(), "length {len}");
        }
        let mut trailing = expected.clone();
        trailing.push(0);
        assert_eq!(SignaturePayload::new_checked(&trailing), Err(SignatureError::Malformed));
    }

    #[test]
    fn payload_header_checks() {
        let cases: &[(&[u8], SignatureError)] = &[
            (&[2, 1, 1, 0], SignatureError::UnsupportedVersion),
            (&[1, 2, 1, 0], SignatureError::WrongContentType),
            (&[1, 1, 2, 0], SignatureError::UnsupportedHash),
            (&[1, 1, 1, 65], SignatureError::TooMany),
            (&[1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10], SignatureError::Malformed),
            (&[1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0], SignatureError::Malformed),
            (&[0x81, 1, 1, 0], SignatureError::Malformed),
            (&[1, 1, 1, 1, 2, 65, 0], SignatureError::TooMany),
            (&[1, 1, 1, 1, 3, 0, 0x81, 0x02], SignatureError::TooMany),
            (&[1, 1, 1, 1, 2, 1, 0], SignatureError::Malformed),
            // An Ed25519 signature of 3 bytes.
            (&[1, 1, 1, 1, 8, 0, 1, 5, 0, 1, 2, 0, 0], SignatureError::Malformed),
        ];
        for (bytes, expected) in cases {
            assert_eq!(SignaturePayload::new_checked(bytes), Err(*expected), "{bytes:?}");
        }
        // An empty set list parses but holds no signature.
        let empty = SignaturePayload::new_checked(&[1, 1, 1, 0]).unwrap();
        assert!(!empty.has_signature());
    }

    #[test]
    fn key_id_matches_hmac_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn wasm_sign_and_verify() {
        let signers = [signer(&OTHER_SEED, SignerRights::ALL), signer(&SEED, SignerRights::WASM)];
        for with_key_id in [false, true] {
            let signed = sign_wasm(MODULE, &SEED, with_key_id).unwrap();
            let verified = verify_wasm(&signed, &signers).unwrap();
            assert_eq!(verified.signer, 1);
            assert_eq!(verified.content_hash, sha256(&MODULE[8..]));
            // Signing again replaces the section instead of stacking one.
            let again = sign_wasm(&signed, &SEED, with_key_id).unwrap();
            assert_eq!(again, signed);
        }
    }

    #[test]
    fn wasm_refusals() {
        let signed = sign_wasm(MODULE, &SEED, true).unwrap();
        let trusted = [signer(&SEED, SignerRights::ALL)];
        assert_eq!(verify_wasm(MODULE, &trusted), Err(SignatureError::Missing));
        assert_eq!(verify_wasm(&MODULE[..8], &trusted), Err(SignatureError::Missing));
        assert_eq!(verify_wasm(b"\0asm", &trusted), Err(SignatureError::MalformedModule));
        assert_eq!(verify_wasm(&signed[..12], &trusted), Err(SignatureError::MalformedModule));
        assert_eq!(verify_wasm(&signed, &[signer(&OTHER_SEED, SignerRights::ALL)]), Err(SignatureError::UnknownKey));
        assert_eq!(verify_wasm(&signed, &[]), Err(SignatureError::UnknownKey));
        assert_eq!(verify_wasm(&signed, &[signer(&SEED, SignerRights::NATIVE)]), Err(SignatureError::NotPermitted));

        let mut changed = signed.clone();
        *changed.last_mut().unwrap() = 0x01;
        assert_eq!(verify_wasm(&changed, &trusted), Err(SignatureError::ContentMismatch));

        let mut forged = signed.clone();
        let at = signed.len() - MODULE.len() + 8 - 1; // last signature byte
        forged[at] ^= 1;
        assert_eq!(verify_wasm(&forged, &trusted), Err(SignatureError::BadSignature));
        // Without a key id, a forged signature is indistinguishable from a stranger's.
        let mut anonymous = sign_wasm(MODULE, &SEED, false).unwrap();
        let at = anonymous.len() - MODULE.len() + 8 - 1;
        anonymous[at] ^= 1;
        assert_eq!(verify_wasm(&anonymous, &trusted), Err(SignatureError::UnknownKey));

        // The signature section must come first.
        let mut late = MODULE.to_vec();
        late.extend_from_slice(&signed[8..signed.len() - MODULE.len() + 8]);
        assert_eq!(verify_wasm(&late, &trusted), Err(SignatureError::Missing));
    }

    fn blob() -> Vec<u8> {
        let imports = [Import { slot: 8, syscall: SyscallId::Log }];
        let repr = BlobRepr {
            abi_version: AbiVersion::CURRENT,
            arch: Arch::Armv6,
            flags: BlobFlags::NONE,
            entry: 0,
            text: &[0x1e, 0xff, 0x2f, 0xe1],
            rodata: b"abcd",
            data: &[0; 4],
            bss_len: 0,
            align: 4,
            imports: Table::from_slice(&imports),
            relocations: Table::from_slice(&[]),
            wasm_source: None,
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn blob_sign_and_verify() {
        let unsigned = blob();
        let checked = Blob::new_checked(&unsigned[..]).unwrap();
        let native = [signer(&SEED, SignerRights::NATIVE)];
        assert_eq!(verify_blob(&checked, &native), Err(SignatureError::Missing));

        let signed = sign_blob(&unsigned, &SEED, true).unwrap();
        let checked = Blob::new_checked(&signed[..]).unwrap();
        assert_eq!(checked.signed_part(), &unsigned[..]);
        assert_eq!(verify_blob(&checked, &native).map(|v| v.signer), Ok(0));
        assert_eq!(verify_blob(&checked, &[signer(&SEED, SignerRights::WASM)]), Err(SignatureError::NotPermitted));
        assert_eq!(verify_blob(&checked, &[signer(&OTHER_SEED, SignerRights::ALL)]), Err(SignatureError::UnknownKey));
        assert_eq!(sign_blob(&signed, &SEED, true).unwrap(), signed, "re-signing replaces the trailer");

        // A changed image byte: the signature is over different bytes.
        let mut changed = signed.clone();
        changed[crate::blob::HEADER_LEN + 4] ^= 0x20;
        let checked = Blob::new_checked(&changed[..]).unwrap();
        assert_eq!(verify_blob(&checked, &native), Err(SignatureError::ContentMismatch));

        // A wasm signature payload does not pass for a blob.
        let wasm = sign_wasm(MODULE, &SEED, true).unwrap();
        let wasm_payload = split_wasm(&wasm).unwrap();
        let section_payload_start =
            wasm_payload.section.len() - SignatureRepr::parse(&wasm_payload.payload).unwrap().buffer_len();
        let mut mixed = unsigned.clone();
        mixed.extend_from_slice(&wasm_payload.section[section_payload_start..]);
        let checked = Blob::new_checked(&mixed[..]).unwrap();
        assert_eq!(verify_blob(&checked, &native), Err(SignatureError::WrongContentType));

        let mut junk = unsigned.clone();
        junk.extend_from_slice(&[1, 0x4a, 1, 1]);
        let checked = Blob::new_checked(&junk[..]).unwrap();
        assert_eq!(verify_blob(&checked, &native), Err(SignatureError::Malformed));
    }

    #[test]
    fn verification_work_is_bounded() {
        // 20 anonymous signatures that verify under no key: each is tried with each of two keys.
        let content = b"content";
        let good = SignatureRepr::sign(ContentType::NativeBlob, content, &SEED, false);
        let mut entry = vec![0, ALGORITHM_ED25519, 64];
        entry.extend_from_slice(&[0x44; 64]);
        let build = |bogus: usize| {
            let mut set = vec![1];
            set.extend_from_slice(&good.hash);
            set.push((bogus + 1) as u8);
            for _ in 0..bogus {
                set.push(entry.len() as u8);
                set.extend_from_slice(&entry);
            }
            let mut last = vec![0, ALGORITHM_ED25519, 64];
            last.extend_from_slice(&good.signature);
            set.push(last.len() as u8);
            set.extend_from_slice(&last);
            let mut payload = vec![1, ContentType::NativeBlob as u8, 1, 1];
            payload.extend_from_slice(&[0x80 | (set.len() & 0x7f) as u8, (set.len() >> 7) as u8]);
            payload.extend_from_slice(&set);
            payload
        };
        let signers = [signer(&SEED, SignerRights::ALL)];
        let hash = sha256(content);
        let few = build(3);
        let payload = SignaturePayload::new_checked(&few).unwrap();
        assert_eq!(verify_payload(&payload, ContentType::NativeBlob, &hash, &signers).map(|v| v.signer), Ok(0));
        let many = build(MAX_VERIFICATIONS);
        let payload = SignaturePayload::new_checked(&many).unwrap();
        assert_eq!(verify_payload(&payload, ContentType::NativeBlob, &hash, &signers), Err(SignatureError::TooMany));
    }

    fn hex32(text: &str) -> [u8; 32] {
        let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect();
        bytes.try_into().unwrap()
    }

    /// The eight points of small order in their canonical encodings (identity, order 2, two of
    /// order 4, four of order 8), as listed in "Taming the many EdDSAs" (Brendel et al., 2020).
    const SMALL_ORDER_CANONICAL: [&str; 8] = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ];
    /// Non-canonical encodings of small-order points: x = 0 with the sign bit set, y = p, y = p + 1.
    const SMALL_ORDER_NON_CANONICAL: [&str; 6] = [
        "0100000000000000000000000000000000000000000000000000000000000080",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ];

    #[test]
    fn weak_signer_keys_are_named() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        // The list is the dalek crate's own torsion subgroup, and each point is refused.
        let listed: Vec<[u8; 32]> = SMALL_ORDER_CANONICAL.iter().map(|text| hex32(text)).collect();
        for point in EIGHT_TORSION {
            assert!(listed.contains(&point.compress().to_bytes()), "{:?}", point.compress());
            assert!(SMALL_ORDER_POINTS.contains(&point.compress().to_bytes()));
        }
        let mut sorted = SMALL_ORDER_POINTS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        for key in &listed {
            assert_eq!(check_signer_key(key), Err(WeakKey::SmallOrder), "{key:02x?}");
            assert!(VerifyingKey::from_bytes(key).unwrap().is_weak());
        }
        for text in SMALL_ORDER_NON_CANONICAL {
            let key = hex32(text);
            assert!(VerifyingKey::from_bytes(&key).is_ok(), "{text} decodes: the check must catch it");
            assert_eq!(check_signer_key(&key), Err(WeakKey::NonCanonical), "{text}");
        }
        // A strong key plus a torsion point: not small order, yet no secret key has it.
        let strong = public_key(&SEED);
        assert_eq!(check_signer_key(&strong), Ok(()));
        let point = CompressedEdwardsY(strong).decompress().unwrap();
        for torsion in &EIGHT_TORSION[1..] {
            let mixed = (point + torsion).compress().to_bytes();
            assert!(!VerifyingKey::from_bytes(&mixed).unwrap().is_weak());
            assert_eq!(check_signer_key(&mixed), Err(WeakKey::MixedOrder));
        }
        // y = p + 2 .. p + 18: the non-canonical name of a strong point where one exists.
        let mut found = 0;
        for low in 0xefu8..=0xff {
            let mut key = [0xff; 32];
            key[0] = low;
            key[31] = 0x7f;
            if let Some(point) = CompressedEdwardsY(key).decompress() {
                assert_ne!(point.compress().to_bytes(), key);
                assert_eq!(check_signer_key(&key), Err(WeakKey::NonCanonical));
                found += 1;
            }
        }
        assert!(found > 0, "some y in 2..=18 is on the curve");
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = (2u8..)
            .find(|y| {
                CompressedEdwardsY(
                    [*y; 1].iter().chain([0u8; 31].iter()).copied().collect::<Vec<_>>().try_into().unwrap(),
                )
                .decompress()
                .is_none()
            })
            .unwrap();
        assert_eq!(check_signer_key(&not_a_point), Err(WeakKey::NotAPoint));
        for seed in 0..64u8 {
            assert_eq!(check_signer_key(&public_key(&[seed; 32])), Ok(()), "every generated key is strong");
        }
    }

    /// `R = identity, s = 0` verifies under the identity key for every message without strict
    /// checks: the forgery a small-order signer key allows.
    fn forged_under_identity(module: &[u8]) -> Vec<u8> {
        let identity = hex32(SMALL_ORDER_CANONICAL[0]);
        let mut forged = sign_wasm(module, &SEED, false).unwrap();
        let at = forged.len() - (module.len() - 8) - SIGNATURE_LEN;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&identity);
        forged[at..at + 64].copy_from_slice(&signature);
        forged
    }

    #[test]
    fn small_order_signer_keys_verify_nothing() {
        let identity = hex32(SMALL_ORDER_CANONICAL[0]);
        let forged = forged_under_identity(MODULE);
        // Without strict checks this forgery passes (what `multipart_verify` alone accepts).
        let signed = split_wasm(&forged).unwrap();
        let entry = signed.payload.sets().next().unwrap().signatures().next().unwrap();
        let set = signed.payload.sets().next().unwrap();
        let key = VerifyingKey::from_bytes(&identity).unwrap();
        let prefix = message_prefix(ContentType::WasmModule);
        let signature = Signature::from_bytes(entry.signature.try_into().unwrap());
        assert!(key.multipart_verify(&[&prefix, set.hash_bytes()], &signature).is_ok(), "the forgery is real");
        // Strictly, it does not verify, under any small-order key, with or without other signers.
        for text in SMALL_ORDER_CANONICAL.iter().chain(SMALL_ORDER_NON_CANONICAL.iter()) {
            let weak = signer(&[0; 32], SignerRights::ALL);
            let weak = TrustedSigner { public_key: hex32(text), ..weak };
            assert_eq!(verify_wasm(&forged, &[weak]), Err(SignatureError::UnknownKey), "{text}");
            assert_eq!(
                verify_wasm(&forged, &[signer(&OTHER_SEED, SignerRights::ALL), weak]),
                Err(SignatureError::UnknownKey)
            );
        }
    }

    /// A signature by a strong key whose `R` is the identity: `s = k a`, which passes the
    /// cofactorless equation; strict verification refuses its small-order `R`.
    fn identity_r_signature(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
        use curve25519_dalek::scalar::Scalar;
        use sha2::Sha512;
        let expanded: [u8; 64] = Sha512::digest(seed).into();
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&expanded[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let a = Scalar::from_bytes_mod_order(secret);
        let r = hex32(SMALL_ORDER_CANONICAL[0]);
        let mut hasher = Sha512::new();
        hasher.update(r);
        hasher.update(public_key(seed));
        hasher.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r);
        signature[32..].copy_from_slice((k * a).as_bytes());
        signature
    }

    #[test]
    fn verification_is_strict() {
        use curve25519_dalek::scalar::Scalar;
        let hash = sha256(&MODULE[8..]);
        let prefix = message_prefix(ContentType::WasmModule);
        let message = [&prefix[..], &hash[..]].concat();
        let key = VerifyingKey::from_bytes(&public_key(&SEED)).unwrap();
        let good = SigningKey::from_bytes(&SEED).sign(&message).to_bytes();

        // A small-order R: accepted by the plain check, refused strictly.
        let small_r = identity_r_signature(&SEED, &message);
        assert!(key.multipart_verify(&[&prefix, &hash], &Signature::from_bytes(&small_r)).is_ok());
        // s + l: the same signature with an unreduced scalar.
        let mut big_s = good;
        let l = Scalar::ZERO - Scalar::ONE; // l - 1
        let mut carry = 1u16; // s + (l - 1) + 1 = s + l, as integers
        for (index, byte) in big_s[32..].iter_mut().enumerate() {
            let sum = u16::from(*byte) + u16::from(l.as_bytes()[index]) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        // R's sign bit flipped: the negated R.
        let mut other_r = good;
        other_r[31] ^= 0x80;
        // Small-order R in non-canonical encodings (with s = k a as for the identity).
        let mut cases: Vec<(&str, [u8; 64], bool)> = vec![
            ("good", good, true),
            ("small-order R", small_r, false),
            ("s + l", big_s, false),
            ("negated R", other_r, false),
        ];
        for text in SMALL_ORDER_NON_CANONICAL {
            let mut signature = small_r;
            signature[..32].copy_from_slice(&hex32(text));
            cases.push((text, signature, false));
        }
        // Every small-order R with the good s, and the good R with s = 0.
        for point in SMALL_ORDER_POINTS {
            let mut signature = good;
            signature[..32].copy_from_slice(&point);
            cases.push(("small-order R, good s", signature, false));
        }
        let mut zero_s = good;
        zero_s[32..].fill(0);
        cases.push(("s = 0", zero_s, false));
        for (what, signature, valid) in cases {
            let signature: [u8; 64] = signature;
            let strict = key.verify_strict(&message, &Signature::from_bytes(&signature)).is_ok();
            assert_eq!(strict, valid, "{what}: verify_strict");
            assert_eq!(
                verify_strict_parts(&key, &[&prefix, &hash], &signature),
                valid,
                "{what}: the multipart strict check agrees"
            );
        }
        // Through the module path: the small-order-R signature with a key id is refused.
        let mut module = sign_wasm(MODULE, &SEED, true).unwrap();
        let at = module.len() - (MODULE.len() - 8) - SIGNATURE_LEN;
        module[at..at + 64].copy_from_slice(&small_r);
        assert_eq!(verify_wasm(&module, &[signer(&SEED, SignerRights::ALL)]), Err(SignatureError::BadSignature));
        module[at..at + 64].copy_from_slice(&good);
        assert!(verify_wasm(&module, &[signer(&SEED, SignerRights::ALL)]).is_ok());
    }

    /// A signature entry: key id (if any) and signature.
    type Entry = (Option<[u8; 12]>, [u8; 64]);

    /// A payload from sets of (hashes, entries).
    fn payload(content_type: ContentType, sets: &[(Vec<[u8; 32]>, Vec<Entry>)]) -> Vec<u8> {
        fn varuint(out: &mut Vec<u8>, value: usize) {
            let mut value = value;
            loop {
                let byte = (value & 0x7f) as u8;
                value >>= 7;
                out.push(if value != 0 { byte | 0x80 } else { byte });
                if value == 0 {
                    return;
                }
            }
        }
        let mut out = vec![SPEC_VERSION, content_type as u8, HASH_SHA256];
        varuint(&mut out, sets.len());
        for (hashes, entries) in sets {
            let mut set = Vec::new();
            varuint(&mut set, hashes.len());
            hashes.iter().for_each(|hash| set.extend_from_slice(hash));
            varuint(&mut set, entries.len());
            for (id, signature) in entries {
                let mut entry = Vec::new();
                match id {
                    Some(id) => {
                        varuint(&mut entry, 12);
                        entry.extend_from_slice(id);
                    }
                    None => varuint(&mut entry, 0),
                }
                entry.push(ALGORITHM_ED25519);
                varuint(&mut entry, 64);
                entry.extend_from_slice(signature);
                varuint(&mut set, entry.len());
                set.extend_from_slice(&entry);
            }
            varuint(&mut out, set.len());
            out.extend_from_slice(&set);
        }
        out
    }

    /// The signature of `seed` over a set of hashes.
    fn sign_set(seed: &[u8; 32], content_type: ContentType, hashes: &[[u8; 32]]) -> [u8; 64] {
        let mut message = message_prefix(content_type).to_vec();
        hashes.iter().for_each(|hash| message.extend_from_slice(hash));
        SigningKey::from_bytes(seed).sign(&message).to_bytes()
    }

    /// The verdict with the chosen signer named by key and rights (not by index), and the
    /// verifications it cost.
    fn verdict(
        bytes: &[u8],
        hash: &[u8; 32],
        signers: &[TrustedSigner],
    ) -> (Result<([u8; 32], SignerRights), SignatureError>, usize) {
        let payload = SignaturePayload::new_checked(bytes).unwrap();
        let before = VERIFICATIONS.with(|count| count.get());
        let result = verify_payload(&payload, ContentType::WasmModule, hash, signers);
        let spent = VERIFICATIONS.with(|count| count.get()) - before;
        if let Ok(verified) = result {
            assert_eq!(signers[verified.signer].public_key, verified.public_key);
            assert_eq!(signers[verified.signer].rights, verified.rights);
        }
        (result.map(|verified| (verified.public_key, verified.rights)), spent)
    }

    /// Every permutation of `items` (Heap's algorithm).
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
            if k <= 1 {
                out.push(items.clone());
                return;
            }
            for i in 0..k {
                heap(k - 1, items, out);
                let swap = if k.is_multiple_of(2) { i } else { 0 };
                items.swap(swap, k - 1);
            }
        }
        let mut out = Vec::new();
        heap(items.len(), &mut items.to_vec(), &mut out);
        out
    }

    #[test]
    fn the_verdict_does_not_depend_on_signer_order() {
        let hash = sha256(b"content");
        let wasm = ContentType::WasmModule;
        let seeds: Vec<[u8; 32]> = (0..5u8).map(|i| [0x30 + i; 32]).collect();
        let rights = [
            SignerRights::ALL,                                              // signs other bytes
            SignerRights::WASM,                                             // signs, with its key id
            SignerRights::WASM | SignerRights::NETWORK,                     // signs without a key id
            SignerRights::NATIVE | SignerRights::GPIO,                      // signs, but may not sign wasm
            SignerRights::WASM | SignerRights::SCREEN | SignerRights::GPIO, // does not sign
        ];
        let signers: Vec<TrustedSigner> = seeds
            .iter()
            .zip(rights)
            .map(|(seed, rights)| TrustedSigner { public_key: public_key(seed), rights })
            .collect();
        let other = sha256(b"other content");
        let entries = [
            (None, sign_set(&seeds[0], wasm, &[other])),
            (Some(key_id(&signers[1].public_key)), sign_set(&seeds[1], wasm, &[hash])),
            (None, sign_set(&seeds[2], wasm, &[hash])),
            (None, sign_set(&seeds[3], wasm, &[hash])),
        ];
        let (first, second) = entries.split_at(1);
        let bytes = payload(wasm, &[(vec![other], first.to_vec()), (vec![hash], second.to_vec())]);
        let expected = Ok((signers[2].public_key, signers[2].rights));
        let mut costs = std::collections::BTreeSet::new();
        for order in permutations(&signers) {
            let (result, spent) = verdict(&bytes, &hash, &order);
            assert_eq!(result, expected, "order {:?}", order.iter().map(|s| s.rights.bits()).collect::<Vec<_>>());
            assert!(spent <= MAX_VERIFICATIONS);
            costs.insert(spent);
        }
        assert!(costs.iter().all(|cost| *cost <= 3 * 5 + 1), "{costs:?}");

        // Two signers with incomparable rights both verify: the one with more rights, whatever
        // the order (on equal counts, the larger rights value, then the smaller key).
        let a = TrustedSigner { public_key: public_key(&seeds[0]), rights: SignerRights::WASM | SignerRights::NETWORK };
        let b = TrustedSigner {
            public_key: public_key(&seeds[1]),
            rights: SignerRights::WASM | SignerRights::SCREEN | SignerRights::GPIO,
        };
        let c = TrustedSigner { public_key: public_key(&seeds[2]), rights: SignerRights::WASM | SignerRights::GPIO };
        let all_sign = payload(
            wasm,
            &[(
                vec![hash],
                [(&seeds[0], &a), (&seeds[1], &b), (&seeds[2], &c)]
                    .iter()
                    .map(|(seed, signer)| (Some(key_id(&signer.public_key)), sign_set(seed, wasm, &[hash])))
                    .collect(),
            )],
        );
        for order in permutations(&[a, b, c]) {
            assert_eq!(verdict(&all_sign, &hash, &order).0, Ok((b.public_key, b.rights)));
        }
        for order in permutations(&[a, c]) {
            assert_eq!(verdict(&all_sign, &hash, &order).0, Ok((c.public_key, c.rights)), "GPIO (16) over NETWORK (4)");
        }

        // Failures too: nobody verifies with the right, the most specific failure wins everywhere.
        let refused = payload(
            wasm,
            &[(
                vec![hash],
                vec![(Some(key_id(&signers[3].public_key)), sign_set(&seeds[3], wasm, &[hash])), (None, [0x44; 64])],
            )],
        );
        for order in permutations(&signers) {
            assert_eq!(verdict(&refused, &hash, &order).0, Err(SignatureError::NotPermitted));
        }
    }

    #[test]
    fn one_anonymous_signature_is_checked_against_every_signer_in_any_order() {
        // 20 trusted keys, one anonymous signature by one of them: on every rotation and
        // reversal of the list it verifies, with at most 20 verifications.
        let hash = sha256(b"content");
        let wasm = ContentType::WasmModule;
        let seeds: Vec<[u8; 32]> = (0..20u8).map(|i| [0x60 + i; 32]).collect();
        let signers: Vec<TrustedSigner> = seeds
            .iter()
            .map(|seed| TrustedSigner { public_key: public_key(seed), rights: SignerRights::WASM })
            .collect();
        let bytes = payload(wasm, &[(vec![hash], vec![(None, sign_set(&seeds[13], wasm, &[hash]))])]);
        let expected = Ok((signers[13].public_key, SignerRights::WASM));
        for turn in 0..signers.len() {
            let mut order = signers.clone();
            order.rotate_left(turn);
            let (result, spent) = verdict(&bytes, &hash, &order);
            assert_eq!(result, expected, "rotation {turn}");
            assert!(spent <= signers.len());
            order.reverse();
            assert_eq!(verdict(&bytes, &hash, &order).0, expected, "reversed rotation {turn}");
        }
    }

    #[test]
    fn verification_work_is_bounded_whatever_the_payload() {
        let hash = sha256(b"content");
        let wasm = ContentType::WasmModule;
        let seeds: Vec<[u8; 32]> = (0..33u8).map(|i| [0x80 + i; 32]).collect();
        let signers: Vec<TrustedSigner> = seeds
            .iter()
            .map(|seed| TrustedSigner { public_key: public_key(seed), rights: SignerRights::WASM })
            .collect();
        let good = (None, sign_set(&seeds[0], wasm, &[hash]));
        // 32 signers: one anonymous signature fits, two do not (64 candidates), in any order.
        let one = payload(wasm, &[(vec![hash], vec![good])]);
        let two = payload(wasm, &[(vec![hash], vec![(None, [0x44; 64]), good])]);
        for order in [signers[..32].to_vec(), signers[..32].iter().rev().copied().collect()] {
            let (result, spent) = verdict(&one, &hash, &order);
            assert_eq!(result, Ok((signers[0].public_key, SignerRights::WASM)));
            assert!(spent <= MAX_VERIFICATIONS);
            let (result, spent) = verdict(&two, &hash, &order);
            assert_eq!(result, Err(SignatureError::TooMany));
            assert!(spent <= MAX_VERIFICATIONS, "{spent}");
        }
        // 33 signers: even one anonymous signature is too many, before any success.
        let (result, spent) = verdict(&one, &hash, &signers);
        assert_eq!(result, Err(SignatureError::TooMany));
        assert!(spent <= MAX_VERIFICATIONS);
        // 256 signatures naming keys nobody trusts: no verification at all.
        let strangers = payload(wasm, &[(vec![hash], vec![(Some([0x77; 12]), [0x44; 64]); MAX_SIGNATURES])]);
        assert_eq!(verdict(&strangers, &hash, &signers), (Err(SignatureError::UnknownKey), 0));
        // 256 anonymous ones: refused after at most the bound.
        let anonymous = payload(wasm, &[(vec![hash], vec![(None, [0x44; 64]); MAX_SIGNATURES])]);
        let (result, spent) = verdict(&anonymous, &hash, &signers[..1]);
        assert_eq!(result, Err(SignatureError::TooMany));
        assert!(spent <= MAX_VERIFICATIONS);
        // More than 256 signatures over all sets: refused by the structure check.
        let half = vec![(Some([0x77; 12]), [0x44; 64]); MAX_SIGNATURES / 2 + 1];
        let spread = payload(wasm, &[(vec![hash], half.clone()), (vec![hash], half)]);
        assert_eq!(SignaturePayload::new_checked(&spread), Err(SignatureError::TooMany));
    }

    #[test]
    fn rights_bits() {
        assert!(SignerRights::ALL.contains(SignerRights::NATIVE));
        assert!(!SignerRights::WASM.contains(SignerRights::NATIVE));
        assert_eq!(SignerRights::WASM | SignerRights::NATIVE, SignerRights::FORMATS);
        assert_eq!(
            SignerRights::FORMATS | SignerRights::NETWORK | SignerRights::SCREEN | SignerRights::GPIO,
            SignerRights::ALL
        );
        assert_eq!(SignerRights::from_bits(3), Some(SignerRights::FORMATS));
        assert_eq!(SignerRights::from_bits(0x1f), Some(SignerRights::ALL));
        assert_eq!(SignerRights::from_bits(0x20), None);
        assert_eq!(SignerRights::from_bits(0x8000_0004), None);
        for (right, bits) in [(SignerRights::NETWORK, 4), (SignerRights::SCREEN, 8), (SignerRights::GPIO, 16)] {
            assert_eq!(right.bits(), bits);
            assert_eq!(SignerRights::from_bits(bits), Some(right));
            assert!(!SignerRights::FORMATS.contains(right));
        }
        assert_eq!(SignatureError::NotPermitted.code(), ErrorCode::UntrustedSigner);
        assert_eq!(SignatureError::ContentMismatch.code(), ErrorCode::BadSignature);
    }

    /// Interoperability with the `wasmsign2` crate, both ways.
    mod wasmsign2_interop {
        use super::*;

        fn wasmsign2_keys(seed: &[u8; 32]) -> (wasmsign2::SecretKey, wasmsign2::PublicKey) {
            let public = public_key(seed);
            let mut secret = vec![0x81];
            secret.extend_from_slice(seed);
            secret.extend_from_slice(&public);
            let mut public_bytes = vec![0x01];
            public_bytes.extend_from_slice(&public);
            (
                wasmsign2::SecretKey::from_bytes(&secret).unwrap(),
                wasmsign2::PublicKey::from_bytes(&public_bytes).unwrap(),
            )
        }

        fn wasmsign2_sign(seed: &[u8; 32], key_id: bool) -> Vec<u8> {
            let (secret, public) = wasmsign2_keys(seed);
            let module = wasmsign2::Module::deserialize(&mut &MODULE[..]).unwrap();
            let id = public.attach_default_key_id().key_id().cloned();
            let signed = secret.sign(module, if key_id { id.as_ref() } else { None }).unwrap();
            let mut out = Vec::new();
            signed.serialize(&mut out).unwrap();
            out
        }

        #[test]
        fn wasmsign2_signed_verifies_in_jos() {
            for with_key_id in [false, true] {
                let signed = wasmsign2_sign(&SEED, with_key_id);
                let verified = verify_wasm(&signed, &[signer(&SEED, SignerRights::WASM)]).unwrap();
                assert_eq!(verified.content_hash, sha256(&MODULE[8..]));
                // jos writes byte-identical output for the same key (Ed25519 is deterministic).
                assert_eq!(sign_wasm(MODULE, &SEED, with_key_id).unwrap(), signed);
                assert_eq!(
                    verify_wasm(&signed, &[signer(&OTHER_SEED, SignerRights::WASM)]),
                    Err(SignatureError::UnknownKey)
                );
            }
        }

        #[test]
        fn jos_signed_verifies_in_wasmsign2() {
            let (_, public) = wasmsign2_keys(&SEED);
            let (_, other) = wasmsign2_keys(&OTHER_SEED);
            for with_key_id in [false, true] {
                let signed = sign_wasm(MODULE, &SEED, with_key_id).unwrap();
                public.verify(&mut &signed[..], None).unwrap();
                // With the key's default id attached, wasmsign2 only tries signatures whose id
                // matches: this checks that jos computes the same key ids.
                public.clone().attach_default_key_id().verify(&mut &signed[..], None).unwrap();
                assert!(other.verify(&mut &signed[..], None).is_err());
                let mut changed = signed.clone();
                *changed.last_mut().unwrap() ^= 1;
                assert!(public.verify(&mut &changed[..], None).is_err());
            }
        }
    }
}

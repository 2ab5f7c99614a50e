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

mod keys;
mod leb128;
mod payload;
mod rights;
#[cfg(any(feature = "alloc", test))]
mod signing;
mod verify;
mod wasm;

use core::fmt;

use sha2::{Digest, Sha256};

use crate::error::ErrorCode;

pub use keys::{check_signer_key, key_id, public_key, verify_strict_parts, WeakKey, SMALL_ORDER_POINTS};
pub use payload::{SetIter, SignatureEntry, SignatureIter, SignaturePayload, SignatureRepr, SignedHashes};
pub use rights::{SignerRights, TrustedSigner};
#[cfg(any(feature = "alloc", test))]
pub use signing::{sign_blob, sign_wasm};
pub use verify::{verify_blob, verify_payload, verify_wasm, Verified};
pub use wasm::{split_wasm, SignedModule};

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

#[cfg(test)]
mod tests;

//! Keys: key ids, public keys from seeds, weak-key checks and strict Ed25519 verification.

use core::fmt;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::ed25519::signature::MultipartVerifier;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::Sha256;

use super::{HASH_LEN, KEY_ID_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// HMAC-SHA256 (RFC 2104), by the `hmac` crate.
pub(super) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; HASH_LEN] {
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
    pub(super) static VERIFICATIONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
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

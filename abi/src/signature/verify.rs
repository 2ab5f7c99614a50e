//! Verification: which trusted signer, if any, signed a payload, a wasm module or a blob.

use ed25519_dalek::VerifyingKey;

use super::payload::message_prefix;
use super::{
    key_id, sha256, split_wasm, verify_strict_parts, ContentType, SignatureError, SignaturePayload, SignerRights,
    TrustedSigner, ALGORITHM_ED25519, HASH_LEN, MAX_VERIFICATIONS, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use crate::blob::Blob;

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

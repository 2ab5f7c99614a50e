//! The signature payload: a checked view over untrusted bytes, and the one-set `Repr` jos writes.

use ed25519_dalek::ed25519::signature::MultipartSigner;
use ed25519_dalek::SigningKey;

use super::leb128::{put_bytes, put_varuint, varuint_len, Reader};
use super::{
    key_id, sha256, ContentType, SignatureError, ALGORITHM_ED25519, DOMAIN, HASH_LEN, HASH_SHA256, KEY_ID_LEN,
    MAX_HASHES, MAX_SIGNATURES, SIGNATURE_LEN, SPEC_VERSION,
};

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
pub(super) fn message_prefix(content_type: ContentType) -> [u8; 10] {
    let mut prefix = [0u8; 10];
    prefix[..7].copy_from_slice(DOMAIN);
    prefix[7] = SPEC_VERSION;
    prefix[8] = content_type as u8;
    prefix[9] = HASH_SHA256;
    prefix
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

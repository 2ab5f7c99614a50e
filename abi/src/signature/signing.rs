//! Host-side signing (needs `alloc`): signed wasm modules and signed native blobs.

use alloc::vec::Vec;

use super::leb128::{put_bytes, put_varuint, varuint_len};
use super::wasm::first_signature_section;
use super::{ContentType, SignatureError, SignatureRepr, SECTION_NAME, WASM_PREAMBLE};
use crate::blob::{Blob, BlobError};

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

//! The signature section of a wasm module: finding it, which must be the first section.

use super::leb128::Reader;
use super::{SignatureError, SignaturePayload, SECTION_NAME, WASM_PREAMBLE};

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
pub(super) fn first_signature_section(module: &[u8]) -> Result<Option<SectionSplit<'_>>, SignatureError> {
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

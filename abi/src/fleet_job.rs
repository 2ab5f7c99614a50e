//! The fleet's job and result messages (layouts: `docs/formats.md`, flow: `docs/fleet.md`).
//!
//! A client publishes a [`JobRepr`] on `jos/<fleet>/jobs`: a fixed [`JobHeader`] (job id, times,
//! limits, code hash, reply key), the code (a signed module or blob exactly as a direct push
//! sends it, or nothing when the device is to run one it has cached under the header's hash),
//! the sealed input and, last, the envelope signature by a trusted signer over every byte
//! before it. The sealed input is one Noise `N` message ([`INPUT_NOISE_PARAMS`]) to the fleet
//! key, with the header's bytes as prologue; it opens to a [`JobInputRepr`] (the call and the
//! input bytes). The device answers with a [`ResultRepr`] on the job's response topic: the job
//! id and one Noise `X` message ([`RESULT_NOISE_PARAMS`]) from the device's Noise static key to
//! the reply key, with the job id as prologue; it opens to one wire message
//! ([`crate::wire::Message::JobResult`], or [`crate::wire::Message::Error`] when the code was
//! refused), exactly what a direct session would have received.
//!
//! Every parser here checks every length; afterwards no accessor can panic, and `emit` writes the
//! parsed bytes again.

use crate::codec::{Cursor, Writer};
use crate::fleet::FleetError;
use crate::job::Limits;
use crate::signature::{KEY_ID_LEN, SIGNATURE_LEN};
use crate::wire::{Call, Format, MAX_CALL_ARGS, MAX_CALL_NAME_LEN, MAX_INPUT_LEN};

/// The first bytes of a job message.
pub const JOB_MAGIC: [u8; 4] = *b"JOSJ";
/// The first bytes of a result message.
pub const RESULT_MAGIC: [u8; 4] = *b"JOSR";
/// The job and result message version.
pub const JOB_VERSION: u8 = 1;
/// Length of a job id (random bytes chosen by the client; also the MQTT correlation data).
pub const JOB_ID_LEN: usize = 16;
/// Length of a [`JobHeader`]: magic, version, code format, job id, two times, limits, code
/// hash, reply key.
pub const JOB_HEADER_LEN: usize = 4 + 1 + 1 + JOB_ID_LEN + 8 + 8 + Limits::LEN + 32 + 32;
/// Length of the envelope signature at the end of a job message: key id and Ed25519 signature.
pub const ENVELOPE_LEN: usize = KEY_ID_LEN + SIGNATURE_LEN;
/// The largest code a job message carries (the largest module a device's policy may allow).
pub const MAX_JOB_CODE_LEN: usize = crate::config::MAX_MODULE_LEN as usize;
/// The longest a job may live: `expires_at - issued_at` at most 15 minutes.
pub const MAX_JOB_LIFETIME_MS: u64 = 15 * 60 * 1000;
/// The Noise protocol of the sealed input: one-way `N` to the fleet key.
pub const INPUT_NOISE_PARAMS: &str = "Noise_N_25519_ChaChaPoly_SHA256";
/// The Noise protocol of the sealed result: one-way `X` from the device's static key to the
/// job's reply key.
pub const RESULT_NOISE_PARAMS: &str = "Noise_X_25519_ChaChaPoly_SHA256";
/// The largest Noise message (the sealed input and the sealed result are one each).
pub const MAX_NOISE_MESSAGE_LEN: usize = 65535;
/// Bytes a Noise `N` message adds to its payload: the ephemeral key and the AEAD tag.
pub const INPUT_SEAL_OVERHEAD: usize = 32 + 16;
/// Bytes a Noise `X` message adds to its payload: the ephemeral key, the encrypted static key
/// and its tag, and the payload's tag.
pub const RESULT_SEAL_OVERHEAD: usize = 32 + 32 + 16 + 16;
/// The largest [`JobInputRepr`]: the call (flag, name, arguments) and the input.
pub const MAX_JOB_INPUT_LEN: usize = 1 + 1 + MAX_CALL_NAME_LEN + 1 + 8 * MAX_CALL_ARGS + 4 + MAX_INPUT_LEN;
/// The largest sealed input (one Noise `N` message; the input always fits one).
pub const MAX_SEALED_INPUT_LEN: usize = MAX_JOB_INPUT_LEN + INPUT_SEAL_OVERHEAD;
/// The largest wire message a sealed result carries (one Noise `X` message).
pub const MAX_RESULT_PLAINTEXT_LEN: usize = MAX_NOISE_MESSAGE_LEN - RESULT_SEAL_OVERHEAD;
/// Length of a result message before the sealed bytes.
pub const RESULT_HEADER_LEN: usize = 4 + 1 + JOB_ID_LEN + 4;

// Every input fits one Noise message.
const _: () = assert!(MAX_SEALED_INPUT_LEN <= MAX_NOISE_MESSAGE_LEN);

/// Code format byte of a job that names a cached module by its hash.
const CODE_CACHED: u8 = 0;

/// The signed, unencrypted head of a job message; its encoding is the sealed input's Noise
/// prologue, so a sealed input opens only inside the job it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobHeader {
    /// The code's format; `None`: the message carries no code, the device runs the module it
    /// has cached under `code_hash`.
    pub format: Option<Format>,
    /// 16 random bytes from the client; a device runs each id once.
    pub job_id: [u8; JOB_ID_LEN],
    /// When the client issued the job (Unix milliseconds, client clock).
    pub issued_at: u64,
    /// When the job expires (Unix milliseconds, client clock); after `issued_at`, at most
    /// [`MAX_JOB_LIFETIME_MS`] later.
    pub expires_at: u64,
    /// The job's limits, as an Invoke carries them (zero: the module's and device's defaults).
    pub limits: Limits,
    /// SHA-256 of the code (of the carried code when there is some).
    pub code_hash: [u8; 32],
    /// The client's X25519 public key the result is sealed to.
    pub reply_key: [u8; 32],
}

impl JobHeader {
    /// Parses the first [`JOB_HEADER_LEN`] bytes of `bytes` (which may go on).
    pub fn parse(bytes: &[u8]) -> Result<Self, FleetError> {
        let truncated = FleetError::Truncated;
        let mut cursor = Cursor::new(bytes);
        if cursor.array::<4>().ok_or(truncated)? != JOB_MAGIC {
            return Err(FleetError::BadMagic);
        }
        if cursor.u8().ok_or(truncated)? != JOB_VERSION {
            return Err(FleetError::UnsupportedVersion);
        }
        let format = match cursor.u8().ok_or(truncated)? {
            CODE_CACHED => None,
            code => Some(Format::try_from(code).map_err(|_| FleetError::BadJob)?),
        };
        let header = JobHeader {
            format,
            job_id: cursor.array().ok_or(truncated)?,
            issued_at: cursor.u64().ok_or(truncated)?,
            expires_at: cursor.u64().ok_or(truncated)?,
            limits: Limits::read(&mut cursor).ok_or(truncated)?,
            code_hash: cursor.array().ok_or(truncated)?,
            reply_key: cursor.array().ok_or(truncated)?,
        };
        header.check()?;
        Ok(header)
    }

    /// Checks the times: `expires_at` after `issued_at`, at most [`MAX_JOB_LIFETIME_MS`] later
    /// ([`FleetError::BadLifetime`]).
    pub fn check(&self) -> Result<(), FleetError> {
        match self.expires_at.checked_sub(self.issued_at) {
            Some(lifetime) if lifetime > 0 && lifetime <= MAX_JOB_LIFETIME_MS => Ok(()),
            _ => Err(FleetError::BadLifetime),
        }
    }

    /// The header's bytes (the sealed input's Noise prologue).
    pub fn to_bytes(&self) -> [u8; JOB_HEADER_LEN] {
        let mut bytes = [0u8; JOB_HEADER_LEN];
        let mut writer = Writer::new(&mut bytes);
        // The array has exactly the room these fields take.
        let _ = self.write(&mut writer);
        bytes
    }

    fn write(&self, writer: &mut Writer<'_>) -> Option<()> {
        writer.bytes(&JOB_MAGIC)?;
        writer.u8(JOB_VERSION)?;
        writer.u8(self.format.map_or(CODE_CACHED, |format| format as u8))?;
        writer.bytes(&self.job_id)?;
        writer.u64(self.issued_at)?;
        writer.u64(self.expires_at)?;
        self.limits.write(writer)?;
        writer.bytes(&self.code_hash)?;
        writer.bytes(&self.reply_key)
    }
}

/// The envelope signature of a job message: who signed it and the Ed25519 signature over every
/// byte of the message before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// The signer's key id ([`crate::signature::key_id`] of its public key).
    pub key_id: [u8; KEY_ID_LEN],
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A job message (`jos/<fleet>/jobs`), little-endian: the [`JobHeader`]
/// ([`JOB_HEADER_LEN`] bytes), code length (u32) and code (empty when the header names a cached
/// module), sealed input length (u32) and sealed input, then the [`Envelope`]
/// ([`ENVELOPE_LEN`] bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobRepr<'a> {
    /// The signed head.
    pub header: JobHeader,
    /// The signed module or blob (at most [`MAX_JOB_CODE_LEN`] bytes; empty for a cached one).
    pub code: &'a [u8],
    /// The sealed [`JobInputRepr`] (at most [`MAX_SEALED_INPUT_LEN`] bytes).
    pub sealed_input: &'a [u8],
    /// The envelope signature.
    pub envelope: Envelope,
}

impl<'a> JobRepr<'a> {
    /// Parses and checks a job message: every length, the times, code present exactly when the
    /// header names a format, and the code's SHA-256 equal to the header's hash
    /// ([`FleetError::BadJob`]). The envelope signature is not verified here (the device knows
    /// its signers): verify it over [`JobRepr::signed_part`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FleetError> {
        let truncated = FleetError::Truncated;
        let header = JobHeader::parse(bytes)?;
        let mut cursor = Cursor::new(bytes.get(JOB_HEADER_LEN..).ok_or(truncated)?);
        let code_len = cursor.u32().ok_or(truncated)? as usize;
        if code_len > MAX_JOB_CODE_LEN {
            return Err(FleetError::TooLong);
        }
        let code = cursor.take(code_len).ok_or(truncated)?;
        let sealed_len = cursor.u32().ok_or(truncated)? as usize;
        if sealed_len > MAX_SEALED_INPUT_LEN {
            return Err(FleetError::TooLong);
        }
        let sealed_input = cursor.take(sealed_len).ok_or(truncated)?;
        let envelope =
            Envelope { key_id: cursor.array().ok_or(truncated)?, signature: cursor.array().ok_or(truncated)? };
        if !cursor.is_empty() {
            return Err(FleetError::TrailingBytes);
        }
        let job = JobRepr { header, code, sealed_input, envelope };
        job.check_code()?;
        Ok(job)
    }

    fn check_code(&self) -> Result<(), FleetError> {
        let consistent = match self.header.format {
            None => self.code.is_empty(),
            Some(_) => !self.code.is_empty() && crate::signature::sha256(self.code) == self.header.code_hash,
        };
        if !consistent {
            return Err(FleetError::BadJob);
        }
        if self.code.len() > MAX_JOB_CODE_LEN || self.sealed_input.len() > MAX_SEALED_INPUT_LEN {
            return Err(FleetError::TooLong);
        }
        self.header.check()
    }

    /// The bytes the envelope signature covers: all of a job message but its last
    /// [`ENVELOPE_LEN`] bytes (empty when `message` is shorter).
    pub fn signed_part(message: &[u8]) -> &[u8] {
        message.get(..message.len().saturating_sub(ENVELOPE_LEN)).unwrap_or(&[])
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        JOB_HEADER_LEN + 4 + self.code.len() + 4 + self.sealed_input.len() + ENVELOPE_LEN
    }

    /// Writes the message with `self.envelope`; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, FleetError> {
        let envelope = self.envelope;
        self.emit_signed(buffer, |_| envelope)
    }

    /// Writes the message, signing it: `sign` gets every byte before the envelope and returns
    /// the envelope (the signer's key id and its Ed25519 signature over those bytes). Returns
    /// the message's length.
    pub fn emit_signed(&self, buffer: &mut [u8], sign: impl FnOnce(&[u8]) -> Envelope) -> Result<usize, FleetError> {
        self.check_code()?;
        let small = FleetError::BufferTooSmall;
        let signed_len = self.buffer_len() - ENVELOPE_LEN;
        let mut writer = Writer::new(buffer.get_mut(..signed_len).ok_or(small)?);
        (|| {
            self.header.write(&mut writer)?;
            writer.u32(u32::try_from(self.code.len()).ok()?)?;
            writer.bytes(self.code)?;
            writer.u32(u32::try_from(self.sealed_input.len()).ok()?)?;
            writer.bytes(self.sealed_input)
        })()
        .ok_or(small)?;
        let envelope = sign(buffer.get(..signed_len).ok_or(small)?);
        let tail = buffer.get_mut(signed_len..signed_len + ENVELOPE_LEN).ok_or(small)?;
        tail[..KEY_ID_LEN].copy_from_slice(&envelope.key_id);
        tail[KEY_ID_LEN..].copy_from_slice(&envelope.signature);
        Ok(signed_len + ENVELOPE_LEN)
    }
}

/// Whether the envelope of the job message `message` (its last [`ENVELOPE_LEN`] bytes) is a
/// valid Ed25519 signature by `public_key` over every byte before it (strict verification:
/// [`crate::signature::verify_strict_parts`]). The key id is not looked at: the caller picked
/// `public_key` by it.
pub fn verify_envelope(public_key: &[u8; 32], message: &[u8]) -> bool {
    let Some(start) = message.len().checked_sub(ENVELOPE_LEN) else { return false };
    let Ok(signature) = <[u8; SIGNATURE_LEN]>::try_from(&message[start + KEY_ID_LEN..]) else { return false };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else { return false };
    crate::signature::verify_strict_parts(&key, &[&message[..start]], &signature)
}

/// What a sealed input opens to, little-endian: the call flag (u8: 0 the module's entry point,
/// 1 an exported function), for a call its name (u8 length, UTF-8, at most
/// [`MAX_CALL_NAME_LEN`]) and arguments (u8 count, at most [`MAX_CALL_ARGS`], then i64 each),
/// then the input (u32 length, at most [`MAX_INPUT_LEN`] bytes) — what a direct Invoke carries
/// besides hash and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobInputRepr<'a> {
    /// An exported function to call with numeric arguments, instead of the entry point.
    pub call: Option<Call<'a>>,
    /// The job's input.
    pub input: &'a [u8],
}

impl<'a> JobInputRepr<'a> {
    /// Parses and checks an opened input.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FleetError> {
        let truncated = FleetError::Truncated;
        let mut cursor = Cursor::new(bytes);
        let call = match cursor.u8().ok_or(truncated)? {
            0 => None,
            1 => {
                let name_len = usize::from(cursor.u8().ok_or(truncated)?);
                if name_len > MAX_CALL_NAME_LEN {
                    return Err(FleetError::TooLong);
                }
                let name =
                    core::str::from_utf8(cursor.take(name_len).ok_or(truncated)?).map_err(|_| FleetError::BadJob)?;
                let arg_count = usize::from(cursor.u8().ok_or(truncated)?);
                if arg_count > MAX_CALL_ARGS {
                    return Err(FleetError::TooLong);
                }
                let mut args = [0i64; MAX_CALL_ARGS];
                for arg in args.iter_mut().take(arg_count) {
                    *arg = cursor.i64().ok_or(truncated)?;
                }
                Some(Call::new(name, &args[..arg_count]).ok_or(FleetError::TooLong)?)
            }
            _ => return Err(FleetError::BadJob),
        };
        let input_len = cursor.u32().ok_or(truncated)? as usize;
        if input_len > MAX_INPUT_LEN {
            return Err(FleetError::TooLong);
        }
        let input = cursor.take(input_len).ok_or(truncated)?;
        if !cursor.is_empty() {
            return Err(FleetError::TrailingBytes);
        }
        Ok(JobInputRepr { call, input })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        1 + self.call.map_or(0, |call| 1 + call.name.len() + 1 + 8 * call.args().len()) + 4 + self.input.len()
    }

    /// Writes the input; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, FleetError> {
        if self.input.len() > MAX_INPUT_LEN
            || self.call.is_some_and(|call| call.name.len() > MAX_CALL_NAME_LEN || call.args().len() > MAX_CALL_ARGS)
        {
            return Err(FleetError::TooLong);
        }
        let mut writer = Writer::new(buffer);
        (|| {
            match self.call {
                None => writer.u8(0)?,
                Some(call) => {
                    writer.u8(1)?;
                    writer.u8(u8::try_from(call.name.len()).ok()?)?;
                    writer.bytes(call.name.as_bytes())?;
                    writer.u8(u8::try_from(call.args().len()).ok()?)?;
                    for arg in call.args() {
                        writer.i64(*arg)?;
                    }
                }
            }
            writer.u32(u32::try_from(self.input.len()).ok()?)?;
            writer.bytes(self.input)
        })()
        .ok_or(FleetError::BufferTooSmall)?;
        Ok(writer.len())
    }
}

/// A result message (published to the job's response topic with its correlation data),
/// little-endian: magic `JOSR`, version (u8, 1), job id (16), sealed length (u32, 1..=65535)
/// and the sealed result (one Noise `X` message whose payload is one wire message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultRepr<'a> {
    /// The job's id (also the Noise prologue of the sealed result).
    pub job_id: [u8; JOB_ID_LEN],
    /// The sealed result.
    pub sealed: &'a [u8],
}

impl<'a> ResultRepr<'a> {
    /// Parses and checks a result message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FleetError> {
        let truncated = FleetError::Truncated;
        let mut cursor = Cursor::new(bytes);
        if cursor.array::<4>().ok_or(truncated)? != RESULT_MAGIC {
            return Err(FleetError::BadMagic);
        }
        if cursor.u8().ok_or(truncated)? != JOB_VERSION {
            return Err(FleetError::UnsupportedVersion);
        }
        let job_id = cursor.array().ok_or(truncated)?;
        let sealed_len = cursor.u32().ok_or(truncated)? as usize;
        if sealed_len > MAX_NOISE_MESSAGE_LEN {
            return Err(FleetError::TooLong);
        }
        if sealed_len == 0 {
            return Err(FleetError::BadJob);
        }
        let sealed = cursor.take(sealed_len).ok_or(truncated)?;
        if !cursor.is_empty() {
            return Err(FleetError::TrailingBytes);
        }
        Ok(ResultRepr { job_id, sealed })
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        RESULT_HEADER_LEN + self.sealed.len()
    }

    /// Writes the message; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, FleetError> {
        if self.sealed.len() > MAX_NOISE_MESSAGE_LEN {
            return Err(FleetError::TooLong);
        }
        if self.sealed.is_empty() {
            return Err(FleetError::BadJob);
        }
        let mut writer = Writer::new(buffer);
        (|| {
            writer.bytes(&RESULT_MAGIC)?;
            writer.u8(JOB_VERSION)?;
            writer.bytes(&self.job_id)?;
            writer.u32(u32::try_from(self.sealed.len()).ok()?)?;
            writer.bytes(self.sealed)
        })()
        .ok_or(FleetError::BufferTooSmall)?;
        Ok(writer.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(format: Option<Format>, code: &[u8]) -> JobHeader {
        JobHeader {
            format,
            job_id: [7; JOB_ID_LEN],
            issued_at: 1_700_000_000_000,
            expires_at: 1_700_000_060_000,
            limits: Limits { fuel: 1000, memory: 65536, deadline_ms: 500, output: 64 },
            code_hash: crate::signature::sha256(code),
            reply_key: [9; 32],
        }
    }

    const ENVELOPE: Envelope = Envelope { key_id: [3; KEY_ID_LEN], signature: [4; SIGNATURE_LEN] };

    #[test]
    fn job_golden_round_trip() {
        let code = b"\0asm code";
        let job =
            JobRepr { header: header(Some(Format::Wasm), code), code, sealed_input: b"sealed", envelope: ENVELOPE };
        let mut buffer = vec![0u8; job.buffer_len()];
        let len = job.emit(&mut buffer).unwrap();
        assert_eq!(len, job.buffer_len());
        let mut golden = b"JOSJ\x01\x01".to_vec();
        golden.extend_from_slice(&[7; 16]);
        golden.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        golden.extend_from_slice(&1_700_000_060_000u64.to_le_bytes());
        golden.extend_from_slice(&1000u64.to_le_bytes());
        golden.extend_from_slice(&65536u32.to_le_bytes());
        golden.extend_from_slice(&500u32.to_le_bytes());
        golden.extend_from_slice(&64u32.to_le_bytes());
        golden.extend_from_slice(&crate::signature::sha256(code));
        golden.extend_from_slice(&[9; 32]);
        assert_eq!(golden.len(), JOB_HEADER_LEN);
        assert_eq!(job.header.to_bytes()[..], golden[..]);
        golden.extend_from_slice(&(code.len() as u32).to_le_bytes());
        golden.extend_from_slice(code);
        golden.extend_from_slice(&6u32.to_le_bytes());
        golden.extend_from_slice(b"sealed");
        let signed = golden.len();
        golden.extend_from_slice(&[3; KEY_ID_LEN]);
        golden.extend_from_slice(&[4; SIGNATURE_LEN]);
        assert_eq!(buffer, golden);
        assert_eq!(JobRepr::parse(&golden), Ok(job));
        assert_eq!(JobRepr::signed_part(&golden), &golden[..signed]);
        for cut in 0..golden.len() {
            assert!(JobRepr::parse(&golden[..cut]).is_err(), "length {cut}");
        }
        assert_eq!(JobRepr::parse(&[&golden[..], &[0]].concat()), Err(FleetError::TrailingBytes));
        assert_eq!(job.emit(&mut buffer[..len - 1]), Err(FleetError::BufferTooSmall));
        // emit_signed hands the signer exactly the signed part.
        let mut again = vec![0u8; len];
        let mut seen = Vec::new();
        job.emit_signed(&mut again, |bytes| {
            seen = bytes.to_vec();
            ENVELOPE
        })
        .unwrap();
        assert_eq!(again, golden);
        assert_eq!(seen, &golden[..signed]);
    }

    #[test]
    fn job_fields_are_checked() {
        let code = b"blob";
        let good =
            JobRepr { header: header(Some(Format::NativeArmv6), code), code, sealed_input: b"s", envelope: ENVELOPE };
        let mut bytes = vec![0u8; good.buffer_len()];
        good.emit(&mut bytes).unwrap();
        let refuse = |offset: usize, value: u8, expected: FleetError| {
            let mut bad = bytes.clone();
            bad[offset] = value;
            assert_eq!(JobRepr::parse(&bad), Err(expected), "byte {offset} = {value}");
        };
        refuse(0, b'X', FleetError::BadMagic);
        refuse(4, 2, FleetError::UnsupportedVersion);
        refuse(5, 3, FleetError::BadJob);
        refuse(5, 0, FleetError::BadJob); // cached, but code is carried
        refuse(JOB_HEADER_LEN - 64, 0, FleetError::BadJob); // code hash differs
                                                            // Times: expiry before, at or too long after issue.
        for (issued_at, expires_at) in [(10, 9), (10, 10), (0, MAX_JOB_LIFETIME_MS + 1), (u64::MAX, 1)] {
            let job = JobRepr { header: JobHeader { issued_at, expires_at, ..good.header }, ..good };
            assert_eq!(job.emit(&mut bytes.clone()), Err(FleetError::BadLifetime));
        }
        let longest =
            JobRepr { header: JobHeader { issued_at: 0, expires_at: MAX_JOB_LIFETIME_MS, ..good.header }, ..good };
        assert!(longest.emit(&mut bytes.clone()).is_ok());
        // A cached job carries no code; one with no code but a format is refused.
        let cached = JobRepr { header: JobHeader { format: None, ..good.header }, code: &[], ..good };
        let mut cached_bytes = vec![0u8; cached.buffer_len()];
        cached.emit(&mut cached_bytes).unwrap();
        assert_eq!(JobRepr::parse(&cached_bytes), Ok(cached));
        let formatless = JobRepr { code: &[], ..good };
        assert_eq!(formatless.emit(&mut bytes.clone()), Err(FleetError::BadJob));
        // Lengths over their caps are refused before the bytes are looked for.
        let mut huge = bytes[..JOB_HEADER_LEN].to_vec();
        huge.extend_from_slice(&(MAX_JOB_CODE_LEN as u32 + 1).to_le_bytes());
        assert_eq!(JobRepr::parse(&huge), Err(FleetError::TooLong));
        let mut huge = cached_bytes[..JOB_HEADER_LEN].to_vec();
        huge.extend_from_slice(&0u32.to_le_bytes());
        huge.extend_from_slice(&(MAX_SEALED_INPUT_LEN as u32 + 1).to_le_bytes());
        assert_eq!(JobRepr::parse(&huge), Err(FleetError::TooLong));
        assert_eq!(JobRepr::signed_part(&[1, 2]), &[] as &[u8]);
    }

    #[test]
    fn envelope_verification() {
        use ed25519_dalek::ed25519::signature::Signer;
        let secret = ed25519_dalek::SigningKey::from_bytes(&[0x21; 32]);
        let public = secret.verifying_key().to_bytes();
        let job = JobRepr { header: header(None, b""), code: &[], sealed_input: b"in", envelope: ENVELOPE };
        let mut bytes = vec![0u8; job.buffer_len()];
        job.emit_signed(&mut bytes, |signed| Envelope {
            key_id: crate::signature::key_id(&public),
            signature: secret.sign(signed).to_bytes(),
        })
        .unwrap();
        assert!(verify_envelope(&public, &bytes));
        let parsed = JobRepr::parse(&bytes).unwrap();
        assert_eq!(parsed.envelope.key_id, crate::signature::key_id(&public));
        for at in [0, 30, JOB_HEADER_LEN + 5, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[at] ^= 1;
            assert!(!verify_envelope(&public, &altered), "byte {at}");
        }
        let other = ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]).verifying_key().to_bytes();
        assert!(!verify_envelope(&other, &bytes));
        assert!(!verify_envelope(&public, &bytes[..10]));
    }

    #[test]
    fn input_round_trip() {
        let inputs = [
            JobInputRepr { call: None, input: b"hello" },
            JobInputRepr { call: Some(Call::new("fib", &[30, -1]).unwrap()), input: b"" },
        ];
        for repr in inputs {
            let mut buffer = vec![0u8; repr.buffer_len()];
            assert_eq!(repr.emit(&mut buffer), Ok(buffer.len()));
            assert_eq!(JobInputRepr::parse(&buffer), Ok(repr));
            for cut in 0..buffer.len() {
                assert_eq!(JobInputRepr::parse(&buffer[..cut]), Err(FleetError::Truncated), "{cut}");
            }
            assert_eq!(JobInputRepr::parse(&[&buffer[..], &[0]].concat()), Err(FleetError::TrailingBytes));
        }
        assert_eq!(JobInputRepr::parse(&[0, 5, 0, 0, 0, b'h', b'e', b'l', b'l', b'o']), Ok(inputs[0]));
        assert_eq!(JobInputRepr::parse(&[2, 0, 0, 0, 0]), Err(FleetError::BadJob));
        assert_eq!(JobInputRepr::parse(&[1, 65]), Err(FleetError::TooLong));
        assert_eq!(JobInputRepr::parse(&[1, 1, 0xff, 0, 0, 0, 0, 0]), Err(FleetError::BadJob));
        assert_eq!(JobInputRepr::parse(&[1, 1, b'f', 9]), Err(FleetError::TooLong));
        let mut big = vec![0u8];
        big.extend_from_slice(&(MAX_INPUT_LEN as u32 + 1).to_le_bytes());
        assert_eq!(JobInputRepr::parse(&big), Err(FleetError::TooLong));
        let too_big = [0u8; MAX_INPUT_LEN + 1];
        assert_eq!(JobInputRepr { call: None, input: &too_big }.emit(&mut [0; 8]), Err(FleetError::TooLong));
        let largest = [0u8; MAX_INPUT_LEN];
        let name = "n".repeat(MAX_CALL_NAME_LEN);
        let largest = JobInputRepr { call: Some(Call::new(&name, &[1; MAX_CALL_ARGS]).unwrap()), input: &largest };
        assert_eq!(largest.buffer_len(), MAX_JOB_INPUT_LEN);
    }

    #[test]
    fn result_golden_round_trip() {
        let repr = ResultRepr { job_id: [5; JOB_ID_LEN], sealed: b"noise" };
        let mut buffer = [0u8; 64];
        let len = repr.emit(&mut buffer).unwrap();
        let mut golden = b"JOSR\x01".to_vec();
        golden.extend_from_slice(&[5; 16]);
        golden.extend_from_slice(&5u32.to_le_bytes());
        golden.extend_from_slice(b"noise");
        assert_eq!(&buffer[..len], &golden[..]);
        assert_eq!(repr.buffer_len(), len);
        assert_eq!(ResultRepr::parse(&golden), Ok(repr));
        for cut in 0..golden.len() {
            assert_eq!(ResultRepr::parse(&golden[..cut]), Err(FleetError::Truncated), "{cut}");
        }
        assert_eq!(ResultRepr::parse(&[&golden[..], &[0]].concat()), Err(FleetError::TrailingBytes));
        let mut bad = golden.clone();
        bad[3] = b'J';
        assert_eq!(ResultRepr::parse(&bad), Err(FleetError::BadMagic));
        let mut bad = golden.clone();
        bad[4] = 0;
        assert_eq!(ResultRepr::parse(&bad), Err(FleetError::UnsupportedVersion));
        let mut bad = golden[..RESULT_HEADER_LEN].to_vec();
        bad[RESULT_HEADER_LEN - 4..].copy_from_slice(&0x1_0000u32.to_le_bytes());
        assert_eq!(ResultRepr::parse(&bad), Err(FleetError::TooLong));
        bad[RESULT_HEADER_LEN - 4..].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(ResultRepr::parse(&bad), Err(FleetError::BadJob));
        assert_eq!(repr.emit(&mut buffer[..len - 1]), Err(FleetError::BufferTooSmall));
    }
}

//! Push: chunked uploads, signature verification, the compiled-module and native-blob caches
//! and the records of what was pushed.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use jos_abi::blob::{Arch, Blob};
use jos_abi::job::Limits;
use jos_abi::signature::{self};
use jos_abi::wire::{Format, Message};
use jos_abi::{AbiVersion, ErrorCode};
use jos_runtime::Capabilities;

use super::{ModuleRecord, Platform, Server, ALIASES};
use crate::session::{Push, Session};
use crate::timing::{PushTiming, Timing};

impl<P: Platform> Server<P> {
    pub(super) fn push_begin(
        &mut self,
        session: &mut Session,
        format: Format,
        total_len: u32,
        sha256: [u8; 32],
        limits: Limits,
    ) {
        session.push = None;
        if !self.formats().accepts(format) {
            return self.error(session, ErrorCode::Unsupported, "format not accepted by this device");
        }
        if total_len > self.config.policy.max_module_len {
            let mut text = String::new();
            let _ = write!(
                text,
                "module of {total_len} bytes: the device takes at most {}",
                self.config.policy.max_module_len
            );
            return self.error(session, ErrorCode::LimitExceeded, &text);
        }
        if total_len == 0 {
            return self.error(session, ErrorCode::InvalidArgument, "empty module");
        }
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(total_len as usize).is_err() {
            return self.error(session, ErrorCode::Busy, "no memory for the module now");
        }
        let begun_us = self.platform.now_us();
        session.push = Some(Push { format, total_len: total_len as usize, sha256, limits, bytes, begun_us });
    }

    pub(super) fn push_chunk(&mut self, session: &mut Session, offset: u32, chunk: &[u8]) {
        let Some(push) = session.push.as_mut() else {
            return self.error(session, ErrorCode::InvalidArgument, "chunk without PushBegin");
        };
        if offset as usize != push.bytes.len() {
            let mut text = String::new();
            let _ = write!(text, "chunk at offset {offset}, expected {}; push abandoned", push.bytes.len());
            session.push = None;
            return self.error(session, ErrorCode::InvalidArgument, &text);
        }
        if push.bytes.len() + chunk.len() > push.total_len {
            session.push = None;
            return self.error(session, ErrorCode::InvalidArgument, "chunk past the announced length; push abandoned");
        }
        push.bytes.extend_from_slice(chunk);
    }

    pub(super) fn push_end(&mut self, session: &mut Session) {
        let Some(push) = session.push.take() else {
            return self.error(session, ErrorCode::InvalidArgument, "PushEnd without PushBegin");
        };
        let end_us = self.platform.now_us();
        if push.bytes.len() != push.total_len {
            let mut text = String::new();
            let _ = write!(text, "module incomplete: {} of {} bytes", push.bytes.len(), push.total_len);
            return self.error(session, ErrorCode::InvalidArgument, &text);
        }
        if signature::sha256(&push.bytes) != push.sha256 {
            return self.error(session, ErrorCode::InvalidArgument, "SHA-256 of the module differs from PushBegin's");
        }
        let signers = &self.config.signers;
        // The module's identity (the SHA-256 of its signed content, `jos_runtime::wasm::module_id`)
        // and the capabilities of the signer that verified it.
        let verdict = match push.format {
            Format::Wasm => self
                .sandbox
                .compile_signed(&push.bytes, signers)
                .map(|(module, signer)| {
                    let rights = signers
                        .get(signer)
                        .map_or(Capabilities::NONE, |signer| Capabilities::from_rights(signer.rights));
                    (*module.hash(), rights)
                })
                .map_err(|error| {
                    let mut text = String::new();
                    let _ = write!(text, "{error}");
                    (error.code(), text)
                }),
            Format::NativeArmv6 => self.check_native(&push.bytes),
        };
        let (format, bytes, accepted) = (push.format, push.total_len, verdict.is_ok());
        match verdict {
            Ok((identity, capabilities)) => {
                if push.format == Format::NativeArmv6 {
                    self.store_native(identity, push.bytes);
                }
                self.record_push(identity, capabilities, push.sha256);
                // This client's limits for this module; other clients keep their own.
                self.defaults.insert((session.client_key, identity), push.limits);
                self.counters.pushes_ok += 1;
                session.send(&Message::PushOk { sha256: push.sha256 }, &mut self.scratch);
            }
            Err((code, text)) => self.error(session, code, &text),
        }
        let done_us = self.platform.now_us();
        self.platform.timing(&Timing::Push(PushTiming {
            format,
            bytes,
            accepted,
            handshake_us: session.handshake_us,
            transfer_us: end_us.saturating_sub(push.begun_us),
            verify_us: done_us.saturating_sub(end_us),
            session_us: done_us.saturating_sub(session.hello_us),
        }));
    }

    /// Checks a native blob; returns its identity (the SHA-256 of its signed part) and the
    /// capabilities of the signer that verified it.
    pub(super) fn check_native(&self, bytes: &[u8]) -> Result<([u8; 32], Capabilities), (ErrorCode, String)> {
        let fail = |code: ErrorCode, what: &dyn core::fmt::Display| {
            let mut text = String::new();
            let _ = write!(text, "{what}");
            (code, text)
        };
        let blob = Blob::new_checked(bytes).map_err(|error| fail(error.code(), &error))?;
        if !AbiVersion::CURRENT.accepts(blob.abi_version()) {
            let mut text = String::new();
            let _ = write!(text, "blob needs ABI {}, device has {}", blob.abi_version(), AbiVersion::CURRENT);
            return Err((ErrorCode::AbiMismatch, text));
        }
        if blob.arch() != Some(Arch::Armv6) {
            return Err((ErrorCode::Unsupported, "blob is not for ARMv6".to_string()));
        }
        let verified =
            signature::verify_blob(&blob, &self.config.signers).map_err(|error| fail(error.code(), &error))?;
        Ok((verified.content_hash, Capabilities::from_rights(verified.rights)))
    }

    /// Keeps a verified blob under its identity (least recently used blobs make room).
    pub(super) fn store_native(&mut self, identity: [u8; 32], bytes: Vec<u8>) {
        let cost = bytes.len();
        // Moved, not copied: the push buffer becomes the cache entry.
        self.natives.insert(identity, Arc::new(bytes), cost);
    }

    /// Remembers that `identity` was pushed as bytes whose SHA-256 is `sha256`, verified by a
    /// signer granting `capabilities`.
    pub(super) fn record_push(&mut self, identity: [u8; 32], capabilities: Capabilities, sha256: [u8; 32]) {
        let mut pushed_as = [None; ALIASES];
        pushed_as[0] = Some((sha256, capabilities));
        if let Some(record) = self.records.get(&identity) {
            let older = record.pushed_as.iter().flatten().filter(|(hash, _)| *hash != sha256);
            for (slot, push) in pushed_as[1..].iter_mut().zip(older) {
                *slot = Some(*push);
            }
        }
        self.records.insert(identity, ModuleRecord { pushed_as });
    }

    /// The identity of the module `hash` names and the capabilities it runs with: by its
    /// identity, those of its latest push; by the SHA-256 of the bytes of one of its recent
    /// pushes, those of that push's signer. `None` if no cached module goes by `hash`. A module
    /// whose record was evicted runs with no capabilities (push it again).
    pub(super) fn resolve(&mut self, hash: &[u8; 32]) -> Option<([u8; 32], Capabilities)> {
        if self.sandbox.cache().contains(hash) || self.natives.contains(hash) {
            let latest = self.records.get(hash).and_then(|record| record.pushed_as[0]);
            return Some((*hash, latest.map_or(Capabilities::NONE, |(_, capabilities)| capabilities)));
        }
        let pushed = |record: &ModuleRecord| record.pushed_as.iter().flatten().any(|(sha256, _)| sha256 == hash);
        let identity = *self.records.find_key(pushed)?;
        let record = self.records.get(&identity)?;
        let (_, capabilities) = record.pushed_as.iter().flatten().find(|(sha256, _)| sha256 == hash)?;
        Some((identity, *capabilities))
    }
}

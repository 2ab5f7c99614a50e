//! Fleet jobs (`jos_abi::fleet_job`, flow in `docs/fleet.md`): a job message that arrived
//! through the broker is verified (envelope signature by a trusted signer with the right for the
//! code's format), checked against replay and expiry, its sealed input opened with the fleet key
//! (Noise `N`), its code verified as a direct push would be, and run through the same queue as
//! a direct Invoke. The result (the same wire JobResult, or an Error) is sealed to the job's reply
//! key from the device's Noise static key (Noise `X`) and waits in
//! [`Server::take_fleet_result`] for the kernel to publish.
//!
//! Every refused message is dropped without an answer (its reply key is not to be trusted) and
//! counted under [`FleetCounters::refusals`].
//!
//! Time: the device has no wall clock. Its estimate of "now" in the clients' clock is the
//! largest `issued_at` of any job whose envelope verified, plus the monotonic time since that
//! job arrived. A job whose `expires_at` is before the estimate is expired. Seen job ids are kept
//! with their expiry in a table of [`FLEET_REPLAY_SLOTS`]; an id is forgotten only once its
//! expiry has passed, and when the table is full of unexpired ids a new job is refused as busy
//! rather than forgetting one.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use jos_abi::config::is_strong_x25519_key;
use jos_abi::fleet::Refusals;
use jos_abi::fleet_job::{
    verify_envelope, JobInputRepr, JobRepr, ResultRepr, INPUT_NOISE_PARAMS, JOB_ID_LEN, MAX_NOISE_MESSAGE_LEN,
    MAX_RESULT_PLAINTEXT_LEN, RESULT_HEADER_LEN, RESULT_NOISE_PARAMS,
};
use jos_abi::job::Engine;
use jos_abi::signature::{self, SignerRights};
use jos_abi::wire::{self, Format, Message};
use jos_abi::ErrorCode;
use jos_runtime::{Capabilities, Entry, JobResult, Value};

use super::results::JobTimes;
use super::{Platform, Server, SessionId};
use crate::noise::Resolver;

/// How many job ids the device remembers (with their expiry) to refuse replays.
pub const FLEET_REPLAY_SLOTS: usize = 256;

/// Why a fleet job message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FleetRefusal {
    /// It does not parse, its reply key is not a usable X25519 key, or the device has no fleet
    /// key.
    Malformed,
    /// Its envelope signature does not verify, or the signer is unknown or may not sign the
    /// code's format.
    BadSignature,
    /// Its job id was seen before, or it expired.
    Replayed,
    /// The replay table is full of unexpired job ids.
    Busy,
    /// Its sealed input does not open with the fleet key (or opens to no valid input).
    BadSeal,
}

impl FleetRefusal {
    /// The counter of `counters` this refusal counts under.
    pub fn counter(self, counters: &mut Refusals) -> &mut u32 {
        match self {
            FleetRefusal::Malformed => &mut counters.malformed,
            FleetRefusal::BadSignature => &mut counters.bad_signature,
            FleetRefusal::Replayed => &mut counters.replayed,
            FleetRefusal::Busy => &mut counters.busy,
            FleetRefusal::BadSeal => &mut counters.bad_seal,
        }
    }
}

/// The fleet figures of a device's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FleetCounters {
    /// Job messages handed to [`Server::fleet_job`].
    pub received: u32,
    /// Fleet jobs answered with a sealed result (a JobResult or an Error).
    pub answered: u32,
    /// Job messages dropped, by reason.
    pub refusals: Refusals,
}

/// A sealed result ready to publish: a `jos_abi::fleet_job::ResultRepr` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetResult {
    /// The job's id (the MQTT correlation data).
    pub job_id: [u8; JOB_ID_LEN],
    /// The result message's bytes.
    pub message: Vec<u8>,
}

/// A fleet job the queue holds or runs.
#[derive(Clone, Copy)]
pub(super) struct PendingFleetJob {
    job_id: [u8; JOB_ID_LEN],
    reply_key: [u8; 32],
}

/// The device's fleet state.
#[derive(Default)]
pub(super) struct FleetState {
    /// The fleet's X25519 secret (from the boot configuration); `None`: no fleet jobs.
    key: Option<[u8; 32]>,
    /// The clock estimate's base: the largest accepted `issued_at` and when (platform clock)
    /// it was seen.
    clock: Option<(u64, u64)>,
    /// Seen job ids with their expiry (client clock).
    seen: Vec<([u8; JOB_ID_LEN], u64)>,
    /// Jobs queued or running, by their session id.
    pub(super) pending: BTreeMap<u32, PendingFleetJob>,
    /// Sealed results waiting to be published.
    results: alloc::collections::VecDeque<FleetResult>,
    counters: FleetCounters,
}

impl<P: Platform> Server<P> {
    /// Sets the fleet's X25519 secret (the configuration's fleet key section); without one,
    /// every fleet job is refused as malformed.
    pub fn set_fleet_key(&mut self, secret: Option<[u8; 32]>) {
        self.fleet.key = secret;
    }

    /// The fleet counters so far.
    pub fn fleet_counters(&self) -> FleetCounters {
        self.fleet.counters
    }

    /// The next sealed result to publish, oldest first.
    pub fn take_fleet_result(&mut self) -> Option<FleetResult> {
        self.fleet.results.pop_front()
    }

    /// Whether the job `job_id` is still queued or running.
    pub fn fleet_job_pending(&self, job_id: &[u8; JOB_ID_LEN]) -> bool {
        self.fleet.pending.values().any(|pending| pending.job_id == *job_id)
    }

    /// The device's estimate of the clients' clock (Unix ms), if it accepted any job yet.
    pub fn fleet_clock_ms(&self) -> Option<u64> {
        let (issued_ms, at_us) = self.fleet.clock?;
        Some(issued_ms.saturating_add(self.platform.now_us().saturating_sub(at_us) / 1000))
    }

    /// Takes a job message from the broker. `Ok(job id)`: a sealed result for it will appear in
    /// [`Server::take_fleet_result`] (at once for code that is refused, after the run otherwise).
    /// `Err`: dropped (and counted).
    pub fn fleet_job(&mut self, message: &[u8]) -> Result<[u8; JOB_ID_LEN], FleetRefusal> {
        self.fleet.counters.received = self.fleet.counters.received.saturating_add(1);
        let verdict = self.check_fleet_job(message);
        if let Err(refusal) = verdict {
            let counter = refusal.counter(&mut self.fleet.counters.refusals);
            *counter = counter.saturating_add(1);
        }
        verdict
    }

    fn check_fleet_job(&mut self, message: &[u8]) -> Result<[u8; JOB_ID_LEN], FleetRefusal> {
        let fleet_key = self.fleet.key.ok_or(FleetRefusal::Malformed)?;
        let job = JobRepr::parse(message).map_err(|_| FleetRefusal::Malformed)?;
        let header = job.header;
        if !is_strong_x25519_key(&header.reply_key) {
            return Err(FleetRefusal::Malformed);
        }
        // The envelope: a trusted signer, with the right for the code's format.
        let signer = self
            .config
            .signers
            .iter()
            .find(|signer| signature::key_id(&signer.public_key) == job.envelope.key_id)
            .copied()
            .ok_or(FleetRefusal::BadSignature)?;
        if !verify_envelope(&signer.public_key, message) {
            return Err(FleetRefusal::BadSignature);
        }
        let format = match header.format {
            Some(format) => Some(format),
            None => self.cached_format(&header.code_hash),
        };
        let needed = match format {
            Some(Format::Wasm) => SignerRights::WASM,
            Some(Format::NativeArmv6) => SignerRights::NATIVE,
            // An unknown cached hash: answered with NotFound below, like a direct Invoke.
            None => SignerRights::NONE,
        };
        if !signer.rights.contains(needed) {
            return Err(FleetRefusal::BadSignature);
        }
        // Time and replay.
        let now_us = self.platform.now_us();
        let estimate = self.fleet_clock_ms().unwrap_or(0);
        if header.issued_at > estimate {
            self.fleet.clock = Some((header.issued_at, now_us));
        }
        let estimate = estimate.max(header.issued_at);
        if header.expires_at < estimate {
            return Err(FleetRefusal::Replayed);
        }
        self.fleet.seen.retain(|(_, expires_at)| *expires_at >= estimate);
        if self.fleet.seen.iter().any(|(id, _)| *id == header.job_id) {
            return Err(FleetRefusal::Replayed);
        }
        if self.fleet.seen.len() >= FLEET_REPLAY_SLOTS {
            return Err(FleetRefusal::Busy);
        }
        // The sealed input, bound to this header by the prologue.
        let mut plain = vec![0u8; job.sealed_input.len()];
        let opened = (|| {
            let mut noise =
                snow::Builder::with_resolver(INPUT_NOISE_PARAMS.parse().ok()?, Box::new(Resolver::new(self.entropy)))
                    .local_private_key(&fleet_key)
                    .ok()?
                    .prologue(&header.to_bytes())
                    .ok()?
                    .build_responder()
                    .ok()?;
            noise.read_message(job.sealed_input, &mut plain).ok()
        })();
        let len = opened.ok_or(FleetRefusal::BadSeal)?;
        let input = JobInputRepr::parse(plain.get(..len).unwrap_or(&[])).map_err(|_| FleetRefusal::BadSeal)?;
        // Accepted: the id is remembered, and from here on every outcome is a sealed answer.
        self.fleet.seen.push((header.job_id, header.expires_at));
        let pending = PendingFleetJob { job_id: header.job_id, reply_key: header.reply_key };
        if let Some(format) = header.format {
            if let Err((code, text)) = self.verify_fleet_code(format, job.code, header.code_hash) {
                self.seal_fleet_answer(pending, &Message::Error { code, message: wire_text(&text) });
                return Ok(header.job_id);
            }
        }
        let entry = match input.call {
            None => Entry::Default,
            Some(call) => Entry::Call {
                name: call.name.to_string(),
                args: call.args().iter().map(|arg| Value::I64(*arg)).collect(),
            },
        };
        let id = SessionId(self.next_session);
        self.next_session = self.next_session.wrapping_add(1);
        match self.enqueue(id, None, header.code_hash, header.limits, input.input, entry) {
            Ok(()) => {
                self.fleet.pending.insert(id.0, pending);
            }
            Err((code, text)) => self.seal_fleet_answer(pending, &Message::Error { code, message: text }),
        }
        Ok(header.job_id)
    }

    /// Verifies and caches a fleet job's code as a direct push would (its own signature and
    /// signer rights, ABI and architecture for a blob).
    fn verify_fleet_code(&mut self, format: Format, code: &[u8], sha256: [u8; 32]) -> Result<(), (ErrorCode, String)> {
        let signers = &self.config.signers;
        let (identity, capabilities) = match format {
            Format::Wasm => self
                .sandbox
                .compile_signed(code, signers)
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
                })?,
            Format::NativeArmv6 => {
                let verdict = self.check_native(code)?;
                self.store_native(verdict.0, code.to_vec());
                verdict
            }
        };
        self.record_push(identity, capabilities, sha256);
        self.counters.pushes_ok += 1;
        Ok(())
    }

    /// A fleet job `id` ended: its result sealed for publishing. `false`: `id` is no fleet job.
    pub(super) fn finish_fleet(&mut self, id: SessionId, engine: Engine, result: &JobResult, times: JobTimes) -> bool {
        let Some(pending) = self.fleet.pending.remove(&id.0) else { return false };
        let mut plain = vec![0u8; wire::MAX_MESSAGE_LEN];
        let encoded = result.to_wire(times.time_us, times.cpu_us, engine, |message| message.emit(&mut plain).ok());
        match encoded {
            Some(len) if len <= MAX_RESULT_PLAINTEXT_LEN => {
                plain.truncate(len);
                self.seal_fleet_bytes(pending, &plain);
            }
            _ => self.seal_fleet_answer(
                pending,
                &Message::Error { code: ErrorCode::LimitExceeded, message: "job result does not fit a sealed result" },
            ),
        }
        true
    }

    fn seal_fleet_answer(&mut self, pending: PendingFleetJob, message: &Message<'_>) {
        if matches!(message, Message::Error { .. }) {
            self.counters.errors_sent += 1;
        }
        let mut plain = vec![0u8; wire::MAX_MESSAGE_LEN];
        if let Ok(len) = message.emit(&mut plain) {
            plain.truncate(len);
            self.seal_fleet_bytes(pending, &plain);
        }
    }

    /// Seals `plain` (one wire message) to the job's reply key from the device's static key, with
    /// the job id as prologue, and queues the result message.
    fn seal_fleet_bytes(&mut self, pending: PendingFleetJob, plain: &[u8]) {
        let mut sealed = vec![0u8; MAX_NOISE_MESSAGE_LEN];
        let written = (|| {
            let mut noise =
                snow::Builder::with_resolver(RESULT_NOISE_PARAMS.parse().ok()?, Box::new(Resolver::new(self.entropy)))
                    .local_private_key(&self.config.noise_secret)
                    .ok()?
                    .remote_public_key(&pending.reply_key)
                    .ok()?
                    .prologue(&pending.job_id)
                    .ok()?
                    .build_initiator()
                    .ok()?;
            noise.write_message(plain, &mut sealed).ok()
        })();
        // The reply key was checked and the plaintext fits: sealing does not fail (without
        // randomness it would, and then the job gets no answer; the client re-publishes).
        let Some(len) = written else { return };
        let repr = ResultRepr { job_id: pending.job_id, sealed: sealed.get(..len).unwrap_or(&[]) };
        let mut message = vec![0u8; RESULT_HEADER_LEN + len];
        if repr.emit(&mut message).is_ok() {
            self.fleet.counters.answered = self.fleet.counters.answered.saturating_add(1);
            self.fleet.results.push_back(crate::server::fleet::FleetResult { job_id: pending.job_id, message });
        }
    }
}

/// `text` clipped to an Error message's cap.
fn wire_text(text: &str) -> &str {
    jos_abi::job::clip(text, wire::MAX_ERROR_MESSAGE_LEN)
}

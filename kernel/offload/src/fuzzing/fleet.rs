//! The fleet part of the `server` fuzz body: the script's `Fleet` operation hands the server job
//! messages (`jos_abi::fleet_job`) as a fleet client builds them (input sealed with Noise `N` to
//! the fleet key, the header as prologue; envelope signed by a signer), altered ones, replays,
//! expired ones and arbitrary bytes, and opens every sealed result as the client would.
//!
//! Checked: [`crate::Server::fleet_job`] never panics; a message the harness knows to be good
//! is accepted, and each kind of bad one is refused for its reason (an unknown signer, an
//! altered seal, altered signed bytes, a replay of an accepted message, a message past its
//! expiry once the device's clock estimate follows the scripted clock); a job id is accepted at
//! most once; every accepted job gets exactly one sealed result and a refused message none; each
//! result names its job, opens with the job's reply key, is sealed by the device's static key
//! and holds a JobResult or an Error; an echo job's Ok output is its input, an `add` call's
//! result the sum, an unknown hash gets `NotFound`, code by an unknown signer an Error; the fleet
//! counters never go back, count each refusal under the reason `fleet_job` returned, and
//! received is accepted plus refused. At the end nothing is pending.

use std::boxed::Box;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::vec::Vec;

use ed25519_dalek::Signer;
use jos_abi::fleet::Refusals;
use jos_abi::fleet_job::{
    Envelope, JobHeader, JobInputRepr, JobRepr, ResultRepr, ENVELOPE_LEN, INPUT_NOISE_PARAMS, JOB_ID_LEN,
    RESULT_NOISE_PARAMS,
};
use jos_abi::job::Value;
use jos_abi::signature::{key_id, public_key as signing_public_key, sha256};
use jos_abi::wire::{self, Call, Format, JobStatus, Limits, Message};
use jos_abi::ErrorCode;

use super::{limits, modules, Harness, Script, DEVICE_SECRET, ENTROPY, SIGNER_SEED, UNKNOWN_SIGNER_SEED};
use crate::noise::{self, Resolver};
use crate::server::{FleetCounters, FleetRefusal, FleetResult};

/// The fleet's X25519 secret (set on the fuzzed server).
pub const FLEET_SECRET: [u8; 32] = [0x5a; 32];
/// The scripted client's reply key (every job's results are sealed to it).
pub const REPLY_SECRET: [u8; 32] = [0x6b; 32];
/// The client's clock (Unix ms) when the scripted clock reads 0.
pub const CLIENT_EPOCH_MS: u64 = 1_800_000_000_000;
/// How long a job lives (ms).
pub const LIFETIME_MS: u64 = 60_000;
/// Job messages a script may build (later ones are skipped; replays and arbitrary bytes are not
/// counted): X25519 and Ed25519 dominate a run.
pub const MAX_FLEET_JOBS: usize = 8;
/// Most arbitrary bytes a script hands over as one message.
pub const MAX_FLEET_BYTES: usize = 2048;

/// The kinds of fleet message: the `Fleet` operation's first operand, modulo their count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FleetKind {
    /// `module, input len, input..., limits...`: a valid job carrying module `module % 4` of
    /// [`modules`].
    Inline = 0,
    /// `module, input len, input..., limits...`: a valid job naming a module by hash (0..=3:
    /// [`modules`]' hashes, cached or not; else an unknown hash).
    Cached = 1,
    /// As `Inline`, its envelope signed by [`UNKNOWN_SIGNER_SEED`].
    UnknownSigner = 2,
    /// As `Inline`, then `offset u16, mask`: one byte of the sealed input altered, signed again.
    AlteredSeal = 3,
    /// As `Inline`, then `offset u16, mask`: one signed byte altered after signing.
    AlteredSigned = 4,
    /// No operands: the previous fleet message again.
    Replay = 5,
    /// As `Inline`, then `milliseconds u16`: a job that expired that long (plus 2 ms) before now.
    Expired = 6,
    /// As `Inline`, then `a, b, which`: a call of `add(a, b)` (`which` even) or of `run(a)`.
    Call = 7,
    /// `len u16, bytes...`: arbitrary bytes (at most [`MAX_FLEET_BYTES`]).
    Bytes = 8,
}

const KINDS: u8 = 9;

/// What an accepted job's result must show when its status is Ok.
enum Expect {
    /// The echo module's entry point: the output is the input.
    Echo(Vec<u8>),
    /// The echo module's `add`: one `i64`, the sum.
    Add(i64),
    /// A sealed Error, with this code if given: the job's code does not verify (a module signed
    /// by an unknown signer), or names an unknown hash (`NotFound`).
    Error(Option<ErrorCode>),
    /// Nothing more.
    Any,
}

/// What [`crate::Server::fleet_job`] answered.
type Verdict = Result<[u8; JOB_ID_LEN], FleetRefusal>;

/// The scripted fleet client: what it sent, and what the device owes it.
#[derive(Default)]
pub(super) struct FleetClient {
    /// Job messages built so far.
    built: usize,
    /// The next job id's number.
    next_id: u32,
    /// The previous message and the device's verdict.
    last: Option<(Vec<u8>, Verdict)>,
    /// Accepted jobs without a result yet.
    owed: BTreeMap<[u8; JOB_ID_LEN], Expect>,
    /// Every job id accepted.
    accepted: Vec<[u8; JOB_ID_LEN]>,
    /// Refusals by the reason `fleet_job` returned.
    refusals: Refusals,
    /// Results taken.
    results: usize,
    /// A message issued at the scripted "now" passed the envelope check: the device's clock
    /// estimate follows the scripted clock (within a millisecond).
    synced: bool,
    /// The counters at the last check.
    last_counters: FleetCounters,
}

struct Keys {
    fleet: [u8; 32],
    reply: [u8; 32],
    device: [u8; 32],
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        fleet: noise::public_key(&FLEET_SECRET),
        reply: noise::public_key(&REPLY_SECRET),
        device: noise::public_key(&DEVICE_SECRET),
    })
}

/// A job as the scripted client builds it.
struct Spec<'a> {
    id: [u8; JOB_ID_LEN],
    issued_at: u64,
    format: Option<Format>,
    code: &'a [u8],
    code_hash: [u8; 32],
    input: &'a [u8],
    call: Option<Call<'a>>,
    limits: Limits,
    signer: &'a [u8; 32],
    /// One byte of the sealed input altered before signing: offset (modulo its length), mask.
    alter_seal: Option<(usize, u8)>,
}

impl Spec<'_> {
    fn bytes(&self) -> Vec<u8> {
        let header = JobHeader {
            format: self.format,
            job_id: self.id,
            issued_at: self.issued_at,
            expires_at: self.issued_at + LIFETIME_MS,
            limits: self.limits,
            code_hash: self.code_hash,
            reply_key: keys().reply,
        };
        let input = JobInputRepr { call: self.call, input: self.input };
        let mut plain = std::vec![0u8; input.buffer_len()];
        let len = input.emit(&mut plain).expect("the script's inputs are within the caps");
        let prologue = header.to_bytes();
        let mut noise = snow::Builder::with_resolver(
            INPUT_NOISE_PARAMS.parse().expect("Noise N"),
            Box::new(Resolver::new(&ENTROPY)),
        )
        .remote_public_key(&keys().fleet)
        .and_then(|builder| builder.prologue(&prologue))
        .and_then(|builder| builder.build_initiator())
        .expect("a Noise N initiator builds");
        let mut sealed = std::vec![0u8; len + 64];
        let sealed_len = noise.write_message(&plain[..len], &mut sealed).expect("an input within the cap seals");
        sealed.truncate(sealed_len);
        if let Some((offset, mask)) = self.alter_seal {
            let at = offset % sealed.len();
            sealed[at] ^= mask.max(1);
        }
        let repr = JobRepr {
            header,
            code: self.code,
            sealed_input: &sealed,
            envelope: Envelope { key_id: [0; 12], signature: [0; 64] },
        };
        let mut bytes = std::vec![0u8; repr.buffer_len()];
        let key = ed25519_dalek::SigningKey::from_bytes(self.signer);
        repr.emit_signed(&mut bytes, |signed| Envelope {
            key_id: key_id(&signing_public_key(self.signer)),
            signature: key.sign(signed).to_bytes(),
        })
        .expect("a consistent job emits");
        bytes
    }
}

impl Harness {
    /// The `Fleet` operation (see [`FleetKind`]).
    pub(super) fn fleet(&mut self, script: &mut Script<'_>) {
        let kind = script.byte() % KINDS;
        let now_ms = CLIENT_EPOCH_MS + self.now() / 1000;
        let (message, kind) = match kind {
            5 => {
                let Some((message, _)) = &self.fleet.last else { return };
                (message.clone(), FleetKind::Replay)
            }
            8 => {
                let len = usize::from(script.u16()) % (MAX_FLEET_BYTES + 1);
                (script.take(len).to_vec(), FleetKind::Bytes)
            }
            _ => {
                let kind = [
                    FleetKind::Inline,
                    FleetKind::Cached,
                    FleetKind::UnknownSigner,
                    FleetKind::AlteredSeal,
                    FleetKind::AlteredSigned,
                    FleetKind::Replay,
                    FleetKind::Expired,
                    FleetKind::Call,
                ][usize::from(kind)];
                let module = script.byte();
                let input_len = usize::from(script.byte());
                let input = script.take(input_len).to_vec();
                let limits = limits(script);
                let (mut alter, mut ago, mut call) = (None, 0, None);
                match kind {
                    FleetKind::AlteredSeal | FleetKind::AlteredSigned => {
                        alter = Some((usize::from(script.u16()), script.byte()))
                    }
                    FleetKind::Expired => ago = u64::from(script.u16()),
                    FleetKind::Call => {
                        let (a, b) = (i64::from(script.byte() as i8), i64::from(script.byte() as i8));
                        call = Some((a, b, script.byte().is_multiple_of(2)));
                    }
                    _ => {}
                }
                if self.fleet.built >= MAX_FLEET_JOBS {
                    return;
                }
                self.fleet.built += 1;
                self.fleet.next_id += 1;
                let mut id = [0xf1; JOB_ID_LEN];
                id[..4].copy_from_slice(&self.fleet.next_id.to_le_bytes());
                let (format, code, code_hash) = match (kind, modules().get(usize::from(module))) {
                    (FleetKind::Cached, Some((_, bytes))) => (None, &[][..], sha256(bytes)),
                    (FleetKind::Cached, None) => (None, &[][..], [module; 32]),
                    _ => {
                        let (format, bytes) = &modules()[usize::from(module) % modules().len()];
                        (Some(*format), &bytes[..], sha256(bytes))
                    }
                };
                let echo = code_hash == sha256(&modules()[0].1);
                let (add, run) = match call {
                    Some((a, b, _)) => ([a, b], [a]),
                    None => ([0; 2], [0]),
                };
                let spec = Spec {
                    id,
                    // An expired job ends at least 2 ms before "now": the device's estimate is
                    // within a millisecond below the scripted clock once synced.
                    issued_at: if kind == FleetKind::Expired { now_ms - 2 - ago - LIFETIME_MS } else { now_ms },
                    format,
                    code,
                    code_hash,
                    input: &input,
                    call: call.and_then(
                        |(_, _, is_add)| if is_add { Call::new("add", &add) } else { Call::new("run", &run) },
                    ),
                    limits,
                    signer: if kind == FleetKind::UnknownSigner { &UNKNOWN_SIGNER_SEED } else { &SIGNER_SEED },
                    alter_seal: alter.filter(|_| kind == FleetKind::AlteredSeal),
                };
                let mut message = spec.bytes();
                if let (FleetKind::AlteredSigned, Some((offset, mask))) = (kind, alter) {
                    let at = offset % (message.len() - ENVELOPE_LEN);
                    message[at] ^= mask.max(1);
                }
                let unknown_signer_code = format.is_some() && usize::from(module) % modules().len() == 1;
                let unknown_hash = kind == FleetKind::Cached && usize::from(module) >= modules().len();
                let expect = match call {
                    _ if unknown_hash => Expect::Error(Some(ErrorCode::NotFound)),
                    _ if unknown_signer_code => Expect::Error(None),
                    _ if !echo => Expect::Any,
                    None => Expect::Echo(input),
                    Some((a, b, true)) => Expect::Add(a + b),
                    Some(_) => Expect::Any,
                };
                self.fleet_send(message, kind, expect);
                return;
            }
        };
        self.fleet_send(message, kind, Expect::Any);
    }

    /// Hands `message` (of `kind`) to the device and checks its verdict.
    fn fleet_send(&mut self, message: Vec<u8>, kind: FleetKind, expect: Expect) {
        let answered = self.server.fleet_counters().answered;
        let verdict = self.server.fleet_job(&message);
        // A refused message is dropped: nothing sealed for it. An accepted one is answered at
        // most once at once (its code refused, or the queue full), else after its run.
        let answered_now = self.server.fleet_counters().answered - answered;
        assert!(
            answered_now <= u32::from(verdict.is_ok()),
            "{answered_now} results sealed for a message answered {verdict:?}"
        );
        let fresh_refused = matches!(verdict, Err(FleetRefusal::Busy));
        match kind {
            FleetKind::Inline | FleetKind::Cached | FleetKind::Call => {
                assert!(verdict.is_ok() || fresh_refused, "a valid fleet job was refused: {verdict:?}")
            }
            FleetKind::UnknownSigner => {
                assert_eq!(verdict, Err(FleetRefusal::BadSignature), "a job signed by an unknown signer")
            }
            FleetKind::AlteredSeal => assert!(
                verdict == Err(FleetRefusal::BadSeal) || fresh_refused,
                "a job with an altered sealed input: {verdict:?}"
            ),
            FleetKind::AlteredSigned => assert!(
                matches!(verdict, Err(FleetRefusal::Malformed | FleetRefusal::BadSignature)),
                "a job with altered signed bytes: {verdict:?}"
            ),
            FleetKind::Replay => match &self.fleet.last {
                Some((_, Ok(_))) => assert_eq!(verdict, Err(FleetRefusal::Replayed), "a replayed job"),
                // Only a full replay table may turn into an acceptance later.
                Some((_, Err(FleetRefusal::Busy))) | None => {}
                Some((_, Err(_))) => assert!(verdict.is_err(), "a refused message was accepted when replayed"),
            },
            FleetKind::Expired => {
                if self.fleet.synced {
                    assert_eq!(verdict, Err(FleetRefusal::Replayed), "a job past its expiry");
                }
            }
            FleetKind::Bytes => {}
        }
        if matches!(kind, FleetKind::Inline | FleetKind::Cached | FleetKind::Call | FleetKind::AlteredSeal) {
            self.fleet.synced = true;
        }
        match verdict {
            Ok(id) => {
                let job = JobRepr::parse(&message).expect("an accepted message parses");
                assert_eq!(job.header.job_id, id, "fleet_job returned another id than the message's");
                assert_eq!(job.header.reply_key, keys().reply, "only the scripted client signs jobs");
                assert!(!self.fleet.accepted.contains(&id), "job id {id:02x?} accepted twice");
                self.fleet.accepted.push(id);
                self.fleet.owed.insert(id, expect);
            }
            Err(refusal) => {
                // The harness's own mapping, not `FleetRefusal::counter`: it is the oracle the
                // server's counting is checked against.
                let counters = &mut self.fleet.refusals;
                let counter = match refusal {
                    FleetRefusal::Malformed => &mut counters.malformed,
                    FleetRefusal::BadSignature => &mut counters.bad_signature,
                    FleetRefusal::Replayed => &mut counters.replayed,
                    FleetRefusal::Busy => &mut counters.busy,
                    FleetRefusal::BadSeal => &mut counters.bad_seal,
                };
                *counter += 1;
            }
        }
        self.fleet.last = Some((message, verdict));
        self.fleet_drain();
    }

    /// Takes every sealed result the device has and checks it against the job it answers.
    pub(super) fn fleet_drain(&mut self) {
        while let Some(result) = self.server.take_fleet_result() {
            let expect = self
                .fleet
                .owed
                .remove(&result.job_id)
                .unwrap_or_else(|| panic!("a result for job {:02x?}, refused or answered already", result.job_id));
            self.fleet.results += 1;
            check_result(&result, &expect);
        }
    }

    /// The fleet invariants after every step.
    pub(super) fn fleet_check(&mut self) {
        let counters = self.server.fleet_counters();
        let (last, now) = (self.fleet.last_counters, counters);
        let fields = |c: &FleetCounters| {
            let r = &c.refusals;
            [c.received, c.answered, r.replayed, r.bad_signature, r.bad_seal, r.malformed, r.busy]
        };
        assert!(
            fields(&last).iter().zip(fields(&now)).all(|(old, new)| *old <= new),
            "a fleet counter went back: {last:?} -> {now:?}"
        );
        assert_eq!(now.refusals, self.fleet.refusals, "refusals counted by the reason given");
        assert_eq!(
            u64::from(now.received),
            self.fleet.accepted.len() as u64 + now.refusals.total(),
            "received is accepted plus refused"
        );
        let answered = now.answered as usize;
        assert!(answered >= self.fleet.results, "more results taken than answered");
        assert!(answered <= self.fleet.accepted.len(), "more answers than accepted jobs");
        self.fleet.last_counters = now;
    }

    /// At the end (every job run out): every accepted job was answered once, nothing is left.
    pub(super) fn fleet_finish(&mut self) {
        self.fleet_drain();
        assert!(self.fleet.owed.is_empty(), "accepted jobs without a result: {:02x?}", self.fleet.owed.keys());
        assert_eq!(self.fleet.results, self.fleet.accepted.len());
        assert_eq!(self.server.fleet_counters().answered as usize, self.fleet.accepted.len());
        for id in &self.fleet.accepted {
            assert!(!self.server.fleet_job_pending(id), "job {id:02x?} still pending");
        }
        self.fleet_check();
    }
}

/// Opens `result` as the client: it names its job, opens with the reply key, was sealed by the
/// device's static key, and holds a JobResult or an Error that fits `expect`.
fn check_result(result: &FleetResult, expect: &Expect) {
    let repr = ResultRepr::parse(&result.message).expect("a result message parses");
    assert_eq!(repr.job_id, result.job_id, "the result message names its job");
    let mut noise =
        snow::Builder::with_resolver(RESULT_NOISE_PARAMS.parse().expect("Noise X"), Box::new(Resolver::new(&ENTROPY)))
            .local_private_key(&REPLY_SECRET)
            .and_then(|builder| builder.prologue(&result.job_id))
            .and_then(|builder| builder.build_responder())
            .expect("a Noise X responder builds");
    let mut plain = std::vec![0u8; repr.sealed.len()];
    let len = noise.read_message(repr.sealed, &mut plain).expect("a sealed result opens with the job's reply key");
    assert_eq!(noise.get_remote_static(), Some(&keys().device[..]), "the result is sealed by the device");
    match Message::parse(&plain[..len]).expect("a sealed result holds a wire message") {
        Message::JobResult { status: JobStatus::Ok, exit_value, output, results, .. } => {
            let values: Vec<Value> = results.iter().collect();
            match expect {
                Expect::Echo(input) => {
                    assert!(values.is_empty(), "an entry-point run has no call results");
                    assert_eq!(output, &input[..], "an echo job's output is its input");
                    assert_eq!(exit_value as usize, input.len(), "the echo module returns the input's length");
                }
                Expect::Add(sum) => {
                    assert_eq!(values, [Value::I64(*sum)], "add's result");
                    assert!(output.is_empty(), "add writes no output");
                }
                Expect::Error(_) => panic!("a job that must fail ran Ok"),
                Expect::Any => {}
            }
        }
        Message::JobResult { status, .. } => {
            assert!(!matches!(expect, Expect::Error(_)), "a job that must be refused ran: {status:?}")
        }
        Message::Error { code, message } => {
            assert!(code as u32 != 0 && message.len() <= wire::MAX_ERROR_MESSAGE_LEN, "a sealed Error");
            if let Expect::Error(Some(expected)) = expect {
                assert_eq!(code, *expected, "a sealed Error's code");
            }
        }
        other => panic!("a sealed result holds a message of kind {}", other.kind()),
    }
}

/// A fleet message for [`super::ScriptBuilder::fleet`] (limits are always the defaults).
#[derive(Clone, Copy, Debug)]
pub enum FleetMessage<'a> {
    /// A valid job carrying module `module` of [`modules`], with `input`.
    Inline {
        /// Index into [`modules`].
        module: u8,
        /// The job's input (at most 255 bytes).
        input: &'a [u8],
    },
    /// A valid job naming module `module` (0..=3, else an unknown hash) by hash.
    Cached {
        /// Index into [`modules`], or 4 and above for an unknown hash.
        module: u8,
        /// The job's input (at most 255 bytes).
        input: &'a [u8],
    },
    /// A job carrying module `module`, its envelope signed by an unknown signer.
    UnknownSigner {
        /// Index into [`modules`].
        module: u8,
    },
    /// A job carrying module `module` whose sealed input has byte `offset` xored with `mask`
    /// (then signed).
    AlteredSeal {
        /// Index into [`modules`].
        module: u8,
        /// Offset in the sealed input (modulo its length).
        offset: u16,
        /// Xored in (0 counts as 1).
        mask: u8,
    },
    /// A job carrying module `module` whose signed byte `offset` is xored with `mask` after
    /// signing.
    AlteredSigned {
        /// Index into [`modules`].
        module: u8,
        /// Offset in the signed part (modulo its length).
        offset: u16,
        /// Xored in (0 counts as 1).
        mask: u8,
    },
    /// The previous fleet message again.
    Replay,
    /// A job carrying module `module` that expired `ago` ms (plus 2) before now.
    Expired {
        /// Index into [`modules`].
        module: u8,
        /// Milliseconds.
        ago: u16,
    },
    /// A job carrying module `module` that calls `add(a, b)`.
    Call {
        /// Index into [`modules`].
        module: u8,
        /// First argument.
        a: i8,
        /// Second argument.
        b: i8,
    },
    /// Arbitrary bytes.
    Bytes(&'a [u8]),
}

impl FleetMessage<'_> {
    /// The operation's operands.
    pub(super) fn operands(&self) -> Vec<u8> {
        let job = |kind: FleetKind, module: u8, input: &[u8]| {
            let mut operands = std::vec![kind as u8, module, input.len() as u8];
            operands.extend_from_slice(input);
            operands.push(0);
            operands
        };
        match *self {
            FleetMessage::Inline { module, input } => job(FleetKind::Inline, module, input),
            FleetMessage::Cached { module, input } => job(FleetKind::Cached, module, input),
            FleetMessage::UnknownSigner { module } => job(FleetKind::UnknownSigner, module, b"who"),
            FleetMessage::AlteredSeal { module, offset, mask } => {
                let mut operands = job(FleetKind::AlteredSeal, module, b"seal");
                operands.extend_from_slice(&offset.to_le_bytes());
                operands.push(mask);
                operands
            }
            FleetMessage::AlteredSigned { module, offset, mask } => {
                let mut operands = job(FleetKind::AlteredSigned, module, b"sign");
                operands.extend_from_slice(&offset.to_le_bytes());
                operands.push(mask);
                operands
            }
            FleetMessage::Replay => std::vec![FleetKind::Replay as u8],
            FleetMessage::Expired { module, ago } => {
                let mut operands = job(FleetKind::Expired, module, b"late");
                operands.extend_from_slice(&ago.to_le_bytes());
                operands
            }
            FleetMessage::Call { module, a, b } => {
                let mut operands = job(FleetKind::Call, module, b"");
                operands.extend_from_slice(&[a as u8, b as u8, 0]);
                operands
            }
            FleetMessage::Bytes(bytes) => {
                let mut operands = std::vec![FleetKind::Bytes as u8];
                operands.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
                operands.extend_from_slice(bytes);
                operands
            }
        }
    }
}

//! Fleet jobs on the host: a job message (`jos_abi::fleet_job`) built as a client does (input
//! sealed with Noise N to the fleet key, envelope signed by a trusted signer) runs through the
//! server's queue and comes back sealed with Noise X from the device's static key; every way a
//! message is refused is dropped and counted.

mod common;

use common::*;
use ed25519_dalek::ed25519::signature::Signer;
use jos_abi::fleet_job::{
    Envelope, JobHeader, JobInputRepr, JobRepr, ResultRepr, INPUT_NOISE_PARAMS, JOB_ID_LEN, MAX_JOB_LIFETIME_MS,
    RESULT_NOISE_PARAMS,
};
use jos_abi::signature::{key_id, public_key, sha256};
use jos_abi::wire::{Call, Format, JobStatus, Limits};
use jos_abi::ErrorCode;
use jos_offload::noise::{self, Resolver};
use jos_offload::{FleetRefusal, Server, ServerOptions, FLEET_REPLAY_SLOTS};

const FLEET_SECRET: [u8; 32] = [0x5a; 32];
const REPLY_SECRET: [u8; 32] = [0x6b; 32];
const T0: u64 = 1_800_000_000_000;

/// A job as a test builds it.
struct Job<'a> {
    id: [u8; JOB_ID_LEN],
    issued_at: u64,
    expires_at: u64,
    format: Option<Format>,
    code: &'a [u8],
    code_hash: [u8; 32],
    input: &'a [u8],
    call: Option<Call<'a>>,
    fleet_public: [u8; 32],
    signer: [u8; 32],
}

impl<'a> Job<'a> {
    fn new(id: u8, code: &'a [u8]) -> Self {
        Job {
            id: [id; JOB_ID_LEN],
            issued_at: T0,
            expires_at: T0 + 60_000,
            format: Some(Format::Wasm),
            code,
            code_hash: sha256(code),
            input: b"hello fleet",
            call: None,
            fleet_public: noise::public_key(&FLEET_SECRET),
            signer: DEVELOPER,
        }
    }

    fn cached(mut self) -> Self {
        self.format = None;
        self.code = &[];
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let header = JobHeader {
            format: self.format,
            job_id: self.id,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            limits: Limits::default(),
            code_hash: self.code_hash,
            reply_key: noise::public_key(&REPLY_SECRET),
        };
        let input = JobInputRepr { call: self.call, input: self.input };
        let mut plain = vec![0u8; input.buffer_len()];
        input.emit(&mut plain).unwrap();
        let mut noise =
            snow::Builder::with_resolver(INPUT_NOISE_PARAMS.parse().unwrap(), Box::new(Resolver::new(&ENTROPY)))
                .remote_public_key(&self.fleet_public)
                .unwrap()
                .prologue(&header.to_bytes())
                .unwrap()
                .build_initiator()
                .unwrap();
        let mut sealed = vec![0u8; 65535];
        let len = noise.write_message(&plain, &mut sealed).unwrap();
        let repr = JobRepr {
            header,
            code: self.code,
            sealed_input: &sealed[..len],
            envelope: Envelope { key_id: [0; 12], signature: [0; 64] },
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        let key = ed25519_dalek::SigningKey::from_bytes(&self.signer);
        repr.emit_signed(&mut bytes, |signed| Envelope {
            key_id: key_id(&public_key(&self.signer)),
            signature: key.sign(signed).to_bytes(),
        })
        .unwrap();
        bytes
    }
}

fn server() -> Server<TestPlatform> {
    let mut server = common::server(ServerOptions::default());
    server.set_fleet_key(Some(FLEET_SECRET));
    server
}

/// Opens a result message as the client: checks the job id, authenticates the device by its
/// static key, decodes the wire message.
fn open(message: &[u8], job_id: [u8; JOB_ID_LEN]) -> Reply {
    let result = ResultRepr::parse(message).expect("result message parses");
    assert_eq!(result.job_id, job_id);
    let mut noise =
        snow::Builder::with_resolver(RESULT_NOISE_PARAMS.parse().unwrap(), Box::new(Resolver::new(&ENTROPY)))
            .local_private_key(&REPLY_SECRET)
            .unwrap()
            .prologue(&job_id)
            .unwrap()
            .build_responder()
            .unwrap();
    let mut plain = vec![0u8; 65535];
    let len = noise.read_message(result.sealed, &mut plain).expect("sealed result opens");
    assert_eq!(noise.get_remote_static(), Some(&noise::public_key(&DEVICE_SECRET)[..]), "sealed by the device");
    reply(&plain[..len])
}

/// Runs the server until a fleet result appears.
fn result(server: &mut Server<TestPlatform>, job_id: [u8; JOB_ID_LEN]) -> Reply {
    for now in 0..500 {
        if let Some(result) = server.take_fleet_result() {
            assert_eq!(result.job_id, job_id);
            return open(&result.message, job_id);
        }
        server.poll(now * 1000);
    }
    panic!("no fleet result");
}

fn echo() -> Vec<u8> {
    signed_wasm(ECHO, &DEVELOPER)
}

#[test]
fn a_job_runs_and_its_result_opens_as_the_device() {
    let mut server = server();
    let code = echo();
    let job = Job::new(1, &code);
    assert_eq!(server.fleet_job(&job.bytes()), Ok(job.id));
    assert!(server.fleet_job_pending(&job.id));
    match result(&mut server, job.id) {
        Reply::Result { status: JobStatus::Ok, exit_value, output, .. } => {
            assert_eq!(output, b"hello fleet");
            assert_eq!(exit_value, 11);
        }
        other => panic!("{other:?}"),
    }
    assert!(!server.fleet_job_pending(&job.id));
    // The module is now cached: a job naming it by hash runs it.
    let cached = Job { input: b"again", ..Job::new(2, &code) }.cached();
    assert_eq!(server.fleet_job(&cached.bytes()), Ok(cached.id));
    assert!(
        matches!(result(&mut server, cached.id), Reply::Result { status: JobStatus::Ok, output, .. } if output == b"again")
    );
    let counters = server.fleet_counters();
    assert_eq!((counters.received, counters.answered, counters.refusals.total()), (2, 2, 0));
    assert_eq!(server.counters().jobs_ok, 2);
    assert_eq!(server.fleet_clock_ms().map(|now| now >= T0), Some(true));
}

#[test]
fn a_call_with_arguments_travels_sealed() {
    const ADD: &str = r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0))
        (func (export "add") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1))))"#;
    let mut server = server();
    let code = signed_wasm(ADD, &DEVELOPER);
    let job = Job { call: Call::new("add", &[40, 2]), ..Job::new(3, &code) };
    assert_eq!(server.fleet_job(&job.bytes()), Ok(job.id));
    match result(&mut server, job.id) {
        Reply::Result { status: JobStatus::Ok, results, .. } => assert_eq!(results, vec![jos_abi::job::Value::I64(42)]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn native_blobs_run_through_the_same_queue() {
    let mut server = server();
    let blob = signed_blob(&DEVELOPER, jos_abi::AbiVersion::CURRENT);
    let job = Job { format: Some(Format::NativeArmv6), ..Job::new(4, &blob) };
    assert_eq!(server.fleet_job(&job.bytes()), Ok(job.id));
    // The test platform's native job exits with the granted capability bits (all three).
    assert!(matches!(result(&mut server, job.id), Reply::Result { status: JobStatus::Ok, exit_value: 7, .. }));
}

#[test]
fn refused_code_gets_a_sealed_error() {
    let mut server = server();
    // The code's own signature is by a signer the device does not know.
    let stranger = signed_wasm(ECHO, &[0x77; 32]);
    let job = Job::new(5, &stranger);
    assert_eq!(server.fleet_job(&job.bytes()), Ok(job.id));
    assert!(matches!(result(&mut server, job.id), Reply::Error(code, _) if code == ErrorCode::UntrustedSigner as u32));
    // An unknown cached hash: NotFound, as a direct Invoke gets.
    let unknown = Job { code_hash: [0xee; 32], ..Job::new(6, &[]) }.cached();
    assert_eq!(server.fleet_job(&unknown.bytes()), Ok(unknown.id));
    assert!(matches!(result(&mut server, unknown.id), Reply::Error(code, _) if code == ErrorCode::NotFound as u32));
    // A blob signed by a wasm-only signer, in an envelope that signer may sign: the envelope
    // passes only for wasm, so this is refused at the envelope (native right missing).
    let blob = signed_blob(&WASM_ONLY, jos_abi::AbiVersion::CURRENT);
    let job = Job { format: Some(Format::NativeArmv6), signer: WASM_ONLY, ..Job::new(7, &blob) };
    assert_eq!(server.fleet_job(&job.bytes()), Err(FleetRefusal::BadSignature));
    assert_eq!(server.fleet_counters().answered, 2);
}

#[test]
fn every_refusal_is_dropped_and_counted() {
    let mut server = server();
    let code = echo();
    let good = Job::new(10, &code);
    let bytes = good.bytes();
    // Malformed.
    assert_eq!(server.fleet_job(b"JOSJ nonsense"), Err(FleetRefusal::Malformed));
    // An untrusted envelope signer, and an altered signed byte.
    let untrusted = Job { signer: [0x77; 32], ..Job::new(11, &code) };
    assert_eq!(server.fleet_job(&untrusted.bytes()), Err(FleetRefusal::BadSignature));
    let mut altered = bytes.clone();
    altered[30] ^= 1; // issued_at
    assert_eq!(server.fleet_job(&altered), Err(FleetRefusal::BadSignature));
    // Altered sealed input, re-signed by a trusted signer: the seal does not open.
    let mut resealed = bytes.clone();
    let at = resealed.len() - 76 - 5;
    resealed[at] ^= 1;
    let repr = JobRepr::parse(&resealed).unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&DEVELOPER);
    let mut signed = vec![0u8; repr.buffer_len()];
    repr.emit_signed(&mut signed, |part| Envelope {
        key_id: repr.envelope.key_id,
        signature: key.sign(part).to_bytes(),
    })
    .unwrap();
    assert_eq!(server.fleet_job(&signed), Err(FleetRefusal::BadSeal));
    // Sealed to another fleet's key.
    let other_fleet = Job { fleet_public: noise::public_key(&[0x5b; 32]), ..Job::new(12, &code) };
    assert_eq!(server.fleet_job(&other_fleet.bytes()), Err(FleetRefusal::BadSeal));
    // The good job runs once; its replay is refused.
    assert_eq!(server.fleet_job(&bytes), Ok(good.id));
    assert!(matches!(result(&mut server, good.id), Reply::Result { status: JobStatus::Ok, .. }));
    assert_eq!(server.fleet_job(&bytes), Err(FleetRefusal::Replayed));
    let counters = server.fleet_counters();
    assert_eq!(counters.refusals.malformed, 1);
    assert_eq!(counters.refusals.bad_signature, 2);
    assert_eq!(counters.refusals.bad_seal, 2);
    assert_eq!(counters.refusals.replayed, 1);
    assert_eq!(counters.received, 7);
    assert_eq!(counters.answered, 1);
    // No fleet key: every job is refused.
    let mut keyless = common::server(ServerOptions::default());
    assert_eq!(keyless.fleet_job(&Job::new(13, &code).bytes()), Err(FleetRefusal::Malformed));
    assert_eq!(keyless.fleet_counters().refusals.malformed, 1);
}

#[test]
fn expiry_follows_the_newest_accepted_job_and_the_local_clock() {
    let mut server = server();
    let code = echo();
    let first = Job { issued_at: T0 + 100_000, expires_at: T0 + 160_000, ..Job::new(20, &code) };
    assert_eq!(server.fleet_job(&first.bytes()), Ok(first.id));
    // A job that expired before the newest accepted job was issued.
    let stale = Job { issued_at: T0, expires_at: T0 + 60_000, ..Job::new(21, &code) };
    assert_eq!(server.fleet_job(&stale.bytes()), Err(FleetRefusal::Replayed));
    // Local time moves the estimate on: two minutes later a job expiring in one is refused.
    server.platform_mut().advance(120_000_000);
    let late = Job { issued_at: T0 + 100_000, expires_at: T0 + 160_000, ..Job::new(22, &code) };
    assert_eq!(server.fleet_job(&late.bytes()), Err(FleetRefusal::Replayed));
    let fresh = Job { issued_at: T0 + 220_000, expires_at: T0 + 220_000 + MAX_JOB_LIFETIME_MS, ..Job::new(23, &code) };
    assert_eq!(server.fleet_job(&fresh.bytes()), Ok(fresh.id));
    assert_eq!(server.fleet_counters().refusals.replayed, 2);
}

#[test]
fn a_full_replay_table_refuses_rather_than_forgets() {
    let mut server = server();
    let code = echo();
    let ids: Vec<[u8; JOB_ID_LEN]> = (0..=FLEET_REPLAY_SLOTS as u32)
        .map(|n| {
            let mut id = [0u8; JOB_ID_LEN];
            id[..4].copy_from_slice(&n.to_le_bytes());
            id[15] = 0xf0;
            id
        })
        .collect();
    // The first job carries the code; the rest name it by hash and are answered at once or
    // queued; none of them expires.
    for (n, id) in ids.iter().enumerate().take(FLEET_REPLAY_SLOTS) {
        let job =
            if n == 0 { Job { id: *id, ..Job::new(0, &code) } } else { Job { id: *id, ..Job::new(0, &code) }.cached() };
        assert_eq!(server.fleet_job(&job.bytes()), Ok(*id), "job {n}");
        while server.take_fleet_result().is_some() {}
        for now in 0..20 {
            server.poll(now);
        }
    }
    let one_more = Job { id: ids[FLEET_REPLAY_SLOTS], ..Job::new(0, &code) }.cached();
    assert_eq!(server.fleet_job(&one_more.bytes()), Err(FleetRefusal::Busy));
    // Once the remembered jobs expired (by a newer job's time), their slots free up.
    let later = Job { issued_at: T0 + 61_000, expires_at: T0 + 120_000, ..one_more };
    assert_eq!(server.fleet_job(&later.bytes()), Ok(later.id));
    assert_eq!(server.fleet_counters().refusals.busy, 1);
}

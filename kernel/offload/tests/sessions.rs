//! The session state machine driven in memory by snow initiators: handshake, trust, replay,
//! tampering, push, invoke, the job queue, bad input and discovery.

mod common;

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::discovery::{Advert, AdvertRepr, LoadState, Probe};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_abi::{AbiVersion, ErrorCode};
use jos_offload::host::HostPlatform;
use jos_offload::{Server, ServerOptions, Slice};

fn options() -> ServerOptions {
    ServerOptions { progress_interval_us: 0, ..ServerOptions::default() }
}

/// Polls until the client has a JobResult; returns every reply on the way.
fn run_until_result(server: &mut Server<TestPlatform>, client: &mut MemoryClient, max_polls: u64) -> Vec<Reply> {
    let mut replies = Vec::new();
    for now in 0..max_polls {
        server.poll(now * 1000);
        replies.extend(client.replies(server));
        if matches!(replies.last(), Some(Reply::Result { .. })) {
            return replies;
        }
    }
    panic!("no result after {max_polls} polls: {replies:?}");
}

fn push(server: &mut Server<TestPlatform>, client: &mut MemoryClient, format: Format, module: &[u8]) -> Reply {
    let frames = push_frames(&mut client.transport, format, module, 1000);
    server.receive(client.id, &frames);
    let replies = client.replies(server);
    assert_eq!(replies.len(), 1, "one answer to a push: {replies:?}");
    replies[0].clone()
}

fn invoke(client: &mut MemoryClient, server: &mut Server<TestPlatform>, hash: [u8; 32], limits: Limits, input: &[u8]) {
    client.send(server, &Message::Invoke { hash, limits, input, call: None });
}

fn error(code: ErrorCode) -> impl Fn(&Reply) -> bool {
    move |reply| matches!(reply, Reply::Error(found, _) if *found == code as u32)
}

#[track_caller]
fn assert_session_alive(server: &mut Server<TestPlatform>, client: &mut MemoryClient) {
    client.send(server, &Message::Ping { nonce: 77 });
    let replies: Vec<Reply> =
        client.replies(server).into_iter().filter(|reply| !matches!(reply, Reply::Progress(_))).collect();
    assert_eq!(replies, vec![Reply::Pong(77)]);
}

#[test]
fn push_and_invoke_wasm_then_invoke_cached_from_another_session() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client gets in");
    let module = signed_wasm(ECHO, &DEVELOPER);
    let hash = sha256(&module);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(hash));
    invoke(&mut client, &mut server, hash, Limits::default(), b"hello jos");
    let replies = run_until_result(&mut server, &mut client, 100);
    assert_eq!(
        replies.last().unwrap(),
        &Reply::Result {
            status: JobStatus::Ok,
            exit_value: 9,
            output: b"hello jos".to_vec(),
            results: vec![],
            logs: vec![]
        }
    );

    let mut other = MemoryClient::connect(&mut server, &CLIENT2_SECRET).expect("second trusted client");
    invoke(&mut other, &mut server, hash, Limits::default(), b"again");
    let replies = run_until_result(&mut server, &mut other, 100);
    assert_eq!(
        replies.last().unwrap(),
        &Reply::Result {
            status: JobStatus::Ok,
            exit_value: 5,
            output: b"again".to_vec(),
            results: vec![],
            logs: vec![]
        }
    );
    let counters = server.counters();
    assert_eq!((counters.pushes_ok, counters.jobs_ok, counters.sessions_opened), (1, 2, 2));
}

#[test]
fn unknown_client_key_cannot_complete_the_handshake_and_is_told_so() {
    let mut server = server(options());
    let refusal = MemoryClient::try_connect(&mut server, &STRANGER_SECRET).err();
    assert!(
        matches!(&refusal, Some(Refusal::Error(code, text)) if *code == ErrorCode::PermissionDenied as u32 && text.contains("not in the device's configuration")),
        "{refusal:?}"
    );
    assert_eq!(server.counters().hellos_refused, 1);
    assert_eq!(server.counters().dropped_unauthenticated, 0);
    assert_eq!(server.counters().sessions_opened, 0);
}

#[test]
fn garbage_and_wrong_version_hellos_are_dropped_silently() {
    let mut server = server(options());
    for bytes in [
        frame(b"\x01"),
        frame(&[9, 9, 9]),
        frame(&encode(&Message::Ping { nonce: 1 })),
        frame(&encode(&Message::Hello { version: 2, handshake: &[0; 96] })),
        frame(&encode(&Message::Hello { version: 1, handshake: &[0; 96] })),
    ] {
        let id = server.connect().unwrap();
        server.receive(id, &bytes);
        assert!(server.pending(id).is_empty(), "no answer to an unauthenticated {bytes:?}");
        assert!(server.wants_close(id));
        server.disconnect(id);
    }
    assert_eq!(server.counters().dropped_unauthenticated, 5);
}

#[test]
fn replayed_handshake_message_is_refused() {
    let mut server = server(options());
    let mut state = initiator(&CLIENT_SECRET);
    let hello = hello_frame(&mut state);
    let first = server.connect().unwrap();
    server.receive(first, &hello);
    assert!(!server.pending(first).is_empty(), "the original handshake is answered");
    let second = server.connect().unwrap();
    server.receive(second, &hello);
    assert!(server.pending(second).is_empty(), "the replay gets no answer");
    assert!(server.wants_close(second));
    assert_eq!(server.counters().replays_refused, 1);
    assert_eq!(server.counters().sessions_opened, 1);
}

#[test]
fn flipped_ciphertext_kills_only_that_session() {
    let mut server = server(options());
    let mut victim = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let mut bystander = MemoryClient::connect(&mut server, &CLIENT2_SECRET).unwrap();
    let mut frame = seal(&mut victim.transport, &Message::Ping { nonce: 5 });
    frame[4] ^= 0x01;
    server.receive(victim.id, &frame);
    assert!(server.pending(victim.id).is_empty());
    assert!(server.wants_close(victim.id));
    assert_eq!(server.counters().sessions_killed, 1);
    assert_session_alive(&mut server, &mut bystander);
}

#[test]
fn replayed_and_reordered_frames_kill_the_session() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let ping = seal(&mut client.transport, &Message::Ping { nonce: 1 });
    server.receive(client.id, &ping);
    assert_eq!(client.replies(&mut server), vec![Reply::Pong(1)]);
    server.receive(client.id, &ping);
    assert!(server.wants_close(client.id), "a replayed frame ends the session");

    let mut client = MemoryClient::connect(&mut server, &CLIENT2_SECRET).unwrap();
    let first = seal(&mut client.transport, &Message::Ping { nonce: 1 });
    let second = seal(&mut client.transport, &Message::Ping { nonce: 2 });
    server.receive(client.id, &second);
    server.receive(client.id, &first);
    assert!(client.replies(&mut server).is_empty());
    assert!(server.wants_close(client.id), "a reordered frame ends the session");
    assert_eq!(server.counters().sessions_killed, 2);
}

#[test]
fn signatures_rights_and_abi_are_checked_at_push() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let cases: Vec<(Format, Vec<u8>, ErrorCode)> = vec![
        (Format::NativeArmv6, signed_blob(&WASM_ONLY, AbiVersion::CURRENT), ErrorCode::UntrustedSigner),
        (Format::Wasm, signed_wasm(ECHO, &UNKNOWN_SIGNER), ErrorCode::UntrustedSigner),
        (Format::Wasm, wasm(ECHO), ErrorCode::BadSignature),
        (Format::NativeArmv6, signed_blob(&DEVELOPER, AbiVersion { major: 2, minor: 0 }), ErrorCode::AbiMismatch),
        (Format::NativeArmv6, b"not a blob at all, just text".to_vec(), ErrorCode::Malformed),
    ];
    for (format, module, code) in cases {
        let answer = push(&mut server, &mut client, format, &module);
        assert!(error(code)(&answer), "{format:?} push: expected {code:?}, got {answer:?}");
    }
    let newer_wasm =
        jos_abi::signature::sign_wasm(&with_custom(wasm(ECHO), "jos.abi", &[0, 0, 2, 0]), &DEVELOPER, true).unwrap();
    let answer = push(&mut server, &mut client, Format::Wasm, &newer_wasm);
    assert!(error(ErrorCode::AbiMismatch)(&answer), "{answer:?}");

    let blob = signed_blob(&DEVELOPER, AbiVersion::CURRENT);
    assert_eq!(push(&mut server, &mut client, Format::NativeArmv6, &blob), Reply::PushOk(sha256(&blob)));
    let wasm_by_wasm_signer = signed_wasm(ECHO, &WASM_ONLY);
    assert_eq!(
        push(&mut server, &mut client, Format::Wasm, &wasm_by_wasm_signer),
        Reply::PushOk(sha256(&wasm_by_wasm_signer))
    );
    assert_eq!(server.counters().sessions_killed, 0);
}

#[test]
fn oversized_module_is_refused_and_the_session_goes_on() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    client.send(
        &mut server,
        &Message::PushBegin {
            format: Format::Wasm,
            total_len: MAX_MODULE + 1,
            sha256: [0; 32],
            limits: Limits::default(),
        },
    );
    let replies = client.replies(&mut server);
    assert!(error(ErrorCode::LimitExceeded)(&replies[0]), "{replies:?}");
    client.send(&mut server, &Message::PushChunk { offset: 0, bytes: b"x" });
    assert!(error(ErrorCode::InvalidArgument)(&client.replies(&mut server)[0]), "no push in progress");
    assert_session_alive(&mut server, &mut client);
}

#[test]
fn a_module_at_the_cap_is_accepted() {
    // A 4 MiB module (a big data segment), pushed in 32 KiB chunks.
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let unsigned = wasm(ECHO);
    let filler = vec![0x61u8; MAX_MODULE as usize - unsigned.len() - 300];
    let module = jos_abi::signature::sign_wasm(&with_custom(unsigned, "filler", &filler), &DEVELOPER, true).unwrap();
    assert!(module.len() <= MAX_MODULE as usize && module.len() > MAX_MODULE as usize - 1024, "{}", module.len());
    let frames = push_frames(&mut client.transport, Format::Wasm, &module, wire::MAX_CHUNK_LEN);
    server.receive(client.id, &frames);
    assert_eq!(client.replies(&mut server), vec![Reply::PushOk(sha256(&module))]);
}

#[test]
fn corrupt_and_out_of_order_chunks_are_refused() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(ECHO, &DEVELOPER);
    let sha = sha256(&module);
    let mut corrupt = module.clone();
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0x40;
    // PushBegin announces the real hash; the bytes differ.
    let mut frames = seal(
        &mut client.transport,
        &Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: sha,
            limits: Limits::default(),
        },
    );
    frames.extend(seal(&mut client.transport, &Message::PushChunk { offset: 0, bytes: &corrupt }));
    frames.extend(seal(&mut client.transport, &Message::PushEnd));
    server.receive(client.id, &frames);
    let replies = client.replies(&mut server);
    assert!(error(ErrorCode::InvalidArgument)(&replies[0]), "{replies:?}");
    assert!(matches!(&replies[0], Reply::Error(_, text) if text.contains("SHA-256")));

    let mut frames = seal(
        &mut client.transport,
        &Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: sha,
            limits: Limits::default(),
        },
    );
    frames.extend(seal(&mut client.transport, &Message::PushChunk { offset: 10, bytes: &module[10..20] }));
    frames.extend(seal(&mut client.transport, &Message::PushEnd));
    server.receive(client.id, &frames);
    let replies = client.replies(&mut server);
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(matches!(&replies[0], Reply::Error(1, text) if text.contains("offset 10")), "{replies:?}");
    assert!(error(ErrorCode::InvalidArgument)(&replies[1]), "PushEnd after the abandoned push");

    let mut frames = seal(
        &mut client.transport,
        &Message::PushBegin { format: Format::Wasm, total_len: 4, sha256: sha, limits: Limits::default() },
    );
    frames.extend(seal(&mut client.transport, &Message::PushChunk { offset: 0, bytes: &module[..5] }));
    server.receive(client.id, &frames);
    assert!(error(ErrorCode::InvalidArgument)(&client.replies(&mut server)[0]), "chunk past total_len");
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(sha), "a clean retry works");
}

#[test]
fn malformed_and_misdirected_messages_get_errors_and_the_session_goes_on() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (vec![0xee, 1, 2, 3], ErrorCode::Malformed),
        (vec![wire::kind::PING, 1, 2], ErrorCode::Malformed),
        (vec![wire::kind::PUSH_BEGIN, 7, 0, 0, 0, 0], ErrorCode::Malformed),
        (encode(&Message::PushOk { sha256: [1; 32] }), ErrorCode::Unsupported),
        (encode(&Message::Progress { fuel_used: 1, elapsed_us: 2, output_len: 3 }), ErrorCode::Unsupported),
    ];
    for (plain, code) in cases {
        let mut cipher = vec![0; plain.len() + 16];
        let len = client.transport.write_message(&plain, &mut cipher).unwrap();
        server.receive(client.id, &frame(&cipher[..len]));
        let replies = client.replies(&mut server);
        assert!(error(code)(&replies[0]), "{plain:?}: expected {code:?}, got {replies:?}");
    }
    invoke(&mut client, &mut server, [9; 32], Limits::default(), b"");
    assert!(error(ErrorCode::NotFound)(&client.replies(&mut server)[0]));
    assert_session_alive(&mut server, &mut client);
    client.send(&mut server, &Message::Hello { version: 1, handshake: &[0; 48] });
    assert!(error(ErrorCode::Unsupported)(&client.replies(&mut server)[0]));
    assert!(server.wants_close(client.id), "a second Hello ends the session");
}

#[test]
fn infinite_loop_runs_out_of_fuel_with_progress_and_ping_meanwhile() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(hash));
    invoke(&mut client, &mut server, hash, Limits { fuel: 2_000_000, ..Limits::default() }, b"");
    server.poll(0);
    server.poll(1);
    assert!(server.status().current.is_some(), "the job is running");
    assert_session_alive(&mut server, &mut client);
    let replies = run_until_result(&mut server, &mut client, 1000);
    let progress = replies.iter().filter(|reply| matches!(reply, Reply::Progress(_))).count();
    assert!(progress >= 5, "progress while running: {replies:?}");
    let Some(Reply::Result { status, logs, .. }) = replies.last() else { unreachable!() };
    assert_eq!(*status, JobStatus::OutOfFuel);
    assert!(logs[0].contains("fuel"), "{logs:?}");
    assert_eq!(server.counters().jobs_failed, 1);
}

/// Yields twice, then returns 7.
const YIELDS: &str = r#"(module (import "jos" "yield" (func $yield (result i32)))
  (func (export "run") (result i32) (drop (call $yield)) (drop (call $yield)) (i32.const 7)))"#;

#[test]
fn poll_says_how_each_slice_ended() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    assert_eq!(server.poll(0), Slice::Idle, "no job");
    let module = signed_wasm(YIELDS, &DEVELOPER);
    let hash = sha256(&module);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(hash));
    invoke(&mut client, &mut server, hash, Limits::default(), b"");
    // Each yield ends its slice as `Yielded` (the kernel then gives the job no more of that
    // frame); the slice after the last one ends the job.
    assert_eq!(server.poll(1), Slice::Yielded);
    assert_eq!(server.poll(2), Slice::Yielded);
    assert_eq!(server.poll(3), Slice::Ended);
    assert_eq!(server.poll(4), Slice::Idle);
    let replies = client.replies(&mut server);
    assert!(matches!(replies.last(), Some(Reply::Result { status: JobStatus::Ok, exit_value: 7, .. })), "{replies:?}");
    // A job that never yields: its slices end `Ran` (fuel used up) until its budget is gone.
    let spin = signed_wasm(SPIN, &DEVELOPER);
    let spin_hash = sha256(&spin);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &spin), Reply::PushOk(spin_hash));
    invoke(&mut client, &mut server, spin_hash, Limits { fuel: 1_000_000, ..Limits::default() }, b"");
    assert_eq!(server.poll_slice(5, 100_000), Slice::Ran);
    assert_eq!(server.poll_slice(6, 100_000), Slice::Ran);
    let mut ended = false;
    for now in 7..100 {
        match server.poll_slice(now, 100_000) {
            Slice::Ran => {}
            Slice::Ended => {
                ended = true;
                break;
            }
            other => panic!("a spinning job's slice ended {other:?}"),
        }
    }
    assert!(ended, "the spinning job ends at its budget");
}

#[test]
fn queue_limit_answers_busy_and_lost_connection_aborts_its_jobs() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(hash));
    for _ in 0..16 {
        invoke(&mut client, &mut server, hash, Limits::default(), b"");
    }
    assert!(client.replies(&mut server).is_empty(), "16 jobs queue");
    invoke(&mut client, &mut server, hash, Limits::default(), b"");
    assert!(error(ErrorCode::Busy)(&client.replies(&mut server)[0]));
    server.poll(0);
    assert_eq!(server.status().queued, 15);
    assert!(server.status().current.is_some());
    server.disconnect(client.id);
    assert_eq!(server.status().queued, 0);
    assert!(server.status().current.is_none());
    assert_eq!(server.counters().jobs_aborted, 16);
    assert_eq!(server.status().last, Some((JobStatus::Aborted, 0)));
}

#[test]
fn limits_come_from_push_defaults_and_request_capped_by_policy() {
    let mut server = Server::new(config_with_fuel(3_000_000), options(), platform(), &ENTROPY);
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    let mut frames = seal(
        &mut client.transport,
        &Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: hash,
            limits: Limits { fuel: 300_000, ..Limits::default() },
        },
    );
    frames.extend(seal(&mut client.transport, &Message::PushChunk { offset: 0, bytes: &module }));
    frames.extend(seal(&mut client.transport, &Message::PushEnd));
    server.receive(client.id, &frames);
    assert_eq!(client.replies(&mut server), vec![Reply::PushOk(hash)]);
    invoke(&mut client, &mut server, hash, Limits::default(), b"");
    let replies = run_until_result(&mut server, &mut client, 100);
    assert!(replies.len() <= 6, "the push's 300k fuel default ends it after a few 100k slices: {}", replies.len());
    invoke(&mut client, &mut server, hash, Limits { fuel: u64::MAX, ..Limits::default() }, b"");
    let replies = run_until_result(&mut server, &mut client, 1000);
    let fuel: Vec<u64> =
        replies.iter().filter_map(|r| if let Reply::Progress(f) = r { Some(*f) } else { None }).collect();
    assert!((25..=31).contains(&fuel.len()), "policy cap of 3M fuel: about 30 slices, got {}", fuel.len());
    assert!(matches!(replies.last(), Some(Reply::Result { status: JobStatus::OutOfFuel, .. })));
}

#[test]
fn discovery_answers_probes_with_a_signed_advert() {
    let mut server = server(options());
    let mut probe = [0u8; jos_abi::wire::discovery::PROBE_LEN];
    Probe { nonce: 0xfeed }.emit(&mut probe).unwrap();
    let mut reply = [0u8; Server::<TestPlatform>::MAX_ADVERT_LEN];
    let len = server.discovery(&probe, &mut reply).expect("answered");
    let advert = Advert::new_checked(&reply[..len]).expect("valid advert");
    assert!(advert.verify_signature());
    let repr = AdvertRepr::parse(&advert).unwrap();
    assert_eq!(repr.nonce, 0xfeed);
    assert_eq!(repr.name, "test-device");
    assert_eq!(repr.noise_key, jos_offload::noise::public_key(&DEVICE_SECRET));
    assert_eq!(repr.signing_key, jos_abi::signature::public_key(&[0x44; 32]));
    assert_eq!(repr.free_memory, HostPlatform::FREE_MEMORY);
    assert_eq!(repr.state, LoadState::Idle);
    assert_eq!(repr.port, wire::OFFLOAD_PORT);
    assert_eq!(repr.formats, wire::Formats::ALL);
    assert_eq!(repr.abi_version, AbiVersion::CURRENT);
    probe[0] = b'X';
    assert_eq!(server.discovery(&probe, &mut reply), None);
    assert_eq!(server.discovery(&[], &mut reply), None);
    assert_eq!(server.counters().dropped_unauthenticated, 1);
    assert_eq!(server.counters().probes_too_short, 1);
    assert_eq!(server.counters().adverts_sent, 1);
}

#[test]
fn session_slots_are_bounded() {
    // Two slots, both authenticated: a third connection is answered Busy and closed; once as
    // many connections again are closing, further ones are refused outright.
    let mut server = server(ServerOptions { max_sessions: 2, ..options() });
    let a = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let _b = MemoryClient::connect(&mut server, &CLIENT2_SECRET).unwrap();
    let refused: Vec<_> = (0..2).map(|_| server.connect().expect("answered")).collect();
    for id in &refused {
        assert!(server.wants_close(*id));
        assert!(!server.pending(*id).is_empty(), "told why");
    }
    assert!(server.connect().is_none(), "2 sessions and 2 closing: no more");
    for id in refused {
        server.disconnect(id);
    }
    server.disconnect(a.id);
    assert!(MemoryClient::connect(&mut server, &CLIENT_SECRET).is_some(), "a freed slot is usable");
}

#[test]
fn cpu_time_is_the_sum_of_the_slices_and_excludes_the_time_between_them() {
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    assert_eq!(push(&mut server, &mut client, Format::Wasm, &module), Reply::PushOk(hash));
    // 10 slices of 100 000 fuel, with 4 ms of other work between two slices.
    invoke(&mut client, &mut server, hash, Limits { fuel: 1_000_000, ..Limits::default() }, b"");
    let gap = std::time::Duration::from_millis(4);
    let mut gaps = 0u64;
    let mut stats = None;
    for now in 0..100 {
        if now > 0 {
            std::thread::sleep(gap);
            gaps += 1;
        }
        server.poll(now);
        for plain in client.plain_replies(&mut server) {
            if let Ok(Message::JobResult { status, stats: found, .. }) = Message::parse(&plain) {
                assert_eq!(status, JobStatus::OutOfFuel);
                stats = Some(found);
            }
        }
        if stats.is_some() {
            break;
        }
    }
    let stats = stats.expect("the job ends within 100 slices");
    assert!(gaps >= 9, "the job took several slices: {gaps} gaps");
    assert!(stats.cpu_us > 0, "{stats:?}");
    assert!(stats.fuel_used >= 1_000_000, "{stats:?}");
    // The gaps lie between the job's start and its end, outside every slice.
    let gap_us = gaps * gap.as_micros() as u64;
    assert!(
        stats.time_us >= stats.cpu_us + gap_us,
        "time {} cpu {} gaps {gap_us}: {stats:?}",
        stats.time_us,
        stats.cpu_us
    );
}

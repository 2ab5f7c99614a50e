//! Capabilities on the host: a job gets the rights of the signer whose signature verified its
//! push, for wasm (the runtime answers `PermissionDenied` for calls beyond them) and for native
//! blobs (the server hands them to `Platform::start_native`); native jobs run in steps, with
//! Progress messages, queueing behind them and abort when their client leaves.

mod common;

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::{Engine, Format, JobStatus, Limits, Message};
use jos_abi::ErrorCode;
use jos_offload::{Server, ServerOptions};

/// Prints "hi from a job" on the status screen; returns what `screen_print` returned.
const SCREEN: &str = r#"
(module
  (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi from a job")
  (func (export "run") (result i32)
    (call $print (i32.const 16) (i32.const 13))))
"#;

fn run(server: &mut Server<TestPlatform>, client: &mut MemoryClient, format: Format, module: &[u8]) -> Reply {
    let frames = push_frames(&mut client.transport, format, module, 1000);
    server.receive(client.id, &frames);
    assert_eq!(client.replies(server), vec![Reply::PushOk(sha256(module))]);
    client.send(server, &Message::Invoke { hash: sha256(module), limits: Limits::default(), input: b"", call: None });
    for now in 0..200 {
        server.poll(now * 1000);
        if let Some(result) = client.replies(server).into_iter().find(|reply| matches!(reply, Reply::Result { .. })) {
            return result;
        }
    }
    panic!("no result");
}

fn exit_value(reply: &Reply) -> i32 {
    match reply {
        Reply::Result { status: JobStatus::Ok, exit_value, .. } => *exit_value,
        other => panic!("not an Ok result: {other:?}"),
    }
}

#[test]
fn wasm_jobs_get_their_signers_capabilities() {
    let mut server = server(ServerOptions::default());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    // The developer holds every right: screen_print succeeds.
    let granted = run(&mut server, &mut client, Format::Wasm, &signed_wasm(SCREEN, &DEVELOPER));
    assert_eq!(exit_value(&granted), 0);
    // The same code signed by a wasm-only signer: the call answers PermissionDenied.
    let refused = run(&mut server, &mut client, Format::Wasm, &signed_wasm(SCREEN, &WASM_ONLY));
    assert_eq!(exit_value(&refused), ErrorCode::PermissionDenied.to_return());
}

#[test]
fn native_blobs_get_their_signers_capabilities() {
    let mut server = server(ServerOptions::default());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    // TestPlatform's native job reports the capabilities it got as bits (network 1, screen 2, gpio 4).
    let all =
        run(&mut server, &mut client, Format::NativeArmv6, &signed_blob(&DEVELOPER, jos_abi::AbiVersion::CURRENT));
    assert_eq!(exit_value(&all), 0b111);
    let network =
        run(&mut server, &mut client, Format::NativeArmv6, &signed_blob(&NATIVE_NET, jos_abi::AbiVersion::CURRENT));
    assert_eq!(exit_value(&network), 0b001);
}

/// The result's stats name the engine: the interpreter for wasm, native for a plain blob, AOT for
/// a blob marked compiled from wasm, pushed and also invoked again by its hash from the cache.
#[test]
fn results_name_the_engine_that_ran_the_job() {
    let mut server = server(ServerOptions::default());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let last_engine = || LAST_ENGINE.with(|engine| engine.take());
    let abi = jos_abi::AbiVersion::CURRENT;
    exit_value(&run(&mut server, &mut client, Format::Wasm, &signed_wasm(SCREEN, &DEVELOPER)));
    assert_eq!(last_engine(), Some(Engine::WasmInterpreter));
    exit_value(&run(&mut server, &mut client, Format::NativeArmv6, &signed_blob(&DEVELOPER, abi)));
    assert_eq!(last_engine(), Some(Engine::Native));
    let aot = signed_blob_from(&DEVELOPER, abi, Some([0x3c; 32]));
    exit_value(&run(&mut server, &mut client, Format::NativeArmv6, &aot));
    assert_eq!(last_engine(), Some(Engine::Aot));
    // Invoked again by its hash, without a push: still AOT, from the cache.
    client
        .send(&mut server, &Message::Invoke { hash: sha256(&aot), limits: Limits::default(), input: b"", call: None });
    let result = (0..200)
        .find_map(|now| {
            server.poll(now * 1000);
            client.replies(&mut server).into_iter().find(|reply| matches!(reply, Reply::Result { .. }))
        })
        .expect("a result");
    exit_value(&result);
    assert_eq!(last_engine(), Some(Engine::Aot));
}

/// A native job that runs in many steps (as a preempted blob does on the device): Progress
/// messages while it runs, a second client's Invoke queued behind it and run after it, the
/// advert says Busy meanwhile.
#[test]
fn native_jobs_run_in_steps_with_progress_and_a_queue() {
    let options = ServerOptions { progress_interval_us: 0, ..ServerOptions::default() };
    let mut server = server(options);
    server.platform_mut().native_steps = 5;
    let blob = signed_blob(&DEVELOPER, jos_abi::AbiVersion::CURRENT);
    let mut first = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let mut second = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let frames = push_frames(&mut first.transport, Format::NativeArmv6, &blob, 1000);
    server.receive(first.id, &frames);
    assert_eq!(first.replies(&mut server), vec![Reply::PushOk(sha256(&blob))]);
    first
        .send(&mut server, &Message::Invoke { hash: sha256(&blob), limits: Limits::default(), input: b"", call: None });
    assert_eq!(server.poll(1000), jos_offload::Slice::Ran, "the first step is preempted");
    second
        .send(&mut server, &Message::Invoke { hash: sha256(&blob), limits: Limits::default(), input: b"", call: None });
    assert_eq!(server.status().queued, 1, "the second Invoke waits");
    let mut first_replies = Vec::new();
    let mut second_replies = Vec::new();
    for now in 2..40 {
        server.poll(now * 1000);
        first_replies.extend(first.replies(&mut server));
        second_replies.extend(second.replies(&mut server));
    }
    let progress = first_replies.iter().filter(|reply| matches!(reply, Reply::Progress { .. })).count();
    assert!(progress >= 4, "Progress while the native job runs: {first_replies:?}");
    assert_eq!(
        first_replies.iter().filter(|reply| matches!(reply, Reply::Result { .. })).count(),
        1,
        "{first_replies:?}"
    );
    let results: Vec<_> = second_replies.iter().filter(|reply| matches!(reply, Reply::Result { .. })).collect();
    assert_eq!(results.len(), 1, "the queued job ran after the first: {second_replies:?}");
    assert_eq!(exit_value(results[0]), 0b111);
    let platform = server.platform();
    assert_eq!((platform.started, platform.steps, platform.aborted), (2, 12, 0));
}

/// A client that leaves while its native job runs: the platform's job is aborted (its memory and
/// sockets freed on the device) and the next job starts.
#[test]
fn native_job_aborted_when_its_client_leaves() {
    let mut server = server(ServerOptions::default());
    server.platform_mut().native_steps = 1000;
    let blob = signed_blob(&DEVELOPER, jos_abi::AbiVersion::CURRENT);
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let frames = push_frames(&mut client.transport, Format::NativeArmv6, &blob, 1000);
    server.receive(client.id, &frames);
    assert_eq!(client.replies(&mut server), vec![Reply::PushOk(sha256(&blob))]);
    client
        .send(&mut server, &Message::Invoke { hash: sha256(&blob), limits: Limits::default(), input: b"", call: None });
    for now in 0..10 {
        assert_eq!(server.poll(now * 1000), jos_offload::Slice::Ran);
    }
    server.disconnect(client.id);
    assert_eq!((server.platform().aborted, server.platform().native), (1, None));
    assert_eq!(server.counters().jobs_aborted, 1);
    assert_eq!(server.poll(20_000), jos_offload::Slice::Idle);
    server.platform_mut().native_steps = 0;
    let mut next = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    assert_eq!(exit_value(&run(&mut server, &mut next, Format::NativeArmv6, &blob)), 0b111);
}

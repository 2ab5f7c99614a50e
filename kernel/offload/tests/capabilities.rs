//! Capabilities on the host: a job gets the rights of the signer whose signature verified its
//! push, for wasm (the runtime answers `PermissionDenied` for calls beyond them) and for native
//! blobs (the server hands them to `Platform::run_native`).

mod common;

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::{Format, JobStatus, Limits, Message};
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
    // TestPlatform::run_native reports the capabilities it got as bits (network 1, screen 2, gpio 4).
    let all = run(&mut server, &mut client, Format::NativeArmv6, &signed_blob(&DEVELOPER, jos_abi::AbiVersion::CURRENT));
    assert_eq!(exit_value(&all), 0b111);
    let network = run(&mut server, &mut client, Format::NativeArmv6, &signed_blob(&NATIVE_NET, jos_abi::AbiVersion::CURRENT));
    assert_eq!(exit_value(&network), 0b001);
}

//! What the server remembers of pushed modules: capability records keep the most recently used
//! modules (not the smallest hashes), one client's push limits stay that client's, native blobs
//! leave the cache least recently used first, and a module is one module however it is signed
//! (its identity is the SHA-256 of its signed content).

mod common;

use common::*;
use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Table};
use jos_abi::signature::{sha256, sign_blob, sign_wasm};
use jos_abi::wire::{Format, JobStatus, Limits, Message};
use jos_abi::{AbiVersion, ErrorCode};
use jos_offload::{Server, ServerOptions};

/// Prints a line on the status screen, returns what `screen_print` returned; `index` makes each
/// module distinct.
fn screen_module(index: u32) -> Vec<u8> {
    wasm(&format!(
        r#"(module
          (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 16) "module {index}")
          (func (export "run") (result i32) (call $print (i32.const 16) (i32.const 6))))"#
    ))
}

/// Pushes `module` with `limits`; returns the reply.
fn push(
    server: &mut Server<TestPlatform>,
    client: &mut MemoryClient,
    format: Format,
    module: &[u8],
    limits: Limits,
) -> Reply {
    let mut frames = seal(
        &mut client.transport,
        &Message::PushBegin { format, total_len: module.len() as u32, sha256: sha256(module), limits },
    );
    frames.extend(seal(&mut client.transport, &Message::PushChunk { offset: 0, bytes: module }));
    frames.extend(seal(&mut client.transport, &Message::PushEnd));
    server.receive(client.id, &frames);
    let replies = client.replies(server);
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().unwrap()
}

/// Invokes `hash` and runs the server until the result comes.
fn invoke(server: &mut Server<TestPlatform>, client: &mut MemoryClient, hash: [u8; 32], limits: Limits) -> Reply {
    client.send(server, &Message::Invoke { hash, limits, input: b"", call: None });
    for now in 0..10_000 {
        server.poll(now * 1000);
        for reply in client.replies(server) {
            match reply {
                Reply::Progress(_) => {}
                other => return other,
            }
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
fn capability_records_keep_the_most_recently_used_modules() {
    let mut server = server(ServerOptions::default());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    // 258 distinct modules signed by the developer (who grants the screen). The one whose
    // SHA-256 is smallest is pushed first and then used again: it must keep its record.
    let mut modules: Vec<Vec<u8>> =
        (0..258).map(|index| sign_wasm(&screen_module(index), &DEVELOPER, true).unwrap()).collect();
    modules.sort_by_key(|module| sha256(module));
    let favourite = modules.remove(0);
    assert_eq!(
        push(&mut server, &mut client, Format::Wasm, &favourite, Limits::default()),
        Reply::PushOk(sha256(&favourite))
    );
    for module in &modules[..255] {
        assert_eq!(
            push(&mut server, &mut client, Format::Wasm, module, Limits::default()),
            Reply::PushOk(sha256(module))
        );
    }
    // The favourite is used (most recent), then two more pushes overflow the 256 records.
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(&favourite), Limits::default())), 0);
    for module in &modules[255..] {
        assert_eq!(
            push(&mut server, &mut client, Format::Wasm, module, Limits::default()),
            Reply::PushOk(sha256(module))
        );
    }
    assert_eq!(
        exit_value(&invoke(&mut server, &mut client, sha256(&favourite), Limits::default())),
        0,
        "kept its capabilities"
    );
    // The least recently used one lost its record: it still runs (it is cached) by its
    // identity, without capabilities.
    let oldest = &modules[0];
    let identity = jos_runtime::wasm::module_id(oldest);
    assert_eq!(
        exit_value(&invoke(&mut server, &mut client, identity, Limits::default())),
        ErrorCode::PermissionDenied.to_return()
    );
}

/// Loops `n` times (about 4 fuel an iteration), returns 1.
const COUNT: &str = r#"
(module
  (func (export "run") (result i32) (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
    (i32.const 1)))"#;

#[test]
fn push_limits_are_the_pushing_clients_only() {
    let mut server = server(ServerOptions::default());
    let mut first = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let mut second = MemoryClient::connect(&mut server, &CLIENT2_SECRET).expect("trusted client");
    let module = signed_wasm(COUNT, &DEVELOPER);
    let hash = sha256(&module);
    // The first client pushes with a fuel limit far too small for the job.
    let tight = Limits { fuel: 10_000, ..Limits::default() };
    assert_eq!(push(&mut server, &mut first, Format::Wasm, &module, tight), Reply::PushOk(hash));
    // Its own invocations take that limit...
    let result = invoke(&mut server, &mut first, hash, Limits::default());
    assert!(matches!(result, Reply::Result { status: JobStatus::OutOfFuel, .. }), "{result:?}");
    // ...another client's do not: it gets the policy's limits.
    assert_eq!(exit_value(&invoke(&mut server, &mut second, hash, Limits::default())), 1);
    // Its own push with other limits is its own default from then on.
    assert_eq!(push(&mut server, &mut second, Format::Wasm, &module, tight), Reply::PushOk(hash));
    let result = invoke(&mut server, &mut second, hash, Limits::default());
    assert!(matches!(result, Reply::Result { status: JobStatus::OutOfFuel, .. }), "{result:?}");
}

#[test]
fn a_module_is_one_module_however_it_is_signed() {
    let mut server = server(ServerOptions::default());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    let plain = screen_module(1);
    let developer = sign_wasm(&plain, &DEVELOPER, true).unwrap();
    let wasm_only = sign_wasm(&plain, &WASM_ONLY, false).unwrap();
    let identity = jos_runtime::wasm::module_id(&plain);
    assert_ne!(sha256(&developer), sha256(&wasm_only));
    // PushOk names the SHA-256 the client announced; the module may be invoked by it or by its
    // identity.
    assert_eq!(
        push(&mut server, &mut client, Format::Wasm, &developer, Limits::default()),
        Reply::PushOk(sha256(&developer))
    );
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(&developer), Limits::default())), 0);
    assert_eq!(exit_value(&invoke(&mut server, &mut client, identity, Limits::default())), 0);
    // The same code signed by a signer without the screen right: the same module. Invoked by
    // the bytes of a push, it has that push's signer's capabilities; by its identity, those of
    // its latest push.
    assert_eq!(
        push(&mut server, &mut client, Format::Wasm, &wasm_only, Limits::default()),
        Reply::PushOk(sha256(&wasm_only))
    );
    let denied = ErrorCode::PermissionDenied.to_return();
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(&developer), Limits::default())), 0);
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(&wasm_only), Limits::default())), denied);
    assert_eq!(exit_value(&invoke(&mut server, &mut client, identity, Limits::default())), denied);
    assert_eq!(
        push(&mut server, &mut client, Format::Wasm, &developer, Limits::default()),
        Reply::PushOk(sha256(&developer))
    );
    assert_eq!(exit_value(&invoke(&mut server, &mut client, identity, Limits::default())), 0);
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(&wasm_only), Limits::default())), denied);
    // An unknown hash is still refused.
    let refused = invoke(&mut server, &mut client, [0xee; 32], Limits::default());
    assert!(matches!(refused, Reply::Error(6, _)), "{refused:?}");
}

/// A blob returning `value` (`mov r0, #value; bx lr`), signed by the developer.
fn blob(value: u8) -> Vec<u8> {
    let text = [value, 0x00, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1];
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &text,
        rodata: &[],
        data: &[],
        bss_len: 0,
        align: 8,
        imports: Table::from_slice(&[]),
        relocations: Table::from_slice(&[]),
        wasm_source: None,
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).expect("emits");
    sign_blob(&bytes, &DEVELOPER, true).expect("signs")
}

#[test]
fn native_blobs_leave_the_cache_least_recently_used_first() {
    let mut blobs: Vec<Vec<u8>> = (1..=3).map(blob).collect();
    blobs.sort_by_key(|blob| sha256(blob));
    let [smallest, middle, largest] = [&blobs[0], &blobs[1], &blobs[2]];
    // Room for two blobs.
    let options = ServerOptions { native_cache_bytes: smallest.len() * 2 + 8, ..ServerOptions::default() };
    let mut server = server(options);
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("trusted client");
    assert_eq!(
        push(&mut server, &mut client, Format::NativeArmv6, smallest, Limits::default()),
        Reply::PushOk(sha256(smallest))
    );
    assert_eq!(
        push(&mut server, &mut client, Format::NativeArmv6, middle, Limits::default()),
        Reply::PushOk(sha256(middle))
    );
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(smallest), Limits::default())), 0b111);
    assert_eq!(
        push(&mut server, &mut client, Format::NativeArmv6, largest, Limits::default()),
        Reply::PushOk(sha256(largest))
    );
    // The smallest hash was used last: the middle one made room.
    assert_eq!(exit_value(&invoke(&mut server, &mut client, sha256(smallest), Limits::default())), 0b111);
    let evicted = invoke(&mut server, &mut client, sha256(middle), Limits::default());
    assert!(matches!(evicted, Reply::Error(6, _)), "{evicted:?}");
}

//! Heap accounting: 200 sequential sessions that each push (and some invoke) leave the heap
//! where it started, counted by a global allocator that tracks live bytes.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::{Format, Limits, Message};
use jos_offload::ServerOptions;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One session: handshake, push, optionally invoke, sometimes vanish mid-push, then disconnect.
fn round(server: &mut jos_offload::Server<TestPlatform>, module: &[u8], index: usize) {
    let mut client = MemoryClient::connect(server, &CLIENT_SECRET).expect("handshake");
    let hash = sha256(module);
    if index % 5 == 4 {
        // Vanish mid-transfer: PushBegin and half the chunks, then the connection drops.
        let frames = push_frames(&mut client.transport, Format::Wasm, module, 100);
        server.receive(client.id, &frames[..frames.len() / 2]);
    } else {
        let frames = push_frames(&mut client.transport, Format::Wasm, module, 100);
        server.receive(client.id, &frames);
        assert_eq!(client.replies(server), vec![Reply::PushOk(hash)]);
        if index.is_multiple_of(2) {
            client.send(server, &Message::Invoke { hash, limits: Limits::default(), input: b"heap", call: None });
            for now in 0..10 {
                server.poll(now);
            }
            let replies = client.replies(server);
            assert!(matches!(replies.last(), Some(Reply::Result { exit_value: 4, .. })), "{replies:?}");
        }
    }
    server.disconnect(client.id);
}

#[test]
fn two_hundred_sequential_pushes_leave_the_heap_where_it_started() {
    let mut server = server(ServerOptions::default());
    let module = signed_wasm(ECHO, &DEVELOPER);
    // Warm up: the first push compiles and caches the module, the first job translates it.
    for index in 0..10 {
        round(&mut server, &module, index);
    }
    let before = LIVE.load(Ordering::Relaxed);
    for index in 0..200 {
        round(&mut server, &module, index);
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "live heap bytes before {before}, after {after}");
    assert_eq!(server.counters().pushes_ok, 168);
    assert_eq!(server.status().sessions, 0);
}

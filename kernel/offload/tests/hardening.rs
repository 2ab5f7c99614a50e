//! The limits on sessions and unauthenticated traffic, driven in memory with a clock the tests
//! move (`TestPlatform::advance`): the handshake deadline, the idle timeout, eviction of the
//! oldest unauthenticated connection, Busy when every session is authenticated, the bound on a
//! session's unsent bytes and on a stranger's first frame, PermissionDenied for untrusted keys,
//! and the rate limits of handshakes and probes (docs/security.md, "Resource limits: sessions and
//! unauthenticated traffic").

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::discovery::{Advert, Probe, PROBE_LEN};
use jos_abi::wire::{self, Format, JobStatus, Limits, Message};
use jos_abi::ErrorCode;
use jos_offload::{Server, ServerOptions, SessionId};

const SECOND: u64 = 1_000_000;

fn options() -> ServerOptions {
    ServerOptions { progress_interval_us: 0, ..ServerOptions::default() }
}

fn address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 1, last))
}

/// The frames a connection has pending, in clear (before or instead of a handshake).
fn clear_frames(server: &mut Server<TestPlatform>, id: SessionId) -> Vec<Vec<u8>> {
    let mut pending = server.pending(id).to_vec();
    server.consume(id, pending.len());
    take_frames(&mut pending)
}

/// The code of the single `Error` a connection was answered with in clear.
fn clear_error(server: &mut Server<TestPlatform>, id: SessionId) -> Option<ErrorCode> {
    let frames = clear_frames(server, id);
    match frames.as_slice() {
        [frame] => match Message::parse(frame) {
            Ok(Message::Error { code, .. }) => Some(code),
            _ => None,
        },
        _ => None,
    }
}

/// A connection that sent part of a Hello frame and stalls.
fn stalled(server: &mut Server<TestPlatform>) -> SessionId {
    let id = server.connect().expect("a connection");
    server.receive(id, &[0x60, 0x00, 0x01, 0x02]);
    id
}

#[track_caller]
fn assert_alive(server: &mut Server<TestPlatform>, client: &mut MemoryClient, nonce: u64) {
    client.send(server, &Message::Ping { nonce });
    assert_eq!(client.replies(server), vec![Reply::Pong(nonce)]);
}

#[test]
fn a_stalled_handshake_is_reset_at_its_deadline_and_counted() {
    let mut server = server(options());
    let stalled: Vec<SessionId> = (0..3).map(|_| stalled(&mut server)).collect();
    let silent = server.connect().unwrap();
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    server.platform_mut().advance(4 * SECOND);
    server.expire();
    for id in stalled.iter().chain([&silent]) {
        assert!(!server.wants_close(*id), "4 s: still within the 5 s deadline");
    }
    server.platform_mut().advance(SECOND);
    server.expire();
    for id in stalled.iter().chain([&silent]) {
        assert!(server.wants_abort(*id) && server.wants_close(*id), "reset at 5 s");
        assert!(server.pending(*id).is_empty(), "nothing to say to it");
        server.disconnect(*id);
    }
    assert_eq!(server.counters().handshake_timeouts, 4);
    // The authenticated session, as old, is not touched by the handshake deadline.
    assert!(!server.wants_close(client.id));
    assert_alive(&mut server, &mut client, 1);
    assert_eq!(server.status().waiting, 0);
}

#[test]
fn eight_stalled_connections_then_a_trusted_client_gets_in_and_the_oldest_is_evicted() {
    let mut server = server(options());
    let stalled: Vec<SessionId> = (0..8)
        .map(|index| {
            let id = stalled(&mut server);
            server.platform_mut().advance(1000 + index);
            id
        })
        .collect();
    assert_eq!(server.status().waiting, 8);
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("a trusted client gets a session");
    assert_alive(&mut server, &mut client, 2);
    assert_eq!(server.counters().evicted, 1);
    // The oldest stalled connection was told Busy in clear and is closing; the others wait.
    assert!(server.wants_close(stalled[0]) && !server.wants_abort(stalled[0]));
    assert_eq!(clear_error(&mut server, stalled[0]), Some(ErrorCode::Busy));
    for id in &stalled[1..] {
        assert!(!server.wants_close(*id));
    }
    server.disconnect(stalled[0]);
    // A second trusted client: the next oldest makes room.
    let mut second = MemoryClient::connect(&mut server, &CLIENT2_SECRET).expect("another one");
    assert!(server.wants_close(stalled[1]));
    assert_alive(&mut server, &mut second, 3);
    assert_eq!(server.counters().evicted, 2);
}

#[test]
fn authenticated_sessions_are_never_evicted_and_a_newcomer_is_told_busy() {
    let mut server = server(options());
    let mut clients: Vec<MemoryClient> = (0..8)
        .map(|index| {
            MemoryClient::connect(&mut server, if index % 2 == 0 { &CLIENT_SECRET } else { &CLIENT2_SECRET }).unwrap()
        })
        .collect();
    let newcomer = server.connect().expect("answered");
    assert!(server.wants_close(newcomer) && !server.wants_abort(newcomer));
    assert_eq!(clear_error(&mut server, newcomer), Some(ErrorCode::Busy));
    server.disconnect(newcomer);
    // A stranger that connects now is told the same; nobody is evicted.
    assert_eq!(
        MemoryClient::try_connect(&mut server, &CLIENT_SECRET)
            .err()
            .map(|refusal| matches!(refusal, Refusal::Error(code, _) if code == ErrorCode::Busy as u32)),
        Some(true)
    );
    assert_eq!(server.counters().refused_busy, 2);
    assert_eq!(server.counters().evicted, 0);
    for (index, client) in clients.iter_mut().enumerate() {
        assert_alive(&mut server, client, index as u64);
    }
}

#[test]
fn a_closed_connection_that_cannot_send_what_is_left_is_reset() {
    // Every session authenticated: a newcomer is told Busy, but never reads it (its transport
    // cannot send): 5 s after the device closed it, it is reset.
    let mut server = server(ServerOptions { max_sessions: 1, ..options() });
    let _client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let newcomer = server.connect().unwrap();
    assert!(server.wants_close(newcomer) && !server.pending(newcomer).is_empty());
    server.expire();
    server.platform_mut().advance(4 * SECOND);
    server.expire();
    assert!(!server.wants_abort(newcomer), "4 s: still flushing");
    server.platform_mut().advance(SECOND);
    server.expire();
    assert!(server.wants_abort(newcomer) && server.pending(newcomer).is_empty(), "reset at 5 s");
    assert_eq!(server.counters().flush_timeouts, 1);
}

#[test]
fn a_silent_session_is_closed_after_the_idle_timeout_but_not_while_its_job_runs() {
    let mut server = server(options());
    let mut idle = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let mut worker = MemoryClient::connect(&mut server, &CLIENT2_SECRET).unwrap();
    let module = signed_wasm(SPIN, &DEVELOPER);
    let hash = sha256(&module);
    server.receive(worker.id, &push_frames(&mut worker.transport, Format::Wasm, &module, 1000));
    assert_eq!(worker.replies(&mut server), vec![Reply::PushOk(hash)]);
    worker.send(
        &mut server,
        &Message::Invoke { hash, limits: Limits { fuel: 3_000_000, ..Limits::default() }, input: b"", call: None },
    );
    server.poll(0);

    server.platform_mut().advance(29 * SECOND);
    server.expire();
    assert!(!server.wants_close(idle.id), "29 s of silence: still open");
    assert_alive(&mut server, &mut idle, 7);
    // The ping restarted its clock: 29 s more is not enough, 30 s is.
    server.platform_mut().advance(29 * SECOND);
    server.expire();
    assert!(!server.wants_close(idle.id));
    server.platform_mut().advance(SECOND);
    server.expire();
    assert!(server.wants_close(idle.id) && !server.wants_abort(idle.id), "closed (its pending bytes still go out)");
    // The worker sent nothing for 59 s either, but its job runs: not idle.
    assert!(!server.wants_close(worker.id));
    let mut result = None;
    for now in 1..1000 {
        server.poll(now);
        if let Some(found) = worker.replies(&mut server).into_iter().find(|reply| matches!(reply, Reply::Result { .. }))
        {
            result = Some(found);
            break;
        }
    }
    assert!(matches!(result, Some(Reply::Result { status: JobStatus::OutOfFuel, .. })), "{result:?}");
    // Its idle clock starts when its job ended, not at its last message.
    server.expire();
    assert!(!server.wants_close(worker.id), "not closed the moment its long job ends");
    server.platform_mut().advance(30 * SECOND);
    server.expire();
    assert!(server.wants_close(worker.id));
    assert_eq!(server.counters().idle_timeouts, 2);
}

#[test]
fn a_client_that_never_reads_is_reset_and_its_buffer_freed() {
    let mut server = server(options());
    let mut flooder = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let mut bystander = MemoryClient::connect(&mut server, &CLIENT2_SECRET).unwrap();
    let limit = ServerOptions::default().max_outbox;
    let mut pings = 0;
    while !server.wants_close(flooder.id) {
        flooder.send(&mut server, &Message::Ping { nonce: pings });
        pings += 1;
        assert!(server.pending(flooder.id).len() <= limit, "never more than the cap is kept");
        assert!(pings < 100_000, "the flooder is never cut off");
    }
    // About 128 KiB of Pongs of 27 bytes each.
    assert!((4000..6000).contains(&pings), "{pings} pings");
    assert!(server.wants_abort(flooder.id));
    assert!(server.pending(flooder.id).is_empty(), "the unsent Pongs are dropped at once");
    assert_eq!(server.counters().outbox_overflows, 1);
    assert_alive(&mut server, &mut bystander, 1);
}

#[test]
fn a_job_result_of_the_largest_size_fits_under_the_outbox_cap() {
    // A client that reads nothing while its job runs still gets its whole (largest) result.
    let mut server = server(options());
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).unwrap();
    let module = signed_wasm(ECHO, &DEVELOPER);
    let hash = sha256(&module);
    server.receive(client.id, &push_frames(&mut client.transport, Format::Wasm, &module, 1000));
    let input = vec![0x5a; wire::MAX_INPUT_LEN];
    client.send(&mut server, &Message::Invoke { hash, limits: Limits::default(), input: &input, call: None });
    for now in 0..50 {
        server.poll(now);
    }
    assert!(!server.wants_close(client.id));
    let replies = client.replies(&mut server);
    assert!(
        matches!(replies.last(), Some(Reply::Result { status: JobStatus::Ok, output, .. }) if output.len() == wire::MAX_INPUT_LEN)
    );
    assert_eq!(server.counters().outbox_overflows, 0);
}

#[test]
fn a_first_frame_longer_than_any_hello_is_refused_before_it_is_buffered() {
    let mut server = server(options());
    let id = server.connect().unwrap();
    let announced = (wire::MAX_HELLO_LEN + 1) as u16;
    server.receive(id, &announced.to_le_bytes());
    assert!(server.wants_abort(id), "refused on the header alone");
    assert_eq!(server.counters().dropped_unauthenticated, 1);
    // A Hello of the largest size is still taken in (here: garbage of that size, dropped as such).
    let id = server.connect().unwrap();
    let mut frame = (wire::MAX_HELLO_LEN as u16).to_le_bytes().to_vec();
    frame.extend(std::iter::repeat_n(0, wire::MAX_HELLO_LEN - 1));
    server.receive(id, &frame);
    assert!(!server.wants_close(id), "one byte short of the frame: waiting for it");
    server.receive(id, &[0]);
    assert!(server.wants_close(id) && !server.wants_abort(id), "a whole frame, not a Hello: dropped");
}

#[test]
fn untrusted_and_stolen_keys_get_the_same_answer() {
    let mut server = server(options());
    let stranger = MemoryClient::try_connect(&mut server, &STRANGER_SECRET).err();
    // A Hello that claims a trusted client's public key without its secret: the initiator here
    // uses the stranger's secret but sends the trusted key, which snow does not allow, so it is
    // built by hand: a trusted client's Hello with its last byte (the payload's tag) changed.
    let id = server.connect().unwrap();
    let mut hello = hello_frame(&mut initiator(&CLIENT_SECRET));
    let last = hello.len() - 1;
    hello[last] ^= 1;
    server.receive(id, &hello);
    let forged = clear_error(&mut server, id);
    assert!(matches!(stranger, Some(Refusal::Error(code, _)) if code == ErrorCode::PermissionDenied as u32));
    assert_eq!(forged, Some(ErrorCode::PermissionDenied), "no difference to tell which keys are trusted");
    assert_eq!(server.counters().hellos_refused, 2);
    assert_eq!(server.counters().sessions_opened, 0);
}

#[test]
fn failing_handshakes_are_rate_limited_per_source_and_trusted_ones_are_not() {
    let mut server = frozen_server(options());
    // A stranger at one address: 8 refusals, then Busy without the handshake's work.
    let answers: Vec<Refusal> = (0..12)
        .map(|_| MemoryClient::connect_from(&mut server, &STRANGER_SECRET, address(66)).err().unwrap())
        .collect();
    let denied = answers
        .iter()
        .filter(|answer| matches!(answer, Refusal::Error(code, _) if *code == ErrorCode::PermissionDenied as u32))
        .count();
    let busy = answers
        .iter()
        .filter(|answer| matches!(answer, Refusal::Error(code, _) if *code == ErrorCode::Busy as u32))
        .count();
    assert_eq!((denied, busy), (8, 4), "{answers:?}");
    assert_eq!(server.counters().hellos_rate_limited, 4);
    assert_eq!(server.counters().hellos_refused, 8);
    // A trusted client elsewhere is not held back by it.
    assert!(MemoryClient::connect_from(&mut server, &CLIENT_SECRET, address(7)).is_ok());
    // Nor at the same address once half a second has passed (2 per second); and successful
    // handshakes spend nothing: 50 in a row from one address.
    assert!(
        matches!(MemoryClient::connect_from(&mut server, &CLIENT_SECRET, address(66)), Err(Refusal::Error(code, _)) if code == ErrorCode::Busy as u32)
    );
    server.platform_mut().advance(SECOND / 2);
    for round in 0..50 {
        let client = MemoryClient::connect_from(&mut server, &CLIENT2_SECRET, address(66));
        assert!(client.is_ok(), "round {round}: {:?}", client.err());
        server.disconnect(client.unwrap().id);
    }
}

#[test]
fn many_sources_share_one_handshake_budget() {
    let mut server = server(options());
    let refused: usize = (0..40u8)
        .filter(|source| {
            matches!(MemoryClient::connect_from(&mut server, &STRANGER_SECRET, address(*source)), Err(Refusal::Error(code, _)) if code == ErrorCode::Busy as u32)
        })
        .count();
    assert_eq!(refused, 40 - 16, "the global burst is 16");
    server.platform_mut().advance(SECOND);
    assert!(matches!(
        MemoryClient::connect_from(&mut server, &STRANGER_SECRET, address(200)),
        Err(Refusal::Error(code, _)) if code == ErrorCode::PermissionDenied as u32
    ));
}

fn probe(nonce: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; PROBE_LEN];
    Probe { nonce }.emit(&mut bytes).unwrap();
    bytes
}

#[test]
fn probes_shorter_than_an_advert_get_no_answer() {
    let mut server = server(options());
    let mut reply = [0u8; 512];
    let full = probe(1);
    // The old 16-byte probe, and every length short of the padded one.
    for len in [16, 100, PROBE_LEN - 1] {
        assert_eq!(server.discovery_from(address(1), &full[..len], &mut reply), None, "{len} bytes");
    }
    assert_eq!(server.counters().probes_too_short, 3);
    let len = server.discovery_from(address(1), &full, &mut reply).expect("a padded probe is answered");
    assert!(len <= full.len(), "the answer ({len}) is no larger than the probe ({})", full.len());
    assert!(Advert::new_checked(&reply[..len]).unwrap().verify_signature());
}

#[test]
fn a_burst_of_probes_is_rate_limited_and_discovery_works_again_afterwards() {
    let mut server = frozen_server(options());
    let mut reply = [0u8; 512];
    let answered =
        (0..100).filter(|nonce| server.discovery_from(address(9), &probe(*nonce), &mut reply).is_some()).count();
    assert_eq!(answered, 32, "one source: its burst of 32");
    assert_eq!(server.counters().probes_rate_limited, 68);
    assert!(server.discovery_from(address(10), &probe(1), &mut reply).is_some(), "another source still gets answers");
    server.platform_mut().advance(SECOND / 16);
    assert!(server.discovery_from(address(9), &probe(2), &mut reply).is_some(), "16 per second: one after 62.5 ms");
    assert_eq!(server.counters().adverts_sent, 34);
    // Many sources (spoofed, say) together get the global burst of 64.
    let mut server = frozen_server(options());
    let answered =
        (0..200u8).filter(|source| server.discovery_from(address(*source), &probe(3), &mut reply).is_some()).count();
    assert_eq!(answered, 64);
}

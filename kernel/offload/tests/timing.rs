//! The phase timings the server hands to `Platform::timing`: one report per push that reaches
//! the signature check and one per job, with phases that add up (the recording platform's clock
//! advances 10 µs at every reading).

mod common;

use std::cell::Cell;

use common::*;
use jos_abi::signature::sha256;
use jos_abi::wire::{Format, JobStatus, Limits, Message};
use jos_offload::host::HostPlatform;
use jos_offload::timing::Timing;
use jos_offload::{Platform, Server, ServerOptions};
use jos_runtime::StdHost;

/// The host platform with a clock that ticks 10 µs per reading, keeping every timing report.
struct Recording {
    clock: Cell<u64>,
    timings: Vec<Timing>,
}

impl Platform for Recording {
    type Host = StdHost;

    fn host(&mut self, input: Vec<u8>) -> StdHost {
        HostPlatform::new().host(input)
    }

    fn free_memory(&self) -> u32 {
        HostPlatform::FREE_MEMORY
    }

    fn now_us(&self) -> u64 {
        self.clock.set(self.clock.get() + 10);
        self.clock.get()
    }

    fn timing(&mut self, timing: &Timing) {
        self.timings.push(*timing);
    }
}

fn take_timings(server: &mut Server<Recording>) -> Vec<Timing> {
    std::mem::take(&mut server.platform_mut().timings)
}

#[test]
fn push_and_job_phases_are_reported() {
    let options = ServerOptions { progress_interval_us: 0, ..ServerOptions::default() };
    let platform = Recording { clock: Cell::new(0), timings: Vec::new() };
    let mut server = Server::new(config(), options, platform, &ENTROPY);
    let mut client = MemoryClient::connect(&mut server, &CLIENT_SECRET).expect("handshake");
    let module = signed_wasm(ECHO, &DEVELOPER);
    server.receive(client.id, &push_frames(&mut client.transport, Format::Wasm, &module, 1000));
    assert_eq!(client.replies(&mut server), vec![Reply::PushOk(sha256(&module))]);
    let timings = take_timings(&mut server);
    let [Timing::Push(push)] = timings[..] else { panic!("one push report: {timings:?}") };
    assert_eq!((push.format, push.bytes, push.accepted), (Format::Wasm, module.len(), true));
    assert!(push.handshake_us > 0 && push.transfer_us > 0 && push.verify_us > 0, "{push:?}");
    assert!(push.session_us >= push.handshake_us + push.transfer_us + push.verify_us, "{push:?}");

    client.send(
        &mut server,
        &Message::Invoke { hash: sha256(&module), limits: Limits::default(), input: b"hi", call: None },
    );
    let mut done = false;
    for now in 0..100 {
        server.poll(now * 1000);
        if client.replies(&mut server).iter().any(|reply| matches!(reply, Reply::Result { .. })) {
            done = true;
            break;
        }
    }
    assert!(done, "the job ended");
    let timings = take_timings(&mut server);
    let [Timing::Job(job)] = timings[..] else { panic!("one job report: {timings:?}") };
    assert_eq!((job.format, job.status), (Format::Wasm, JobStatus::Ok));
    assert!(job.queued_us > 0 && job.instantiate_us > 0 && job.run_us > 0 && job.result_us > 0, "{job:?}");
    assert_eq!(job.total_us, job.queued_us + job.instantiate_us + job.run_us + job.result_us, "{job:?}");

    // A module that fails its signature check is reported as not accepted; a PushEnd without
    // PushBegin is not a push.
    let unsigned = wasm(ECHO);
    server.receive(client.id, &push_frames(&mut client.transport, Format::Wasm, &unsigned, 1000));
    assert!(matches!(client.replies(&mut server)[..], [Reply::Error(..)]));
    client.send(&mut server, &Message::PushEnd);
    assert!(matches!(client.replies(&mut server)[..], [Reply::Error(..)]));
    let timings = take_timings(&mut server);
    let [Timing::Push(push)] = timings[..] else { panic!("one push report: {timings:?}") };
    assert_eq!((push.bytes, push.accepted), (unsigned.len(), false));
}

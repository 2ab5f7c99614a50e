//! Runs the fuzz body of `jos_offload::fuzzing` (the cargo-fuzz target `server`) briefly: over
//! the seed corpus in `fuzz/corpus/server/` and deterministic mutations of the seeds, and checks
//! that each seed reaches what it was written for. Long runs are by hand (docs/fuzzing.md).

use std::path::PathBuf;

use jos_abi::fuzzing::{mutate, Rng};
use jos_offload::fuzzing::{self, run, run_with_fleet, seeds, ScriptBuilder, ECHO_WASM, SPIN_WASM};
use jos_runtime::{Capabilities, Entry, JobStatus, Limits, Sandbox, SandboxConfig, StdHost, Value};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server")
}

/// The committed seeds equal what [`seeds`] builds (`JOS_WRITE_CORPUS=1` rewrites them).
#[test]
fn seed_corpus_is_current() {
    let dir = corpus_dir();
    let write = std::env::var_os("JOS_WRITE_CORPUS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds() {
        let path = dir.join(format!("seed-{name}"));
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (JOS_WRITE_CORPUS=1 writes it)", path.display()));
        assert_eq!(committed, bytes, "{} is stale: rerun with JOS_WRITE_CORPUS=1", path.display());
    }
}

/// Each seed gets where it was written to get: the fuzzer starts from deep inside.
#[test]
fn seeds_reach_deep() {
    let seeds: std::collections::BTreeMap<_, _> = seeds().into_iter().collect();
    let counters = |name: &str| run(&seeds[name]);
    let c = counters("push-invoke");
    assert_eq!((c.sessions_opened, c.pushes_ok, c.jobs_ok), (1, 1, 1), "{c:?}");
    let c = counters("call");
    assert_eq!((c.pushes_ok, c.jobs_ok), (1, 1), "{c:?}");
    let c = counters("native");
    assert_eq!((c.pushes_ok, c.jobs_ok), (1, 1), "{c:?}");
    let c = counters("spin-abort");
    assert_eq!((c.jobs_aborted, c.jobs_failed), (1, 1), "{c:?}");
    let c = counters("untrusted-signer");
    assert_eq!((c.pushes_ok, c.errors_sent), (0, 1), "{c:?}");
    // A wrong hash (1 error), a chunk at a wrong offset (it, the chunk after it and the PushEnd:
    // 3), no PushEnd (none), an unknown hash (1).
    let c = counters("bad-push");
    assert_eq!((c.pushes_ok, c.errors_sent), (0, 5), "{c:?}");
    let c = counters("split-handshakes");
    assert_eq!((c.sessions_opened, c.hellos_refused), (1, 1), "the stranger is told PermissionDenied: {c:?}");
    let c = counters("garbage-message");
    assert!(c.errors_sent >= 2 && c.sessions_killed == 0, "{c:?}");
    let c = counters("raw-after-open");
    assert_eq!(c.sessions_killed, 1, "{c:?}");
    let c = counters("clear-garbage");
    assert_eq!((c.sessions_opened, c.dropped_unauthenticated), (0, 2), "{c:?}");
    let c = counters("full");
    assert_eq!(
        (c.evicted, c.refused_busy, c.errors_sent),
        (1, 0, 1),
        "the fifth connection evicts the oldest waiting one, which is told Busy: {c:?}"
    );
    let c = counters("deadlines");
    assert_eq!(
        (c.handshake_timeouts, c.sessions_opened, c.idle_timeouts),
        (1, 1, 1),
        "a stalled handshake is reset, an idle session closed: {c:?}"
    );
    let c = counters("discovery");
    assert_eq!((c.adverts_sent, c.probes_too_short), (1, 2), "{c:?}");
    let c = counters("queue");
    assert!(c.errors_sent >= 1 && c.jobs_failed == 4, "a full queue answers Busy, the rest run out of fuel: {c:?}");
}

/// The fleet seeds get where they were written to get, on the device's fleet counters.
#[test]
fn fleet_seeds_reach_deep() {
    let seeds: std::collections::BTreeMap<_, _> = seeds().into_iter().collect();
    let run = |name: &str| {
        let (c, f) = run_with_fleet(&seeds[name]);
        eprintln!("{name}: {c:?} {f:?}");
        (c, f)
    };
    // An inline echo job, the same module by hash (cached by the first), an inline `add` call.
    let (c, f) = run("fleet-job");
    assert_eq!((f.received, f.answered, f.refusals.total()), (3, 3, 0), "{f:?}");
    assert_eq!((c.pushes_ok, c.jobs_ok, c.errors_sent), (2, 3, 0), "{c:?}");
    // A job naming a module a session pushed.
    let (c, f) = run("fleet-after-push");
    assert_eq!((f.received, f.answered, f.refusals.total()), (1, 1, 0), "{f:?}");
    assert_eq!((c.pushes_ok, c.jobs_ok), (1, 1), "{c:?}");
    // The replay and the expired job are refused as replayed.
    let (c, f) = run("fleet-replay");
    assert_eq!((f.received, f.answered, f.refusals.replayed, f.refusals.total()), (3, 1, 2, 2), "{f:?}");
    assert_eq!(c.jobs_ok, 1, "{c:?}");
    // An altered seal, altered signed bytes, an unknown signer, garbage: dropped, each for its
    // reason; an unknown hash: accepted and answered with a sealed NotFound.
    let (c, f) = run("fleet-refusals");
    let r = f.refusals;
    assert_eq!((f.received, f.answered), (5, 1), "{f:?}");
    assert_eq!((r.bad_seal, r.bad_signature, r.malformed, r.replayed, r.busy), (1, 2, 1, 0, 0), "{f:?}");
    assert_eq!((c.jobs_ok, c.errors_sent), (0, 1), "{c:?}");
    // A wasm module signed by an unknown signer (a sealed Error), a native blob (runs Ok) and a
    // spinning module (out of fuel).
    let (c, f) = run("fleet-modules");
    assert_eq!((f.received, f.answered, f.refusals.total()), (3, 3, 0), "{f:?}");
    assert_eq!((c.errors_sent, c.pushes_ok, c.jobs_ok, c.jobs_failed), (1, 2, 1, 1), "{c:?}");
}

/// A script with a job and a call: the body's checks on results run on real results (an echo
/// output that is not an input sent, or a call result that is not one `i64`, would panic).
#[test]
fn the_body_sees_real_traffic() {
    let script = ScriptBuilder::new()
        .connect()
        .handshake(0, 0, &[])
        .push(0, 0, 1000, 0)
        .invoke(0, 0, b"abcdefgh", false, 0, 0)
        .invoke(0, 0, b"", true, 100, -1)
        .poll(8, 20_000, 500)
        .read(0)
        .build();
    let c = run(&script);
    assert_eq!((c.sessions_opened, c.pushes_ok, c.jobs_ok, c.jobs_failed), (1, 1, 2, 0), "{c:?}");
}

/// The modules the body pushes do what it expects of them.
#[test]
fn the_body_modules_behave() {
    let echo = wat::parse_str(
        r#"(module
          (import "jos" "input_len" (func $input_len (result i32)))
          (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
          (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "run") (result i32)
            (local $n i32)
            (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
            (drop (call $output_write (i32.const 0) (local.get $n)))
            (local.get $n))
          (func (export "add") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    assert!(echo.starts_with(ECHO_WASM), "ECHO_WASM is the text above without its name section");
    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    )
    .unwrap();
    assert!(spin.starts_with(SPIN_WASM), "SPIN_WASM is the text above without its name section");

    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let limits = Limits { fuel_budget: 100_000, ..Limits::default() };
    let (result, _) =
        sandbox.run(ECHO_WASM, StdHost::new(b"hello".to_vec()), limits, Capabilities::NONE, Entry::Default, 10_000);
    assert_eq!((result.status, result.exit_value, result.output.as_slice()), (JobStatus::Ok, Some(5), &b"hello"[..]));
    let call = Entry::Call { name: "add".into(), args: vec![Value::I64(40), Value::I64(2)] };
    let (result, _) = sandbox.run(ECHO_WASM, StdHost::new(Vec::new()), limits, Capabilities::NONE, call, 10_000);
    assert_eq!(result.values, vec![Value::I64(42)]);
    let (result, _) =
        sandbox.run(SPIN_WASM, StdHost::new(Vec::new()), limits, Capabilities::NONE, Entry::Default, 10_000);
    assert_eq!(result.status, JobStatus::OutOfFuel);
    assert_eq!(fuzzing::modules().len(), 4);
}

/// The body over every corpus file (libFuzzer's finds too) and deterministic mutations.
#[test]
fn fuzz_body_over_corpus_and_mutations() {
    let mut files = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("the server corpus") {
        fuzzing::server(&std::fs::read(entry.unwrap().path()).unwrap());
        files += 1;
    }
    let seeds = seeds();
    assert!(files >= seeds.len());
    fuzzing::server(&[]);
    let mut rng = Rng::new(0x6a6f_735f_6f66_666c);
    for round in 0..1500 {
        let (_, seed) = &seeds[round % seeds.len()];
        fuzzing::server(&mutate(seed, &mut rng));
    }
}

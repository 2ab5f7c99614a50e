//! Hostile and ordinary modules through the wasm sandbox, each with its exact expected result.

use jos_runtime::job::{JobError, JobResult, JobStatus, LimitKind, LoadError, StepOutcome, TrapCode, Value};
use jos_runtime::wasm::{module_id, Entry, Limits, Sandbox, SandboxConfig};
use jos_runtime::{Capabilities, StdHost};

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module is valid text")
}

fn run_with(bytes: &[u8], input: &[u8], limits: Limits, capabilities: Capabilities) -> (JobResult, StdHost) {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    sandbox.run(bytes, StdHost::new(input), limits, capabilities, Entry::Default, 100_000)
}

fn run(text: &str) -> JobResult {
    run_with(&wasm(text), b"", Limits::default(), Capabilities::NONE).0
}

#[track_caller]
fn assert_ok(result: &JobResult, exit_value: i32) {
    assert_eq!((result.status, &result.error), (JobStatus::Ok, &None), "{result:?}");
    assert_eq!(result.exit_value, Some(exit_value));
}

#[track_caller]
fn assert_rejected(result: &JobResult, expected: LoadError) {
    assert_eq!(result.status, JobStatus::Rejected, "{result:?}");
    assert_eq!(result.error, Some(JobError::Load(expected)));
    assert_eq!(result.exit_value, None);
}

#[track_caller]
fn assert_malformed(result: &JobResult) {
    assert_eq!(result.status, JobStatus::Rejected, "{result:?}");
    assert!(matches!(result.error, Some(JobError::Load(LoadError::Malformed(_)))), "{:?}", result.error);
}

#[track_caller]
fn assert_out_of_fuel(result: &JobResult, budget: u64) {
    assert_eq!(result.status, JobStatus::OutOfFuel, "{result:?}");
    assert_eq!(result.error, Some(JobError::OutOfFuel { budget }));
    assert_eq!(result.stats.fuel_used, budget);
    assert_eq!(result.exit_value, None);
}

#[track_caller]
fn assert_trap(result: &JobResult, code: TrapCode, function: &str) {
    assert_eq!(result.status, JobStatus::Trap, "{result:?}");
    assert_eq!(result.error, Some(JobError::Trap { code, function: function.into() }));
    assert_eq!(result.exit_value, None);
}

const ECHO: &str = r#"
(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "echoing")
  (func (export "run") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 0) (call $input_len) (i32.const 0)))
    (drop (call $log (i32.const 3) (i32.const 1024) (i32.const 7)))
    (drop (call $output_write (i32.const 0) (local.get $n)))
    (local.get $n)))
"#;

#[test]
fn echo_reads_input_writes_output_and_logs() {
    let (result, _) = run_with(&wasm(ECHO), b"hello jos", Limits::default(), Capabilities::NONE);
    assert_ok(&result, 9);
    assert_eq!(result.output, b"hello jos");
    assert_eq!(result.logs.len(), 1);
    assert_eq!(result.logs[0].text, "echoing");
    assert_eq!(result.logs[0].level, jos_abi::syscall::LogLevel::Info);
    assert_eq!(result.stats.peak_memory_bytes, 65536);
    assert!(result.stats.fuel_used > 0);
    assert_eq!(result.stats.slices, 1);
}

#[test]
fn start_convention_returns_zero_and_exit_ends_early() {
    assert_ok(&run(r#"(module (func (export "_start")))"#), 0);
    let exits = r#"
    (module
      (import "jos" "exit" (func $exit (param i32)))
      (func (export "run") (result i32) (call $exit (i32.const 7)) (i32.const 1)))"#;
    assert_ok(&run(exits), 7);
    let wrong = run(r#"(module (func (export "run") (param i32) (result i32) (local.get 0)))"#);
    assert_eq!(wrong.status, JobStatus::Rejected);
    assert!(matches!(wrong.error, Some(JobError::Load(LoadError::EntrySignature(_)))));
    assert_rejected(&run(r#"(module (func (export "main")))"#), LoadError::MissingEntry("run or _start".into()));
}

#[test]
fn malformed_bytes_are_rejected() {
    let (result, _) = run_with(b"\0asm\x02\0\0\0garbage", b"", Limits::default(), Capabilities::NONE);
    assert_malformed(&result);
    let (result, _) = run_with(b"", b"", Limits::default(), Capabilities::NONE);
    assert_malformed(&result);
    let (result, _) = run_with(b"hello, not wasm", b"", Limits::default(), Capabilities::NONE);
    assert_malformed(&result);
}

#[test]
fn truncated_module_is_rejected() {
    let bytes = wasm(ECHO);
    for cut in [4, 9, bytes.len() / 2, bytes.len() - 1] {
        let (result, _) = run_with(&bytes[..cut], b"", Limits::default(), Capabilities::NONE);
        assert_malformed(&result);
    }
}

#[test]
fn invalid_module_is_rejected() {
    // Type error: i64 result from an i32 function.
    let bytes = wasm(r#"(module (func (export "run") (result i32) (i64.const 1)))"#.replace("(i64.const 1)", "(i32.const 1)").as_str());
    let mut bad = bytes.clone();
    // Replace the i32.const opcode (0x41) of the body with i64.const (0x42): still decodable,
    // no longer valid.
    let position = bad.iter().rposition(|b| *b == 0x41).expect("body has i32.const");
    bad[position] = 0x42;
    let (result, _) = run_with(&bad, b"", Limits::default(), Capabilities::NONE);
    assert_malformed(&result);
}

#[test]
fn unknown_imports_are_refused_with_their_name() {
    assert_rejected(
        &run(
            r#"(module (import "jos" "open" (func (param i32) (result i32))) (func (export "run") (result i32) (i32.const 0)))"#,
        ),
        LoadError::UnknownImport { module: "jos".into(), name: "open".into() },
    );
    assert_rejected(
        &run(r#"(module (import "env" "log" (func)) (func (export "run") (result i32) (i32.const 0)))"#),
        LoadError::UnknownImport { module: "env".into(), name: "log".into() },
    );
    assert_rejected(
        &run(r#"(module (import "jos" "memory" (memory 1)) (func (export "run") (result i32) (i32.const 0)))"#),
        LoadError::UnknownImport { module: "jos".into(), name: "memory".into() },
    );
}

#[test]
fn wrong_import_signature_is_refused() {
    assert_rejected(
        &run(
            r#"(module (import "jos" "log" (func (param i32) (result i32))) (func (export "run") (result i32) (i32.const 0)))"#,
        ),
        LoadError::ImportSignature {
            name: "log".into(),
            expected: "(i32, i32, i32) -> (i32)".into(),
            found: "(i32) -> (i32)".into(),
        },
    );
    assert_rejected(
        &run(
            r#"(module (import "jos" "time_us" (func (result i32))) (func (export "run") (result i32) (i32.const 0)))"#,
        ),
        LoadError::ImportSignature {
            name: "time_us".into(),
            expected: "() -> (i64)".into(),
            found: "() -> (i32)".into(),
        },
    );
}

#[test]
fn memory_above_the_cap_is_refused() {
    let limits = Limits { max_memory_pages: 4, ..Limits::default() };
    let (result, _) = run_with(
        &wasm(r#"(module (memory 5) (func (export "run") (result i32) (i32.const 0)))"#),
        b"",
        limits,
        Capabilities::NONE,
    );
    assert_eq!(result.status, JobStatus::LimitExceeded, "{result:?}");
    assert_eq!(result.error, Some(JobError::Load(LoadError::Limit(LimitKind::MemoryPages))));
}

#[test]
fn memory_grow_loop_stops_at_the_cap() {
    let limits = Limits { max_memory_pages: 16, ..Limits::default() };
    let grow = r#"
    (module
      (memory 1)
      (func (export "run") (result i32)
        (block $full
          (loop $more
            (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
            (br $more)))
        (memory.size)))"#;
    let (result, _) = run_with(&wasm(grow), b"", limits, Capabilities::NONE);
    assert_ok(&result, 16);
    assert_eq!(result.stats.peak_memory_bytes, 16 * 65536);

    // A loop that ignores the failure runs until its fuel is gone.
    let forever = r#"
    (module (memory 1)
      (func (export "run") (result i32) (loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i32.const 0)))"#;
    let limits = Limits { max_memory_pages: 16, fuel_budget: 200_000, ..Limits::default() };
    let (result, _) = run_with(&wasm(forever), b"", limits, Capabilities::NONE);
    assert_out_of_fuel(&result, 200_000);
    assert_eq!(result.stats.peak_memory_bytes, 16 * 65536);
}

const INFINITE: &str = r#"(module (func (export "run") (result i32) (loop $l (br $l)) (i32.const 0)))"#;

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let limits = Limits { fuel_budget: 1_000_000, ..Limits::default() };
    let (result, _) = run_with(&wasm(INFINITE), b"", limits, Capabilities::NONE);
    assert_out_of_fuel(&result, 1_000_000);
    assert_eq!(result.stats.slices, 10);
}

#[test]
fn deep_recursion_traps_with_stack_overflow() {
    let result = run(r#"(module (func $f (call $f)) (func (export "run") (result i32) (call $f) (i32.const 0)))"#);
    assert_trap(&result, TrapCode::StackOverflow, "run");
    // Many locals per frame hit the value-stack limit before the depth limit.
    let wide = r#"(module
      (func $f (param i64) (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                                  i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
        (call $f (local.get 0)))
      (func (export "run") (result i32) (call $f (i64.const 1)) (i32.const 0)))"#;
    let config = SandboxConfig { max_recursion_depth: 100_000, ..SandboxConfig::default() };
    let mut sandbox = Sandbox::new(config);
    let (result, _) =
        sandbox.run(&wasm(wide), StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default, 1 << 20);
    assert_trap(&result, TrapCode::StackOverflow, "run");
}

#[test]
fn huge_output_is_capped_and_ends_the_job() {
    let flood = r#"
    (module
      (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "run") (result i32)
        (loop $more (br_if $more (i32.eqz (call $write (i32.const 0) (i32.const 65536)))))
        (i32.const 0)))"#;
    let limits = Limits { max_output_bytes: 1 << 20, ..Limits::default() };
    let (result, _) = run_with(&wasm(flood), b"", limits, Capabilities::NONE);
    assert_eq!(result.status, JobStatus::LimitExceeded, "{:?}", result.error);
    assert_eq!(result.error, Some(JobError::Limit(LimitKind::Output)));
    assert_eq!(result.output.len(), 1 << 20, "everything that fit is kept");
}

#[test]
fn start_function_that_traps() {
    let result = run(r#"(module (func $s unreachable) (start $s) (func (export "run") (result i32) (i32.const 1)))"#);
    assert_trap(&result, TrapCode::Unreachable, "start");
}

#[test]
fn traps_name_their_code_and_function() {
    let result = run(r#"(module (memory 1) (func (export "run") (result i32) (i32.load (i32.const 65535))))"#);
    assert_trap(&result, TrapCode::MemoryOutOfBounds, "run");
    let result = run(r#"(module (func (export "run") (result i32) (i32.div_u (i32.const 1) (i32.const 0))))"#);
    assert_trap(&result, TrapCode::IntegerDivisionByZero, "run");
}

#[test]
fn bad_pointers_and_missing_rights_return_error_codes() {
    let module = r#"
    (module
      (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
      (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "hi")
      (func (export "bad_pointer") (result i32) (call $write (i32.const 65530) (i32.const 100)))
      (func (export "print") (result i32) (call $print (i32.const 0) (i32.const 2))))"#;
    let call = |name: &str, capabilities| {
        let mut sandbox = Sandbox::new(SandboxConfig::default());
        let entry = Entry::Call { name: name.into(), args: vec![] };
        sandbox.run(&wasm(module), StdHost::new(""), Limits::default(), capabilities, entry, 100_000)
    };
    let (result, _) = call("bad_pointer", Capabilities::NONE);
    assert_eq!(result.values, vec![Value::I32(-(jos_abi::ErrorCode::BadAddress as i32))]);
    let (result, host) = call("print", Capabilities::NONE);
    assert_eq!(result.values, vec![Value::I32(-(jos_abi::ErrorCode::PermissionDenied as i32))]);
    assert!(host.screen.is_empty());
    let (result, host) = call("print", Capabilities { screen: true, ..Capabilities::NONE });
    assert_eq!(result.values, vec![Value::I32(0)]);
    assert_eq!(host.screen, vec!["hi".to_string()]);
}

#[test]
fn call_takes_and_returns_numbers() {
    let module = wasm(
        r#"(module (func (export "mix") (param i32 i64 f32 f64) (result f64 i32)
             (f64.add (f64.add (f64.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
                      (f64.add (f64.promote_f32 (local.get 2)) (local.get 3)))
             (i32.const 5)))"#,
    );
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let args = vec![Value::I32(1), Value::I64(2), Value::F32(0.5), Value::F64(0.25)];
    let entry = Entry::Call { name: "mix".into(), args };
    let (result, _) = sandbox.run(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, entry, 1000);
    assert_eq!(result.status, JobStatus::Ok);
    assert_eq!(result.values, vec![Value::F64(3.75), Value::I32(5)]);
    let entry = Entry::Call { name: "mix".into(), args: vec![Value::I32(1)] };
    let (result, _) = sandbox.run(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, entry, 1000);
    assert!(matches!(result.error, Some(JobError::Load(LoadError::BadArguments(_)))), "{result:?}");
}

#[test]
fn call_arguments_in_i64_slots_take_the_parameter_types() {
    // How an offload Invoke carries arguments (jos_abi::wire::call): each value's bits in an i64.
    let module = wasm(
        r#"(module (func (export "mix") (param i32 i64 f32 f64) (result f64)
             (f64.add (f64.add (f64.convert_i32_s (local.get 0)) (f64.convert_i64_s (local.get 1)))
                      (f64.add (f64.promote_f32 (local.get 2)) (local.get 3)))))"#,
    );
    let slots = [
        jos_abi::job::Value::I32(-1),
        jos_abi::job::Value::I64(2),
        jos_abi::job::Value::F32(0.5),
        jos_abi::job::Value::F64(0.25),
    ];
    let args = slots.iter().map(|value| Value::I64(value.to_slot())).collect();
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let entry = Entry::Call { name: "mix".into(), args };
    let (result, _) = sandbox.run(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, entry, 1000);
    assert_eq!(result.status, JobStatus::Ok, "{result:?}");
    assert_eq!(result.values, vec![Value::F64(1.75)]);
}

#[test]
fn abi_section_is_checked() {
    let with_abi = |bytes: &str| {
        format!(r#"(module (@custom "jos.abi" "{bytes}") (func (export "run") (result i32) (i32.const 3)))"#)
    };
    // 1.0, little-endian major << 16 | minor.
    assert_ok(&run(&with_abi(r"\00\00\01\00")), 3);
    assert_rejected(&run(&with_abi(r"\00\00\02\00")), LoadError::AbiMismatch { found: Some(0x0002_0000) });
    assert_rejected(&run(&with_abi(r"\05\00\01\00")), LoadError::AbiMismatch { found: Some(0x0001_0005) });
    assert_rejected(&run(&with_abi(r"\01\00")), LoadError::AbiMismatch { found: None });
}

#[test]
fn module_cache_is_keyed_by_identity() {
    let bytes = wasm(ECHO);
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let first = sandbox.compile(&bytes).expect("valid");
    let second = sandbox.compile(&bytes).expect("valid");
    assert_eq!(first.hash(), &module_id(&bytes));
    assert_eq!(first.hash(), second.hash());
    assert_eq!(sandbox.cache().len(), 1);
    assert!(sandbox.cached(&module_id(&bytes)).is_some());
    assert!(sandbox.cached(&[0; 32]).is_none());
    // Too large for the module limit: refused before hashing.
    let mut small = Sandbox::new(SandboxConfig { max_module_bytes: 16, ..SandboxConfig::default() });
    assert_eq!(small.compile(&bytes).err(), Some(LoadError::Limit(LimitKind::ModuleSize)));
}

#[test]
fn infinite_loop_in_slices_runs_then_ends_at_the_budget() {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let module = sandbox.compile(&wasm(INFINITE)).expect("valid");
    let limits = Limits { fuel_budget: 50_000, ..Limits::default() };
    let mut job = sandbox.start(&module, StdHost::new(""), limits, Capabilities::NONE, Entry::Default);
    let mut running = 0;
    let result = loop {
        match job.step(1_000) {
            StepOutcome::Running => running += 1,
            StepOutcome::Yielded => panic!("the loop never calls yield"),
            StepOutcome::Finished(result) => break result,
        }
        assert!(running <= 50, "must end at the budget");
    };
    assert_eq!(running, 49, "the 50th slice uses the last fuel and ends the job");
    assert_out_of_fuel(&result, 50_000);
    assert_eq!(result.stats.slices, 50);
    // Stepping a finished job gives the same result again.
    assert_eq!(job.step(1_000), StepOutcome::Finished(result));
    assert_eq!(job.into_host().yields, 49);
}

#[test]
fn a_job_ended_for_its_native_stack_traps_and_keeps_its_output() {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let writes = r#"
    (module
      (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "so far")
      (func (export "run") (result i32)
        (drop (call $write (i32.const 0) (i32.const 6)))
        (loop $l (br $l))
        (i32.const 0)))"#;
    let module = sandbox.compile(&wasm(writes)).expect("valid");
    let mut job = sandbox.start(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default);
    assert_eq!(job.step(1_000), StepOutcome::Running);
    // What the kernel does when a slice hit its stack's guard page (docs/runtime.md).
    let result = job.end_stack_exhausted();
    assert_trap(&result, TrapCode::StackOverflow, "run");
    assert_eq!(result.output, b"so far");
    assert!(result.logs.last().is_some_and(|line| line.text.contains("native stack exhausted")), "{result:?}");
    // The job stays ended.
    assert_eq!(job.step(1_000), StepOutcome::Finished(result));
}

const SUM: &str = r#"
(module
  (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $i i32) (local $sum i32)
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (i32.mul (local.get $i) (local.get $i))))
      (i32.store8 (i32.rem_u (local.get $i) (i32.const 64)) (local.get $sum))
      (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 1000)))
        (then (drop (call $write (i32.const 0) (i32.const 64)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 20000))))
    (local.get $sum)))
"#;

#[test]
fn finite_job_gives_the_same_result_in_small_slices() {
    let bytes = wasm(SUM);
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    // Translation is eager (at load, no job fuel): the first run and a cached run use the same.
    let (first, _) =
        sandbox.run(&bytes, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default, u64::MAX);
    let (whole, _) =
        sandbox.run(&bytes, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default, u64::MAX);
    assert_eq!(first.stats.fuel_used, whole.stats.fuel_used);
    assert_eq!(first.exit_value, whole.exit_value);
    let (sliced, host) =
        sandbox.run(&bytes, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default, 97);
    assert_eq!(whole.status, JobStatus::Ok);
    assert_eq!(whole.stats.slices, 1);
    assert!(sliced.stats.slices > 1000, "{} slices", sliced.stats.slices);
    assert_eq!(host.yields, sliced.stats.slices - 1);
    assert_eq!(sliced.exit_value, whole.exit_value);
    assert_eq!(sliced.output, whole.output);
    assert_eq!(sliced.output.len(), 20 * 64);
    assert_eq!(sliced.stats.fuel_used, whole.stats.fuel_used);
}

#[test]
fn yield_ends_the_slice_and_resumes_with_zero() {
    let module = r#"
    (module
      (import "jos" "yield" (func $yield (result i32)))
      (func (export "run") (result i32)
        (i32.add (i32.add (call $yield) (call $yield)) (i32.add (call $yield) (i32.const 11)))))"#;
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let module = sandbox.compile(&wasm(module)).expect("valid");
    let mut job = sandbox.start(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default);
    // Each yield ends its slice with `Yielded` (not `Running`, which is a slice's fuel running
    // out), so the kernel can leave the job until its next frame.
    assert_eq!(job.step(1 << 30), StepOutcome::Yielded);
    assert_eq!(job.step(1 << 30), StepOutcome::Yielded);
    assert_eq!(job.step(1 << 30), StepOutcome::Yielded);
    let StepOutcome::Finished(result) = job.step(1 << 30) else { panic!("should end after three yields") };
    assert_ok(&result, 11);
}

/// A host whose clock moves 1000 us each time it is read.
struct SlowClock(std::cell::Cell<u64>);

impl jos_runtime::Host for SlowClock {
    fn input_len(&self) -> usize {
        0
    }
    fn input_read(&self, _offset: usize, _buffer: &mut [u8]) -> usize {
        0
    }
    fn time_us(&self) -> u64 {
        self.0.set(self.0.get() + 1000);
        self.0.get()
    }
    fn random(&mut self, buffer: &mut [u8]) -> Result<(), jos_abi::ErrorCode> {
        buffer.fill(4);
        Ok(())
    }
}

#[test]
fn deadline_ends_a_sliced_job() {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let module = sandbox.compile(&wasm(INFINITE)).expect("valid");
    let limits = Limits { deadline_us: Some(5_500), ..Limits::default() };
    let mut job = sandbox.start(&module, SlowClock(0.into()), limits, Capabilities::NONE, Entry::Default);
    let mut slices = 0;
    let result = loop {
        if let StepOutcome::Finished(result) = job.step(1000) {
            break result;
        }
        slices += 1;
    };
    assert_eq!(result.status, JobStatus::Deadline);
    assert_eq!(result.error, Some(JobError::Deadline { limit_us: 5_500 }));
    assert_eq!(slices, 5);
}

#[test]
fn random_and_time_reach_the_host() {
    let module = r#"
    (module
      (import "jos" "random" (func $random (param i32 i32) (result i32)))
      (import "jos" "time_us" (func $time (result i64)))
      (memory (export "memory") 1)
      (func (export "run") (result i32)
        (drop (call $random (i32.const 0) (i32.const 4)))
        (i32.add (i32.load (i32.const 0)) (i32.wrap_i64 (call $time)))))"#;
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let (result, _) =
        sandbox.run(&wasm(module), SlowClock(0.into()), Limits::default(), Capabilities::NONE, Entry::Default, 1000);
    // Clock reads: 1000 at job start, 2000 at the first slice, 3000 in the call.
    assert_ok(&result, 0x0404_0404 + 3000);
}

mod signed {
    use super::*;
    use jos_abi::signature::{public_key, sign_wasm, SignatureError, SignerRights, TrustedSigner};

    const DEVELOPER: [u8; 32] = [1; 32];
    const NATIVE_ONLY: [u8; 32] = [2; 32];
    const STRANGER: [u8; 32] = [3; 32];

    fn signers() -> [TrustedSigner; 2] {
        [
            TrustedSigner { public_key: public_key(&NATIVE_ONLY), rights: SignerRights::NATIVE },
            TrustedSigner { public_key: public_key(&DEVELOPER), rights: SignerRights::WASM },
        ]
    }

    fn compile(bytes: &[u8]) -> Result<usize, LoadError> {
        Sandbox::new(SandboxConfig::default()).compile_signed(bytes, &signers()).map(|(_, signer)| signer)
    }

    #[test]
    fn signed_module_verifies_and_runs() {
        let bytes = sign_wasm(&wasm(ECHO), &DEVELOPER, true).expect("signs");
        assert_eq!(compile(&bytes), Ok(1));
        let (result, _) = run_with(&bytes, b"ok", Limits::default(), Capabilities::NONE);
        assert_ok(&result, 2);
    }

    #[test]
    fn unknown_key_is_refused() {
        let bytes = sign_wasm(&wasm(ECHO), &STRANGER, true).expect("signs");
        assert_eq!(compile(&bytes), Err(LoadError::Signature(SignatureError::UnknownKey)));
    }

    #[test]
    fn signature_over_different_bytes_is_refused() {
        let mut bytes = sign_wasm(&wasm(ECHO), &DEVELOPER, true).expect("signs");
        // Change the data segment text "echoing" after signing.
        let at = bytes.windows(7).position(|w| w == b"echoing").expect("data present");
        bytes[at] = b'E';
        assert_eq!(compile(&bytes), Err(LoadError::Signature(SignatureError::ContentMismatch)));
    }

    #[test]
    fn unsigned_and_native_only_signers_are_refused() {
        assert_eq!(compile(&wasm(ECHO)), Err(LoadError::Signature(SignatureError::Missing)));
        let bytes = sign_wasm(&wasm(ECHO), &NATIVE_ONLY, true).expect("signs");
        let refused = compile(&bytes);
        assert_eq!(refused, Err(LoadError::Signature(SignatureError::NotPermitted)));
        assert_eq!(refused.unwrap_err().code(), jos_abi::ErrorCode::UntrustedSigner);
    }
}

#[test]
fn table_above_the_cap_is_refused_and_growth_stops_at_it() {
    let limits = Limits { max_table_elements: 100, ..Limits::default() };
    let (result, _) = run_with(
        &wasm(r#"(module (table 101 funcref) (func (export "run") (result i32) (i32.const 0)))"#),
        b"",
        limits,
        Capabilities::NONE,
    );
    assert_eq!(result.status, JobStatus::LimitExceeded, "{result:?}");
    assert_eq!(result.error, Some(JobError::Load(LoadError::Limit(LimitKind::TableElements))));
    let grow = r#"
    (module (table $t 10 funcref)
      (func (export "run") (result i32)
        (block $full (loop $more
          (br_if $full (i32.eq (table.grow $t (ref.null func) (i32.const 10)) (i32.const -1)))
          (br $more)))
        (table.size $t)))"#;
    let (result, _) = run_with(&wasm(grow), b"", limits, Capabilities::NONE);
    assert_ok(&result, 100);
}

/// A job whose first call of a function comes after some slices, at every slice size down to
/// tiny ones: the callee's compilation must never end the job with a false "out of fuel"
/// (wasmi's lazy translation of a callee cannot be resumed when fuel runs out in it, which made
/// the Rust imagefilter example fail on the device's 20 000-fuel slices).
#[test]
fn a_callee_first_called_late_runs_at_every_slice_size() {
    let body: String =
        (0..400).map(|index| format!("(local.set $x (i32.add (local.get $x) (i32.const {index})))\n")).collect();
    let module = wasm(&format!(
        r#"(module
          (func $big (param $x i32) (result i32) {body} (local.get $x))
          (func (export "run") (result i32)
            (local $i i32)
            (loop $spin
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $spin (i32.lt_u (local.get $i) (i32.const 3000))))
            (call $big (i32.const 0))))"#
    ));
    let expected = (0..400).sum::<i32>();
    for slice in [1_000_000, 20_000, 5_000, 777, 100, 1] {
        let mut sandbox = Sandbox::new(SandboxConfig::default());
        let (result, _) = sandbox.run(
            &module,
            StdHost::new(Vec::new()),
            Limits::default(),
            Capabilities::default(),
            Entry::Default,
            slice,
        );
        assert_eq!(result.status, JobStatus::Ok, "slice {slice}: {:?}", result.error);
        assert_eq!(result.exit_value, Some(expected), "slice {slice}");
    }
}

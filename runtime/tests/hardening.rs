//! Jobs that must not freeze or exhaust the device: the start function in slices, host calls
//! charged in fuel and sliced, growth bounded by the device's free heap, nested constant
//! expressions refused, a module's identity ignoring its signature section.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use jos_abi::ErrorCode;
use jos_runtime::host::HeapMeter;
use jos_runtime::job::{JobError, JobResult, JobStatus, LimitKind, LoadError, StepOutcome, TrapCode, Value};
use jos_runtime::wasm::{cost, module_id, Entry, Job, Limits, Sandbox, SandboxConfig, MAX_CONST_EXPR_DEPTH};
use jos_runtime::{Capabilities, Host, StdHost};

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module is valid text")
}

/// A host that counts what `random` was asked for and whose clock moves 1000 us a read.
#[derive(Default)]
struct Recording {
    random_calls: usize,
    random_bytes: usize,
    largest_fill: usize,
    clock: Cell<u64>,
    screen: Vec<String>,
}

impl Host for Recording {
    fn input_len(&self) -> usize {
        64 * 1024
    }
    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let count = buffer.len().min(self.input_len().saturating_sub(offset));
        buffer[..count].fill(1);
        count
    }
    fn time_us(&self) -> u64 {
        self.clock.set(self.clock.get() + 1000);
        self.clock.get()
    }
    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
        self.random_calls += 1;
        self.random_bytes += buffer.len();
        self.largest_fill = self.largest_fill.max(buffer.len());
        buffer.fill(0xa5);
        Ok(())
    }
    fn screen_print(&mut self, line: &str) -> Result<(), ErrorCode> {
        self.screen.push(line.into());
        Ok(())
    }
}

fn start<H: Host + 'static>(bytes: &[u8], host: H, limits: Limits, entry: Entry) -> Job<H> {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let module = sandbox.compile(bytes).expect("valid module");
    sandbox.start(&module, host, limits, Capabilities::ALL, entry)
}

/// Steps `job` in slices of `slice` until it ends; returns the result and how many steps said
/// `Running`.
fn finish<H: Host>(job: &mut Job<H>, slice: u64) -> (JobResult, usize) {
    let mut running = 0;
    loop {
        match job.step(slice) {
            StepOutcome::Finished(result) => return (result, running),
            StepOutcome::Running | StepOutcome::Yielded => running += 1,
        }
        assert!(running < 1_000_000, "the job never ends");
    }
}

const LOOPING_START: &str = r#"
(module
  (func $spin (loop $l (br $l)))
  (start $spin)
  (func (export "run") (result i32) (i32.const 1)))"#;

#[test]
fn a_start_function_that_loops_runs_in_slices_until_its_fuel_is_gone() {
    let limits = Limits { fuel_budget: 100_000, ..Limits::default() };
    let mut job = start(&wasm(LOOPING_START), StdHost::new(""), limits, Entry::Default);
    // Creating the job ran nothing: the start function waits for the first slice.
    assert_eq!(job.fuel_used(), 0);
    assert_eq!(job.step(1_000), StepOutcome::Running, "the first slice of the start function");
    assert!((990..=1_000).contains(&job.fuel_used()), "{}", job.fuel_used());
    let (result, running) = finish(&mut job, 1_000);
    assert_eq!(running, 98);
    assert_eq!(result.status, JobStatus::OutOfFuel, "{result:?}");
    assert_eq!(result.stats.fuel_used, 100_000);
    assert_eq!(result.stats.slices, 100);
}

#[test]
fn a_start_function_that_loops_ends_at_the_deadline() {
    let limits = Limits { deadline_us: Some(5_500), ..Limits::default() };
    let mut job = start(&wasm(LOOPING_START), Recording::default(), limits, Entry::Default);
    let (result, running) = finish(&mut job, 1_000);
    assert_eq!(result.status, JobStatus::Deadline, "{result:?}");
    assert_eq!(result.error, Some(JobError::Deadline { limit_us: 5_500 }));
    assert_eq!(running, 5);
}

#[test]
fn the_start_function_runs_first_then_the_entry() {
    // The start function sets a global and stores into memory across several slices; the
    // entry (and a `call` entry) read both.
    let module = wasm(
        r#"(module
          (memory (export "memory") 1)
          (global $g (mut i32) (i32.const 0))
          (func $init (local $i i32)
            (loop $l
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
            (global.set $g (local.get $i))
            (i32.store (i32.const 0) (i32.const 7)))
          (start $init)
          (func (export "run") (result i32) (i32.add (global.get $g) (i32.load (i32.const 0))))
          (func (export "twice") (param i32) (result i32) (i32.mul (local.get 0) (global.get $g))))"#,
    );
    let mut job = start(&module, StdHost::new(""), Limits::default(), Entry::Default);
    let (result, running) = finish(&mut job, 500);
    assert_eq!((result.status, result.exit_value), (JobStatus::Ok, Some(1007)), "{result:?}");
    assert!(running >= 5, "the start function took several slices: {running}");
    let call = Entry::Call { name: "twice".into(), args: vec![Value::I32(3)] };
    let (result, _) = finish(&mut start(&module, StdHost::new(""), Limits::default(), call), 500);
    assert_eq!(result.values, vec![Value::I32(3000)]);
    // The start function is not an entry of its own.
    let hidden = Entry::Call { name: jos_runtime::wasm::START_EXPORT.into(), args: vec![] };
    let (result, _) = finish(&mut start(&module, StdHost::new(""), Limits::default(), hidden), 500);
    assert_eq!(result.error, Some(JobError::Load(LoadError::MissingEntry("jos.start".into()))));
}

#[test]
fn a_start_function_that_traps_exits_or_yields() {
    let trap = wasm(
        r#"(module (func $s (loop $l (br_if $l (i32.const 0))) unreachable) (start $s) (func (export "run") (result i32) (i32.const 1)))"#,
    );
    let (result, _) = finish(&mut start(&trap, StdHost::new(""), Limits::default(), Entry::Default), 1);
    assert_eq!(result.status, JobStatus::Trap);
    assert_eq!(result.error, Some(JobError::Trap { code: TrapCode::Unreachable, function: "start".into() }));

    // exit in the start function ends the job with that value; the entry never runs.
    let exits = wasm(
        r#"(module
          (import "jos" "exit" (func $exit (param i32)))
          (func $s (call $exit (i32.const 5)))
          (start $s)
          (func (export "run") (result i32) unreachable))"#,
    );
    let (result, _) = finish(&mut start(&exits, StdHost::new(""), Limits::default(), Entry::Default), 1_000);
    assert_eq!((result.status, result.exit_value, result.error), (JobStatus::Ok, Some(5), None));

    // yield in the start function ends its slice like anywhere else.
    let yields = wasm(
        r#"(module
          (import "jos" "yield" (func $yield (result i32)))
          (func $s (drop (call $yield)) (drop (call $yield)))
          (start $s)
          (func (export "run") (result i32) (i32.const 3)))"#,
    );
    let mut job = start(&yields, StdHost::new(""), Limits::default(), Entry::Default);
    assert_eq!(job.step(1_000_000), StepOutcome::Yielded);
    assert_eq!(job.step(1_000_000), StepOutcome::Yielded);
    let (result, _) = finish(&mut job, 1_000_000);
    assert_eq!(result.exit_value, Some(3));
}

#[test]
fn a_module_that_imports_a_call_twice_runs() {
    let module = wasm(
        r#"(module
          (import "jos" "time_us" (func $a (result i64)))
          (import "jos" "time_us" (func $b (result i64)))
          (func (export "run") (result i32) (i32.wrap_i64 (i64.sub (call $b) (call $a)))))"#,
    );
    let (result, _) = finish(&mut start(&module, Recording::default(), Limits::default(), Entry::Default), 1_000);
    assert_eq!((result.status, result.exit_value), (JobStatus::Ok, Some(-1000)), "{result:?}");
}

/// A module whose `run` calls `random(0, n)` once (its memory has `pages` pages).
fn random_module(pages: u32, length: u32) -> Vec<u8> {
    wasm(&format!(
        r#"(module
          (import "jos" "random" (func $random (param i32 i32) (result i32)))
          (memory (export "memory") {pages})
          (func (export "run") (result i32) (call $random (i32.const 0) (i32.const {length}))))"#
    ))
}

fn fuel_of(bytes: &[u8]) -> u64 {
    let (result, _) = finish(&mut start(bytes, Recording::default(), Limits::default(), Entry::Default), 1 << 40);
    assert_eq!(result.status, JobStatus::Ok, "{result:?}");
    result.stats.fuel_used
}

#[test]
fn random_is_charged_by_the_byte() {
    let small = fuel_of(&random_module(1, 16));
    let large = fuel_of(&random_module(1, 65_536));
    assert_eq!(large - small, (65_536 - 16) * cost::RANDOM_PER_BYTE);
}

#[test]
fn a_huge_random_call_runs_in_slices_and_is_paid_for() {
    // 4 MiB of random numbers: 268M fuel, in slices of 1M fuel, each filling at most what its
    // fuel pays for.
    let length = 4u64 << 20;
    let mut job = start(&random_module(64, length as u32), Recording::default(), Limits::default(), Entry::Default);
    let slice = 1_000_000;
    let (result, running) = finish(&mut job, slice);
    assert_eq!((result.status, result.exit_value), (JobStatus::Ok, Some(0)), "{result:?}");
    let host = job.into_host();
    assert_eq!(host.random_bytes, length as usize);
    assert!(host.largest_fill as u64 <= slice / cost::RANDOM_PER_BYTE, "one fill of {} bytes", host.largest_fill);
    let paid = length * cost::RANDOM_PER_BYTE;
    assert!(running as u64 >= paid / slice - 1, "{running} slices");
    assert!(result.stats.fuel_used >= paid, "{} fuel", result.stats.fuel_used);
}

#[test]
fn a_random_call_the_budget_cannot_pay_ends_the_job_before_any_work() {
    let limits = Limits { fuel_budget: 10_000_000, ..Limits::default() };
    let mut job = start(&random_module(256, 16 << 20), Recording::default(), limits, Entry::Default);
    assert!(matches!(job.step(100_000), StepOutcome::Finished(_)), "ends in its first slice");
    let (result, _) = finish(&mut job, 100_000);
    assert_eq!(result.status, JobStatus::OutOfFuel, "{result:?}");
    assert_eq!(result.stats.fuel_used, 10_000_000);
    assert_eq!(job.into_host().random_bytes, 0, "nothing was produced");
}

#[test]
fn a_huge_random_call_ends_at_the_deadline() {
    let limits = Limits { deadline_us: Some(10_500), ..Limits::default() };
    let mut job = start(&random_module(256, 16 << 20), Recording::default(), limits, Entry::Default);
    let (result, running) = finish(&mut job, 100_000);
    assert_eq!(result.status, JobStatus::Deadline, "{result:?}");
    assert!(running <= 10, "{running} slices");
    assert!(job.into_host().random_bytes <= 10 * 100_000 / cost::RANDOM_PER_BYTE as usize);
}

/// Fuel of a job that calls `call` with the given length once.
fn copy_fuel(call: &str, length: u32) -> u64 {
    let call = match call {
        "input_read" => format!("(call $input_read (i32.const 0) (i32.const {length}) (i32.const 0))"),
        "output_write" => format!("(call $output_write (i32.const 0) (i32.const {length}))"),
        "log" => format!("(call $log (i32.const 2) (i32.const 0) (i32.const {length}))"),
        other => panic!("{other}"),
    };
    let module = wasm(&format!(
        r#"(module
          (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
          (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
          (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
          (memory (export "memory") 2)
          (func (export "run") (result i32) (drop {call}) (i32.const 0)))"#
    ));
    fuel_of(&module)
}

#[test]
fn copies_and_log_lines_are_charged_by_the_byte() {
    assert_eq!(copy_fuel("input_read", 65_536) - copy_fuel("input_read", 0), cost::copy(65_536));
    assert_eq!(copy_fuel("output_write", 65_536) - copy_fuel("output_write", 0), cost::copy(65_536));
    // A log line is charged for what is kept of it (the line cap, MAX_LOG_LINE_LEN = 200 bytes).
    let cap = jos_abi::job::MAX_LOG_LINE_LEN as u32;
    assert_eq!(copy_fuel("log", cap) - copy_fuel("log", 0), u64::from(cap) * cost::LOG_PER_BYTE);
    assert_eq!(copy_fuel("log", 65_536), copy_fuel("log", cap));
    // Reading past the end of the input is charged for what there was to copy.
    assert_eq!(copy_fuel("input_read", 100_000), copy_fuel("input_read", 65_536));
}

#[test]
fn screen_print_looks_at_one_line_whatever_length_it_is_given() {
    let module = |length: u32| {
        wasm(&format!(
            r#"(module
              (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
              (memory (export "memory") 256)
              (data (i32.const 0) "hello \e2\82\ac")
              (func (export "run") (result i32) (call $print (i32.const 0) (i32.const {length}))))"#
        ))
    };
    // 16 MiB named: the zero bytes after the text are valid UTF-8, but only 256 bytes are
    // looked at and passed on, and the call costs the same as a short one.
    let mut job = start(&module(16 << 20), Recording::default(), Limits::default(), Entry::Default);
    let (long, _) = finish(&mut job, 1 << 30);
    assert_eq!(long.exit_value, Some(0), "{long:?}");
    let host = job.into_host();
    assert_eq!(host.screen[0].len(), cost::SCREEN_LINE_BYTES);
    assert!(host.screen[0].starts_with("hello €"));
    let mut job = start(&module(9), Recording::default(), Limits::default(), Entry::Default);
    let (short, _) = finish(&mut job, 1 << 30);
    assert_eq!(job.into_host().screen, vec!["hello €".to_string()]);
    assert_eq!(long.stats.fuel_used, short.stats.fuel_used);
    // A character cut at the 256th byte is dropped, not refused.
    let cut = wasm(&format!(
        r#"(module
          (import "jos" "screen_print" (func $print (param i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{}\e2\82\ac")
          (func (export "run") (result i32) (call $print (i32.const 0) (i32.const 300))))"#,
        "a".repeat(254)
    ));
    let mut job = start(&cut, Recording::default(), Limits::default(), Entry::Default);
    let (result, _) = finish(&mut job, 1 << 30);
    assert_eq!(result.exit_value, Some(0));
    assert_eq!(job.into_host().screen[0], "a".repeat(254));
}

/// A heap meter whose figures a test sets.
struct FakeHeap {
    available: AtomicUsize,
    used: AtomicUsize,
}

impl HeapMeter for FakeHeap {
    fn available(&self) -> usize {
        self.available.load(Ordering::Relaxed)
    }
    fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

#[test]
fn memory_does_not_grow_into_what_the_device_keeps() {
    static HEAP: FakeHeap = FakeHeap { available: AtomicUsize::new(1 << 20), used: AtomicUsize::new(0) };
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    sandbox.set_heap_meter(Some(&HEAP));
    let grow = wasm(
        r#"(module
          (memory (export "memory") 1)
          (func (export "run") (result i32)
            (block $full
              (loop $more
                (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
                (br $more)))
            (memory.size)))"#,
    );
    // The policy would allow 4 GiB; the device has 1 MiB to give: the buffer doubles from one
    // page to 2, 4, 8 and 16 pages (1 MiB), and the next doubling does not fit.
    let limits = Limits { max_memory_pages: 65_536, ..Limits::default() };
    let module = sandbox.compile(&grow).unwrap();
    let (result, _) =
        finish(&mut sandbox.start(&module, StdHost::new(""), limits, Capabilities::NONE, Entry::Default), 1 << 30);
    assert_eq!((result.status, result.exit_value), (JobStatus::Ok, Some(16)), "{result:?}");
    // An initial memory larger than the device can give: refused before the job runs.
    let big = wasm(r#"(module (memory 17) (func (export "run") (result i32) (i32.const 0)))"#);
    let module = sandbox.compile(&big).unwrap();
    let (result, _) =
        finish(&mut sandbox.start(&module, StdHost::new(""), limits, Capabilities::NONE, Entry::Default), 1 << 30);
    assert_eq!(result.status, JobStatus::LimitExceeded, "{result:?}");
    assert_eq!(result.error, Some(JobError::Load(LoadError::Limit(LimitKind::DeviceMemory))));
    // Tables too.
    let table = wasm(
        r#"(module (table $t 1 funcref)
          (func (export "run") (result i32) (table.grow $t (ref.null func) (i32.const 9000))))"#,
    );
    HEAP.available.store(100_000, Ordering::Relaxed);
    let module = sandbox.compile(&table).unwrap();
    let (result, _) =
        finish(&mut sandbox.start(&module, StdHost::new(""), limits, Capabilities::NONE, Entry::Default), 1 << 30);
    assert_eq!(result.exit_value, Some(-1), "{result:?}");
}

#[test]
fn a_module_is_compiled_only_if_its_worst_case_fits() {
    static HEAP: FakeHeap = FakeHeap { available: AtomicUsize::new(usize::MAX), used: AtomicUsize::new(0) };
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    sandbox.set_heap_meter(Some(&HEAP));
    let modules: Vec<Vec<u8>> = (0..3)
        .map(|index| wasm(&format!(r#"(module (func (export "run") (result i32) (i32.const {index})))"#)))
        .collect();
    for module in &modules[..2] {
        sandbox.compile(module).unwrap();
    }
    assert_eq!(sandbox.cache().len(), 2);
    // Too little for the third: the cache is emptied first (the meter here does not move, so
    // evicting frees nothing), then the module is refused.
    HEAP.available.store(modules[2].len() * jos_runtime::wasm::MAX_BYTES_PER_MODULE_BYTE - 1, Ordering::Relaxed);
    let refused = sandbox.compile(&modules[2]).err();
    assert_eq!(refused, Some(LoadError::Limit(LimitKind::DeviceMemory)));
    assert_eq!(refused.unwrap().code(), ErrorCode::Busy);
    assert!(sandbox.cache().is_empty());
    HEAP.available.store(modules[2].len() * jos_runtime::wasm::MAX_BYTES_PER_MODULE_BYTE, Ordering::Relaxed);
    assert!(sandbox.compile(&modules[2]).is_ok());
}

fn nested_global(depth: usize) -> Vec<u8> {
    // Binary, built directly: (global i32 (i32.const 1) (i32.const 1) i32.add ... ) nested
    // `depth` levels to the left.
    let mut expr = vec![0x41, 0x01];
    for _ in 1..depth {
        expr.extend_from_slice(&[0x41, 0x01, 0x6a]);
    }
    expr.push(0x0b);
    let mut global = vec![0x7f, 0x00];
    global.extend_from_slice(&expr);
    let mut section = Vec::new();
    leb(&mut section, global.len() as u32 + 1);
    section.push(1);
    section.extend_from_slice(&global);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.push(6);
    module.extend_from_slice(&section);
    module
}

fn leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[test]
fn deeply_nested_constant_expressions_are_refused_before_wasmi_recurses() {
    // Run on a thread with a small stack (64 KiB, a quarter of the device's kernel stack):
    // without the check wasmi would recurse 200,000 levels when it evaluates or drops the
    // expression.
    let result = std::thread::Builder::new()
        .stack_size(64 << 10)
        .spawn(|| {
            let mut sandbox = Sandbox::new(SandboxConfig::default());
            let deep = sandbox.compile(&nested_global(200_000)).err();
            let at_bound = sandbox.compile(&nested_global(MAX_CONST_EXPR_DEPTH as usize)).map(|_| ());
            (deep, at_bound)
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(
        matches!(result.0, Some(LoadError::Malformed(ref message)) if message.contains("nested deeper")),
        "{:?}",
        result.0
    );
    assert_eq!(result.1, Ok(()), "a module at the bound compiles");
}

#[test]
fn re_signed_modules_are_one_module() {
    use jos_abi::signature::{public_key, sign_wasm, SignerRights, TrustedSigner};
    let signers = [
        TrustedSigner { public_key: public_key(&[1; 32]), rights: SignerRights::WASM },
        TrustedSigner { public_key: public_key(&[2; 32]), rights: SignerRights::WASM },
    ];
    let plain = wasm(r#"(module (func (export "run") (result i32) (i32.const 9)))"#);
    let one = sign_wasm(&plain, &[1; 32], true).unwrap();
    let two = sign_wasm(&plain, &[2; 32], false).unwrap();
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let (first, signer_one) = sandbox.compile_signed(&one, &signers).unwrap();
    let (second, signer_two) = sandbox.compile_signed(&two, &signers).unwrap();
    assert_eq!((signer_one, signer_two), (0, 1));
    assert_eq!(first.hash(), second.hash());
    assert_eq!(first.hash(), &module_id(&plain));
    assert_eq!(sandbox.cache().len(), 1, "compiled once");
}

/// A meter whose `used` grows by 100 KB at every reading: each compiled module costs 100 KB.
struct GrowingHeap {
    available: AtomicUsize,
    used: AtomicUsize,
}

impl HeapMeter for GrowingHeap {
    fn available(&self) -> usize {
        self.available.load(Ordering::Relaxed)
    }
    fn used(&self) -> usize {
        self.used.fetch_add(100_000, Ordering::Relaxed)
    }
}

#[test]
fn a_job_is_instantiated_only_if_twice_its_module_cost_is_available() {
    static HEAP: GrowingHeap = GrowingHeap { available: AtomicUsize::new(usize::MAX), used: AtomicUsize::new(0) };
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    sandbox.set_heap_meter(Some(&HEAP));
    let module = sandbox.compile(&wasm(r#"(module (func (export "run") (result i32) (i32.const 4)))"#)).unwrap();
    assert_eq!(module.cost(), 100_000);
    HEAP.available.store(199_999, Ordering::Relaxed);
    let (result, _) = finish(
        &mut sandbox.start(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default),
        1000,
    );
    assert_eq!(result.error, Some(JobError::Load(LoadError::Limit(LimitKind::DeviceMemory))), "{result:?}");
    HEAP.available.store(200_000, Ordering::Relaxed);
    let (result, _) = finish(
        &mut sandbox.start(&module, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default),
        1000,
    );
    assert_eq!(result.exit_value, Some(4), "{result:?}");
}

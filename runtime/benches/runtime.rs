//! Host benchmarks of the runtime (a bench binary that prints figures; not a timed test).
//!
//! `cargo bench -p jos-runtime --bench runtime` prints:
//! - MD5 of "jon" N times: the same algorithm as wasm (WAT generated below, run through the
//!   sandbox with fuel metering) and as native Rust;
//! - compile + instantiate of a 1 KiB and a 100 KiB module, and instantiate from the cache;
//! - the cost of one host call (`time_us`);
//! - the cost of one fuel-slice switch (a job stepped in small slices vs one slice).
//!
//! Every module is generated here from text, so the figures are reproducible from the repository.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use jos_runtime::job::{JobStatus, StepOutcome};
use jos_runtime::wasm::{Entry, Limits, Sandbox, SandboxConfig};
use jos_runtime::{Capabilities, StdHost, Value};

const SHIFTS: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15,
    21,
];

/// MD5's sine table: floor(|sin(i + 1)| * 2^32) (RFC 1321, 3.4).
fn md5_constants() -> [u32; 64] {
    std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
}

/// MD5 of a message shorter than 56 bytes (one block), as native Rust.
fn md5_native(message: &[u8], k: &[u32; 64]) -> [u8; 16] {
    let mut block = [0u8; 64];
    block[..message.len()].copy_from_slice(message);
    block[message.len()] = 0x80;
    block[56..].copy_from_slice(&(message.len() as u64 * 8).to_le_bytes());
    let m: [u32; 16] = std::array::from_fn(|i| u32::from_le_bytes(block[i * 4..i * 4 + 4].try_into().unwrap()));
    let (mut a, mut b, mut c, mut d) = (0x6745_2301u32, 0xefcd_ab89u32, 0x98ba_dcfeu32, 0x1032_5476u32);
    for i in 0..64 {
        let (f, g) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
        a = d;
        d = c;
        c = b;
        b = b.wrapping_add(f.rotate_left(SHIFTS[i]));
    }
    let mut digest = [0u8; 16];
    for (i, word) in [
        a.wrapping_add(0x6745_2301),
        b.wrapping_add(0xefcd_ab89),
        c.wrapping_add(0x98ba_dcfe),
        d.wrapping_add(0x1032_5476),
    ]
    .iter()
    .enumerate()
    {
        digest[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    digest
}

/// The same MD5 in WAT: `run` hashes the job's input (< 56 bytes) N times, N read as the first
/// 4 input bytes (little-endian) followed by the message; writes the digest as output.
fn md5_wat(k: &[u32; 64]) -> String {
    let mut tables = String::new();
    for value in k {
        for byte in value.to_le_bytes() {
            write!(tables, "\\{byte:02x}").unwrap();
        }
    }
    let mut shifts = String::new();
    for value in SHIFTS {
        for byte in value.to_le_bytes() {
            write!(shifts, "\\{byte:02x}").unwrap();
        }
    }
    format!(
        r#"(module
  (import "jos" "input_len" (func $input_len (result i32)))
  (import "jos" "input_read" (func $input_read (param i32 i32 i32) (result i32)))
  (import "jos" "output_write" (func $output_write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "{tables}")
  (data (i32.const 512) "{shifts}")
  ;; block at 0..64, message at 1024, digest at 128
  (func $md5 (param $len i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $f i32) (local $g i32)
    (local $i i32) (local $t i32)
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 64))
    (memory.copy (i32.const 0) (i32.const 1024) (local.get $len))
    (i32.store8 (local.get $len) (i32.const 0x80))
    (i64.store (i32.const 56) (i64.shl (i64.extend_i32_u (local.get $len)) (i64.const 3)))
    (local.set $a (i32.const 0x67452301)) (local.set $b (i32.const 0xefcdab89))
    (local.set $c (i32.const 0x98badcfe)) (local.set $d (i32.const 0x10325476))
    (local.set $i (i32.const 0))
    (loop $round
      (if (i32.lt_u (local.get $i) (i32.const 16))
        (then
          (local.set $f (i32.or (i32.and (local.get $b) (local.get $c))
                                (i32.and (i32.xor (local.get $b) (i32.const -1)) (local.get $d))))
          (local.set $g (local.get $i)))
        (else (if (i32.lt_u (local.get $i) (i32.const 32))
          (then
            (local.set $f (i32.or (i32.and (local.get $d) (local.get $b))
                                  (i32.and (i32.xor (local.get $d) (i32.const -1)) (local.get $c))))
            (local.set $g (i32.and (i32.add (i32.mul (local.get $i) (i32.const 5)) (i32.const 1)) (i32.const 15))))
          (else (if (i32.lt_u (local.get $i) (i32.const 48))
            (then
              (local.set $f (i32.xor (i32.xor (local.get $b) (local.get $c)) (local.get $d)))
              (local.set $g (i32.and (i32.add (i32.mul (local.get $i) (i32.const 3)) (i32.const 5)) (i32.const 15))))
            (else
              (local.set $f (i32.xor (local.get $c) (i32.or (local.get $b) (i32.xor (local.get $d) (i32.const -1)))))
              (local.set $g (i32.and (i32.mul (local.get $i) (i32.const 7)) (i32.const 15)))))))))
      (local.set $f (i32.add (i32.add (local.get $f) (local.get $a))
                             (i32.add (i32.load offset=256 (i32.shl (local.get $i) (i32.const 2)))
                                      (i32.load (i32.shl (local.get $g) (i32.const 2))))))
      (local.set $a (local.get $d))
      (local.set $d (local.get $c))
      (local.set $c (local.get $b))
      (local.set $b (i32.add (local.get $b)
                             (i32.rotl (local.get $f) (i32.load offset=512 (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $round (i32.lt_u (local.get $i) (i32.const 64))))
    (i32.store (i32.const 128) (i32.add (local.get $a) (i32.const 0x67452301)))
    (i32.store (i32.const 132) (i32.add (local.get $b) (i32.const 0xefcdab89)))
    (i32.store (i32.const 136) (i32.add (local.get $c) (i32.const 0x98badcfe)))
    (i32.store (i32.const 140) (i32.add (local.get $d) (i32.const 0x10325476))))
  (func (export "run") (result i32)
    (local $n i32) (local $len i32)
    (local.set $len (i32.sub (call $input_len) (i32.const 4)))
    (drop (call $input_read (i32.const 1020) (i32.add (local.get $len) (i32.const 4)) (i32.const 0)))
    (local.set $n (i32.load (i32.const 1020)))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (call $md5 (local.get $len))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (drop (call $output_write (i32.const 128) (i32.const 16)))
    (i32.const 0)))"#
    )
}

/// A module of about `bytes` bytes of code: many small functions, each exported.
fn sized_module(bytes: usize) -> Vec<u8> {
    let mut text = String::from("(module (memory (export \"memory\") 1)\n");
    let mut index = 0;
    loop {
        writeln!(
            text,
            "(func (export \"f{index}\") (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const {index})) (i32.load (i32.and (local.get 0) (i32.const 1020)))))"
        )
        .unwrap();
        index += 1;
        let wasm = wat::parse_str(format!("{text}(func (export \"run\") (result i32) (i32.const 0)))")).unwrap();
        if wasm.len() >= bytes {
            return wasm;
        }
    }
}

fn best_of<T>(runs: usize, mut body: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = body();
        best = best.min(start.elapsed());
        last = Some(value);
    }
    (best, last.expect("runs > 0"))
}

fn per(duration: Duration, count: u64) -> f64 {
    duration.as_secs_f64() * 1e9 / count as f64
}

fn main() {
    let k = md5_constants();
    assert_eq!(
        md5_native(b"abc", &k),
        [0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f, 0x72],
        "RFC 1321 test vector"
    );
    let md5 = wat::parse_str(md5_wat(&k)).expect("MD5 module");
    println!("jos-runtime benchmarks (host; best of several runs)");
    println!();

    // 1. MD5 of "jon", N times.
    println!("MD5 of \"jon\" N times      wasm (sandbox)     native Rust     ratio");
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    for n in [1_000u32, 10_000, 100_000] {
        let mut input = n.to_le_bytes().to_vec();
        input.extend_from_slice(b"jon");
        let (wasm_time, result) = best_of(3, || {
            sandbox
                .run(
                    &md5,
                    StdHost::new(input.clone()),
                    Limits::default(),
                    Capabilities::NONE,
                    Entry::Default,
                    10_000_000,
                )
                .0
        });
        assert_eq!(result.status, JobStatus::Ok, "{:?}", result.error);
        assert_eq!(result.output, md5_native(b"jon", &k), "wasm and native agree");
        let (native_time, digest) = best_of(3, || {
            let mut digest = [0; 16];
            for _ in 0..n {
                digest = md5_native(black_box(b"jon"), &k);
            }
            digest
        });
        black_box(digest);
        println!(
            "  N = {n:>7}     {:>10.3} ms ({:>6.0} ns/hash)  {:>8.3} ms ({:>4.0} ns/hash)  {:>5.1}x   fuel {}",
            wasm_time.as_secs_f64() * 1e3,
            per(wasm_time, n.into()),
            native_time.as_secs_f64() * 1e3,
            per(native_time, n.into()),
            wasm_time.as_secs_f64() / native_time.as_secs_f64(),
            result.stats.fuel_used,
        );
    }
    println!();

    // 2. Instantiation.
    println!("module load                        compile + instantiate    instantiate (cached)");
    for size in [1024usize, 100 * 1024] {
        let module = sized_module(size);
        let (cold, _) = best_of(10, || {
            let mut sandbox = Sandbox::new(SandboxConfig::default());
            let compiled = sandbox.compile(&module).expect("valid");
            let mut job =
                sandbox.start(&compiled, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default);
            assert!(matches!(job.step(1000), StepOutcome::Finished(_)));
        });
        let mut sandbox = Sandbox::new(SandboxConfig::default());
        sandbox.compile(&module).expect("valid");
        let (warm, _) = best_of(10, || {
            let compiled = sandbox.compile(&module).expect("cached");
            let mut job =
                sandbox.start(&compiled, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default);
            assert!(matches!(job.step(1000), StepOutcome::Finished(_)));
        });
        println!(
            "  {:>6} bytes                   {:>10.1} us            {:>10.1} us",
            module.len(),
            cold.as_secs_f64() * 1e6,
            warm.as_secs_f64() * 1e6
        );
    }
    println!();

    // 3. One host call.
    let calls = |with_call: bool| {
        let body = if with_call { "(drop (call $time))" } else { "(nop)" };
        wat::parse_str(format!(
            r#"(module (import "jos" "time_us" (func $time (result i64)))
                 (func (export "loop") (param $n i32) (result i32)
                   (block $done (loop $l (br_if $done (i32.eqz (local.get $n)))
                     {body}
                     (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l)))
                   (i32.const 0)))"#
        ))
        .unwrap()
    };
    let count = 1_000_000u32;
    let time_loop = |module: &[u8], sandbox: &mut Sandbox| {
        best_of(5, || {
            let entry = Entry::Call { name: "loop".into(), args: vec![Value::I32(count as i32)] };
            let (result, _) =
                sandbox.run(module, StdHost::new(""), Limits::default(), Capabilities::NONE, entry, u64::MAX);
            assert_eq!(result.status, JobStatus::Ok);
        })
        .0
    };
    let with = time_loop(&calls(true), &mut sandbox);
    let without = time_loop(&calls(false), &mut sandbox);
    println!(
        "host call (time_us)                {:.1} ns per call ({} calls: {:.1} ms with, {:.1} ms without)",
        per(with.saturating_sub(without), count.into()),
        count,
        with.as_secs_f64() * 1e3,
        without.as_secs_f64() * 1e3
    );

    // 4. One fuel-slice switch.
    let module = calls(false);
    let compiled = sandbox.compile(&module).expect("valid");
    let slice = 1_000u64;
    let run_sliced = |slice: u64| {
        best_of(5, || {
            let entry = Entry::Call { name: "loop".into(), args: vec![Value::I32(count as i32)] };
            let mut job = sandbox.start(&compiled, StdHost::new(""), Limits::default(), Capabilities::NONE, entry);
            loop {
                if let StepOutcome::Finished(result) = job.step(slice) {
                    break result.stats.slices;
                }
            }
        })
    };
    let (whole, _) = run_sliced(u64::MAX);
    let (sliced, slices) = run_sliced(slice);
    println!(
        "fuel slice switch                  {:.1} ns per switch ({} slices of {} fuel: {:.1} ms, one slice: {:.1} ms)",
        per(sliced.saturating_sub(whole), slices - 1),
        slices,
        slice,
        sliced.as_secs_f64() * 1e3,
        whole.as_secs_f64() * 1e3
    );
}

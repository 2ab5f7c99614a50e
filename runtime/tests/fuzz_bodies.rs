//! Runs the fuzz bodies of `jos_runtime::fuzzing` briefly: over the seed corpus in
//! `fuzz/corpus/{wasm,native}/` and over deterministic mutations of the seeds. Long runs are by
//! hand with cargo-fuzz (docs/runtime.md).

use std::path::PathBuf;

use jos_abi::blob::{Arch, BlobFlags, BlobRepr, Import, Table};
use jos_abi::fuzzing::{mutate, Rng};
use jos_abi::signature::sign_blob;
use jos_abi::{AbiVersion, SyscallId};
use jos_runtime::fuzzing::{self, FUZZ_SIGNER_SEED};
use jos_runtime::wasm::{Sandbox, SandboxConfig};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
}

fn wasm_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let module = |text: &str| wat::parse_str(text).expect("seed module");
    vec![
        (
            "seed-echo",
            module(
                r#"(module
                  (import "jos" "input_len" (func $len (result i32)))
                  (import "jos" "input_read" (func $read (param i32 i32 i32) (result i32)))
                  (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
                  (import "jos" "log" (func $log (param i32 i32 i32) (result i32)))
                  (import "jos" "yield" (func $yield (result i32)))
                  (memory (export "memory") 1 4)
                  (table 2 funcref)
                  (data (i32.const 64) "log line")
                  (func (export "run") (result i32)
                    (local $n i32)
                    (local.set $n (call $read (i32.const 0) (call $len) (i32.const 0)))
                    (drop (call $log (i32.const 3) (i32.const 64) (i32.const 8)))
                    (drop (call $yield))
                    (drop (call $write (i32.const 0) (local.get $n)))
                    (drop (memory.grow (i32.const 1)))
                    (local.get $n)))"#,
            ),
        ),
        (
            "seed-loop",
            module(
                r#"(module (global $g (mut i32) (i32.const 0))
                  (func $f (param i32) (result i32)
                    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 1))
                      (else (i32.mul (local.get 0) (call $f (i32.sub (local.get 0) (i32.const 1)))))))
                  (func (export "_start")
                    (loop $l (global.set $g (i32.add (global.get $g) (call $f (i32.const 10))))
                      (br_if $l (i32.lt_u (global.get $g) (i32.const 100000))))))"#,
            ),
        ),
        (
            "seed-start-trap",
            module(
                r#"(module (func $s (i32.div_u (i32.const 1) (i32.const 0)) drop) (start $s) (func (export "run") (result i32) (i32.const 0)))"#,
            ),
        ),
    ]
}

fn native_seeds() -> Vec<(&'static str, Vec<u8>)> {
    const TEXT: [u8; 16] = [0x00, 0x00, 0xa0, 0xe3, 0, 0, 0, 0, 0x1e, 0xff, 0x2f, 0xe1, 16, 0, 0, 0];
    let imports = [Import { slot: 4, syscall: SyscallId::OutputWrite }];
    let relocations = [12u32];
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &TEXT,
        rodata: b"jos!",
        data: &[0; 4],
        bss_len: 16,
        align: 16,
        imports: Table::from_slice(&imports),
        relocations: Table::from_slice(&relocations),
        wasm_source: None,
    };
    let mut unsigned = vec![0; repr.buffer_len()];
    repr.emit(&mut unsigned).expect("emits");
    let signed = sign_blob(&unsigned, &FUZZ_SIGNER_SEED, true).expect("signs");
    vec![("seed-signed", signed), ("seed-unsigned", unsigned)]
}

/// Checks the committed seed files against the generated seeds (or writes them with
/// `JOS_WRITE_CORPUS=1`), then runs `body` over the corpus directory and `count` mutations.
fn exercise(target: &str, seeds: Vec<(&'static str, Vec<u8>)>, body: fn(&[u8]), count: usize) {
    let dir = corpus_dir(target);
    if std::env::var_os("JOS_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in &seeds {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{target}/{name}: {e} (regenerate with JOS_WRITE_CORPUS=1)"));
        assert_eq!(&committed, bytes, "{target}/{name} is stale (regenerate with JOS_WRITE_CORPUS=1)");
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        body(&std::fs::read(entry.unwrap().path()).unwrap());
        files += 1;
    }
    assert!(files >= seeds.len());
    let mut rng = Rng::new(0x6a6f_735f_6675_7a7a);
    for i in 0..count {
        let (_, seed) = &seeds[i % seeds.len()];
        body(&mutate(seed, &mut rng));
    }
}

#[test]
fn wasm_body_over_corpus_and_mutations() {
    let seeds = wasm_seeds();
    // The mutations must reach both accepted and refused modules for the run to mean anything.
    let mut rng = Rng::new(7);
    let mut sandbox = Sandbox::new(SandboxConfig { cache_budget_bytes: 0, ..SandboxConfig::default() });
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..300 {
        match sandbox.compile(&mutate(&seeds[i % seeds.len()].1, &mut rng)) {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 10 && refused > 10, "accepted {accepted}, refused {refused}");
    exercise("wasm", seeds, fuzzing::wasm, 3000);
}

#[test]
fn native_body_over_corpus_and_mutations() {
    exercise("native", native_seeds(), fuzzing::native, 5000);
}

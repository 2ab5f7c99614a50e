//! The wasm linker against the syscall table: a module that imports every call of
//! `jos_abi::syscall::SYSCALLS`, by the table's names and signatures, links and runs, so the
//! host functions `runtime/src/wasm/imports.rs` defines have exactly the table's signatures (a
//! host function of another type fails instantiation); and a call the table lacks is refused.

use jos_abi::syscall::{ValueType, SYSCALLS, WASM_IMPORT_MODULE};
use jos_runtime::job::{JobError, JobStatus, LoadError};
use jos_runtime::wasm::{Entry, Limits, Sandbox, SandboxConfig};
use jos_runtime::{Capabilities, StdHost};

fn wat_type(ty: &ValueType) -> &'static str {
    match ty {
        ValueType::I32 => "i32",
        ValueType::I64 => "i64",
    }
}

/// A module importing every call of the table, then `extra` imports, with a `run` returning 7.
fn every_call_module(extra: &str) -> Vec<u8> {
    let mut text = String::from("(module\n");
    for call in SYSCALLS {
        let params: Vec<&str> = call.signature.params.iter().map(wat_type).collect();
        let results: Vec<&str> = call.signature.results.iter().map(wat_type).collect();
        text += &format!(
            "  (import \"{WASM_IMPORT_MODULE}\" \"{}\" (func (param {}) (result {})))\n",
            call.name,
            params.join(" "),
            results.join(" ")
        );
    }
    text += extra;
    text += "  (memory (export \"memory\") 1)\n  (func (export \"run\") (result i32) (i32.const 7)))";
    wat::parse_str(&text).expect("generated module is valid text")
}

fn run(module: &[u8]) -> jos_runtime::JobResult {
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let capabilities = Capabilities { network: true, screen: true, gpio: true };
    sandbox.run(module, StdHost::new(""), Limits::default(), capabilities, Entry::Default, 100_000).0
}

#[test]
fn every_call_of_the_table_links_with_the_tables_signature() {
    let result = run(&every_call_module(""));
    assert_eq!((result.status, &result.error, result.exit_value), (JobStatus::Ok, &None, Some(7)), "{result:?}");
}

#[test]
fn a_call_the_table_lacks_is_refused() {
    let result = run(&every_call_module("  (import \"jos\" \"open\" (func (param i32) (result i32)))\n"));
    assert_eq!(result.status, JobStatus::Rejected);
    assert_eq!(
        result.error,
        Some(JobError::Load(LoadError::UnknownImport { module: "jos".into(), name: "open".into() }))
    );
}

//! Fuzz target: wasm modules through the sandbox (compile, instantiate, run a few slices); the
//! body is `jos_runtime::fuzzing::wasm`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_runtime::fuzzing::wasm(data));

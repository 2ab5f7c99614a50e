//! Fuzz target: the signature parsers and verifier (jos_abi::signature); the body is `jos_abi::fuzzing::signature`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::signature(data));

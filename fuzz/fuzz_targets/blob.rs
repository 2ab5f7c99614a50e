//! Fuzz target: the native blob parser (jos_abi::blob); the body is `jos_abi::fuzzing::blob`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::blob(data));

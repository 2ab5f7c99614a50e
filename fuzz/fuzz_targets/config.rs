//! Fuzz target: the boot configuration parser (jos_abi::config); the body is `jos_abi::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::config(data));

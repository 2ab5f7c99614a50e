//! Fuzz target: the fleet's broker settings and status messages (jos_abi::fleet); the body is `jos_abi::fuzzing::fleet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::fleet(data));

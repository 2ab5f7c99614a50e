//! Fuzz target: the Pi firmware's boot tag list and command line (jos_abi::atags); the body is
//! `jos_abi::fuzzing::atags`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::atags(data));

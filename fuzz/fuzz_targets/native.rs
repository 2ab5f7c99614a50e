//! Fuzz target: the native blob loader up to the jump; the body is `jos_runtime::fuzzing::native`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_runtime::fuzzing::native(data));

//! Fuzz target: the fleet's job, job input and result messages (jos_abi::fleet_job); the body is `jos_abi::fuzzing::fleet_job`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::fleet_job(data));

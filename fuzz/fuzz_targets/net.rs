//! Fuzz target: the network pre-filter and the UDP echo fast path on arbitrary frames
//! (`jos_kcore::net::classify`, `echo_reply`); the body is `jos_kcore::fuzzing::net`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_kcore::fuzzing::net(data));

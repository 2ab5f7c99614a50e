//! Fuzz target: the offload server's whole receive path (connections, Noise handshakes,
//! encrypted and raw messages, pushes, invokes, polls, discovery) driven by a script; the body
//! is `jos_offload::fuzzing::server`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_offload::fuzzing::server(data));

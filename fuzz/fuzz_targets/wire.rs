//! Fuzz target: the wire decoders: frames, messages, discovery (jos_abi::wire); the body is `jos_abi::fuzzing::wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jos_abi::fuzzing::wire(data));

//! Fuzz target bodies (feature `fuzzing`): arbitrary bytes as a wasm module (compile,
//! instantiate, run a few slices) and as a native blob (the whole loader up to the jump). A panic,
//! a hang or a broken invariant is a bug.
//!
//! The cargo-fuzz targets `wasm` and `native` in `fuzz/` call these; the host test
//! `runtime/tests/fuzz_bodies.rs` runs them over the seed corpus in `fuzz/corpus/{wasm,native}/`
//! plus deterministic mutations, so the README's test command exercises them briefly.

use jos_abi::signature::{public_key, SignerRights, TrustedSigner};
use jos_abi::syscall::SYSCALL_TABLE_LEN;
use jos_abi::ErrorCode;

use crate::host::{Capabilities, Host};
use crate::job::{JobStatus, StepOutcome};
use crate::native::{load_at, CacheMaintenance, DispatchTable};
use crate::wasm::{Entry, Limits, Sandbox, SandboxConfig, PAGE_BYTES};

/// The seed of the key the `native` body trusts (with every right), so signed seeds load.
pub const FUZZ_SIGNER_SEED: [u8; 32] = [0x5e; 32];

/// Fuel a fuzzed wasm job may use in all.
pub const FUZZ_FUEL: u64 = 200_000;

/// A host with fixed input and clock, so runs are reproducible.
struct FuzzHost;

impl Host for FuzzHost {
    fn input_len(&self) -> usize {
        5
    }
    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let input = b"Echo1".get(offset..).unwrap_or(&[]);
        let count = input.len().min(buffer.len());
        buffer[..count].copy_from_slice(&input[..count]);
        count
    }
    fn time_us(&self) -> u64 {
        0
    }
    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
        buffer.fill(0x42);
        Ok(())
    }
}

/// Arbitrary bytes as a wasm module: compile (validation, import checks, `jos.abi`),
/// instantiate and run `run`/`_start` in slices of 10 000 fuel, within small limits.
pub fn wasm(data: &[u8]) {
    let config = SandboxConfig { max_module_bytes: 256 * 1024, cache_budget_bytes: 0, ..SandboxConfig::default() };
    let mut sandbox = Sandbox::new(config);
    let Ok(module) = sandbox.compile(data) else { return };
    let limits = Limits {
        max_memory_pages: 16,
        max_table_elements: 1000,
        max_output_bytes: 4096,
        max_log_bytes: 4096,
        fuel_budget: FUZZ_FUEL,
        ..Limits::default()
    };
    let mut job = sandbox.start(&module, FuzzHost, limits, Capabilities::ALL, Entry::Default);
    // The budget bounds the slices: each slice uses at least one unit of fuel, or ends the job.
    let mut steps = 0u64;
    let result = loop {
        if let StepOutcome::Finished(result) = job.step(10_000) {
            break result;
        }
        steps += 1;
        assert!(steps <= FUZZ_FUEL, "a job must end within its fuel budget");
    };
    assert_eq!(result.status == JobStatus::Ok, result.error.is_none());
    assert!(result.stats.fuel_used <= FUZZ_FUEL);
    assert!(result.output.len() <= 4096);
    assert!(result.stats.peak_memory_bytes <= 16 * PAGE_BYTES);
    assert!(result.logs.iter().all(|line| line.text.len() <= 256 * 3), "lossy UTF-8 at most triples");
}

struct NoCache;

impl CacheMaintenance for NoCache {
    fn sync_code(&mut self, _address: usize, _len: usize) {}
}

/// Arbitrary bytes as a native blob: the whole loader up to the jump, into a 64 KiB region.
pub fn native(data: &[u8]) {
    let signers = [
        TrustedSigner { public_key: public_key(&FUZZ_SIGNER_SEED), rights: SignerRights::ALL },
        TrustedSigner { public_key: public_key(&[0x11; 32]), rights: SignerRights::WASM },
    ];
    let mut dispatch: DispatchTable = [0; SYSCALL_TABLE_LEN];
    for (id, slot) in dispatch.iter_mut().enumerate().skip(1) {
        *slot = 0x8000 + id * 4;
    }
    let mut region = alloc::vec![0u8; 64 * 1024];
    let address = 0x0010_0000;
    if let Ok(loaded) = load_at(data, &signers, &mut region, address, &dispatch, &mut NoCache) {
        assert!(loaded.offset + loaded.memory_len <= region.len());
        assert!(loaded.base >= address && loaded.entry >= loaded.base);
        assert!(((loaded.entry - loaded.base) as usize) < loaded.memory_len);
        assert!(loaded.loaded_len <= loaded.memory_len);
    }
}

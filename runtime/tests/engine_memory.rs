//! The sandbox's memory stays bounded over any sequence of modules: compiled code is freed when a
//! module leaves the cache (each module has its own wasmi engine), and re-signed copies of one
//! module are one cache entry. Live heap bytes are counted by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use jos_runtime::wasm::{Entry, Limits, Sandbox, SandboxConfig};
use jos_runtime::{Capabilities, StdHost};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `pointer` came from `alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A distinct module of about 20 KiB of code (`index` in every constant).
fn module(index: u32) -> Vec<u8> {
    let body: String = (0..2000)
        .map(|step| format!("(local.set 0 (i32.add (local.get 0) (i32.const {})))\n", index * 7919 + step))
        .collect();
    wat::parse_str(format!(r#"(module (func (export "run") (result i32) (local i32) {body} (local.get 0)))"#)).unwrap()
}

/// One test, so that no other test allocates while the figures are read.
#[test]
fn compiled_code_is_freed_with_its_module() {
    let mut sandbox = Sandbox::new(SandboxConfig { cache_budget_bytes: 1 << 20, ..SandboxConfig::default() });
    let modules: Vec<Vec<u8>> = (0..300).map(module).collect();
    let run = |sandbox: &mut Sandbox, bytes: &[u8]| {
        let (result, _) =
            sandbox.run(bytes, StdHost::new(""), Limits::default(), Capabilities::NONE, Entry::Default, 1 << 30);
        assert!(result.exit_value.is_some(), "{result:?}");
    };
    // The cache (1 MiB of estimated cost, about 12 of these modules) fills and cycles.
    for bytes in &modules[..50] {
        run(&mut sandbox, bytes);
    }
    let after_50 = LIVE.load(Ordering::Relaxed);
    for bytes in &modules[50..] {
        run(&mut sandbox, bytes);
    }
    let after_300 = LIVE.load(Ordering::Relaxed);
    // Each module compiles to about 50 KiB: keeping the code of the 250 evicted ones would add
    // more than 12 MiB.
    assert!(after_300 <= after_50 + (after_50 / 10), "live heap after 50 modules {after_50}, after 300 {after_300}");

    // Re-signed copies of one module (other keys, extra signatures) are compiled once.
    use jos_abi::signature::{public_key, sign_wasm, SignerRights, TrustedSigner};
    let seeds: Vec<[u8; 32]> = (0..100u8).map(|index| [index; 32]).collect();
    let signers: Vec<TrustedSigner> =
        seeds.iter().map(|seed| TrustedSigner { public_key: public_key(seed), rights: SignerRights::WASM }).collect();
    let variants: Vec<Vec<u8>> = seeds.iter().map(|seed| sign_wasm(&modules[0], seed, true).unwrap()).collect();
    let (first, _) = sandbox.compile_signed(&variants[0], &signers).unwrap();
    let entries = sandbox.cache().len();
    let one = LIVE.load(Ordering::Relaxed);
    for variant in &variants[1..] {
        let (module, _) = sandbox.compile_signed(variant, &signers).unwrap();
        assert_eq!(module.hash(), first.hash());
    }
    let hundred = LIVE.load(Ordering::Relaxed);
    assert_eq!(sandbox.cache().len(), entries);
    assert!(hundred <= one + 4096, "100 variants: {hundred} bytes live, one: {one}");
}

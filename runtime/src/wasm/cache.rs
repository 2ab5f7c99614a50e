//! Compiled modules kept by their identity ([`module_id`]), within a memory budget, evicting the
//! least recently used.
//!
//! The cost of an entry is what the sandbox says it is: on the device the heap bytes compiling
//! the module retained (its own wasmi engine with the compiled code, measured through the
//! [`HeapMeter`](crate::host::HeapMeter)), elsewhere an estimate from the module's length. The
//! cache is a small vector searched linearly: a device holds a handful of modules.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

/// A SHA-256 digest naming a module.
pub type ModuleHash = [u8; 32];

/// The SHA-256 of `bytes`.
pub fn module_hash(bytes: &[u8]) -> ModuleHash {
    Sha256::digest(bytes).into()
}

/// A module's identity: the SHA-256 of what its signature covers, every byte after the preamble
/// and after the `signature` section if the module's first section is one (the content
/// `jos_abi::signature::verify_wasm` checks: [`jos_abi::signature::Verified::content_hash`]).
/// A module and the same module signed have the same identity. Bytes that do not start with the
/// wasm preamble are hashed whole.
///
/// Re-signing a module, or adding signature sets and entries to its signature section, changes
/// its SHA-256 but not its identity: the sandbox caches and finds it as the same module (what
/// runs is the same code, since a custom section does not change what a module does).
pub fn module_id(bytes: &[u8]) -> ModuleHash {
    match jos_abi::signature::split_wasm(bytes) {
        Ok(signed) => module_hash(signed.content),
        Err(_) => module_hash(bytes.strip_prefix(&jos_abi::signature::WASM_PREAMBLE[..]).unwrap_or(bytes)),
    }
}

struct Entry<M> {
    hash: ModuleHash,
    module: M,
    cost: usize,
    last_used: u64,
}

/// An LRU cache of values `M` keyed by [`ModuleHash`], bounded by the sum of their costs.
pub struct ModuleCache<M> {
    entries: Vec<Entry<M>>,
    budget: usize,
    used: usize,
    clock: u64,
}

impl<M: Clone> ModuleCache<M> {
    /// An empty cache holding at most `budget` bytes of modules.
    pub fn new(budget: usize) -> Self {
        Self { entries: Vec::new(), budget, used: 0, clock: 0 }
    }

    /// The module with this hash, marking it most recently used.
    pub fn get(&mut self, hash: &ModuleHash) -> Option<M> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.iter_mut().find(|entry| &entry.hash == hash).map(|entry| {
            entry.last_used = clock;
            entry.module.clone()
        })
    }

    /// Keeps `module` under `hash`, evicting least recently used entries until it fits. A module
    /// costlier than the whole budget is kept alone (every other entry is evicted), so that a
    /// module that was accepted can be run; returns whether others had to be evicted for it.
    pub fn insert(&mut self, hash: ModuleHash, module: M, cost: usize) -> bool {
        self.remove(&hash);
        let evicted = self.used + cost > self.budget;
        while self.used + cost > self.budget && self.evict_oldest() {}
        self.clock += 1;
        self.entries.push(Entry { hash, module, cost, last_used: self.clock });
        self.used += cost;
        evicted
    }

    /// Evicts the least recently used module; returns whether there was one.
    pub fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.entries.iter().enumerate().min_by_key(|(_, entry)| entry.last_used).map(|(i, _)| i)
        else {
            return false;
        };
        let evicted = self.entries.swap_remove(oldest);
        self.used -= evicted.cost;
        true
    }

    /// Drops the module with this hash; returns whether it was there.
    pub fn remove(&mut self, hash: &ModuleHash) -> bool {
        match self.entries.iter().position(|entry| &entry.hash == hash) {
            Some(index) => {
                let removed = self.entries.swap_remove(index);
                self.used -= removed.cost;
                true
            }
            None => false,
        }
    }

    /// Whether a module with this hash is cached (does not change its recency).
    pub fn contains(&self, hash: &ModuleHash) -> bool {
        self.entries.iter().any(|entry| &entry.hash == hash)
    }

    /// The bytes of budget in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The number of cached modules.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(module_hash(b"abc")[..8], [0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea]);
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut cache = ModuleCache::new(100);
        assert!(!cache.insert([1; 32], 'a', 40));
        assert!(!cache.insert([2; 32], 'b', 40));
        assert_eq!(cache.get(&[1; 32]), Some('a')); // 'a' is now more recent than 'b'
        assert!(cache.insert([3; 32], 'c', 40)); // evicts 'b'
        assert!(cache.contains(&[1; 32]));
        assert!(!cache.contains(&[2; 32]));
        assert!(cache.contains(&[3; 32]));
        assert_eq!(cache.used(), 80);
        assert!(cache.insert([4; 32], 'd', 101), "larger than the whole budget: kept alone");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), 101);
        assert!(cache.insert([5; 32], 'e', 100)); // evicts 'd'
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), 100);
        assert!(cache.evict_oldest());
        assert!(!cache.evict_oldest());
        assert!(!cache.insert([4; 32], 'd', 100));
        assert!(cache.remove(&[4; 32]));
        assert!(cache.is_empty());
        assert_eq!(cache.used(), 0);
    }

    #[test]
    fn identity_ignores_the_signature_section() {
        let module = b"\0asm\x01\0\0\0\x00\x04\x03abc";
        assert_eq!(module_id(module), module_hash(&module[8..]), "no signature section: all after the preamble");
        assert_eq!(module_id(b"not wasm"), module_hash(b"not wasm"));
        let seed = [3; 32];
        let signed = jos_abi::signature::sign_wasm(module, &seed, true).unwrap();
        let resigned = jos_abi::signature::sign_wasm(module, &[4; 32], false).unwrap();
        assert_ne!(module_hash(&signed), module_hash(&resigned));
        assert_eq!(module_id(&signed), module_id(module));
        assert_eq!(module_id(&resigned), module_id(module));
        let verified = jos_abi::signature::verify_wasm(
            &signed,
            &[jos_abi::signature::TrustedSigner {
                public_key: jos_abi::signature::public_key(&seed),
                rights: jos_abi::signature::SignerRights::WASM,
            }],
        )
        .unwrap();
        assert_eq!(verified.content_hash, module_id(&signed));
    }

    #[test]
    fn reinserting_replaces() {
        let mut cache = ModuleCache::new(100);
        cache.insert([1; 32], 'a', 60);
        cache.insert([1; 32], 'b', 60);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.used(), 60);
        assert_eq!(cache.get(&[1; 32]), Some('b'));
    }
}

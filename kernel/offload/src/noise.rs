//! Noise IK responder set-up: the protocol name, prologue, and a crypto resolver whose randomness
//! comes from an [`Entropy`] source (the BCM2835 hardware RNG on the device).

use alloc::boxed::Box;

use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// The Noise protocol both sides speak.
pub const NOISE_PATTERN: &str = "Noise_IK_25519_ChaChaPoly_SHA256";

/// The prologue both sides mix into the handshake hash.
pub const PROLOGUE: &[u8] = b"jos offload v1";

/// Length of an X25519 key.
pub const KEY_LEN: usize = 32;

/// A source of cryptographically strong random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `buffer` entirely; `false` if the source failed (the handshake is then refused).
    fn fill(&self, buffer: &mut [u8]) -> bool;
}

/// Snow's `Random` over an [`Entropy`].
struct EntropyRandom(&'static dyn Entropy);

impl Random for EntropyRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        if self.0.fill(dest) {
            Ok(())
        } else {
            Err(snow::Error::Rng)
        }
    }
}

/// Snow's default pure-Rust primitives plus randomness from an [`Entropy`].
pub struct Resolver {
    entropy: &'static dyn Entropy,
}

impl Resolver {
    /// A resolver drawing random bytes from `entropy`.
    pub fn new(entropy: &'static dyn Entropy) -> Self {
        Resolver { entropy }
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(EntropyRandom(self.entropy)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// The parsed [`NOISE_PATTERN`].
pub fn params() -> NoiseParams {
    // The pattern is a constant snow knows; parsing cannot fail.
    NOISE_PATTERN.parse().unwrap_or_else(|_| unreachable!("constant Noise pattern"))
}

/// A responder handshake for the device's static secret.
pub fn responder(secret: &[u8; KEY_LEN], entropy: &'static dyn Entropy) -> Result<snow::HandshakeState, snow::Error> {
    snow::Builder::with_resolver(params(), Box::new(Resolver::new(entropy)))
        .local_private_key(secret)?
        .prologue(PROLOGUE)?
        .build_responder()
}

/// The X25519 public key of `secret`.
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .unwrap_or_else(|| unreachable!("curve25519 is compiled in"));
    dh.set(secret);
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(dh.pubkey());
    key
}

#[cfg(feature = "std")]
/// Randomness from the operating system (`/dev/urandom`), for host tools and tests.
pub struct OsEntropy;

#[cfg(feature = "std")]
impl Entropy for OsEntropy {
    fn fill(&self, buffer: &mut [u8]) -> bool {
        use std::io::Read;
        std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(buffer)).is_ok()
    }
}

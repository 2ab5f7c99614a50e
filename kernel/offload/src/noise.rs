//! Noise IK responder set-up: the protocol name, prologue, and a crypto resolver whose randomness
//! comes from an [`Entropy`] source (the BCM2835 hardware RNG on the device) and whose X25519
//! reuses the static-static results ([`StaticShared`]) computed when the server starts. The
//! responder's resolver is strict: its static key computes one X25519 per handshake (`es`) and
//! answers `ss` only for trusted clients, so a stranger's Hello costs one X25519, not two.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

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

/// The X25519 results of one static secret with each trusted client's static key: the `ss` term
/// of Noise IK, the same in every handshake between the same two keys. Computing them once when
/// the server starts takes one of the responder's five X25519 multiplications (about 1.7 ms of
/// guest time under QEMU) out of every handshake.
pub struct StaticShared {
    /// Public key of the secret the results belong to.
    owner: [u8; KEY_LEN],
    /// (client public key, X25519(secret, client key)).
    results: Vec<([u8; KEY_LEN], [u8; KEY_LEN])>,
}

impl StaticShared {
    /// Computes X25519(`secret`, client) for every key in `clients`.
    pub fn new(secret: &[u8; KEY_LEN], clients: &[[u8; KEY_LEN]]) -> Self {
        let mut dh = x25519();
        dh.set(secret);
        let mut owner = [0u8; KEY_LEN];
        owner.copy_from_slice(dh.pubkey());
        let mut results = Vec::with_capacity(clients.len());
        for client in clients {
            let mut shared = [0u8; KEY_LEN];
            // X25519 of 32-byte keys cannot fail in snow's implementation; a failure leaves the
            // key out and its handshakes compute `ss` as usual.
            if dh.dh(client, &mut shared).is_ok() {
                results.push((*client, shared));
            }
        }
        StaticShared { owner, results }
    }

    /// No results (every X25519 is computed in the handshake).
    pub fn none() -> Self {
        StaticShared { owner: [0; KEY_LEN], results: Vec::new() }
    }

    /// The result for `remote` when `owner` is the secret's public key. Snow passes a remote key
    /// as its whole key buffer (56 bytes, room for X448): only the first [`KEY_LEN`] bytes are
    /// the X25519 key.
    fn lookup(&self, owner: &[u8], remote: &[u8]) -> Option<&[u8; KEY_LEN]> {
        if owner != self.owner {
            return None;
        }
        let remote = remote.get(..KEY_LEN)?;
        self.results.iter().find(|(client, _)| client[..] == *remote).map(|(_, shared)| shared)
    }
}

/// Snow's X25519 with the results of [`StaticShared`]: when its key is the static secret those
/// belong to (set with [`Dh::set`]; never a generated ephemeral key) and the remote key is a
/// trusted client's, `dh` answers from the table; everything else goes to snow's implementation.
///
/// `strict` (the responder's resolver): a static key computes at most one X25519 itself. The IK
/// responder uses its static key twice while it reads the first message: `es` (with the
/// client's fresh ephemeral key, computed) and then `ss` (with the client's static key, which a
/// trusted client's is in the table). A second computation can only be `ss` for a key that is
/// not trusted: it is refused (`snow::Error::Dh`), so the handshake fails there and a stranger's
/// Hello costs one X25519 instead of two. The answers for trusted keys are unchanged.
struct SharedDh {
    inner: Box<dyn Dh>,
    shared: Arc<StaticShared>,
    is_static: bool,
    strict: bool,
    /// Whether the static key has computed its one X25519 (with `strict`).
    computed: AtomicBool,
}

impl Dh for SharedDh {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn pub_len(&self) -> usize {
        self.inner.pub_len()
    }

    fn priv_len(&self) -> usize {
        self.inner.priv_len()
    }

    fn set(&mut self, privkey: &[u8]) {
        self.inner.set(privkey);
        self.is_static = true;
        self.computed.store(false, Ordering::Relaxed);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        self.is_static = false;
        self.inner.generate(rng)
    }

    fn pubkey(&self) -> &[u8] {
        self.inner.pubkey()
    }

    fn privkey(&self) -> &[u8] {
        self.inner.privkey()
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        if self.is_static && out.len() >= KEY_LEN {
            if let Some(shared) = self.shared.lookup(self.inner.pubkey(), pubkey) {
                out[..KEY_LEN].copy_from_slice(shared);
                return Ok(());
            }
        }
        if self.is_static && self.strict && self.computed.swap(true, Ordering::Relaxed) {
            return Err(snow::Error::Dh);
        }
        self.inner.dh(pubkey, out)
    }
}

/// Snow's pure-Rust X25519.
fn x25519() -> Box<dyn Dh> {
    DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap_or_else(|| unreachable!("curve25519 is compiled in"))
}

/// Snow's default pure-Rust primitives plus randomness from an [`Entropy`] and the static
/// results of a [`StaticShared`].
pub struct Resolver {
    entropy: &'static dyn Entropy,
    shared: Arc<StaticShared>,
    strict: bool,
}

impl Resolver {
    /// A resolver drawing random bytes from `entropy`, computing every X25519.
    pub fn new(entropy: &'static dyn Entropy) -> Self {
        Resolver { entropy, shared: Arc::new(StaticShared::none()), strict: false }
    }

    /// A resolver drawing random bytes from `entropy` that takes `ss` from `shared`.
    pub fn with_shared(entropy: &'static dyn Entropy, shared: Arc<StaticShared>) -> Self {
        Resolver { entropy, shared, strict: false }
    }

    /// The device's resolver: takes `ss` from `shared`, and its static key computes one X25519
    /// per handshake at most (a static-static result for a key outside `shared` is refused), so
    /// only the clients in `shared` can complete an IK handshake with it.
    pub fn strict(entropy: &'static dyn Entropy, shared: Arc<StaticShared>) -> Self {
        Resolver { entropy, shared, strict: true }
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(EntropyRandom(self.entropy)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        let inner = DefaultResolver.resolve_dh(choice)?;
        Some(Box::new(SharedDh {
            inner,
            shared: Arc::clone(&self.shared),
            is_static: false,
            strict: self.strict,
            computed: AtomicBool::new(false),
        }))
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

/// A responder handshake for the device's static secret, taking `ss` from `shared`: only an
/// initiator whose static key is in `shared` can complete it ([`Resolver::strict`]).
pub fn responder(
    secret: &[u8; KEY_LEN],
    entropy: &'static dyn Entropy,
    shared: &Arc<StaticShared>,
) -> Result<snow::HandshakeState, snow::Error> {
    snow::Builder::with_resolver(params(), Box::new(Resolver::strict(entropy, Arc::clone(shared))))
        .local_private_key(secret)?
        .prologue(PROLOGUE)?
        .build_responder()
}

/// The X25519 public key of `secret`.
pub fn public_key(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let mut dh = x25519();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed bytes standing in for randomness.
    struct Counting;

    impl Entropy for Counting {
        fn fill(&self, buffer: &mut [u8]) -> bool {
            for (i, byte) in buffer.iter_mut().enumerate() {
                *byte = (i as u8).wrapping_mul(31).wrapping_add(7);
            }
            true
        }
    }

    fn computed(secret: &[u8; KEY_LEN], remote: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
        let mut dh = x25519();
        dh.set(secret);
        let mut out = [0u8; KEY_LEN];
        dh.dh(remote, &mut out).unwrap();
        out
    }

    #[test]
    fn static_results_equal_computed_ones_and_apply_only_to_their_secret() {
        let device = [3u8; KEY_LEN];
        let other_device = [4u8; KEY_LEN];
        let clients = [public_key(&[5u8; KEY_LEN]), public_key(&[6u8; KEY_LEN])];
        let stranger = public_key(&[7u8; KEY_LEN]);
        let shared = Arc::new(StaticShared::new(&device, &clients));
        assert_eq!(shared.results.len(), 2);
        for client in &clients {
            assert_eq!(shared.lookup(&public_key(&device), client), Some(&computed(&device, client)));
            assert_eq!(shared.lookup(&public_key(&other_device), client), None, "another secret's table");
        }
        assert_eq!(shared.lookup(&public_key(&device), &stranger), None);
        // Snow hands `dh` its whole remote-key buffer (56 bytes): the table still answers.
        let mut snow_buffer = [0u8; 56];
        snow_buffer[..KEY_LEN].copy_from_slice(&clients[0]);
        assert_eq!(shared.lookup(&public_key(&device), &snow_buffer), Some(&computed(&device, &clients[0])));

        let resolver = Resolver::with_shared(&Counting, Arc::clone(&shared));
        let dh_with = |secret: &[u8; KEY_LEN], remote: &[u8; KEY_LEN]| {
            let mut dh = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
            dh.set(secret);
            let mut out = [0u8; KEY_LEN];
            dh.dh(remote, &mut out).unwrap();
            out
        };
        // Same answers through the table, for strangers and for another secret.
        assert_eq!(dh_with(&device, &clients[1]), computed(&device, &clients[1]));
        assert_eq!(dh_with(&device, &stranger), computed(&device, &stranger));
        assert_eq!(dh_with(&other_device, &clients[0]), computed(&other_device, &clients[0]));

        // A generated (ephemeral) key never answers from the table.
        let mut ephemeral = resolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        let mut random = resolver.resolve_rng().unwrap();
        ephemeral.generate(&mut *random).unwrap();
        let mut secret = [0u8; KEY_LEN];
        secret.copy_from_slice(ephemeral.privkey());
        let mut out = [0u8; KEY_LEN];
        ephemeral.dh(&clients[0], &mut out).unwrap();
        assert_eq!(out, computed(&secret, &clients[0]));
    }

    /// A Noise IK initiator for `client_secret` against `device_public`.
    fn initiator(client_secret: &[u8; KEY_LEN], device_public: &[u8; KEY_LEN]) -> snow::HandshakeState {
        snow::Builder::with_resolver(params(), Box::new(Resolver::new(&Counting)))
            .local_private_key(client_secret)
            .and_then(|builder| builder.remote_public_key(device_public))
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(|builder| builder.build_initiator())
            .unwrap()
    }

    #[test]
    fn the_strict_responder_computes_one_x25519_for_a_stranger_and_refuses_it() {
        let device = [9u8; KEY_LEN];
        let trusted = [10u8; KEY_LEN];
        let stranger = [11u8; KEY_LEN];
        let shared = Arc::new(StaticShared::new(&device, &[public_key(&trusted)]));
        let device_public = public_key(&device);
        let mut first = [0u8; 256];
        let mut scratch = [0u8; 256];

        // A stranger: `ss` is refused, so the first message fails after decrypting `s`.
        let len = initiator(&stranger, &device_public).write_message(&[], &mut first).unwrap();
        let mut refused = responder(&device, &Counting, &shared).unwrap();
        assert!(refused.read_message(&first[..len], &mut scratch).is_err());
        assert_eq!(refused.get_remote_static(), Some(&public_key(&stranger)[..]), "the key is known, not trusted");
        // The same message against a lenient responder (every X25519 computed) does decrypt:
        // the refusal is the strict rule, not a broken message.
        let mut lenient = snow::Builder::with_resolver(params(), Box::new(Resolver::new(&Counting)))
            .local_private_key(&device)
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(|builder| builder.build_responder())
            .unwrap();
        assert!(lenient.read_message(&first[..len], &mut scratch).is_ok());

        // A trusted client still completes, twice in a row with fresh responders.
        for _ in 0..2 {
            let mut client = initiator(&trusted, &device_public);
            let len = client.write_message(&[], &mut first).unwrap();
            let mut accepted = responder(&device, &Counting, &shared).unwrap();
            accepted.read_message(&first[..len], &mut scratch).expect("trusted client");
            let answer = accepted.write_message(&[], &mut first).unwrap();
            client.read_message(&first[..answer], &mut scratch).unwrap();
        }
    }

    #[test]
    fn a_handshake_with_static_results_completes_and_carries_data() {
        let device = [9u8; KEY_LEN];
        let client_secret = [10u8; KEY_LEN];
        let shared = Arc::new(StaticShared::new(&device, &[public_key(&client_secret)]));
        let mut responder = responder(&device, &Counting, &shared).unwrap();
        let device_public = public_key(&device);
        let mut initiator = snow::Builder::with_resolver(params(), Box::new(Resolver::new(&Counting)))
            .local_private_key(&client_secret)
            .and_then(|builder| builder.remote_public_key(&device_public))
            .and_then(|builder| builder.prologue(PROLOGUE))
            .and_then(|builder| builder.build_initiator())
            .unwrap();
        let (mut first, mut second, mut scratch) = ([0u8; 256], [0u8; 256], [0u8; 256]);
        let len = initiator.write_message(b"hello", &mut first).unwrap();
        let read = responder.read_message(&first[..len], &mut scratch).unwrap();
        assert_eq!(&scratch[..read], b"hello");
        let len = responder.write_message(&[], &mut second).unwrap();
        initiator.read_message(&second[..len], &mut scratch).unwrap();
        let mut client = initiator.into_transport_mode().unwrap();
        let mut device = responder.into_transport_mode().unwrap();
        let len = client.write_message(b"over the channel", &mut first).unwrap();
        let read = device.read_message(&first[..len], &mut scratch).unwrap();
        assert_eq!(&scratch[..read], b"over the channel");
    }
}

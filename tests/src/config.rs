//! One builder for the boot configurations the QEMU tests write: [`TestConfig`] holds a device's
//! name and keys, its network, the clients and signers it trusts and its policy, starting from
//! [`STANDARD_POLICY`]; each test changes only what it tests.

use std::path::PathBuf;

use jos_abi::codec::List;
use jos_abi::config::{ConfigRepr, Network, Policy, PortRange, Sections};
use jos_abi::signature::{SignerRights, TrustedSigner};
use jos_abi::wire::Limits;

/// The policy most tests boot with: 4 MiB modules, 2,000,000,000 fuel, 16 MiB of memory, 60 s,
/// 32 KiB of output, a queue of 16 jobs, the default job ports.
pub const STANDARD_POLICY: Policy = Policy {
    max_module_len: 4 * 1024 * 1024,
    limits: Limits { fuel: 2_000_000_000, memory: 16 << 20, deadline_ms: 60_000, output: 32 * 1024 },
    queue_len: 16,
    job_ports: PortRange::DEFAULT,
};

/// A boot configuration being put together (see the module documentation).
#[derive(Clone, Debug)]
pub struct TestConfig {
    name: String,
    noise_secret: [u8; 32],
    advert_seed: [u8; 32],
    network: Network,
    clients: Vec<[u8; 32]>,
    signers: Vec<TrustedSigner>,
    policy: Policy,
}

impl TestConfig {
    /// A device named `name` with these keys, on DHCP, trusting nobody, with
    /// [`STANDARD_POLICY`].
    pub fn new(name: &str, noise_secret: [u8; 32], advert_seed: [u8; 32]) -> Self {
        TestConfig {
            name: name.into(),
            noise_secret,
            advert_seed,
            network: Network::Dhcp,
            clients: Vec::new(),
            signers: Vec::new(),
            policy: STANDARD_POLICY,
        }
    }

    /// The network settings.
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Trusts a client's Noise static public key.
    pub fn client(mut self, public_key: [u8; 32]) -> Self {
        self.clients.push(public_key);
        self
    }

    /// Trusts a signer's Ed25519 public key with `rights`.
    pub fn signer(mut self, public_key: [u8; 32], rights: SignerRights) -> Self {
        self.signers.push(TrustedSigner { public_key, rights });
        self
    }

    /// The whole policy.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy's limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.policy.limits = limits;
        self
    }

    /// The policy's largest module.
    pub fn max_module_len(mut self, bytes: u32) -> Self {
        self.policy.max_module_len = bytes;
        self
    }

    /// The policy's job queue length.
    pub fn queue_len(mut self, jobs: u16) -> Self {
        self.policy.queue_len = jobs;
        self
    }

    /// The UDP ports jobs may bind.
    pub fn job_ports(mut self, ports: PortRange) -> Self {
        self.policy.job_ports = ports;
        self
    }

    /// Runs `f` with the configuration as the format's `Repr`.
    pub fn with_repr<R>(&self, f: impl FnOnce(&ConfigRepr<'_>) -> R) -> R {
        f(&ConfigRepr {
            name: &self.name,
            noise_secret: self.noise_secret,
            advert_seed: self.advert_seed,
            network: self.network,
            clients: List::from_slice(&self.clients),
            signers: List::from_slice(&self.signers),
            policy: self.policy,
        })
    }

    /// The encoded configuration.
    pub fn bytes(&self) -> Vec<u8> {
        self.with_repr(|repr| {
            let mut bytes = vec![0; repr.buffer_len()];
            repr.emit(&mut bytes).expect("the test's configuration encodes");
            bytes
        })
    }

    /// Writes the configuration to a temporary file named after this process and `tag`
    /// ([`crate::write_config`]).
    pub fn write(&self, tag: &str) -> PathBuf {
        self.with_repr(|repr| crate::write_config(repr, tag))
    }

    /// [`TestConfig::write`] with `sections` after the policy ([`crate::write_config_with`]).
    pub fn write_with(&self, sections: &Sections<'_>, tag: &str) -> PathBuf {
        self.with_repr(|repr| crate::write_config_with(repr, sections, tag))
    }
}

#[cfg(test)]
mod tests {
    use jos_abi::config::ConfigRepr;
    use jos_abi::signature::public_key;

    use super::*;

    #[test]
    fn the_builder_encodes_what_a_hand_written_repr_does() {
        let clients = [[0x73; 32]];
        let signers = [
            TrustedSigner { public_key: public_key(&[1; 32]), rights: SignerRights::ALL },
            TrustedSigner { public_key: public_key(&[2; 32]), rights: SignerRights::WASM },
        ];
        let policy = Policy { queue_len: 4, ..STANDARD_POLICY };
        let network = Network::Static { address: [10, 0, 2, 15], prefix_len: 24, gateway: [10, 0, 2, 2] };
        let repr = ConfigRepr {
            name: "built",
            noise_secret: [0x71; 32],
            advert_seed: [0x72; 32],
            network,
            clients: List::from_slice(&clients),
            signers: List::from_slice(&signers),
            policy,
        };
        let mut expected = vec![0; repr.buffer_len()];
        repr.emit(&mut expected).unwrap();
        let built = TestConfig::new("built", [0x71; 32], [0x72; 32])
            .network(network)
            .client([0x73; 32])
            .signer(public_key(&[1; 32]), SignerRights::ALL)
            .signer(public_key(&[2; 32]), SignerRights::WASM)
            .queue_len(4);
        assert_eq!(built.bytes(), expected);
        assert_ne!(built.clone().queue_len(5).bytes(), expected);
        let path = built.write("builder-unit");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
        std::fs::remove_file(path).unwrap();
    }
}

//! `examples/offload.rs` against the real device side of the protocol: `jos_offload::Server`
//! behind its host TCP/UDP adapter (`jos_offload::host::serve`) on loopback sockets, configured
//! to trust this user's client and signing keys and pinned in the user's trust store, as
//! `jos-cli provision` leaves things. The md5 guest is built by `jos-build`. The digests must be
//! the host's MD5; the first call pushes the module and the later ones run the cached copy
//! without resending it; a device that is not pinned and a module the device refuses end with
//! the client's error.

#[path = "../examples/offload.rs"]
#[allow(dead_code)]
mod offload;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use jos_abi::codec::List;
use jos_abi::config::{ConfigRepr, Network, Policy, PortRange};
use jos_abi::signature::{public_key, SignerRights, TrustedSigner};
use jos_abi::wire::Limits;
use jos_client::store::{random_key, x25519_public, Home, Settings, TrustedDevice};
use jos_client::ClientError;
use jos_offload::host::HostPlatform;
use jos_offload::{DeviceConfig, OsEntropy, Server, ServerOptions};
use md5::Digest as _;

static ENTROPY: OsEntropy = OsEntropy;

/// A device on loopback sockets; stops when dropped.
struct Device {
    discovery: SocketAddr,
    advert_key: [u8; 32],
    noise_key: [u8; 32],
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Device {
    /// A device that accepts `client` and runs code signed by `signer`.
    fn start(client: [u8; 32], signer: [u8; 32]) -> Device {
        let (noise_secret, advert_seed) = (random_key().unwrap(), random_key().unwrap());
        let clients = [client];
        let signers = [TrustedSigner { public_key: signer, rights: SignerRights::ALL }];
        let repr = ConfigRepr {
            name: "loopback",
            noise_secret,
            advert_seed,
            network: Network::Dhcp,
            clients: List::from_slice(&clients),
            signers: List::from_slice(&signers),
            policy: Policy {
                max_module_len: 1024 * 1024,
                limits: Limits { fuel: 1_000_000_000, memory: 1 << 20, deadline_ms: 10_000, output: 4096 },
                queue_len: 4,
                job_ports: PortRange::DEFAULT,
            },
        };
        let mut bytes = vec![0; repr.buffer_len()];
        repr.emit(&mut bytes).unwrap();
        let config = DeviceConfig::from_bytes(&bytes).expect("a valid configuration");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let discovery = udp.local_addr().unwrap();
        let options = ServerOptions { port: listener.local_addr().unwrap().port(), ..ServerOptions::default() };
        let mut server = Server::new(config, options, HostPlatform::new(), &ENTROPY);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || jos_offload::host::serve(&mut server, &listener, Some(&udp), &flag));
        Device {
            discovery,
            advert_key: public_key(&advert_seed),
            noise_key: x25519_public(&noise_secret),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `guest-examples/c/md5.c` built as an unsigned wasm module by jos-build.
fn md5_module(folder: &Path) -> std::path::PathBuf {
    let request = jos_build::BuildRequest {
        sources: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/md5.c")],
        format: jos_build::Format::Wasm,
        output: Some(folder.join("md5.wasm")),
        max_memory_pages: jos_build::DEFAULT_MAX_MEMORY_PAGES,
        keep_names: false,
        verbose: false,
    };
    jos_build::build(&request).expect("md5.c builds (clang from scripts/setup.sh)").path
}

fn host_md5(text: &str) -> String {
    hex::encode(md5::Md5::digest(text.as_bytes()))
}

/// A `$JOS_HOME` in `folder` with fresh keys; returns it with the signing and client public keys.
fn new_home(folder: &Path) -> (Home, [u8; 32], [u8; 32]) {
    let home = Home::at(folder.join("home"));
    std::fs::create_dir_all(home.root()).unwrap();
    let (signing, client) = home.write_new_keys().unwrap();
    (home, signing.public, client.public)
}

/// Pins `device` in `home`'s trust store under `name` and makes it the default, as
/// `jos-cli provision` does.
fn pin(home: &Home, device: &Device, name: &str) {
    let mut pinned = TrustedDevice::new(name, &device.advert_key, &device.noise_key);
    pinned.discovery = Some(device.discovery.to_string());
    let mut trust = home.trust().unwrap();
    trust.pin(pinned);
    home.save_trust(&trust).unwrap();
    home.save_settings(&Settings { default_device: Some(name.into()) }).unwrap();
}

#[test]
fn offload_example_computes_md5_on_the_device() {
    let folder = tempfile::tempdir().unwrap();
    let module = md5_module(folder.path());
    let (home, signer, client) = new_home(folder.path());
    let device = Device::start(client, signer);
    pin(&home, &device, "bench-pi");

    let texts = ["hello", "jos on a Raspberry Pi Zero", ""];
    let args: Vec<String> =
        std::iter::once(module.display().to_string()).chain(texts.iter().map(|text| text.to_string())).collect();
    let mut out = Vec::new();
    offload::run(home, &args, &mut out).unwrap_or_else(|error| panic!("the example failed: {error}"));
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + texts.len(), "{out}");
    assert_eq!(lines[0], "device: loopback", "{out}");
    let module_len = std::fs::read(&module).unwrap().len() as u64;
    for (index, (line, text)) in lines[1..].iter().zip(texts).enumerate() {
        let expected = host_md5(text);
        let prefix = format!("md5({text:?}) = {expected} (");
        assert!(line.starts_with(&prefix), "line {line:?} does not start {prefix:?}\n{out}");
        let sent: u64 = line.rsplit_once(", ").unwrap().1.split(' ').next().unwrap().parse().unwrap();
        if index == 0 {
            assert!(line.contains("(pushed,"), "{line}");
            assert!(sent > module_len, "the first call sends the module ({module_len} bytes): {line}");
        } else {
            assert!(line.contains("(cached,"), "{line}");
            assert!(sent < module_len / 4, "a cached call does not resend the module ({module_len} bytes): {line}");
        }
    }
}

#[test]
fn offload_example_refuses_an_unpinned_device_and_an_untrusted_signer() {
    let folder = tempfile::tempdir().unwrap();
    let module = md5_module(folder.path());
    let (home, signer, client) = new_home(folder.path());

    // A device named by an address that is not in the trust store: Untrusted, nothing pushed.
    let unpinned = Device::start(client, signer);
    let args = vec![module.display().to_string(), "--device".into(), unpinned.discovery.to_string(), "hello".into()];
    let error = offload::run(home.clone(), &args, &mut Vec::new()).unwrap_err();
    let error = error.downcast::<ClientError>().expect("a client error");
    assert!(matches!(*error, ClientError::Untrusted(_)), "{error:?}");

    // A pinned device that trusts another signer: the push is refused with the device's code.
    let strict = Device::start(client, public_key(&[7; 32]));
    pin(&home, &strict, "strict");
    let args = vec![module.display().to_string(), "hello".into()];
    let error = offload::run(home, &args, &mut Vec::new()).unwrap_err();
    let error = error.downcast::<ClientError>().expect("a client error");
    assert!(matches!(*error, ClientError::Rejected(jos_abi::ErrorCode::UntrustedSigner, _)), "{error:?}");
}

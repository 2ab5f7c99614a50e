//! Boot configurations with weak keys, on the kernel under QEMU: a signer key of small order
//! (anyone could sign code under it) and a client key of low order (anyone could finish that
//! client's handshake). The kernel refuses the whole configuration: it names the reason on the
//! console, keeps running, and accepts nothing on the offload port. The configurations are
//! written byte by byte (with a correct checksum), since `ConfigRepr::emit` refuses them too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jos_abi::config::{HEADER_LEN, LOW_ORDER_X25519};
use jos_abi::signature::{public_key, sha256, SignerRights};
use jos_abi::wire::Limits;
use jos_tests::config::TestConfig;
use jos_tests::{free_port, kernel_elf, BootOptions, Qemu};

const CLIENT_KEY: [u8; 32] = [0x41; 32];
const SIGNER_SEED: [u8; 32] = [0x55; 32];

/// A valid configuration with one client and one signer, as bytes.
fn good_config() -> Vec<u8> {
    TestConfig::new("qemu-keys", [0x51; 32], [0x52; 32])
        .client(CLIENT_KEY)
        .signer(public_key(&SIGNER_SEED), SignerRights::ALL)
        .max_module_len(1 << 20)
        .limits(Limits { fuel: 1_000_000, memory: 1 << 20, deadline_ms: 1000, output: 1024 })
        .queue_len(4)
        .bytes()
}

/// `config` with the 32 bytes equal to `old` replaced by `new`, the checksum recomputed, in a
/// file of its own.
fn patched(config: &[u8], old: &[u8; 32], new: &[u8; 32], tag: &str) -> PathBuf {
    let mut bytes = config.to_vec();
    let at = bytes.windows(32).position(|window| window == old).expect("the key is in the configuration");
    bytes[at..at + 32].copy_from_slice(new);
    let checksum = sha256(&bytes[HEADER_LEN..]);
    bytes[12..HEADER_LEN].copy_from_slice(&checksum);
    let path = std::env::temp_dir().join(format!("jos-keys-{tag}-{}.bin", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Boots with the configuration; returns the console once the network is up, after checking
/// that the offload port answers nothing.
fn boot_and_probe(config: &Path) -> String {
    let tcp = free_port(false);
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{tcp}-:4748"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-device".into(),
        format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
    ];
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    qemu.wait_for_line("net: ip ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    // QEMU's user network accepts the TCP connection itself; with no listener in the guest it
    // closes it at once, and nothing ever answers.
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = stream.write_all(&[0, 0, 0, 4, 1, 2, 3, 4]);
    let mut buffer = [0u8; 16];
    let answer = stream.read(&mut buffer);
    let console = qemu.output();
    qemu.kill();
    assert!(matches!(answer, Ok(0) | Err(_)), "the offload port answered: {answer:?}\n{console}");
    console
}

#[test]
fn weak_keys_in_the_boot_configuration_are_refused_and_nothing_is_accepted() {
    let good = good_config();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cases = [
        ("signer", public_key(&SIGNER_SEED), identity, "weak signer key (small order, mixed order or non-canonical)"),
        ("client", CLIENT_KEY, LOW_ORDER_X25519[2], "weak client key (low order or non-canonical X25519 key)"),
    ];
    for (tag, old, weak, reason) in cases {
        let config = patched(&good, &old, &weak, tag);
        let console = boot_and_probe(&config);
        let _ = std::fs::remove_file(&config);
        let expected = format!("offload: no valid configuration at 0x01f00000: {reason}; accepting nothing");
        assert!(console.contains(&expected), "{tag}: no `{expected}` on the console:\n{console}");
        assert!(!console.contains("offload: ready"), "{tag}: the offload service started:\n{console}");
    }
}

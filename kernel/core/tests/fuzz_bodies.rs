//! Runs the fuzz body of `jos_kcore::fuzzing` (the cargo-fuzz target `net`) briefly: over the
//! seed corpus in `fuzz/corpus/net/` and deterministic mutations of the seeds. Long runs are by
//! hand (docs/fuzzing.md).

use std::path::PathBuf;

use jos_abi::fuzzing::{mutate, Rng};
use jos_kcore::fuzzing::{net, seeds, with_fixed_checksums, CONFIGURED, FIX_CHECKSUMS, OUR_ADDRESS, OUR_MAC, PORT_7};
use jos_kcore::net::{classify, Local, Verdict};
use smoltcp::wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/net")
}

/// The verdict the body sees for an input (scene byte, then the frame).
fn verdict(input: &[u8]) -> Option<Verdict> {
    let (&scene, frame) = input.split_first()?;
    let frame = if scene & FIX_CHECKSUMS != 0 { with_fixed_checksums(frame) } else { frame.to_vec() };
    let local = Local {
        mac: EthernetAddress(OUR_MAC),
        address: (scene & CONFIGURED != 0).then(|| Ipv4Cidr::new(Ipv4Address::from(OUR_ADDRESS), 24)),
        echo_port: if scene & PORT_7 != 0 { 7 } else { 5007 },
    };
    Some(classify(&frame, &local, |port| port.is_multiple_of(3)))
}

/// The committed seeds equal what [`seeds`] builds (`JOS_WRITE_CORPUS=1` rewrites them), and
/// they cover every verdict.
#[test]
fn seed_corpus_is_current_and_covers_every_verdict() {
    let dir = corpus_dir();
    let write = std::env::var_os("JOS_WRITE_CORPUS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut seen = Vec::new();
    for (name, bytes) in seeds() {
        let path = dir.join(format!("seed-{name}"));
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (JOS_WRITE_CORPUS=1 writes it)", path.display()));
        assert_eq!(committed, bytes, "{} is stale: rerun with JOS_WRITE_CORPUS=1", path.display());
        seen.push(verdict(&bytes).unwrap());
    }
    for wanted in [
        Verdict::Echo,
        Verdict::Keep { broadcast: false },
        Verdict::Keep { broadcast: true },
        Verdict::Fragment,
        Verdict::ClosedPort,
    ] {
        assert!(seen.contains(&wanted), "no seed is {wanted:?}: {seen:?}");
    }
    assert_eq!(verdict(&seeds()[0].1), Some(Verdict::Echo), "the first seed is a plain echo request");
}

/// The body over every corpus file (libFuzzer's finds too) and deterministic mutations, which
/// must reach both echoes and refusals.
#[test]
fn fuzz_body_over_corpus_and_mutations() {
    let mut files = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("the net corpus") {
        net(&std::fs::read(entry.unwrap().path()).unwrap());
        files += 1;
    }
    let seeds = seeds();
    assert!(files >= seeds.len());
    net(&[]);
    let mut rng = Rng::new(0x6a6f_735f_6e65_7466);
    let (mut echoes, mut malformed) = (0, 0);
    for round in 0..20_000 {
        let (_, seed) = &seeds[round % seeds.len()];
        let mutated = mutate(seed, &mut rng);
        net(&mutated);
        match verdict(&mutated) {
            Some(Verdict::Echo) => echoes += 1,
            Some(Verdict::Malformed) => malformed += 1,
            _ => {}
        }
    }
    println!("net body: {echoes} echoes and {malformed} malformed among 20000 mutations");
    assert!(echoes >= 1000 && malformed >= 1000, "{echoes} echoes, {malformed} malformed");
}

//! Tests of the signature format, signing and verification.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::ed25519::signature::MultipartVerifier;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::Digest;

use super::keys::{hmac_sha256, VERIFICATIONS};
use super::payload::message_prefix;
use super::*;
use crate::blob::{Arch, Blob, BlobFlags, BlobRepr, Import, Table};
use crate::syscall::{AbiVersion, SyscallId};

const SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [9; 32];

/// A valid module: type `() -> ()`, one function, its body.
#[rustfmt::skip]
const MODULE: &[u8] = &[
    0, b'a', b's', b'm', 1, 0, 0, 0,
    1, 4, 1, 0x60, 0, 0,        // type section
    3, 2, 1, 0,                 // function section
    10, 4, 1, 2, 0, 0x0b,       // code section
];

fn signer(seed: &[u8; 32], rights: SignerRights) -> TrustedSigner {
    TrustedSigner { public_key: public_key(seed), rights }
}

#[test]
fn golden_payload_bytes() {
    let repr = SignatureRepr {
        content_type: ContentType::WasmModule,
        hash: [0x11; 32],
        key_id: Some([0x22; 12]),
        signature: [0x33; 64],
    };
    let mut expected = vec![1, 1, 1, 1, 114, 1];
    expected.extend_from_slice(&[0x11; 32]);
    expected.extend_from_slice(&[1, 79, 12]);
    expected.extend_from_slice(&[0x22; 12]);
    expected.extend_from_slice(&[1, 64]);
    expected.extend_from_slice(&[0x33; 64]);
    assert_eq!(repr.buffer_len(), expected.len());
    let mut buffer = vec![0; repr.buffer_len()];
    repr.emit(&mut buffer).unwrap();
    assert_eq!(buffer, expected);
    assert!(repr.emit(&mut buffer[1..]).is_none());

    let payload = SignaturePayload::new_checked(&expected).unwrap();
    assert_eq!(SignatureRepr::parse(&payload), Ok(repr));
    let set = payload.sets().next().unwrap();
    assert_eq!(set.hashes().collect::<Vec<_>>(), vec![&[0x11; 32][..]]);
    let entry = set.signatures().next().unwrap();
    assert_eq!(entry.key_id, Some(&[0x22; 12][..]));

    for len in 0..expected.len() {
        assert!(SignaturePayload::new_checked(&expected[..len]).is_err(), "length {len}");
    }
    let mut trailing = expected.clone();
    trailing.push(0);
    assert_eq!(SignaturePayload::new_checked(&trailing), Err(SignatureError::Malformed));
}

#[test]
fn payload_header_checks() {
    let cases: &[(&[u8], SignatureError)] = &[
        (&[2, 1, 1, 0], SignatureError::UnsupportedVersion),
        (&[1, 2, 1, 0], SignatureError::WrongContentType),
        (&[1, 1, 2, 0], SignatureError::UnsupportedHash),
        (&[1, 1, 1, 65], SignatureError::TooMany),
        (&[1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10], SignatureError::Malformed),
        (&[1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0], SignatureError::Malformed),
        (&[0x81, 1, 1, 0], SignatureError::Malformed),
        (&[1, 1, 1, 1, 2, 65, 0], SignatureError::TooMany),
        (&[1, 1, 1, 1, 3, 0, 0x81, 0x02], SignatureError::TooMany),
        (&[1, 1, 1, 1, 2, 1, 0], SignatureError::Malformed),
        // An Ed25519 signature of 3 bytes.
        (&[1, 1, 1, 1, 8, 0, 1, 5, 0, 1, 2, 0, 0], SignatureError::Malformed),
    ];
    for (bytes, expected) in cases {
        assert_eq!(SignaturePayload::new_checked(bytes), Err(*expected), "{bytes:?}");
    }
    // An empty set list parses but holds no signature.
    let empty = SignaturePayload::new_checked(&[1, 1, 1, 0]).unwrap();
    assert!(!empty.has_signature());
}

#[test]
fn key_id_matches_hmac_test_vector() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    let hex: String = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(hex, expected);
}

#[test]
fn wasm_sign_and_verify() {
    let signers = [signer(&OTHER_SEED, SignerRights::ALL), signer(&SEED, SignerRights::WASM)];
    for with_key_id in [false, true] {
        let signed = sign_wasm(MODULE, &SEED, with_key_id).unwrap();
        let verified = verify_wasm(&signed, &signers).unwrap();
        assert_eq!(verified.signer, 1);
        assert_eq!(verified.content_hash, sha256(&MODULE[8..]));
        // Signing again replaces the section instead of stacking one.
        let again = sign_wasm(&signed, &SEED, with_key_id).unwrap();
        assert_eq!(again, signed);
    }
}

#[test]
fn wasm_refusals() {
    let signed = sign_wasm(MODULE, &SEED, true).unwrap();
    let trusted = [signer(&SEED, SignerRights::ALL)];
    assert_eq!(verify_wasm(MODULE, &trusted), Err(SignatureError::Missing));
    assert_eq!(verify_wasm(&MODULE[..8], &trusted), Err(SignatureError::Missing));
    assert_eq!(verify_wasm(b"\0asm", &trusted), Err(SignatureError::MalformedModule));
    assert_eq!(verify_wasm(&signed[..12], &trusted), Err(SignatureError::MalformedModule));
    assert_eq!(verify_wasm(&signed, &[signer(&OTHER_SEED, SignerRights::ALL)]), Err(SignatureError::UnknownKey));
    assert_eq!(verify_wasm(&signed, &[]), Err(SignatureError::UnknownKey));
    assert_eq!(verify_wasm(&signed, &[signer(&SEED, SignerRights::NATIVE)]), Err(SignatureError::NotPermitted));

    let mut changed = signed.clone();
    *changed.last_mut().unwrap() = 0x01;
    assert_eq!(verify_wasm(&changed, &trusted), Err(SignatureError::ContentMismatch));

    let mut forged = signed.clone();
    let at = signed.len() - MODULE.len() + 8 - 1; // last signature byte
    forged[at] ^= 1;
    assert_eq!(verify_wasm(&forged, &trusted), Err(SignatureError::BadSignature));
    // Without a key id, a forged signature is indistinguishable from a stranger's.
    let mut anonymous = sign_wasm(MODULE, &SEED, false).unwrap();
    let at = anonymous.len() - MODULE.len() + 8 - 1;
    anonymous[at] ^= 1;
    assert_eq!(verify_wasm(&anonymous, &trusted), Err(SignatureError::UnknownKey));

    // The signature section must come first.
    let mut late = MODULE.to_vec();
    late.extend_from_slice(&signed[8..signed.len() - MODULE.len() + 8]);
    assert_eq!(verify_wasm(&late, &trusted), Err(SignatureError::Missing));
}

fn blob() -> Vec<u8> {
    let imports = [Import { slot: 8, syscall: SyscallId::Log }];
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 0,
        text: &[0x1e, 0xff, 0x2f, 0xe1],
        rodata: b"abcd",
        data: &[0; 4],
        bss_len: 0,
        align: 4,
        imports: Table::from_slice(&imports),
        relocations: Table::from_slice(&[]),
        wasm_source: None,
    };
    let mut bytes = vec![0; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    bytes
}

#[test]
fn blob_sign_and_verify() {
    let unsigned = blob();
    let checked = Blob::new_checked(&unsigned[..]).unwrap();
    let native = [signer(&SEED, SignerRights::NATIVE)];
    assert_eq!(verify_blob(&checked, &native), Err(SignatureError::Missing));

    let signed = sign_blob(&unsigned, &SEED, true).unwrap();
    let checked = Blob::new_checked(&signed[..]).unwrap();
    assert_eq!(checked.signed_part(), &unsigned[..]);
    assert_eq!(verify_blob(&checked, &native).map(|v| v.signer), Ok(0));
    assert_eq!(verify_blob(&checked, &[signer(&SEED, SignerRights::WASM)]), Err(SignatureError::NotPermitted));
    assert_eq!(verify_blob(&checked, &[signer(&OTHER_SEED, SignerRights::ALL)]), Err(SignatureError::UnknownKey));
    assert_eq!(sign_blob(&signed, &SEED, true).unwrap(), signed, "re-signing replaces the trailer");

    // A changed image byte: the signature is over different bytes.
    let mut changed = signed.clone();
    changed[crate::blob::HEADER_LEN + 4] ^= 0x20;
    let checked = Blob::new_checked(&changed[..]).unwrap();
    assert_eq!(verify_blob(&checked, &native), Err(SignatureError::ContentMismatch));

    // A wasm signature payload does not pass for a blob.
    let wasm = sign_wasm(MODULE, &SEED, true).unwrap();
    let wasm_payload = split_wasm(&wasm).unwrap();
    let section_payload_start =
        wasm_payload.section.len() - SignatureRepr::parse(&wasm_payload.payload).unwrap().buffer_len();
    let mut mixed = unsigned.clone();
    mixed.extend_from_slice(&wasm_payload.section[section_payload_start..]);
    let checked = Blob::new_checked(&mixed[..]).unwrap();
    assert_eq!(verify_blob(&checked, &native), Err(SignatureError::WrongContentType));

    let mut junk = unsigned.clone();
    junk.extend_from_slice(&[1, 0x4a, 1, 1]);
    let checked = Blob::new_checked(&junk[..]).unwrap();
    assert_eq!(verify_blob(&checked, &native), Err(SignatureError::Malformed));
}

#[test]
fn verification_work_is_bounded() {
    // 20 anonymous signatures that verify under no key: each is tried with each of two keys.
    let content = b"content";
    let good = SignatureRepr::sign(ContentType::NativeBlob, content, &SEED, false);
    let mut entry = vec![0, ALGORITHM_ED25519, 64];
    entry.extend_from_slice(&[0x44; 64]);
    let build = |bogus: usize| {
        let mut set = vec![1];
        set.extend_from_slice(&good.hash);
        set.push((bogus + 1) as u8);
        for _ in 0..bogus {
            set.push(entry.len() as u8);
            set.extend_from_slice(&entry);
        }
        let mut last = vec![0, ALGORITHM_ED25519, 64];
        last.extend_from_slice(&good.signature);
        set.push(last.len() as u8);
        set.extend_from_slice(&last);
        let mut payload = vec![1, ContentType::NativeBlob as u8, 1, 1];
        payload.extend_from_slice(&[0x80 | (set.len() & 0x7f) as u8, (set.len() >> 7) as u8]);
        payload.extend_from_slice(&set);
        payload
    };
    let signers = [signer(&SEED, SignerRights::ALL)];
    let hash = sha256(content);
    let few = build(3);
    let payload = SignaturePayload::new_checked(&few).unwrap();
    assert_eq!(verify_payload(&payload, ContentType::NativeBlob, &hash, &signers).map(|v| v.signer), Ok(0));
    let many = build(MAX_VERIFICATIONS);
    let payload = SignaturePayload::new_checked(&many).unwrap();
    assert_eq!(verify_payload(&payload, ContentType::NativeBlob, &hash, &signers), Err(SignatureError::TooMany));
}

fn hex32(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap()).collect();
    bytes.try_into().unwrap()
}

/// The eight points of small order in their canonical encodings (identity, order 2, two of
/// order 4, four of order 8), as listed in "Taming the many EdDSAs" (Brendel et al., 2020).
const SMALL_ORDER_CANONICAL: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
];
/// Non-canonical encodings of small-order points: x = 0 with the sign bit set, y = p, y = p + 1.
const SMALL_ORDER_NON_CANONICAL: [&str; 6] = [
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

#[test]
fn weak_signer_keys_are_named() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    // The list is the dalek crate's own torsion subgroup, and each point is refused.
    let listed: Vec<[u8; 32]> = SMALL_ORDER_CANONICAL.iter().map(|text| hex32(text)).collect();
    for point in EIGHT_TORSION {
        assert!(listed.contains(&point.compress().to_bytes()), "{:?}", point.compress());
        assert!(SMALL_ORDER_POINTS.contains(&point.compress().to_bytes()));
    }
    let mut sorted = SMALL_ORDER_POINTS.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 8);
    for key in &listed {
        assert_eq!(check_signer_key(key), Err(WeakKey::SmallOrder), "{key:02x?}");
        assert!(VerifyingKey::from_bytes(key).unwrap().is_weak());
    }
    for text in SMALL_ORDER_NON_CANONICAL {
        let key = hex32(text);
        assert!(VerifyingKey::from_bytes(&key).is_ok(), "{text} decodes: the check must catch it");
        assert_eq!(check_signer_key(&key), Err(WeakKey::NonCanonical), "{text}");
    }
    // A strong key plus a torsion point: not small order, yet no secret key has it.
    let strong = public_key(&SEED);
    assert_eq!(check_signer_key(&strong), Ok(()));
    let point = CompressedEdwardsY(strong).decompress().unwrap();
    for torsion in &EIGHT_TORSION[1..] {
        let mixed = (point + torsion).compress().to_bytes();
        assert!(!VerifyingKey::from_bytes(&mixed).unwrap().is_weak());
        assert_eq!(check_signer_key(&mixed), Err(WeakKey::MixedOrder));
    }
    // y = p + 2 .. p + 18: the non-canonical name of a strong point where one exists.
    let mut found = 0;
    for low in 0xefu8..=0xff {
        let mut key = [0xff; 32];
        key[0] = low;
        key[31] = 0x7f;
        if let Some(point) = CompressedEdwardsY(key).decompress() {
            assert_ne!(point.compress().to_bytes(), key);
            assert_eq!(check_signer_key(&key), Err(WeakKey::NonCanonical));
            found += 1;
        }
    }
    assert!(found > 0, "some y in 2..=18 is on the curve");
    let mut not_a_point = [0u8; 32];
    not_a_point[0] = (2u8..)
        .find(|y| {
            CompressedEdwardsY([*y; 1].iter().chain([0u8; 31].iter()).copied().collect::<Vec<_>>().try_into().unwrap())
                .decompress()
                .is_none()
        })
        .unwrap();
    assert_eq!(check_signer_key(&not_a_point), Err(WeakKey::NotAPoint));
    for seed in 0..64u8 {
        assert_eq!(check_signer_key(&public_key(&[seed; 32])), Ok(()), "every generated key is strong");
    }
}

/// `R = identity, s = 0` verifies under the identity key for every message without strict
/// checks: the forgery a small-order signer key allows.
fn forged_under_identity(module: &[u8]) -> Vec<u8> {
    let identity = hex32(SMALL_ORDER_CANONICAL[0]);
    let mut forged = sign_wasm(module, &SEED, false).unwrap();
    let at = forged.len() - (module.len() - 8) - SIGNATURE_LEN;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&identity);
    forged[at..at + 64].copy_from_slice(&signature);
    forged
}

#[test]
fn small_order_signer_keys_verify_nothing() {
    let identity = hex32(SMALL_ORDER_CANONICAL[0]);
    let forged = forged_under_identity(MODULE);
    // Without strict checks this forgery passes (what `multipart_verify` alone accepts).
    let signed = split_wasm(&forged).unwrap();
    let entry = signed.payload.sets().next().unwrap().signatures().next().unwrap();
    let set = signed.payload.sets().next().unwrap();
    let key = VerifyingKey::from_bytes(&identity).unwrap();
    let prefix = message_prefix(ContentType::WasmModule);
    let signature = Signature::from_bytes(entry.signature.try_into().unwrap());
    assert!(key.multipart_verify(&[&prefix, set.hash_bytes()], &signature).is_ok(), "the forgery is real");
    // Strictly, it does not verify, under any small-order key, with or without other signers.
    for text in SMALL_ORDER_CANONICAL.iter().chain(SMALL_ORDER_NON_CANONICAL.iter()) {
        let weak = signer(&[0; 32], SignerRights::ALL);
        let weak = TrustedSigner { public_key: hex32(text), ..weak };
        assert_eq!(verify_wasm(&forged, &[weak]), Err(SignatureError::UnknownKey), "{text}");
        assert_eq!(
            verify_wasm(&forged, &[signer(&OTHER_SEED, SignerRights::ALL), weak]),
            Err(SignatureError::UnknownKey)
        );
    }
}

/// A signature by a strong key whose `R` is the identity: `s = k a`, which passes the
/// cofactorless equation; strict verification refuses its small-order `R`.
fn identity_r_signature(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use curve25519_dalek::scalar::Scalar;
    use sha2::Sha512;
    let expanded: [u8; 64] = Sha512::digest(seed).into();
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&expanded[..32]);
    secret[0] &= 248;
    secret[31] &= 127;
    secret[31] |= 64;
    let a = Scalar::from_bytes_mod_order(secret);
    let r = hex32(SMALL_ORDER_CANONICAL[0]);
    let mut hasher = Sha512::new();
    hasher.update(r);
    hasher.update(public_key(seed));
    hasher.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r);
    signature[32..].copy_from_slice((k * a).as_bytes());
    signature
}

#[test]
fn verification_is_strict() {
    use curve25519_dalek::scalar::Scalar;
    let hash = sha256(&MODULE[8..]);
    let prefix = message_prefix(ContentType::WasmModule);
    let message = [&prefix[..], &hash[..]].concat();
    let key = VerifyingKey::from_bytes(&public_key(&SEED)).unwrap();
    let good = SigningKey::from_bytes(&SEED).sign(&message).to_bytes();

    // A small-order R: accepted by the plain check, refused strictly.
    let small_r = identity_r_signature(&SEED, &message);
    assert!(key.multipart_verify(&[&prefix, &hash], &Signature::from_bytes(&small_r)).is_ok());
    // s + l: the same signature with an unreduced scalar.
    let mut big_s = good;
    let l = Scalar::ZERO - Scalar::ONE; // l - 1
    let mut carry = 1u16; // s + (l - 1) + 1 = s + l, as integers
    for (index, byte) in big_s[32..].iter_mut().enumerate() {
        let sum = u16::from(*byte) + u16::from(l.as_bytes()[index]) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    // R's sign bit flipped: the negated R.
    let mut other_r = good;
    other_r[31] ^= 0x80;
    // Small-order R in non-canonical encodings (with s = k a as for the identity).
    let mut cases: Vec<(&str, [u8; 64], bool)> = vec![
        ("good", good, true),
        ("small-order R", small_r, false),
        ("s + l", big_s, false),
        ("negated R", other_r, false),
    ];
    for text in SMALL_ORDER_NON_CANONICAL {
        let mut signature = small_r;
        signature[..32].copy_from_slice(&hex32(text));
        cases.push((text, signature, false));
    }
    // Every small-order R with the good s, and the good R with s = 0.
    for point in SMALL_ORDER_POINTS {
        let mut signature = good;
        signature[..32].copy_from_slice(&point);
        cases.push(("small-order R, good s", signature, false));
    }
    let mut zero_s = good;
    zero_s[32..].fill(0);
    cases.push(("s = 0", zero_s, false));
    for (what, signature, valid) in cases {
        let signature: [u8; 64] = signature;
        let strict = key.verify_strict(&message, &Signature::from_bytes(&signature)).is_ok();
        assert_eq!(strict, valid, "{what}: verify_strict");
        assert_eq!(
            verify_strict_parts(&key, &[&prefix, &hash], &signature),
            valid,
            "{what}: the multipart strict check agrees"
        );
    }
    // Through the module path: the small-order-R signature with a key id is refused.
    let mut module = sign_wasm(MODULE, &SEED, true).unwrap();
    let at = module.len() - (MODULE.len() - 8) - SIGNATURE_LEN;
    module[at..at + 64].copy_from_slice(&small_r);
    assert_eq!(verify_wasm(&module, &[signer(&SEED, SignerRights::ALL)]), Err(SignatureError::BadSignature));
    module[at..at + 64].copy_from_slice(&good);
    assert!(verify_wasm(&module, &[signer(&SEED, SignerRights::ALL)]).is_ok());
}

/// A signature entry: key id (if any) and signature.
type Entry = (Option<[u8; 12]>, [u8; 64]);

/// A payload from sets of (hashes, entries).
fn payload(content_type: ContentType, sets: &[(Vec<[u8; 32]>, Vec<Entry>)]) -> Vec<u8> {
    fn varuint(out: &mut Vec<u8>, value: usize) {
        let mut value = value;
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            out.push(if value != 0 { byte | 0x80 } else { byte });
            if value == 0 {
                return;
            }
        }
    }
    let mut out = vec![SPEC_VERSION, content_type as u8, HASH_SHA256];
    varuint(&mut out, sets.len());
    for (hashes, entries) in sets {
        let mut set = Vec::new();
        varuint(&mut set, hashes.len());
        hashes.iter().for_each(|hash| set.extend_from_slice(hash));
        varuint(&mut set, entries.len());
        for (id, signature) in entries {
            let mut entry = Vec::new();
            match id {
                Some(id) => {
                    varuint(&mut entry, 12);
                    entry.extend_from_slice(id);
                }
                None => varuint(&mut entry, 0),
            }
            entry.push(ALGORITHM_ED25519);
            varuint(&mut entry, 64);
            entry.extend_from_slice(signature);
            varuint(&mut set, entry.len());
            set.extend_from_slice(&entry);
        }
        varuint(&mut out, set.len());
        out.extend_from_slice(&set);
    }
    out
}

/// The signature of `seed` over a set of hashes.
fn sign_set(seed: &[u8; 32], content_type: ContentType, hashes: &[[u8; 32]]) -> [u8; 64] {
    let mut message = message_prefix(content_type).to_vec();
    hashes.iter().for_each(|hash| message.extend_from_slice(hash));
    SigningKey::from_bytes(seed).sign(&message).to_bytes()
}

/// The verdict with the chosen signer named by key and rights (not by index), and the
/// verifications it cost.
fn verdict(
    bytes: &[u8],
    hash: &[u8; 32],
    signers: &[TrustedSigner],
) -> (Result<([u8; 32], SignerRights), SignatureError>, usize) {
    let payload = SignaturePayload::new_checked(bytes).unwrap();
    let before = VERIFICATIONS.with(|count| count.get());
    let result = verify_payload(&payload, ContentType::WasmModule, hash, signers);
    let spent = VERIFICATIONS.with(|count| count.get()) - before;
    if let Ok(verified) = result {
        assert_eq!(signers[verified.signer].public_key, verified.public_key);
        assert_eq!(signers[verified.signer].rights, verified.rights);
    }
    (result.map(|verified| (verified.public_key, verified.rights)), spent)
}

/// Every permutation of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn heap<T: Clone>(k: usize, items: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, items, out);
            let swap = if k.is_multiple_of(2) { i } else { 0 };
            items.swap(swap, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(items.len(), &mut items.to_vec(), &mut out);
    out
}

#[test]
fn the_verdict_does_not_depend_on_signer_order() {
    let hash = sha256(b"content");
    let wasm = ContentType::WasmModule;
    let seeds: Vec<[u8; 32]> = (0..5u8).map(|i| [0x30 + i; 32]).collect();
    let rights = [
        SignerRights::ALL,                                              // signs other bytes
        SignerRights::WASM,                                             // signs, with its key id
        SignerRights::WASM | SignerRights::NETWORK,                     // signs without a key id
        SignerRights::NATIVE | SignerRights::GPIO,                      // signs, but may not sign wasm
        SignerRights::WASM | SignerRights::SCREEN | SignerRights::GPIO, // does not sign
    ];
    let signers: Vec<TrustedSigner> =
        seeds.iter().zip(rights).map(|(seed, rights)| TrustedSigner { public_key: public_key(seed), rights }).collect();
    let other = sha256(b"other content");
    let entries = [
        (None, sign_set(&seeds[0], wasm, &[other])),
        (Some(key_id(&signers[1].public_key)), sign_set(&seeds[1], wasm, &[hash])),
        (None, sign_set(&seeds[2], wasm, &[hash])),
        (None, sign_set(&seeds[3], wasm, &[hash])),
    ];
    let (first, second) = entries.split_at(1);
    let bytes = payload(wasm, &[(vec![other], first.to_vec()), (vec![hash], second.to_vec())]);
    let expected = Ok((signers[2].public_key, signers[2].rights));
    let mut costs = std::collections::BTreeSet::new();
    for order in permutations(&signers) {
        let (result, spent) = verdict(&bytes, &hash, &order);
        assert_eq!(result, expected, "order {:?}", order.iter().map(|s| s.rights.bits()).collect::<Vec<_>>());
        assert!(spent <= MAX_VERIFICATIONS);
        costs.insert(spent);
    }
    assert!(costs.iter().all(|cost| *cost <= 3 * 5 + 1), "{costs:?}");

    // Two signers with incomparable rights both verify: the one with more rights, whatever
    // the order (on equal counts, the larger rights value, then the smaller key).
    let a = TrustedSigner { public_key: public_key(&seeds[0]), rights: SignerRights::WASM | SignerRights::NETWORK };
    let b = TrustedSigner {
        public_key: public_key(&seeds[1]),
        rights: SignerRights::WASM | SignerRights::SCREEN | SignerRights::GPIO,
    };
    let c = TrustedSigner { public_key: public_key(&seeds[2]), rights: SignerRights::WASM | SignerRights::GPIO };
    let all_sign = payload(
        wasm,
        &[(
            vec![hash],
            [(&seeds[0], &a), (&seeds[1], &b), (&seeds[2], &c)]
                .iter()
                .map(|(seed, signer)| (Some(key_id(&signer.public_key)), sign_set(seed, wasm, &[hash])))
                .collect(),
        )],
    );
    for order in permutations(&[a, b, c]) {
        assert_eq!(verdict(&all_sign, &hash, &order).0, Ok((b.public_key, b.rights)));
    }
    for order in permutations(&[a, c]) {
        assert_eq!(verdict(&all_sign, &hash, &order).0, Ok((c.public_key, c.rights)), "GPIO (16) over NETWORK (4)");
    }

    // Failures too: nobody verifies with the right, the most specific failure wins everywhere.
    let refused = payload(
        wasm,
        &[(
            vec![hash],
            vec![(Some(key_id(&signers[3].public_key)), sign_set(&seeds[3], wasm, &[hash])), (None, [0x44; 64])],
        )],
    );
    for order in permutations(&signers) {
        assert_eq!(verdict(&refused, &hash, &order).0, Err(SignatureError::NotPermitted));
    }
}

#[test]
fn one_anonymous_signature_is_checked_against_every_signer_in_any_order() {
    // 20 trusted keys, one anonymous signature by one of them: on every rotation and
    // reversal of the list it verifies, with at most 20 verifications.
    let hash = sha256(b"content");
    let wasm = ContentType::WasmModule;
    let seeds: Vec<[u8; 32]> = (0..20u8).map(|i| [0x60 + i; 32]).collect();
    let signers: Vec<TrustedSigner> =
        seeds.iter().map(|seed| TrustedSigner { public_key: public_key(seed), rights: SignerRights::WASM }).collect();
    let bytes = payload(wasm, &[(vec![hash], vec![(None, sign_set(&seeds[13], wasm, &[hash]))])]);
    let expected = Ok((signers[13].public_key, SignerRights::WASM));
    for turn in 0..signers.len() {
        let mut order = signers.clone();
        order.rotate_left(turn);
        let (result, spent) = verdict(&bytes, &hash, &order);
        assert_eq!(result, expected, "rotation {turn}");
        assert!(spent <= signers.len());
        order.reverse();
        assert_eq!(verdict(&bytes, &hash, &order).0, expected, "reversed rotation {turn}");
    }
}

#[test]
fn verification_work_is_bounded_whatever_the_payload() {
    let hash = sha256(b"content");
    let wasm = ContentType::WasmModule;
    let seeds: Vec<[u8; 32]> = (0..33u8).map(|i| [0x80 + i; 32]).collect();
    let signers: Vec<TrustedSigner> =
        seeds.iter().map(|seed| TrustedSigner { public_key: public_key(seed), rights: SignerRights::WASM }).collect();
    let good = (None, sign_set(&seeds[0], wasm, &[hash]));
    // 32 signers: one anonymous signature fits, two do not (64 candidates), in any order.
    let one = payload(wasm, &[(vec![hash], vec![good])]);
    let two = payload(wasm, &[(vec![hash], vec![(None, [0x44; 64]), good])]);
    for order in [signers[..32].to_vec(), signers[..32].iter().rev().copied().collect()] {
        let (result, spent) = verdict(&one, &hash, &order);
        assert_eq!(result, Ok((signers[0].public_key, SignerRights::WASM)));
        assert!(spent <= MAX_VERIFICATIONS);
        let (result, spent) = verdict(&two, &hash, &order);
        assert_eq!(result, Err(SignatureError::TooMany));
        assert!(spent <= MAX_VERIFICATIONS, "{spent}");
    }
    // 33 signers: even one anonymous signature is too many, before any success.
    let (result, spent) = verdict(&one, &hash, &signers);
    assert_eq!(result, Err(SignatureError::TooMany));
    assert!(spent <= MAX_VERIFICATIONS);
    // 256 signatures naming keys nobody trusts: no verification at all.
    let strangers = payload(wasm, &[(vec![hash], vec![(Some([0x77; 12]), [0x44; 64]); MAX_SIGNATURES])]);
    assert_eq!(verdict(&strangers, &hash, &signers), (Err(SignatureError::UnknownKey), 0));
    // 256 anonymous ones: refused after at most the bound.
    let anonymous = payload(wasm, &[(vec![hash], vec![(None, [0x44; 64]); MAX_SIGNATURES])]);
    let (result, spent) = verdict(&anonymous, &hash, &signers[..1]);
    assert_eq!(result, Err(SignatureError::TooMany));
    assert!(spent <= MAX_VERIFICATIONS);
    // More than 256 signatures over all sets: refused by the structure check.
    let half = vec![(Some([0x77; 12]), [0x44; 64]); MAX_SIGNATURES / 2 + 1];
    let spread = payload(wasm, &[(vec![hash], half.clone()), (vec![hash], half)]);
    assert_eq!(SignaturePayload::new_checked(&spread), Err(SignatureError::TooMany));
}

#[test]
fn rights_bits() {
    assert!(SignerRights::ALL.contains(SignerRights::NATIVE));
    assert!(!SignerRights::WASM.contains(SignerRights::NATIVE));
    assert_eq!(SignerRights::WASM | SignerRights::NATIVE, SignerRights::FORMATS);
    assert_eq!(
        SignerRights::FORMATS | SignerRights::NETWORK | SignerRights::SCREEN | SignerRights::GPIO,
        SignerRights::ALL
    );
    assert_eq!(SignerRights::from_bits(3), Some(SignerRights::FORMATS));
    assert_eq!(SignerRights::from_bits(0x1f), Some(SignerRights::ALL));
    assert_eq!(SignerRights::from_bits(0x20), None);
    assert_eq!(SignerRights::from_bits(0x8000_0004), None);
    for (right, bits) in [(SignerRights::NETWORK, 4), (SignerRights::SCREEN, 8), (SignerRights::GPIO, 16)] {
        assert_eq!(right.bits(), bits);
        assert_eq!(SignerRights::from_bits(bits), Some(right));
        assert!(!SignerRights::FORMATS.contains(right));
    }
    assert_eq!(SignatureError::NotPermitted.code(), ErrorCode::UntrustedSigner);
    assert_eq!(SignatureError::ContentMismatch.code(), ErrorCode::BadSignature);
}

/// Interoperability with the `wasmsign2` crate, both ways.
mod wasmsign2_interop {
    use super::*;

    fn wasmsign2_keys(seed: &[u8; 32]) -> (wasmsign2::SecretKey, wasmsign2::PublicKey) {
        let public = public_key(seed);
        let mut secret = vec![0x81];
        secret.extend_from_slice(seed);
        secret.extend_from_slice(&public);
        let mut public_bytes = vec![0x01];
        public_bytes.extend_from_slice(&public);
        (wasmsign2::SecretKey::from_bytes(&secret).unwrap(), wasmsign2::PublicKey::from_bytes(&public_bytes).unwrap())
    }

    fn wasmsign2_sign(seed: &[u8; 32], key_id: bool) -> Vec<u8> {
        let (secret, public) = wasmsign2_keys(seed);
        let module = wasmsign2::Module::deserialize(&mut &MODULE[..]).unwrap();
        let id = public.attach_default_key_id().key_id().cloned();
        let signed = secret.sign(module, if key_id { id.as_ref() } else { None }).unwrap();
        let mut out = Vec::new();
        signed.serialize(&mut out).unwrap();
        out
    }

    #[test]
    fn wasmsign2_signed_verifies_in_jos() {
        for with_key_id in [false, true] {
            let signed = wasmsign2_sign(&SEED, with_key_id);
            let verified = verify_wasm(&signed, &[signer(&SEED, SignerRights::WASM)]).unwrap();
            assert_eq!(verified.content_hash, sha256(&MODULE[8..]));
            // jos writes byte-identical output for the same key (Ed25519 is deterministic).
            assert_eq!(sign_wasm(MODULE, &SEED, with_key_id).unwrap(), signed);
            assert_eq!(
                verify_wasm(&signed, &[signer(&OTHER_SEED, SignerRights::WASM)]),
                Err(SignatureError::UnknownKey)
            );
        }
    }

    #[test]
    fn jos_signed_verifies_in_wasmsign2() {
        let (_, public) = wasmsign2_keys(&SEED);
        let (_, other) = wasmsign2_keys(&OTHER_SEED);
        for with_key_id in [false, true] {
            let signed = sign_wasm(MODULE, &SEED, with_key_id).unwrap();
            public.verify(&mut &signed[..], None).unwrap();
            // With the key's default id attached, wasmsign2 only tries signatures whose id
            // matches: this checks that jos computes the same key ids.
            public.clone().attach_default_key_id().verify(&mut &signed[..], None).unwrap();
            assert!(other.verify(&mut &signed[..], None).is_err());
            let mut changed = signed.clone();
            *changed.last_mut().unwrap() ^= 1;
            assert!(public.verify(&mut &changed[..], None).is_err());
        }
    }
}

//! Fuzz target bodies (feature `fuzzing`): each decodes arbitrary bytes, and whatever decodes
//! must re-encode to the same bytes and satisfy the documented invariants. A panic is a bug.
//!
//! The cargo-fuzz targets in `fuzz/` call these; a host test in this module runs every body over
//! the seed corpus in `fuzz/corpus/<target>/` plus thousands of deterministic mutations, so the
//! README's test command exercises them briefly. Long runs are by hand (`docs/formats.md`).

use alloc::vec;
use alloc::vec::Vec;

use crate::blob::{Blob, BlobRepr, HEADER_LEN as BLOB_HEADER_LEN, MAX_MEMORY_LEN};
use crate::config::{Config, ConfigRepr};
use crate::signature::{
    public_key, split_wasm, verify_blob, verify_wasm, SignaturePayload, SignatureRepr, SignerRights, TrustedSigner,
};
use crate::wire::discovery::{Advert, AdvertRepr, Probe};
use crate::wire::{frame_len, Frame, Message};

/// The seed of the key every fuzz body trusts (so signed seeds can verify).
pub const FUZZ_SIGNER_SEED: [u8; 32] = [0x5e; 32];

fn signers() -> [TrustedSigner; 2] {
    [
        TrustedSigner { public_key: public_key(&FUZZ_SIGNER_SEED), rights: SignerRights::ALL },
        TrustedSigner { public_key: public_key(&[0x11; 32]), rights: SignerRights::WASM },
    ]
}

/// Native blob parser: checks, accessors, parse/emit round trip, trailer verification.
pub fn blob(data: &[u8]) {
    let Ok(blob) = Blob::new_checked(data) else { return };
    let image_len = blob.image_len();
    assert_eq!(blob.image().len(), image_len as usize);
    assert_eq!(blob.text().len() + blob.rodata().len() + blob.data().len(), image_len as usize);
    assert!(blob.entry() < blob.text_len() && blob.entry() % 4 == 0);
    assert!(blob.memory_len() <= MAX_MEMORY_LEN);
    for import in blob.imports().iter() {
        assert!(import.slot % 4 == 0 && import.slot + 4 <= image_len);
    }
    assert_eq!(blob.imports().iter().count(), blob.imports().len());
    for offset in blob.relocations().iter() {
        assert!(offset % 4 == 0 && offset + 4 <= image_len);
    }
    assert_eq!(blob.signed_part().len() + blob.trailer().len(), data.len());
    assert!(blob.signed_part().len() >= BLOB_HEADER_LEN);

    let repr = BlobRepr::parse(&blob).expect("a checked blob parses");
    let mut emitted = vec![0u8; repr.buffer_len()];
    repr.emit(&mut emitted).expect("a parsed blob emits");
    let again = Blob::new_checked(&emitted[..]).expect("an emitted blob checks");
    assert_eq!(BlobRepr::parse(&again), Ok(repr));
    let _ = verify_blob(&blob, &signers());
}

/// Signature parsers: the wasm section split, the payload view, the single-signature repr and
/// verification.
pub fn signature(data: &[u8]) {
    let _ = verify_wasm(data, &signers());
    if let Ok(module) = split_wasm(data) {
        assert!(module.section.len() + module.content.len() + 8 == data.len());
        walk_payload(&module.payload);
    }
    if let Ok(payload) = SignaturePayload::new_checked(data) {
        walk_payload(&payload);
        if let Ok(repr) = SignatureRepr::parse(&payload) {
            let mut emitted = vec![0u8; repr.buffer_len()];
            repr.emit(&mut emitted).expect("buffer_len is enough");
            // Key ids of other lengths than 12 are not representable: only compare when exact.
            if emitted.len() == data.len() {
                assert_eq!(emitted, data);
            }
        }
    }
}

fn walk_payload(payload: &SignaturePayload<'_>) {
    for set in payload.sets() {
        assert_eq!(set.hash_bytes().len() % 32, 0);
        for signature in set.signatures() {
            let _ = signature.key_id.map(<[u8]>::len);
        }
    }
}

/// Wire decoders: frames, messages (which must re-encode byte for byte), discovery datagrams.
pub fn wire(data: &[u8]) {
    if let Ok(Some(len)) = frame_len(data) {
        let frame = Frame::new_checked(data).expect("frame_len said whole");
        assert_eq!(frame.total_len(), len);
    }
    if let Ok(message) = Message::parse(data) {
        assert_eq!(message.buffer_len(), data.len());
        let mut emitted = vec![0u8; data.len()];
        assert_eq!(message.emit(&mut emitted), Ok(data.len()));
        assert_eq!(emitted, data);
    }
    if let Ok(probe) = Probe::parse(data) {
        let mut emitted = [0u8; crate::wire::discovery::PROBE_LEN];
        probe.emit(&mut emitted).expect("probe fits");
        assert_eq!(&emitted[..], data);
    }
    if let Ok(advert) = Advert::new_checked(data) {
        let repr = AdvertRepr::parse(&advert).expect("a checked advert parses");
        assert_eq!(repr.buffer_len(), data.len());
        let _ = advert.verify_signature();
    }
    // Call result records (a JobResult's `results` field): a checked list re-emits the same bytes.
    if let Ok(results) = crate::wire::call::CallResults::new_checked(data) {
        let mut emitted = vec![0u8; data.len()];
        for (index, value) in results.iter().enumerate() {
            let at = index * crate::wire::call::RESULT_LEN;
            value.emit(&mut emitted[at..]).expect("a result fits");
        }
        assert_eq!(results.len() * crate::wire::call::RESULT_LEN, data.len());
        assert_eq!(emitted, data);
    }
}

/// Boot configuration parser: check, parse, emit must give the same bytes. The input is tried
/// as it is and with its checksum recomputed, so that mutations reach the body's checks.
pub fn config(data: &[u8]) {
    config_round_trip(data);
    if let Some(fixed) = with_fixed_checksum(data) {
        config_round_trip(&fixed);
    }
}

/// `data` with the configuration header's SHA-256 set to match the body it declares, or `None`
/// when the header or body is not all there.
pub fn with_fixed_checksum(data: &[u8]) -> Option<Vec<u8>> {
    let header = crate::config::HEADER_LEN;
    let body_len = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?) as usize;
    let body = data.get(header..header.checked_add(body_len)?)?;
    let mut fixed = data.to_vec();
    fixed[12..header].copy_from_slice(&crate::signature::sha256(body));
    Some(fixed)
}

fn config_round_trip(data: &[u8]) {
    let Ok(config) = Config::new_checked(data) else { return };
    let repr = ConfigRepr::parse(&config).expect("a checked configuration parses");
    let sections = crate::config::Sections::parse(&config).expect("a checked configuration's sections parse");
    let mut emitted = vec![0u8; repr.buffer_len_with(&sections)];
    assert_eq!(repr.emit_with(&sections, &mut emitted), Ok(config.total_len()));
    assert_eq!(&emitted[..], &data[..config.total_len()]);
}

/// The firmware's boot tag list and command line (`jos_abi::atags`): a checked list parses, its
/// parse emits a list that checks and parses the same; every command-line accessor takes the
/// bytes as they come.
pub fn atags(data: &[u8]) {
    use crate::atags::{param, Atags, AtagsRepr, Cmdline};
    let cmdline = Cmdline::new(data);
    let _ = (cmdline.mac_address(param::SMSC95XX_MACADDR), cmdline.number(param::FB_WIDTH));
    for (key, value) in cmdline.params() {
        assert!(!key.is_empty() || value.is_some());
    }
    let Ok(atags) = Atags::new_checked(data) else { return };
    assert!(atags.total_len() <= data.len() && atags.total_len() >= 16);
    let repr = AtagsRepr::parse(&atags).expect("a checked list parses");
    if let Some(text) = repr.cmdline {
        let _ = Cmdline::new(text).mac_address(param::SMSC95XX_MACADDR);
    }
    let mut emitted = vec![0u8; repr.buffer_len()];
    if repr.emit(&mut emitted).is_ok() {
        let again = Atags::new_checked(&emitted[..]).expect("an emitted list checks");
        assert_eq!(AtagsRepr::parse(&again), Ok(repr));
    }
}

/// The fleet's formats (`jos_abi::fleet`): broker settings and status messages that parse
/// re-emit the same bytes.
pub fn fleet(data: &[u8]) {
    use crate::fleet::{BrokerSettings, StatusRepr};
    if let Ok(settings) = BrokerSettings::parse(data) {
        let mut emitted = vec![0u8; settings.buffer_len()];
        assert_eq!(settings.emit(&mut emitted), Ok(data.len()));
        assert_eq!(&emitted[..], data);
    }
    if let Ok(status) = StatusRepr::parse(data) {
        let mut emitted = vec![0u8; status.buffer_len()];
        assert_eq!(status.emit(&mut emitted), Ok(data.len()));
        assert_eq!(&emitted[..], data);
    }
}

/// Fuzz target `fleet_job`: the fleet's job, job input and result messages
/// (`jos_abi::fleet_job`); whatever parses re-emits the same bytes.
pub fn fleet_job(data: &[u8]) {
    use crate::fleet_job::{JobInputRepr, JobRepr, ResultRepr};
    if let Ok(job) = JobRepr::parse(data) {
        let mut emitted = vec![0u8; job.buffer_len()];
        assert_eq!(job.emit(&mut emitted), Ok(data.len()));
        assert_eq!(&emitted[..], data);
        assert_eq!(JobRepr::signed_part(data).len(), data.len() - crate::fleet_job::ENVELOPE_LEN);
    }
    if let Ok(input) = JobInputRepr::parse(data) {
        let mut emitted = vec![0u8; input.buffer_len()];
        assert_eq!(input.emit(&mut emitted), Ok(data.len()));
        assert_eq!(&emitted[..], data);
    }
    if let Ok(result) = ResultRepr::parse(data) {
        let mut emitted = vec![0u8; result.buffer_len()];
        assert_eq!(result.emit(&mut emitted), Ok(data.len()));
        assert_eq!(&emitted[..], data);
    }
}

/// A fuzz target body.
pub type Body = fn(&[u8]);

/// The fuzz targets by name, as in `fuzz/fuzz_targets/`.
pub const TARGETS: [(&str, Body); 7] = [
    ("blob", blob),
    ("signature", signature),
    ("wire", wire),
    ("config", config),
    ("atags", atags),
    ("fleet", fleet),
    ("fleet_job", fleet_job),
];

/// A small deterministic PRNG (xorshift64*), so mutations are the same on every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `bound` (which must be non-zero).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

/// One mutation of `input`: bit flips, byte sets, little-endian words set to edge values, inserts,
/// deletions, truncation, duplication.
pub fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = rng.next_u64() as u8;
            }
            2 if len >= 4 => {
                let at = rng.below(len - 3) & !(rng.below(2) * 3);
                let edges = [0u32, 1, 2, 4, 0x7f, 0x80, 0xff, 0xffff, 0x7fff_ffff, 0xffff_ffff, len as u32, 72];
                let value = edges[rng.below(edges.len())].wrapping_add(rng.below(3) as u32).wrapping_sub(1);
                data[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            3 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(8);
                for _ in 0..count {
                    data.insert(at, rng.next_u64() as u8);
                }
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                data.drain(at..end);
            }
            5 if len > 0 => data.truncate(rng.below(len)),
            6 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let chunk: Vec<u8> = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, chunk);
            }
            _ if len > 0 => {
                let at = rng.below(len);
                data[at] = [0u8, 0x7f, 0x80, 0xff][rng.below(4)];
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
    data
}

/// Valid inputs for each target, built with this crate's encoders: the seed corpus.
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use crate::blob::{Arch, BlobFlags, Import, Table};
    use crate::codec::List;
    use crate::config::{Network, Policy};
    use crate::error::ErrorCode;
    use crate::signature::{sign_blob, sign_wasm};
    use crate::syscall::{AbiVersion, LogLevel, SyscallId};
    use crate::wire::call::Value;
    use crate::wire::discovery::LoadState;
    use crate::wire::{Call, Engine, Format, Formats, JobStatus, Limits, LogLine, Logs, Results, Stats};

    let mut seeds = Vec::new();

    // Blobs: unsigned and signed.
    let imports =
        [Import { slot: 12, syscall: SyscallId::OutputWrite }, Import { slot: 20, syscall: SyscallId::InputRead }];
    let relocations = [16u32];
    let repr = BlobRepr {
        abi_version: AbiVersion::CURRENT,
        arch: Arch::Armv6,
        flags: BlobFlags::NONE,
        entry: 4,
        text: &[0, 0, 0xa0, 0xe3, 0x1e, 0xff, 0x2f, 0xe1],
        rodata: b"jon\0",
        data: &[0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0],
        bss_len: 64,
        align: 8,
        imports: Table::from_slice(&imports),
        relocations: Table::from_slice(&relocations),
        wasm_source: None,
    };
    let mut unsigned = vec![0u8; repr.buffer_len()];
    repr.emit(&mut unsigned).expect("seed blob emits");
    let signed = sign_blob(&unsigned, &FUZZ_SIGNER_SEED, true).expect("seed blob signs");
    seeds.push(("blob", "unsigned", unsigned));
    seeds.push(("blob", "signed", signed));
    // An AOT blob: the flag and the source module's hash after the header.
    let aot = BlobRepr { wasm_source: Some([0xa5; 32]), ..repr };
    let mut aot_bytes = vec![0u8; aot.buffer_len()];
    aot.emit(&mut aot_bytes).expect("seed AOT blob emits");
    seeds.push(("blob", "aot", aot_bytes));

    // Signatures: a signed module, and a bare payload.
    #[rustfmt::skip]
    let module: &[u8] = &[
        0, b'a', b's', b'm', 1, 0, 0, 0,
        1, 4, 1, 0x60, 0, 0,
        3, 2, 1, 0,
        10, 4, 1, 2, 0, 0x0b,
    ];
    let signed_module = sign_wasm(module, &FUZZ_SIGNER_SEED, true).expect("seed module signs");
    let anonymous = sign_wasm(module, &FUZZ_SIGNER_SEED, false).expect("seed module signs");
    let payload = SignatureRepr::sign(crate::signature::ContentType::NativeBlob, b"content", &FUZZ_SIGNER_SEED, true);
    let mut payload_bytes = vec![0u8; payload.buffer_len()];
    payload.emit(&mut payload_bytes).expect("payload emits");
    seeds.push(("signature", "module-key-id", signed_module));
    seeds.push(("signature", "module-anonymous", anonymous));
    seeds.push(("signature", "payload", payload_bytes));

    // Wire: one of each message, a frame, a probe and an advert.
    let limits = Limits { fuel: 1_000_000, memory: 1 << 20, deadline_ms: 1000, output: 4096 };
    let lines = [LogLine { level: LogLevel::Info, text: "started" }, LogLine { level: LogLevel::Warn, text: "odd" }];
    let call = Call::new("add", &[1, -2]).expect("small call");
    let values = [Value::I32(-1), Value::I64(1 << 40), Value::F32(0.5), Value::F64(-2.25)];
    let messages = [
        ("hello", Message::Hello { version: 1, handshake: &[0x42; 48] }),
        ("push-begin", Message::PushBegin { format: Format::Wasm, total_len: 24, sha256: [0xab; 32], limits }),
        ("push-chunk", Message::PushChunk { offset: 0, bytes: b"\0asm\x01\0\0\0" }),
        ("push-end", Message::PushEnd),
        ("push-ok", Message::PushOk { sha256: [0xab; 32] }),
        ("invoke", Message::Invoke { hash: [0xab; 32], limits, input: b"jon", call: None }),
        ("invoke-call", Message::Invoke { hash: [0xab; 32], limits: Limits::default(), input: b"", call: Some(call) }),
        ("progress", Message::Progress { fuel_used: 5000, elapsed_us: 1200, output_len: 16 }),
        (
            "job-result",
            Message::JobResult {
                status: JobStatus::Ok,
                exit_value: 0,
                stats: Stats {
                    fuel_used: 5000,
                    time_us: 1300,
                    cpu_us: 900,
                    cycles: 0,
                    peak_memory_bytes: 65536,
                    engine: Engine::WasmInterpreter,
                    ..Stats::default()
                },
                output: &[0x5d; 16],
                results: Results::EMPTY,
                logs: Logs::from_slice(&lines),
            },
        ),
        (
            "job-result-call",
            Message::JobResult {
                status: JobStatus::Ok,
                exit_value: 0,
                stats: Stats {
                    fuel_used: 70,
                    time_us: 40,
                    cpu_us: 40,
                    cycles: 0,
                    peak_memory_bytes: 65536,
                    engine: Engine::Aot,
                    ..Stats::default()
                },
                output: b"side output\n",
                results: Results::from_slice(&values),
                logs: Logs::from_slice(&[]),
            },
        ),
        ("error", Message::Error { code: ErrorCode::UntrustedSigner, message: "signer not trusted for native" }),
        ("ping", Message::Ping { nonce: 7 }),
        ("pong", Message::Pong { nonce: 7 }),
    ];
    for (name, message) in messages {
        let mut bytes = vec![0u8; message.buffer_len()];
        message.emit(&mut bytes).expect("seed message emits");
        seeds.push(("wire", name, bytes));
    }
    let mut frame = vec![0u8; 16];
    let len = crate::wire::emit_frame(b"\x0a\x01\0\0\0\0\0\0\0", &mut frame).expect("frame fits");
    frame.truncate(len);
    seeds.push(("wire", "frame", frame));
    let mut probe = vec![0u8; crate::wire::discovery::PROBE_LEN];
    Probe { nonce: 99 }.emit(&mut probe).expect("probe fits");
    seeds.push(("wire", "probe", probe));
    let advert = AdvertRepr {
        nonce: 99,
        abi_version: AbiVersion::CURRENT,
        formats: Formats::ALL,
        state: LoadState::Idle,
        queued: 0,
        free_memory: 8 << 20,
        port: crate::wire::OFFLOAD_PORT,
        noise_key: [0x22; 32],
        signing_key: public_key(&FUZZ_SIGNER_SEED),
        name: "jos-fuzz",
    };
    let mut advert_bytes = vec![0u8; advert.buffer_len()];
    advert.emit(&mut advert_bytes, &FUZZ_SIGNER_SEED).expect("advert fits");
    seeds.push(("wire", "advert", advert_bytes));

    // Configurations: DHCP with keys, static without.
    let clients = [[0x41; 32], [0x42; 32]];
    let trusted = signers();
    let policy = Policy {
        max_module_len: 4 << 20,
        limits: Limits { fuel: 10_000_000_000, memory: 16 << 20, deadline_ms: 10_000, output: 16384 },
        queue_len: 4,
        job_ports: crate::config::PortRange { first: 7000, last: 7099 },
    };
    let configs = [
        (
            "dhcp",
            ConfigRepr {
                name: "pi-zero",
                noise_secret: [0x01; 32],
                advert_seed: [0x04; 32],
                network: Network::Dhcp,
                clients: List::from_slice(&clients),
                signers: List::from_slice(&trusted),
                policy,
            },
        ),
        (
            "static",
            ConfigRepr {
                name: "bench",
                noise_secret: [0x02; 32],
                advert_seed: [0x03; 32],
                network: Network::Static { address: [10, 0, 2, 15], prefix_len: 24, gateway: [10, 0, 2, 2] },
                clients: List::from_slice(&[]),
                signers: List::from_slice(&[]),
                policy,
            },
        ),
    ];
    for (name, config) in configs {
        let mut bytes = vec![0u8; config.buffer_len()];
        config.emit(&mut bytes).expect("seed configuration emits");
        seeds.push(("config", name, bytes));
    }
    // A fleet member: the static configuration with a broker section.
    let broker = crate::fleet::BrokerSettings {
        address: [10, 0, 2, 2],
        port: crate::fleet::DEFAULT_PORT,
        fleet: "lab",
        client_id: Some("board-1"),
        username: Some("pi"),
        password: Some(b"password"),
    };
    let sections =
        crate::config::Sections { broker: Some(broker), fleet_key: Some(crate::config::FleetKey([0x46; 32])) };
    let fleet_member = configs[1].1;
    let mut bytes = vec![0u8; fleet_member.buffer_len_with(&sections)];
    fleet_member.emit_with(&sections, &mut bytes).expect("seed configuration emits");
    seeds.push(("config", "fleet", bytes));
    let mut record = vec![0u8; broker.buffer_len()];
    broker.emit(&mut record).expect("seed broker settings emit");
    seeds.push(("fleet", "broker", record));
    let status = crate::fleet::StatusRepr {
        state: crate::fleet::DeviceState::Idle,
        formats: crate::fleet::FORMAT_WASM | crate::fleet::FORMAT_NATIVE,
        abi: crate::AbiVersion::CURRENT.to_u32(),
        heap_free: 100 << 20,
        heap_size: 128 << 20,
        uptime_s: 60,
        jobs_done: 12,
        jobs_failed: 1,
        fleet_messages: 3,
        connects: 2,
        fleet_jobs: 4,
        refusals: crate::fleet::Refusals { replayed: 1, bad_signature: 2, bad_seal: 3, malformed: 4, busy: 0 },
        name: "bench",
    };
    let mut message = vec![0u8; status.buffer_len()];
    status.emit(&mut message).expect("seed status emits");
    seeds.push(("fleet", "status", message));
    // Fleet jobs: one carrying code, one naming a cached module, an input with a call, a result.
    use crate::fleet_job::{Envelope, JobHeader, JobInputRepr, JobRepr, ResultRepr};
    let code: &[u8] = b"\0asm\x01\0\0\0";
    let header = JobHeader {
        format: Some(crate::wire::Format::Wasm),
        job_id: [0x11; crate::fleet_job::JOB_ID_LEN],
        issued_at: 1_800_000_000_000,
        expires_at: 1_800_000_060_000,
        limits: crate::job::Limits { fuel: 1_000_000, memory: 0, deadline_ms: 1000, output: 0 },
        code_hash: crate::signature::sha256(code),
        reply_key: [0x22; 32],
    };
    let envelope = Envelope { key_id: [0x33; crate::signature::KEY_ID_LEN], signature: [0x44; 64] };
    let inline = JobRepr { header, code, sealed_input: &[0x55; 60], envelope };
    let cached = JobRepr { header: JobHeader { format: None, ..header }, code: &[], ..inline };
    for (name, job) in [("job-inline", inline), ("job-cached", cached)] {
        let mut bytes = vec![0u8; job.buffer_len()];
        job.emit(&mut bytes).expect("seed job emits");
        seeds.push(("fleet_job", name, bytes));
    }
    let input = JobInputRepr { call: crate::wire::Call::new("fib", &[20]), input: b"input" };
    let mut bytes = vec![0u8; input.buffer_len()];
    input.emit(&mut bytes).expect("seed job input emits");
    seeds.push(("fleet_job", "input", bytes));
    let result = ResultRepr { job_id: [0x11; crate::fleet_job::JOB_ID_LEN], sealed: &[0x66; 120] };
    let mut bytes = vec![0u8; result.buffer_len()];
    result.emit(&mut bytes).expect("seed result emits");
    seeds.push(("fleet_job", "result", bytes));

    // Boot tag lists: what the Pi firmware passes, and the short form.
    use crate::atags::{AtagsRepr, Core, Initrd, MemoryBank};
    let firmware = AtagsRepr {
        core: Some(Core { flags: 0, page_size: 4096, root_device: 0 }),
        memory: Some(MemoryBank { size: 0x1F00_0000, start: 0 }),
        cmdline: Some(b"bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 smsc95xx.macaddr=B8:27:EB:12:34:56 vc_mem.mem_base=0x1f000000"),
        initrd: Some(Initrd { start: 0x01F0_0000, size: 512 }),
        serial: None,
        revision: None,
    };
    let short = AtagsRepr {
        core: None,
        memory: None,
        cmdline: None,
        initrd: None,
        serial: Some(0x1234_5678),
        revision: Some(0xe),
    };
    for (name, repr) in [("firmware", firmware), ("short", short)] {
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut bytes).expect("seed tag list emits");
        seeds.push(("atags", name, bytes));
    }
    seeds
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn corpus_dir(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target)
    }

    /// The committed seed corpus equals what the encoders produce today. Set
    /// `JOS_WRITE_CORPUS=1` to rewrite it after a deliberate format change.
    #[test]
    fn seed_corpus_is_current() {
        let write = std::env::var_os("JOS_WRITE_CORPUS").is_some();
        for (target, name, bytes) in seeds() {
            let path = corpus_dir(target).join(format!("seed-{name}"));
            if write {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let on_disk = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(on_disk, bytes, "{} is stale: rerun with JOS_WRITE_CORPUS=1", path.display());
        }
    }

    /// Whether the decoder of `target` accepts `bytes` (signatures: verifies).
    fn accepts(target: &str, bytes: &[u8]) -> bool {
        match target {
            "blob" => Blob::new_checked(bytes).is_ok(),
            "signature" => verify_wasm(bytes, &signers()).is_ok() || SignaturePayload::new_checked(bytes).is_ok(),
            "wire" => {
                Message::parse(bytes).is_ok()
                    || Probe::parse(bytes).is_ok()
                    || Advert::new_checked(bytes).is_ok_and(|advert| advert.verify_signature())
                    || frame_len(bytes) == Ok(Some(bytes.len()))
            }
            "atags" => crate::atags::Atags::new_checked(bytes).is_ok(),
            "fleet" => {
                crate::fleet::BrokerSettings::parse(bytes).is_ok() || crate::fleet::StatusRepr::parse(bytes).is_ok()
            }
            "fleet_job" => {
                crate::fleet_job::JobRepr::parse(bytes).is_ok()
                    || crate::fleet_job::JobInputRepr::parse(bytes).is_ok()
                    || crate::fleet_job::ResultRepr::parse(bytes).is_ok()
            }
            "config" => {
                Config::new_checked(bytes).is_ok()
                    || with_fixed_checksum(bytes).is_some_and(|fixed| Config::new_checked(&fixed[..]).is_ok())
            }
            _ => false,
        }
    }

    /// Seeds must reach deep: each one is accepted by its own decoder.
    #[test]
    fn seeds_are_accepted() {
        for (target, name, bytes) in seeds() {
            assert!(accepts(target, &bytes), "seed {target}/{name} is refused by its own decoder");
        }
        assert!(verify_blob(&Blob::new_checked(&seeds()[1].2[..]).unwrap(), &signers()).is_ok());
    }

    /// Every fuzz body over every corpus file plus deterministic mutations of each.
    #[test]
    fn fuzz_bodies_over_corpus_and_mutations() {
        const MUTATIONS_PER_TARGET: usize = 5000;
        for (target, body) in TARGETS {
            // Every file in the corpus (libFuzzer adds its finds locally) goes through the body;
            // the mutations start from the committed seeds only, so this test is the same
            // everywhere.
            let mut files: Vec<(bool, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
                .unwrap_or_else(|error| panic!("corpus for {target}: {error}"))
                .map(|entry| {
                    let entry = entry.unwrap();
                    let seed = entry.file_name().to_string_lossy().starts_with("seed-");
                    (seed, std::fs::read(entry.path()).unwrap())
                })
                .collect();
            files.sort();
            for (_, input) in &files {
                body(input);
            }
            let corpus: Vec<&Vec<u8>> = files.iter().filter(|(seed, _)| *seed).map(|(_, input)| input).collect();
            assert!(!corpus.is_empty(), "no seed corpus for {target}");
            let mut rng = Rng::new(0x6a6f_735f_6675_7a7a ^ target.len() as u64);
            body(&[]);
            let (mut accepted, mut refused) = (0, 0);
            for round in 0..MUTATIONS_PER_TARGET {
                let mutated = mutate(corpus[round % corpus.len()], &mut rng);
                body(&mutated);
                if accepts(target, &mutated) {
                    accepted += 1
                } else {
                    refused += 1
                }
            }
            // The mutations must exercise both paths: some inputs still decode, most do not.
            assert!(accepted >= MUTATIONS_PER_TARGET / 100, "{target}: only {accepted} mutations decode");
            assert!(refused >= MUTATIONS_PER_TARGET / 2, "{target}: only {refused} mutations are refused");
            println!("fuzz body {target}: {accepted} mutations decoded, {refused} refused");
        }
    }

    #[test]
    fn rng_is_deterministic() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first[0], first[1]);
        let mutated = mutate(b"abcdef", &mut Rng::new(3));
        assert_eq!(mutated, mutate(b"abcdef", &mut Rng::new(3)));
    }
}

//! The fleet under QEMU with a real Mosquitto broker (Debian's `mosquitto`, started here on a free
//! loopback port with a generated configuration; the guest reaches it at 10.0.2.2 through QEMU's
//! user-mode network): a device whose boot configuration names the broker connects out, leaves a
//! retained status (read back with `mosquitto_sub`), takes a job message through its shared
//! subscription (counted on its console and in its next status), still takes a direct push,
//! reconnects and republishes after the broker restarts, and the broker publishes its last will
//! (`offline`) when QEMU is killed. Every wait is bounded; the broker and QEMU are killed on drop,
//! also when an assertion fails.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jos_abi::codec::List;
use jos_abi::config::{ConfigRepr, Network, Policy, Sections};
use jos_abi::fleet::{BrokerSettings, DeviceState, StatusRepr};
use jos_abi::signature::{public_key, sha256, sign_wasm, SignerRights, TrustedSigner};
use jos_abi::wire::{self, Format, Limits, Message};
use jos_offload::{host, noise};
use jos_tests::{free_port, kernel_elf, BootOptions, Qemu, ECHO};

const DEVICE_SECRET: [u8; 32] = [0x61; 32];
const ADVERT_SEED: [u8; 32] = [0x62; 32];
const CLIENT_SECRET: [u8; 32] = [0x63; 32];
const DEVELOPER: [u8; 32] = [0x64; 32];
const FLEET: &str = "lab";

/// A Mosquitto broker on 127.0.0.1:`port`, killed on drop.
struct Broker {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker on `port` (MQTT 5, anonymous clients, no persistence: a restart forgets
    /// retained messages) and waits until it accepts connections.
    fn start(port: u16) -> Broker {
        let dir = tempfile::Builder::new().prefix("jos-mosquitto").tempdir().expect("temp dir");
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type all\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto (scripts/setup.sh installs it)");
        let mut broker = Broker { child: Some(child), port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}: {}", broker.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(child) = broker.child.as_mut() {
            assert!(child.try_wait().unwrap().is_none(), "mosquitto exited");
        }
        broker
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The next message on `topic` (a retained one at once), as bytes, or `None` after `wait`.
    fn next_message(&self, topic: &str, wait: Duration) -> Option<Vec<u8>> {
        let output = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-V", "mqttv5", "-t", topic, "-C", "1"])
            .args(["-W", &wait.as_secs().max(1).to_string(), "-F", "%x"])
            .stdin(Stdio::null())
            .output()
            .expect("run mosquitto_sub (scripts/setup.sh installs mosquitto-clients)");
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().next()?.trim();
        (!line.is_empty()).then(|| hex::decode(line).expect("mosquitto_sub prints hex"))
    }

    /// Waits (at most `timeout`) for the retained status on `topic` to satisfy `accept`.
    fn status_where(&self, topic: &str, timeout: Duration, accept: impl Fn(&StatusRepr<'_>) -> bool) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(bytes) = self.next_message(topic, Duration::from_secs(3)) {
                let status = StatusRepr::parse(&bytes).expect("the device's status parses");
                if accept(&status) {
                    return bytes;
                }
                last = Some(format!("{status:?}"));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("no matching status on {topic} within {timeout:?}; last {last:?}; broker log:\n{}", self.log());
    }

    /// Publishes `payload` on `topic` at QoS 1.
    fn publish(&self, topic: &str, payload: &str) {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-V", "mqttv5", "-q", "1", "-t", topic])
            .args(["-m", payload])
            .status()
            .expect("run mosquitto_pub");
        assert!(status.success(), "mosquitto_pub failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config_file(broker_port: u16) -> PathBuf {
    config_file_with(broker_port, None)
}

fn config_file_with(broker_port: u16, fleet_key: Option<[u8; 32]>) -> PathBuf {
    let clients = [noise::public_key(&CLIENT_SECRET)];
    let signers = [TrustedSigner { public_key: public_key(&DEVELOPER), rights: SignerRights::ALL }];
    let repr = ConfigRepr {
        name: "qemu-fleet",
        noise_secret: DEVICE_SECRET,
        advert_seed: ADVERT_SEED,
        network: Network::Dhcp,
        clients: List::from_slice(&clients),
        signers: List::from_slice(&signers),
        policy: Policy {
            max_module_len: 1024 * 1024,
            limits: Limits { fuel: 2_000_000_000, memory: 16 << 20, deadline_ms: 60_000, output: 32 * 1024 },
            queue_len: 8,
            job_ports: jos_abi::config::PortRange::DEFAULT,
        },
    };
    let broker = BrokerSettings {
        address: [10, 0, 2, 2],
        port: broker_port,
        fleet: FLEET,
        client_id: None,
        username: None,
        password: None,
    };
    let sections = Sections { broker: Some(broker), fleet_key: fleet_key.map(jos_abi::config::FleetKey) };
    jos_tests::write_config_with(&repr, &sections, if fleet_key.is_some() { "fleet-jobs" } else { "fleet" })
}

/// A direct session pushes a signed module: the device answers `PushOk` with its hash.
fn direct_push(port: u16) {
    let module = sign_wasm(&wat::parse_str(ECHO).unwrap(), &DEVELOPER, true).unwrap();
    let device_key = noise::public_key(&DEVICE_SECRET);
    let mut client = host::Client::connect(("127.0.0.1", port), &CLIENT_SECRET, &device_key, Duration::from_secs(60))
        .expect("a direct session opens beside the fleet connection");
    let hash = sha256(&module);
    client
        .send(&Message::PushBegin {
            format: Format::Wasm,
            total_len: module.len() as u32,
            sha256: hash,
            limits: Limits::default(),
        })
        .unwrap();
    for (index, chunk) in module.chunks(wire::MAX_CHUNK_LEN).enumerate() {
        client.send(&Message::PushChunk { offset: (index * wire::MAX_CHUNK_LEN) as u32, bytes: chunk }).unwrap();
    }
    client.send(&Message::PushEnd).unwrap();
    let reply = client.next_plain().expect("the device answers the push");
    match Message::parse(&reply).unwrap() {
        Message::PushOk { sha256 } => assert_eq!(sha256, hash),
        other => panic!("push refused: {other:?}"),
    }
}

#[test]
fn fleet_device_announces_itself_takes_jobs_reconnects_and_leaves_a_will() {
    let broker_port = free_port(false);
    let mut broker = Broker::start(broker_port);
    let config = config_file(broker_port);
    let session_port = free_port(false);
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    let netdev = format!("user,id=n0,hostfwd=tcp:127.0.0.1:{session_port}-:4748");
    options.extra_args = vec![
        "-netdev".into(),
        netdev,
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-device".into(),
        format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
    ];
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let client_id = jos_abi::fleet::default_client_id(&public_key(&ADVERT_SEED));
    let topic = jos_abi::fleet::status_topic(FLEET, client_id.as_str());
    qemu.wait_for_line_containing(
        &format!("fleet: joining fleet {FLEET} through broker 10.0.2.2:{broker_port} as {client_id}"),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    qemu.wait_for_line_containing(
        "fleet: subscribed to $share/lab/jos/lab/jobs on connection 1",
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}\nbroker log:\n{}", broker.log()));

    // (a) The retained status: what the device is and does.
    let bytes =
        broker.status_where(topic.as_str(), Duration::from_secs(30), |status| status.state == DeviceState::Idle);
    let status = StatusRepr::parse(&bytes).unwrap();
    assert_eq!(status.name, "qemu-fleet");
    assert_eq!(status.connects, 1);
    assert_eq!(status.fleet_messages, 0);
    assert_eq!(status.abi, jos_abi::AbiVersion::CURRENT.to_u32());
    assert_eq!(status.formats, jos_abi::fleet::FORMAT_WASM | jos_abi::fleet::FORMAT_NATIVE);
    assert!(status.heap_free > 0 && status.heap_free < status.heap_size, "{status:?}");
    assert!(broker.log().contains("$share/lab/jos/lab/jobs"), "the broker saw the shared subscription");

    // A job message through the shared subscription: counted on the console and in the status.
    broker.publish(&jos_abi::fleet::jobs_topic(FLEET).to_string(), "job-1");
    qemu.wait_for_line_containing("fleet: job message 1 (5 bytes) refused", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    broker.status_where(topic.as_str(), Duration::from_secs(30), |status| {
        status.fleet_messages == 1 && status.refusals.malformed == 1
    });

    // Direct sessions still work beside the fleet connection.
    direct_push(session_port);

    // (b) The broker restarts (forgetting every retained message): the device reconnects and
    // publishes its status again.
    broker.stop();
    qemu.wait_for_line_containing("fleet: broker connection ended", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    broker = Broker::start(broker_port);
    qemu.wait_for_line_containing("fleet: connected to the broker (connection 2)", Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\nbroker log:\n{}", broker.log()));
    broker.status_where(topic.as_str(), Duration::from_secs(30), |status| {
        status.connects == 2 && status.state == DeviceState::Idle && status.fleet_messages == 1
    });
    // The new session subscribed again: a second job arrives.
    qemu.wait_for_line_containing(
        "fleet: subscribed to $share/lab/jos/lab/jobs on connection 2",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    broker.publish(&jos_abi::fleet::jobs_topic(FLEET).to_string(), "job-22");
    qemu.wait_for_line_containing("fleet: job message 2 (6 bytes)", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));

    // (c) The device dies: the broker publishes its last will, a retained `offline` status.
    qemu.kill();
    let bytes =
        broker.status_where(topic.as_str(), Duration::from_secs(60), |status| status.state == DeviceState::Offline);
    let will = StatusRepr::parse(&bytes).unwrap();
    assert_eq!((will.name, will.connects), ("qemu-fleet", 2), "the will was made at the second connection");
    let _ = std::fs::remove_file(config);
}

/// The fleet's X25519 secret in the fleet-jobs test's configuration.
const FLEET_SECRET: [u8; 32] = [0x65; 32];
/// The test client's reply key (results are sealed to its public key).
const REPLY_SECRET: [u8; 32] = [0x66; 32];
/// A signer the device does not trust.
const STRANGER: [u8; 32] = [0x67; 32];

/// A fleet job as this test builds it: the abi types and snow, as a client does.
struct TestJob<'a> {
    id: [u8; 16],
    code: &'a [u8],
    cached: bool,
    input: &'a [u8],
    signer: [u8; 32],
}

/// snow's primitives with randomness from the OS.
fn resolver() -> Box<noise::Resolver> {
    static ENTROPY: jos_offload::OsEntropy = jos_offload::OsEntropy;
    Box::new(noise::Resolver::new(&ENTROPY))
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The job message's bytes: input sealed with Noise N to the fleet key (prologue the header),
/// envelope signed by `job.signer`.
fn job_message(job: &TestJob<'_>) -> Vec<u8> {
    use jos_abi::fleet_job::{Envelope, JobHeader, JobInputRepr, JobRepr, INPUT_NOISE_PARAMS};
    let issued_at = unix_ms();
    let header = JobHeader {
        format: (!job.cached).then_some(Format::Wasm),
        job_id: job.id,
        issued_at,
        expires_at: issued_at + 5 * 60 * 1000,
        limits: Limits::default(),
        code_hash: sha256(job.code),
        reply_key: noise::public_key(&REPLY_SECRET),
    };
    let input = JobInputRepr { call: None, input: job.input };
    let mut plain = vec![0u8; input.buffer_len()];
    input.emit(&mut plain).unwrap();
    let mut sealer = snow::Builder::with_resolver(INPUT_NOISE_PARAMS.parse().unwrap(), resolver())
        .remote_public_key(&noise::public_key(&FLEET_SECRET))
        .unwrap()
        .prologue(&header.to_bytes())
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut sealed = vec![0u8; 65535];
    let len = sealer.write_message(&plain, &mut sealed).unwrap();
    let code: &[u8] = if job.cached { &[] } else { job.code };
    let repr = JobRepr {
        header,
        code,
        sealed_input: &sealed[..len],
        envelope: Envelope { key_id: [0; 12], signature: [0; 64] },
    };
    sign_job(&repr, &job.signer)
}

/// `repr` encoded with an envelope signed by `signer`.
fn sign_job(repr: &jos_abi::fleet_job::JobRepr<'_>, signer: &[u8; 32]) -> Vec<u8> {
    use ed25519_dalek::ed25519::signature::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(signer);
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit_signed(&mut bytes, |signed| jos_abi::fleet_job::Envelope {
        key_id: jos_abi::signature::key_id(&public_key(signer)),
        signature: key.sign(signed).to_bytes(),
    })
    .unwrap();
    bytes
}

/// A `mosquitto_sub` waiting for one message on the results topic (started before the job is
/// published: results are not retained), killed on drop.
struct ResultWaiter(Option<Child>);

impl ResultWaiter {
    fn start(broker: &Broker, topic: &str) -> ResultWaiter {
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-V", "mqttv5", "-t", topic, "-C", "1"])
            .args(["-W", "120", "-F", "%D %x"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run mosquitto_sub");
        // Let it subscribe before the job goes out.
        std::thread::sleep(Duration::from_millis(1500));
        ResultWaiter(Some(child))
    }

    /// The correlation data and the payload of the message, or a panic after the subscriber's
    /// own timeout (120 s).
    fn wait(mut self) -> (Vec<u8>, Vec<u8>) {
        let child = self.0.take().unwrap();
        let output = child.wait_with_output().expect("mosquitto_sub ends");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let line = text.lines().next().unwrap_or_else(|| panic!("no result message within 120 s"));
        let (correlation, payload) = line.rsplit_once(' ').expect("correlation data and payload");
        (correlation.as_bytes().to_vec(), hex::decode(payload.trim()).expect("hex payload"))
    }
}

impl Drop for ResultWaiter {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Opens a result message as the client: the job id matches, the sealed result opens with the
/// reply key and was sealed by the device's Noise static key; returns the wire message's bytes.
fn open_result(message: &[u8], job_id: &[u8; 16]) -> Vec<u8> {
    use jos_abi::fleet_job::{ResultRepr, RESULT_NOISE_PARAMS};
    let result = ResultRepr::parse(message).expect("the result message parses");
    assert_eq!(&result.job_id, job_id);
    let mut opener = snow::Builder::with_resolver(RESULT_NOISE_PARAMS.parse().unwrap(), resolver())
        .local_private_key(&REPLY_SECRET)
        .unwrap()
        .prologue(job_id)
        .unwrap()
        .build_responder()
        .unwrap();
    let mut plain = vec![0u8; 65535];
    let len = opener.read_message(result.sealed, &mut plain).expect("the sealed result opens with the reply key");
    assert_eq!(
        opener.get_remote_static(),
        Some(&noise::public_key(&DEVICE_SECRET)[..]),
        "the result is authenticated as the device's"
    );
    plain.truncate(len);
    plain
}

/// Publishes a job message (QoS 1) with its response topic and correlation data.
fn publish_job(broker: &Broker, bytes: &[u8], job_id: &[u8; 16], reply_topic: &str) {
    let file = broker.dir.path().join("job.bin");
    std::fs::write(&file, bytes).unwrap();
    let correlation = std::str::from_utf8(job_id).expect("the test's job ids are text");
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port.to_string(), "-V", "mqttv5", "-q", "1"])
        .args(["-t", jos_abi::fleet::jobs_topic(FLEET).as_str()])
        .args(["-D", "publish", "response-topic", reply_topic, "-D", "publish", "correlation-data", correlation])
        .arg("-f")
        .arg(&file)
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed");
}

fn expect_echo(plain: &[u8], input: &[u8]) {
    match Message::parse(plain).expect("a wire message") {
        Message::JobResult { status, output, exit_value, .. } => {
            assert_eq!(status, wire::JobStatus::Ok);
            assert_eq!(output, input);
            assert_eq!(exit_value, input.len() as i32);
        }
        other => panic!("not a JobResult: {other:?}"),
    }
}

#[test]
fn fleet_jobs_run_sealed_and_refusals_are_counted() {
    let broker_port = free_port(false);
    let broker = Broker::start(broker_port);
    let config = config_file_with(broker_port, Some(FLEET_SECRET));
    let session_port = free_port(false);
    let mut options = BootOptions::new("raspi0", kernel_elf(""));
    options.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{session_port}-:4748"),
        "-device".into(),
        "usb-net,netdev=n0,port=1".into(),
        "-device".into(),
        format!("loader,file={},addr=0x01F00000,force-raw=on", config.display()),
    ];
    let mut qemu = Qemu::boot(&options).expect("start QEMU");
    let client_id = jos_abi::fleet::default_client_id(&public_key(&ADVERT_SEED));
    let status_topic = jos_abi::fleet::status_topic(FLEET, client_id.as_str());
    qemu.wait_for_line_containing(
        "fleet: subscribed to $share/lab/jos/lab/jobs on connection 1",
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}\nbroker log:\n{}", broker.log()));
    let reply_topic = "jos/lab/results/f1-test";
    let module = sign_wasm(&wat::parse_str(ECHO).unwrap(), &DEVELOPER, true).unwrap();

    // A job with its code inline: the sealed result comes back, opens, and is the device's.
    let first =
        TestJob { id: *b"f1-job-000000001", code: &module, cached: false, input: b"sealed in", signer: DEVELOPER };
    let first_bytes = job_message(&first);
    let waiter = ResultWaiter::start(&broker, reply_topic);
    publish_job(&broker, &first_bytes, &first.id, reply_topic);
    let (correlation, message) = waiter.wait();
    assert_eq!(correlation, first.id, "the result carries the job's correlation data");
    expect_echo(&open_result(&message, &first.id), b"sealed in");
    // The job's PUBACK went out only after the result was published (manual acknowledgement).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (published, acknowledged) = loop {
        let log = broker.log();
        let from = |what: &str| format!("Received {what} from {client_id}");
        let published = log.lines().position(|line| line.contains(&from("PUBLISH")) && line.contains(reply_topic));
        let acknowledged = log.lines().position(|line| line.contains(&from("PUBACK")));
        if (published.is_some() && acknowledged.is_some()) || Instant::now() > deadline {
            break (published, acknowledged);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match (published, acknowledged) {
        (Some(published), Some(acknowledged)) => {
            assert!(published < acknowledged, "PUBACK before the result:\n{}", broker.log())
        }
        _ => panic!("no result PUBLISH or job PUBACK in the broker log:\n{}", broker.log()),
    }

    // Refused, each counted: a sealed input altered (and re-signed by the trusted signer, so only
    // the seal fails), an envelope by an untrusted signer, the first message replayed.
    let parsed = jos_abi::fleet_job::JobRepr::parse(&first_bytes).unwrap();
    let mut sealed = parsed.sealed_input.to_vec();
    sealed[40] ^= 1;
    let altered_id = *b"f1-job-000000002";
    let altered = jos_abi::fleet_job::JobRepr {
        header: jos_abi::fleet_job::JobHeader { job_id: altered_id, ..parsed.header },
        sealed_input: &sealed,
        ..parsed
    };
    publish_job(&broker, &sign_job(&altered, &DEVELOPER), &altered_id, reply_topic);
    let stranger = TestJob { id: *b"f1-job-000000003", signer: STRANGER, ..first };
    publish_job(&broker, &job_message(&stranger), &stranger.id, reply_topic);
    publish_job(&broker, &first_bytes, &first.id, reply_topic);
    let bytes = broker.status_where(status_topic.as_str(), Duration::from_secs(60), |status| {
        status.refusals.total() >= 3 && status.fleet_jobs >= 1
    });
    let status = StatusRepr::parse(&bytes).unwrap();
    assert_eq!(status.fleet_jobs, 1, "{status:?}");
    assert_eq!(status.refusals.bad_seal, 1, "{status:?}");
    assert_eq!(status.refusals.bad_signature, 1, "{status:?}");
    assert_eq!(status.refusals.replayed, 1, "{status:?}");
    assert_eq!((status.refusals.malformed, status.refusals.busy), (0, 0), "{status:?}");
    assert_eq!(status.fleet_messages, 4, "{status:?}");

    // The device goes on: a job naming the now cached module by hash, and a direct push.
    let cached = TestJob { id: *b"f1-job-000000004", cached: true, input: b"again", ..first };
    let waiter = ResultWaiter::start(&broker, reply_topic);
    publish_job(&broker, &job_message(&cached), &cached.id, reply_topic);
    let (correlation, message) = waiter.wait();
    assert_eq!(correlation, cached.id);
    expect_echo(&open_result(&message, &cached.id), b"again");
    direct_push(session_port);
    broker.status_where(status_topic.as_str(), Duration::from_secs(30), |status| status.fleet_jobs == 2);
    qemu.kill();
    let _ = std::fs::remove_file(config);
}

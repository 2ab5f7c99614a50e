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
    jos_tests::write_config_with(&repr, &Sections { broker: Some(broker) }, "fleet")
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
    qemu.wait_for_line_containing("fleet: job message 1 (5 bytes) on jos/lab/jobs", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    broker.status_where(topic.as_str(), Duration::from_secs(30), |status| status.fleet_messages == 1);

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

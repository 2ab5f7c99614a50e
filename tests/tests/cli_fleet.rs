//! `jos-cli fleet` as a process against a real Mosquitto (no emulated device): `fleet status`
//! decodes retained statuses published with `mosquitto_pub` (a device pinned in the trust store
//! shown as such, its refusal counters, an offline will), and the usage and setup errors exit
//! with their codes and leave nothing behind: no fleet key, no such inputs folder, an
//! unreachable broker, a bad job timeout. Every command runs with a timeout; the broker is killed
//! on drop.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jos_abi::fleet::{DeviceState, Refusals, StatusRepr, FORMAT_WASM};
use jos_client::store::{self, Home, TrustStore, TrustedDevice};
use jos_tests::cli::jos_cli;
use jos_tests::fleet_lab::Mosquitto;

fn run(home: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(jos_cli())
        .env("JOS_HOME", home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start jos-cli");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("jos-cli {args:?} ran past 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn publish_retained(port: u16, topic: &str, payload: &[u8], dir: &Path) {
    let file = dir.join("payload.bin");
    std::fs::write(&file, payload).unwrap();
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5", "-q", "1", "-r", "-t", topic, "-f"])
        .arg(&file)
        .status()
        .expect("run mosquitto_pub (scripts/setup.sh installs mosquitto-clients)");
    assert!(status.success(), "mosquitto_pub failed");
}

fn status_bytes(name: &str, state: DeviceState, refusals: Refusals) -> Vec<u8> {
    let status = StatusRepr {
        state,
        formats: FORMAT_WASM,
        abi: jos_abi::AbiVersion::CURRENT.to_u32(),
        heap_free: 3 << 20,
        heap_size: 4 << 20,
        uptime_s: 77,
        jobs_done: 12,
        jobs_failed: 1,
        fleet_messages: 15,
        connects: 2,
        fleet_jobs: 11,
        refusals,
        name,
    };
    let mut bytes = vec![0; status.buffer_len()];
    status.emit(&mut bytes).unwrap();
    bytes
}

#[test]
fn fleet_status_decodes_retained_statuses_and_errors_have_their_codes() {
    let broker = Mosquitto::start();
    let work = tempfile::Builder::new().prefix("jos-cli-fleet").tempdir().unwrap();
    let home = work.path().join("home");
    let advert_seed = [0x31; 32];
    let advert_key = jos_abi::signature::public_key(&advert_seed);
    Home::at(&home)
        .save_trust(&TrustStore { devices: vec![TrustedDevice::new("bench-pi", &advert_key, &[0x32; 32])] })
        .unwrap();
    let pinned_id = jos_abi::fleet::default_client_id(&advert_key).as_str().to_owned();
    let refusals = Refusals { replayed: 1, bad_signature: 2, bad_seal: 3, malformed: 4, busy: 5 };
    publish_retained(
        broker.port,
        &format!("jos/lab/status/{pinned_id}"),
        &status_bytes("bench-pi", DeviceState::Busy, refusals),
        work.path(),
    );
    publish_retained(
        broker.port,
        "jos/lab/status/jos-stranger",
        &status_bytes("gone", DeviceState::Offline, Refusals::default()),
        work.path(),
    );
    let address = format!("127.0.0.1:{}", broker.port);

    // No fleet key here: --fleet names it.
    let output = run(&home, &["fleet", "--broker", &address, "--fleet", "lab", "status", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let devices = status["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 2, "{status}");
    let pi = devices.iter().find(|device| device["name"] == "bench-pi").expect("bench-pi");
    assert_eq!(pi["state"], "busy");
    assert_eq!(pi["trusted_as"], "bench-pi");
    assert_eq!((pi["jobs_done"].as_u64(), pi["fleet_jobs"].as_u64()), (Some(12), Some(11)));
    let counted = &pi["refusals"];
    assert_eq!(
        [
            &counted["replayed"],
            &counted["bad_signature"],
            &counted["bad_seal"],
            &counted["malformed"],
            &counted["busy"]
        ]
        .map(|value| value.as_u64().unwrap()),
        [1, 2, 3, 4, 5]
    );
    let gone = devices.iter().find(|device| device["name"] == "gone").expect("the offline device");
    assert_eq!((gone["state"].as_str(), gone["trusted_as"].is_null()), (Some("offline"), true));

    // The table form: one line per device, the refusals summed.
    let output = run(&home, &["fleet", "--broker", &address, "--fleet", "lab", "status"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("2 device(s), 1 online"), "{text}");
    let line = text.lines().find(|line| line.starts_with("bench-pi")).expect("a line for bench-pi");
    assert!(line.contains("busy") && line.contains("15 (1/2/3/4/5)") && line.contains("yes"), "{line}");

    // Errors: which fleet (none with a key), no fleet key, no inputs, bad timeout, no broker.
    let inputs = work.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::write(inputs.join("a.txt"), "1 a").unwrap();
    let module = work.path().join("m.wasm");
    std::fs::write(&module, wat::parse_str(jos_tests::ECHO).unwrap()).unwrap();
    store::write_key_file(&Home::at(&home).signing_key_path(), "test", &[0x33; 32], true).unwrap();
    let push = |extra: &[&str]| {
        let mut args = vec!["fleet", "--broker", &address, "push", module.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&home, &args)
    };
    let output = push(&["--inputs", inputs.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "no --fleet and no fleet key: usage");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--fleet"));
    let output = push(&["--fleet", "lab", "--inputs", inputs.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(21), "no key for fleet lab: not set up");
    assert!(String::from_utf8_lossy(&output.stderr).contains("provision --fleet lab"));
    store::write_key_file(&Home::at(&home).fleet_key_path("lab"), "test", &[0x34; 32], true).unwrap();
    let output = push(&["--inputs", work.path().join("missing").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "no inputs folder");
    let output = push(&["--inputs", inputs.to_str().unwrap(), "--job-timeout", "901"]);
    assert_eq!(output.status.code(), Some(2), "a job lives at most 15 minutes");
    let dead = format!("127.0.0.1:{}", jos_tests::free_port(false));
    let output = run(
        &home,
        &["fleet", "--broker", &dead, "push", module.to_str().unwrap(), "--inputs", inputs.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(8), "no broker: unreachable");
    assert!(!inputs.join("a.txt.out").exists() && !inputs.join("a.txt.err").exists(), "nothing written");
}

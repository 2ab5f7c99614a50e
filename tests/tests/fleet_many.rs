//! Three emulated devices on one Mosquitto broker (`jos_tests::fleet_lab`), driven the way a user
//! of a fleet meets it: `jos-cli fleet status` and `jos-cli fleet push` as processes (60 MD5
//! jobs, every result checked against the host's MD5, exactly one per input, each device ran
//! some), then the library (`jos_client::fleet`) while the broker restarts in the middle of a run
//! and while a device is killed in the middle of a job: both runs complete with every result
//! correct. Last, a job signed by a key the devices do not trust: refused and counted on the
//! devices (`fleet status`), the client gives up with exit 20, and the fleet goes on. Then
//! `jos-cli fleet invoke` by a hash prefix runs the cached module (its results checked), and an
//! unknown hash ends with exit 17 (not cached).
//!
//! One test boots the three devices once (three QEMUs are the most this machine runs at once);
//! every wait is bounded, and the broker and QEMUs are killed on drop, also when an assertion
//! fails.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use jos_abi::wire::{Format, JobStatus};
use jos_client::fleet::{FleetClient, FleetProgress, FleetRun, RunOptions, Task};
use jos_tests::cli::jos_cli;
use jos_tests::fleet_lab::{FleetLab, DEVELOPER};
use md5::Digest as _;

fn md5_hex(text: &str) -> String {
    hex::encode(md5::Md5::digest(text.as_bytes()))
}

fn md5_module() -> Vec<u8> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-examples/c/md5.c");
    jos_tests::build_signed(&source, Format::Wasm, &DEVELOPER).expect("md5.c builds (clang from scripts/setup.sh)")
}

fn cli(lab: &FleetLab, args: &[&str]) -> Output {
    let port = lab.broker.port.to_string();
    let broker = format!("127.0.0.1:{port}");
    let mut command = Command::new(jos_cli());
    command.env("JOS_HOME", lab.home()).args(["fleet", "--broker", &broker]).args(args);
    // Bounded: every `fleet` command here ends within its own timeouts; this is the backstop.
    let output = run_with_timeout(command, Duration::from_secs(600));
    eprintln!("jos-cli fleet {args:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    output
}

fn run_with_timeout(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start jos-cli");
    let id = child.id();
    let (done, waited) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    if waited.recv_timeout(limit).is_err() {
        // SAFETY: `kill` on the process id of our own child, which has not been reaped yet (the
        // waiter thread reaps it only after it exits).
        unsafe { libc::kill(id as i32, libc::SIGKILL) };
        panic!("jos-cli ran longer than {limit:?}");
    }
    waiter.join().expect("waiter").expect("jos-cli output")
}

fn status_json(lab: &FleetLab) -> serde_json::Value {
    let output = cli(lab, &["status", "--json", "--wait", "3000"]);
    assert!(output.status.success(), "fleet status failed");
    serde_json::from_slice(&output.stdout).expect("fleet status --json prints JSON")
}

/// Every task has one correct result; returns how many each device ran.
fn check_run(run: &FleetRun, inputs: &[String]) -> BTreeMap<String, usize> {
    assert_eq!(run.results.len(), inputs.len(), "one result per task");
    let mut per_device = BTreeMap::new();
    for (input, result) in inputs.iter().zip(&run.results) {
        let job = result.outcome.as_ref().unwrap_or_else(|error| panic!("task {input:?} failed: {error}"));
        assert_eq!(job.status, JobStatus::Ok, "task {input:?}: {job:?}");
        let text = input.split_once(' ').map_or("jon", |(_, text)| text);
        assert_eq!(String::from_utf8_lossy(&job.output).trim(), md5_hex(text), "task {input:?} from {}", result.device);
        *per_device.entry(result.device.clone()).or_default() += 1;
    }
    per_device
}

#[test]
fn three_devices_share_jobs_survive_a_broker_restart_and_a_dead_device() {
    let mut lab = FleetLab::start(3, None, Duration::from_secs(120)).unwrap_or_else(|error| panic!("{error}"));
    let module = md5_module();

    // (1) `fleet status`: three devices, idle, pinned in the trust store.
    let status = status_json(&lab);
    let devices = status["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 3, "{status}");
    for device in devices {
        assert_eq!(device["state"], "idle", "{device}");
        assert!(device["trusted_as"].is_string(), "the device is matched to its pin: {device}");
    }

    // (2) `fleet push` of 60 MD5 jobs, one per input file: each result beside its input.
    let work = tempfile::Builder::new().prefix("jos-fleet-inputs").tempdir().unwrap();
    let module_path = work.path().join("md5.wasm");
    std::fs::write(&module_path, &module).unwrap();
    let inputs = work.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    for index in 0..60 {
        std::fs::write(inputs.join(format!("job-{index:02}.txt")), format!("1000 message number {index}")).unwrap();
    }
    let output = cli(
        &lab,
        &["push", module_path.to_str().unwrap(), "--inputs", inputs.to_str().unwrap(), "--json", "--job-timeout", "60"],
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("fleet push --json prints JSON");
    assert!(output.status.success(), "fleet push failed: {report}");
    let tasks = report["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 60, "exactly one result per input");
    let mut seen = HashSet::new();
    for (index, task) in tasks.iter().enumerate() {
        let input = inputs.join(format!("job-{index:02}.txt"));
        let out = std::fs::read_to_string(input.with_extension("txt.out")).expect("the result beside its input");
        assert_eq!(out.trim(), md5_hex(&format!("message number {index}")), "job {index}");
        assert!(!input.with_extension("txt.err").exists(), "job {index} left an error file");
        assert_eq!(task["input"].as_str(), input.to_str(), "results in input order");
        assert!(seen.insert(task["input"].as_str().unwrap().to_string()), "one entry per input");
        assert_eq!(task["status"], "ok");
    }
    let by_device = report["devices"].as_object().expect("devices");
    assert_eq!(by_device.len(), 3, "each device ran some of the 60 jobs: {by_device:?}");
    assert_eq!(by_device.values().map(|count| count.as_u64().unwrap()).sum::<u64>(), 60);

    // (3) The broker restarts in the middle of a run: devices and client reconnect, the jobs
    // lost with it are published again after their deadline, and every task gets its result.
    let inputs: Vec<String> = (0..30).map(|index| format!("20000 restart {index}")).collect();
    let shared: Arc<[u8]> = Arc::from(module.as_slice());
    let tasks: Vec<Task> = inputs.iter().map(|input| Task::wasm(shared.clone(), input.as_bytes())).collect();
    let options = RunOptions { job_timeout: Duration::from_secs(20), max_attempts: 5, ..RunOptions::default() };
    let keys = lab.keys();
    let mut client = FleetClient::connect(&lab.settings()).expect("connect to the broker");
    let (finished_tx, finished) = mpsc::channel();
    let run = std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            client.run(&tasks, &keys, &options, &mut |progress| {
                if matches!(progress, FleetProgress::Finished { .. }) {
                    let _ = finished_tx.send(());
                }
            })
        });
        for _ in 0..8 {
            finished.recv_timeout(Duration::from_secs(120)).expect("results arrive before the restart");
        }
        lab.broker.stop();
        std::thread::sleep(Duration::from_secs(2));
        lab.broker.restart();
        runner.join().expect("the run's thread")
    })
    .expect("the run completes after the broker restart");
    let per_device = check_run(&run, &inputs);
    eprintln!("broker restart run: {per_device:?}, {} published again", run.republished);
    for device in &mut lab.devices {
        device
            .qemu
            .wait_for_line_containing("fleet: connected to the broker (connection 2)", Duration::from_secs(5))
            .unwrap_or_else(|error| panic!("{} reconnected: {error}", device.name));
    }
    drop(client);

    // (4) A device is killed in the middle of a job: its task still completes, elsewhere.
    let inputs: Vec<String> = (0..6).map(|index| format!("100000 slow {index}")).collect();
    let tasks: Vec<Task> = inputs.iter().map(|input| Task::wasm(shared.clone(), input.as_bytes())).collect();
    let options = RunOptions { job_timeout: Duration::from_secs(40), max_attempts: 4, ..RunOptions::default() };
    let mut client = FleetClient::connect(&lab.settings()).expect("connect to the broker again");
    let victim = lab.devices[2].name.clone();
    let (run, accepted) = std::thread::scope(|scope| {
        let runner = scope.spawn(|| client.run(&tasks, &keys, &options, &mut |_| {}));
        let device = &mut lab.devices[2];
        let before = device.qemu.output().matches("bytes) accepted").count();
        let deadline = Instant::now() + Duration::from_secs(120);
        while device.qemu.output().matches("bytes) accepted").count() == before {
            assert!(Instant::now() < deadline, "{victim} took no job");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The job runs (100000 MD5 rounds take seconds): kill the board now.
        std::thread::sleep(Duration::from_millis(300));
        device.qemu.kill();
        let accepted = device.qemu.output().matches("bytes) accepted").count() - before;
        (runner.join().expect("the run's thread"), accepted)
    });
    let run = run.expect("the run completes without the killed device");
    let per_device = check_run(&run, &inputs);
    let from_victim = per_device.get(&victim).copied().unwrap_or(0);
    eprintln!("dead device run: {per_device:?}, {victim} accepted {accepted}, {} published again", run.republished);
    assert!(from_victim < accepted, "a job {victim} accepted finished on another device: {per_device:?}");
    drop(client);

    // (5) A job signed by a key the devices do not trust: dropped and counted, no result (the
    // client gives up: exit 20), and the fleet goes on.
    let home = jos_client::store::Home::at(lab.home());
    let signing = home.signing_key_path();
    jos_client::store::write_key_file(&signing, "an untrusted key", &[0x99; 32], true).unwrap();
    let few = work.path().join("few");
    std::fs::create_dir(&few).unwrap();
    std::fs::write(few.join("one.txt"), "1 one").unwrap();
    let output = cli(
        &lab,
        &[
            "push",
            module_path.to_str().unwrap(),
            "--inputs",
            few.to_str().unwrap(),
            "--job-timeout",
            "5",
            "--attempts",
            "1",
        ],
    );
    assert_eq!(output.status.code(), Some(20), "no device answers an untrusted job: exit 20 (timeout)");
    assert!(std::fs::read_to_string(few.join("one.txt.err")).unwrap().contains("no result"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_json(&lab);
        let refused: u64 = status["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|device| device["refusals"]["bad_signature"].as_u64().unwrap_or(0))
            .sum();
        if refused >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no device counted the bad signature: {status}");
        std::thread::sleep(Duration::from_secs(1));
    }
    // The fleet goes on: with the trusted key back, a job runs.
    jos_client::store::write_key_file(&signing, "test signing key", &DEVELOPER, true).unwrap();
    let output = cli(&lab, &["push", module_path.to_str().unwrap(), "--inputs", few.to_str().unwrap()]);
    assert!(output.status.success(), "a trusted job after the refusal");
    assert_eq!(std::fs::read_to_string(few.join("one.txt.out")).unwrap().trim(), md5_hex("one"));

    // (6) `fleet invoke` by a hash prefix: `fleet push` kept the module, the devices cached it, the
    // job messages carry only the hash.
    let hash = report["hash"].as_str().expect("fleet push --json names the module's hash").to_string();
    assert_eq!(
        hash,
        hex::encode(jos_abi::signature::sha256(
            &std::fs::read(lab.home().join("cache").join(format!("{hash}.wasm"))).unwrap()
        ))
    );
    let again = work.path().join("again");
    std::fs::create_dir(&again).unwrap();
    for index in 0..6 {
        std::fs::write(again.join(format!("job-{index}.txt")), format!("10 again {index}")).unwrap();
    }
    let output = cli(&lab, &["invoke", &hash[..12], "--inputs", again.to_str().unwrap(), "--json"]);
    let invoked: serde_json::Value = serde_json::from_slice(&output.stdout).expect("fleet invoke --json prints JSON");
    assert!(output.status.success(), "fleet invoke failed: {invoked}");
    assert_eq!(invoked["hash"], hash.as_str());
    for index in 0..6 {
        let out = std::fs::read_to_string(again.join(format!("job-{index}.txt.out"))).expect("the invoke's result");
        assert_eq!(out.trim(), md5_hex(&format!("again {index}")), "invoked job {index}");
    }
    // A hash no device cached: every job answers "not cached" (exit 17).
    let unknown = "ab".repeat(32);
    let output = cli(&lab, &["invoke", &unknown, "--inputs", few.to_str().unwrap(), "--job-timeout", "20"]);
    assert_eq!(
        output.status.code(),
        Some(17),
        "an unknown hash is not cached: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

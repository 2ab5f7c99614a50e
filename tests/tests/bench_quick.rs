//! The benchmark harness in its quickest mode (`jos-bench --quick`): not a timed test, a check
//! that every variant runs and produces well-formed results, including that the Linux guest
//! boots, computes the right MD5 and answers UDP echoes, so the harness cannot rot.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `command`, killing it after `limit`; returns whether it succeeded.
fn run_with_limit(command: &mut Command, limit: Duration) -> bool {
    let mut child = command.spawn().expect("start");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn number(value: &Value, what: &str) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

/// An echo variant that ran: (almost) every request answered, latencies ordered and positive.
/// One lost datagram in a hundred is tolerated: slirp on a loaded host is not a cable.
fn check_echo(variant: &Value, name: &str, requests: u64) {
    assert_eq!(variant["status"], "ok", "{name}: {variant}");
    let answered = variant["answered"].as_u64().expect("answered");
    let lost = variant["lost"].as_u64().expect("lost");
    assert_eq!(answered + lost, requests, "{name}: {variant}");
    assert!(lost <= requests / 100, "{name}: {lost} of {requests} lost: {variant}");
    let p50 = number(&variant["p50_us"], "p50");
    let p99 = number(&variant["p99_us"], "p99");
    let max = number(&variant["max_us"], "max");
    assert!(number(&variant["mean_us"], "mean") > 0.0 && p50 > 0.0 && p50 <= p99 && p99 <= max, "{name}: {variant}");
    assert!(number(&variant["guest_clock_us_per_round_trip"], "guest clock") > 0.0, "{name}: {variant}");
    assert!(number(&variant["guest_us_per_request"], "guest time") >= 0.0, "{name}: {variant}");
}

#[test]
fn quick_bench_runs_every_variant() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // The Linux guest (kernel, device tree, initramfs with md5, echo-udp and wasm3-md5); cached in
    // build/linux.
    assert!(run_with_limit(&mut Command::new(root.join("bench/linux/mkinitrd.sh")), Duration::from_secs(300)));
    let out = std::env::temp_dir().join(format!("jos-bench-quick-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("scratch");
    let json = out.join("bench-results.json");
    let ok = run_with_limit(
        Command::new(env!("CARGO_BIN_EXE_jos-bench"))
            .arg("--quick")
            .arg("--kernel")
            .arg(jos_tests::kernel_elf(""))
            .arg("--linux")
            .arg(root.join("build/linux"))
            .arg("--json")
            .arg(&json)
            .arg("--img")
            .arg(&out),
        Duration::from_secs(420),
    );
    assert!(ok, "jos-bench --quick failed");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("results")).expect("valid JSON");
    assert_eq!(results["schema"], 1);
    assert_eq!(results["mode"], "quick");
    assert_eq!(results["icount_shift"], 0);
    assert!(results["qemu"].as_str().unwrap_or("").starts_with("QEMU emulator version"), "{}", results["qemu"]);

    // Compute: the Linux program ran for N = 1, 10, 100, two runs each, with its own figures.
    let compute = &results["compute"]["variants"];
    let linux = &compute["linux_c"];
    assert_eq!(linux["status"], "ok", "{linux}");
    let points = linux["points"].as_array().expect("points");
    let ns: Vec<u64> = points.iter().map(|p| p["n"].as_u64().expect("n")).collect();
    assert_eq!(ns, [1, 10, 100]);
    for point in points {
        assert_eq!(point["exec_us"].as_array().map(Vec::len), Some(2), "{point}");
        assert_eq!(point["cpu_us"].as_array().map(Vec::len), Some(2), "{point}");
        assert!(number(&point["mean_exec_us"], "exec") > 0.0, "{point}");
    }
    // 100 hashes take longer than one.
    assert!(number(&points[2]["mean_exec_us"], "exec") > number(&points[0]["mean_exec_us"], "exec"));
    // jos, native blob, wasm and the two AOT builds, through the offload service: the harness
    // checked every digest; here every run has its device-reported figures.
    for name in ["jos_native", "jos_wasm", "jos_aot", "jos_aot_unrolled"] {
        let variant = &compute[name];
        assert_eq!(variant["status"], "ok", "{name}: {variant}");
        let points = variant["points"].as_array().expect("points");
        assert_eq!(points.iter().map(|p| p["n"].as_u64().expect("n")).collect::<Vec<_>>(), [1, 10, 100], "{name}");
        for point in points {
            let exec = point["exec_us"].as_array().expect("exec_us");
            let cpu = point["cpu_us"].as_array().expect("cpu_us");
            assert_eq!((exec.len(), cpu.len()), (2, 2), "{name}: {point}");
            for (exec, cpu) in exec.iter().zip(cpu) {
                let (exec, cpu) = (number(exec, "exec"), number(cpu, "cpu"));
                assert!(0.0 < cpu && cpu <= exec, "{name}: {point}");
            }
        }
        assert!(number(&points[2]["mean_exec_us"], "exec") > number(&points[0]["mean_exec_us"], "exec"), "{name}");
    }

    // AOT builds: their host build time and size are recorded.
    for name in ["jos_aot", "jos_aot_unrolled"] {
        assert!(number(&compute[name]["build_ms"], "build_ms") > 0.0, "{name}");
        assert!(number(&compute[name]["unsigned_bytes"], "unsigned_bytes") > 0.0, "{name}");
    }
    // wasm3 in the Linux guest and wasmi (and AOT) on jos ran both modules at N = 100 (the
    // harness checked every digest), two runs each; the guest examples in three formats.
    let engines = &results["engines"];
    let peers = engines["peers"].as_array().expect("engines.peers");
    assert_eq!(peers.iter().map(|p| p["module"].as_str().expect("module")).collect::<Vec<_>>(), ["plain", "unrolled"]);
    for peer in peers {
        assert_eq!(peer["n"], 100, "{peer}");
        for engine in ["wasm3", "wasmi", "wasmi_bulk", "aot"] {
            let runs = peer[engine]["cpu_us"].as_array().unwrap_or_else(|| panic!("{engine}: {peer}"));
            assert_eq!(runs.len(), 2, "{engine}: {peer}");
            assert!(runs.iter().all(|cpu| number(cpu, "cpu") > 0.0), "{engine}: {peer}");
        }
        assert!(number(&peer["wasmi_fuel"], "fuel") > 0.0, "{peer}");
    }
    let guests = engines["guests"].as_array().expect("engines.guests");
    assert_eq!(guests.iter().map(|g| g["name"].as_str().expect("name")).collect::<Vec<_>>(), ["sha256", "imagefilter"]);
    for guest in guests {
        for format in ["wasm", "native", "aot"] {
            assert!(number(&guest[format]["mean_cpu_us"], "cpu") > 0.0, "{format}: {guest}");
        }
        assert!(number(&guest["build"]["aot_build_ms"], "aot build") > 0.0, "{guest}");
    }
    // Echo: jos's service and Linux's C server answered every request.
    let echo = &results["echo"]["variants"];
    check_echo(&echo["jos_service"], "jos_service", 200);
    check_echo(&echo["linux_c"], "linux_c", 200);
    // The offloaded echo job (guest-examples echo, wasm) answered them too, and said how many.
    let job = &echo["jos_offloaded"];
    check_echo(job, "jos_offloaded", 200);
    assert!(number(&job["echoed_by_job"], "echoed") >= number(&job["answered"], "answered"), "{job}");
    let (cpu, time) = (number(&job["job_cpu_us"], "job cpu"), number(&job["job_time_us"], "job time"));
    assert!(0.0 < cpu && cpu <= time, "{job}");
    // Its guest CPU per request, a marginal cost: the job's share above its idle rate (it gives
    // the rest of each frame back when it yields, so the idle rate is small), plus the network
    // manager's busy time, both per request and positive.
    let idle_rate = number(&job["job_idle_cpu_rate"], "idle rate");
    assert!(0.0 < idle_rate && idle_rate < 0.1, "the idle echo job holds the CPU {idle_rate} of its time: {job}");
    assert!(number(&job["job_idle_time_us"], "idle time") >= 2e6, "{job}");
    let job_part = number(&job["job_cpu_us_per_request"], "job per request");
    let network_part = number(&job["network_busy_us_per_request"], "network per request");
    assert!(job_part > 0.0 && network_part > 0.0, "{job}");
    assert!((number(&job["guest_us_per_request"], "guest time") - job_part - network_part).abs() < 1e-6, "{job}");
    // Offload costs by phase, from the kernel's timing lines.
    let first = &results["offload"]["first_push_10k"];
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(first["module_bytes"], 10 * 1024);
    for phase in
        ["handshake_us", "transfer_us", "verify_us", "session_us", "job_instantiate_us", "job_run_us", "job_total_us"]
    {
        assert!(number(&first["mean"][phase], phase) > 0.0, "first push {phase}: {first}");
    }
    let mean = &first["mean"];
    assert!(
        number(&mean["session_us"], "session")
            >= number(&mean["handshake_us"], "handshake") + number(&mean["verify_us"], "verify"),
        "{first}"
    );
    let invoke = &results["offload"]["invoke_cached"];
    assert_eq!(invoke["status"], "ok", "{invoke}");
    for phase in ["instantiate_us", "run_us", "total_us"] {
        assert!(number(&invoke["mean"][phase], phase) > 0.0, "cached invoke {phase}: {invoke}");
    }

    // Platform figures.
    let jos = &results["platform"]["jos"];
    assert!(number(&jos["image_bytes"], "image") > 0.0, "{jos}");
    assert!(number(&jos["kernel_elf_bytes"], "elf") > 0.0, "{jos}");
    let after = number(&jos["network_ready_after_us"], "ready after");
    let before = number(&jos["network_ready_before_us"], "ready before");
    assert!(0.0 < after && after <= before, "{jos}");
    assert!(number(&results["platform"]["linux"]["ready_uptime_s"], "linux ready") > 0.0);
    // A running wasm job holds at least its linear memory.
    let per_job = number(&jos["heap_per_wasm_job_bytes"], "heap per job");
    assert!(per_job >= number(&jos["heap_per_wasm_job"]["job_peak_linear_memory_bytes"], "peak"), "{jos}");

    // The plots exist and are PNG files with content (axes, labels, data).
    for plot in ["md5.png", "echo.png", "offload.png"] {
        let bytes = std::fs::read(out.join(plot)).expect(plot);
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{plot} is not a PNG");
        assert!(bytes.len() > 10_000, "{plot} is almost empty ({} bytes)", bytes.len());
    }
    let _ = std::fs::remove_dir_all(&out);
}

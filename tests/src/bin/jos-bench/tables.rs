//! The Markdown tables of docs/benchmarks.md, printed from the results.

use serde_json::Value;

use crate::echo::mean;
use crate::plots::OFFLOAD_PHASES;

/// Prints the results as the Markdown tables of docs/benchmarks.md.
pub fn print_tables(results: &Value) {
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| "n/a".into());
    let variants = &results["compute"]["variants"];
    let at = |variant: &str, n: &Value, key: &str| -> Option<f64> {
        variants[variant]["points"].as_array()?.iter().find(|p| &p["n"] == n)?[key].as_f64()
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    };
    let time = |v: Option<f64>| match v {
        Some(us) if us < 1000.0 => format!("{us:.0} µs"),
        Some(us) if us < 1e6 => format!("{:.2} ms", us / 1e3),
        Some(us) => format!("{:.3} s", us / 1e6),
        None => "n/a".into(),
    };
    println!("| N | Linux exec | Linux CPU | jos native exec | jos native CPU | jos wasm exec | jos wasm CPU | jos native / Linux (exec) | wasm / native (exec) | wasm / native (CPU) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for point in variants["linux_c"]["points"].as_array().into_iter().flatten() {
        let n = &point["n"];
        let (native, native_cpu) = (at("jos_native", n, "mean_exec_us"), at("jos_native", n, "mean_cpu_us"));
        let (wasm, wasm_cpu) = (at("jos_wasm", n, "mean_exec_us"), at("jos_wasm", n, "mean_cpu_us"));
        let linux = point["mean_exec_us"].as_f64();
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            time(linux),
            time(point["mean_cpu_us"].as_f64()),
            time(native),
            time(native_cpu),
            time(wasm),
            time(wasm_cpu),
            ratio(native, linux),
            ratio(wasm, native),
            ratio(wasm_cpu, native_cpu)
        );
    }
    println!();
    print_aot(results);
    print_engines(results);
    let first = &results["offload"]["first_push_10k"];
    let cached = &results["offload"]["invoke_cached"];
    let spread = |runs: &Value, key: &str| -> String {
        let values: Vec<f64> = runs.as_array().into_iter().flatten().filter_map(|r| r[key].as_f64()).collect();
        if values.is_empty() {
            return "n/a".into();
        }
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        format!("{} ({}-{})", time(Some(mean(&values))), time(Some(lo)), time(Some(hi)))
    };
    println!("| phase (device guest time) | first push of a 10 KiB wasm module: mean (min-max) | invoke of the cached module: mean (min-max) |");
    println!("|---|---|---|");
    for (label, push_key, job_key) in OFFLOAD_PHASES {
        let push = push_key.map_or("n/a".into(), |k| spread(&first["runs"], k));
        let job = if job_key.is_empty() { "n/a".into() } else { spread(&cached["runs"], job_key) };
        println!("| {label} | {push} | {job} |");
    }
    println!("| Hello to PushOk (session_us) | {} | |", spread(&first["runs"], "session_us"));
    println!(
        "| Invoke to JobResult (total_us) | {} | {} |",
        spread(&first["runs"], "job_total_us"),
        spread(&cached["runs"], "total_us")
    );
    println!();
    println!("| variant | answered | lost | mean (us) | p50 (us) | p99 (us) | p99.9 (us) | max (us) | guest clock per round trip (us) | guest CPU per request (us) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for name in ["jos_service", "linux_c", "jos_offloaded"] {
        let v = &results["echo"]["variants"][name];
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v["answered"],
            v["lost"],
            f(&v["mean_us"]),
            f(&v["p50_us"]),
            f(&v["p99_us"]),
            f(&v["p999_us"]),
            f(&v["max_us"]),
            f(&v["guest_clock_us_per_round_trip"]),
            f(&v["guest_us_per_request"])
        );
    }
    print_marginal(results);
    println!(
        "linux echo server process CPU per request: {} us",
        f(&results["echo"]["variants"]["linux_c"]["server_cpu_us_per_request"])
    );
    let job = &results["echo"]["variants"]["jos_offloaded"];
    println!(
        "jos echo job guest CPU per request: {} us = job {} us (cpu_us above its idle rate {}) + network manager {} us",
        f(&job["guest_us_per_request"]),
        f(&job["job_cpu_us_per_request"]),
        job["job_idle_cpu_rate"].as_f64().map(|r| format!("{r:.4}")).unwrap_or_else(|| "n/a".into()),
        f(&job["network_busy_us_per_request"])
    );
    println!();
    println!("platform: {}", results["platform"]);
}

/// The echo variants' marginal guest CPU per request (the slope over two runs) and their ratios.
pub fn print_marginal(results: &Value) {
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.2}")).unwrap_or_else(|| "n/a".into());
    println!();
    println!("| variant | marginal guest CPU per request (us) | how |");
    println!("|---|---|---|");
    let variants = &results["echo"]["variants"];
    for name in ["jos_service", "linux_c", "jos_offloaded"] {
        let v = &variants[name];
        println!(
            "| {name} | {} | {} |",
            f(&v["marginal_us_per_request"]),
            v["marginal_source"].as_str().unwrap_or("n/a")
        );
    }
    let job = &variants["jos_offloaded"];
    println!(
        "jos echo job marginal: job {} us + network manager {} us",
        f(&job["marginal_job_us_per_request"]),
        f(&job["marginal_network_us_per_request"])
    );
    let marginal = |name: &str| variants[name]["marginal_us_per_request"].as_f64();
    if let (Some(linux), Some(service), Some(job)) =
        (marginal("linux_c"), marginal("jos_service"), marginal("jos_offloaded"))
    {
        println!(
            "marginal ratios: Linux / jos echo service {:.1}x, Linux / jos echo job {:.1}x",
            linux / service,
            linux / job
        );
    }
}

/// A guest time in µs as text.
fn time(v: Option<f64>) -> String {
    match v {
        Some(us) if us < 1000.0 => format!("{us:.0} µs"),
        Some(us) if us < 1e6 => format!("{:.2} ms", us / 1e3),
        Some(us) => format!("{:.3} s", us / 1e6),
        None => "n/a".into(),
    }
}

/// `a / b` with two decimals.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    }
}

/// The AOT MD5 series beside native, wasm and Linux, per N (absent in older files: nothing
/// printed). Ratios of mean CPU times.
pub fn print_aot(results: &Value) {
    let variants = &results["compute"]["variants"];
    let Some(points) = variants["jos_aot"]["points"].as_array() else { return };
    let at = |variant: &str, n: &Value, key: &str| -> Option<f64> {
        variants[variant]["points"].as_array()?.iter().find(|p| &p["n"] == n)?[key].as_f64()
    };
    println!("| N | AOT -O2 exec | AOT -O2 CPU | AOT -O2 / native (CPU) | AOT -O2 / Linux (CPU) | AOT jos-cli CPU | AOT jos-cli / native (CPU) | wasm / AOT jos-cli (CPU) |");
    println!("|---|---|---|---|---|---|---|---|");
    for point in points {
        let n = &point["n"];
        let cpu = point["mean_cpu_us"].as_f64();
        let unrolled = at("jos_aot_unrolled", n, "mean_cpu_us");
        let native = at("jos_native", n, "mean_cpu_us");
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            time(point["mean_exec_us"].as_f64()),
            time(cpu),
            ratio(cpu, native),
            ratio(cpu, at("linux_c", n, "mean_cpu_us")),
            time(unrolled),
            ratio(unrolled, native),
            ratio(at("jos_wasm", n, "mean_cpu_us"), unrolled)
        );
    }
    let figure = |variant: &str, key: &str| match variants[variant][key].as_f64() {
        Some(v) => format!("{v:.0}"),
        None => "n/a".into(),
    };
    println!("md5 builds: unsigned bytes, host wall time of the build (ms)");
    for (variant, name) in [
        ("jos_wasm", "wasm (jos-cli)"),
        ("jos_native", "native (jos-cli)"),
        ("jos_aot", "AOT from the -O2 module"),
        ("jos_aot_unrolled", "AOT (jos-cli, from C)"),
    ] {
        println!("  {name}: {} bytes, {} ms", figure(variant, "unsigned_bytes"), figure(variant, "build_ms"));
    }
    println!();
}

/// wasm3 against wasmi per module, and the guest examples as AOT / native / wasm (absent in
/// older files: nothing printed).
pub fn print_engines(results: &Value) {
    let engines = &results["engines"];
    let Some(peers) = engines["peers"].as_array() else { return };
    let cpu = |v: &Value| v["mean_cpu_us"].as_f64();
    println!("| module | N | wasm3 CPU (exec) | jos wasmi CPU (exec) | wasmi / wasm3 (CPU) | wasmi fuel | wasmi, -mbulk-memory build, CPU | jos AOT of the module, CPU |");
    println!("|---|---|---|---|---|---|---|---|");
    for peer in peers {
        println!(
            "| {} ({} bytes) | {} | {} ({}) | {} ({}) | {} | {:.1} M | {} | {} |",
            peer["module"].as_str().unwrap_or("?"),
            peer["module_bytes"],
            peer["n"],
            time(cpu(&peer["wasm3"])),
            time(peer["wasm3"]["mean_exec_us"].as_f64()),
            time(cpu(&peer["wasmi"])),
            time(peer["wasmi"]["mean_exec_us"].as_f64()),
            ratio(cpu(&peer["wasmi"]), cpu(&peer["wasm3"])),
            peer["wasmi_fuel"].as_f64().unwrap_or(f64::NAN) / 1e6,
            time(cpu(&peer["wasmi_bulk"])),
            time(cpu(&peer["aot"]))
        );
    }
    println!();
    println!("| guest (input) | wasm CPU | native CPU | AOT CPU | AOT / native | wasm / AOT | wasm / native | wasm, native, AOT bytes | AOT build (host) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for guest in engines["guests"].as_array().into_iter().flatten() {
        let build = &guest["build"];
        println!(
            "| {} ({} bytes) | {} | {} | {} | {} | {} | {} | {}, {}, {} | {} ms |",
            guest["name"].as_str().unwrap_or("?"),
            guest["input_bytes"],
            time(cpu(&guest["wasm"])),
            time(cpu(&guest["native"])),
            time(cpu(&guest["aot"])),
            ratio(cpu(&guest["aot"]), cpu(&guest["native"])),
            ratio(cpu(&guest["wasm"]), cpu(&guest["aot"])),
            ratio(cpu(&guest["wasm"]), cpu(&guest["native"])),
            build["wasm_module_bytes"],
            build["native_blob_bytes"],
            build["aot_blob_bytes"],
            build["aot_build_ms"].as_f64().map_or("n/a".into(), |v| format!("{v:.0}"))
        );
    }
    println!();
}

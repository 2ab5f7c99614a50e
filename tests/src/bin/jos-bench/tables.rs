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

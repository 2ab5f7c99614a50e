//! Ahead-of-time compiled wasm as a user meets it: `jos-cli build --format aot` and
//! `jos-cli run --local --aot` run as processes.
//!
//! - every guest example, in C and Rust, prints byte-identical output through the interpreter
//!   (`run --local`) and through AOT (`run --local --aot`), and the output the host computes;
//! - every guest example becomes a valid AOT blob for the ARM1176 (arm-none-eabi-gcc), marked AOT
//!   and carrying the SHA-256 of its wasm module, from the .wasm and from the C or Rust sources;
//! - hostile modules (out-of-bounds loads and stores, memory.grow past the cap, unbounded
//!   recursion, huge output, an endless loop, bad pointers to system calls) end with the same
//!   status, exit value and output through AOT as through the interpreter.

use std::io::Read as _;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "support/examples.rs"]
mod examples;

use examples::case;
use jos_abi::blob::{Blob, BlobFlags};
use jos_guest_examples::{Example, Language, EXAMPLES, LANGUAGES};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

fn scratch() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jos-cli-aot-tests");
    std::fs::create_dir_all(&folder).expect("create the test folder");
    folder
}

fn jos_cli(args: &[&str]) -> Output {
    Command::new(JOS_CLI).args(args).current_dir(scratch()).output().expect("run jos-cli")
}

fn language_name(language: Language) -> &'static str {
    match language {
        Language::C => "c",
        Language::Rust => "rust",
    }
}

fn assert_built(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "building {what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds `example` as wasm into the scratch folder; returns the file name.
fn wasm(example: &Example, language: Language) -> String {
    let name = format!("{}-{}.wasm", example.name, language_name(language));
    let source = example.source(language);
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "wasm", "-o", &name]);
    assert_built(&output, &name);
    name
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// A report without its output, for failure messages.
fn brief(report: &serde_json::Value) -> serde_json::Value {
    let mut report = report.clone();
    if let Some(object) = report.as_object_mut() {
        object.remove("output");
        object.remove("output_hex");
    }
    report
}

/// Runs `file` with `run --local` (and `--aot` when asked) plus `extra`; returns the JSON report.
fn run_local(file: &str, aot: bool, extra: &[&str]) -> (serde_json::Value, Output) {
    let mut args = vec!["run", "--local", file, "--json"];
    if aot {
        args.push("--aot");
    }
    args.extend_from_slice(extra);
    let output = jos_cli(&args);
    (json(&output), output)
}

#[test]
fn examples_print_the_same_through_the_interpreter_and_aot() {
    for example in EXAMPLES.iter().filter(|example| !example.network) {
        let (input, expected) = case(example);
        let input_file = format!("{}.input", example.name);
        std::fs::write(scratch().join(&input_file), &input).unwrap();
        for language in LANGUAGES {
            let file = wasm(example, language);
            let (interpreted, _) = run_local(&file, false, &["--input", &input_file]);
            let (compiled, output) = run_local(&file, true, &["--input", &input_file]);
            assert_eq!(interpreted["status"], "ok", "{file} interpreted: {interpreted}");
            assert_eq!(compiled["status"], "ok", "{file} AOT: {compiled}");
            assert_eq!(output.status.code(), Some(0), "{file} AOT exit code");
            assert_eq!(compiled["output_hex"], interpreted["output_hex"], "{file}: AOT output differs from wasm");
            assert_eq!(compiled["output_hex"].as_str(), Some(hex::encode(&expected).as_str()), "{file}: wrong output");
            assert_eq!(compiled["exit_value"], interpreted["exit_value"], "{file}: exit values differ");
            assert_eq!(compiled["hash"], interpreted["hash"], "{file}: both report the module's hash");
        }
    }
}

/// Sends three datagrams to `to` and checks each comes back unchanged (resending the first until
/// the job has bound its port).
fn exchange(to: &str) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for index in 1..=3 {
        let message = format!("datagram {index} from the test");
        let mut reply = [0u8; 64];
        let count = loop {
            client.send_to(message.as_bytes(), to).unwrap();
            client.set_read_timeout(Some(Duration::from_millis(if index == 1 { 300 } else { 20_000 }))).unwrap();
            match client.recv_from(&mut reply) {
                Ok((count, _)) => break count,
                Err(error) => {
                    assert!(index == 1 && std::time::Instant::now() < deadline, "no echo of datagram {index}: {error}")
                }
            }
        };
        assert_eq!(&reply[..count], message.as_bytes());
    }
}

#[test]
fn echo_answers_through_aot_as_through_the_interpreter() {
    let echo = Example::named("echo").unwrap();
    for language in LANGUAGES {
        let file = wasm(echo, language);
        let mut outputs = Vec::new();
        for aot in [false, true] {
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let input = format!("echo-{port}.input");
            std::fs::write(scratch().join(&input), format!("{port} 3")).unwrap();
            let mut args = vec!["run", "--local", file.as_str(), "--input", input.as_str(), "--grant", "net", "--json"];
            if aot {
                args.push("--aot");
            }
            let mut job = Command::new(JOS_CLI)
                .args(&args)
                .current_dir(scratch())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            exchange(&format!("127.0.0.1:{port}"));
            let mut stdout = Vec::new();
            job.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
            assert!(job.wait().unwrap().success(), "{file} aot={aot}");
            let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
            assert_eq!(report["status"], "ok", "{file} aot={aot}: {report}");
            outputs.push(report["output_hex"].clone());
        }
        assert_eq!(outputs[0], outputs[1], "{file}: echo's output differs between wasm and AOT");
        assert_eq!(outputs[1].as_str(), Some(hex::encode(b"echoed 3\n").as_str()));
    }
}

/// Checks an AOT blob: valid, marked AOT, carrying `module`'s SHA-256, with imports.
fn check_aot_blob(path: &Path, module: &[u8]) {
    let bytes = std::fs::read(path).unwrap();
    let blob = Blob::new_checked(&bytes[..]).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(blob.flags().contains(BlobFlags::AOT), "{}: not marked AOT", path.display());
    assert_eq!(blob.wasm_source(), Some(jos_abi::signature::sha256(module)), "{}: wrong source hash", path.display());
    assert!(!blob.imports().is_empty(), "{}: the jos imports must be import slots", path.display());
    assert!(blob.text_len() > 0 && blob.bss_len() > 0);
}

#[test]
fn every_example_becomes_an_arm_aot_blob() {
    for example in EXAMPLES {
        for language in LANGUAGES {
            let file = wasm(example, language);
            let blob = file.replace(".wasm", "-aot.blob");
            let output = jos_cli(&["build", &file, "--format", "aot", "-o", &blob, "--json"]);
            assert_built(&output, &blob);
            assert_eq!(json(&output)["format"], "aot");
            let module = std::fs::read(scratch().join(&file)).unwrap();
            check_aot_blob(&scratch().join(&blob), &module);
        }
    }
    // From sources: the hash is the one of the module `--format wasm` writes.
    let md5 = Example::named("md5").unwrap();
    for language in LANGUAGES {
        let source = md5.source(language);
        let blob = format!("md5-{}-from-source.blob", language_name(language));
        let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "aot", "-o", &blob]);
        assert_built(&output, &blob);
        let module = std::fs::read(scratch().join(wasm(md5, language))).unwrap();
        check_aot_blob(&scratch().join(&blob), &module);
    }
}

/// A hostile module: `run` with `body` (locals and imports given in `head`).
fn hostile(name: &str, head: &str, body: &str) -> String {
    let text = format!(
        r#"(module
            (import "jos" "output_write" (func $write (param i32 i32) (result i32)))
            (memory (export "memory") 1)
            {head}
            (func (export "run") (result i32) {body}))"#
    );
    let file = format!("hostile-{name}.wasm");
    std::fs::write(scratch().join(&file), wat::parse_str(&text).unwrap()).unwrap();
    file
}

#[test]
fn hostile_modules_end_alike_through_aot_and_the_interpreter() {
    let cases: &[(&str, &str, &str, &str, i32)] = &[
        ("load", "", "i32.const 65535 i32.load", "trap", 12),
        ("store", "", "i32.const 65536 i32.const 1 i32.store i32.const 0", "trap", 12),
        ("store8-far", "", "i32.const -1 i32.const 1 i32.store8 i32.const 0", "trap", 12),
        ("recursion", "(func $deep (param i32) (result i32) local.get 0 i32.const 1 i32.add call $deep)", "i32.const 0 call $deep", "trap", 12),
        ("divide", "", "i32.const 1 i32.const 0 i32.div_s", "trap", 12),
        ("unreachable", "", "unreachable", "trap", 12),
        // memory.grow one page at a time until refused: the count is the same under both caps.
        (
            "grow",
            "(func $count (param i32) (result i32) (loop $again (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1)) (then (local.set 0 (i32.add (local.get 0) (i32.const 1))) (br $again)))) local.get 0)",
            "i32.const 0 call $count i32.const 1000 memory.grow i32.add",
            "ok",
            0,
        ),
        // 40 writes of 1 KiB: past the 32 KiB output cap.
        (
            "flood",
            "",
            "(block $done (loop $more (br_if $done (i32.lt_s (call $write (i32.const 0) (i32.const 1024)) (i32.const 0))) (br $more))) i32.const 0",
            "limit-exceeded",
            14,
        ),
        // A system call with a buffer outside memory answers -JOS_EFAULT.
        ("bad-pointer", "", "i32.const 65000 i32.const 1000 call $write", "ok", 0),
    ];
    for &(name, head, body, status, exit) in cases {
        let file = hostile(name, head, body);
        let (interpreted, _) = run_local(&file, false, &[]);
        let (compiled, output) = run_local(&file, true, &[]);
        assert_eq!(compiled["status"], status, "{name} AOT: {}", brief(&compiled));
        assert_eq!(output.status.code(), Some(exit), "{name} AOT exit code");
        assert_eq!(interpreted["status"], status, "{name} interpreted: {}", brief(&interpreted));
        assert_eq!(
            compiled["exit_value"],
            interpreted["exit_value"],
            "{name}: exit values differ: {} {}",
            brief(&compiled),
            brief(&interpreted)
        );
        assert_eq!(compiled["output_hex"], interpreted["output_hex"], "{name}: outputs differ");
        if status == "trap" {
            assert_eq!(compiled["error"], interpreted["error"], "{name}: trap reasons differ");
        }
    }
    let grow = run_local("hostile-grow.wasm", true, &[]).0;
    assert_eq!(grow["exit_value"], 254, "255 pages grown one by one, then a refused grow answers -1: {grow}");
    let bad = run_local("hostile-bad-pointer.wasm", true, &[]).0;
    assert_eq!(bad["exit_value"], -2, "-JOS_EFAULT: {bad}");
    let flood = run_local("hostile-flood.wasm", true, &[]).0;
    assert_eq!(flood["output_hex"].as_str().map(str::len), Some(2 * 32 * 1024), "exactly the cap: {}", brief(&flood));

    // An endless loop ends at the deadline, and no process is left behind.
    let file = hostile("spin", "", "(loop $forever (br $forever)) i32.const 0");
    let started = std::time::Instant::now();
    let (report, output) = run_local(&file, true, &["--timeout", "1500"]);
    assert_eq!(report["status"], "deadline", "{}", brief(&report));
    assert_eq!(output.status.code(), Some(15));
    assert!(started.elapsed() < Duration::from_secs(60), "the deadline did not end the loop");
}

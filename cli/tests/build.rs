//! `jos-cli build` as a user meets it: the binary run as a process on every example, in both
//! languages and both formats, plus the failures it must report with their exit codes. The wasm
//! outputs also run on the host through `jos_runtime` (the device's sandbox and limits, with a
//! test host that scripts the network for echo), and their results are compared with digests and
//! pictures the host computes.
//!
//! Each (example, language, format) is built once per test process and shared by the tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use jos_abi::blob::{Blob, BlobRepr};
use jos_abi::syscall::{self, AbiVersion, Endpoint, ValueType};
use jos_abi::ErrorCode;
use jos_guest_examples::{Example, Language, EXAMPLES, LANGUAGES};
use jos_runtime::{Capabilities, Entry, Host, JobStatus, Limits, Sandbox, SandboxConfig};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

fn scratch() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("jos-cli-build-tests");
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

/// Builds an example once per process; returns the output file.
fn built(example: &Example, language: Language, format: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let extension = if format == "wasm" { "wasm" } else { "blob" };
    let key = format!("{}-{}.{extension}", example.name, language_name(language));
    let mut cache = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(path) = cache.get(&key) {
        return path.clone();
    }
    let path = scratch().join(&key);
    let source = example.source(language);
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", format, "-o", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "building {key} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("built ") && stdout.contains("imports"), "no size report for {key}: {stdout}");
    cache.insert(key, path.clone());
    path
}

fn value_type(value: ValueType) -> wasmparser::ValType {
    match value {
        ValueType::I32 => wasmparser::ValType::I32,
        ValueType::I64 => wasmparser::ValType::I64,
    }
}

/// Checks a built wasm module the way a device will rely on: imports only from "jos" with the
/// table's signatures, `run: () -> i32` exported, memory capped, `jos.abi` recorded, no other
/// custom section.
fn check_wasm(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    wasmparser::Validator::new().validate_all(&bytes).unwrap_or_else(|e| panic!("{}: invalid: {e}", path.display()));
    let mut types = Vec::new();
    let mut function_types = Vec::new();
    let mut imported_functions = 0;
    let mut run_index = None;
    let mut abi_section = None;
    let mut memory_max = None;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            wasmparser::Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(ty.unwrap());
                }
            }
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    assert_eq!(import.module, "jos", "{}: import {}.{}", path.display(), import.module, import.name);
                    let call = syscall::by_name(import.name).unwrap_or_else(|| panic!("unknown call {}", import.name));
                    let wasmparser::TypeRef::Func(index) = import.ty else { panic!("non-function import") };
                    let ty = &types[index as usize];
                    let params: Vec<_> = call.signature.params.iter().copied().map(value_type).collect();
                    let results: Vec<_> = call.signature.results.iter().copied().map(value_type).collect();
                    assert_eq!(
                        (ty.params(), ty.results()),
                        (&params[..], &results[..]),
                        "signature of {}",
                        import.name
                    );
                    imported_functions += 1;
                }
            }
            wasmparser::Payload::FunctionSection(reader) => {
                for index in reader {
                    function_types.push(index.unwrap());
                }
            }
            wasmparser::Payload::MemorySection(reader) => {
                for memory in reader {
                    memory_max = memory.unwrap().maximum;
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    if export.name == "run" && export.kind == wasmparser::ExternalKind::Func {
                        run_index = Some(export.index);
                    }
                }
            }
            wasmparser::Payload::CustomSection(reader) => {
                assert_eq!(reader.name(), "jos.abi", "{}: custom section {} left in", path.display(), reader.name());
                abi_section = Some(reader.data().to_vec());
            }
            _ => {}
        }
    }
    let run = run_index.unwrap_or_else(|| panic!("{}: no run export", path.display()));
    let ty = &types[function_types[(run - imported_functions) as usize] as usize];
    assert!(ty.params().is_empty() && ty.results() == [wasmparser::ValType::I32], "run has type {ty:?}");
    assert_eq!(abi_section, Some(AbiVersion::CURRENT.to_u32().to_le_bytes().to_vec()));
    assert!(memory_max.is_some_and(|max| max <= 256), "memory maximum {memory_max:?}");
}

/// Checks a built blob with the device's own parser.
fn check_blob(path: &Path, network: bool) {
    let bytes = std::fs::read(path).unwrap();
    let blob = Blob::new_checked(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let repr = BlobRepr::parse(&blob).unwrap();
    assert_eq!(repr.abi_version, AbiVersion::CURRENT);
    assert!(!repr.text.is_empty() && repr.entry < repr.text.len() as u32);
    let names: Vec<&str> = repr.imports.iter().map(|import| import.syscall.syscall().name).collect();
    for needed in ["input_len", "input_read", "output_write"] {
        assert!(names.contains(&needed), "{}: imports {names:?}", path.display());
    }
    assert_eq!(names.contains(&"udp_bind"), network, "{}: imports {names:?}", path.display());
}

#[test]
fn every_example_builds_to_wasm_with_only_jos_imports() {
    for example in EXAMPLES {
        for language in LANGUAGES {
            check_wasm(&built(example, language, "wasm"));
        }
    }
}

#[test]
fn every_example_builds_to_a_native_blob_the_device_parser_accepts() {
    for example in EXAMPLES {
        for language in LANGUAGES {
            check_blob(&built(example, language, "native"), example.network);
        }
    }
}

// ---- Running the wasm examples on the host ----

/// The device side of a job for the host runs: input, and a scripted network for echo.
#[derive(Default)]
struct TestHost {
    input: Vec<u8>,
    /// Datagrams waiting for udp_recv (popped from the end), and what udp_send sent.
    inbox: Vec<Vec<u8>>,
    sent: Vec<Vec<u8>>,
    bound_port: Option<u16>,
}

/// The sender of every scripted datagram.
const PEER: Endpoint = Endpoint { address: [10, 0, 2, 2], port: 12345 };

impl Host for TestHost {
    fn input_len(&self) -> usize {
        self.input.len()
    }

    fn input_read(&self, offset: usize, buffer: &mut [u8]) -> usize {
        let rest = self.input.get(offset..).unwrap_or(&[]);
        let count = rest.len().min(buffer.len());
        buffer[..count].copy_from_slice(&rest[..count]);
        count
    }

    fn time_us(&self) -> u64 {
        0
    }

    fn random(&mut self, buffer: &mut [u8]) -> Result<(), ErrorCode> {
        buffer.fill(4);
        Ok(())
    }

    fn udp_bind(&mut self, port: u16) -> Result<u32, ErrorCode> {
        self.bound_port = Some(port);
        Ok(3)
    }

    fn udp_send(&mut self, handle: u32, to: Endpoint, data: &[u8]) -> Result<(), ErrorCode> {
        assert_eq!((handle, to), (3, PEER), "echo answers the sender on its socket");
        self.sent.push(data.to_vec());
        Ok(())
    }

    fn udp_recv(&mut self, handle: u32, buffer: &mut [u8]) -> Result<(usize, Endpoint), ErrorCode> {
        assert_eq!(handle, 3);
        let datagram = self.inbox.pop().ok_or(ErrorCode::WouldBlock)?;
        let count = datagram.len().min(buffer.len());
        buffer[..count].copy_from_slice(&datagram[..count]);
        Ok((datagram.len(), PEER))
    }

    fn udp_close(&mut self, handle: u32) -> Result<(), ErrorCode> {
        if handle == 3 {
            Ok(())
        } else {
            Err(ErrorCode::NotFound)
        }
    }
}

/// What a job left: its exit value, output, logs and the host's record.
struct Ran {
    output: Vec<u8>,
    logs: Vec<String>,
    sent: Vec<Vec<u8>>,
    bound_port: Option<u16>,
}

/// Runs a built wasm job on the host through `jos_runtime` (the device's sandbox and default
/// limits, network granted) with `input`; datagrams in `inbox` arrive in order. Returns the exit
/// value and what the job left.
fn run_wasm(path: &Path, input: &[u8], inbox: &[&[u8]]) -> (i32, Ran) {
    let host = TestHost {
        input: input.to_vec(),
        inbox: inbox.iter().rev().map(|d| d.to_vec()).collect(),
        ..TestHost::default()
    };
    let capabilities = Capabilities { network: true, screen: false, gpio: false };
    let bytes = std::fs::read(path).unwrap();
    let mut sandbox = Sandbox::new(SandboxConfig::default());
    let (result, host) = sandbox.run(&bytes, host, Limits::default(), capabilities, Entry::Default, 1_000_000);
    let logs: Vec<String> = result.logs.iter().map(|line| line.text.clone()).collect();
    assert_eq!(result.status, JobStatus::Ok, "{}: {:?}, logs {logs:?}", path.display(), result.error);
    let exit_value = result.exit_value.unwrap_or_else(|| panic!("{}: no exit value", path.display()));
    (exit_value, Ran { output: result.output, logs, sent: host.sent, bound_port: host.bound_port })
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn md5_hex(message: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(message))
}

#[test]
fn md5_examples_compute_the_digest_n_times() {
    let mut binary = 7u32.to_le_bytes().to_vec();
    binary.extend_from_slice(b"binary form");
    let long = format!("2 {}", "x".repeat(130));
    let cases: [(&[u8], &[u8]); 6] = [
        (b"", b"jon"),
        (b"1000", b"jon"),
        (b"3 hello world", b"hello world"),
        (&binary, b"binary form"),
        (long.as_bytes(), &long.as_bytes()[2..]),
        (b"5 ", b""),
    ];
    for language in LANGUAGES {
        let module = built(Example::named("md5").unwrap(), language, "wasm");
        for (input, message) in cases {
            let (status, job) = run_wasm(&module, input, &[]);
            assert_eq!(status, 0, "{language:?} md5 of {input:?}: logs {:?}", job.logs);
            assert_eq!(
                String::from_utf8(job.output).unwrap(),
                format!("{}\n", md5_hex(message)),
                "{language:?} {input:?}"
            );
        }
        let (status, job) = run_wasm(&module, b"12x", &[]);
        assert_eq!(status, -1, "{language:?}: malformed input is an invalid argument");
        assert!(job.output.is_empty() && !job.logs.is_empty(), "{language:?}: the error is logged");
    }
}

/// The C SDK's run-time functions (`abi/include/jos-rt.c`: word-at-a-time memcpy and memset,
/// memmove, memcmp), compiled for the host and checked against byte-by-byte references for
/// every alignment and every length up to 96 (`tests/sdk-rt/check.c`).
#[test]
fn sdk_run_time_functions_agree_with_byte_references() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let program = scratch().join("sdk-rt-check");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-fsanitize=undefined", "-fno-sanitize-recover=all", "-I"])
        .arg(manifest.join("../abi/include"))
        .arg(manifest.join("tests/sdk-rt/check.c"))
        .arg("-o")
        .arg(&program)
        .status()
        .expect("run the host C compiler (cc)");
    assert!(status.success(), "compiling tests/sdk-rt/check.c failed");
    let output = Command::new(&program).output().expect("run the check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("all alignments and lengths agree"), "{stdout}");
}

/// C wasm guests are built with bulk memory: the zero padding and copies in MD5 become single
/// `memory.fill` and `memory.copy` instructions instead of interpreted byte loops (docs/cli.md).
#[test]
fn c_wasm_builds_use_bulk_memory_instructions() {
    let module = built(Example::named("md5").unwrap(), Language::C, "wasm");
    let bytes = std::fs::read(&module).unwrap();
    let (mut fills, mut copies) = (0, 0);
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut reader = body.get_operators_reader().unwrap();
            while !reader.eof() {
                match reader.read().unwrap() {
                    wasmparser::Operator::MemoryFill { .. } => fills += 1,
                    wasmparser::Operator::MemoryCopy { .. } => copies += 1,
                    _ => {}
                }
            }
        }
    }
    assert!(fills > 0 && copies > 0, "md5.wasm: {fills} memory.fill, {copies} memory.copy");
}

#[test]
fn sha256_examples_match_the_host() {
    use sha2::Digest;
    for language in LANGUAGES {
        let module = built(Example::named("sha256").unwrap(), language, "wasm");
        for length in [0usize, 3, 55, 56, 63, 64, 65, 1000, 4099] {
            let input: Vec<u8> = (0..length).map(|i| (i * 7 + 3) as u8).collect();
            let (status, job) = run_wasm(&module, &input, &[]);
            assert_eq!(status, 0);
            let expected = format!("{}\n", hex(&sha2::Sha256::digest(&input)));
            assert_eq!(String::from_utf8(job.output).unwrap(), expected, "{language:?} length {length}");
        }
    }
}

#[test]
fn fib_examples() {
    let fib = |n: u32| (0..n).fold((0u64, 1u64), |(a, b), _| (b, a.wrapping_add(b))).0;
    for language in LANGUAGES {
        let module = built(Example::named("fib").unwrap(), language, "wasm");
        for (input, n) in [(&b""[..], 50), (b"0", 0), (b"1", 1), (b"10\n", 10), (b"93", 93)] {
            let (status, job) = run_wasm(&module, input, &[]);
            assert_eq!(
                (status, String::from_utf8(job.output).unwrap()),
                (0, format!("{}\n", fib(n))),
                "{language:?} {n}"
            );
        }
        for bad in [&b"94"[..], b"-1", b"abc", b"123456"] {
            let (status, job) = run_wasm(&module, bad, &[]);
            assert_eq!(status, -1, "{language:?} {bad:?}");
            assert!(job.output.is_empty());
        }
    }
}

#[test]
fn echo_examples_answer_datagrams_until_quit_or_count() {
    for language in LANGUAGES {
        let module = built(Example::named("echo").unwrap(), language, "wasm");
        let (status, job) = run_wasm(&module, b"7000", &[b"Echo1", b"second", b"quit", b"never read"]);
        assert_eq!(status, 0, "{language:?}: logs {:?}", job.logs);
        assert_eq!(job.bound_port, Some(7000));
        assert_eq!(job.sent, [&b"Echo1"[..], b"second", b"bye"].map(<[u8]>::to_vec));
        assert_eq!(job.output, b"echoed 2\n");
        let (status, job) = run_wasm(&module, b"9 1", &[b"one", b"two"]);
        assert_eq!((status, job.output, job.sent.len()), (0, b"echoed 1\n".to_vec(), 1), "{language:?} count");
        let (status, _) = run_wasm(&module, b"0", &[]);
        assert_eq!(status, -1, "{language:?}: port 0 is refused");
    }
}

/// A small picture with a comment in its header.
fn picture(width: usize, height: usize) -> (Vec<u8>, Vec<u8>) {
    let mut input = format!("P6\n# test picture\n{width} {height}\n255\n").into_bytes();
    let mut expected = format!("P6\n{width} {height}\n255\n").into_bytes();
    for i in 0..width * height {
        let (r, g, b) = ((i * 37) as u8, (i * 91 + 5) as u8, (255usize.wrapping_sub(i * 13)) as u8);
        input.extend_from_slice(&[r, g, b]);
        let luma = ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8) as u8;
        expected.extend_from_slice(&[luma; 3]);
    }
    (input, expected)
}

#[test]
fn imagefilter_examples_turn_ppm_gray() {
    for language in LANGUAGES {
        let module = built(Example::named("imagefilter").unwrap(), language, "wasm");
        for (width, height) in [(1, 1), (5, 3), (128, 128)] {
            let (input, expected) = picture(width, height);
            let (status, job) = run_wasm(&module, &input, &[]);
            assert_eq!(status, 0, "{language:?} {width}x{height}: {:?}", job.logs);
            assert!(job.output == expected, "{language:?} {width}x{height}: wrong picture");
        }
        let (mut truncated, _) = picture(4, 4);
        truncated.truncate(truncated.len() - 1);
        let (too_large, _) = picture(129, 128);
        let (status, job) = run_wasm(&module, &too_large, &[]);
        assert_eq!((status, job.output.len()), (-3, 0), "{language:?}: a picture over 128 x 128 exceeds the limit");
        for bad in [&b"P3\n1 1\n255\n..."[..], b"P6\n0 1\n255\n", b"P6\n1 1\n65535\n......", &truncated] {
            let (status, job) = run_wasm(&module, bad, &[]);
            assert_eq!(status, -9, "{language:?}: malformed picture {:?}", &bad[..bad.len().min(12)]);
            assert!(job.output.is_empty() && !job.logs.is_empty());
        }
    }
}

// ---- Failures, as the user sees them ----

fn write_guest(name: &str, text: &str) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_import_is_refused_with_its_name_and_exit_code_6() {
    let source = write_guest(
        "unknown_import.c",
        "#include \"jos.h\"\n\
         __attribute__((import_module(\"jos\"), import_name(\"open_file\"))) int open_file(const char *);\n\
         int run(void) { return open_file(\"/etc/passwd\"); }\n",
    );
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "wasm", "-o", "unknown.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "stderr: {stderr}");
    assert!(stderr.contains("`jos.open_file` is not a jos system call"), "stderr: {stderr}");
    assert!(!scratch().join("unknown.wasm").exists(), "no output on failure");

    let foreign = write_guest(
        "foreign_import.c",
        "__attribute__((import_module(\"env\"), import_name(\"getpid\"))) int getpid(void);\n\
         int run(void) { return getpid(); }\n",
    );
    let output = jos_cli(&["build", foreign.to_str().unwrap(), "--format", "wasm", "-o", "foreign.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "stderr: {stderr}");
    assert!(stderr.contains("`env.getpid`"), "stderr: {stderr}");
}

#[test]
fn json_output_reports_sizes_and_errors() {
    let fib = Example::named("fib").unwrap().source(Language::C);
    let output = jos_cli(&["build", fib.to_str().unwrap(), "--format", "native", "-o", "fib-json.blob", "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    assert_eq!(report["format"], "native");
    assert_eq!(report["output"], "fib-json.blob");
    let size = std::fs::metadata(scratch().join("fib-json.blob")).unwrap().len();
    assert_eq!(report["total_bytes"].as_u64(), Some(size));
    assert!(report["code_bytes"].as_u64().is_some_and(|code| code > 0 && code < size));
    let imports: Vec<&str> = report["imports"].as_array().unwrap().iter().map(|i| i.as_str().unwrap()).collect();
    assert!(imports.contains(&"output_write") && !imports.contains(&"udp_bind"), "{imports:?}");

    let source = write_guest(
        "json_unknown.c",
        "__attribute__((import_module(\"jos\"), import_name(\"reboot\"))) int reboot(void);\n\
         int run(void) { return reboot(); }\n",
    );
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "wasm", "--json"]);
    assert_eq!(output.status.code(), Some(6));
    let error: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the error as JSON on stdout");
    assert_eq!(error["error"]["kind"], "AbiViolation");
    assert_eq!(error["error"]["exit_code"], 6);
    assert!(error["error"]["message"].as_str().unwrap().contains("jos.reboot"));
}

#[test]
fn wrong_import_signature_is_refused() {
    let source = write_guest(
        "wrong_signature.c",
        "__attribute__((import_module(\"jos\"), import_name(\"input_len\"))) long long input_len(int);\n\
         int run(void) { return (int)input_len(1); }\n",
    );
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "wasm", "-o", "wrong.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "stderr: {stderr}");
    assert!(stderr.contains("`jos.input_len` has type (i32) -> (i64), but the system call is () -> (i32)"), "{stderr}");
}

#[test]
fn missing_entry_and_memory_cap_are_abi_errors() {
    let source = write_guest("no_run.c", "int start(void) { return 0; }\n");
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "wasm", "-o", "no_run.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // clang's --export=run fails first when run is not defined: a compile error naming it.
    assert_eq!(output.status.code(), Some(5), "stderr: {stderr}");
    assert!(stderr.contains("run"), "{stderr}");

    let md5 = Example::named("md5").unwrap().source(Language::C);
    let output =
        jos_cli(&["build", md5.to_str().unwrap(), "--format", "wasm", "--max-memory-pages", "1", "-o", "capped.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "stderr: {stderr}");
    assert!(stderr.contains("more than the cap of 1 pages"), "{stderr}");
}

#[test]
fn native_constructors_are_refused_naming_the_section() {
    let source = write_guest(
        "constructor.c",
        "#include \"jos.h\"\n static int ready;\n\
         __attribute__((constructor)) static void setup(void) { ready = 1; }\n\
         int run(void) { return ready; }\n",
    );
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "native", "-o", "ctor.blob"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "stderr: {stderr}");
    assert!(stderr.contains("`.init_array`") && stderr.contains("constructors"), "{stderr}");
}

#[test]
fn native_thread_locals_and_stray_sections_are_refused_naming_the_section() {
    let cases = [
        (
            "tls.c",
            "__thread int counter = 5;\nint run(void) { return counter++; }\n",
            "`.tdata.counter` holds thread-local storage",
        ),
        ("noinit.c", "__attribute__((section(\".noinit\"))) int kept;\nint run(void) { return kept; }\n", "`.noinit`"),
    ];
    for (name, text, expected) in cases {
        let source = write_guest(name, text);
        let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "native", "-o", "refused.blob"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(7), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

#[test]
fn native_undefined_function_is_refused_naming_it() {
    let source = write_guest("undefined.c", "int helper(int);\nint run(void) { return helper(2); }\n");
    let output = jos_cli(&["build", source.to_str().unwrap(), "--format", "native", "-o", "undefined.blob"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(5 | 7)), "status {:?}, stderr: {stderr}", output.status);
    assert!(stderr.contains("helper"), "{stderr}");
}

#[test]
fn usage_and_input_errors_have_their_exit_codes() {
    let output = jos_cli(&["build", "md5.c"]);
    assert_eq!(output.status.code(), Some(2), "missing --format is a usage error");
    let output = jos_cli(&["build", "does-not-exist.c", "--format", "wasm"]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does-not-exist.c: no such file"));
    let text = write_guest("notes.txt", "hello");
    let output = jos_cli(&["build", text.to_str().unwrap(), "--format", "wasm"]);
    assert_eq!(output.status.code(), Some(3));
    let output = jos_cli(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_shows_examples_and_exit_codes_and_the_commands() {
    let output = jos_cli(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("build") && help.contains("Exit codes"), "{help}");
    for command in ["push", "keygen", "emu", "sign"] {
        assert!(help.contains(&format!("  {command} ")), "{command} not listed in --help");
    }
    let output = jos_cli(&["build", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Examples:") && help.contains("--format <FORMAT>"), "{help}");
}

#[test]
fn exit_codes_in_docs_match_the_code() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md")).unwrap();
    for exit in jos_cli::exit::Exit::ALL {
        let row = format!("| {} | `{exit:?}` |", exit.code());
        assert!(docs.contains(&row), "docs/cli.md lacks the row {row}");
    }
}

/// The runtime's native loader accepts every example blob (once signed): it places the image,
/// binds each import slot to the dispatch table's address, and relocates every listed word.
#[test]
fn native_example_blobs_load_through_the_runtime_loader() {
    use jos_abi::signature::{public_key, sign_blob, SignerRights, TrustedSigner};
    use jos_runtime::native::{self, CacheMaintenance, DispatchTable};

    struct NoCache;
    impl CacheMaintenance for NoCache {
        fn sync_code(&mut self, _address: usize, _len: usize) {}
    }

    let seed = [7u8; 32];
    let signers = [TrustedSigner { public_key: public_key(&seed), rights: SignerRights::NATIVE }];
    let mut dispatch: DispatchTable = [0; syscall::SYSCALL_TABLE_LEN];
    for call in syscall::SYSCALLS {
        dispatch[call.id as usize] = 0x4000_0000 + 16 * call.id as usize;
    }
    const REGION_ADDRESS: u32 = 0x0100_0000;
    for example in EXAMPLES {
        for language in LANGUAGES {
            let path = built(example, language, "native");
            let unsigned = std::fs::read(&path).unwrap();
            let signed = sign_blob(&unsigned, &seed, true).unwrap();
            let blob = Blob::new_checked(&signed[..]).unwrap();
            let repr = BlobRepr::parse(&blob).unwrap();
            let mut region = vec![0xAAu8; blob.memory_len() as usize + 64];
            let loaded = native::load_at(&signed, &signers, &mut region, REGION_ADDRESS, &dispatch, &mut NoCache)
                .unwrap_or_else(|error| panic!("{}: {error:?}", path.display()));
            let offset = loaded.offset;
            let image = blob.image();
            let word = |region: &[u8], at: u32| {
                let at = offset + at as usize;
                u32::from_le_bytes(region[at..at + 4].try_into().unwrap())
            };
            let original = |at: u32| u32::from_le_bytes(image[at as usize..at as usize + 4].try_into().unwrap());
            assert_eq!(loaded.entry as u64, u64::from(REGION_ADDRESS) + offset as u64 + u64::from(repr.entry));
            for import in repr.imports.iter() {
                assert_eq!(
                    word(&region, import.slot) as usize,
                    dispatch[import.syscall as usize],
                    "{}",
                    path.display()
                );
            }
            for relocation in repr.relocations.iter() {
                let base = REGION_ADDRESS + offset as u32;
                assert_eq!(word(&region, relocation), original(relocation).wrapping_add(base), "{}", path.display());
            }
            // Zeroed to the end of the image's last page; the rest is the kernel's to zero on
            // first touch.
            assert!(loaded.loaded_len >= image.len() && loaded.loaded_len <= blob.memory_len() as usize);
            if loaded.loaded_len < blob.memory_len() as usize {
                assert_eq!((REGION_ADDRESS as usize + offset + loaded.loaded_len) % native::LOADER_PAGE, 0);
            }
            let bss = &region[offset + image.len()..offset + loaded.loaded_len];
            assert!(bss.iter().all(|byte| *byte == 0), "{}: bss not zeroed", path.display());
            let rest = &region[offset + loaded.loaded_len..offset + blob.memory_len() as usize];
            assert!(rest.iter().all(|byte| *byte == 0xAA), "{}: bss written past its first page", path.display());
        }
    }
}

/// The fenced blocks of one language in a document, in order.
fn fenced_blocks(document: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in document.lines() {
        match &mut current {
            None if line.trim_start() == format!("```{language}") => current = Some(String::new()),
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// The hello worlds in docs/guests.md build as written and print what they promise.
#[test]
fn hello_worlds_in_the_guest_docs_build_and_run() {
    let document = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/guests.md")).unwrap();

    let c = fenced_blocks(&document, "c");
    let source = write_guest("hello.c", &c[0]);
    for format in ["wasm", "native"] {
        let output =
            jos_cli(&["build", source.to_str().unwrap(), "--format", format, "-o", &format!("hello-c.{format}")]);
        assert!(output.status.success(), "C hello ({format}): {}", String::from_utf8_lossy(&output.stderr));
    }
    let (status, ran) = run_wasm(&scratch().join("hello-c.wasm"), b"jos", &[]);
    assert_eq!((status, ran.output.as_slice()), (0, &b"hello, jos"[..]), "logs {:?}", ran.logs);

    let toml = &fenced_blocks(&document, "toml")[0];
    let rust = &fenced_blocks(&document, "rust")[0];
    let guest_sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../abi/guest").canonicalize().unwrap();
    let toml = toml.replace("../jos/abi/guest", guest_sdk.to_str().unwrap());
    let crate_dir = scratch().join("hello-rust");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    // Its own workspace: the test folder lies inside the jos repository's.
    std::fs::write(crate_dir.join("Cargo.toml"), format!("{toml}\n[workspace]\n")).unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), rust).unwrap();
    let output = jos_cli(&["build", crate_dir.to_str().unwrap(), "--format", "wasm", "-o", "hello-rust.wasm"]);
    assert!(output.status.success(), "Rust hello: {}", String::from_utf8_lossy(&output.stderr));
    let (status, ran) = run_wasm(&scratch().join("hello-rust.wasm"), b"jos", &[]);
    assert_eq!((status, ran.output.as_slice()), (0, &b"hello, jos\n"[..]));
    assert_eq!(ran.logs, ["hello from a guest, 3 bytes of input"]);
}

// ---- Running the native examples on the emulated board ----

/// The bare-metal harness (`tests/native-harness`), built once: its ELF and the address of each
/// `h_NAME` system-call function by syscall id.
fn native_harness() -> &'static (PathBuf, Vec<(u32, u32)>) {
    static HARNESS: OnceLock<(PathBuf, Vec<(u32, u32)>)> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/native-harness");
        let elf = scratch().join("native-harness.elf");
        let status = Command::new("arm-none-eabi-gcc")
            .args(["-mcpu=arm1176jzf-s", "-mfloat-abi=hard", "-mfpu=vfp", "-marm", "-O1", "-fno-builtin"])
            .args(["-fno-tree-loop-distribute-patterns", "-nostdlib", "-ffreestanding", "-Wl,-z,noexecstack", "-T"])
            .arg(folder.join("harness.ld"))
            .arg(folder.join("start.S"))
            .arg(folder.join("harness.c"))
            .arg("-lgcc")
            .arg("-o")
            .arg(&elf)
            .status()
            .expect("run arm-none-eabi-gcc");
        assert!(status.success(), "building the native harness failed");
        let bytes = std::fs::read(&elf).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let mut functions = Vec::new();
        for symbol in object::Object::symbols(&file) {
            let name = object::ObjectSymbol::name(&symbol).unwrap_or("");
            if let Some(call) = name.strip_prefix("h_").and_then(syscall::by_name) {
                functions.push((call.id as u32, object::ObjectSymbol::address(&symbol) as u32));
            }
        }
        assert!(functions.len() >= 8, "harness functions {functions:?}");
        (elf, functions)
    })
}

/// Where the harness expects the job descriptor and the test places the blob.
const JOB_ADDRESS: u32 = 0x0030_0000;
const BLOB_ADDRESS: u32 = 0x0040_0000;

/// Runs a native blob on QEMU raspi0: loads it on the host with jos_runtime's loader for
/// `BLOB_ADDRESS`, hands image and input to the harness through QEMU's loader device, and reads
/// back the exit value, output and logs.
fn run_native(path: &Path, input: &[u8]) -> (i32, Vec<u8>, Vec<String>) {
    let (status, output, logs, _) = run_native_with_datagrams(path, input, &[]);
    (status, output, logs)
}

/// [`run_native`] with scripted datagrams for `udp_recv`; also returns the sent datagrams.
fn run_native_with_datagrams(
    path: &Path,
    input: &[u8],
    datagrams: &[&[u8]],
) -> (i32, Vec<u8>, Vec<String>, Vec<Vec<u8>>) {
    use jos_abi::signature::{public_key, sign_blob, SignerRights, TrustedSigner};
    use jos_runtime::native::{self, CacheMaintenance, DispatchTable};

    struct NoCache;
    impl CacheMaintenance for NoCache {
        fn sync_code(&mut self, _address: usize, _len: usize) {}
    }

    let (harness, functions) = native_harness();
    let mut dispatch: DispatchTable = [0; syscall::SYSCALL_TABLE_LEN];
    for (id, address) in functions {
        dispatch[*id as usize] = *address as usize;
    }
    let seed = [9u8; 32];
    let signers = [TrustedSigner { public_key: public_key(&seed), rights: SignerRights::NATIVE }];
    let signed = sign_blob(&std::fs::read(path).unwrap(), &seed, false).unwrap();
    let memory_len = Blob::new_checked(&signed[..]).unwrap().memory_len() as usize;
    let mut region = vec![0u8; memory_len + 65536];
    let loaded = native::load_at(&signed, &signers, &mut region, BLOB_ADDRESS, &dispatch, &mut NoCache)
        .unwrap_or_else(|error| panic!("{}: {error:?}", path.display()));

    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let image_file = scratch().join(format!("{stem}.image"));
    let job_file = scratch().join(format!("{stem}.job"));
    std::fs::write(&image_file, &region[..loaded.offset + memory_len]).unwrap();
    let mut job = (loaded.entry as u32).to_le_bytes().to_vec();
    job.extend_from_slice(&(input.len() as u32).to_le_bytes());
    job.extend_from_slice(input);
    let pad = |job: &mut Vec<u8>| job.resize(job.len().next_multiple_of(4), 0);
    pad(&mut job);
    job.extend_from_slice(&(datagrams.len() as u32).to_le_bytes());
    for datagram in datagrams {
        job.extend_from_slice(&(datagram.len() as u32).to_le_bytes());
        job.extend_from_slice(datagram);
        pad(&mut job);
    }
    std::fs::write(&job_file, &job).unwrap();

    let qemu = Command::new("qemu-system-arm")
        .args(["-M", "raspi0", "-display", "none", "-monitor", "none", "-serial", "stdio", "-kernel"])
        .arg(harness)
        .arg("-device")
        .arg(format!("loader,file={},addr={BLOB_ADDRESS:#x},force-raw=on", image_file.display()))
        .arg("-device")
        .arg(format!("loader,file={},addr={JOB_ADDRESS:#x},force-raw=on", job_file.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start qemu-system-arm");
    read_harness(qemu, path)
}

/// Reads the harness's lines until DONE (at most 60 s), then stops QEMU and waits for it.
fn read_harness(mut qemu: std::process::Child, path: &Path) -> (i32, Vec<u8>, Vec<String>, Vec<Vec<u8>>) {
    use std::io::BufRead;
    let stdout = qemu.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut output = Vec::new();
    let mut logs = Vec::new();
    let mut exit = None;
    let mut seen = Vec::new();
    let mut sent = Vec::new();
    let decode = |digits: &str| -> Vec<u8> { hex::decode(digits).unwrap() };
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        if let Some(hex) = line.strip_prefix("OUT ") {
            output.extend(decode(hex));
        } else if let Some(hex) = line.strip_prefix("LOG ") {
            logs.push(String::from_utf8_lossy(&decode(hex)).into_owned());
        } else if let Some(hex) = line.strip_prefix("SEND ") {
            sent.push(decode(hex));
        } else if line.trim() == "BADEP" {
            panic!("{}: a datagram went to another endpoint than its sender", path.display());
        } else if let Some(value) = line.strip_prefix("EXIT ") {
            exit = value.trim().parse().ok();
        } else if line.trim() == "DONE" {
            break;
        }
        seen.push(line);
    }
    let _ = qemu.kill();
    let _ = qemu.wait();
    let status = exit.unwrap_or_else(|| panic!("{}: the harness never finished; it printed {seen:?}", path.display()));
    (status, output, logs, sent)
}

/// The native builds compute what the wasm builds compute, on the emulated ARM1176: C and Rust
/// md5, sha256, fib and imagefilter blobs run through the runtime's loader and a bare-metal
/// harness under QEMU raspi0; echo against scripted datagrams.
#[test]
fn native_examples_run_on_the_emulated_board() {
    use sha2::Digest;
    let (picture_in, picture_out) = picture(6, 5);
    let sha_input: Vec<u8> = (0..200u32).map(|i| (i * 11) as u8).collect();
    let cases: [(&str, &[u8], Vec<u8>); 5] = [
        ("md5", b"", format!("{}\n", md5_hex(b"jon")).into_bytes()),
        ("md5", b"100 native", format!("{}\n", md5_hex(b"native")).into_bytes()),
        ("sha256", &sha_input, format!("{}\n", hex(&sha2::Sha256::digest(&sha_input))).into_bytes()),
        ("fib", b"90", b"2880067194370816120\n".to_vec()),
        ("imagefilter", &picture_in, picture_out.clone()),
    ];
    for language in LANGUAGES {
        for (name, input, expected) in &cases {
            let blob = built(Example::named(name).unwrap(), language, "native");
            let (status, output, logs) = run_native(&blob, input);
            assert_eq!(status, 0, "{language:?} {name}: logs {logs:?}");
            assert!(output == *expected, "{language:?} {name}: output {:?}", String::from_utf8_lossy(&output));
        }
        let blob = built(Example::named("echo").unwrap(), language, "native");
        let (status, output, logs, sent) = run_native_with_datagrams(&blob, b"7000", &[b"Echo1", b"odd", b"quit"]);
        assert_eq!((status, output.as_slice()), (0, &b"echoed 2\n"[..]), "{language:?} echo: logs {logs:?}");
        assert_eq!(sent, [&b"Echo1"[..], b"odd", b"bye"].map(<[u8]>::to_vec), "{language:?} echo");
        // An error path: logs through the slot, returns -InvalidArgument.
        let blob = built(Example::named("fib").unwrap(), language, "native");
        let (status, output, logs) = run_native(&blob, b"200");
        assert_eq!((status, output.len()), (-1, 0), "{language:?} fib 200");
        assert!(logs.iter().any(|line| line.contains("fib")), "{language:?}: {logs:?}");
    }
}

#[test]
fn rust_compile_errors_exit_with_code_5_and_a_hint() {
    let crate_dir = scratch().join("broken-rust");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), "#![no_std]\npub fn answer() -> i32 { \"forty-two\" }\n").unwrap();
    let output = jos_cli(&["build", crate_dir.to_str().unwrap(), "--format", "wasm", "-o", "broken.wasm"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("mismatched types") && stderr.contains("error: `cargo` failed"), "{stderr}");
}

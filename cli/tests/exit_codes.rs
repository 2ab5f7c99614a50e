//! Every documented exit code of `jos-cli` (docs/cli.md, `jos_cli::exit::Exit`) is produced by a
//! process-level test: the table below names, for each code, the test file and function that runs
//! `jos-cli` into it, and `every_exit_code_is_produced_by_a_named_process_test` checks that the
//! named function exists and asserts that code. The codes no other file produces are produced
//! here.
//!
//! Code 18 (`Aborted`) is the one exception: a jos device marks a job aborted only when its
//! client's connection is gone, so no client ever receives that status; the code stays for a
//! device that reports it (the wire format has the status), and docs/cli.md says so.

#[path = "support/output.rs"]
mod output;

use std::process::{Command, Output};

use jos_cli::exit::Exit;
use output::{assert_exit, text};

const JOS_CLI: &str = env!("CARGO_BIN_EXE_jos-cli");

/// Code, test file (from the repository root), function that produces it.
const PRODUCED_BY: &[(Exit, &str, &str)] = &[
    (Exit::Success, "cli/tests/emu_examples.rs", "examples_and_device_exit_codes_on_one_emulated_device"),
    (Exit::Failure, "cli/tests/exit_codes.rs", "unwritable_outputs_and_missing_tools"),
    (Exit::Usage, "cli/tests/build.rs", "usage_and_input_errors_have_their_exit_codes"),
    (Exit::Input, "cli/tests/build.rs", "usage_and_input_errors_have_their_exit_codes"),
    (Exit::ToolMissing, "cli/tests/exit_codes.rs", "unwritable_outputs_and_missing_tools"),
    (Exit::CompileFailed, "cli/tests/build.rs", "rust_compile_errors_exit_with_code_5_and_a_hint"),
    (Exit::AbiViolation, "cli/tests/build.rs", "unknown_import_is_refused_with_its_name_and_exit_code_6"),
    (Exit::NativeUnsupported, "cli/tests/build.rs", "native_constructors_are_refused_naming_the_section"),
    (Exit::Unreachable, "cli/tests/commands.rs", "device_commands_fail_with_their_codes_without_a_device"),
    (Exit::Untrusted, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::NotAuthorized, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Rejected, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Trap, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::OutOfFuel, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::LimitExceeded, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Deadline, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Busy, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::NotCached, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Protocol, "cli/tests/emu_examples.rs", "device_exit_codes"),
    (Exit::Timeout, "tests/tests/cli_sessions.rs", "a_session_silent_after_its_handshake_times_out"),
    (Exit::NotSetUp, "cli/tests/commands.rs", "device_commands_fail_with_their_codes_without_a_device"),
    (Exit::Exists, "cli/tests/commands.rs", "keygen_writes_keys_and_never_overwrites_without_force"),
    (Exit::BadSignature, "cli/tests/commands.rs", "sign_and_verify_interoperate_with_wasmsign2_both_ways"),
    (Exit::Emulator, "cli/tests/commands.rs", "device_commands_fail_with_their_codes_without_a_device"),
];

/// Codes no reachable path produces, with the reason (also in docs/cli.md).
const NOT_PRODUCED: &[(Exit, &str)] =
    &[(Exit::Aborted, "a jos device aborts a job only when its client is gone, so no client receives the status")];

/// The text of `fn name(` up to the closing brace at the start of a line.
fn function_body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("fn {name}("))?;
    let rest = &source[start..];
    let end = rest.find("\n}\n")?;
    Some(&rest[..end])
}

#[test]
fn every_exit_code_is_produced_by_a_named_process_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for exit in Exit::ALL {
        let code = exit.code();
        if let Some((_, why)) = NOT_PRODUCED.iter().find(|(unproduced, _)| *unproduced == exit) {
            assert!(PRODUCED_BY.iter().all(|(produced, ..)| *produced != exit), "{exit:?} is in both tables");
            let docs = std::fs::read_to_string(root.join("docs/cli.md")).unwrap();
            let row = docs.lines().find(|line| line.starts_with(&format!("| {code} | `{exit:?}` |"))).unwrap();
            assert!(row.contains("no command exits"), "docs/cli.md must say {exit:?} is not produced ({why}): {row}");
            continue;
        }
        let (_, file, function) = PRODUCED_BY
            .iter()
            .find(|(produced, ..)| *produced == exit)
            .unwrap_or_else(|| panic!("exit code {code} ({exit:?}) has no process-level test in the table"));
        let source = std::fs::read_to_string(root.join(file)).unwrap_or_else(|error| panic!("{file}: {error}"));
        let body = function_body(&source, function).unwrap_or_else(|| panic!("{file} has no fn {function}"));
        let asserted = if exit == Exit::Success {
            body.contains("assert_success(")
        } else {
            body.contains(&format!(", {code})")) || body.contains(&format!("Some({code})"))
        };
        assert!(asserted, "{file}::{function} does not assert exit code {code} ({exit:?})");
    }
}

fn jos_cli(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(JOS_CLI);
    command.args(args).current_dir(dir).env("JOS_HOME", dir.join("home")).env_remove("XDG_CONFIG_HOME");
    command
}

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    jos_cli(dir, args).output().expect("run jos-cli")
}

#[test]
fn unwritable_outputs_and_missing_tools() {
    let dir = tempfile::Builder::new().prefix("jos-cli-exit").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("main.c"), "#include \"jos.h\"\nint run(void) { return 0; }\n").unwrap();

    // 4: no compiler on the PATH (jos-cli itself is started by its full path).
    let output =
        jos_cli(dir, &["build", "main.c", "--format", "wasm"]).env("PATH", dir.join("empty")).output().unwrap();
    assert_exit(&output, 4);
    assert!(String::from_utf8_lossy(&output.stderr).contains("clang"), "{}", text(&output));
    let output =
        jos_cli(dir, &["build", "main.c", "--format", "native"]).env("PATH", dir.join("empty")).output().unwrap();
    assert_exit(&output, 4);
    assert!(String::from_utf8_lossy(&output.stderr).contains("arm-none-eabi-gcc"), "{}", text(&output));

    // 1: the output cannot be written (its folder does not exist).
    output::assert_success(&run(dir, &["build", "main.c", "--format", "wasm", "-o", "main.wasm"]));
    let output = run(dir, &["build", "main.c", "--format", "wasm", "-o", "missing/main.wasm"]);
    assert_exit(&output, 1);
    output::assert_success(&run(dir, &["keygen"]));
    let output = run(dir, &["sign", "main.wasm", "-o", "missing/signed.wasm"]);
    assert_exit(&output, 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot write"), "{}", text(&output));
}

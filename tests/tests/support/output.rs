//! Checks on a finished `jos-cli` process, shared by the CLI tests (included with `#[path]`).

// Each test file uses the helpers it needs; the others are unused there.
#![allow(dead_code)]

use std::process::Output;

/// The exit status, stdout and stderr, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The process exited 0.
pub fn assert_success(output: &Output) {
    assert!(output.status.success(), "{}", text(output));
}

/// The process exited with `code`.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", text(output));
}

/// Stdout parsed as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", text(output)))
}

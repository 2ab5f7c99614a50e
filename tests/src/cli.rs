//! The `jos-cli` binary for the tests that run it as a process (`tests/tests/cli_*.rs`). jos-tests
//! does not depend on the jos-cli crate (applications and tests use `jos-client` and `jos-build`),
//! so cargo does not hand these tests the binary's path: [`jos_cli`] builds it with the same cargo
//! and profile as the running test (a no-op when it is up to date, as under `cargo xtask test`)
//! and returns where cargo put it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The path of an up-to-date `jos-cli` binary, or `$JOS_CLI` when that is set.
///
/// # Panics
/// When cargo cannot build it (the build's messages are on stderr).
pub fn jos_cli() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build).clone()
}

fn build() -> PathBuf {
    if let Some(path) = std::env::var_os("JOS_CLI") {
        return PathBuf::from(path);
    }
    // A test runs as TARGET/PROFILE/deps/NAME-HASH: the binary goes to TARGET/PROFILE.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("a test binary sits in TARGET/PROFILE/deps");
    let profile = profile_dir.file_name().and_then(|name| name.to_str()).expect("a profile folder").to_string();
    let target = profile_dir.parent().expect("TARGET/PROFILE");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--quiet", "--package", "jos-cli", "--bin", "jos-cli", "--target-dir"])
        .arg(target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let status = command.status().unwrap_or_else(|error| panic!("cannot start cargo to build jos-cli: {error}"));
    assert!(status.success(), "building jos-cli failed ({status}): {command:?}");
    let binary = profile_dir.join(format!("jos-cli{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "cargo built jos-cli but {} is missing", binary.display());
    binary
}

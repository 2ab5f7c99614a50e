//! `cargo xtask`: the developer workflows of the jos repository.
//!
//! ```text
//! cargo xtask kernel [--features F]     build the kernel ELF (release) and print its path
//! cargo xtask qemu [--machine M]        build and boot the kernel in QEMU, console on stdio
//! cargo xtask demo                      README command 1: build, boot, show the boot log
//! cargo xtask test                      README command 2: every host and QEMU test
//! ```
//! Set-up (Debian packages, rustup components) is `scripts/setup.sh`, which the README's two
//! commands run first.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("kernel") => {
            let features = option_value(&args, "--features").unwrap_or_default();
            build_kernel(&features).map(|path| println!("{}", path.display()))
        }
        Some("qemu") => {
            let machine = option_value(&args, "--machine").unwrap_or_else(|| "raspi0".into());
            build_kernel("").and_then(|elf| qemu_interactive(&elf, &machine))
        }
        Some("demo") => demo(),
        Some("test") => test(),
        _ => {
            eprintln!("usage: cargo xtask <kernel [--features F] | qemu [--machine raspi0|raspi1ap] | demo | test>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn option_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the repository").into()
}

/// Where the kernel ELF for a feature set is kept, so that every variant survives the others'
/// builds and the tests can find them all.
pub fn kernel_artifact(features: &str) -> PathBuf {
    let name = if features.is_empty() { "jos-kernel.elf".to_string() } else { format!("jos-kernel-{features}.elf") };
    root().join("build").join(name)
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

fn build_kernel(features: &str) -> Result<PathBuf, String> {
    let kernel_dir = root().join("kernel");
    let mut cargo = Command::new(env!("CARGO"));
    // build-std needs nightly cargo features; the pinned stable toolchain accepts them with this.
    cargo.current_dir(&kernel_dir).env("RUSTC_BOOTSTRAP", "1").args(["build", "--release", "--quiet"]);
    if !features.is_empty() {
        cargo.args(["--features", features]);
    }
    run(&mut cargo)?;
    let built = kernel_dir.join("target/armv6-none-eabihf/release/jos-kernel");
    let artifact = kernel_artifact(features);
    std::fs::create_dir_all(artifact.parent().expect("artifact has a folder")).map_err(|e| e.to_string())?;
    std::fs::copy(&built, &artifact).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(artifact)
}

fn qemu_interactive(elf: &Path, machine: &str) -> Result<(), String> {
    run(Command::new(root().join("scripts/qemu-run")).env("JOS_MACHINE", machine).arg(elf))
}

fn demo() -> Result<(), String> {
    let elf = build_kernel("")?;
    println!("== booting jos on QEMU raspi0 (the boot log follows) ==");
    run(Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["run", "--quiet", "--release", "--package", "jos-tests", "--bin", "jos-boot-log", "--"])
        .arg(&elf))
}

fn test() -> Result<(), String> {
    // One kernel build serves every QEMU test: deliberate faults are console commands.
    build_kernel("")?;
    // Host unit tests and the QEMU tests (crate jos-tests) in one cargo invocation.
    run(Command::new(env!("CARGO")).current_dir(root()).env("JOS_BUILD_DIR", root().join("build")).args([
        "test",
        "--workspace",
        "--release",
    ]))
}

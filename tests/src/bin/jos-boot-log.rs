//! Boots a kernel ELF on QEMU raspi0, prints its console until the self-test verdict (or 60 s),
//! then stops QEMU. Used by `cargo xtask demo`.

use std::time::Duration;

use clap::Parser;
use jos_tests::{BootOptions, Qemu};

/// Boots a kernel ELF on QEMU raspi0 and prints its console until the self-test verdict.
#[derive(Debug, Parser)]
#[command(name = "jos-boot-log")]
struct Args {
    /// The kernel ELF to boot.
    #[arg(value_name = "KERNEL.elf")]
    elf: std::path::PathBuf,
}

fn main() -> std::process::ExitCode {
    let options = BootOptions::new("raspi0", Args::parse().elf);
    let mut qemu = match Qemu::boot(&options) {
        Ok(qemu) => qemu,
        Err(error) => {
            eprintln!("cannot start qemu-system-arm: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = qemu.wait_for_line("self-test:", Duration::from_secs(60));
    print!("{}", qemu.output());
    match result {
        Ok(verdict) if verdict.trim_start().starts_with("PASS") => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

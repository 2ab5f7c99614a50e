//! Boots a kernel ELF on QEMU raspi0, prints its console until the self-test verdict (or 60 s),
//! then stops QEMU. Used by `cargo xtask demo`.

use std::time::Duration;

use jos_tests::{BootOptions, Qemu};

fn main() -> std::process::ExitCode {
    let Some(elf) = std::env::args_os().nth(1) else {
        eprintln!("usage: jos-boot-log KERNEL.elf");
        return std::process::ExitCode::from(2);
    };
    let options = BootOptions::new("raspi0", elf.into());
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

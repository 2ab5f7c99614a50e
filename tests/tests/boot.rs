//! The kernel boots on both emulated boards and reports a passing self-test.

use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu, MACHINES};

#[test]
fn boots_and_passes_self_test_on_every_machine() {
    for machine in MACHINES {
        let mut qemu = Qemu::boot(&BootOptions::new(machine, kernel_elf(""))).expect("start QEMU");
        let verdict =
            qemu.wait_for_line("self-test:", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
        assert!(
            verdict.trim_start().starts_with("PASS"),
            "{machine}: self-test verdict was not PASS:\n{}",
            qemu.output()
        );
        assert!(qemu.output().contains("jos "), "{machine}: no banner:\n{}", qemu.output());
    }
}

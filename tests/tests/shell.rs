//! The serial console takes input through the PL011 receive interrupt: commands typed on the
//! console are echoed and answered by the kernel's shell task.

use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu};

#[test]
fn console_commands_are_answered() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("heap\r").expect("type a command");
    let heap = qemu.wait_for_line("heap: size ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(heap.contains("failures 1"), "the self-test's one failure is counted: {heap}");
    qemu.send("tasks\r").expect("type a command");
    for task in ["shell", "status", "heartbeat"] {
        qemu.wait_for_line(&format!("task {task}"), Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    }
    qemu.send("frobnicate\r").expect("type a command");
    qemu.wait_for_line("unknown command `frobnicate`", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
}

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

#[test]
fn panic_is_reported_on_console_and_screen_then_halts() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("panic\r").expect("type a command");
    let report = qemu.wait_for_line("PANIC at ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.starts_with("src/services/shell.rs:"), "panic location: {report}");
    assert!(report.ends_with(": requested from the console"), "panic message: {report}");
    qemu.wait_for_line("jos: halted", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
    let picture = qemu.screen_picture().expect("screendump");
    let line = format!("PANIC at {report}");
    let rows = picture.height / jos_kcore::font::HEIGHT;
    let on_screen = (jos_kcore::console::STATUS_ROWS..rows).any(|row| {
        picture.text_mismatches(row, &line, jos_kcore::console::colors::ERROR_FOREGROUND, 0) == 0
    });
    assert!(on_screen, "{line:?} is not on the screen in red");
    // Halted: the console no longer answers.
    qemu.send("heap\r").expect("type a command");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!qemu.output().contains("heap: size"), "the kernel still runs after a panic");
}

#[test]
fn allocation_failure_is_reported_not_a_hang() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("oom\r").expect("type a command");
    let error = qemu.wait_for_line_containing("ERROR heap: cannot allocate", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(error.contains("failures 2"), "the failure is counted (after the self-test's one): {error}");
    let panic = qemu.wait_for_line("PANIC at ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(panic.contains("memory allocation of"), "allocation-error panic: {panic}");
    qemu.wait_for_line("jos: halted", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
}

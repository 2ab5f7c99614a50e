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
    let dma = qemu.wait_for_line("dma: used ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let numbers: Vec<usize> = dma.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    assert!(
        matches!(numbers[..], [used, free] if used > 0 && free > 0 && used + free == 2 << 20),
        "the DMA region's use: {dma}"
    );
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
    let on_screen = (jos_kcore::console::STATUS_ROWS..rows)
        .any(|row| picture.text_mismatches(row, &line, jos_kcore::console::colors::ERROR_FOREGROUND, 0) == 0);
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
    let error = qemu
        .wait_for_line_containing("ERROR heap: cannot allocate", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(error.contains("failures 2"), "the failure is counted (after the self-test's one): {error}");
    let panic = qemu.wait_for_line("PANIC at ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(panic.contains("memory allocation of"), "allocation-error panic: {panic}");
    qemu.wait_for_line("jos: halted", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"));
}

fn hex_after(text: &str, key: &str) -> Option<usize> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits = rest.strip_prefix("0x")?;
    let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
    usize::from_str_radix(&digits[..end], 16).ok()
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    let stacks =
        qemu.wait_for_line_containing("stacks: svc ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let svc_bottom = hex_after(&stacks, "svc ").expect("svc stack bottom");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("overflow\r").expect("type a command");
    let output = qemu.wait_for("jos: halted", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let report = &output[output.find("FAULT: ").expect("a fault report")..];
    assert!(report.starts_with("FAULT: data abort"), "{report}");
    let far = hex_after(report, "far=").expect("far");
    assert!(
        (svc_bottom - 4096..svc_bottom).contains(&far),
        "fault address {far:#x} is not in the guard page under the SVC stack ({svc_bottom:#x}):\n{report}"
    );
    // DFSR status 0b00111: translation fault, page (the guard page of a coarse table).
    let dfsr = hex_after(report, "dfsr=").expect("dfsr");
    assert_eq!(dfsr & 0x40F, 0x7, "DFSR {dfsr:#x}:\n{report}");
}

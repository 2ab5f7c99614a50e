//! The kernel boots on both emulated boards, passes its self-test, prints its boot figures and
//! keeps running its cyclic executive.

use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu, MACHINES};

/// Extracts the number after `key` in `line` (e.g. "image 43156 bytes" with key "image ").
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn boots_and_passes_self_test_on_every_machine() {
    for machine in MACHINES {
        let mut qemu = Qemu::boot(&BootOptions::new(machine, kernel_elf(""))).expect("start QEMU");
        let verdict =
            qemu.wait_for_line("self-test:", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
        assert_eq!(verdict.trim(), "PASS", "{machine}: self-test verdict was not PASS:\n{}", qemu.output());
        let output = qemu.output();
        assert!(output.starts_with("jos 0."), "{machine}: no banner first:\n{output}");
        let expected_board = if *machine == "raspi0" { "Raspberry Pi Zero" } else { "Raspberry Pi A+" };
        assert!(output.contains(expected_board), "{machine}: board not recognised:\n{output}");

        // The boot figures: time to the verdict, image size, idle heap.
        let figures = qemu.wait_for_line("boot: ", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{machine}: {e}"));
        let verdict_micros = number_after(&figures, "verdict ").expect("verdict time");
        let image = number_after(&figures, "image ").expect("image size");
        let heap_total = number_after(&figures, " used of ").expect("heap size");
        assert!(verdict_micros > 0 && verdict_micros < 5_000_000, "{machine}: boot took {verdict_micros} us");
        assert!(image > 10_000 && image < 16 << 20, "{machine}: image size {image}");
        assert!(heap_total > 256 << 20, "{machine}: heap of {heap_total} bytes");
    }
}

#[test]
fn executive_runs_frames_after_boot() {
    let mut qemu = Qemu::boot(&BootOptions::new("raspi0", kernel_elf(""))).expect("start QEMU");
    let heartbeat =
        qemu.wait_for_line_containing("heartbeat 2:", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let frames = number_after(&heartbeat, "frames ").expect("frame count");
    let missed = number_after(&heartbeat, "missed ").expect("missed count");
    // Beat 2 runs in frame 1000: every tick either ran a frame or was counted as missed.
    let ticks = frames + missed;
    assert!((900..=1100).contains(&ticks), "frames {frames} + missed {missed} is not one second of ticks: {heartbeat}");
    assert!(frames >= 500, "the executive ran only {frames} frames in a second: {heartbeat}");
    // Exactly one allocation failure: the self-test's deliberate one; none at idle.
    assert!(heartbeat.contains("failures 1"), "heap failures at idle: {heartbeat}");
}

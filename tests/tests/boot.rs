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
        let figures =
            qemu.wait_for_line("boot: ", Duration::from_secs(10)).unwrap_or_else(|e| panic!("{machine}: {e}"));
        let verdict_micros = number_after(&figures, "verdict ").expect("verdict time");
        let image = number_after(&figures, "image ").expect("image size");
        let heap_total = number_after(&figures, " used of ").expect("heap size");
        assert!(verdict_micros > 0 && verdict_micros < 5_000_000, "{machine}: boot took {verdict_micros} us");
        assert!(image > 10_000 && image < 16 << 20, "{machine}: image size {image}");
        assert!(heap_total > 256 << 20, "{machine}: heap of {heap_total} bytes");
    }
}

/// Waits for the `n`-th (from 0) complete console line starting with `prefix`.
fn nth_line_starting(qemu: &Qemu, prefix: &str, n: usize, timeout: Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let output = qemu.output();
        let complete = &output[..output.rfind('\n').map_or(0, |end| end + 1)];
        if let Some(line) = complete.lines().filter(|l| l.starts_with(prefix)).nth(n) {
            return line.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no line #{n} starting with {prefix:?}:\n{output}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Guest time follows the instruction count (16 ns each: a 62.5 MIPS core) and jumps over idle
/// periods, so the executive's counters are exact, whatever the host's load. (Shift 4 rather
/// than 0: boot-time busy-waits, such as USB enumeration's, poll device registers, which is
/// slow under icount, and a slower guest clock needs fewer polls.)
fn deterministic(machine: &str) -> BootOptions {
    let mut options = BootOptions::new(machine, kernel_elf(""));
    options.extra_args = vec!["-icount".into(), "shift=4,sleep=off".into()];
    options
}

#[test]
fn executive_runs_every_frame_and_counts_overruns() {
    let mut qemu = Qemu::boot(&deterministic("raspi0")).expect("start QEMU");
    let heartbeat =
        qemu.wait_for_line_containing("heartbeat 2:", Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    // Beat 2 runs in frame 1000 (frames 0 to 1000), with nothing overrun or missed at idle.
    assert_eq!(number_after(&heartbeat, "frames "), Some(1001), "{heartbeat}");
    assert_eq!(number_after(&heartbeat, "overruns "), Some(0), "{heartbeat}");
    assert_eq!(number_after(&heartbeat, "missed "), Some(0), "{heartbeat}");
    // Exactly one allocation failure: the self-test's deliberate one; none at idle.
    assert!(heartbeat.contains("failures 1"), "heap failures at idle: {heartbeat}");

    // A task that takes 5 frames: one overrun, and the ticks it held up are missed frames.
    qemu.send("executive\r").expect("type");
    let before = qemu.wait_for_line("executive: ", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("stall 5\r").expect("type");
    qemu.wait_for_line("stalled 5 ms", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("executive\r").expect("type");
    let after = nth_line_starting(&qemu, "executive: ", 1, Duration::from_secs(20));
    let field = |line: &str, key: &str| number_after(line, key).unwrap_or_else(|| panic!("{key} in {line}"));
    assert_eq!(field(&after, "overruns ") - field(&before, "overruns "), 1, "{before}\n{after}");
    let missed = field(&after, "missed ") - field(&before, "missed ");
    assert!((4..=5).contains(&missed), "a 5 ms stall missed {missed} frames:\n{before}\n{after}");
}

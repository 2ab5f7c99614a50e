//! Deliberate faults (the console commands `fault undef` and `fault abort`) are
//! reported with the right exception kind, faulting PC and fault address, then the kernel halts.

use std::time::Duration;

use jos_kcore::console::{colors, STATUS_ROWS};
use jos_tests::{kernel_elf, BootOptions, Qemu, MACHINES};

/// Boots the normal kernel and waits until its console takes commands.
fn boot_to_shell(machine: &str) -> Qemu {
    let mut qemu = Qemu::boot(&BootOptions::new(machine, kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    qemu
}

fn hex_after(text: &str, key: &str) -> Option<u32> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits = rest.strip_prefix("0x")?;
    let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
    u32::from_str_radix(&digits[..end], 16).ok()
}

/// Boots the kernel on `machine` and types `command`; returns (the kernel's announcement line,
/// the fault report). On raspi0 it also checks that the report's first line is on the screen, in
/// red.
fn fault_report(machine: &str, command: &str) -> (String, String) {
    let mut qemu = boot_to_shell(machine);
    qemu.send(&format!("{command}\r")).expect("type a command");
    let announced =
        qemu.wait_for_line("fault-test: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    let output = qemu.wait_for("jos: halted", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    let report =
        output[output.find("FAULT: ").unwrap_or_else(|| panic!("{machine}: no FAULT line:\n{output}"))..].to_string();
    if machine == "raspi0" {
        let first_line = report.lines().next().expect("report line");
        let picture = qemu.screen_picture().expect("screendump");
        let rows = picture.height / jos_kcore::font::HEIGHT;
        let on_screen = (STATUS_ROWS..rows).any(|row| {
            picture.text_mismatches(row, first_line, colors::ERROR_FOREGROUND, colors::CONSOLE_BACKGROUND) == 0
        });
        assert!(on_screen, "{machine}: {first_line:?} is not on the screen's console in red");
    }
    (announced, report)
}

#[test]
fn undefined_instruction_is_reported() {
    for machine in MACHINES {
        let (announced, report) = fault_report(machine, "fault undef");
        let expected_pc = hex_after(&announced, "pc=").expect("announced pc");
        assert!(report.starts_with("FAULT: undefined instruction at pc="), "{machine}: wrong kind:\n{report}");
        assert_eq!(hex_after(&report, "at pc="), Some(expected_pc), "{machine}: wrong pc:\n{report}");
        for register in ["r0 =", "r12=", "sp=", "lr=", "cpsr=", "stack (svc"] {
            assert!(report.contains(register), "{machine}: report lacks {register}:\n{report}");
        }
    }
}

#[test]
fn data_abort_is_reported() {
    for machine in MACHINES {
        let (announced, report) = fault_report(machine, "fault abort");
        let expected_pc = hex_after(&announced, "pc=").expect("announced pc");
        let expected_address = hex_after(&announced, "address=").expect("announced address");
        assert!(report.starts_with("FAULT: data abort at pc="), "{machine}: wrong kind:\n{report}");
        assert_eq!(hex_after(&report, "at pc="), Some(expected_pc), "{machine}: wrong pc:\n{report}");
        assert_eq!(hex_after(&report, "far="), Some(expected_address), "{machine}: wrong address:\n{report}");
        // DFSR status 0b00101: translation fault, section (ARM1176 TRM table 6-13).
        let dfsr = hex_after(&report, "dfsr=").expect("dfsr");
        assert_eq!(dfsr & 0x40F, 0x5, "{machine}: DFSR {dfsr:#x} is not a section translation fault:\n{report}");
    }
}

#[test]
fn fault_reboots_through_the_watchdog_when_configured() {
    let mut qemu = boot_to_shell("raspi0");
    qemu.send("on-fault reboot\r").expect("type a command");
    qemu.wait_for_line("on-fault: reboot", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    qemu.send("fault undef\r").expect("type a command");
    qemu.wait_for("jos: rebooting through the watchdog", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    // The PM watchdog resets the board: the kernel boots a second time and passes again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let output = qemu.output();
        let after = output.split("jos: rebooting through the watchdog").nth(1).unwrap_or("");
        if after.contains("(BCM2835) booting") && after.contains("self-test: PASS") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no second boot after the watchdog reset:\n{output}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

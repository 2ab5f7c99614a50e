//! Deliberate faults (kernel builds with the `fault-undef` and `fault-abort` features) are
//! reported with the right exception kind, faulting PC and fault address, then the kernel halts.

use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu, MACHINES};

fn hex_after(text: &str, key: &str) -> Option<u32> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits = rest.strip_prefix("0x")?;
    let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
    u32::from_str_radix(&digits[..end], 16).ok()
}

/// Boots `features` on `machine`, returns (the kernel's announcement line, the fault report).
fn fault_report(machine: &str, features: &str) -> (String, String) {
    let mut qemu = Qemu::boot(&BootOptions::new(machine, kernel_elf(features))).expect("start QEMU");
    let announced = qemu.wait_for_line("fault-test: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    let output = qemu.wait_for("jos: halted", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    let report = output[output.find("FAULT: ").unwrap_or_else(|| panic!("{machine}: no FAULT line:\n{output}"))..].to_string();
    (announced, report)
}

#[test]
fn undefined_instruction_is_reported() {
    for machine in MACHINES {
        let (announced, report) = fault_report(machine, "fault-undef");
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
        let (announced, report) = fault_report(machine, "fault-abort");
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

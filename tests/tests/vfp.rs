//! The VFP support code under QEMU. QEMU never bounces a VFP instruction, so the console command
//! `vfp bounce` synthesises one: it loads the staged registers and FPSCR into the VFP, writes
//! FPINST (and FPINST2 with FPEXC.FP2V), sets FPEXC.EX and takes the undefined-instruction
//! exception as the core does, so the real vector entry saves the state, the support code
//! emulates, and the trigger instruction is retried. The expected registers are computed here
//! with the host's IEEE arithmetic (Rust f32/f64); the flags are the architecture's, worked out
//! in each case's comment (tininess before rounding, NaN rules and compares are ARM's, not the
//! host's).

use std::time::Duration;

use jos_tests::{kernel_elf, BootOptions, Qemu, MACHINES};

const EN: u32 = 1 << 30;
const IOC: u32 = 1;
const UFC: u32 = 1 << 3;
const IXC: u32 = 1 << 4;
const FZ: u32 = 1 << 24;

fn boot(machine: &str) -> Qemu {
    let mut qemu = Qemu::boot(&BootOptions::new(machine, kernel_elf(""))).expect("start QEMU");
    qemu.wait_for_line("boot: ", Duration::from_secs(60)).unwrap_or_else(|e| panic!("{machine}: {e}"));
    qemu
}

fn hex_after(text: &str, key: &str) -> u32 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("no {key} in {text}")) + key.len()..];
    let digits = rest.trim_start_matches("0x");
    let end = digits.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(digits.len());
    u32::from_str_radix(&digits[..end], 16).expect("hex")
}

/// One synthesised bounce: staged registers, FPSCR, FPINST, optional FPINST2.
struct Case {
    name: &'static str,
    fpscr: u32,
    registers: Vec<(usize, u32)>,
    fpinst: u32,
    fpinst2: Option<u32>,
    /// Registers that must hold these values afterwards (every other one keeps its staged value).
    expected: Vec<(usize, u32)>,
    expected_fpscr: u32,
}

fn double(registers: &mut Vec<(usize, u32)>, d: usize, value: f64) {
    let bits = value.to_bits();
    registers.push((2 * d, bits as u32));
    registers.push((2 * d + 1, (bits >> 32) as u32));
}

fn cases() -> Vec<Case> {
    let f = |bits: u32| f32::from_bits(bits);
    let mut cases = Vec::new();

    // vadd.f32 s0, s1, s2 on two subnormals: exact, no flag.
    cases.push(Case {
        name: "subnormal add",
        fpscr: 0,
        registers: vec![(1, 0x0000_0001), (2, 0x0000_0002)],
        fpinst: 0xEE30_0A81,
        fpinst2: None,
        expected: vec![(0, (f(1) + f(2)).to_bits())],
        expected_fpscr: 0,
    });

    // vmul.f32 s0, s1, s2: (1 - 2^-23) * 2^-126 (1 + 2^-23) = 2^-126 (1 - 2^-46) rounds up to
    // the smallest normal; tiny before rounding and inexact: UFC and IXC.
    cases.push(Case {
        name: "underflow before rounding",
        fpscr: 0,
        registers: vec![(1, 0x3F7F_FFFE), (2, 0x0080_0001)],
        fpinst: 0xEE20_0A81,
        fpinst2: None,
        expected: vec![(0, (f(0x3F7F_FFFE) * f(0x0080_0001)).to_bits())],
        expected_fpscr: UFC | IXC,
    });

    // The same in flush-to-zero mode: +0 and UFC only.
    cases.push(Case {
        name: "flush to zero",
        fpscr: FZ,
        registers: vec![(1, 0x3F7F_FFFE), (2, 0x0080_0001)],
        fpinst: 0xEE20_0A81,
        fpinst2: None,
        expected: vec![(0, 0)],
        expected_fpscr: FZ | UFC,
    });

    // vdiv.f64 d0, d1, d2: the smallest subnormal double over 0.5, exact.
    let mut registers = Vec::new();
    double(&mut registers, 1, f64::from_bits(1));
    double(&mut registers, 2, 0.5);
    let quotient = (f64::from_bits(1) / 0.5).to_bits();
    cases.push(Case {
        name: "subnormal double divide",
        fpscr: 0,
        registers,
        fpinst: 0xEE81_0B02,
        fpinst2: None,
        expected: vec![(0, quotient as u32), (1, (quotient >> 32) as u32)],
        expected_fpscr: 0,
    });

    // vadd.f32 s0, s1, s2: a quiet NaN first, a signalling NaN second: the signalling one wins,
    // quieted, with IOC (ARM's rule; the host would pick the first).
    cases.push(Case {
        name: "NaN propagation",
        fpscr: 0,
        registers: vec![(1, 0x7FC0_0001), (2, 0x7F80_0002)],
        fpinst: 0xEE30_0A81,
        fpinst2: None,
        expected: vec![(0, 0x7FC0_0002)],
        expected_fpscr: IOC,
    });

    // vcvt.s32.f64 s28, d14 of 1e10: saturates to i32::MAX with IOC (the VFP11 bounces every
    // out-of-range conversion).
    let mut registers = Vec::new();
    double(&mut registers, 14, 1e10);
    cases.push(Case {
        name: "out-of-range conversion",
        fpscr: 0,
        registers,
        fpinst: 0xEEBD_EBCE,
        fpinst2: None,
        expected: vec![(28, 1e10f64 as i32 as u32)],
        expected_fpscr: IOC,
    });

    // vcmpe.f32 s5, s6 with a quiet NaN: unordered (NZCV = 0011) and IOC.
    cases.push(Case {
        name: "compare with NaN",
        fpscr: 0,
        registers: vec![(5, 0x7FC0_0000), (6, 0x3F80_0000)],
        fpinst: 0xEEF4_2AC3,
        fpinst2: None,
        expected: vec![],
        expected_fpscr: 0x3000_0000 | IOC,
    });

    // FPINST vadd.f32 s0, s1, s2 (subnormals) and FPINST2 vmul.f64 d2, d3, d4 = 2^-1022 * 0.75:
    // subnormal and inexact (UFC, IXC).
    let mut registers = vec![(1, 0x0000_0001), (2, 0x0000_0002)];
    double(&mut registers, 3, f64::from_bits(0x0010_0000_0000_0001));
    double(&mut registers, 4, 0.75);
    let product = (f64::from_bits(0x0010_0000_0000_0001) * 0.75).to_bits();
    cases.push(Case {
        name: "FPINST and FPINST2",
        fpscr: 0,
        registers,
        fpinst: 0xEE30_0A81,
        fpinst2: Some(0xEE23_2B04),
        expected: vec![(0, 3), (4, product as u32), (5, (product >> 32) as u32)],
        expected_fpscr: UFC | IXC,
    });
    cases
}

/// Types a `vfp` staging command and waits for its `vfp: ` answer (the console's input ring is
/// small: one command at a time).
fn command(qemu: &mut Qemu, text: &str, answers: &mut usize) {
    qemu.send(&format!("{text}\r")).expect("type a command");
    *answers += 1;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while qemu.output().lines().filter(|line| line.starts_with("vfp: ") && !line.starts_with("vfp: fpsid")).count()
        < *answers
    {
        assert!(std::time::Instant::now() < deadline, "no answer to {text:?}:\n{}", qemu.output());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn synthesised_bounces_are_emulated_and_the_trigger_retried() {
    for machine in MACHINES {
        let mut qemu = boot(machine);
        // The kernel runs in full-compliance mode: no flush-to-zero, no default NaN, round to
        // nearest, no short vectors, no trap enabled.
        qemu.send("vfp\r").expect("type");
        let status =
            qemu.wait_for_line("vfp: fpsid=", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{machine}: {e}"));
        let fpscr = hex_after(&status, "fpscr=");
        assert_eq!(fpscr & 0x03FF_9F00, 0, "{machine}: FPSCR {fpscr:#x} is not full-compliance mode");
        assert!(status.contains("bounces=0 refused=0"), "{machine}: {status}");

        let mut answers = 0;
        // What the kernel has staged (the register file starts all zero).
        let mut kernel_staged = [0u32; 32];
        for (index, case) in cases().iter().enumerate() {
            let number = index + 1;
            // A sentinel in every register, then the operands.
            let mut staged = [0u32; 32];
            for (register, value) in staged.iter_mut().enumerate() {
                *value = 0x5EED_0000 + register as u32;
            }
            for &(register, value) in &case.registers {
                staged[register] = value;
            }
            for (register, value) in staged.iter().enumerate() {
                if kernel_staged[register] != *value {
                    command(&mut qemu, &format!("vfp set {register} {value:x}"), &mut answers);
                    kernel_staged[register] = *value;
                }
            }
            command(&mut qemu, &format!("vfp fpscr {:x}", case.fpscr), &mut answers);
            let command = match case.fpinst2 {
                Some(second) => format!("vfp bounce {:x} {second:x}\r", case.fpinst),
                None => format!("vfp bounce {:x}\r", case.fpinst),
            };
            qemu.send(&command).expect("type");
            let summary = qemu
                .wait_for_line(&format!("vfp-bounce {number}: "), Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{machine} {}: {e}", case.name));
            let registers = qemu
                .wait_for_line(&format!("vfp-regs {number}:"), Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                hex_after(&summary, "fpscr="),
                case.expected_fpscr,
                "{machine} {}: FPSCR ({summary})",
                case.name
            );
            assert_eq!(
                hex_after(&summary, "fpexc="),
                EN,
                "{machine} {}: EX and FP2V must be clear ({summary})",
                case.name
            );
            assert_eq!(hex_after(&summary, "bounces="), number as u32, "{machine} {}: {summary}", case.name);
            let mut expected = staged;
            for &(register, value) in &case.expected {
                expected[register] = value;
            }
            for (register, value) in expected.iter().enumerate() {
                let actual = hex_after(&registers, &format!(" s{register}="));
                assert_eq!(
                    actual, *value,
                    "{machine} {}: s{register} is {actual:#010x}, expected {value:#010x}",
                    case.name
                );
            }
        }
        qemu.kill();
    }
}

#[test]
fn a_bounce_the_support_code_refuses_is_a_kernel_fault() {
    let mut qemu = boot("raspi0");
    // FPSCR.LEN = 1 (vectors of two): short vectors are not emulated.
    qemu.send("vfp fpscr 10000\r").expect("type");
    qemu.send("vfp bounce ee300a81\r").expect("type");
    let why =
        qemu.wait_for_line_containing("vfp: bounce at pc=", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    assert!(why.contains("short vector") && why.contains("FPINST=0xee300a81"), "{why}");
    let output = qemu.wait_for("jos: halted", Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    let report = &output[output.find("FAULT: ").unwrap_or_else(|| panic!("no FAULT line:\n{output}"))..];
    assert!(report.starts_with("FAULT: undefined instruction at pc="), "{report}");
    // The reported PC is the trigger instruction (an FPSCR read), not FPINST.
    let pc = hex_after(report, "at pc=");
    let bounce_pc = hex_after(&why, "pc=");
    assert_eq!(pc, bounce_pc, "{report}");
}

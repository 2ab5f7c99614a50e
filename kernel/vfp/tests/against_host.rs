//! Every VFP data-processing instruction, executed by `jos_vfp::execute` from its instruction
//! word, against the host's IEEE hardware (x86-64 SSE with MXCSR set to each rounding mode, its
//! own exception flags) plus the ARM rules of `common` for what x86 does differently. Operands:
//! the specials (zeros, subnormals, smallest normal, one, largest, infinities, quiet and
//! signalling NaNs, both signs) pairwise, and seeded random operands biased towards the underflow
//! and overflow boundaries. Environments: the four rounding modes, each with and without
//! flush-to-zero and default-NaN mode. Results and cumulative flags must match bit for bit.

#![cfg(target_arch = "x86_64")]

mod common;

use common::*;
use jos_vfp::{execute, RegisterFile};

/// Counts cases and collects the first failures, so one run shows several.
struct Check {
    cases: usize,
    failed: usize,
    failures: Vec<String>,
}

impl Check {
    fn new() -> Self {
        Check { cases: 0, failed: 0, failures: Vec::new() }
    }

    fn compare(&mut self, what: impl FnOnce() -> String, expected: Expected, bits: u64, flags: u32) {
        self.cases += 1;
        let actual = Expected { bits, flags };
        if actual != expected {
            self.failed += 1;
        }
        if actual != expected && self.failures.len() < 20 {
            self.failures.push(format!(
                "{}: expected {:#x} flags {:#04x}, got {:#x} flags {:#04x}",
                what(),
                expected.bits,
                expected.flags,
                bits,
                flags
            ));
        }
    }

    fn finish(self, at_least: usize) {
        assert!(
            self.failed == 0,
            "{} failures in {} cases, first ones:\n{}",
            self.failed,
            self.cases,
            self.failures.join("\n")
        );
        assert!(self.cases >= at_least, "only {} cases", self.cases);
        println!("{} cases", self.cases);
    }
}

/// The cumulative flags of an FPSCR (IDC, IXC, UFC, OFC, DZC, IOC).
fn cumulative(fpscr: u32) -> u32 {
    fpscr & 0x9F
}

fn set(registers: &mut RegisterFile, format: Format, index: u8, value: u64) {
    if format.double {
        registers.set_double(index, value);
    } else {
        registers.set_single(index, value as u32);
    }
}

fn get(registers: &RegisterFile, format: Format, index: u8) -> u64 {
    if format.double {
        registers.double(index)
    } else {
        u64::from(registers.single(index))
    }
}

/// Runs `word` with the registers given; returns the register file and FPSCR after it.
fn run(word: u32, fpscr: u32, registers: &mut RegisterFile) -> u32 {
    execute(word, fpscr, registers).unwrap_or_else(|refusal| panic!("{word:#010x}: {refusal}"))
}

fn operand_pairs(format: Format, seed: u64, random: usize) -> Vec<(u64, u64)> {
    let specials = specials(format);
    let mut pairs: Vec<(u64, u64)> = specials.iter().flat_map(|&a| specials.iter().map(move |&b| (a, b))).collect();
    let mut rng = Random::new(seed);
    for _ in 0..random {
        pairs.push((rng.operand(format), rng.operand(format)));
    }
    pairs
}

fn negate(format: Format, value: u64) -> u64 {
    value ^ format.sign()
}

#[test]
fn add_subtract_multiply_divide_match_the_host() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        for (index, op) in BINARY.into_iter().enumerate() {
            let opcode = match op {
                Binary::Add => 0b0110,
                Binary::Subtract => 0b0111,
                Binary::Multiply => 0b0100,
                Binary::Divide => 0b1000,
            };
            // Fd = Fn op Fm with d = 3, n = 1, m = 2 (double: D3 = D1 op D2).
            let word = encode(opcode, format.double, 3, format.double, 1, format.double, 2, format.double);
            for (a, b) in operand_pairs(format, 0x5EED_0000 + index as u64, 1500) {
                for env in Environment::all() {
                    let expected = expected_binary(op, format, a, b, env);
                    let mut registers = RegisterFile { s: [0; 32] };
                    set(&mut registers, format, 1, a);
                    set(&mut registers, format, 2, b);
                    let fpscr = run(word, env.fpscr(), &mut registers);
                    check.compare(
                        || format!("{op:?} {format:?} {a:#x} {b:#x} {env:?}"),
                        expected,
                        get(&registers, format, 3),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(200_000);
}

#[test]
fn multiply_accumulate_family_and_negated_multiply_match_the_host() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        let specials = specials(format);
        let mut rng = Random::new(0xACC0_0000 + u64::from(format.double));
        let mut triples = Vec::new();
        for _ in 0..1500 {
            let pick = |rng: &mut Random| {
                if rng.below(3) == 0 {
                    specials[rng.below(specials.len() as u64) as usize]
                } else {
                    rng.operand(format)
                }
            };
            triples.push((pick(&mut rng), pick(&mut rng), pick(&mut rng)));
        }
        // opcode: FMAC 0000, FNMAC 0001, FMSC 0010, FNMSC 0011, FNMUL 0101.
        for opcode in [0b0000u32, 0b0001, 0b0010, 0b0011, 0b0101] {
            let word = encode(opcode, format.double, 3, format.double, 1, format.double, 2, format.double);
            for &(d, n, m) in &triples {
                for env in Environment::all() {
                    // ARMv7 ARM VMLA/VMLS/VNMLA/VNMLS/VNMUL: the product is rounded (FPMul), then
                    // negated as the opcode says (FPNeg flips NaNs too), then added (FPAdd).
                    let product = expected_binary(Binary::Multiply, format, n, m, env);
                    let expected = if opcode == 0b0101 {
                        Expected { bits: negate(format, product.bits), flags: product.flags }
                    } else {
                        let (addend, product_bits) = match opcode {
                            0b0000 => (d, product.bits),
                            0b0001 => (d, negate(format, product.bits)),
                            0b0010 => (negate(format, d), product.bits),
                            _ => (negate(format, d), negate(format, product.bits)),
                        };
                        let sum = expected_binary(Binary::Add, format, addend, product_bits, env);
                        Expected { bits: sum.bits, flags: sum.flags | product.flags }
                    };
                    let mut registers = RegisterFile { s: [0; 32] };
                    set(&mut registers, format, 1, n);
                    set(&mut registers, format, 2, m);
                    set(&mut registers, format, 3, d);
                    let fpscr = run(word, env.fpscr(), &mut registers);
                    check.compare(
                        || format!("opcode {opcode:04b} {format:?} d={d:#x} n={n:#x} m={m:#x} {env:?}"),
                        expected,
                        get(&registers, format, 3),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(200_000);
}

#[test]
fn square_root_matches_the_host() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        let word = encode_extension(0b00011, format.double, 3, format.double, 2, format.double);
        let mut operands = specials(format);
        let mut rng = Random::new(0x5091 + u64::from(format.double));
        operands.extend((0..3000).map(|_| rng.operand(format)));
        for &a in &operands {
            for env in Environment::all() {
                let mut flags = 0;
                let flushed = flush_operand(env, format, a, &mut flags);
                let bits = if let Some(nan) = arm_nans(env, format, flushed, 0, &mut flags) {
                    nan
                } else {
                    let root = |mode| {
                        let mut hw = if format.double { sqrtsd(0, flushed, mode) } else { sqrtss(0, flushed, mode) };
                        if !format.double {
                            hw.bits &= 0xFFFF_FFFF;
                        }
                        hw
                    };
                    arm_result(env, format, root(env.mode), || root(Mode::Zero), &mut flags)
                };
                let mut registers = RegisterFile { s: [0; 32] };
                set(&mut registers, format, 2, a);
                let fpscr = run(word, env.fpscr(), &mut registers);
                check.compare(
                    || format!("sqrt {format:?} {a:#x} {env:?}"),
                    Expected { bits, flags },
                    get(&registers, format, 3),
                    cumulative(fpscr),
                );
            }
        }
    }
    check.finish(20_000);
}

#[test]
fn copy_absolute_negate_move_bits_only() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        let mut operands = specials(format);
        let mut rng = Random::new(0xAB5);
        operands.extend((0..500).map(|_| rng.operand(format)));
        for (extension, name) in [(0b00000, "copy"), (0b00001, "abs"), (0b00010, "neg")] {
            let word = encode_extension(extension, format.double, 3, format.double, 2, format.double);
            for &a in &operands {
                for env in Environment::all() {
                    let bits = match extension {
                        0 => a,
                        1 => a & !format.sign(),
                        _ => a ^ format.sign(),
                    };
                    let mut registers = RegisterFile { s: [0; 32] };
                    set(&mut registers, format, 2, a);
                    let fpscr = run(word, env.fpscr() | IXC, &mut registers);
                    // No flag is raised; flags already set stay set.
                    check.compare(
                        || format!("{name} {format:?} {a:#x} {env:?}"),
                        Expected { bits, flags: IXC },
                        get(&registers, format, 3),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(5_000);
}

#[test]
fn compares_set_nzcv_and_invalid_as_the_architecture_says() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        for (extension, signal_quiet, with_zero) in
            [(0b01000, false, false), (0b01001, true, false), (0b01010, false, true), (0b01011, true, true)]
        {
            let word = encode_extension(extension, format.double, 1, format.double, 2, format.double);
            for (a, b) in operand_pairs(format, 0xC0 + extension as u64, 300) {
                for env in Environment::all() {
                    let mut flags = 0;
                    let first = flush_operand(env, format, a, &mut flags);
                    let second = if with_zero { 0 } else { flush_operand(env, format, b, &mut flags) };
                    let nzcv = if format.is_nan(first) || format.is_nan(second) {
                        if signal_quiet || format.is_snan(first) || format.is_snan(second) {
                            flags |= IOC;
                        }
                        C | V
                    } else {
                        let value = |bits: u64| {
                            if format.double {
                                f64::from_bits(bits)
                            } else {
                                f64::from(f32::from_bits(bits as u32))
                            }
                        };
                        match value(first).partial_cmp(&value(second)).expect("ordered") {
                            std::cmp::Ordering::Less => N,
                            std::cmp::Ordering::Equal => Z | C,
                            std::cmp::Ordering::Greater => C,
                        }
                    };
                    let mut registers = RegisterFile { s: [0; 32] };
                    set(&mut registers, format, 1, a);
                    set(&mut registers, format, 2, b);
                    let before = registers;
                    // Start from the opposite flags: the compare must replace NZCV, not OR it.
                    let fpscr = run(word, env.fpscr() | (!nzcv & 0xF000_0000), &mut registers);
                    assert_eq!(registers, before, "a compare writes no register");
                    check.compare(
                        || format!("compare {extension:05b} {format:?} {a:#x} {b:#x} {env:?}"),
                        Expected { bits: u64::from(nzcv), flags },
                        u64::from(fpscr & 0xF000_0000),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(100_000);
}

#[test]
fn precision_conversions_match_the_host() {
    let mut check = Check::new();
    // FCVTDS: D3 = S5.
    let widen = encode_extension(0b01111, false, 3, true, 5, false);
    let mut singles = specials(SINGLE);
    let mut rng = Random::new(0xCD5);
    singles.extend((0..2000).map(|_| rng.operand(SINGLE)));
    for &a in &singles {
        for env in Environment::all() {
            let mut flags = 0;
            let flushed = flush_operand(env, SINGLE, a, &mut flags);
            let bits = if SINGLE.is_nan(flushed) {
                if SINGLE.is_snan(flushed) {
                    flags |= IOC;
                }
                if env.default_nan {
                    DOUBLE.default_nan()
                } else {
                    // Sign kept, fraction moved to the top of the double's, quiet bit set.
                    ((flushed & 0x8000_0000) << 32) | 0x7FF8_0000_0000_0000 | ((flushed & 0x007F_FFFF) << 29)
                }
            } else {
                arm_result(env, DOUBLE, cvtss2sd(0, flushed, env.mode), || cvtss2sd(0, flushed, Mode::Zero), &mut flags)
            };
            let mut registers = RegisterFile { s: [0; 32] };
            registers.set_single(5, a as u32);
            let fpscr = run(widen, env.fpscr(), &mut registers);
            check.compare(
                || format!("fcvtds {a:#x} {env:?}"),
                Expected { bits, flags },
                registers.double(3),
                cumulative(fpscr),
            );
        }
    }
    // FCVTSD: S5 = D3.
    let narrow = encode_extension(0b01111, true, 5, false, 3, true);
    let mut doubles = specials(DOUBLE);
    let mut rng = Random::new(0xCD6);
    doubles.extend((0..3000).map(|_| rng.operand(DOUBLE)));
    // Doubles around the single-precision subnormal and overflow ranges.
    for _ in 0..3000 {
        let exponent = 1023 - 150 + rng.below(30) + if rng.below(2) == 0 { 0 } else { 270 };
        doubles.push((rng.below(2) << 63) | (exponent << 52) | (rng.next() & DOUBLE.fraction_mask()));
    }
    for &a in &doubles {
        for env in Environment::all() {
            let mut flags = 0;
            let flushed = flush_operand(env, DOUBLE, a, &mut flags);
            let bits = if DOUBLE.is_nan(flushed) {
                if DOUBLE.is_snan(flushed) {
                    flags |= IOC;
                }
                if env.default_nan {
                    SINGLE.default_nan()
                } else {
                    ((flushed >> 32) & 0x8000_0000) | 0x7FC0_0000 | ((flushed >> 29) & 0x003F_FFFF)
                }
            } else {
                let convert = |mode| {
                    let mut hw = cvtsd2ss(0, flushed, mode);
                    hw.bits &= 0xFFFF_FFFF;
                    hw
                };
                arm_result(env, SINGLE, convert(env.mode), || convert(Mode::Zero), &mut flags)
            };
            let mut registers = RegisterFile { s: [0; 32] };
            registers.set_double(3, a);
            let fpscr = run(narrow, env.fpscr(), &mut registers);
            check.compare(
                || format!("fcvtsd {a:#x} {env:?}"),
                Expected { bits, flags },
                u64::from(registers.single(5)),
                cumulative(fpscr),
            );
        }
    }
    check.finish(100_000);
}

#[test]
fn integer_to_float_conversions_match_the_host() {
    let mut check = Check::new();
    let mut integers: Vec<u32> = vec![
        0,
        1,
        2,
        0x7FFF_FFFF,
        0x8000_0000,
        0x8000_0001,
        0xFFFF_FFFF,
        16_777_216,
        16_777_217,
        16_777_219,
        0xFFFF_FF7F,
        0xFFFF_FF80,
        0x7FFF_FFC0,
    ];
    let mut rng = Random::new(0x1270);
    integers.extend((0..3000).map(|_| {
        let bits = rng.below(33) as u32;
        (rng.next() as u32) >> (32 - bits.max(1)) | if rng.below(4) == 0 { 0x8000_0000 } else { 0 }
    }));
    for format in [SINGLE, DOUBLE] {
        for (extension, signed) in [(0b10000, false), (0b10001, true)] {
            // Fd (S3 or D3) = Sm (S5).
            let word = encode_extension(extension, format.double, 3, format.double, 5, false);
            for &integer in &integers {
                for env in Environment::all() {
                    let value = if signed { i64::from(integer as i32) } else { i64::from(integer) };
                    let convert = |mode| {
                        let mut hw = if format.double { cvtsi2sd(value, mode) } else { cvtsi2ss(value, mode) };
                        if !format.double {
                            hw.bits &= 0xFFFF_FFFF;
                        }
                        hw
                    };
                    let mut flags = 0;
                    let bits = arm_result(env, format, convert(env.mode), || convert(Mode::Zero), &mut flags);
                    let mut registers = RegisterFile { s: [0; 32] };
                    registers.set_single(5, integer);
                    let fpscr = run(word, env.fpscr(), &mut registers);
                    check.compare(
                        || format!("from int {signed} {format:?} {integer:#x} {env:?}"),
                        Expected { bits, flags },
                        get(&registers, format, 3),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(50_000);
}

#[test]
fn float_to_integer_conversions_saturate_and_flag_as_the_architecture_says() {
    let mut check = Check::new();
    for format in [SINGLE, DOUBLE] {
        let mut operands = specials(format);
        let exact = |value: f64| if format.double { value.to_bits() } else { u64::from((value as f32).to_bits()) };
        for value in [
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.0,
            -1.5,
            2147483647.0,
            2147483648.0,
            -2147483648.0,
            -2147483649.0,
            4294967295.0,
            4294967296.0,
            2147483647.5,
            4294967295.5,
            -0.75,
        ] {
            operands.push(exact(value));
        }
        let mut rng = Random::new(0xF2 + u64::from(format.double));
        let bias: u64 = if format.double { 1023 } else { 127 };
        for _ in 0..3000 {
            // Magnitudes from 2^-3 to 2^34: fractions, in range, just out of range.
            let exponent = bias - 3 + rng.below(38);
            operands.push(
                (rng.below(2) * format.sign())
                    | (exponent << format.fraction_bits())
                    | (rng.next() & format.fraction_mask()),
            );
        }
        operands.extend((0..500).map(|_| rng.operand(format)));
        for (extension, signed, toward_zero) in
            [(0b11000, false, false), (0b11001, false, true), (0b11010, true, false), (0b11011, true, true)]
        {
            // Sd (S5) = Fm (S3 or D3).
            let word = encode_extension(extension, format.double, 5, false, 3, format.double);
            for &a in &operands {
                for env in Environment::all() {
                    let mut flags = 0;
                    let flushed = flush_operand(env, format, a, &mut flags);
                    let integer = if format.is_nan(flushed) {
                        flags |= IOC;
                        0
                    } else {
                        // ARMv7 FPToFixed, computed exactly in f64 (every f32 and f64 is exact there).
                        let x = if format.double {
                            f64::from_bits(flushed)
                        } else {
                            f64::from(f32::from_bits(flushed as u32))
                        };
                        let rounded = match if toward_zero { Mode::Zero } else { env.mode } {
                            Mode::Nearest => x.round_ties_even(),
                            Mode::Up => x.ceil(),
                            Mode::Down => x.floor(),
                            Mode::Zero => x.trunc(),
                        };
                        let (low, high) = if signed { (-2147483648.0, 2147483647.0) } else { (0.0, 4294967295.0) };
                        if rounded < low {
                            flags |= IOC;
                            low as i64 as u32
                        } else if rounded > high {
                            flags |= IOC;
                            high as i64 as u32
                        } else {
                            if rounded != x {
                                flags |= IXC;
                            }
                            rounded as i64 as u32
                        }
                    };
                    let mut registers = RegisterFile { s: [0; 32] };
                    set(&mut registers, format, 3, a);
                    let fpscr = run(word, env.fpscr(), &mut registers);
                    check.compare(
                        || format!("to int {extension:05b} {format:?} {a:#x} {env:?}"),
                        Expected { bits: u64::from(integer), flags },
                        u64::from(registers.single(5)),
                        cumulative(fpscr),
                    );
                }
            }
        }
    }
    check.finish(100_000);
}

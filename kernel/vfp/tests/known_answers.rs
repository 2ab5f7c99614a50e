//! Known answers for the rules where ARM differs from the host (or from IEEE's freedom), worked
//! out by hand from the manuals: tininess before rounding, flush-to-zero to +0 (VFP11 TRM
//! 18.5.2), NaN choice and default NaN, NaN signs through the negating multiply-accumulates,
//! compares, conversion saturation; and the bounce entry point (FPINST2, refusals).

mod common;

use common::*;
use jos_vfp::{bounce, execute, fpexc, DecodeError, Refusal, RegisterFile};

// Instruction words (checked against GNU as in decode.rs).
const VADD_S0_S1_S2: u32 = 0xEE30_0A81; // vadd.f32 s0, s1, s2
const VSUB_S0_S1_S2: u32 = 0xEE30_0AC1; // vsub.f32 s0, s1, s2
const VMUL_S0_S1_S2: u32 = 0xEE20_0A81; // vmul.f32 s0, s1, s2
const VDIV_S0_S1_S2: u32 = 0xEE80_0A81; // vdiv.f32 s0, s1, s2
const VSQRT_S0_S2: u32 = 0xEEB1_0AC1; // vsqrt.f32 s0, s2
const VCMP_S0_S2: u32 = 0xEEB4_0A41; // vcmp.f32 s0, s2
const VCMPE_S0_S2: u32 = 0xEEB4_0AC1; // vcmpe.f32 s0, s2

/// Runs a single-precision instruction with s0, s1, s2 = `d`, `n`, `m`; returns (s0, FPSCR).
fn single(word: u32, fpscr: u32, d: u32, n: u32, m: u32) -> (u32, u32) {
    let mut registers = RegisterFile { s: [0; 32] };
    registers.s[0] = d;
    registers.s[1] = n;
    registers.s[2] = m;
    let fpscr = execute(word, fpscr, &mut registers).expect("executes");
    (registers.s[0], fpscr)
}

const NEAREST: u32 = 0;
const UP: u32 = 0b01 << 22;
const TOWARD_ZERO: u32 = 0b11 << 22;

#[test]
fn underflow_is_detected_before_rounding() {
    // (1 - 2^-23) * 2^-126 (1 + 2^-23) = 2^-126 (1 - 2^-46): below the smallest normal, rounds up
    // to it. Tiny before rounding and inexact: UFC and IXC (x86, which looks after rounding,
    // would raise no underflow here).
    assert_eq!(single(VMUL_S0_S1_S2, NEAREST, 0, 0x3F7F_FFFE, 0x0080_0001), (0x0080_0000, UFC | IXC));
    assert_eq!(single(VMUL_S0_S1_S2, UP, 0, 0x3F7F_FFFE, 0x0080_0001), (0x0080_0000, UP | UFC | IXC));
    assert_eq!(single(VMUL_S0_S1_S2, TOWARD_ZERO, 0, 0x3F7F_FFFE, 0x0080_0001), (0x007F_FFFF, TOWARD_ZERO | UFC | IXC));
    // 2^-126 (1 + 2^-23) exactly: not tiny, no flag.
    assert_eq!(single(VMUL_S0_S1_S2, NEAREST, 0, 0x3F80_0001, 0x0080_0000), (0x0080_0001, 0));
    // An exact subnormal result: tiny but exact, so no underflow.
    assert_eq!(single(VMUL_S0_S1_S2, NEAREST, 0, 0x0080_0000, 0x3F00_0000), (0x0040_0000, 0));
    // The same in double precision: FCVTSD of 2^-126 (1 - 2^-30) rounds up to the smallest
    // normal single.
    let mut registers = RegisterFile { s: [0; 32] };
    registers.set_double(1, 0x380F_FFFF_FF80_0000);
    let fpscr = execute(0xEEB7_0BC1, NEAREST, &mut registers).expect("fcvtsd s0, d1");
    assert_eq!((registers.s[0], fpscr), (0x0080_0000, UFC | IXC));
}

#[test]
fn flush_to_zero_uses_positive_zero_and_sets_idc_or_ufc() {
    // Tiny before rounding (even the one that would round up to the smallest normal): +0, UFC,
    // no IXC.
    assert_eq!(single(VMUL_S0_S1_S2, FZ, 0, 0x3F7F_FFFE, 0x0080_0001), (0, FZ | UFC));
    assert_eq!(single(VMUL_S0_S1_S2, FZ, 0, 0xBF7F_FFFE, 0x0080_0001), (0, FZ | UFC));
    // An exact subnormal result is flushed too.
    assert_eq!(single(VMUL_S0_S1_S2, FZ, 0, 0x0080_0000, 0x3F00_0000), (0, FZ | UFC));
    // A subnormal operand is +0 (IDC): -2^-149 + -0 = +0 + -0 = +0.
    assert_eq!(single(VADD_S0_S1_S2, FZ, 0, 0x8000_0001, 0x8000_0000), (0, FZ | IDC));
    // Without FZ the same sum is exact.
    assert_eq!(single(VADD_S0_S1_S2, NEAREST, 0, 0x8000_0001, 0x8000_0000), (0x8000_0001, 0));
    // FZ does not touch NaN handling: a NaN with a subnormal gives the NaN and IDC.
    assert_eq!(single(VADD_S0_S1_S2, FZ, 0, 0x7FC0_0001, 0x0000_0003), (0x7FC0_0001, FZ | IDC));
}

#[test]
fn nan_operands_follow_the_architecture() {
    // A signalling NaN wins over an earlier quiet one, quieted, with IOC.
    assert_eq!(single(VADD_S0_S1_S2, NEAREST, 0, 0x7FC0_0001, 0x7F80_0002), (0x7FC0_0002, IOC));
    // Two quiet NaNs: the first (sign and payload kept).
    assert_eq!(single(VADD_S0_S1_S2, NEAREST, 0, 0xFFC0_0003, 0x7FC0_0004), (0xFFC0_0003, 0));
    // Two signalling NaNs: the first, quieted.
    assert_eq!(single(VSUB_S0_S1_S2, NEAREST, 0, 0x7F80_0005, 0xFF80_0006), (0x7FC0_0005, IOC));
    // Default NaN mode: the default NaN; IOC only for a signalling operand.
    assert_eq!(single(VADD_S0_S1_S2, DN, 0, 0xFFC0_0003, 0x3F80_0000), (0x7FC0_0000, DN));
    assert_eq!(single(VADD_S0_S1_S2, DN, 0, 0x3F80_0000, 0x7F80_0001), (0x7FC0_0000, DN | IOC));
    // Invalid operations on numbers give the default NaN (x86 gives 0xFFC00000).
    assert_eq!(single(VMUL_S0_S1_S2, NEAREST, 0, 0, 0xFF80_0000), (0x7FC0_0000, IOC));
    assert_eq!(single(VSUB_S0_S1_S2, NEAREST, 0, 0x7F80_0000, 0x7F80_0000), (0x7FC0_0000, IOC));
    assert_eq!(single(VDIV_S0_S1_S2, NEAREST, 0, 0, 0x8000_0000), (0x7FC0_0000, IOC));
    assert_eq!(single(VSQRT_S0_S2, NEAREST, 0, 0, 0xBF80_0000), (0x7FC0_0000, IOC));
    // Division by zero; square root of -0.
    assert_eq!(single(VDIV_S0_S1_S2, NEAREST, 0, 0xBF80_0000, 0), (0xFF80_0000, DZC));
    assert_eq!(single(VSQRT_S0_S2, NEAREST, 0, 0, 0x8000_0000), (0x8000_0000, 0));
}

#[test]
fn negating_multiply_accumulates_flip_nan_signs() {
    const ONE: u32 = 0x3F80_0000;
    // FMSC (VNMLS): Fd = -Fd + Fn*Fm; the negated Fd is the first operand of the addition.
    assert_eq!(single(0xEE10_0A81, NEAREST, 0x7FC0_0001, ONE, ONE), (0xFFC0_0001, 0));
    // FNMUL (VNMUL): -(Fn*Fm), the NaN's sign flipped too.
    assert_eq!(single(0xEE20_0AC1, NEAREST, 0, 0x7FC0_0002, ONE), (0xFFC0_0002, 0));
    // FNMAC (VMLS): Fd - Fn*Fm with a quiet NaN product: the negated product NaN.
    assert_eq!(single(0xEE00_0AC1, NEAREST, ONE, 0x7FC0_0007, ONE), (0xFFC0_0007, 0));
    // FMAC (VMLA): a signalling Fd beats the (already quieted) NaN product.
    assert_eq!(single(0xEE00_0A81, NEAREST, 0x7F80_0001, 0x7FC0_0008, ONE), (0x7FC0_0001, IOC));
    // FMAC rounds the product first: 2^-126 * 0.5 underflows (exact, no flag) then adds 1.
    assert_eq!(single(0xEE00_0A81, NEAREST, ONE, 0x0080_0000, 0x3F00_0000), (ONE, IXC));
}

#[test]
fn compares_set_nzcv() {
    let nzcv = |word: u32, a: u32, b: u32| single(word, NEAREST, a, 0, b).1;
    assert_eq!(nzcv(VCMP_S0_S2, 0x3F80_0000, 0x4000_0000), N); // 1 < 2
    assert_eq!(nzcv(VCMP_S0_S2, 0x0000_0000, 0x8000_0000), Z | C); // +0 == -0
    assert_eq!(nzcv(VCMP_S0_S2, 0x0000_0002, 0x0000_0001), C); // subnormals, greater
    assert_eq!(nzcv(VCMP_S0_S2, 0x7FC0_0000, 0x3F80_0000), C | V); // quiet NaN: unordered, no IOC
    assert_eq!(nzcv(VCMPE_S0_S2, 0x7FC0_0000, 0x3F80_0000), C | V | IOC); // FCMPE: IOC
    assert_eq!(nzcv(VCMP_S0_S2, 0x3F80_0000, 0x7F80_0001), C | V | IOC); // signalling: IOC
}

#[test]
fn float_to_integer_saturates_with_invalid() {
    // vcvt.s32.f32 s0, s2 (FTOSIZS), vcvt.u32.f32 (FTOUIZS), vcvtr.s32.f32 (FTOSIS),
    // vcvtr.u32.f32 (FTOUIS).
    const TOSIZ: u32 = 0xEEBD_0AC1;
    const TOUIZ: u32 = 0xEEBC_0AC1;
    const TOSI: u32 = 0xEEBD_0A41;
    const TOUI: u32 = 0xEEBC_0A41;
    let convert = |word: u32, fpscr: u32, m: u32| single(word, fpscr, 0, 0, m);
    assert_eq!(convert(TOSIZ, NEAREST, 0x4F00_0000), (0x7FFF_FFFF, IOC)); // 2^31
    assert_eq!(convert(TOSIZ, NEAREST, 0xCF00_0000), (0x8000_0000, 0)); // -2^31
    assert_eq!(convert(TOSIZ, NEAREST, 0x7FC0_0000), (0, IOC)); // NaN
    assert_eq!(convert(TOUIZ, NEAREST, 0xBF00_0000), (0, IXC)); // -0.5 rounds to zero: not invalid
    assert_eq!(convert(TOUI, NEAREST, 0xBF80_0000), (0, IOC)); // -1
    assert_eq!(convert(TOSI, NEAREST, 0x4060_0000), (4, IXC)); // 3.5, ties to even
    assert_eq!(convert(TOSI, NEAREST, 0x4020_0000), (2, IXC)); // 2.5, ties to even
    assert_eq!(convert(TOUI, NEAREST, 0x7F80_0000), (0xFFFF_FFFF, IOC)); // +infinity
    assert_eq!(convert(TOUIZ, NEAREST, 0x4F80_0000), (0xFFFF_FFFF, IOC)); // 2^32
    assert_eq!(convert(TOSIZ, NEAREST, 0x0000_0001), (0, IXC)); // subnormal
    assert_eq!(convert(TOSIZ, FZ, 0x0000_0001), (0, FZ | IDC)); // flushed: no IXC
                                                                // 4294967295.5 in double: to nearest (even) is 2^32, out of range; towards zero fits.
    let mut registers = RegisterFile { s: [0; 32] };
    registers.set_double(1, 0x41EF_FFFF_FFF0_0000);
    assert_eq!(
        execute(0xEEBC_0B41, NEAREST, &mut registers).map(|fpscr| (registers.s[0], fpscr)),
        Ok((0xFFFF_FFFF, IOC))
    );
    let mut registers = RegisterFile { s: [0; 32] };
    registers.set_double(1, 0x41EF_FFFF_FFF0_0000);
    assert_eq!(
        execute(0xEEBC_0BC1, NEAREST, &mut registers).map(|fpscr| (registers.s[0], fpscr)),
        Ok((0xFFFF_FFFF, IXC))
    );
}

#[test]
fn precision_conversions_keep_nan_payloads() {
    // FCVTSD: sign and the top 22 payload bits kept, quieted.
    let mut registers = RegisterFile { s: [0; 32] };
    registers.set_double(1, 0xFFF8_1234_5678_9ABC);
    assert_eq!(execute(0xEEB7_0BC1, NEAREST, &mut registers), Ok(0));
    assert_eq!(registers.s[0], 0xFFC0_91A2);
    // A signalling NaN whose payload is only in the low bits: quiet NaN with zero payload, IOC.
    registers.set_double(1, 0x7FF0_0000_0000_0001);
    assert_eq!(execute(0xEEB7_0BC1, NEAREST, &mut registers), Ok(IOC));
    assert_eq!(registers.s[0], 0x7FC0_0000);
    // FCVTDS (vcvt.f64.f32 d1, s9): payload moved up, quieted.
    registers.s[9] = 0x7F80_0001;
    assert_eq!(execute(0xEEB7_1AE4, NEAREST, &mut registers), Ok(IOC));
    assert_eq!(registers.double(1), 0x7FF8_0000_2000_0000);
    // FUITOS 0xFFFFFFFF rounds to 2^32; FSITOS 0x80000000 is exact.
    registers.s[12] = 0xFFFF_FFFF;
    assert_eq!(execute(0xEEF8_5A46, NEAREST, &mut registers), Ok(IXC)); // vcvt.f32.u32 s11, s12
    assert_eq!(registers.s[11], 0x4F80_0000);
    registers.s[14] = 0x8000_0000;
    assert_eq!(execute(0xEEF8_6AC7, NEAREST, &mut registers), Ok(0)); // vcvt.f32.s32 s13, s14
    assert_eq!(registers.s[13], 0xCF00_0000);
}

#[test]
fn flags_accumulate_and_other_fpscr_bits_stay() {
    // IXC already set and NZCV = 1111 stay; the new UFC is added.
    let fpscr = 0xF000_0000 | IXC;
    assert_eq!(single(VMUL_S0_S1_S2, fpscr, 0, 0x3F7F_FFFE, 0x0080_0001), (0x0080_0000, fpscr | UFC));
}

#[test]
fn a_bounce_executes_fpinst_then_fpinst2() {
    // FPINST: vadd.f32 s18, s19, s20 with two subnormals; FPINST2: vmul.f32 s12, s13, s14.
    let mut registers = RegisterFile { s: [0; 32] };
    registers.s[19] = 0x0000_0001;
    registers.s[20] = 0x0000_0002;
    registers.s[13] = 0x0080_0000; // 2^-126
    registers.s[14] = 0x3E80_0000; // 0.25: exact subnormal product
    let before = registers;
    let exceptional = fpexc::EX | fpexc::EN | fpexc::INV;
    assert_eq!(bounce(exceptional, 0xEE39_9A8A, 0xEE26_6A87, NEAREST, &mut registers), Ok(NEAREST));
    assert_eq!(registers.s[18], 0x0000_0003);
    assert_eq!(registers.s[12], 0, "FPINST2 is not executed without FP2V");
    let mut registers = before;
    assert_eq!(bounce(exceptional | fpexc::FP2V, 0xEE39_9A8A, 0xEE26_6A87, NEAREST, &mut registers), Ok(NEAREST));
    assert_eq!((registers.s[18], registers.s[12]), (0x0000_0003, 0x0020_0000));
    // Both instructions' flags: FPINST2 = 2^-126 * (1 - 2^-23) is tiny and inexact.
    let mut registers = before;
    registers.s[14] = 0x3F7F_FFFF;
    assert_eq!(bounce(exceptional | fpexc::FP2V, 0xEE39_9A8A, 0xEE26_6A87, NEAREST, &mut registers), Ok(UFC | IXC));
}

#[test]
fn bounces_the_support_code_does_not_handle_are_refused() {
    let mut registers = RegisterFile { s: [0; 32] };
    let exceptional = fpexc::EX | fpexc::EN;
    assert_eq!(bounce(fpexc::EN, VADD_S0_S1_S2, 0, 0, &mut registers), Err(Refusal::NotPending));
    // FPSCR.LEN = 1 (vectors of two).
    assert_eq!(
        bounce(exceptional, VADD_S0_S1_S2, 0, 1 << 16, &mut registers),
        Err(Refusal::ShortVector { fpscr: 1 << 16 })
    );
    // IOE (bit 8): user trap handlers are not supported.
    assert_eq!(
        bounce(exceptional, VADD_S0_S1_S2, 0, 1 << 8, &mut registers),
        Err(Refusal::TrapEnabled { fpscr: 1 << 8 })
    );
    // A load in FPINST2 is not something the VFP11 puts there.
    assert_eq!(
        bounce(exceptional | fpexc::FP2V, VADD_S0_S1_S2, 0xEC90_0B20, 0, &mut registers),
        Err(Refusal::Instruction { word: 0xEC90_0B20, error: DecodeError::NotDataProcessing })
    );
}

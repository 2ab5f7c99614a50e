//! Decoding checked against GNU as: every VFPv2 data-processing instruction jos, wasmi or GCC
//! emit, assembled by `arm-none-eabi-as -mfpu=vfpv2` (words copied from `objdump -d`), must
//! decode to the operation and registers its mnemonic names; the test encoder must produce the
//! same words. Plus the words that are not data processing, and the trigger test.

mod common;

use common::{encode, encode_extension};
use jos_vfp::{is_vfp_instruction, Accumulate, DecodeError, Instruction, Operation, Register};

/// (word, mnemonic) as GNU as 2.40 assembles them, and what each must decode to.
const GOLDEN: &[(u32, &str, Instruction)] = &[
    (
        0xee000a81,
        "vmla.f32 s0, s1, s2",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::Add),
            double: false,
            d: Register::Single(0),
            n: Register::Single(1),
            m: Register::Single(2),
        },
    ),
    (
        0xee421a62,
        "vmls.f32 s3, s4, s5",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::Subtract),
            double: false,
            d: Register::Single(3),
            n: Register::Single(4),
            m: Register::Single(5),
        },
    ),
    (
        0xee133a84,
        "vnmls.f32 s6, s7, s8",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::NegatedAdd),
            double: false,
            d: Register::Single(6),
            n: Register::Single(7),
            m: Register::Single(8),
        },
    ),
    (
        0xee554a65,
        "vnmla.f32 s9, s10, s11",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::NegatedSubtract),
            double: false,
            d: Register::Single(9),
            n: Register::Single(10),
            m: Register::Single(11),
        },
    ),
    (
        0xee266a87,
        "vmul.f32 s12, s13, s14",
        Instruction {
            operation: Operation::Multiply,
            double: false,
            d: Register::Single(12),
            n: Register::Single(13),
            m: Register::Single(14),
        },
    ),
    (
        0xee687a68,
        "vnmul.f32 s15, s16, s17",
        Instruction {
            operation: Operation::NegatedMultiply,
            double: false,
            d: Register::Single(15),
            n: Register::Single(16),
            m: Register::Single(17),
        },
    ),
    (
        0xee399a8a,
        "vadd.f32 s18, s19, s20",
        Instruction {
            operation: Operation::Add,
            double: false,
            d: Register::Single(18),
            n: Register::Single(19),
            m: Register::Single(20),
        },
    ),
    (
        0xee7baa6b,
        "vsub.f32 s21, s22, s23",
        Instruction {
            operation: Operation::Subtract,
            double: false,
            d: Register::Single(21),
            n: Register::Single(22),
            m: Register::Single(23),
        },
    ),
    (
        0xee8cca8d,
        "vdiv.f32 s24, s25, s26",
        Instruction {
            operation: Operation::Divide,
            double: false,
            d: Register::Single(24),
            n: Register::Single(25),
            m: Register::Single(26),
        },
    ),
    (
        0xeef0da4e,
        "vmov.f32 s27, s28",
        Instruction {
            operation: Operation::Copy,
            double: false,
            d: Register::Single(27),
            n: Register::Single(0),
            m: Register::Single(28),
        },
    ),
    (
        0xeef0eacf,
        "vabs.f32 s29, s30",
        Instruction {
            operation: Operation::Absolute,
            double: false,
            d: Register::Single(29),
            n: Register::Single(0),
            m: Register::Single(30),
        },
    ),
    (
        0xeef1fa40,
        "vneg.f32 s31, s0",
        Instruction {
            operation: Operation::Negate,
            double: false,
            d: Register::Single(31),
            n: Register::Single(0),
            m: Register::Single(0),
        },
    ),
    (
        0xeef10ac1,
        "vsqrt.f32 s1, s2",
        Instruction {
            operation: Operation::SquareRoot,
            double: false,
            d: Register::Single(1),
            n: Register::Single(0),
            m: Register::Single(2),
        },
    ),
    (
        0xeef41a42,
        "vcmp.f32 s3, s4",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: false, with_zero: false },
            double: false,
            d: Register::Single(3),
            n: Register::Single(0),
            m: Register::Single(4),
        },
    ),
    (
        0xeef42ac3,
        "vcmpe.f32 s5, s6",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: true, with_zero: false },
            double: false,
            d: Register::Single(5),
            n: Register::Single(0),
            m: Register::Single(6),
        },
    ),
    (
        0xeef53a40,
        "vcmp.f32 s7, #0.0",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: false, with_zero: true },
            double: false,
            d: Register::Single(7),
            n: Register::Single(0),
            m: Register::Single(0),
        },
    ),
    (
        0xeeb54ac0,
        "vcmpe.f32 s8, #0.0",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: true, with_zero: true },
            double: false,
            d: Register::Single(8),
            n: Register::Single(0),
            m: Register::Single(0),
        },
    ),
    (
        0xeeb71ae4,
        "vcvt.f64.f32 d1, s9",
        Instruction {
            operation: Operation::ConvertPrecision,
            double: false,
            d: Register::Double(1),
            n: Register::Single(0),
            m: Register::Single(9),
        },
    ),
    (
        0xeeb75bc2,
        "vcvt.f32.f64 s10, d2",
        Instruction {
            operation: Operation::ConvertPrecision,
            double: true,
            d: Register::Single(10),
            n: Register::Single(0),
            m: Register::Double(2),
        },
    ),
    (
        0xeef85a46,
        "vcvt.f32.u32 s11, s12",
        Instruction {
            operation: Operation::FromUnsigned,
            double: false,
            d: Register::Single(11),
            n: Register::Single(0),
            m: Register::Single(12),
        },
    ),
    (
        0xeef86ac7,
        "vcvt.f32.s32 s13, s14",
        Instruction {
            operation: Operation::FromSigned,
            double: false,
            d: Register::Single(13),
            n: Register::Single(0),
            m: Register::Single(14),
        },
    ),
    (
        0xeefc7a48,
        "vcvtr.u32.f32 s15, s16",
        Instruction {
            operation: Operation::ToUnsigned { toward_zero: false },
            double: false,
            d: Register::Single(15),
            n: Register::Single(0),
            m: Register::Single(16),
        },
    ),
    (
        0xeefc8ac9,
        "vcvt.u32.f32 s17, s18",
        Instruction {
            operation: Operation::ToUnsigned { toward_zero: true },
            double: false,
            d: Register::Single(17),
            n: Register::Single(0),
            m: Register::Single(18),
        },
    ),
    (
        0xeefd9a4a,
        "vcvtr.s32.f32 s19, s20",
        Instruction {
            operation: Operation::ToSigned { toward_zero: false },
            double: false,
            d: Register::Single(19),
            n: Register::Single(0),
            m: Register::Single(20),
        },
    ),
    (
        0xeefdaacb,
        "vcvt.s32.f32 s21, s22",
        Instruction {
            operation: Operation::ToSigned { toward_zero: true },
            double: false,
            d: Register::Single(21),
            n: Register::Single(0),
            m: Register::Single(22),
        },
    ),
    (
        0xee010b02,
        "vmla.f64 d0, d1, d2",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::Add),
            double: true,
            d: Register::Double(0),
            n: Register::Double(1),
            m: Register::Double(2),
        },
    ),
    (
        0xee043b45,
        "vmls.f64 d3, d4, d5",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::Subtract),
            double: true,
            d: Register::Double(3),
            n: Register::Double(4),
            m: Register::Double(5),
        },
    ),
    (
        0xee176b08,
        "vnmls.f64 d6, d7, d8",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::NegatedAdd),
            double: true,
            d: Register::Double(6),
            n: Register::Double(7),
            m: Register::Double(8),
        },
    ),
    (
        0xee1a9b4b,
        "vnmla.f64 d9, d10, d11",
        Instruction {
            operation: Operation::MultiplyAccumulate(Accumulate::NegatedSubtract),
            double: true,
            d: Register::Double(9),
            n: Register::Double(10),
            m: Register::Double(11),
        },
    ),
    (
        0xee2dcb0e,
        "vmul.f64 d12, d13, d14",
        Instruction {
            operation: Operation::Multiply,
            double: true,
            d: Register::Double(12),
            n: Register::Double(13),
            m: Register::Double(14),
        },
    ),
    (
        0xee20fb41,
        "vnmul.f64 d15, d0, d1",
        Instruction {
            operation: Operation::NegatedMultiply,
            double: true,
            d: Register::Double(15),
            n: Register::Double(0),
            m: Register::Double(1),
        },
    ),
    (
        0xee332b04,
        "vadd.f64 d2, d3, d4",
        Instruction {
            operation: Operation::Add,
            double: true,
            d: Register::Double(2),
            n: Register::Double(3),
            m: Register::Double(4),
        },
    ),
    (
        0xee365b47,
        "vsub.f64 d5, d6, d7",
        Instruction {
            operation: Operation::Subtract,
            double: true,
            d: Register::Double(5),
            n: Register::Double(6),
            m: Register::Double(7),
        },
    ),
    (
        0xee898b0a,
        "vdiv.f64 d8, d9, d10",
        Instruction {
            operation: Operation::Divide,
            double: true,
            d: Register::Double(8),
            n: Register::Double(9),
            m: Register::Double(10),
        },
    ),
    (
        0xeeb0bb4c,
        "vmov.f64 d11, d12",
        Instruction {
            operation: Operation::Copy,
            double: true,
            d: Register::Double(11),
            n: Register::Single(0),
            m: Register::Double(12),
        },
    ),
    (
        0xeeb0dbce,
        "vabs.f64 d13, d14",
        Instruction {
            operation: Operation::Absolute,
            double: true,
            d: Register::Double(13),
            n: Register::Single(0),
            m: Register::Double(14),
        },
    ),
    (
        0xeeb1fb40,
        "vneg.f64 d15, d0",
        Instruction {
            operation: Operation::Negate,
            double: true,
            d: Register::Double(15),
            n: Register::Single(0),
            m: Register::Double(0),
        },
    ),
    (
        0xeeb11bc2,
        "vsqrt.f64 d1, d2",
        Instruction {
            operation: Operation::SquareRoot,
            double: true,
            d: Register::Double(1),
            n: Register::Single(0),
            m: Register::Double(2),
        },
    ),
    (
        0xeeb43b44,
        "vcmp.f64 d3, d4",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: false, with_zero: false },
            double: true,
            d: Register::Double(3),
            n: Register::Single(0),
            m: Register::Double(4),
        },
    ),
    (
        0xeeb45bc6,
        "vcmpe.f64 d5, d6",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: true, with_zero: false },
            double: true,
            d: Register::Double(5),
            n: Register::Single(0),
            m: Register::Double(6),
        },
    ),
    (
        0xeeb57b40,
        "vcmp.f64 d7, #0.0",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: false, with_zero: true },
            double: true,
            d: Register::Double(7),
            n: Register::Single(0),
            m: Register::Double(0),
        },
    ),
    (
        0xeeb58bc0,
        "vcmpe.f64 d8, #0.0",
        Instruction {
            operation: Operation::Compare { signal_quiet_nan: true, with_zero: true },
            double: true,
            d: Register::Double(8),
            n: Register::Single(0),
            m: Register::Double(0),
        },
    ),
    (
        0xeeb89b6b,
        "vcvt.f64.u32 d9, s23",
        Instruction {
            operation: Operation::FromUnsigned,
            double: true,
            d: Register::Double(9),
            n: Register::Single(0),
            m: Register::Single(23),
        },
    ),
    (
        0xeeb8abcc,
        "vcvt.f64.s32 d10, s24",
        Instruction {
            operation: Operation::FromSigned,
            double: true,
            d: Register::Double(10),
            n: Register::Single(0),
            m: Register::Single(24),
        },
    ),
    (
        0xeefccb4b,
        "vcvtr.u32.f64 s25, d11",
        Instruction {
            operation: Operation::ToUnsigned { toward_zero: false },
            double: true,
            d: Register::Single(25),
            n: Register::Single(0),
            m: Register::Double(11),
        },
    ),
    (
        0xeebcdbcc,
        "vcvt.u32.f64 s26, d12",
        Instruction {
            operation: Operation::ToUnsigned { toward_zero: true },
            double: true,
            d: Register::Single(26),
            n: Register::Single(0),
            m: Register::Double(12),
        },
    ),
    (
        0xeefddb4d,
        "vcvtr.s32.f64 s27, d13",
        Instruction {
            operation: Operation::ToSigned { toward_zero: false },
            double: true,
            d: Register::Single(27),
            n: Register::Single(0),
            m: Register::Double(13),
        },
    ),
    (
        0xeebdebce,
        "vcvt.s32.f64 s28, d14",
        Instruction {
            operation: Operation::ToSigned { toward_zero: true },
            double: true,
            d: Register::Single(28),
            n: Register::Single(0),
            m: Register::Double(14),
        },
    ),
];

#[test]
fn golden_words_decode_to_their_mnemonics() {
    for (word, mnemonic, expected) in GOLDEN {
        assert_eq!(Instruction::decode(*word), Ok(*expected), "{word:#010x} {mnemonic}");
    }
}

#[test]
fn the_test_encoder_matches_the_assembler() {
    let encoded = [
        (0xee000a81, encode(0b0000, false, 0, false, 1, false, 2, false)),
        (0xee421a62, encode(0b0001, false, 3, false, 4, false, 5, false)),
        (0xee133a84, encode(0b0010, false, 6, false, 7, false, 8, false)),
        (0xee554a65, encode(0b0011, false, 9, false, 10, false, 11, false)),
        (0xee266a87, encode(0b0100, false, 12, false, 13, false, 14, false)),
        (0xee687a68, encode(0b0101, false, 15, false, 16, false, 17, false)),
        (0xee399a8a, encode(0b0110, false, 18, false, 19, false, 20, false)),
        (0xee7baa6b, encode(0b0111, false, 21, false, 22, false, 23, false)),
        (0xee8cca8d, encode(0b1000, false, 24, false, 25, false, 26, false)),
        (0xeef0da4e, encode_extension(0b00000, false, 27, false, 28, false)),
        (0xeef0eacf, encode_extension(0b00001, false, 29, false, 30, false)),
        (0xeef1fa40, encode_extension(0b00010, false, 31, false, 0, false)),
        (0xeef10ac1, encode_extension(0b00011, false, 1, false, 2, false)),
        (0xeef41a42, encode_extension(0b01000, false, 3, false, 4, false)),
        (0xeef42ac3, encode_extension(0b01001, false, 5, false, 6, false)),
        (0xeef53a40, encode_extension(0b01010, false, 7, false, 0, false)),
        (0xeeb54ac0, encode_extension(0b01011, false, 8, false, 0, false)),
        (0xeeb71ae4, encode_extension(0b01111, false, 1, true, 9, false)),
        (0xeeb75bc2, encode_extension(0b01111, true, 10, false, 2, true)),
        (0xeef85a46, encode_extension(0b10000, false, 11, false, 12, false)),
        (0xeef86ac7, encode_extension(0b10001, false, 13, false, 14, false)),
        (0xeefc7a48, encode_extension(0b11000, false, 15, false, 16, false)),
        (0xeefc8ac9, encode_extension(0b11001, false, 17, false, 18, false)),
        (0xeefd9a4a, encode_extension(0b11010, false, 19, false, 20, false)),
        (0xeefdaacb, encode_extension(0b11011, false, 21, false, 22, false)),
        (0xee010b02, encode(0b0000, true, 0, true, 1, true, 2, true)),
        (0xee043b45, encode(0b0001, true, 3, true, 4, true, 5, true)),
        (0xee176b08, encode(0b0010, true, 6, true, 7, true, 8, true)),
        (0xee1a9b4b, encode(0b0011, true, 9, true, 10, true, 11, true)),
        (0xee2dcb0e, encode(0b0100, true, 12, true, 13, true, 14, true)),
        (0xee20fb41, encode(0b0101, true, 15, true, 0, true, 1, true)),
        (0xee332b04, encode(0b0110, true, 2, true, 3, true, 4, true)),
        (0xee365b47, encode(0b0111, true, 5, true, 6, true, 7, true)),
        (0xee898b0a, encode(0b1000, true, 8, true, 9, true, 10, true)),
        (0xeeb0bb4c, encode_extension(0b00000, true, 11, true, 12, true)),
        (0xeeb0dbce, encode_extension(0b00001, true, 13, true, 14, true)),
        (0xeeb1fb40, encode_extension(0b00010, true, 15, true, 0, true)),
        (0xeeb11bc2, encode_extension(0b00011, true, 1, true, 2, true)),
        (0xeeb43b44, encode_extension(0b01000, true, 3, true, 4, true)),
        (0xeeb45bc6, encode_extension(0b01001, true, 5, true, 6, true)),
        (0xeeb57b40, encode_extension(0b01010, true, 7, true, 0, true)),
        (0xeeb58bc0, encode_extension(0b01011, true, 8, true, 0, true)),
        (0xeeb89b6b, encode_extension(0b10000, true, 9, true, 23, false)),
        (0xeeb8abcc, encode_extension(0b10001, true, 10, true, 24, false)),
        (0xeefccb4b, encode_extension(0b11000, true, 25, false, 11, true)),
        (0xeebcdbcc, encode_extension(0b11001, true, 26, false, 12, true)),
        (0xeefddb4d, encode_extension(0b11010, true, 27, false, 13, true)),
        (0xeebdebce, encode_extension(0b11011, true, 28, false, 14, true)),
    ];
    assert_eq!(encoded.len(), GOLDEN.len());
    for (word, ours) in encoded {
        assert_eq!(ours, word, "encoder gives {ours:#010x} for {word:#010x}");
    }
}

#[test]
fn other_words_are_refused() {
    // vmrs r1, fpscr / vldmia r0, {d0-d15} / vmov r0, s1: transfers, never bounced.
    for word in [0xEEF1_1A10u32, 0xEC90_0B20, 0xEE10_0A90] {
        assert_eq!(Instruction::decode(word), Err(DecodeError::NotDataProcessing), "{word:#010x}");
    }
    // vadd.f32 s18, s19, s20 with condition NE instead of AL.
    assert_eq!(Instruction::decode(0x1E39_9A8A), Err(DecodeError::Conditional));
    // Opcode 1001 (p=1, q=0, r=0, s=1) is unallocated in VFPv2.
    assert_eq!(Instruction::decode(0xEE80_0A40), Err(DecodeError::Undefined));
    // vadd.f64 with D = 1 (D16 and up do not exist in VFPv2).
    assert_eq!(Instruction::decode(0xEE33_2B04 | 1 << 22), Err(DecodeError::Undefined));
    // Extension opcode 00100 (a VFPv3 half-precision conversion) is unallocated here.
    assert_eq!(Instruction::decode(0xEEB2_0A40), Err(DecodeError::Undefined));
}

#[test]
fn only_coprocessor_10_and_11_instructions_are_triggers() {
    for word in [0xEEF1_1A10u32, 0xEC90_0B20, 0xEE10_0A90, 0xEE39_9A8A, 0xEE33_2B04, 0xED9F_0B02] {
        assert!(is_vfp_instruction(word), "{word:#010x} is a VFP instruction");
    }
    // udf #0, mcr p15 (cache maintenance), ldr r0, [r0], a cp10-looking word in the
    // unconditional space.
    for word in [0xE7F0_00F0u32, 0xEE07_0F15, 0xE590_0000, 0xFE39_9A8A] {
        assert!(!is_vfp_instruction(word), "{word:#010x} is not a VFP instruction");
    }
}

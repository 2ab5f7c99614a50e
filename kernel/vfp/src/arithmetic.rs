//! The VFP operations with the architecture's rules around the IEEE arithmetic, which `softfp`
//! computes (every rounded result comes from it; this file only moves bits):
//! - NaN operands (ARMv7 ARM pseudocode `FPProcessNaNs`, the ARMv6 VFP rules it keeps): the first
//!   signalling NaN in operand order wins, quieted, with Invalid Operation; else the first quiet
//!   NaN; in default-NaN mode (FPSCR.DN) the result is the default NaN (0x7FC00000,
//!   0x7FF8000000000000) but a signalling operand still raises Invalid Operation. An invalid
//!   operation on numbers (0 * inf, inf - inf, 0 / 0, sqrt(-1)) gives the default NaN.
//! - Underflow: ARM detects tininess *before* rounding (ARMv7 ARM A2.7.5 `FPRound`; Cortex-R4F
//!   TRM 12.5: "the before rounding form of tininess and the inexact result form of loss of
//!   accuracy"); `softfp` detects it after rounding (as RISC-V does), so its flag is not used:
//!   UFC is derived here, recomputing with round-towards-zero when the rounded result is the
//!   smallest normal number.
//! - Flush-to-zero (FPSCR.FZ, ARM1176 TRM 18.5.2): a subnormal operand of an arithmetic
//!   instruction is used as +0 and sets IDC; a result that is tiny before rounding becomes +0 and
//!   sets UFC, not IXC. The VFP11 TRM says *positive* zero in both places (the ARMv7 manual keeps
//!   the sign); this code follows the VFP11 TRM. FCPY, FABS and FNEG are bit operations: no
//!   flush, no NaN processing, no flags.
//!
//! No floating-point instruction is executed here (`clippy::float_arithmetic` is denied): the
//! code runs inside the bounce handler, where a VFP instruction could bounce again.

use core::cmp::Ordering;

use softfp::{ExceptionFlags, F32Desc, F64Desc, Fp, RoundingMode, F32, F64};

use crate::environment::Session;
use crate::registers::fpscr;

/// An IEEE binary format (single or double), as raw bits in a `u64`.
pub(crate) trait Format {
    /// The `softfp` format.
    type Desc: softfp::FpDesc;
    /// Total width in bits.
    const WIDTH: u32;
    /// Fraction (trailing significand) width in bits.
    const FRACTION: u32;
    /// The soft-float value of `bits`.
    fn soft(bits: u64) -> Fp<Self::Desc>;
    /// The bits of a soft-float value.
    fn bits(value: Fp<Self::Desc>) -> u64;
    /// Converts an unsigned 32-bit integer (rounded as the environment says).
    fn unsigned_to_float(value: u32) -> Fp<Self::Desc>;
    /// Converts a signed 32-bit integer given as its bits.
    fn signed_to_float(value: u32) -> Fp<Self::Desc>;
    /// Converts to an unsigned 32-bit integer (saturating, Invalid Operation when out of range).
    fn float_to_unsigned(value: Fp<Self::Desc>) -> u32;
    /// Converts to a signed 32-bit integer, returned as its bits.
    fn float_to_signed(value: Fp<Self::Desc>) -> u32;

    /// The sign bit.
    const SIGN: u64 = 1 << (Self::WIDTH - 1);
    /// The exponent field.
    const EXPONENT: u64 = (Self::SIGN - 1) & !Self::FRACTION_MASK;
    /// The fraction field.
    const FRACTION_MASK: u64 = (1 << Self::FRACTION) - 1;
    /// The fraction's top bit: set in a quiet NaN.
    const QUIET: u64 = 1 << (Self::FRACTION - 1);
    /// The default NaN: positive, quiet, zero payload.
    const DEFAULT_NAN: u64 = Self::EXPONENT | Self::QUIET;
    /// The smallest normal magnitude.
    const MIN_NORMAL: u64 = 1 << Self::FRACTION;

    /// True for a NaN (quiet or signalling).
    fn is_nan(bits: u64) -> bool {
        bits & Self::EXPONENT == Self::EXPONENT && bits & Self::FRACTION_MASK != 0
    }
    /// True for a signalling NaN.
    fn is_signalling(bits: u64) -> bool {
        Self::is_nan(bits) && bits & Self::QUIET == 0
    }
    /// True for a nonzero subnormal number.
    fn is_subnormal(bits: u64) -> bool {
        bits & Self::EXPONENT == 0 && bits & Self::FRACTION_MASK != 0
    }
}

/// IEEE single precision.
pub(crate) struct Single;
/// IEEE double precision.
pub(crate) struct Double;

impl Format for Single {
    type Desc = F32Desc;
    const WIDTH: u32 = 32;
    const FRACTION: u32 = 23;
    fn soft(bits: u64) -> F32 {
        F32::new(bits as u32)
    }
    fn bits(value: F32) -> u64 {
        u64::from(value.0)
    }
    fn unsigned_to_float(value: u32) -> F32 {
        F32::convert_from_uint::<u32>(value)
    }
    fn signed_to_float(value: u32) -> F32 {
        F32::convert_from_sint::<u32>(value)
    }
    fn float_to_unsigned(value: F32) -> u32 {
        value.convert_to_uint::<u32>()
    }
    fn float_to_signed(value: F32) -> u32 {
        value.convert_to_sint::<u32>()
    }
}

impl Format for Double {
    type Desc = F64Desc;
    const WIDTH: u32 = 64;
    const FRACTION: u32 = 52;
    fn soft(bits: u64) -> F64 {
        F64::new(bits)
    }
    fn bits(value: F64) -> u64 {
        value.0
    }
    fn unsigned_to_float(value: u32) -> F64 {
        F64::convert_from_uint::<u32>(value)
    }
    fn signed_to_float(value: u32) -> F64 {
        F64::convert_from_sint::<u32>(value)
    }
    fn float_to_unsigned(value: F64) -> u32 {
        value.convert_to_uint::<u32>()
    }
    fn float_to_signed(value: F64) -> u32 {
        value.convert_to_sint::<u32>()
    }
}

/// The FPSCR rounding mode as `softfp` names it.
pub(crate) fn rounding_mode(fpscr_value: u32) -> RoundingMode {
    match (fpscr_value >> fpscr::RMODE_SHIFT) & 0b11 {
        0b00 => RoundingMode::TiesToEven,
        0b01 => RoundingMode::TowardPositive,
        0b10 => RoundingMode::TowardNegative,
        _ => RoundingMode::TowardZero,
    }
}

/// One instruction's environment and the cumulative flags it raises (FPSCR bit positions).
pub(crate) struct Context<'session> {
    session: &'session Session,
    rounding: RoundingMode,
    flush_to_zero: bool,
    default_nan: bool,
    /// Raised flags, in FPSCR bit positions (`fpscr::IOC` ...).
    pub(crate) flags: u32,
}

impl<'session> Context<'session> {
    /// The environment FPSCR describes.
    pub(crate) fn new(session: &'session Session, fpscr_value: u32) -> Self {
        Self {
            session,
            rounding: rounding_mode(fpscr_value),
            flush_to_zero: fpscr_value & fpscr::FZ != 0,
            default_nan: fpscr_value & fpscr::DN != 0,
            flags: 0,
        }
    }

    /// An operand of an arithmetic instruction: in flush-to-zero mode a subnormal is +0 (IDC).
    fn operand<F: Format>(&mut self, bits: u64) -> u64 {
        if self.flush_to_zero && F::is_subnormal(bits) {
            self.flags |= fpscr::IDC;
            0
        } else {
            bits
        }
    }

    /// A NaN operand as the result: quieted, or the default NaN in DN mode.
    fn propagate<F: Format>(&mut self, nan: u64) -> u64 {
        if F::is_signalling(nan) {
            self.flags |= fpscr::IOC;
        }
        if self.default_nan {
            F::DEFAULT_NAN
        } else {
            nan | F::QUIET
        }
    }

    /// `FPProcessNaNs`: the result when either operand is a NaN.
    fn nans<F: Format>(&mut self, first: u64, second: u64) -> Option<u64> {
        if F::is_signalling(first) {
            // The second operand may be signalling too: Invalid Operation once either way.
            Some(self.propagate::<F>(first))
        } else if F::is_signalling(second) {
            Some(self.propagate::<F>(second))
        } else if F::is_nan(first) {
            Some(self.propagate::<F>(first))
        } else if F::is_nan(second) {
            Some(self.propagate::<F>(second))
        } else {
            None
        }
    }

    /// Runs a rounded operation on non-NaN operands and applies the ARM result rules.
    fn round<F: Format>(&mut self, operation: impl Fn() -> Fp<F::Desc>) -> u64 {
        let (value, raised) = self.session.compute(self.rounding, &operation);
        let bits = F::bits(value);
        if raised.contains(ExceptionFlags::INVALID_OPERATION) {
            self.flags |= fpscr::IOC;
            return F::DEFAULT_NAN;
        }
        if raised.contains(ExceptionFlags::DIVIDE_BY_ZERO) {
            self.flags |= fpscr::DZC;
        }
        if raised.contains(ExceptionFlags::OVERFLOW) {
            self.flags |= fpscr::OFC;
        }
        let inexact = raised.contains(ExceptionFlags::INEXACT);
        let magnitude = bits & !F::SIGN;
        // Tiny before rounding: 0 < |exact| < MIN_NORMAL. Only a rounded result of exactly
        // MIN_NORMAL leaves it open; rounding towards zero then tells (MIN_NORMAL is
        // representable, so |exact| < MIN_NORMAL exactly when that result is below it).
        let tiny = if magnitude < F::MIN_NORMAL {
            magnitude != 0 || inexact
        } else if magnitude == F::MIN_NORMAL && inexact {
            let (toward_zero, _) = self.session.compute(RoundingMode::TowardZero, &operation);
            F::bits(toward_zero) & !F::SIGN < F::MIN_NORMAL
        } else {
            false
        };
        if tiny && self.flush_to_zero {
            self.flags |= fpscr::UFC;
            return 0;
        }
        if tiny && inexact {
            self.flags |= fpscr::UFC;
        }
        if inexact {
            self.flags |= fpscr::IXC;
        }
        bits
    }

    /// FADD: `first + second`.
    pub(crate) fn add<F: Format>(&mut self, first: u64, second: u64) -> u64 {
        let (first, second) = (self.operand::<F>(first), self.operand::<F>(second));
        if let Some(nan) = self.nans::<F>(first, second) {
            return nan;
        }
        self.round::<F>(|| F::soft(first) + F::soft(second))
    }

    /// FSUB: `first - second`.
    pub(crate) fn subtract<F: Format>(&mut self, first: u64, second: u64) -> u64 {
        let (first, second) = (self.operand::<F>(first), self.operand::<F>(second));
        if let Some(nan) = self.nans::<F>(first, second) {
            return nan;
        }
        self.round::<F>(|| F::soft(first) - F::soft(second))
    }

    /// FMUL: `first * second`.
    pub(crate) fn multiply<F: Format>(&mut self, first: u64, second: u64) -> u64 {
        let (first, second) = (self.operand::<F>(first), self.operand::<F>(second));
        if let Some(nan) = self.nans::<F>(first, second) {
            return nan;
        }
        self.round::<F>(|| F::soft(first) * F::soft(second))
    }

    /// FDIV: `first / second`.
    pub(crate) fn divide<F: Format>(&mut self, first: u64, second: u64) -> u64 {
        let (first, second) = (self.operand::<F>(first), self.operand::<F>(second));
        if let Some(nan) = self.nans::<F>(first, second) {
            return nan;
        }
        self.round::<F>(|| F::soft(first) / F::soft(second))
    }

    /// FSQRT.
    pub(crate) fn square_root<F: Format>(&mut self, operand: u64) -> u64 {
        let operand = self.operand::<F>(operand);
        if F::is_nan(operand) {
            return self.propagate::<F>(operand);
        }
        self.round::<F>(|| F::soft(operand).square_root())
    }

    /// FCMP/FCMPE: FPSCR.NZCV for `first` compared with `second` (ARMv7 `FPCompare`).
    pub(crate) fn compare<F: Format>(&mut self, first: u64, second: u64, signal_quiet_nan: bool) -> u32 {
        let (first, second) = (self.operand::<F>(first), self.operand::<F>(second));
        if F::is_nan(first) || F::is_nan(second) {
            if signal_quiet_nan || F::is_signalling(first) || F::is_signalling(second) {
                self.flags |= fpscr::IOC;
            }
            return fpscr::C | fpscr::V;
        }
        // Ordered comparison of numbers raises no flag.
        let (order, _) =
            self.session.compute(self.rounding, || Fp::<F::Desc>::compare_quiet(F::soft(first), F::soft(second)));
        match order {
            Some(Ordering::Less) => fpscr::N,
            Some(Ordering::Equal) => fpscr::Z | fpscr::C,
            Some(Ordering::Greater) => fpscr::C,
            None => fpscr::C | fpscr::V,
        }
    }

    /// FCVTDS: single to double (exact for numbers; a NaN keeps its sign and payload, quieted).
    pub(crate) fn single_to_double(&mut self, operand: u64) -> u64 {
        let operand = self.operand::<Single>(operand);
        if Single::is_nan(operand) {
            let quiet = self.propagate::<Single>(operand);
            if self.default_nan {
                return Double::DEFAULT_NAN;
            }
            let sign = (quiet & Single::SIGN) << 32;
            return sign
                | Double::EXPONENT
                | ((quiet & Single::FRACTION_MASK) << (Double::FRACTION - Single::FRACTION));
        }
        self.round::<Double>(|| Single::soft(operand).convert_format::<F64Desc>())
    }

    /// FCVTSD: double to single, rounded (a NaN keeps its sign and the top of its payload).
    pub(crate) fn double_to_single(&mut self, operand: u64) -> u64 {
        let operand = self.operand::<Double>(operand);
        if Double::is_nan(operand) {
            let quiet = self.propagate::<Double>(operand);
            if self.default_nan {
                return Single::DEFAULT_NAN;
            }
            let sign = (quiet & Double::SIGN) >> 32;
            return sign
                | Single::EXPONENT
                | ((quiet & Double::FRACTION_MASK) >> (Double::FRACTION - Single::FRACTION));
        }
        self.round::<Single>(|| Double::soft(operand).convert_format::<F32Desc>())
    }

    /// FUITO/FSITO: a 32-bit integer to floating point.
    pub(crate) fn integer_to_float<F: Format>(&mut self, integer: u32, signed: bool) -> u64 {
        if signed {
            self.round::<F>(|| F::signed_to_float(integer))
        } else {
            self.round::<F>(|| F::unsigned_to_float(integer))
        }
    }

    /// FTOUI(Z)/FTOSI(Z): floating point to a 32-bit integer (ARMv7 `FPToFixed`): a NaN gives 0,
    /// out of range saturates, both with Invalid Operation; otherwise Inexact when rounded.
    pub(crate) fn float_to_integer<F: Format>(&mut self, operand: u64, signed: bool, toward_zero: bool) -> u32 {
        let operand = self.operand::<F>(operand);
        if F::is_nan(operand) {
            self.flags |= fpscr::IOC;
            return 0;
        }
        // |x| >= 2^32 (infinities included) is out of range in every rounding mode. softfp 0.1.0
        // misses this for integer-valued operands between 2^32 and 2^33 (it shifts the significand
        // past bit 31 and returns 0 without a flag), so the range is decided here from the
        // exponent field: no arithmetic involved.
        let bias = (F::EXPONENT >> (F::FRACTION + 1)) as u32;
        let exponent = ((operand & F::EXPONENT) >> F::FRACTION) as u32;
        if exponent >= bias + 32 {
            self.flags |= fpscr::IOC;
            let negative = operand & F::SIGN != 0;
            return match (signed, negative) {
                (false, false) => u32::MAX,
                (false, true) => 0,
                (true, false) => i32::MAX as u32,
                (true, true) => i32::MIN as u32,
            };
        }
        let mode = if toward_zero { RoundingMode::TowardZero } else { self.rounding };
        let value = F::soft(operand);
        let (integer, raised) =
            self.session.compute(mode, || if signed { F::float_to_signed(value) } else { F::float_to_unsigned(value) });
        if raised.contains(ExceptionFlags::INVALID_OPERATION) {
            self.flags |= fpscr::IOC;
        } else if raised.contains(ExceptionFlags::INEXACT) {
            self.flags |= fpscr::IXC;
        }
        integer
    }
}

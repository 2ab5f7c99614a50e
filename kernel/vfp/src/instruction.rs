//! Decoding of VFPv2 data-processing (CDP) instructions, as FPINST and FPINST2 hold them (ARM
//! Architecture Reference Manual, ARMv6 edition DDI 0100I, part C "Vector Floating-point
//! Architecture", chapters C3-C5; the same encodings are VMLA..VCVT in the ARMv7 manual).
//!
//! ```text
//!  31..28 27..24 23 22 21 20 19..16 15..12 11..9 8  7 6 5 4 3..0
//!  cond   1110   p  D  q  r  Fn     Fd     101   sz N s M 0 Fm
//! ```
//! `sz` = 1 (coprocessor 11) is double precision. The opcode is p:q:r:s; 1111 selects the
//! extension instructions, whose opcode is Fn:N. A single-precision register number is Fx:X
//! (Fd:D, Fn:N, Fm:M); a double-precision one is Fx, and VFPv2 has no D16-D31, so X must be 0.

/// The exceptional VFP11 instructions are always AL: FPINST bits 31:28 and FPINST2 bits 31:28 are forced
/// to 0b1110 (ARM1176 TRM 20.4.4).
pub const CONDITION_ALWAYS: u32 = 0b1110;

/// A register operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    /// Single-precision register Sn (0-31).
    Single(u8),
    /// Double-precision register Dn (0-15).
    Double(u8),
}

/// The multiply-accumulate family; each is a multiply, rounded, then an addition, rounded
/// (VFPv2 has no fused multiply-add).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    /// FMAC (VMLA): Fd = Fd + Fn * Fm.
    Add,
    /// FNMAC (VMLS): Fd = Fd - Fn * Fm.
    Subtract,
    /// FMSC (VNMLS): Fd = -Fd + Fn * Fm.
    NegatedAdd,
    /// FNMSC (VNMLA): Fd = -Fd - Fn * Fm.
    NegatedSubtract,
}

/// What a data-processing instruction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// FMAC, FNMAC, FMSC, FNMSC.
    MultiplyAccumulate(Accumulate),
    /// FMUL: Fd = Fn * Fm.
    Multiply,
    /// FNMUL: Fd = -(Fn * Fm).
    NegatedMultiply,
    /// FADD: Fd = Fn + Fm.
    Add,
    /// FSUB: Fd = Fn - Fm.
    Subtract,
    /// FDIV: Fd = Fn / Fm.
    Divide,
    /// FCPY: Fd = Fm (bits copied, never an exception).
    Copy,
    /// FABS: Fd = |Fm| (sign bit cleared, never an exception).
    Absolute,
    /// FNEG: Fd = -Fm (sign bit inverted, never an exception).
    Negate,
    /// FSQRT: Fd = sqrt(Fm).
    SquareRoot,
    /// FCMP, FCMPE (Fd with Fm) and FCMPZ, FCMPEZ (Fd with +0): FPSCR.NZCV.
    Compare {
        /// FCMPE: a quiet NaN operand is an Invalid Operation too (FCMP: only a signalling one).
        signal_quiet_nan: bool,
        /// FCMPZ/FCMPEZ: compare with +0 instead of Fm.
        with_zero: bool,
    },
    /// FCVTDS (Dd = Sm) and FCVTSD (Sd = Dm).
    ConvertPrecision,
    /// FUITO: Fd = the unsigned integer in Sm.
    FromUnsigned,
    /// FSITO: Fd = the signed integer in Sm.
    FromSigned,
    /// FTOUI/FTOUIZ: Sd = Fm as an unsigned integer.
    ToUnsigned {
        /// FTOUIZ: round towards zero, whatever FPSCR says.
        toward_zero: bool,
    },
    /// FTOSI/FTOSIZ: Sd = Fm as a signed integer.
    ToSigned {
        /// FTOSIZ: round towards zero, whatever FPSCR says.
        toward_zero: bool,
    },
}

/// A decoded data-processing instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The operation.
    pub operation: Operation,
    /// True when the arithmetic is double precision (`sz` = 1).
    pub double: bool,
    /// The destination register.
    pub d: Register,
    /// The first source (unused by the one-operand instructions; Dn/Sn = 0 there).
    pub n: Register,
    /// The second source (for FCMPZ/FCMPEZ: unused).
    pub m: Register,
}

/// Why a word is not an instruction this support code executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a VFP data-processing (CDP to coprocessor 10 or 11) encoding: a load, store or
    /// register transfer, which never bounces.
    NotDataProcessing,
    /// A condition other than AL (FPINST and FPINST2 always hold AL).
    Conditional,
    /// An encoding VFPv2 leaves undefined (an unallocated opcode, or a double-precision register
    /// number above 15).
    Undefined,
}

fn single(field: u32, low_bit: u32) -> Register {
    Register::Single(((field << 1) | low_bit) as u8)
}

fn double(field: u32, low_bit: u32) -> Result<Register, DecodeError> {
    if low_bit != 0 {
        return Err(DecodeError::Undefined);
    }
    Ok(Register::Double(field as u8))
}

impl Instruction {
    /// Decodes one instruction word.
    pub fn decode(word: u32) -> Result<Self, DecodeError> {
        if (word >> 24) & 0xF != 0b1110 || (word >> 9) & 0b111 != 0b101 || word & (1 << 4) != 0 {
            return Err(DecodeError::NotDataProcessing);
        }
        if word >> 28 != CONDITION_ALWAYS {
            return Err(if word >> 28 == 0b1111 { DecodeError::NotDataProcessing } else { DecodeError::Conditional });
        }
        let bit = |n: u32| (word >> n) & 1;
        let is_double = bit(8) == 1;
        let (fd, fnn, fm) = ((word >> 12) & 0xF, (word >> 16) & 0xF, word & 0xF);
        let (d_bit, n_bit, m_bit) = (bit(22), bit(7), bit(5));
        let opcode = (bit(23) << 3) | (bit(21) << 2) | (bit(20) << 1) | bit(6);
        // A register in the instruction's own precision.
        let own =
            |field: u32, low_bit: u32| if is_double { double(field, low_bit) } else { Ok(single(field, low_bit)) };
        let three = |operation| -> Result<Self, DecodeError> {
            Ok(Self { operation, double: is_double, d: own(fd, d_bit)?, n: own(fnn, n_bit)?, m: own(fm, m_bit)? })
        };
        let operation = match opcode {
            0b0000 => return three(Operation::MultiplyAccumulate(Accumulate::Add)),
            0b0001 => return three(Operation::MultiplyAccumulate(Accumulate::Subtract)),
            0b0010 => return three(Operation::MultiplyAccumulate(Accumulate::NegatedAdd)),
            0b0011 => return three(Operation::MultiplyAccumulate(Accumulate::NegatedSubtract)),
            0b0100 => return three(Operation::Multiply),
            0b0101 => return three(Operation::NegatedMultiply),
            0b0110 => return three(Operation::Add),
            0b0111 => return three(Operation::Subtract),
            0b1000 => return three(Operation::Divide),
            0b1111 => (fnn << 1) | n_bit,
            _ => return Err(DecodeError::Undefined),
        };
        let unused = Register::Single(0);
        let (operation, d, m) = match operation {
            0b00000 => (Operation::Copy, own(fd, d_bit)?, own(fm, m_bit)?),
            0b00001 => (Operation::Absolute, own(fd, d_bit)?, own(fm, m_bit)?),
            0b00010 => (Operation::Negate, own(fd, d_bit)?, own(fm, m_bit)?),
            0b00011 => (Operation::SquareRoot, own(fd, d_bit)?, own(fm, m_bit)?),
            0b01000..=0b01011 => {
                let compare =
                    Operation::Compare { signal_quiet_nan: operation & 1 == 1, with_zero: operation & 2 == 2 };
                (compare, own(fd, d_bit)?, own(fm, m_bit)?)
            }
            // FCVTDS (sz = 0): Dd from Sm; FCVTSD (sz = 1): Sd from Dm.
            0b01111 if is_double => (Operation::ConvertPrecision, single(fd, d_bit), double(fm, m_bit)?),
            0b01111 => (Operation::ConvertPrecision, double(fd, d_bit)?, single(fm, m_bit)),
            // Integer to floating point: the integer is always in Sm.
            0b10000 => (Operation::FromUnsigned, own(fd, d_bit)?, single(fm, m_bit)),
            0b10001 => (Operation::FromSigned, own(fd, d_bit)?, single(fm, m_bit)),
            // Floating point to integer: the integer always goes to Sd.
            0b11000 | 0b11001 => {
                (Operation::ToUnsigned { toward_zero: operation & 1 == 1 }, single(fd, d_bit), own(fm, m_bit)?)
            }
            0b11010 | 0b11011 => {
                (Operation::ToSigned { toward_zero: operation & 1 == 1 }, single(fd, d_bit), own(fm, m_bit)?)
            }
            _ => return Err(DecodeError::Undefined),
        };
        Ok(Self { operation, double: is_double, d, n: unused, m })
    }
}

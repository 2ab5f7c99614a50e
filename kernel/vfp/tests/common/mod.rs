//! Shared pieces of the host tests: an instruction encoder (checked against GNU as in
//! `decode.rs`), a deterministic operand generator, and the oracle: the host's own IEEE
//! hardware (x86-64 SSE, driven through MXCSR with inline assembly, so the rounding mode and the
//! exception flags are the hardware's, not Rust's) plus the ARM rules the hardware does not
//! share (NaN choice, default NaN, tininess before rounding, flush-to-zero), written out from the
//! architecture manuals independently of the code under test.

#![allow(dead_code)]
#![allow(missing_docs)]

pub const N: u32 = 1 << 31;
pub const Z: u32 = 1 << 30;
pub const C: u32 = 1 << 29;
pub const V: u32 = 1 << 28;
pub const DN: u32 = 1 << 25;
pub const FZ: u32 = 1 << 24;
pub const IDC: u32 = 1 << 7;
pub const IXC: u32 = 1 << 4;
pub const UFC: u32 = 1 << 3;
pub const OFC: u32 = 1 << 2;
pub const DZC: u32 = 1 << 1;
pub const IOC: u32 = 1 << 0;

/// The four rounding modes, with their FPSCR.RMode and MXCSR.RC encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nearest,
    Up,
    Down,
    Zero,
}

pub const MODES: [Mode; 4] = [Mode::Nearest, Mode::Up, Mode::Down, Mode::Zero];

impl Mode {
    pub fn fpscr(self) -> u32 {
        (match self {
            Mode::Nearest => 0b00,
            Mode::Up => 0b01,
            Mode::Down => 0b10,
            Mode::Zero => 0b11,
        }) << 22
    }
    fn mxcsr(self) -> u32 {
        // All exceptions masked (0x1F80), rounding control in bits 14:13, no FTZ/DAZ.
        0x1F80
            | (match self {
                Mode::Nearest => 0b00,
                Mode::Down => 0b01,
                Mode::Up => 0b10,
                Mode::Zero => 0b11,
            }) << 13
    }
}

/// A format's constants, for the test's own bit handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub double: bool,
}

pub const SINGLE: Format = Format { double: false };
pub const DOUBLE: Format = Format { double: true };

impl Format {
    pub fn fraction_bits(self) -> u32 {
        if self.double {
            52
        } else {
            23
        }
    }
    pub fn sign(self) -> u64 {
        if self.double {
            1 << 63
        } else {
            1 << 31
        }
    }
    pub fn exponent_mask(self) -> u64 {
        if self.double {
            0x7FF0_0000_0000_0000
        } else {
            0x7F80_0000
        }
    }
    pub fn fraction_mask(self) -> u64 {
        (1 << self.fraction_bits()) - 1
    }
    pub fn quiet(self) -> u64 {
        1 << (self.fraction_bits() - 1)
    }
    pub fn default_nan(self) -> u64 {
        if self.double {
            0x7FF8_0000_0000_0000
        } else {
            0x7FC0_0000
        }
    }
    pub fn min_normal(self) -> u64 {
        1 << self.fraction_bits()
    }
    pub fn is_nan(self, x: u64) -> bool {
        x & self.exponent_mask() == self.exponent_mask() && x & self.fraction_mask() != 0
    }
    pub fn is_snan(self, x: u64) -> bool {
        self.is_nan(x) && x & self.quiet() == 0
    }
    pub fn is_subnormal(self, x: u64) -> bool {
        x & self.exponent_mask() == 0 && x & self.fraction_mask() != 0
    }
    pub fn magnitude(self, x: u64) -> u64 {
        x & !self.sign()
    }
}

// ---------------------------------------------------------------------------------------------
// The host's IEEE hardware.

/// A result from the host FPU and the MXCSR flags it raised.
#[derive(Clone, Copy, Debug)]
pub struct Hardware {
    pub bits: u64,
    pub invalid: bool,
    pub divide_by_zero: bool,
    pub overflow: bool,
    pub underflow: bool,
    pub inexact: bool,
}

#[cfg(target_arch = "x86_64")]
mod sse {
    use super::{Hardware, Mode};

    /// Runs `$instruction xmm0, xmm1` with xmm0 = a, xmm1 = b under `mode`; restores MXCSR.
    macro_rules! xmm {
        ($name:ident, $instruction:literal) => {
            pub fn $name(a: u64, b: u64, mode: Mode) -> Hardware {
                let mut csr = [mode.mxcsr(), 0u32, 0u32];
                let result: u64;
                // SAFETY: the block only uses xmm0/xmm1 (declared clobbered) and the three words
                // of `csr`, and puts the caller's MXCSR back before it ends.
                unsafe {
                    core::arch::asm!(
                        "stmxcsr [{csr} + 8]",
                        "ldmxcsr [{csr}]",
                        "movq xmm0, {a}",
                        "movq xmm1, {b}",
                        concat!($instruction, " xmm0, xmm1"),
                        "movq {result}, xmm0",
                        "stmxcsr [{csr} + 4]",
                        "ldmxcsr [{csr} + 8]",
                        csr = in(reg) csr.as_mut_ptr(),
                        a = in(reg) a,
                        b = in(reg) b,
                        result = out(reg) result,
                        out("xmm0") _,
                        out("xmm1") _,
                        options(nostack),
                    );
                }
                let flags = csr[1];
                Hardware {
                    bits: result,
                    invalid: flags & 1 != 0,
                    divide_by_zero: flags & 4 != 0,
                    overflow: flags & 8 != 0,
                    underflow: flags & 16 != 0,
                    inexact: flags & 32 != 0,
                }
            }
        };
    }

    xmm!(addss, "addss");
    xmm!(subss, "subss");
    xmm!(mulss, "mulss");
    xmm!(divss, "divss");
    xmm!(sqrtss, "sqrtss");
    xmm!(addsd, "addsd");
    xmm!(subsd, "subsd");
    xmm!(mulsd, "mulsd");
    xmm!(divsd, "divsd");
    xmm!(sqrtsd, "sqrtsd");
    xmm!(cvtss2sd, "cvtss2sd");
    xmm!(cvtsd2ss, "cvtsd2ss");

    /// Converts a 64-bit signed integer (so every u32 and i32 is exact) with `cvtsi2ss`/`sd`.
    macro_rules! from_integer {
        ($name:ident, $instruction:literal) => {
            pub fn $name(value: i64, mode: Mode) -> Hardware {
                let mut csr = [mode.mxcsr(), 0u32, 0u32];
                let result: u64;
                // SAFETY: as above.
                unsafe {
                    core::arch::asm!(
                        "stmxcsr [{csr} + 8]",
                        "ldmxcsr [{csr}]",
                        "xorps xmm0, xmm0",
                        concat!($instruction, " xmm0, {value}"),
                        "movq {result}, xmm0",
                        "stmxcsr [{csr} + 4]",
                        "ldmxcsr [{csr} + 8]",
                        csr = in(reg) csr.as_mut_ptr(),
                        value = in(reg) value,
                        result = out(reg) result,
                        out("xmm0") _,
                        options(nostack),
                    );
                }
                let flags = csr[1];
                Hardware {
                    bits: result,
                    invalid: flags & 1 != 0,
                    divide_by_zero: flags & 4 != 0,
                    overflow: flags & 8 != 0,
                    underflow: flags & 16 != 0,
                    inexact: flags & 32 != 0,
                }
            }
        };
    }

    from_integer!(cvtsi2ss, "cvtsi2ss");
    from_integer!(cvtsi2sd, "cvtsi2sd");
}

#[cfg(target_arch = "x86_64")]
pub use sse::*;

/// Binary operations the oracle knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    Add,
    Subtract,
    Multiply,
    Divide,
}

pub const BINARY: [Binary; 4] = [Binary::Add, Binary::Subtract, Binary::Multiply, Binary::Divide];

#[cfg(target_arch = "x86_64")]
pub fn hardware_binary(op: Binary, format: Format, a: u64, b: u64, mode: Mode) -> Hardware {
    let mut result = match (op, format.double) {
        (Binary::Add, false) => addss(a, b, mode),
        (Binary::Subtract, false) => subss(a, b, mode),
        (Binary::Multiply, false) => mulss(a, b, mode),
        (Binary::Divide, false) => divss(a, b, mode),
        (Binary::Add, true) => addsd(a, b, mode),
        (Binary::Subtract, true) => subsd(a, b, mode),
        (Binary::Multiply, true) => mulsd(a, b, mode),
        (Binary::Divide, true) => divsd(a, b, mode),
    };
    if !format.double {
        result.bits &= 0xFFFF_FFFF;
    }
    result
}

// ---------------------------------------------------------------------------------------------
// The ARM rules around the hardware's arithmetic (the oracle's model).

/// An expected result: the value and the cumulative FPSCR flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    pub bits: u64,
    pub flags: u32,
}

/// The FPSCR environment of one case.
#[derive(Clone, Copy, Debug)]
pub struct Environment {
    pub mode: Mode,
    pub flush: bool,
    pub default_nan: bool,
}

impl Environment {
    pub fn fpscr(self) -> u32 {
        self.mode.fpscr() | if self.flush { FZ } else { 0 } | if self.default_nan { DN } else { 0 }
    }
    pub fn all() -> Vec<Environment> {
        let mut all = Vec::new();
        for mode in MODES {
            for (flush, default_nan) in [(false, false), (true, false), (false, true), (true, true)] {
                all.push(Environment { mode, flush, default_nan });
            }
        }
        all
    }
}

/// Flush-to-zero of an arithmetic operand: the VFP11 uses +0 and sets IDC (ARM1176 TRM 18.5.2).
pub fn flush_operand(env: Environment, format: Format, x: u64, flags: &mut u32) -> u64 {
    if env.flush && format.is_subnormal(x) {
        *flags |= IDC;
        0
    } else {
        x
    }
}

/// ARM NaN selection for two operands: first signalling, second signalling, first quiet, second
/// quiet; quieted; the default NaN in DN mode; Invalid Operation for a signalling one.
pub fn arm_nans(env: Environment, format: Format, a: u64, b: u64, flags: &mut u32) -> Option<u64> {
    let chosen = if format.is_snan(a) {
        a
    } else if format.is_snan(b) {
        b
    } else if format.is_nan(a) {
        a
    } else if format.is_nan(b) {
        b
    } else {
        return None;
    };
    if format.is_snan(a) || format.is_snan(b) {
        *flags |= IOC;
    }
    Some(if env.default_nan { format.default_nan() } else { chosen | format.quiet() })
}

/// ARM result rules for a rounded hardware result on non-NaN operands. `toward_zero` recomputes
/// the same operation rounding towards zero (for tininess before rounding).
pub fn arm_result(
    env: Environment,
    format: Format,
    hw: Hardware,
    toward_zero: impl Fn() -> Hardware,
    flags: &mut u32,
) -> u64 {
    if hw.invalid {
        *flags |= IOC;
        return format.default_nan();
    }
    if hw.divide_by_zero {
        *flags |= DZC;
    }
    if hw.overflow {
        *flags |= OFC;
    }
    let magnitude = format.magnitude(hw.bits);
    let tiny = if magnitude < format.min_normal() {
        magnitude != 0 || hw.inexact
    } else if magnitude == format.min_normal() && hw.inexact {
        format.magnitude(toward_zero().bits) < format.min_normal()
    } else {
        false
    };
    // x86 detects tininess after rounding, so its underflow implies ARM's, never the reverse.
    if hw.underflow {
        assert!(tiny && hw.inexact, "x86 underflow without ARM underflow: {hw:?}");
    }
    if tiny && env.flush {
        *flags |= UFC;
        return 0;
    }
    if tiny && hw.inexact {
        *flags |= UFC;
    }
    if hw.inexact {
        *flags |= IXC;
    }
    hw.bits
}

/// The expected result of FADD/FSUB/FMUL/FDIV.
#[cfg(target_arch = "x86_64")]
pub fn expected_binary(op: Binary, format: Format, a: u64, b: u64, env: Environment) -> Expected {
    let mut flags = 0;
    let a = flush_operand(env, format, a, &mut flags);
    let b = flush_operand(env, format, b, &mut flags);
    if let Some(nan) = arm_nans(env, format, a, b, &mut flags) {
        return Expected { bits: nan, flags };
    }
    let hw = hardware_binary(op, format, a, b, env.mode);
    let bits = arm_result(env, format, hw, || hardware_binary(op, format, a, b, Mode::Zero), &mut flags);
    Expected { bits, flags }
}

// ---------------------------------------------------------------------------------------------
// Operands.

/// A small deterministic generator (xorshift64*), seeded per test.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Random(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// An operand: fully random bits, or a number with a random exponent from a range that
    /// makes results land near the subnormal and overflow boundaries.
    pub fn operand(&mut self, format: Format) -> u64 {
        let fraction = self.next() & format.fraction_mask();
        let sign = if self.next() & 1 == 1 { format.sign() } else { 0 };
        let (bias, max_exponent) = if format.double { (1023u64, 2046u64) } else { (127, 254) };
        let exponent = match self.below(8) {
            0 => return self.next() & if format.double { u64::MAX } else { 0xFFFF_FFFF },
            1 => 0,                               // subnormal (or zero)
            2 => 1 + self.below(4),               // smallest normals
            3 => bias - 4 + self.below(8),        // around 1
            4 => max_exponent - self.below(4),    // largest
            5 => bias / 2 + self.below(8),        // products of two of these underflow
            6 => bias + bias / 2 - self.below(8), // products of two of these overflow
            _ => 1 + self.below(max_exponent),    // anything finite
        };
        sign | (exponent << format.fraction_bits()) | fraction
    }
}

/// The special operands every binary operation is tried on, pairwise.
pub fn specials(format: Format) -> Vec<u64> {
    let sign = format.sign();
    let one = if format.double { 0x3FF0_0000_0000_0000 } else { 0x3F80_0000 };
    let one_and_half = one | format.quiet();
    let max = format.exponent_mask() - 1;
    let infinity = format.exponent_mask();
    let smallest_subnormal = 1;
    let largest_subnormal = format.fraction_mask();
    let some_subnormal = format.quiet() | 0x5;
    let min_normal = format.min_normal();
    let quiet_nan = format.exponent_mask() | format.quiet() | 0x11;
    let signalling_nan = format.exponent_mask() | 0x22;
    let near_one = one - 1;
    let mut values = vec![
        0,
        smallest_subnormal,
        largest_subnormal,
        some_subnormal,
        min_normal,
        min_normal + 1,
        one,
        near_one,
        one_and_half,
        max,
        infinity,
        quiet_nan,
        signalling_nan,
    ];
    let negatives: Vec<u64> = values.iter().map(|value| value | sign).collect();
    values.extend(negatives);
    values
}

// ---------------------------------------------------------------------------------------------
// Encoding (checked against GNU as in decode.rs).

/// Single-precision register number fields: (Fx, X) for Sx.
fn split_single(register: u8) -> (u32, u32) {
    (u32::from(register >> 1), u32::from(register & 1))
}

/// Encodes a VFPv2 data-processing instruction: `opcode` is p:q:r:s, `extension` the Fn:N
/// opcode when `opcode` is 0b1111. `d`, `n`, `m` are register numbers; `d_double` etc. say
/// whether each is a D register (else an S register).
#[allow(clippy::too_many_arguments)]
pub fn encode(
    opcode: u32,
    size_double: bool,
    d: u8,
    d_double: bool,
    n: u8,
    n_double: bool,
    m: u8,
    m_double: bool,
) -> u32 {
    let (fd, d_bit) = if d_double { (u32::from(d), 0) } else { split_single(d) };
    let (fnn, n_bit) = if n_double { (u32::from(n), 0) } else { split_single(n) };
    let (fm, m_bit) = if m_double { (u32::from(m), 0) } else { split_single(m) };
    let p = (opcode >> 3) & 1;
    let q = (opcode >> 2) & 1;
    let r = (opcode >> 1) & 1;
    let s = opcode & 1;
    0xE << 28
        | 0b1110 << 24
        | p << 23
        | d_bit << 22
        | q << 21
        | r << 20
        | fnn << 16
        | fd << 12
        | 0b101 << 9
        | u32::from(size_double) << 8
        | n_bit << 7
        | s << 6
        | m_bit << 5
        | fm
}

/// Encodes an extension instruction (opcode 1111) with extension opcode `extension` (Fn:N).
pub fn encode_extension(extension: u32, size_double: bool, d: u8, d_double: bool, m: u8, m_double: bool) -> u32 {
    let n = (extension >> 1) as u8;
    let n_bit = extension & 1;
    // Fn:N carries the extension opcode: encode it as a single-precision "register" number.
    encode(0b1111, size_double, d, d_double, (n << 1) | n_bit as u8, false, m, m_double)
}

//! VFP11 support code: executes, in software, the VFP instructions that the ARM1176JZF-S's
//! floating-point coprocessor hands back to the kernel ("bounces") through the undefined
//! instruction exception with FPEXC.EX set.
//!
//! Outside RunFast mode (FPSCR.FZ = 1, DN = 1, no trap enabled) the VFP11 bounces subnormal
//! operands, NaN operands, results that might underflow and float-to-integer conversions that
//! might be out of range (ARM1176 TRM, DDI 0301H, chapter 22). jos runs with FPSCR = 0 (round to
//! nearest, no flush-to-zero: WebAssembly requires subnormals), so real boards bounce; QEMU never
//! does. [`bounce`] takes what the handler read (FPEXC, FPINST, FPINST2, FPSCR and the register
//! file it saved), executes FPINST (and FPINST2 when FPEXC.FP2V says it is valid) and returns the
//! new FPSCR; the caller writes the registers and FPSCR back, clears FPEXC.EX and retries the
//! trigger instruction. [`execute`] runs one instruction word.
//!
//! The arithmetic itself comes from the `softfp` crate; `arithmetic` adds the ARM rules (NaN
//! choice, default NaN, tininess before rounding, flush-to-zero). Short vectors (FPSCR.LEN > 0)
//! and enabled traps are refused ([`Refusal`]): nothing jos runs sets them.
//!
//! Host tests (`tests/`) compare every instruction with the host's IEEE hardware.

#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![deny(clippy::float_arithmetic)]

mod arithmetic;
mod environment;
pub mod instruction;
pub mod registers;

use arithmetic::{Context, Double, Single};
use environment::Session;
pub use instruction::{Accumulate, DecodeError, Instruction, Operation, Register};
pub use registers::{fpexc, fpscr, RegisterFile};

/// Why the support code does not execute a bounce (the caller then treats the undefined
/// instruction as a fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// FPEXC.EX is clear: no exceptional instruction is pending.
    NotPending,
    /// The instruction word is not one this code executes.
    Instruction {
        /// The word (FPINST or FPINST2).
        word: u32,
        /// Why.
        error: DecodeError,
    },
    /// FPSCR.LEN is not 0: short vectors are not emulated.
    ShortVector {
        /// The FPSCR value.
        fpscr: u32,
    },
    /// A trap enable bit (IOE, DZE, OFE, UFE, IXE, IDE) is set: user trap handlers are not
    /// supported.
    TrapEnabled {
        /// The FPSCR value.
        fpscr: u32,
    },
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::NotPending => write!(out, "no VFP exception pending"),
            Refusal::Instruction { word, error } => write!(out, "instruction {word:#010x} not emulated ({error:?})"),
            Refusal::ShortVector { fpscr } => write!(out, "short vector (FPSCR {fpscr:#010x}, LEN > 0) not emulated"),
            Refusal::TrapEnabled { fpscr } => write!(out, "trap enabled in FPSCR {fpscr:#010x}, not supported"),
        }
    }
}

/// Reads a register as raw bits (a single-precision register in the low 32 bits).
fn read(registers: &RegisterFile, register: Register) -> u64 {
    match register {
        Register::Single(n) => u64::from(registers.single(n)),
        Register::Double(n) => registers.double(n),
    }
}

/// Writes raw bits to a register.
fn write(registers: &mut RegisterFile, register: Register, value: u64) {
    match register {
        Register::Single(n) => registers.set_single(n, value as u32),
        Register::Double(n) => registers.set_double(n, value),
    }
}

/// Flips the sign of a value of the instruction's precision (ARM `FPNeg`: NaNs too).
fn negate(double: bool, value: u64) -> u64 {
    value ^ if double { 1 << 63 } else { 1 << 31 }
}

/// Executes one VFP data-processing instruction on `registers` with the environment in
/// `fpscr_value`; returns the new FPSCR (cumulative flags added, NZCV set by compares).
pub fn execute(word: u32, fpscr_value: u32, registers: &mut RegisterFile) -> Result<u32, Refusal> {
    let instruction = Instruction::decode(word).map_err(|error| Refusal::Instruction { word, error })?;
    if fpscr_value & fpscr::LEN != 0 {
        return Err(Refusal::ShortVector { fpscr: fpscr_value });
    }
    if fpscr_value & fpscr::TRAP_ENABLES != 0 {
        return Err(Refusal::TrapEnabled { fpscr: fpscr_value });
    }
    let session = Session::open();
    let mut context = Context::new(&session, fpscr_value);
    let mut new_fpscr = fpscr_value;
    let double = instruction.double;
    let (d, n, m) = (read(registers, instruction.d), read(registers, instruction.n), read(registers, instruction.m));
    // Each arm computes in the instruction's precision.
    macro_rules! precision {
        ($method:ident ( $($argument:expr),* )) => {
            if double { context.$method::<Double>($($argument),*) } else { context.$method::<Single>($($argument),*) }
        };
    }
    let result = match instruction.operation {
        Operation::MultiplyAccumulate(kind) => {
            let product = precision!(multiply(n, m));
            let (addend, product) = match kind {
                Accumulate::Add => (d, product),
                Accumulate::Subtract => (d, negate(double, product)),
                Accumulate::NegatedAdd => (negate(double, d), product),
                Accumulate::NegatedSubtract => (negate(double, d), negate(double, product)),
            };
            precision!(add(addend, product))
        }
        Operation::Multiply => precision!(multiply(n, m)),
        Operation::NegatedMultiply => negate(double, precision!(multiply(n, m))),
        Operation::Add => precision!(add(n, m)),
        Operation::Subtract => precision!(subtract(n, m)),
        Operation::Divide => precision!(divide(n, m)),
        Operation::Copy => m,
        Operation::Absolute => m & !negate(double, 0),
        Operation::Negate => negate(double, m),
        Operation::SquareRoot => precision!(square_root(m)),
        Operation::Compare { signal_quiet_nan, with_zero } => {
            let second = if with_zero { 0 } else { m };
            let flags = precision!(compare(d, second, signal_quiet_nan));
            new_fpscr = (new_fpscr & !fpscr::NZCV) | flags;
            return Ok(new_fpscr | context.flags);
        }
        Operation::ConvertPrecision if double => context.double_to_single(m),
        Operation::ConvertPrecision => context.single_to_double(m),
        Operation::FromUnsigned => precision!(integer_to_float(m as u32, false)),
        Operation::FromSigned => precision!(integer_to_float(m as u32, true)),
        Operation::ToUnsigned { toward_zero } => u64::from(precision!(float_to_integer(m, false, toward_zero))),
        Operation::ToSigned { toward_zero } => u64::from(precision!(float_to_integer(m, true, toward_zero))),
    };
    write(registers, instruction.d, result);
    Ok(new_fpscr | context.flags)
}

/// Handles one bounce: FPINST, then FPINST2 when FPEXC.FP2V is set (ARM1176 TRM 22.3 steps 8-9).
/// Returns the new FPSCR; `registers` holds the results. On a refusal the registers may hold the
/// first instruction's result already (the caller reports a fault, so that does not matter).
pub fn bounce(
    fpexc_value: u32,
    fpinst: u32,
    fpinst2: u32,
    fpscr_value: u32,
    registers: &mut RegisterFile,
) -> Result<u32, Refusal> {
    if fpexc_value & fpexc::EX == 0 {
        return Err(Refusal::NotPending);
    }
    let mut new_fpscr = execute(fpinst, fpscr_value, registers)?;
    if fpexc_value & fpexc::FP2V != 0 {
        new_fpscr = execute(fpinst2, new_fpscr, registers)?;
    }
    Ok(new_fpscr)
}

/// True when `word`, an ARM-state instruction, is a VFP instruction (a coprocessor 10 or 11
/// access: CDP, MCR/MRC (FMSR, FMRX ...), LDC/STC (FLDS, FSTMD ...), MCRR/MRRC). Only such an
/// instruction can be the trigger of a bounce; any other undefined instruction is a fault.
pub fn is_vfp_instruction(word: u32) -> bool {
    let coprocessor = (word >> 8) & 0xF;
    let class = (word >> 25) & 0b111;
    word >> 28 != 0b1111
        && (coprocessor == 10 || coprocessor == 11)
        && (class == 0b110 || (class == 0b111 && word & (1 << 24) == 0))
}

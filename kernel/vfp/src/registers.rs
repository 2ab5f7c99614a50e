//! Bit layouts of the VFP11 system registers FPSCR and FPEXC (ARM1176JZF-S TRM, DDI 0301H,
//! 20.4.2 and 20.4.3), and the register file as the support code sees it.

/// FPSCR fields (TRM 20.4.2, figure 20-6).
pub mod fpscr {
    /// N: the comparison result was "less than".
    pub const N: u32 = 1 << 31;
    /// Z: the comparison result was "equal".
    pub const Z: u32 = 1 << 30;
    /// C: the comparison result was "equal, greater than or unordered".
    pub const C: u32 = 1 << 29;
    /// V: the comparison result was "unordered".
    pub const V: u32 = 1 << 28;
    /// The four comparison flags.
    pub const NZCV: u32 = N | Z | C | V;
    /// DN: default NaN mode (every NaN result is the default NaN).
    pub const DN: u32 = 1 << 25;
    /// FZ: flush-to-zero mode (subnormal operands and tiny results become +0).
    pub const FZ: u32 = 1 << 24;
    /// RMode shift: 00 round to nearest, 01 towards +infinity, 10 towards -infinity, 11 towards zero.
    pub const RMODE_SHIFT: u32 = 22;
    /// STRIDE: short-vector stride (bits 21:20).
    pub const STRIDE: u32 = 0b11 << 20;
    /// LEN: short-vector length minus one (bits 18:16).
    pub const LEN: u32 = 0b111 << 16;
    /// IDE: Input Subnormal exception trap enable.
    pub const IDE: u32 = 1 << 15;
    /// IXE: Inexact exception trap enable.
    pub const IXE: u32 = 1 << 12;
    /// UFE: Underflow exception trap enable.
    pub const UFE: u32 = 1 << 11;
    /// OFE: Overflow exception trap enable.
    pub const OFE: u32 = 1 << 10;
    /// DZE: Division by Zero exception trap enable.
    pub const DZE: u32 = 1 << 9;
    /// IOE: Invalid Operation exception trap enable.
    pub const IOE: u32 = 1 << 8;
    /// Every trap enable bit.
    pub const TRAP_ENABLES: u32 = IDE | IXE | UFE | OFE | DZE | IOE;
    /// IDC: cumulative Input Subnormal flag (an operand was flushed to zero; FZ mode only).
    pub const IDC: u32 = 1 << 7;
    /// IXC: cumulative Inexact flag.
    pub const IXC: u32 = 1 << 4;
    /// UFC: cumulative Underflow flag.
    pub const UFC: u32 = 1 << 3;
    /// OFC: cumulative Overflow flag.
    pub const OFC: u32 = 1 << 2;
    /// DZC: cumulative Division by Zero flag.
    pub const DZC: u32 = 1 << 1;
    /// IOC: cumulative Invalid Operation flag.
    pub const IOC: u32 = 1 << 0;
    /// Every cumulative exception flag.
    pub const CUMULATIVE: u32 = IDC | IXC | UFC | OFC | DZC | IOC;
}

/// FPEXC fields (TRM 20.4.3, table 20-8).
pub mod fpexc {
    /// EX: the coprocessor is in the exceptional state; FPINST holds the exceptional instruction.
    pub const EX: u32 = 1 << 31;
    /// EN: the coprocessor is enabled.
    pub const EN: u32 = 1 << 30;
    /// FP2V: FPINST2 holds a second instruction, issued before the exception was detected, that
    /// the support code must execute too.
    pub const FP2V: u32 = 1 << 28;
    /// VECITR shift (bits 10:8): short-vector iterations left after the exceptional one
    /// (0b111 = none).
    pub const VECITR_SHIFT: u32 = 8;
    /// INV: input exception (a subnormal operand outside FZ mode, or a NaN outside DN mode).
    pub const INV: u32 = 1 << 7;
    /// UFC: potential underflow.
    pub const UFC: u32 = 1 << 3;
    /// OFC: potential overflow.
    pub const OFC: u32 = 1 << 2;
    /// IOC: potential invalid operation.
    pub const IOC: u32 = 1 << 0;
    /// What the support code clears before anything else touches the coprocessor: the
    /// exceptional state, FPINST2's valid flag and the potential-exception flags (TRM 20.4.3:
    /// "the support code must clear the EX flag immediately on entry"; all exception flags must
    /// be clear before returning).
    pub const CLEARED_ON_ENTRY: u32 = EX | FP2V | 0xFF;
}

/// The VFP register file: `s[i]` is single-precision register Si; double-precision register Dn
/// is `s[2n]` (low word) and `s[2n + 1]` (high word), as `vstmia {d0-d15}` lays them out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterFile {
    /// S0 to S31.
    pub s: [u32; 32],
}

impl RegisterFile {
    /// Single-precision register Sn.
    pub fn single(&self, n: u8) -> u32 {
        self.s[usize::from(n & 31)]
    }

    /// Writes single-precision register Sn.
    pub fn set_single(&mut self, n: u8, value: u32) {
        self.s[usize::from(n & 31)] = value;
    }

    /// Double-precision register Dn.
    pub fn double(&self, n: u8) -> u64 {
        let low = usize::from(n & 15) * 2;
        u64::from(self.s[low]) | (u64::from(self.s[low + 1]) << 32)
    }

    /// Writes double-precision register Dn.
    pub fn set_double(&mut self, n: u8, value: u64) {
        let low = usize::from(n & 15) * 2;
        self.s[low] = value as u32;
        self.s[low + 1] = (value >> 32) as u32;
    }
}

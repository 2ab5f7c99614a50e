//! The ARM1176 cycle counter: CCNT of the System Performance Monitor (CP15 c15, ARM1176JZF-S
//! TRM 3.2.51). PMNC (`c15, c0, c12, 0`) controls it: bit 0 E enables the counters, bit 2 C
//! resets CCNT, bit 3 D makes CCNT count every 64th cycle; CCNT (`c15, c0, c12, 1`) is 32 bits.
//!
//! jos runs CCNT with D set, so the 32 bits last 2^38 cycles (over six minutes at 700 MHz, past
//! the longest native deadline). [`init`] checks that the counter ticks: QEMU 7.2 models the
//! whole c15 space of this core as read-as-zero/write-ignored, so on the emulator there is no
//! counter and [`present`] is false (callers then report 0 cycles, never an estimate).

use core::sync::atomic::{AtomicBool, Ordering};

/// PMNC bits (TRM 3.2.51, table 3-127).
const PMNC_ENABLE: u32 = 1 << 0;
const PMNC_RESET_CCNT: u32 = 1 << 2;
const PMNC_DIVIDE_64: u32 = 1 << 3;
/// Cycles per CCNT step with PMNC.D set.
pub const CYCLES_PER_TICK: u64 = 64;

static PRESENT: AtomicBool = AtomicBool::new(false);

fn write_pmnc(value: u32) {
    // SAFETY: writing PMNC only configures the performance counters (no memory, no interrupt
    // enable bits are set here); on QEMU the write is ignored.
    unsafe { core::arch::asm!("mcr p15, 0, {0}, c15, c12, 0", in(reg) value, options(nomem, nostack, preserves_flags)) }
}

/// Reads CCNT (raw ticks of 64 cycles).
pub fn read() -> u32 {
    let value: u32;
    // SAFETY: reading CCNT has no side effect.
    unsafe {
        core::arch::asm!("mrc p15, 0, {0}, c15, c12, 1", out(reg) value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Starts CCNT (every 64th cycle) and checks that it advances across a short busy loop.
/// Returns whether the board has a working counter.
pub fn init() -> bool {
    write_pmnc(PMNC_ENABLE | PMNC_RESET_CCNT | PMNC_DIVIDE_64);
    let before = read();
    let mut spin = 0u32;
    for _ in 0..20_000 {
        spin = core::hint::black_box(spin.wrapping_add(1));
    }
    let present = read() != before;
    PRESENT.store(present, Ordering::Relaxed);
    present
}

/// Whether [`init`] found a counter that ticks.
pub fn present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

/// Cycles between two [`read`]s (wrapping once at most), or 0 without a counter.
pub fn cycles_between(start: u32, end: u32) -> u64 {
    if present() {
        u64::from(end.wrapping_sub(start)) * CYCLES_PER_TICK
    } else {
        0
    }
}

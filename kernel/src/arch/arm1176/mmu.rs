//! The MMU: an identity map built by `jos_kcore::page_table`, then caches and branch prediction
//! on (ARM1176JZF-S TRM chapter 6 and 3.2.7).
//!
//! Sections map RAM write-back cacheable, the DMA region and framebuffer non-cacheable, and the
//! peripherals as device memory. The sections that hold the per-mode stacks are mapped page by
//! page through coarse tables so the 4 KiB guard page under each stack stays unmapped: a stack
//! overflow is a data abort, not silent corruption.

use core::cell::UnsafeCell;

use jos_kcore::page_table::{self, MemoryKind, PageTableError, Region, COARSE_ENTRIES, FIRST_LEVEL_ENTRIES};

/// The first-level table: 16 KiB aligned as TTBR0 requires.
#[repr(C, align(16384))]
struct FirstLevel([u32; FIRST_LEVEL_ENTRIES]);

/// Coarse tables: 1 KiB aligned.
#[repr(C, align(1024))]
struct Coarse([[u32; COARSE_ENTRIES]; MAX_COARSE]);

/// How many sections can be mapped page by page.
const MAX_COARSE: usize = 4;

struct Tables {
    first: UnsafeCell<FirstLevel>,
    coarse: UnsafeCell<Coarse>,
}

// SAFETY: the tables are written once, by `enable`, on the only core before the MMU reads them.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    first: UnsafeCell::new(FirstLevel([0; FIRST_LEVEL_ENTRIES])),
    coarse: UnsafeCell::new(Coarse([[0; COARSE_ENTRIES]; MAX_COARSE])),
};

/// Why the MMU was left off.
#[derive(Clone, Copy, Debug)]
pub enum MmuError {
    /// The region list was refused.
    Table(PageTableError),
    /// The guard pages span more sections than there are coarse tables.
    TooManyGuardSections,
}

/// Builds the identity map of `regions`, leaves each `[start, end)` of `guards` unmapped (its
/// section must be mapped as normal write-back memory), and turns on the MMU, the I- and
/// D-caches and branch prediction.
///
/// # Safety
/// Must be called once, from the boot path with interrupts masked. `regions` must map every
/// address the kernel touches afterwards (image, stacks, heap, DMA, peripherals, framebuffer)
/// with the same address (identity).
pub unsafe fn enable(regions: &[Region], guards: &[(usize, usize)]) -> Result<(), MmuError> {
    // SAFETY: the caller guarantees this runs once, before the MMU uses the tables, so nothing
    // else holds a reference to them.
    let (first, coarse) = unsafe { (&mut (*TABLES.first.get()).0, &mut (*TABLES.coarse.get()).0) };
    page_table::build_sections(first, regions).map_err(MmuError::Table)?;
    let mut used = 0;
    let mut sections = [usize::MAX; MAX_COARSE];
    for &(start, _) in guards {
        let section = page_table::section_index(start);
        if sections.contains(&section) {
            continue;
        }
        if used == MAX_COARSE {
            return Err(MmuError::TooManyGuardSections);
        }
        sections[used] = section;
        let base = section * page_table::SECTION_SIZE;
        page_table::build_coarse(&mut coarse[used], base, MemoryKind::NormalWriteBack, guards)
            .map_err(MmuError::Table)?;
        first[section] = page_table::coarse_descriptor(coarse[used].as_ptr() as usize);
        used += 1;
    }
    let table = first.as_ptr() as usize as u32;
    // SAFETY: the tables map the kernel's code and data at their own addresses (caller's
    // promise), so the instructions after the SCTLR write are fetched from the same place. The
    // sequence follows ARM1176 TRM 6.4: invalidate caches and TLB, set domain, TTBCR and TTBR0,
    // then enable.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {z}, c7, c7, 0",      // invalidate I and D caches
            "mcr p15, 0, {z}, c8, c7, 0",      // invalidate unified TLB
            "mcr p15, 0, {z}, c7, c10, 4",     // DSB
            "mcr p15, 0, {dacr}, c3, c0, 0",   // domain 0: client (permissions checked)
            "mcr p15, 0, {z}, c2, c0, 2",      // TTBCR: TTBR0 for the whole space
            "mcr p15, 0, {ttbr}, c2, c0, 0",   // TTBR0
            "mrc p15, 0, {tmp}, c1, c0, 0",
            "orr {tmp}, {tmp}, {set}",
            "bic {tmp}, {tmp}, {clear}",
            "mcr p15, 0, {tmp}, c1, c0, 0",
            "mcr p15, 0, {z}, c7, c5, 4",      // flush prefetch buffer
            z = in(reg) 0u32,
            dacr = in(reg) 0b01u32,
            // Inner cacheable (C, bit 0), outer write-back write-allocate (RGN = 01, bits 4:3).
            ttbr = in(reg) table | 0b1 | (0b01 << 3),
            tmp = out(reg) _,
            // M (0), C (2), Z (11), I (12), U (22: unaligned access), XP (23: ARMv6 tables).
            set = in(reg) (1u32 << 0) | (1 << 2) | (1 << 11) | (1 << 12) | (1 << 22) | (1 << 23),
            // A (1: alignment faults), V (13: high vectors).
            clear = in(reg) (1u32 << 1) | (1 << 13),
            options(nostack)
        )
    }
    Ok(())
}

/// True when the MMU is on.
pub fn enabled() -> bool {
    super::control_register() & 1 != 0
}

/// The memory kind of the section holding `address` in the live table, if mapped by a section.
pub fn section_descriptor(address: usize) -> u32 {
    // SAFETY: reading one table entry; after `enable` the table is never written again.
    unsafe { (*TABLES.first.get()).0[page_table::section_index(address)] }
}

/// Translates `address` as a privileged read would, without touching it (CP15 c7 "VA to PA
/// translation", ARM1176 TRM 3.2.22, result in the PA register c7/c4). `None` when the access
/// would abort (unmapped, e.g. a stack guard page).
pub fn translate(address: usize) -> Option<usize> {
    let result: u32;
    // SAFETY: the translation operation only writes the PA register; it never faults.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {va}, c7, c8, 0",
            "mcr p15, 0, {z}, c7, c5, 4",
            "mrc p15, 0, {pa}, c7, c4, 0",
            va = in(reg) address as u32,
            z = in(reg) 0u32,
            pa = out(reg) result,
            options(nostack, preserves_flags)
        )
    }
    if result & 1 != 0 {
        None
    } else {
        Some((result & 0xFFFF_F000) as usize | (address & 0xFFF))
    }
}

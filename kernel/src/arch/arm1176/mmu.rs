//! The MMU: an identity map built by `jos_kcore::page_table`, then caches and branch prediction
//! on (ARM1176JZF-S TRM chapter 6 and 3.2.7), and the user mapping of the one native job.
//!
//! Sections map RAM write-back cacheable, the DMA region and framebuffer non-cacheable, and the
//! peripherals as device memory, all privileged-only and never executable. The sections that
//! hold the kernel image are mapped page by page through coarse tables: code read-only and
//! executable (for the kernel too), read-only data read-only, data and stacks read/write and
//! never executable, the 4 KiB guard page under each stack unmapped (a stack overflow is a data
//! abort, not silent corruption), and the only user-reachable kernel pages: the system-call stub
//! page (read-only, executable) and the job stack (read/write, never executable).
//!
//! [`map_user`] gives one job region to user mode when a native job starts (its sections are
//! re-mapped page by page from a pool of coarse tables) and [`unmap_user`] takes it back when
//! the job ends. One job runs at a time and those two changes happen only then, not at every
//! preemption, so each is followed by a whole-TLB invalidate instead of using ASIDs
//! (docs/memory.md "User mode"). Pages of the region at or above its zeroed watermark start
//! invalid (a translation fault for user and kernel alike); [`commit_user`] maps them as the job
//! first touches them (the native service zeroes them first), invalidating only their TLB
//! entries.

use core::cell::UnsafeCell;

use jos_kcore::page_table::{
    self, Access, MemoryKind, PageTableError, Region, UserRegion, COARSE_ENTRIES, FIRST_LEVEL_ENTRIES, PAGE_SIZE,
    SECTION_SIZE,
};

/// The first-level table: 16 KiB aligned as TTBR0 requires.
#[repr(C, align(16384))]
struct FirstLevel([u32; FIRST_LEVEL_ENTRIES]);

/// One coarse table: 1 KiB aligned.
#[repr(C, align(1024))]
#[derive(Clone, Copy)]
struct Coarse([u32; COARSE_ENTRIES]);

/// How many sections of the kernel image can be mapped page by page.
const MAX_KERNEL_COARSE: usize = 8;
/// How many sections a job region may span (a 64 MiB blob, the format's largest, at any
/// alignment: 66).
pub const MAX_USER_SECTIONS: usize = 66;

struct Tables {
    first: UnsafeCell<FirstLevel>,
    kernel: UnsafeCell<[Coarse; MAX_KERNEL_COARSE]>,
    user: UnsafeCell<[Coarse; MAX_USER_SECTIONS]>,
    /// The sections the user mapping replaced: (first section, count).
    mapped: UnsafeCell<(usize, usize)>,
    /// The mapped user region (for [`commit_user`]).
    region: UnsafeCell<Option<UserRegion>>,
}

// SAFETY: one core. The tables are written by `enable` on the boot path before the MMU reads
// them, and by `map_user`/`unmap_user` from the offload task while no native code runs; the
// exception handlers only read, except `commit_user`, called with IRQs masked from the data
// abort hook or a system call of the job, both while the job is stopped.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables {
    first: UnsafeCell::new(FirstLevel([0; FIRST_LEVEL_ENTRIES])),
    kernel: UnsafeCell::new([Coarse([0; COARSE_ENTRIES]); MAX_KERNEL_COARSE]),
    user: UnsafeCell::new([Coarse([0; COARSE_ENTRIES]); MAX_USER_SECTIONS]),
    mapped: UnsafeCell::new((0, 0)),
    region: UnsafeCell::new(None),
};

/// Why the MMU was left off, or a user region was not mapped.
#[derive(Clone, Copy, Debug)]
pub enum MmuError {
    /// The region list was refused.
    Table(PageTableError),
    /// The kernel image spans more sections than there are coarse tables.
    KernelTooLarge,
    /// The user region spans more than [`MAX_USER_SECTIONS`] sections.
    UserRegionTooLarge,
    /// The user region is not in plain kernel RAM sections (the heap), or one is mapped already.
    UserRegionNotHeap,
    /// Pages to commit outside the mapped user region (or none is mapped).
    NotInUserRegion,
}

/// Builds the identity map of `regions`, maps `[0, paged_end)` page by page as `page` says (the
/// kernel image: `None` leaves a page unmapped), and turns on the MMU, the I- and D-caches and
/// branch prediction.
///
/// # Safety
/// Must be called once, from the boot path with interrupts masked. `regions` and `page` must map
/// every address the kernel touches afterwards (image, stacks, heap, DMA, peripherals,
/// framebuffer) with the same address (identity), the running code executable.
pub unsafe fn enable(
    regions: &[Region],
    paged_end: usize,
    page: impl Fn(usize) -> Option<(MemoryKind, Access)>,
) -> Result<(), MmuError> {
    // SAFETY: the caller guarantees this runs once, before the MMU uses the tables, so nothing
    // else holds a reference to them.
    let (first, kernel) = unsafe { (&mut (*TABLES.first.get()).0, &mut *TABLES.kernel.get()) };
    page_table::build_sections(first, regions).map_err(MmuError::Table)?;
    let sections = paged_end.div_ceil(SECTION_SIZE);
    if sections > MAX_KERNEL_COARSE {
        return Err(MmuError::KernelTooLarge);
    }
    for (section, table) in kernel.iter_mut().enumerate().take(sections) {
        page_table::build_pages(&mut table.0, section * SECTION_SIZE, &page).map_err(MmuError::Table)?;
        first[section] = page_table::coarse_descriptor(table.0.as_ptr() as usize);
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
            // M (0), C (2), Z (11), I (12), U (22: unaligned access), XP (23: ARMv6 tables, so
            // APX and XN apply).
            set = in(reg) (1u32 << 0) | (1 << 2) | (1 << 11) | (1 << 12) | (1 << 22) | (1 << 23),
            // A (1: alignment faults), V (13: high vectors), S and R (8, 9: the ARMv6 AP
            // encoding only).
            clear = in(reg) (1u32 << 1) | (1 << 13) | (1 << 8) | (1 << 9),
            options(nostack)
        )
    }
    Ok(())
}

/// Makes the changed table entries visible to the table walk and drops every cached
/// translation (ARM1176 TRM 6.7: clean the D-cache lines of the tables, DSB, invalidate the
/// unified TLB, flush the branch target cache and the prefetch buffer).
fn publish(ranges: &[(usize, usize)]) {
    for &(address, len) in ranges {
        super::cache::clean_dcache_range(address, len);
    }
    super::cache::data_sync_barrier();
    // SAFETY: TLB and branch-predictor invalidation only drop cached state; the tables they
    // reload map the running kernel as before.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {z}, c8, c7, 0",      // invalidate unified TLB
            "mcr p15, 0, {z}, c7, c5, 6",      // flush branch target cache
            "mcr p15, 0, {z}, c7, c10, 4",     // DSB
            "mcr p15, 0, {z}, c7, c5, 4",      // flush prefetch buffer
            z = in(reg) 0u32,
            options(nostack, preserves_flags)
        )
    }
}

/// Gives user mode the pages of `region` below `watermark` (code read-only and executable, data
/// read/write and never executable, as [`UserRegion::access`] says); its pages from `watermark`
/// on are left invalid until [`commit_user`] maps them, and the rest of its sections stays kernel
/// data. The region must lie in the heap (plain kernel RAM sections) and no other user region
/// may be mapped.
pub fn map_user(region: &UserRegion, watermark: usize) -> Result<(), MmuError> {
    if region.end <= region.start {
        return Err(MmuError::UserRegionNotHeap);
    }
    let first_section = page_table::section_index(region.start);
    let count = page_table::section_index(region.end - 1) - first_section + 1;
    if count > MAX_USER_SECTIONS {
        return Err(MmuError::UserRegionTooLarge);
    }
    // SAFETY: see `Tables`: no native code runs and no other reference to the tables is live.
    let (first, user, mapped, mapped_region) = unsafe {
        (&mut (*TABLES.first.get()).0, &mut *TABLES.user.get(), &mut *TABLES.mapped.get(), &mut *TABLES.region.get())
    };
    if mapped.1 != 0 {
        return Err(MmuError::UserRegionNotHeap);
    }
    let heap = |section: usize| {
        page_table::section_descriptor(section * SECTION_SIZE, MemoryKind::NormalWriteBack, Access::KernelData)
    };
    if (first_section..first_section + count).any(|section| first[section] != heap(section)) {
        return Err(MmuError::UserRegionNotHeap);
    }
    for (offset, table) in user.iter_mut().enumerate().take(count) {
        let base = (first_section + offset) * SECTION_SIZE;
        let page = |address: usize| match region.access(address) {
            Some(_) if address >= watermark => None,
            Some(access) => Some((MemoryKind::NormalWriteBack, access)),
            None => Some((MemoryKind::NormalWriteBack, Access::KernelData)),
        };
        page_table::build_pages(&mut table.0, base, page).map_err(MmuError::Table)?;
        first[first_section + offset] = page_table::coarse_descriptor(table.0.as_ptr() as usize);
    }
    *mapped = (first_section, count);
    *mapped_region = Some(*region);
    publish(&[
        (user.as_ptr() as usize, count * core::mem::size_of::<Coarse>()),
        (first[first_section..].as_ptr() as usize, count * 4),
    ]);
    Ok(())
}

/// Maps the pages `[from, to)` of the mapped user region (page-aligned, inside it) as
/// [`map_user`] would have without a watermark, then drops their TLB entries (ARM1176 TRM 6.7
/// and 3.2.26: clean the changed descriptors to memory, DSB, invalidate the unified TLB entry of
/// each page by MVA, DSB, flush the prefetch buffer). The caller zeroes them afterwards, before
/// the job runs again; it masks IRQs (the tables are shared with `map_user`/`unmap_user`, which
/// only the offload task calls, never during a step).
pub fn commit_user(from: usize, to: usize) -> Result<(), MmuError> {
    // SAFETY: see `Tables`: the job is stopped (in its data abort or system call) and nothing
    // else writes the tables now.
    let (user, mapped, region) = unsafe { (&mut *TABLES.user.get(), &*TABLES.mapped.get(), &*TABLES.region.get()) };
    let Some(region) = region else { return Err(MmuError::NotInUserRegion) };
    if from >= to
        || from < region.start
        || to > region.end
        || !from.is_multiple_of(PAGE_SIZE)
        || !to.is_multiple_of(PAGE_SIZE)
    {
        return Err(MmuError::NotInUserRegion);
    }
    let (first_section, count) = *mapped;
    let entry_of = |page: usize| {
        let table = page_table::section_index(page).checked_sub(first_section).filter(|&table| table < count)?;
        Some((table, (page % SECTION_SIZE) / PAGE_SIZE))
    };
    let (Some(first_entry), Some(last_entry)) = (entry_of(from), entry_of(to - PAGE_SIZE)) else {
        return Err(MmuError::NotInUserRegion);
    };
    for page in (from..to).step_by(PAGE_SIZE) {
        let (table, index) = entry_of(page).ok_or(MmuError::NotInUserRegion)?;
        let access = region.access(page).ok_or(MmuError::NotInUserRegion)?;
        user[table].0[index] = page_table::small_page_descriptor(page, MemoryKind::NormalWriteBack, access);
    }
    // The coarse tables are one array of whole 1 KiB tables: the changed entries are contiguous.
    let first_address = core::ptr::from_ref(&user[first_entry.0].0[first_entry.1]) as usize;
    let last_address = core::ptr::from_ref(&user[last_entry.0].0[last_entry.1]) as usize;
    super::cache::clean_dcache_range(first_address, last_address + 4 - first_address);
    super::cache::data_sync_barrier();
    for page in (from..to).step_by(PAGE_SIZE) {
        // SAFETY: dropping a TLB entry only drops cached state.
        unsafe {
            core::arch::asm!("mcr p15, 0, {va}, c8, c7, 1", va = in(reg) page as u32, options(nostack, preserves_flags))
        }
    }
    // SAFETY: barriers only.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {z}, c7, c10, 4",     // DSB
            "mcr p15, 0, {z}, c7, c5, 4",      // flush prefetch buffer
            z = in(reg) 0u32,
            options(nostack, preserves_flags)
        )
    }
    Ok(())
}

/// Takes the user region back: its sections are plain kernel data again. Nothing happens when
/// none is mapped.
pub fn unmap_user() {
    // SAFETY: see `Tables`.
    let (first, mapped, region) =
        unsafe { (&mut (*TABLES.first.get()).0, &mut *TABLES.mapped.get(), &mut *TABLES.region.get()) };
    let (first_section, count) = *mapped;
    if count == 0 {
        return;
    }
    *region = None;
    for (section, entry) in first.iter_mut().enumerate().skip(first_section).take(count) {
        *entry =
            page_table::section_descriptor(section * SECTION_SIZE, MemoryKind::NormalWriteBack, Access::KernelData);
    }
    *mapped = (0, 0);
    publish(&[(first[first_section..].as_ptr() as usize, count * 4)]);
}

/// True when the MMU is on.
pub fn enabled() -> bool {
    super::control_register() & 1 != 0
}

/// Translates `address` as a privileged read would, without touching it (CP15 c7 "VA to PA
/// translation", ARM1176 TRM 3.2.22, result in the PA register c7/c4). `None` when the access
/// would abort (unmapped, e.g. a stack guard page).
pub fn translate(address: usize) -> Option<usize> {
    translate_with(address, 0)
}

/// Whether a user-mode write to `address` would be allowed (CP15 c7 "VA to PA, user write",
/// operation 3).
pub fn user_writable(address: usize) -> bool {
    translate_with(address, 3).is_some()
}

/// Whether a privileged write to `address` would be allowed (operation 1).
pub fn kernel_writable(address: usize) -> bool {
    translate_with(address, 1).is_some()
}

fn translate_with(address: usize, operation: u32) -> Option<usize> {
    let result: u32;
    // SAFETY: the translation operations only write the PA register; they never fault.
    unsafe {
        match operation {
            0 => {
                core::arch::asm!("mcr p15, 0, {va}, c7, c8, 0", va = in(reg) address as u32, options(nostack, preserves_flags))
            }
            1 => {
                core::arch::asm!("mcr p15, 0, {va}, c7, c8, 1", va = in(reg) address as u32, options(nostack, preserves_flags))
            }
            _ => {
                core::arch::asm!("mcr p15, 0, {va}, c7, c8, 3", va = in(reg) address as u32, options(nostack, preserves_flags))
            }
        }
        core::arch::asm!(
            "mcr p15, 0, {z}, c7, c5, 4",
            "mrc p15, 0, {pa}, c7, c4, 0",
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

//! ARMv6 translation tables for an identity map: first-level 1 MiB section descriptors and
//! second-level ("coarse") 4 KiB small-page descriptors in the ARMv6 format (SCTLR.XP = 1,
//! subpages off). Bit layouts: ARM1176JZF-S TRM 6.11.2 (first level) and 6.12 (second level).
//!
//! Only the descriptor arithmetic lives here; the kernel places the tables and writes TTBR0.
//!
//! Permissions ([`Access`]) use the ARMv6 APX/AP encoding (TRM table 6-1) and the XN bit: the
//! kernel's code is read-only and executable, its read-only data and data never executable,
//! and only the pages given [`Access::UserCode`] / [`Access::UserData`] /
//! [`Access::UserCodeData`] are reachable from user mode at all.

/// Entries in a first-level table (4096 sections of 1 MiB cover the 4 GiB space).
pub const FIRST_LEVEL_ENTRIES: usize = 4096;
/// Entries in a coarse second-level table (256 pages of 4 KiB cover one section).
pub const COARSE_ENTRIES: usize = 256;
/// Size of a small page.
pub const PAGE_SIZE: usize = 4096;
/// Size of a section.
pub const SECTION_SIZE: usize = 0x0010_0000;

/// How a region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Normal memory, inner and outer write-back, write-allocate (TEX=001 C=1 B=1): RAM.
    NormalWriteBack,
    /// Normal memory, non-cacheable (TEX=001 C=0 B=0): DMA buffers, the framebuffer.
    NormalNonCacheable,
    /// Shared device (TEX=000 C=0 B=1), never executable: peripherals.
    Device,
    /// Strongly ordered (TEX=000 C=0 B=0), never executable.
    StronglyOrdered,
}

impl MemoryKind {
    /// (TEX, C, B) for this kind (ARM1176 TRM table 6-2).
    const fn tex_c_b(self) -> (u32, u32, u32) {
        match self {
            MemoryKind::NormalWriteBack => (0b001, 1, 1),
            MemoryKind::NormalNonCacheable => (0b001, 0, 0),
            MemoryKind::Device => (0b000, 0, 1),
            MemoryKind::StronglyOrdered => (0b000, 0, 0),
        }
    }

    /// Device and strongly-ordered memory is never executable.
    const fn execute_never(self) -> bool {
        matches!(self, MemoryKind::Device | MemoryKind::StronglyOrdered)
    }
}

/// Who may do what with a page or section (APX, AP and XN, ARM1176 TRM 6.5.1 and table 6-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Privileged read-only, executable; no user access (APX=1 AP=01): the kernel's code.
    KernelCode,
    /// Privileged read-only, never executable; no user access (APX=1 AP=01 XN): read-only data.
    KernelReadOnly,
    /// Privileged read/write, never executable; no user access (APX=0 AP=01 XN): everything else
    /// of the kernel (data, stacks, heap, DMA region, MMIO).
    KernelData,
    /// Read-only for both, executable (APX=1 AP=10): a job's code and the system-call stubs.
    UserCode,
    /// Read/write for both, never executable (APX=0 AP=11 XN): a job's data, bss and stack.
    UserData,
    /// Read/write for both and executable (APX=0 AP=11): a job page that holds both the end of
    /// its code and the start of its data (blobs are not page-aligned inside).
    UserCodeData,
}

impl Access {
    /// (APX, AP, XN) for this access.
    const fn bits(self) -> (u32, u32, u32) {
        match self {
            Access::KernelCode => (1, 0b01, 0),
            Access::KernelReadOnly => (1, 0b01, 1),
            Access::KernelData => (0, 0b01, 1),
            Access::UserCode => (1, 0b10, 0),
            Access::UserData => (0, 0b11, 1),
            Access::UserCodeData => (0, 0b11, 0),
        }
    }

    /// Whether user mode may touch the page at all.
    pub const fn user(self) -> bool {
        matches!(self, Access::UserCode | Access::UserData | Access::UserCodeData)
    }
}

/// One region of the identity map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address (section-aligned).
    pub base: usize,
    /// Length in bytes (a multiple of a section).
    pub size: usize,
    /// How it is mapped.
    pub kind: MemoryKind,
    /// Who may access it.
    pub access: Access,
}

/// Why a table could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTableError {
    /// A region's base or size is not section-aligned.
    Misaligned,
    /// A region runs past the end of the address space.
    OutOfRange,
    /// Two regions map the same section.
    Overlap,
    /// A table slice has the wrong length.
    BadTable,
}

/// A first-level section descriptor mapping the section at `base` (ARMv6 format, domain 0):
/// APX at bit 15, TEX 14:12, AP 11:10, XN bit 4, C bit 3, B bit 2.
pub const fn section_descriptor(base: usize, kind: MemoryKind, access: Access) -> u32 {
    let (tex, c, b) = kind.tex_c_b();
    let (apx, ap, xn) = access.bits();
    let xn = if kind.execute_never() { 1 } else { xn };
    (base as u32 & 0xFFF0_0000) | (apx << 15) | (tex << 12) | (ap << 10) | (xn << 4) | (c << 3) | (b << 2) | 0b10
}

/// A first-level descriptor pointing at a coarse second-level table at physical `table`
/// (1 KiB aligned), domain 0.
pub const fn coarse_descriptor(table: usize) -> u32 {
    (table as u32 & 0xFFFF_FC00) | 0b01
}

/// A second-level extended small-page descriptor for the page at `base` (ARMv6 format): APX at
/// bit 9, TEX 8:6, AP 5:4, C bit 3, B bit 2, type bit 1, XN bit 0.
pub const fn small_page_descriptor(base: usize, kind: MemoryKind, access: Access) -> u32 {
    let (tex, c, b) = kind.tex_c_b();
    let (apx, ap, xn) = access.bits();
    let xn = if kind.execute_never() { 1 } else { xn };
    (base as u32 & 0xFFFF_F000) | (apx << 9) | (tex << 6) | (ap << 4) | (c << 3) | (b << 2) | 0b10 | xn
}

/// Fills a first-level `table` (4096 entries) with an identity map of `regions`; everything
/// else is left unmapped (a translation fault on access).
pub fn build_sections(table: &mut [u32], regions: &[Region]) -> Result<(), PageTableError> {
    if table.len() != FIRST_LEVEL_ENTRIES {
        return Err(PageTableError::BadTable);
    }
    for region in regions {
        if region.base % SECTION_SIZE != 0 || region.size % SECTION_SIZE != 0 {
            return Err(PageTableError::Misaligned);
        }
        let first = region.base / SECTION_SIZE;
        let count = region.size / SECTION_SIZE;
        if first + count > FIRST_LEVEL_ENTRIES {
            return Err(PageTableError::OutOfRange);
        }
    }
    table.fill(0);
    for region in regions {
        let first = region.base / SECTION_SIZE;
        let entries = &mut table[first..first + region.size / SECTION_SIZE];
        for (offset, entry) in entries.iter_mut().enumerate() {
            if *entry != 0 {
                return Err(PageTableError::Overlap);
            }
            *entry = section_descriptor((first + offset) * SECTION_SIZE, region.kind, region.access);
        }
    }
    Ok(())
}

/// Fills a coarse `table` (256 entries) that maps the section at `section_base` page by page:
/// `page(address)` gives each page's kind and access, or `None` to leave it unmapped (guard
/// pages, the null page). Returns the number of unmapped pages.
pub fn build_pages(
    table: &mut [u32],
    section_base: usize,
    page: impl Fn(usize) -> Option<(MemoryKind, Access)>,
) -> Result<usize, PageTableError> {
    if table.len() != COARSE_ENTRIES {
        return Err(PageTableError::BadTable);
    }
    if !section_base.is_multiple_of(SECTION_SIZE) {
        return Err(PageTableError::Misaligned);
    }
    let mut unmapped = 0;
    for (index, entry) in table.iter_mut().enumerate() {
        let address = section_base + index * PAGE_SIZE;
        *entry = match page(address) {
            Some((kind, access)) => small_page_descriptor(address, kind, access),
            None => {
                unmapped += 1;
                0
            }
        };
    }
    Ok(unmapped)
}

/// The pages a job may use, `[start, end)` page-aligned: its code pages `[start, code_end)`
/// (readable and executable from user mode) and data pages `[data_start, end)` (readable and
/// writable, never executable); a page in both is both, a page in neither (read-only data) is a
/// data page. [`UserRegion::access`] gives each page's
/// permission, `None` outside the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRegion {
    /// First byte (page-aligned).
    pub start: usize,
    /// End of the code (exclusive; rounded up to a page by [`UserRegion::access`]).
    pub code_end: usize,
    /// Start of the writable data (rounded down to a page by [`UserRegion::access`]).
    pub data_start: usize,
    /// End (exclusive, page-aligned).
    pub end: usize,
}

impl UserRegion {
    /// The permission of the page at `page` (page-aligned), `None` outside the region.
    pub fn access(&self, page: usize) -> Option<Access> {
        if page < self.start || page >= self.end {
            return None;
        }
        let code = page < self.code_end;
        let data = page + PAGE_SIZE > self.data_start;
        Some(match (code, data) {
            (true, true) => Access::UserCodeData,
            (true, false) => Access::UserCode,
            // A page of neither (read-only data between the code and the data) is mapped as
            // data: never executable.
            (false, _) => Access::UserData,
        })
    }
}

/// Bytes of a job's region one first touch commits (zeroes and maps) beyond the watermark: a
/// page fault costs a few microseconds, zeroing 64 KiB a few tens, and the interrupts wait for
/// at most one step.
pub const COMMIT_CHUNK: usize = 64 * 1024;

/// The first zeroed watermark of a job's region `[start, end)` whose first `loaded` bytes the
/// loader wrote (image, then zeros): the end of the page holding the last of them, at most
/// `end`. Pages from there on are not mapped until the job (or the kernel on its behalf)
/// touches them ([`commit_step`]).
pub fn first_watermark(start: usize, loaded: usize, end: usize) -> usize {
    let written = start.saturating_add(loaded).min(end);
    written.checked_next_multiple_of(PAGE_SIZE).unwrap_or(end).min(end)
}

/// One step of committing a job's region on demand: `address` lies at or above the zeroed
/// `watermark` and below the region's `end`, so the pages `[watermark, new)` are to be zeroed
/// and mapped, with `new` the watermark plus `chunk` bytes (whole pages), at most `end`. `None`
/// when `address` needs nothing (below the watermark) or is not the region's (at or past its end).
/// A step may stop short of `address`: the caller repeats until it is covered (a retried access
/// faults again), so one step zeroes at most `chunk` bytes.
pub fn commit_step(watermark: usize, end: usize, address: usize, chunk: usize) -> Option<(usize, usize)> {
    if address < watermark || address >= end {
        return None;
    }
    let chunk = chunk.max(PAGE_SIZE).next_multiple_of(PAGE_SIZE);
    Some((watermark, watermark.saturating_add(chunk).min(end)))
}

/// The first-level index (section number) of `address`.
pub const fn section_index(address: usize) -> usize {
    address / SECTION_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_descriptor_bits() {
        use Access::*;
        // Normal WB kernel data: TEX=001 (bit 12), AP=01 (bit 10), XN (bit 4), C (bit 3), B (bit 2),
        // type 0b10.
        assert_eq!(section_descriptor(0x0000_0000, MemoryKind::NormalWriteBack, KernelData), 0x0000_141E);
        // Device: TEX=000, AP=01, XN, B.
        assert_eq!(section_descriptor(0x2000_0000, MemoryKind::Device, KernelData), 0x2000_0416);
        // Device stays XN whatever the access says.
        assert_eq!(section_descriptor(0x2000_0000, MemoryKind::Device, KernelCode) & (1 << 4), 1 << 4);
        assert_eq!(section_descriptor(0x0100_0000, MemoryKind::NormalNonCacheable, KernelData), 0x0100_1412);
        assert_eq!(section_descriptor(0x0123_4567, MemoryKind::StronglyOrdered, KernelData), 0x0120_0412);
        // Kernel code: APX (bit 15), AP=01, executable.
        assert_eq!(section_descriptor(0, MemoryKind::NormalWriteBack, KernelCode), 0x0000_940E);
    }

    #[test]
    fn page_descriptor_bits() {
        use Access::*;
        // TEX=001 at bits 8:6, AP at 5:4, APX bit 9, C, B, type bit 1, XN bit 0.
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, KernelCode), 0x0000_825E);
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, KernelReadOnly), 0x0000_825F);
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, KernelData), 0x0000_805F);
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, UserCode), 0x0000_826E);
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, UserData), 0x0000_807F);
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack, UserCodeData), 0x0000_807E);
        assert_eq!(small_page_descriptor(0x2020_1000, MemoryKind::Device, KernelData), 0x2020_1017);
        assert_eq!(coarse_descriptor(0x0004_0400), 0x0004_0401);
        assert!(UserData.user() && UserCode.user() && !KernelData.user() && !KernelCode.user());
    }

    #[test]
    fn identity_map() {
        let mut table = vec![0xFFFF_FFFFu32; FIRST_LEVEL_ENTRIES];
        let regions = [
            Region { base: 0, size: 0x0100_0000, kind: MemoryKind::NormalWriteBack, access: Access::KernelData },
            Region {
                base: 0x0100_0000,
                size: 0x0020_0000,
                kind: MemoryKind::NormalNonCacheable,
                access: Access::KernelData,
            },
            Region { base: 0x2000_0000, size: 0x0100_0000, kind: MemoryKind::Device, access: Access::KernelData },
        ];
        build_sections(&mut table, &regions).unwrap();
        assert_eq!(table[0] & 0xFFF0_0000, 0);
        assert_eq!(table[0xF], section_descriptor(0x00F0_0000, MemoryKind::NormalWriteBack, Access::KernelData));
        assert_eq!(table[0x10], section_descriptor(0x0100_0000, MemoryKind::NormalNonCacheable, Access::KernelData));
        assert_eq!(table[0x12], 0, "past the DMA region nothing is mapped");
        assert_eq!(table[0x200], section_descriptor(0x2000_0000, MemoryKind::Device, Access::KernelData));
        assert_eq!(table[0x20F] & 0xFFF0_0000, 0x20F0_0000);
        assert_eq!(table[0x210], 0);
        assert_eq!(table.iter().filter(|&&d| d != 0).count(), 16 + 2 + 16);
    }

    #[test]
    fn refuses_bad_regions() {
        let mut table = vec![0u32; FIRST_LEVEL_ENTRIES];
        let region = |base, size| Region { base, size, kind: MemoryKind::Device, access: Access::KernelData };
        let misaligned = [region(0x1000, SECTION_SIZE)];
        assert_eq!(build_sections(&mut table, &misaligned), Err(PageTableError::Misaligned));
        let too_far = [region(0xFFF0_0000, 2 * SECTION_SIZE)];
        assert_eq!(build_sections(&mut table, &too_far), Err(PageTableError::OutOfRange));
        let overlap = [region(0, 2 * SECTION_SIZE), region(SECTION_SIZE, SECTION_SIZE)];
        assert_eq!(build_sections(&mut table, &overlap), Err(PageTableError::Overlap));
        assert_eq!(build_sections(&mut table[..10], &[]), Err(PageTableError::BadTable));
    }

    #[test]
    fn coarse_table_with_guard_pages() {
        let mut table = vec![0u32; COARSE_ENTRIES];
        // Two guard pages: one exact page, one range that straddles two pages.
        let holes = [(0x0010_2000, 0x0010_3000), (0x0010_4800, 0x0010_5800)];
        let page = |address: usize| {
            let hole = holes.iter().any(|&(start, end)| address < end && start < address + PAGE_SIZE);
            (!hole).then_some((MemoryKind::NormalWriteBack, Access::KernelData))
        };
        let unmapped = build_pages(&mut table, 0x0010_0000, page).unwrap();
        assert_eq!(unmapped, 3);
        assert_eq!(table[1], small_page_descriptor(0x0010_1000, MemoryKind::NormalWriteBack, Access::KernelData));
        assert_eq!(table[2], 0);
        assert_eq!(table[3] & 0xFFFF_F000, 0x0010_3000);
        assert_eq!(table[4], 0);
        assert_eq!(table[5], 0);
        assert_eq!(table[6] & 0xFFFF_F000, 0x0010_6000);
        assert_eq!(build_pages(&mut table, 0x1000, page), Err(PageTableError::Misaligned));
    }

    #[test]
    fn first_watermark_is_the_end_of_the_loaded_page() {
        // An image ending mid-page: that page was zeroed to its end by the loader.
        assert_eq!(first_watermark(0x10_0000, 0x1234, 0x20_0000), 0x10_2000);
        // Ending on a page boundary: nothing more.
        assert_eq!(first_watermark(0x10_0000, 0x2000, 0x20_0000), 0x10_2000);
        // A region smaller than a page past the image, and loaded bytes past the end: clamped.
        assert_eq!(first_watermark(0x10_0000, 0x1234, 0x10_1000), 0x10_1000);
        assert_eq!(first_watermark(0x10_0000, 0x9999_9999, 0x10_3000), 0x10_3000);
        // Nothing loaded: the watermark is the start.
        assert_eq!(first_watermark(0x10_0000, 0, 0x10_3000), 0x10_0000);
        // At the top of the address space: no overflow.
        assert_eq!(first_watermark(usize::MAX - 0x2fff, 0x10, usize::MAX - 0xfff), usize::MAX - 0x1fff);
        assert_eq!(first_watermark(usize::MAX - 0xfff, 0x10, usize::MAX), usize::MAX);
    }

    #[test]
    fn commit_steps_cover_the_touched_page_chunk_by_chunk() {
        let end = 0x10_0000 + 15 * 0x10_0000;
        // Below the watermark, at or past the end: nothing to do.
        assert_eq!(commit_step(0x10_4000, end, 0x10_3fff, COMMIT_CHUNK), None);
        assert_eq!(commit_step(0x10_4000, end, end, COMMIT_CHUNK), None);
        assert_eq!(commit_step(0x10_4000, end, usize::MAX, COMMIT_CHUNK), None);
        // At the watermark and a little above: one chunk.
        assert_eq!(commit_step(0x10_4000, end, 0x10_4000, COMMIT_CHUNK), Some((0x10_4000, 0x11_4000)));
        assert_eq!(commit_step(0x10_4000, end, 0x11_3fff, COMMIT_CHUNK), Some((0x10_4000, 0x11_4000)));
        // Far above: steps of one chunk until the address is covered, ending exactly at the end.
        let mut watermark = 0x10_4000;
        let mut steps = 0;
        while let Some((from, to)) = commit_step(watermark, end, end - 1, COMMIT_CHUNK) {
            assert_eq!(from, watermark);
            assert!(to > from && to - from <= COMMIT_CHUNK && to % PAGE_SIZE == 0);
            watermark = to;
            steps += 1;
        }
        assert_eq!(watermark, end);
        assert_eq!(steps, (end - 0x10_4000).div_ceil(COMMIT_CHUNK));
        // The last step is clamped to the end; a chunk below a page is a page.
        assert_eq!(commit_step(end - 0x1000, end, end - 1, COMMIT_CHUNK), Some((end - 0x1000, end)));
        assert_eq!(commit_step(0x10_4000, end, 0x10_4000, 1), Some((0x10_4000, 0x10_5000)));
        // At the top of the address space: clamped, no overflow.
        let top = usize::MAX - 0xfff;
        assert_eq!(commit_step(top - 0x1000, top, top - 1, COMMIT_CHUNK), Some((top - 0x1000, top)));
        assert_eq!(commit_step(top - 0x1000, top, top, COMMIT_CHUNK), None);
    }

    #[test]
    fn user_region_pages() {
        // Code ends mid-page 0x3000, data starts in that page: that page is both; pages before
        // are code only, after are data only; outside the region nothing.
        let region = UserRegion { start: 0x1000, code_end: 0x3800, data_start: 0x3900, end: 0x6000 };
        assert_eq!(region.access(0x0000), None);
        assert_eq!(region.access(0x1000), Some(Access::UserCode));
        assert_eq!(region.access(0x2000), Some(Access::UserCode));
        assert_eq!(region.access(0x3000), Some(Access::UserCodeData));
        assert_eq!(region.access(0x4000), Some(Access::UserData));
        assert_eq!(region.access(0x5000), Some(Access::UserData));
        assert_eq!(region.access(0x6000), None);
        // Page-aligned data: no page is both; read-only data in a page of its own is data.
        let aligned = UserRegion { start: 0x1000, code_end: 0x2800, data_start: 0x4000, end: 0x5000 };
        assert_eq!(aligned.access(0x1000), Some(Access::UserCode));
        assert_eq!(aligned.access(0x2000), Some(Access::UserCode));
        assert_eq!(aligned.access(0x3000), Some(Access::UserData));
        assert_eq!(aligned.access(0x4000), Some(Access::UserData));
    }
}

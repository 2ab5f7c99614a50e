//! ARMv6 translation tables for an identity map: first-level 1 MiB section descriptors and
//! second-level ("coarse") 4 KiB small-page descriptors in the ARMv6 format (SCTLR.XP = 1,
//! subpages off). Bit layouts: ARM1176JZF-S TRM 6.11.2 (first level) and 6.12 (second level).
//!
//! Only the descriptor arithmetic lives here; the kernel places the tables and writes TTBR0.

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

/// One region of the identity map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address (section-aligned).
    pub base: usize,
    /// Length in bytes (a multiple of a section).
    pub size: usize,
    /// How it is mapped.
    pub kind: MemoryKind,
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

/// Access permissions: AP = 0b11, APX = 0: privileged and user read/write (TRM table 6-1).
const AP_FULL: u32 = 0b11;

/// A first-level section descriptor mapping the section at `base` (ARMv6 format, domain 0).
pub const fn section_descriptor(base: usize, kind: MemoryKind) -> u32 {
    let (tex, c, b) = kind.tex_c_b();
    let xn = if kind.execute_never() { 1 } else { 0 };
    (base as u32 & 0xFFF0_0000) | (tex << 12) | (AP_FULL << 10) | (xn << 4) | (c << 3) | (b << 2) | 0b10
}

/// A first-level descriptor pointing at a coarse second-level table at physical `table`
/// (1 KiB aligned), domain 0.
pub const fn coarse_descriptor(table: usize) -> u32 {
    (table as u32 & 0xFFFF_FC00) | 0b01
}

/// A second-level extended small-page descriptor for the page at `base` (ARMv6 format).
pub const fn small_page_descriptor(base: usize, kind: MemoryKind) -> u32 {
    let (tex, c, b) = kind.tex_c_b();
    let xn = if kind.execute_never() { 1 } else { 0 };
    (base as u32 & 0xFFFF_F000) | (tex << 6) | (AP_FULL << 4) | (c << 3) | (b << 2) | 0b10 | xn
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
            *entry = section_descriptor((first + offset) * SECTION_SIZE, region.kind);
        }
    }
    Ok(())
}

/// Fills a coarse `table` (256 entries) that maps the section at `section_base` page by page as
/// `kind`, except the pages that overlap any `[start, end)` in `holes` (guard pages), which stay
/// unmapped. Returns the number of unmapped pages.
pub fn build_coarse(
    table: &mut [u32],
    section_base: usize,
    kind: MemoryKind,
    holes: &[(usize, usize)],
) -> Result<usize, PageTableError> {
    if table.len() != COARSE_ENTRIES {
        return Err(PageTableError::BadTable);
    }
    if !section_base.is_multiple_of(SECTION_SIZE) {
        return Err(PageTableError::Misaligned);
    }
    let mut unmapped = 0;
    for (index, entry) in table.iter_mut().enumerate() {
        let page = section_base + index * PAGE_SIZE;
        let in_hole = holes.iter().any(|&(start, end)| page < end && start < page + PAGE_SIZE);
        if in_hole {
            *entry = 0;
            unmapped += 1;
        } else {
            *entry = small_page_descriptor(page, kind);
        }
    }
    Ok(unmapped)
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
        // Normal WB: TEX=001 (bit 12), AP=11 (bits 11:10), C (bit 3), B (bit 2), type 0b10.
        assert_eq!(section_descriptor(0x0000_0000, MemoryKind::NormalWriteBack), 0x0000_1C0E);
        // Device: TEX=000, AP=11, XN (bit 4), B.
        assert_eq!(section_descriptor(0x2000_0000, MemoryKind::Device), 0x2000_0C16);
        assert_eq!(section_descriptor(0x0100_0000, MemoryKind::NormalNonCacheable), 0x0100_1C02);
        assert_eq!(section_descriptor(0x0123_4567, MemoryKind::StronglyOrdered), 0x0120_0C12);
    }

    #[test]
    fn page_descriptor_bits() {
        // TEX=001 at bits 8:6, AP=11 at 5:4, C, B, type bit 1.
        assert_eq!(small_page_descriptor(0x0000_8000, MemoryKind::NormalWriteBack), 0x0000_807E);
        assert_eq!(small_page_descriptor(0x2020_1000, MemoryKind::Device), 0x2020_1037);
        assert_eq!(coarse_descriptor(0x0004_0400), 0x0004_0401);
    }

    #[test]
    fn identity_map() {
        let mut table = vec![0xFFFF_FFFFu32; FIRST_LEVEL_ENTRIES];
        let regions = [
            Region { base: 0, size: 0x0100_0000, kind: MemoryKind::NormalWriteBack },
            Region { base: 0x0100_0000, size: 0x0020_0000, kind: MemoryKind::NormalNonCacheable },
            Region { base: 0x2000_0000, size: 0x0100_0000, kind: MemoryKind::Device },
        ];
        build_sections(&mut table, &regions).unwrap();
        assert_eq!(table[0] & 0xFFF0_0000, 0);
        assert_eq!(table[0xF], section_descriptor(0x00F0_0000, MemoryKind::NormalWriteBack));
        assert_eq!(table[0x10], section_descriptor(0x0100_0000, MemoryKind::NormalNonCacheable));
        assert_eq!(table[0x12], 0, "past the DMA region nothing is mapped");
        assert_eq!(table[0x200], section_descriptor(0x2000_0000, MemoryKind::Device));
        assert_eq!(table[0x20F] & 0xFFF0_0000, 0x20F0_0000);
        assert_eq!(table[0x210], 0);
        assert_eq!(table.iter().filter(|&&d| d != 0).count(), 16 + 2 + 16);
    }

    #[test]
    fn refuses_bad_regions() {
        let mut table = vec![0u32; FIRST_LEVEL_ENTRIES];
        let misaligned = [Region { base: 0x1000, size: SECTION_SIZE, kind: MemoryKind::Device }];
        assert_eq!(build_sections(&mut table, &misaligned), Err(PageTableError::Misaligned));
        let too_far = [Region { base: 0xFFF0_0000, size: 2 * SECTION_SIZE, kind: MemoryKind::Device }];
        assert_eq!(build_sections(&mut table, &too_far), Err(PageTableError::OutOfRange));
        let overlap = [
            Region { base: 0, size: 2 * SECTION_SIZE, kind: MemoryKind::Device },
            Region { base: SECTION_SIZE, size: SECTION_SIZE, kind: MemoryKind::Device },
        ];
        assert_eq!(build_sections(&mut table, &overlap), Err(PageTableError::Overlap));
        assert_eq!(build_sections(&mut table[..10], &[]), Err(PageTableError::BadTable));
    }

    #[test]
    fn coarse_table_with_guard_pages() {
        let mut table = vec![0u32; COARSE_ENTRIES];
        // Two guard pages: one exact page, one range that straddles two pages.
        let holes = [(0x0010_2000, 0x0010_3000), (0x0010_4800, 0x0010_5800)];
        let unmapped = build_coarse(&mut table, 0x0010_0000, MemoryKind::NormalWriteBack, &holes).unwrap();
        assert_eq!(unmapped, 3);
        assert_eq!(table[1], small_page_descriptor(0x0010_1000, MemoryKind::NormalWriteBack));
        assert_eq!(table[2], 0);
        assert_eq!(table[3] & 0xFFFF_F000, 0x0010_3000);
        assert_eq!(table[4], 0);
        assert_eq!(table[5], 0);
        assert_eq!(table[6] & 0xFFFF_F000, 0x0010_6000);
        assert_eq!(build_coarse(&mut table, 0x1000, MemoryKind::Device, &[]), Err(PageTableError::Misaligned));
    }
}

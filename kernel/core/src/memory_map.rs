//! The physical memory map of jos on the BCM2835 (identity-mapped), and the address arithmetic
//! the kernel does on it. docs/memory.md describes the same map in prose.

/// Where the loader puts the kernel image (QEMU `-kernel` ELF and the Pi firmware's kernel.img).
pub const KERNEL_LOAD: usize = 0x0000_8000;
/// The kernel image, its stacks and page tables must end below this address.
pub const KERNEL_LIMIT: usize = DMA_BASE;
/// Start of the non-cacheable region for buffers that a VideoCore-side master (mailbox, DWC2
/// USB DMA) reads or writes.
pub const DMA_BASE: usize = 0x0100_0000;
/// Size of the DMA region: 2 MiB, two 1 MiB sections.
pub const DMA_SIZE: usize = 0x0020_0000;
/// Start of the boot configuration window (filled by QEMU's generic loader or `initramfs` in
/// `config.txt`; parsed by the offload service).
pub const BOOT_CONFIG_BASE: usize = 0x01F0_0000;
/// Size of the boot configuration window.
pub const BOOT_CONFIG_SIZE: usize = 0x0010_0000;
/// The kernel heap starts here and runs to the end of the ARM's memory.
pub const HEAP_BASE: usize = 0x0200_0000;
/// Base of the peripheral window as the ARM sees it (BCM2835 ARM Peripherals, 1.2.3).
pub const PERIPHERAL_BASE: usize = 0x2000_0000;
/// Size of the peripheral window.
pub const PERIPHERAL_SIZE: usize = 0x0100_0000;
/// One MMU section (ARM1176 TRM 6.11: 1 MiB sections).
pub const SECTION_SIZE: usize = 0x0010_0000;
/// The smallest ARM memory the kernel accepts (the map above needs 32 MiB plus some heap).
pub const MIN_ARM_MEMORY: usize = HEAP_BASE + 0x0040_0000;
/// The bus-address alias through which VideoCore-side masters see ARM memory uncached
/// (BCM2835 ARM Peripherals 1.2.4: "0xC0000000 ... L2 cache disabled").
pub const BUS_UNCACHED_ALIAS: u32 = 0xC000_0000;

// The fixed regions are in order, section-aligned and do not overlap (checked when compiling).
const _: () = {
    assert!(KERNEL_LOAD < DMA_BASE);
    assert!(DMA_BASE + DMA_SIZE <= BOOT_CONFIG_BASE);
    assert!(BOOT_CONFIG_BASE + BOOT_CONFIG_SIZE <= HEAP_BASE);
    assert!(DMA_BASE.is_multiple_of(SECTION_SIZE) && DMA_SIZE.is_multiple_of(SECTION_SIZE));
    assert!(BOOT_CONFIG_BASE.is_multiple_of(SECTION_SIZE) && HEAP_BASE.is_multiple_of(SECTION_SIZE));
};

/// Why a memory layout was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The ARM memory the firmware reports does not start at 0.
    MemoryNotAtZero,
    /// The ARM memory is smaller than [`MIN_ARM_MEMORY`].
    MemoryTooSmall,
    /// The kernel image (with stacks) reaches into the DMA region.
    KernelTooLarge,
}

/// Rounds `value` up to a multiple of `align` (a power of two); `None` on overflow.
pub const fn align_up(value: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    match value.checked_add(align - 1) {
        Some(sum) => Some(sum & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` down to a multiple of `align` (a power of two).
pub const fn align_down(value: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    value & !(align - 1)
}

/// The address a VideoCore-side DMA master (mailbox, DWC2) uses for the ARM physical address
/// `physical`: the uncached alias `0xC000_0000 | physical`. QEMU's BCM2835 maps RAM at all four
/// bus aliases (0x0, 0x4000_0000, 0x8000_0000, 0xC000_0000), so the same value works there.
pub const fn bus_address(physical: usize) -> u32 {
    BUS_UNCACHED_ALIAS | (physical as u32 & 0x3FFF_FFFF)
}

/// The ARM physical address for a bus address the VideoCore hands out (framebuffer pointer):
/// drop the alias bits.
pub const fn physical_from_bus(bus: u32) -> usize {
    (bus & 0x3FFF_FFFF) as usize
}

/// The heap range `[start, end)` for the ARM memory `(base, size)` the mailbox reports and the
/// kernel image's end address.
pub fn heap_range(arm_base: usize, arm_size: usize, kernel_end: usize) -> Result<(usize, usize), LayoutError> {
    if arm_base != 0 {
        return Err(LayoutError::MemoryNotAtZero);
    }
    if kernel_end > KERNEL_LIMIT {
        return Err(LayoutError::KernelTooLarge);
    }
    if arm_size < MIN_ARM_MEMORY {
        return Err(LayoutError::MemoryTooSmall);
    }
    Ok((HEAP_BASE, align_down(arm_size, SECTION_SIZE)))
}

/// True when `[address, address + len)` lies inside the DMA region.
pub fn in_dma_region(address: usize, len: usize) -> bool {
    address >= DMA_BASE && address.checked_add(len).is_some_and(|end| end <= DMA_BASE + DMA_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment() {
        assert_eq!(align_up(0, 16), Some(0));
        assert_eq!(align_up(1, 16), Some(16));
        assert_eq!(align_up(16, 16), Some(16));
        assert_eq!(align_up(usize::MAX, 16), None);
        assert_eq!(align_down(0x0012_3456, SECTION_SIZE), 0x0010_0000);
    }

    #[test]
    fn bus_addresses() {
        assert_eq!(bus_address(0x0100_0000), 0xC100_0000);
        assert_eq!(bus_address(0xC100_0000), 0xC100_0000);
        assert_eq!(physical_from_bus(0xDC00_0000), 0x1C00_0000);
        assert_eq!(physical_from_bus(0x5C00_0000), 0x1C00_0000);
        assert_eq!(physical_from_bus(0x1C00_0000), 0x1C00_0000);
    }

    #[test]
    fn heap_from_reported_memory() {
        // QEMU raspi0: 512 MiB minus 64 MiB of VideoCore memory.
        assert_eq!(heap_range(0, 0x1C00_0000, 0x0010_0000), Ok((HEAP_BASE, 0x1C00_0000)));
        // An unaligned report is rounded down to a section.
        assert_eq!(heap_range(0, 0x1C00_0123, 0x0010_0000), Ok((HEAP_BASE, 0x1C00_0000)));
        assert_eq!(heap_range(0x1000, 0x1C00_0000, 0x0010_0000), Err(LayoutError::MemoryNotAtZero));
        assert_eq!(heap_range(0, 0x0100_0000, 0x0010_0000), Err(LayoutError::MemoryTooSmall));
        assert_eq!(heap_range(0, 0x1C00_0000, DMA_BASE + 1), Err(LayoutError::KernelTooLarge));
    }

    #[test]
    fn dma_region_membership() {
        assert!(in_dma_region(DMA_BASE, 16));
        assert!(in_dma_region(DMA_BASE + DMA_SIZE - 16, 16));
        assert!(!in_dma_region(DMA_BASE + DMA_SIZE - 15, 16));
        assert!(!in_dma_region(DMA_BASE - 1, 1));
        assert!(!in_dma_region(usize::MAX, 2));
    }
}

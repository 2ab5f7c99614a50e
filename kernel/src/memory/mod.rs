//! Memory management: the non-cacheable DMA region and the kernel heap. The map itself is in
//! `jos_kcore::memory_map` (and docs/memory.md).

pub mod dma;
pub mod heap;
pub mod layout;

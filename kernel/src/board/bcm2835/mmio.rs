//! A typed handle on a memory-mapped register block.

use core::marker::PhantomData;
use core::ops::Deref;

/// A register block of type `T` at a fixed physical address (identity-mapped).
pub struct Mmio<T> {
    base: usize,
    phantom: PhantomData<fn() -> T>,
}

impl<T> Mmio<T> {
    /// Creates a handle on the block at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a register block laid out as `T`, mapped as device memory for
    /// the life of the kernel.
    pub const unsafe fn new(base: usize) -> Self {
        Self { base, phantom: PhantomData }
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new`'s caller promised a live, correctly laid out block at `base`; tock-registers
        // types only allow volatile access through `&self`.
        unsafe { &*(self.base as *const T) }
    }
}

// SAFETY: the handle holds only an address; the registers are accessed with volatile operations,
// and the kernel is single-core, so sharing the handle between the main loop and interrupt
// handlers cannot produce a data race on Rust memory.
unsafe impl<T> Sync for Mmio<T> {}

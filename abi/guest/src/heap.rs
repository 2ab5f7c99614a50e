//! A bump allocator over a static arena, for guests that want `alloc` (feature `alloc`).
//!
//! ```text
//! #[global_allocator]
//! static HEAP: jos_guest::BumpAllocator<{ 256 * 1024 }> = jos_guest::BumpAllocator::new();
//! ```
//! Memory is never reused except when the last allocation is freed; jobs are short.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A bump allocator with an `N`-byte arena.
#[derive(Debug)]
pub struct BumpAllocator<const N: usize> {
    arena: UnsafeCell<[u8; N]>,
    next: AtomicUsize,
}

// SAFETY: a job has one thread; `next` is only read and written by it.
unsafe impl<const N: usize> Sync for BumpAllocator<N> {}

impl<const N: usize> BumpAllocator<N> {
    /// An empty allocator.
    pub const fn new() -> Self {
        Self { arena: UnsafeCell::new([0; N]), next: AtomicUsize::new(0) }
    }

    /// Bytes handed out so far (including alignment padding).
    pub fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

impl<const N: usize> Default for BumpAllocator<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: blocks are disjoint ranges of the arena, aligned as asked, and never handed out twice
// while live.
unsafe impl<const N: usize> GlobalAlloc for BumpAllocator<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.get().cast::<u8>();
        let next = self.next.load(Ordering::Relaxed);
        let address = base as usize + next;
        let aligned = match address.checked_next_multiple_of(layout.align()) {
            Some(aligned) => aligned,
            None => return core::ptr::null_mut(),
        };
        let start = aligned - base as usize;
        match start.checked_add(layout.size()) {
            Some(end) if end <= N => {
                self.next.store(end, Ordering::Relaxed);
                // SAFETY: `start + size <= N`, so the block lies inside the arena.
                unsafe { base.add(start) }
            }
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let base = self.arena.get().cast::<u8>() as usize;
        let start = pointer as usize - base;
        // Free the block only when it is the last one handed out.
        if start + layout.size() == self.next.load(Ordering::Relaxed) {
            self.next.store(start, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use core::alloc::{GlobalAlloc, Layout};

    use super::BumpAllocator;

    #[test]
    fn allocations_are_aligned_disjoint_and_bounded() {
        let heap = BumpAllocator::<64>::new();
        let one = Layout::from_size_align(3, 1).unwrap();
        let eight = Layout::from_size_align(8, 8).unwrap();
        // SAFETY: layouts are non-zero in size; blocks are freed with their own layout.
        unsafe {
            let a = heap.alloc(one);
            let b = heap.alloc(eight);
            assert!(!a.is_null() && !b.is_null());
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            assert!(heap.alloc(Layout::from_size_align(64, 1).unwrap()).is_null(), "past the arena");
            let used = heap.used();
            heap.dealloc(a, one); // not the last block: kept
            assert_eq!(heap.used(), used);
            heap.dealloc(b, eight); // the last block: freed
            assert!(heap.used() < used);
            let c = heap.alloc(eight);
            assert_eq!(c, b, "the freed block is reused");
        }
    }
}

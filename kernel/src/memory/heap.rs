//! The kernel heap: `linked_list_allocator` over the RAM above `HEAP_BASE` (0x0200_0000) up to
//! the end of the ARM's memory as the mailbox reports it, with usage counters. A failed
//! allocation is counted and logged before Rust's allocation-error path panics with the size,
//! so it is always reported, never a silent hang.
//!
//! Jobs never get the last [`RESERVE`] bytes: [`JOB_HEAP`] is the meter the wasm sandbox and the
//! native loader check before they let a job's memory grow or compile a module (the
//! allocations that fail gracefully), so that the kernel's own allocations (which would panic)
//! always find memory.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;

use jos_kcore::heap_stats::HeapStats;
use jos_runtime::host::HeapMeter;
use linked_list_allocator::Heap;

use crate::sync::IrqLock;

/// When set, failures are counted but not logged (the self-test provokes one on purpose).
static QUIET_FAILURES: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Counts (without logging) the failures of the allocations `f` makes: for the self-test.
pub fn with_quiet_failures<R>(f: impl FnOnce() -> R) -> R {
    QUIET_FAILURES.store(true, core::sync::atomic::Ordering::Relaxed);
    let result = f();
    QUIET_FAILURES.store(false, core::sync::atomic::Ordering::Relaxed);
    result
}

/// The global allocator: a heap plus its counters behind an interrupt-safe lock.
pub struct KernelHeap {
    inner: IrqLock<(Heap, HeapStats)>,
}

/// The kernel's heap.
#[global_allocator]
pub static HEAP: KernelHeap = KernelHeap { inner: IrqLock::new((Heap::empty(), HeapStats::new(0))) };

impl KernelHeap {
    /// Gives the heap the memory `[start, start + size)`.
    ///
    /// # Safety
    /// Called once; the range must be mapped, unused by anything else, for the kernel's life.
    pub unsafe fn init(&self, start: usize, size: usize) {
        self.inner.lock(|(heap, stats)| {
            // SAFETY: the caller gives us exclusive use of the range.
            unsafe { heap.init(start as *mut u8, size) };
            *stats = HeapStats::new(heap.size());
        });
    }

    /// A copy of the counters.
    pub fn stats(&self) -> HeapStats {
        self.inner.try_lock(|(_, stats)| *stats).unwrap_or_default()
    }
}

/// Heap bytes jobs and the modules they run never take: what the kernel keeps for the network,
/// sessions and their push buffers, job results and logs (docs/security.md "Resource limits:
/// jobs").
pub const RESERVE: usize = 16 << 20;

/// The heap as jobs see it: free bytes minus [`RESERVE`].
pub struct JobHeap;

/// The meter handed to the wasm sandbox and used by the native loader.
pub static JOB_HEAP: JobHeap = JobHeap;

impl HeapMeter for JobHeap {
    fn available(&self) -> usize {
        HEAP.stats().free().saturating_sub(RESERVE)
    }

    fn used(&self) -> usize {
        HEAP.stats().used
    }
}

// SAFETY: allocation and deallocation go through `linked_list_allocator::Heap`, which returns
// blocks that satisfy `layout` and do not overlap; the lock serialises all access.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let result = self.inner.lock(|(heap, stats)| match heap.allocate_first_fit(layout) {
            Ok(block) => {
                stats.allocated(layout.size());
                Ok(block.as_ptr())
            }
            Err(()) => {
                stats.failed(layout.size());
                Err(*stats)
            }
        });
        match result {
            Ok(pointer) => pointer,
            Err(_) if QUIET_FAILURES.load(core::sync::atomic::Ordering::Relaxed) => core::ptr::null_mut(),
            Err(stats) => {
                crate::error!(
                    "heap: cannot allocate {} bytes (align {}); used {} of {}, failures {}",
                    layout.size(),
                    layout.align(),
                    stats.used,
                    stats.size,
                    stats.failures
                );
                core::ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        self.inner.lock(|(heap, stats)| {
            if let Some(block) = NonNull::new(pointer) {
                // SAFETY: GlobalAlloc's contract: `pointer` came from `alloc` with `layout`.
                unsafe { heap.deallocate(block, layout) };
                stats.freed(layout.size());
            }
        });
    }
}

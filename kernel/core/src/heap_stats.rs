//! Heap accounting: bytes in use, peak, allocation failures. The kernel's allocator wraps
//! `linked_list_allocator` and updates these counters on every call.

/// The heap's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the heap manages.
    pub size: usize,
    /// Bytes currently handed out (requested sizes, not counting the allocator's rounding).
    pub used: usize,
    /// Largest `used` seen.
    pub peak: usize,
    /// Successful allocations so far.
    pub allocations: u32,
    /// Frees so far.
    pub frees: u32,
    /// Allocation requests that could not be served.
    pub failures: u32,
    /// Size of the last request that failed (0 if none).
    pub last_failed_size: usize,
}

impl HeapStats {
    /// Counters for a heap of `size` bytes with nothing allocated.
    pub const fn new(size: usize) -> Self {
        Self { size, used: 0, peak: 0, allocations: 0, frees: 0, failures: 0, last_failed_size: 0 }
    }

    /// Bytes not handed out.
    pub const fn free(&self) -> usize {
        self.size.saturating_sub(self.used)
    }

    /// Records a successful allocation of `bytes`.
    pub fn allocated(&mut self, bytes: usize) {
        self.used = self.used.saturating_add(bytes);
        self.peak = self.peak.max(self.used);
        self.allocations = self.allocations.wrapping_add(1);
    }

    /// Records a free of `bytes` previously allocated.
    pub fn freed(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
        self.frees = self.frees.wrapping_add(1);
    }

    /// Records a failed request of `bytes`.
    pub fn failed(&mut self, bytes: usize) {
        self.failures = self.failures.wrapping_add(1);
        self.last_failed_size = bytes;
    }

    /// Allocations not yet freed.
    pub const fn live(&self) -> u32 {
        self.allocations.wrapping_sub(self.frees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting() {
        let mut stats = HeapStats::new(1000);
        stats.allocated(100);
        stats.allocated(300);
        assert_eq!((stats.used, stats.free(), stats.peak, stats.live()), (400, 600, 400, 2));
        stats.freed(300);
        assert_eq!((stats.used, stats.peak, stats.live()), (100, 400, 1));
        stats.allocated(50);
        assert_eq!(stats.peak, 400, "peak keeps the maximum");
        stats.failed(5000);
        assert_eq!((stats.failures, stats.last_failed_size, stats.used), (1, 5000, 150));
        stats.freed(1000);
        assert_eq!(stats.used, 0, "never underflows");
    }
}

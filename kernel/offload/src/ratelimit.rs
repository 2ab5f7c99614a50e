//! Token buckets that bound the work strangers can make the device do: one bucket for everyone
//! (it caps the device's total work whatever the sources) and one per source address (so that
//! one busy source cannot take the whole budget from the others).
//!
//! Time is the platform clock in microseconds ([`crate::Platform::now_us`]); a bucket refills
//! continuously at its rate up to its burst. The per-source table has a fixed number of entries:
//! a source not in it takes the entry used least recently (a source that spoofs many addresses
//! gets a fresh bucket for each, and is then held by the global bucket alone).

use alloc::vec::Vec;
use core::net::IpAddr;

/// One token, in the buckets' fixed-point unit (a token per second refills one unit per µs).
const TOKEN: u64 = 1_000_000;

/// A bucket's shape: how many tokens it holds at most, and how many it regains per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens a full bucket holds (what a quiet source may spend at once).
    pub burst: u32,
    /// Tokens regained per second.
    pub per_second: u32,
}

impl Rate {
    fn capacity(self) -> u64 {
        u64::from(self.burst) * TOKEN
    }
}

/// The global and per-source shapes of one [`Limiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// The bucket every request draws from.
    pub global: Rate,
    /// The bucket of each source address.
    pub per_source: Rate,
    /// Source addresses remembered at once.
    pub sources: usize,
}

/// A token bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    /// Tokens, in units of 1 / [`TOKEN`].
    level: u64,
    /// When `level` was last brought up to date.
    updated_us: u64,
}

impl Bucket {
    fn full(rate: Rate, now_us: u64) -> Bucket {
        Bucket { level: rate.capacity(), updated_us: now_us }
    }

    fn refill(&mut self, rate: Rate, now_us: u64) {
        let elapsed = now_us.saturating_sub(self.updated_us);
        self.level = self.level.saturating_add(elapsed.saturating_mul(u64::from(rate.per_second))).min(rate.capacity());
        self.updated_us = self.updated_us.max(now_us);
    }

    fn has_token(&self) -> bool {
        self.level >= TOKEN
    }

    fn take(&mut self) {
        self.level -= TOKEN.min(self.level);
    }

    fn give(&mut self, rate: Rate) {
        self.level = (self.level + TOKEN).min(rate.capacity());
    }
}

/// A global bucket plus a bucket per source address.
#[derive(Clone, Debug)]
pub struct Limiter {
    limits: RateLimits,
    global: Bucket,
    sources: Vec<(IpAddr, Bucket)>,
}

impl Limiter {
    /// Full buckets at `now_us`.
    pub fn new(limits: RateLimits, now_us: u64) -> Self {
        Limiter { limits, global: Bucket::full(limits.global, now_us), sources: Vec::with_capacity(limits.sources) }
    }

    /// Takes one token from `source`'s bucket and one from the global bucket, or none when
    /// either is empty (then the request must be refused without doing its work).
    pub fn allow(&mut self, source: IpAddr, now_us: u64) -> bool {
        self.global.refill(self.limits.global, now_us);
        let index = self.source(source, now_us);
        let rate = self.limits.per_source;
        let bucket = &mut self.sources[index].1;
        bucket.refill(rate, now_us);
        if !(bucket.has_token() && self.global.has_token()) {
            return false;
        }
        bucket.take();
        self.global.take();
        true
    }

    /// Gives back the token [`Limiter::allow`] took for a request that turned out to be wanted
    /// (a trusted client's handshake): only the failures spend the budget.
    pub fn refund(&mut self, source: IpAddr) {
        self.global.give(self.limits.global);
        let rate = self.limits.per_source;
        if let Some((_, bucket)) = self.sources.iter_mut().find(|(address, _)| *address == source) {
            bucket.give(rate);
        }
    }

    /// The index of `source`'s entry, made (full) if it has none: in a free slot, or in place of
    /// the entry used least recently.
    fn source(&mut self, source: IpAddr, now_us: u64) -> usize {
        if let Some(index) = self.sources.iter().position(|(address, _)| *address == source) {
            return index;
        }
        let fresh = (source, Bucket::full(self.limits.per_source, now_us));
        if self.sources.len() < self.limits.sources.max(1) {
            self.sources.push(fresh);
            return self.sources.len() - 1;
        }
        let oldest = self
            .sources
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, bucket))| bucket.updated_us)
            .map_or(0, |(index, _)| index);
        self.sources[oldest] = fresh;
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    fn address(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn limiter() -> Limiter {
        Limiter::new(
            RateLimits {
                global: Rate { burst: 10, per_second: 5 },
                per_source: Rate { burst: 3, per_second: 2 },
                sources: 4,
            },
            0,
        )
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut limiter = limiter();
        let allowed = (0..10).filter(|_| limiter.allow(address(1), 0)).count();
        assert_eq!(allowed, 3, "the burst");
        assert!(!limiter.allow(address(1), 499_999), "half a second: one token regained is not yet whole");
        assert!(limiter.allow(address(1), 500_000), "2 per second: one token after 0.5 s");
        assert!(!limiter.allow(address(1), 500_000));
        // Another source still has its own burst.
        assert!(limiter.allow(address(2), 500_000));
    }

    #[test]
    fn the_global_bucket_bounds_all_sources_together() {
        let mut limiter = limiter();
        let allowed = (0..8u8)
            .flat_map(|source| (0..3).map(move |_| source))
            .filter(|source| limiter.allow(address(*source), 0))
            .count();
        assert_eq!(allowed, 10, "8 sources of 3 each, but 10 in all");
        // One second later: 5 more for everyone together.
        let allowed = (0..8u8).filter(|source| limiter.allow(address(*source + 100), 1_000_000)).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn refunds_give_back_what_allow_took() {
        let mut limiter = limiter();
        for _ in 0..20 {
            assert!(limiter.allow(address(1), 0));
            limiter.refund(address(1));
        }
        assert_eq!((0..10).filter(|_| limiter.allow(address(1), 0)).count(), 3, "still a full burst");
    }

    #[test]
    fn the_source_table_is_bounded_and_forgets_the_least_recent() {
        let mut limiter = limiter();
        for source in 0..4 {
            assert!(limiter.allow(address(source), u64::from(source)));
        }
        // The table is full: a fifth source replaces the least recent (source 0).
        assert!(limiter.allow(address(9), 10));
        assert_eq!(limiter.sources.len(), 4);
        assert!(limiter.sources.iter().all(|(source, _)| *source != address(0)));
        // Source 1 kept its own, partly spent bucket.
        let spent = limiter.sources.iter().find(|(source, _)| *source == address(1)).unwrap().1;
        assert_eq!(spent.level, 2 * TOKEN);
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let mut limiter = limiter();
        for _ in 0..3 {
            assert!(limiter.allow(address(1), 1_000_000));
        }
        assert!(!limiter.allow(address(1), 0));
        assert!(!limiter.allow(address(1), 1_000_000));
    }
}

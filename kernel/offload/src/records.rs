//! Small maps that keep their most recently used entries: the server's records of pushed
//! modules (capabilities, the SHA-256s they were pushed as) and each client's push limits.

use alloc::vec::Vec;

/// A map of at most `capacity` entries; inserting into a full map drops the least recently used
/// one (a lookup or an insert counts as a use). Searched linearly: it holds a few hundred entries
/// at most and is used once per push or invoke.
pub(crate) struct Recent<K, V> {
    entries: Vec<(K, V, u64)>,
    capacity: usize,
    clock: u64,
}

impl<K: PartialEq, V> Recent<K, V> {
    /// An empty map that keeps `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Recent { entries: Vec::new(), capacity: capacity.max(1), clock: 0 }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value under `key`, marked as used.
    pub fn get(&mut self, key: &K) -> Option<&mut V> {
        let now = self.tick();
        let entry = self.entries.iter_mut().find(|(k, _, _)| k == key)?;
        entry.2 = now;
        Some(&mut entry.1)
    }

    /// The key of the first entry whose value satisfies `test`, marked as used.
    pub fn find_key(&mut self, test: impl Fn(&V) -> bool) -> Option<&K> {
        let now = self.tick();
        let entry = self.entries.iter_mut().find(|(_, v, _)| test(v))?;
        entry.2 = now;
        Some(&entry.0)
    }

    /// Puts `value` under `key` (replacing what was there), dropping the least recently used
    /// entry if the map is full.
    pub fn insert(&mut self, key: K, value: V) {
        let now = self.tick();
        if let Some(entry) = self.entries.iter_mut().find(|(k, _, _)| *k == key) {
            *entry = (key, value, now);
            return;
        }
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self.entries.iter().enumerate().min_by_key(|(_, (_, _, used))| *used).map(|(i, _)| i)
            {
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push((key, value, now));
    }

    /// Whether `key` is present (not a use).
    #[cfg(test)]
    pub fn contains(&self, key: &K) -> bool {
        self.entries.iter().any(|(k, _, _)| k == key)
    }

    /// The number of entries.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used() {
        let mut map = Recent::new(3);
        map.insert(30, 'a');
        map.insert(10, 'b');
        map.insert(20, 'c');
        assert_eq!(map.get(&30).copied(), Some('a')); // 30 is now the most recent
        map.insert(5, 'd'); // drops 10, the least recently used (not the smallest key)
        assert!(!map.contains(&10));
        assert!(map.contains(&30) && map.contains(&20) && map.contains(&5));
        assert_eq!(map.find_key(|value| *value == 'c').copied(), Some(20));
        map.insert(1, 'e'); // drops 30: 20 was used by find_key, 5 was inserted after 30's get
        assert!(!map.contains(&30));
        map.insert(20, 'f');
        assert_eq!((map.len(), map.get(&20).copied()), (3, Some('f')));
    }
}

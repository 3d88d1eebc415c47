//! The memory backends' state: a fixed array of `Mutex`ed shards that names hash into, so
//! callers with different names rarely meet on a lock and none is global.
//!
//! An operation on several names at once (the limiter's keys, the ledger's counters) locks
//! their shards in ascending index order, so two such operations that share shards cannot
//! deadlock, and holds all of them while it checks and then writes: all-or-nothing without a
//! global lock. We keep our own shards rather than a concurrent map such as `dashmap` because
//! that needs several shards held at once, which those maps do not expose, and it adds no
//! dependency. The limiter and the spend ledger share this so the lock order lives in one place.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

/// Shards of `S`, a power-of-two count of them.
#[derive(Debug)]
pub(crate) struct Shards<S> {
    shards: Box<[Mutex<S>]>,
}

impl<S: Default> Shards<S> {
    /// Sixteen shards per core: enough that concurrent requests seldom share one.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        Self::new(cores * 16)
    }

    /// `count` shards, rounded up to a power of two.
    pub fn new(count: usize) -> Self {
        let count = count.max(1).next_power_of_two();
        Self {
            shards: (0..count).map(|_| Mutex::default()).collect(),
        }
    }
}

impl<S> Shards<S> {
    /// The index of the shard that holds `name`.
    pub fn index_of(&self, name: &str) -> usize {
        let mut h = DefaultHasher::new();
        name.hash(&mut h);
        (h.finish() as usize) & (self.shards.len() - 1)
    }

    /// Locks the shard that holds `name`.
    pub fn lock_one(&self, name: &str) -> MutexGuard<'_, S> {
        lock(&self.shards[self.index_of(name)])
    }

    /// Every shard, one at a time (for counts over the whole state).
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, S>> {
        self.shards.iter().map(lock)
    }

    /// Locks the shards of `names` in ascending order; returns the guards and, per name, the
    /// index of its guard. Two allocations: an operation has a handful of names, so picking the
    /// next shard by a scan beats sorting a copy.
    pub fn lock_all<'n>(
        &self,
        names: impl Iterator<Item = &'n str>,
    ) -> (Vec<MutexGuard<'_, S>>, Vec<usize>) {
        // (shard, index of its guard), the latter filled in as the shards are locked.
        let mut ids: Vec<(usize, usize)> = names.map(|n| (self.index_of(n), 0)).collect();
        let mut guards = Vec::with_capacity(ids.len());
        let mut last = None;
        while let Some(next) = ids.iter().map(|p| p.0).filter(|&i| last < Some(i)).min() {
            for id in ids.iter_mut().filter(|id| id.0 == next) {
                id.1 = guards.len();
            }
            guards.push(lock(&self.shards[next]));
            last = Some(next);
        }
        let slots = ids.into_iter().map(|(_, slot)| slot).collect();
        (guards, slots)
    }
}

fn lock<S>(shard: &Mutex<S>) -> MutexGuard<'_, S> {
    // A panic while holding a shard cannot leave it half-written in a way that matters more
    // than losing the limiter: keep serving.
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sharing_a_shard_share_a_guard_and_guards_ascend() {
        let shards: Shards<u32> = Shards::new(4);
        let names: Vec<String> = (0..32).map(|i| format!("name:{i}")).collect();
        let (guards, slots) = shards.lock_all(names.iter().map(String::as_str));
        assert!(guards.len() <= 4);
        for (name, &slot) in names.iter().zip(&slots) {
            let same = names.iter().zip(&slots).filter(|(n, _)| {
                shards.index_of(n) == shards.index_of(name) && n.as_str() != name.as_str()
            });
            for (_, &other) in same {
                assert_eq!(other, slot, "one guard per shard");
            }
        }
        // Ascending: a name's slot order follows its shard's index order.
        let mut by_slot: Vec<(usize, usize)> = names
            .iter()
            .zip(&slots)
            .map(|(n, &s)| (s, shards.index_of(n)))
            .collect();
        by_slot.sort_unstable();
        assert!(by_slot.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}

//! The in-memory spend ledger, for a single node: counters in a fixed array of shards, each a
//! `Mutex<HashMap>` (`shards.rs`, as the memory limiter's), so requests with different
//! counters rarely meet on a lock and none is global.
//!
//! A reservation locks the shards of its counters in ascending index order (no deadlock
//! between two reservations that share shards), checks every limit, and only then takes from
//! every counter: all or nothing without a global lock. Locks are never held across an await.
//!
//! Time is a [`WallClock`] (milliseconds since the Unix epoch, not the limiter's monotonic
//! clock) because windows end at calendar times the caller computes; tests inject one. A
//! counter past its window's end plus [`EXPIRY_GRACE`](super::EXPIRY_GRACE) reads as absent at
//! once, as an expired Redis key does, and is swept from its shard every [`SWEEP_EVERY`]
//! writes to it, so the windows that have passed cannot grow the map without bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{CEILING, Counter, LedgerDecision, Overdraw, Spend, SpendLedger};
use crate::LimitError;
use crate::shards::Shards;

/// Writes to a shard between two sweeps of its forgotten counters.
const SWEEP_EVERY: u32 = 4096;

/// The ledger's time: milliseconds since the Unix epoch.
pub trait WallClock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now_ms(&self) -> u64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH);
        since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// One counter's value, and when it may be forgotten (`None`: never).
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: u64,
    forget_at: Option<u64>,
}

impl Entry {
    fn live(&self, now: u64) -> bool {
        self.forget_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Default)]
struct Shard {
    counters: HashMap<Arc<str>, Entry>,
    writes: u32,
}

impl Shard {
    /// The counter's value, `None` when absent or forgotten.
    fn value(&self, name: &str, now: u64) -> Option<u64> {
        let entry = self.counters.get(name).filter(|e| e.live(now));
        entry.map(|e| e.value)
    }

    /// Sets the counter to `value`, and its expiry to the counter's when it has one (a counter
    /// given without one keeps what it had, as a Redis key keeps its TTL).
    fn write(&mut self, counter: &Counter, value: u64, now: u64) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.counters.retain(|_, e| e.live(now));
        }
        let fresh = Entry {
            value: 0,
            forget_at: None,
        };
        let entry = self.counters.entry(counter.name.clone()).or_insert(fresh);
        if !entry.live(now) {
            *entry = fresh;
        }
        entry.value = value;
        if let Some(at) = counter.forget_at_ms() {
            entry.forget_at = Some(at);
        }
    }
}

/// The in-memory [`SpendLedger`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryLedger {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Shards<Shard>,
    clock: Box<dyn WallClock>,
}

impl Default for MemoryLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLedger {
    /// A ledger on the system's clock.
    pub fn new() -> Self {
        Self::with_clock(SystemWallClock)
    }

    /// A ledger on `clock` (tests drive time by hand).
    pub fn with_clock(clock: impl WallClock + 'static) -> Self {
        Self::with_shards(clock, Shards::for_this_machine())
    }

    fn with_shards(clock: impl WallClock + 'static, shards: Shards<Shard>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards,
                clock: Box::new(clock),
            }),
        }
    }

    /// How many counters the ledger currently holds, forgotten ones not yet swept included.
    pub fn tracked_counters(&self) -> usize {
        self.inner.shards.each().map(|s| s.counters.len()).sum()
    }
}

impl Inner {
    fn reserve(&self, counters: &[Counter], amount: u64) -> LedgerDecision {
        let now = self.clock.now_ms();
        let (mut guards, slots) = self.shards.lock_all(counters.iter().map(|c| &*c.name));
        for (counter, &slot) in counters.iter().zip(&slots) {
            let Some(limit) = counter.limit else { continue };
            let spent = guards[slot].value(&counter.name, now).unwrap_or(0);
            // Reaching the limit exactly is allowed; a limit past the ceiling is the ceiling.
            let fits = spent
                .checked_add(amount)
                .is_some_and(|v| v <= limit.min(CEILING));
            if !fits {
                return LedgerDecision::Refused(Overdraw {
                    counter: counter.name.clone(),
                    limit,
                    spent,
                });
            }
        }
        let spends = counters.iter().zip(&slots).map(|(counter, &slot)| {
            let shard = &mut guards[slot];
            let before = shard.value(&counter.name, now).unwrap_or(0);
            let after = before.saturating_add(amount).min(CEILING);
            shard.write(counter, after, now);
            Spend { before, after }
        });
        LedgerDecision::Admitted(spends.collect())
    }

    fn adjust(&self, counters: &[Counter], delta: i64) -> Vec<Spend> {
        let now = self.clock.now_ms();
        let (mut guards, slots) = self.shards.lock_all(counters.iter().map(|c| &*c.name));
        let spends = counters.iter().zip(&slots).map(|(counter, &slot)| {
            let shard = &mut guards[slot];
            let before = shard.value(&counter.name, now);
            // Nothing to write: no change, or a refund to a counter that holds nothing.
            if delta == 0 || (delta < 0 && before.is_none()) {
                let value = before.unwrap_or(0);
                return Spend {
                    before: value,
                    after: value,
                };
            }
            let before = before.unwrap_or(0);
            let after = before.saturating_add_signed(delta).min(CEILING);
            shard.write(counter, after, now);
            Spend { before, after }
        });
        spends.collect()
    }

    fn seed(&self, counter: &Counter, value: u64) -> bool {
        let now = self.clock.now_ms();
        let mut shard = self.shards.lock_one(&counter.name);
        if shard.value(&counter.name, now).is_some() {
            return false;
        }
        shard.write(counter, value.min(CEILING), now);
        true
    }

    fn spent(&self, counters: &[Counter]) -> Vec<u64> {
        let now = self.clock.now_ms();
        let (guards, slots) = self.shards.lock_all(counters.iter().map(|c| &*c.name));
        let values = counters.iter().zip(&slots);
        values
            .map(|(counter, &slot)| guards[slot].value(&counter.name, now).unwrap_or(0))
            .collect()
    }
}

#[async_trait]
impl SpendLedger for MemoryLedger {
    async fn reserve(
        &self,
        counters: &[Counter],
        amount: u64,
    ) -> Result<LedgerDecision, LimitError> {
        Ok(self.inner.reserve(counters, amount))
    }

    async fn adjust(&self, counters: &[Counter], delta: i64) -> Result<Vec<Spend>, LimitError> {
        Ok(self.inner.adjust(counters, delta))
    }

    async fn seed(&self, counter: &Counter, value: u64) -> Result<bool, LimitError> {
        Ok(self.inner.seed(counter, value))
    }

    async fn spent(&self, counters: &[Counter]) -> Result<Vec<u64>, LimitError> {
        Ok(self.inner.spent(counters))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::ledger::EXPIRY_GRACE;

    #[derive(Debug, Clone, Default)]
    struct Manual(Arc<AtomicU64>);

    impl WallClock for Manual {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn forgotten_counters_are_swept_and_the_others_kept() {
        let clock = Manual::default();
        clock.0.store(1_000_000, Ordering::SeqCst);
        let ledger = MemoryLedger::with_shards(clock.clone(), Shards::new(1));
        let grace = EXPIRY_GRACE.as_millis() as u64;
        let total = Counter::new("org:o:total", Some(100), None);
        let monthly = Counter::new("org:o:monthly:2026-11", None, Some(2_000_000));
        assert!(matches!(
            ledger.inner.reserve(&[total.clone(), monthly.clone()], 10),
            LedgerDecision::Admitted(_)
        ));
        for i in 0..4000 {
            let daily = Counter::new(format!("key:{i}:daily"), None, Some(1_500_000));
            ledger.inner.adjust(&[daily], 1);
        }
        assert_eq!(ledger.tracked_counters(), 4002);
        // Past the dailies' end and grace, within the monthly's grace.
        clock.0.store(1_500_000 + grace, Ordering::SeqCst);
        for i in 0..100 {
            let daily = Counter::new(format!("key:{i}:next-daily"), None, Some(3_000_000));
            ledger.inner.adjust(&[daily], 1);
        }
        // The sweep at the 4096th write dropped every forgotten daily and nothing else.
        assert_eq!(ledger.tracked_counters(), 102);
        assert_eq!(ledger.inner.spent(&[total, monthly]), [10, 10]);
    }
}

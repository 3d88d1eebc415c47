//! The in-memory limiter, for a single node: per-key state in a fixed array of shards, each a
//! `Mutex<HashMap>` (`shards.rs`), so requests with different keys rarely meet on a lock and
//! none is global.
//!
//! A reservation locks the shards of its keys in ascending index order (no deadlock between
//! two reservations that share shards), checks every rule, and only then takes from all of
//! them: all-or-nothing without a global lock. Locks are never held across an await.
//!
//! Time comes from a [`Clock`] so tests can drive it. Idle keys (empty buckets, no request in
//! flight) are swept from a shard every [`SWEEP_EVERY`] writes to it, so a stream of one-off
//! keys cannot grow the map without bound.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;

use crate::bucket::Bucket;
use crate::reservation::{Held, Settle};
use crate::shards::Shards;
use crate::{
    Admission, Decision, Dimension, Headroom, LimitError, LimitKey, RateLimiter, Refusal,
    Reservation, Retry,
};

/// Writes to a shard between two sweeps of its idle keys.
const SWEEP_EVERY: u32 = 4096;

/// The limiter's time: nanoseconds since an arbitrary origin, never going back.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_nanos(&self) -> u64;
}

/// The monotonic clock of the process.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// One key's counters.
#[derive(Debug, Default)]
struct KeyState {
    requests: Bucket,
    tokens: Bucket,
    in_flight: u64,
    /// When both buckets will have drained: after then, with nothing in flight, the state
    /// equals no state.
    idle_at: u64,
}

#[derive(Debug, Default)]
struct Shard {
    keys: HashMap<Arc<str>, KeyState>,
    writes: u32,
}

impl Shard {
    fn sweep(&mut self, now: u64) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.keys.retain(|_, s| s.in_flight > 0 || s.idle_at > now);
        }
    }
}

/// The in-memory [`RateLimiter`].
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Shards<Shard>,
    clock: Box<dyn Clock>,
}

impl Default for MemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLimiter {
    /// A limiter on the process's monotonic clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock::default())
    }

    /// A limiter on `clock` (tests drive time by hand).
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        Self::with_shards(clock, Shards::for_this_machine())
    }

    fn with_shards(clock: impl Clock + 'static, shards: Shards<Shard>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards,
                clock: Box::new(clock),
            }),
        }
    }

    /// How many keys the limiter currently holds state for.
    pub fn tracked_keys(&self) -> usize {
        self.inner.shards.each().map(|s| s.keys.len()).sum()
    }
}

impl Inner {
    fn lock_all(&self, keys: &[LimitKey]) -> (Vec<MutexGuard<'_, Shard>>, Vec<usize>) {
        self.shards.lock_all(keys.iter().map(|k| &*k.name))
    }

    fn reserve(&self, keys: &[LimitKey], tokens: u64) -> Result<(Figures, u64), Refusal> {
        let now = self.clock.now_nanos();
        let (mut guards, slots) = self.lock_all(keys);
        for (key, &slot) in keys.iter().zip(&slots) {
            let state = guards[slot].keys.get(&key.name);
            check(key, state, now, tokens)?;
        }
        let mut headroom = Figures::default();
        for (key, &slot) in keys.iter().zip(&slots) {
            let shard = &mut guards[slot];
            shard.sweep(now);
            let state = shard.keys.entry(key.name.clone()).or_default();
            let r = key.rules;
            if let Some(limit) = r.rpm {
                state.requests.add(now, limit, 1.0);
                state.idle_at = state.idle_at.max(state.requests.empty_at(limit));
                let h = state.requests.headroom(now, limit);
                headroom.requests = Headroom::tighter(headroom.requests, h);
            }
            if let Some(limit) = r.tpm {
                state.tokens.add(now, limit, tokens as f64);
                state.idle_at = state.idle_at.max(state.tokens.empty_at(limit));
                let h = state.tokens.headroom(now, limit);
                headroom.tokens = Headroom::tighter(headroom.tokens, h);
            }
            if r.max_concurrent.is_some() {
                state.in_flight += 1;
            }
        }
        Ok((headroom, now))
    }

    /// Applies `delta` tokens to the token buckets (when `delta != 0`) and frees the slots.
    fn finish(&self, held: &Held, delta: f64, free_slots: bool) {
        let now = self.clock.now_nanos();
        let (mut guards, slots) = self.lock_all(&held.keys);
        for (key, &slot) in held.keys.iter().zip(&slots) {
            // A key swept since (its buckets drained) must still take an overdraft.
            let state = guards[slot].keys.entry(key.name.clone()).or_default();
            if let Some(limit) = key.rules.tpm.filter(|_| delta != 0.0) {
                state.tokens.add(now, limit, delta);
                state.idle_at = state.idle_at.max(state.tokens.empty_at(limit));
            }
            if free_slots && key.rules.max_concurrent.is_some() {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Figures {
    requests: Option<Headroom>,
    tokens: Option<Headroom>,
}

fn check(key: &LimitKey, state: Option<&KeyState>, now: u64, tokens: u64) -> Result<(), Refusal> {
    let refuse = |dimension, limit, retry| Refusal {
        key: key.name.clone(),
        dimension,
        limit,
        retry,
    };
    let empty = KeyState::default();
    let state = state.unwrap_or(&empty);
    let r = key.rules;
    if let Some(limit) = r.max_concurrent {
        if limit == 0 {
            return Err(refuse(Dimension::Concurrency, limit, Retry::Never));
        }
        if state.in_flight >= limit {
            return Err(refuse(Dimension::Concurrency, limit, Retry::OnRelease));
        }
    }
    if let Some(limit) = r.rpm {
        let e = state.requests.check(now, limit, 1);
        e.map_err(|retry| refuse(Dimension::Requests, limit, retry))?;
    }
    if let Some(limit) = r.tpm {
        let e = state.tokens.check(now, limit, tokens);
        e.map_err(|retry| refuse(Dimension::Tokens, limit, retry))?;
    }
    Ok(())
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn reserve(&self, keys: Vec<LimitKey>, tokens: u64) -> Result<Decision, LimitError> {
        Ok(self.reserve_now(keys, tokens))
    }
}

impl MemoryLimiter {
    /// [`RateLimiter::reserve`] without the future: the memory limiter never waits.
    pub fn reserve_now(&self, keys: Vec<LimitKey>, tokens: u64) -> Decision {
        match self.inner.reserve(&keys, tokens) {
            Err(refusal) => Decision::Refused(refusal),
            Ok((headroom, _)) => {
                let held = Held {
                    keys,
                    estimate: tokens,
                    lease: 0,
                };
                Decision::Admitted(Admission {
                    reservation: Reservation::new(held, self.inner.clone()),
                    requests: headroom.requests,
                    tokens: headroom.tokens,
                })
            }
        }
    }
}

#[async_trait]
impl Settle for Inner {
    async fn settle(&self, held: Held, actual: u64) -> Result<(), LimitError> {
        let delta = actual as f64 - held.estimate as f64;
        self.finish(&held, delta, true);
        Ok(())
    }

    fn release(&self, held: Held) {
        if held.has_slots() {
            self.finish(&held, 0.0, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::LimitRules;

    #[derive(Debug, Clone, Default)]
    struct Manual(Arc<AtomicU64>);

    impl Clock for Manual {
        fn now_nanos(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn rules(rpm: u64, conc: Option<u64>) -> LimitRules {
        LimitRules {
            rpm: Some(rpm),
            tpm: Some(1000),
            max_concurrent: conc,
        }
    }

    #[test]
    fn idle_keys_are_swept_and_busy_ones_kept() {
        let clock = Manual::default();
        let limiter = MemoryLimiter::with_shards(clock.clone(), Shards::new(1));
        let busy = limiter.reserve_now(vec![LimitKey::new("busy", rules(60, Some(1)))], 10);
        assert!(matches!(busy, Decision::Admitted(_)));
        for i in 0..4000 {
            let key = LimitKey::new(format!("once:{i}"), rules(60, None));
            drop(limiter.reserve_now(vec![key], 10));
        }
        assert_eq!(limiter.tracked_keys(), 4001);
        clock
            .0
            .fetch_add(Duration::from_secs(120).as_nanos() as u64, Ordering::SeqCst);
        for i in 0..100 {
            let key = LimitKey::new(format!("later:{i}"), rules(60, None));
            drop(limiter.reserve_now(vec![key], 10));
        }
        // The sweep at the 4096th write dropped every drained key but the one in flight.
        assert!(limiter.tracked_keys() <= 101, "{}", limiter.tracked_keys());
        let again = limiter.reserve_now(vec![LimitKey::new("busy", rules(60, Some(1)))], 0);
        assert!(
            matches!(again, Decision::Refused(_)),
            "the busy key kept its slot"
        );
        drop(busy);
    }
}

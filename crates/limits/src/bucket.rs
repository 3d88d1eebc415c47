//! The rate arithmetic of the memory backend: a leaky bucket with continuous refill (the
//! virtual-scheduling form of GCRA, stored as a level rather than a theoretical arrival time).
//! `src/lua/reserve.lua` and `settle.lua` do the same arithmetic inside Redis; keep them in step.
//!
//! A bucket holds a `level` (units taken and not yet leaked) and the time it was last written.
//! It leaks `limit` units per window, continuously. A cost is admitted when `level + cost <=
//! limit`; settling with more tokens than estimated may push the level above the limit (debt),
//! so later requests wait until it has leaked. A level rather than a theoretical arrival time
//! keeps the numbers small: Redis's Lua has only doubles, in which an arrival time in
//! nanoseconds would lose precision, while a level of at most a few million units is exact.

use std::time::Duration;

use crate::{Headroom, Retry, WINDOW};

/// Slack for floating-point leak arithmetic: a level that is a hair over the limit after a
/// leak of exact figures still admits.
const EPSILON: f64 = 1e-9;

/// One rule's state: the level at `at` (nanoseconds on the limiter's clock).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Bucket {
    pub level: f64,
    pub at: u64,
}

impl Bucket {
    /// The level at `now`, after leaking since the last write.
    pub fn level_at(&self, now: u64, limit: u64) -> f64 {
        if limit == 0 {
            return self.level;
        }
        let elapsed = now.saturating_sub(self.at) as f64 / WINDOW.as_nanos() as f64;
        (self.level - elapsed * limit as f64).max(0.0)
    }

    /// Whether `cost` fits under `limit` at `now`; when it does not, when to retry.
    pub fn check(&self, now: u64, limit: u64, cost: u64) -> Result<(), Retry> {
        if cost > limit {
            return Err(Retry::Never);
        }
        let level = self.level_at(now, limit);
        let over = level + cost as f64 - limit as f64;
        if over <= EPSILON {
            Ok(())
        } else {
            Err(Retry::After(drain(over, limit)))
        }
    }

    /// Adds `delta` (negative: a refund, never below empty) at `now`.
    pub fn add(&mut self, now: u64, limit: u64, delta: f64) {
        self.level = (self.level_at(now, limit) + delta).max(0.0);
        self.at = now;
    }

    /// The headroom at `now` (after a charge).
    pub fn headroom(&self, now: u64, limit: u64) -> Headroom {
        let level = self.level_at(now, limit);
        Headroom {
            limit,
            remaining: (limit as f64 - level + EPSILON).floor().max(0.0) as u64,
            reset: drain(level, limit),
        }
    }

    /// When the bucket will be empty (nanoseconds on the limiter's clock): after then its state
    /// is the same as no state, so it may be forgotten.
    pub fn empty_at(&self, limit: u64) -> u64 {
        let drained = u64::try_from(drain(self.level, limit).as_nanos()).unwrap_or(u64::MAX);
        self.at.saturating_add(drained)
    }
}

/// How long `units` take to leak at `limit` per window.
fn drain(units: f64, limit: u64) -> Duration {
    if limit == 0 || units <= 0.0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(units * WINDOW.as_secs_f64() / limit as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn admits_up_to_the_limit_then_names_the_wait() {
        let mut b = Bucket::default();
        for _ in 0..60 {
            assert_eq!(b.check(0, 60, 1), Ok(()));
            b.add(0, 60, 1.0);
        }
        assert_eq!(b.check(0, 60, 1), Err(Retry::After(Duration::from_secs(1))));
        assert_eq!(b.check(SEC, 60, 1), Ok(()));
        assert_eq!(b.headroom(0, 60).remaining, 0);
        assert_eq!(b.headroom(0, 60).reset, Duration::from_secs(60));
        assert_eq!(b.headroom(30 * SEC, 60).remaining, 30);
    }

    #[test]
    fn a_cost_above_the_limit_never_fits() {
        assert_eq!(Bucket::default().check(0, 10, 11), Err(Retry::Never));
        assert_eq!(Bucket::default().check(0, 0, 1), Err(Retry::Never));
    }

    #[test]
    fn refunds_stop_at_empty_and_debt_delays() {
        let mut b = Bucket::default();
        b.add(0, 100, 10.0);
        b.add(0, 100, -50.0);
        assert_eq!(b.level, 0.0);
        b.add(0, 100, 150.0);
        // 50 over the limit plus the one requested: 51 units at 100 per minute.
        assert_eq!(
            b.check(0, 100, 1),
            Err(Retry::After(Duration::from_secs_f64(30.6)))
        );
        assert_eq!(b.empty_at(100), 90 * SEC);
    }
}

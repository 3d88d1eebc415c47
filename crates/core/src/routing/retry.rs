//! Retries (`models.<name>.retries`): more passes over a model's deployments after every one of
//! them failed, with exponential backoff and full jitter, honouring the upstream's
//! `Retry-After`, and under a retry budget so that retries cannot amplify an outage.
//!
//! The first pass is not a retry: dispatch fails over from one deployment to the next at once
//! (another provider is likely fine). Only sending to a deployment this request already tried
//! is a retry. Each one waits:
//!
//! - **Full jitter**: a random wait between zero and `backoff * 2^(n-1)` (at most
//!   `max_backoff`) before retry round `n`, so clients failing together do not come back
//!   together;
//! - **`Retry-After`**: at least as long as the upstream asked (`Retry-After`,
//!   `retry-after-ms`); when that is longer than `max_wait` or than the request's time left, the
//!   request is not retried and the client gets the upstream's answer with its `Retry-After`.
//!
//! **Retry budget.** Over the last [`WINDOW_SECS`] seconds, a model's retries may be at most
//! `budget` (a share, 0.2 by default) of its requests, plus `budget_min_per_second` a second so
//! that a quiet model can still retry. Past that, a failed request fails rather than sending
//! more load to an upstream that is already failing. Each attempt in a retry round takes one
//! unit. The counts are per gateway process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The seconds the retry budget looks back over.
pub const WINDOW_SECS: u64 = 10;

/// How a model retries (`models.<name>.retries`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retry rounds after the first pass; 0 (the default) turns retries off: failover to other
    /// deployments always happens, re-sending to a deployment that failed does not, since the
    /// clients' SDKs already retry on their own (OpenAI's and Anthropic's twice by default).
    pub max: u32,
    /// The jitter's ceiling before the first retry round; it doubles for each round after.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest wait a retry may take (an upstream's `Retry-After` included).
    pub max_wait: Duration,
    /// Retries as a share of requests over the window.
    pub budget: f64,
    /// Retries allowed each second whatever the share.
    pub budget_min_per_second: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max: 0,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_wait: Duration::from_secs(10),
            budget: 0.2,
            budget_min_per_second: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry round `round` (1 for the first), given the longest `Retry-After`
    /// the failed attempts asked for; `None` when it would be longer than `max_wait`.
    pub fn wait(&self, round: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let ceiling = self
            .backoff
            .saturating_mul(2u32.saturating_pow(round.saturating_sub(1).min(30)))
            .min(self.max_backoff);
        let jitter = ceiling.mul_f64(fastrand::f64());
        let wait = retry_after.map_or(jitter, |r| r.max(jitter));
        (wait <= self.max_wait).then_some(wait)
    }
}

/// One second's counts.
#[derive(Debug, Default)]
struct Bucket {
    /// The second (since the budget's start) these counts are for.
    second: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// A model's retry budget: requests and retries over the last [`WINDOW_SECS`] seconds.
#[derive(Debug)]
pub struct RetryBudget {
    share: f64,
    min_per_second: u32,
    start: Instant,
    buckets: [Bucket; WINDOW_SECS as usize],
}

impl RetryBudget {
    pub fn new(policy: &RetryPolicy) -> Self {
        Self {
            share: policy.budget,
            min_per_second: policy.budget_min_per_second,
            start: Instant::now(),
            buckets: Default::default(),
        }
    }

    /// Whether this budget was made for `policy`'s figures (a reload keeps it if so).
    pub fn fits(&self, policy: &RetryPolicy) -> bool {
        self.share == policy.budget && self.min_per_second == policy.budget_min_per_second
    }

    /// The current second's bucket, emptied first if it still holds an older second's counts.
    fn current(&self) -> (&Bucket, u64) {
        let second = self.start.elapsed().as_secs() + 1;
        let bucket = &self.buckets[(second % WINDOW_SECS) as usize];
        let seen = bucket.second.load(Ordering::Acquire);
        if seen != second
            && bucket
                .second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            bucket.requests.store(0, Ordering::Relaxed);
            bucket.retries.store(0, Ordering::Relaxed);
        }
        (bucket, second)
    }

    /// Counts a request.
    pub fn deposit(&self) {
        self.current().0.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn try_withdraw(&self) -> bool {
        let (bucket, now) = self.current();
        let (mut requests, mut retries) = (0u64, 0u64);
        for b in &self.buckets {
            let second = b.second.load(Ordering::Acquire);
            if second + WINDOW_SECS > now {
                requests += b.requests.load(Ordering::Relaxed);
                retries += b.retries.load(Ordering::Relaxed);
            }
        }
        let floor = u64::from(self.min_per_second) * WINDOW_SECS;
        let allowed = floor.max((requests as f64 * self.share) as u64);
        if retries >= allowed {
            return false;
        }
        bucket.retries.fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_a_doubling_ceiling() {
        let policy = RetryPolicy {
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for (round, ceiling) in [(1, 100), (2, 200), (3, 350), (9, 350)] {
            let waits: Vec<Duration> = (0..2000)
                .map(|_| policy.wait(round, None).unwrap_or_default())
                .collect();
            let max = waits.iter().max().copied().unwrap_or_default();
            let mean = waits.iter().sum::<Duration>() / 2000;
            assert!(
                max <= Duration::from_millis(ceiling),
                "round {round}: {max:?}"
            );
            // Uniform over [0, ceiling]: the mean is near half of it.
            let half = ceiling as f64 / 2.0;
            let mean_ms = mean.as_secs_f64() * 1000.0;
            assert!(
                (mean_ms - half).abs() < ceiling as f64 * 0.05,
                "round {round}: mean {mean_ms} ms, ceiling {ceiling} ms"
            );
        }
    }

    #[test]
    fn retry_after_is_a_floor_and_max_wait_a_ceiling() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let wait = policy
                .wait(1, Some(Duration::from_secs(2)))
                .unwrap_or_default();
            assert_eq!(wait, Duration::from_secs(2), "jitter is at most 100 ms");
        }
        assert_eq!(policy.wait(1, Some(Duration::from_secs(11))), None);
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_allows_a_share_of_requests_over_the_window() {
        let policy = RetryPolicy {
            budget: 0.2,
            budget_min_per_second: 1,
            ..RetryPolicy::default()
        };
        let budget = RetryBudget::new(&policy);
        // The floor: 1 a second over 10 seconds, with no requests at all.
        let floor = (0..20).filter(|_| budget.try_withdraw()).count();
        assert_eq!(floor, 10);
        // 200 requests allow 40 retries in the window, 10 of them already taken.
        for _ in 0..200 {
            budget.deposit();
        }
        let more = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(more, 30);
        // Ten seconds on, the window has moved past all of it.
        tokio::time::advance(Duration::from_secs(WINDOW_SECS)).await;
        let again = (0..20).filter(|_| budget.try_withdraw()).count();
        assert_eq!(again, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn old_seconds_leave_the_window_one_by_one() {
        let policy = RetryPolicy {
            budget: 0.5,
            budget_min_per_second: 0,
            ..RetryPolicy::default()
        };
        let budget = RetryBudget::new(&policy);
        for _ in 0..10 {
            budget.deposit();
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..10 {
            budget.deposit();
        }
        assert_eq!((0..100).filter(|_| budget.try_withdraw()).count(), 10);
        // Six seconds on, the first ten requests are out of the window: 10 requests, 10 retries.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!budget.try_withdraw());
        for _ in 0..4 {
            budget.deposit();
        }
        // 14 requests allow 7 retries; the 10 taken are still in the window.
        assert!(!budget.try_withdraw());
    }
}

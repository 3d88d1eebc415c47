//! How much of a deployment's upstream rate limits is left, for the `most_headroom` strategy.
//!
//! The upstream's own figures ([`crate::provider::hints`]: remaining requests and tokens, their
//! limits and resets) arrive with each response. Between two responses the gateway counts what
//! it has sent there itself, so a burst of concurrent requests does not all pick the deployment
//! that looked emptiest a moment ago. Once a limit's reset time has passed it counts as whole
//! again. A deployment that never reported its limits counts as whole.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use crate::provider::hints::{Hints, Remaining};

/// One limit as last reported.
#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    /// The reported limit, else the largest remaining ever seen.
    limit: u64,
    reset_at: Option<Instant>,
}

impl Window {
    fn fraction(&self, used_since: u64, now: Instant) -> f64 {
        if self.reset_at.is_some_and(|at| now >= at) || self.limit == 0 {
            return 1.0;
        }
        self.remaining.saturating_sub(used_since) as f64 / self.limit as f64
    }
}

#[derive(Debug, Default)]
struct Reported {
    requests: Option<Window>,
    tokens: Option<Window>,
}

/// One deployment's rate-limit headroom.
#[derive(Debug, Default)]
pub struct Headroom {
    reported: Mutex<Reported>,
    /// Requests and estimated tokens sent since the last report.
    requests_since: AtomicU64,
    tokens_since: AtomicU64,
}

impl Headroom {
    /// Counts a request about to be sent there.
    pub fn sent(&self, tokens: u64) {
        self.requests_since.fetch_add(1, Ordering::Relaxed);
        self.tokens_since.fetch_add(tokens, Ordering::Relaxed);
    }

    /// Takes in what a response said; hints without rate limits change nothing.
    pub fn report(&self, hints: &Hints) {
        if hints.requests.is_none() && hints.tokens.is_none() {
            return;
        }
        let now = Instant::now();
        let Ok(mut reported) = self.reported.lock() else {
            return;
        };
        let merge = |old: Option<Window>, new: Option<Remaining>| {
            let new = new?;
            let seen = old.map_or(0, |o| o.limit);
            Some(Window {
                remaining: new.remaining,
                limit: new.limit.unwrap_or(seen.max(new.remaining)),
                reset_at: new.reset.map(|r| now + r),
            })
        };
        reported.requests = merge(reported.requests, hints.requests).or(reported.requests);
        reported.tokens = merge(reported.tokens, hints.tokens).or(reported.tokens);
        // The report covers what was sent before it (requests still in flight are counted twice
        // until their own reports arrive: that errs toward less headroom, harmlessly).
        self.requests_since.store(0, Ordering::Relaxed);
        self.tokens_since.store(0, Ordering::Relaxed);
    }

    /// The smaller share left of the request and token limits, in `[0, 1]`.
    pub fn fraction(&self) -> f64 {
        let now = Instant::now();
        let Ok(reported) = self.reported.lock() else {
            return 1.0;
        };
        let requests = reported.requests.map_or(1.0, |w| {
            w.fraction(self.requests_since.load(Ordering::Relaxed), now)
        });
        let tokens = reported.tokens.map_or(1.0, |w| {
            w.fraction(self.tokens_since.load(Ordering::Relaxed), now)
        });
        requests.min(tokens).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hints(requests: Option<(u64, Option<u64>)>, tokens: Option<(u64, u64)>) -> Hints {
        Hints {
            retry_after: None,
            requests: requests.map(|(remaining, limit)| Remaining {
                remaining,
                limit,
                reset: Some(Duration::from_secs(10)),
            }),
            tokens: tokens.map(|(remaining, limit)| Remaining {
                remaining,
                limit: Some(limit),
                reset: None,
            }),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_then_own_counts_then_reset() {
        let h = Headroom::default();
        assert_eq!(h.fraction(), 1.0, "nothing reported: whole");
        h.report(&hints(Some((50, Some(100))), Some((900, 1000))));
        assert_eq!(h.fraction(), 0.5);
        h.sent(10);
        h.sent(10);
        assert_eq!(h.fraction(), 0.48, "two requests sent since the report");
        h.report(&hints(None, Some((100, 1000))));
        assert!(
            (h.fraction() - 0.1).abs() < 1e-9,
            "tokens are now the tighter limit"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(
            (h.fraction() - 0.1).abs() < 1e-9,
            "the request limit reset, the token limit has no reset time"
        );
        h.report(&Hints::default());
        assert!(
            (h.fraction() - 0.1).abs() < 1e-9,
            "a response without limits changes nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_stated_limit_the_largest_remaining_seen_stands_in() {
        let h = Headroom::default();
        h.report(&hints(Some((200, None)), None));
        assert_eq!(h.fraction(), 1.0);
        h.report(&hints(Some((50, None)), None));
        assert_eq!(h.fraction(), 0.25);
    }
}

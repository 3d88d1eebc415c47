//! Hedging (`models.<name>.hedge`), for requests that are not streamed: when the first attempt
//! has not answered after a fixed delay or after a percentile of its deployment's observed
//! latency, a second attempt goes to the next deployment of the plan. The first success wins
//! and the other attempt is dropped, which cancels its upstream request.
//!
//! A hedge is extra load, so each one takes a unit of the model's retry budget
//! ([`super::retry`]); with the budget spent the request just waits for its first attempt.
//! Until a deployment has [`MIN_SAMPLES`] latencies, a percentile hedge does not fire.
//!
//! The latency distribution is a log-linear histogram of whole responses (four buckets per
//! doubling, so a percentile is within about 19% of the truth), halved every
//! [`DECAY_EVERY`] samples so that it follows the deployment as it changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Samples a deployment needs before its percentiles are trusted.
pub const MIN_SAMPLES: u64 = 20;
/// Samples after which every count is halved.
pub const DECAY_EVERY: u64 = 1024;
/// Buckets per doubling.
const SUB: u32 = 4;
/// Buckets: microseconds up to 2^30 (about 18 minutes).
const BUCKETS: usize = (30 * SUB) as usize;

/// When a hedge is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    /// After this long.
    Fixed(Duration),
    /// After this quantile (0.95 for `p95`) of the first deployment's latency.
    Percentile(f64),
}

/// A model's hedging.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HedgePolicy {
    pub after: HedgeAfter,
}

impl HedgePolicy {
    /// How long to wait for a deployment with `latencies` before hedging; `None`: do not.
    pub fn delay(&self, latencies: &LatencyHistogram) -> Option<Duration> {
        match self.after {
            HedgeAfter::Fixed(d) => Some(d),
            HedgeAfter::Percentile(q) => latencies.quantile(q),
        }
    }
}

/// Parses `p95`, `p99.9` (a percentile) or a duration such as `300ms`.
pub fn parse_after(text: &str) -> Result<HedgeAfter, String> {
    if let Some(p) = text.strip_prefix('p') {
        return match p.parse::<f64>() {
            Ok(p) if p > 0.0 && p < 100.0 => Ok(HedgeAfter::Percentile(p / 100.0)),
            _ => Err(format!(
                "'{text}' is not a percentile: write p50 to p99.9 (above 0, below 100)"
            )),
        };
    }
    humantime::parse_duration(text)
        .map(HedgeAfter::Fixed)
        .map_err(|e| format!("'{text}' is neither a percentile (p95) nor a duration (300ms): {e}"))
}

/// A log-linear histogram of latencies in microseconds.
#[derive(Debug)]
pub struct LatencyHistogram {
    counts: [AtomicU64; BUCKETS],
    samples: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            samples: AtomicU64::new(0),
        }
    }
}

fn bucket(us: u64) -> usize {
    let us = us.max(1);
    let log = 63 - us.leading_zeros();
    // The two bits after the leading one pick the quarter of the doubling.
    let sub = if log >= 2 {
        (us >> (log - 2)) & 3
    } else {
        (us << (2 - log)) & 3
    };
    ((log * SUB) as usize + sub as usize).min(BUCKETS - 1)
}

/// The smallest value of bucket `i`.
fn lower(i: usize) -> u64 {
    let (log, sub) = ((i as u32) / SUB, (i as u64) % u64::from(SUB));
    if log >= 2 {
        (4 + sub) << (log - 2)
    } else {
        (4 + sub) >> (2 - log)
    }
}

impl LatencyHistogram {
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get(bucket(us)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.samples.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(DECAY_EVERY) {
            // Racing records may lose a sample to the halving: harmless.
            for c in &self.counts {
                c.store(c.load(Ordering::Relaxed) / 2, Ordering::Relaxed);
            }
        }
    }

    /// The latency under which `q` of the samples fall (the upper edge of its bucket), or
    /// `None` with fewer than [`MIN_SAMPLES`] samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 || self.samples.load(Ordering::Relaxed) < MIN_SAMPLES {
            return None;
        }
        let target = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Some(Duration::from_micros(lower(i + 1)));
            }
        }
        Some(Duration::from_micros(lower(BUCKETS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_each_doubling_in_quarters() {
        assert_eq!(bucket(1), 0);
        assert_eq!(lower(bucket(1000)), 896);
        // Below 4 µs a quarter of a doubling is less than a microsecond: those buckets
        // collapse, which no real latency notices.
        for us in [4u64, 7, 100, 999, 1000, 1001, 65_536, 3_000_000] {
            let i = bucket(us);
            assert!(lower(i) <= us && us < lower(i + 1), "{us} in bucket {i}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_need_samples_then_follow_them() {
        let h = LatencyHistogram::default();
        for _ in 0..19 {
            h.record(Duration::from_millis(10));
        }
        assert_eq!(h.quantile(0.95), None, "19 samples are too few");
        h.record(Duration::from_millis(10));
        let p95 = h.quantile(0.95).unwrap_or_default();
        assert!(
            p95 > Duration::from_millis(10) && p95 <= Duration::from_millis(12),
            "{p95:?}"
        );
        // 90 fast and 10 slow: p50 is fast, p95 slow.
        let h = LatencyHistogram::default();
        for i in 0..100 {
            h.record(Duration::from_millis(if i % 10 == 0 { 500 } else { 20 }));
        }
        let p50 = h.quantile(0.5).unwrap_or_default();
        let p95 = h.quantile(0.95).unwrap_or_default();
        assert!(p50 <= Duration::from_millis(24), "{p50:?}");
        assert!(p95 >= Duration::from_millis(500), "{p95:?}");
    }

    #[test]
    fn old_samples_fade() {
        let h = LatencyHistogram::default();
        for _ in 0..DECAY_EVERY {
            h.record(Duration::from_secs(1));
        }
        // Halved to 512 slow; 2,000 fast samples (halved once more on the way) outweigh them.
        for _ in 0..2000 {
            h.record(Duration::from_millis(5));
        }
        let p80 = h.quantile(0.8).unwrap_or_default();
        assert!(p80 < Duration::from_millis(6), "{p80:?}");
    }

    #[test]
    fn after_parses_percentiles_and_durations() {
        assert_eq!(parse_after("p95"), Ok(HedgeAfter::Percentile(0.95)));
        assert_eq!(
            parse_after("250ms"),
            Ok(HedgeAfter::Fixed(Duration::from_millis(250)))
        );
        assert!(parse_after("p100").is_err());
        assert!(parse_after("p0").is_err());
        assert!(parse_after("soon").unwrap_err().contains("percentile"));
    }
}

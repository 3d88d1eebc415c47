//! The spend ledger: counters of money spent per budget window, for stage `admit` (reserve a
//! request's estimated cost before dispatch) and stage `settle` (adjust by the actual cost).
//!
//! The gateway enforces budgets in money (nano-dollars) per key, user, team and organization,
//! per period (daily, weekly, monthly, total). The caller computes the window and names the
//! counter (`team:<id>:monthly:2026-11`), so the ledger only keeps counters: it knows nothing
//! about money or periods, as the limiter knows nothing about principals. A reservation is all
//! or nothing across the counters of one request: when any counter with a limit would go over
//! it, nothing is taken from any counter, and the [`Overdraw`] names the counter. A settle
//! never refuses (the request ran; its cost is spent), so it may push a counter over its limit,
//! and the next reservation is refused. After a restart the caller seeds each window's counter
//! from the store's usage records, unless it exists already (it survived in Redis).
//!
//! Two backends, as for the limiter, built from the limiter's config by [`build_ledger`]:
//! [`MemoryLedger`] (one node; sharded, no global lock) and [`RedisLedger`] (replicas sharing
//! budgets; one Lua script and one round trip per operation, the limiter's connection settings
//! and failure policy). Both run the same conformance suite (`tests/ledger`).
//!
//! Values are exact integers up to [`CEILING`], Redis's largest integer (9.2 billion dollars in
//! nano-dollars): a soft counter or a settle saturates there rather than overflowing, and a
//! limit above it acts as it. Exactness matters for money, which is why Redis's Lua, whose
//! numbers are doubles (exact only up to 2^53, 9 million dollars), never does the arithmetic.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{LimitError, LimiterConfig};

mod memory;
mod redis;

pub use memory::{MemoryLedger, SystemWallClock, WallClock};
pub use redis::RedisLedger;

/// The most a counter holds: Redis's largest integer. Counters saturate here.
pub const CEILING: u64 = i64::MAX as u64;

/// How long a counter outlives its window, so that the settles of requests admitted just
/// before the window's end still find it.
pub const EXPIRY_GRACE: Duration = Duration::from_secs(24 * 60 * 60);

/// One budget counter of one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// e.g. `team:<id>:monthly:2026-11`; the caller makes it unique per window.
    pub name: Arc<str>,
    /// The most the counter may reach; `None`: it only counts (a soft budget) and never refuses.
    pub limit: Option<u64>,
    /// When the window ends, in milliseconds since the Unix epoch; after it (plus a grace of a
    /// day, for late settles) the counter may be forgotten. `None`: never (a total budget).
    pub expires_at_ms: Option<u64>,
}

impl Counter {
    pub fn new(name: impl Into<Arc<str>>, limit: Option<u64>, expires_at_ms: Option<u64>) -> Self {
        Self {
            name: name.into(),
            limit,
            expires_at_ms,
        }
    }

    /// When the counter may be forgotten (ms since the epoch): the window's end plus the
    /// grace. `None`, never, also when that is past what Redis can set an expiry to.
    pub(crate) fn forget_at_ms(&self) -> Option<u64> {
        let grace = EXPIRY_GRACE.as_millis() as u64;
        let at = self.expires_at_ms?.checked_add(grace)?;
        (at <= CEILING).then_some(at)
    }
}

/// A counter's value before and after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    pub before: u64,
    pub after: u64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdraw {
    /// The counter that refused, its limit, and what it held before this request.
    pub counter: Arc<str>,
    pub limit: u64,
    pub spent: u64,
}

/// The answer to a reservation.
#[derive(Debug)]
pub enum LedgerDecision {
    /// Taken from every counter: each counter's value before and after, in the order given.
    /// Empty when the backend was unreachable and its policy is to fail open.
    Admitted(Vec<Spend>),
    /// Nothing was taken from any counter.
    Refused(Overdraw),
}

impl LedgerDecision {
    /// The spends, or `None` when refused.
    pub fn admitted(self) -> Option<Vec<Spend>> {
        match self {
            LedgerDecision::Admitted(spends) => Some(spends),
            LedgerDecision::Refused(_) => None,
        }
    }

    /// The overdraw, or `None` when admitted.
    pub fn refused(self) -> Option<Overdraw> {
        match self {
            LedgerDecision::Admitted(_) => None,
            LedgerDecision::Refused(overdraw) => Some(overdraw),
        }
    }
}

/// The spend ledger. Counter names within one call must be distinct: a counter given twice is
/// checked twice against its value before the call, and charged twice.
#[async_trait]
pub trait SpendLedger: Send + Sync + fmt::Debug {
    /// Adds `amount` to every counter if each counter with a limit stays at or under it
    /// (value + amount <= limit: reaching the limit exactly is allowed, one more is not).
    /// All or nothing. `Err` only when the backend cannot answer and the policy is fail_closed.
    async fn reserve(
        &self,
        counters: &[Counter],
        amount: u64,
    ) -> Result<LedgerDecision, LimitError>;

    /// Adds `delta` (actual cost minus the reserved estimate; negative refunds) to every
    /// counter, never below zero; returns each counter's value before and after. Never refuses
    /// (a settle may push a counter over its limit). `Err` when the backend cannot answer.
    ///
    /// A zero delta, or a refund to an absent counter, leaves it absent (a seed still sets it).
    async fn adjust(&self, counters: &[Counter], delta: i64) -> Result<Vec<Spend>, LimitError>;

    /// Sets the counter to `value` unless it exists already (a window's spend seeded from the
    /// store's usage records after a restart); returns whether it was set.
    async fn seed(&self, counter: &Counter, value: u64) -> Result<bool, LimitError>;

    /// The counters' current values (0 when absent).
    async fn spent(&self, counters: &[Counter]) -> Result<Vec<u64>, LimitError>;
}

/// The ledger for the configured backend (memory, or Redis with the limiter's settings: same
/// URL, timeout and failure policy; keys under `<prefix>spend:`). Redis connects lazily, as the
/// limiter does. Must be called inside a tokio runtime for Redis.
pub fn build_ledger(config: &LimiterConfig) -> Result<Arc<dyn SpendLedger>, LimitError> {
    Ok(match config {
        LimiterConfig::Memory => Arc::new(MemoryLedger::new()),
        LimiterConfig::Redis(redis) => Arc::new(RedisLedger::new(redis)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FailurePolicy, RedisLimiterConfig};

    #[tokio::test]
    async fn builds_each_backend_and_names_a_bad_url() {
        assert!(build_ledger(&LimiterConfig::Memory).is_ok());
        let redis = RedisLimiterConfig::new("redis://127.0.0.1:1", FailurePolicy::FailOpen);
        // Lazy: builds while nothing listens there.
        assert!(build_ledger(&LimiterConfig::Redis(redis)).is_ok());
        let bad = RedisLimiterConfig::new("http://not-redis", FailurePolicy::FailOpen);
        let err = build_ledger(&LimiterConfig::Redis(bad)).err().unwrap();
        assert!(matches!(err, LimitError::Config(_)), "{err}");
    }

    #[test]
    fn redis_needs_a_runtime() {
        let redis = RedisLimiterConfig::new("redis://127.0.0.1:6379", FailurePolicy::FailOpen);
        let err = build_ledger(&LimiterConfig::Redis(redis)).err().unwrap();
        assert!(matches!(err, LimitError::Config(_)), "{err}");
    }

    #[test]
    fn a_window_is_forgotten_a_day_after_its_end_and_never_past_the_ceiling() {
        let monthly = Counter::new("team:t:monthly:2026-11", None, Some(1_000));
        assert_eq!(monthly.forget_at_ms(), Some(86_401_000));
        let total = Counter::new("team:t:total", None, None);
        assert_eq!(total.forget_at_ms(), None);
        let far = Counter::new("team:t:far", None, Some(u64::MAX - 5));
        assert_eq!(far.forget_at_ms(), None);
        let past_ceiling = Counter::new("team:t:past", None, Some(CEILING));
        assert_eq!(past_ceiling.forget_at_ms(), None);
    }
}

//! portcullis-limits: the gateway's rate limiter, behind one [`RateLimiter`] trait, for stage
//! `admit` (reserve before dispatch) and stage `settle` (reconcile with the actual usage).
//!
//! A request reserves against a set of limit keys at once ([`LimitKey`]: `key:<id>`,
//! `team:<id>`, `org:<id>`, `user:<id>`, `model:<name>`, or a combination such as
//! `team:<id>|model:<name>`), each with its own [`LimitRules`]: requests per minute, tokens per
//! minute and concurrent requests in flight. The reservation is all-or-nothing: when any rule
//! of any key refuses, nothing is taken from any key, and the [`Refusal`] names the key and the
//! dimension and says when to retry (for a 429 with `Retry-After`). An admission carries a
//! [`Reservation`] and the tightest limit/remaining/reset of the requests and tokens dimensions
//! (OpenAI's `x-ratelimit-*` headers).
//!
//! Two backends: [`MemoryLimiter`] (one node; sharded, no global lock) and [`RedisLimiter`]
//! (replicas sharing limits; one Lua script and one round trip per operation). Both run the
//! same conformance suite (`tests/conformance`).
//!
//! Beside the limiter, the [`SpendLedger`] (module [`ledger`]) keeps the counters of money
//! budgets per window (reserve an estimated cost all or nothing, adjust by the actual one), on
//! the same backends and the same config.
//!
//! This is its own crate so that the Redis client stays out of the engine's compile; it knows
//! nothing of the engine (no `Principal`): the caller names the keys and the counters.
//!
//! The trait is object-safe through `async-trait`, as the store's is: the gateway holds an
//! `Arc<dyn RateLimiter>` built from the config, and tests inject either backend. The boxed
//! future costs tens of nanoseconds (see `benches/limits.rs`), nothing next to a Redis round
//! trip, and an enum of backends would have to be edited for every new one. Settling goes
//! through the [`Reservation`] rather than the limiter (the design's `settle(reservation,
//! actual)`), because the handle must know its backend anyway to free its concurrency slots
//! when it is dropped unsettled (a client that disconnects).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

mod bucket;
pub mod config;
mod error;
pub mod ledger;
mod memory;
mod redis_limiter;
mod redis_link;
mod reservation;
mod shards;

pub use config::{FailurePolicy, LimitRules, LimiterConfig, RedisLimiterConfig, build};
pub use error::LimitError;
pub use ledger::{
    Counter, LedgerDecision, MemoryLedger, Overdraw, RedisLedger, Spend, SpendLedger,
    SystemWallClock, WallClock, build_ledger,
};
pub use memory::{Clock, MemoryLimiter, SystemClock};
pub use redis_limiter::RedisLimiter;
pub use reservation::Reservation;

/// The window of every rate: limits are per minute.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The rate limiter: reserve before dispatch, settle (through the [`Reservation`]) after.
#[async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Reserves one request, `tokens` estimated tokens and one concurrency slot against every
    /// key's rules, all or nothing. Names must be distinct: a key given twice is charged twice.
    ///
    /// `Err` only when the backend cannot answer and its policy is to fail closed.
    async fn reserve(&self, keys: Vec<LimitKey>, tokens: u64) -> Result<Decision, LimitError>;
}

/// One limit key and the rules configured for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitKey {
    /// `key:<id>`, `team:<id>`, `model:<name>`, `team:<id>|model:<name>`, ...
    pub name: Arc<str>,
    pub rules: LimitRules,
}

impl LimitKey {
    pub fn new(name: impl Into<Arc<str>>, rules: LimitRules) -> Self {
        Self {
            name: name.into(),
            rules,
        }
    }
}

/// The answer to a reservation.
#[derive(Debug)]
pub enum Decision {
    Admitted(Admission),
    Refused(Refusal),
}

impl Decision {
    /// The admission, or `None` when refused.
    pub fn admitted(self) -> Option<Admission> {
        match self {
            Decision::Admitted(a) => Some(a),
            Decision::Refused(_) => None,
        }
    }

    /// The refusal, or `None` when admitted (the reservation is then dropped, which frees it).
    pub fn refused(self) -> Option<Refusal> {
        match self {
            Decision::Admitted(_) => None,
            Decision::Refused(r) => Some(r),
        }
    }
}

/// An admitted request: its reservation and the figures for OpenAI's `x-ratelimit-*` headers.
#[derive(Debug)]
pub struct Admission {
    pub reservation: Reservation,
    /// The tightest requests-per-minute rule among the keys, after this request; `None` when
    /// no key has one (or the backend was unreachable and failed open).
    pub requests: Option<Headroom>,
    /// The tightest tokens-per-minute rule among the keys, after this request's estimate.
    pub tokens: Option<Headroom>,
}

/// One dimension's state after an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub limit: u64,
    pub remaining: u64,
    /// Until the dimension is back to its full limit (`x-ratelimit-reset-*`).
    pub reset: Duration,
}

impl Headroom {
    /// Keeps the tighter of `self` and `other` (fewer remaining; then the smaller limit).
    pub(crate) fn tighter(a: Option<Self>, b: Self) -> Option<Self> {
        match a {
            Some(a) if (a.remaining, a.limit) <= (b.remaining, b.limit) => Some(a),
            _ => Some(b),
        }
    }
}

/// Which rule of a key refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Requests,
    Tokens,
    Concurrency,
}

impl Dimension {
    /// A low-cardinality label for metrics and error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Requests => "requests",
            Dimension::Tokens => "tokens",
            Dimension::Concurrency => "concurrency",
        }
    }
}

/// A refused request: nothing was taken from any key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The limit key whose rule refused.
    pub key: Arc<str>,
    pub dimension: Dimension,
    /// The rule's configured limit.
    pub limit: u64,
    pub retry: Retry,
}

/// When a refused request may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// After this long, if nothing else is taken meanwhile (`Retry-After`).
    After(Duration),
    /// When a request in flight finishes: no time can be named.
    OnRelease,
    /// Never: the request alone exceeds the limit (an estimate above the tokens per minute).
    Never,
}

//! The limiter conformance suite: every case in `cases.rs` is written once against an [`Env`]
//! (a `dyn RateLimiter` and a way to let time pass) and runs on both backends: memory on a
//! clock the test drives (time passes instantly and exactly), and Redis on real time, each
//! test under a key prefix of its own so tests run in parallel and repeated runs never meet.
//! `redis_only.rs` holds what only Redis has: two replicas sharing limits, and the failure
//! policy, tested by cutting a proxy between the limiter and Redis.
//!
//! Redis is at `redis://127.0.0.1:6379` unless `PORTCULLIS_TEST_REDIS_URL` says otherwise.
//! When it cannot be reached the Redis tests print `skipping: <why>` and pass, unless
//! `PORTCULLIS_TEST_SERVICES=require` (as in CI), where they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod cases;
mod proxy;
mod redis_only;
mod services;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_limits::{Clock, FailurePolicy, MemoryLimiter, RateLimiter, RedisLimiter};

pub use services::{redis_available, redis_config, redis_url};

/// A clock that moves only when the test says so.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a case runs against.
#[derive(Debug)]
pub struct Env {
    pub limiter: Arc<dyn RateLimiter>,
    /// `Some` on the memory backend: time passes by hand. `None`: real time (Redis).
    clock: Option<ManualClock>,
}

impl Env {
    /// Lets `by` pass.
    pub async fn advance(&self, by: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(by),
            None => tokio::time::sleep(by).await,
        }
    }

    /// Whether time passes on its own between two calls (Redis): bounds then allow for it.
    pub fn real_time(&self) -> bool {
        self.clock.is_none()
    }
}

pub fn memory() -> Env {
    let clock = ManualClock::default();
    Env {
        limiter: Arc::new(MemoryLimiter::with_clock(clock.clone())),
        clock: Some(clock),
    }
}

/// A Redis limiter under a fresh prefix, or `None` when Redis is unreachable and not required.
pub async fn redis() -> Option<Env> {
    if !redis_available().await {
        return None;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    Some(Env {
        limiter: Arc::new(RedisLimiter::new(&config).unwrap()),
        clock: None,
    })
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(&crate::memory()).await;
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(env) = crate::redis().await else { return };
                    crate::cases::$case(&env).await;
                }
            )*
        }
    };
}

conformance!(
    requests_up_to_the_limit_then_refused_with_retry_after,
    requests_refill_over_time,
    tokens_settled_below_the_estimate_are_refunded,
    tokens_settled_above_the_estimate_go_into_debt,
    an_estimate_above_the_limit_never_fits,
    a_refusal_on_one_key_takes_nothing_from_the_others,
    concurrency_slots_are_freed_by_settle_and_by_drop,
    a_cancelled_reservation_frees_its_slot,
    headroom_reports_the_tightest_rule,
    concurrent_tasks_never_exceed_a_limit_together,
    keys_without_rules_always_admit,
);

//! The spend ledger conformance suite: every case in `cases.rs` is written once against an
//! [`Env`] (a `dyn SpendLedger`, the time, and a way to let it pass) and runs on both backends:
//! memory on a wall clock the test sets (time passes instantly and exactly), and Redis on real
//! time, each test under a key prefix of its own so tests run in parallel and repeated runs
//! never meet. `redis_only.rs` holds what only Redis has: two replicas sharing a budget, key
//! expiry, and the failure policy, tested by cutting a proxy between the ledger and Redis.
//!
//! The Redis helpers and the proxy are the limiter suite's (`tests/conformance`), included
//! through `#[path]`: Redis is at `redis://127.0.0.1:6379` unless `PORTCULLIS_TEST_REDIS_URL`
//! says otherwise, and when it cannot be reached the Redis tests print `skipping: <why>` and
//! pass, unless `PORTCULLIS_TEST_SERVICES=require` (as in CI), where they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod cases;
#[path = "../conformance/proxy.rs"]
mod proxy;
mod redis_only;
#[path = "../conformance/services.rs"]
mod services;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_limits::{FailurePolicy, MemoryLedger, RedisLedger, SpendLedger, WallClock};

pub use services::{redis_available, redis_config, redis_url};

/// A wall clock that moves only when the test says so, from 2026-11-15 00:00 UTC.
#[derive(Debug, Clone)]
pub struct ManualWallClock(Arc<AtomicU64>);

impl Default for ManualWallClock {
    fn default() -> Self {
        Self(Arc::new(AtomicU64::new(1_794_700_800_000)))
    }
}

impl WallClock for ManualWallClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a case runs against.
#[derive(Debug)]
pub struct Env {
    pub ledger: Arc<dyn SpendLedger>,
    /// `Some` on the memory backend: time passes by hand. `None`: real time (Redis).
    clock: Option<ManualWallClock>,
}

impl Env {
    /// The time, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.clock {
            Some(clock) => clock.now_ms(),
            None => portcullis_limits::SystemWallClock.now_ms(),
        }
    }

    /// Lets `by` pass.
    pub async fn advance(&self, by: Duration) {
        match &self.clock {
            Some(clock) => {
                clock.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
            }
            None => tokio::time::sleep(by).await,
        }
    }
}

pub fn memory() -> Env {
    let clock = ManualWallClock::default();
    Env {
        ledger: Arc::new(MemoryLedger::with_clock(clock.clone())),
        clock: Some(clock),
    }
}

/// A Redis ledger under a fresh prefix, or `None` when Redis is unreachable and not required.
pub async fn redis() -> Option<Env> {
    if !redis_available().await {
        return None;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    Some(Env {
        ledger: Arc::new(RedisLedger::new(&config).unwrap()),
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
    exactly_the_limit_is_admitted_and_one_more_refused,
    a_refusal_takes_nothing_from_the_other_counters,
    soft_counters_never_refuse_and_saturate_at_the_ceiling,
    adjust_refunds_and_charges_and_floors_at_zero,
    adjust_reports_each_counter_in_the_order_given,
    a_refund_or_a_zero_adjust_leaves_an_absent_counter_absent,
    seed_sets_only_an_absent_counter,
    spent_of_an_absent_counter_is_zero,
    concurrent_tasks_never_exceed_a_limit_together,
    values_past_two_to_the_53_stay_exact,
    a_counter_is_forgotten_after_its_window_and_the_grace,
);

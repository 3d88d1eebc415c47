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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_limits::{
    Clock, FailurePolicy, MemoryLimiter, RateLimiter, RedisLimiter, RedisLimiterConfig,
};

const URL_VAR: &str = "PORTCULLIS_TEST_REDIS_URL";
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const REQUIRE_VAR: &str = "PORTCULLIS_TEST_SERVICES";

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

pub fn redis_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("portcullis-test:{}:{nanos:x}:{n}:", std::process::id())
}

/// A Redis config for tests: a unique prefix, a timeout generous enough for a loaded machine
/// (`redis_only` exercises the timeout itself), and a short lease: a reservation dropped as a
/// test ends is released by a task the ending runtime may never run, and its slot should not
/// sit in Redis for the default quarter of an hour.
pub fn redis_config(url: String, policy: FailurePolicy) -> RedisLimiterConfig {
    let mut config = RedisLimiterConfig::new(url, policy);
    config.prefix = unique_prefix();
    config.timeout = Duration::from_secs(2);
    config.lease = Duration::from_secs(10);
    config
}

/// Whether Redis answers; `false` (after saying why) when it does not and is not required.
pub async fn redis_available() -> bool {
    let ping = async {
        let client = ::redis::Client::open(redis_url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let outcome = tokio::time::timeout(Duration::from_secs(2), ping).await;
    let why = match outcome {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2s".to_owned(),
    };
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "require");
    if required {
        panic!("Redis is required ({REQUIRE_VAR}=require) but unreachable ({URL_VAR}): {why}");
    }
    eprintln!("skipping: Redis unreachable ({URL_VAR}): {why}");
    false
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

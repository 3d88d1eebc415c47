//! What a reservation and its settle cost: in memory with one key and with five (a request's
//! key, user, team, organization and model), and in Redis (a local server, one round trip for
//! the reservation and one for the settle). Redis is at `redis://127.0.0.1:6379` unless
//! `PORTCULLIS_TEST_REDIS_URL` says otherwise; its benches are skipped when it does not answer.
//! Run with `cargo bench -p portcullis-limits --bench limits`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_limits::{
    FailurePolicy, LimitKey, LimitRules, MemoryLimiter, RateLimiter, RedisLimiter,
    RedisLimiterConfig,
};
use tokio::runtime::Runtime;

/// Limits high enough that the bench never hits them: it measures the bookkeeping.
const RULES: LimitRules = LimitRules {
    rpm: Some(1 << 40),
    tpm: Some(1 << 50),
    max_concurrent: Some(1 << 20),
};

fn keys(n: usize) -> Vec<LimitKey> {
    let names = [
        "key:k1",
        "user:u1",
        "team:t1",
        "org:o1",
        "team:t1|model:gpt-4o",
    ];
    names[..n]
        .iter()
        .map(|n| LimitKey::new(*n, RULES))
        .collect()
}

/// Times `iters` reservations of `keys` (500 estimated tokens) each settled with 420.
fn reserve_settle(
    rt: &Runtime,
    limiter: &dyn RateLimiter,
    keys: &[LimitKey],
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let decision = limiter.reserve(keys.to_vec(), 500).await.unwrap();
            let admission = decision.admitted().unwrap();
            black_box(admission.requests);
            admission.reservation.settle(420).await.unwrap();
        }
        start.elapsed()
    })
}

fn memory(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let limiter = MemoryLimiter::new();
    for n in [1, 5] {
        let keys = keys(n);
        c.bench_function(&format!("memory/reserve_settle/{n}_keys"), |b| {
            b.iter_custom(|iters| reserve_settle(&rt, &limiter, &keys, iters));
        });
    }
}

fn redis(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let url = std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut config = RedisLimiterConfig::new(url, FailurePolicy::FailClosed);
    config.prefix = format!("portcullis-bench:{}:", std::process::id());
    config.timeout = Duration::from_secs(1);
    let limiter = rt.block_on(async { RedisLimiter::new(&config) }).unwrap();
    let probe = rt.block_on(limiter.reserve(keys(1), 0));
    if let Err(e) = probe {
        eprintln!("skipping the Redis benches: {e}");
        return;
    }
    for n in [1, 5] {
        let keys = keys(n);
        c.bench_function(&format!("redis/reserve_settle/{n}_keys"), |b| {
            b.iter_custom(|iters| reserve_settle(&rt, &limiter, &keys, iters));
        });
    }
    // The reservation alone: the one round trip a request waits for before dispatch.
    let keys = keys(1);
    c.bench_function("redis/reserve/1_key", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let decision = limiter.reserve(keys.to_vec(), 500).await.unwrap();
                    timed += start.elapsed();
                    // Settled outside the timed span; same tokens, so only the slot is freed.
                    let admission = decision.admitted().unwrap();
                    admission.reservation.settle(500).await.unwrap();
                }
                timed
            })
        });
    });
}

criterion_group!(benches, memory, redis);
criterion_main!(benches);

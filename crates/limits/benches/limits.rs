//! What a reservation and its settle cost: in memory with one key and with five (a request's
//! key, user, team, organization and model), and in Redis (a local server, one round trip for
//! the reservation and one for the settle). The same for the spend ledger (`ledger/...`): a
//! reservation of an estimated cost and its adjustment by the actual one, against one counter
//! and against four (a request's key, user, team and organization budgets). Redis is at
//! `redis://127.0.0.1:6379` unless `PORTCULLIS_TEST_REDIS_URL` says otherwise; its benches are
//! skipped when it does not answer. Run with `cargo bench -p portcullis-limits --bench limits`
//! (`-- ledger` for the ledger's alone).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_limits::ledger::{CEILING, EXPIRY_GRACE};
use portcullis_limits::{
    Counter, FailurePolicy, LimitKey, LimitRules, MemoryLedger, MemoryLimiter, RateLimiter,
    RedisLedger, RedisLimiter, RedisLimiterConfig, SpendLedger, SystemWallClock, WallClock,
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

fn redis_config() -> RedisLimiterConfig {
    let url = std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut config = RedisLimiterConfig::new(url, FailurePolicy::FailClosed);
    config.prefix = format!("portcullis-bench:{}:", std::process::id());
    config.timeout = Duration::from_secs(1);
    config
}

fn redis(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let config = redis_config();
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

/// A request's budget counters: a limit that the bench never reaches, and a window that ended a
/// day ago less ten minutes, so Redis forgets the bench's counters ten minutes after it.
fn counters(n: usize) -> Vec<Counter> {
    let names = [
        "key:k1:daily:2026-11-15",
        "user:u1:monthly:2026-11",
        "team:t1:monthly:2026-11",
        "org:o1:total",
    ];
    let grace = EXPIRY_GRACE.as_millis() as u64;
    let ends = SystemWallClock.now_ms() - grace + 10 * 60 * 1000;
    names[..n]
        .iter()
        .map(|name| Counter::new(*name, Some(CEILING), Some(ends)))
        .collect()
}

/// Times `iters` reservations of 500 000 nano-dollars against `counters`, each adjusted by the
/// actual cost, 80 000 less.
fn reserve_adjust(
    rt: &Runtime,
    ledger: &dyn SpendLedger,
    counters: &[Counter],
    iters: u64,
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let decision = ledger.reserve(counters, 500_000).await.unwrap();
            black_box(decision.admitted().unwrap());
            black_box(ledger.adjust(counters, -80_000).await.unwrap());
        }
        start.elapsed()
    })
}

fn ledger(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let memory = MemoryLedger::new();
    for n in [1, 4] {
        let counters = counters(n);
        c.bench_function(&format!("ledger/memory/reserve_adjust/{n}_counters"), |b| {
            b.iter_custom(|iters| reserve_adjust(&rt, &memory, &counters, iters));
        });
    }
    let redis = rt
        .block_on(async { RedisLedger::new(&redis_config()) })
        .unwrap();
    if let Err(e) = rt.block_on(redis.spent(&counters(1))) {
        eprintln!("skipping the Redis ledger benches: {e}");
        return;
    }
    for n in [1, 4] {
        let counters = counters(n);
        c.bench_function(&format!("ledger/redis/reserve_adjust/{n}_counters"), |b| {
            b.iter_custom(|iters| reserve_adjust(&rt, &redis, &counters, iters));
        });
    }
    // The reservation alone: the one round trip a request waits for before dispatch.
    let counters = counters(4);
    c.bench_function("ledger/redis/reserve/4_counters", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let decision = redis.reserve(&counters, 500_000).await.unwrap();
                    timed += start.elapsed();
                    black_box(decision.admitted().unwrap());
                    redis.adjust(&counters, -500_000).await.unwrap();
                }
                timed
            })
        });
    });
}

criterion_group!(benches, memory, redis, ledger);
criterion_main!(benches);

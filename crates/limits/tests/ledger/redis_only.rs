//! What only the Redis ledger has: replicas sharing one budget, keys that expire with their
//! window, scripts sent again after a flush, and the failure policy when Redis is cut off.

use std::sync::Arc;
use std::time::Duration;

use portcullis_limits::ledger::EXPIRY_GRACE;
use portcullis_limits::{
    Counter, FailurePolicy, LedgerDecision, LimitError, RedisLedger, SpendLedger, SystemWallClock,
    WallClock,
};

use crate::proxy::Proxy;
use crate::services::upstream_of;
use crate::{redis_available, redis_config, redis_url};

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_exceed_a_shared_limit() {
    if !redis_available().await {
        return;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    // Two ledgers, two connections, one prefix: two gateway replicas.
    let replicas: [Arc<dyn SpendLedger>; 2] = [
        Arc::new(RedisLedger::new(&config).unwrap()),
        Arc::new(RedisLedger::new(&config).unwrap()),
    ];
    let team = Arc::new([Counter::new("team:t:monthly:2026-11", Some(500), None)]);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let ledger = replicas[i % 2].clone();
        let team = team.clone();
        tasks.push(tokio::spawn(async move {
            let decision = ledger.reserve(&*team, 10).await.unwrap();
            decision.admitted().is_some()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 50);
    for replica in &replicas {
        assert_eq!(replica.spent(&*team).await.unwrap(), [500]);
    }
}

async fn pttl(key: &str) -> i64 {
    let mut conn = redis_conn().await;
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Keys are `<prefix>spend:<name>`; every write sets the expiry to the window's end plus the
/// grace, and a total budget's key never expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_a_day_after_their_window() {
    if !redis_available().await {
        return;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    let ledger = RedisLedger::new(&config).unwrap();
    let now = SystemWallClock.now_ms();
    let ten_days = 10 * 86_400_000;
    let expected = (ten_days + EXPIRY_GRACE.as_millis() as u64) as i64;
    let key = |name: &str| format!("{}spend:{name}", config.prefix);
    let close = |ttl: i64| (expected - 5_000..=expected).contains(&ttl);

    let monthly = Counter::new("team:t:monthly:2026-11", Some(100), Some(now + ten_days));
    let total = Counter::new("team:t:total", Some(100), None);
    let decision = ledger.reserve(&[monthly.clone(), total.clone()], 5).await;
    assert!(decision.unwrap().admitted().is_some());
    let ttl = pttl(&key("team:t:monthly:2026-11")).await;
    assert!(close(ttl), "reserved: ttl {ttl}, expected about {expected}");
    assert_eq!(
        pttl(&key("team:t:total")).await,
        -1,
        "a total never expires"
    );

    let adjusted = Counter::new("user:u:monthly:2026-11", None, Some(now + ten_days));
    ledger.adjust(&[adjusted], 7).await.unwrap();
    let ttl = pttl(&key("user:u:monthly:2026-11")).await;
    assert!(close(ttl), "adjusted: ttl {ttl}");

    let seeded = Counter::new("org:o:monthly:2026-11", None, Some(now + ten_days));
    assert!(ledger.seed(&seeded, 9).await.unwrap());
    let ttl = pttl(&key("org:o:monthly:2026-11")).await;
    assert!(close(ttl), "seeded: ttl {ttl}");
}

/// After a Redis restart (or `SCRIPT FLUSH`) `EVALSHA` answers `NOSCRIPT`; the ledger sends
/// each script itself (`EVAL`) and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_from_redis_are_sent_again() {
    if !redis_available().await {
        return;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    let ledger = RedisLedger::new(&config).unwrap();
    let team = [Counter::new("team:t", Some(100), None)];
    assert!(
        ledger
            .reserve(&team, 60)
            .await
            .unwrap()
            .admitted()
            .is_some()
    );
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut redis_conn().await)
        .await
        .unwrap();
    let refused = ledger.reserve(&team, 41).await.unwrap().refused();
    assert_eq!(refused.map(|o| o.spent), Some(60));
    let spends = ledger.adjust(&team, -10).await.unwrap();
    assert_eq!((spends[0].before, spends[0].after), (60, 50));
    let other = Counter::new("team:u", None, None);
    assert!(ledger.seed(&other, 3).await.unwrap());
    assert_eq!(
        ledger.spent(&[team[0].clone(), other]).await.unwrap(),
        [50, 3]
    );
}

/// A ledger through a proxy that the test can cut, with a short timeout.
async fn through_proxy(policy: FailurePolicy) -> Option<(Proxy, RedisLedger)> {
    if !redis_available().await {
        return None;
    }
    let proxy = Proxy::start(upstream_of(&redis_url())).await;
    let mut config = redis_config(format!("redis://{}", proxy.addr), policy);
    config.timeout = Duration::from_millis(200);
    let ledger = RedisLedger::new(&config).unwrap();
    Some((proxy, ledger))
}

fn key_budget() -> [Counter; 1] {
    [Counter::new("key:k:daily", Some(100), None)]
}

/// While cut off, settles, seeds and reads answer the error whatever the policy.
async fn the_rest_fails(ledger: &RedisLedger) {
    let budget = key_budget();
    let adjusted = ledger.adjust(&budget, -10).await;
    assert!(
        matches!(adjusted, Err(LimitError::Unavailable(_))),
        "{adjusted:?}"
    );
    let seeded = ledger.seed(&budget[0], 10).await;
    assert!(
        matches!(seeded, Err(LimitError::Unavailable(_))),
        "{seeded:?}"
    );
    let spent = ledger.spent(&budget).await;
    assert!(
        matches!(spent, Err(LimitError::Unavailable(_))),
        "{spent:?}"
    );
}

/// Retries until Redis answers again through the restored proxy; the budget is spent there, so
/// an answer is a refusal that names what it holds.
async fn refused_again_once_restored(ledger: &RedisLedger) {
    for _ in 0..100 {
        if let Ok(LedgerDecision::Refused(o)) = ledger.reserve(&key_budget(), 1).await {
            assert_eq!(o.spent, 100);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ledger never reached Redis again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_admits_and_counts_while_redis_is_cut_off() {
    let Some((proxy, ledger)) = through_proxy(FailurePolicy::FailOpen).await else {
        return;
    };
    let first = ledger.reserve(&key_budget(), 100).await.unwrap();
    assert!(first.admitted().is_some());
    let second = ledger.reserve(&key_budget(), 1).await.unwrap();
    assert!(
        second.refused().is_some(),
        "Redis keeps budgets while reachable"
    );
    assert_eq!(ledger.unavailable_admissions(), 0);

    proxy.cut();
    for _ in 0..3 {
        let decision = ledger.reserve(&key_budget(), 1).await.unwrap();
        let spends = decision.admitted().expect("fail_open admits while cut off");
        assert!(spends.is_empty(), "no spends without Redis: {spends:?}");
    }
    assert_eq!(ledger.unavailable_admissions(), 3);
    the_rest_fails(&ledger).await;
    assert_eq!(
        ledger.unavailable_admissions(),
        3,
        "only reservations count"
    );

    proxy.restore();
    refused_again_once_restored(&ledger).await;
    assert_eq!(ledger.unavailable_refusals(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_with_unavailable_while_redis_is_cut_off() {
    let Some((proxy, ledger)) = through_proxy(FailurePolicy::FailClosed).await else {
        return;
    };
    let first = ledger.reserve(&key_budget(), 100).await.unwrap();
    assert!(first.admitted().is_some());

    proxy.cut();
    for _ in 0..3 {
        let outcome = ledger.reserve(&key_budget(), 1).await;
        assert!(
            matches!(outcome, Err(LimitError::Unavailable(_))),
            "fail_closed gives Unavailable, got {outcome:?}"
        );
    }
    assert_eq!(ledger.unavailable_refusals(), 3);
    the_rest_fails(&ledger).await;
    assert_eq!(ledger.unavailable_refusals(), 3, "only reservations count");
    assert_eq!(ledger.unavailable_admissions(), 0);

    proxy.restore();
    refused_again_once_restored(&ledger).await;
}

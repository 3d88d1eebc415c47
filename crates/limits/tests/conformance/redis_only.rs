//! What only the Redis backend has: replicas sharing one limit, key expiry, leases that free
//! the slots of a replica that died, and the failure policy when Redis is cut off.

use std::sync::Arc;
use std::time::Duration;

use portcullis_limits::{
    Decision, FailurePolicy, LimitError, LimitKey, LimitRules, RateLimiter, RedisLimiter,
};

use crate::proxy::Proxy;
use crate::services::upstream_of;
use crate::{redis_available, redis_config, redis_url};

fn rpm(name: &str, n: u64) -> Vec<LimitKey> {
    let rules = LimitRules {
        rpm: Some(n),
        ..LimitRules::default()
    };
    vec![LimitKey::new(name, rules)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_exceed_a_shared_limit() {
    if !redis_available().await {
        return;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    // Two limiters, two connection managers, one prefix: two gateway replicas.
    let replicas: [Arc<dyn RateLimiter>; 2] = [
        Arc::new(RedisLimiter::new(&config).unwrap()),
        Arc::new(RedisLimiter::new(&config).unwrap()),
    ];
    let mut tasks = Vec::new();
    for i in 0..200 {
        let limiter = replicas[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let decision = limiter.reserve(rpm("team:t", 50), 0).await.unwrap();
            decision.admitted().is_some()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 50);
}

async fn pttl(key: &str) -> i64 {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keys_expire_and_dead_replicas_leases_lapse() {
    if !redis_available().await {
        return;
    }
    let mut config = redis_config(redis_url(), FailurePolicy::FailClosed);
    config.lease = Duration::from_millis(300);
    let limiter = RedisLimiter::new(&config).unwrap();
    let rules = LimitRules {
        rpm: Some(60),
        tpm: None,
        max_concurrent: Some(1),
    };
    let keys = vec![LimitKey::new("key:k", rules)];
    let admission = limiter.reserve(keys.clone(), 0).await.unwrap().admitted();
    // The replica dies holding the slot: nothing ever releases it.
    std::mem::forget(admission);
    // One request drains in 1 s, plus a second's margin; the lease set lives as long as a lease.
    let rate_ttl = pttl(&format!("{}key:k:rpm", config.prefix)).await;
    assert!((1000..=2000).contains(&rate_ttl), "rpm key ttl {rate_ttl}");
    let lease_ttl = pttl(&format!("{}key:k:conc", config.prefix)).await;
    assert!((1..=1300).contains(&lease_ttl), "lease key ttl {lease_ttl}");
    let refused = limiter.reserve(keys.clone(), 0).await.unwrap();
    assert!(refused.refused().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let decision = limiter.reserve(keys, 0).await.unwrap();
    assert!(
        decision.admitted().is_some(),
        "the lapsed lease still holds the slot"
    );
}

/// A limiter through a proxy that the test can cut, with a short timeout.
async fn through_proxy(policy: FailurePolicy) -> Option<(Proxy, RedisLimiter)> {
    if !redis_available().await {
        return None;
    }
    let proxy = Proxy::start(upstream_of(&redis_url())).await;
    let mut config = redis_config(format!("redis://{}", proxy.addr), policy);
    config.timeout = Duration::from_millis(200);
    let limiter = RedisLimiter::new(&config).unwrap();
    Some((proxy, limiter))
}

/// Retries until Redis answers again through the restored proxy; the key is still at its limit
/// there, so an answer is a refusal.
async fn refused_again_once_restored(limiter: &RedisLimiter) {
    for _ in 0..100 {
        if let Ok(Decision::Refused(_)) = limiter.reserve(rpm("key:k", 1), 0).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the limiter never reached Redis again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_admits_and_counts_while_redis_is_cut_off() {
    let Some((proxy, limiter)) = through_proxy(FailurePolicy::FailOpen).await else {
        return;
    };
    let first = limiter.reserve(rpm("key:k", 1), 0).await.unwrap();
    assert!(first.admitted().is_some());
    let second = limiter.reserve(rpm("key:k", 1), 0).await.unwrap();
    assert!(second.refused().is_some(), "Redis limits while reachable");
    assert_eq!(limiter.unavailable_admissions(), 0);

    proxy.cut();
    for _ in 0..3 {
        let admission = limiter
            .reserve(rpm("key:k", 1), 0)
            .await
            .unwrap()
            .admitted();
        let admission = admission.expect("fail_open admits while Redis is cut off");
        assert_eq!(admission.requests, None, "no figures without Redis");
        admission.reservation.settle(0).await.unwrap();
    }
    assert_eq!(limiter.unavailable_admissions(), 3);

    proxy.restore();
    refused_again_once_restored(&limiter).await;
    assert_eq!(limiter.unavailable_refusals(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_with_unavailable_while_redis_is_cut_off() {
    let Some((proxy, limiter)) = through_proxy(FailurePolicy::FailClosed).await else {
        return;
    };
    let first = limiter.reserve(rpm("key:k", 1), 0).await.unwrap();
    assert!(first.admitted().is_some());

    proxy.cut();
    for _ in 0..3 {
        let outcome = limiter.reserve(rpm("key:k", 1), 0).await;
        assert!(
            matches!(outcome, Err(LimitError::Unavailable(_))),
            "fail_closed gives Unavailable, got {outcome:?}"
        );
    }
    assert_eq!(limiter.unavailable_refusals(), 3);
    assert_eq!(limiter.unavailable_admissions(), 0);

    proxy.restore();
    refused_again_once_restored(&limiter).await;
}

/// After a Redis restart (or `SCRIPT FLUSH`) `EVALSHA` answers `NOSCRIPT`; the limiter sends
/// the script itself (`EVAL`) and carries on. Flushing affects other clients of this Redis only
/// by making them do the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_flushed_from_redis_are_sent_again() {
    if !redis_available().await {
        return;
    }
    let config = redis_config(redis_url(), FailurePolicy::FailClosed);
    let limiter = RedisLimiter::new(&config).unwrap();
    let first = limiter.reserve(rpm("key:k", 2), 0).await.unwrap();
    assert!(first.admitted().is_some());
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let second = limiter.reserve(rpm("key:k", 2), 0).await.unwrap();
    let admission = second.admitted().expect("admitted after the flush");
    assert_eq!(admission.requests.unwrap().remaining, 0);
}

/// Counts the limiter's warnings.
struct CountWarnings(Arc<std::sync::atomic::AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target().starts_with("portcullis_limits") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// One warning per outage, not one per request: a single-threaded runtime, so the limiter's
/// tasks run on the thread whose subscriber counts.
#[tokio::test(flavor = "current_thread")]
async fn fail_open_warns_once_per_outage() {
    use tracing_subscriber::layer::SubscriberExt;

    let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(warnings.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let count = || warnings.load(std::sync::atomic::Ordering::SeqCst);
    let Some((proxy, limiter)) = through_proxy(FailurePolicy::FailOpen).await else {
        return;
    };
    let first = limiter.reserve(rpm("key:k", 1), 0).await.unwrap();
    assert!(first.admitted().is_some());
    for outage in 1..=2 {
        proxy.cut();
        for _ in 0..3 {
            let decision = limiter.reserve(rpm("key:k", 1), 0).await.unwrap();
            assert!(decision.admitted().is_some());
        }
        assert_eq!(count(), outage, "warnings after outage {outage}");
        proxy.restore();
        refused_again_once_restored(&limiter).await;
    }
    assert_eq!(limiter.unavailable_admissions(), 6);
}

//! The cases every backend must pass. Memory runs them on a clock that stands still unless a
//! case advances it; Redis on real time, so bounds on durations allow for the milliseconds a
//! round trip takes (a rate leaks a little between two calls), never for more.

use std::sync::Arc;
use std::time::Duration;

use portcullis_limits::{Admission, Dimension, LimitKey, LimitRules, Refusal, Retry};

use crate::Env;

fn key(name: &str, rpm: Option<u64>, tpm: Option<u64>, conc: Option<u64>) -> LimitKey {
    LimitKey::new(
        name,
        LimitRules {
            rpm,
            tpm,
            max_concurrent: conc,
        },
    )
}

async fn admit(env: &Env, keys: &[LimitKey], tokens: u64) -> Admission {
    match env.limiter.reserve(keys.to_vec(), tokens).await.unwrap() {
        portcullis_limits::Decision::Admitted(a) => a,
        portcullis_limits::Decision::Refused(r) => panic!("refused: {r:?}"),
    }
}

async fn refuse(env: &Env, keys: &[LimitKey], tokens: u64) -> Refusal {
    let decision = env.limiter.reserve(keys.to_vec(), tokens).await.unwrap();
    decision.refused().expect("admitted, expected a refusal")
}

fn retry_after(refusal: &Refusal) -> Duration {
    match refusal.retry {
        Retry::After(d) => d,
        other => panic!("expected a retry-after, got {other:?}"),
    }
}

/// `d` is `expected` (to the millisecond: floating-point and microsecond rounding), or, on
/// real time, up to `slack` less (time passed since the figure was taken).
fn about(env: &Env, d: Duration, expected: Duration, slack: Duration) {
    let rounding = Duration::from_millis(1);
    let low = if env.real_time() {
        expected.saturating_sub(slack)
    } else {
        expected.saturating_sub(rounding)
    };
    let high = expected + rounding;
    assert!(d >= low && d <= high, "{d:?} not in [{low:?}, {high:?}]");
}

pub async fn requests_up_to_the_limit_then_refused_with_retry_after(env: &Env) {
    let keys = [key("key:a", Some(60), None, None)];
    for _ in 0..60 {
        admit(env, &keys, 0).await;
    }
    let refusal = refuse(env, &keys, 0).await;
    assert_eq!(&*refusal.key, "key:a");
    assert_eq!(refusal.dimension, Dimension::Requests);
    assert_eq!(refusal.limit, 60);
    // One request leaks per second at 60 per minute.
    let slack = Duration::from_millis(500);
    about(env, retry_after(&refusal), Duration::from_secs(1), slack);
}

pub async fn requests_refill_over_time(env: &Env) {
    let keys = [key("key:a", Some(60), None, None)];
    for _ in 0..60 {
        admit(env, &keys, 0).await;
    }
    let wait = retry_after(&refuse(env, &keys, 0).await);
    env.advance(wait).await;
    admit(env, &keys, 0).await;
    // That was the one request that leaked; the next waits about a second again.
    let again = refuse(env, &keys, 0).await;
    about(
        env,
        retry_after(&again),
        Duration::from_secs(1),
        Duration::from_millis(500),
    );
}

pub async fn tokens_settled_below_the_estimate_are_refunded(env: &Env) {
    let keys = [key("key:a", None, Some(1000), None)];
    let first = admit(env, &keys, 600).await;
    assert_eq!(first.tokens.unwrap().remaining, 400);
    assert_eq!(first.reservation.estimate(), 600);
    // Only 100 were used: 500 come back, so 900 fit now where 400 did before.
    first.reservation.settle(100).await.unwrap();
    let second = admit(env, &keys, 900).await;
    assert!(second.tokens.unwrap().remaining <= 1);
    let refusal = refuse(env, &keys, 10).await;
    assert_eq!(refusal.dimension, Dimension::Tokens);
}

pub async fn tokens_settled_above_the_estimate_go_into_debt(env: &Env) {
    let keys = [key("key:a", None, Some(1000), None)];
    let first = admit(env, &keys, 100).await;
    first.reservation.settle(1010).await.unwrap();
    // 1010 taken of 1000 per minute: one more token waits for 11 to leak, 0.66 s (a bucket
    // merely full would make it wait 0.06 s).
    let refusal = refuse(env, &keys, 1).await;
    assert_eq!(refusal.dimension, Dimension::Tokens);
    let expected = Duration::from_millis(660);
    about(
        env,
        retry_after(&refusal),
        expected,
        Duration::from_millis(300),
    );
    env.advance(expected).await;
    admit(env, &keys, 1).await;
}

pub async fn an_estimate_above_the_limit_never_fits(env: &Env) {
    let keys = [key("key:a", Some(10), Some(100), None)];
    let refusal = refuse(env, &keys, 101).await;
    assert_eq!(refusal.retry, Retry::Never);
    assert_eq!(refusal.dimension, Dimension::Tokens);
    // Nothing was taken by the refusal: all 10 requests are still there.
    let admission = admit(env, &keys, 100).await;
    assert_eq!(admission.requests.unwrap().remaining, 9);
}

pub async fn a_refusal_on_one_key_takes_nothing_from_the_others(env: &Env) {
    let team = key("team:t", Some(10), Some(1000), Some(5));
    let user = key("team:t|user:u", Some(1), None, None);
    admit(env, &[team.clone(), user.clone()], 100).await;
    let refusal = refuse(env, &[team.clone(), user.clone()], 100).await;
    assert_eq!(&*refusal.key, "team:t|user:u");
    assert_eq!(refusal.dimension, Dimension::Requests);
    // The team lost one request and 100 tokens to the admission, nothing to the refusal.
    let alone = admit(env, &[team], 100).await;
    assert_eq!(alone.requests.unwrap().remaining, 8);
    assert_eq!(alone.tokens.unwrap().remaining, 800);
}

/// Retries `keys` until admitted: Redis frees a dropped reservation's slot in a spawned task.
async fn admit_eventually(env: &Env, keys: &[LimitKey]) -> Admission {
    for _ in 0..200 {
        let decision = env.limiter.reserve(keys.to_vec(), 0).await.unwrap();
        if let Some(admission) = decision.admitted() {
            return admission;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the slot was never freed");
}

pub async fn concurrency_slots_are_freed_by_settle_and_by_drop(env: &Env) {
    let keys = [key("model:m", None, None, Some(2))];
    let one = admit(env, &keys, 0).await;
    let two = admit(env, &keys, 0).await;
    let refusal = refuse(env, &keys, 0).await;
    assert_eq!(refusal.dimension, Dimension::Concurrency);
    assert_eq!(refusal.retry, Retry::OnRelease);
    one.reservation.settle(0).await.unwrap();
    let three = admit(env, &keys, 0).await;
    refuse(env, &keys, 0).await;
    drop(two);
    let four = admit_eventually(env, &keys).await;
    refuse(env, &keys, 0).await;
    drop((three, four));
}

pub async fn a_cancelled_reservation_frees_its_slot(env: &Env) {
    let keys = [key("key:a", None, None, Some(1))];
    // Polled once and dropped: a client that disconnects while the reservation is in flight.
    let cancelled = env.limiter.reserve(keys.to_vec(), 0);
    let _ = tokio::time::timeout(Duration::ZERO, cancelled).await;
    let held = admit_eventually(env, &keys).await;
    refuse(env, &keys, 0).await;
    drop(held);
}

pub async fn headroom_reports_the_tightest_rule(env: &Env) {
    let team = key("team:t", Some(10), Some(1000), None);
    let model = key("team:t|model:m", Some(5), Some(5000), Some(3));
    let admission = admit(env, &[team, model], 100).await;
    let requests = admission.requests.unwrap();
    assert_eq!((requests.limit, requests.remaining), (5, 4));
    // One request at 5 per minute takes 12 s to leak.
    let slack = Duration::from_millis(500);
    about(env, requests.reset, Duration::from_secs(12), slack);
    let tokens = admission.tokens.unwrap();
    assert_eq!((tokens.limit, tokens.remaining), (1000, 900));
    about(env, tokens.reset, Duration::from_secs(6), slack);
}

pub async fn concurrent_tasks_never_exceed_a_limit_together(env: &Env) {
    let keys: Arc<[LimitKey]> = Arc::from([key("org:o", Some(50), None, None)]);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let limiter = env.limiter.clone();
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            let decision = limiter.reserve(keys.to_vec(), 0).await.unwrap();
            decision.admitted().is_some()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    // 50 per minute leak one per 1.2 s; the 200 reservations take far less.
    assert_eq!(admitted, 50);
}

pub async fn keys_without_rules_always_admit(env: &Env) {
    let keys = [key("user:u", None, None, None)];
    for _ in 0..20 {
        let admission = admit(env, &keys, 1_000_000).await;
        assert_eq!(admission.requests, None);
        assert_eq!(admission.tokens, None);
    }
}

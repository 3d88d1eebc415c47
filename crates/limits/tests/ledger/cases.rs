//! The cases every ledger backend must pass. Memory runs them on a wall clock that stands still
//! unless a case advances it; Redis on real time, so a case that waits for a counter to be
//! forgotten leaves a margin of hundreds of milliseconds either side.

use std::sync::Arc;
use std::time::Duration;

use portcullis_limits::ledger::{CEILING, EXPIRY_GRACE};
use portcullis_limits::{Counter, LedgerDecision, Overdraw, Spend};

use crate::Env;

fn counter(name: &str, limit: Option<u64>) -> Counter {
    Counter::new(name, limit, None)
}

fn spend(before: u64, after: u64) -> Spend {
    Spend { before, after }
}

fn overdraw(counter: &str, limit: u64, spent: u64) -> Overdraw {
    Overdraw {
        counter: counter.into(),
        limit,
        spent,
    }
}

async fn admit(env: &Env, counters: &[Counter], amount: u64) -> Vec<Spend> {
    match env.ledger.reserve(counters, amount).await.unwrap() {
        LedgerDecision::Admitted(spends) => spends,
        LedgerDecision::Refused(overdraw) => panic!("refused: {overdraw:?}"),
    }
}

async fn refuse(env: &Env, counters: &[Counter], amount: u64) -> Overdraw {
    let decision = env.ledger.reserve(counters, amount).await.unwrap();
    decision.refused().expect("admitted, expected a refusal")
}

async fn adjust(env: &Env, counters: &[Counter], delta: i64) -> Vec<Spend> {
    env.ledger.adjust(counters, delta).await.unwrap()
}

async fn spent(env: &Env, counters: &[Counter]) -> Vec<u64> {
    env.ledger.spent(counters).await.unwrap()
}

pub async fn exactly_the_limit_is_admitted_and_one_more_refused(env: &Env) {
    let team = [counter("team:t:monthly:2026-11", Some(1000))];
    assert_eq!(admit(env, &team, 600).await, [spend(0, 600)]);
    assert_eq!(admit(env, &team, 400).await, [spend(600, 1000)]);
    let refused = refuse(env, &team, 1).await;
    assert_eq!(refused, overdraw("team:t:monthly:2026-11", 1000, 1000));
    // Nothing more fits, but nothing costs nothing.
    assert_eq!(admit(env, &team, 0).await, [spend(1000, 1000)]);
    // An amount above the limit never fits; a zero limit admits only nothing.
    let small = [counter("key:k:daily:2026-11-15", Some(10))];
    let refused = refuse(env, &small, 11).await;
    assert_eq!(refused, overdraw("key:k:daily:2026-11-15", 10, 0));
    let zero = [counter("user:u:weekly:2026-W46", Some(0))];
    assert_eq!(admit(env, &zero, 0).await, [spend(0, 0)]);
    assert_eq!(refuse(env, &zero, 1).await.limit, 0);
}

pub async fn a_refusal_takes_nothing_from_the_other_counters(env: &Env) {
    let key = counter("key:k:daily", Some(100));
    let team = counter("team:t:monthly", Some(1000));
    let org = counter("org:o:total", None);
    let all = [key.clone(), team.clone(), org.clone()];
    assert_eq!(admit(env, &all, 80).await, [spend(0, 80); 3]);
    assert_eq!(
        refuse(env, &all, 30).await,
        overdraw("key:k:daily", 100, 80)
    );
    assert_eq!(spent(env, &all).await, [80, 80, 80]);
    // Two counters refuse: the first in the order given is named.
    let tight_team = counter("team:t:monthly", Some(90));
    let reordered = [org, tight_team, key];
    let refused = refuse(env, &reordered, 30).await;
    assert_eq!(refused, overdraw("team:t:monthly", 90, 80));
    assert_eq!(spent(env, &all).await, [80, 80, 80]);
}

pub async fn soft_counters_never_refuse_and_saturate_at_the_ceiling(env: &Env) {
    let soft = [counter("user:u:weekly", None), counter("org:o:total", None)];
    for _ in 0..10 {
        admit(env, &soft, 1_000_000_000).await;
    }
    assert_eq!(spent(env, &soft).await, [10_000_000_000; 2]);
    let huge = admit(env, &soft, u64::MAX).await;
    assert_eq!(huge, [spend(10_000_000_000, CEILING); 2]);
    assert_eq!(admit(env, &soft, 1).await, [spend(CEILING, CEILING); 2]);
    // Beside a soft counter, a limited one still refuses.
    let mixed = [soft[0].clone(), counter("key:k", Some(5))];
    assert_eq!(refuse(env, &mixed, 6).await, overdraw("key:k", 5, 0));
}

pub async fn adjust_refunds_and_charges_and_floors_at_zero(env: &Env) {
    let team = [counter("team:t:monthly", Some(1000))];
    admit(env, &team, 500).await;
    assert_eq!(adjust(env, &team, -200).await, [spend(500, 300)]);
    // A settle may take a counter past its limit; the next reservation is refused.
    assert_eq!(adjust(env, &team, 1000).await, [spend(300, 1300)]);
    let refused = refuse(env, &team, 1).await;
    assert_eq!(refused, overdraw("team:t:monthly", 1000, 1300));
    assert_eq!(adjust(env, &team, -5000).await, [spend(1300, 0)]);
    assert_eq!(spent(env, &team).await, [0]);
    assert_eq!(admit(env, &team, 1000).await, [spend(0, 1000)]);
    // The extremes: floored at zero, saturated at the ceiling.
    assert_eq!(adjust(env, &team, i64::MIN).await, [spend(1000, 0)]);
    assert_eq!(adjust(env, &team, i64::MAX).await, [spend(0, CEILING)]);
    assert_eq!(adjust(env, &team, 1).await, [spend(CEILING, CEILING)]);
}

pub async fn adjust_reports_each_counter_in_the_order_given(env: &Env) {
    let key = counter("key:k:daily", Some(100));
    let team = counter("team:t:monthly", None);
    let org = counter("org:o:total", Some(10));
    assert!(env.ledger.seed(&key, 70).await.unwrap());
    assert!(env.ledger.seed(&team, 5).await.unwrap());
    let charged = adjust(env, &[key.clone(), team.clone(), org.clone()], 20).await;
    assert_eq!(charged, [spend(70, 90), spend(5, 25), spend(0, 20)]);
    let refunded = adjust(env, &[org, key, team], -30).await;
    assert_eq!(refunded, [spend(20, 0), spend(90, 60), spend(25, 0)]);
}

pub async fn a_refund_or_a_zero_adjust_leaves_an_absent_counter_absent(env: &Env) {
    let key = [counter("key:k:daily", Some(100))];
    assert_eq!(adjust(env, &key, -10).await, [spend(0, 0)]);
    assert_eq!(adjust(env, &key, 0).await, [spend(0, 0)]);
    // Still absent: a seed (after a restart) sets it.
    assert!(env.ledger.seed(&key[0], 40).await.unwrap());
    assert_eq!(adjust(env, &key, 0).await, [spend(40, 40)]);
}

pub async fn seed_sets_only_an_absent_counter(env: &Env) {
    let team = [counter("team:t:monthly", Some(1000))];
    assert!(env.ledger.seed(&team[0], 700).await.unwrap());
    assert!(!env.ledger.seed(&team[0], 5).await.unwrap());
    assert_eq!(spent(env, &team).await, [700]);
    let refused = refuse(env, &team, 301).await;
    assert_eq!(refused, overdraw("team:t:monthly", 1000, 700));
    assert_eq!(admit(env, &team, 300).await, [spend(700, 1000)]);
    // A counter that a reservation made exists: the seed leaves it.
    let key = [counter("key:k:daily", Some(1000))];
    admit(env, &key, 10).await;
    assert!(!env.ledger.seed(&key[0], 500).await.unwrap());
    assert_eq!(spent(env, &key).await, [10]);
    // Seeds saturate at the ceiling too.
    let org = [counter("org:o:total", None)];
    assert!(env.ledger.seed(&org[0], u64::MAX).await.unwrap());
    assert_eq!(spent(env, &org).await, [CEILING]);
}

pub async fn spent_of_an_absent_counter_is_zero(env: &Env) {
    let absent = [counter("key:a", Some(1)), counter("key:b", None)];
    assert_eq!(spent(env, &absent).await, [0, 0]);
    // No counters: nothing to do, nothing refused.
    assert_eq!(spent(env, &[]).await, Vec::<u64>::new());
    assert_eq!(admit(env, &[], 5).await, []);
    assert_eq!(adjust(env, &[], 5).await, []);
}

pub async fn concurrent_tasks_never_exceed_a_limit_together(env: &Env) {
    let counters: Arc<[Counter]> = Arc::from([
        counter("team:t:monthly", Some(1000)),
        counter("org:o:total", None),
    ]);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let ledger = env.ledger.clone();
        let counters = counters.clone();
        tasks.push(tokio::spawn(async move {
            let decision = ledger.reserve(&counters, 30).await.unwrap();
            decision.admitted().is_some()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += u64::from(task.await.unwrap());
    }
    // 33 reservations of 30 fit under 1000; the soft counter took exactly the admitted ones.
    assert_eq!(admitted, 33);
    assert_eq!(spent(env, &counters).await, [990, 990]);
}

pub async fn values_past_two_to_the_53_stay_exact(env: &Env) {
    // Past 2^53 doubles skip integers (at 2^60, by 256): a double would admit one more.
    let big = (1u64 << 60) + 1;
    let org = [counter("org:o:total", Some(big + 9))];
    assert!(env.ledger.seed(&org[0], big).await.unwrap());
    assert_eq!(admit(env, &org, 9).await, [spend(big, big + 9)]);
    assert_eq!(refuse(env, &org, 1).await.spent, big + 9);
    assert_eq!(adjust(env, &org, -1).await, [spend(big + 9, big + 8)]);
    assert_eq!(admit(env, &org, 1).await, [spend(big + 8, big + 9)]);
    // A limit above the ceiling acts as the ceiling.
    let huge = [counter("org:h:total", Some(u64::MAX))];
    assert!(env.ledger.seed(&huge[0], CEILING - 5).await.unwrap());
    assert_eq!(admit(env, &huge, 5).await, [spend(CEILING - 5, CEILING)]);
    let refused = refuse(env, &huge, 1).await;
    assert_eq!(refused, overdraw("org:h:total", u64::MAX, CEILING));
}

pub async fn a_counter_is_forgotten_after_its_window_and_the_grace(env: &Env) {
    let grace = EXPIRY_GRACE.as_millis() as u64;
    // A window that ended a day ago less a second: forgotten a second from now.
    let ends = env.now_ms() - grace + 1000;
    let daily = Counter::new("key:k:daily:2026-11-14", Some(100), Some(ends));
    let total = counter("key:k:total", Some(100));
    let both = [daily.clone(), total];
    assert_eq!(admit(env, &both, 30).await, [spend(0, 30); 2]);
    env.advance(Duration::from_millis(400)).await;
    assert_eq!(spent(env, &both).await, [30, 30]);
    env.advance(Duration::from_millis(900)).await;
    assert_eq!(spent(env, &both).await, [0, 30]);
    // Its window is over: a seed or a reservation sets it, and it is forgotten at once.
    assert!(env.ledger.seed(&daily, 5).await.unwrap());
    assert_eq!(spent(env, &both).await, [0, 30]);
    assert_eq!(admit(env, &both, 70).await, [spend(0, 70), spend(30, 100)]);
    assert_eq!(spent(env, &both).await, [0, 100]);
}

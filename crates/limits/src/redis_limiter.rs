//! The Redis limiter, for replicas that share limits: every reservation is one Lua script
//! (`lua/reserve.lua`) that checks all rules of all keys and takes from all of them
//! atomically, in one round trip; every settle is one more (`lua/settle.lua`). Scripts run as
//! `EVALSHA`, and as `EVAL` (which also caches them) after a `NOSCRIPT`, once per Redis
//! restart. Time is Redis's `TIME` inside the script, so replicas with skewed clocks agree.
//!
//! Keys are `<prefix><limit key>:rpm` and `:tpm` (hashes holding a leaky bucket's level and
//! time, expiring once drained) and `:conc` (a sorted set of lease ids scored by their expiry).
//! A concurrency slot is a lease: released by the settle, or on drop, and otherwise expiring
//! after `lease`, so a replica that dies with requests in flight cannot hold slots forever.
//! For Redis Cluster, put a hash tag in the prefix (`{portcullis}:`) so a script's keys share
//! a slot.
//!
//! Reservations and settles run in a spawned task, bounded by `timeout`: a caller dropped
//! mid-flight (client disconnect) cannot stop a script half-way or lose its reservation, and
//! a hung Redis cannot hang a request. When Redis fails or times out, a reservation follows
//! `on_unavailable`: fail open (admit with an empty reservation, warn once per outage, count
//! it in [`RedisLimiter::unavailable_admissions`]) or fail closed ([`LimitError::Unavailable`]).
//! The connection, the script calls and the outage state are `redis_link.rs`'s, shared with
//! the Redis spend ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::redis_link::{Link, Lua};
use crate::reservation::{Held, Settle};
use crate::{
    Admission, Decision, Dimension, Headroom, LimitError, LimitKey, RateLimiter,
    RedisLimiterConfig, Refusal, Reservation, Retry,
};

static RESERVE: Lua = Lua::new(include_str!("lua/reserve.lua"));
static SETTLE: Lua = Lua::new(include_str!("lua/settle.lua"));
static SCRIPTS: [&Lua; 2] = [&RESERVE, &SETTLE];

/// The Redis [`RateLimiter`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisLimiter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    link: Link,
    prefix: String,
    lease: Duration,
    /// Makes lease ids unique across replicas; `next_lease` within this one.
    nonce: u64,
    next_lease: AtomicU64,
}

/// One rule of one key, in the order the script sees them.
#[derive(Debug)]
struct Rule {
    key: usize,
    dimension: Dimension,
    limit: u64,
}

impl RedisLimiter {
    /// A limiter on `config.url`. Connects lazily (the first reservation connects), so this
    /// succeeds while Redis is down. Must be called inside a tokio runtime.
    pub fn new(config: &RedisLimiterConfig) -> Result<Self, LimitError> {
        let link = Link::new(config, "rate limits", &SCRIPTS)?;
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Ok(Self {
            shared: Arc::new(Shared {
                link,
                prefix: config.prefix.clone(),
                lease: config.lease,
                nonce,
                next_lease: AtomicU64::new(0),
            }),
        })
    }

    /// Requests admitted without limits because Redis was unavailable (`fail_open`); the
    /// gateway exports it as `portcullis_limiter_unavailable_total{policy="fail_open"}`.
    pub fn unavailable_admissions(&self) -> u64 {
        self.shared.link.unavailable_admissions()
    }

    /// Requests refused because Redis was unavailable (`fail_closed`).
    pub fn unavailable_refusals(&self) -> u64 {
        self.shared.link.unavailable_refusals()
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn reserve(&self, keys: Vec<LimitKey>, tokens: u64) -> Result<Decision, LimitError> {
        let shared = self.shared.clone();
        let task = self
            .shared
            .link
            .runtime()
            .spawn(shared.reserve(keys, tokens));
        task.await
            .map_err(|e| LimitError::Unavailable(format!("reservation task: {e}")))?
    }
}

impl Shared {
    fn lease_id(&self, lease: u64) -> String {
        format!("{:x}-{lease:x}", self.nonce)
    }

    fn key(&self, name: &str, suffix: &str) -> String {
        format!("{}{name}:{suffix}", self.prefix)
    }

    async fn reserve(self: Arc<Self>, keys: Vec<LimitKey>, tokens: u64) -> RsvResult {
        let lease = self.next_lease.fetch_add(1, Ordering::Relaxed);
        let lease_us = u64::try_from(self.lease.as_micros()).unwrap_or(u64::MAX);
        let mut redis_keys = Vec::with_capacity(keys.len() * 3);
        let mut args = vec![self.lease_id(lease), lease_us.to_string()];
        let mut rules = Vec::with_capacity(keys.len() * 3);
        for (i, k) in keys.iter().enumerate() {
            let r = k.rules;
            let each = [
                (r.max_concurrent, Dimension::Concurrency, "conc", "c", 1),
                (r.rpm, Dimension::Requests, "rpm", "r", 1),
                (r.tpm, Dimension::Tokens, "tpm", "r", tokens),
            ];
            for (limit, dimension, suffix, kind, cost) in each {
                let Some(limit) = limit else { continue };
                redis_keys.push(self.key(&k.name, suffix));
                args.extend([kind.to_owned(), limit.to_string(), cost.to_string()]);
                rules.push(Rule {
                    key: i,
                    dimension,
                    limit,
                });
            }
        }
        let reply = match self
            .link
            .eval::<Vec<i64>>(&RESERVE, &redis_keys, &args)
            .await
        {
            Ok(reply) => reply,
            Err(why) => return self.unavailable(why),
        };
        let held = Held {
            keys,
            estimate: tokens,
            lease,
        };
        Ok(self.decode(&reply, &rules, held))
    }

    fn decode(self: Arc<Self>, reply: &[i64], rules: &[Rule], held: Held) -> Decision {
        let at = |i: usize| reply.get(i).copied().unwrap_or_default();
        if at(0) == 0 {
            let index = usize::try_from(at(1)).ok().and_then(|i| i.checked_sub(1));
            let Some(rule) = index.and_then(|i| rules.get(i)) else {
                return refusal_of_bad_reply(&held);
            };
            let retry = match at(2) {
                -1 => Retry::Never,
                -2 => Retry::OnRelease,
                us => Retry::After(Duration::from_micros(us.max(0) as u64)),
            };
            return Decision::Refused(Refusal {
                key: held.keys[rule.key].name.clone(),
                dimension: rule.dimension,
                limit: rule.limit,
                retry,
            });
        }
        let (mut requests, mut tokens) = (None, None);
        for (j, rule) in rules.iter().enumerate() {
            let h = Headroom {
                limit: rule.limit,
                remaining: at(1 + 2 * j).max(0) as u64,
                reset: Duration::from_micros(at(2 + 2 * j).max(0) as u64),
            };
            match rule.dimension {
                Dimension::Requests => requests = Headroom::tighter(requests, h),
                Dimension::Tokens => tokens = Headroom::tighter(tokens, h),
                Dimension::Concurrency => {}
            }
        }
        Decision::Admitted(Admission {
            reservation: Reservation::new(held, self),
            requests,
            tokens,
        })
    }

    /// Redis did not answer: the failure policy decides.
    fn unavailable(&self, why: String) -> RsvResult {
        self.link.unavailable(why)?;
        Ok(Decision::Admitted(Admission {
            reservation: Reservation::empty(),
            requests: None,
            tokens: None,
        }))
    }

    /// The settle script's call for `held`: tokens adjusted by `delta` (skipped when zero),
    /// slots freed; `None` when there is nothing to do.
    fn settle_call(&self, held: &Held, delta: i64) -> Option<(Vec<String>, Vec<String>)> {
        let mut keys = Vec::new();
        let mut args = vec![self.lease_id(held.lease), delta.to_string()];
        for k in &held.keys {
            if let Some(limit) = k.rules.tpm.filter(|_| delta != 0) {
                keys.push(self.key(&k.name, "tpm"));
                args.extend(["t".to_owned(), limit.to_string()]);
            }
            if let Some(limit) = k.rules.max_concurrent {
                keys.push(self.key(&k.name, "conc"));
                args.extend(["c".to_owned(), limit.to_string()]);
            }
        }
        (!keys.is_empty()).then_some((keys, args))
    }
}

type RsvResult = Result<Decision, LimitError>;

/// A reply that names no rule cannot come from our script; refuse rather than admit blind.
fn refusal_of_bad_reply(held: &Held) -> Decision {
    tracing::error!("the rate limit script answered a refusal without a rule");
    let key = held
        .keys
        .first()
        .map(|k| k.name.clone())
        .unwrap_or_default();
    Decision::Refused(Refusal {
        key,
        dimension: Dimension::Requests,
        limit: 0,
        retry: Retry::After(Duration::from_secs(1)),
    })
}

#[async_trait]
impl Settle for Shared {
    async fn settle(&self, held: Held, actual: u64) -> Result<(), LimitError> {
        let delta = i64::try_from(actual).unwrap_or(i64::MAX)
            - i64::try_from(held.estimate).unwrap_or(i64::MAX);
        let Some((keys, args)) = self.settle_call(&held, delta) else {
            return Ok(());
        };
        let settled = self.link.spawn::<i64>(&SETTLE, keys, args).await;
        settled.map(drop).map_err(LimitError::Unavailable)
    }

    fn release(&self, held: Held) {
        if let Some((keys, args)) = self.settle_call(&held, 0) {
            // Spawned, not awaited: the slot's lease frees it anyway if this fails.
            drop(self.link.spawn::<i64>(&SETTLE, keys, args));
        }
    }
}

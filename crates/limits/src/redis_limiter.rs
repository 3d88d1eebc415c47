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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind};
use tokio::runtime::Handle;

use crate::reservation::{Held, Settle};
use crate::{
    Admission, Decision, Dimension, FailurePolicy, Headroom, LimitError, LimitKey, RateLimiter,
    RedisLimiterConfig, Refusal, Reservation, Retry,
};

const RESERVE_LUA: &str = include_str!("lua/reserve.lua");
const SETTLE_LUA: &str = include_str!("lua/settle.lua");
static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(RESERVE_LUA));
static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(SETTLE_LUA));

/// The Redis [`RateLimiter`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisLimiter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    lease: Duration,
    policy: FailurePolicy,
    runtime: Handle,
    /// Set from the first failure of an outage to the next success: one warning per outage.
    down: AtomicBool,
    admitted_unavailable: AtomicU64,
    refused_unavailable: AtomicU64,
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
        let runtime = Handle::try_current()
            .map_err(|_| LimitError::Config("the Redis limiter needs a tokio runtime".into()))?;
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| LimitError::Config(format!("redis url: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(5))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| LimitError::Config(format!("redis: {e}")))?;
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        let limiter = Self {
            shared: Arc::new(Shared {
                conn,
                prefix: config.prefix.clone(),
                timeout: config.timeout,
                lease: config.lease,
                policy: config.on_unavailable,
                runtime,
                down: AtomicBool::new(false),
                admitted_unavailable: AtomicU64::new(0),
                refused_unavailable: AtomicU64::new(0),
                nonce,
                next_lease: AtomicU64::new(0),
            }),
        };
        // Connect and load the scripts now, off the request path: the first reservation then
        // finds a connection and its script, within a timeout of a few milliseconds.
        limiter
            .shared
            .runtime
            .spawn(limiter.shared.clone().warm_up());
        Ok(limiter)
    }

    /// Requests admitted without limits because Redis was unavailable (`fail_open`); the
    /// gateway exports it as `portcullis_limiter_unavailable_total{policy="fail_open"}`.
    pub fn unavailable_admissions(&self) -> u64 {
        self.shared.admitted_unavailable.load(Ordering::Relaxed)
    }

    /// Requests refused because Redis was unavailable (`fail_closed`).
    pub fn unavailable_refusals(&self) -> u64 {
        self.shared.refused_unavailable.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn reserve(&self, keys: Vec<LimitKey>, tokens: u64) -> Result<Decision, LimitError> {
        let shared = self.shared.clone();
        let task = self.shared.runtime.spawn(shared.reserve(keys, tokens));
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
        let mut conn = self.conn.clone();
        let call = eval::<Vec<i64>>(&mut conn, &RESERVE, RESERVE_LUA, &redis_keys, &args);
        let reply = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return self.unavailable(e.to_string()),
            Err(_) => return self.unavailable(format!("no answer within {:?}", self.timeout)),
        };
        self.note_up();
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

    async fn warm_up(self: Arc<Self>) {
        let mut conn = self.conn.clone();
        for source in [RESERVE_LUA, SETTLE_LUA] {
            let load = redis::cmd("SCRIPT").arg("LOAD").arg(source).to_owned();
            if let Err(e) = load.query_async::<String>(&mut conn).await {
                return self.note_down(&e.to_string());
            }
        }
        self.note_up();
    }

    /// Redis failed: the first failure of an outage warns, the rest are only counted.
    fn note_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %why, policy = ?self.policy, "Redis unreachable for rate limits");
        }
    }

    /// Redis answered: ends an outage.
    fn note_up(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis answers the rate limiter again");
        }
    }

    fn unavailable(&self, why: String) -> RsvResult {
        self.note_down(&why);
        match self.policy {
            FailurePolicy::FailOpen => {
                self.admitted_unavailable.fetch_add(1, Ordering::Relaxed);
                Ok(Decision::Admitted(Admission {
                    reservation: Reservation::empty(),
                    requests: None,
                    tokens: None,
                }))
            }
            FailurePolicy::FailClosed => {
                self.refused_unavailable.fetch_add(1, Ordering::Relaxed);
                Err(LimitError::Unavailable(why))
            }
        }
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

    fn spawn_settle(&self, keys: Vec<String>, args: Vec<String>) -> SettleTask {
        let mut conn = self.conn.clone();
        let timeout = self.timeout;
        self.runtime.spawn(async move {
            let call = eval::<i64>(&mut conn, &SETTLE, SETTLE_LUA, &keys, &args);
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(LimitError::Unavailable(e.to_string())),
                Err(_) => Err(LimitError::Unavailable(format!(
                    "no answer within {timeout:?}"
                ))),
            }
        })
    }
}

type RsvResult = Result<Decision, LimitError>;
type SettleTask = tokio::task::JoinHandle<Result<(), LimitError>>;

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
        self.spawn_settle(keys, args)
            .await
            .map_err(|e| LimitError::Unavailable(format!("settle task: {e}")))?
    }

    fn release(&self, held: Held) {
        if let Some((keys, args)) = self.settle_call(&held, 0) {
            // Not awaited: the slot's lease frees it anyway if this fails.
            drop(self.spawn_settle(keys, args));
        }
    }
}

/// Runs `script` with `EVALSHA`, and with `EVAL` if Redis does not know it (`NOSCRIPT`).
async fn eval<T: FromRedisValue>(
    conn: &mut ConnectionManager,
    script: &Script,
    source: &str,
    keys: &[String],
    args: &[String],
) -> RedisResult<T> {
    let command = |verb: &str, body: &str| {
        let mut cmd = redis::cmd(verb);
        cmd.arg(body).arg(keys.len()).arg(keys).arg(args);
        cmd
    };
    match command("EVALSHA", script.get_hash())
        .query_async(conn)
        .await
    {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            command("EVAL", source).query_async(conn).await
        }
        other => other,
    }
}

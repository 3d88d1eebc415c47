//! The Redis spend ledger, for replicas that share budgets: every operation is one Lua script
//! (`lua/reserve.lua`, `adjust.lua`, `seed.lua`, `spent.lua`) and one round trip, so a
//! reservation checks every counter's limit and takes from every counter atomically, and two
//! replicas reserving against one budget together never pass it.
//!
//! A counter is one string key, `<prefix>spend:<counter name>`, holding its value as Redis's
//! integer. A counter with a window expires at the window's end plus the grace (`PEXPIREAT`,
//! set by every write); a total budget's never does. For Redis Cluster, put a hash tag in the
//! prefix (`{portcullis}:`) so a script's keys share a slot. Values never pass through Lua's
//! doubles (`lua/exact.lua`): the scripts compare them as decimal strings and leave the sums to
//! `INCRBY`, and the limits arrive as the room left under them, computed here in integers.
//! Sums are bounded before they are made (saturating at the ceiling, flooring at zero), so no
//! command fails half-way through a script's counters: Redis does not roll a script back.
//! Saturating keeps the key's expiry (`SET ... KEEPTTL`, Redis 6.0 or later).
//!
//! The connection, the timeout, the spawned task that a dropped caller cannot stop, and the
//! outage state are the limiter's (`redis_link.rs`), on a connection of the ledger's own: the
//! same settings, so one `limits:` config serves both. When Redis fails or times out, a
//! reservation follows `on_unavailable` (fail open: admitted with no spends, warned once per
//! outage, counted in [`RedisLedger::unavailable_admissions`]; fail closed:
//! [`LimitError::Unavailable`], counted in [`RedisLedger::unavailable_refusals`]); adjust, seed
//! and spent have no policy and answer the error.

use std::sync::Arc;

use async_trait::async_trait;

use super::{CEILING, Counter, LedgerDecision, Overdraw, Spend, SpendLedger};
use crate::redis_link::{Link, Lua};
use crate::{LimitError, RedisLimiterConfig};

static RESERVE: Lua = Lua::new(concat!(
    include_str!("lua/exact.lua"),
    include_str!("lua/reserve.lua")
));
static ADJUST: Lua = Lua::new(concat!(
    include_str!("lua/exact.lua"),
    include_str!("lua/adjust.lua")
));
static SEED: Lua = Lua::new(include_str!("lua/seed.lua"));
static SPENT: Lua = Lua::new(include_str!("lua/spent.lua"));
static SCRIPTS: [&Lua; 4] = [&RESERVE, &ADJUST, &SEED, &SPENT];

/// The Redis [`SpendLedger`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisLedger {
    link: Link,
    /// `<config prefix>spend:`
    prefix: Arc<str>,
}

impl RedisLedger {
    /// A ledger on `config.url`, with its timeout and failure policy. Connects lazily (the
    /// first call connects), so this succeeds while Redis is down. Must be called inside a
    /// tokio runtime.
    pub fn new(config: &RedisLimiterConfig) -> Result<Self, LimitError> {
        Ok(Self {
            link: Link::new(config, "spend budgets", &SCRIPTS)?,
            prefix: format!("{}spend:", config.prefix).into(),
        })
    }

    /// Reservations admitted without a budget because Redis was unavailable (`fail_open`).
    pub fn unavailable_admissions(&self) -> u64 {
        self.link.unavailable_admissions()
    }

    /// Reservations refused because Redis was unavailable (`fail_closed`).
    pub fn unavailable_refusals(&self) -> u64 {
        self.link.unavailable_refusals()
    }

    fn keys(&self, counters: &[Counter]) -> Vec<String> {
        let key = |c: &Counter| format!("{}{}", self.prefix, c.name);
        counters.iter().map(key).collect()
    }
}

/// What a counter holding `cap` at most may hold before `amount` is added: `-` when nothing.
fn room(cap: u64, amount: u64) -> String {
    cap.checked_sub(amount)
        .map_or_else(|| "-".to_owned(), |room| room.to_string())
}

/// When Redis may forget the counter, as the scripts take it: empty for never.
fn forget_at(counter: &Counter) -> String {
    counter
        .forget_at_ms()
        .map_or_else(String::new, |at| at.to_string())
}

fn unavailable_error(why: String) -> LimitError {
    LimitError::Unavailable(format!("spend ledger: {why}"))
}

/// A reply our scripts cannot give: the backend is broken rather than the request refused.
fn bad_reply(script: &str, reply: &[String]) -> String {
    tracing::error!(
        ?reply,
        "the spend ledger's {script} script answered nonsense"
    );
    format!("the {script} script answered {reply:?}")
}

fn decode_spends(reply: &[String], count: usize) -> Option<Vec<Spend>> {
    if reply.len() != 2 * count {
        return None;
    }
    let pair = |pair: &[String]| match pair {
        [before, after] => Some(Spend {
            before: before.parse().ok()?,
            after: after.parse().ok()?,
        }),
        _ => None,
    };
    reply.chunks_exact(2).map(pair).collect()
}

fn decode_reserve(reply: &[String], counters: &[Counter]) -> Option<LedgerDecision> {
    match reply {
        [admitted, spends @ ..] if admitted == "1" => {
            decode_spends(spends, counters.len()).map(LedgerDecision::Admitted)
        }
        [refused, index, spent] if refused == "0" => {
            let index = index.parse::<usize>().ok()?.checked_sub(1)?;
            let counter = counters.get(index)?;
            Some(LedgerDecision::Refused(Overdraw {
                counter: counter.name.clone(),
                limit: counter.limit?,
                spent: spent.parse().ok()?,
            }))
        }
        _ => None,
    }
}

#[async_trait]
impl SpendLedger for RedisLedger {
    async fn reserve(
        &self,
        counters: &[Counter],
        amount: u64,
    ) -> Result<LedgerDecision, LimitError> {
        if counters.is_empty() {
            return Ok(LedgerDecision::Admitted(Vec::new()));
        }
        let mut args = Vec::with_capacity(2 + 2 * counters.len());
        args.extend([amount.to_string(), room(CEILING, amount)]);
        for counter in counters {
            let limit = counter.limit.map(|limit| room(limit.min(CEILING), amount));
            args.extend([limit.unwrap_or_default(), forget_at(counter)]);
        }
        let keys = self.keys(counters);
        let reply = self.link.spawn::<Vec<String>>(&RESERVE, keys, args).await;
        let decoded = reply.and_then(|reply| {
            decode_reserve(&reply, counters).ok_or_else(|| bad_reply("reserve", &reply))
        });
        match decoded {
            Ok(decision) => Ok(decision),
            Err(why) => {
                self.link.unavailable(format!("spend ledger: {why}"))?;
                Ok(LedgerDecision::Admitted(Vec::new()))
            }
        }
    }

    async fn adjust(&self, counters: &[Counter], delta: i64) -> Result<Vec<Spend>, LimitError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        let size = delta.unsigned_abs();
        let (sign, headroom) = if delta < 0 {
            ("-", String::new())
        } else {
            ("+", room(CEILING, size))
        };
        let mut args = Vec::with_capacity(3 + counters.len());
        args.extend([sign.to_owned(), size.to_string(), headroom]);
        args.extend(counters.iter().map(forget_at));
        let keys = self.keys(counters);
        let reply = self.link.spawn::<Vec<String>>(&ADJUST, keys, args).await;
        let reply = reply.map_err(unavailable_error)?;
        decode_spends(&reply, counters.len())
            .ok_or_else(|| unavailable_error(bad_reply("adjust", &reply)))
    }

    async fn seed(&self, counter: &Counter, value: u64) -> Result<bool, LimitError> {
        let keys = self.keys(std::slice::from_ref(counter));
        let args = vec![value.min(CEILING).to_string(), forget_at(counter)];
        let set = self.link.spawn::<i64>(&SEED, keys, args).await;
        Ok(set.map_err(unavailable_error)? == 1)
    }

    async fn spent(&self, counters: &[Counter]) -> Result<Vec<u64>, LimitError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(counters);
        let reply = self
            .link
            .spawn::<Vec<String>>(&SPENT, keys, Vec::new())
            .await;
        let reply = reply.map_err(unavailable_error)?;
        let values: Option<Vec<u64>> = reply.iter().map(|v| v.parse().ok()).collect();
        match values {
            Some(values) if values.len() == counters.len() => Ok(values),
            _ => Err(unavailable_error(bad_reply("spent", &reply))),
        }
    }
}

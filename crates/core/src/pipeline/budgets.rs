//! Stage `admit`, budgets: a request reserves its estimated cost against every money budget of
//! its scopes before it is sent, and is refused (429 naming the budget) when a hard budget would
//! be exceeded; stage `settle` replaces the estimate with the cost of the usage the provider
//! reported.
//!
//! - Scopes: the key's, user's, team's and organization's own budgets (the principal's quotas),
//!   and each `budgets.rules` entry that matches the request (`rule:<scope>`).
//! - Counters live in the spend ledger (`portcullis-limits`, memory or Redis), one per scope,
//!   period and window: `team:<id>:monthly:2026-11`. A new window starts at zero, so periods
//!   roll over at their UTC boundaries without a reset job.
//! - The estimate prices the request's estimated tokens (prompt, plus max_tokens or the
//!   configured default) at the dearest of its route's deployments, since which one serves is
//!   not known yet. A model without a price costs nothing: its requests only meet a budget that
//!   is already spent.
//! - A counter this process has not used yet is first seeded with what the store's usage
//!   records say the window spent (see [`SpendSource`]), so a restart does not forget a month's
//!   spend; with Redis the counters outlive the process anyway, and seeding never overwrites one.
//! - Soft alerts ([`crate::budget::alerts`]) are checked on every move of a counter.
//! - Streams reserve like any request and settle at their end. With `budgets.stream_overrun:
//!   cut` and a hard budget, a stream that has sent as many events as it reserved output tokens
//!   (about one token per event, as providers stream) reserves [`EXTENSION_TOKENS`] more before
//!   it goes on; when a hard budget has no room left for them, the stream ends with a
//!   `budget_exceeded` error event. With `finish` (the default) it runs to its end.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use portcullis_limits::{Counter, LedgerDecision, Spend, SpendLedger};
use portcullis_types::{BudgetSpec, Usage};
use time::OffsetDateTime;

use super::RequestCtx;
use super::admit::BudgetExceeded;
use super::ctx::Outcome;
use crate::auth::Principal;
use crate::budget::alerts::BudgetAlerts;
use crate::budget::{PeriodWindow, Window};
use crate::error::GatewayError;
use crate::pricing::{Money, PriceCatalog};
use crate::quota::{QuotaPolicy, Subject};
use crate::runtime::Route;
use crate::tokens::Estimate;

/// Output tokens a `cut` stream reserves at a time once its first reservation is used up.
pub const EXTENSION_TOKENS: u64 = 256;

/// One budget that applies to a request.
#[derive(Debug, Clone)]
pub struct ScopedBudget {
    /// `key:<id>`, `team:<id>`, `rule:<scope>`.
    pub scope: Arc<str>,
    /// What the store's usage records are filtered by to seed the counter.
    pub filter: SpendFilter,
    pub budget: BudgetSpec,
}

/// The usage records of a scope: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendFilter {
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub org: Option<String>,
    pub model: Option<String>,
}

/// Where a window's spend so far is read from when a counter is first used (the store's usage
/// records, through the server).
#[async_trait]
pub trait SpendSource: Send + Sync + fmt::Debug {
    /// The cost of the records matching `filter` since `from`, in nano-dollars.
    async fn spent_since(&self, filter: &SpendFilter, from: OffsetDateTime) -> Result<u64, String>;
}

/// The budgets' shared state: the ledger, the seeding source, and which counters this process
/// has seeded.
#[derive(Debug)]
pub struct Budgets {
    pub ledger: Arc<dyn SpendLedger>,
    pub source: Option<Arc<dyn SpendSource>>,
    pub alerts: Arc<BudgetAlerts>,
    seeded: Mutex<HashSet<Arc<str>>>,
    /// After a failed seed, no other is tried before this instant (the store is slow or
    /// down: requests should not each wait for it).
    seed_paused_until: Mutex<Option<std::time::Instant>>,
}

/// How long a seed may wait for the store.
const SEED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long seeding pauses after a failure.
const SEED_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

impl Budgets {
    pub fn new(
        ledger: Arc<dyn SpendLedger>,
        source: Option<Arc<dyn SpendSource>>,
        alerts: Arc<BudgetAlerts>,
    ) -> Self {
        Self {
            ledger,
            source,
            alerts,
            seeded: Mutex::new(HashSet::new()),
            seed_paused_until: Mutex::new(None),
        }
    }

    /// Seeds the counters this process has not seen yet from the source (once each). A failure
    /// (or a store slower than [`SEED_TIMEOUT`]) pauses seeding for [`SEED_PAUSE`]; the
    /// counters it missed are seeded by a request after that.
    async fn seed(&self, counters: &[Counter], scopes: &[(ScopedBudget, Window)]) {
        let Some(source) = &self.source else { return };
        let paused = self
            .seed_paused_until
            .lock()
            .map(|p| p.is_some_and(|until| std::time::Instant::now() < until))
            .unwrap_or(false);
        if paused {
            return;
        }
        for (counter, (scoped, window)) in counters.iter().zip(scopes) {
            let fresh = self
                .seeded
                .lock()
                .map(|s| !s.contains(&counter.name))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let read = tokio::time::timeout(
                SEED_TIMEOUT,
                source.spent_since(&scoped.filter, window.start),
            );
            let seeded = match read.await {
                Ok(Ok(spent)) => self
                    .ledger
                    .seed(counter, spent)
                    .await
                    .map_err(|e| e.to_string()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {SEED_TIMEOUT:?}")),
            };
            match seeded {
                Ok(_) => {
                    if let Ok(mut s) = self.seeded.lock() {
                        // Bounded: windows roll over, so old names are dropped wholesale.
                        if s.len() >= 100_000 {
                            s.clear();
                        }
                        s.insert(counter.name.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        budget = %counter.name,
                        error = %e,
                        "budgets: cannot read the window's spend from the store; counting from the ledger alone"
                    );
                    if let Ok(mut p) = self.seed_paused_until.lock() {
                        *p = Some(std::time::Instant::now() + SEED_PAUSE);
                    }
                    return;
                }
            }
        }
    }
}

/// The budgets of a request, by scope.
pub fn budget_scopes(
    policy: &QuotaPolicy,
    principal: &Principal,
    s: &Subject<'_>,
) -> Vec<ScopedBudget> {
    let mut out = Vec::new();
    if let Some(quotas) = &principal.quotas {
        let by_key = SpendFilter {
            key_id: principal.key_id.as_deref().map(str::to_owned),
            key_name: principal
                .key_id
                .is_none()
                .then(|| principal.key_name.to_string()),
            ..SpendFilter::default()
        };
        let scopes = [
            ("key", Some(s.key), &quotas.key, by_key),
            (
                "user",
                s.user,
                &quotas.user,
                SpendFilter {
                    user: s.user.map(str::to_owned),
                    ..SpendFilter::default()
                },
            ),
            (
                "team",
                s.team,
                &quotas.team,
                SpendFilter {
                    team: s.team.map(str::to_owned),
                    ..SpendFilter::default()
                },
            ),
            (
                "org",
                s.org,
                &quotas.org,
                SpendFilter {
                    org: s.org.map(str::to_owned),
                    ..SpendFilter::default()
                },
            ),
        ];
        for (dim, id, quota, filter) in scopes {
            let (Some(id), Some(quota)) = (id, quota) else {
                continue;
            };
            for budget in quota.budgets.iter() {
                out.push(ScopedBudget {
                    scope: Arc::from(format!("{dim}:{id}")),
                    filter: filter.clone(),
                    budget: budget.clone(),
                });
            }
        }
    }
    for rule in &policy.budget_rules {
        if rule.scope.matches(s) {
            let scope = &rule.scope;
            out.push(ScopedBudget {
                scope: Arc::from(format!("rule:{}", scope.name())),
                filter: SpendFilter {
                    // A rule's key is a stored key's id, or a config key's name.
                    key_id: scope.key.clone().filter(|_| s.stored_key),
                    key_name: scope.key.clone().filter(|_| !s.stored_key),
                    user: scope.user.clone(),
                    team: scope.team.clone(),
                    org: scope.org.clone(),
                    model: scope.model.clone(),
                },
                budget: rule.budget.clone(),
            });
        }
    }
    out
}

/// The estimated cost of a request: its estimated tokens at the dearest deployment's prices.
pub fn estimate_cost(pricing: &PriceCatalog, route: &Route, estimate: Estimate) -> Money {
    let usage = Usage {
        prompt_tokens: estimate.prompt,
        completion_tokens: estimate.output,
        total_tokens: estimate.total(),
        ..Usage::default()
    };
    route
        .deployments
        .iter()
        .filter_map(|d| pricing.cost(&d.upstream_model, &usage))
        .max()
        .unwrap_or(Money::ZERO)
}

/// What a request holds against its budgets until it is settled.
#[derive(Debug)]
pub struct BudgetHold {
    budgets: Arc<Budgets>,
    counters: Vec<Counter>,
    scopes: Vec<(ScopedBudget, Window)>,
    /// The reserved estimate, in nano-dollars (grown by a stream's extensions).
    estimate: u64,
    webhook: Option<String>,
    /// For a stream held to its budgets (`cut`): the output tokens reserved, and what
    /// [`EXTENSION_TOKENS`] more cost.
    watch: Option<(u64, Money)>,
}

/// The answer to a stream's request for more room.
#[derive(Debug)]
pub enum Extended {
    /// Reserved this much more money (0 when the ledger failed open), moving the counters as
    /// `spends` says (for alerts).
    Granted(u64, Vec<Spend>),
    /// A hard budget has no room left: the stream is cut with this error.
    Denied(GatewayError),
}

/// What stage `admit` reserves against the budgets.
#[derive(Debug, Clone, Copy)]
pub struct Reserve {
    /// The estimated cost.
    pub cost: Money,
    /// For a stream under `budgets.stream_overrun: cut`: its output tokens reserved, and what
    /// [`EXTENSION_TOKENS`] more would cost.
    pub watch: Option<(u64, Money)>,
}

/// Stage `admit`, budgets: reserves `cost` against every budget in `scopes`, or refuses.
pub async fn admit(
    budgets: &Arc<Budgets>,
    scopes: Vec<ScopedBudget>,
    reserve: Reserve,
    webhook: Option<&str>,
    now: OffsetDateTime,
) -> Result<BudgetHold, GatewayError> {
    let cost = reserve.cost;
    let watch = reserve
        .watch
        .filter(|_| scopes.iter().any(|s| s.budget.hard));
    let scopes: Vec<(ScopedBudget, Window)> = scopes
        .into_iter()
        .map(|b| {
            let window = b.budget.period.window(now);
            (b, window)
        })
        .collect();
    let counters: Vec<Counter> = scopes
        .iter()
        .map(|(b, window)| counter(b, window, now))
        .collect();
    budgets.seed(&counters, &scopes).await;
    let amount = cost.nanos();
    match budgets.ledger.reserve(&counters, amount).await {
        Ok(LedgerDecision::Admitted(spends)) => {
            // No spends for our counters: the ledger failed open and reserved nothing, so the
            // settle must add the whole actual cost rather than the difference.
            let reserved = if spends.is_empty() { 0 } else { amount };
            let hold = BudgetHold {
                budgets: budgets.clone(),
                counters,
                scopes,
                estimate: reserved,
                webhook: webhook.map(str::to_owned),
                watch,
            };
            hold.observe(&spends);
            Ok(hold)
        }
        Ok(LedgerDecision::Refused(over)) => Err(refusal(&counters, &scopes, &over, cost)),
        Err(e) => {
            // As for rate limits: the ledger warns once per outage and counts the refusals.
            tracing::debug!(error = %e, "budgets unavailable: request refused (fail_closed)");
            Err(GatewayError::LimiterUnavailable)
        }
    }
}

/// The error of a refusal by the counter `over` names.
fn refusal(
    counters: &[Counter],
    scopes: &[(ScopedBudget, Window)],
    over: &portcullis_limits::Overdraw,
    cost: Money,
) -> GatewayError {
    let Some((scoped, window)) = counters
        .iter()
        .position(|c| c.name == over.counter)
        .and_then(|i| scopes.get(i))
    else {
        return GatewayError::Internal("budget counter mismatch".into());
    };
    metrics::counter!(
        "portcullis_budget_refusals_total",
        "period" => scoped.budget.period.as_str()
    )
    .increment(1);
    GatewayError::BudgetExceeded(Box::new(BudgetExceeded {
        scope: scoped.scope.clone(),
        period: scoped.budget.period,
        limit: Money(over.limit),
        spent: Money(over.spent),
        estimate: cost,
        resets_at: window.end,
    }))
}

fn counter(b: &ScopedBudget, window: &Window, now: OffsetDateTime) -> Counter {
    let name = format!(
        "{}:{}:{}",
        b.scope,
        b.budget.period,
        b.budget.period.window_key(now)
    );
    let expires_at_ms = window
        .end
        .and_then(|end| u64::try_from(end.unix_timestamp_nanos() / 1_000_000).ok());
    Counter::new(
        name,
        b.budget.hard.then(|| b.budget.max_nanos()),
        expires_at_ms,
    )
}

impl BudgetHold {
    /// Raises the alerts the counters' moves crossed.
    fn observe(&self, spends: &[Spend]) {
        for ((counter, (scoped, _)), spend) in self.counters.iter().zip(&self.scopes).zip(spends) {
            self.budgets.alerts.observe(
                &scoped.scope,
                &counter.name,
                &scoped.budget,
                *spend,
                self.webhook.as_deref(),
            );
        }
    }

    /// The reserved estimate.
    pub fn estimate(&self) -> Money {
        Money(self.estimate)
    }

    /// Gives the reservation back (the request was refused by a rate limit after all), off the
    /// request path.
    pub fn release(self) {
        let (Ok(runtime), Ok(delta)) = (
            tokio::runtime::Handle::try_current(),
            i64::try_from(self.estimate),
        ) else {
            return;
        };
        if delta == 0 {
            return;
        }
        runtime.spawn(async move {
            if let Err(e) = self.budgets.ledger.adjust(&self.counters, -delta).await {
                metrics::counter!("portcullis_settles_lost_total", "ledger" => "budgets")
                    .increment(1);
                tracing::debug!(error = %e, "budgets: a release was lost");
            }
        });
    }

    /// For a stream held to its budgets: the output tokens it has reserved.
    pub fn watched_output(&self) -> Option<u64> {
        self.watch.map(|(tokens, _)| tokens)
    }

    /// Reserves room for [`EXTENSION_TOKENS`] more output tokens of a watched stream. The
    /// ledger failing does not cut a stream already running: it goes on, with a warning.
    pub fn extend(&self) -> impl std::future::Future<Output = Extended> + Send + 'static {
        let ledger = self.budgets.ledger.clone();
        let counters = self.counters.clone();
        let scopes = self.scopes.clone();
        let cost = self.watch.map_or(Money::ZERO, |(_, c)| c);
        async move {
            match ledger.reserve(&counters, cost.nanos()).await {
                Ok(LedgerDecision::Admitted(spends)) if spends.is_empty() => {
                    Extended::Granted(0, spends)
                }
                Ok(LedgerDecision::Admitted(spends)) => Extended::Granted(cost.nanos(), spends),
                Ok(LedgerDecision::Refused(over)) => {
                    Extended::Denied(refusal(&counters, &scopes, &over, cost))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "budgets unavailable: a stream goes on unchecked");
                    Extended::Granted(0, Vec::new())
                }
            }
        }
    }

    /// Records an extension granted to a watched stream (and raises the alerts it crossed).
    pub fn extended(&mut self, amount: u64, spends: &[Spend]) {
        self.observe(spends);
        self.estimate = self.estimate.saturating_add(amount);
        if let Some((tokens, _)) = &mut self.watch {
            *tokens = tokens.saturating_add(EXTENSION_TOKENS);
        }
    }
}

/// Stage `settle`, budgets: replaces the estimate with the request's actual cost (when the
/// context is dropped). The cost is that of the usage the provider reported, at the served
/// model's prices; a request that failed before any byte came back costs nothing; one that
/// ended without usage keeps its estimate.
pub fn settle(ctx: &mut RequestCtx) {
    let Some(hold) = ctx.budget.take() else {
        return;
    };
    let actual = match (ctx.usage, ctx.outcome) {
        (Some(usage), _) => Some(
            ctx.pricing
                .as_ref()
                .zip(ctx.upstream_model.as_deref())
                .and_then(|(p, m)| p.cost(m, &usage))
                .map_or(0, Money::nanos),
        ),
        (None, Outcome::Failed) if ctx.first_byte.is_none() => Some(0),
        _ => None,
    };
    let Some(actual) = actual else { return };
    let delta = i128::from(actual) - i128::from(hold.estimate);
    let delta = i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
    if delta == 0 {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        match hold.budgets.ledger.adjust(&hold.counters, delta).await {
            Ok(spends) => hold.observe(&spends),
            Err(e) => {
                metrics::counter!("portcullis_settles_lost_total", "ledger" => "budgets")
                    .increment(1);
                tracing::debug!(error = %e, "budgets: a settle was lost");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use portcullis_types::BudgetPeriod;
    use time::macros::datetime;

    use super::*;

    fn scoped(period: BudgetPeriod, hard: bool) -> ScopedBudget {
        ScopedBudget {
            scope: Arc::from("team:t1"),
            filter: SpendFilter::default(),
            budget: BudgetSpec {
                max_usd: 2.5,
                period,
                alerts: vec![],
                hard,
            },
        }
    }

    #[test]
    fn counters_are_named_per_window_and_expire_with_it() {
        let b = scoped(BudgetPeriod::Daily, true);
        let last = datetime!(2026-11-30 23:59:59.999 UTC);
        let first = datetime!(2026-12-01 00:00 UTC);
        let before = counter(&b, &b.budget.period.window(last), last);
        let after = counter(&b, &b.budget.period.window(first), first);
        assert_eq!(&*before.name, "team:t1:daily:2026-11-30");
        assert_eq!(&*after.name, "team:t1:daily:2026-12-01");
        assert_eq!(before.limit, Some(2_500_000_000));
        let midnight_ms = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        assert_eq!(before.expires_at_ms, Some(midnight_ms));
        let monthly = scoped(BudgetPeriod::Monthly, true);
        let m = counter(&monthly, &monthly.budget.period.window(last), last);
        assert_eq!(&*m.name, "team:t1:monthly:2026-11");
        assert_eq!(m.expires_at_ms, Some(midnight_ms));
        let total = scoped(BudgetPeriod::Total, false);
        let t = counter(&total, &total.budget.period.window(last), last);
        assert_eq!(
            (&*t.name, t.limit, t.expires_at_ms),
            ("team:t1:total:total", None, None)
        );
    }
}

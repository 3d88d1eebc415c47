//! Stage `admit`: rate limits reserve a request before it is dispatched, and stage `settle`
//! (at the end of the request, in [`settle`]) reconciles the reservation with what the
//! provider reported.
//!
//! A request is counted against every scope that has a limit: its key (`key:<id or name>`),
//! the key's user, team and organization (`user:<id>`, ...), the model it asks for
//! (`model:<name>`), and each `limits.rules` entry that matches it (`rule:<scope>`, such as
//! `rule:team:<id>|model:gpt-4o`). The limiter takes from all of them or from none
//! (`portcullis-limits`). A request with no limit anywhere skips the stage without touching the
//! limiter, and its prompt is only tokenized when some scope limits tokens per minute.
//!
//! Settling: a request that reported its usage is settled with its actual tokens; one that
//! failed before any byte came back uses none; one that ended without usage (a client that left
//! mid-stream, a provider that reports none) keeps its estimate charged, which errs toward the
//! limit. Settles run in a spawned task, off the response path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use portcullis_limits::{Admission, Decision, Dimension, Headroom, LimitKey, RateLimiter, Retry};
use portcullis_types::{BudgetPeriod, LimitRules};
use time::OffsetDateTime;

use super::budgets::{self, Budgets};
use super::ctx::Outcome;
use super::{ApiRequest, RequestCtx};
use crate::auth::Principal;
use crate::config::limits::StreamOverrun;
use crate::error::GatewayError;
use crate::pricing::Money;
use crate::quota::{Quota, QuotaPolicy, Subject};
use crate::runtime::{Route, Runtime};
use crate::tokens;

/// The `x-ratelimit-*` figures of an admitted request: the tightest requests-per-minute and
/// tokens-per-minute rules among its scopes, after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeadroom {
    pub requests: Option<Headroom>,
    pub tokens: Option<Headroom>,
}

/// A refusal by a rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// The counter that refused (`key:...`, `team:...`, `rule:...`).
    pub scope: Arc<str>,
    pub dimension: Dimension,
    pub limit: u64,
    /// The tokens the request was estimated at.
    pub estimate: u64,
    pub retry: Retry,
}

impl LimitExceeded {
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry {
            Retry::After(d) => Some(d),
            // A request in flight will finish; a second is a fair guess for a client's retry.
            Retry::OnRelease => Some(Duration::from_secs(1)),
            Retry::Never => None,
        }
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scope, limit) = (&self.scope, self.limit);
        match (self.dimension, self.retry) {
            (Dimension::Tokens, Retry::Never) => write!(
                f,
                "this request is estimated at {} tokens, more than the limit of {scope} \
                 ({limit} tokens per minute) allows at all; lower max_tokens or shorten the prompt",
                self.estimate
            ),
            (Dimension::Concurrency, _) => write!(
                f,
                "rate limit reached for {scope}: at most {limit} requests in flight at once; \
                 retry when one finishes"
            ),
            (dimension, retry) => {
                write!(
                    f,
                    "rate limit reached for {scope}: {limit} {} per minute",
                    dimension.as_str()
                )?;
                if let Retry::After(d) = retry {
                    write!(f, "; retry after {}", reset_text(d))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// A refusal by a hard budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// The scope whose budget refused (`key:...`, `team:...`, `rule:...`).
    pub scope: Arc<str>,
    pub period: BudgetPeriod,
    pub limit: Money,
    /// Spent (and reserved by requests in flight) in the period so far.
    pub spent: Money,
    /// What this request was estimated to cost.
    pub estimate: Money,
    /// When the period starts again; `None` for a total budget.
    pub resets_at: Option<OffsetDateTime>,
}

impl BudgetExceeded {
    pub fn retry_after(&self) -> Option<Duration> {
        let left = self.resets_at? - OffsetDateTime::now_utc();
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "budget exceeded for {}: {} of its {} budget of {} is spent, and this request is \
             estimated at {}",
            self.scope, self.spent, self.period, self.limit, self.estimate
        )?;
        match self.resets_at {
            Some(at) => write!(f, "; the budget resets at {} (UTC)", rfc3339(at)),
            None => f.write_str("; a total budget does not reset"),
        }
    }
}

impl std::error::Error for BudgetExceeded {}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// A duration as OpenAI writes its `x-ratelimit-reset-*` headers: `20ms`, `1s`, `1.5s`,
/// `6m0s`.
pub fn reset_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let minutes = ms / 60_000;
    let rest = ms % 60_000;
    let seconds = if rest.is_multiple_of(1000) {
        format!("{}s", rest / 1000)
    } else {
        let text = format!("{}.{:03}", rest / 1000, rest % 1000);
        format!("{}s", text.trim_end_matches('0'))
    };
    if minutes > 0 {
        format!("{minutes}m{seconds}")
    } else {
        seconds
    }
}

/// Who and what a request is, for matching rules and naming counters.
pub fn subject<'a>(principal: &'a Principal, model: &'a str) -> Subject<'a> {
    Subject {
        key: principal.key_id.as_deref().unwrap_or(&principal.key_name),
        stored_key: principal.key_id.is_some(),
        user: principal.user.as_deref().or(principal.subject.as_deref()),
        team: principal.team.as_deref(),
        org: principal.org.as_deref(),
        model,
    }
}

/// The limit keys of a request: one per scope that has a rate limit.
pub fn limit_keys(
    policy: &QuotaPolicy,
    principal: &Principal,
    route: &Route,
    s: &Subject<'_>,
) -> Vec<LimitKey> {
    let mut keys = Vec::new();
    if let Some(quotas) = &principal.quotas {
        let scopes = [
            ("key", Some(s.key), &quotas.key),
            ("user", s.user, &quotas.user),
            ("team", s.team, &quotas.team),
            ("org", s.org, &quotas.org),
        ];
        for (dim, id, quota) in scopes {
            if let (Some(id), Some(Quota { limits, .. })) = (id, quota)
                && !limits.is_empty()
            {
                keys.push(LimitKey::new(format!("{dim}:{id}"), *limits));
            }
        }
    }
    if let Some((name, rules)) = &route.limits {
        keys.push(LimitKey::new(name.clone(), *rules));
    }
    for rule in &policy.limit_rules {
        if rule.scope.matches(s) {
            keys.push(LimitKey::new(rule.name.clone(), rule.rules));
        }
    }
    keys
}

fn limits_tokens(keys: &[LimitKey]) -> bool {
    keys.iter()
        .any(|k| matches!(k.rules, LimitRules { tpm: Some(_), .. }))
}

/// Stage `admit`: reserves the request against every rate limit and every budget of its
/// scopes, or refuses it (429 naming the limit or budget, or 503 when the shared backend is
/// unreachable and fails closed). A request without limits or budgets anywhere returns at once.
///
/// The limiter and the spend ledger are asked at the same time, so with Redis the request
/// waits for one round trip, not two; when one refuses, what the other took is given back
/// (the rate limits' reservation when the context is dropped, the budgets' at once).
pub async fn admit(
    limiter: &dyn RateLimiter,
    budgets: &Arc<Budgets>,
    runtime: &Runtime,
    principal: &Principal,
    route: &Route,
    request: &ApiRequest,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let policy = &runtime.quotas;
    let s = subject(principal, request.model());
    let keys = limit_keys(policy, principal, route, &s);
    // Counting tokens is not generating them: it takes a request from the rate limits, and no
    // tokens or money.
    let counting = request.op() == crate::provider::Operation::CountTokens;
    let scopes = if counting {
        Vec::new()
    } else {
        budgets::budget_scopes(policy, principal, &s)
    };
    if keys.is_empty() && scopes.is_empty() {
        return Ok(());
    }
    // Tokenizing costs up to a few hundred microseconds: only when a figure needs it, and at
    // most once per request (a routing rule may have estimated the prompt already).
    let estimate = if !counting && (limits_tokens(&keys) || !scopes.is_empty()) {
        tokens::Estimate {
            prompt: ctx.prompt_tokens(request),
            output: tokens::reserved_output(request, policy.default_max_tokens),
        }
    } else {
        tokens::Estimate::default()
    };
    let limits = async {
        if keys.is_empty() {
            Ok(None)
        } else {
            reserve(limiter, keys, estimate.total()).await.map(Some)
        }
    };
    let spend = async {
        if scopes.is_empty() {
            return Ok(None);
        }
        let cost = budgets::estimate_cost(&runtime.pricing, route, estimate);
        let watch =
            (request.is_stream() && policy.stream_overrun == StreamOverrun::Cut).then(|| {
                let more = tokens::Estimate {
                    prompt: 0,
                    output: budgets::EXTENSION_TOKENS,
                };
                (
                    estimate.output,
                    budgets::estimate_cost(&runtime.pricing, route, more),
                )
            });
        let now = OffsetDateTime::now_utc();
        let webhook = policy.webhook.as_deref();
        let reserve = budgets::Reserve { cost, watch };
        budgets::admit(budgets, scopes, reserve, webhook, now)
            .await
            .map(Some)
    };
    let (limits, spend) = tokio::join!(limits, spend);
    let limits = limits.map(|admission| {
        admission.map(|a| {
            ctx.headroom = RateHeadroom {
                requests: a.requests,
                tokens: a.tokens,
            };
            // Kept even when the budgets refuse: settling it (with 0 tokens) gives it back.
            ctx.reservation = Some(a.reservation);
        })
    });
    match (limits, spend) {
        (Ok(_), Ok(hold)) => {
            ctx.budget = hold;
            Ok(())
        }
        (Err(e), Ok(hold)) => {
            if let Some(hold) = hold {
                hold.release();
            }
            Err(e)
        }
        (_, Err(e)) => Err(e),
    }
}

async fn reserve(
    limiter: &dyn RateLimiter,
    keys: Vec<LimitKey>,
    tokens: u64,
) -> Result<Admission, GatewayError> {
    match limiter.reserve(keys, tokens).await {
        Ok(Decision::Admitted(admission)) => Ok(admission),
        Ok(Decision::Refused(refusal)) => {
            metrics::counter!(
                "portcullis_ratelimit_refusals_total",
                "dimension" => refusal.dimension.as_str()
            )
            .increment(1);
            Err(GatewayError::RateLimited(Box::new(LimitExceeded {
                scope: refusal.key,
                dimension: refusal.dimension,
                limit: refusal.limit,
                estimate: tokens,
                retry: refusal.retry,
            })))
        }
        Err(e) => {
            // The limiter warns once per outage and counts every refusal
            // (`portcullis_limiter_unavailable_total`): a line per request would flood the log.
            tracing::debug!(error = %e, "rate limits unavailable: request refused (fail_closed)");
            Err(GatewayError::LimiterUnavailable)
        }
    }
}

/// Stage `settle`, when the request's context is dropped: reconciles its reservation with the
/// tokens it used (see the module's docs for which figure that is).
pub fn settle(ctx: &mut RequestCtx) {
    let Some(reservation) = ctx.reservation.take() else {
        return;
    };
    let actual = match (ctx.usage, ctx.outcome) {
        (Some(u), _) => Some(u.prompt_tokens.saturating_add(u.completion_tokens)),
        (None, Outcome::Failed) if ctx.first_byte.is_none() => Some(0),
        _ => None,
    };
    let (Some(actual), Ok(runtime)) = (actual, tokio::runtime::Handle::try_current()) else {
        // Dropped unsettled: its concurrency slots are freed, its estimate stays charged.
        return;
    };
    runtime.spawn(async move {
        if let Err(e) = reservation.settle(actual).await {
            // Warned once per outage by the limiter; counted here.
            metrics::counter!("portcullis_settles_lost_total", "ledger" => "limits").increment(1);
            tracing::debug!(error = %e, "rate limits: a settle was lost");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_read_like_openais() {
        assert_eq!(reset_text(Duration::from_millis(20)), "20ms");
        assert_eq!(reset_text(Duration::from_secs(1)), "1s");
        assert_eq!(reset_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(reset_text(Duration::from_millis(6_000)), "6s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
        assert_eq!(reset_text(Duration::from_millis(61_250)), "1m1.25s");
    }

    #[test]
    fn refusals_name_the_scope_and_the_limit() {
        let e = LimitExceeded {
            scope: Arc::from("team:t1"),
            dimension: Dimension::Requests,
            limit: 60,
            estimate: 0,
            retry: Retry::After(Duration::from_millis(1500)),
        };
        assert_eq!(
            e.to_string(),
            "rate limit reached for team:t1: 60 requests per minute; retry after 1.5s"
        );
        let never = LimitExceeded {
            dimension: Dimension::Tokens,
            retry: Retry::Never,
            estimate: 5000,
            limit: 1000,
            ..e.clone()
        };
        assert!(never.to_string().contains("estimated at 5000 tokens"));
        assert_eq!(never.retry_after(), None);
        let busy = LimitExceeded {
            dimension: Dimension::Concurrency,
            retry: Retry::OnRelease,
            limit: 2,
            ..e
        };
        assert!(busy.to_string().contains("at most 2 requests in flight"));
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(1)));
        let budget = BudgetExceeded {
            scope: Arc::from("org:o1"),
            period: BudgetPeriod::Monthly,
            limit: Money(10_000_000_000),
            spent: Money(9_990_000_000),
            estimate: Money(20_000_000),
            resets_at: Some(time::macros::datetime!(2026-12-01 00:00 UTC)),
        };
        assert_eq!(
            budget.to_string(),
            "budget exceeded for org:o1: $9.99 of its monthly budget of $10.00 is spent, and \
             this request is estimated at $0.02; the budget resets at 2026-12-01T00:00:00Z (UTC)"
        );
    }
}

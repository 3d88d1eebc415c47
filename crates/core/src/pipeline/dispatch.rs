//! Stage `dispatch`: sends the request to the deployments the plan orders until one answers.
//!
//! - **Failover.** Connection errors, timeouts, 429, 5xx and upstream auth failures move on to
//!   the next deployment at once; a request the upstream rejects as invalid does not.
//!   Deployments that passive health ejected, or whose upstream asked for time with
//!   `Retry-After`, are skipped ([`crate::routing::health`]); when all are, the one free soonest
//!   is tried, unless the model says `when_all_ejected: fail`.
//! - **Retries** ([`crate::routing::retry`]): after every deployment failed, more passes over
//!   them, each after a jittered backoff (and at least the longest `Retry-After` asked), within
//!   the model's retry budget.
//! - **Hedging** ([`crate::routing::hedge`]): a request that is not streamed may send a second
//!   attempt to the next healthy deployment when the first is slow; the first success wins.
//! - **Fallbacks to other models** (`models.<name>.*fallbacks`): when the model failed as a whole
//!   (or a deployment said the prompt is too long for it, or its content filter refused), the
//!   listed models are tried in turn, each with its own plan, retries and health.
//!
//! Each attempt has its own time limit, all attempts together (fallbacks included) share the
//! requested model's total limit, and a stream must produce its first event within the
//! first-byte limit. Once a stream's first event is back, the stream is committed: nothing
//! after that falls over, and a failure mid-stream reaches the client as an error event.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use portcullis_types::Usage;
use tokio::time::{Instant, sleep, timeout};

use super::{ApiRequest, RequestCtx, bridge};
use crate::config::{Fallbacks, Timeouts};
use crate::error::GatewayError;
use crate::provider::{EventStream, ProviderError, ProviderResponse, StreamEvent, hints};
use crate::routing::health::Availability;
use crate::runtime::{Deployment, Observer, Route, Runtime};

/// A successful attempt.
pub enum Dispatched {
    Complete {
        body: Bytes,
        usage: Option<Usage>,
    },
    Stream {
        first: StreamEvent,
        rest: EventStream,
    },
}

impl std::fmt::Debug for Dispatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Complete { body, usage } => f
                .debug_struct("Complete")
                .field("body_bytes", &body.len())
                .field("usage", usage)
                .finish(),
            Self::Stream { .. } => f.write_str("Stream"),
        }
    }
}

/// Dispatches `request` to `route`, then to its fallback models if it failed as a whole.
pub async fn dispatch(
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    route: &Route,
    request: &mut ApiRequest,
) -> Result<Dispatched, GatewayError> {
    let deadline = Instant::now() + route.timeouts.total;
    let mut error = match dispatch_model(ctx, runtime, route, request, deadline).await {
        Ok(done) => return Ok(done),
        Err(e) => e,
    };
    for name in fallbacks_for(&route.fallbacks, &error) {
        let Some(fallback) = runtime.routes.get(name) else {
            continue;
        };
        if !fallback.supports(request.op()) || Instant::now() >= deadline {
            continue;
        }
        tracing::info!(
            request_id = %ctx.request_id,
            gen_ai.request.model = %route.name,
            fallback = %name,
            error.kind = error.kind(),
            "falling back to another model"
        );
        match dispatch_model(ctx, runtime, fallback, request, deadline).await {
            Ok(done) => return Ok(done),
            // The fallback cannot take this request at all: the first failure stands.
            Err(GatewayError::NoDeployment(_)) => {}
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// The fallback models for a model that failed with `error`.
fn fallbacks_for<'a>(fallbacks: &'a Fallbacks, error: &GatewayError) -> &'a [String] {
    match error {
        GatewayError::Provider(ProviderError::ContextLength { .. }) => &fallbacks.context_window,
        // The capability filter found the prompt too long for every deployment, before sending.
        GatewayError::NoDeployment(e) if e.kind() == "context_length_exceeded" => {
            &fallbacks.context_window
        }
        // No deployment can take it (images, tools, ...): another model may.
        GatewayError::NoDeployment(_) => &fallbacks.any,
        GatewayError::Provider(ProviderError::ContentFiltered { .. }) => &fallbacks.content_policy,
        GatewayError::Provider(e) if e.is_retryable() => &fallbacks.any,
        _ => &[],
    }
}

/// How one pass over the plan ended without an answer.
enum PassEnd {
    /// Every deployment it could try failed with an error worth retrying.
    Exhausted,
    /// The retry budget is spent.
    BudgetSpent,
    /// Nothing was sent: every deployment is ejected and the model says `fail`.
    AllEjected,
}

/// What a pass leaves behind for the next one.
#[derive(Default)]
struct Failures {
    last: Option<ProviderError>,
    /// The longest `Retry-After` an upstream asked for.
    retry_after: Option<Duration>,
}

impl Failures {
    fn note(&mut self, error: ProviderError, hints: &hints::Hints) {
        self.retry_after = self.retry_after.max(hints.retry_after);
        self.last = Some(error.with_retry_after(hints.retry_after));
    }
}

/// All passes over one model's deployments.
async fn dispatch_model(
    ctx: &mut RequestCtx,
    runtime: &Runtime,
    route: &Route,
    request: &mut ApiRequest,
    deadline: Instant,
) -> Result<Dispatched, GatewayError> {
    let plan = crate::routing::plan(runtime, route, request, ctx)?;
    route.retry_budget.deposit();
    let mut failures = Failures::default();
    for round in 0..=route.retry.max {
        if round > 0 {
            let Some(wait) = route.retry.wait(round, failures.retry_after) else {
                break;
            };
            if Instant::now() + wait >= deadline {
                break;
            }
            sleep(wait).await;
            failures.retry_after = None;
        }
        match pass(
            ctx,
            route,
            &plan,
            request,
            deadline,
            round > 0,
            &mut failures,
        )
        .await?
        {
            Ok(done) => return Ok(done),
            Err(PassEnd::Exhausted) => {}
            Err(PassEnd::BudgetSpent) => {
                tracing::debug!(
                    request_id = %ctx.request_id,
                    gen_ai.request.model = %route.name,
                    "retry budget spent: not retrying"
                );
                break;
            }
            Err(PassEnd::AllEjected) if failures.last.is_none() => {
                return Err(ProviderError::Overloaded {
                    message: Some(
                        "every deployment of this model is cooling down after failures".into(),
                    ),
                    retry_after: None,
                }
                .into());
            }
            Err(PassEnd::AllEjected) => break,
        }
    }
    Err(failures.last.unwrap_or(ProviderError::Timeout).into())
}

/// One pass over the plan. The outer `Err` is final (a request error, not worth another
/// deployment); the inner one says why the pass found no answer.
async fn pass(
    ctx: &mut RequestCtx,
    route: &Route,
    plan: &[usize],
    request: &mut ApiRequest,
    deadline: Instant,
    retrying: bool,
    failures: &mut Failures,
) -> Result<Result<Dispatched, PassEnd>, GatewayError> {
    let stream = request.is_stream();
    let mut ejected = Vec::new();
    let mut tried = vec![false; route.deployments.len()];
    let mut any = false;
    let mut next = 0;
    loop {
        let index = match plan.get(next) {
            Some(&index) => {
                next += 1;
                if tried.get(index).copied().unwrap_or(true) {
                    continue;
                }
                match route.deployments.get(index).map(|d| d.health.check()) {
                    Some(Availability::Ejected { until }) => {
                        ejected.push((until, index));
                        continue;
                    }
                    Some(_) => index,
                    None => continue,
                }
            }
            None if !any && route.least_bad_when_all_ejected() => match ejected.iter().min() {
                Some(&(_, index)) => {
                    ejected.clear();
                    index
                }
                None => break,
            },
            None => break,
        };
        any = true;
        let Some(deployment) = route.deployments.get(index) else {
            continue;
        };
        if let Some(seen) = tried.get_mut(index) {
            *seen = true;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            failures.last = Some(ProviderError::Timeout);
            break;
        }
        if retrying && !route.retry_budget.try_withdraw() {
            return Ok(Err(PassEnd::BudgetSpent));
        }
        ctx.attempts += 1;
        request.set_model(&deployment.upstream_model);
        let tokens = ctx.prompt_estimate.unwrap_or(0);
        // A hedge goes to the next deployment of the plan that is healthy now.
        let hedge = route
            .hedge
            .filter(|_| !stream)
            .and_then(|h| h.delay(&deployment.stats.latencies))
            .filter(|delay| *delay < remaining)
            .and_then(|delay| {
                let other = plan[next.min(plan.len())..].iter().copied().find(|&i| {
                    !tried.get(i).copied().unwrap_or(true)
                        && route
                            .deployments
                            .get(i)
                            .is_some_and(|d| d.health.is_healthy())
                })?;
                Some((delay, other))
            });
        let (served, result, hints) = match hedge {
            None => {
                let (result, hints) = attempt(
                    deployment,
                    request,
                    stream,
                    &route.timeouts,
                    remaining,
                    tokens,
                )
                .await;
                (index, result, hints)
            }
            Some((delay, other)) => {
                let raced = race(
                    ctx,
                    route,
                    request,
                    (index, other),
                    delay,
                    remaining,
                    tokens,
                );
                let (served, result, hints, hedged) = raced.await;
                if hedged && let Some(seen) = tried.get_mut(other) {
                    *seen = true;
                }
                (served, result, hints)
            }
        };
        let Some(deployment) = route.deployments.get(served) else {
            continue;
        };
        ctx.provider = Some(deployment.provider_name.clone());
        ctx.upstream_model = Some(deployment.upstream_model.clone());
        match result {
            Ok(done) => {
                if stream {
                    ctx.first_byte = Some(ctx.started.elapsed());
                }
                return Ok(Ok(done));
            }
            Err(error) => {
                tracing::warn!(
                    request_id = %ctx.request_id,
                    gen_ai.provider.name = %deployment.provider_name,
                    attempt = ctx.attempts,
                    error.kind = error.kind(),
                    retry = error.is_retryable(),
                    "upstream attempt failed"
                );
                if !error.is_retryable() {
                    return Err(error.with_retry_after(hints.retry_after).into());
                }
                failures.note(error, &hints);
            }
        }
    }
    Ok(Err(if any {
        PassEnd::Exhausted
    } else {
        PassEnd::AllEjected
    }))
}

/// The first attempt, and after `delay` a hedge to `other` if the budget allows one: the
/// first success wins and the other attempt is dropped (cancelling its upstream request). If
/// both fail, the later failure is the one returned. Returns which deployment's outcome it is,
/// and whether the hedge was sent.
async fn race(
    ctx: &mut RequestCtx,
    route: &Route,
    request: &ApiRequest,
    (first, other): (usize, usize),
    delay: Duration,
    remaining: Duration,
    tokens: u64,
) -> (usize, Result<Dispatched, ProviderError>, hints::Hints, bool) {
    let (Some(a), Some(b)) = (route.deployments.get(first), route.deployments.get(other)) else {
        return (
            first,
            Err(ProviderError::Timeout),
            hints::Hints::default(),
            false,
        );
    };
    let t = &route.timeouts;
    let mut primary = pin!(attempt(a, request, false, t, remaining, tokens));
    tokio::select! {
        (result, hints) = &mut primary => return (first, result, hints, false),
        () = sleep(delay) => {}
    }
    if !route.retry_budget.try_withdraw() {
        let (result, hints) = primary.await;
        return (first, result, hints, false);
    }
    ctx.attempts += 1;
    tracing::debug!(
        request_id = %ctx.request_id,
        gen_ai.provider.name = %b.provider_name,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "hedging a slow attempt"
    );
    let mut copy = request.clone();
    copy.set_model(&b.upstream_model);
    let left = remaining.saturating_sub(delay);
    let mut hedge = pin!(attempt(b, &copy, false, t, left, tokens));
    tokio::select! {
        (result, hints) = &mut primary => match result {
            Ok(done) => (first, Ok(done), hints, true),
            Err(_) => {
                let (result, hints) = hedge.await;
                (other, result, hints, true)
            }
        },
        (result, hints) = &mut hedge => match result {
            Ok(done) => (other, Ok(done), hints, true),
            Err(_) => {
                let (result, hints) = primary.await;
                (first, result, hints, true)
            }
        },
    }
}

/// One attempt on one deployment, with what it teaches routing: in-flight count, latency,
/// health, rate-limit headroom and `Retry-After`.
async fn attempt(
    deployment: &Deployment,
    request: &ApiRequest,
    stream: bool,
    timeouts: &Timeouts,
    remaining: Duration,
    tokens: u64,
) -> (Result<Dispatched, ProviderError>, hints::Hints) {
    let started = Instant::now();
    let in_flight = deployment.stats.start();
    deployment.stats.headroom.sent(tokens);
    let (result, hints) =
        hints::observe(send(deployment, request, stream, timeouts, remaining)).await;
    drop(in_flight);
    deployment.stats.headroom.report(&hints);
    deployment.record_health(result.as_ref().map(|_| ()), Observer::Request);
    match &result {
        Ok(_) => deployment.stats.observe(started.elapsed(), stream),
        Err(_) => {
            if let Some(wait) = hints.retry_after {
                deployment.health.defer(wait);
            }
        }
    }
    (result, hints)
}

/// One non-streamed call of `request` on `deployment`, within `limit`: its body and usage.
pub(crate) async fn complete(
    deployment: &Deployment,
    request: &ApiRequest,
    limit: Duration,
) -> Result<(Bytes, Option<Usage>), ProviderError> {
    match timeout(limit, bridge::call(&deployment.provider, request, false)).await {
        Err(_) => Err(ProviderError::Timeout),
        Ok(Ok(ProviderResponse::Complete { body, usage })) => Ok((body, usage)),
        Ok(Ok(ProviderResponse::Stream(_))) => Err(ProviderError::InvalidResponse(
            "a stream where a JSON body was expected".into(),
        )),
        Ok(Err(e)) => Err(e),
    }
}

async fn send(
    deployment: &Deployment,
    request: &ApiRequest,
    stream: bool,
    timeouts: &Timeouts,
    remaining: Duration,
) -> Result<Dispatched, ProviderError> {
    if !stream {
        let (body, usage) = complete(deployment, request, timeouts.attempt.min(remaining)).await?;
        return Ok(Dispatched::Complete { body, usage });
    }
    let limit = timeouts.first_byte.min(remaining);
    let first = async {
        match bridge::call(&deployment.provider, request, true).await? {
            ProviderResponse::Stream(mut rest) => match rest.next().await {
                Some(Ok(first)) => Ok(Dispatched::Stream { first, rest }),
                Some(Err(e)) => Err(e),
                None => Err(ProviderError::StreamBroken(
                    "the stream ended before its first event".into(),
                )),
            },
            ProviderResponse::Complete { .. } => Err(ProviderError::InvalidResponse(
                "a JSON body where a stream was expected".into(),
            )),
        }
    };
    match timeout(limit, first).await {
        Err(_) if limit < timeouts.first_byte => Err(ProviderError::Timeout),
        Err(_) => Err(ProviderError::FirstByteTimeout),
        Ok(result) => result,
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;

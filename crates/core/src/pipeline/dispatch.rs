//! Stage `dispatch`: tries the planned deployments in order until one answers. Connection
//! errors, timeouts, 429, 5xx and upstream auth failures move on to the next deployment; a
//! request the upstream rejects as invalid does not. Each attempt has its own time limit, all
//! attempts together share the route's total limit, and a stream must produce its first event
//! within the first-byte limit; after that first event the stream is committed to the client.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use portcullis_types::Usage;
use tokio::time::{Instant, timeout};

use super::{ApiRequest, RequestCtx, bridge};
use crate::config::Timeouts;
use crate::error::GatewayError;
use crate::provider::{EventStream, ProviderError, ProviderResponse, StreamEvent};
use crate::routing::health::Availability;
use crate::runtime::{Deployment, Route};

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

pub async fn dispatch(
    ctx: &mut RequestCtx,
    route: &Route,
    request: &mut ApiRequest,
) -> Result<Dispatched, GatewayError> {
    let stream = request.is_stream();
    let plan = crate::routing::plan(route, request, ctx)?;
    let deadline = Instant::now() + route.timeouts.total;
    let mut last_error = None;
    // Ejected deployments are skipped (`routing::health`); when every one is, the one whose
    // cool-down ends first is tried rather than failing outright.
    let mut ejected = Vec::new();
    let mut tried = false;
    let mut plan = plan.into_iter();
    loop {
        let index = match plan.next() {
            Some(index) => match route.deployments.get(index).map(|d| d.health.check()) {
                Some(Availability::Ejected { until }) => {
                    ejected.push((until, index));
                    continue;
                }
                Some(_) => index,
                None => continue,
            },
            None if !tried && route.least_bad_when_all_ejected() => match ejected.iter().min() {
                Some(&(_, index)) => {
                    ejected.clear();
                    index
                }
                None => break,
            },
            None => break,
        };
        tried = true;
        let Some(deployment) = route.deployments.get(index) else {
            continue;
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            last_error = Some(ProviderError::Timeout);
            break;
        }
        ctx.attempts += 1;
        ctx.provider = Some(deployment.provider_name.clone());
        ctx.upstream_model = Some(deployment.upstream_model.clone());
        request.set_model(&deployment.upstream_model);
        let started = Instant::now();
        let in_flight = deployment.stats.start();
        let result = attempt(deployment, request, stream, &route.timeouts, remaining).await;
        drop(in_flight);
        if let Some(cooldown) = deployment.health.record(result.as_ref().map(|_| ())) {
            tracing::warn!(
                gen_ai.provider.name = %deployment.provider_name,
                gen_ai.request.model = %deployment.upstream_model,
                cooldown_ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
                "deployment ejected: skipped until its cool-down ends"
            );
        }
        if result.is_ok() {
            deployment.stats.observe(started.elapsed(), stream);
        }
        match result {
            Ok(done) => {
                if stream {
                    ctx.first_byte = Some(ctx.started.elapsed());
                }
                return Ok(done);
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
                    return Err(error.into());
                }
                last_error = Some(error);
            }
        }
    }
    if !tried && !ejected.is_empty() {
        // `when_all_ejected: fail`: nothing was sent.
        return Err(ProviderError::Overloaded {
            message: Some("every deployment of this model is cooling down after failures".into()),
        }
        .into());
    }
    Err(last_error.unwrap_or(ProviderError::Timeout).into())
}

async fn attempt(
    deployment: &Deployment,
    request: &ApiRequest,
    stream: bool,
    timeouts: &Timeouts,
    remaining: Duration,
) -> Result<Dispatched, ProviderError> {
    if !stream {
        let call = bridge::call(&deployment.provider, request, false);
        return match timeout(timeouts.attempt.min(remaining), call).await {
            Err(_) => Err(ProviderError::Timeout),
            Ok(Ok(ProviderResponse::Complete { body, usage })) => {
                Ok(Dispatched::Complete { body, usage })
            }
            Ok(Ok(ProviderResponse::Stream(_))) => Err(ProviderError::InvalidResponse(
                "a stream where a JSON body was expected".into(),
            )),
            Ok(Err(e)) => Err(e),
        };
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

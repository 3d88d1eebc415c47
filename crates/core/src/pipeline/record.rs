//! Stage `record`: one access record per request, written when its [`RequestCtx`] is dropped
//! (so streams are recorded when they end, and requests whose client left are recorded too).
//! Only names, counts and timings: never content, never keys. Field names follow the
//! OpenTelemetry GenAI conventions where one exists.
//!
//! Records go to an [`AccessLog`] sink rather than through `tracing`'s formatter: that
//! formatter cost more than the rest of the request path together. The `tracing` filter still
//! decides whether they are written (target `portcullis::access`, level INFO).

use std::fmt::Debug;

use serde::Serialize;

use super::RequestCtx;
use super::ctx::Outcome;

/// Status logged for requests whose client went away (nginx's convention).
const CLIENT_CLOSED: u16 = 499;

/// Where access records go (the server writes them next to its other log lines).
pub trait AccessLog: Send + Sync + Debug {
    fn write(&self, record: &AccessRecord<'_>);
}

/// One request as the access log shows it.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub endpoint: &'a str,
    #[serde(rename = "http.status")]
    pub status: u16,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    #[serde(
        rename = "gen_ai.request.model",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<&'a str>,
    #[serde(
        rename = "gen_ai.provider.name",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<&'a str>,
    #[serde(
        rename = "gen_ai.response.model",
        skip_serializing_if = "Option::is_none"
    )]
    pub upstream_model: Option<&'a str>,
    pub attempts: u32,
    pub stream: bool,
    #[serde(
        rename = "gen_ai.usage.input_tokens",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_tokens: Option<u64>,
    #[serde(
        rename = "gen_ai.usage.output_tokens",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_tokens: Option<u64>,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<f64>,
    #[serde(rename = "error.kind", skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

pub fn record(ctx: &RequestCtx, sink: &dyn AccessLog) {
    if !tracing::enabled!(target: "portcullis::access", tracing::Level::INFO) {
        return;
    }
    let (status, outcome) = match ctx.outcome {
        Outcome::ClientGone => (CLIENT_CLOSED, "client_gone"),
        Outcome::Failed => (ctx.status.as_u16(), "failed"),
        Outcome::Completed | Outcome::Pending => (ctx.status.as_u16(), "completed"),
    };
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    sink.write(&AccessRecord {
        request_id: &ctx.request_id,
        endpoint: ctx.endpoint,
        status,
        outcome,
        key: ctx.key_name.as_deref(),
        model: ctx.model.as_deref(),
        provider: ctx.provider.as_deref(),
        upstream_model: ctx.upstream_model.as_deref(),
        attempts: ctx.attempts,
        stream: ctx.stream,
        input_tokens: ctx.usage.map(|u| u.prompt_tokens),
        output_tokens: ctx.usage.map(|u| u.completion_tokens),
        duration_ms: ms(ctx.started.elapsed()),
        ttfb_ms: ctx.first_byte.map(ms),
        error_kind: ctx.error_kind,
    });
}

//! Stage `record`: one access record per request, written when its [`RequestCtx`] is dropped
//! (so streams are recorded when they end, and requests whose client left are recorded too).
//! Only names, counts and timings: never content, never keys. Field names follow the
//! OpenTelemetry GenAI conventions where one exists.
//!
//! Records go to an [`AccessLog`] sink rather than through `tracing`'s formatter: that
//! formatter cost more than the rest of the request path together. The `tracing` filter still
//! decides whether they are written (target `portcullis::access`, level INFO).

use std::fmt::Debug;

use super::RequestCtx;
use super::ctx::Outcome;
use crate::error::Fault;

/// Status logged for requests whose client went away (nginx's convention).
const CLIENT_CLOSED: u16 = 499;

/// Where access records go (the server writes them next to its other log lines).
pub trait AccessLog: Send + Sync + Debug {
    fn write(&self, record: &AccessRecord<'_>);
}

/// One request as the access log shows it.
#[derive(Debug)]
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub endpoint: &'a str,
    pub status: u16,
    pub outcome: &'static str,
    pub key: Option<&'a str>,
    pub model: Option<&'a str>,
    /// The routing rule that sent the request to another model, and that model.
    pub rule: Option<&'a str>,
    pub route: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub upstream_model: Option<&'a str>,
    pub attempts: u32,
    pub stream: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Microseconds, shown as milliseconds.
    pub duration_us: u64,
    pub ttfb_us: Option<u64>,
    pub error_kind: Option<&'static str>,
    pub error_fault: Option<&'static str>,
}

/// A field value of an access record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    Str(&'a str),
    Uint(u64),
    Bool(bool),
    /// A duration in microseconds, written as milliseconds with three decimals.
    Millis(u64),
}

impl AccessRecord<'_> {
    /// The record's fields in log order, under their log names; absent ones are skipped.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, Field<'_>)> {
        [
            ("request_id", Some(Field::Str(self.request_id))),
            ("endpoint", Some(Field::Str(self.endpoint))),
            ("http.status", Some(Field::Uint(u64::from(self.status)))),
            ("outcome", Some(Field::Str(self.outcome))),
            ("key", self.key.map(Field::Str)),
            ("gen_ai.request.model", self.model.map(Field::Str)),
            ("route.rule", self.rule.map(Field::Str)),
            ("route.model", self.route.map(Field::Str)),
            ("gen_ai.provider.name", self.provider.map(Field::Str)),
            ("gen_ai.response.model", self.upstream_model.map(Field::Str)),
            ("attempts", Some(Field::Uint(u64::from(self.attempts)))),
            ("stream", Some(Field::Bool(self.stream))),
            (
                "gen_ai.usage.input_tokens",
                self.input_tokens.map(Field::Uint),
            ),
            (
                "gen_ai.usage.output_tokens",
                self.output_tokens.map(Field::Uint),
            ),
            ("duration_ms", Some(Field::Millis(self.duration_us))),
            ("ttfb_ms", self.ttfb_us.map(Field::Millis)),
            ("error.kind", self.error_kind.map(Field::Str)),
            ("error.fault", self.error_fault.map(Field::Str)),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }
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
    let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    sink.write(&AccessRecord {
        request_id: &ctx.request_id,
        endpoint: ctx.endpoint,
        status,
        outcome,
        key: ctx.key_name.as_deref(),
        model: ctx.model.as_deref(),
        rule: ctx.rule.as_deref(),
        route: ctx.route.as_deref(),
        provider: ctx.provider.as_deref(),
        upstream_model: ctx.upstream_model.as_deref(),
        attempts: ctx.attempts,
        stream: ctx.stream,
        input_tokens: ctx.usage.map(|u| u.prompt_tokens),
        output_tokens: ctx.usage.map(|u| u.completion_tokens),
        duration_us: us(ctx.started.elapsed()),
        ttfb_us: ctx.first_byte.map(us),
        error_kind: ctx.error_kind,
        error_fault: ctx.error_fault.map(Fault::as_str),
    });
}

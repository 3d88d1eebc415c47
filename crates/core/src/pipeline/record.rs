//! Stage `record`: one access-log line per request, written when its [`RequestCtx`] is dropped
//! (so streams are recorded when they end, and requests whose client left are recorded too).
//! Only names, counts and timings: never content, never keys. Field names follow the
//! OpenTelemetry GenAI conventions where one exists.

use super::RequestCtx;
use super::ctx::Outcome;

/// Status logged for requests whose client went away (nginx's convention).
const CLIENT_CLOSED: u16 = 499;

pub fn record(ctx: &RequestCtx) {
    let _entered = ctx.span.enter();
    let status = match ctx.outcome {
        Outcome::ClientGone => CLIENT_CLOSED,
        _ => ctx.status.as_u16(),
    };
    let usage = ctx.usage.unwrap_or_default();
    let duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
    let ttfb_ms = ctx.first_byte.map(|d| d.as_secs_f64() * 1000.0);
    tracing::info!(
        target: "portcullis::access",
        request_id = %ctx.request_id,
        endpoint = ctx.endpoint,
        http.status = status,
        outcome = ?ctx.outcome,
        key = ctx.key_name.as_deref(),
        gen_ai.request.model = ctx.model.as_deref(),
        gen_ai.provider.name = ctx.provider.as_deref(),
        gen_ai.response.model = ctx.upstream_model.as_deref(),
        attempts = ctx.attempts,
        stream = ctx.stream,
        gen_ai.usage.input_tokens = ctx.usage.map(|_| usage.prompt_tokens),
        gen_ai.usage.output_tokens = ctx.usage.map(|_| usage.completion_tokens),
        duration_ms,
        ttfb_ms,
        error.kind = ctx.error_kind,
        "request finished"
    );
}

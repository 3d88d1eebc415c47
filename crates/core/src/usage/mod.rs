//! Usage accounting (stages `settle` and `record`): each finished request becomes one
//! [`UsageRecord`], appended to the durable [`Journal`] before the client receives the end of its
//! response; the [`writer`] moves the journal into the store in batches, off the request path.
//!
//! What "acknowledged" means, precisely: a success is acknowledged when the client receives
//! the end of it, which is after its record was written:
//!
//! - a JSON response: the record is appended before the body is handed to the HTTP edge;
//! - a stream: the record is appended before the final event (`data: [DONE]` for OpenAI,
//!   `message_stop` for Anthropic, or the end of the body when the upstream sends neither) is
//!   handed to the edge; the content before it may already be with the client.
//!
//! If the append fails, the client gets a 503 (or an error event in place of `[DONE]`) instead,
//! so no acknowledged request is unaccounted. Requests that end otherwise (errors, clients that
//! leave) are appended when their context is dropped, which for an error is also before its
//! response is sent, but a failure to append those is only logged.
//!
//! Back-pressure: when the store falls more than `usage.max_bytes` behind, new requests are
//! refused with a 503 ([`crate::GatewayError::UsageJournalFull`]) before any upstream call.

pub mod journal;
pub mod writer;

use std::sync::Arc;

use portcullis_types::UsageRecord;

pub use journal::{Journal, JournalError, JournalOptions, Position, Recovery};

use crate::config::Fsync;
use crate::error::GatewayError;
use crate::pipeline::RequestCtx;
use crate::pipeline::ctx::Outcome;

/// Status recorded for requests whose client went away (nginx's convention).
const CLIENT_CLOSED: u16 = 499;

/// The usage record of a finished request (outcome and timings as of now).
pub fn record_of(ctx: &RequestCtx) -> UsageRecord {
    let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (status, outcome) = match ctx.outcome {
        Outcome::ClientGone => (CLIENT_CLOSED, "client_gone"),
        Outcome::Failed => (ctx.status.as_u16(), "failed"),
        Outcome::Completed | Outcome::Pending => (ctx.status.as_u16(), "completed"),
    };
    let elapsed = ctx.started.elapsed();
    let started = std::time::SystemTime::now()
        .checked_sub(elapsed)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let s = |v: &Option<Arc<str>>| v.as_deref().map(str::to_owned);
    UsageRecord {
        id: uuid::Uuid::now_v7().to_string(),
        request_id: ctx.request_id.to_string(),
        started_at_us: started,
        key_name: s(&ctx.key_name),
        key_id: s(&ctx.key_id),
        org: s(&ctx.org),
        team: s(&ctx.team),
        user: s(&ctx.user),
        endpoint: ctx.endpoint.to_owned(),
        model: ctx.model.as_deref().map(str::to_owned),
        served_model: s(&ctx.upstream_model),
        provider: s(&ctx.provider),
        status,
        outcome: outcome.to_owned(),
        stream: ctx.stream,
        input_tokens: ctx.usage.map(|u| u.prompt_tokens),
        output_tokens: ctx.usage.map(|u| u.completion_tokens),
        cached_tokens: ctx.usage.map(|u| u.cached_tokens),
        reasoning_tokens: ctx.usage.map(|u| u.reasoning_tokens),
        latency_us: us(elapsed),
        ttfb_us: ctx.first_byte.map(us),
        cost_micros: cost_micros(ctx),
    }
}

/// The request's cost in micro-dollars (rounded to the nearest), from the usage the provider
/// reported and the price of the model that served it; `None` without usage or a price.
fn cost_micros(ctx: &RequestCtx) -> Option<i64> {
    let usage = ctx.usage.as_ref()?;
    let model = ctx.upstream_model.as_deref().or(ctx.model.as_deref())?;
    let nanos = ctx.pricing.as_ref()?.cost(model, usage)?.nanos();
    i64::try_from(nanos.saturating_add(500) / 1_000).ok()
}

/// Appends `record`, waiting for it to be written (and synced under `fsync: always`, on a
/// blocking thread so the runtime's workers never wait for the disk).
pub async fn append(journal: Arc<Journal>, record: UsageRecord) -> Result<(), GatewayError> {
    let result = if journal.options().fsync == Fsync::Always {
        tokio::task::spawn_blocking(move || journal.append(&record))
            .await
            .unwrap_or_else(|e| Err(JournalError::Io(std::io::Error::other(e))))
    } else {
        // One write(2) of a few hundred bytes: microseconds, like a log line.
        journal.append(&record)
    };
    result.map_err(|e| {
        tracing::error!(error = %e, "usage journal: cannot write a usage record");
        GatewayError::UsageJournalFailed
    })
}

/// Accounts for `ctx` now (a success about to be acknowledged): appends its record and takes
/// the journal out of the context, so that dropping it appends nothing more. Without a journal
/// (no store) there is nothing to do.
pub async fn account(ctx: &mut RequestCtx) -> Result<(), GatewayError> {
    let Some(journal) = ctx.journal.take() else {
        return Ok(());
    };
    ctx.complete();
    append(journal, record_of(ctx)).await
}

/// Accounts for a context being dropped without [`account`]: an error, a client that left, a
/// broken stream. The write is synchronous, without waiting for a disk flush; a failure is
/// logged.
pub fn account_on_drop(ctx: &RequestCtx, journal: &Journal) {
    if let Err(e) = journal.append_unsynced(&record_of(ctx)) {
        tracing::error!(
            error = %e,
            request_id = %ctx.request_id,
            "usage journal: cannot write the usage record of an unacknowledged request"
        );
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod pipeline_tests;

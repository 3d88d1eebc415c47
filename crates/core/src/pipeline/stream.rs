//! The stream a client receives: upstream events forwarded one by one as they arrive, framed as
//! SSE. On the way it reads the usage the upstream reports (the gateway always asks for it), and
//! drops the usage-only chunk when the client did not ask for it. An upstream failure or a stall
//! after the first event becomes one OpenAI-shaped error event, then the stream ends. The
//! request's context rides along and is recorded when the stream is dropped, however it ended.
//! With a usage journal, a stream that succeeds is accounted before its final event (`[DONE]`,
//! `message_stop`, or the end of the body) is yielded: the event waits for the record's write.
//! A stream held to its hard budgets (`budgets.stream_overrun: cut`, see
//! [`super::budgets`]) counts its events against the output tokens it reserved; when they are
//! used up, the next event waits for more room, and a refusal ends the stream with a
//! `budget_exceeded` error event.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep, sleep};

use super::RequestCtx;
use super::budgets::{BudgetHold, EXTENSION_TOKENS, Extended};
use crate::error::GatewayError;
use crate::json_scan as scan;
use crate::provider::{Dialect, EventStream, ProviderError, StreamEvent};

/// SSE body of a streamed response. Yields framed `data: ...\n\n` events.
pub struct ClientStream {
    ctx: RequestCtx,
    first: Option<StreamEvent>,
    rest: EventStream,
    idle: Pin<Box<Sleep>>,
    /// `[DONE]` or an error was sent: drain the upstream, send nothing more.
    sent_last: bool,
    finished: bool,
    /// The usage record being written, and the final event to yield once it is (`None`: end
    /// the body).
    accounting: Option<(Accounting, Option<Bytes>)>,
    /// Events the stream may still send under its budget reservation (`cut` streams only).
    budget_left: Option<u64>,
    /// A request for more budget room in flight, and the event waiting for it.
    extending: Option<(Extending, StreamEvent)>,
}

type Accounting = Pin<Box<dyn Future<Output = Result<(), GatewayError>> + Send>>;
type Extending = Pin<Box<dyn Future<Output = Extended> + Send>>;

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("request_id", &self.ctx.request_id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ClientStream {
    pub fn new(ctx: RequestCtx, first: StreamEvent, rest: EventStream) -> Self {
        let idle = Box::pin(sleep(ctx.stream_idle));
        let budget_left = ctx.budget.as_ref().and_then(BudgetHold::watched_output);
        Self {
            ctx,
            first: Some(first),
            rest,
            idle,
            sent_last: false,
            finished: false,
            accounting: None,
            budget_left,
            extending: None,
        }
    }

    /// Counts `event` against the budget reservation of a `cut` stream: `Some(event)` when it
    /// may go out now, `None` when it waits for more room (a request for it has started).
    fn budget_gate(&mut self, event: StreamEvent) -> Option<StreamEvent> {
        if !self.is_output(&event) {
            return Some(event);
        }
        match self.budget_left {
            Some(0) => {
                let extend = self.ctx.budget.as_ref().map(BudgetHold::extend)?;
                self.extending = Some((Box::pin(extend), event));
                None
            }
            Some(n) => {
                self.budget_left = Some(n - 1);
                Some(event)
            }
            None => Some(event),
        }
    }

    /// Whether `event` carries generated output (about one token, as providers stream): not
    /// `[DONE]`, a usage-only chunk, or Anthropic's framing events.
    fn is_output(&self, event: &StreamEvent) -> bool {
        match self.ctx.dialect {
            Dialect::OpenAi => {
                !event.is_done() && memchr::memmem::find(&event.data, b"\"choices\":[]").is_none()
            }
            Dialect::Anthropic => event.event.as_deref() == Some(b"content_block_delta".as_slice()),
        }
    }

    /// Polls a request for more budget room; when answered, the waiting event (granted) or
    /// the stream's end with an error event (denied).
    fn poll_extending(&mut self, cx: &mut Context<'_>) -> Poll<Result<StreamEvent, Bytes>> {
        let Some((extend, _)) = self.extending.as_mut() else {
            return Poll::Ready(Err(Bytes::new()));
        };
        let answer = std::task::ready!(extend.as_mut().poll(cx));
        let Some((_, event)) = self.extending.take() else {
            return Poll::Ready(Err(Bytes::new()));
        };
        match answer {
            Extended::Granted(amount, spends) => {
                if let Some(hold) = self.ctx.budget.as_mut() {
                    hold.extended(amount, &spends);
                }
                self.budget_left = Some(EXTENSION_TOKENS - 1);
                Poll::Ready(Ok(event))
            }
            Extended::Denied(error) => {
                self.ctx.failed_after_headers(&error);
                self.sent_last = true;
                let body = error.to_json_in(self.ctx.dialect);
                Poll::Ready(Err(match self.ctx.dialect {
                    Dialect::OpenAi => frame(None, &body),
                    Dialect::Anthropic => frame(Some(b"error"), &body),
                }))
            }
        }
    }

    /// How the stream is served, for its response headers.
    pub fn meta(&self) -> super::ReplyMeta {
        self.ctx.reply_meta()
    }

    /// Starts writing the usage record of a stream that succeeded, holding back `then` (its
    /// final event) until the record is written. False without a journal.
    fn account(&mut self, then: Option<Bytes>) -> bool {
        let Some(journal) = self.ctx.journal.take() else {
            return false;
        };
        self.ctx.complete();
        let record = crate::usage::record_of(&self.ctx);
        let write = Box::pin(crate::usage::append(journal, record));
        self.accounting = Some((write, then));
        true
    }

    /// Polls the usage record's write; when done, what to yield (the held-back final event, an
    /// error event in its place if the write failed, or the end).
    fn poll_accounting(&mut self, cx: &mut Context<'_>) -> Poll<Option<Option<Bytes>>> {
        let Some((write, _)) = self.accounting.as_mut() else {
            return Poll::Ready(None);
        };
        let result = std::task::ready!(write.as_mut().poll(cx));
        let then = self.accounting.take().and_then(|(_, then)| then);
        match result {
            Ok(()) => Poll::Ready(Some(then)),
            Err(e) => {
                self.ctx.failed_after_headers(&e);
                let body = e.to_json_in(self.ctx.dialect);
                let event = match self.ctx.dialect {
                    Dialect::OpenAi => frame(None, &body),
                    Dialect::Anthropic => frame(Some(b"error"), &body),
                };
                Poll::Ready(Some(then.map(|_| event)))
            }
        }
    }

    /// The bytes to yield for `event` now: `None` when it is skipped, or when it is the final
    /// event of a success, which waits for the usage record's write.
    fn emit(&mut self, event: StreamEvent) -> Option<Bytes> {
        let bytes = self.forward(event)?;
        if self.sent_last && self.account(Some(bytes.clone())) {
            return None;
        }
        Some(bytes)
    }

    /// Frames an event for the client, or `None` to skip it.
    fn forward(&mut self, event: StreamEvent) -> Option<Bytes> {
        match self.ctx.dialect {
            Dialect::OpenAi => self.forward_openai(event),
            Dialect::Anthropic => {
                self.read_anthropic_usage(&event);
                if event.event.as_deref() == Some(b"message_stop".as_slice()) {
                    self.sent_last = true;
                }
                Some(frame(event.event.as_deref(), &event.data))
            }
        }
    }

    fn forward_openai(&mut self, event: StreamEvent) -> Option<Bytes> {
        if event.is_done() {
            self.sent_last = true;
            return Some(Bytes::from_static(b"data: [DONE]\n\n"));
        }
        if memchr::memmem::find(&event.data, b"\"usage\"").is_some()
            && let Ok([Some(usage), choices]) = scan::top_level(&event.data, ["usage", "choices"])
            && let Some(usage) = scan::usage_object(usage)
        {
            self.ctx.usage = Some(usage);
            let usage_only = choices.is_none_or(scan::is_empty_array);
            if usage_only && !self.ctx.client_wants_usage {
                return None;
            }
        }
        Some(frame(event.event.as_deref(), &event.data))
    }

    /// Anthropic streams report input tokens in `message_start` and cumulative output tokens in
    /// each `message_delta` (newer ones repeat the input counts there).
    fn read_anthropic_usage(&mut self, event: &StreamEvent) {
        let usage = match event.event.as_deref() {
            Some(b"message_start") => scan::top_level(&event.data, ["message"])
                .ok()
                .and_then(|[m]| m)
                .and_then(|m| scan::top_level(m, ["usage"]).ok())
                .and_then(|[u]| u),
            Some(b"message_delta") => scan::top_level(&event.data, ["usage"])
                .ok()
                .and_then(|[u]| u),
            _ => None,
        };
        let Some(counts) = usage.and_then(scan::anthropic_usage_object) else {
            return;
        };
        let mut usage = self.ctx.usage.unwrap_or_default();
        if let Some(input) = counts.input {
            usage.prompt_tokens = input;
            usage.cached_tokens = counts.cache_read;
        }
        usage.completion_tokens = counts.output;
        usage.total_tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        self.ctx.usage = Some(usage);
    }

    fn fail(&mut self, error: ProviderError) -> Bytes {
        let error = GatewayError::from(error);
        self.ctx.failed_after_headers(&error);
        self.sent_last = true;
        let body = error.to_json_in(self.ctx.dialect);
        match self.ctx.dialect {
            Dialect::OpenAi => frame(None, &body),
            Dialect::Anthropic => frame(Some(b"error"), &body),
        }
    }
}

/// One SSE event: an optional `event:` line, the `data:` line, a blank line.
fn frame(event: Option<&[u8]>, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8 + event.map_or(0, |e| e.len() + 8));
    if let Some(event) = event {
        out.put_slice(b"event: ");
        out.put_slice(event);
        out.put_slice(b"\n");
    }
    out.put_slice(b"data: ");
    out.put_slice(data);
    out.put_slice(b"\n\n");
    out.freeze()
}

impl Stream for ClientStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.accounting.is_some() {
                match std::task::ready!(this.poll_accounting(cx)) {
                    Some(Some(last)) => return Poll::Ready(Some(Ok(last))),
                    Some(None) | None => return Poll::Ready(None),
                }
            }
            if this.extending.is_some() {
                match std::task::ready!(this.poll_extending(cx)) {
                    Ok(event) => {
                        if let Some(bytes) = this.emit(event) {
                            return Poll::Ready(Some(Ok(bytes)));
                        }
                        continue;
                    }
                    Err(cut) => {
                        this.finished = true;
                        return Poll::Ready(Some(Ok(cut)));
                    }
                }
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let event = match this.first.take() {
                Some(first) => first,
                None => match this.rest.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(event))) => {
                        let deadline = Instant::now() + this.ctx.stream_idle;
                        this.idle.as_mut().reset(deadline);
                        event
                    }
                    Poll::Ready(Some(Err(error))) => {
                        if this.sent_last {
                            this.finished = true;
                            continue;
                        }
                        return Poll::Ready(Some(Ok(this.fail(error))));
                    }
                    Poll::Ready(None) => {
                        this.finished = true;
                        if !this.sent_last && this.account(None) {
                            // The upstream ended without a final event: account before the end.
                            continue;
                        }
                        this.ctx.complete();
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {
                        if this.idle.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        this.finished = true;
                        if this.sent_last {
                            // The upstream said [DONE] but keeps the body open: stop waiting.
                            this.ctx.complete();
                            return Poll::Ready(None);
                        }
                        return Poll::Ready(Some(Ok(this.fail(ProviderError::StreamIdle))));
                    }
                },
            };
            if this.sent_last {
                continue;
            }
            let Some(event) = this.budget_gate(event) else {
                continue;
            };
            if let Some(bytes) = this.emit(event) {
                return Poll::Ready(Some(Ok(bytes)));
            }
        }
    }
}

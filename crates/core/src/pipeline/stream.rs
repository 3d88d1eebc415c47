//! The stream a client receives: upstream events forwarded one by one as they arrive, framed as
//! SSE. On the way it reads the usage the upstream reports (the gateway always asks for it), and
//! drops the usage-only chunk when the client did not ask for it. An upstream failure or a stall
//! after the first event becomes one OpenAI-shaped error event, then the stream ends. The
//! request's context rides along and is recorded when the stream is dropped, however it ended.
//! With a usage journal, a stream that succeeds is accounted before its final event (`[DONE]`,
//! `message_stop`, or the end of the body) is yielded: the event waits for the record's write.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep, sleep};

use super::RequestCtx;
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
}

type Accounting = Pin<Box<dyn Future<Output = Result<(), GatewayError>> + Send>>;

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
        Self {
            ctx,
            first: Some(first),
            rest,
            idle,
            sent_last: false,
            finished: false,
            accounting: None,
        }
    }

    /// The rate limits' headroom after this request's admission (`x-ratelimit-*`).
    pub fn headroom(&self) -> super::admit::RateHeadroom {
        self.ctx.headroom
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
            if let Some(bytes) = this.forward(event) {
                // The final event of a success waits for the usage record's write.
                if this.sent_last && this.account(Some(bytes.clone())) {
                    continue;
                }
                return Poll::Ready(Some(Ok(bytes)));
            }
        }
    }
}

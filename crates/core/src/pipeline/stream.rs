//! The stream a client receives: upstream events forwarded one by one as they arrive, framed as
//! SSE. On the way it reads the usage the upstream reports (the gateway always asks for it), and
//! drops the usage-only chunk when the client did not ask for it. An upstream failure or a stall
//! after the first event becomes one OpenAI-shaped error event, then the stream ends. The
//! request's context rides along and is recorded when the stream is dropped, however it ended.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use portcullis_types::Usage;
use tokio::time::{Instant, Sleep, sleep};

use super::RequestCtx;
use crate::error::GatewayError;
use crate::json_scan as scan;
use crate::provider::{EventStream, ProviderError, StreamEvent};

/// SSE body of a streamed response. Yields framed `data: ...\n\n` events.
pub struct ClientStream {
    ctx: RequestCtx,
    first: Option<StreamEvent>,
    rest: EventStream,
    idle: Pin<Box<Sleep>>,
    /// `[DONE]` or an error was sent: drain the upstream, send nothing more.
    sent_last: bool,
    finished: bool,
}

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
        }
    }

    /// Frames an event for the client, or `None` to skip it.
    fn forward(&mut self, event: StreamEvent) -> Option<Bytes> {
        if event.is_done() {
            self.sent_last = true;
            return Some(Bytes::from_static(b"data: [DONE]\n\n"));
        }
        if memchr::memmem::find(&event.data, b"\"usage\"").is_some()
            && let Ok([Some(usage), choices]) = scan::top_level(&event.data, ["usage", "choices"])
            && let Ok(Some(usage)) = serde_json::from_slice::<Option<Usage>>(usage)
        {
            self.ctx.usage = Some(usage);
            let usage_only = choices.is_none_or(scan::is_empty_array);
            if usage_only && !self.ctx.client_wants_usage {
                return None;
            }
        }
        Some(frame(&event.data))
    }

    fn fail(&mut self, error: ProviderError) -> Bytes {
        let error = GatewayError::from(error);
        self.ctx.failed_after_headers(&error);
        self.sent_last = true;
        frame(&error.to_json())
    }
}

fn frame(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
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
                return Poll::Ready(Some(Ok(bytes)));
            }
        }
    }
}

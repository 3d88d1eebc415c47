//! Anthropic inbound on deployments whose adapter speaks only OpenAI chat. The dispatch stage
//! calls [`call`] for every attempt: an adapter that serves the operation natively (the Anthropic
//! adapter) gets the request as is; any other chat adapter gets it translated to an OpenAI chat
//! request ([`crate::translate::anthropic_inbound`]), and its answer is translated back, streams
//! event by event. `count_tokens` without a native counter is estimated locally
//! ([`crate::tokens`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use portcullis_types::anthropic::MessagesRequest;

use super::ApiRequest;
use crate::provider::{
    EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent,
};
use crate::tokens;
use crate::translate::anthropic_inbound::{self, MessagesStream};

/// One attempt of `request` on `provider`, natively or through chat.
pub async fn call(
    provider: &Arc<dyn Provider>,
    request: &ApiRequest,
    stream: bool,
) -> Result<ProviderResponse, ProviderError> {
    let op = request.op();
    if provider.supports(op) {
        return provider.call(op, request, stream).await;
    }
    match request {
        ApiRequest::Messages(messages) if provider.supports(Operation::Chat) => {
            messages_via_chat(provider.as_ref(), messages, stream).await
        }
        ApiRequest::CountTokens(count) if provider.supports(Operation::Chat) => {
            let body = serde_json::to_vec(&serde_json::json!({
                "input_tokens": tokens::estimate_messages(count)
            }))
            .unwrap_or_default();
            Ok(ProviderResponse::Complete {
                body: Bytes::from(body),
                usage: None,
            })
        }
        _ => Err(ProviderError::Unsupported(op.endpoint())),
    }
}

async fn messages_via_chat(
    provider: &dyn Provider,
    messages: &MessagesRequest,
    stream: bool,
) -> Result<ProviderResponse, ProviderError> {
    let chat = anthropic_inbound::chat_request(messages, &messages.model)?;
    let request = ApiRequest::Chat(chat);
    match provider.call(Operation::Chat, &request, stream).await? {
        ProviderResponse::Complete { body, usage } => {
            let message = anthropic_inbound::message_response(&body)
                .map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
            let body = serde_json::to_vec(&message)
                .map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
            Ok(ProviderResponse::Complete {
                body: Bytes::from(body),
                usage,
            })
        }
        ProviderResponse::Stream(inner) => Ok(ProviderResponse::Stream(Box::pin(ToMessages {
            inner,
            translator: MessagesStream::new(),
            pending: VecDeque::new(),
            ended: false,
        }))),
    }
}

/// An OpenAI chunk stream seen as Anthropic events.
struct ToMessages {
    inner: EventStream,
    translator: MessagesStream,
    pending: VecDeque<StreamEvent>,
    ended: bool,
}

impl ToMessages {
    fn queue(&mut self, events: Vec<anthropic_inbound::stream::Event>) {
        self.pending.extend(
            events
                .into_iter()
                .map(|(name, data)| StreamEvent::named(Bytes::from_static(name.as_bytes()), data)),
        );
    }
}

impl Stream for ToMessages {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(event))) => match this.translator.push(&event.data) {
                    Ok(events) => this.queue(events),
                    Err(e) => {
                        this.ended = true;
                        return Poll::Ready(Some(Err(ProviderError::InvalidResponse(
                            e.to_string(),
                        ))));
                    }
                },
                Poll::Ready(None) => {
                    this.ended = true;
                    match this.translator.end() {
                        Some(events) => this.queue(events),
                        None => {
                            return Poll::Ready(Some(Err(ProviderError::StreamBroken(
                                "the stream ended before the message was complete".into(),
                            ))));
                        }
                    }
                }
            }
        }
    }
}

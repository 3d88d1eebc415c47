//! Anthropic inbound on deployments whose adapter speaks only OpenAI chat. The dispatch stage
//! calls [`call`] for every attempt: an adapter that serves the operation natively (the Anthropic
//! adapter) gets the request as is; any other chat adapter gets it translated to an OpenAI chat
//! request ([`crate::translate::anthropic_inbound`]), and its answer is translated back, streams
//! event by event. `count_tokens` without a native counter is estimated locally
//! ([`crate::tokens`]).

use std::sync::Arc;

use bytes::Bytes;
use portcullis_types::anthropic::MessagesRequest;

use super::ApiRequest;
use crate::provider::translated::{self, Translator};
use crate::provider::{Operation, Provider, ProviderError, ProviderResponse, StreamEvent};
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
        ProviderResponse::Stream(inner) => Ok(ProviderResponse::Stream(
            translated::translate_stream(inner, ToMessages(MessagesStream::new())),
        )),
    }
}

/// An OpenAI chunk stream seen as Anthropic events, for the stream driver. The inner stream is
/// read to its end; one that ends before the message could be closed broke off.
struct ToMessages(MessagesStream);

impl Translator for ToMessages {
    type Input = StreamEvent;

    fn push(
        &mut self,
        event: StreamEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let events = self
            .0
            .push(&event.data)
            .map_err(|e| ProviderError::InvalidResponse(e.to_string()))?;
        queue(out, events);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let events = self.0.end().ok_or_else(|| {
            ProviderError::StreamBroken("the stream ended before the message was complete".into())
        })?;
        queue(out, events);
        Ok(())
    }
}

fn queue(out: &mut Vec<StreamEvent>, events: Vec<anthropic_inbound::stream::Event>) {
    out.extend(
        events
            .into_iter()
            .map(|(name, data)| StreamEvent::named(Bytes::from_static(name.as_bytes()), data)),
    );
}

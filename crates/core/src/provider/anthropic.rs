//! Adapter for Anthropic's Messages API (`POST {base_url}/v1/messages`).
//!
//! - [`Operation::Chat`]: the OpenAI request is translated ([`translate::anthropic`]), the
//!   message translated back, a stream event by event ([`translate::anthropic_stream`]).
//! - [`Operation::Messages`] and [`Operation::CountTokens`]: the client already speaks
//!   Anthropic, so its request goes out as parsed (model swapped for the deployment's) to
//!   `/v1/messages` or `/v1/messages/count_tokens`, and the answer comes back unchanged: the body
//!   as received, a stream as its named events. The gateway reads only the usage.
//!
//! Headers: `x-api-key`, `anthropic-version`, `anthropic-beta` (the configured betas, plus on
//! the native path the client's own, which change what its request means), then the configured
//! extra headers. Errors (`{"type":"error","error":{"type":..,"message":..}}`, also
//! as an in-stream `error` event) are classified by their type and message; 529 is overloaded.
//! Embeddings and legacy completions are not served.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use portcullis_types::Usage;
use portcullis_types::anthropic::{ErrorResponse, MessagesResponse};
use secrecy::ExposeSecret;

use super::client::HttpClient;
use super::translated::{self, Translator};
use super::{
    EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent, upstream,
};
use crate::config::AnthropicConfig;
use crate::json_scan;
use crate::pipeline::ApiRequest;
use crate::sse::SseEvent;
use crate::translate;
use crate::translate::anthropic_stream::{self, ChatStream, Chunk};

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

pub struct AnthropicProvider {
    messages_url: http::Uri,
    count_tokens_url: http::Uri,
    api_key: Option<HeaderValue>,
    version: HeaderValue,
    beta: Option<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    default_max_tokens: u64,
    client: HttpClient,
}

impl std::fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("base", &self.messages_url.authority())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl AnthropicProvider {
    pub fn new(config: &AnthropicConfig, client: HttpClient) -> Self {
        let url = |op: Operation| upstream::uri(&config.base_url, op.endpoint());
        Self {
            messages_url: url(Operation::Messages),
            count_tokens_url: url(Operation::CountTokens),
            api_key: upstream::secret_header(config.api_key.expose_secret()),
            version: config.version.clone(),
            beta: config.beta.clone(),
            headers: config.headers.clone(),
            default_max_tokens: config.default_max_tokens,
            client,
        }
    }

    fn build(
        &self,
        uri: &http::Uri,
        body: Vec<u8>,
        stream: bool,
        client_beta: Option<&HeaderValue>,
    ) -> Request<Full<Bytes>> {
        let mut request = upstream::post_json(uri, body, stream);
        let headers = request.headers_mut();
        if let Some(key) = &self.api_key {
            headers.insert(X_API_KEY, key.clone());
        }
        headers.insert(ANTHROPIC_VERSION, self.version.clone());
        if let Some(beta) = merge_betas(self.beta.as_ref(), client_beta) {
            headers.insert(ANTHROPIC_BETA, beta);
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        request
    }

    /// Sends `body` to `uri`; a non-success answer is classified.
    async fn send(
        &self,
        uri: &http::Uri,
        body: Vec<u8>,
        stream: bool,
        client_beta: Option<&HeaderValue>,
    ) -> Result<Incoming, ProviderError> {
        let request = self.build(uri, body, stream, client_beta);
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if !status.is_success() {
            let body = upstream::read_error_body(response.into_body()).await;
            return Err(classify(status, &body));
        }
        Ok(response.into_body())
    }

    /// An OpenAI chat request, translated both ways.
    async fn chat(
        &self,
        request: &portcullis_types::openai::ChatCompletionRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let mut translated =
            translate::anthropic::chat_request(request, &request.model, self.default_max_tokens)
                .map_err(ProviderError::from)?;
        translated.stream = stream.then_some(true);
        let body = serde_json::to_vec(&translated)
            .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
        let body = self.send(&self.messages_url, body, stream, None).await?;
        if stream {
            return Ok(ProviderResponse::Stream(chat_events(
                upstream::sse_events(body),
                now(),
            )));
        }
        let body = upstream::read_body(body).await?;
        let message: MessagesResponse = serde_json::from_slice(&body).map_err(|_| {
            ProviderError::InvalidResponse("the response body is not an Anthropic message".into())
        })?;
        let completion = translate::anthropic::chat_response(&message, now());
        let u = &message.usage;
        let cached = u.cache_read_input_tokens.unwrap_or(0);
        let prompt = u
            .input_tokens
            .saturating_add(cached)
            .saturating_add(u.cache_creation_input_tokens.unwrap_or(0));
        let body = serde_json::to_vec(&completion)
            .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode response: {e}")))?;
        Ok(ProviderResponse::Complete {
            body: body.into(),
            usage: Some(Usage::new(prompt, u.output_tokens).with_details(cached, 0)),
        })
    }

    /// An Anthropic request, forwarded as it is; the answer comes back unchanged.
    async fn native(
        &self,
        uri: &http::Uri,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let body = request
            .to_upstream_json(false)
            .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
        let body = self
            .send(uri, body, stream, request.anthropic_beta())
            .await?;
        if stream {
            return Ok(ProviderResponse::Stream(native_events(
                upstream::sse_events(body),
            )));
        }
        let body = upstream::read_body(body).await?;
        let usage = json_scan::last_top_level(&body, "usage").map_err(|_| {
            ProviderError::InvalidResponse("the response body is not a JSON object".into())
        })?;
        let usage = usage
            .and_then(json_scan::anthropic_usage_object)
            .map(|c| Usage::new(c.input.unwrap_or(0), c.output).with_details(c.cache_read, 0));
        Ok(ProviderResponse::Complete { body, usage })
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    fn kind(&self) -> &'static str {
        "anthropic"
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(
            op,
            Operation::Chat | Operation::Messages | Operation::CountTokens
        )
    }

    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        match (op, request) {
            (Operation::Chat, ApiRequest::Chat(chat)) => self.chat(chat, stream).await,
            (Operation::Messages, ApiRequest::Messages(_)) => {
                self.native(&self.messages_url, request, stream).await
            }
            (Operation::CountTokens, ApiRequest::CountTokens(_)) => {
                self.native(&self.count_tokens_url, request, false).await
            }
            _ => Err(ProviderError::Unsupported(op.endpoint())),
        }
    }
}

/// The configured betas, then the client's ones not already among them, as one header value.
fn merge_betas(
    configured: Option<&HeaderValue>,
    client: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    let names = |v: Option<&HeaderValue>| -> Vec<String> {
        v.and_then(|v| v.to_str().ok())
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = names(configured);
    for name in names(client) {
        if !all.contains(&name) {
            all.push(name);
        }
    }
    if all.is_empty() {
        return None;
    }
    HeaderValue::try_from(all.join(",")).ok()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Classifies an error answer by its Anthropic error `type` and message.
fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => ProviderError::classify(
            status,
            Some(e.error.kind.as_str()),
            Some(upstream::short_message(&e.error.message)),
        ),
        Err(_) => ProviderError::classify(status, None, None),
    }
}

type SseStream = std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, ProviderError>> + Send>>;

/// A translated chat stream: each Anthropic event becomes zero or more OpenAI chunks. An error
/// (an `error` event, a malformed event, a broken or unfinished stream) is yielded once, last.
fn chat_events(
    events: impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static,
    created: u64,
) -> EventStream {
    translated::translate_stream(events, ChatEvents(ChatStream::new(created)))
}

/// The chat translation for the stream driver. The upstream is read to its end even after
/// `message_stop` (the translator ignores what follows; a failure there is still reported).
struct ChatEvents(ChatStream);

impl Translator for ChatEvents {
    type Input = SseEvent;

    fn push(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        out.extend(self.0.push_sse(&event)?.into_iter().map(to_event));
        Ok(())
    }

    /// `[DONE]` came with `message_stop`: this only checks that it came.
    fn finish(&mut self, _: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        self.0.finish()
    }
}

fn to_event(chunk: Chunk) -> StreamEvent {
    match chunk {
        Chunk::Json(bytes) => StreamEvent::data(bytes),
        Chunk::Done => StreamEvent::done(),
    }
}

/// A pass-through stream: the upstream's events as they came, each with its event name (taken
/// from the data's `type` when the upstream left the `event:` line out). An `error` event is an
/// error (so a stream failing before its first event can be retried elsewhere); a stream that
/// ends before `message_stop` is broken.
fn native_events(
    events: impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static,
) -> EventStream {
    struct State {
        events: SseStream,
        stopped: bool,
        ended: bool,
    }
    let state = State {
        events: Box::pin(events),
        stopped: false,
        ended: false,
    };
    Box::pin(stream::unfold(state, |mut s| async move {
        if s.ended {
            return None;
        }
        let result = match s.events.next().await {
            Some(Ok(event)) => native_event(event, &mut s.stopped),
            Some(Err(e)) => Err(e),
            None if s.stopped => return None,
            None => Err(ProviderError::StreamBroken(
                "the stream ended before message_stop".into(),
            )),
        };
        s.ended = result.is_err();
        Some((result, s))
    }))
}

fn native_event(event: SseEvent, stopped: &mut bool) -> Result<StreamEvent, ProviderError> {
    let name = match event.event {
        Some(name) => Bytes::from(name),
        None => json_scan::top_level(&event.data, ["type"])
            .ok()
            .and_then(|[t]| t)
            .and_then(|t| serde_json::from_slice::<String>(t).ok())
            .map(Bytes::from)
            .ok_or_else(|| {
                ProviderError::InvalidResponse(
                    "an Anthropic stream event has neither a name nor a type".into(),
                )
            })?,
    };
    match name.as_ref() {
        b"error" => {
            return Err(match serde_json::from_slice::<ErrorResponse>(&event.data) {
                Ok(e) => anthropic_stream::stream_error(&e.error),
                Err(_) => ProviderError::classify(StatusCode::BAD_GATEWAY, None, None),
            });
        }
        b"message_stop" => *stopped = true,
        _ => {}
    }
    Ok(StreamEvent::named(name, event.data))
}

#[cfg(test)]
mod tests {

    #[test]
    fn client_betas_join_the_configured_ones_once() {
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(merge_betas(None, None), None);
        assert_eq!(merge_betas(Some(&h("a,b")), None), Some(h("a,b")));
        assert_eq!(merge_betas(None, Some(&h(" c , ,d"))), Some(h("c,d")));
        assert_eq!(
            merge_betas(Some(&h("a,b")), Some(&h("b, c"))),
            Some(h("a,b,c"))
        );
    }

    use futures_util::stream;

    use super::*;

    fn sse(name: Option<&str>, data: &str) -> Result<SseEvent, ProviderError> {
        Ok(SseEvent {
            event: name.map(str::to_owned),
            data: Bytes::copy_from_slice(data.as_bytes()),
        })
    }

    async fn collect(events: EventStream) -> Vec<Result<StreamEvent, ProviderError>> {
        events.collect().await
    }

    #[test]
    fn error_bodies_are_classified_by_type_and_message() {
        let c = |status: u16, body: &str| {
            classify(StatusCode::from_u16(status).unwrap(), body.as_bytes())
        };
        let e = c(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(
            e,
            ProviderError::Overloaded {
                message: Some("Overloaded".into()),
                retry_after: None,
            }
        );
        let e = c(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"},"request_id":"req_1"}"#,
        );
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        let e = c(
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        );
        assert!(matches!(e, ProviderError::RateLimited { .. }));
        let e = c(
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!(e, ProviderError::Unauthorized { status: 401 });
        let e = c(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"temperature: range"}}"#,
        );
        assert_eq!(
            e,
            ProviderError::BadRequest {
                status: 400,
                message: Some("temperature: range".into())
            }
        );
        assert!(matches!(c(529, "<html>"), ProviderError::Overloaded { .. }));
        assert!(matches!(
            c(500, ""),
            ProviderError::Server {
                status: 500,
                message: None
            }
        ));
    }

    #[tokio::test]
    async fn native_streams_pass_events_through_with_their_names() {
        let events = stream::iter(vec![
            sse(
                Some("message_start"),
                r#"{"type":"message_start","message":{}}"#,
            ),
            sse(Some("ping"), r#"{"type": "ping"}"#),
            sse(None, r#"{"type":"content_block_stop","index":0}"#),
            sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
        ]);
        let out = collect(native_events(events)).await;
        let names: Vec<_> = out
            .iter()
            .map(|e| e.as_ref().unwrap().event.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_stop",
                "message_stop"
            ]
        );
        assert_eq!(
            out[1].as_ref().unwrap().data.as_ref(),
            br#"{"type": "ping"}"#,
            "data is forwarded byte for byte"
        );
    }

    #[tokio::test]
    async fn native_streams_fail_on_error_events_and_early_ends() {
        let events = stream::iter(vec![
            sse(
                Some("message_start"),
                r#"{"type":"message_start","message":{}}"#,
            ),
            sse(
                Some("error"),
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            ),
            sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
        ]);
        let out = collect(native_events(events)).await;
        assert_eq!(out.len(), 2, "nothing follows the error");
        assert!(matches!(out[1], Err(ProviderError::Overloaded { .. })));

        let events = stream::iter(vec![sse(
            Some("message_start"),
            r#"{"type":"message_start","message":{}}"#,
        )]);
        let out = collect(native_events(events)).await;
        assert!(matches!(out[1], Err(ProviderError::StreamBroken(_))));

        let events = stream::iter(vec![sse(None, "[1]")]);
        let out = collect(native_events(events)).await;
        assert!(matches!(out[0], Err(ProviderError::InvalidResponse(_))));
    }

    #[tokio::test]
    async fn chat_streams_end_with_done_or_one_error() {
        let events = stream::iter(vec![
            sse(
                Some("message_start"),
                r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}"#,
            ),
            sse(Some("ping"), r#"{"type":"ping"}"#),
            sse(
                Some("message_delta"),
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
            ),
            sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
        ]);
        let out = collect(chat_events(events, 1)).await;
        let out: Vec<_> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(out.len(), 4);
        assert!(out.iter().all(|e| e.event.is_none()));
        assert!(out[3].is_done());
        let usage: serde_json::Value = serde_json::from_slice(&out[2].data).unwrap();
        assert_eq!(usage["usage"]["total_tokens"], 5);

        let events = stream::iter(vec![
            sse(
                Some("message_start"),
                r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null}}"#,
            ),
            Err(ProviderError::StreamBroken("cut".into())),
            sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
        ]);
        let out = collect(chat_events(events, 1)).await;
        assert_eq!(out.len(), 2);
        assert!(matches!(out[1], Err(ProviderError::StreamBroken(_))));

        let events = stream::iter(vec![sse(None, "{}")]);
        let out = collect(chat_events(events, 1)).await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
    }
}

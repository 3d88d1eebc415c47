//! Adapter for Cohere's native v2 API: chat (`POST /v2/chat`, JSON or SSE) and embeddings
//! (`POST /v2/embed`), with `Authorization: Bearer`. The bodies are translated by
//! [`crate::translate::cohere`]; this module does HTTP, credentials and error classification.
//!
//! Cohere's errors are `{"message": ...}` (sometimes with an `id`) and carry no code, so the
//! status and message decide: 429 is a rate limit, 503 an overload (Cohere's "service
//! unavailable"), a "too many tokens" message a context-window overflow. Two statuses outside
//! HTTP's usual meaning follow Cohere's errors reference: 498 (a request or output blocked under
//! Cohere's usage guidelines, as are messages starting "blocked input" / "blocked output") is a
//! content-filter refusal, and 499 (a request cancelled on Cohere's side) is a transient upstream
//! failure that another deployment may serve.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, StatusCode};
use hyper::body::Incoming;
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::client::HttpClient;
use super::translated::{self, Translator};
use super::{Operation, Provider, ProviderError, ProviderResponse, StreamEvent, upstream};
use crate::config::CohereConfig;
use crate::pipeline::ApiRequest;
use crate::sse::SseEvent;
use crate::translate::cohere::{self as translate, stream::ChatStream};

pub struct Cohere {
    chat_url: http::Uri,
    embed_url: http::Uri,
    authorization: Option<HeaderValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: HttpClient,
}

impl std::fmt::Debug for Cohere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cohere")
            .field("host", &self.chat_url.authority())
            .finish_non_exhaustive()
    }
}

impl Cohere {
    pub fn new(config: &CohereConfig, client: HttpClient) -> Self {
        Self {
            chat_url: upstream::uri(&config.base_url, "/v2/chat"),
            embed_url: upstream::uri(&config.base_url, "/v2/embed"),
            authorization: upstream::secret_header(&format!(
                "Bearer {}",
                config.api_key.expose_secret()
            )),
            headers: config.headers.clone(),
            client,
        }
    }

    /// Posts `body` to `uri`; a non-success answer becomes its classified error.
    async fn post(
        &self,
        uri: &http::Uri,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<Incoming, ProviderError> {
        let mut request = upstream::post_json(uri, body, stream);
        let headers = request.headers_mut();
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if !status.is_success() {
            let body = upstream::read_error_body(response.into_body()).await;
            return Err(classify(status, &body));
        }
        Ok(response.into_body())
    }

    async fn chat(
        &self,
        req: &ChatCompletionRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let body = translate::chat_request(req, &req.model, stream).map_err(ProviderError::from)?;
        let body = encode(&body)?;
        let response = self.post(&self.chat_url, body, stream).await?;
        let created = unix_now();
        if stream {
            return Ok(ProviderResponse::Stream(translated::translate_stream(
                upstream::sse_events(response),
                ChatEvents(ChatStream::new(&req.model, created)),
            )));
        }
        let bytes = upstream::read_body(response).await?;
        let answer: translate::ChatResponse = serde_json::from_slice(&bytes).map_err(|_| {
            ProviderError::InvalidResponse("the Cohere answer is not a chat response".into())
        })?;
        let (body, usage) = translate::chat_response(&answer, &req.model, created)?;
        Ok(ProviderResponse::Complete {
            body: Bytes::from(encode(&body)?),
            usage: Some(usage),
        })
    }

    async fn embed(&self, req: &EmbeddingRequest) -> Result<ProviderResponse, ProviderError> {
        let body = translate::embed_request(req, &req.model).map_err(ProviderError::from)?;
        let base64 = body.base64;
        let response = self.post(&self.embed_url, encode(&body)?, false).await?;
        let bytes = upstream::read_body(response).await?;
        let answer: translate::EmbedResponse = serde_json::from_slice(&bytes).map_err(|_| {
            ProviderError::InvalidResponse("the Cohere answer is not an embed response".into())
        })?;
        let (body, usage) = translate::embed_response(&answer, &req.model, base64)?;
        Ok(ProviderResponse::Complete {
            body: Bytes::from(body),
            usage: Some(usage),
        })
    }
}

#[async_trait::async_trait]
impl Provider for Cohere {
    fn kind(&self) -> &'static str {
        "cohere"
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(op, Operation::Chat | Operation::Embedding)
    }

    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        match (op, request) {
            (Operation::Chat, ApiRequest::Chat(req)) => self.chat(req, stream).await,
            (Operation::Embedding, ApiRequest::Embedding(req)) => self.embed(req).await,
            _ => Err(ProviderError::Unsupported(op.endpoint())),
        }
    }
}

fn encode(value: &impl serde::Serialize) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value)
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode a body: {e}")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Deserialize)]
struct CohereError {
    message: Option<String>,
}

/// Classifies a Cohere error answer by its status and `message`.
fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<CohereError>(body)
        .ok()
        .and_then(|e| e.message)
        .map(|m| upstream::short_message(&m));
    if status.as_u16() == 499 {
        return ProviderError::Server {
            status: 499,
            message,
        };
    }
    let blocked = status.as_u16() == 498
        || message.as_deref().is_some_and(|m| {
            let m = m.trim_start().to_ascii_lowercase();
            m.starts_with("blocked input") || m.starts_with("blocked output")
        });
    let code = if blocked {
        Some("content_filter")
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        Some("unavailable")
    } else {
        None
    };
    ProviderError::classify(status, code, message)
}

/// The chat translation for the stream driver: Cohere's SSE events become OpenAI chunk events,
/// and the stream ends with `[DONE]` at `message-end`, without reading the upstream further.
struct ChatEvents(ChatStream);

impl Translator for ChatEvents {
    type Input = SseEvent;

    fn push(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let chunks = self.0.push(event.event.as_deref(), &event.data)?;
        out.extend(chunks.into_iter().map(StreamEvent::data));
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.0.is_done()
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        self.0.finish()?;
        out.push(StreamEvent::done());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str) -> ProviderError {
        classify(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn cohere_errors_are_classified_by_status_and_message() {
        assert!(matches!(
            class(
                429,
                r#"{"message":"You are past the per minute request limit"}"#
            ),
            ProviderError::RateLimited { .. }
        ));
        let e = class(
            400,
            r#"{"id":"abc","message":"too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130001"}"#,
        );
        assert!(matches!(e, ProviderError::ContextLength { .. }), "{e:?}");
        assert!(matches!(
            class(400, r#"{"message":"invalid request: temperature must be between 0 and 1.0 inclusive."}"#),
            ProviderError::BadRequest { status: 400, message: Some(m) } if m.starts_with("invalid request")
        ));
        assert!(matches!(
            class(
                498,
                r#"{"message":"blocked output: please adjust your prompt"}"#
            ),
            ProviderError::ContentFiltered { .. }
        ));
        assert!(matches!(
            class(
                400,
                r#"{"message":"blocked input: please adjust your prompt"}"#
            ),
            ProviderError::ContentFiltered { .. }
        ));
        let e = class(499, r#"{"message":"request cancelled"}"#);
        assert!(e.is_retryable(), "{e:?}");
        assert!(matches!(
            class(401, r#"{"message":"invalid api token"}"#),
            ProviderError::Unauthorized { status: 401 }
        ));
        assert!(matches!(
            class(503, "<html>"),
            ProviderError::Overloaded {
                message: None,
                retry_after: None
            }
        ));
        assert!(class(500, r#"{"message":"x"}"#).is_retryable());
    }
}

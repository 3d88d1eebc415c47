//! Adapter for Google Gemini, on AI Studio (type `gemini`: the Gemini API, an API key in
//! `x-goog-api-key`) and on Vertex AI (type `vertex`: a project and location, OAuth access
//! tokens from a service account, see [`vertex_auth`]). Bodies are translated by
//! [`crate::translate::gemini`]; this module owns URLs, credentials and HTTP.
//!
//! Methods: `models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (SSE, one
//! `GenerateContentResponse` per event), and for embeddings `:batchEmbedContents` (AI Studio) or
//! `:predict` (Vertex AI), below `https://generativelanguage.googleapis.com/v1beta` or
//! `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google`
//! (`https://aiplatform.googleapis.com` for the `global` location). The API key is never put in
//! the URL.

pub mod vertex_auth;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, stream};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use secrecy::ExposeSecret;
use serde_json::Value;

use self::vertex_auth::TokenSource;
use super::client::HttpClient;
use super::translated::{self, Translator};
use super::{
    EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent, upstream,
};
use crate::config::{GeminiConfig, VertexConfig};
use crate::pipeline::ApiRequest;
use crate::sse::SseEvent;
use crate::translate::gemini::{self, Flavor, ResponseMeta, StreamTranslator, embed};

/// The Gemini API's default base URL.
pub const AI_STUDIO_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Vertex AI's base URL for `location`.
pub fn vertex_base_url(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

enum Auth {
    /// `x-goog-api-key`, marked sensitive.
    ApiKey(HeaderValue),
    ServiceAccount(Box<TokenSource>),
}

pub struct Gemini {
    kind: &'static str,
    flavor: Flavor,
    /// Everything before `/{model}:{method}`, e.g. `https://host/v1beta/models`.
    models_url: String,
    auth: Auth,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: HttpClient,
}

impl std::fmt::Debug for Gemini {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gemini")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

static X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

impl Gemini {
    /// The Gemini API (AI Studio) with an API key.
    pub fn ai_studio(config: &GeminiConfig, client: HttpClient) -> Self {
        let key = upstream::secret_header(config.api_key.expose_secret())
            .unwrap_or_else(|| HeaderValue::from_static(""));
        Self {
            kind: "gemini",
            flavor: Flavor::AiStudio,
            models_url: format!("{}/v1beta/models", config.base_url),
            auth: Auth::ApiKey(key),
            headers: config.headers.clone(),
            client,
        }
    }

    /// Vertex AI with a service account.
    pub fn vertex(config: &VertexConfig, client: HttpClient) -> Self {
        Self {
            kind: "vertex",
            flavor: Flavor::Vertex,
            models_url: format!(
                "{}/v1/projects/{}/locations/{}/publishers/google/models",
                config.base_url, config.project, config.location
            ),
            auth: Auth::ServiceAccount(Box::new(TokenSource::new(
                config.credentials.clone(),
                client.clone(),
            ))),
            headers: config.headers.clone(),
            client,
        }
    }

    fn uri(&self, model: &str, method: &str, stream: bool) -> http::Uri {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let query = if stream { "?alt=sse" } else { "" };
        upstream::uri(
            &self.models_url,
            &format!("/{}:{method}{query}", path_segment(model)),
        )
    }

    /// Sends the serialized `body` to `uri` with credentials; a non-success answer is a
    /// classified error.
    async fn send(
        &self,
        uri: &http::Uri,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<hyper::Response<Incoming>, ProviderError> {
        let mut request = upstream::post_json(uri, body, stream);
        let (name, value) = match &self.auth {
            Auth::ApiKey(key) => (X_GOOG_API_KEY.clone(), key.clone()),
            Auth::ServiceAccount(tokens) => (AUTHORIZATION, tokens.authorization().await?),
        };
        let headers = request.headers_mut();
        headers.insert(name, value);
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if !status.is_success() {
            let body = upstream::read_error_body(response.into_body()).await;
            return Err(gemini::error_from_body(status, &body));
        }
        Ok(response)
    }

    async fn chat(
        &self,
        request: &portcullis_types::openai::ChatCompletionRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let body = gemini::chat_request(request, self.flavor).map_err(ProviderError::from)?;
        let method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let uri = self.uri(&request.model, method, stream);
        let response = self.send(&uri, body, stream).await?;
        let id = completion_id();
        let created = unix_now();
        if stream {
            let translator = StreamTranslator::new(&id, &request.model, created);
            if !is_json(&response) {
                let events = upstream::sse_events(response.into_body());
                return Ok(ProviderResponse::Stream(translate_events(
                    events, translator,
                )));
            }
            // Not SSE after all (a proxy, or an answer Google sent as plain JSON): the body is one
            // response, or the JSON array `streamGenerateContent` returns without `alt=sse`.
            let body = upstream::read_body(response.into_body()).await?;
            let events = json_events(&body)
                .into_iter()
                .map(|data| Ok(SseEvent { event: None, data }));
            return Ok(ProviderResponse::Stream(translate_events(
                stream::iter(events),
                translator,
            )));
        }
        let body = upstream::read_body(response.into_body()).await?;
        let meta = ResponseMeta {
            fallback_id: &id,
            model: &request.model,
            created,
        };
        let (answer, usage) = gemini::chat_response(&body, meta)?;
        Ok(ProviderResponse::Complete {
            body: encode(&answer)?,
            usage: Some(usage),
        })
    }

    async fn embeddings(
        &self,
        request: &portcullis_types::openai::EmbeddingRequest,
    ) -> Result<ProviderResponse, ProviderError> {
        let plan = embed::embed_request(request, &request.model, self.flavor)
            .map_err(ProviderError::from)?;
        let method = match self.flavor {
            Flavor::AiStudio => "batchEmbedContents",
            Flavor::Vertex => "predict",
        };
        let uri = self.uri(&request.model, method, false);
        let response = self.send(&uri, encode_request(&plan.body)?, false).await?;
        let body = upstream::read_body(response.into_body()).await?;
        let (answer, usage) = embed::embed_response(&body, &plan, &request.model, self.flavor)?;
        Ok(ProviderResponse::Complete {
            body: encode(&answer)?,
            usage: Some(usage),
        })
    }
}

#[async_trait::async_trait]
impl Provider for Gemini {
    fn kind(&self) -> &'static str {
        self.kind
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
            (Operation::Chat, ApiRequest::Chat(chat)) => self.chat(chat, stream).await,
            (Operation::Embedding, ApiRequest::Embedding(embedding)) => {
                self.embeddings(embedding).await
            }
            _ => Err(ProviderError::Unsupported(op.endpoint())),
        }
    }
}

fn is_json(response: &hyper::Response<Incoming>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"))
}

/// The responses of a JSON stream body: the elements of an array, else the body itself.
fn json_events(body: &Bytes) -> Vec<Bytes> {
    match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(body) {
        Ok(items) => items
            .into_iter()
            .map(|item| Bytes::copy_from_slice(item.get().as_bytes()))
            .collect(),
        Err(_) => vec![body.clone()],
    }
}

/// A request body built as a `Value` (embeddings), serialized.
fn encode_request(body: &Value) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(body)
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))
}

fn encode(value: &Value) -> Result<Bytes, ProviderError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode the answer: {e}")))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An id for answers Gemini sends without a `responseId`: unique within the process.
fn completion_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "chatcmpl-gemini-{:x}{nanos:08x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A model name as one URL path segment: unreserved characters as they are, others
/// percent-encoded.
fn path_segment(model: &str) -> String {
    let mut out = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Translates SSE events into chunk events as they arrive, then the usage chunk and `[DONE]`.
/// The first failure (transport, upstream error event, unfinished stream) ends the stream.
fn translate_events(
    events: impl Stream<Item = Result<SseEvent, ProviderError>> + Send + 'static,
    translator: StreamTranslator,
) -> EventStream {
    translated::translate_stream(events, ChunkEvents(translator))
}

/// The chat translation for the stream driver: the upstream is read to its end, whose usage
/// chunk closes the stream.
struct ChunkEvents(StreamTranslator);

impl Translator for ChunkEvents {
    type Input = SseEvent;

    fn push(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        out.extend(self.0.push(&event.data)?.into_iter().map(StreamEvent::data));
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        out.extend(self.0.finish()?.into_iter().map(StreamEvent::data));
        out.push(StreamEvent::done());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn model_names_are_one_path_segment() {
        assert_eq!(path_segment("gemini-2.5-flash"), "gemini-2.5-flash");
        assert_eq!(path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(path_segment("claude@2024"), "claude@2024");
    }

    #[test]
    fn vertex_hosts_by_location() {
        assert_eq!(
            vertex_base_url("us-central1"),
            "https://us-central1-aiplatform.googleapis.com"
        );
        assert_eq!(
            vertex_base_url("global"),
            "https://aiplatform.googleapis.com"
        );
    }

    #[test]
    fn json_stream_bodies_are_split_into_responses() {
        let events = json_events(&Bytes::from_static(br#"[{"a":1}, {"b":[2]}]"#));
        assert_eq!(events, [&br#"{"a":1}"#[..], &br#"{"b":[2]}"#[..]]);
        let one = Bytes::from_static(br#"{"promptFeedback":{}}"#);
        assert_eq!(json_events(&one), std::slice::from_ref(&one));
    }

    #[test]
    fn completion_ids_differ() {
        assert_ne!(completion_id(), completion_id());
    }

    #[tokio::test]
    async fn events_become_chunks_then_usage_and_done() {
        let event = |data: &str| {
            Ok(SseEvent {
                event: None,
                data: Bytes::from(data.to_owned()),
            })
        };
        let upstream = stream::iter(vec![
            event(r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#),
            event(
                r#"{"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2}}"#,
            ),
        ]);
        let out: Vec<_> = translate_events(upstream, StreamTranslator::new("id", "m", 1))
            .collect()
            .await;
        let data: Vec<String> = out
            .into_iter()
            .map(|e| String::from_utf8(e.unwrap().data.to_vec()).unwrap())
            .collect();
        assert_eq!(data.len(), 6, "{data:?}");
        assert!(data[4].contains(r#""choices":[]"#) && data[4].contains(r#""total_tokens":4"#));
        assert_eq!(data[5], "[DONE]");

        let broken = stream::iter(vec![
            event(r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}"#),
            Err(ProviderError::StreamBroken("cut".into())),
            event(r#"{"candidates":[{"content":{"parts":[{"text":"never"}]}}]}"#),
        ]);
        let out: Vec<_> = translate_events(broken, StreamTranslator::new("id", "m", 1))
            .collect()
            .await;
        assert_eq!(out.len(), 3, "role, text, then the error ends it");
        assert!(matches!(out[2], Err(ProviderError::StreamBroken(_))));
    }
}

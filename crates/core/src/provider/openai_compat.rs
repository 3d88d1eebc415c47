//! Adapter for OpenAI and every OpenAI-compatible server. The request goes out as the client
//! sent it (model name swapped for the deployment's, usage requested on streams); the response
//! comes back byte for byte, streams event by event. Credentials are added here and only here.
//!
//! Where a request goes and how it is authorized is an [`Endpoint`]: a base URL with a bearer
//! key ([`BaseUrl`], for OpenAI and the compatible servers), or Azure OpenAI's deployment URLs
//! and credentials ([`super::azure::AzureEndpoint`]). Everything else (bodies, streams, errors)
//! is shared.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::client::HttpClient;
use super::{
    EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent, upstream,
};
use crate::config::HttpProviderConfig;
use crate::json_scan;
use crate::pipeline::ApiRequest;

/// Where an OpenAI-shaped request goes and how it is authorized.
pub trait Endpoint: Send + Sync + fmt::Debug + 'static {
    /// The URL of `op` for a deployment whose upstream model is `model`.
    fn url(&self, op: Operation, model: &str) -> Result<Cow<'_, http::Uri>, ProviderError>;

    /// The credential header to send, obtained or renewed first if need be.
    fn credential(
        &self,
    ) -> impl Future<Output = Result<Option<(HeaderName, HeaderValue)>, ProviderError>> + Send;

    /// The upstream refused the credential (401): a cached one should not be used again.
    fn rejected(&self) {}
}

/// An OpenAI-compatible base URL (`.../v1`) and an optional bearer key.
pub struct BaseUrl {
    chat: http::Uri,
    completions: http::Uri,
    embeddings: http::Uri,
    authorization: Option<HeaderValue>,
}

impl BaseUrl {
    pub fn new(config: &HttpProviderConfig) -> Self {
        let url = |op: Operation| upstream::uri(&config.base_url, op.path());
        Self {
            chat: url(Operation::Chat),
            completions: url(Operation::Completion),
            embeddings: url(Operation::Embedding),
            authorization: config
                .api_key
                .as_ref()
                .and_then(|k| upstream::secret_header(&format!("Bearer {}", k.expose_secret()))),
        }
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseUrl")
            .field("host", &self.chat.authority())
            .finish_non_exhaustive()
    }
}

impl Endpoint for BaseUrl {
    fn url(&self, op: Operation, _model: &str) -> Result<Cow<'_, http::Uri>, ProviderError> {
        match op {
            Operation::Chat => Ok(Cow::Borrowed(&self.chat)),
            Operation::Completion => Ok(Cow::Borrowed(&self.completions)),
            Operation::Embedding => Ok(Cow::Borrowed(&self.embeddings)),
            Operation::Messages | Operation::CountTokens => {
                Err(ProviderError::Unsupported(op.endpoint()))
            }
        }
    }

    fn credential(
        &self,
    ) -> impl Future<Output = Result<Option<(HeaderName, HeaderValue)>, ProviderError>> + Send {
        std::future::ready(Ok(self.authorization.clone().map(|v| (AUTHORIZATION, v))))
    }
}

/// The adapter, generic over where requests go ([`BaseUrl`] unless said otherwise).
pub struct OpenAiCompatible<E: Endpoint = BaseUrl> {
    kind: &'static str,
    endpoint: E,
    headers: Vec<(HeaderName, HeaderValue)>,
    include_usage: bool,
    client: HttpClient,
}

impl<E: Endpoint> fmt::Debug for OpenAiCompatible<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("kind", &self.kind)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    pub fn new(kind: &'static str, config: &HttpProviderConfig, client: HttpClient) -> Self {
        Self::with_endpoint(
            kind,
            BaseUrl::new(config),
            config.headers.clone(),
            config.include_usage,
            client,
        )
    }
}

impl<E: Endpoint> OpenAiCompatible<E> {
    /// An adapter sending to `endpoint`, adding `headers` to every request; `include_usage`
    /// asks for the usage chunk on streams.
    pub fn with_endpoint(
        kind: &'static str,
        endpoint: E,
        headers: Vec<(HeaderName, HeaderValue)>,
        include_usage: bool,
        client: HttpClient,
    ) -> Self {
        Self {
            kind,
            endpoint,
            headers,
            include_usage,
            client,
        }
    }

    async fn build(
        &self,
        op: Operation,
        model: &str,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<Request<Full<Bytes>>, ProviderError> {
        let uri = self.endpoint.url(op, model)?;
        let credential = self.endpoint.credential().await?;
        let mut request = upstream::post_json(&uri, body, stream);
        let headers = request.headers_mut();
        if let Some((name, value)) = credential {
            headers.insert(name, value);
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        Ok(request)
    }
}

#[async_trait::async_trait]
impl<E: Endpoint> Provider for OpenAiCompatible<E> {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn supports(&self, op: Operation) -> bool {
        matches!(
            op,
            Operation::Chat | Operation::Completion | Operation::Embedding
        )
    }

    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        let body = request
            .to_upstream_json(self.include_usage)
            .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode request: {e}")))?;
        let req = self.build(op, request.model(), body, stream).await?;
        let response = upstream::send(&self.client, req).await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            self.endpoint.rejected();
        }
        if !status.is_success() {
            let body = upstream::read_error_body(response.into_body()).await;
            return Err(classify(status, &body));
        }
        if stream {
            return Ok(ProviderResponse::Stream(events(response.into_body())));
        }
        let body = upstream::read_body(response.into_body()).await?;
        let usage = json_scan::usage(&body).map_err(|_| {
            ProviderError::InvalidResponse("the response body is not a JSON object".into())
        })?;
        Ok(ProviderResponse::Complete { body, usage })
    }
}

#[derive(Deserialize)]
struct UpstreamError {
    error: UpstreamErrorDetail,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UpstreamErrorDetail {
    Object {
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<serde_json::Value>,
    },
    Text(String),
}

/// The `error.message` of an upstream error body in OpenAI's shape, and its `code` (or, without
/// one, its `type`) as a hint for classification.
fn parse_error(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(parsed) = serde_json::from_slice::<UpstreamError>(bytes) else {
        return (None, None);
    };
    match parsed.error {
        UpstreamErrorDetail::Object {
            message,
            kind,
            code,
        } => {
            let code = match code {
                Some(serde_json::Value::String(c)) => Some(c),
                _ => kind,
            };
            (message.as_deref().map(upstream::short_message), code)
        }
        UpstreamErrorDetail::Text(t) => (Some(upstream::short_message(&t)), None),
    }
}

fn classify(status: StatusCode, body: &[u8]) -> ProviderError {
    let (message, code) = parse_error(body);
    ProviderError::classify(status, code.as_deref(), message)
}

/// Decodes an SSE body into chunk events. An in-band `{"error":...}` event becomes an error, so
/// that an upstream failing before its first event can be retried elsewhere; so does an event
/// that is not a JSON object (nor `[DONE]`), which a client's SDK could not parse. A body that
/// ends without `[DONE]` was cut short, however cleanly its connection closed: that ends the
/// stream with an error too, so the client learns its answer is incomplete.
fn events(body: Incoming) -> EventStream {
    let inner = Box::pin(upstream::sse_events(body).map(|event| classify_event(event?.data)));
    Box::pin(futures_util::stream::unfold(
        (inner, false),
        |(mut inner, over)| async move {
            if over {
                return None;
            }
            match inner.next().await {
                Some(Ok(event)) => {
                    let done = event.is_done();
                    Some((Ok(event), (inner, done)))
                }
                Some(Err(e)) => Some((Err(e), (inner, true))),
                None => Some((
                    Err(ProviderError::StreamBroken(
                        "the upstream ended the stream without [DONE]".into(),
                    )),
                    (inner, true),
                )),
            }
        },
    ))
}

fn classify_event(data: Bytes) -> Result<StreamEvent, ProviderError> {
    if data.starts_with(b"{\"error\"") || data.starts_with(b"{ \"error\"") {
        return Err(classify(StatusCode::BAD_GATEWAY, &data));
    }
    let event = StreamEvent::data(data);
    // The structural scan only (no allocation, scalars unchecked): chunks go out as they came.
    if !event.is_done() && json_scan::top_level(&event.data, []).is_err() {
        return Err(ProviderError::InvalidResponse(
            "a stream event is not a JSON object".into(),
        ));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_in_both_shapes() {
        assert_eq!(
            parse_error(br#"{"error":{"message":"bad","type":"x"}}"#),
            (Some("bad".into()), Some("x".into()))
        );
        assert_eq!(
            parse_error(
                br#"{"error":{"message":"long","type":"x","code":"context_length_exceeded"}}"#
            ),
            (Some("long".into()), Some("context_length_exceeded".into()))
        );
        assert_eq!(
            parse_error(br#"{"error":"plain"}"#),
            (Some("plain".into()), None)
        );
        assert_eq!(parse_error(b"<html>"), (None, None));
    }

    #[test]
    fn openai_error_codes_are_classified() {
        let e = classify(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
        );
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        let e = classify(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"message":"no","type":"invalid_request_error","code":"content_filter"}}"#,
        );
        assert!(matches!(e, ProviderError::ContentFiltered { .. }));
    }

    #[test]
    fn in_band_errors_are_errors() {
        assert!(classify_event(Bytes::from_static(br#"{"error":{"message":"x"}}"#)).is_err());
        assert!(classify_event(Bytes::from_static(br#"{"id":"1","choices":[]}"#)).is_ok());
    }

    #[test]
    fn events_that_are_not_json_objects_are_invalid() {
        for bad in [&b"{not json"[..], b"[DONE", b"", b"42", br#"{"id":"1","#] {
            assert!(
                matches!(
                    classify_event(Bytes::from_static(bad)),
                    Err(ProviderError::InvalidResponse(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(classify_event(Bytes::from_static(b"[DONE]")).is_ok_and(|e| e.is_done()));
        assert!(classify_event(Bytes::from_static(b" {\"id\": \"1\"} ")).is_ok());
    }
}

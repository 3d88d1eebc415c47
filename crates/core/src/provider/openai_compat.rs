//! Adapter for OpenAI and every OpenAI-compatible server. The request goes out as the client
//! sent it (model name swapped for the deployment's, usage requested on streams); the response
//! comes back byte for byte, streams event by event. Credentials are added here and only here.

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, StatusCode};
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

pub struct OpenAiCompatible {
    kind: &'static str,
    chat_url: http::Uri,
    completions_url: http::Uri,
    embeddings_url: http::Uri,
    authorization: Option<HeaderValue>,
    headers: Vec<(http::HeaderName, HeaderValue)>,
    include_usage: bool,
    client: HttpClient,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("kind", &self.kind)
            .field("base", &self.chat_url.authority())
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    pub fn new(kind: &'static str, config: &HttpProviderConfig, client: HttpClient) -> Self {
        let url = |op: Operation| upstream::uri(&config.base_url, op.path());
        let authorization = config
            .api_key
            .as_ref()
            .and_then(|k| upstream::secret_header(&format!("Bearer {}", k.expose_secret())));
        Self {
            kind,
            chat_url: url(Operation::Chat),
            completions_url: url(Operation::Completion),
            embeddings_url: url(Operation::Embedding),
            authorization,
            headers: config.headers.clone(),
            include_usage: config.include_usage,
            client,
        }
    }

    fn build(
        &self,
        op: Operation,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<Request<Full<Bytes>>, ProviderError> {
        let uri = match op {
            Operation::Chat => &self.chat_url,
            Operation::Completion => &self.completions_url,
            Operation::Embedding => &self.embeddings_url,
            Operation::Messages | Operation::CountTokens => {
                return Err(ProviderError::Unsupported(op.endpoint()));
            }
        };
        let mut request = upstream::post_json(uri, body, stream);
        let headers = request.headers_mut();
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        Ok(request)
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatible {
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
        let req = self.build(op, body, stream)?;
        let response = upstream::send(&self.client, req).await?;
        let status = response.status();
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
/// that an upstream failing before its first event can be retried elsewhere.
fn events(body: Incoming) -> EventStream {
    Box::pin(upstream::sse_events(body).map(|event| classify_event(event?.data)))
}

fn classify_event(data: Bytes) -> Result<StreamEvent, ProviderError> {
    if data.starts_with(b"{\"error\"") || data.starts_with(b"{ \"error\"") {
        return Err(classify(StatusCode::BAD_GATEWAY, &data));
    }
    Ok(StreamEvent::data(data))
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
}

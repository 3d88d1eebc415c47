//! Adapter for OpenAI and every OpenAI-compatible server. The request goes out as the client
//! sent it (model name swapped for the deployment's, usage requested on streams); the response
//! comes back byte for byte, streams event by event. Credentials are added here and only here.

use bytes::Bytes;
use futures_util::stream;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::client::HttpClient;
use super::{EventStream, Operation, Provider, ProviderError, ProviderResponse, StreamEvent};
use crate::config::HttpProviderConfig;
use crate::json_scan;
use crate::pipeline::ApiRequest;
use crate::sse::SseDecoder;

/// Largest non-streamed response body accepted from an upstream.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest error body read from an upstream (only its message is kept).
const MAX_ERROR_BYTES: usize = 64 * 1024;

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
        let url = |op: Operation| {
            format!("{}{}", config.base_url, op.path())
                .parse::<http::Uri>()
                .unwrap_or_default()
        };
        let authorization = config.api_key.as_ref().and_then(|k| {
            let mut v = HeaderValue::try_from(format!("Bearer {}", k.expose_secret())).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
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

    fn build(&self, op: Operation, body: Vec<u8>, stream: bool) -> Request<Full<Bytes>> {
        let uri = match op {
            Operation::Chat => &self.chat_url,
            Operation::Completion => &self.completions_url,
            Operation::Embedding => &self.embeddings_url,
        };
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        request
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiCompatible {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn supports(&self, _op: Operation) -> bool {
        true
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
        let req = self.build(op, body, stream);
        let response = self.client.request(req).await.map_err(connect_error)?;
        let status = response.status();
        if !status.is_success() {
            let message = error_message(response.into_body()).await;
            return Err(ProviderError::from_status(status, message));
        }
        if stream {
            return Ok(ProviderResponse::Stream(events(response.into_body())));
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| ProviderError::StreamBroken(e.to_string()))?
            .to_bytes();
        let usage = json_scan::usage(&body).map_err(|_| {
            ProviderError::InvalidResponse("the response body is not a JSON object".into())
        })?;
        Ok(ProviderResponse::Complete { body, usage })
    }
}

/// Connection-level failures, described without URLs or credentials.
fn connect_error(e: hyper_util::client::legacy::Error) -> ProviderError {
    use std::error::Error as _;
    let mut cause = e.source();
    let mut detail = if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
    .to_owned();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            detail = format!("{detail} ({})", io.kind());
            break;
        }
        cause = c.source();
    }
    ProviderError::Connect(detail)
}

#[derive(Deserialize)]
struct UpstreamError {
    error: UpstreamErrorDetail,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UpstreamErrorDetail {
    Object { message: Option<String> },
    Text(String),
}

/// The `error.message` of an upstream error body, if it is in OpenAI's shape.
async fn error_message(body: Incoming) -> Option<String> {
    let bytes = Limited::new(body, MAX_ERROR_BYTES)
        .collect()
        .await
        .ok()?
        .to_bytes();
    parse_error_message(&bytes)
}

fn parse_error_message(bytes: &[u8]) -> Option<String> {
    let parsed: UpstreamError = serde_json::from_slice(bytes).ok()?;
    let message = match parsed.error {
        UpstreamErrorDetail::Object { message } => message?,
        UpstreamErrorDetail::Text(t) => t,
    };
    // Keep relayed messages short: they describe the failure, nothing more.
    Some(message.chars().take(500).collect())
}

/// Decodes an SSE body into events. An in-band `{"error":...}` event becomes an error, so that
/// an upstream failing before its first event can be retried elsewhere.
fn events(body: Incoming) -> EventStream {
    struct State {
        body: Incoming,
        decoder: SseDecoder,
        /// The body has ended: flush what is buffered, then stop.
        ended: bool,
        /// Nothing more will be yielded.
        done: bool,
    }
    let state = State {
        body,
        decoder: SseDecoder::default(),
        ended: false,
        done: false,
    };
    Box::pin(stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            match s.decoder.next_event() {
                Ok(Some(ev)) => return Some((classify_event(ev.data), s)),
                Ok(None) => {}
                Err(e) => {
                    s.done = true;
                    return Some((Err(ProviderError::InvalidResponse(e.to_string())), s));
                }
            }
            if s.ended {
                s.done = true;
                let last = s.decoder.finish().ok().flatten()?;
                return Some((classify_event(last.data), s));
            }
            match s.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        s.decoder.push(&data);
                    }
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(ProviderError::StreamBroken(body_error(&e))), s));
                }
                None => s.ended = true,
            }
        }
    }))
}

fn body_error(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "the connection closed mid-stream".into()
    } else {
        "the connection failed mid-stream".into()
    }
}

fn classify_event(data: Bytes) -> Result<StreamEvent, ProviderError> {
    if data.starts_with(b"{\"error\"") || data.starts_with(b"{ \"error\"") {
        let message = parse_error_message(&data);
        return Err(ProviderError::from_status(StatusCode::BAD_GATEWAY, message));
    }
    Ok(StreamEvent { data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_in_both_shapes() {
        assert_eq!(
            parse_error_message(br#"{"error":{"message":"bad","type":"x"}}"#).as_deref(),
            Some("bad")
        );
        assert_eq!(
            parse_error_message(br#"{"error":"plain"}"#).as_deref(),
            Some("plain")
        );
        assert_eq!(parse_error_message(b"<html>"), None);
    }

    #[test]
    fn in_band_errors_are_errors() {
        assert!(classify_event(Bytes::from_static(br#"{"error":{"message":"x"}}"#)).is_err());
        assert!(classify_event(Bytes::from_static(br#"{"id":"1","choices":[]}"#)).is_ok());
    }
}

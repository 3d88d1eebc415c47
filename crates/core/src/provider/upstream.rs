//! Upstream HTTP plumbing every HTTP adapter shares: building a JSON POST, sending it on the
//! pooled client, reading a bounded body, and turning a streamed body into SSE events or raw
//! byte chunks. Errors are described without URLs or credentials.

use bytes::Bytes;
use futures_util::{Stream, stream};
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::ProviderError;
use super::client::HttpClient;
use crate::sse::{SseDecoder, SseEvent};

/// Largest non-streamed response body accepted from an upstream.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest error body read from an upstream (only its message is kept).
pub const MAX_ERROR_BYTES: usize = 64 * 1024;
/// Longest upstream error message relayed to a client.
const MAX_MESSAGE_CHARS: usize = 500;

/// A `POST` of a JSON body to `uri`, accepting SSE when `stream` is set, else JSON.
pub fn post_json(uri: &http::Uri, body: impl Into<Bytes>, stream: bool) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body.into()));
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
    request
}

/// A `GET` of `uri` accepting `accept` (a JSON document such as an identity provider's key set).
pub fn get(uri: &http::Uri, accept: &'static str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri.clone();
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static(accept));
    request
}

/// Reads a whole response body of at most `limit` bytes; `None` if it is longer or broken.
pub async fn read_body_max(body: Incoming, limit: usize) -> Option<Bytes> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .ok()
}

/// A header value holding a secret: marked sensitive so that no debug output prints it.
pub fn secret_header(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::try_from(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Parses `base` + `path` as a URI (both already validated by config; a bad one yields an empty
/// URI, which fails at connect time with a clear error rather than panicking).
pub fn uri(base: &str, path: &str) -> http::Uri {
    format!("{base}{path}").parse().unwrap_or_default()
}

/// Sends `request` on the pooled client, noting what the response headers say about the
/// upstream's capacity ([`super::hints`]).
pub async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, ProviderError> {
    let response = client.request(request).await.map_err(connect_error)?;
    super::hints::record(response.headers());
    Ok(response)
}

/// Reads a whole response body (at most [`MAX_RESPONSE_BYTES`]).
pub async fn read_body(body: Incoming) -> Result<Bytes, ProviderError> {
    Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ProviderError::StreamBroken(e.to_string()))
}

/// Reads an error body (at most [`MAX_ERROR_BYTES`]); empty if it cannot be read.
pub async fn read_error_body(body: Incoming) -> Bytes {
    Limited::new(body, MAX_ERROR_BYTES)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// Shortens an upstream error message for relaying: it describes the failure, nothing more.
pub fn short_message(message: &str) -> String {
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// Connection-level failures, described without URLs or credentials.
pub fn connect_error(e: hyper_util::client::legacy::Error) -> ProviderError {
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

fn body_error(e: &hyper::Error) -> ProviderError {
    ProviderError::StreamBroken(
        if e.is_incomplete_message() {
            "the connection closed mid-stream"
        } else {
            "the connection failed mid-stream"
        }
        .into(),
    )
}

/// The body's data frames as they arrive. A transport failure ends the stream with
/// [`ProviderError::StreamBroken`].
pub fn chunks(body: Incoming) -> impl Stream<Item = Result<Bytes, ProviderError>> + Send {
    stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(body)));
                    }
                }
                Some(Err(e)) => return Some((Err(body_error(&e)), None)),
                None => return None,
            }
        }
    })
}

/// Decodes an SSE body into events as they arrive. A decoding or transport failure is yielded
/// once as an error, then the stream ends.
pub fn sse_events(body: Incoming) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send {
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
    stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            match s.decoder.next_event() {
                Ok(Some(ev)) => return Some((Ok(ev), s)),
                Ok(None) => {}
                Err(e) => {
                    s.done = true;
                    return Some((Err(ProviderError::InvalidResponse(e.to_string())), s));
                }
            }
            if s.ended {
                s.done = true;
                let last = s.decoder.finish().ok().flatten()?;
                return Some((Ok(last), s));
            }
            match s.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        s.decoder.push(&data);
                    }
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(body_error(&e)), s));
                }
                None => s.ended = true,
            }
        }
    })
}

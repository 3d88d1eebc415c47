//! The `Provider` seam: one adapter per provider family, called by the `dispatch` stage.
//!
//! An adapter takes the typed request (its `model` already set to the deployment's upstream
//! model) and returns either a complete OpenAI-shaped body with its usage, or a stream of
//! OpenAI-shaped chunk events. Adapters hold their own credentials; nothing outside them sees
//! those.

pub mod client;
pub mod mock;
pub mod openai_compat;
pub mod presets;

use std::fmt;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use http::StatusCode;
use portcullis_types::Usage;

use crate::pipeline::ApiRequest;

/// The API operation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Chat,
    Completion,
    Embedding,
}

impl Operation {
    /// The path of this operation below an OpenAI-compatible base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Completion => "/completions",
            Self::Embedding => "/embeddings",
        }
    }

    /// The endpoint as clients name it, for messages and logs.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Completion => "/v1/completions",
            Self::Embedding => "/v1/embeddings",
        }
    }
}

/// One event of a streamed response: the `data:` payload of one SSE event, in OpenAI's chunk
/// format (or `[DONE]`).
#[derive(Clone, PartialEq, Eq)]
pub struct StreamEvent {
    pub data: Bytes,
}

impl fmt::Debug for StreamEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Events carry response content: never print it.
        write!(f, "StreamEvent({} bytes)", self.data.len())
    }
}

impl StreamEvent {
    pub fn is_done(&self) -> bool {
        self.data.as_ref() == b"[DONE]"
    }
}

/// The events of a streamed response, as they arrive.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// What an adapter returns.
pub enum ProviderResponse {
    /// A complete JSON body in OpenAI's shape, with the usage the provider reported.
    Complete { body: Bytes, usage: Option<Usage> },
    /// A stream of chunk events.
    Stream(EventStream),
}

impl fmt::Debug for ProviderResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Complete { body, usage } => f
                .debug_struct("Complete")
                .field("body_bytes", &body.len())
                .field("usage", usage)
                .finish(),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A provider adapter.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// A short name of the adapter family, for logs (`openai`, `openai_compatible`, `mock`).
    fn kind(&self) -> &'static str;

    /// Whether the adapter serves this operation at all.
    fn supports(&self, op: Operation) -> bool;

    /// Sends one attempt of `request` upstream. `stream` is true for streamed chat/completions.
    async fn call(
        &self,
        op: Operation,
        request: &ApiRequest,
        stream: bool,
    ) -> Result<ProviderResponse, ProviderError>;
}

/// A failure of one upstream attempt, classified for failover and for the client's answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    #[error("could not reach the upstream provider: {0}")]
    Connect(String),
    #[error("the upstream provider did not answer in time")]
    Timeout,
    #[error("the upstream stream sent nothing within the first-byte timeout")]
    FirstByteTimeout,
    #[error("the upstream stream stalled")]
    StreamIdle,
    #[error("the upstream provider is rate limiting requests (HTTP 429){}", fmt_msg(.message))]
    RateLimited { message: Option<String> },
    #[error("the upstream provider rejected the gateway's credentials (HTTP {status})")]
    Unauthorized { status: u16 },
    #[error("the upstream provider failed (HTTP {status}){}", fmt_msg(.message))]
    Server {
        status: u16,
        message: Option<String>,
    },
    #[error("the upstream provider rejected the request (HTTP {status}){}", fmt_msg(.message))]
    BadRequest {
        status: u16,
        message: Option<String>,
    },
    #[error("the upstream provider sent an invalid response: {0}")]
    InvalidResponse(String),
    #[error("the upstream stream broke off: {0}")]
    StreamBroken(String),
}

fn fmt_msg(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

impl ProviderError {
    /// Whether another deployment may succeed where this attempt failed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::BadRequest { .. })
    }

    /// A request error the upstream blamed on the request itself.
    pub fn is_client_fault(&self) -> bool {
        matches!(self, Self::BadRequest { .. })
    }

    /// The status the client gets when this was the last attempt.
    pub fn client_status(&self) -> StatusCode {
        match self {
            Self::Timeout | Self::FirstByteTimeout | Self::StreamIdle => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Server { status: 503, .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Connect(_)
            | Self::Unauthorized { .. }
            | Self::Server { .. }
            | Self::InvalidResponse(_)
            | Self::StreamBroken(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// A stable, low-cardinality label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "upstream_unreachable",
            Self::Timeout => "upstream_timeout",
            Self::FirstByteTimeout => "upstream_first_byte_timeout",
            Self::StreamIdle => "upstream_stream_idle",
            Self::RateLimited { .. } => "upstream_rate_limited",
            Self::Unauthorized { .. } => "upstream_auth_failed",
            Self::Server { .. } => "upstream_error",
            Self::BadRequest { .. } => "upstream_bad_request",
            Self::InvalidResponse(_) => "upstream_invalid_response",
            Self::StreamBroken(_) => "upstream_stream_broken",
        }
    }

    /// Classifies a non-success upstream answer. `message` is the upstream's own error message,
    /// which describes the request (never its content) and is safe to relay.
    pub fn from_status(status: StatusCode, message: Option<String>) -> Self {
        let code = status.as_u16();
        match code {
            429 => Self::RateLimited { message },
            401 | 403 => Self::Unauthorized { status: code },
            // A missing model or route upstream is a deployment problem, not the client's.
            404 | 408 | 409 => Self::Server {
                status: code,
                message,
            },
            400..=499 => Self::BadRequest {
                status: code,
                message,
            },
            _ => Self::Server {
                status: code,
                message,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = ProviderError::from_status(StatusCode::TOO_MANY_REQUESTS, None);
        assert!(e.is_retryable());
        assert_eq!(e.client_status(), StatusCode::TOO_MANY_REQUESTS);
        let e = ProviderError::from_status(StatusCode::BAD_REQUEST, Some("bad temp".into()));
        assert!(!e.is_retryable());
        assert_eq!(e.client_status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().ends_with(": bad temp"));
        let e = ProviderError::from_status(StatusCode::UNAUTHORIZED, Some("sk-xyz".into()));
        assert!(e.is_retryable());
        assert_eq!(e.client_status(), StatusCode::BAD_GATEWAY);
        assert!(
            !e.to_string().contains("sk-xyz"),
            "upstream auth messages are not relayed"
        );
        let e = ProviderError::from_status(StatusCode::SERVICE_UNAVAILABLE, None);
        assert_eq!(e.client_status(), StatusCode::SERVICE_UNAVAILABLE);
        let e = ProviderError::from_status(StatusCode::INTERNAL_SERVER_ERROR, None);
        assert_eq!(e.client_status(), StatusCode::BAD_GATEWAY);
    }
}

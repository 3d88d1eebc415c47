//! The `Provider` seam: one adapter per provider family, called by the `dispatch` stage.
//!
//! An adapter takes the typed request (its `model` already set to the deployment's upstream
//! model) and returns either a complete OpenAI-shaped body with its usage, or a stream of
//! OpenAI-shaped chunk events. Adapters hold their own credentials; nothing outside them sees
//! those.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod client;
pub mod cohere;
pub mod gemini;
pub mod hints;
pub mod mock;
pub mod openai_compat;
pub mod presets;
pub mod translated;
pub mod upstream;

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
    /// Anthropic's `POST /v1/messages`. Served natively by adapters whose `supports` says so,
    /// and by translation to [`Operation::Chat`] on every other chat-capable adapter.
    Messages,
    /// Anthropic's `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Operation {
    /// The path of this operation below an OpenAI-compatible base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Completion => "/completions",
            Self::Embedding => "/embeddings",
            Self::Messages => "/messages",
            Self::CountTokens => "/messages/count_tokens",
        }
    }

    /// The endpoint as clients name it, for messages and logs.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Completion => "/v1/completions",
            Self::Embedding => "/v1/embeddings",
            Self::Messages => "/v1/messages",
            Self::CountTokens => "/v1/messages/count_tokens",
        }
    }

    /// The API family whose shapes (bodies, stream events, errors) the client expects.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Chat | Self::Completion | Self::Embedding => Dialect::OpenAi,
            Self::Messages | Self::CountTokens => Dialect::Anthropic,
        }
    }
}

/// The API family a client speaks: it decides the shape of error bodies and stream events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

/// One event of a streamed response: the `data:` payload of one SSE event, in OpenAI's chunk
/// format (or `[DONE]`), or for [`Operation::Messages`] an Anthropic event with its `event:` name.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The SSE `event:` field (Anthropic streams name every event; OpenAI's name none).
    pub event: Option<Bytes>,
    pub data: Bytes,
}

impl fmt::Debug for StreamEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Events carry response content: never print it.
        write!(f, "StreamEvent({} bytes)", self.data.len())
    }
}

impl StreamEvent {
    /// An unnamed event (OpenAI chunks).
    pub fn data(data: impl Into<Bytes>) -> Self {
        Self {
            event: None,
            data: data.into(),
        }
    }

    /// A named event (Anthropic stream events).
    pub fn named(event: impl Into<Bytes>, data: impl Into<Bytes>) -> Self {
        Self {
            event: Some(event.into()),
            data: data.into(),
        }
    }

    /// OpenAI's end of stream, `[DONE]`.
    pub fn done() -> Self {
        Self::data(Bytes::from_static(b"[DONE]"))
    }

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
    RateLimited {
        message: Option<String>,
        /// How long the upstream asked the gateway to wait (`Retry-After`), relayed to the client.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the upstream provider is overloaded{}", fmt_msg(.message))]
    Overloaded {
        message: Option<String>,
        /// How long the upstream asked the gateway to wait (`Retry-After`), relayed to the client.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the request exceeds the model's context window{}", fmt_msg(.message))]
    ContextLength { message: Option<String> },
    #[error("the upstream provider's content filter blocked the request{}", fmt_msg(.message))]
    ContentFiltered { message: Option<String> },
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
    #[error("this provider does not serve {0}")]
    Unsupported(&'static str),
    /// The request has something the provider's API cannot express (found while translating it).
    #[error("the request cannot be sent to this provider: {0}")]
    Untranslatable(#[from] crate::translate::TranslateError),
}

fn fmt_msg(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default()
}

impl ProviderError {
    /// Whether another deployment may succeed where this attempt failed.
    ///
    /// A context-window or content-filter refusal is the request's own: the same request to
    /// another deployment of the same model would fail the same way (fallbacks to other models
    /// for these two cases are routing's business).
    pub fn is_retryable(&self) -> bool {
        !self.is_client_fault()
    }

    /// How long the upstream asked to be left alone, for a rate-limited or overloaded answer.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Overloaded { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Notes the upstream's `Retry-After` on a rate-limited or overloaded answer (other errors
    /// are returned as they are).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> Self {
        if let Self::RateLimited { retry_after, .. } | Self::Overloaded { retry_after, .. } =
            &mut self
        {
            *retry_after = wait.or(*retry_after);
        }
        self
    }

    /// A request error the upstream blamed on the request itself.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            Self::BadRequest { .. }
                | Self::ContextLength { .. }
                | Self::ContentFiltered { .. }
                | Self::Untranslatable(_)
        )
    }

    /// The status the client gets when this was the last attempt.
    pub fn client_status(&self) -> StatusCode {
        match self {
            Self::Timeout | Self::FirstByteTimeout | Self::StreamIdle => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Server { status: 503, .. } | Self::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::ContextLength { .. } | Self::ContentFiltered { .. } | Self::Untranslatable(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BadRequest { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Connect(_)
            | Self::Unauthorized { .. }
            | Self::Server { .. }
            | Self::InvalidResponse(_)
            | Self::StreamBroken(_)
            | Self::Unsupported(_) => StatusCode::BAD_GATEWAY,
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
            Self::Overloaded { .. } => "upstream_overloaded",
            Self::ContextLength { .. } => "context_length_exceeded",
            Self::ContentFiltered { .. } => "content_filter",
            Self::Unauthorized { .. } => "upstream_auth_failed",
            Self::Server { .. } => "upstream_error",
            Self::BadRequest { .. } => "upstream_bad_request",
            Self::InvalidResponse(_) => "upstream_invalid_response",
            Self::StreamBroken(_) => "upstream_stream_broken",
            Self::Unsupported(_) => "upstream_unsupported",
            Self::Untranslatable(_) => "untranslatable_request",
        }
    }

    /// Classifies a non-success upstream answer with the provider's own error code or type
    /// (`code`, e.g. OpenAI's `context_length_exceeded`, Anthropic's `overloaded_error`, Google's
    /// `RESOURCE_EXHAUSTED`, Bedrock's `ThrottlingException`) and message. Adapters extract both
    /// from their error bodies; this decides the class, so every adapter classifies alike.
    pub fn classify(status: StatusCode, code: Option<&str>, message: Option<String>) -> Self {
        let code = code.unwrap_or("").to_ascii_lowercase();
        let text = message.as_deref().unwrap_or("").to_ascii_lowercase();
        let has = |needles: &[&str]| needles.iter().any(|n| code.contains(n));
        let says = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
        // A 429 is never the request's own fault, whatever its message says (Bedrock throttles
        // with "Too many tokens, please wait before trying again.").
        let client_error = (status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS)
            || status == StatusCode::BAD_GATEWAY;
        if has(&[
            "context_length",
            "context_window",
            "string_above_max_length",
        ]) || (client_error
            && says(&[
                "context length",
                "context window",
                "context_length",
                "prompt is too long",
                "input is too long",
                "too many tokens",
                "too many input tokens",
                "maximum number of tokens",
                "exceeds the maximum",
                "input token count",
            ]))
        {
            return Self::ContextLength { message };
        }
        if has(&[
            "content_filter",
            "content_policy",
            "safety",
            "responsible_ai",
        ]) || (client_error && says(&["content management policy", "content filter"]))
        {
            return Self::ContentFiltered { message };
        }
        if has(&[
            "overloaded",
            "serviceunavailable",
            "unavailable",
            "modelnotready",
        ]) || status.as_u16() == 529
        {
            return Self::Overloaded {
                message,
                retry_after: None,
            };
        }
        if has(&[
            "rate_limit",
            "throttl",
            "resource_exhausted",
            "too_many_requests",
            "quotaexceeded",
        ]) {
            return Self::RateLimited {
                message,
                retry_after: None,
            };
        }
        Self::from_status(status, message)
    }

    /// Classifies a non-success upstream answer. `message` is the upstream's own error message,
    /// which describes the request (never its content) and is safe to relay.
    pub fn from_status(status: StatusCode, message: Option<String>) -> Self {
        let code = status.as_u16();
        match code {
            429 => Self::RateLimited {
                message,
                retry_after: None,
            },
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

    #[test]
    fn classification_by_code_and_message() {
        let c = |status: u16, code: Option<&str>, msg: &str| {
            let status = StatusCode::from_u16(status).unwrap();
            ProviderError::classify(status, code, Some(msg.into()))
        };
        let e = c(400, Some("context_length_exceeded"), "x");
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        assert!(!e.is_retryable());
        assert_eq!(e.client_status(), StatusCode::BAD_REQUEST);
        let e = c(
            400,
            Some("invalid_request_error"),
            "prompt is too long: 210000 tokens",
        );
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        let e = c(
            400,
            Some("ValidationException"),
            "Input is too long for requested model.",
        );
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        let e = c(400, Some("content_filter"), "x");
        assert!(matches!(e, ProviderError::ContentFiltered { .. }));
        let e = c(529, Some("overloaded_error"), "Overloaded");
        assert!(matches!(e, ProviderError::Overloaded { .. }));
        assert!(e.is_retryable());
        assert_eq!(e.client_status(), StatusCode::SERVICE_UNAVAILABLE);
        let e = c(503, Some("UNAVAILABLE"), "The model is overloaded.");
        assert!(matches!(e, ProviderError::Overloaded { .. }));
        let e = c(429, Some("RESOURCE_EXHAUSTED"), "quota");
        assert!(matches!(e, ProviderError::RateLimited { .. }));
        let e = c(400, Some("ThrottlingException"), "slow down");
        assert!(matches!(e, ProviderError::RateLimited { .. }));
        let e = c(
            429,
            Some("ThrottlingException"),
            "Too many tokens, please wait before trying again.",
        );
        assert!(matches!(e, ProviderError::RateLimited { .. }));
        let e = c(400, Some("ServiceQuotaExceededException"), "quota");
        assert!(matches!(e, ProviderError::RateLimited { .. }));
        let e = c(400, Some("ValidationException"), "Too many input tokens.");
        assert!(matches!(e, ProviderError::ContextLength { .. }));
        // A server error that mentions tokens is still a server error.
        let e = c(500, None, "too many tokens in flight");
        assert!(matches!(e, ProviderError::Server { .. }));
        let e = c(
            400,
            Some("invalid_request_error"),
            "temperature: out of range",
        );
        assert!(matches!(e, ProviderError::BadRequest { .. }));
        let e = c(401, Some("authentication_error"), "invalid x-api-key");
        assert!(matches!(e, ProviderError::Unauthorized { .. }));
    }
}

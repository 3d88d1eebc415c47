//! Response bodies: the message, the token count, and the error body.

use serde::de::MapAccess;
use serde::{Deserialize, Serialize};

use super::{ContentBlock, Role};
use crate::raw::RawFields;

/// The response of `POST /v1/messages` (`"type": "message"`), also the `message` of a stream's
/// `message_start` event (with empty `content` and a null `stop_reason`).
#[derive(Clone, Serialize)]
pub struct MessagesResponse {
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always [`Role::Assistant`].
    pub role: Role,
    pub content: Vec<ContentBlock>,
    pub model: String,
    /// Null until the message is complete (in `message_start`).
    pub stop_reason: Option<StopReason>,
    /// The stop sequence that was generated, with [`StopReason::StopSequence`].
    pub stop_sequence: Option<String>,
    /// Read as zeros when absent (the reference's own abbreviated examples omit it).
    pub usage: Usage,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl MessagesResponse {
    /// An assistant message with the given content.
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        content: Vec<ContentBlock>,
        stop_reason: Option<StopReason>,
        usage: Usage,
    ) -> Self {
        Self {
            id: id.into(),
            kind: "message".to_owned(),
            role: Role::Assistant,
            content,
            model: model.into(),
            stop_reason,
            stop_sequence: None,
            usage,
            extra: RawFields::new(),
        }
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {
                id: String = "id",
                kind: String = "type",
                role: Role = "role",
                content: Vec<ContentBlock> = "content",
                model: String = "model",
            }
            defaulted { usage: Usage = "usage" }
            optional { stop_reason: StopReason = "stop_reason", stop_sequence: String = "stop_sequence" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

string_enum! {
    /// Why the model stopped.
    StopReason {
        /// It reached a natural stopping point.
        EndTurn = "end_turn",
        /// It reached `max_tokens` or the model's limit.
        MaxTokens = "max_tokens",
        /// It generated one of the `stop_sequences`.
        StopSequence = "stop_sequence",
        /// It called one or more tools.
        ToolUse = "tool_use",
        /// A long-running turn was paused; send the response back to continue it.
        PauseTurn = "pause_turn",
        /// It declined to go on, for policy reasons.
        Refusal = "refusal",
    }
}

/// Token counts of a message. The cache counts are absent when caching was not involved.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Tokens written to the prompt cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Tokens read from the prompt cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// `cache_creation` (by TTL), `server_tool_use`, `service_tier`, ...
    #[serde(flatten)]
    pub extra: RawFields,
}

impl Usage {
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Self {
            input_tokens,
            output_tokens,
            ..Self::default()
        }
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {}
            defaulted { input_tokens: u64 = "input_tokens", output_tokens: u64 = "output_tokens" }
            optional {
                cache_creation_input_tokens: u64 = "cache_creation_input_tokens",
                cache_read_input_tokens: u64 = "cache_read_input_tokens",
            }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

/// The response of `POST /v1/messages/count_tokens`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountTokensResponse {
    pub input_tokens: u64,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl CountTokensResponse {
    pub fn new(input_tokens: u64) -> Self {
        Self {
            input_tokens,
            extra: RawFields::new(),
        }
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { input_tokens: u64 = "input_tokens" }
            defaulted {}
            optional {}
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

deserialize_from_map!(MessagesResponse, "a message object");
deserialize_from_map!(Usage, "a usage object");
deserialize_from_map!(CountTokensResponse, "a count_tokens response object");

redacted_debug!(MessagesResponse, |s, d| d
    .field("id", &s.id)
    .field("model", &s.model)
    .field("role", &s.role)
    .field("content", &s.content)
    .field("stop_reason", &s.stop_reason)
    .field("stop_sequence", &s.stop_sequence.is_some())
    .field("usage", &s.usage)
    .field("extra", &s.extra));

string_enum! {
    /// The `type` of an error. The reference says more types may come; they read as `Other`.
    ErrorType {
        /// 400: the request's format or content is wrong (also used for other 4xx statuses).
        InvalidRequest = "invalid_request_error",
        /// 401: a problem with the API key.
        Authentication = "authentication_error",
        /// 403: the key may not use this resource.
        Permission = "permission_error",
        /// 404: no such resource.
        NotFound = "not_found_error",
        /// 413: the request is too large.
        RequestTooLarge = "request_too_large",
        /// 429: a rate limit was hit.
        RateLimit = "rate_limit_error",
        /// 500: an unexpected internal error.
        Api = "api_error",
        /// 529: the API is temporarily overloaded.
        Overloaded = "overloaded_error",
    }
}

impl ErrorType {
    /// The HTTP status this type goes with (500 for a type this crate does not know).
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Authentication => 401,
            Self::Permission => 403,
            Self::NotFound => 404,
            Self::RequestTooLarge => 413,
            Self::RateLimit => 429,
            Self::Api | Self::Other(_) => 500,
            Self::Overloaded => 529,
        }
    }

    /// The type for an HTTP status, to render an error in Anthropic's shape: other 4xx statuses
    /// are `invalid_request_error` (as Anthropic does), 503 and 529 `overloaded_error`, other
    /// statuses `api_error`.
    pub fn for_status(status: u16) -> Self {
        match status {
            401 => Self::Authentication,
            403 => Self::Permission,
            404 => Self::NotFound,
            413 => Self::RequestTooLarge,
            429 => Self::RateLimit,
            503 | 529 => Self::Overloaded,
            400..=499 => Self::InvalidRequest,
            _ => Self::Api,
        }
    }
}

/// The body of an error response: `{"type":"error","error":{"type":..,"message":..}}`. Also the
/// payload of a stream's `error` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorDetail,
    /// The id Anthropic gives each request (also its `request-id` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What went wrong.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: ErrorType,
    pub message: String,
}

impl ErrorResponse {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        Self {
            kind: "error".to_owned(),
            error: ErrorDetail {
                kind,
                message: message.into(),
            },
            request_id: None,
        }
    }

    /// An error of the type that goes with `status` ([`ErrorType::for_status`]).
    pub fn for_status(status: u16, message: impl Into<String>) -> Self {
        Self::new(ErrorType::for_status(status), message)
    }

    /// The HTTP status of the error's type.
    pub fn status(&self) -> u16 {
        self.error.kind.status()
    }
}

// An upstream's message may quote the request; it is relayed to the client, never logged.
redacted_debug!(ErrorDetail, |s, d| d.field("kind", &s.kind));

#[cfg(test)]
mod tests {
    // Reference pages: see the test module of `anthropic` (mod.rs); here Create a Message
    // (response), Count tokens (response) and Errors.
    use serde_json::json;

    use super::super::tests::round_trip;
    use super::*;

    #[test]
    fn message_round_trips() -> Result<(), serde_json::Error> {
        let msg: MessagesResponse = round_trip(
            r#"{
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBCgIYAh"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                 "input": {"location": "San Francisco, CA", "unit": "celsius"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 2095, "output_tokens": 503,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                      "service_tier": "standard"},
            "container": null
        }"#,
        )?;
        assert_eq!(msg.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
        assert_eq!((msg.kind.as_str(), msg.role), ("message", Role::Assistant));
        assert_eq!(msg.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(msg.stop_sequence, None);
        assert_eq!(msg.content.len(), 4);
        assert!(matches!(&msg.content[2], ContentBlock::ToolUse(t) if t.name == "get_weather"));
        assert!(matches!(&msg.content[3], ContentBlock::Other(_)));
        let u = &msg.usage;
        assert_eq!((u.input_tokens, u.output_tokens), (2095, 503));
        assert_eq!(
            (u.cache_creation_input_tokens, u.cache_read_input_tokens),
            (Some(0), Some(1024))
        );
        assert_eq!(
            u.extra.keys().collect::<Vec<_>>(),
            ["cache_creation", "service_tier"]
        );
        assert_eq!(msg.extra.keys().collect::<Vec<_>>(), ["container"]);
        Ok(())
    }

    #[test]
    fn stop_reasons() -> Result<(), serde_json::Error> {
        for (text, reason) in [
            ("end_turn", StopReason::EndTurn),
            ("max_tokens", StopReason::MaxTokens),
            ("stop_sequence", StopReason::StopSequence),
            ("tool_use", StopReason::ToolUse),
            ("pause_turn", StopReason::PauseTurn),
            ("refusal", StopReason::Refusal),
            (
                "model_context_window_exceeded",
                StopReason::Other("model_context_window_exceeded".into()),
            ),
        ] {
            assert_eq!(round_trip::<StopReason>(&json!(text).to_string())?, reason);
            assert_eq!(reason.as_str(), text);
        }
        let msg: MessagesResponse = round_trip(
            r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi"}],
            "model":"claude-haiku-4-5","stop_reason":"stop_sequence","stop_sequence":"\n\nHuman:",
            "usage":{"input_tokens":10,"output_tokens":2}}"#,
        )?;
        assert_eq!(msg.stop_sequence.as_deref(), Some("\n\nHuman:"));
        Ok(())
    }

    #[test]
    fn built_response_serialises_like_the_reference() -> Result<(), serde_json::Error> {
        let msg = MessagesResponse::new(
            "msg_1",
            "claude-haiku-4-5",
            vec![ContentBlock::text("Hi")],
            Some(StopReason::EndTurn),
            Usage::new(10, 2),
        );
        assert_eq!(
            serde_json::to_value(&msg)?,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                   "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                   "stop_sequence": null, "usage": {"input_tokens": 10, "output_tokens": 2}})
        );
        Ok(())
    }

    #[test]
    fn count_tokens_response_round_trips() -> Result<(), serde_json::Error> {
        let r: CountTokensResponse = round_trip(r#"{"input_tokens":2095}"#)?;
        assert_eq!(r, CountTokensResponse::new(2095));
        Ok(())
    }

    #[test]
    fn errors_round_trip_and_map_statuses() -> Result<(), serde_json::Error> {
        let cases = [
            ("invalid_request_error", ErrorType::InvalidRequest, 400),
            ("authentication_error", ErrorType::Authentication, 401),
            ("permission_error", ErrorType::Permission, 403),
            ("not_found_error", ErrorType::NotFound, 404),
            ("request_too_large", ErrorType::RequestTooLarge, 413),
            ("rate_limit_error", ErrorType::RateLimit, 429),
            ("api_error", ErrorType::Api, 500),
            ("overloaded_error", ErrorType::Overloaded, 529),
        ];
        for (text, kind, status) in cases {
            let body = json!({"type": "error", "error": {"type": text, "message": "m"},
                              "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
            .to_string();
            let err: ErrorResponse = round_trip(&body)?;
            assert_eq!((&err.error.kind, err.status()), (&kind, status));
            assert_eq!(ErrorType::for_status(status), kind);
        }
        let later: ErrorResponse =
            round_trip(r#"{"type":"error","error":{"type":"billing_error","message":"m"}}"#)?;
        assert_eq!(
            later.error.kind,
            ErrorType::Other("billing_error".to_owned())
        );
        assert_eq!(ErrorType::for_status(422), ErrorType::InvalidRequest);
        assert_eq!(ErrorType::for_status(503), ErrorType::Overloaded);
        assert_eq!(ErrorType::for_status(504), ErrorType::Api);
        let own = ErrorResponse::for_status(429, "Rate limited");
        assert_eq!(
            serde_json::to_value(&own)?,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}})
        );
        assert!(!format!("{own:?}").contains("Rate limited"));
        Ok(())
    }
}

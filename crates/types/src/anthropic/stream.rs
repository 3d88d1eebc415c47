//! Stream events (`"stream": true`): each server-sent event's data is one [`StreamEvent`], and
//! its SSE event name is the event's `type`.
//!
//! A stream is `message_start`; for each content block a `content_block_start`, its
//! `content_block_delta`s and a `content_block_stop`; one or more `message_delta`s; then
//! `message_stop`. `ping`s may come anywhere, an `error` may end it, and the reference warns
//! that new event types may appear: they read as [`StreamEvent::Other`].

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde::de::MapAccess;
use serde_json::value::RawValue;

use super::{ContentBlock, ErrorDetail, MessagesResponse, StopReason, Tagged, Untyped};
use crate::raw::RawFields;

/// One event of a stream, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message, with empty `content`, its input usage and a null `stop_reason`.
    MessageStart {
        message: Box<MessagesResponse>,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// A block begins at `index` of the message's content (empty text, `tool_use` with an
    /// empty `input`, empty thinking, ...).
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// More of the block at `index`.
    ContentBlockDelta {
        index: u32,
        delta: ContentDelta,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// The block at `index` is complete.
    ContentBlockStop {
        index: u32,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// Message-level changes: the stop reason, and the usage so far (cumulative).
    MessageDelta {
        delta: MessageDelta,
        usage: DeltaUsage,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// The end of the stream.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// A failure after the stream began (e.g. `overloaded_error`); the HTTP status was 200.
    Error {
        error: ErrorDetail,
        #[serde(flatten)]
        extra: RawFields,
    },
    /// An event type this crate does not know, kept as received.
    #[serde(untagged)]
    Other(Untyped),
}

impl StreamEvent {
    /// The event's `type`, which is also its SSE event name.
    pub fn event_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::Other(raw) => return Cow::Owned(raw.kind().unwrap_or_default()),
        })
    }
}

impl Tagged for StreamEvent {
    const EXPECTING: &'static str = "a stream event object";

    fn variant<'de, A: MapAccess<'de>>(tag: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "message_start" => read_fields!(map => Self::MessageStart {
                required { message: Box<MessagesResponse> = "message" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "content_block_start" => read_fields!(map => Self::ContentBlockStart {
                required { index: u32 = "index", content_block: ContentBlock = "content_block" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "content_block_delta" => read_fields!(map => Self::ContentBlockDelta {
                required { index: u32 = "index", delta: ContentDelta = "delta" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "content_block_stop" => read_fields!(map => Self::ContentBlockStop {
                required { index: u32 = "index" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "message_delta" => read_fields!(map => Self::MessageDelta {
                required { delta: MessageDelta = "delta" }
                defaulted { usage: DeltaUsage = "usage" }
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            "message_stop" => read_fields!(map => Self::MessageStop {
                required {}
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "ping" => read_fields!(map => Self::Ping {
                required {}
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "error" => read_fields!(map => Self::Error {
                required { error: ErrorDetail = "error" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
                extra: extra
            }),
            _ => return Ok(None),
        }))
    }

    fn untyped(raw: Untyped) -> Self {
        Self::Other(raw)
    }
}

deserialize_tagged!(StreamEvent);

/// The increment of a `content_block_delta`, tagged by `type`. Fields other than the typed one
/// are not kept: deltas are small, many, and fixed in shape.
#[derive(Clone, Serialize)]
#[serde(tag = "type")]
pub enum ContentDelta {
    /// More text of a `text` block.
    #[serde(rename = "text_delta")]
    Text { text: String },
    /// More of a `tool_use` block's `input`: fragments of JSON that only parse once joined.
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    /// More of a `thinking` block.
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    /// The signature of a `thinking` block, just before its `content_block_stop`.
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    /// A citation for a `text` block, kept as received.
    #[serde(rename = "citations_delta")]
    Citations { citation: Box<RawValue> },
    /// A delta type this crate does not know, kept as received.
    #[serde(untagged)]
    Other(Untyped),
}

impl Tagged for ContentDelta {
    const EXPECTING: &'static str = "a content block delta object";

    fn variant<'de, A: MapAccess<'de>>(tag: &str, map: &mut A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "text_delta" => read_fields!(map => Self::Text {
                required { text: String = "text" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "input_json_delta" => read_fields!(map => Self::InputJson {
                required { partial_json: String = "partial_json" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "thinking_delta" => read_fields!(map => Self::Thinking {
                required { thinking: String = "thinking" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "signature_delta" => read_fields!(map => Self::Signature {
                required { signature: String = "signature" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            "citations_delta" => read_fields!(map => Self::Citations {
                required { citation: Box<RawValue> = "citation" }
                defaulted {}
                optional {}
                raw {}
                reserved { "type" }
            }),
            _ => return Ok(None),
        }))
    }

    fn untyped(raw: Untyped) -> Self {
        Self::Other(raw)
    }
}

deserialize_tagged!(ContentDelta);

impl fmt::Debug for ContentDelta {
    /// The delta type only: its text is content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text { .. } => f.write_str("Text"),
            Self::InputJson { .. } => f.write_str("InputJson"),
            Self::Thinking { .. } => f.write_str("Thinking"),
            Self::Signature { .. } => f.write_str("Signature"),
            Self::Citations { .. } => f.write_str("Citations"),
            Self::Other(raw) => raw.fmt(f),
        }
    }
}

/// The `delta` of a `message_delta` event.
#[derive(Clone, Default, Serialize)]
pub struct MessageDelta {
    pub stop_reason: Option<StopReason>,
    pub stop_sequence: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl MessageDelta {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {}
            defaulted {}
            optional { stop_reason: StopReason = "stop_reason", stop_sequence: String = "stop_sequence" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

/// The `usage` of a `message_delta` event: cumulative counts. `output_tokens` is always there;
/// newer responses repeat the input and cache counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeltaUsage {
    pub output_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl DeltaUsage {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {}
            defaulted { output_tokens: u64 = "output_tokens" }
            optional {
                input_tokens: u64 = "input_tokens",
                cache_creation_input_tokens: u64 = "cache_creation_input_tokens",
                cache_read_input_tokens: u64 = "cache_read_input_tokens",
            }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

deserialize_from_map!(MessageDelta, "a message delta object");
deserialize_from_map!(DeltaUsage, "a usage object");

redacted_debug!(MessageDelta, |s, d| d
    .field("stop_reason", &s.stop_reason)
    .field("stop_sequence", &s.stop_sequence.is_some())
    .field("extra", &s.extra));

#[cfg(test)]
mod tests {
    // Reference pages: see the test module of `anthropic` (mod.rs); here Streaming Messages, whose
    // tool-use and extended-thinking example streams the first two tests follow.
    use serde_json::Value;

    use super::super::tests::round_trip;
    use super::super::{ErrorType, ThinkingBlock, ToolUseBlock, Usage};
    use super::*;

    /// The data lines of an SSE text, each with the name its `event:` line gave.
    fn events(sse: &str) -> Vec<(&str, &str)> {
        let mut name = "";
        let mut out = Vec::new();
        for line in sse.lines().map(str::trim) {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n;
            } else if let Some(data) = line.strip_prefix("data: ") {
                out.push((name, data));
            }
        }
        out
    }

    #[test]
    fn streamed_tool_use_parses_event_by_event() -> Result<(), serde_json::Error> {
        let sse = r#"
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

            event: ping
            data: {"type": "ping"}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking the weather."}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":0}

            event: content_block_start
            data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Francisco, CA\""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", \"unit\": \"fahrenheit\"}"}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":1}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

            event: message_stop
            data: {"type":"message_stop"}
        "#;
        let mut parsed = Vec::new();
        for (name, data) in events(sse) {
            let event: StreamEvent = round_trip(data)?;
            assert_eq!(event.event_type(), name);
            parsed.push(event);
        }
        assert_eq!(parsed.len(), 13);

        let StreamEvent::MessageStart { message, .. } = &parsed[0] else {
            panic!("{:?}", parsed[0]);
        };
        assert_eq!(message.id, "msg_014p7gG3wDgGV9EUtLvnow3U");
        assert!(message.content.is_empty() && message.stop_reason.is_none());
        assert_eq!(message.usage.input_tokens, 472);
        assert!(matches!(parsed[2], StreamEvent::Ping));
        assert!(matches!(&parsed[3], StreamEvent::ContentBlockDelta {
            index: 0, delta: ContentDelta::Text { text }, .. } if text == "Checking the weather."));
        assert!(matches!(&parsed[5], StreamEvent::ContentBlockStart {
            index: 1,
            content_block: ContentBlock::ToolUse(ToolUseBlock { id, name, input, .. }),
            ..
        } if id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" && name == "get_weather" && input.get() == "{}"));

        let mut json = String::new();
        for event in &parsed {
            if let StreamEvent::ContentBlockDelta {
                index: 1,
                delta: ContentDelta::InputJson { partial_json },
                ..
            } = event
            {
                json.push_str(partial_json);
            }
        }
        let input: Value = serde_json::from_str(&json)?;
        assert_eq!(input["location"], "San Francisco, CA");
        assert_eq!(input["unit"], "fahrenheit");

        assert!(matches!(
            parsed[10],
            StreamEvent::ContentBlockStop { index: 1, .. }
        ));
        let StreamEvent::MessageDelta { delta, usage, .. } = &parsed[11] else {
            panic!("{:?}", parsed[11]);
        };
        assert_eq!(delta.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(delta.stop_sequence, None);
        assert_eq!((usage.output_tokens, usage.input_tokens), (89, None));
        assert!(matches!(parsed[12], StreamEvent::MessageStop));
        Ok(())
    }

    #[test]
    fn streamed_thinking_parses_event_by_event() -> Result<(), serde_json::Error> {
        // The reference's example, which leaves `usage` out of message_start and message_delta:
        // it reads as zeros, and is written back.
        let sse = r#"
            event: message_start
            data: {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-1", "stop_reason": null, "stop_sequence": null}}

            event: content_block_start
            data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

            event: content_block_delta
            data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "27 * 453 = 27 * 400 + 27 * 53"}}

            event: content_block_delta
            data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}}

            event: content_block_stop
            data: {"type": "content_block_stop", "index": 0}

            event: content_block_start
            data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

            event: content_block_delta
            data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "12,231"}}

            event: content_block_stop
            data: {"type": "content_block_stop", "index": 1}

            event: message_delta
            data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}}

            event: message_stop
            data: {"type": "message_stop"}
        "#;
        let mut parsed = Vec::new();
        for (name, data) in events(sse) {
            let event: StreamEvent = serde_json::from_str(data)?;
            assert_eq!(event.event_type(), name);
            parsed.push(event);
        }
        assert_eq!(parsed.len(), 10);
        assert!(
            matches!(&parsed[0], StreamEvent::MessageStart { message, .. }
            if message.usage == Usage::default())
        );
        assert!(matches!(
            &parsed[1],
            StreamEvent::ContentBlockStart {
                index: 0,
                content_block: ContentBlock::Thinking(ThinkingBlock {
                    signature: None,
                    ..
                }),
                ..
            }
        ));
        assert!(matches!(&parsed[2], StreamEvent::ContentBlockDelta {
            delta: ContentDelta::Thinking { thinking }, .. } if thinking.starts_with("27 * 453")));
        assert!(matches!(&parsed[3], StreamEvent::ContentBlockDelta {
            delta: ContentDelta::Signature { signature }, .. } if signature.starts_with("EqQB")));
        assert!(
            matches!(&parsed[8], StreamEvent::MessageDelta { delta, usage, .. }
            if delta.stop_reason == Some(StopReason::EndTurn) && usage.output_tokens == 0)
        );
        let written = serde_json::to_value(&parsed[8])?;
        assert_eq!(written["usage"], serde_json::json!({"output_tokens": 0}));
        Ok(())
    }

    #[test]
    fn thinking_citations_errors_and_unknowns() -> Result<(), serde_json::Error> {
        let start: StreamEvent = round_trip(
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        )?;
        assert!(matches!(
            start,
            StreamEvent::ContentBlockStart {
                content_block: ContentBlock::Thinking(ThinkingBlock {
                    signature: None,
                    ..
                }),
                ..
            }
        ));
        for (data, check) in [
            (
                r#"{"type":"thinking_delta","thinking":"Let me see"}"#,
                "Thinking",
            ),
            (
                r#"{"type":"signature_delta","signature":"EqQBCgIYAhIM"}"#,
                "Signature",
            ),
            (
                r#"{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x",
                "document_index":0,"document_title":null,"start_char_index":0,"end_char_index":1}}"#,
                "Citations",
            ),
            (
                r#"{"type":"brand_new_delta","stuff":[1]}"#,
                "brand_new_delta",
            ),
        ] {
            let delta: ContentDelta = round_trip(data)?;
            assert!(format!("{delta:?}").contains(check), "{delta:?}");
        }

        let error: StreamEvent = round_trip(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )?;
        assert!(matches!(&error, StreamEvent::Error { error, .. }
            if error.kind == ErrorType::Overloaded && error.message == "Overloaded"));

        let delta: StreamEvent = round_trip(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null,"x":1},
            "usage":{"output_tokens":15,"input_tokens":849,"cache_creation_input_tokens":0,
            "cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":1}},
            "context_management":{"applied_edits":[]}}"#,
        )?;
        let StreamEvent::MessageDelta {
            delta,
            usage,
            extra,
        } = &delta
        else {
            panic!("{delta:?}");
        };
        assert_eq!(delta.extra.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!((usage.output_tokens, usage.input_tokens), (15, Some(849)));
        assert_eq!(usage.extra.keys().collect::<Vec<_>>(), ["server_tool_use"]);
        assert_eq!(extra.keys().collect::<Vec<_>>(), ["context_management"]);

        let unknown: StreamEvent = round_trip(r#"{"type":"message_pause","reason":{"a":1}}"#)?;
        assert_eq!(unknown.event_type(), "message_pause");
        assert!(matches!(unknown, StreamEvent::Other(_)));
        Ok(())
    }

    #[test]
    fn debug_never_prints_content() -> Result<(), serde_json::Error> {
        let canary = "SECRET-CANARY";
        let events: Vec<StreamEvent> = serde_json::from_value(serde_json::json!([
            {"type": "message_start", "message": {"id": "msg_1", "type": "message",
             "role": "assistant", "model": "m", "content": [{"type": "text", "text": canary}],
             "stop_reason": null, "stop_sequence": canary, "usage": {"input_tokens": 1}}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": canary}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": canary}},
            {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": canary}},
            {"type": "error", "error": {"type": "api_error", "message": canary}},
            {"type": "surprise", "data": canary}
        ]))?;
        let printed = format!("{events:?}");
        assert!(!printed.contains(canary), "{printed}");
        for shape in [
            "msg_1",
            "MessageDelta",
            "StopSequence",
            "Api",
            "surprise",
            "InputJson",
        ] {
            assert!(printed.contains(shape), "{shape} not in {printed}");
        }
        Ok(())
    }
}

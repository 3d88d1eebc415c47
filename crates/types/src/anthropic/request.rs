//! Request bodies: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

use serde::Serialize;
use serde::de::MapAccess;
use serde_json::value::RawValue;

use super::{CacheControl, Content, Role};
use crate::raw::RawFields;

/// `POST /v1/messages`. The fields of the reference are typed; any other is kept in `extra` and
/// written back as received.
#[derive(Clone, Serialize)]
pub struct MessagesRequest {
    pub model: String,
    pub max_tokens: u64,
    pub messages: Vec<Message>,
    /// A string, or an array of `text` blocks (which may carry `cache_control`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl MessagesRequest {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {
                model: String = "model",
                max_tokens: u64 = "max_tokens",
                messages: Vec<Message> = "messages",
            }
            defaulted {}
            optional {
                system: Content = "system",
                tools: Vec<Tool> = "tools",
                tool_choice: ToolChoice = "tool_choice",
                temperature: f64 = "temperature",
                top_p: f64 = "top_p",
                top_k: u64 = "top_k",
                stop_sequences: Vec<String> = "stop_sequences",
                stream: bool = "stream",
                metadata: Metadata = "metadata",
                thinking: Thinking = "thinking",
            }
            raw {}
            reserved {}
            extra: extra
        }))
    }

    /// Whether the client asked for a stream of events.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }
}

/// `POST /v1/messages/count_tokens`: what a [`MessagesRequest`] would send, without the fields
/// that only shape generation (`max_tokens`, `stream`, sampling).
#[derive(Clone, Serialize)]
pub struct CountTokensRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl CountTokensRequest {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { model: String = "model", messages: Vec<Message> = "messages" }
            defaulted {}
            optional {
                system: Content = "system",
                tools: Vec<Tool> = "tools",
                tool_choice: ToolChoice = "tool_choice",
                thinking: Thinking = "thinking",
            }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

/// One turn of the conversation.
#[derive(Clone, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: Content,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl Message {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { role: Role = "role", content: Content = "content" }
            defaulted {}
            optional {}
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

/// A tool the model may call. A client tool has a `name`, a `description` and an `input_schema`
/// (a JSON Schema, kept as received); a server tool (web search, code execution, ...) has a
/// versioned `type` and its own settings, kept in `extra`.
#[derive(Clone, Serialize)]
pub struct Tool {
    /// Absent (or `"custom"`) for a client tool; the server tool's type otherwise.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl Tool {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { name: String = "name" }
            defaulted {}
            optional {
                kind: String = "type",
                description: String = "description",
                input_schema: Box<RawValue> = "input_schema",
                cache_control: CacheControl = "cache_control",
            }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

string_enum! {
    /// How the model may use the tools: `auto` (it decides), `any` (some tool), `tool` (the one
    /// named), `none` (no tool).
    ToolChoiceType {
        Auto = "auto",
        Any = "any",
        Tool = "tool",
        None = "none",
    }
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolChoiceType,
    /// The tool to call, with [`ToolChoiceType::Tool`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most one tool call (not with `none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl ToolChoice {
    fn of(kind: ToolChoiceType, name: Option<String>) -> Self {
        Self {
            kind,
            name,
            disable_parallel_tool_use: None,
            extra: RawFields::new(),
        }
    }

    pub fn auto() -> Self {
        Self::of(ToolChoiceType::Auto, None)
    }

    pub fn any() -> Self {
        Self::of(ToolChoiceType::Any, None)
    }

    pub fn none() -> Self {
        Self::of(ToolChoiceType::None, None)
    }

    pub fn tool(name: impl Into<String>) -> Self {
        Self::of(ToolChoiceType::Tool, Some(name.into()))
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { kind: ToolChoiceType = "type" }
            defaulted {}
            optional { name: String = "name", disable_parallel_tool_use: bool = "disable_parallel_tool_use" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

string_enum! {
    /// Whether extended thinking is on.
    ThinkingType {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

/// `thinking`: extended thinking, `{"type":"enabled","budget_tokens":N}` or
/// `{"type":"disabled"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: ThinkingType,
    /// Tokens the model may think with (at least 1024, less than `max_tokens`), when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl Thinking {
    pub fn enabled(budget_tokens: u64) -> Self {
        Self {
            kind: ThinkingType::Enabled,
            budget_tokens: Some(budget_tokens),
            extra: RawFields::new(),
        }
    }

    pub fn disabled() -> Self {
        Self {
            kind: ThinkingType::Disabled,
            budget_tokens: None,
            extra: RawFields::new(),
        }
    }

    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required { kind: ThinkingType = "type" }
            defaulted {}
            optional { budget_tokens: u64 = "budget_tokens" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

/// `metadata`: about the request, not for the model.
#[derive(Clone, Serialize)]
pub struct Metadata {
    /// An opaque id of the end user (a UUID or hash, never a name or address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(flatten)]
    pub extra: RawFields,
}

impl Metadata {
    fn from_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Self, A::Error> {
        Ok(read_fields!(map => Self {
            required {}
            defaulted {}
            optional { user_id: String = "user_id" }
            raw {}
            reserved {}
            extra: extra
        }))
    }
}

deserialize_from_map!(MessagesRequest, "a messages request object");
deserialize_from_map!(CountTokensRequest, "a count_tokens request object");
deserialize_from_map!(Message, "a message object");
deserialize_from_map!(Tool, "a tool object");
deserialize_from_map!(ToolChoice, "a tool_choice object");
deserialize_from_map!(Thinking, "a thinking object");
deserialize_from_map!(Metadata, "a metadata object");

redacted_debug!(MessagesRequest, |s, d| d
    .field("model", &s.model)
    .field("max_tokens", &s.max_tokens)
    .field("messages", &s.messages)
    .field("system", &s.system)
    .field("tools", &s.tools)
    .field("tool_choice", &s.tool_choice)
    .field("stop_sequences", &s.stop_sequences.as_ref().map(Vec::len))
    .field("stream", &s.stream)
    .field("metadata", &s.metadata.is_some())
    .field("thinking", &s.thinking)
    .field("extra", &s.extra));
redacted_debug!(CountTokensRequest, |s, d| d
    .field("model", &s.model)
    .field("messages", &s.messages)
    .field("system", &s.system)
    .field("tools", &s.tools)
    .field("tool_choice", &s.tool_choice)
    .field("thinking", &s.thinking)
    .field("extra", &s.extra));
redacted_debug!(Message, |s, d| d
    .field("role", &s.role)
    .field("content", &s.content));
redacted_debug!(Tool, |s, d| d
    .field("kind", &s.kind)
    .field("name", &s.name)
    .field("cache_control", &s.cache_control));
redacted_debug!(Metadata, |s, d| d.field("extra", &s.extra));

#[cfg(test)]
mod tests {
    // Reference pages: see the test module of `anthropic` (mod.rs); here Create a Message (request
    // body) and Count tokens.
    use serde_json::json;

    use super::super::tests::round_trip;
    use super::super::{ContentBlock, ImageSource};
    use super::*;

    #[test]
    fn full_request_round_trips() -> Result<(), serde_json::Error> {
        let req: MessagesRequest = round_trip(
            r#"{
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Need the tool.", "signature": "EqQB"},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "15 C", "is_error": false},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
                ]}
            ],
            "tools": [
                {"name": "get_weather", "description": "Weather of a city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                  "required": ["city"]},
                 "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "temperature": 0.7, "top_p": 0.9, "top_k": 40,
            "stop_sequences": ["\n\nHuman:"],
            "stream": true,
            "metadata": {"user_id": "u-123"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "service_tier": "auto",
            "vendor_flag": {"a": [1, 2]}
        }"#,
        )?;
        assert_eq!(
            (req.model.as_str(), req.max_tokens),
            ("claude-sonnet-4-5", 1024)
        );
        assert!(req.is_stream());
        assert_eq!(req.messages.len(), 3);
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert!(matches!(&req.messages[0].content, Content::Text(t) if t.contains("Paris")));
        let Content::Blocks(blocks) = &req.messages[2].content else {
            panic!("{:?}", req.messages[2]);
        };
        assert!(matches!(&blocks[0], ContentBlock::ToolResult(r) if r.tool_use_id == "toolu_01"));
        assert!(matches!(&blocks[1], ContentBlock::Image(i)
            if matches!(&i.source, ImageSource::Base64 { media_type, .. } if media_type == "image/jpeg")));
        let Some(Content::Blocks(system)) = &req.system else {
            panic!("{:?}", req.system);
        };
        assert!(matches!(&system[0], ContentBlock::Text(t) if t.cache_control.is_some()));
        let tools = req.tools.as_deref().unwrap_or_default();
        assert_eq!(tools[0].name, "get_weather");
        assert!(tools[0].input_schema.is_some() && tools[0].kind.is_none());
        assert_eq!(tools[1].kind.as_deref(), Some("web_search_20250305"));
        assert_eq!(tools[1].extra.get_as::<u32>("max_uses"), Some(3));
        let choice = req.tool_choice.as_ref();
        assert_eq!(choice.map(|c| &c.kind), Some(&ToolChoiceType::Auto));
        assert_eq!(choice.and_then(|c| c.disable_parallel_tool_use), Some(true));
        assert_eq!(
            (req.temperature, req.top_p, req.top_k),
            (Some(0.7), Some(0.9), Some(40))
        );
        assert_eq!(
            req.stop_sequences.as_deref(),
            Some(&["\n\nHuman:".to_owned()][..])
        );
        assert_eq!(
            req.metadata.and_then(|m| m.user_id).as_deref(),
            Some("u-123")
        );
        assert_eq!(req.thinking, Some(Thinking::enabled(2048)));
        assert_eq!(
            req.extra.keys().collect::<Vec<_>>(),
            ["service_tier", "vendor_flag"]
        );
        Ok(())
    }

    #[test]
    fn tool_choice_and_thinking_forms() -> Result<(), serde_json::Error> {
        assert_eq!(
            round_trip::<ToolChoice>(r#"{"type":"any"}"#)?,
            ToolChoice::any()
        );
        assert_eq!(
            round_trip::<ToolChoice>(r#"{"type":"none"}"#)?,
            ToolChoice::none()
        );
        assert_eq!(
            round_trip::<ToolChoice>(r#"{"type":"tool","name":"f"}"#)?,
            ToolChoice::tool("f")
        );
        let later = round_trip::<ToolChoice>(r#"{"type":"later","x":1}"#)?;
        assert_eq!(later.kind, ToolChoiceType::Other("later".to_owned()));
        assert_eq!(
            round_trip::<Thinking>(r#"{"type":"disabled"}"#)?,
            Thinking::disabled()
        );
        let adaptive = round_trip::<Thinking>(r#"{"type":"adaptive"}"#)?;
        assert_eq!(adaptive.kind.as_str(), "adaptive");
        assert_eq!(
            serde_json::to_value(ToolChoice::auto())?,
            json!({"type": "auto"})
        );
        Ok(())
    }

    #[test]
    fn required_fields_and_roles_are_checked() {
        let missing = serde_json::from_str::<MessagesRequest>(r#"{"model":"m","messages":[]}"#);
        assert!(missing.is_err_and(|e| e.to_string().contains("max_tokens")));
        let role = serde_json::from_value::<MessagesRequest>(json!({"model": "m", "max_tokens": 1,
            "messages": [{"role": "system", "content": "x"}]}));
        assert!(role.is_err());
    }

    #[test]
    fn count_tokens_request_round_trips() -> Result<(), serde_json::Error> {
        let req: CountTokensRequest = round_trip(
            r#"{"model":"claude-sonnet-4-5","system":"Be brief.",
            "messages":[{"role":"user","content":"Hello, Claude"}],
            "tools":[{"name":"f","input_schema":{"type":"object"}}],
            "thinking":{"type":"enabled","budget_tokens":1024},"mcp_servers":[]}"#,
        )?;
        assert_eq!(req.messages.len(), 1);
        assert!(matches!(req.system, Some(Content::Text(_))));
        assert_eq!(req.extra.keys().collect::<Vec<_>>(), ["mcp_servers"]);
        Ok(())
    }

    #[test]
    fn debug_never_prints_content() -> Result<(), serde_json::Error> {
        let canary = "SECRET-CANARY";
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 16,
            "system": [{"type": "text", "text": canary}],
            "messages": [
                {"role": "user", "content": canary},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": canary, "signature": canary},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"q": canary}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": canary}]},
                    {"type": "image", "source": {"type": "url", "url": canary}},
                    {"type": "unknown_block", "payload": canary}]}
            ],
            "tools": [{"name": "get_weather", "description": canary, "input_schema": {"description": canary}}],
            "tool_choice": {"type": "tool", "name": "get_weather"},
            "stop_sequences": [canary],
            "metadata": {"user_id": canary},
            "vendor_flag": canary
        }))?;
        let printed = format!("{req:?}");
        assert!(!printed.contains(canary), "{printed}");
        for shape in [
            "claude-sonnet-4-5",
            "Assistant",
            "toolu_01",
            "get_weather",
            "vendor_flag",
        ] {
            assert!(printed.contains(shape), "{shape} not in {printed}");
        }
        Ok(())
    }
}

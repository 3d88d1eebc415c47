//! Anthropic's Messages API as a wire mock: `POST /v1/messages` with `x-api-key` and
//! `anthropic-version`, answered with a message object or a whole SSE stream of named events
//! (`message_start`, `ping`, content blocks with `text_delta` and `input_json_delta` fragments,
//! `message_delta`, `message_stop`), and errors as `{"type":"error","error":{..}}` bodies with
//! Anthropic's statuses (429, 529, 400 "prompt is too long", ...).
//!
//! Anthropic reports a content refusal not as an error but as a complete message with
//! `stop_reason: "refusal"`, so [`CannedError::ContentFiltered`] renders that way (status 200).
//! Anthropic has no separate reasoning token count: `CannedUsage::reasoning` is part of
//! `output_tokens` and is not rendered on its own.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Canned, CannedError, Finish, ProviderWire, Seen, SeenMessage, SeenPart};
use crate::upstream::{Recorded, Reply, SseEnd};

/// The mock, expecting `api_key` and `version` on every request.
#[derive(Debug, Clone)]
pub struct AnthropicWire {
    pub api_key: String,
    pub version: String,
}

impl Default for AnthropicWire {
    fn default() -> Self {
        Self {
            api_key: "sk-ant-wire-secret-0001".to_owned(),
            version: "2023-06-01".to_owned(),
        }
    }
}

/// The id every canned message carries.
pub const MESSAGE_ID: &str = "msg_01XFDUDYJgAACzvnptvVoYEL";

impl AnthropicWire {
    /// `canned` as an Anthropic message object.
    pub fn message(&self, canned: &Canned) -> Value {
        let mut content = Vec::new();
        if let Some(text) = &canned.text {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in &canned.tool_calls {
            content.push(json!({"type": "tool_use", "id": call.id, "name": call.name,
                "input": call.arguments}));
        }
        let (stop_reason, stop_sequence) = stop(canned.finish);
        json!({
            "id": MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": canned.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage(canned, canned.usage.output),
        })
    }

    /// `canned` as the (event name, data) pairs of an Anthropic stream: text in three
    /// fragments, each tool call's input in fragments of a few characters.
    pub fn events(&self, canned: &Canned) -> Vec<(&'static str, Value)> {
        let mut start = self.message(canned);
        start["content"] = json!([]);
        start["stop_reason"] = Value::Null;
        start["stop_sequence"] = Value::Null;
        start["usage"] = usage(canned, 1);
        let mut events = vec![
            (
                "message_start",
                json!({"type": "message_start", "message": start}),
            ),
            ("ping", json!({"type": "ping"})),
        ];
        let mut index = 0;
        if let Some(text) = &canned.text {
            events.push(block_start(index, json!({"type": "text", "text": ""})));
            for piece in split(text, text.chars().count().div_ceil(3).max(1)) {
                events.push(block_delta(
                    index,
                    json!({"type": "text_delta", "text": piece}),
                ));
            }
            events.push(block_stop(index));
            index += 1;
        }
        for call in &canned.tool_calls {
            events.push(block_start(
                index,
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}),
            ));
            events.push(block_delta(
                index,
                json!({"type": "input_json_delta", "partial_json": ""}),
            ));
            for piece in split(&call.arguments.to_string(), 7) {
                events.push(block_delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": piece}),
                ));
            }
            events.push(block_stop(index));
            index += 1;
        }
        let (stop_reason, stop_sequence) = stop(canned.finish);
        events.push((
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {"output_tokens": canned.usage.output}}),
        ));
        events.push(("message_stop", json!({"type": "message_stop"})));
        events
    }

    /// A stream that begins `canned` (its start and first text fragment) and then fails with an
    /// in-stream `error` event of `kind` (`overloaded_error`, ...).
    pub fn stream_error(&self, canned: &Canned, kind: &str, message: &str) -> Reply {
        let mut events: Vec<_> = self
            .events(canned)
            .into_iter()
            .filter(|(name, _)| *name != "ping")
            .take(3)
            .collect();
        events.push((
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ));
        sse(&events, SseEnd::Close)
    }

    /// The error body Anthropic sends for `kind` and `message`.
    pub fn error_body(kind: &str, message: &str) -> Value {
        json!({"type": "error", "error": {"type": kind, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
    }
}

/// A streamed reply of named events, framed as Anthropic frames them.
pub fn sse(events: &[(&str, Value)], end: SseEnd) -> Reply {
    Reply::Stream {
        status: 200,
        content_type: "text/event-stream; charset=utf-8",
        chunks: events
            .iter()
            .map(|(name, data)| Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
            .collect(),
        delay: Duration::from_millis(1),
        end,
    }
}

fn usage(canned: &Canned, output: u64) -> Value {
    let u = canned.usage;
    json!({
        "input_tokens": u.input.saturating_sub(u.cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
        "output_tokens": output,
    })
}

fn stop(finish: Finish) -> (&'static str, Value) {
    match finish {
        Finish::EndTurn => ("end_turn", Value::Null),
        Finish::MaxTokens => ("max_tokens", Value::Null),
        Finish::StopSequence => ("stop_sequence", json!("</answer>")),
        Finish::ToolUse => ("tool_use", Value::Null),
        Finish::ContentFilter => ("refusal", Value::Null),
    }
}

fn block_start(index: u32, block: Value) -> (&'static str, Value) {
    (
        "content_block_start",
        json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn block_delta(index: u32, delta: Value) -> (&'static str, Value) {
    (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: u32) -> (&'static str, Value) {
    (
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

/// `text` in pieces of `n` characters.
fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

impl ProviderWire for AnthropicWire {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn provider_yaml(&self, base_url: &str) -> String {
        format!(
            r#"{{ type: anthropic, base_url: "{base_url}", api_key: "{}", version: "{}" }}"#,
            self.api_key, self.version
        )
    }

    fn reply(&self, canned: &Canned, stream: bool) -> Reply {
        if stream {
            sse(&self.events(canned), SseEnd::Close)
        } else {
            Reply::json(200, self.message(canned))
        }
    }

    fn error(&self, error: CannedError) -> Reply {
        let (status, kind, message) = match error {
            CannedError::RateLimited => (
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            CannedError::Overloaded => (529, "overloaded_error", "Overloaded"),
            CannedError::ContextTooLong => (
                400,
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum",
            ),
            CannedError::ContentFiltered => {
                return Reply::json(
                    200,
                    json!({"id": MESSAGE_ID, "type": "message", "role": "assistant",
                        "model": "claude-sonnet-4-5", "content": [], "stop_reason": "refusal",
                        "stop_sequence": null,
                        "usage": {"input_tokens": 10, "output_tokens": 0}}),
                );
            }
            CannedError::Auth => (401, "authentication_error", "invalid x-api-key"),
            CannedError::BadRequest => (
                400,
                "invalid_request_error",
                "temperature: Input should be less than or equal to 1",
            ),
            CannedError::Server => (500, "api_error", "Internal server error"),
        };
        Reply::json(status, Self::error_body(kind, message))
    }

    fn seen(&self, request: &Recorded) -> Result<Seen, String> {
        if request.method != "POST" || request.path != "/v1/messages" {
            return Err(format!(
                "expected POST /v1/messages, got {} {}",
                request.method, request.path
            ));
        }
        let header = |name: &str| request.headers.get(name).map(String::as_str);
        if header("x-api-key") != Some(self.api_key.as_str()) {
            return Err("x-api-key is missing or wrong".into());
        }
        if header("anthropic-version") != Some(self.version.as_str()) {
            return Err(format!(
                "anthropic-version is {:?}, expected {}",
                header("anthropic-version"),
                self.version
            ));
        }
        if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
            return Err("content-type is not application/json".into());
        }
        if header("authorization").is_some() {
            return Err("an Authorization header was sent beside x-api-key".into());
        }
        read_body(&request.body)
    }
}

/// Reads a Messages request body into a [`Seen`], checking what Anthropic would reject.
fn read_body(body: &Value) -> Result<Seen, String> {
    let model = body["model"].as_str().ok_or("model is missing")?.to_owned();
    let max_tokens = body["max_tokens"]
        .as_u64()
        .ok_or("max_tokens is missing (Anthropic requires it)")?;
    let system = match &body["system"] {
        Value::Null => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| match (&b["type"], &b["text"]) {
                (Value::String(t), Value::String(text)) if t == "text" && !text.is_empty() => {
                    Ok(text.clone())
                }
                _ => Err(format!("system block {b} is not a non-empty text block")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("system is {other}")),
    };
    let mut messages = Vec::new();
    let mut last_role = None;
    for message in body["messages"].as_array().ok_or("messages is missing")? {
        let role = message["role"].as_str().ok_or("a message has no role")?;
        if !matches!(role, "user" | "assistant") {
            return Err(format!("role {role} is not user or assistant"));
        }
        if last_role == Some(role) {
            return Err(format!("two {role} messages in a row"));
        }
        last_role = Some(role);
        let parts = match &message["content"] {
            Value::String(text) => vec![SeenPart::Text(text.clone())],
            Value::Array(blocks) => blocks.iter().map(part).collect::<Result<_, _>>()?,
            other => return Err(format!("message content is {other}")),
        };
        if parts.is_empty() {
            return Err("a message without content".into());
        }
        messages.push(SeenMessage {
            role: role.to_owned(),
            parts,
        });
    }
    let tools = match &body["tools"] {
        Value::Null => Vec::new(),
        Value::Array(tools) => tools
            .iter()
            .map(|t| {
                if !t["input_schema"].is_object() {
                    return Err(format!("tool {} has no input_schema object", t["name"]));
                }
                t["name"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "a tool without a name".to_owned())
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("tools is {other}")),
    };
    let json_mode = system
        .iter()
        .any(|s| s.starts_with("Respond with a single valid JSON"));
    Ok(Seen {
        model,
        stream: body["stream"].as_bool().unwrap_or(false),
        system,
        messages,
        tools,
        json_mode,
        max_tokens: Some(max_tokens),
        temperature: body["temperature"].as_f64(),
        stop: body["stop_sequences"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn part(block: &Value) -> Result<SeenPart, String> {
    let kind = block["type"].as_str().unwrap_or("");
    Ok(match kind {
        "text" => {
            let text = block["text"].as_str().ok_or("a text block without text")?;
            if text.is_empty() {
                return Err("an empty text block (Anthropic rejects them)".into());
            }
            SeenPart::Text(text.to_owned())
        }
        "image" => {
            let source = &block["source"];
            match source["type"].as_str() {
                Some("base64") => SeenPart::Image(format!(
                    "data:{};base64,{}",
                    source["media_type"]
                        .as_str()
                        .ok_or("an image without media_type")?,
                    source["data"].as_str().ok_or("an image without data")?
                )),
                Some("url") => {
                    SeenPart::Image(source["url"].as_str().ok_or("an image without url")?.into())
                }
                other => return Err(format!("image source type {other:?}")),
            }
        }
        "tool_use" => {
            if !block["input"].is_object() {
                return Err("tool_use input is not an object".into());
            }
            SeenPart::ToolCall {
                id: block["id"].as_str().ok_or("tool_use without id")?.into(),
                name: block["name"]
                    .as_str()
                    .ok_or("tool_use without name")?
                    .into(),
                arguments: block["input"].clone(),
            }
        }
        "tool_result" => SeenPart::ToolResult {
            id: block["tool_use_id"]
                .as_str()
                .ok_or("tool_result without tool_use_id")?
                .into(),
            content: match &block["content"] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
                other => return Err(format!("tool_result content is {other}")),
            },
        },
        other => return Err(format!("unexpected block type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{CannedCall, CannedUsage};
    use super::*;

    fn canned() -> Canned {
        Canned {
            model: "claude-up".into(),
            text: Some("Hello there, world".into()),
            tool_calls: vec![CannedCall {
                id: "toolu_1".into(),
                name: "get".into(),
                arguments: json!({"city": "Oslo", "n": 2}),
            }],
            finish: Finish::ToolUse,
            usage: CannedUsage {
                input: 30,
                output: 9,
                cached: 10,
                reasoning: 0,
            },
        }
    }

    #[test]
    fn streams_rebuild_the_message() {
        let wire = AnthropicWire::default();
        let events = wire.events(&canned());
        assert_eq!(events[0].0, "message_start");
        assert!(events.iter().any(|(n, _)| *n == "ping"));
        assert_eq!(events.last().map(|e| e.0), Some("message_stop"));
        let mut text = String::new();
        let mut args = String::new();
        for (name, data) in &events {
            assert_eq!(data["type"], *name);
            match data["delta"]["type"].as_str() {
                Some("text_delta") => text.push_str(data["delta"]["text"].as_str().unwrap()),
                Some("input_json_delta") => {
                    args.push_str(data["delta"]["partial_json"].as_str().unwrap());
                }
                _ => {}
            }
        }
        let message = wire.message(&canned());
        assert_eq!(message["content"][0]["text"], text);
        assert_eq!(
            serde_json::from_str::<Value>(&args).unwrap(),
            message["content"][1]["input"]
        );
        assert_eq!(message["usage"]["input_tokens"], 20);
        assert_eq!(message["usage"]["cache_read_input_tokens"], 10);
        assert_eq!(message["stop_reason"], "tool_use");
    }

    #[test]
    fn seen_checks_headers_and_reads_the_body() {
        let wire = AnthropicWire::default();
        let body = json!({"model": "m", "max_tokens": 10, "system": "be brief",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}], "stop_sequences": ["x"]});
        let mut request = Recorded {
            method: "POST".into(),
            path: "/v1/messages".into(),
            query: String::new(),
            headers: [
                ("x-api-key", wire.api_key.as_str()),
                ("anthropic-version", "2023-06-01"),
                ("content-type", "application/json"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            raw_body: Bytes::from(body.to_string()),
            body,
        };
        let seen = wire.seen(&request).unwrap();
        assert_eq!(seen.system, ["be brief"]);
        assert_eq!(seen.messages.len(), 3);
        assert_eq!(
            seen.messages[0].parts[1],
            SeenPart::Image("data:image/png;base64,AA".into())
        );
        assert_eq!(seen.tools, ["f"]);
        assert_eq!(seen.stop, ["x"]);
        request.headers.remove("anthropic-version");
        assert!(wire.seen(&request).is_err());
        request
            .headers
            .insert("anthropic-version".into(), "2023-06-01".into());
        request.body["messages"][1]["role"] = json!("user");
        assert!(wire.seen(&request).unwrap_err().contains("in a row"));
    }
}

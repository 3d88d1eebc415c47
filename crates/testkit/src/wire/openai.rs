//! OpenAI's chat completions wire format (and every OpenAI-compatible server's), for the
//! conformance matrix's Anthropic-inbound pairs. Shapes follow OpenAI's API reference for
//! `POST /v1/chat/completions`: the `chat.completion` object, `chat.completion.chunk` streams
//! with tool calls in argument fragments and a final usage chunk, and the error object.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Canned, CannedError, Finish, ProviderWire, Seen, SeenMessage, SeenPart};
use crate::upstream::{Recorded, Reply, SseEnd};

/// The provider key the gateway must send.
pub const API_KEY: &str = "sk-conformance-openai";

/// An OpenAI-compatible server.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiWire;

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::EndTurn | Finish::StopSequence => "stop",
        Finish::MaxTokens => "length",
        Finish::ToolUse => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

fn usage(canned: &Canned) -> Value {
    let u = canned.usage;
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

fn chunk(canned: &Canned, delta: Value, finish: Option<&str>) -> String {
    json!({"id": "chatcmpl-conf", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": canned.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

impl ProviderWire for OpenAiWire {
    fn name(&self) -> &'static str {
        "openai_compatible"
    }

    fn provider_yaml(&self, base_url: &str) -> String {
        format!(r#"{{ type: openai_compatible, base_url: "{base_url}/v1", api_key: "{API_KEY}" }}"#)
    }

    fn reply(&self, canned: &Canned, stream: bool) -> Reply {
        if !stream {
            let calls: Vec<Value> = canned
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                })
                .collect();
            let mut message = json!({"role": "assistant", "content": canned.text, "refusal": null});
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls);
            }
            return Reply::json(
                200,
                json!({"id": "chatcmpl-conf", "object": "chat.completion", "created": 1_700_000_000,
                    "model": canned.model, "choices": [{"index": 0, "message": message,
                    "logprobs": null, "finish_reason": finish_reason(canned.finish)}],
                    "usage": usage(canned)}),
            );
        }
        let mut events = vec![chunk(
            canned,
            json!({"role": "assistant", "content": ""}),
            None,
        )];
        if let Some(text) = &canned.text {
            // Two pieces, so that clients must join deltas.
            let mid = text
                .char_indices()
                .nth(text.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for piece in [&text[..mid], &text[mid..]] {
                events.push(chunk(canned, json!({"content": piece}), None));
            }
        }
        for (index, call) in canned.tool_calls.iter().enumerate() {
            events.push(chunk(
                canned,
                json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}]}),
                None,
            ));
            let args = call.arguments.to_string();
            let mid = args.len() / 2;
            for piece in [&args[..mid], &args[mid..]] {
                events.push(chunk(
                    canned,
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
        }
        events.push(chunk(canned, json!({}), Some(finish_reason(canned.finish))));
        events.push(
            json!({"id": "chatcmpl-conf", "object": "chat.completion.chunk",
                "created": 1_700_000_000, "model": canned.model, "choices": [],
                "usage": usage(canned)})
            .to_string(),
        );
        events.push("[DONE]".into());
        Reply::Sse {
            events,
            delay: Duration::from_millis(1),
            end: SseEnd::Close,
        }
    }

    fn error(&self, error: CannedError) -> Reply {
        let (status, kind, code, message) = match error {
            CannedError::RateLimited => (
                429,
                "requests",
                "rate_limit_exceeded",
                "Rate limit reached for requests",
            ),
            CannedError::Overloaded => (
                503,
                "server_error",
                "",
                "The server is overloaded, please try again later.",
            ),
            CannedError::ContextTooLong => (
                400,
                "invalid_request_error",
                "context_length_exceeded",
                "This model's maximum context length is 128000 tokens.",
            ),
            CannedError::ContentFiltered => (
                400,
                "invalid_request_error",
                "content_filter",
                "The response was filtered due to the prompt triggering the content management policy.",
            ),
            CannedError::Auth => (
                401,
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided.",
            ),
            CannedError::BadRequest => (
                400,
                "invalid_request_error",
                "",
                "Invalid value for 'temperature'.",
            ),
            CannedError::Server => (500, "server_error", "", "The server had an error."),
        };
        let code = if code.is_empty() {
            Value::Null
        } else {
            code.into()
        };
        Reply::json(
            status,
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        )
    }

    fn seen(&self, r: &Recorded) -> Result<Seen, String> {
        self.seen_with_key(r, API_KEY)
    }
}

impl OpenAiWire {
    /// [`ProviderWire::seen`] for a provider configured with the key `api_key` rather than
    /// [`API_KEY`] (a key the test made, such as a stored credential).
    pub fn seen_with_key(&self, r: &Recorded, api_key: &str) -> Result<Seen, String> {
        if r.method != "POST" || r.path != "/v1/chat/completions" {
            return Err(format!("unexpected {} {}", r.method, r.path));
        }
        let auth = r.headers.get("authorization").map(String::as_str);
        if auth != Some(&format!("Bearer {api_key}")) {
            return Err("missing or wrong Authorization header".into());
        }
        if !r
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err("content-type is not application/json".into());
        }
        let body = &r.body;
        let mut seen = Seen {
            model: body["model"].as_str().unwrap_or_default().to_owned(),
            stream: body["stream"] == true,
            max_tokens: body["max_completion_tokens"]
                .as_u64()
                .or_else(|| body["max_tokens"].as_u64()),
            temperature: body["temperature"].as_f64(),
            json_mode: matches!(
                body["response_format"]["type"].as_str(),
                Some("json_object" | "json_schema")
            ),
            ..Seen::default()
        };
        if seen.stream && body["stream_options"]["include_usage"] != true {
            return Err("a stream must ask for stream_options.include_usage".into());
        }
        seen.stop = match &body["stop"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        seen.tools = body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let messages = body["messages"]
            .as_array()
            .ok_or("messages is not an array")?;
        for m in messages {
            let role = m["role"].as_str().ok_or("a message has no role")?;
            match role {
                "system" | "developer" => seen.system.push(text_of(&m["content"])),
                "user" => seen.messages.push(SeenMessage {
                    role: "user".into(),
                    parts: user_parts(&m["content"])?,
                }),
                "assistant" => {
                    let mut parts = Vec::new();
                    let text = text_of(&m["content"]);
                    if !text.is_empty() {
                        parts.push(SeenPart::Text(text));
                    }
                    for call in m["tool_calls"].as_array().into_iter().flatten() {
                        let args = call["function"]["arguments"].as_str().unwrap_or("{}");
                        parts.push(SeenPart::ToolCall {
                            id: call["id"].as_str().unwrap_or_default().to_owned(),
                            name: call["function"]["name"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            arguments: serde_json::from_str(args)
                                .map_err(|_| "tool call arguments are not JSON")?,
                        });
                    }
                    seen.messages.push(SeenMessage {
                        role: "assistant".into(),
                        parts,
                    });
                }
                "tool" => seen.messages.push(SeenMessage {
                    role: "tool".into(),
                    parts: vec![SeenPart::ToolResult {
                        id: m["tool_call_id"].as_str().unwrap_or_default().to_owned(),
                        content: text_of(&m["content"]),
                    }],
                }),
                other => return Err(format!("unexpected role {other}")),
            }
        }
        Ok(seen)
    }
}

/// A content string, or the text parts of a content array joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn user_parts(content: &Value) -> Result<Vec<SeenPart>, String> {
    match content {
        Value::String(s) => Ok(vec![SeenPart::Text(s.clone())]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") => Ok(SeenPart::Text(
                    p["text"].as_str().unwrap_or_default().into(),
                )),
                Some("image_url") => Ok(SeenPart::Image(
                    p["image_url"]["url"].as_str().unwrap_or_default().into(),
                )),
                other => Err(format!("unexpected user part type {other:?}")),
            })
            .collect(),
        _ => Err("user content is neither a string nor an array".into()),
    }
}

//! Cohere v2 chat (`POST /v2/chat`) as a wire mock.
//!
//! Answers are rendered as Cohere's API reference documents them: a JSON chat response, or an
//! SSE stream whose events carry an `event:` line and a `data:` object repeating the event name
//! in `type` (`message-start`, `content-start`/`-delta`/`-end`, `tool-plan-delta`,
//! `tool-call-start`/`-delta`/`-end`, `message-end` with `finish_reason` and `usage`). When the
//! canned answer calls tools, its text is rendered as the `tool_plan` (where Cohere puts what the
//! model says before calling tools). Cohere has no content-filter finish reason: it blocks output
//! with an HTTP 498 "blocked output" error, so [`Finish::ContentFilter`] renders as that error.
//! Usage is reported in `tokens` and `billed_units`, with `cached_tokens`; Cohere reports no
//! reasoning token count.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Canned, CannedError, Finish, ProviderWire, Seen, SeenMessage, SeenPart};
use crate::upstream::{Recorded, Reply, SseEnd};

/// The API key the mock expects (`Authorization: Bearer ...`).
pub const API_KEY: &str = "co-test-key-0001";

/// The Cohere wire format.
#[derive(Debug, Clone, Copy, Default)]
pub struct CohereWire;

/// The `message` text of Cohere's 498 answer for blocked output.
const BLOCKED: &str = "blocked output: please adjust your prompt and try again, as this \
                       generation may be a potential violation of our Usage Guidelines";

/// An error answer as Cohere writes it.
fn cohere_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"id": "5b0a4c3e-0d4f-4b8e-9d7e-2f0e3c1a9b77", "message": message}),
    )
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::EndTurn | Finish::ContentFilter => "COMPLETE",
        Finish::MaxTokens => "MAX_TOKENS",
        Finish::StopSequence => "STOP_SEQUENCE",
        Finish::ToolUse => "TOOL_CALL",
    }
}

fn usage(canned: &Canned) -> Value {
    let u = canned.usage;
    json!({
        "billed_units": {"input_tokens": u.input - u.cached, "output_tokens": u.output},
        "tokens": {"input_tokens": u.input, "output_tokens": u.output},
        "cached_tokens": u.cached,
    })
}

/// Splits `text` into up to three pieces at character boundaries, as a stream would deliver it.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn event(name: &str, mut data: Value) -> Bytes {
    data["type"] = json!(name);
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl CohereWire {
    fn json(canned: &Canned) -> Value {
        let text = canned.text.clone().unwrap_or_default();
        let mut message = json!({"role": "assistant"});
        if canned.tool_calls.is_empty() {
            message["content"] = json!([{"type": "text", "text": text}]);
        } else {
            if !text.is_empty() {
                message["tool_plan"] = json!(text);
            }
            message["tool_calls"] = canned
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                })
                .collect();
        }
        json!({
            "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
            "finish_reason": finish_reason(canned.finish),
            "message": message,
            "usage": usage(canned),
        })
    }

    fn stream(canned: &Canned) -> Vec<Bytes> {
        let mut out = vec![event(
            "message-start",
            json!({"id": "29f14a5a-11de-4cae-9800-25e4747408ea", "delta": {"message": {
                "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [],
                "citations": []}}}),
        )];
        let text = canned.text.clone().unwrap_or_default();
        if canned.tool_calls.is_empty() {
            out.push(event(
                "content-start",
                json!({"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            ));
            for piece in pieces(&text) {
                out.push(event(
                    "content-delta",
                    json!({"index": 0, "delta": {"message": {"content": {"text": piece}}}}),
                ));
            }
            out.push(event("content-end", json!({"index": 0})));
        } else {
            for piece in pieces(&text).into_iter().filter(|p| !p.is_empty()) {
                out.push(event(
                    "tool-plan-delta",
                    json!({"delta": {"message": {"tool_plan": piece}}}),
                ));
            }
            for (index, call) in canned.tool_calls.iter().enumerate() {
                out.push(event(
                    "tool-call-start",
                    json!({"index": index, "delta": {"message": {"tool_calls": {
                        "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}}}}),
                ));
                for piece in pieces(&call.arguments.to_string()) {
                    out.push(event(
                        "tool-call-delta",
                        json!({"index": index, "delta": {"message": {"tool_calls": {
                            "function": {"arguments": piece}}}}}),
                    ));
                }
                out.push(event("tool-call-end", json!({"index": index})));
            }
        }
        out.push(event(
            "message-end",
            json!({"delta": {"finish_reason": finish_reason(canned.finish), "usage": usage(canned)}}),
        ));
        out
    }
}

impl ProviderWire for CohereWire {
    fn name(&self) -> &'static str {
        "cohere"
    }

    fn provider_yaml(&self, base_url: &str) -> String {
        format!(r#"{{ type: cohere, base_url: "{base_url}", api_key: "{API_KEY}" }}"#)
    }

    fn reply(&self, canned: &Canned, stream: bool) -> Reply {
        if canned.finish == Finish::ContentFilter {
            return cohere_error(498, BLOCKED);
        }
        if stream {
            Reply::Stream {
                status: 200,
                content_type: "text/event-stream",
                chunks: Self::stream(canned),
                delay: Duration::from_millis(1),
                end: SseEnd::Close,
            }
        } else {
            Reply::json(200, Self::json(canned))
        }
    }

    fn error(&self, error: CannedError) -> Reply {
        match error {
            CannedError::RateLimited => cohere_error(
                429,
                "You are past the per minute request limit, please wait and try again later.",
            ),
            CannedError::Overloaded => cohere_error(503, "service unavailable"),
            CannedError::ContextTooLong => cohere_error(
                400,
                "too many tokens: total number of tokens in the prompt cannot exceed 128000 - \
                 received 130112. Try using a shorter prompt, or enabling prompt truncating.",
            ),
            CannedError::ContentFiltered => cohere_error(498, BLOCKED),
            CannedError::Auth => cohere_error(401, "invalid api token"),
            CannedError::BadRequest => cohere_error(
                400,
                "invalid request: temperature must be between 0 and 1.0 inclusive.",
            ),
            CannedError::Server => cohere_error(500, "internal server error"),
        }
    }

    fn seen(&self, request: &Recorded) -> Result<Seen, String> {
        if request.method != "POST" || request.path != "/v2/chat" {
            return Err(format!(
                "expected POST /v2/chat, got {} {}",
                request.method, request.path
            ));
        }
        let auth = request.headers.get("authorization").map(String::as_str);
        if auth != Some(&format!("Bearer {API_KEY}")) {
            return Err("missing or wrong Authorization bearer key".into());
        }
        if request
            .headers
            .get("content-type")
            .is_none_or(|t| !t.starts_with("application/json"))
        {
            return Err("the body is not declared as JSON".into());
        }
        read_seen(&request.body)
    }
}

/// The texts of a Cohere content value (a string or items), and its images.
fn content_parts(content: &Value) -> Result<Vec<SeenPart>, String> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(vec![SeenPart::Text(text.clone())]),
        Value::Array(items) => items
            .iter()
            .filter(|item| item["type"] != "thinking")
            .map(|item| match item["type"].as_str() {
                Some("text") => item["text"]
                    .as_str()
                    .map(|t| SeenPart::Text(t.to_owned()))
                    .ok_or_else(|| "a text item without text".to_owned()),
                Some("image_url") => item["image_url"]["url"]
                    .as_str()
                    .map(|u| SeenPart::Image(u.to_owned()))
                    .ok_or_else(|| "an image_url item without url".to_owned()),
                other => Err(format!("unexpected content item type {other:?}")),
            })
            .collect(),
        _ => Err("content is neither a string nor items".into()),
    }
}

fn text_of(content: &Value) -> Result<String, String> {
    Ok(content_parts(content)?
        .into_iter()
        .filter_map(|p| match p {
            SeenPart::Text(t) => Some(t),
            _ => None,
        })
        .collect())
}

/// Reads a Cohere chat body back into a neutral [`Seen`]. Tool results (Cohere's `tool` role)
/// become [`SeenPart::ToolResult`]s of a `user` message, consecutive ones in one message.
pub fn read_seen(body: &Value) -> Result<Seen, String> {
    let mut seen = Seen {
        model: body["model"]
            .as_str()
            .ok_or("the body has no model")?
            .to_owned(),
        stream: body["stream"] == json!(true),
        json_mode: body["response_format"]["type"] == "json_object",
        max_tokens: body["max_tokens"].as_u64(),
        temperature: body["temperature"].as_f64(),
        ..Seen::default()
    };
    seen.tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect();
    seen.stop = body["stop_sequences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let messages = body["messages"]
        .as_array()
        .ok_or("the body has no messages array")?;
    for (i, message) in messages.iter().enumerate() {
        match message["role"].as_str() {
            Some("system") => {
                if i != 0 {
                    return Err("the system message must come first".into());
                }
                seen.system
                    .extend(content_parts(&message["content"])?.into_iter().filter_map(
                        |p| match p {
                            SeenPart::Text(t) => Some(t),
                            _ => None,
                        },
                    ));
            }
            Some("user") => seen.messages.push(SeenMessage {
                role: "user".into(),
                parts: content_parts(&message["content"])?,
            }),
            Some("assistant") => {
                let mut parts = content_parts(&message["content"])?;
                if let Some(plan) = message["tool_plan"].as_str() {
                    parts.push(SeenPart::Text(plan.to_owned()));
                }
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    let arguments = call["function"]["arguments"]
                        .as_str()
                        .ok_or("tool call arguments must be a JSON string")?;
                    parts.push(SeenPart::ToolCall {
                        id: call["id"].as_str().unwrap_or_default().to_owned(),
                        name: call["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        arguments: serde_json::from_str(arguments)
                            .map_err(|_| "tool call arguments are not JSON")?,
                    });
                }
                seen.messages.push(SeenMessage {
                    role: "assistant".into(),
                    parts,
                });
            }
            Some("tool") => {
                let part = SeenPart::ToolResult {
                    id: message["tool_call_id"]
                        .as_str()
                        .ok_or("a tool message without tool_call_id")?
                        .to_owned(),
                    content: text_of(&message["content"])?,
                };
                match seen.messages.last_mut() {
                    Some(last)
                        if last.role == "user"
                            && last
                                .parts
                                .iter()
                                .all(|p| matches!(p, SeenPart::ToolResult { .. })) =>
                    {
                        last.parts.push(part);
                    }
                    _ => seen.messages.push(SeenMessage {
                        role: "user".into(),
                        parts: vec![part],
                    }),
                }
            }
            other => return Err(format!("unexpected role {other:?}")),
        }
    }
    Ok(seen)
}

//! OpenAI chat completions and embeddings <-> Cohere v2 (`POST /v2/chat`, `POST /v2/embed`).
//!
//! [`chat_request`] turns an OpenAI chat request into a Cohere chat body; [`chat_response`] turns
//! Cohere's answer back into an OpenAI `chat.completion`; [`stream::ChatStream`] does the same
//! for the streamed events. [`embed_request`] and [`embed_response`] map embeddings.
//!
//! Request choices:
//! - Cohere requires the system turn to come first, so every `system` and `developer` message,
//!   wherever it appears, goes into ONE leading `system` message, in order: one is a plain
//!   string, several are one text item each. Other turns keep their order; Cohere does not
//!   require user/assistant alternation, so consecutive same-role turns are sent as they are.
//! - User content: a string stays a string; parts become `text` and `image_url` items (data URLs
//!   and http(s) URLs alike, `detail` kept). `input_audio`, `file` and unknown parts are refused
//!   (Cohere has no equivalent). The `name` of a message is dropped.
//! - Assistant turns: text and refusal parts are joined into the text. With `tool_calls`, the
//!   text becomes `tool_plan` (Cohere's place for what the model says before calling tools) and
//!   the calls are sent as `tool_calls` (empty arguments become `{}`). `reasoning_content` is sent
//!   back as a leading `thinking` item. An assistant turn left with nothing is dropped.
//! - Tool results: `{role: tool, tool_call_id, content}`; a string stays a string, text parts
//!   become text items.
//! - `tools` map one to one (`parameters` default to an empty object schema); a tool with
//!   `strict: true` sets `strict_tools: true` (Cohere applies strictness to all tools).
//! - `tool_choice`: `none` → `NONE`, `required` → `REQUIRED`, `auto` → omitted (Cohere's
//!   default). A named function has no Cohere equivalent, so it is expressed exactly: only that
//!   tool is offered, with `REQUIRED`; naming a tool that is not in `tools` is refused.
//!   `parallel_tool_calls` has no equivalent and is ignored.
//! - `response_format`: `json_object` → `{type: json_object}`; `json_schema` →
//!   `{type: json_object, json_schema: <schema>}` (Cohere enforces it; `strict` is implied);
//!   `text` → omitted.
//! - `max_completion_tokens` (else `max_tokens`) → `max_tokens`; `stop` → `stop_sequences`;
//!   `top_p` → `p`; `temperature`, `seed`, `frequency_penalty`, `presence_penalty` unchanged;
//!   Cohere's own `safety_mode`, when the client sends it, is passed on.
//! - `reasoning_effort` → `thinking`: `none` disables reasoning; `minimal`/`low` enable it with a
//!   1024-token budget, `medium` 4096, `high` 16384 (the budgets of the Anthropic translation).
//!   Without it, the model's default applies (reasoning models reason by default).
//! - `n` other than 1 is refused (Cohere returns one answer). `logprobs`, `logit_bias`, `user`,
//!   `stream_options` and other OpenAI fields are ignored (usage always comes on `message-end`).
//!
//! Response choices:
//! - Text items are joined into `message.content`; when the answer calls tools and has no text,
//!   the `tool_plan` is the content instead (it is what the model said before calling them), and
//!   content is null when there is neither. `thinking` items become `reasoning_content`.
//! - `finish_reason`: `COMPLETE` and `STOP_SEQUENCE` → `stop`, `MAX_TOKENS` → `length`,
//!   `TOOL_CALL` → `tool_calls`; `ERROR` is a provider failure and `TIMEOUT` a timeout (errors,
//!   not answers); anything else → `stop`.
//! - Usage: `usage.tokens` (what the model processed), else `usage.billed_units`;
//!   `usage.cached_tokens` → `prompt_tokens_details.cached_tokens`. Cohere reports no reasoning
//!   token count.
//! - The answer carries no model name: the deployment's upstream model is reported.
//!
//! Embedding choices: `input`, `encoding_format` and the answer's `list` are OpenAI's, read and
//! written as for every provider ([`super::embeddings`]); the strings of `input` (an empty array
//! included: Cohere judges it) → `texts`; `input_type` is `search_document` unless the request
//! carries Cohere's own `input_type` field (`search_query`, `classification`, `clustering`, ...);
//! `dimensions` → `output_dimension`; `embedding_types: ["float"]`. The vectors are passed on as
//! Cohere wrote them, or as base64 produced from the floats. Usage is
//! `meta.billed_units.input_tokens` (else `meta.tokens`).

pub mod stream;
mod types;

use portcullis_types::Usage as OpenAiUsage;
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat as OpenAiResponseFormat,
    TextContent, UserContent, UserPart,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use self::types::{
    ChatMessage, ChatRequest, ChatResponse, Content, EmbedRequest, EmbedResponse, FunctionCall,
    FunctionDef, ImageUrl, Item, ResponseFormat, Thinking, ThinkingType, Tool, ToolCall,
    ToolChoice, Usage,
};
use super::embeddings::{self, Vector};
use super::{TranslateError, extra, typed};
use crate::provider::{ProviderError, upstream};

/// Thinking budget for `reasoning_effort: minimal | low`.
pub const BUDGET_LOW: u64 = 1024;
/// Thinking budget for `reasoning_effort: medium`.
pub const BUDGET_MEDIUM: u64 = 4096;
/// Thinking budget for `reasoning_effort: high`.
pub const BUDGET_HIGH: u64 = 16384;
/// `input_type` of embeddings when the request does not name one.
pub const DEFAULT_INPUT_TYPE: &str = "search_document";

const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// Translates an OpenAI chat request into a Cohere v2 chat body for `upstream_model`; `stream`
/// asks for the SSE answer.
pub fn chat_request(
    req: &ChatCompletionRequest,
    upstream_model: &str,
    stream: bool,
) -> Result<ChatRequest, TranslateError> {
    let messages = req
        .messages_typed()
        .map_err(|_| TranslateError::InvalidField { field: "messages" })?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<ChatMessage> = Vec::with_capacity(messages.len() + 1);
    for message in messages {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.extend(text_parts(content));
            }
            Message::User { content, .. } => turns.push(ChatMessage::User {
                content: user_content(content)?,
            }),
            Message::Assistant {
                content,
                refusal,
                tool_calls,
                reasoning_content,
                ..
            } => turns.extend(assistant_turn(
                content,
                refusal,
                tool_calls,
                reasoning_content,
            )),
            Message::Tool {
                content,
                tool_call_id,
                ..
            } => turns.push(ChatMessage::Tool {
                tool_call_id,
                content: match content {
                    TextContent::Text(text) => Content::Text(text),
                    TextContent::Parts(parts) => Content::Items(
                        parts
                            .into_iter()
                            .map(|p| Item::Text { text: p.text })
                            .collect(),
                    ),
                },
            }),
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }
    if !system.is_empty() {
        let content = if system.len() == 1 {
            Content::Text(system.swap_remove(0))
        } else {
            Content::Items(system.into_iter().map(|text| Item::Text { text }).collect())
        };
        turns.insert(0, ChatMessage::System { content });
    }

    if let Some(n) = extra::<u64>(&req.extra, "n")?
        && n != 1
    {
        return Err(TranslateError::UnsupportedValue { field: "n" });
    }

    let (tools, strict_tools, tool_choice) = tools_and_choice(req)?;
    let response_format = match typed(req.response_format(), "response_format")? {
        None | Some(OpenAiResponseFormat::Text { .. }) => None,
        Some(OpenAiResponseFormat::JsonObject { .. }) => {
            Some(ResponseFormat::JsonObject { json_schema: None })
        }
        Some(OpenAiResponseFormat::JsonSchema { json_schema, .. }) => {
            Some(ResponseFormat::JsonObject {
                json_schema: json_schema.schema,
            })
        }
        Some(OpenAiResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    };
    let thinking = match extra::<String>(&req.extra, "reasoning_effort")?.as_deref() {
        None => None,
        Some("none") => Some(Thinking {
            kind: ThinkingType::Disabled,
            token_budget: None,
        }),
        Some(effort) => Some(Thinking {
            kind: ThinkingType::Enabled,
            token_budget: Some(match effort {
                "minimal" | "low" => BUDGET_LOW,
                "medium" => BUDGET_MEDIUM,
                "high" => BUDGET_HIGH,
                _ => {
                    return Err(TranslateError::UnsupportedValue {
                        field: "reasoning_effort",
                    });
                }
            }),
        }),
    };
    let stop_sequences = typed(req.stop(), "stop")?
        .map(|stop| stop.sequences().to_vec())
        .unwrap_or_default();

    Ok(ChatRequest {
        model: upstream_model.to_owned(),
        messages: turns,
        tools,
        strict_tools,
        tool_choice,
        response_format,
        safety_mode: extra(&req.extra, "safety_mode")?,
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences,
        temperature: extra(&req.extra, "temperature")?,
        seed: extra(&req.extra, "seed")?,
        frequency_penalty: extra(&req.extra, "frequency_penalty")?,
        presence_penalty: extra(&req.extra, "presence_penalty")?,
        p: extra(&req.extra, "top_p")?,
        thinking,
        stream,
    })
}

/// The texts of a system, developer or tool content, one per part.
fn text_parts(content: TextContent) -> Vec<String> {
    match content {
        TextContent::Text(text) => vec![text],
        TextContent::Parts(parts) => parts.into_iter().map(|p| p.text).collect(),
    }
}

fn user_content(content: UserContent) -> Result<Content, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(Content::Text(text)),
        UserContent::Parts(parts) => parts,
    };
    parts
        .into_iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(Item::Text { text: t.text }),
            UserPart::ImageUrl(image) => {
                let url = image.image_url.url;
                if !is_image_url(&url) {
                    return Err(TranslateError::InvalidImageUrl);
                }
                Ok(Item::ImageUrl {
                    image_url: ImageUrl {
                        url,
                        detail: image.image_url.detail,
                    },
                })
            }
            UserPart::InputAudio(_) => Err(unsupported_part("input_audio")),
            UserPart::File(_) => Err(unsupported_part("file")),
            UserPart::Other(raw) => {
                Err(unsupported_part(raw.kind().as_deref().unwrap_or("unknown")))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Content::Items)
}

/// Cohere takes base64 `data:` URLs and http(s) URLs.
fn is_image_url(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("data:") {
        return rest
            .split_once(',')
            .is_some_and(|(meta, _)| meta.ends_with(";base64") && meta.len() > ";base64".len());
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

fn unsupported_part(kind: &str) -> TranslateError {
    TranslateError::UnsupportedContentPart {
        kind: kind.chars().take(64).collect(),
    }
}

/// An assistant turn, or nothing when it carries nothing.
fn assistant_turn(
    content: Option<AssistantContent>,
    refusal: Option<String>,
    calls: Vec<openai_chat::ToolCall>,
    reasoning: Option<String>,
) -> Option<ChatMessage> {
    let mut text = match content {
        None => String::new(),
        Some(AssistantContent::Text(text)) => text,
        Some(AssistantContent::Parts(parts)) => parts
            .into_iter()
            .map(|part| match part {
                AssistantPart::Text(t) => t.text,
                AssistantPart::Refusal(r) => r.refusal,
            })
            .collect(),
    };
    if let Some(refusal) = refusal {
        text.push_str(&refusal);
    }
    let thinking = reasoning
        .filter(|r| !r.is_empty())
        .map(|thinking| Item::Thinking { thinking });
    let tool_calls: Vec<ToolCall> = calls
        .into_iter()
        .map(|call| ToolCall {
            id: call.id,
            kind: "function",
            function: FunctionCall {
                name: call.function.name,
                arguments: if call.function.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    call.function.arguments
                },
            },
        })
        .collect();
    let (text, tool_plan) = if tool_calls.is_empty() {
        (Some(text).filter(|t| !t.is_empty()), None)
    } else {
        (None, Some(text).filter(|t| !t.is_empty()))
    };
    let content = match (thinking, text) {
        (None, None) => None,
        (None, Some(text)) => Some(Content::Text(text)),
        (Some(thinking), text) => Some(Content::Items(
            std::iter::once(thinking)
                .chain(text.map(|text| Item::Text { text }))
                .collect(),
        )),
    };
    if content.is_none() && tool_plan.is_none() && tool_calls.is_empty() {
        return None;
    }
    Some(ChatMessage::Assistant {
        content,
        tool_plan,
        tool_calls,
    })
}

type ToolsAndChoice = (Vec<Tool>, Option<bool>, Option<ToolChoice>);

fn tools_and_choice(req: &ChatCompletionRequest) -> Result<ToolsAndChoice, TranslateError> {
    let defs = typed(req.tools(), "tools")?.unwrap_or_default();
    let strict = defs
        .iter()
        .any(|t| t.function.strict == Some(true))
        .then_some(true);
    let mut tools = defs
        .into_iter()
        .map(|t| {
            let f = t.function;
            let parameters = match f.parameters {
                Some(schema) => schema,
                None => RawValue::from_string(EMPTY_SCHEMA.to_owned())
                    .map_err(|_| TranslateError::InvalidField { field: "tools" })?,
            };
            Ok(Tool {
                kind: "function",
                function: FunctionDef {
                    name: f.name,
                    description: f.description,
                    parameters,
                },
            })
        })
        .collect::<Result<Vec<_>, TranslateError>>()?;
    let choice = match typed(req.tool_choice(), "tool_choice")? {
        None | Some(openai_chat::ToolChoice::Auto) => None,
        Some(openai_chat::ToolChoice::None) => Some(ToolChoice::None),
        Some(openai_chat::ToolChoice::Required) => Some(ToolChoice::Required),
        Some(openai_chat::ToolChoice::Function { function, .. }) => {
            tools.retain(|t| t.function.name == function.name);
            if tools.is_empty() {
                return Err(TranslateError::UnsupportedValue {
                    field: "tool_choice",
                });
            }
            Some(ToolChoice::Required)
        }
        Some(openai_chat::ToolChoice::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "tool_choice",
            });
        }
    };
    Ok((tools, strict, choice))
}

/// Maps Cohere's `finish_reason` to OpenAI's, or to the failure it reports. `message` is the
/// provider's error text (from `message-end`'s `delta.error`), if any.
pub fn finish_reason(
    reason: Option<&str>,
    message: Option<&str>,
) -> Result<&'static str, ProviderError> {
    match reason {
        Some("MAX_TOKENS") => Ok("length"),
        Some("TOOL_CALL") => Ok("tool_calls"),
        Some("ERROR") => Err(ProviderError::Server {
            status: 502,
            message: Some(
                message
                    .map(upstream::short_message)
                    .unwrap_or_else(|| "the generation failed".to_owned()),
            ),
        }),
        Some("TIMEOUT") => Err(ProviderError::Timeout),
        _ => Ok("stop"),
    }
}

/// Cohere usage in OpenAI's terms: `tokens`, else `billed_units`, plus cached prompt tokens.
pub fn usage(usage: Option<&Usage>) -> OpenAiUsage {
    let Some(usage) = usage else {
        return OpenAiUsage::default();
    };
    let count = |pick: fn(&types::Counts) -> Option<f64>| {
        usage
            .tokens
            .as_ref()
            .and_then(pick)
            .or_else(|| usage.billed_units.as_ref().and_then(pick))
            .map_or(0, tokens)
    };
    let prompt = count(|c| c.input_tokens);
    let completion = count(|c| c.output_tokens);
    OpenAiUsage::new(prompt, completion).with_details(usage.cached_tokens.map_or(0, tokens), 0)
}

/// A count Cohere may write as a float (`12.0`).
fn tokens(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n.round() as u64
    } else {
        0
    }
}

/// OpenAI's `usage` object for `usage`.
pub fn usage_json(usage: &OpenAiUsage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": { "cached_tokens": usage.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
    })
}

/// Translates a Cohere chat answer into an OpenAI `chat.completion` for `model`, stamped
/// `created`, with its usage. A `finish_reason` of `ERROR` or `TIMEOUT` is an error.
pub fn chat_response(
    resp: &ChatResponse,
    model: &str,
    created: u64,
) -> Result<(Value, OpenAiUsage), ProviderError> {
    let finish = finish_reason(resp.finish_reason.as_deref(), None)?;
    let mut text = String::new();
    let mut reasoning = String::new();
    for item in &resp.message.content {
        match item {
            types::ResponseItem::Text { text: t } => text.push_str(t),
            types::ResponseItem::Thinking { thinking } => reasoning.push_str(thinking),
            types::ResponseItem::Other => {}
        }
    }
    let tool_calls: Vec<Value> = resp
        .message
        .tool_calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": { "name": call.function.name, "arguments": call.function.arguments },
            })
        })
        .collect();
    let content = if !text.is_empty() {
        Value::String(text)
    } else if !tool_calls.is_empty() {
        resp.message
            .tool_plan
            .as_ref()
            .filter(|p| !p.is_empty())
            .map_or(Value::Null, |p| Value::String(p.clone()))
    } else {
        Value::String(String::new())
    };
    let mut message = json!({ "role": "assistant", "content": content, "refusal": null });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    let usage = usage(resp.usage.as_ref());
    let body = json!({
        "id": resp.id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": usage_json(&usage),
    });
    Ok((body, usage))
}

/// Translates an OpenAI embeddings request into a Cohere v2 embed body for `upstream_model`.
pub fn embed_request(
    req: &EmbeddingRequest,
    upstream_model: &str,
) -> Result<EmbedRequest, TranslateError> {
    let texts = embeddings::texts(req)?;
    let base64 = embeddings::wants_base64(req)?;
    let input_type = match extra::<String>(&req.extra, "input_type")? {
        None => DEFAULT_INPUT_TYPE.to_owned(),
        Some(t) if !t.is_empty() => t,
        Some(_) => {
            return Err(TranslateError::InvalidField {
                field: "input_type",
            });
        }
    };
    let output_dimension = extra::<u64>(&req.extra, "dimensions")?;
    Ok(EmbedRequest {
        model: upstream_model.to_owned(),
        texts,
        input_type,
        embedding_types: ["float"],
        output_dimension,
        base64,
    })
}

/// Translates a Cohere embed answer into an OpenAI embeddings `list` body for `model`, with its
/// usage. `base64` encodes each vector as base64 of little-endian `f32`s.
pub fn embed_response(
    resp: &EmbedResponse,
    model: &str,
    base64: bool,
) -> Result<(Vec<u8>, OpenAiUsage), ProviderError> {
    let vectors = resp
        .embeddings
        .float
        .iter()
        .map(|raw| {
            if !base64 {
                return Ok(Vector::Raw(raw));
            }
            let floats: Vec<f64> = serde_json::from_str(raw.get()).map_err(|_| {
                ProviderError::InvalidResponse("an embedding is not a list of numbers".into())
            })?;
            Ok(Vector::Base64(embeddings::base64_f32(&floats)))
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    let meta = resp.meta.as_ref();
    let prompt = meta
        .and_then(|m| m.billed_units.and_then(|b| b.input_tokens))
        .or_else(|| meta.and_then(|m| m.tokens.and_then(|t| t.input_tokens)))
        .map_or(0, tokens);
    let body = serde_json::to_vec(&embeddings::list(vectors, model, prompt))
        .map_err(|e| ProviderError::InvalidResponse(format!("cannot encode embeddings: {e}")))?;
    Ok((body, OpenAiUsage::new(prompt, 0)))
}

#[cfg(test)]
mod tests;

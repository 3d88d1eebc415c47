//! Anthropic Messages inbound, served by an OpenAI chat adapter: an Anthropic `MessagesRequest`
//! becomes an OpenAI chat request ([`chat_request`]), and the OpenAI answer becomes an Anthropic
//! message ([`message_response`]) or, for streams, Anthropic events ([`MessagesStream`]).
//!
//! This is the reverse of [`super::anthropic`]. It lets Anthropic SDKs and tools built on them
//! use any provider: the provider's adapter translates the chat request further (to Gemini,
//! Bedrock, ...) or sends it as is (OpenAI-compatible servers).
//!
//! Request choices:
//! - `system` (a string or text blocks) becomes one leading `system` message, blocks joined by a
//!   blank line.
//! - A user turn's `tool_result` blocks become `tool` messages placed before the rest of the turn
//!   (OpenAI needs them right after the assistant's `tool_calls`). A result's text blocks are
//!   joined; an `is_error` result is prefixed with `Error: `, as OpenAI has no error flag; image
//!   blocks inside a result cannot be expressed in a `tool` message and are refused.
//! - `text` blocks become text parts (a turn of one text block becomes a plain string), `image`
//!   blocks `image_url` parts (base64 sources as data URLs), `document` blocks with a base64 PDF a
//!   `file` part, with a plain-text source a text part. `cache_control` has no OpenAI meaning and
//!   is dropped.
//! - Assistant `text` blocks are joined into `content`; `tool_use` blocks become `tool_calls`
//!   (input serialized as the arguments string); `thinking` and `redacted_thinking` blocks are
//!   dropped (other providers cannot verify Anthropic's signatures).
//! - `tools` become functions (`input_schema` as `parameters`); server tools (a `type` other than
//!   `custom`) are refused, as no other provider runs them. `tool_choice` `auto`/`any`/`tool`/
//!   `none` become `auto`/`required`/a named function/`none`; `disable_parallel_tool_use` becomes
//!   `parallel_tool_calls: false`.
//! - `max_tokens` → `max_tokens` (the field every OpenAI-compatible server knows);
//!   `temperature`, `top_p` copied; `stop_sequences` → `stop`; `metadata.user_id` → `user`;
//!   `top_k` has no OpenAI equivalent and is dropped; `thinking` with a budget becomes
//!   `reasoning_effort` (`low` up to 2048 tokens, `medium` up to 8192, `high` above).
//! - Streams ask for `stream_options.include_usage`, so the final `message_delta` has the usage.
//!
//! Response choices:
//! - `reasoning_content` becomes a leading `thinking` block with an empty signature; `content` a
//!   `text` block; each tool call a `tool_use` block (arguments parsed; arguments that are not a
//!   JSON object make the response invalid rather than silently empty).
//! - `finish_reason` `stop` → `end_turn`, `length` → `max_tokens`, `tool_calls` (or the legacy
//!   `function_call`) → `tool_use`, `content_filter` → `refusal`. OpenAI does not say which stop
//!   sequence matched, so `stop_sequence` is never reported.
//! - Usage: `input_tokens` are the prompt tokens not read from the cache, `cache_read_input_tokens`
//!   the cached ones, `output_tokens` the completion tokens.

use portcullis_types::anthropic::{
    self, Content, ContentBlock, ImageSource, MessagesRequest, Role, ThinkingType, ToolChoiceType,
};
use portcullis_types::openai::{ChatCompletionRequest, StreamOptions};
use portcullis_types::raw::RawFields;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::TranslateError;

/// Thinking budgets up to this are `reasoning_effort: low`.
const EFFORT_LOW_MAX: u64 = 2048;
/// Thinking budgets up to this (above low) are `medium`; larger ones `high`.
const EFFORT_MEDIUM_MAX: u64 = 8192;

/// Translates an Anthropic Messages request into an OpenAI chat request for `upstream_model`.
pub fn chat_request(
    req: &MessagesRequest,
    upstream_model: &str,
) -> Result<ChatCompletionRequest, TranslateError> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(json!({"role": "system", "content": text}));
        }
    }
    for message in &req.messages {
        match message.role {
            Role::User => user_messages(&message.content, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(&message.content)?),
        }
    }
    let mut extra = RawFields::new();
    let mut set = |key: &str, value: &dyn erased::Raw| -> Result<(), TranslateError> {
        extra.push(key.to_owned(), value.raw()?);
        Ok(())
    };
    if let Some(t) = req.temperature {
        set("temperature", &t)?;
    }
    if let Some(p) = req.top_p {
        set("top_p", &p)?;
    }
    if let Some(stop) = req.stop_sequences.as_ref().filter(|s| !s.is_empty()) {
        set("stop", stop)?;
    }
    if let Some(user) = req.metadata.as_ref().and_then(|m| m.user_id.as_ref()) {
        set("user", user)?;
    }
    if let Some(thinking) = &req.thinking
        && thinking.kind == ThinkingType::Enabled
    {
        let budget = thinking.budget_tokens.unwrap_or(0);
        let effort = if budget <= EFFORT_LOW_MAX {
            "low"
        } else if budget <= EFFORT_MEDIUM_MAX {
            "medium"
        } else {
            "high"
        };
        set("reasoning_effort", &effort)?;
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let tools = tools.iter().map(tool).collect::<Result<Vec<_>, _>>()?;
        set("tools", &tools)?;
    }
    if let Some(choice) = &req.tool_choice {
        let value = match choice.kind {
            ToolChoiceType::Auto => json!("auto"),
            ToolChoiceType::Any => json!("required"),
            ToolChoiceType::None => json!("none"),
            ToolChoiceType::Tool => {
                let name = choice.name.as_deref().ok_or(TranslateError::InvalidField {
                    field: "tool_choice",
                })?;
                json!({"type": "function", "function": {"name": name}})
            }
            ToolChoiceType::Other(_) => {
                return Err(TranslateError::UnsupportedValue {
                    field: "tool_choice",
                });
            }
        };
        set("tool_choice", &value)?;
        if choice.disable_parallel_tool_use == Some(true) && choice.kind != ToolChoiceType::None {
            set("parallel_tool_calls", &false)?;
        }
    }
    let stream = req.is_stream();
    Ok(ChatCompletionRequest {
        model: upstream_model.to_owned(),
        messages: erased::Raw::raw(&messages)?,
        stream: stream.then_some(true),
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: RawFields::new(),
        }),
        max_tokens: Some(req.max_tokens),
        max_completion_tokens: None,
        extra,
    })
}

/// Serializing a value straight into a raw field, without a `Value` in between.
mod erased {
    use serde_json::value::RawValue;

    use super::TranslateError;

    pub trait Raw {
        fn raw(&self) -> Result<Box<RawValue>, TranslateError>;
    }

    impl<T: serde::Serialize + ?Sized> Raw for T {
        fn raw(&self) -> Result<Box<RawValue>, TranslateError> {
            serde_json::value::to_raw_value(self)
                .map_err(|_| TranslateError::InvalidField { field: "messages" })
        }
    }
}

fn system_text(system: &Content) -> Result<String, TranslateError> {
    match system {
        Content::Text(text) => Ok(text.clone()),
        Content::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for block in blocks {
                match block {
                    ContentBlock::Text(t) => texts.push(t.text.as_str()),
                    other => return Err(unsupported(other)),
                }
            }
            Ok(texts.join("\n\n"))
        }
    }
}

/// A user turn: its tool results as `tool` messages first, then the rest as one user message.
fn user_messages(content: &Content, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let blocks = match content {
        Content::Text(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::ToolResult(result) => {
                let mut text = match &result.content {
                    None => String::new(),
                    Some(Content::Text(t)) => t.clone(),
                    Some(Content::Blocks(inner)) => {
                        let mut texts = Vec::with_capacity(inner.len());
                        for b in inner {
                            match b {
                                ContentBlock::Text(t) => texts.push(t.text.as_str()),
                                other => return Err(unsupported(other)),
                            }
                        }
                        texts.join("\n")
                    }
                };
                if result.is_error == Some(true) {
                    text.insert_str(0, "Error: ");
                }
                out.push(json!({
                    "role": "tool",
                    "tool_call_id": result.tool_use_id,
                    "content": text,
                }));
            }
            ContentBlock::Text(t) => parts.push(json!({"type": "text", "text": t.text})),
            ContentBlock::Image(image) => {
                let url = match &image.source {
                    ImageSource::Base64 {
                        media_type, data, ..
                    } => format!("data:{media_type};base64,{data}"),
                    ImageSource::Url { url, .. } => url.clone(),
                    ImageSource::Other(_) => {
                        return Err(TranslateError::UnsupportedContentPart {
                            kind: "image source".into(),
                        });
                    }
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            ContentBlock::Document(doc) => parts.push(document_part(doc)?),
            other => return Err(unsupported(other)),
        }
    }
    match parts.as_slice() {
        [] => {}
        [one] if one["type"] == "text" => {
            out.push(json!({"role": "user", "content": one["text"]}));
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

#[derive(Deserialize)]
struct DocumentSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: Option<String>,
    data: Option<String>,
}

/// A `document` block: a base64 PDF as a `file` part, a plain-text document as text.
fn document_part(doc: &anthropic::DocumentBlock) -> Result<Value, TranslateError> {
    let invalid = TranslateError::InvalidField { field: "document" };
    let source: DocumentSource = doc
        .extra
        .get("source")
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .ok_or(invalid)?;
    match (
        source.kind.as_str(),
        source.media_type.as_deref(),
        source.data,
    ) {
        ("base64", Some("application/pdf"), Some(data)) => Ok(json!({
            "type": "file",
            "file": {
                "filename": "document.pdf",
                "file_data": format!("data:application/pdf;base64,{data}"),
            },
        })),
        ("text", _, Some(text)) => Ok(json!({"type": "text", "text": text})),
        _ => Err(TranslateError::UnsupportedContentPart {
            kind: format!(
                "document source {}",
                source.kind.chars().take(32).collect::<String>()
            ),
        }),
    }
}

fn assistant_message(content: &Content) -> Result<Value, TranslateError> {
    let blocks = match content {
        Content::Text(text) => return Ok(json!({"role": "assistant", "content": text})),
        Content::Blocks(blocks) => blocks,
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text(t) => text.push_str(&t.text),
            ContentBlock::ToolUse(call) => tool_calls.push(json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.input.get()},
            })),
            ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) => {}
            other => return Err(unsupported(other)),
        }
    }
    let mut message = json!({"role": "assistant"});
    message["content"] = if text.is_empty() && !tool_calls.is_empty() {
        Value::Null
    } else {
        text.into()
    };
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Ok(message)
}

/// An OpenAI function tool, its schema passed through as received.
#[derive(serde::Serialize)]
struct FunctionTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(serde::Serialize)]
struct Function<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a RawValue,
}

fn tool(tool: &anthropic::Tool) -> Result<FunctionTool<'_>, TranslateError> {
    if tool.kind.as_deref().is_some_and(|k| k != "custom") {
        return Err(TranslateError::UnsupportedValue { field: "tools" });
    }
    let parameters: &RawValue = match &tool.input_schema {
        Some(schema) => schema,
        None => empty_schema(),
    };
    Ok(FunctionTool {
        kind: "function",
        function: Function {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters,
        },
    })
}

/// `{"type":"object","properties":{}}`, for a tool declared without a schema.
fn empty_schema() -> &'static RawValue {
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned())
            .unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

fn unsupported(block: &ContentBlock) -> TranslateError {
    let kind = match block {
        ContentBlock::Text(_) => "text",
        ContentBlock::Image(_) => "image",
        ContentBlock::ToolUse(_) => "tool_use",
        ContentBlock::ToolResult(_) => "tool_result",
        ContentBlock::Thinking(_) => "thinking",
        ContentBlock::RedactedThinking(_) => "redacted_thinking",
        ContentBlock::Document(_) => "document",
        ContentBlock::Other(raw) => {
            return TranslateError::UnsupportedContentPart {
                kind: raw
                    .kind()
                    .as_deref()
                    .unwrap_or("unknown")
                    .chars()
                    .take(64)
                    .collect(),
            };
        }
    };
    TranslateError::UnsupportedContentPart { kind: kind.into() }
}

/// The parts of an OpenAI `chat.completion` this translation reads.
#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallOut>,
}

#[derive(Deserialize)]
struct ToolCallOut {
    #[serde(default)]
    id: String,
    function: FunctionOut,
}

#[derive(Deserialize)]
struct FunctionOut {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// Why an OpenAI answer cannot be turned into an Anthropic one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the response is not an OpenAI chat completion")]
    NotACompletion,
    #[error("tool call `{0}` has arguments that are not a JSON object")]
    ToolArguments(String),
}

/// Translates an OpenAI `chat.completion` body into an Anthropic message (JSON).
pub fn message_response(body: &[u8]) -> Result<Value, ResponseError> {
    let completion: Completion =
        serde_json::from_slice(body).map_err(|_| ResponseError::NotACompletion)?;
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or(ResponseError::NotACompletion)?;
    let mut content = Vec::new();
    if let Some(reasoning) = choice.message.reasoning_content.filter(|r| !r.is_empty()) {
        content.push(json!({"type": "thinking", "thinking": reasoning, "signature": ""}));
    }
    if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in choice.message.tool_calls {
        let input = tool_input(&call.function.arguments)
            .ok_or_else(|| ResponseError::ToolArguments(call.id.clone()))?;
        content.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": input,
        }));
    }
    Ok(json!({
        "id": message_id(&completion.id),
        "type": "message",
        "role": "assistant",
        "model": completion.model,
        "content": content,
        "stop_reason": choice.finish_reason.as_deref().map(stop_reason),
        "stop_sequence": null,
        "usage": usage_json(completion.usage.unwrap_or_default()),
    }))
}

/// Tool arguments as an object; empty arguments are an empty object.
fn tool_input(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
}

fn message_id(upstream: &str) -> String {
    if upstream.starts_with("msg_") {
        upstream.to_owned()
    } else {
        format!("msg_{upstream}")
    }
}

fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

fn usage_json(usage: OpenAiUsage) -> Value {
    let cached = usage
        .prompt_tokens_details
        .and_then(|d| d.cached_tokens)
        .unwrap_or(0)
        .min(usage.prompt_tokens);
    json!({
        "input_tokens": usage.prompt_tokens - cached,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.completion_tokens,
    })
}

pub mod stream;

pub use stream::{MessagesStream, StreamError};

#[cfg(test)]
mod tests;

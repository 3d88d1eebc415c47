//! A Converse answer as an OpenAI `chat.completion`.
//!
//! Choices:
//! - Text blocks are joined into `message.content` (null when the answer is only tool calls);
//!   `toolUse` blocks become `tool_calls` in order, their `input` object serialized as the
//!   `arguments` string; `reasoningContent.reasoningText.text` is joined into
//!   `message.reasoning_content` (redacted reasoning is dropped). Other blocks (images,
//!   citations, guard content) are dropped. Calls to [`super::PLACEHOLDER_TOOL`] are dropped.
//! - `stopReason`: `end_turn`, `stop_sequence` → `stop`; `max_tokens` and
//!   `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls` (`stop` when every
//!   call was the placeholder); `guardrail_intervened`, `content_filtered` → `content_filter`;
//!   anything else (`malformed_model_output`, `malformed_tool_use`, new reasons) → `stop`.
//! - Usage: `prompt_tokens` = `inputTokens` + `cacheReadInputTokens` + `cacheWriteInputTokens`
//!   (Bedrock counts cached tokens apart from `inputTokens`), `cached_tokens` =
//!   `cacheReadInputTokens`. Bedrock does not report reasoning tokens apart (they are inside
//!   `outputTokens`), so `reasoning_tokens` is 0.
//! - Converse answers carry no id: the adapter passes one (from `x-amzn-requestid`), and the
//!   model reported is the deployment's model id.

use std::fmt;

use portcullis_types::Usage;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::PLACEHOLDER_TOOL;

/// A Converse response body, as far as the gateway reads it. Its `Debug` prints no content.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    #[serde(default)]
    output: Output,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: TokenUsage,
}

impl fmt::Debug for ConverseResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConverseResponse")
            .field("blocks", &self.output.message.content.len())
            .field("stop_reason", &self.stop_reason)
            .field("usage", &self.usage)
            .finish()
    }
}

impl ConverseResponse {
    /// The usage in OpenAI's terms (see the module doc).
    pub fn usage(&self) -> Usage {
        self.usage.to_usage()
    }
}

#[derive(Deserialize, Default)]
struct Output {
    #[serde(default)]
    message: OutputMessage,
}

#[derive(Deserialize, Default)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<OutputBlock>,
}

/// One block of Converse's content union: at most one field is set.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputBlock {
    text: Option<String>,
    tool_use: Option<OutputToolUse>,
    reasoning_content: Option<Reasoning>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputToolUse {
    tool_use_id: String,
    name: String,
    input: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reasoning {
    reasoning_text: Option<ReasoningText>,
}

#[derive(Deserialize)]
struct ReasoningText {
    text: String,
}

/// Bedrock's `TokenUsage` (also the `usage` of a stream's `metadata` event).
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl TokenUsage {
    pub(super) fn to_usage(self) -> Usage {
        let prompt = self
            .input_tokens
            .saturating_add(self.cache_read_input_tokens)
            .saturating_add(self.cache_write_input_tokens);
        Usage::new(prompt, self.output_tokens).with_details(self.cache_read_input_tokens, 0)
    }
}

/// OpenAI's `usage` object for `usage`.
pub(super) fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": { "cached_tokens": usage.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
    })
}

/// OpenAI's `finish_reason` for a Converse `stopReason`; `had_calls` says whether any tool
/// call reached the client.
pub(super) fn finish_reason(stop_reason: &str, had_calls: bool) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" if had_calls => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// Translates a Converse answer into an OpenAI `chat.completion` body with `id`, `model` and
/// `created` as given.
pub fn chat_response(resp: &ConverseResponse, id: &str, model: &str, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &resp.output.message.content {
        if let Some(t) = &block.text {
            text.push_str(t);
        }
        if let Some(r) = block
            .reasoning_content
            .as_ref()
            .and_then(|r| r.reasoning_text.as_ref())
        {
            reasoning.push_str(&r.text);
        }
        if let Some(call) = &block.tool_use
            && call.name != PLACEHOLDER_TOOL
        {
            tool_calls.push(json!({
                "id": call.tool_use_id,
                "type": "function",
                "function": { "name": call.name, "arguments": call.input.get() },
            }));
        }
    }
    let finish = resp
        .stop_reason
        .as_deref()
        .map(|r| finish_reason(r, !tool_calls.is_empty()));
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { text.into() },
        "refusal": null,
    });
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": usage_json(&resp.usage()),
    })
}

//! `GenerateContentResponse` -> OpenAI `chat.completion`, and Google error bodies -> classified
//! [`ProviderError`]s. The choices are listed in the parent module's documentation.

use http::StatusCode;
use portcullis_types::Usage;
use serde_json::{Value, json};

use super::wire::{self, GenerateContentResponse, UsageMetadata};
use crate::provider::{ProviderError, upstream};

/// What the caller knows of the answer it is translating.
#[derive(Debug, Clone, Copy)]
pub struct ResponseMeta<'a> {
    /// The `id` when Gemini sends no `responseId`.
    pub fallback_id: &'a str,
    /// The requested model, when Gemini sends no `modelVersion`.
    pub model: &'a str,
    /// Unix seconds.
    pub created: u64,
}

/// Translates a `generateContent` response body into an OpenAI `chat.completion` and its usage.
pub fn chat_response(body: &[u8], meta: ResponseMeta<'_>) -> Result<(Value, Usage), ProviderError> {
    let resp: GenerateContentResponse = serde_json::from_slice(body).map_err(|_| {
        ProviderError::InvalidResponse("the response is not a generateContent response".into())
    })?;
    check_blocked(&resp)?;
    let candidate = resp
        .candidates
        .first()
        .ok_or_else(|| ProviderError::InvalidResponse("the response has no candidates".into()))?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in candidate.content.iter().flat_map(|c| &c.parts) {
        if let Some(call) = &part.function_call {
            let index = tool_calls.len();
            tool_calls.push(tool_call(call, part.thought_signature.as_deref(), index));
        } else if let Some(t) = &part.text {
            if part.thought == Some(true) {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        }
    }
    let finish = finish_reason(candidate.finish_reason.as_deref(), !tool_calls.is_empty());
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
    let usage = usage(resp.usage_metadata.unwrap_or_default());
    let body = json!({
        "id": completion_id(resp.response_id.as_deref(), meta.fallback_id),
        "object": "chat.completion",
        "created": meta.created,
        "model": resp.model_version.as_deref().unwrap_or(meta.model),
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

/// A prompt Gemini refused to answer at all: a content-filter error.
pub(super) fn check_blocked(resp: &GenerateContentResponse) -> Result<(), ProviderError> {
    let reason = resp
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.as_deref());
    match reason {
        Some(reason) if resp.candidates.is_empty() => Err(ProviderError::ContentFiltered {
            message: Some(format!(
                "the provider blocked the prompt ({})",
                enum_name(reason)
            )),
        }),
        _ => Ok(()),
    }
}

/// A Google enum value, kept only if it looks like one (it is relayed to the client).
fn enum_name(value: &str) -> &str {
    if !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        value
    } else {
        "OTHER"
    }
}

pub(super) fn completion_id(response_id: Option<&str>, fallback: &str) -> String {
    match response_id {
        Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
        _ => fallback.to_owned(),
    }
}

/// The OpenAI tool call for a `functionCall` part, the `index`-th call of the answer.
pub(super) fn tool_call(call: &wire::FunctionCall, signature: Option<&str>, index: usize) -> Value {
    let mut value = json!({
        "id": call_id(call, index),
        "type": "function",
        "function": { "name": call.name, "arguments": arguments(call) },
    });
    if let Some(signature) = signature {
        value["extra_content"] = json!({ "google": { "thought_signature": signature } });
    }
    value
}

pub(super) fn call_id(call: &wire::FunctionCall, index: usize) -> String {
    match &call.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => format!("call_{index}"),
    }
}

/// A call's `args` as OpenAI's JSON text (`{}` when absent).
pub(super) fn arguments(call: &wire::FunctionCall) -> String {
    match &call.args {
        None => "{}".to_owned(),
        Some(args) => serde_json::to_string(args).unwrap_or_else(|_| "{}".to_owned()),
    }
}

pub(super) fn finish_reason(reason: Option<&str>, has_calls: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "MODEL_ARMOR"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => "content_filter",
        _ if has_calls => "tool_calls",
        _ => "stop",
    }
}

pub(super) fn usage(u: UsageMetadata) -> Usage {
    let prompt = u
        .prompt_token_count
        .saturating_add(u.tool_use_prompt_token_count);
    let completion = u
        .candidates_token_count
        .saturating_add(u.thoughts_token_count);
    Usage::new(prompt, completion)
        .with_details(u.cached_content_token_count, u.thoughts_token_count)
}

pub(super) fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": { "cached_tokens": usage.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
    })
}

/// Classifies a Google error body (`{"error": {"code", "message", "status"}}`, or a one-element
/// array of it). `status` is the HTTP status it came with; an in-stream error (sent with 200)
/// is classified by its own `code`, or as a 502 without one. A rejected API key (AI Studio
/// answers HTTP 400 `INVALID_ARGUMENT` with an `ErrorInfo` reason `API_KEY_INVALID`, or another
/// `API_KEY_*` reason) and `UNAUTHENTICATED` are the gateway's credentials failing, not the
/// client's request: [`ProviderError::Unauthorized`], whose message is not relayed.
pub fn error_from_body(status: StatusCode, body: &[u8]) -> ProviderError {
    let parsed = match serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        Ok(wire::ErrorEnvelope::One { error }) => Some(error),
        Ok(wire::ErrorEnvelope::Many(mut items)) if !items.is_empty() => {
            Some(items.swap_remove(0).error)
        }
        _ => None,
    };
    let Some(error) = parsed else {
        return ProviderError::from_status(status, None);
    };
    let key_rejected = error.details.iter().any(|d| {
        d.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("API_KEY_"))
    });
    if key_rejected || error.status.as_deref() == Some("UNAUTHENTICATED") {
        let code = if status.is_success() {
            401
        } else {
            status.as_u16()
        };
        return ProviderError::Unauthorized { status: code };
    }
    let status = if status.is_success() {
        error
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::BAD_GATEWAY)
    } else {
        status
    };
    ProviderError::classify(
        status,
        error.status.as_deref(),
        error.message.as_deref().map(upstream::short_message),
    )
}

//! OpenAI chat completions <-> Anthropic Messages.
//!
//! [`chat_request`] turns an OpenAI chat request into an Anthropic `MessagesRequest`;
//! [`chat_response`] turns an Anthropic message back into an OpenAI `chat.completion` body.
//!
//! Request choices:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`, in
//!   order: one message is a plain string, several are one text block each.
//! - Anthropic requires user/assistant alternation, so consecutive messages that map to the same
//!   role are merged into one message (their blocks concatenated in order). Tool messages map to
//!   the user role, so a run of tool results becomes ONE user message of `tool_result` blocks, and
//!   a user message right after them joins that same message, after the results.
//! - A message that is exactly one text block is sent as a plain string; otherwise as blocks.
//!   Empty text is dropped (Anthropic rejects empty text blocks) and a message left with no
//!   blocks is dropped.
//! - Assistant `reasoning_content` in history is dropped (Anthropic needs a signature to replay
//!   thinking); assistant `refusal` text is kept as text.
//! - `reasoning_effort` enables extended thinking with a fixed budget: `minimal`/`low` 1024,
//!   `medium` 4096, `high` 16384 tokens (`none` leaves thinking off). Anthropic counts thinking
//!   inside `max_tokens`, so when `max_tokens` is not above the budget it is raised to
//!   budget + `max_tokens`, keeping the caller's allowance for the visible answer.
//! - `response_format`: Anthropic has no native JSON mode. `json_object` and `json_schema` add a
//!   final system text block instructing the model to answer with JSON only (for `json_schema`,
//!   the schema is included). This keeps the answer in plain text content, so the response and
//!   stream translation need no special case; it is an instruction, not a guarantee.
//! - `temperature` and `top_p` are copied unchanged (Anthropic's temperature range is 0..=1, and
//!   it constrains both when thinking is on; out-of-range values are left for upstream to reject).
//! - Fields with no Anthropic equivalent (`n`, `seed`, `logprobs`, penalties, ...) are ignored.

use portcullis_types::anthropic::{
    self, Content, ContentBlock, ImageBlock, ImageSource, Metadata, Role, Thinking, ToolChoice,
    ToolResultBlock, ToolUseBlock,
};
use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat, UserContent, UserPart,
};
use portcullis_types::raw::RawFields;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::TranslateError;

/// Thinking budget for `reasoning_effort: minimal | low`.
pub const BUDGET_LOW: u64 = 1024;
/// Thinking budget for `reasoning_effort: medium`.
pub const BUDGET_MEDIUM: u64 = 4096;
/// Thinking budget for `reasoning_effort: high`.
pub const BUDGET_HIGH: u64 = 16384;

const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no other text before or after it.";

/// Translates an OpenAI chat request into an Anthropic Messages request for `upstream_model`.
/// `default_max_tokens` applies when the request sets neither `max_completion_tokens` nor
/// `max_tokens` (Anthropic requires one).
pub fn chat_request(
    req: &ChatCompletionRequest,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<anthropic::MessagesRequest, TranslateError> {
    let messages = req
        .messages_typed()
        .map_err(|_| TranslateError::InvalidField { field: "messages" })?;
    let mut system: Vec<String> = Vec::new();
    let mut turns = Turns::default();
    for message in &messages {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.push(content.joined().into_owned());
            }
            Message::User { content, .. } => turns.push(Role::User, user_blocks(content)?),
            Message::Assistant {
                content,
                refusal,
                tool_calls,
                ..
            } => {
                let mut blocks = Vec::new();
                match content {
                    Some(AssistantContent::Text(text)) => blocks.push(ContentBlock::text(text)),
                    Some(AssistantContent::Parts(parts)) => {
                        blocks.extend(parts.iter().map(|part| match part {
                            AssistantPart::Text(t) => ContentBlock::text(&t.text),
                            AssistantPart::Refusal(r) => ContentBlock::text(&r.refusal),
                        }));
                    }
                    None => {}
                }
                if let Some(refusal) = refusal {
                    blocks.push(ContentBlock::text(refusal));
                }
                for call in tool_calls {
                    blocks.push(tool_use_block(call)?);
                }
                turns.push(Role::Assistant, blocks);
            }
            Message::Tool {
                content,
                tool_call_id,
                ..
            } => {
                let block = ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id: tool_call_id.clone(),
                    content: Some(Content::Text(content.joined().into_owned())),
                    is_error: None,
                    cache_control: None,
                    extra: RawFields::new(),
                });
                turns.push(Role::User, vec![block]);
            }
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }

    match typed(req.response_format(), "response_format")? {
        None | Some(ResponseFormat::Text { .. }) => {}
        Some(ResponseFormat::JsonObject { .. }) => system.push(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some(ResponseFormat::JsonSchema { json_schema, .. }) => {
            let mut text = format!(
                "Respond with a single valid JSON value only, with no other text before or after \
                 it. It must conform to the JSON schema named `{}`",
                json_schema.name
            );
            if let Some(schema) = &json_schema.schema {
                text.push_str(":\n");
                text.push_str(schema.get());
            } else {
                text.push('.');
            }
            system.push(text);
        }
        Some(ResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    }

    let mut max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(default_max_tokens);
    let thinking = match extra::<String>(req, "reasoning_effort")?.as_deref() {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(BUDGET_LOW),
        Some("medium") => Some(BUDGET_MEDIUM),
        Some("high") => Some(BUDGET_HIGH),
        Some(_) => {
            return Err(TranslateError::UnsupportedValue {
                field: "reasoning_effort",
            });
        }
    }
    .map(|budget| {
        if max_tokens <= budget {
            max_tokens = budget.saturating_add(max_tokens);
        }
        Thinking::enabled(budget)
    });

    let tools = typed(req.tools(), "tools")?
        .map(|tools| tools.iter().map(tool).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let mut tool_choice = match typed(req.tool_choice(), "tool_choice")? {
        None => None,
        Some(openai_chat::ToolChoice::None) => Some(ToolChoice::none()),
        Some(openai_chat::ToolChoice::Auto) => Some(ToolChoice::auto()),
        Some(openai_chat::ToolChoice::Required) => Some(ToolChoice::any()),
        Some(openai_chat::ToolChoice::Function { function, .. }) => {
            Some(ToolChoice::tool(function.name))
        }
        Some(openai_chat::ToolChoice::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "tool_choice",
            });
        }
    };
    if extra::<bool>(req, "parallel_tool_calls")? == Some(false) {
        let choice = tool_choice.get_or_insert_with(ToolChoice::auto);
        if choice.kind != anthropic::ToolChoiceType::None {
            choice.disable_parallel_tool_use = Some(true);
        }
    }

    let stop_sequences = typed(req.stop(), "stop")?
        .map(|stop| stop.sequences().to_vec())
        .filter(|seqs| !seqs.is_empty());
    let metadata = extra::<String>(req, "user")?.map(|user_id| Metadata {
        user_id: Some(user_id),
        extra: RawFields::new(),
    });

    Ok(anthropic::MessagesRequest {
        model: upstream_model.to_owned(),
        max_tokens,
        messages: turns.finish(),
        system: system_content(system),
        tools,
        tool_choice,
        temperature: extra(req, "temperature")?,
        top_p: extra(req, "top_p")?,
        top_k: None,
        stop_sequences,
        stream: req.stream,
        metadata,
        thinking,
        extra: RawFields::new(),
    })
}

/// Translates an Anthropic message into an OpenAI `chat.completion` body, stamped `created`.
///
/// Text blocks are joined into `message.content` (null when the answer is only tool calls);
/// `tool_use` blocks become `tool_calls`; `thinking` blocks are joined into
/// `message.reasoning_content` (the de-facto field OpenAI-compatible servers use for reasoning;
/// `redacted_thinking` is dropped). Cache reads and writes count as prompt tokens, and cache reads
/// are also reported as `prompt_tokens_details.cached_tokens`.
pub fn chat_response(resp: &anthropic::MessagesResponse, created: u64) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &resp.content {
        match block {
            ContentBlock::Text(t) => text.push_str(&t.text),
            ContentBlock::Thinking(t) => reasoning.push_str(&t.thinking),
            ContentBlock::ToolUse(t) => tool_calls.push(json!({
                "id": t.id,
                "type": "function",
                "function": { "name": t.name, "arguments": t.input.get() },
            })),
            _ => {}
        }
    }
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
    let finish_reason = resp.stop_reason.as_ref().map(|reason| match reason {
        anthropic::StopReason::MaxTokens => "length",
        anthropic::StopReason::ToolUse => "tool_calls",
        anthropic::StopReason::Refusal => "content_filter",
        anthropic::StopReason::EndTurn
        | anthropic::StopReason::StopSequence
        | anthropic::StopReason::PauseTurn
        | anthropic::StopReason::Other(_) => "stop",
    });
    let usage = &resp.usage;
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let prompt_tokens = usage
        .input_tokens
        .saturating_add(cache_read)
        .saturating_add(usage.cache_creation_input_tokens.unwrap_or(0));
    json!({
        "id": resp.id,
        "object": "chat.completion",
        "created": created,
        "model": resp.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": prompt_tokens.saturating_add(usage.output_tokens),
            "prompt_tokens_details": { "cached_tokens": cache_read },
        },
    })
}

/// Messages being built, merging consecutive same-role turns.
#[derive(Default)]
struct Turns(Vec<(Role, Vec<ContentBlock>)>);

impl Turns {
    fn push(&mut self, role: Role, blocks: Vec<ContentBlock>) {
        let blocks = blocks
            .into_iter()
            .filter(|b| !matches!(b, ContentBlock::Text(t) if t.text.is_empty()));
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => {
                let blocks: Vec<_> = blocks.collect();
                if !blocks.is_empty() {
                    self.0.push((role, blocks));
                }
            }
        }
    }

    fn finish(self) -> Vec<anthropic::Message> {
        self.0
            .into_iter()
            .map(|(role, mut blocks)| anthropic::Message {
                role,
                content: match blocks.as_mut_slice() {
                    [ContentBlock::Text(t)] => Content::Text(std::mem::take(&mut t.text)),
                    _ => Content::Blocks(blocks),
                },
                extra: RawFields::new(),
            })
            .collect()
    }
}

fn system_content(mut system: Vec<String>) -> Option<Content> {
    match system.len() {
        0 => None,
        1 => system.pop().map(Content::Text),
        _ => Some(Content::Blocks(
            system.into_iter().map(ContentBlock::text).collect(),
        )),
    }
}

fn user_blocks(content: &UserContent) -> Result<Vec<ContentBlock>, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(vec![ContentBlock::text(text)]),
        UserContent::Parts(parts) => parts,
    };
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(ContentBlock::text(&t.text)),
            UserPart::ImageUrl(image) => Ok(ContentBlock::Image(ImageBlock {
                source: image_source(&image.image_url.url)?,
                cache_control: None,
                extra: RawFields::new(),
            })),
            UserPart::InputAudio(_) => Err(unsupported_part("input_audio")),
            UserPart::File(_) => Err(unsupported_part("file")),
            UserPart::Other(raw) => {
                Err(unsupported_part(raw.kind().as_deref().unwrap_or("unknown")))
            }
        })
        .collect()
}

fn unsupported_part(kind: &str) -> TranslateError {
    TranslateError::UnsupportedContentPart {
        kind: kind.chars().take(64).collect(),
    }
}

/// `data:<media type>;base64,<data>` becomes a base64 source, `http(s)://` a url source.
fn image_source(url: &str) -> Result<ImageSource, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or(TranslateError::InvalidImageUrl)?;
        let media_type = meta
            .strip_suffix(";base64")
            .filter(|m| !m.is_empty())
            .ok_or(TranslateError::InvalidImageUrl)?;
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
            extra: RawFields::new(),
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(ImageSource::Url {
            url: url.to_owned(),
            extra: RawFields::new(),
        });
    }
    Err(TranslateError::InvalidImageUrl)
}

/// An assistant tool call as a `tool_use` block. Empty arguments mean no arguments (`{}`).
fn tool_use_block(call: &openai_chat::ToolCall) -> Result<ContentBlock, TranslateError> {
    let invalid = || TranslateError::InvalidToolArguments {
        id: call.id.clone(),
    };
    let args = call.function.arguments.trim();
    let input: Box<RawValue> = if args.is_empty() {
        raw_json("{}").map_err(|_| invalid())?
    } else {
        let value: Value = serde_json::from_str(args).map_err(|_| invalid())?;
        if !value.is_object() {
            return Err(invalid());
        }
        serde_json::value::to_raw_value(&value).map_err(|_| invalid())?
    };
    Ok(ContentBlock::ToolUse(ToolUseBlock {
        id: call.id.clone(),
        name: call.function.name.clone(),
        input,
        cache_control: None,
        extra: RawFields::new(),
    }))
}

fn tool(tool: &openai_chat::Tool) -> Result<anthropic::Tool, TranslateError> {
    let f = &tool.function;
    let input_schema = match &f.parameters {
        Some(schema) => schema.clone(),
        None => raw_json(r#"{"type":"object","properties":{}}"#)
            .map_err(|_| TranslateError::InvalidField { field: "tools" })?,
    };
    Ok(anthropic::Tool {
        kind: None,
        name: f.name.clone(),
        description: f.description.clone(),
        input_schema: Some(input_schema),
        cache_control: None,
        extra: RawFields::new(),
    })
}

fn raw_json(text: &str) -> serde_json::Result<Box<RawValue>> {
    RawValue::from_string(text.to_owned())
}

fn typed<T>(
    parsed: serde_json::Result<Option<T>>,
    field: &'static str,
) -> Result<Option<T>, TranslateError> {
    parsed.map_err(|_| TranslateError::InvalidField { field })
}

/// A raw extra field of the request, typed; JSON null counts as absent.
fn extra<T: DeserializeOwned>(
    req: &ChatCompletionRequest,
    field: &'static str,
) -> Result<Option<T>, TranslateError> {
    match req.extra.get(field) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<T>>(raw.get())
            .map_err(|_| TranslateError::InvalidField { field }),
    }
}

#[cfg(test)]
mod tests;

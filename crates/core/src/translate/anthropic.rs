//! OpenAI chat completions <-> Anthropic Messages.
//!
//! [`chat_request`] turns an OpenAI chat request into an Anthropic `MessagesRequest`;
//! [`chat_response`] turns an Anthropic message back into an OpenAI `chat.completion` body. The
//! stream of a streamed answer is translated by [`super::anthropic_stream`].
//!
//! Request choices:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`, in
//!   order: one message is a plain string, several are one text block each. A message's text
//!   parts are joined into one block, unless a part carries `cache_control`: then each part is a
//!   block of its own, so the breakpoint stays where the client put it.
//! - Anthropic requires user/assistant alternation, so consecutive messages that map to the same
//!   role are merged into one message (their blocks concatenated in order). Tool messages map to
//!   the user role, so a run of tool results becomes ONE user message of `tool_result` blocks, and
//!   a user message right after them joins that same message, after the results.
//! - A message that is exactly one text block (without `cache_control`) is sent as a plain
//!   string; otherwise as blocks. Empty text is dropped (Anthropic rejects empty text blocks) and
//!   a message left with no blocks is dropped; so is empty system text.
//! - `cache_control` (the convention clients use to ask for Anthropic prompt caching through the
//!   OpenAI format) is kept: on a text or `image_url` part it goes to that block, on a tool (the
//!   tool object, or else its `function`) to that tool, and on a whole message to the message's
//!   last block (for a tool message, its `tool_result` block; for a system message, its last
//!   system block). A malformed `cache_control` fails the request, naming the field.
//! - Assistant `reasoning_content` in history is dropped (Anthropic needs a signature to replay
//!   thinking); assistant `refusal` text is kept as text.
//! - `reasoning_effort` enables extended thinking with a fixed budget: `minimal`/`low` 1024,
//!   `medium` 4096, `high` 16384 tokens (`none` leaves thinking off). Anthropic counts thinking
//!   inside `max_tokens`, so when `max_tokens` is not above the budget it is raised to
//!   budget + `max_tokens`, keeping the caller's allowance for the visible answer.
//! - Thinking is incompatible with some requests, and the request wins over the effort hint:
//!   a forced tool choice (`required`, or a named function) turns thinking off (Anthropic rejects
//!   forced tool use with thinking), and so does a conversation that ends with tool results
//!   (Anthropic then wants the assistant turn that called the tools to start with its signed
//!   thinking block, which OpenAI clients cannot send back). With thinking on, `temperature` is
//!   dropped (Anthropic rejects any change to it) and `top_p` is kept only within 0.95..=1, the
//!   range Anthropic accepts with thinking.
//! - `response_format`: Anthropic has no native JSON mode. `json_object` and `json_schema` add a
//!   final system text block instructing the model to answer with JSON only (for `json_schema`,
//!   the schema is included). This keeps the answer in plain text content, so the response and
//!   stream translation need no special case; it is an instruction, not a guarantee.
//! - `temperature` and `top_p` are otherwise copied unchanged (Anthropic's temperature range is
//!   0..=1; out-of-range values are left for upstream to reject).
//! - `max_completion_tokens` wins over `max_tokens`; without either, the adapter's default.
//! - Fields with no Anthropic equivalent (`n`, `seed`, `logprobs`, penalties, ...) are ignored:
//!   Anthropic has no seed, so sampling is not reproducible through it.
//!
//! Response choices: see [`chat_response`]. Anthropic counts thinking inside `output_tokens` and
//! reports no separate reasoning count, so `completion_tokens_details.reasoning_tokens` is never
//! written (rather than written as a misleading 0).

use portcullis_types::anthropic::{
    self, CacheControl, Content, ContentBlock, ImageBlock, ImageSource, Metadata, Role, StopReason,
    TextBlock, Thinking, ToolChoice, ToolChoiceType, ToolResultBlock, ToolUseBlock,
};
use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat, TextContent, UserContent,
    UserPart,
};
use portcullis_types::raw::{self, RawFields};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{TranslateError, extra, typed};

/// Thinking budget for `reasoning_effort: minimal | low`.
pub const BUDGET_LOW: u64 = 1024;
/// Thinking budget for `reasoning_effort: medium`.
pub const BUDGET_MEDIUM: u64 = 4096;
/// Thinking budget for `reasoning_effort: high`.
pub const BUDGET_HIGH: u64 = 16384;

/// The `top_p` range Anthropic accepts with thinking on.
const THINKING_TOP_P: std::ops::RangeInclusive<f64> = 0.95..=1.0;

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
    let mut system: Vec<ContentBlock> = Vec::new();
    let mut turns = Turns::default();
    for message in &messages {
        let cache = cache_control(message.extra())?;
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                let mut blocks = text_blocks(content)?;
                blocks.retain(|b| !is_empty_text(b));
                set_last_cache_control(&mut blocks, cache);
                system.extend(blocks);
            }
            Message::User { content, .. } => turns.push(Role::User, user_blocks(content)?, cache),
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
                        for part in parts {
                            blocks.push(match part {
                                AssistantPart::Text(t) => {
                                    text_block(&t.text, cache_control(&t.extra)?)
                                }
                                AssistantPart::Refusal(r) => {
                                    text_block(&r.refusal, cache_control(&r.extra)?)
                                }
                            });
                        }
                    }
                    None => {}
                }
                if let Some(refusal) = refusal {
                    blocks.push(ContentBlock::text(refusal));
                }
                for call in tool_calls {
                    blocks.push(tool_use_block(call)?);
                }
                turns.push(Role::Assistant, blocks, cache);
            }
            Message::Tool {
                content,
                tool_call_id,
                ..
            } => {
                let block = ContentBlock::ToolResult(ToolResultBlock {
                    tool_use_id: tool_call_id.clone(),
                    content: Some(tool_result_content(content)?),
                    is_error: None,
                    cache_control: cache,
                    extra: RawFields::new(),
                });
                turns.push(Role::User, vec![block], None);
            }
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }

    match typed(req.response_format(), "response_format")? {
        None | Some(ResponseFormat::Text { .. }) => {}
        Some(ResponseFormat::JsonObject { .. }) => {
            system.push(ContentBlock::text(JSON_OBJECT_INSTRUCTION));
        }
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
            system.push(ContentBlock::text(text));
        }
        Some(ResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    }

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
    if extra::<bool>(&req.extra, "parallel_tool_calls")? == Some(false) {
        let choice = tool_choice.get_or_insert_with(ToolChoice::auto);
        if choice.kind != ToolChoiceType::None {
            choice.disable_parallel_tool_use = Some(true);
        }
    }

    let budget = match extra::<String>(&req.extra, "reasoning_effort")?.as_deref() {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(BUDGET_LOW),
        Some("medium") => Some(BUDGET_MEDIUM),
        Some("high") => Some(BUDGET_HIGH),
        Some(_) => {
            return Err(TranslateError::UnsupportedValue {
                field: "reasoning_effort",
            });
        }
    };
    let forced_tool = tool_choice
        .as_ref()
        .is_some_and(|c| matches!(c.kind, ToolChoiceType::Any | ToolChoiceType::Tool));
    let budget = budget.filter(|_| !forced_tool && !turns.ends_with_tool_results());
    let mut max_tokens = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(default_max_tokens);
    if let Some(budget) = budget
        && max_tokens <= budget
    {
        max_tokens = budget.saturating_add(max_tokens);
    }
    let (temperature, top_p) = match budget {
        None => (
            extra(&req.extra, "temperature")?,
            extra(&req.extra, "top_p")?,
        ),
        Some(_) => (
            None,
            extra::<f64>(&req.extra, "top_p")?.filter(|p| THINKING_TOP_P.contains(p)),
        ),
    };

    let stop_sequences = typed(req.stop(), "stop")?
        .map(|stop| stop.sequences().to_vec())
        .filter(|seqs| !seqs.is_empty());
    let metadata = extra::<String>(&req.extra, "user")?.map(|user_id| Metadata {
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
        temperature,
        top_p,
        top_k: None,
        stop_sequences,
        stream: req.stream,
        metadata,
        thinking: budget.map(Thinking::enabled),
        extra: RawFields::new(),
    })
}

/// Translates an Anthropic message into an OpenAI `chat.completion` body, stamped `created`.
///
/// Text blocks are joined into `message.content` (null when the answer is only tool calls);
/// `tool_use` blocks become `tool_calls`; `thinking` blocks are joined into
/// `message.reasoning_content` (the de-facto field OpenAI-compatible servers use for reasoning;
/// `redacted_thinking` is dropped). Cache reads and writes count as prompt tokens, and cache reads
/// are also reported as `prompt_tokens_details.cached_tokens`. Stop reasons map as
/// [`finish_reason`] says.
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
    let finish_reason = resp.stop_reason.as_ref().map(finish_reason);
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

/// The OpenAI `finish_reason` of an Anthropic stop reason: `max_tokens` and
/// `model_context_window_exceeded` are `length`, `tool_use` is `tool_calls`, `refusal` is
/// `content_filter`, and every other reason (`end_turn`, `stop_sequence`, `pause_turn`, reasons
/// added later) is `stop`.
pub fn finish_reason(reason: &StopReason) -> &'static str {
    match reason {
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::Refusal => "content_filter",
        StopReason::Other(other) if other == "model_context_window_exceeded" => "length",
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::PauseTurn
        | StopReason::Other(_) => "stop",
    }
}

/// Messages being built, merging consecutive same-role turns.
#[derive(Default)]
struct Turns(Vec<(Role, Vec<ContentBlock>)>);

impl Turns {
    /// Adds one message's blocks; `cache` (the message's own `cache_control`) goes to its last
    /// block that survives.
    fn push(&mut self, role: Role, blocks: Vec<ContentBlock>, cache: Option<CacheControl>) {
        let mut blocks: Vec<_> = blocks.into_iter().filter(|b| !is_empty_text(b)).collect();
        set_last_cache_control(&mut blocks, cache);
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => {
                if !blocks.is_empty() {
                    self.0.push((role, blocks));
                }
            }
        }
    }

    /// Whether the last message is a user turn carrying tool results.
    fn ends_with_tool_results(&self) -> bool {
        self.0.last().is_some_and(|(role, blocks)| {
            *role == Role::User
                && blocks
                    .iter()
                    .any(|b| matches!(b, ContentBlock::ToolResult(_)))
        })
    }

    fn finish(self) -> Vec<anthropic::Message> {
        self.0
            .into_iter()
            .map(|(role, blocks)| anthropic::Message {
                role,
                content: simplify(blocks),
                extra: RawFields::new(),
            })
            .collect()
    }
}

/// One plain text block as a string, anything else as blocks.
fn simplify(mut blocks: Vec<ContentBlock>) -> Content {
    match blocks.as_mut_slice() {
        [ContentBlock::Text(t)] if is_plain(t) => Content::Text(std::mem::take(&mut t.text)),
        _ => Content::Blocks(blocks),
    }
}

/// A text block that says nothing but its text.
fn is_plain(t: &TextBlock) -> bool {
    t.cache_control.is_none() && t.citations.is_none() && t.extra.is_empty()
}

fn is_empty_text(block: &ContentBlock) -> bool {
    matches!(block, ContentBlock::Text(t) if t.text.is_empty())
}

fn system_content(blocks: Vec<ContentBlock>) -> Option<Content> {
    (!blocks.is_empty()).then(|| simplify(blocks))
}

fn text_block(text: &str, cache_control: Option<CacheControl>) -> ContentBlock {
    ContentBlock::Text(TextBlock {
        text: text.to_owned(),
        citations: None,
        cache_control,
        extra: RawFields::new(),
    })
}

/// The text of a system, developer or tool message: one block of the joined parts, or one
/// block per part when some part carries `cache_control`.
fn text_blocks(content: &TextContent) -> Result<Vec<ContentBlock>, TranslateError> {
    let TextContent::Parts(parts) = content else {
        return Ok(vec![ContentBlock::text(content.joined())]);
    };
    let caches = parts
        .iter()
        .map(|p| cache_control(&p.extra))
        .collect::<Result<Vec<_>, _>>()?;
    if caches.iter().all(Option::is_none) {
        return Ok(vec![ContentBlock::text(content.joined())]);
    }
    Ok(parts
        .iter()
        .zip(caches)
        .map(|(part, cache)| text_block(&part.text, cache))
        .collect())
}

/// A tool message's content: a string, or text blocks when parts carry `cache_control`.
fn tool_result_content(content: &TextContent) -> Result<Content, TranslateError> {
    let mut blocks = text_blocks(content)?;
    if blocks.len() > 1 {
        blocks.retain(|b| !is_empty_text(b));
    }
    Ok(simplify(blocks))
}

/// The `cache_control` of an OpenAI object's extra fields; JSON null counts as absent.
fn cache_control(extra: &RawFields) -> Result<Option<CacheControl>, TranslateError> {
    match extra.get("cache_control") {
        None => Ok(None),
        Some(v) if raw::is_null(v) => Ok(None),
        Some(v) => {
            serde_json::from_str(v.get())
                .map(Some)
                .map_err(|_| TranslateError::InvalidField {
                    field: "cache_control",
                })
        }
    }
}

fn set_last_cache_control(blocks: &mut [ContentBlock], cache: Option<CacheControl>) {
    let (Some(cache), Some(last)) = (cache, blocks.last_mut()) else {
        return;
    };
    let slot = match last {
        ContentBlock::Text(b) => &mut b.cache_control,
        ContentBlock::Image(b) => &mut b.cache_control,
        ContentBlock::ToolUse(b) => &mut b.cache_control,
        ContentBlock::ToolResult(b) => &mut b.cache_control,
        ContentBlock::Document(b) => &mut b.cache_control,
        // Never produced by this translation; Anthropic caches none of these.
        ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) | ContentBlock::Other(_) => {
            return;
        }
    };
    *slot = Some(cache);
}

fn user_blocks(content: &UserContent) -> Result<Vec<ContentBlock>, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(vec![ContentBlock::text(text)]),
        UserContent::Parts(parts) => parts,
    };
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(text_block(&t.text, cache_control(&t.extra)?)),
            UserPart::ImageUrl(image) => Ok(ContentBlock::Image(ImageBlock {
                source: image_source(&image.image_url.url)?,
                cache_control: cache_control(&image.extra)?,
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
    let cache_control = match cache_control(&tool.extra)? {
        Some(c) => Some(c),
        None => cache_control(&f.extra)?,
    };
    Ok(anthropic::Tool {
        kind: None,
        name: f.name.clone(),
        description: f.description.clone(),
        input_schema: Some(input_schema),
        cache_control,
        extra: RawFields::new(),
    })
}

fn raw_json(text: &str) -> serde_json::Result<Box<RawValue>> {
    RawValue::from_string(text.to_owned())
}

#[cfg(test)]
mod tests;

//! OpenAI chat chunks to Anthropic stream events, one chunk at a time.
//!
//! Anthropic streams are a sequence of content blocks, each opened (`content_block_start`),
//! filled (`content_block_delta`) and closed (`content_block_stop`) before the next opens, between
//! a `message_start` and a `message_delta` (stop reason, usage) plus `message_stop`. OpenAI chunks
//! interleave nothing of the kind, so the translator keeps the one open block and switches blocks
//! when the kind of delta changes: `reasoning_content` → `thinking`, `content` → `text`, each new
//! tool call (a new `index`) → `tool_use`, its argument fragments → `input_json_delta`.
//!
//! OpenAI sends the finish reason and the usage in separate chunks, usage last, so the closing
//! `message_delta` and `message_stop` are sent at `[DONE]` (or at the end of the stream).
//! Anthropic reports input tokens in `message_start`; they are not known yet at that point, so
//! `message_start` says 0 and the `message_delta` carries the input, cache and output counts.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{message_id, stop_reason};

/// One Anthropic event: its `event:` name and its JSON payload.
pub type Event = (&'static str, Vec<u8>);

/// Why the stream cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("a stream chunk is not an OpenAI chat completion chunk")]
    NotAChunk,
    #[error("tool call {0} received arguments after the next tool call started")]
    InterleavedToolCall(u64),
}

// Strings are borrowed from the chunk where they have no escapes.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    model: Cow<'a, str>,
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<ChunkUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Delta<'a>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Vec<ToolCallDelta<'a>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// A `content_block_delta` event's payload.
#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u64,
    delta: DeltaBody<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaBody<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Debug, Deserialize, Clone, Copy)]
struct ChunkUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    prompt_tokens_details: Option<Details>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
struct Details {
    cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    /// A tool call, by its OpenAI `index`.
    Tool(u64),
}

/// The translator of one stream.
#[derive(Debug, Default)]
pub struct MessagesStream {
    started: bool,
    /// The open block and its Anthropic index.
    open: Option<(Block, u64)>,
    /// Blocks opened so far (the next block's index).
    blocks: u64,
    /// Tool call indexes already closed.
    closed_tools: Vec<u64>,
    finish: Option<String>,
    usage: Option<ChunkUsage>,
    done: bool,
}

impl MessagesStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the closing events were sent.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Translates one chunk (`data:` payload; `[DONE]` ends the message).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Event>, StreamError> {
        let mut out = Vec::new();
        if self.done {
            return Ok(out);
        }
        if data == b"[DONE]" {
            self.finish_into(&mut out);
            return Ok(out);
        }
        let chunk: Chunk = serde_json::from_slice(data).map_err(|_| StreamError::NotAChunk)?;
        if !self.started {
            self.started = true;
            out.push(event(
                "message_start",
                &json!({
                    "type": "message_start",
                    "message": {
                        "id": message_id(&chunk.id),
                        "type": "message",
                        "role": "assistant",
                        "model": chunk.model,
                        "content": [],
                        "stop_reason": null,
                        "stop_sequence": null,
                        "usage": {"input_tokens": 0, "output_tokens": 0},
                    },
                }),
            ));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                self.open_block(Block::Thinking, &mut out)?;
                self.delta(DeltaBody::Thinking { thinking: &text }, &mut out);
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                self.open_block(Block::Text, &mut out)?;
                self.delta(DeltaBody::Text { text: &text }, &mut out);
            }
            for call in delta.tool_calls {
                self.tool_call(call, &mut out)?;
            }
            if let Some(finish) = choice.finish_reason {
                self.finish = Some(finish);
            }
        }
        Ok(out)
    }

    /// Closes the message at the end of the upstream stream, if `[DONE]` did not. `None` when
    /// the stream ended before anything was translated or before a finish reason: it broke off.
    pub fn end(&mut self) -> Option<Vec<Event>> {
        if self.done {
            return Some(Vec::new());
        }
        if !self.started || self.finish.is_none() {
            return None;
        }
        let mut out = Vec::new();
        self.finish_into(&mut out);
        Some(out)
    }

    fn tool_call(
        &mut self,
        call: ToolCallDelta<'_>,
        out: &mut Vec<Event>,
    ) -> Result<(), StreamError> {
        let function = call.function.unwrap_or(FunctionDelta {
            name: None,
            arguments: None,
        });
        let is_open = self.open.is_some_and(|(b, _)| b == Block::Tool(call.index));
        if !is_open {
            if self.closed_tools.contains(&call.index) {
                return Err(StreamError::InterleavedToolCall(call.index));
            }
            self.close(out);
            let index = self.blocks;
            self.blocks += 1;
            self.open = Some((Block::Tool(call.index), index));
            out.push(event(
                "content_block_start",
                &json!({
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": call.id.unwrap_or_default(),
                        "name": function.name.unwrap_or_default(),
                        "input": {},
                    },
                }),
            ));
        }
        if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
            self.delta(
                DeltaBody::InputJson {
                    partial_json: &args,
                },
                out,
            );
        }
        Ok(())
    }

    fn open_block(&mut self, block: Block, out: &mut Vec<Event>) -> Result<(), StreamError> {
        if self.open.is_some_and(|(b, _)| b == block) {
            return Ok(());
        }
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((block, index));
        let content_block = match block {
            Block::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Block::Text => json!({"type": "text", "text": ""}),
            Block::Tool(_) => return Ok(()),
        };
        out.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        Ok(())
    }

    fn delta(&mut self, delta: DeltaBody<'_>, out: &mut Vec<Event>) {
        if let Some((_, index)) = self.open {
            let payload = BlockDelta {
                kind: "content_block_delta",
                index,
                delta,
            };
            out.push((
                "content_block_delta",
                serde_json::to_vec(&payload).unwrap_or_default(),
            ));
        }
    }

    fn close(&mut self, out: &mut Vec<Event>) {
        if let Some((block, index)) = self.open.take() {
            if let Block::Tool(i) = block {
                self.closed_tools.push(i);
            }
            out.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn finish_into(&mut self, out: &mut Vec<Event>) {
        if !self.started {
            // `[DONE]` with nothing before it: an empty message.
            self.started = true;
            out.push(event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": message_id(""), "type": "message", "role": "assistant", "model": "",
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0}}}),
            ));
        }
        self.close(out);
        let usage = self.usage.map_or_else(
            || json!({"output_tokens": 0}),
            |u| {
                let cached = u
                    .prompt_tokens_details
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0)
                    .min(u.prompt_tokens);
                json!({
                    "input_tokens": u.prompt_tokens - cached,
                    "cache_read_input_tokens": cached,
                    "output_tokens": u.completion_tokens,
                })
            },
        );
        let reason = self.finish.as_deref().map_or("end_turn", stop_reason);
        out.push(event(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": usage,
            }),
        ));
        out.push(event("message_stop", &json!({"type": "message_stop"})));
        self.done = true;
    }
}

fn event(name: &'static str, payload: &Value) -> Event {
    (name, serde_json::to_vec(payload).unwrap_or_default())
}

//! Anthropic Messages stream events -> OpenAI `chat.completion.chunk`s.
//!
//! [`ChatStream`] is a state machine fed one event at a time ([`ChatStream::push`], or
//! [`ChatStream::push_sse`] for a decoded SSE event), returning the chunks to send, in order.
//!
//! Choices:
//! - `message_start` gives the chunks their `id` and `model` (`created` is the adapter's clock),
//!   and sends the first chunk: `delta: {"role": "assistant", "content": ""}`. Any content
//!   before it is a broken stream.
//! - `text` blocks and `text_delta`s are `delta.content`; `thinking` blocks and `thinking_delta`s
//!   are `delta.reasoning_content`. Empty text sends nothing. `signature_delta`,
//!   `citations_delta`, `redacted_thinking` blocks and block types this module does not know
//!   (server tools and their results) send nothing.
//! - Each `tool_use` block is one OpenAI tool call, numbered 0, 1, .. over tool blocks only (not
//!   over Anthropic's block indexes): its `content_block_start` sends the call's `index`, `id`,
//!   `type` and `name` with empty `arguments`, each `input_json_delta` sends its `partial_json`
//!   as an `arguments` fragment. A block that got no fragment at all sends its start `input`
//!   (`{}`) at its `content_block_stop`, so a call without arguments still has valid JSON ones.
//!   An `input_json_delta` for a block that did not start as a tool call (or a server tool) is a
//!   broken stream: its arguments could not be attributed.
//! - The first `message_delta` with a `stop_reason` sends the `finish_reason` chunk (mapped as
//!   [`super::anthropic::finish_reason`]); `message_stop` sends one (`stop`) if none came.
//! - `message_stop` then sends the usage chunk (`"choices": []`) and `[DONE]`. Prompt tokens are
//!   `input_tokens` + cache reads + cache writes, cache reads are also `cached_tokens`; counts of
//!   the last `message_delta` (cumulative) override those of `message_start`. Anthropic reports
//!   no separate reasoning count, so `reasoning_tokens` is not written.
//! - An `error` event is an `Err`, classified by its `error.type` (with the status that type
//!   goes with) and message; `ping` and unknown event types are ignored, and so is anything
//!   after `message_stop`. A stream that ends before `message_stop` is broken ([`ChatStream::finish`]).

use bytes::Bytes;
use http::StatusCode;
use portcullis_types::Usage;
use portcullis_types::anthropic::{
    ContentBlock, ContentDelta, DeltaUsage, ErrorDetail, StreamEvent, Usage as AnthropicUsage,
};
use serde_json::Value;

use super::anthropic::finish_reason;
use super::openai_chunk::ChunkWriter;
use crate::provider::{ProviderError, upstream};
use crate::sse::SseEvent;

/// One output of the translator: a serialized OpenAI chunk, or the final `[DONE]`.
#[derive(Clone, PartialEq)]
pub enum Chunk {
    Json(Bytes),
    Done,
}

impl std::fmt::Debug for Chunk {
    /// Chunks carry response content: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(_) => f.write_str("Chunk::Json"),
            Self::Done => f.write_str("Chunk::Done"),
        }
    }
}

impl Chunk {
    /// The chunk parsed back into JSON, `[DONE]` as the JSON string `"[DONE]"` (for tests and
    /// snapshots; `Null` if the bytes were not JSON, which the writer never produces).
    pub fn to_value(&self) -> Value {
        match self {
            Self::Json(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            Self::Done => Value::String("[DONE]".to_owned()),
        }
    }
}

/// What an Anthropic content block is to the translation.
enum Block {
    Text,
    Thinking,
    /// OpenAI tool call `index`; `input` is the block's start `input`, sent at its stop when
    /// no fragment came.
    Tool {
        index: u32,
        input: String,
        sent: bool,
    },
    /// Redacted thinking, server tools and unknown block types.
    Ignored,
}

/// Token counts so far.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

/// The translator of one stream.
pub struct ChatStream {
    /// Holds the chunks' `id` and `model` (from `message_start`) and `created`.
    writer: ChunkWriter,
    started: bool,
    /// Anthropic block index -> what it is, in start order (a stream has few blocks).
    blocks: Vec<(u32, Block)>,
    tools: u32,
    finished: bool,
    done: bool,
    counts: Counts,
}

impl std::fmt::Debug for ChatStream {
    /// Ids, names and counts; never content or arguments.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("id", &self.writer.id)
            .field("model", &self.writer.model)
            .field("started", &self.started)
            .field("blocks", &self.blocks.len())
            .field("tools", &self.tools)
            .field("done", &self.done)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// A translator whose chunks say `created` (Unix seconds).
    pub fn new(created: u64) -> Self {
        Self {
            writer: ChunkWriter::new(String::new(), String::new(), created),
            started: false,
            blocks: Vec::new(),
            tools: 0,
            finished: false,
            done: false,
            counts: Counts::default(),
        }
    }

    /// Whether `message_stop` was translated (everything after it is ignored).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Translates one decoded SSE event. Its data must be one Anthropic stream event.
    pub fn push_sse(&mut self, event: &SseEvent) -> Result<Vec<Chunk>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let parsed: StreamEvent = serde_json::from_slice(&event.data).map_err(|_| {
            ProviderError::InvalidResponse(
                "an Anthropic stream event is not a valid event object".into(),
            )
        })?;
        self.push(parsed)
    }

    /// Translates one stream event.
    pub fn push(&mut self, event: StreamEvent) -> Result<Vec<Chunk>, ProviderError> {
        if self.done {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        match event {
            StreamEvent::MessageStart { message, .. } => {
                if self.started {
                    return Err(broken("a second message_start"));
                }
                self.started = true;
                self.writer.id = message.id;
                self.writer.model = message.model;
                self.counts = counts(&message.usage);
                out.push(Chunk::Json(self.writer.role()));
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
                ..
            } => {
                self.check_started()?;
                let block = match content_block {
                    ContentBlock::Text(t) => {
                        self.text(&mut out, ChunkWriter::content, &t.text);
                        Block::Text
                    }
                    ContentBlock::Thinking(t) => {
                        self.text(&mut out, ChunkWriter::reasoning, &t.thinking);
                        Block::Thinking
                    }
                    ContentBlock::ToolUse(t) => {
                        let tool = self.tools;
                        self.tools = self.tools.saturating_add(1);
                        out.push(Chunk::Json(self.writer.tool_call_start(
                            tool as usize,
                            &t.id,
                            &t.name,
                        )));
                        Block::Tool {
                            index: tool,
                            input: t.input.get().to_owned(),
                            sent: false,
                        }
                    }
                    _ => Block::Ignored,
                };
                self.blocks.push((index, block));
            }
            StreamEvent::ContentBlockDelta { index, delta, .. } => {
                self.check_started()?;
                match delta {
                    ContentDelta::Text { text } => {
                        self.text(&mut out, ChunkWriter::content, &text);
                    }
                    ContentDelta::Thinking { thinking } => {
                        self.text(&mut out, ChunkWriter::reasoning, &thinking);
                    }
                    ContentDelta::InputJson { partial_json } => {
                        let fragment = match self.block(index) {
                            Some(Block::Tool { index, sent, .. }) => {
                                *sent |= !partial_json.is_empty();
                                (!partial_json.is_empty()).then_some(*index)
                            }
                            Some(Block::Ignored) => None,
                            _ => return Err(broken("a tool input delta outside a tool call")),
                        };
                        if let Some(tool) = fragment {
                            out.push(self.arguments(tool, &partial_json));
                        }
                    }
                    ContentDelta::Signature { .. }
                    | ContentDelta::Citations { .. }
                    | ContentDelta::Other(_) => {}
                }
            }
            StreamEvent::ContentBlockStop { index, .. } => {
                let pending = match self.block(index) {
                    Some(Block::Tool {
                        index, input, sent, ..
                    }) if !*sent && !input.is_empty() => {
                        *sent = true;
                        Some((*index, std::mem::take(input)))
                    }
                    _ => None,
                };
                if let Some((tool, input)) = pending {
                    out.push(self.arguments(tool, &input));
                }
            }
            StreamEvent::MessageDelta { delta, usage, .. } => {
                self.check_started()?;
                self.update_counts(&usage);
                if let Some(reason) = &delta.stop_reason
                    && !self.finished
                {
                    self.finished = true;
                    out.push(Chunk::Json(self.writer.finish(finish_reason(reason))));
                }
            }
            StreamEvent::MessageStop => {
                self.check_started()?;
                if !self.finished {
                    self.finished = true;
                    out.push(Chunk::Json(self.writer.finish("stop")));
                }
                out.push(self.usage_chunk());
                out.push(Chunk::Done);
                self.done = true;
            }
            StreamEvent::Error { error, .. } => {
                self.done = true;
                return Err(stream_error(&error));
            }
            StreamEvent::Ping | StreamEvent::Other(_) => {}
        }
        Ok(out)
    }

    /// Checks that the stream ended properly, once the upstream body has ended.
    pub fn finish(&mut self) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            self.done = true;
            Err(ProviderError::StreamBroken(
                "the stream ended before message_stop".into(),
            ))
        }
    }

    fn check_started(&self) -> Result<(), ProviderError> {
        if self.started {
            Ok(())
        } else {
            Err(broken("content before message_start"))
        }
    }

    /// The block started last at `index`.
    fn block(&mut self, index: u32) -> Option<&mut Block> {
        self.blocks
            .iter_mut()
            .rev()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    fn update_counts(&mut self, usage: &DeltaUsage) {
        let c = &mut self.counts;
        c.output = usage.output_tokens;
        if let Some(input) = usage.input_tokens {
            c.input = input;
        }
        if let Some(read) = usage.cache_read_input_tokens {
            c.cache_read = read;
        }
        if let Some(write) = usage.cache_creation_input_tokens {
            c.cache_write = write;
        }
    }

    /// Sends `text` as the delta `write` makes of it, unless it is empty.
    fn text(&self, out: &mut Vec<Chunk>, write: fn(&ChunkWriter, &str) -> Bytes, text: &str) {
        if !text.is_empty() {
            out.push(Chunk::Json(write(&self.writer, text)));
        }
    }

    fn arguments(&self, tool: u32, fragment: &str) -> Chunk {
        Chunk::Json(self.writer.tool_call_arguments(tool as usize, fragment))
    }

    /// Anthropic counts no reasoning tokens apart: `completion_tokens_details` is left out.
    fn usage_chunk(&self) -> Chunk {
        let c = self.counts;
        let prompt = c
            .input
            .saturating_add(c.cache_read)
            .saturating_add(c.cache_write);
        let usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: c.output,
            total_tokens: prompt.saturating_add(c.output),
            cached_tokens: c.cache_read,
            reasoning_tokens: 0,
        };
        Chunk::Json(self.writer.usage_without_reasoning(&usage))
    }
}

fn counts(usage: &AnthropicUsage) -> Counts {
    Counts {
        input: usage.input_tokens,
        cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        cache_write: usage.cache_creation_input_tokens.unwrap_or(0),
        output: usage.output_tokens,
    }
}

fn broken(what: &str) -> ProviderError {
    ProviderError::InvalidResponse(format!("the Anthropic stream sent {what}"))
}

/// An in-stream `error` event, classified like an error response of the status its type goes
/// with (`overloaded_error` 529, `rate_limit_error` 429, `invalid_request_error` 400, ...).
pub fn stream_error(error: &ErrorDetail) -> ProviderError {
    let status = StatusCode::from_u16(error.kind.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    ProviderError::classify(
        status,
        Some(error.kind.as_str()),
        Some(upstream::short_message(&error.message)),
    )
}

#[cfg(test)]
mod tests;

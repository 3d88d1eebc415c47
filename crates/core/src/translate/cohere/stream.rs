//! Cohere v2 chat stream events -> OpenAI `chat.completion.chunk`s.
//!
//! Cohere frames each event as SSE with an `event:` line and a JSON `data:` line that repeats
//! the event name in `type`; the `type` is authoritative, the `event:` name is the fallback. The
//! events map as follows:
//! - `message-start`: the id of every chunk, and the first chunk (`delta.role: assistant`).
//! - `content-start` / `content-delta`: `text` → `delta.content`, `thinking` →
//!   `delta.reasoning_content`.
//! - `tool-plan-delta`: `delta.content` (the answer's text when it calls tools, as in
//!   [`super::chat_response`]).
//! - `tool-call-start`: a new OpenAI tool call index with its id, name and empty arguments;
//!   `tool-call-delta`: an argument fragment for the call of the same Cohere `index`.
//! - `message-end`: the finish chunk, then ALWAYS the usage chunk (`choices: []`); the stream is
//!   then done. `delta.error`, or a `finish_reason` of `ERROR` or `TIMEOUT`, is an error instead.
//! - `content-end`, `tool-call-end`, `citation-*`, `debug` and unknown events carry nothing to
//!   forward. A `data: [DONE]` (sent by some Cohere-compatible servers) is skipped.
//!
//! A body that is not JSON, a known event whose `delta` has the wrong shape, or an error object
//! (`{"message": ...}` without a `type`) is an error; so is a stream that ends before
//! `message-end` ([`ChatStream::finish`]).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::types::Usage;
use super::{finish_reason, usage};
use crate::provider::{ProviderError, upstream};
use crate::translate::openai_chunk::{self, ChunkWriter};

/// Translates one Cohere chat stream into serialized OpenAI chunks. Feed each SSE event to
/// [`ChatStream::push`].
#[derive(Debug)]
pub struct ChatStream {
    /// The chunks' `id` (from `message-start`), `model` and `created`.
    writer: ChunkWriter,
    role_sent: bool,
    /// Cohere tool call index -> OpenAI tool call index, in start order.
    calls: Vec<(usize, usize)>,
    done: bool,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    index: Option<usize>,
    #[serde(borrow)]
    delta: Option<&'a RawValue>,
    /// Only in error objects.
    message: Option<String>,
}

#[derive(Deserialize)]
struct Delta<M> {
    message: Option<M>,
}

#[derive(Deserialize)]
struct ContentMessage {
    content: Option<ContentPiece>,
}

#[derive(Deserialize)]
struct ContentPiece {
    text: Option<String>,
    thinking: Option<String>,
}

#[derive(Deserialize)]
struct PlanMessage {
    tool_plan: Option<String>,
}

#[derive(Deserialize)]
struct CallMessage {
    tool_calls: Option<CallPiece>,
}

#[derive(Deserialize)]
struct CallPiece {
    id: Option<String>,
    function: Option<FunctionPiece>,
}

#[derive(Deserialize)]
struct FunctionPiece {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct EndDelta {
    finish_reason: Option<String>,
    usage: Option<Usage>,
    error: Option<String>,
}

impl ChatStream {
    /// A translator for a stream answering with `model`, its chunks stamped `created`.
    pub fn new(model: &str, created: u64) -> Self {
        Self {
            writer: ChunkWriter::new(String::new(), model, created),
            role_sent: false,
            calls: Vec::new(),
            done: false,
        }
    }

    /// Whether `message-end` was seen: nothing more will be produced.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Checks the stream ended properly (with `message-end`), when the upstream body ends.
    pub fn finish(&self) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::StreamBroken(
                "the Cohere stream ended before message-end".into(),
            ))
        }
    }

    /// Translates one SSE event (its `event:` name and `data:`) into zero or more chunks.
    pub fn push(&mut self, name: Option<&str>, data: &[u8]) -> Result<Vec<Bytes>, ProviderError> {
        if self.done || data.trim_ascii() == b"[DONE]" || data.trim_ascii().is_empty() {
            return Ok(Vec::new());
        }
        let event: Event<'_> = serde_json::from_slice(data).map_err(|_| {
            ProviderError::InvalidResponse("a Cohere stream event is not valid JSON".into())
        })?;
        let Some(kind) = event.kind.as_deref().or(name) else {
            return Err(ProviderError::StreamBroken(
                event.message.as_deref().map_or_else(
                    || "an untyped Cohere stream event".into(),
                    upstream::short_message,
                ),
            ));
        };
        let mut out = Vec::new();
        match kind {
            "message-start" => {
                if let Some(id) = event.id {
                    self.writer.id = id;
                }
                if !self.role_sent {
                    self.role_sent = true;
                    out.push(self.writer.role());
                }
            }
            "content-start" | "content-delta" => {
                let piece = parse::<Delta<ContentMessage>>(kind, event.delta)?
                    .and_then(|d| d.message)
                    .and_then(|m| m.content);
                if let Some(piece) = piece {
                    if let Some(text) = piece.text.filter(|t| !t.is_empty()) {
                        out.push(self.delta(openai_chunk::Delta::content(&text)));
                    }
                    if let Some(thinking) = piece.thinking.filter(|t| !t.is_empty()) {
                        out.push(self.delta(openai_chunk::Delta::reasoning(&thinking)));
                    }
                }
            }
            "tool-plan-delta" => {
                let plan = parse::<Delta<PlanMessage>>(kind, event.delta)?
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_plan)
                    .filter(|p| !p.is_empty());
                if let Some(plan) = plan {
                    out.push(self.delta(openai_chunk::Delta::content(&plan)));
                }
            }
            "tool-call-start" => {
                let piece = parse::<Delta<CallMessage>>(kind, event.delta)?
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls)
                    .ok_or_else(|| malformed(kind))?;
                let function = piece.function.ok_or_else(|| malformed(kind))?;
                let index = self.calls.len();
                self.calls.push((event.index.unwrap_or(index), index));
                out.push(self.delta(openai_chunk::Delta::tool_call_start(
                    index,
                    piece.id.as_deref().unwrap_or_default(),
                    function.name.as_deref().unwrap_or_default(),
                    None,
                )));
                if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
                    out.push(self.delta(openai_chunk::Delta::tool_call_arguments(index, &args)));
                }
            }
            "tool-call-delta" => {
                let args = parse::<Delta<CallMessage>>(kind, event.delta)?
                    .and_then(|d| d.message)
                    .and_then(|m| m.tool_calls)
                    .and_then(|c| c.function)
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty());
                if let Some(args) = args {
                    let index = match event.index {
                        Some(i) => self.calls.iter().find(|(c, _)| *c == i).map(|(_, o)| *o),
                        None => self.calls.last().map(|(_, o)| *o),
                    }
                    .ok_or_else(|| {
                        ProviderError::InvalidResponse(
                            "a Cohere tool-call-delta event names no started tool call".into(),
                        )
                    })?;
                    out.push(self.delta(openai_chunk::Delta::tool_call_arguments(index, &args)));
                }
            }
            "message-end" => {
                let end = parse::<EndDelta>(kind, event.delta)?.unwrap_or(EndDelta {
                    finish_reason: None,
                    usage: None,
                    error: None,
                });
                if let Some(error) = end.error.as_deref().filter(|e| !e.is_empty())
                    && end.finish_reason.as_deref() != Some("TIMEOUT")
                {
                    return Err(ProviderError::Server {
                        status: 502,
                        message: Some(upstream::short_message(error)),
                    });
                }
                let finish = finish_reason(end.finish_reason.as_deref(), end.error.as_deref())?;
                if !self.role_sent {
                    self.role_sent = true;
                    out.push(self.writer.role());
                }
                out.push(self.writer.finish(finish));
                out.push(self.writer.usage(&usage(end.usage.as_ref())));
                self.done = true;
            }
            _ => {}
        }
        Ok(out)
    }

    /// A content chunk; the first one also carries the role.
    fn delta(&mut self, delta: openai_chunk::Delta<'_>) -> Bytes {
        if self.role_sent {
            self.writer.delta(delta)
        } else {
            self.role_sent = true;
            self.writer.delta(delta.with_role())
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    kind: &str,
    delta: Option<&RawValue>,
) -> Result<Option<T>, ProviderError> {
    delta
        .map(|raw| serde_json::from_str(raw.get()).map_err(|_| malformed(kind)))
        .transpose()
}

/// `kind` is one of the event names matched above, never content.
fn malformed(kind: &str) -> ProviderError {
    ProviderError::InvalidResponse(format!("a Cohere {kind} event is malformed"))
}

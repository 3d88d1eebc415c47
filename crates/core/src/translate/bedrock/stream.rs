//! ConverseStream events as OpenAI `chat.completion.chunk`s, and Bedrock errors (HTTP error
//! answers and in-stream exceptions) as classified [`ProviderError`]s.
//!
//! Choices:
//! - `messageStart` yields the first chunk, `delta: {role: "assistant", content: ""}` (also
//!   produced before any other output should an upstream skip `messageStart`).
//! - Text deltas become `delta.content`; reasoning text deltas become
//!   `delta.reasoning_content` (signatures and redacted reasoning are dropped).
//! - A `contentBlockStart` with a `toolUse` yields `delta.tool_calls: [{index, id, type,
//!   function: {name, arguments: ""}}]`, where `index` counts tool blocks in order (0, 1, ...),
//!   not Converse's `contentBlockIndex` (which also counts text blocks); each non-empty
//!   `toolUse.input` fragment then yields `{index, function: {arguments}}`. A tool delta for a block that never
//!   started is a malformed stream. Placeholder tool blocks are skipped whole.
//! - `messageStop` yields the chunk with `finish_reason` (mapped as for whole answers);
//!   `metadata` yields the usage chunk (`choices: []`). A stream that ends after `messageStop`
//!   without `metadata` still gets a usage chunk (all zeros) from [`StreamTranslator::finish`];
//!   one that ends before `messageStop` is broken.
//! - Unknown event types are ignored (Bedrock adds events; a gateway should not break on them).
//!   A payload that is not the JSON its event type promises is a malformed stream.

use bytes::Bytes;
use http::StatusCode;
use portcullis_types::Usage;
use serde::Deserialize;

use super::PLACEHOLDER_TOOL;
use super::response::{TokenUsage, finish_reason};
use crate::provider::{ProviderError, upstream};
use crate::translate::openai_chunk::ChunkWriter;

/// The status a Bedrock error type stands for, for classification. Converse's own statuses,
/// except that a model's failure (`ModelErrorException`, `modelStreamErrorException`, HTTP 424
/// on the wire) counts as a bad gateway: it is the upstream's fault, not the request's, and
/// another deployment may succeed. Names match in any case (`ThrottlingException` as an HTTP
/// error type, `throttlingException` as a stream event). `None` for unknown types.
pub fn exception_status(kind: &str) -> Option<StatusCode> {
    let status = match kind.to_ascii_lowercase().as_str() {
        "validationexception" | "servicequotaexceededexception" => StatusCode::BAD_REQUEST,
        "accessdeniedexception" => StatusCode::FORBIDDEN,
        "resourcenotfoundexception" => StatusCode::NOT_FOUND,
        "modeltimeoutexception" => StatusCode::REQUEST_TIMEOUT,
        "throttlingexception" | "modelnotreadyexception" => StatusCode::TOO_MANY_REQUESTS,
        "internalserverexception" => StatusCode::INTERNAL_SERVER_ERROR,
        "modelerrorexception" | "modelstreamerrorexception" => StatusCode::BAD_GATEWAY,
        "serviceunavailableexception" => StatusCode::SERVICE_UNAVAILABLE,
        _ => return None,
    };
    Some(status)
}

/// Classifies a Bedrock error: `status` is the HTTP status when there was one (an in-stream
/// exception has none), `kind` the error type, `payload` the error body (`{"message": ...}`).
pub fn classify_error(
    status: Option<StatusCode>,
    kind: Option<&str>,
    payload: &[u8],
) -> ProviderError {
    #[derive(Deserialize)]
    struct Body {
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let message = serde_json::from_slice::<Body>(payload)
        .ok()
        .and_then(|b| b.message)
        .map(|m| upstream::short_message(&m));
    let by_kind = kind.and_then(exception_status);
    let status = match (status, by_kind) {
        // A model failure keeps its upstream-fault status whatever the wire said (424).
        (_, Some(StatusCode::BAD_GATEWAY)) => StatusCode::BAD_GATEWAY,
        (Some(status), _) => status,
        (None, Some(status)) => status,
        (None, None) => StatusCode::BAD_GATEWAY,
    };
    ProviderError::classify(status, kind, message)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u64,
    #[serde(default)]
    start: Option<StartUnion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartUnion {
    tool_use: Option<ToolStart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStart {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u64,
    delta: DeltaUnion,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaUnion {
    text: Option<String>,
    tool_use: Option<ToolDelta>,
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize)]
struct ToolDelta {
    input: String,
}

#[derive(Deserialize)]
struct ReasoningDelta {
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: String,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: TokenUsage,
}

/// What became of a tool block, by its `contentBlockIndex`.
#[derive(Debug, Clone, Copy)]
enum ToolBlock {
    /// Shown to the client as the tool call with this `index`.
    Shown(usize),
    /// A call of the placeholder tool: skipped.
    Hidden,
}

/// Turns ConverseStream events, one at a time, into serialized OpenAI chunks.
#[derive(Debug)]
pub struct StreamTranslator {
    writer: ChunkWriter,
    started: bool,
    /// Tool blocks seen, by `contentBlockIndex` (few per answer: a scan beats a map).
    tools: Vec<(u64, ToolBlock)>,
    shown_calls: usize,
    stopped: bool,
    usage: Option<Usage>,
}

impl StreamTranslator {
    /// A translator whose chunks carry `id`, `model` and `created`.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64) -> Self {
        Self {
            writer: ChunkWriter::new(id, model, created),
            started: false,
            tools: Vec::new(),
            shown_calls: 0,
            stopped: false,
            usage: None,
        }
    }

    /// The usage reported by the `metadata` event, once it came.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether both `messageStop` and `metadata` arrived: nothing more is needed.
    pub fn is_complete(&self) -> bool {
        self.stopped && self.usage.is_some()
    }

    /// Translates one event (`:event-type` and its JSON payload) into zero or more chunks.
    pub fn push(&mut self, event_type: &str, payload: &[u8]) -> Result<Vec<Bytes>, ProviderError> {
        let mut out = Vec::new();
        match event_type {
            "messageStart" => self.start(&mut out),
            "contentBlockStart" => {
                let event: BlockStart = parse(event_type, payload)?;
                if let Some(tool) = event.start.and_then(|s| s.tool_use) {
                    let block = if tool.name == PLACEHOLDER_TOOL {
                        ToolBlock::Hidden
                    } else {
                        let index = self.shown_calls;
                        self.shown_calls += 1;
                        self.start(&mut out);
                        out.push(
                            self.writer
                                .tool_call_start(index, &tool.tool_use_id, &tool.name),
                        );
                        ToolBlock::Shown(index)
                    };
                    self.tools.push((event.content_block_index, block));
                }
            }
            "contentBlockDelta" => {
                let event: BlockDelta = parse(event_type, payload)?;
                let delta = event.delta;
                if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                    self.start(&mut out);
                    out.push(self.writer.content(&text));
                }
                if let Some(text) = delta
                    .reasoning_content
                    .and_then(|r| r.text)
                    .filter(|t| !t.is_empty())
                {
                    self.start(&mut out);
                    out.push(self.writer.reasoning(&text));
                }
                if let Some(tool) = delta.tool_use {
                    match self.tool_block(event.content_block_index) {
                        Some(ToolBlock::Shown(_)) if tool.input.is_empty() => {}
                        Some(ToolBlock::Shown(index)) => {
                            out.push(self.writer.tool_call_arguments(index, &tool.input));
                        }
                        Some(ToolBlock::Hidden) => {}
                        None => {
                            return Err(ProviderError::InvalidResponse(
                                "a tool input delta came for a block that never started".into(),
                            ));
                        }
                    }
                }
            }
            "messageStop" => {
                let event: MessageStop = parse(event_type, payload)?;
                self.start(&mut out);
                self.stopped = true;
                let finish = finish_reason(&event.stop_reason, self.shown_calls > 0);
                out.push(self.writer.finish(finish));
            }
            "metadata" => {
                let event: Metadata = parse(event_type, payload)?;
                let usage = event.usage.to_usage();
                self.usage = Some(usage);
                out.push(self.writer.usage(&usage));
            }
            // contentBlockStop carries nothing to forward; unknown events are skipped.
            _ => {}
        }
        Ok(out)
    }

    /// Ends the stream: the usage chunk if `metadata` never came. An end before `messageStop`
    /// is a broken stream.
    pub fn finish(&mut self) -> Result<Vec<Bytes>, ProviderError> {
        if !self.stopped {
            return Err(ProviderError::StreamBroken(
                "the stream ended before its messageStop event".into(),
            ));
        }
        if self.usage.is_some() {
            return Ok(Vec::new());
        }
        let usage = Usage::default();
        self.usage = Some(usage);
        Ok(vec![self.writer.usage(&usage)])
    }

    fn tool_block(&self, content_block_index: u64) -> Option<ToolBlock> {
        self.tools
            .iter()
            .find(|(i, _)| *i == content_block_index)
            .map(|(_, b)| *b)
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            out.push(self.writer.role());
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(event_type: &str, payload: &'a [u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(payload).map_err(|_| {
        ProviderError::InvalidResponse(format!(
            "malformed {} event",
            event_type.chars().take(40).collect::<String>()
        ))
    })
}

//! `streamGenerateContent?alt=sse` events -> OpenAI `chat.completion.chunk`s.

use bytes::Bytes;
use http::StatusCode;
use portcullis_types::Usage;

use super::response::{
    self, arguments, call_id, check_blocked, completion_id, error_from_body, finish_reason,
};
use super::wire::{GenerateContentResponse, UsageMetadata};
use crate::provider::ProviderError;
use crate::translate::openai_chunk::{ChunkWriter, Delta};

/// Translates the events of one Gemini stream, in order, into serialized OpenAI chunks.
///
/// Each SSE `data:` of the stream is a whole `GenerateContentResponse` holding the next parts of
/// `candidates[0]`. Choices:
/// - The first event yields a chunk with `delta: {role: "assistant", content: ""}` before its
///   content. Text parts are `delta.content`; thought parts (`thought: true`) are
///   `delta.reasoning_content`; empty text (signature-only parts) yields nothing.
/// - Gemini sends each function call whole in one part, so each becomes two chunks, as OpenAI
///   streams a call: `{index, id, type, function: {name, arguments: ""}}` (with
///   `extra_content.google.thought_signature` when the part has a signature), then
///   `{index, function: {arguments}}` with the complete arguments. Ids and indexes count the
///   calls of the stream, as in [`chat_response`](super::chat_response).
/// - The first event with a `finishReason` yields the chunk with `finish_reason` after its
///   parts (a repeated finish reason yields nothing).
/// - Gemini repeats `usageMetadata` on events, complete on the last; the latest one read is
///   reported by [`finish`](Self::finish) as the usage chunk (`choices: []`), always.
/// - A `{"error": ...}` event is a classified error; an event that is not JSON is an invalid
///   response; a prompt blocked before any candidate is a content-filter error; a stream that
///   ends without a `finishReason` broke off.
#[derive(Debug)]
pub struct StreamTranslator {
    /// The chunks' `id` and `model` (Gemini's own once its first event names them).
    writer: ChunkWriter,
    started: bool,
    calls: usize,
    finished: bool,
    usage: Option<UsageMetadata>,
}

impl StreamTranslator {
    /// A translator for a stream of `model`, whose chunks are stamped `created` and named
    /// `fallback_id` unless Gemini sends a `responseId`.
    pub fn new(fallback_id: &str, model: &str, created: u64) -> Self {
        Self {
            writer: ChunkWriter::new(fallback_id, model, created),
            started: false,
            calls: 0,
            finished: false,
            usage: None,
        }
    }

    /// Translates one event's `data`, returning the chunks it yields (possibly none).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Bytes>, ProviderError> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        // An in-band error is the only top-level `error` key; the scan avoids building a
        // `Value` of every event just to look for it.
        if let Ok([Some(_)]) = crate::json_scan::top_level(data, ["error"]) {
            return Err(error_from_body(StatusCode::OK, data));
        }
        let event: GenerateContentResponse = serde_json::from_slice(data).map_err(|e| {
            ProviderError::InvalidResponse(
                if e.is_data() {
                    "a stream event is not a generateContent response"
                } else {
                    "a stream event is not valid JSON"
                }
                .into(),
            )
        })?;
        check_blocked(&event)?;
        if let Some(usage) = event.usage_metadata {
            self.usage = Some(usage);
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            if let Some(id) = event.response_id.as_deref() {
                self.writer.id = completion_id(Some(id), &self.writer.id);
            }
            if let Some(model) = event.model_version {
                self.writer.model = model;
            }
            out.push(self.writer.role());
        }
        let Some(candidate) = event.candidates.first() else {
            return Ok(out);
        };
        for part in candidate.content.iter().flat_map(|c| &c.parts) {
            if let Some(call) = &part.function_call {
                let index = self.calls;
                self.calls += 1;
                let id = call_id(call, index);
                let signature = part.thought_signature.as_deref();
                let start = Delta::tool_call_start(index, &id, &call.name, signature);
                out.push(self.writer.delta(start));
                let args = arguments(call);
                out.push(self.writer.tool_call_arguments(index, &args));
            } else if let Some(text) = part.text.as_deref().filter(|t| !t.is_empty()) {
                out.push(if part.thought == Some(true) {
                    self.writer.reasoning(text)
                } else {
                    self.writer.content(text)
                });
            }
        }
        if let Some(reason) = candidate.finish_reason.as_deref()
            && !self.finished
        {
            self.finished = true;
            let finish = finish_reason(Some(reason), self.calls > 0);
            out.push(self.writer.finish(finish));
        }
        Ok(out)
    }

    /// Ends the stream: the usage chunk, or an error if the stream ended unfinished.
    pub fn finish(&mut self) -> Result<Vec<Bytes>, ProviderError> {
        if !self.finished {
            return Err(ProviderError::StreamBroken(
                "the stream ended before the model finished".into(),
            ));
        }
        Ok(vec![self.writer.usage(&self.usage())])
    }

    /// The usage read so far (zeros before any).
    pub fn usage(&self) -> Usage {
        response::usage(self.usage.unwrap_or_default())
    }
}

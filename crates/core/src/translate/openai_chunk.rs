//! The serialized OpenAI `chat.completion.chunk`s that every outbound stream translator sends.
//!
//! Why: the Anthropic, Gemini, Bedrock and Cohere stream translators each built every chunk as a
//! `serde_json::Value` tree, which the adapter serialized and dropped; building, serializing and
//! dropping that tree was most of their cost per chunk, and the four builders repeated each
//! other. [`ChunkWriter`] writes a chunk's bytes straight from borrowing `Serialize` structs, the
//! same for all four.
//!
//! The JSON is what the translators emitted before (as a value; keys now come in OpenAI's order,
//! `id`, `object`, `created`, `model`, `choices`, `usage`, where the `Value` tree sorted them):
//! - a choice is `{"index": 0, "delta": .., "logprobs": null, "finish_reason": ..}`,
//!   `finish_reason` `null` until the finish chunk, as OpenAI sends them; there is no
//!   `system_fingerprint` (none of the providers has one) and content chunks carry no `usage`
//!   key (OpenAI's `"usage": null` is only there when the client asked for
//!   `stream_options.include_usage`; the translators always send the usage chunk instead);
//! - a delta holds only the fields it sets: the first is `{"role": "assistant", "content": ""}`;
//! - a tool call starts with `{index, id, type: "function", function: {name, arguments: ""}}`
//!   (Gemini adds `extra_content.google.thought_signature`, as Google's OpenAI-compatible API
//!   does), then sends `{index, function: {arguments}}` fragments;
//! - the usage chunk has `"choices": []` and `usage` with `prompt_tokens`, `completion_tokens`,
//!   `total_tokens`, `prompt_tokens_details.cached_tokens` and, where the provider counts them,
//!   `completion_tokens_details.reasoning_tokens` (Anthropic does not: its chunk leaves
//!   `completion_tokens_details` out rather than claim zero).

use bytes::Bytes;
use portcullis_types::Usage;
use serde::Serialize;

/// Writes the chunks of one stream, all stamped with its `id`, `model` and `created` (Unix
/// seconds). The fields are public: a translator learns the id and model from the upstream's
/// first event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkWriter {
    pub id: String,
    pub model: String,
    pub created: u64,
}

/// What a content chunk's `delta` holds; build it with the constructors, then
/// [`ChunkWriter::delta`]. Fields left `None` are not written.
#[derive(Clone, Copy, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
}

#[derive(Clone, Copy, Serialize)]
struct ToolCall<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: Function<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<ExtraContent<'a>>,
}

#[derive(Clone, Copy, Serialize)]
struct Function<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Clone, Copy, Serialize)]
struct ExtraContent<'a> {
    google: GoogleExtra<'a>,
}

#[derive(Clone, Copy, Serialize)]
struct GoogleExtra<'a> {
    thought_signature: &'a str,
}

impl std::fmt::Debug for Delta<'_> {
    /// Which fields are set; never content or arguments.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delta")
            .field("role", &self.role)
            .field("content", &self.content.map(str::len))
            .field("reasoning_content", &self.reasoning_content.map(str::len))
            .field("tool_call", &self.tool_calls.map(|[c]| c.index))
            .finish()
    }
}

impl<'a> Delta<'a> {
    /// `{"content": text}`.
    pub fn content(text: &'a str) -> Self {
        Self {
            content: Some(text),
            ..Self::default()
        }
    }

    /// `{"reasoning_content": text}`.
    pub fn reasoning(text: &'a str) -> Self {
        Self {
            reasoning_content: Some(text),
            ..Self::default()
        }
    }

    /// The start of tool call `index`: its `id`, `type: "function"`, `name` and empty
    /// `arguments`, with Gemini's `thought_signature` when there is one.
    pub fn tool_call_start(
        index: usize,
        id: &'a str,
        name: &'a str,
        thought_signature: Option<&'a str>,
    ) -> Self {
        Self::tool_call(ToolCall {
            index,
            id: Some(id),
            kind: Some("function"),
            function: Function {
                name: Some(name),
                arguments: "",
            },
            extra_content: thought_signature.map(|thought_signature| ExtraContent {
                google: GoogleExtra { thought_signature },
            }),
        })
    }

    /// A fragment of the arguments of tool call `index`.
    pub fn tool_call_arguments(index: usize, arguments: &'a str) -> Self {
        Self::tool_call(ToolCall {
            index,
            id: None,
            kind: None,
            function: Function {
                name: None,
                arguments,
            },
            extra_content: None,
        })
    }

    /// The same delta, also carrying `role: "assistant"` (for a first chunk that has content).
    pub fn with_role(self) -> Self {
        Self {
            role: Some("assistant"),
            ..self
        }
    }

    fn tool_call(call: ToolCall<'a>) -> Self {
        Self {
            tool_calls: Some([call]),
            ..Self::default()
        }
    }

    /// Roughly how many bytes the delta's strings take, to size the buffer.
    fn len_hint(&self) -> usize {
        let call = self.tool_calls.as_ref().map_or(0, |[c]| {
            c.id.map_or(0, str::len)
                + c.function.name.map_or(0, str::len)
                + c.function.arguments.len()
                + c.extra_content
                    .map_or(0, |e| e.google.thought_signature.len())
        });
        self.content.map_or(0, str::len) + self.reasoning_content.map_or(0, str::len) + call
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    /// Always `null`: no provider's logprobs are translated.
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

/// The bytes of a chunk without its strings (keys, `created`, escapes aside): the buffer is
/// sized once instead of growing from `serde_json::to_vec`'s 128 bytes.
const ENVELOPE: usize = 160;

impl ChunkWriter {
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            created,
        }
    }

    /// The first chunk: `{"role": "assistant", "content": ""}`.
    pub fn role(&self) -> Bytes {
        self.delta(Delta::content("").with_role())
    }

    /// A text delta.
    pub fn content(&self, text: &str) -> Bytes {
        self.delta(Delta::content(text))
    }

    /// A `reasoning_content` delta.
    pub fn reasoning(&self, text: &str) -> Bytes {
        self.delta(Delta::reasoning(text))
    }

    /// The start of tool call `index` (see [`Delta::tool_call_start`]).
    pub fn tool_call_start(&self, index: usize, id: &str, name: &str) -> Bytes {
        self.delta(Delta::tool_call_start(index, id, name, None))
    }

    /// A fragment of the arguments of tool call `index`.
    pub fn tool_call_arguments(&self, index: usize, arguments: &str) -> Bytes {
        self.delta(Delta::tool_call_arguments(index, arguments))
    }

    /// A content chunk holding `delta`, `finish_reason` `null`.
    pub fn delta(&self, delta: Delta<'_>) -> Bytes {
        let hint = delta.len_hint();
        self.choice(delta, None, hint)
    }

    /// The finish chunk: an empty delta and `finish_reason`.
    pub fn finish(&self, finish_reason: &str) -> Bytes {
        self.choice(Delta::default(), Some(finish_reason), 0)
    }

    /// The usage chunk (`"choices": []`), with `reasoning_tokens`.
    pub fn usage(&self, usage: &Usage) -> Bytes {
        self.usage_chunk(usage, Some(usage.reasoning_tokens))
    }

    /// The usage chunk of a provider that does not count reasoning tokens apart:
    /// `completion_tokens_details` is left out.
    pub fn usage_without_reasoning(&self, usage: &Usage) -> Bytes {
        self.usage_chunk(usage, None)
    }

    fn usage_chunk(&self, usage: &Usage, reasoning_tokens: Option<u64>) -> Bytes {
        self.write(
            &[],
            Some(UsageOut {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                total_tokens: usage.total_tokens,
                prompt_tokens_details: PromptDetails {
                    cached_tokens: usage.cached_tokens,
                },
                completion_tokens_details: reasoning_tokens
                    .map(|reasoning_tokens| CompletionDetails { reasoning_tokens }),
            }),
            ENVELOPE,
        )
    }

    fn choice(&self, delta: Delta<'_>, finish_reason: Option<&str>, hint: usize) -> Bytes {
        let choice = Choice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        };
        self.write(std::slice::from_ref(&choice), None, hint)
    }

    fn write(&self, choices: &[Choice<'_>], usage: Option<UsageOut>, hint: usize) -> Bytes {
        let chunk = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        let mut buf = Vec::with_capacity(ENVELOPE + self.id.len() + self.model.len() + hint);
        // Serializing these structs into a `Vec` cannot fail: every key is a string and every
        // value a string, number or null.
        if serde_json::to_writer(&mut buf, &chunk).is_err() {
            buf.clear();
        }
        Bytes::from(buf)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn value(bytes: &Bytes) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn writer() -> ChunkWriter {
        ChunkWriter::new("chatcmpl-1", "m", 7)
    }

    fn chunk(delta: Value, finish: Value) -> Value {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    #[test]
    fn content_chunks() {
        let w = writer();
        assert_eq!(
            value(&w.role()),
            chunk(json!({"role": "assistant", "content": ""}), Value::Null)
        );
        assert_eq!(
            value(&w.content("a \"quoted\"\n")),
            chunk(json!({"content": "a \"quoted\"\n"}), Value::Null)
        );
        assert_eq!(
            value(&w.reasoning("hm")),
            chunk(json!({"reasoning_content": "hm"}), Value::Null)
        );
        assert_eq!(
            value(&w.delta(Delta::content("x").with_role())),
            chunk(json!({"role": "assistant", "content": "x"}), Value::Null)
        );
        assert_eq!(value(&w.finish("stop")), chunk(json!({}), json!("stop")));
    }

    #[test]
    fn keys_in_openai_order() {
        let bytes = writer().content("x");
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}]}"#
        );
    }

    #[test]
    fn tool_call_chunks() {
        let w = writer();
        assert_eq!(
            value(&w.tool_call_start(1, "call_1", "f")),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "call_1", "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]}),
                Value::Null
            )
        );
        assert_eq!(
            value(&w.delta(Delta::tool_call_start(0, "c", "g", Some("sig")))),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                                       "function": {"name": "g", "arguments": ""},
                                       "extra_content": {"google": {"thought_signature": "sig"}}}]}),
                Value::Null
            )
        );
        assert_eq!(
            value(&w.tool_call_arguments(1, "{\"a\":")),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"a\":"}}]}),
                Value::Null
            )
        );
    }

    #[test]
    fn usage_chunks() {
        let w = writer();
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            total_tokens: 15,
            cached_tokens: 3,
            reasoning_tokens: 2,
        };
        let base = json!({
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 7,
            "model": "m",
            "choices": [],
        });
        let mut with = base.clone();
        with["usage"] = json!({
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        });
        assert_eq!(value(&w.usage(&usage)), with);
        let mut without = base;
        without["usage"] = json!({
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 3},
        });
        assert_eq!(value(&w.usage_without_reasoning(&usage)), without);
    }
}

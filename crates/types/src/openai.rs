//! OpenAI request bodies (typed where the gateway acts, pass-through elsewhere) and the response
//! bodies the gateway itself produces (the mock provider, usage extraction).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::RawFields;

/// `stream_options` of a chat or completions request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `POST /v1/chat/completions`. `messages` and every field the gateway does not act on are
/// kept as raw JSON and forwarded byte for byte.
#[derive(Clone, Serialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `POST /v1/completions` (the legacy text completion API).
#[derive(Clone, Serialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: RawFields,
}

/// `POST /v1/embeddings`.
#[derive(Clone, Serialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Box<RawValue>,
    #[serde(flatten)]
    pub extra: RawFields,
}

// Requests are deserialised by hand-rolled visitors rather than `#[serde(flatten)]`, which
// buffers every field before typing it and made parsing the costliest stage of a request.
// Typed fields are taken as they come; every other field goes to the pass-through map.
macro_rules! deserialize_with_extra {
    ($ty:ident, $expecting:literal, extra: $extra:ident : $ety:ty,
     required { $($req:ident : $rty:ty),* }, optional { $($opt:ident : $oty:ty),* }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        $(let mut $req: Option<$rty> = None;)*
                        $(let mut $opt: Option<$oty> = None;)*
                        let mut $extra = <$ety>::default();
                        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                            match key.as_ref() {
                                $(stringify!($req) => {
                                    if $req.is_some() {
                                        return Err(<A::Error as serde::de::Error>::duplicate_field(
                                            stringify!($req),
                                        ));
                                    }
                                    $req = Some(map.next_value()?);
                                })*
                                $(stringify!($opt) => $opt = map.next_value::<Option<$oty>>()?,)*
                                _ => {
                                    let value = map.next_value()?;
                                    $extra.extend(std::iter::once((key.into_owned(), value)));
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $req.ok_or_else(|| {
                                <A::Error as serde::de::Error>::missing_field(stringify!($req))
                            })?,)*
                            $($opt,)*
                            $extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

deserialize_with_extra!(StreamOptions, "a stream_options object", extra: extra: RawFields,
    required {}, optional { include_usage: bool });
deserialize_with_extra!(ChatCompletionRequest, "a chat completion request object",
    extra: extra: RawFields,
    required { model: String, messages: Box<RawValue> },
    optional { stream: bool, stream_options: StreamOptions, max_tokens: u64,
        max_completion_tokens: u64 });
deserialize_with_extra!(CompletionRequest, "a completion request object", extra: extra: RawFields,
    required { model: String, prompt: Box<RawValue> },
    optional { stream: bool, stream_options: StreamOptions, max_tokens: u64 });
deserialize_with_extra!(EmbeddingRequest, "an embeddings request object", extra: extra: RawFields,
    required { model: String, input: Box<RawValue> }, optional {});

/// `stream_options` as sent upstream: the client's, with `include_usage` forced on when the
/// gateway needs usage from a stream.
fn upstream_stream_options(
    stream: Option<bool>,
    options: Option<&StreamOptions>,
    include_usage: bool,
) -> Option<Cow<'_, StreamOptions>> {
    if stream == Some(true) && include_usage {
        let mut opts = options.cloned().unwrap_or_default();
        opts.include_usage = Some(true);
        Some(Cow::Owned(opts))
    } else {
        options.map(Cow::Borrowed)
    }
}

/// A chat request as sent to an OpenAI-compatible upstream (borrowed, nothing copied).
#[derive(Serialize)]
struct ChatUpstream<'a> {
    model: &'a str,
    messages: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Cow<'a, StreamOptions>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(flatten)]
    extra: &'a RawFields,
}

/// A completions request as sent to an OpenAI-compatible upstream.
#[derive(Serialize)]
struct CompletionUpstream<'a> {
    model: &'a str,
    prompt: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Cow<'a, StreamOptions>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(flatten)]
    extra: &'a RawFields,
}

impl ChatCompletionRequest {
    /// The JSON body for an OpenAI-compatible upstream; `stream_options.include_usage` is forced on for streams when
    /// `include_usage` is set.
    pub fn to_upstream_json(&self, include_usage: bool) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&ChatUpstream {
            model: &self.model,
            messages: &self.messages,
            stream: self.stream,
            stream_options: upstream_stream_options(
                self.stream,
                self.stream_options.as_ref(),
                include_usage,
            ),
            max_tokens: self.max_tokens,
            max_completion_tokens: self.max_completion_tokens,
            extra: &self.extra,
        })
    }
}

impl CompletionRequest {
    /// The JSON body for an OpenAI-compatible upstream; `stream_options.include_usage` is forced on for streams when
    /// `include_usage` is set.
    pub fn to_upstream_json(&self, include_usage: bool) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&CompletionUpstream {
            model: &self.model,
            prompt: &self.prompt,
            stream: self.stream,
            stream_options: upstream_stream_options(
                self.stream,
                self.stream_options.as_ref(),
                include_usage,
            ),
            max_tokens: self.max_tokens,
            extra: &self.extra,
        })
    }
}

/// A chat completion, as the gateway itself produces it (mock provider).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: crate::Usage,
}

/// One choice of a [`ChatCompletion`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    pub finish_reason: String,
}

/// The assistant's reply in a [`ChatChoice`].
#[derive(Clone, Serialize, Deserialize)]
pub struct AssistantMessage {
    pub role: String,
    pub content: String,
}

/// One `chat.completion.chunk` of a stream, as the gateway itself produces it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::Usage>,
}

/// One choice of a [`ChatCompletionChunk`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
}

/// The increment a [`ChunkChoice`] carries.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// A text completion (legacy API), as the gateway itself produces it; also its stream chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::Usage>,
}

/// One choice of a [`TextCompletion`].
#[derive(Clone, Serialize, Deserialize)]
pub struct TextChoice {
    pub index: u32,
    pub text: String,
    pub finish_reason: Option<String>,
}

/// An embeddings response, as the gateway itself produces it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    pub object: String,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

/// Usage of an embeddings request: OpenAI reports no completion tokens here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

/// One vector of an [`EmbeddingResponse`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Embedding {
    pub object: String,
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// A vector as floats, or as base64 of little-endian `f32`s (`encoding_format: "base64"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

// Content never reaches logs: these types print their shape, not their text.
macro_rules! redacted_debug {
    ($ty:ty, |$s:ident, $d:ident| $body:expr) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $s = self;
                let mut $d = f.debug_struct(stringify!($ty));
                $body;
                $d.finish_non_exhaustive()
            }
        }
    };
}

redacted_debug!(ChatCompletionRequest, |s, d| d
    .field("model", &s.model)
    .field("stream", &s.stream)
    .field("extra", &s.extra));
redacted_debug!(CompletionRequest, |s, d| d
    .field("model", &s.model)
    .field("stream", &s.stream));
redacted_debug!(EmbeddingRequest, |s, d| d.field("model", &s.model));
redacted_debug!(AssistantMessage, |s, d| d.field("role", &s.role));
redacted_debug!(Delta, |s, d| d.field("role", &s.role));
redacted_debug!(TextChoice, |s, d| d
    .field("index", &s.index)
    .field("finish_reason", &s.finish_reason));

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn unknown_fields_round_trip_untouched() -> Result<(), serde_json::Error> {
        let body = r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"x"}],
            "temperature":0.2,"logit_bias":{"50256":-100},"vendor_flag":{"a":[1,2]}}"#;
        let req: ChatCompletionRequest = serde_json::from_str(body)?;
        assert_eq!(req.extra.get_as::<f64>("temperature"), Some(0.2));
        let messages: Value = serde_json::from_str(req.messages.get())?;
        assert_eq!(messages[0]["name"], "x");
        let back = serde_json::to_value(&req)?;
        let orig: Value = serde_json::from_str(body)?;
        assert_eq!(back, orig);
        Ok(())
    }

    #[test]
    fn debug_never_prints_content() -> Result<(), serde_json::Error> {
        let req: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"SECRET-CANARY"}],"tools":["SECRET-CANARY"]}"#,
        )?;
        let printed = format!("{req:?} {:?}", req.messages_typed()?[0]);
        assert!(!printed.contains("SECRET-CANARY"), "{printed}");
        assert!(printed.contains("\"m\""));
        Ok(())
    }

    #[test]
    fn upstream_json_forces_usage_only_for_streams() -> Result<(), serde_json::Error> {
        let req: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[],"stream":true,"stream_options":{"x":1},"seed":7}"#,
        )?;
        let v: Value = serde_json::from_slice(&req.to_upstream_json(true)?)?;
        assert_eq!(
            v["stream_options"],
            serde_json::json!({"include_usage": true, "x": 1})
        );
        assert_eq!(v["seed"], 7);
        let v: Value = serde_json::from_slice(&req.to_upstream_json(false)?)?;
        assert_eq!(v["stream_options"], serde_json::json!({"x": 1}));
        let plain: ChatCompletionRequest = serde_json::from_str(r#"{"model":"m","messages":[]}"#)?;
        let v: Value = serde_json::from_slice(&plain.to_upstream_json(true)?)?;
        assert!(v.get("stream_options").is_none());
        Ok(())
    }
}

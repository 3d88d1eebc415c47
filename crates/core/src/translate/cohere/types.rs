//! Cohere v2 bodies as the translation needs them: the chat and embed requests it writes
//! (owned, `Serialize` only) and the chat and embed responses it reads (`Deserialize`, with only
//! the fields it maps; unknown fields and content types are skipped). Shapes follow Cohere's
//! API reference (`POST /v2/chat`, `POST /v2/embed`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `Debug` that prints the type name only: these bodies carry prompt and answer content.
macro_rules! opaque_debug {
    ($($ty:ty),* $(,)?) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    )*};
}

opaque_debug!(
    ChatMessage,
    Content,
    Item,
    ImageUrl,
    ToolCall,
    FunctionCall,
    Tool,
    FunctionDef,
    ResponseFormat,
    EmbedRequest,
    ChatResponse,
    ResponseMessage,
    ResponseItem,
    ResponseToolCall,
    ResponseFunction,
    EmbedResponse,
    EmbeddingsByType,
    EmbedMeta,
);

impl fmt::Debug for ChatRequest {
    /// The shape: model, counts and switches, never content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatRequest")
            .field("model", &self.model)
            .field("messages", &self.messages.len())
            .field("tools", &self.tools.len())
            .field("tool_choice", &self.tool_choice)
            .field("thinking", &self.thinking)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// `POST /v2/chat`.
#[derive(Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Written only when true (Cohere's default is false).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// One message, tagged by `role`.
#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ChatMessage {
    System {
        content: Content,
    },
    User {
        content: Content,
    },
    Assistant {
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_plan: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: Content,
    },
}

/// Message content: a string or content items.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Items(Vec<Item>),
}

/// A content item, tagged by `type`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    Thinking { thinking: String },
}

#[derive(Serialize)]
pub struct ImageUrl {
    /// An http(s) URL or a base64 `data:` URL.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A call the assistant made, as sent back in history.
#[derive(Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall,
}

#[derive(Serialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text.
    pub arguments: String,
}

/// A function the model may call.
#[derive(Serialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDef,
}

#[derive(Serialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema, as the client sent it.
    pub parameters: Box<RawValue>,
}

/// `tool_choice`: Cohere has only these two; "auto" is the default and is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ToolChoice {
    Required,
    None,
}

/// `response_format`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    JsonObject {
        #[serde(skip_serializing_if = "Option::is_none")]
        json_schema: Option<Box<RawValue>>,
    },
}

/// `thinking`: reasoning on (with a budget) or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: ThinkingType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_budget: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingType {
    Enabled,
    Disabled,
}

/// `POST /v2/embed`.
#[derive(Serialize)]
pub struct EmbedRequest {
    pub model: String,
    pub texts: Vec<String>,
    pub input_type: String,
    pub embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_dimension: Option<u64>,
    /// Not sent: whether the client asked for base64 vectors (`encoding_format: base64`), which
    /// the translation of the answer produces from Cohere's floats.
    #[serde(skip)]
    pub base64: bool,
}

/// The answer of `POST /v2/chat` (non-streaming).
#[derive(Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: String,
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub message: ResponseMessage,
    pub usage: Option<Usage>,
}

#[derive(Default, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Vec<ResponseItem>,
    pub tool_plan: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ResponseToolCall>,
}

/// A content item of the answer; citations, documents and newer types are skipped.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseItem {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
pub struct ResponseToolCall {
    #[serde(default)]
    pub id: String,
    pub function: ResponseFunction,
}

#[derive(Deserialize)]
pub struct ResponseFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// `usage` of a chat answer (also `delta.usage` of `message-end`). Counts are documented as
/// numbers and typed as floats by Cohere's SDKs, so any JSON number is accepted.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    pub billed_units: Option<Counts>,
    pub tokens: Option<Counts>,
    /// Prompt tokens that hit the inference cache.
    pub cached_tokens: Option<f64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Counts {
    pub input_tokens: Option<f64>,
    pub output_tokens: Option<f64>,
}

/// The answer of `POST /v2/embed` with `embedding_types: ["float"]`.
#[derive(Deserialize)]
pub struct EmbedResponse {
    pub embeddings: EmbeddingsByType,
    pub meta: Option<EmbedMeta>,
}

#[derive(Deserialize)]
pub struct EmbeddingsByType {
    /// One vector per input text, kept as received so the numbers are not re-formatted.
    #[serde(default)]
    pub float: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
pub struct EmbedMeta {
    pub billed_units: Option<Counts>,
    pub tokens: Option<Counts>,
}

//! The parts of Gemini's response bodies that the translation reads. Unknown fields are ignored
//! (Google adds fields often: safety ratings, citations, grounding, logprobs, ...), and every
//! field is optional so that partial stream events read as well as whole responses.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A `GenerateContentResponse`: a whole answer, or one event of a stream.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct GenerateContentResponse {
    pub candidates: Vec<Candidate>,
    pub prompt_feedback: Option<PromptFeedback>,
    pub usage_metadata: Option<UsageMetadata>,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Candidate {
    pub content: Option<Content>,
    pub finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct Content {
    pub parts: Vec<Part>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Part {
    pub text: Option<String>,
    /// Set on parts that are the model's thoughts (only with `includeThoughts`).
    pub thought: Option<bool>,
    pub thought_signature: Option<String>,
    pub function_call: Option<FunctionCall>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct FunctionCall {
    pub id: Option<String>,
    pub name: String,
    /// Absent for a call without arguments; anything but an object makes the response invalid.
    pub args: Option<Map<String, Value>>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct UsageMetadata {
    pub prompt_token_count: u64,
    pub candidates_token_count: u64,
    pub thoughts_token_count: u64,
    pub cached_content_token_count: u64,
    pub tool_use_prompt_token_count: u64,
}

/// Google's error body: `{"error": {"code", "message", "status"}}` (Vertex AI sometimes wraps it
/// in a one-element array).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorEnvelope {
    One { error: ErrorStatus },
    Many(Vec<ErrorEnvelopeItem>),
}

#[derive(Deserialize)]
pub(super) struct ErrorEnvelopeItem {
    pub error: ErrorStatus,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorStatus {
    pub code: Option<u16>,
    pub message: Option<String>,
    pub status: Option<String>,
    /// `google.rpc` details; `ErrorInfo` ones carry a `reason` such as `API_KEY_INVALID`.
    pub details: Vec<ErrorDetail>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct ErrorDetail {
    pub reason: Option<String>,
}

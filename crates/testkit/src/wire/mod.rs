//! Provider wire mocks for the conformance matrix: each provider's module renders one
//! provider-neutral answer ([`Canned`]) in that provider's real wire format (JSON body or whole
//! stream), renders each error class as that provider reports it, and reads what the gateway
//! sent back into a provider-neutral [`Seen`] request, after checking the provider's required
//! headers, path and versions. A conformance test can then drive the same case through every
//! provider and compare what the client got with what was canned.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod openai;

use serde_json::Value;

use crate::upstream::{Recorded, Reply};

/// How the canned answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// A natural end (`stop`).
    EndTurn,
    /// The output token limit (`length`).
    MaxTokens,
    /// A stop sequence matched (`stop`).
    StopSequence,
    /// The model called tools (`tool_calls`).
    ToolUse,
    /// The provider's content filter cut the answer (`content_filter`).
    ContentFilter,
}

/// One tool call of a canned answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CannedCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON object.
    pub arguments: Value,
}

/// Token counts of a canned answer. `input` counts all prompt tokens, `cached` of them read
/// from the cache; `output` counts all output tokens, `reasoning` of them spent thinking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CannedUsage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub reasoning: u64,
}

/// A provider-neutral answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Canned {
    /// The model name to report.
    pub model: String,
    pub text: Option<String>,
    pub tool_calls: Vec<CannedCall>,
    pub finish: Finish,
    pub usage: CannedUsage,
}

/// The error classes every provider can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedError {
    RateLimited,
    Overloaded,
    ContextTooLong,
    ContentFiltered,
    Auth,
    BadRequest,
    Server,
}

/// One part of a message the gateway sent upstream, provider-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum SeenPart {
    Text(String),
    /// An image: a `data:` URL rebuilt from inline base64 data, or the URL as sent.
    Image(String),
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    ToolResult {
        id: String,
        content: String,
    },
}

/// One message the gateway sent upstream. `role` is `user` or `assistant` (tool results
/// appear as [`SeenPart::ToolResult`] parts of whichever role the provider puts them in).
#[derive(Debug, Clone, PartialEq)]
pub struct SeenMessage {
    pub role: String,
    pub parts: Vec<SeenPart>,
}

/// What the gateway sent upstream, provider-neutral.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Seen {
    pub model: String,
    pub stream: bool,
    /// System instructions, in order.
    pub system: Vec<String>,
    pub messages: Vec<SeenMessage>,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    /// Whether JSON output was asked for (natively or by instruction).
    pub json_mode: bool,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub stop: Vec<String>,
}

/// One provider's wire format, for mocks.
pub trait ProviderWire: Send + Sync {
    /// The provider `type` in the gateway config (`anthropic`, `gemini`, ...).
    fn name(&self) -> &'static str;

    /// The YAML of one entry under `providers:` for an upstream at `base_url`
    /// (`http://127.0.0.1:PORT`, no trailing slash), as a flow mapping: `{ type: ..., ... }`.
    fn provider_yaml(&self, base_url: &str) -> String;

    /// The answer to a request that is not one of the provider's API calls but that the
    /// provider config makes the gateway send to the mock too (Vertex AI's OAuth token
    /// endpoint); `None` for API calls. A mock's handler asks this first.
    fn auxiliary_reply(&self, request: &Recorded) -> Option<Reply> {
        let _ = request;
        None
    }

    /// The answer `canned` in the provider's wire format, whole or streamed.
    fn reply(&self, canned: &Canned, stream: bool) -> Reply;

    /// The error class `error` as the provider reports it (status and body).
    fn error(&self, error: CannedError) -> Reply;

    /// Checks that `request` is well formed for this provider (path, method, required headers,
    /// versions, credentials, for Bedrock the SigV4 signature) and reads it back. `Err` says what
    /// is wrong.
    fn seen(&self, request: &Recorded) -> Result<Seen, String>;
}

//! Pure translation between the OpenAI chat wire format and other providers' native formats.
//!
//! This module owns the body-level mapping only: it takes typed request and response values
//! and returns typed or JSON values, with no I/O, no HTTP and no configuration lookup. Provider
//! adapters (see [`crate::provider`]) call it: they decide the upstream model and defaults,
//! call the translation, send the result, and translate the answer back.
//!
//! Errors ([`TranslateError`]) name fields, roles, part types and tool call ids, never prompt
//! content, tool arguments or URLs, so they are safe to log and to return to the client.

pub mod anthropic;
pub mod anthropic_inbound;
pub mod anthropic_stream;
pub mod bedrock;
pub mod cohere;
pub mod embeddings;
pub mod gemini;
pub mod openai_chunk;

/// Why an OpenAI request cannot be expressed in a provider's native format. Every variant
/// carries only structural names (fields, part types, ids), never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// A request field is not valid JSON of the expected shape.
    #[error("field `{field}` is malformed")]
    InvalidField { field: &'static str },
    /// A request field holds a value the target provider has no equivalent for.
    #[error("field `{field}` has a value that cannot be translated")]
    UnsupportedValue { field: &'static str },
    /// A message role the target provider has no equivalent for (e.g. the legacy `function`).
    #[error("messages with role `{role}` are not supported by this provider")]
    UnsupportedRole { role: &'static str },
    /// A user content part type the target provider has no equivalent for.
    #[error("content part type `{kind}` is not supported by this provider")]
    UnsupportedContentPart { kind: String },
    /// An `image_url` that is neither a base64 data URL nor an http(s) URL, or an http(s) URL
    /// for a provider that takes inline images only (Bedrock).
    #[error(
        "image_url must be a base64 data URL, or an http(s) URL where the provider fetches images"
    )]
    InvalidImageUrl,
    /// An assistant tool call whose `arguments` is not a JSON object.
    #[error("tool call `{id}` has arguments that are not a JSON object")]
    InvalidToolArguments { id: String },
    /// A tool message whose `tool_call_id` names no earlier assistant tool call (providers that
    /// identify a result by the function's name need the call).
    #[error("tool message refers to tool call `{id}`, which no earlier assistant message made")]
    UnknownToolCall { id: String },
}

/// A typed field helper's result (`ChatCompletionRequest::tools()` and the like) with a parse
/// failure turned into [`TranslateError::InvalidField`] naming `field`.
pub(crate) fn typed<T>(
    parsed: serde_json::Result<Option<T>>,
    field: &'static str,
) -> Result<Option<T>, TranslateError> {
    parsed.map_err(|_| TranslateError::InvalidField { field })
}

/// A raw extra field of a request (`req.extra`), typed; JSON null counts as absent.
pub(crate) fn extra<T: serde::de::DeserializeOwned>(
    fields: &portcullis_types::raw::RawFields,
    field: &'static str,
) -> Result<Option<T>, TranslateError> {
    match fields.get(field) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<T>>(raw.get())
            .map_err(|_| TranslateError::InvalidField { field }),
    }
}

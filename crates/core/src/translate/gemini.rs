//! OpenAI chat completions and embeddings <-> Google Gemini (`generateContent`,
//! `streamGenerateContent`, `batchEmbedContents`) on AI Studio and on Vertex AI (`:predict` for
//! embeddings). One translation serves both services; [`Flavor`] names the few differences.
//!
//! [`chat_request`] builds a `GenerateContentRequest` body; [`chat_response`] turns a
//! `GenerateContentResponse` into an OpenAI `chat.completion`; [`StreamTranslator`] turns the
//! events of `streamGenerateContent?alt=sse` into `chat.completion.chunk`s; [`embed`] does
//! embeddings; [`error_from_body`] classifies Google's error bodies.
//!
//! Request choices:
//! - `system` and `developer` messages, wherever they appear, become `systemInstruction.parts`,
//!   one text part per message (or per text part of a message given as parts), in order.
//! - Roles: user and tool messages are `user` turns, assistant messages are `model` turns.
//!   Consecutive messages of the same Gemini role are merged into one turn (parts concatenated
//!   in order), so a run of tool results is one `user` turn of `functionResponse` parts, and a
//!   user message right after them joins it. Empty text is dropped and a turn left with no parts
//!   is dropped.
//! - User parts: text is `{text}`; an `image_url` that is a base64 `data:` URL is `inlineData
//!   {mimeType, data}`; an `http(s)://` (or `gs://`) URL is `fileData {mimeType, fileUri}` with
//!   the MIME type guessed from the path's extension (png, jpg/jpeg, gif, webp, heic, heif, pdf),
//!   `image/jpeg` otherwise — Gemini fetches the URL itself, so it must be reachable by Google
//!   (AI Studio accepts only some public URLs; Vertex also takes `gs://`). `input_audio` is
//!   `inlineData` (`audio/wav`, `audio/mp3`); a `file` with `file_data` as a base64 `data:` URL is
//!   `inlineData` (PDFs); a `file_id` and other part types are refused.
//! - Assistant tool calls are `functionCall {name, args}` parts (arguments go as sent once
//!   checked to be a JSON object; empty arguments are `{}`; any other arguments are refused). Tool messages are
//!   `functionResponse {name, response}` parts, the name found on the latest earlier assistant
//!   tool call with that `tool_call_id` (refused if there is none). The tool's content text
//!   becomes `response` as is when it parses as a JSON object, else `{"content": text}`.
//! - Call ids: on AI Studio the OpenAI `tool_call_id` is also sent as `functionCall.id` and
//!   `functionResponse.id` (Gemini API v1beta documents both); Vertex AI's v1 reference does not,
//!   so there they are left out and calls are matched by name and order.
//! - Thought signatures (Gemini 3 rejects a function call in history without the signature it
//!   came with): an assistant tool call's `extra_content.google.thought_signature` (the field
//!   Google's own OpenAI-compatible endpoint uses, and which this module writes on responses) is
//!   sent back as the part's `thoughtSignature`. A client that drops the field loses it: no
//!   placeholder signature is invented. `reasoning_content` in history is dropped.
//! - `tools` are one `{functionDeclarations: [...]}` tool; each function's `parameters` go as
//!   `parametersJsonSchema` (full JSON Schema, as OpenAI clients write it) rather than
//!   `parameters` (an OpenAPI subset that rejects common JSON Schema keywords). `strict` is
//!   ignored. `tool_choice` is `toolConfig.functionCallingConfig.mode`: `none` NONE, `auto` AUTO,
//!   `required` ANY, a named function ANY with `allowedFunctionNames: [name]`.
//!   `parallel_tool_calls` has no Gemini equivalent and is ignored.
//! - `generationConfig`: `temperature`, `top_p` (`topP`), `max_completion_tokens` or else
//!   `max_tokens` (`maxOutputTokens`), `stop` (`stopSequences`), `seed`, non-zero
//!   `presence_penalty`/`frequency_penalty` (zero is the default and some models reject the
//!   fields). `n` of 1 is `candidateCount: 1`; `n` above 1 is refused (the gateway reports one
//!   choice). `response_format` `json_object` is `responseMimeType: application/json`;
//!   `json_schema` adds `responseJsonSchema` (the schema as given).
//! - `reasoning_effort` is `thinkingConfig`: `none` is `thinkingBudget: 0`; otherwise
//!   `includeThoughts: true` (so thoughts come back as `reasoning_content`) with a budget of
//!   [`BUDGET_MINIMAL`] (`minimal`), [`BUDGET_LOW`] (`low`), [`BUDGET_MEDIUM`] (`medium`),
//!   [`BUDGET_HIGH`] (`high`) tokens. Gemini counts thinking apart from `maxOutputTokens`.
//! - Fields with no Gemini equivalent (`user`, `logprobs`, `logit_bias`, `metadata`, `store`,
//!   ...) are dropped.
//!
//! Response choices:
//! - Only `candidates[0]` is read. Its text parts are joined into `message.content` (null when
//!   the answer is only tool calls); parts with `thought: true` are joined into
//!   `message.reasoning_content`; `functionCall` parts become `tool_calls`, with the part's `id`
//!   when Gemini gives one, else `call_<n>` (`n` counting the calls of the response from 0: the
//!   same answer always gets the same ids, and ids repeat across turns, which is why tool results
//!   are matched to the latest earlier call). A call's `thoughtSignature` is returned as the tool
//!   call's `extra_content.google.thought_signature`. `args` that are not a JSON object make the
//!   response invalid.
//! - `finishReason`: `MAX_TOKENS` is `length`; `SAFETY`, `RECITATION`, `BLOCKLIST`,
//!   `PROHIBITED_CONTENT`, `SPII`, `MODEL_ARMOR` and the `IMAGE_*` filters are `content_filter`;
//!   anything else is `tool_calls` when the answer has function calls, else `stop`.
//! - A prompt blocked before generation (`promptFeedback.blockReason` and no candidates) is a
//!   [`ContentFiltered`](crate::provider::ProviderError::ContentFiltered) error (HTTP 400
//!   `content_filter` to the client, as OpenAI services report filtered prompts), not an empty
//!   answer. No candidates and no block reason is an invalid response.
//! - Usage: `prompt_tokens` = `promptTokenCount` + `toolUsePromptTokenCount`; `completion_tokens`
//!   = `candidatesTokenCount` + `thoughtsTokenCount` (Gemini counts thoughts apart; OpenAI counts
//!   reasoning inside completion tokens); `reasoning_tokens` = `thoughtsTokenCount`;
//!   `cached_tokens` = `cachedContentTokenCount` (already part of `promptTokenCount`).
//! - `id` is `chatcmpl-<responseId>` (the caller's fallback id when Gemini sends none); `model`
//!   is `modelVersion`, else the requested model.
//!
//! Errors ([`error_from_body`]): Google's `{"error": {"code", "message", "status"}}` (also as a
//! one-element array, as Vertex AI sometimes sends it) is classified by HTTP status, `status`
//! (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, ...) and message with
//! [`ProviderError::classify`](crate::provider::ProviderError::classify). A rejected API key
//! (HTTP 400 with an `API_KEY_*` reason) and `UNAUTHENTICATED` count as the gateway's credentials
//! failing. An error event inside a stream is classified by its own `code`.
//!
//! Stream choices: see [`StreamTranslator`].

pub mod embed;
mod request;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

pub use request::chat_request;
pub use response::{ResponseMeta, chat_response, error_from_body};
pub use stream::StreamTranslator;

/// Which Google service a body is for. The generateContent bodies are the same on both but for
/// function call ids; embeddings use different methods and shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The Gemini API (`generativelanguage.googleapis.com`, v1beta).
    AiStudio,
    /// Vertex AI (`aiplatform.googleapis.com`, v1).
    Vertex,
}

/// Thinking budget for `reasoning_effort: minimal` (the smallest budget every 2.5 model takes).
pub const BUDGET_MINIMAL: u64 = 512;
/// Thinking budget for `reasoning_effort: low`.
pub const BUDGET_LOW: u64 = 1024;
/// Thinking budget for `reasoning_effort: medium`.
pub const BUDGET_MEDIUM: u64 = 8192;
/// Thinking budget for `reasoning_effort: high`.
pub const BUDGET_HIGH: u64 = 24576;

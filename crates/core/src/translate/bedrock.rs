//! OpenAI chat completions and embeddings <-> Amazon Bedrock Runtime (`Converse`,
//! `ConverseStream`, and `InvokeModel` for Titan and Cohere embedding models).
//!
//! [`converse_request`] turns an OpenAI chat request into a Converse body; [`chat_response`]
//! turns a Converse answer into an OpenAI `chat.completion`; [`StreamTranslator`] turns
//! ConverseStream events into `chat.completion.chunk`s; [`embeddings`] maps embeddings both ways.
//!
//! Request choices:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`
//!   blocks in order, one `{text}` block per text part. Empty texts are dropped everywhere
//!   (Bedrock rejects blank text blocks) and a message left with no blocks is dropped.
//! - Converse requires user/assistant alternation, so consecutive messages that map to the same
//!   role are merged into one message. Tool messages map to the user role: a run of tool results
//!   becomes ONE user message of `toolResult` blocks, and a user message right after them joins
//!   that message, after the results.
//! - A tool result's content is `[{text}]` (one block per text part), never `[{json}]` even when
//!   the text is JSON: only some model families accept `json` blocks, and the model reads the
//!   same text either way. No `status` is sent (OpenAI has no error flag for tool results, and
//!   only Claude and Nova accept it).
//! - Tool call ids are sent as `toolUseId`s with every character outside `[A-Za-z0-9_-]`
//!   replaced by `_` and cut to 64 characters (Bedrock's constraints), the same way in
//!   `toolUse` and `toolResult` blocks so that pairs still match. OpenAI's `call_...` ids pass
//!   unchanged.
//! - Images: only base64 `data:` URLs of png, jpeg, gif or webp, sent as
//!   `{image: {format, source: {bytes}}}`. Converse cannot fetch images, so an http(s) URL is
//!   refused with [`TranslateError::InvalidImageUrl`] rather than fetched by the gateway (which
//!   would make it a proxy for arbitrary URLs). Audio and file parts are refused.
//! - Assistant `reasoning_content` in history is dropped (Claude needs the signature to replay
//!   thinking); assistant `refusal` text is kept as text.
//! - `inferenceConfig`: `maxTokens` from `max_completion_tokens`, else `max_tokens` (absent:
//!   the model's default), `temperature`, `top_p` as `topP`, `stop` as `stopSequences`. The
//!   whole object is omitted when empty.
//! - Tools become `toolConfig.tools[].toolSpec` with the JSON Schema under `inputSchema.json`
//!   (no `parameters`: an empty object schema). `tool_choice`: `auto` → `{auto: {}}`,
//!   `required` → `{any: {}}`, a named function → `{tool: {name}}`; absent → no `toolChoice`
//!   (Bedrock's default is auto). `parallel_tool_calls` has no Converse equivalent and is
//!   ignored.
//! - `tool_choice: "none"` offers no tools: Converse has no "none" choice, so the declared tools
//!   are left out. But Bedrock rejects a request whose messages hold `toolUse`/`toolResult`
//!   blocks without a `toolConfig`; then (and also when a request replays tool calls without
//!   declaring any tools, as agents do on a final summarising turn) the gateway sends a
//!   `toolConfig` holding only a placeholder tool, [`PLACEHOLDER_TOOL`], described as one never
//!   to call. Should a model call it anyway, the call is dropped from the answer (and from the
//!   stream), and a `tool_use` stop with no other call becomes `stop`.
//! - `response_format`: Converse has no JSON mode. `json_object` and `json_schema` add a final
//!   system block instructing the model to answer with JSON only (with the schema for
//!   `json_schema`), as the Anthropic translation does; it is an instruction, not a guarantee.
//! - `reasoning_effort` enables extended thinking through `additionalModelRequestFields:
//!   {thinking: {type: enabled, budget_tokens}}` when the model id contains `anthropic` (model
//!   ids, cross-region inference profiles and their ARNs do), with the Anthropic translation's
//!   budgets (`minimal`/`low` 1024, `medium` 4096, `high` 16384; `none` leaves thinking off).
//!   Thinking counts inside `maxTokens`, so the visible allowance (the request's, else
//!   [`THINKING_DEFAULT_ALLOWANCE`]) is raised to budget + allowance when it is not above the
//!   budget. Other models (and application inference profile ARNs, which do not name the
//!   model) ignore `reasoning_effort`: their reasoning switches differ per family.
//! - Ignored: `seed`, `n`, `user`, `logprobs`, penalties, `logit_bias`, `service_tier`,
//!   message `name`s (no Converse equivalent).
//!
//! Response, stream and embedding choices are listed in [`response`], [`stream`] and
//! [`embeddings`].

mod response;
mod stream;

pub mod embeddings;

use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat, TextContent, UserContent,
    UserPart,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub use response::{ConverseResponse, chat_response};
pub use stream::{StreamTranslator, classify_error, exception_status};

use super::anthropic::{BUDGET_HIGH, BUDGET_LOW, BUDGET_MEDIUM};
use super::{TranslateError, extra, typed};

/// The name of the tool sent when Bedrock needs a `toolConfig` but no tool may be offered.
pub const PLACEHOLDER_TOOL: &str = "gateway_no_tool_available";
const PLACEHOLDER_DESCRIPTION: &str = "This tool does nothing and is not available. Never call \
     it: answer the user directly.";

/// The visible-answer allowance added on top of a thinking budget when the request sets none.
pub const THINKING_DEFAULT_ALLOWANCE: u64 = 4096;

const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no other text before or after it.";

/// A Converse (and ConverseStream) request body. Its `Debug` prints only its shape.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemBlock>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_model_request_fields: Option<Value>,
}

impl std::fmt::Debug for ConverseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConverseRequest")
            .field("messages", &self.messages.len())
            .field("system", &self.system.len())
            .field(
                "tools",
                &self.tool_config.as_ref().map_or(0, |t| t.tools.len()),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Turn {
    role: Role,
    content: Vec<Block>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    User,
    Assistant,
}

/// A message content block: Converse's union, written as a one-key object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block {
    Text(String),
    Image(Image),
    ToolUse(ToolUse),
    ToolResult(ToolResult),
}

#[derive(Serialize)]
struct Image {
    format: &'static str,
    source: ImageSource,
}

#[derive(Serialize)]
struct ImageSource {
    /// Base64, as JSON carries Converse's blobs.
    bytes: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse {
    tool_use_id: String,
    name: String,
    input: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult {
    tool_use_id: String,
    content: Vec<ToolResultContent>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ToolResultContent {
    Text(String),
}

#[derive(Serialize)]
struct SystemBlock {
    text: String,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
}

impl InferenceConfig {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    tools: Vec<ToolEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry {
    tool_spec: ToolSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    input_schema: InputSchema,
}

#[derive(Serialize)]
struct InputSchema {
    json: Box<RawValue>,
}

/// Translates an OpenAI chat request into a Converse body for the model `model_id` (a model
/// id, inference profile id or ARN; it only decides whether thinking applies).
pub fn converse_request(
    req: &ChatCompletionRequest,
    model_id: &str,
) -> Result<ConverseRequest, TranslateError> {
    let messages = req
        .messages_typed()
        .map_err(|_| TranslateError::InvalidField { field: "messages" })?;
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for message in &messages {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.extend(texts(content).map(|text| SystemBlock { text }));
            }
            Message::User { content, .. } => turns.push(Role::User, user_blocks(content)?),
            Message::Assistant {
                content,
                refusal,
                tool_calls,
                ..
            } => {
                let mut blocks = Vec::new();
                match content {
                    Some(AssistantContent::Text(text)) => blocks.push(Block::Text(text.clone())),
                    Some(AssistantContent::Parts(parts)) => {
                        blocks.extend(parts.iter().map(|part| match part {
                            AssistantPart::Text(t) => Block::Text(t.text.clone()),
                            AssistantPart::Refusal(r) => Block::Text(r.refusal.clone()),
                        }));
                    }
                    None => {}
                }
                if let Some(refusal) = refusal {
                    blocks.push(Block::Text(refusal.clone()));
                }
                for call in tool_calls {
                    blocks.push(tool_use_block(call)?);
                }
                turns.push(Role::Assistant, blocks);
            }
            Message::Tool {
                content,
                tool_call_id,
                ..
            } => {
                let mut content: Vec<_> = texts(content).map(ToolResultContent::Text).collect();
                if content.is_empty() {
                    content.push(ToolResultContent::Text(String::new()));
                }
                let block = Block::ToolResult(ToolResult {
                    tool_use_id: tool_use_id(tool_call_id),
                    content,
                });
                turns.push(Role::User, vec![block]);
            }
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }

    if let Some(instruction) = json_instruction(typed(req.response_format(), "response_format")?)? {
        system.push(SystemBlock { text: instruction });
    }

    let mut inference_config = InferenceConfig {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: extra(&req.extra, "temperature")?,
        top_p: extra(&req.extra, "top_p")?,
        stop_sequences: typed(req.stop(), "stop")?
            .map(|stop| stop.sequences().to_vec())
            .unwrap_or_default(),
    };

    let budget = match extra::<String>(&req.extra, "reasoning_effort")?.as_deref() {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(BUDGET_LOW),
        Some("medium") => Some(BUDGET_MEDIUM),
        Some("high") => Some(BUDGET_HIGH),
        Some(_) => {
            return Err(TranslateError::UnsupportedValue {
                field: "reasoning_effort",
            });
        }
    };
    let additional_model_request_fields =
        budget
            .filter(|_| model_id.contains("anthropic"))
            .map(|budget| {
                let allowance = inference_config
                    .max_tokens
                    .unwrap_or(THINKING_DEFAULT_ALLOWANCE);
                inference_config.max_tokens = Some(if allowance <= budget {
                    budget.saturating_add(allowance)
                } else {
                    allowance
                });
                json!({"thinking": {"type": "enabled", "budget_tokens": budget}})
            });

    let tool_config = tool_config(req, turns.has_tool_blocks())?;

    Ok(ConverseRequest {
        messages: turns.finish(),
        system,
        inference_config,
        tool_config,
        additional_model_request_fields,
    })
}

/// The `toolConfig`: the declared tools and choice, or the placeholder when no tool may be
/// offered but the history holds tool blocks (see the module doc).
fn tool_config(
    req: &ChatCompletionRequest,
    history_has_tools: bool,
) -> Result<Option<ToolConfig>, TranslateError> {
    let tools = typed(req.tools(), "tools")?.unwrap_or_default();
    let choice = typed(req.tool_choice(), "tool_choice")?;
    let tool_choice = match &choice {
        None | Some(openai_chat::ToolChoice::None) => None,
        Some(openai_chat::ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(openai_chat::ToolChoice::Required) => Some(json!({"any": {}})),
        Some(openai_chat::ToolChoice::Function { function, .. }) => {
            Some(json!({"tool": {"name": function.name}}))
        }
        Some(openai_chat::ToolChoice::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "tool_choice",
            });
        }
    };
    let offered = !tools.is_empty() && !matches!(choice, Some(openai_chat::ToolChoice::None));
    if offered {
        let tools = tools.iter().map(tool_entry).collect::<Result<_, _>>()?;
        return Ok(Some(ToolConfig { tools, tool_choice }));
    }
    if !history_has_tools {
        return Ok(None);
    }
    Ok(Some(ToolConfig {
        tools: vec![ToolEntry {
            tool_spec: ToolSpec {
                name: PLACEHOLDER_TOOL.to_owned(),
                description: Some(PLACEHOLDER_DESCRIPTION.to_owned()),
                input_schema: InputSchema {
                    json: empty_object_schema()?,
                },
            },
        }],
        tool_choice: None,
    }))
}

fn tool_entry(tool: &openai_chat::Tool) -> Result<ToolEntry, TranslateError> {
    let f = &tool.function;
    let json = match &f.parameters {
        Some(schema) => schema.clone(),
        None => empty_object_schema()?,
    };
    Ok(ToolEntry {
        tool_spec: ToolSpec {
            name: f.name.clone(),
            description: f.description.clone().filter(|d| !d.is_empty()),
            input_schema: InputSchema { json },
        },
    })
}

fn empty_object_schema() -> Result<Box<RawValue>, TranslateError> {
    RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned())
        .map_err(|_| TranslateError::InvalidField { field: "tools" })
}

/// The system instruction standing in for a JSON mode, if one is asked for.
fn json_instruction(format: Option<ResponseFormat>) -> Result<Option<String>, TranslateError> {
    Ok(match format {
        None | Some(ResponseFormat::Text { .. }) => None,
        Some(ResponseFormat::JsonObject { .. }) => Some(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some(ResponseFormat::JsonSchema { json_schema, .. }) => {
            let mut text = format!(
                "Respond with a single valid JSON value only, with no other text before or after \
                 it. It must conform to the JSON schema named `{}`",
                json_schema.name
            );
            if let Some(schema) = &json_schema.schema {
                text.push_str(":\n");
                text.push_str(schema.get());
            } else {
                text.push('.');
            }
            Some(text)
        }
        Some(ResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    })
}

/// Messages being built, merging consecutive same-role turns.
#[derive(Default)]
struct Turns(Vec<Turn>);

impl Turns {
    fn push(&mut self, role: Role, blocks: Vec<Block>) {
        let blocks = blocks
            .into_iter()
            .filter(|b| !matches!(b, Block::Text(t) if t.is_empty()));
        match self.0.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => {
                let content: Vec<_> = blocks.collect();
                if !content.is_empty() {
                    self.0.push(Turn { role, content });
                }
            }
        }
    }

    fn has_tool_blocks(&self) -> bool {
        self.0.iter().any(|turn| {
            turn.content
                .iter()
                .any(|b| matches!(b, Block::ToolUse(_) | Block::ToolResult(_)))
        })
    }

    fn finish(self) -> Vec<Turn> {
        self.0
    }
}

/// The non-empty texts of system, developer and tool content, part by part.
fn texts(content: &TextContent) -> impl Iterator<Item = String> + '_ {
    let (one, parts) = match content {
        TextContent::Text(text) => (Some(text.as_str()), &[][..]),
        TextContent::Parts(parts) => (None, parts.as_slice()),
    };
    one.into_iter()
        .chain(parts.iter().map(|p| p.text.as_str()))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn user_blocks(content: &UserContent) -> Result<Vec<Block>, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(vec![Block::Text(text.clone())]),
        UserContent::Parts(parts) => parts,
    };
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(Block::Text(t.text.clone())),
            UserPart::ImageUrl(image) => image_block(&image.image_url.url),
            UserPart::InputAudio(_) => Err(unsupported_part("input_audio")),
            UserPart::File(_) => Err(unsupported_part("file")),
            UserPart::Other(raw) => {
                Err(unsupported_part(raw.kind().as_deref().unwrap_or("unknown")))
            }
        })
        .collect()
}

fn unsupported_part(kind: &str) -> TranslateError {
    TranslateError::UnsupportedContentPart {
        kind: kind.chars().take(64).collect(),
    }
}

/// `data:image/<png|jpeg|gif|webp>;base64,<data>` as an image block.
fn image_block(url: &str) -> Result<Block, TranslateError> {
    let rest = url
        .strip_prefix("data:")
        .ok_or(TranslateError::InvalidImageUrl)?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or(TranslateError::InvalidImageUrl)?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or(TranslateError::InvalidImageUrl)?;
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => {
            return Err(TranslateError::UnsupportedValue { field: "image_url" });
        }
    };
    Ok(Block::Image(Image {
        format,
        source: ImageSource {
            bytes: data.to_owned(),
        },
    }))
}

/// An assistant tool call as a `toolUse` block. Empty arguments mean no arguments (`{}`).
fn tool_use_block(call: &openai_chat::ToolCall) -> Result<Block, TranslateError> {
    let invalid = || TranslateError::InvalidToolArguments {
        id: call.id.clone(),
    };
    let args = call.function.arguments.trim();
    let input = if args.is_empty() {
        RawValue::from_string("{}".to_owned()).map_err(|_| invalid())?
    } else {
        let value: Value = serde_json::from_str(args).map_err(|_| invalid())?;
        if !value.is_object() {
            return Err(invalid());
        }
        serde_json::value::to_raw_value(&value).map_err(|_| invalid())?
    };
    Ok(Block::ToolUse(ToolUse {
        tool_use_id: tool_use_id(&call.id),
        name: call.function.name.clone(),
        input,
    }))
}

/// `id` within Bedrock's `toolUseId` constraints: `[a-zA-Z0-9_-]{1,64}`.
fn tool_use_id(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests;

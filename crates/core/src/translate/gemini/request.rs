//! OpenAI chat request -> `GenerateContentRequest` body. The choices are listed in the parent
//! module's documentation.
//!
//! The body is built from borrowing `Serialize` structs and written straight to bytes: schemas,
//! call arguments and tool results that are JSON objects go through as the raw JSON the client
//! sent, so nothing is parsed into a `Value` tree only to be serialized and dropped again (the
//! `Value` version cost twice what the other translations do).

use std::borrow::Cow;

use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat, Stop, TextContent, ToolChoice,
    UserContent, UserPart,
};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{BUDGET_HIGH, BUDGET_LOW, BUDGET_MEDIUM, BUDGET_MINIMAL, Flavor};
use crate::translate::{TranslateError, extra, typed};

/// Translates an OpenAI chat request into a Gemini `generateContent` body, serialized (the
/// model goes in the URL, not the body). Bytes rather than a typed body because the body
/// borrows from the request's messages, which are parsed here.
pub fn chat_request(
    req: &ChatCompletionRequest,
    flavor: Flavor,
) -> Result<Vec<u8>, TranslateError> {
    let messages = req
        .messages_typed()
        .map_err(|_| TranslateError::InvalidField { field: "messages" })?;
    let mut system: Vec<Part<'_>> = Vec::new();
    let mut turns = Turns::default();
    for (at, message) in messages.iter().enumerate() {
        match message {
            Message::System { content, .. } | Message::Developer { content, .. } => {
                system.extend(text_parts(content));
            }
            Message::User { content, .. } => turns.push(Role::User, user_parts(content)?),
            Message::Assistant {
                content,
                refusal,
                tool_calls,
                ..
            } => {
                let mut parts = Vec::new();
                match content {
                    Some(AssistantContent::Text(text)) => parts.push(Part::text(text)),
                    Some(AssistantContent::Parts(list)) => {
                        parts.extend(list.iter().map(|part| match part {
                            AssistantPart::Text(t) => Part::text(&t.text),
                            AssistantPart::Refusal(r) => Part::text(&r.refusal),
                        }));
                    }
                    None => {}
                }
                if let Some(refusal) = refusal {
                    parts.push(Part::text(refusal));
                }
                for call in tool_calls {
                    parts.push(function_call_part(call, flavor)?);
                }
                turns.push(Role::Model, parts);
            }
            Message::Tool {
                content,
                tool_call_id,
                ..
            } => {
                let name = called_function(&messages[..at], tool_call_id).ok_or_else(|| {
                    TranslateError::UnknownToolCall {
                        id: tool_call_id.clone(),
                    }
                })?;
                let function_response = FunctionResponse {
                    name,
                    response: tool_result(content.joined()),
                    id: (flavor == Flavor::AiStudio).then_some(tool_call_id.as_str()),
                };
                turns.push(
                    Role::User,
                    vec![Part::FunctionResponse { function_response }],
                );
            }
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }

    let tools = typed(req.tools(), "tools")?.filter(|t| !t.is_empty());
    let choice = typed(req.tool_choice(), "tool_choice")?;
    let function_calling_config = function_calling_config(choice.as_ref())?;
    let generation_config = generation_config(req)?;
    let body = Body {
        contents: turns.finish(),
        system_instruction: (!system.is_empty()).then_some(Parts { parts: system }),
        tools: tools.as_ref().map(|tools| {
            [Tool {
                function_declarations: tools.iter().map(function_declaration).collect(),
            }]
        }),
        tool_config: function_calling_config.map(|function_calling_config| ToolConfig {
            function_calling_config,
        }),
        generation_config: (!generation_config.is_empty()).then_some(generation_config),
    };
    // Cannot fail (strings, numbers and raw JSON only); mapped rather than unwrapped.
    serde_json::to_vec(&body).map_err(|_| TranslateError::InvalidField { field: "messages" })
}

/// A `GenerateContentRequest` body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Parts<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<[Tool<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

/// A turn: `{role, parts}`.
#[derive(Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: Vec<Part<'a>>,
}

/// `systemInstruction`: parts with no role.
#[derive(Serialize)]
struct Parts<'a> {
    parts: Vec<Part<'a>>,
}

/// One part of a turn; each variant is the object Gemini expects, so untagged.
#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Text {
        text: &'a str,
    },
    InlineData {
        #[serde(rename = "inlineData")]
        inline_data: Blob<'a>,
    },
    FileData {
        #[serde(rename = "fileData")]
        file_data: FileData<'a>,
    },
    FunctionCall {
        #[serde(rename = "functionCall")]
        function_call: FunctionCall<'a>,
        #[serde(rename = "thoughtSignature", skip_serializing_if = "Option::is_none")]
        thought_signature: Option<String>,
    },
    FunctionResponse {
        #[serde(rename = "functionResponse")]
        function_response: FunctionResponse<'a>,
    },
}

impl<'a> Part<'a> {
    fn text(text: &'a str) -> Self {
        Self::Text { text }
    }

    fn inline(mime_type: &'a str, data: &'a str) -> Self {
        Self::InlineData {
            inline_data: Blob { mime_type, data },
        }
    }

    /// A text part with no text, which Gemini rejects and which is dropped.
    fn is_empty_text(&self) -> bool {
        matches!(self, Self::Text { text: "" })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileData<'a> {
    mime_type: &'a str,
    file_uri: &'a str,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Args<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// `functionCall.args`: the call's arguments as the client sent them (already checked to be a
/// JSON object), or `{}` for empty arguments.
struct Args<'a>(Option<&'a RawValue>);

impl Serialize for Args<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serde::ser::SerializeMap::end(serializer.serialize_map(Some(0))?),
        }
    }
}

#[derive(Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: ToolResult<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// `functionResponse.response`: a tool's text that is a JSON object goes as that object (raw,
/// as the client sent it), any other text as `{"content": text}`.
#[derive(Serialize)]
#[serde(untagged)]
enum ToolResult<'a> {
    Object(Cow<'a, RawValue>),
    Text { content: Cow<'a, str> },
}

/// `tools`: one tool holding every function.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// The OpenAI `parameters` as received: full JSON Schema, which `parametersJsonSchema`
    /// takes and `parameters` (an OpenAPI subset) would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<[&'a str; 1]>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidate_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig {
    /// No field set: the whole `generationConfig` is left out.
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
            && self.candidate_count.is_none()
            && self.response_mime_type.is_none()
            && self.response_json_schema.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Model,
}

/// Turns being built, merging consecutive same-role turns.
#[derive(Default)]
struct Turns<'a>(Vec<(Role, Vec<Part<'a>>)>);

impl<'a> Turns<'a> {
    fn push(&mut self, role: Role, parts: Vec<Part<'a>>) {
        let parts = parts.into_iter().filter(|p| !p.is_empty_text());
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => {
                let parts: Vec<Part<'a>> = parts.collect();
                if !parts.is_empty() {
                    self.0.push((role, parts));
                }
            }
        }
    }

    fn finish(self) -> Vec<Content<'a>> {
        self.0
            .into_iter()
            .map(|(role, parts)| Content {
                role: match role {
                    Role::User => "user",
                    Role::Model => "model",
                },
                parts,
            })
            .collect()
    }
}

/// The parts of a system, developer or tool text: part by part, empty ones dropped.
fn text_parts(content: &TextContent) -> Vec<Part<'_>> {
    let mut parts = match content {
        TextContent::Text(text) => vec![Part::text(text)],
        TextContent::Parts(parts) => parts.iter().map(|p| Part::text(&p.text)).collect(),
    };
    parts.retain(|p| !p.is_empty_text());
    parts
}

fn user_parts(content: &UserContent) -> Result<Vec<Part<'_>>, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(vec![Part::text(text)]),
        UserContent::Parts(parts) => parts,
    };
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(Part::text(&t.text)),
            UserPart::ImageUrl(image) => image_part(&image.image_url.url),
            UserPart::InputAudio(audio) => {
                let mime = match audio.input_audio.format.as_str() {
                    "wav" => "audio/wav",
                    "mp3" => "audio/mp3",
                    _ => {
                        return Err(TranslateError::UnsupportedValue {
                            field: "input_audio.format",
                        });
                    }
                };
                Ok(Part::inline(mime, &audio.input_audio.data))
            }
            UserPart::File(file) => match file.file.file_data.as_deref() {
                Some(data_url) => {
                    let (mime, data) =
                        parse_data_url(data_url).ok_or(TranslateError::UnsupportedValue {
                            field: "file.file_data",
                        })?;
                    Ok(Part::inline(mime, data))
                }
                None => Err(unsupported_part("file")),
            },
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

/// `data:<mime>;base64,<data>` as its MIME type and data.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mime = meta.strip_suffix(";base64").filter(|m| !m.is_empty())?;
    Some((mime, data))
}

/// A data URL is inline data; an http(s) or Cloud Storage URL is file data Gemini fetches.
fn image_part(url: &str) -> Result<Part<'_>, TranslateError> {
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url).ok_or(TranslateError::InvalidImageUrl)?;
        return Ok(Part::inline(mime, data));
    }
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(scheme.as_str(), "http" | "https" | "gs") {
        return Ok(Part::FileData {
            file_data: FileData {
                mime_type: guess_mime(url),
                file_uri: url,
            },
        });
    }
    Err(TranslateError::InvalidImageUrl)
}

/// The MIME type of a URL by the extension of its path; `image/jpeg` when unknown.
pub(super) fn guess_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => "image/jpeg",
    }
}

/// A raw JSON value that is an object (raw values start at their first token).
fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

fn function_call_part(
    call: &openai_chat::ToolCall,
    flavor: Flavor,
) -> Result<Part<'_>, TranslateError> {
    let invalid = || TranslateError::InvalidToolArguments {
        id: call.id.clone(),
    };
    let args = call.function.arguments.trim();
    let args = if args.is_empty() {
        None
    } else {
        let raw: &RawValue = serde_json::from_str(args).map_err(|_| invalid())?;
        if !is_object(raw) {
            return Err(invalid());
        }
        Some(raw)
    };
    Ok(Part::FunctionCall {
        function_call: FunctionCall {
            name: &call.function.name,
            args: Args(args),
            id: (flavor == Flavor::AiStudio).then_some(call.id.as_str()),
        },
        thought_signature: thought_signature(call),
    })
}

/// `extra_content.google.thought_signature` of a tool call, if the client kept it.
fn thought_signature(call: &openai_chat::ToolCall) -> Option<String> {
    let extra: Value = call.extra.get_as("extra_content")?;
    Some(
        extra
            .get("google")?
            .get("thought_signature")?
            .as_str()?
            .to_owned(),
    )
}

/// The function name of the latest tool call `id` among `earlier` assistant messages.
fn called_function<'a>(earlier: &'a [Message], id: &str) -> Option<&'a str> {
    earlier.iter().rev().find_map(|m| match m {
        Message::Assistant { tool_calls, .. } => tool_calls
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.function.name.as_str()),
        _ => None,
    })
}

/// A tool's text as a `functionResponse.response` object.
fn tool_result(text: Cow<'_, str>) -> ToolResult<'_> {
    match text {
        Cow::Borrowed(text) => match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) if is_object(raw) => ToolResult::Object(Cow::Borrowed(raw)),
            _ => ToolResult::Text {
                content: Cow::Borrowed(text),
            },
        },
        Cow::Owned(text) => match serde_json::from_str::<&RawValue>(&text) {
            Ok(raw) if is_object(raw) => ToolResult::Object(Cow::Owned(raw.to_owned())),
            _ => ToolResult::Text {
                content: Cow::Owned(text),
            },
        },
    }
}

fn function_declaration(tool: &openai_chat::Tool) -> FunctionDeclaration<'_> {
    let f = &tool.function;
    FunctionDeclaration {
        name: &f.name,
        description: f.description.as_deref(),
        parameters_json_schema: f.parameters.as_deref().filter(|s| !is_null(s)),
    }
}

/// A raw JSON `null`, which goes as no schema at all.
fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

fn function_calling_config(
    choice: Option<&ToolChoice>,
) -> Result<Option<FunctionCallingConfig<'_>>, TranslateError> {
    let (mode, name) = match choice {
        None => return Ok(None),
        Some(ToolChoice::None) => ("NONE", None),
        Some(ToolChoice::Auto) => ("AUTO", None),
        Some(ToolChoice::Required) => ("ANY", None),
        Some(ToolChoice::Function { function, .. }) => ("ANY", Some(function.name.as_str())),
        Some(ToolChoice::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "tool_choice",
            });
        }
    };
    Ok(Some(FunctionCallingConfig {
        mode,
        allowed_function_names: name.map(|name| [name]),
    }))
}

/// `generationConfig`. Owned (the stop sequences and schema are moved out of the typed fields),
/// and read in the documented order, so the first of several invalid fields is the one reported.
fn generation_config(req: &ChatCompletionRequest) -> Result<GenerationConfig, TranslateError> {
    let mut config = GenerationConfig {
        temperature: extra::<f64>(&req.extra, "temperature")?,
        top_p: extra::<f64>(&req.extra, "top_p")?,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        ..GenerationConfig::default()
    };
    config.stop_sequences = typed(req.stop(), "stop")?
        .map(|stop| match stop {
            Stop::One(one) => vec![one],
            Stop::Many(many) => many,
        })
        .filter(|seqs| !seqs.is_empty());
    config.seed = extra::<i64>(&req.extra, "seed")?;
    // Zero is the default and some models reject the fields.
    let penalty = |field| Ok(extra::<f64>(&req.extra, field)?.filter(|p| *p != 0.0));
    config.presence_penalty = penalty("presence_penalty")?;
    config.frequency_penalty = penalty("frequency_penalty")?;
    config.candidate_count = match extra::<u64>(&req.extra, "n")? {
        None => None,
        Some(1) => Some(1),
        Some(_) => return Err(TranslateError::UnsupportedValue { field: "n" }),
    };
    match typed(req.response_format(), "response_format")? {
        None | Some(ResponseFormat::Text { .. }) => {}
        Some(ResponseFormat::JsonObject { .. }) => {
            config.response_mime_type = Some("application/json");
        }
        Some(ResponseFormat::JsonSchema { json_schema, .. }) => {
            config.response_mime_type = Some("application/json");
            config.response_json_schema = json_schema.schema.filter(|s| !is_null(s));
        }
        Some(ResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    }
    config.thinking_config = match extra::<String>(&req.extra, "reasoning_effort")?.as_deref() {
        None => None,
        Some("none") => Some(ThinkingConfig {
            thinking_budget: 0,
            include_thoughts: None,
        }),
        Some(effort) => {
            let thinking_budget = match effort {
                "minimal" => BUDGET_MINIMAL,
                "low" => BUDGET_LOW,
                "medium" => BUDGET_MEDIUM,
                "high" => BUDGET_HIGH,
                _ => {
                    return Err(TranslateError::UnsupportedValue {
                        field: "reasoning_effort",
                    });
                }
            };
            Some(ThinkingConfig {
                thinking_budget,
                include_thoughts: Some(true),
            })
        }
    };
    Ok(config)
}

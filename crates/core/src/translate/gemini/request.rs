//! OpenAI chat request -> `GenerateContentRequest` body. The choices are listed in the parent
//! module's documentation.

use portcullis_types::openai::ChatCompletionRequest;
use portcullis_types::openai_chat::{
    self, AssistantContent, AssistantPart, Message, ResponseFormat, TextContent, ToolChoice,
    UserContent, UserPart,
};
use serde_json::{Map, Value, json};

use super::{BUDGET_HIGH, BUDGET_LOW, BUDGET_MEDIUM, BUDGET_MINIMAL, Flavor};
use crate::translate::{TranslateError, extra, typed};

/// Translates an OpenAI chat request into a Gemini `generateContent` body (the model goes in
/// the URL, not the body).
pub fn chat_request(req: &ChatCompletionRequest, flavor: Flavor) -> Result<Value, TranslateError> {
    let messages = req
        .messages_typed()
        .map_err(|_| TranslateError::InvalidField { field: "messages" })?;
    let mut system: Vec<Value> = Vec::new();
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
                    Some(AssistantContent::Text(text)) => parts.push(text_part(text)),
                    Some(AssistantContent::Parts(list)) => {
                        parts.extend(list.iter().map(|part| match part {
                            AssistantPart::Text(t) => text_part(&t.text),
                            AssistantPart::Refusal(r) => text_part(&r.refusal),
                        }));
                    }
                    None => {}
                }
                if let Some(refusal) = refusal {
                    parts.push(text_part(refusal));
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
                let mut response = Map::new();
                response.insert("name".into(), name.into());
                response.insert("response".into(), tool_result(&content.joined()));
                if flavor == Flavor::AiStudio {
                    response.insert("id".into(), tool_call_id.as_str().into());
                }
                turns.push(
                    Role::User,
                    vec![json!({ "functionResponse": Value::Object(response) })],
                );
            }
            Message::Function { .. } => {
                return Err(TranslateError::UnsupportedRole { role: "function" });
            }
        }
    }

    let mut body = Map::new();
    body.insert("contents".into(), turns.finish());
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    if let Some(tools) = typed(req.tools(), "tools")?.filter(|t| !t.is_empty()) {
        let declarations: Vec<Value> = tools.iter().map(function_declaration).collect();
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    if let Some(config) = function_calling_config(req)? {
        body.insert(
            "toolConfig".into(),
            json!({ "functionCallingConfig": config }),
        );
    }
    let config = generation_config(req)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Model,
}

/// Turns being built, merging consecutive same-role turns.
#[derive(Default)]
struct Turns(Vec<(Role, Vec<Value>)>);

impl Turns {
    fn push(&mut self, role: Role, parts: Vec<Value>) {
        let parts = parts.into_iter().filter(|p| !is_empty_text(p));
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => {
                let parts: Vec<Value> = parts.collect();
                if !parts.is_empty() {
                    self.0.push((role, parts));
                }
            }
        }
    }

    fn finish(self) -> Value {
        Value::Array(
            self.0
                .into_iter()
                .map(|(role, parts)| {
                    let role = match role {
                        Role::User => "user",
                        Role::Model => "model",
                    };
                    json!({ "role": role, "parts": parts })
                })
                .collect(),
        )
    }
}

fn is_empty_text(part: &Value) -> bool {
    part.as_object()
        .is_some_and(|o| o.len() == 1 && o.get("text").and_then(Value::as_str) == Some(""))
}

fn text_part(text: &str) -> Value {
    json!({ "text": text })
}

/// The parts of a system, developer or tool text: part by part, empty ones dropped.
fn text_parts(content: &TextContent) -> Vec<Value> {
    match content {
        TextContent::Text(text) => vec![text_part(text)],
        TextContent::Parts(parts) => parts.iter().map(|p| text_part(&p.text)).collect(),
    }
    .into_iter()
    .filter(|p| !is_empty_text(p))
    .collect()
}

fn user_parts(content: &UserContent) -> Result<Vec<Value>, TranslateError> {
    let parts = match content {
        UserContent::Text(text) => return Ok(vec![text_part(text)]),
        UserContent::Parts(parts) => parts,
    };
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(t) => Ok(text_part(&t.text)),
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
                Ok(json!({ "inlineData": { "mimeType": mime, "data": audio.input_audio.data } }))
            }
            UserPart::File(file) => match file.file.file_data.as_deref() {
                Some(data_url) => {
                    let (mime, data) =
                        parse_data_url(data_url).ok_or(TranslateError::UnsupportedValue {
                            field: "file.file_data",
                        })?;
                    Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }))
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
fn image_part(url: &str) -> Result<Value, TranslateError> {
    if url.starts_with("data:") {
        let (mime, data) = parse_data_url(url).ok_or(TranslateError::InvalidImageUrl)?;
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    let scheme = url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(scheme.as_str(), "http" | "https" | "gs") {
        return Ok(json!({ "fileData": { "mimeType": guess_mime(url), "fileUri": url } }));
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

fn function_call_part(
    call: &openai_chat::ToolCall,
    flavor: Flavor,
) -> Result<Value, TranslateError> {
    let invalid = || TranslateError::InvalidToolArguments {
        id: call.id.clone(),
    };
    let args = call.function.arguments.trim();
    let args = if args.is_empty() {
        Value::Object(Map::new())
    } else {
        let value: Value = serde_json::from_str(args).map_err(|_| invalid())?;
        if !value.is_object() {
            return Err(invalid());
        }
        value
    };
    let mut function_call = Map::new();
    function_call.insert("name".into(), call.function.name.as_str().into());
    function_call.insert("args".into(), args);
    if flavor == Flavor::AiStudio {
        function_call.insert("id".into(), call.id.as_str().into());
    }
    let mut part = Map::new();
    part.insert("functionCall".into(), Value::Object(function_call));
    if let Some(signature) = thought_signature(call) {
        part.insert("thoughtSignature".into(), signature.into());
    }
    Ok(Value::Object(part))
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
fn tool_result(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Value::Object(object),
        _ => json!({ "content": text }),
    }
}

fn function_declaration(tool: &openai_chat::Tool) -> Value {
    let f = &tool.function;
    let mut declaration = Map::new();
    declaration.insert("name".into(), f.name.as_str().into());
    if let Some(description) = &f.description {
        declaration.insert("description".into(), description.as_str().into());
    }
    if let Some(schema) = &f.parameters
        && let Ok(schema) = serde_json::from_str::<Value>(schema.get())
        && !schema.is_null()
    {
        declaration.insert("parametersJsonSchema".into(), schema);
    }
    Value::Object(declaration)
}

fn function_calling_config(req: &ChatCompletionRequest) -> Result<Option<Value>, TranslateError> {
    Ok(match typed(req.tool_choice(), "tool_choice")? {
        None => None,
        Some(ToolChoice::None) => Some(json!({ "mode": "NONE" })),
        Some(ToolChoice::Auto) => Some(json!({ "mode": "AUTO" })),
        Some(ToolChoice::Required) => Some(json!({ "mode": "ANY" })),
        Some(ToolChoice::Function { function, .. }) => {
            Some(json!({ "mode": "ANY", "allowedFunctionNames": [function.name] }))
        }
        Some(ToolChoice::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "tool_choice",
            });
        }
    })
}

fn generation_config(req: &ChatCompletionRequest) -> Result<Map<String, Value>, TranslateError> {
    let mut config = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            config.insert(key.to_owned(), value);
        }
    };
    set(
        "temperature",
        extra::<f64>(&req.extra, "temperature")?.map(Value::from),
    );
    set("topP", extra::<f64>(&req.extra, "top_p")?.map(Value::from));
    set(
        "maxOutputTokens",
        req.max_completion_tokens
            .or(req.max_tokens)
            .map(Value::from),
    );
    let stop = typed(req.stop(), "stop")?
        .map(|stop| stop.sequences().to_vec())
        .filter(|seqs| !seqs.is_empty());
    set("stopSequences", stop.map(Value::from));
    set("seed", extra::<i64>(&req.extra, "seed")?.map(Value::from));
    for (field, key) in [
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        set(
            key,
            extra::<f64>(&req.extra, field)?
                .filter(|p| *p != 0.0)
                .map(Value::from),
        );
    }
    match extra::<u64>(&req.extra, "n")? {
        None => {}
        Some(1) => set("candidateCount", Some(1.into())),
        Some(_) => return Err(TranslateError::UnsupportedValue { field: "n" }),
    }
    match typed(req.response_format(), "response_format")? {
        None | Some(ResponseFormat::Text { .. }) => {}
        Some(ResponseFormat::JsonObject { .. }) => {
            set("responseMimeType", Some("application/json".into()));
        }
        Some(ResponseFormat::JsonSchema { json_schema, .. }) => {
            set("responseMimeType", Some("application/json".into()));
            let schema = json_schema
                .schema
                .as_ref()
                .map(|s| serde_json::from_str::<Value>(s.get()))
                .transpose()
                .map_err(|_| TranslateError::InvalidField {
                    field: "response_format",
                })?;
            set("responseJsonSchema", schema.filter(|s| !s.is_null()));
        }
        Some(ResponseFormat::Other(_)) => {
            return Err(TranslateError::UnsupportedValue {
                field: "response_format",
            });
        }
    }
    let thinking = match extra::<String>(&req.extra, "reasoning_effort")?.as_deref() {
        None => None,
        Some("none") => Some(json!({ "thinkingBudget": 0 })),
        Some(effort) => {
            let budget = match effort {
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
            Some(json!({ "thinkingBudget": budget, "includeThoughts": true }))
        }
    };
    set("thinkingConfig", thinking);
    Ok(config)
}

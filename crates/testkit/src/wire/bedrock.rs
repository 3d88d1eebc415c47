//! Amazon Bedrock Runtime on the wire: `Converse` JSON answers, whole `ConverseStream` bodies in
//! the binary AWS event-stream framing (frames written with portcullis-core's encoder, CRCs
//! included), `InvokeModel` answers of Titan and Cohere embedding models, and errors as Bedrock
//! sends them (status, `x-amzn-errortype`, `{"message"}`). [`BedrockWire::seen`] checks the
//! request's SigV4 signature by recomputing it (see [`sigv4`]), so a wrongly signed request
//! fails the test.

pub mod sigv4;

use std::time::Duration;

use bytes::Bytes;
use portcullis_core::aws_eventstream::{
    CONTENT_TYPE, EVENT_TYPE, EXCEPTION_TYPE, MESSAGE_TYPE, encode_message,
};
use serde_json::{Value, json};

use super::{Canned, CannedError, Finish, ProviderWire, Seen, SeenMessage, SeenPart};
use crate::upstream::{Recorded, Reply, SseEnd};

/// The access key id the test credentials use.
pub const ACCESS_KEY_ID: &str = "AKIDPORTCULLISTEST01";
/// The secret access key of the test credentials.
pub const SECRET_ACCESS_KEY: &str = "bedrock-test-secret-0a1b2c3d4e5f6a7b8c9d";
/// The session token of the test credentials.
pub const SESSION_TOKEN: &str = "bedrock-test-session-token-9f8e7d6c5b4a";
/// The region of the test deployments.
pub const REGION: &str = "us-east-1";
/// The request id every answer carries (`x-amzn-requestid`).
pub const REQUEST_ID: &str = "5f2c3a1e-7b9d-4c8e-a0f1-b2c3d4e5f6a7";

const ERROR_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
/// Real ConverseStream events carry a `p` field of padding (against length side channels).
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";

/// The Bedrock wire format, with the credentials the mock expects.
#[derive(Debug, Clone)]
pub struct BedrockWire {
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// With a token, every request must carry it, signed, in `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl Default for BedrockWire {
    /// The test credentials, with a session token.
    fn default() -> Self {
        Self {
            region: REGION.into(),
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
            session_token: Some(SESSION_TOKEN.into()),
        }
    }
}

/// The operation a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The model id, percent-decoded.
    pub model: String,
    /// `converse`, `converse-stream` or `invoke`.
    pub action: String,
}

impl Target {
    /// Reads `/model/{modelId}/{action}`.
    pub fn of(path: &str) -> Result<Self, String> {
        let rest = path
            .strip_prefix("/model/")
            .ok_or_else(|| format!("{path} is not a /model/ path"))?;
        let (model, action) = rest
            .split_once('/')
            .ok_or_else(|| format!("{path} names no action"))?;
        if !matches!(action, "converse" | "converse-stream" | "invoke") {
            return Err(format!("{action} is not a Bedrock Runtime action"));
        }
        Ok(Self {
            model: percent_decode(model).ok_or("the model id is not percent-encoded UTF-8")?,
            action: action.to_owned(),
        })
    }
}

impl BedrockWire {
    /// Checks the request's SigV4 signature against this wire's credentials.
    pub fn verify(&self, r: &Recorded) -> Result<(), String> {
        sigv4::verify(
            r,
            &sigv4::Expected {
                access_key_id: &self.access_key_id,
                secret_access_key: &self.secret_access_key,
                session_token: self.session_token.as_deref(),
                region: &self.region,
                service: "bedrock",
            },
        )
    }

    /// A handler body for a mock upstream: requests that fail [`Self::verify`] get Bedrock's
    /// 403 `InvalidSignatureException`; others get `answer(request)`.
    pub fn guarded(&self, r: &Recorded, answer: impl FnOnce(&Recorded) -> Reply) -> Reply {
        match self.verify(r) {
            Ok(()) => answer(r),
            Err(_) => error_reply(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            ),
        }
    }

    /// The Converse JSON body of `canned`.
    pub fn converse_json(canned: &Canned) -> Value {
        let mut content = Vec::new();
        if let Some(text) = &canned.text {
            content.push(json!({"text": text}));
        }
        for call in &canned.tool_calls {
            content.push(json!({"toolUse": {
                "toolUseId": call.id, "name": call.name, "input": call.arguments,
            }}));
        }
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason(canned.finish),
            "usage": usage(canned),
            "metrics": {"latencyMs": 312},
        })
    }

    /// The ConverseStream events of `canned`, as (`:event-type`, payload) pairs: text in a few
    /// deltas, then each tool call as a start and two input fragments, then `messageStop` and
    /// `metadata`.
    pub fn stream_events(canned: &Canned) -> Vec<(&'static str, Value)> {
        let mut events = vec![("messageStart", json!({"role": "assistant", "p": PADDING}))];
        let mut block = 0u32;
        if let Some(text) = &canned.text {
            for piece in pieces(text, 3) {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": block, "delta": {"text": piece}, "p": PADDING}),
                ));
            }
            events.push((
                "contentBlockStop",
                json!({"contentBlockIndex": block, "p": PADDING}),
            ));
            block += 1;
        }
        for call in &canned.tool_calls {
            events.push((
                "contentBlockStart",
                json!({"contentBlockIndex": block, "p": PADDING,
                       "start": {"toolUse": {"toolUseId": call.id, "name": call.name}}}),
            ));
            for piece in pieces(&call.arguments.to_string(), 2) {
                events.push((
                    "contentBlockDelta",
                    json!({"contentBlockIndex": block, "p": PADDING,
                           "delta": {"toolUse": {"input": piece}}}),
                ));
            }
            events.push((
                "contentBlockStop",
                json!({"contentBlockIndex": block, "p": PADDING}),
            ));
            block += 1;
        }
        events.push((
            "messageStop",
            json!({"stopReason": stop_reason(canned.finish), "p": PADDING}),
        ));
        events.push((
            "metadata",
            json!({"usage": usage(canned), "metrics": {"latencyMs": 407}, "p": PADDING}),
        ));
        events
    }

    /// A whole event-stream body, cut into chunks that do not follow frame boundaries (as TCP
    /// delivers them).
    pub fn stream_body(events: &[(&str, Value)]) -> Vec<Bytes> {
        let bytes: Vec<u8> = events
            .iter()
            .flat_map(|(kind, payload)| event_frame(kind, payload))
            .collect();
        bytes.chunks(97).map(Bytes::copy_from_slice).collect()
    }

    /// A streamed 200 answer of `chunks`.
    pub fn stream_reply(chunks: Vec<Bytes>) -> Reply {
        Reply::Stream {
            status: 200,
            content_type: "application/vnd.amazon.eventstream",
            chunks,
            delay: Duration::from_millis(1),
            end: SseEnd::Close,
        }
        .with_header("x-amzn-requestid", REQUEST_ID)
    }

    /// An `InvokeModel` answer for a Titan or Cohere embedding request: deterministic vectors
    /// of 3 numbers (`[chars, 0.5, -0.5]` of each text), Titan's `inputTextTokenCount` and
    /// Cohere's token count header counting one token per word.
    pub fn invoke_reply(r: &Recorded) -> Reply {
        let Ok(target) = Target::of(&r.path) else {
            return error_reply(404, "UnknownOperationException", "Unknown operation");
        };
        let vector = |text: &str| json!([text.chars().count() as f64, 0.5, -0.5]);
        let words = |text: &str| text.split_whitespace().count();
        if target.model.contains("titan-embed") {
            let Some(text) = r.body["inputText"].as_str() else {
                return validation(
                    "Malformed input request: #: required key [inputText] not found",
                );
            };
            let mut body = json!({"embedding": vector(text), "inputTextTokenCount": words(text)});
            body["embeddingsByType"] = json!({"float": body["embedding"]});
            return Reply::json(200, body)
                .with_header("x-amzn-requestid", REQUEST_ID)
                .with_header("x-amzn-bedrock-input-token-count", &words(text).to_string());
        }
        if target.model.contains("cohere.embed") {
            let Some(texts) = r.body["texts"].as_array() else {
                return validation("Malformed input request: #: required key [texts] not found");
            };
            let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
            let vectors: Vec<Value> = texts.iter().map(|t| vector(t)).collect();
            let tokens: usize = texts.iter().map(|t| words(t)).sum();
            let embeddings = if r.body.get("embedding_types").is_some() {
                json!({"float": vectors})
            } else {
                json!(vectors)
            };
            let response_type = if embeddings.is_object() {
                "embeddings_by_type"
            } else {
                "embeddings_floats"
            };
            return Reply::json(
                200,
                json!({"id": "emb-1", "embeddings": embeddings, "texts": texts,
                       "response_type": response_type}),
            )
            .with_header("x-amzn-requestid", REQUEST_ID)
            .with_header("x-amzn-bedrock-input-token-count", &tokens.to_string());
        }
        validation("The provided model identifier is invalid.")
    }
}

impl ProviderWire for BedrockWire {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn provider_yaml(&self, base_url: &str) -> String {
        let token = self
            .session_token
            .as_deref()
            .map(|t| format!(", session_token: \"{t}\""))
            .unwrap_or_default();
        format!(
            r#"{{ type: bedrock, region: {}, base_url: "{base_url}", access_key_id: "{}", secret_access_key: "{}"{token} }}"#,
            self.region, self.access_key_id, self.secret_access_key
        )
    }

    fn reply(&self, canned: &Canned, stream: bool) -> Reply {
        if stream {
            Self::stream_reply(Self::stream_body(&Self::stream_events(canned)))
        } else {
            Reply::json(200, Self::converse_json(canned))
                .with_header("x-amzn-requestid", REQUEST_ID)
        }
    }

    fn error(&self, error: CannedError) -> Reply {
        match error {
            CannedError::RateLimited => error_reply(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            ),
            CannedError::Overloaded => error_reply(
                503,
                "ServiceUnavailableException",
                "Bedrock is unable to process your request.",
            ),
            CannedError::ContextTooLong => validation("Input is too long for requested model."),
            CannedError::ContentFiltered => {
                validation("Output blocked by content filtering policy")
            }
            CannedError::Auth => error_reply(
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
            CannedError::BadRequest => validation(
                "Malformed input request: #: extraneous key [topK] is not permitted, please \
                 reformat your input and try again.",
            ),
            CannedError::Server => error_reply(
                500,
                "InternalServerException",
                "The system encountered an unexpected error during processing. Try your request \
                 again.",
            ),
        }
    }

    fn seen(&self, r: &Recorded) -> Result<Seen, String> {
        if r.method != "POST" {
            return Err(format!("{} instead of POST", r.method));
        }
        let target = Target::of(&r.path)?;
        if target.action == "invoke" {
            return Err("an InvokeModel request is not a chat request".into());
        }
        if r.headers.get("content-type").map(String::as_str) != Some("application/json") {
            return Err("content-type is not application/json".into());
        }
        self.verify(r)?;
        let body = &r.body;
        if !body.is_object() {
            return Err("the body is not a JSON object".into());
        }
        let mut seen = Seen {
            model: target.model,
            stream: target.action == "converse-stream",
            ..Seen::default()
        };
        for block in body["system"].as_array().into_iter().flatten() {
            let text = block["text"]
                .as_str()
                .ok_or("a system block without text")?;
            if text.starts_with("Respond with a single valid JSON") {
                seen.json_mode = true;
            } else {
                seen.system.push(text.to_owned());
            }
        }
        for message in body["messages"].as_array().ok_or("no messages array")? {
            let role = message["role"].as_str().ok_or("a message without role")?;
            if !matches!(role, "user" | "assistant") {
                return Err(format!("role {role} is not user or assistant"));
            }
            let mut parts = Vec::new();
            for block in message["content"]
                .as_array()
                .ok_or("a message without content")?
            {
                parts.push(seen_part(block)?);
            }
            seen.messages.push(SeenMessage {
                role: role.to_owned(),
                parts,
            });
        }
        for tool in body["toolConfig"]["tools"].as_array().into_iter().flatten() {
            let name = tool["toolSpec"]["name"]
                .as_str()
                .ok_or("a tool without toolSpec.name")?;
            // The placeholder stands for "no tools": it is not an offered tool.
            if name != portcullis_core::translate::bedrock::PLACEHOLDER_TOOL {
                seen.tools.push(name.to_owned());
            }
        }
        let config = &body["inferenceConfig"];
        seen.max_tokens = config["maxTokens"].as_u64();
        seen.temperature = config["temperature"].as_f64();
        seen.stop = config["stopSequences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        Ok(seen)
    }
}

fn seen_part(block: &Value) -> Result<SeenPart, String> {
    if let Some(text) = block["text"].as_str() {
        return Ok(SeenPart::Text(text.to_owned()));
    }
    if let Some(image) = block.get("image") {
        let format = image["format"].as_str().ok_or("an image without format")?;
        let bytes = image["source"]["bytes"]
            .as_str()
            .ok_or("an image without source.bytes")?;
        return Ok(SeenPart::Image(format!(
            "data:image/{format};base64,{bytes}"
        )));
    }
    if let Some(tool) = block.get("toolUse") {
        return Ok(SeenPart::ToolCall {
            id: tool["toolUseId"]
                .as_str()
                .ok_or("toolUse without id")?
                .to_owned(),
            name: tool["name"]
                .as_str()
                .ok_or("toolUse without name")?
                .to_owned(),
            arguments: tool["input"].clone(),
        });
    }
    if let Some(result) = block.get("toolResult") {
        let mut content = String::new();
        for part in result["content"]
            .as_array()
            .ok_or("toolResult without content")?
        {
            match (part.get("text"), part.get("json")) {
                (Some(Value::String(t)), _) => content.push_str(t),
                (_, Some(json)) => content.push_str(&json.to_string()),
                _ => return Err("a toolResult part that is neither text nor json".into()),
            }
        }
        return Ok(SeenPart::ToolResult {
            id: result["toolUseId"]
                .as_str()
                .ok_or("toolResult without id")?
                .to_owned(),
            content,
        });
    }
    Err("a content block of an unknown kind".into())
}

/// An error as Bedrock answers it.
pub fn error_reply(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, json!({"message": message}))
        .with_header("x-amzn-errortype", &format!("{kind}:{ERROR_NAMESPACE}"))
        .with_header("x-amzn-requestid", REQUEST_ID)
}

fn validation(message: &str) -> Reply {
    error_reply(400, "ValidationException", message)
}

/// One event frame, as Bedrock writes it.
pub fn event_frame(kind: &str, payload: &Value) -> Vec<u8> {
    encode_message(
        &[
            (EVENT_TYPE, kind.into()),
            (CONTENT_TYPE, "application/json".into()),
            (MESSAGE_TYPE, "event".into()),
        ],
        payload.to_string().as_bytes(),
    )
}

/// One exception frame (`throttlingException`, ...), as Bedrock writes it mid-stream.
pub fn exception_frame(kind: &str, message: &str) -> Vec<u8> {
    encode_message(
        &[
            (EXCEPTION_TYPE, kind.into()),
            (CONTENT_TYPE, "application/json".into()),
            (MESSAGE_TYPE, "exception".into()),
        ],
        json!({ "message": message }).to_string().as_bytes(),
    )
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::EndTurn => "end_turn",
        Finish::MaxTokens => "max_tokens",
        Finish::StopSequence => "stop_sequence",
        Finish::ToolUse => "tool_use",
        Finish::ContentFilter => "content_filtered",
    }
}

/// Bedrock counts cache reads apart from `inputTokens`.
fn usage(canned: &Canned) -> Value {
    let u = canned.usage;
    let mut usage = json!({
        "inputTokens": u.input.saturating_sub(u.cached),
        "outputTokens": u.output,
        "totalTokens": u.input + u.output,
    });
    if u.cached > 0 {
        usage["cacheReadInputTokens"] = json!(u.cached);
    }
    usage
}

/// `text` in `n` pieces of about equal length (on character boundaries).
fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;

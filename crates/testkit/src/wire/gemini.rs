//! Google Gemini's wire format, on AI Studio (config type `gemini`) and on Vertex AI (type
//! `vertex`), for mocks. Answers are `GenerateContentResponse` bodies, streams are `alt=sse`
//! bodies (CRLF-framed `data:` events, each a `GenerateContentResponse`), errors are Google's
//! `{"error": {"code", "message", "status"}}`. The Vertex variant also plays the OAuth token
//! endpoint (`/token` on the mock, named as `token_uri` in the service account key it configures):
//! it verifies the JWT assertion against the test key's public half and issues access tokens,
//! which [`ProviderWire::seen`] then requires as the bearer token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Canned, CannedError, Finish, ProviderWire, Seen, SeenMessage, SeenPart};
use crate::upstream::{Recorded, Reply, SseEnd};

/// The API key the AI Studio variant configures and requires.
pub const API_KEY: &str = "AIzaSy-test-gemini-key-0001";
/// The Vertex AI project and location the Vertex variant configures.
pub const PROJECT: &str = "test-project";
pub const LOCATION: &str = "us-central1";
/// The service account of the Vertex variant's key file.
pub const CLIENT_EMAIL: &str = "portcullis-test@test-project.iam.gserviceaccount.com";
pub const PRIVATE_KEY_ID: &str = "test-key-id-0001";
/// The test-only RSA key pair (never a real credential).
pub const TEST_PRIVATE_KEY: &str = include_str!("../../fixtures/TEST-ONLY-rsa-private.pem");
pub const TEST_PUBLIC_KEY: &str = include_str!("../../fixtures/TEST-ONLY-rsa-public.pem");
/// The path of the mock's token endpoint.
pub const TOKEN_PATH: &str = "/token";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Gemini's wire format; [`GeminiWire::ai_studio`] or [`GeminiWire::vertex`].
#[derive(Debug)]
pub struct GeminiWire {
    vertex: bool,
    /// Access tokens issued so far (Vertex).
    issued: Arc<Mutex<Vec<String>>>,
    /// `expires_in` of the next tokens, in seconds.
    token_lifetime: AtomicU64,
}

impl GeminiWire {
    pub fn ai_studio() -> Self {
        Self::new(false)
    }

    pub fn vertex() -> Self {
        Self::new(true)
    }

    fn new(vertex: bool) -> Self {
        Self {
            vertex,
            issued: Arc::default(),
            token_lifetime: AtomicU64::new(3600),
        }
    }

    pub fn is_vertex(&self) -> bool {
        self.vertex
    }

    /// Sets the `expires_in` of the access tokens issued from now on.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.token_lifetime.store(secs, Ordering::SeqCst);
    }

    /// How many access tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> usize {
        self.issued.lock().map(|i| i.len()).unwrap_or_default()
    }

    /// A service account key file (JSON) whose `token_uri` is the mock's token endpoint.
    pub fn credentials_json(base_url: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": PRIVATE_KEY_ID,
            "private_key": TEST_PRIVATE_KEY,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("{base_url}{TOKEN_PATH}"),
        })
        .to_string()
    }

    /// The path prefix of model methods, up to `models`.
    fn models_path(&self) -> String {
        if self.vertex {
            format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models")
        } else {
            "/v1beta/models".to_owned()
        }
    }

    /// The OAuth token endpoint: checks the form and the JWT assertion (RS256 signature by the
    /// test key, `iss`, `aud` = this endpoint's URL, `scope`, `iat`/`exp`, `kid`), then issues a
    /// token. A bad assertion gets Google's `invalid_grant`.
    pub fn token_reply(&self, request: &Recorded) -> Reply {
        match self.check_assertion(request) {
            Ok(()) => {
                let Ok(mut issued) = self.issued.lock() else {
                    return Reply::error(500, "lock poisoned");
                };
                let token = format!("ya29.test-access-token-{}", issued.len() + 1);
                issued.push(token.clone());
                Reply::json(
                    200,
                    json!({"access_token": token, "token_type": "Bearer",
                           "expires_in": self.token_lifetime.load(Ordering::SeqCst)}),
                )
            }
            Err(why) => Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": why}),
            ),
        }
    }

    fn check_assertion(&self, request: &Recorded) -> Result<(), String> {
        if request.method != "POST" {
            return Err(format!("method {}", request.method));
        }
        if request.headers.get("content-type").map(String::as_str)
            != Some("application/x-www-form-urlencoded")
        {
            return Err("not a form".into());
        }
        let form = String::from_utf8_lossy(&request.raw_body).into_owned();
        let field = |name: &str| {
            form.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(percent_decode)
        };
        if field("grant_type").as_deref() != Some(JWT_BEARER) {
            return Err("grant_type is not jwt-bearer".into());
        }
        let assertion = field("assertion").ok_or("no assertion")?;
        let header = jsonwebtoken::decode_header(&assertion).map_err(|e| e.to_string())?;
        if header.kid.as_deref() != Some(PRIVATE_KEY_ID) {
            return Err("wrong kid".into());
        }
        let host = request.headers.get("host").ok_or("no host")?;
        let audience = format!("http://{host}{}", request.path);
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[CLIENT_EMAIL]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY.as_bytes())
            .map_err(|e| e.to_string())?;
        let claims = jsonwebtoken::decode::<Value>(&assertion, &key, &validation)
            .map_err(|e| e.to_string())?
            .claims;
        if claims["scope"] != SCOPE {
            return Err("wrong scope".into());
        }
        let iat = claims["iat"].as_u64().ok_or("no iat")?;
        let exp = claims["exp"].as_u64().ok_or("no exp")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if exp != iat + 3600 || iat.abs_diff(now) > 60 {
            return Err("iat/exp are not now and an hour later".into());
        }
        Ok(())
    }

    /// An embeddings answer with `vectors`, as `batchEmbedContents` (AI Studio) or `predict`
    /// (Vertex AI, with a token count of 3 per input) returns it.
    pub fn embeddings_reply(&self, vectors: &[Vec<f32>]) -> Reply {
        if self.vertex {
            let predictions: Vec<Value> = vectors
                .iter()
                .map(|v| {
                    json!({"embeddings": {"values": v,
                    "statistics": {"truncated": false, "token_count": 3}}})
                })
                .collect();
            Reply::json(
                200,
                json!({"predictions": predictions, "metadata": {"billableCharacterCount": 12}}),
            )
        } else {
            let embeddings: Vec<Value> = vectors.iter().map(|v| json!({"values": v})).collect();
            Reply::json(200, json!({"embeddings": embeddings}))
        }
    }

    /// Checks the path, method and credentials of an API call; returns the model and method.
    pub fn check_call(&self, request: &Recorded) -> Result<(String, String), String> {
        if request.method != "POST" {
            return Err(format!("method {} instead of POST", request.method));
        }
        let prefix = format!("{}/", self.models_path());
        let rest = request
            .path
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("path {} is not below {prefix}", request.path))?;
        let (model, method) = rest
            .split_once(':')
            .ok_or_else(|| format!("path {} names no method", request.path))?;
        let stream = method == "streamGenerateContent";
        if stream != (request.query == "alt=sse") {
            return Err(format!("query `{}` for method {method}", request.query));
        }
        if request.query.contains("key=") {
            return Err("the API key is in the URL".into());
        }
        if request.headers.get("content-type").map(String::as_str) != Some("application/json") {
            return Err("the body is not declared as JSON".into());
        }
        if self.vertex {
            if request.headers.contains_key("x-goog-api-key") {
                return Err("Vertex AI calls carry an API key".into());
            }
            let auth = request
                .headers
                .get("authorization")
                .ok_or("no authorization header")?;
            let token = auth.strip_prefix("Bearer ").ok_or("not a bearer token")?;
            let issued = self.issued.lock().map_err(|_| "lock poisoned")?;
            if !issued.iter().any(|t| t == token) {
                return Err("a bearer token the token endpoint did not issue".into());
            }
        } else {
            if request.headers.get("x-goog-api-key").map(String::as_str) != Some(API_KEY) {
                return Err("x-goog-api-key is missing or wrong".into());
            }
            if request.headers.contains_key("authorization") {
                return Err("AI Studio calls carry an authorization header".into());
            }
        }
        Ok((model.to_owned(), method.to_owned()))
    }
}

/// Decodes `%XX` and `+` of a form value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::EndTurn | Finish::StopSequence | Finish::ToolUse => "STOP",
        Finish::MaxTokens => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
    }
}

fn usage_metadata(canned: &Canned) -> Value {
    let u = canned.usage;
    let candidates = u.output.saturating_sub(u.reasoning);
    let mut meta = json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": candidates,
        "totalTokenCount": u.input + u.output,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input}],
    });
    if u.cached > 0 {
        meta["cachedContentTokenCount"] = u.cached.into();
    }
    if u.reasoning > 0 {
        meta["thoughtsTokenCount"] = u.reasoning.into();
    }
    meta
}

fn call_parts(canned: &Canned) -> Vec<Value> {
    canned
        .tool_calls
        .iter()
        .map(|c| json!({"functionCall": {"id": c.id, "name": c.name, "args": c.arguments}}))
        .collect()
}

fn response(canned: &Canned, parts: Vec<Value>, finish: Option<Finish>, usage: Value) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = finish_reason(finish).into();
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": canned.model,
        "responseId": "mock-response-0001",
    })
}

/// Splits `text` into up to three pieces at character boundaries.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n < 3 {
        return vec![text.to_owned()];
    }
    let cuts = [0, n / 3, 2 * n / 3, n];
    cuts.windows(2)
        .map(|w| chars[w[0]..w[1]].iter().collect())
        .collect()
}

impl ProviderWire for GeminiWire {
    fn name(&self) -> &'static str {
        if self.vertex { "vertex" } else { "gemini" }
    }

    fn provider_yaml(&self, base_url: &str) -> String {
        if self.vertex {
            let credentials = Self::credentials_json(base_url);
            format!(
                "{{ type: vertex, base_url: \"{base_url}\", project: {PROJECT}, \
                 location: {LOCATION}, credentials: '{credentials}' }}"
            )
        } else {
            format!("{{ type: gemini, base_url: \"{base_url}\", api_key: \"{API_KEY}\" }}")
        }
    }

    fn auxiliary_reply(&self, request: &Recorded) -> Option<Reply> {
        (self.vertex && request.path == TOKEN_PATH).then(|| self.token_reply(request))
    }

    fn reply(&self, canned: &Canned, stream: bool) -> Reply {
        let mut parts: Vec<Value> = canned
            .text
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| json!({"text": t}))
            .collect();
        if !stream {
            parts.extend(call_parts(canned));
            return Reply::json(
                200,
                response(canned, parts, Some(canned.finish), usage_metadata(canned)),
            );
        }
        // Text in pieces, usage growing on the way (prompt only), calls whole in the last event
        // with the finish reason and the complete usage.
        let partial_usage = json!({
            "promptTokenCount": canned.usage.input,
            "totalTokenCount": canned.usage.input,
        });
        let mut events: Vec<Value> = canned
            .text
            .iter()
            .flat_map(|t| pieces(t))
            .filter(|p| !p.is_empty())
            .map(|p| {
                response(
                    canned,
                    vec![json!({"text": p})],
                    None,
                    partial_usage.clone(),
                )
            })
            .collect();
        events.push(response(
            canned,
            call_parts(canned),
            Some(canned.finish),
            usage_metadata(canned),
        ));
        Reply::Stream {
            status: 200,
            content_type: "text/event-stream",
            chunks: events
                .iter()
                .map(|e| Bytes::from(format!("data: {e}\r\n\r\n")))
                .collect(),
            delay: Duration::from_millis(2),
            end: SseEnd::Close,
        }
    }

    fn error(&self, error: CannedError) -> Reply {
        let google = |code: u16, status: &str, message: &str| {
            Reply::json(
                code,
                json!({"error": {"code": code, "message": message, "status": status}}),
            )
        };
        match error {
            CannedError::RateLimited => google(
                429,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
            ),
            CannedError::Overloaded => google(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            CannedError::ContextTooLong => google(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            CannedError::ContentFiltered => Reply::json(
                200,
                json!({
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH"}]},
                    "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
                    "modelVersion": "gemini-2.5-flash",
                }),
            ),
            CannedError::Auth if self.vertex => google(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential.",
            ),
            CannedError::Auth => Reply::json(
                400,
                json!({"error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [{
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }],
                }}),
            ),
            CannedError::BadRequest => google(
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.generation_config.temperature: must be between 0 and 2\n",
            ),
            CannedError::Server => google(500, "INTERNAL", "Internal error encountered."),
        }
    }

    fn seen(&self, request: &Recorded) -> Result<Seen, String> {
        let (model, method) = self.check_call(request)?;
        let stream = match method.as_str() {
            "generateContent" => false,
            "streamGenerateContent" => true,
            other => return Err(format!("method {other} is not generateContent")),
        };
        let body = &request.body;
        if body.get("model").is_some() {
            return Err("generateContent bodies name no model".into());
        }
        let texts = |parts: &Value| -> Vec<String> {
            parts
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["text"].as_str().map(str::to_owned))
                .collect()
        };
        let system = texts(&body["systemInstruction"]["parts"]);
        let mut messages = Vec::new();
        for content in body["contents"].as_array().ok_or("no contents")? {
            let role = match content["role"].as_str() {
                Some("user") => "user",
                Some("model") => "assistant",
                other => return Err(format!("content role {other:?}")),
            };
            let mut parts = Vec::new();
            for part in content["parts"].as_array().ok_or("content without parts")? {
                parts.push(seen_part(part, self.vertex)?);
            }
            messages.push(SeenMessage {
                role: role.to_owned(),
                parts,
            });
        }
        let tools = body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| t["functionDeclarations"].as_array().into_iter().flatten())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        let config = &body["generationConfig"];
        Ok(Seen {
            model: percent_decode(&model),
            stream,
            system,
            messages,
            tools,
            json_mode: config["responseMimeType"] == "application/json",
            max_tokens: config["maxOutputTokens"].as_u64(),
            temperature: config["temperature"].as_f64(),
            stop: config["stopSequences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        })
    }
}

/// One part read back. Tool results carry `functionResponse.id` (AI Studio; Vertex AI sends
/// none, so their id is empty) and the text the client sent (`response.content`, or the
/// response object as JSON text).
fn seen_part(part: &Value, vertex: bool) -> Result<SeenPart, String> {
    if let Some(text) = part["text"].as_str() {
        return Ok(SeenPart::Text(text.to_owned()));
    }
    if let Some(inline) = part.get("inlineData") {
        let mime = inline["mimeType"]
            .as_str()
            .ok_or("inlineData without mimeType")?;
        let data = inline["data"].as_str().ok_or("inlineData without data")?;
        return Ok(SeenPart::Image(format!("data:{mime};base64,{data}")));
    }
    if let Some(file) = part.get("fileData") {
        file["mimeType"]
            .as_str()
            .ok_or("fileData without mimeType")?;
        let uri = file["fileUri"].as_str().ok_or("fileData without fileUri")?;
        return Ok(SeenPart::Image(uri.to_owned()));
    }
    let id = |v: &Value| -> Result<String, String> {
        match (v.get("id"), vertex) {
            (Some(_), true) => Err("Vertex AI function parts carry an id".into()),
            (Some(id), false) => Ok(id.as_str().ok_or("id is not a string")?.to_owned()),
            (None, true) => Ok(String::new()),
            (None, false) => Err("AI Studio function parts carry the call id".into()),
        }
    };
    if let Some(call) = part.get("functionCall") {
        let arguments = call.get("args").cloned().unwrap_or_else(|| json!({}));
        if !arguments.is_object() {
            return Err("functionCall args is not an object".into());
        }
        return Ok(SeenPart::ToolCall {
            id: id(call)?,
            name: call["name"]
                .as_str()
                .ok_or("functionCall without name")?
                .to_owned(),
            arguments,
        });
    }
    if let Some(result) = part.get("functionResponse") {
        result["name"]
            .as_str()
            .ok_or("functionResponse without name")?;
        let response = result
            .get("response")
            .ok_or("functionResponse without response")?;
        if !response.is_object() {
            return Err("functionResponse response is not an object".into());
        }
        let content = match response.as_object().map(|o| (o.len(), o.get("content"))) {
            Some((1, Some(Value::String(text)))) => text.clone(),
            _ => response.to_string(),
        };
        return Ok(SeenPart::ToolResult {
            id: id(result)?,
            content,
        });
    }
    Err(format!(
        "a part of unknown shape: {:?}",
        part.as_object().map(|o| o.keys().collect::<Vec<_>>())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CannedCall, CannedUsage};

    fn canned() -> Canned {
        Canned {
            model: "gemini-2.5-flash".into(),
            text: Some("Hello world".into()),
            tool_calls: vec![CannedCall {
                id: "call_a".into(),
                name: "f".into(),
                arguments: json!({"x": 1}),
            }],
            finish: Finish::ToolUse,
            usage: CannedUsage {
                input: 10,
                output: 7,
                cached: 4,
                reasoning: 5,
            },
        }
    }

    #[test]
    fn whole_and_streamed_replies() {
        let wire = GeminiWire::ai_studio();
        let Reply::Json { status: 200, body } = wire.reply(&canned(), false) else {
            panic!("not JSON")
        };
        assert_eq!(body["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            body["candidates"][0]["content"]["parts"][1]["functionCall"]["id"],
            "call_a"
        );
        assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 2);
        assert_eq!(body["usageMetadata"]["thoughtsTokenCount"], 5);
        assert_eq!(body["usageMetadata"]["cachedContentTokenCount"], 4);
        let Reply::Stream { chunks, .. } = wire.reply(&canned(), true) else {
            panic!("not a stream")
        };
        assert_eq!(chunks.len(), 4, "three text pieces and the end");
        assert!(
            chunks
                .iter()
                .all(|c| c.starts_with(b"data: {") && c.ends_with(b"\r\n\r\n"))
        );
    }

    #[test]
    fn form_values_decode() {
        assert_eq!(
            percent_decode("urn%3Aietf%3Aparams+x%2"),
            "urn:ietf:params x%2"
        );
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}

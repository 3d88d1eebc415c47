//! Unit tests of the Gemini translation: requests, responses, streams, errors, embeddings.

use http::StatusCode;
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::{Value, json};

use super::embed::{embed_request, embed_response};
use super::{Flavor, ResponseMeta, StreamTranslator, chat_request, chat_response, error_from_body};
use crate::provider::ProviderError;
use crate::translate::TranslateError;

fn translate_as(body: Value, flavor: Flavor) -> Result<Value, TranslateError> {
    let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    chat_request(&req, flavor).map(|body| serde_json::from_slice(&body).unwrap())
}

fn translate(body: Value) -> Result<Value, TranslateError> {
    translate_as(body, Flavor::AiStudio)
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn chat(messages: Value) -> Value {
    json!({"model": "m", "messages": messages})
}

#[test]
fn system_developer_and_turns() {
    let out = translate(json!({"model": "m", "max_tokens": 10, "max_completion_tokens": 20,
        "messages": [
            {"role": "system", "content": "be brief"},
            user("a"),
            {"role": "developer", "content": [{"type": "text", "text": "be kind"}, {"type": "text", "text": ""}]},
            user("b"),
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "d"}, {"type": "refusal", "refusal": "no"}]},
            user(""),
            user("e"),
        ]}))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "be kind"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                {"role": "model", "parts": [{"text": "c"}, {"text": "d"}, {"text": "no"}]},
                {"role": "user", "parts": [{"text": "e"}]},
            ],
            "generationConfig": {"maxOutputTokens": 20},
        })
    );
}

#[test]
fn a_turn_of_only_empty_text_is_dropped() {
    let out = translate(chat(
        json!([user(""), {"role": "assistant", "content": ""}, user("x")]),
    ))
    .unwrap();
    assert_eq!(
        out["contents"],
        json!([{"role": "user", "parts": [{"text": "x"}]}])
    );
    assert!(out.get("systemInstruction").is_none());
    assert!(out.get("generationConfig").is_none());
}

#[test]
fn images_audio_and_files() {
    let out = translate(chat(json!([{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.WEBP?x=1.png#f", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "http://example.com/photo"}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/doc.pdf"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}},
    ]}])))
    .unwrap();
    assert_eq!(
        out["contents"][0]["parts"],
        json!([
            {"text": "what?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/a/cat.WEBP?x=1.png#f"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "http://example.com/photo"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        ])
    );
}

#[test]
fn unusable_parts_are_refused() {
    let part = |p: Value| translate(chat(json!([{"role": "user", "content": [p]}])));
    assert_eq!(
        part(json!({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}})),
        Err(TranslateError::InvalidImageUrl)
    );
    assert_eq!(
        part(json!({"type": "image_url", "image_url": {"url": "data:image/png,abc"}})),
        Err(TranslateError::InvalidImageUrl)
    );
    assert_eq!(
        part(json!({"type": "file", "file": {"file_id": "file-1"}})),
        Err(TranslateError::UnsupportedContentPart {
            kind: "file".into()
        })
    );
    assert_eq!(
        part(json!({"type": "input_audio", "input_audio": {"data": "x", "format": "flac"}})),
        Err(TranslateError::UnsupportedValue {
            field: "input_audio.format"
        })
    );
    assert_eq!(
        part(json!({"type": "video", "video": {}})),
        Err(TranslateError::UnsupportedContentPart {
            kind: "video".into()
        })
    );
    assert_eq!(
        translate(chat(
            json!([{"role": "function", "name": "f", "content": "x"}])
        )),
        Err(TranslateError::UnsupportedRole { role: "function" })
    );
    assert_eq!(
        translate(json!({"model": "m", "messages": "nope"})),
        Err(TranslateError::InvalidField { field: "messages" })
    );
}

fn tool_history() -> Value {
    chat(json!([
        user("weather?"),
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        ]},
        {"role": "tool", "tool_call_id": "call_0", "content": "{\"temp\": 3, \"sky\": \"rain\"}"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12:"}, {"type": "text", "text": "00"}]},
        user("thanks"),
    ]))
}

#[test]
fn parallel_tool_calls_and_results_round_trip_with_ids_on_ai_studio() {
    let out = translate(tool_history()).unwrap();
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_0"}},
                {"functionCall": {"name": "get_time", "args": {}, "id": "call_1"}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 3, "sky": "rain"}, "id": "call_0"}},
                {"functionResponse": {"name": "get_time", "response": {"content": "12:00"}, "id": "call_1"}},
                {"text": "thanks"},
            ]},
        ])
    );
}

#[test]
fn vertex_calls_carry_no_ids() {
    let out = translate_as(tool_history(), Flavor::Vertex).unwrap();
    let model = &out["contents"][1]["parts"];
    assert_eq!(
        model[0],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}})
    );
    assert_eq!(
        out["contents"][2]["parts"][1],
        json!({"functionResponse": {"name": "get_time", "response": {"content": "12:00"}}})
    );
}

#[test]
fn tool_results_find_the_latest_call_with_their_id() {
    // Deterministic ids repeat across turns: each result belongs to the latest call.
    let out = translate(chat(json!([
        user("a"),
        {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "first", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "[1, 2]"},
        {"role": "assistant", "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "second", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": ""},
    ])))
    .unwrap();
    assert_eq!(
        out["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "first", "response": {"content": "[1, 2]"}, "id": "call_0"})
    );
    assert_eq!(
        out["contents"][4]["parts"][0]["functionResponse"],
        json!({"name": "second", "response": {"content": ""}, "id": "call_0"})
    );
}

#[test]
fn bad_tool_history_is_refused() {
    assert_eq!(
        translate(chat(json!([
            user("a"),
            {"role": "tool", "tool_call_id": "call_9", "content": "x"},
        ]))),
        Err(TranslateError::UnknownToolCall {
            id: "call_9".into()
        })
    );
    assert_eq!(
        translate(chat(json!([
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]},
        ]))),
        Err(TranslateError::InvalidToolArguments { id: "c1".into() })
    );
}

#[test]
fn thought_signatures_go_back_on_their_calls() {
    let out = translate(chat(json!([
        user("a"),
        {"role": "assistant", "content": "calling", "reasoning_content": "hmm", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"},
             "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ])))
    .unwrap();
    assert_eq!(
        out["contents"][1]["parts"],
        json!([
            {"text": "calling"},
            {"functionCall": {"name": "f", "args": {}, "id": "c1"}, "thoughtSignature": "c2lnbmF0dXJl"},
        ])
    );
}

#[test]
fn tools_and_tool_choice() {
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}},
        "required": ["city"], "additionalProperties": false});
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": weather, "strict": true}},
        {"type": "function", "function": {"name": "now"}},
    ]);
    let with = |choice: Value| {
        let mut body = chat(json!([user("x")]));
        body["tools"] = tools.clone();
        body["parallel_tool_calls"] = json!(false);
        if !choice.is_null() {
            body["tool_choice"] = choice;
        }
        translate(body)
    };
    let out = with(Value::Null).unwrap();
    assert_eq!(
        out["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather", "parametersJsonSchema": weather},
            {"name": "now"},
        ]}])
    );
    assert!(out.get("toolConfig").is_none());
    for (choice, config) in [
        (json!("none"), json!({"mode": "NONE"})),
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "now"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["now"]}),
        ),
    ] {
        let out = with(choice).unwrap();
        assert_eq!(out["toolConfig"], json!({"functionCallingConfig": config}));
    }
    assert_eq!(
        with(json!({"type": "allowed_tools", "allowed_tools": {}})),
        Err(TranslateError::UnsupportedValue {
            field: "tool_choice"
        })
    );
}

#[test]
fn generation_config_fields() {
    let mut body = chat(json!([user("x")]));
    body["temperature"] = json!(0.5);
    body["top_p"] = json!(0.9);
    body["max_tokens"] = json!(100);
    body["stop"] = json!("END");
    body["seed"] = json!(42);
    body["n"] = json!(1);
    body["presence_penalty"] = json!(0);
    body["frequency_penalty"] = json!(0.5);
    body["user"] = json!("u-1");
    body["logprobs"] = json!(true);
    let out = translate(body.clone()).unwrap();
    assert_eq!(
        out["generationConfig"],
        json!({"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100, "stopSequences": ["END"],
               "seed": 42, "frequencyPenalty": 0.5, "candidateCount": 1})
    );
    body["stop"] = json!(["a", "b"]);
    body["n"] = json!(null);
    let out = translate(body.clone()).unwrap();
    assert_eq!(out["generationConfig"]["stopSequences"], json!(["a", "b"]));
    assert!(out["generationConfig"].get("candidateCount").is_none());
    body["n"] = json!(2);
    assert_eq!(
        translate(body.clone()),
        Err(TranslateError::UnsupportedValue { field: "n" })
    );
    body["n"] = json!(1);
    body["temperature"] = json!("hot");
    assert_eq!(
        translate(body),
        Err(TranslateError::InvalidField {
            field: "temperature"
        })
    );
}

#[test]
fn json_modes() {
    let with = |format: Value| {
        let mut body = chat(json!([user("x")]));
        body["response_format"] = format;
        translate(body).map(|v| v["generationConfig"].clone())
    };
    assert_eq!(with(json!({"type": "text"})), Ok(Value::Null));
    assert_eq!(
        with(json!({"type": "json_object"})),
        Ok(json!({"responseMimeType": "application/json"}))
    );
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        with(
            json!({"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": true}})
        ),
        Ok(json!({"responseMimeType": "application/json", "responseJsonSchema": schema}))
    );
    assert_eq!(
        with(json!({"type": "json_schema", "json_schema": {"name": "s"}})),
        Ok(json!({"responseMimeType": "application/json"}))
    );
    assert_eq!(
        with(json!({"type": "grammar"})),
        Err(TranslateError::UnsupportedValue {
            field: "response_format"
        })
    );
}

#[test]
fn reasoning_effort_budgets() {
    let with = |effort: &str| {
        let mut body = chat(json!([user("x")]));
        body["reasoning_effort"] = json!(effort);
        translate(body).map(|v| v["generationConfig"]["thinkingConfig"].clone())
    };
    assert_eq!(with("none"), Ok(json!({"thinkingBudget": 0})));
    for (effort, budget) in [
        ("minimal", 512),
        ("low", 1024),
        ("medium", 8192),
        ("high", 24576),
    ] {
        assert_eq!(
            with(effort),
            Ok(json!({"thinkingBudget": budget, "includeThoughts": true}))
        );
    }
    assert_eq!(
        with("extreme"),
        Err(TranslateError::UnsupportedValue {
            field: "reasoning_effort"
        })
    );
}

const META: ResponseMeta<'static> = ResponseMeta {
    fallback_id: "chatcmpl-fallback",
    model: "gemini-up",
    created: 1_700_000_000,
};

fn respond(body: Value) -> Result<(Value, portcullis_types::Usage), ProviderError> {
    chat_response(body.to_string().as_bytes(), META)
}

#[test]
fn text_response_with_usage_details() {
    let (out, usage) = respond(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}, {"text": " world"}]},
                        "finishReason": "STOP", "index": 0, "safetyRatings": []}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2, "thoughtsTokenCount": 5,
                          "cachedContentTokenCount": 4, "totalTokenCount": 17},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc123",
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-abc123",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gemini-2.5-flash",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                      "prompt_tokens_details": {"cached_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 5}},
        })
    );
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens
        ),
        (10, 7, 17, 4, 5)
    );
}

#[test]
fn thoughts_and_parallel_calls() {
    let (out, _) = respond(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me think.", "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "sig1"},
            {"functionCall": {"name": "get_time", "id": "fc-7"}},
        ]}, "finishReason": "STOP"}],
    }))
    .unwrap();
    assert_eq!(out["id"], "chatcmpl-fallback");
    assert_eq!(out["model"], "gemini-up");
    let choice = &out["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(choice["message"]["reasoning_content"], "Let me think.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
             "extra_content": {"google": {"thought_signature": "sig1"}}},
            {"id": "fc-7", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ])
    );
    assert_eq!(out["usage"]["total_tokens"], 0);
}

#[test]
fn finish_reasons() {
    for (reason, calls, want) in [
        ("STOP", false, "stop"),
        ("STOP", true, "tool_calls"),
        ("MAX_TOKENS", false, "length"),
        ("MAX_TOKENS", true, "length"),
        ("SAFETY", false, "content_filter"),
        ("RECITATION", false, "content_filter"),
        ("BLOCKLIST", false, "content_filter"),
        ("PROHIBITED_CONTENT", false, "content_filter"),
        ("SPII", false, "content_filter"),
        ("IMAGE_SAFETY", false, "content_filter"),
        ("OTHER", false, "stop"),
        ("MALFORMED_FUNCTION_CALL", false, "stop"),
        ("FINISH_REASON_UNSPECIFIED", false, "stop"),
        ("SOMETHING_NEW", true, "tool_calls"),
    ] {
        let mut parts = vec![json!({"text": "x"})];
        if calls {
            parts.push(json!({"functionCall": {"name": "f", "args": {}}}));
        }
        let (out, _) =
            respond(json!({"candidates": [{"content": {"parts": parts}, "finishReason": reason}]}))
                .unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], want, "{reason}");
    }
    // A filtered answer may come with no content at all.
    let (out, _) = respond(json!({"candidates": [{"finishReason": "SAFETY"}]})).unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
}

#[test]
fn blocked_prompts_and_malformed_bodies_are_errors() {
    let e = respond(
        json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                           "usageMetadata": {"promptTokenCount": 8}}),
    )
    .unwrap_err();
    assert_eq!(
        e,
        ProviderError::ContentFiltered {
            message: Some("the provider blocked the prompt (SAFETY)".into())
        }
    );
    assert_eq!(e.client_status(), StatusCode::BAD_REQUEST);
    let e = respond(json!({"promptFeedback": {"blockReason": "<script>"}})).unwrap_err();
    assert!(e.to_string().contains("(OTHER)"), "{e}");
    assert!(matches!(
        respond(json!({"usageMetadata": {}})),
        Err(ProviderError::InvalidResponse(_))
    ));
    assert!(matches!(
        chat_response(b"not json", META),
        Err(ProviderError::InvalidResponse(_))
    ));
    assert!(matches!(
        respond(json!({"candidates": "x"})),
        Err(ProviderError::InvalidResponse(_))
    ));
    let (out, _) = respond(json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "f", "args": null}}]}, "finishReason": "STOP"}]}))
    .unwrap();
    assert_eq!(
        out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    assert!(matches!(
        respond(json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "f", "args": [1]}}]}}]})),
        Err(ProviderError::InvalidResponse(_))
    ));
}

fn stream(events: &[Value]) -> Result<Vec<Value>, ProviderError> {
    let mut t = StreamTranslator::new("chatcmpl-fallback", "gemini-up", 7);
    let mut out = Vec::new();
    for e in events {
        out.extend(t.push(e.to_string().as_bytes())?);
    }
    out.extend(t.finish()?);
    Ok(out
        .iter()
        .map(|c| serde_json::from_slice(c).unwrap())
        .collect())
}

fn deltas(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .map(|c| {
            if c["choices"] == json!([]) {
                json!({"usage": c["usage"]})
            } else {
                let choice = &c["choices"][0];
                json!({"delta": choice["delta"], "finish": choice["finish_reason"]})
            }
        })
        .collect()
}

#[test]
fn text_stream_with_usage_at_the_end() {
    let chunks = stream(&[
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
               "usageMetadata": {"promptTokenCount": 3}, "modelVersion": "gemini-2.5-flash", "responseId": "r1"}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo", "thoughtSignature": "s"}]}}]}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}),
    ])
    .unwrap();
    assert!(chunks.iter().all(|c| c["id"] == "chatcmpl-r1"
        && c["model"] == "gemini-2.5-flash"
        && c["created"] == 7
        && c["object"] == "chat.completion.chunk"));
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"delta": {"role": "assistant", "content": ""}, "finish": null}),
            json!({"delta": {"content": "Hel"}, "finish": null}),
            json!({"delta": {"content": "lo"}, "finish": null}),
            json!({"delta": {}, "finish": "stop"}),
            json!({"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
        ]
    );
}

#[test]
fn streamed_thoughts_and_parallel_calls() {
    let chunks = stream(&[
        json!({"candidates": [{"content": {"parts": [{"text": "Thinking", "thought": true}]}}]}),
        json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "sig"},
            {"functionCall": {"name": "b", "args": {}, "id": "own-id"}},
        ]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4, "thoughtsTokenCount": 6}}),
    ])
    .unwrap();
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"delta": {"role": "assistant", "content": ""}, "finish": null}),
            json!({"delta": {"reasoning_content": "Thinking"}, "finish": null}),
            json!({"delta": {"tool_calls": [{"index": 0, "id": "call_0", "type": "function",
                "function": {"name": "a", "arguments": ""},
                "extra_content": {"google": {"thought_signature": "sig"}}}]}, "finish": null}),
            json!({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":1}"}}]}, "finish": null}),
            json!({"delta": {"tool_calls": [{"index": 1, "id": "own-id", "type": "function",
                "function": {"name": "b", "arguments": ""}}]}, "finish": null}),
            json!({"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, "finish": null}),
            json!({"delta": {}, "finish": "tool_calls"}),
            json!({"usage": {"prompt_tokens": 9, "completion_tokens": 10, "total_tokens": 19,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 6}}}),
        ]
    );
}

#[test]
fn stream_failures() {
    let error = json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
    assert!(matches!(
        stream(&[error]),
        Err(ProviderError::Overloaded { message: Some(m), .. }) if m == "The model is overloaded."
    ));
    let mut t = StreamTranslator::new("x", "m", 0);
    assert!(matches!(
        t.push(b"{not json"),
        Err(ProviderError::InvalidResponse(_))
    ));
    assert!(matches!(
        t.push(b"[1,2]"),
        Err(ProviderError::InvalidResponse(_))
    ));
    assert!(t.push(b"  \n").unwrap().is_empty());
    assert!(matches!(
        stream(&[json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})]),
        Err(ProviderError::ContentFiltered { .. })
    ));
    let cut = stream(&[json!({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})]);
    assert!(
        matches!(cut, Err(ProviderError::StreamBroken(_))),
        "{cut:?}"
    );
    assert!(matches!(stream(&[]), Err(ProviderError::StreamBroken(_))));
}

#[test]
fn a_repeated_finish_reason_yields_one_finish_chunk() {
    let chunks = stream(&[
        json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}),
        json!({"candidates": [{"finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 1}}),
    ])
    .unwrap();
    assert_eq!(finish_count(&chunks), 1);
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 1);
}

fn finish_count(chunks: &[Value]) -> usize {
    chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .count()
}

#[test]
fn a_stream_without_usage_still_ends_with_a_usage_chunk() {
    let chunks = stream(&[json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "MAX_TOKENS"}]})])
        .unwrap();
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[3]["usage"]["total_tokens"], 0);
    assert_eq!(chunks[3]["choices"], json!([]));
}

#[test]
fn google_errors_are_classified() {
    let c = |status: u16, body: &str| {
        error_from_body(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    };
    assert!(matches!(
        c(429, r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#),
        ProviderError::RateLimited { message: Some(m), .. } if m.starts_with("Resource has been exhausted")
    ));
    assert!(matches!(
        c(
            503,
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#
        ),
        ProviderError::Overloaded { .. }
    ));
    assert!(matches!(
        c(
            400,
            r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#
        ),
        ProviderError::ContextLength { .. }
    ));
    assert!(matches!(
        c(400, r#"[{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}]"#),
        ProviderError::BadRequest { status: 400, message: Some(m) } if m == "Invalid JSON payload received."
    ));
    assert!(matches!(
        c(
            403,
            r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}"#
        ),
        ProviderError::Unauthorized { status: 403 }
    ));
    assert!(matches!(
        c(
            404,
            r#"{"error":{"code":404,"message":"models/nope is not found","status":"NOT_FOUND"}}"#
        ),
        ProviderError::Server { status: 404, .. }
    ));
    assert!(matches!(
        c(500, "<html>oops</html>"),
        ProviderError::Server {
            status: 500,
            message: None
        }
    ));
    // In a stream (HTTP 200) the error's own code decides.
    assert!(matches!(
        c(
            200,
            r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#
        ),
        ProviderError::RateLimited { .. }
    ));
    assert!(matches!(
        c(200, r#"{"error":{"message":"boom"}}"#),
        ProviderError::Server { status: 502, .. }
    ));
    let bad_key = c(
        400,
        r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
    );
    assert_eq!(bad_key, ProviderError::Unauthorized { status: 400 });
    assert_eq!(bad_key.client_status(), StatusCode::BAD_GATEWAY);
    assert!(bad_key.is_retryable());
    assert_eq!(
        c(
            401,
            r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#
        ),
        ProviderError::Unauthorized { status: 401 }
    );
    let long = "x".repeat(2000);
    let e = c(
        400,
        &json!({"error": {"code": 400, "message": long, "status": "INVALID_ARGUMENT"}}).to_string(),
    );
    assert!(e.to_string().len() < 600, "messages are shortened");
}

fn embedding_request(body: Value) -> EmbeddingRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn ai_studio_embeddings() {
    let req = embedding_request(json!({"model": "e", "input": ["a", "b"], "dimensions": 3}));
    let plan = embed_request(&req, "gemini-embedding-001", Flavor::AiStudio).unwrap();
    assert_eq!(
        plan.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3},
        ]})
    );
    assert_eq!((plan.inputs, plan.base64), (2, false));
    let answer = json!({"embeddings": [{"values": [0.1, -0.2, 0.3]}, {"values": [1.0, 0.0, 0.5]}]});
    let (out, usage) = embed_response(
        answer.to_string().as_bytes(),
        &plan,
        "gemini-embedding-001",
        Flavor::AiStudio,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"object": "list", "model": "gemini-embedding-001",
               "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]},
                        {"object": "embedding", "index": 1, "embedding": [1.0, 0.0, 0.5]}],
               "usage": {"prompt_tokens": 0, "total_tokens": 0}})
    );
    assert_eq!(usage.prompt_tokens, 0);
    let short = json!({"embeddings": [{"values": [0.1]}]});
    assert!(matches!(
        embed_response(short.to_string().as_bytes(), &plan, "m", Flavor::AiStudio),
        Err(ProviderError::InvalidResponse(_))
    ));
}

#[test]
fn vertex_embeddings_with_token_counts_and_base64() {
    let req =
        embedding_request(json!({"model": "e", "input": "hello", "encoding_format": "base64"}));
    let plan = embed_request(&req, "text-embedding-005", Flavor::Vertex).unwrap();
    assert_eq!(plan.body, json!({"instances": [{"content": "hello"}]}));
    assert!(plan.base64);
    let answer = json!({"predictions": [{"embeddings": {"values": [1.0, -2.0],
        "statistics": {"token_count": 6.0, "truncated": false}}}],
        "metadata": {"billableCharacterCount": 5}});
    let (out, usage) = embed_response(
        answer.to_string().as_bytes(),
        &plan,
        "text-embedding-005",
        Flavor::Vertex,
    )
    .unwrap();
    // 1.0 and -2.0 as little-endian f32: 00 00 80 3f, 00 00 00 c0.
    assert_eq!(out["data"][0]["embedding"], "AACAPwAAAMA=");
    assert_eq!(out["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    assert_eq!(usage.prompt_tokens, 6);
    let req = embedding_request(json!({"model": "e", "input": ["a"], "dimensions": 256}));
    let plan = embed_request(&req, "m", Flavor::Vertex).unwrap();
    assert_eq!(
        plan.body["parameters"],
        json!({"outputDimensionality": 256})
    );
}

#[test]
fn unusable_embedding_inputs_are_refused() {
    let try_input = |input: Value| {
        embed_request(
            &embedding_request(json!({"model": "e", "input": input})),
            "m",
            Flavor::AiStudio,
        )
        .map(|p| p.inputs)
    };
    assert_eq!(
        try_input(json!([1, 2, 3])),
        Err(TranslateError::UnsupportedValue { field: "input" })
    );
    assert_eq!(
        try_input(json!([[1, 2]])),
        Err(TranslateError::UnsupportedValue { field: "input" })
    );
    assert_eq!(
        try_input(json!([])),
        Err(TranslateError::InvalidField { field: "input" })
    );
    assert_eq!(
        try_input(json!({"a": 1})),
        Err(TranslateError::InvalidField { field: "input" })
    );
    let req = embedding_request(json!({"model": "e", "input": "a", "encoding_format": "int8"}));
    assert!(matches!(
        embed_request(&req, "m", Flavor::AiStudio),
        Err(TranslateError::UnsupportedValue {
            field: "encoding_format"
        })
    ));
}

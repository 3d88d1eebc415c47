//! Unit tests of the Bedrock translation: whole bodies in and out, edge cases and failures.

use http::StatusCode;
use portcullis_types::openai::{ChatCompletionRequest, EmbeddingRequest};
use serde_json::{Value, json};

use super::embeddings::{self, Family};
use super::*;
use crate::provider::ProviderError;

const CLAUDE: &str = "anthropic.claude-3-7-sonnet-20250219-v1:0";
const NOVA: &str = "amazon.nova-pro-v1:0";

fn translate_for(model: &str, body: Value) -> Result<Value, TranslateError> {
    let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
    let out = converse_request(&req, model)?;
    Ok(serde_json::to_value(&out).unwrap())
}

fn translate(body: Value) -> Result<Value, TranslateError> {
    translate_for(NOVA, body)
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn chat(messages: Value) -> Value {
    json!({"model": "m", "messages": messages})
}

#[test]
fn plain_text_and_inference_config() {
    let out = translate(
        json!({"model": "m", "messages": [user("hi")], "max_tokens": 10,
        "max_completion_tokens": 20, "temperature": 0.5, "top_p": 0.9, "stop": "END",
        "seed": 7, "n": 1, "user": "u1"}),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 20, "temperature": 0.5, "topP": 0.9,
                                "stopSequences": ["END"]},
        })
    );
    // Nothing to configure: no inferenceConfig at all.
    let out = translate(chat(json!([user("hi")]))).unwrap();
    assert_eq!(
        out,
        json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    );
}

#[test]
fn system_messages_anywhere_become_system_blocks_in_order() {
    let out = translate(chat(json!([
        {"role": "system", "content": "be brief"},
        user("hi"),
        {"role": "developer", "content": [{"type": "text", "text": "be kind"},
                                          {"type": "text", "text": ""},
                                          {"type": "text", "text": "and exact"}]},
        {"role": "system", "content": ""},
    ])))
    .unwrap();
    assert_eq!(
        out["system"],
        json!([{"text": "be brief"}, {"text": "be kind"}, {"text": "and exact"}])
    );
    assert_eq!(out["messages"].as_array().unwrap().len(), 1);
}

#[test]
fn same_role_runs_merge_and_empty_text_is_dropped() {
    let out = translate(chat(json!([
        user("a"),
        user(""),
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": [{"type": "text", "text": "c"},
                                          {"type": "refusal", "refusal": "no"}]},
        user("d"),
    ])))
    .unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
            {"role": "assistant", "content": [{"text": "c"}, {"text": "no"}]},
            {"role": "user", "content": [{"text": "d"}]},
        ])
    );
    // Only empty messages: nothing to send (Bedrock will say so).
    let out = translate(chat(json!([user("")]))).unwrap();
    assert_eq!(out["messages"], json!([]));
}

#[test]
fn tool_round_trip_with_parallel_calls() {
    let weather = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let out = translate(json!({"model": "m",
        "tools": [
            {"type": "function", "function": {"name": "weather", "description": "Weather by city",
                                              "parameters": weather}},
            {"type": "function", "function": {"name": "time"}},
        ],
        "tool_choice": "auto",
        "messages": [
            user("weather and time in Paris?"),
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call.2:x", "type": "function", "function": {"name": "time", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call.2:x", "content": [{"type": "text", "text": "12:00"}]},
            user("thanks"),
        ]}))
    .unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"text": "weather and time in Paris?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "call_2_x", "name": "time", "input": {}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                {"toolResult": {"toolUseId": "call_2_x", "content": [{"text": "12:00"}]}},
                {"text": "thanks"},
            ]},
        ])
    );
    assert_eq!(
        out["toolConfig"],
        json!({
            "tools": [
                {"toolSpec": {"name": "weather", "description": "Weather by city",
                              "inputSchema": {"json": weather}}},
                {"toolSpec": {"name": "time",
                              "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            ],
            "toolChoice": {"auto": {}},
        })
    );
}

#[test]
fn tool_choices() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let choice = |choice: Value| {
        let out = translate(
            json!({"model": "m", "messages": [user("x")], "tools": tools,
            "tool_choice": choice}),
        )
        .unwrap();
        out["toolConfig"]["toolChoice"].clone()
    };
    assert_eq!(choice(json!("required")), json!({"any": {}}));
    assert_eq!(
        choice(json!({"type": "function", "function": {"name": "f"}})),
        json!({"tool": {"name": "f"}})
    );
    assert_eq!(
        choice(Value::Null),
        Value::Null,
        "absent: Bedrock's default"
    );
    // `none` with nothing in history: no tools at all.
    let out = translate(
        json!({"model": "m", "messages": [user("x")], "tools": tools,
        "tool_choice": "none"}),
    )
    .unwrap();
    assert!(out.get("toolConfig").is_none(), "{out}");
    let err = translate(
        json!({"model": "m", "messages": [user("x")], "tools": tools,
        "tool_choice": {"type": "allowed_tools"}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        TranslateError::UnsupportedValue {
            field: "tool_choice"
        }
    );
}

#[test]
fn tool_history_without_offered_tools_gets_the_placeholder() {
    let history = json!([
        user("q"),
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": ""},
    ]);
    let placeholder = json!({"tools": [{"toolSpec": {
        "name": PLACEHOLDER_TOOL,
        "description": PLACEHOLDER_DESCRIPTION,
        "inputSchema": {"json": {"type": "object", "properties": {}}},
    }}]});
    // No tools declared.
    let out = translate(chat(history.clone())).unwrap();
    assert_eq!(out["toolConfig"], placeholder);
    assert_eq!(
        out["messages"][2]["content"][0]["toolResult"]["content"],
        json!([{"text": ""}]),
        "an empty tool result still has content"
    );
    // Tools declared but `none`: the real tools are not offered.
    let out = translate(
        json!({"model": "m", "messages": history, "tool_choice": "none",
        "tools": [{"type": "function", "function": {"name": "f"}}]}),
    )
    .unwrap();
    assert_eq!(out["toolConfig"], placeholder);
}

#[test]
fn bad_tool_arguments_name_the_call() {
    for args in ["[1]", "not json"] {
        let err = translate(chat(json!([
            {"role": "assistant", "tool_calls": [{"id": "c9", "type": "function",
                "function": {"name": "f", "arguments": args}}]},
        ])))
        .unwrap_err();
        assert_eq!(
            err,
            TranslateError::InvalidToolArguments { id: "c9".into() }
        );
    }
}

#[test]
fn images_data_urls_only() {
    let image = |url: &str| {
        translate(chat(json!([{"role": "user", "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": url}},
        ]}])))
    };
    let out = image("data:image/jpeg;base64,/9j/4AAQ").unwrap();
    assert_eq!(
        out["messages"][0]["content"],
        json!([{"text": "what?"},
               {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}])
    );
    for (media, format) in [
        ("png", "png"),
        ("gif", "gif"),
        ("webp", "webp"),
        ("jpg", "jpeg"),
    ] {
        let out = image(&format!("data:image/{media};base64,AAAA")).unwrap();
        assert_eq!(out["messages"][0]["content"][1]["image"]["format"], format);
    }
    assert_eq!(
        image("https://example.com/cat.png").unwrap_err(),
        TranslateError::InvalidImageUrl
    );
    assert_eq!(
        image("data:image/png,rawbytes").unwrap_err(),
        TranslateError::InvalidImageUrl
    );
    assert_eq!(
        image("data:image/bmp;base64,AAAA").unwrap_err(),
        TranslateError::UnsupportedValue { field: "image_url" }
    );
    let err = translate(chat(json!([{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]}])))
    .unwrap_err();
    assert_eq!(
        err,
        TranslateError::UnsupportedContentPart {
            kind: "input_audio".into()
        }
    );
}

#[test]
fn json_mode_is_a_final_system_instruction() {
    let out = translate(json!({"model": "m", "messages": [
        {"role": "system", "content": "sys"}, user("x")],
        "response_format": {"type": "json_object"}}))
    .unwrap();
    assert_eq!(out["system"][0]["text"], "sys");
    assert_eq!(out["system"][1]["text"], JSON_OBJECT_INSTRUCTION);
    let out = translate(json!({"model": "m", "messages": [user("x")],
        "response_format": {"type": "json_schema", "json_schema": {"name": "point",
            "schema": {"type": "object"}}}}))
    .unwrap();
    let text = out["system"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("`point`") && text.ends_with("{\"type\":\"object\"}"),
        "{text}"
    );
    let out = translate(json!({"model": "m", "messages": [user("x")],
        "response_format": {"type": "text"}}))
    .unwrap();
    assert!(out.get("system").is_none());
}

#[test]
fn reasoning_effort_enables_thinking_for_anthropic_models_only() {
    let body = |effort: &str, max: Option<u64>| {
        let mut b = json!({"model": "m", "messages": [user("x")], "reasoning_effort": effort});
        if let Some(max) = max {
            b["max_tokens"] = json!(max);
        }
        b
    };
    let out = translate_for(CLAUDE, body("medium", Some(1000))).unwrap();
    assert_eq!(
        out["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 4096}})
    );
    assert_eq!(out["inferenceConfig"]["maxTokens"], 5096);
    let out = translate_for(CLAUDE, body("high", Some(20000))).unwrap();
    assert_eq!(out["inferenceConfig"]["maxTokens"], 20000);
    let out = translate_for(
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        body("low", None),
    )
    .unwrap();
    assert_eq!(out["inferenceConfig"]["maxTokens"], 4096);
    assert_eq!(
        out["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        1024
    );
    let out = translate_for(CLAUDE, body("none", None)).unwrap();
    assert!(out.get("additionalModelRequestFields").is_none());
    // Other families ignore it.
    let out = translate_for(NOVA, body("high", None)).unwrap();
    assert!(out.get("additionalModelRequestFields").is_none());
    assert!(out.get("inferenceConfig").is_none());
    assert_eq!(
        translate_for(CLAUDE, body("extreme", None)).unwrap_err(),
        TranslateError::UnsupportedValue {
            field: "reasoning_effort"
        }
    );
}

#[test]
fn reasoning_in_history_is_dropped_and_roles_checked() {
    let out = translate(chat(json!([user("x"),
        {"role": "assistant", "content": "y", "reasoning_content": "thought"}])))
    .unwrap();
    assert_eq!(out["messages"][1]["content"], json!([{"text": "y"}]));
    let err = translate(chat(
        json!([{"role": "function", "name": "f", "content": "x"}]),
    ))
    .unwrap_err();
    assert_eq!(err, TranslateError::UnsupportedRole { role: "function" });
    let err = translate(json!({"model": "m", "messages": "nope"})).unwrap_err();
    assert_eq!(err, TranslateError::InvalidField { field: "messages" });
    let err = translate(json!({"model": "m", "messages": [], "temperature": "hot"})).unwrap_err();
    assert_eq!(
        err,
        TranslateError::InvalidField {
            field: "temperature"
        }
    );
}

#[test]
fn debug_prints_no_content() {
    let req: ChatCompletionRequest =
        serde_json::from_value(chat(json!([user("CANARY-in-prompt")]))).unwrap();
    let out = converse_request(&req, NOVA).unwrap();
    let printed = format!("{out:?}");
    assert!(!printed.contains("CANARY"), "{printed}");
    let resp: ConverseResponse = serde_json::from_value(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "CANARY-out"}]}},
        "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1}}))
    .unwrap();
    assert!(!format!("{resp:?}").contains("CANARY"));
}

fn respond(body: Value) -> Value {
    let resp: ConverseResponse = serde_json::from_value(body).unwrap();
    chat_response(&resp, "chatcmpl-1", "model-x", 42)
}

#[test]
fn response_text_and_usage_with_cache() {
    let out = respond(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}, {"text": " world"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45,
                  "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
        "metrics": {"latencyMs": 100},
    }));
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 42, "model": "model-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world",
                "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
                      "prompt_tokens_details": {"cached_tokens": 20},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        })
    );
    let resp: ConverseResponse = serde_json::from_value(json!({
        "output": {"message": {"content": []}}, "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 20}}))
    .unwrap();
    let usage = resp.usage();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens
        ),
        (30, 5, 20)
    );
}

#[test]
fn response_parallel_tool_calls_and_reasoning() {
    let out = respond(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Need both.", "signature": "sig"}}},
            {"reasoningContent": {"redactedContent": "AAAA"}},
            {"toolUse": {"toolUseId": "tooluse_a", "name": "weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "tooluse_b", "name": "time", "input": {}}},
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 3, "outputTokens": 4},
    }));
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["reasoning_content"], "Need both.");
    assert_eq!(
        message["tool_calls"],
        json!([
            {"id": "tooluse_a", "type": "function",
             "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "tooluse_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ])
    );
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn every_stop_reason() {
    for (reason, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("something_new", "stop"),
    ] {
        let out = respond(json!({
            "output": {"message": {"content": [
                {"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]}},
            "stopReason": reason, "usage": {"inputTokens": 1, "outputTokens": 1}}));
        assert_eq!(out["choices"][0]["finish_reason"], finish, "{reason}");
    }
}

#[test]
fn placeholder_calls_are_dropped_from_answers() {
    let out = respond(json!({
        "output": {"message": {"content": [
            {"toolUse": {"toolUseId": "t", "name": PLACEHOLDER_TOOL, "input": {}}}]}},
        "stopReason": "tool_use", "usage": {"inputTokens": 1, "outputTokens": 1}}));
    let choice = &out["choices"][0];
    assert!(choice["message"].get("tool_calls").is_none());
    assert_eq!(choice["message"]["content"], "");
    assert_eq!(choice["finish_reason"], "stop");
}

fn run_stream(events: &[(&str, Value)]) -> Result<Vec<Value>, ProviderError> {
    let mut t = StreamTranslator::new("chatcmpl-s", "model-x", 7);
    let mut out = Vec::new();
    for (kind, payload) in events {
        out.extend(t.push(kind, payload.to_string().as_bytes())?);
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
        .filter_map(|c| c["choices"].get(0).map(|ch| ch["delta"].clone()))
        .collect()
}

#[test]
fn stream_text_reasoning_and_usage() {
    let chunks = run_stream(&[
        ("messageStart", json!({"role": "assistant", "p": "abc"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"text": ""}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 1})),
        ("messageStop", json!({"stopReason": "max_tokens"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 9,
                "cacheReadInputTokens": 2}, "metrics": {"latencyMs": 10}}),
        ),
    ])
    .unwrap();
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"reasoning_content": "hmm"}),
            json!({"content": "Hi"}),
            json!({}),
        ]
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9,
               "prompt_tokens_details": {"cached_tokens": 2},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    assert_eq!(chunks[0]["id"], "chatcmpl-s");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
}

#[test]
fn stream_parallel_tool_calls_are_indexed_by_tool_order() {
    let chunks = run_stream(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
        ),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "weather"}}}),
        ),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "time"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
        ),
        ("messageStop", json!({"stopReason": "tool_use"})),
    ])
    .unwrap();
    assert_eq!(
        deltas(&chunks),
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"content": "Checking."}),
            json!({"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                "function": {"name": "weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 1, "id": "t2", "type": "function",
                "function": {"name": "time", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            json!({}),
        ]
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    // No metadata: the usage chunk still closes the stream, with zeros.
    assert_eq!(chunks.last().unwrap()["usage"]["total_tokens"], 0);
}

#[test]
fn stream_skips_placeholder_calls() {
    let chunks = run_stream(&[
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": PLACEHOLDER_TOOL}}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{}"}}}),
        ),
        ("messageStop", json!({"stopReason": "tool_use"})),
    ])
    .unwrap();
    assert_eq!(
        deltas(&chunks),
        vec![json!({"role": "assistant", "content": ""}), json!({})]
    );
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
}

#[test]
fn stream_without_message_start_still_opens_with_the_role() {
    let chunks = run_stream(&[
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "x"}}),
        ),
        ("someFutureEvent", json!({"anything": true})),
        ("messageStop", json!({"stopReason": "end_turn"})),
    ])
    .unwrap();
    assert_eq!(
        deltas(&chunks)[0],
        json!({"role": "assistant", "content": ""})
    );
}

#[test]
fn malformed_and_truncated_streams_fail() {
    let err = run_stream(&[("contentBlockDelta", json!({"delta": "nope"}))]).unwrap_err();
    assert!(matches!(err, ProviderError::InvalidResponse(_)), "{err}");
    let err = run_stream(&[(
        "contentBlockDelta",
        json!({"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}),
    )])
    .unwrap_err();
    assert!(matches!(err, ProviderError::InvalidResponse(_)), "{err}");
    let err = run_stream(&[("messageStop", json!({}))]).unwrap_err();
    assert!(matches!(err, ProviderError::InvalidResponse(_)), "{err}");
    let mut t = StreamTranslator::new("i", "m", 0);
    assert!(t.push("messageStart", b"not json").unwrap().len() == 1);
    let err = t.finish().unwrap_err();
    assert!(matches!(err, ProviderError::StreamBroken(_)), "{err}");
    assert!(!t.is_complete());
}

#[test]
fn exceptions_and_http_errors_are_classified() {
    let c = |status: Option<u16>, kind: &str, message: &str| {
        classify_error(
            status.map(|s| StatusCode::from_u16(s).unwrap()),
            Some(kind),
            json!({"message": message}).to_string().as_bytes(),
        )
    };
    let e = c(None, "throttlingException", "slow down");
    assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
    // Bedrock's token-rate throttling message must not read as a context-length error.
    for status in [None, Some(429)] {
        let e = c(
            status,
            "ThrottlingException",
            "Too many tokens, please wait before trying again.",
        );
        assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
    }
    let e = c(None, "serviceUnavailableException", "busy");
    assert!(matches!(e, ProviderError::Overloaded { .. }), "{e:?}");
    let e = c(None, "internalServerException", "oops");
    assert!(
        matches!(e, ProviderError::Server { status: 500, .. }),
        "{e:?}"
    );
    let e = c(None, "modelStreamErrorException", "model broke");
    assert!(
        matches!(e, ProviderError::Server { status: 502, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let e = c(None, "validationException", "bad field");
    assert!(
        matches!(e, ProviderError::BadRequest { status: 400, .. }),
        "{e:?}"
    );
    let e = c(
        Some(400),
        "ValidationException",
        "Input is too long for requested model.",
    );
    assert!(matches!(e, ProviderError::ContextLength { .. }), "{e:?}");
    let e = c(
        Some(400),
        "ValidationException",
        "400 Bad Request: Too many input tokens. Max input tokens: 8192",
    );
    assert!(matches!(e, ProviderError::ContextLength { .. }), "{e:?}");
    let e = c(Some(424), "ModelErrorException", "The model failed");
    assert!(
        matches!(e, ProviderError::Server { status: 502, .. }),
        "{e:?}"
    );
    let e = c(Some(429), "ModelNotReadyException", "warming up");
    assert!(matches!(e, ProviderError::Overloaded { .. }), "{e:?}");
    let e = c(Some(400), "ServiceQuotaExceededException", "quota");
    assert!(matches!(e, ProviderError::RateLimited { .. }), "{e:?}");
    let e = c(Some(403), "AccessDeniedException", "no access");
    assert!(
        matches!(e, ProviderError::Unauthorized { status: 403 }),
        "{e:?}"
    );
    let e = c(Some(404), "ResourceNotFoundException", "no model");
    assert!(
        matches!(e, ProviderError::Server { status: 404, .. }),
        "{e:?}"
    );
    let e = classify_error(None, Some("weirdException"), b"<html>");
    assert!(
        matches!(
            e,
            ProviderError::Server {
                status: 502,
                message: None
            }
        ),
        "{e:?}"
    );
    let e = classify_error(
        Some(StatusCode::BAD_REQUEST),
        None,
        br#"{"Message":"capitalised"}"#,
    );
    assert_eq!(
        e,
        ProviderError::BadRequest {
            status: 400,
            message: Some("capitalised".into())
        }
    );
}

fn embedding_request(body: Value) -> EmbeddingRequest {
    serde_json::from_value(body).unwrap()
}

#[test]
fn embedding_inputs_and_families() {
    let req = embedding_request(json!({"model": "e", "input": "one"}));
    assert_eq!(embeddings::inputs(&req).unwrap(), ["one"]);
    let req = embedding_request(json!({"model": "e", "input": ["a", "b"]}));
    assert_eq!(embeddings::inputs(&req).unwrap(), ["a", "b"]);
    for bad in [json!([1, 2]), json!([[1]]), json!(3)] {
        let req = embedding_request(json!({"model": "e", "input": bad}));
        assert_eq!(
            embeddings::inputs(&req).unwrap_err(),
            TranslateError::UnsupportedValue { field: "input" }
        );
    }
    let req = embedding_request(json!({"model": "e", "input": []}));
    assert_eq!(
        embeddings::inputs(&req).unwrap_err(),
        TranslateError::InvalidField { field: "input" }
    );
    assert_eq!(
        Family::of("amazon.titan-embed-text-v2:0"),
        Some(Family::Titan)
    );
    assert_eq!(Family::of("us.cohere.embed-v4:0"), Some(Family::Cohere));
    assert_eq!(Family::of("amazon.nova-pro-v1:0"), None);
}

#[test]
fn embedding_requests() {
    let req = embedding_request(json!({"model": "e", "input": "x", "dimensions": 256,
        "normalize": false, "encoding_format": "base64"}));
    assert_eq!(
        embeddings::titan_request("x", &req).unwrap(),
        json!({"inputText": "x", "dimensions": 256, "normalize": false})
    );
    assert!(embeddings::wants_base64(&req).unwrap());
    let req = embedding_request(json!({"model": "e", "input": ["a", "b"]}));
    assert_eq!(
        embeddings::titan_request("a", &req).unwrap(),
        json!({"inputText": "a"})
    );
    assert_eq!(
        embeddings::cohere_request(&["a".into(), "b".into()], &req).unwrap(),
        json!({"texts": ["a", "b"], "input_type": "search_document"})
    );
    assert!(!embeddings::wants_base64(&req).unwrap());
    let req = embedding_request(
        json!({"model": "e", "input": "q", "input_type": "search_query",
        "embedding_types": ["float"], "truncate": "END", "dimensions": 512}),
    );
    assert_eq!(
        embeddings::cohere_request(&["q".into()], &req).unwrap(),
        json!({"texts": ["q"], "input_type": "search_query", "truncate": "END",
               "embedding_types": ["float"], "output_dimension": 512})
    );
    let req = embedding_request(json!({"model": "e", "input": "q", "encoding_format": "hex"}));
    assert!(embeddings::wants_base64(&req).is_err());
}

#[test]
fn embedding_responses() {
    let (v, tokens) = embeddings::titan_response(
        br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":3,"embeddingsByType":{"float":[0.5,-0.25]}}"#,
    )
    .unwrap();
    assert_eq!((v, tokens), (vec![0.5, -0.25], 3));
    assert!(embeddings::titan_response(b"{}").is_err());
    let plain = embeddings::cohere_response(
        br#"{"embeddings":[[1.0,2.0],[3.0,4.0]],"id":"x","response_type":"embeddings_floats","texts":["a","b"]}"#,
    )
    .unwrap();
    assert_eq!(plain, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    let by_type = embeddings::cohere_response(
        br#"{"embeddings":{"int8":[[1,2]],"float":[[0.1,0.2]]},"response_type":"embeddings_by_type"}"#,
    )
    .unwrap();
    assert_eq!(by_type, vec![vec![0.1, 0.2]]);
    let int8 = embeddings::cohere_response(br#"{"embeddings":{"int8":[[1,2]]}}"#).unwrap();
    assert_eq!(int8, vec![vec![1.0, 2.0]]);
    assert!(embeddings::cohere_response(br#"{"embeddings":{}}"#).is_err());

    let list = embeddings::embeddings_response(&[vec![1.0, 0.5]], "m", 4, false);
    assert_eq!(
        list,
        json!({"object": "list", "model": "m",
               "data": [{"object": "embedding", "index": 0, "embedding": [1.0, 0.5]}],
               "usage": {"prompt_tokens": 4, "total_tokens": 4}})
    );
    let list = embeddings::embeddings_response(&[vec![1.0, 0.5]], "m", 4, true);
    // 1.0f32 = 00 00 80 3f, 0.5f32 = 00 00 00 3f (little-endian).
    assert_eq!(list["data"][0]["embedding"], "AACAPwAAAD8=");
}

use portcullis_types::anthropic::MessagesRequest;
use serde_json::{Value, json};

use super::*;

fn request(body: Value) -> MessagesRequest {
    serde_json::from_value(body).unwrap()
}

fn chat(body: Value) -> Value {
    let req = chat_request(&request(body), "up-model").unwrap();
    serde_json::from_slice(&req.to_upstream_json(false).unwrap()).unwrap()
}

#[test]
fn plain_request_with_system_and_sampling() {
    let out = chat(json!({
        "model": "claude", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
    }));
    assert_eq!(
        out,
        json!({
            "model": "up-model", "max_tokens": 100, "temperature": 0.5, "top_p": 0.9,
            "stop": ["END"], "user": "u-1",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
        })
    );
}

#[test]
fn system_blocks_are_joined() {
    let out = chat(json!({
        "model": "c", "max_tokens": 1,
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "x"}],
    }));
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": "A\n\nB"})
    );
}

#[test]
fn tool_round_trip_puts_results_first() {
    let out = chat(json!({
        "model": "c", "max_tokens": 1,
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here you go"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "timeout"}]},
            ]},
        ],
        "tools": [{"name": "weather", "description": "Get weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    }));
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[1]["content"], "Checking.");
    let calls = messages[1]["tool_calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "toolu_1");
    assert_eq!(calls[1]["function"]["name"], "weather");
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Rome"}));
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18C"})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "toolu_2", "content": "Error: timeout"})
    );
    assert_eq!(
        messages[4],
        json!({"role": "user", "content": "Here you go"})
    );
    assert_eq!(
        out["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["parallel_tool_calls"], false);
}

#[test]
fn images_documents_and_choices() {
    let out = chat(json!({
        "model": "c", "max_tokens": 1, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        ]}],
    }));
    let parts = out["messages"][0]["content"].as_array().unwrap();
    assert_eq!(parts[1]["image_url"]["url"], "data:image/png;base64,iVBOR");
    assert_eq!(parts[2]["image_url"]["url"], "https://example.com/a.jpg");
    assert_eq!(
        parts[3]["file"]["file_data"],
        "data:application/pdf;base64,JVBER"
    );
    assert_eq!(out["reasoning_effort"], "medium");
    assert_eq!(
        out["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(out["stream"], true);
    assert_eq!(out["stream_options"], json!({"include_usage": true}));
}

#[test]
fn untranslatable_requests_are_refused() {
    let server_tool = request(json!({
        "model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }));
    assert_eq!(
        chat_request(&server_tool, "m").unwrap_err(),
        TranslateError::UnsupportedValue { field: "tools" }
    );
    let image_result = request(json!({
        "model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}]}]}],
    }));
    assert!(matches!(
        chat_request(&image_result, "m").unwrap_err(),
        TranslateError::UnsupportedContentPart { .. }
    ));
}

#[test]
fn responses_map_content_stop_reasons_and_usage() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me check.", "reasoning_content": "think",
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": ""}},
            ]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                  "prompt_tokens_details": {"cached_tokens": 60}},
    });
    let out = message_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(out["id"], "msg_chatcmpl-1");
    assert_eq!(out["type"], "message");
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(
        out["content"][0],
        json!({"type": "thinking", "thinking": "think", "signature": ""})
    );
    assert_eq!(
        out["content"][1],
        json!({"type": "text", "text": "Let me check."})
    );
    assert_eq!(
        out["content"][2],
        json!({"type": "tool_use", "id": "call_a", "name": "w", "input": {"city": "Paris"}})
    );
    assert_eq!(out["content"][3]["input"], json!({}));
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 40, "cache_read_input_tokens": 60, "output_tokens": 20})
    );
    for (finish, reason) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("function_call", "tool_use"),
    ] {
        let body = json!({"id": "x", "model": "m", "choices": [{"finish_reason": finish,
            "message": {"role": "assistant", "content": "a"}}]});
        let out = message_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(out["stop_reason"], reason);
    }
    let bad = json!({"choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}}]});
    assert_eq!(
        message_response(bad.to_string().as_bytes()).unwrap_err(),
        ResponseError::ToolArguments("c".into())
    );
    assert_eq!(
        message_response(b"[]").unwrap_err(),
        ResponseError::NotACompletion
    );
}

fn chunk(delta: Value, finish: Option<&str>) -> Vec<u8> {
    json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "gpt",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
    .into_bytes()
}

/// Runs chunks through a translator; returns (event name, payload) pairs.
fn run(chunks: &[Vec<u8>]) -> Vec<(&'static str, Value)> {
    let mut t = MessagesStream::new();
    let mut out = Vec::new();
    for c in chunks {
        for (name, data) in t.push(c).unwrap() {
            out.push((name, serde_json::from_slice(&data).unwrap()));
        }
    }
    out
}

#[test]
fn stream_of_text_then_usage() {
    let usage = json!({"id": "chatcmpl-9", "choices": [], "usage": {"prompt_tokens": 12,
        "completion_tokens": 3, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 2}}});
    let events = run(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({}), Some("stop")),
        usage.to_string().into_bytes(),
        b"[DONE]".to_vec(),
    ]);
    let names: Vec<_> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[0].1["message"]["id"], "msg_chatcmpl-9");
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        events[3].1["delta"],
        json!({"type": "text_delta", "text": "lo"})
    );
    assert_eq!(events[5].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(
        events[5].1["usage"],
        json!({"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 3})
    );
}

#[test]
fn stream_of_reasoning_text_and_parallel_tool_calls() {
    let events = run(&[
        chunk(
            json!({"role": "assistant", "reasoning_content": "Let me"}),
            None,
        ),
        chunk(json!({"reasoning_content": " think"}), None),
        chunk(json!({"content": "Calling."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "weather", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
            "function": {"name": "time", "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        b"[DONE]".to_vec(),
    ]);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| *n == "content_block_start")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(starts.len(), 4);
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[1]["content_block"]["type"], "text");
    assert_eq!(
        starts[2]["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "weather", "input": {}})
    );
    assert_eq!(starts[3]["content_block"]["id"], "call_2");
    assert_eq!(starts[3]["index"], 3);
    // The first call's arguments arrive whole, in order, on block 2.
    let args: String = events
        .iter()
        .filter(|(_, v)| v["index"] == 2 && v["delta"]["type"] == "input_json_delta")
        .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    let stops = events
        .iter()
        .filter(|(n, _)| *n == "content_block_stop")
        .count();
    assert_eq!(stops, 4);
    let delta = events.iter().find(|(n, _)| *n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap().0, "message_stop");
}

#[test]
fn stream_ends_and_errors() {
    // Ended without [DONE] but with a finish reason: closed normally.
    let mut t = MessagesStream::new();
    t.push(&chunk(json!({"content": "a"}), Some("length")))
        .unwrap();
    let end = t.end().unwrap();
    assert_eq!(end.last().unwrap().0, "message_stop");
    let delta: Value = serde_json::from_slice(&end[end.len() - 2].1).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    // Ended without a finish reason: broken off.
    let mut t = MessagesStream::new();
    t.push(&chunk(json!({"content": "a"}), None)).unwrap();
    assert!(t.end().is_none());
    // Arguments for a tool call whose block was closed cannot be placed.
    let mut t = MessagesStream::new();
    t.push(&chunk(
        json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}),
        None,
    ))
    .unwrap();
    t.push(&chunk(
        json!({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}),
        None,
    ))
    .unwrap();
    let err = t
        .push(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            None,
        ))
        .unwrap_err();
    assert_eq!(err, StreamError::InterleavedToolCall(0));
    assert_eq!(
        MessagesStream::new().push(b"{").unwrap_err(),
        StreamError::NotAChunk
    );
    // After the end nothing more is sent.
    let mut t = MessagesStream::new();
    assert_eq!(t.push(b"[DONE]").unwrap().len(), 3);
    assert!(t.is_done());
    assert!(
        t.push(&chunk(json!({"content": "late"}), None))
            .unwrap()
            .is_empty()
    );
}

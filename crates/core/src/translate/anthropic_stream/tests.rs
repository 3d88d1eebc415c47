//! The stream translator, event by event: the chunks of each event kind, tool call numbering and
//! argument fragments, usage, errors and malformed streams.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{ChatStream, Chunk};
use crate::provider::ProviderError;
use crate::sse::SseEvent;

fn start(usage: Value) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "content": [], "model": "claude-up", "stop_reason": null,
        "stop_sequence": null, "usage": usage}})
}

fn block_start(index: u32, block: Value) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": block})
}

fn delta(index: u32, delta: Value) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": delta})
}

fn text(index: u32, text: &str) -> Value {
    delta(index, json!({"type": "text_delta", "text": text}))
}

fn json_delta(index: u32, partial: &str) -> Value {
    delta(
        index,
        json!({"type": "input_json_delta", "partial_json": partial}),
    )
}

fn block_stop(index: u32) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

fn message_delta(stop_reason: &str, usage: Value) -> Value {
    json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": usage})
}

fn stop() -> Value {
    json!({"type": "message_stop"})
}

/// Feeds `events` and returns every chunk, `[DONE]` as a string; the first error ends it.
fn run(events: &[Value]) -> Result<Vec<Value>, ProviderError> {
    let mut stream = ChatStream::new(7);
    let mut out = Vec::new();
    for event in events {
        let chunks = stream.push(serde_json::from_value(event.clone()).unwrap())?;
        out.extend(chunks.iter().map(Chunk::to_value));
    }
    stream.finish()?;
    Ok(out)
}

fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "claude-up",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

fn usage_chunk(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "claude-up",
        "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion, "prompt_tokens_details": {"cached_tokens": cached}}})
}

fn role() -> Value {
    chunk(json!({"role": "assistant", "content": ""}), None)
}

/// The `delta` of each chunk that has choices.
fn deltas(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .filter_map(|c| c.get("choices")?.get(0)?.get("delta"))
        .collect()
}

#[test]
fn a_text_stream_becomes_role_content_finish_usage_done() {
    let out = run(&[
        start(json!({"input_tokens": 25, "output_tokens": 1})),
        block_start(0, json!({"type": "text", "text": ""})),
        json!({"type": "ping"}),
        text(0, "Hel"),
        text(0, ""),
        text(0, "lo"),
        block_stop(0),
        message_delta("end_turn", json!({"output_tokens": 15})),
        stop(),
    ])
    .unwrap();
    assert_eq!(
        out,
        vec![
            role(),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk(25, 15, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn parallel_tool_calls_are_numbered_over_tool_blocks_only() {
    let out = run(&[
        start(json!({"input_tokens": 400, "output_tokens": 2})),
        block_start(0, json!({"type": "text", "text": ""})),
        text(0, "Checking both."),
        block_stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}),
        ),
        json_delta(1, ""),
        json_delta(1, "{\"city\":"),
        block_start(
            2,
            json!({"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}),
        ),
        json_delta(2, "{\"tz\": \"UTC\"}"),
        json_delta(1, " \"Oslo\"}"),
        block_stop(1),
        block_stop(2),
        message_delta("tool_use", json!({"output_tokens": 90})),
        stop(),
    ])
    .unwrap();
    let tool_start = |index: u32, id: &str, name: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        )
    };
    let args = |index: u32, fragment: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            None,
        )
    };
    assert_eq!(
        out,
        vec![
            role(),
            chunk(json!({"content": "Checking both."}), None),
            tool_start(0, "toolu_a", "get_weather"),
            args(0, "{\"city\":"),
            tool_start(1, "toolu_b", "get_time"),
            args(1, "{\"tz\": \"UTC\"}"),
            args(0, " \"Oslo\"}"),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(400, 90, 0),
            json!("[DONE]"),
        ]
    );
}

#[test]
fn a_tool_call_without_fragments_gets_its_start_input() {
    let out = run(&[
        start(json!({"input_tokens": 1})),
        block_start(
            0,
            json!({"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}),
        ),
        json_delta(0, ""),
        block_stop(0),
        block_start(
            1,
            json!({"type": "tool_use", "id": "toolu_2", "name": "f", "input": {"a": 1}}),
        ),
        block_stop(1),
        message_delta("tool_use", json!({"output_tokens": 3})),
        stop(),
    ])
    .unwrap();
    let fragments: Vec<&Value> = deltas(&out)
        .into_iter()
        .filter_map(|d| {
            d.get("tool_calls")?
                .get(0)?
                .get("function")?
                .get("arguments")
        })
        .collect();
    assert_eq!(
        fragments,
        [&json!(""), &json!("{}"), &json!(""), &json!("{\"a\":1}")]
    );
}

#[test]
fn thinking_is_reasoning_content_and_signatures_and_redactions_are_dropped() {
    let out = run(&[
        start(json!({"input_tokens": 10, "output_tokens": 1})),
        block_start(0, json!({"type": "thinking", "thinking": ""})),
        delta(0, json!({"type": "thinking_delta", "thinking": "27 * 453"})),
        delta(0, json!({"type": "signature_delta", "signature": "EqQB"})),
        block_stop(0),
        block_start(1, json!({"type": "redacted_thinking", "data": "enc"})),
        block_stop(1),
        block_start(2, json!({"type": "text", "text": ""})),
        text(2, "12,231"),
        delta(
            2,
            json!({"type": "citations_delta", "citation": {"type": "char_location"}}),
        ),
        block_stop(2),
        message_delta("end_turn", json!({"output_tokens": 30})),
        stop(),
    ])
    .unwrap();
    assert_eq!(
        deltas(&out),
        [
            &json!({"role": "assistant", "content": ""}),
            &json!({"reasoning_content": "27 * 453"}),
            &json!({"content": "12,231"}),
            &json!({}),
        ]
    );
}

#[test]
fn usage_counts_cache_reads_and_writes_and_the_last_delta_wins() {
    let out = run(&[
        start(json!({"input_tokens": 10, "output_tokens": 1,
            "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20})),
        message_delta("end_turn", json!({"output_tokens": 5})),
        message_delta(
            "end_turn",
            json!({"output_tokens": 7, "input_tokens": 11, "cache_read_input_tokens": 200,
                "cache_creation_input_tokens": 0}),
        ),
        stop(),
    ])
    .unwrap();
    // One finish chunk, though two deltas carried a stop reason.
    assert_eq!(
        out[1..],
        [
            chunk(json!({}), Some("stop")),
            usage_chunk(211, 7, 200),
            json!("[DONE]")
        ]
    );
}

#[test]
fn each_stop_reason_maps_to_a_finish_reason() {
    for (reason, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("brand_new_reason", "stop"),
    ] {
        let out = run(&[start(json!({})), message_delta(reason, json!({})), stop()]).unwrap();
        assert_eq!(out[1]["choices"][0]["finish_reason"], finish, "{reason}");
    }
    // No message_delta at all: message_stop still finishes.
    let out = run(&[start(json!({})), stop()]).unwrap();
    assert_eq!(out[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(out.len(), 4);
}

#[test]
fn error_events_are_classified_errors() {
    let error = |kind: &str, message: &str| {
        run(&[
            start(json!({})),
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ])
        .unwrap_err()
    };
    assert!(matches!(
        error("overloaded_error", "Overloaded"),
        ProviderError::Overloaded { message: Some(m), .. } if m == "Overloaded"
    ));
    assert!(matches!(
        error("rate_limit_error", "slow down"),
        ProviderError::RateLimited { .. }
    ));
    assert!(matches!(
        error(
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum"
        ),
        ProviderError::ContextLength { .. }
    ));
    assert!(matches!(
        error("api_error", "Internal server error"),
        ProviderError::Server { status: 500, .. }
    ));
    assert!(matches!(
        error("brand_new_error", "x"),
        ProviderError::Server { status: 500, .. }
    ));
    // An error as the very first event (before message_start) is an error too.
    let first = run(&[json!({"type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}})]);
    assert!(matches!(first, Err(ProviderError::Overloaded { .. })));
}

#[test]
fn unknown_events_and_server_tools_are_ignored_and_nothing_follows_message_stop() {
    let out = run(&[
        start(json!({"input_tokens": 3})),
        json!({"type": "message_pause", "reason": {"a": 1}}),
        block_start(
            0,
            json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        ),
        json_delta(0, "{\"query\": \"x\"}"),
        block_stop(0),
        block_start(
            1,
            json!({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        ),
        block_stop(1),
        block_start(
            2,
            json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        ),
        json_delta(2, "{}"),
        block_stop(2),
        message_delta("tool_use", json!({"output_tokens": 4})),
        stop(),
        text(0, "late"),
        stop(),
    ])
    .unwrap();
    // The client tool is call 0: server tool blocks are not numbered.
    assert_eq!(out[1]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    assert_eq!(
        out[1]["choices"][0]["delta"]["tool_calls"][0]["id"],
        "toolu_1"
    );
    assert_eq!(out.len(), 6, "{out:#?}");
    assert_eq!(out.last(), Some(&json!("[DONE]")));
}

#[test]
fn malformed_streams_are_errors() {
    let invalid = |events: &[Value]| match run(events) {
        Err(ProviderError::InvalidResponse(m)) => m,
        other => panic!("{other:?}"),
    };
    let m = invalid(&[text(0, "SECRET-CANARY")]);
    assert!(m.contains("before message_start"), "{m}");
    let m = invalid(&[start(json!({})), start(json!({}))]);
    assert!(m.contains("second message_start"), "{m}");
    let m = invalid(&[
        start(json!({})),
        block_start(0, json!({"type": "text", "text": ""})),
        json_delta(0, "{\"SECRET-CANARY\":1}"),
    ]);
    assert!(m.contains("outside a tool call"), "{m}");
    assert!(!m.contains("SECRET-CANARY"));
    let m = invalid(&[start(json!({})), json_delta(5, "{}")]);
    assert!(m.contains("outside a tool call"), "{m}");

    // Cut off before message_stop.
    let cut = run(&[start(json!({})), text(0, "partial")]);
    assert!(
        matches!(cut, Err(ProviderError::StreamBroken(_))),
        "{cut:?}"
    );

    // Data that is not an event object.
    let mut stream = ChatStream::new(0);
    for data in [
        &b"not json SECRET-CANARY"[..],
        b"{\"type\":\"content_block_delta\",\"index\":\"SECRET-CANARY\"}",
        b"[]",
    ] {
        let event = SseEvent {
            event: Some("content_block_delta".into()),
            data: Bytes::copy_from_slice(data),
        };
        match stream.push_sse(&event) {
            Err(ProviderError::InvalidResponse(m)) => assert!(!m.contains("SECRET"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn sse_events_translate_like_typed_ones_and_debug_hides_content() {
    let mut stream = ChatStream::new(7);
    let sse = |data: Value| SseEvent {
        event: None,
        data: Bytes::from(data.to_string()),
    };
    let mut out = Vec::new();
    for event in [
        start(json!({"input_tokens": 2})),
        block_start(0, json!({"type": "text", "text": "SECRET-CANARY"})),
        message_delta("end_turn", json!({"output_tokens": 1})),
        stop(),
    ] {
        out.extend(stream.push_sse(&sse(event)).unwrap());
    }
    assert!(stream.is_done());
    stream.finish().unwrap();
    assert_eq!(
        out[1].to_value()["choices"][0]["delta"]["content"],
        "SECRET-CANARY"
    );
    assert_eq!(out.last(), Some(&Chunk::Done));
    let printed = format!("{stream:?} {out:?}");
    assert!(!printed.contains("SECRET-CANARY"), "{printed}");
    assert!(printed.contains("msg_1"), "{printed}");
}

//! What format translation costs: a typical request (system prompt, a few turns, a tool-call
//! round trip, two tools) and a 500-chunk streamed answer, for each translated pair.
//! Run with `cargo bench -p portcullis-core --bench translate`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_core::translate::anthropic_inbound::{self, MessagesStream};
use portcullis_types::anthropic::MessagesRequest;
use serde_json::json;

/// Chunks in the streamed answers.
const CHUNKS: usize = 500;

fn anthropic_request() -> MessagesRequest {
    serde_json::from_value(json!({
        "model": "claude-sonnet", "max_tokens": 1024, "system": "You are a helpful travel assistant.",
        "messages": [
            {"role": "user", "content": "I am planning a weekend in Paris. What should I pack?"},
            {"role": "assistant", "content": "Let me check the forecast first."},
            {"role": "user", "content": "Sure, and tell me the local time too."},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "Europe/Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, light rain"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "14:05"}]},
        ],
        "tools": [
            {"name": "get_weather", "description": "Current weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "get_time", "description": "Local time in a time zone",
             "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}},
        ],
        "temperature": 0.7,
    }))
    .unwrap()
}

/// A 500-chunk OpenAI stream: role, 497 text deltas, finish, usage (then `[DONE]`).
fn openai_chunks() -> Vec<Vec<u8>> {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        .to_string()
        .into_bytes()
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    chunks.extend((0..CHUNKS - 3).map(|i| chunk(json!({"content": format!(" word{i}")}), None)));
    chunks.push(chunk(json!({}), Some("stop")));
    chunks.push(
        json!({"id": "chatcmpl-b", "object": "chat.completion.chunk", "created": 1, "model": "gpt",
            "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 497, "total_tokens": 617}})
        .to_string()
        .into_bytes(),
    );
    chunks.push(b"[DONE]".to_vec());
    chunks
}

fn anthropic_inbound(c: &mut Criterion) {
    let request = anthropic_request();
    c.bench_function("anthropic_inbound/request", |b| {
        b.iter(|| {
            let chat = anthropic_inbound::chat_request(black_box(&request), "gpt-4o").unwrap();
            black_box(chat.to_upstream_json(true).unwrap())
        });
    });
    let chunks = openai_chunks();
    let mut group = c.benchmark_group("anthropic_inbound");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function("stream_500_chunks", |b| {
        b.iter(|| {
            let mut t = MessagesStream::new();
            let mut events = 0;
            for chunk in &chunks {
                events += t.push(black_box(chunk)).unwrap().len();
            }
            black_box(events)
        });
    });
    group.finish();
}

criterion_group!(benches, anthropic_inbound);
criterion_main!(benches);

//! What format translation costs: a typical request (system prompt, a few turns, a tool-call
//! round trip, two tools) and a 500-event streamed answer, for each translated pair, with the
//! serialization the adapter does around it (the request body as sent, each chunk as
//! forwarded). The OpenAI-compatible pass-through's per-chunk usage scan is the baseline.
//! Run with `cargo bench -p portcullis-core --bench translate`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_core::aws_eventstream::{
    CONTENT_TYPE, EVENT_TYPE, EventStreamDecoder, MESSAGE_TYPE, encode_message,
};
use portcullis_core::json_scan;
use portcullis_core::sse::SseEvent;
use portcullis_core::translate::anthropic_inbound::{self, MessagesStream};
use portcullis_core::translate::anthropic_stream::{self, Chunk};
use portcullis_core::translate::{anthropic, bedrock, cohere, gemini};
use portcullis_types::anthropic::MessagesRequest;
use portcullis_types::openai::ChatCompletionRequest;
use serde_json::{Value, json};

/// Events in the streamed answers.
const CHUNKS: usize = 500;

/// The typical conversation as an Anthropic Messages request (the inbound direction).
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

/// The same conversation as an OpenAI chat request (the outbound directions), parsed as the
/// pipeline parses it.
fn openai_request() -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "bench-model", "stream": true, "max_tokens": 1024, "temperature": 0.7,
        "messages": [
            {"role": "system", "content": "You are a helpful travel assistant."},
            {"role": "user", "content": "I am planning a weekend in Paris. What should I pack?"},
            {"role": "assistant", "content": "Let me check the forecast first."},
            {"role": "user", "content": "Sure, and tell me the local time too."},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_time", "arguments": "{\"tz\":\"Europe/Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, light rain"},
            {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time", "description": "Local time in a time zone",
             "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}},
        ],
    }))
    .unwrap()
}

/// A 500-chunk OpenAI stream: role, 497 text deltas, finish, usage (then `[DONE]`).
fn openai_chunks() -> Vec<Vec<u8>> {
    let chunk = |delta: Value, finish: Option<&str>| {
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

/// An SSE event as the decoder yields it.
fn sse(event: Option<&str>, data: &Value) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: Bytes::from(data.to_string()),
    }
}

/// 500 Anthropic events: message_start, content_block_start, 495 text deltas,
/// content_block_stop, message_delta, message_stop.
fn anthropic_events() -> Vec<SseEvent> {
    let event = |data: Value| sse(data["type"].as_str(), &data);
    let mut events = vec![
        event(json!({"type": "message_start", "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 120, "output_tokens": 1}}})),
        event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})),
    ];
    events.extend((0..CHUNKS - 5).map(|i| {
        event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": format!(" word{i}")}}))
    }));
    events.push(event(json!({"type": "content_block_stop", "index": 0})));
    events.push(event(json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 495}})));
    events.push(event(json!({"type": "message_stop"})));
    events
}

/// 500 Gemini `streamGenerateContent?alt=sse` data payloads, one text part each; like the real
/// stream every event repeats `usageMetadata`, complete on the last one (with `finishReason`).
fn gemini_events() -> Vec<Vec<u8>> {
    (0..CHUNKS)
        .map(|i| {
            let last = i == CHUNKS - 1;
            let text = format!(" word{i}");
            let mut candidate =
                json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
            let mut usage = json!({"promptTokenCount": 120, "totalTokenCount": 120,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]});
            if last {
                candidate["finishReason"] = json!("STOP");
                usage["candidatesTokenCount"] = json!(500);
                usage["totalTokenCount"] = json!(620);
            }
            json!({"candidates": [candidate], "usageMetadata": usage,
                "modelVersion": "gemini-2.5-flash", "responseId": "2AitaJqFNvrfz7IPs4L-sQs"})
            .to_string()
            .into_bytes()
        })
        .collect()
}

/// 500 ConverseStream events as (`:event-type`, JSON payload), with the `p` padding Bedrock
/// adds: messageStart, 496 contentBlockDelta, contentBlockStop, messageStop, metadata.
fn bedrock_events() -> Vec<(&'static str, Vec<u8>)> {
    let event = |kind: &'static str, payload: Value| (kind, payload.to_string().into_bytes());
    let mut events = vec![event(
        "messageStart",
        json!({"p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW", "role": "assistant"}),
    )];
    events.extend((0..CHUNKS - 4).map(|i| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": format!(" word{i}")},
                "p": "abcdefghijklmnopqrstuvwxyzABC"}),
        )
    }));
    events.push(event(
        "contentBlockStop",
        json!({"contentBlockIndex": 0, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"}),
    ));
    events.push(event(
        "messageStop",
        json!({"p": "abcdefghijklmnopqrstuvwx", "stopReason": "end_turn"}),
    ));
    events.push(event(
        "metadata",
        json!({"metrics": {"latencyMs": 745}, "p": "abcdefghijklmnopqrstuvwxyzABCDEF",
            "usage": {"inputTokens": 120, "outputTokens": 496, "totalTokens": 616}}),
    ));
    events
}

/// The same events as the binary event-stream body Bedrock sends (CRCs included).
fn bedrock_frames(events: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|(kind, payload)| {
            let headers = [
                (EVENT_TYPE, (*kind).into()),
                (CONTENT_TYPE, "application/json".into()),
                (MESSAGE_TYPE, "event".into()),
            ];
            encode_message(&headers, payload)
        })
        .collect()
}

/// 500 Cohere v2 chat events: message-start, content-start, 496 content-delta, content-end,
/// message-end.
fn cohere_events() -> Vec<SseEvent> {
    let event = |data: Value| sse(data["type"].as_str(), &data);
    let mut events = vec![
        event(
            json!({"id": "29f14a5a-11de-4cae-9800-25e4747408ea", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "",
                "tool_calls": [], "citations": []}}}),
        ),
        event(json!({"type": "content-start", "index": 0,
            "delta": {"message": {"content": {"type": "text", "text": ""}}}})),
    ];
    events.extend((0..CHUNKS - 4).map(|i| {
        event(json!({"type": "content-delta", "index": 0,
            "delta": {"message": {"content": {"text": format!(" word{i}")}}}}))
    }));
    events.push(event(json!({"type": "content-end", "index": 0})));
    events.push(event(
        json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
        "usage": {"billed_units": {"input_tokens": 120, "output_tokens": 496},
            "tokens": {"input_tokens": 180, "output_tokens": 496}, "cached_tokens": 0}}}),
    ));
    events
}

/// Benches `translate` (one whole stream of `CHUNKS` events, returning what it forwarded) as
/// `{pair}/{name}`.
fn bench_stream(c: &mut Criterion, pair: &str, name: &str, mut translate: impl FnMut() -> usize) {
    let mut group = c.benchmark_group(pair);
    group.throughput(Throughput::Elements(CHUNKS as u64));
    group.bench_function(name, |b| b.iter(|| black_box(translate())));
    group.finish();
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
    bench_stream(c, "anthropic_inbound", "stream_500_chunks", || {
        let mut t = MessagesStream::new();
        let mut events = 0;
        for chunk in &chunks {
            events += t.push(black_box(chunk)).unwrap().len();
        }
        events
    });
}

/// The OpenAI-compatible path: no translation, only the usage scan of each chunk.
fn passthrough(c: &mut Criterion) {
    let chunks = openai_chunks();
    let json_chunks = &chunks[..CHUNKS];
    bench_stream(c, "passthrough", "usage_scan_500_chunks", || {
        json_chunks
            .iter()
            .filter(|chunk| {
                let [usage, _choices] =
                    json_scan::top_level(black_box(chunk), ["usage", "choices"]).unwrap();
                usage.is_some()
            })
            .count()
    });
}

fn to_anthropic(c: &mut Criterion) {
    let request = openai_request();
    c.bench_function("openai_to_anthropic/request", |b| {
        b.iter(|| {
            let mut body =
                anthropic::chat_request(black_box(&request), "claude-sonnet-4-5", 4096).unwrap();
            body.stream = Some(true);
            black_box(serde_json::to_vec(&body).unwrap())
        });
    });
    let events = anthropic_events();
    bench_stream(c, "openai_to_anthropic", "stream_500_events", || {
        let mut t = anthropic_stream::ChatStream::new(1);
        let mut bytes = 0;
        for event in &events {
            for chunk in t.push_sse(black_box(event)).unwrap() {
                bytes += match chunk {
                    Chunk::Json(bytes) => bytes.len(),
                    Chunk::Done => b"[DONE]".len(),
                };
            }
        }
        t.finish().unwrap();
        bytes
    });
}

fn to_gemini(c: &mut Criterion) {
    let request = openai_request();
    c.bench_function("openai_to_gemini/request", |b| {
        b.iter(|| {
            // Serialized by the translation itself.
            black_box(gemini::chat_request(black_box(&request), gemini::Flavor::AiStudio).unwrap())
        });
    });
    let events = gemini_events();
    bench_stream(c, "openai_to_gemini", "stream_500_events", || {
        let mut t = gemini::StreamTranslator::new("chatcmpl-gemini-1", "gemini-2.5-flash", 1);
        let mut bytes = 0;
        for data in &events {
            for chunk in t.push(black_box(data)).unwrap() {
                bytes += chunk.len();
            }
        }
        for chunk in t.finish().unwrap() {
            bytes += chunk.len();
        }
        bytes
    });
}

fn to_bedrock(c: &mut Criterion) {
    let request = openai_request();
    c.bench_function("openai_to_bedrock/request", |b| {
        b.iter(|| {
            let model = "anthropic.claude-sonnet-4-5-20250929-v1:0";
            let body = bedrock::converse_request(black_box(&request), model).unwrap();
            black_box(serde_json::to_vec(&body).unwrap())
        });
    });
    let events = bedrock_events();
    bench_stream(c, "openai_to_bedrock", "stream_500_events", || {
        let mut t = bedrock::StreamTranslator::new("chatcmpl-1", "claude", 1);
        let mut bytes = 0;
        for (kind, payload) in &events {
            for chunk in t.push(kind, black_box(payload)).unwrap() {
                bytes += chunk.len();
            }
        }
        bytes
    });
    // The same, from the binary body: frame decoding and CRC checks included.
    let body = bedrock_frames(&events);
    bench_stream(c, "openai_to_bedrock", "stream_500_frames", || {
        let mut decoder = EventStreamDecoder::default();
        decoder.push(black_box(&body));
        let mut t = bedrock::StreamTranslator::new("chatcmpl-1", "claude", 1);
        let mut bytes = 0;
        while let Some(message) = decoder.next_message().unwrap() {
            let kind = message.header_str(EVENT_TYPE).unwrap_or_default();
            for chunk in t.push(kind, &message.payload).unwrap() {
                bytes += chunk.len();
            }
        }
        bytes
    });
}

fn to_cohere(c: &mut Criterion) {
    let request = openai_request();
    c.bench_function("openai_to_cohere/request", |b| {
        b.iter(|| {
            let body =
                cohere::chat_request(black_box(&request), "command-a-03-2025", true).unwrap();
            black_box(serde_json::to_vec(&body).unwrap())
        });
    });
    let events = cohere_events();
    bench_stream(c, "openai_to_cohere", "stream_500_events", || {
        let mut t = cohere::stream::ChatStream::new("command-a-03-2025", 1);
        let mut bytes = 0;
        for event in &events {
            let chunks = t
                .push(event.event.as_deref(), black_box(&event.data))
                .unwrap();
            for chunk in chunks {
                bytes += chunk.len();
            }
        }
        t.finish().unwrap();
        bytes
    });
}

criterion_group!(
    benches,
    anthropic_inbound,
    passthrough,
    to_anthropic,
    to_gemini,
    to_bedrock,
    to_cohere
);
criterion_main!(benches);

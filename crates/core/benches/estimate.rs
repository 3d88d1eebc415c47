//! What a token estimate costs on the request path: a typical chat request (system prompt,
//! three turns with a tool-call round trip, two tools), a chat request with a 1 MB prompt
//! (tokenization stops at the exact budget; the rest is parsed and extrapolated), and an
//! embeddings batch. Exact tokenization of prose at a few sizes shows what the budget buys.
//! Run with `cargo bench -p portcullis-core --bench estimate`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_core::pipeline::ApiRequest;
use portcullis_core::pipeline::parse::parse;
use portcullis_core::provider::Operation;
use portcullis_core::tokens::{EXACT_BUDGET, count_text, estimate};
use serde_json::{Value, json};

fn request(op: Operation, body: &Value) -> ApiRequest {
    parse(op, &serde_json::to_vec(body).unwrap()).unwrap()
}

/// English-like text of about `bytes` bytes, repeating a varied paragraph.
fn prose(bytes: usize) -> String {
    const PARAGRAPH: &str = "The gateway forwards each request to the provider its route names, \
        counting the tokens it expects to spend before the call and settling the count against \
        the usage the provider reports afterwards. Budgets, rate limits and spend caps all read \
        from that estimate, so it must be cheap: a few microseconds at most. ";
    let mut text = String::with_capacity(bytes + PARAGRAPH.len());
    let mut i = 0u32;
    while text.len() < bytes {
        text.push_str(PARAGRAPH);
        text.push_str(&i.to_string());
        text.push(' ');
        i += 1;
    }
    text
}

fn typical_chat() -> ApiRequest {
    request(
        Operation::Chat,
        &json!({
            "model": "bench-model", "max_tokens": 1024, "temperature": 0.7,
            "messages": [
                {"role": "system", "content": "You are a helpful travel assistant."},
                {"role": "user", "content": "I am planning a weekend in Paris. What should I pack?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C, light rain"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Here is a photo of my suitcase."},
                    {"type": "image_url", "image_url": {"url": "https://example.com/case.jpg"}}]},
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather",
                 "description": "Current weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
                {"type": "function", "function": {"name": "get_time",
                 "description": "Local time in a time zone",
                 "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}},
            ],
        }),
    )
}

fn bench(c: &mut Criterion) {
    let chat = typical_chat();
    c.bench_function("estimate/chat_typical", |b| {
        b.iter(|| estimate(black_box(&chat), 4096))
    });

    let big = prose(1 << 20);
    let big_chat = request(
        Operation::Chat,
        &json!({"model": "m", "messages": [
            {"role": "system", "content": "Summarize the document."},
            {"role": "user", "content": big}]}),
    );
    let big_completion = request(Operation::Completion, &json!({"model": "m", "prompt": big}));
    let mut group = c.benchmark_group("estimate/1MB");
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.sample_size(20);
    group.bench_function("chat", |b| b.iter(|| estimate(black_box(&big_chat), 0)));
    group.bench_function("completion", |b| {
        b.iter(|| estimate(black_box(&big_completion), 0))
    });
    group.finish();

    let inputs: Vec<String> = (0..64).map(|i| prose(200 + i * 8)).collect();
    let embeddings = request(
        Operation::Embedding,
        &json!({"model": "m", "input": inputs}),
    );
    let tokens: Vec<Vec<u32>> = (0..64).map(|i| (0..256).map(|t| t * i).collect()).collect();
    let token_batch = request(
        Operation::Embedding,
        &json!({"model": "m", "input": tokens}),
    );
    let mut group = c.benchmark_group("estimate/embeddings_64");
    group.bench_function("texts", |b| b.iter(|| estimate(black_box(&embeddings), 0)));
    group.bench_function("token_arrays", |b| {
        b.iter(|| estimate(black_box(&token_batch), 0))
    });
    group.finish();

    let mut group = c.benchmark_group("count_text");
    for kib in [1, EXACT_BUDGET / 1024, 8] {
        let text = prose(kib * 1024);
        let text = &text[..kib * 1024];
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("{kib}KiB"), |b| {
            b.iter(|| count_text(black_box(text)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The in-process hot path of one chat request, stage by stage: authenticate, parse, resolve,
//! plan and serialize the upstream body; plus the SSE decoding of a streamed answer.
//! Run with `cargo bench -p portcullis-core --bench hot_path`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use portcullis_core::auth::{ModelPattern, StoredKey, StoredKeys};
use portcullis_core::config::Config;
use portcullis_core::pipeline::{RequestCtx, parse, resolve};
use portcullis_core::provider::{Operation, client};
use portcullis_core::routing;
use portcullis_core::runtime::Runtime;
use portcullis_core::sse::SseDecoder;
use portcullis_core::virtual_key::KeyHasher;
use secrecy::ExposeSecret;

const BODY: &[u8] = br#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello! Can you tell me a short fact about benchmarks?"}],"max_tokens":32,"temperature":0}"#;

fn runtime() -> Runtime {
    let key = hex(&portcullis_core::auth::digest(b"sk-bench"));
    let yaml = format!(
        r#"
auth: {{ keys: [{{ name: bench, sha256: "{key}", models: ["gpt-*"] }}] }}
providers:
  up: {{ type: openai_compatible, base_url: "http://127.0.0.1:18080/v1", api_key: sk-x }}
  backup: {{ type: openai_compatible, preset: groq, api_key: sk-y }}
models:
  gpt-4o-mini: {{ deployments: [{{ provider: up }}, {{ provider: backup, model: llama }}] }}
"#
    );
    let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
    let http = client::build(Duration::from_secs(5)).unwrap();
    Runtime::build(&config, &http)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hot_path(c: &mut Criterion) {
    let rt = runtime();
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer sk-bench"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));

    c.bench_function("authenticate", |b| {
        b.iter(|| rt.keys.authenticate(black_box(&headers)).unwrap())
    });
    // A virtual key from the store, among 10,000 (issue 4): one lookup by public id, one
    // HMAC-SHA256 and a constant-time comparison.
    let hasher = Arc::new(KeyHasher::new(&[9u8; 32]).unwrap());
    let mut stored_keys = Vec::new();
    let mut presented = String::new();
    for i in 0..10_000 {
        let made = hasher.generate().unwrap();
        if i == 5_000 {
            presented = made.key.expose_secret().to_owned();
        }
        let key = StoredKey {
            name: Arc::from(format!("key-{i}")),
            digest: made.digest,
            previous: None,
            expires_at: None,
            models: Some(Arc::from([ModelPattern::new("gpt-*")])),
            endpoints: None,
            owner: Default::default(),
        };
        stored_keys.push((made.id, key));
    }
    let stored = StoredKeys::new(hasher, stored_keys);
    let mut vk_headers = HeaderMap::new();
    vk_headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {presented}")).unwrap(),
    );
    c.bench_function("authenticate_stored_key", |b| {
        b.iter(|| {
            rt.keys
                .authenticate_with(black_box(&vk_headers), Some(&stored))
                .unwrap()
        })
    });
    c.bench_function("authenticate_config_key_with_store", |b| {
        b.iter(|| {
            rt.keys
                .authenticate_with(black_box(&headers), Some(&stored))
                .unwrap()
        })
    });
    c.bench_function("parse", |b| {
        b.iter(|| parse::parse(Operation::Chat, black_box(BODY)).unwrap())
    });
    let principal = rt.keys.authenticate(&headers).unwrap();
    c.bench_function("resolve", |b| {
        b.iter(|| {
            resolve::resolve(&rt, &principal, black_box("gpt-4o-mini"), Operation::Chat).unwrap()
        })
    });
    let route = resolve::resolve(&rt, &principal, "gpt-4o-mini", Operation::Chat).unwrap();
    let mut request = parse::parse(Operation::Chat, BODY).unwrap();
    // The filter (capabilities: gpt-4o-mini's context window is known, so the body's size is
    // checked against it) and the strategy.
    let mut ctx = RequestCtx::new("/v1/chat/completions", "bench", None);
    ctx.body_bytes = BODY.len();
    c.bench_function("plan", |b| {
        b.iter(|| routing::plan(&rt, black_box(&route), &request, &mut ctx).unwrap())
    });
    c.bench_function("serialize_upstream", |b| {
        b.iter(|| {
            request.set_model(black_box("gpt-4o-mini-2024-07-18"));
            request.to_upstream_json(true).unwrap()
        })
    });
    c.bench_function("whole_hot_path", |b| {
        b.iter(|| {
            let p = rt.keys.authenticate(black_box(&headers)).unwrap();
            let mut req = parse::parse(Operation::Chat, black_box(BODY)).unwrap();
            let mut ctx = RequestCtx::new("/v1/chat/completions", "bench", None);
            ctx.body_bytes = BODY.len();
            let route = resolve::resolve_request(&rt, &p, &headers, &req, &mut ctx).unwrap();
            let plan = routing::plan(&rt, &route, &req, &mut ctx).unwrap();
            req.set_model(&route.deployments[plan[0]].upstream_model);
            req.to_upstream_json(true).unwrap()
        })
    });

    let text = "word ".repeat(800);
    let body = format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}","refusal":null}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":22,"completion_tokens":800,"total_tokens":822,"completion_tokens_details":{{"reasoning_tokens":0}}}},"service_tier":"default","system_fingerprint":"fp"}}"#
    );
    c.bench_function("usage_of_4kb_response", |b| {
        b.iter(|| portcullis_core::json_scan::usage(black_box(body.as_bytes())).unwrap())
    });

    let chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}],"usage":null}"#;
    let stream: String = (0..500).map(|_| format!("data: {chunk}\n\n")).collect();
    c.bench_function("sse_decode_500_chunks", |b| {
        b.iter(|| {
            let mut d = SseDecoder::default();
            let mut n = 0;
            for piece in stream.as_bytes().chunks(1400) {
                d.push(piece);
                while let Ok(Some(_)) = d.next_event() {
                    n += 1;
                }
            }
            assert_eq!(n, 500);
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hot_path
}
criterion_main!(benches);

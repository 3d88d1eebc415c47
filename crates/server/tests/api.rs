//! Wire-level tests of the real binary against a local mock upstream: pass-through, streaming,
//! every error class, timeouts, failover, client disconnects, request ids and log hygiene.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{
    BIN, chat_body, client, config, error_of, eventually, expect_error, post, single_upstream,
    sse_data,
};
use portcullis_testkit::upstream::{chat_chunk, openai_reply};
use portcullis_testkit::{GatewayProcess, LIMITED_KEY, MockUpstream, Reply, SseEnd, TEST_KEY};
use serde_json::{Value, json};

async fn setup() -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::openai().await.unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    (upstream, gw)
}

#[tokio::test]
async fn chat_passes_unknown_fields_through_and_keeps_upstream_fields() {
    let (upstream, gw) = setup().await;
    let mut body = chat_body("gpt-test");
    body["temperature"] = json!(0.3);
    body["logit_bias"] = json!({"50256": -100});
    body["vendor_flag"] = json!({"nested": [1, 2, 3]});
    body["messages"][0]["name"] = json!("alice");
    let response = post(gw.url("/v1/chat/completions"), body)
        .header("x-request-id", "client-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(answer["x_vendor_extension"], json!({"kept": true}));
    assert_eq!(answer["system_fingerprint"], "fp_mock");
    assert_eq!(answer["model"], "upstream-model");

    let sent = &upstream.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "upstream-model");
    assert_eq!(sent.body["temperature"], json!(0.3));
    assert_eq!(sent.body["logit_bias"], json!({"50256": -100}));
    assert_eq!(sent.body["vendor_flag"], json!({"nested": [1, 2, 3]}));
    assert_eq!(sent.body["messages"][0]["name"], "alice");
    assert!(sent.body.get("stream_options").is_none());
    assert_eq!(
        sent.headers["authorization"],
        "Bearer sk-upstream-secret-0001"
    );
    assert!(
        !sent.headers.contains_key("x-request-id"),
        "client headers are not forwarded"
    );

    let line = gw.access_lines(1).await.swap_remove(0);
    assert_eq!(line["request_id"], "client-id-42");
    assert_eq!(line["gen_ai.usage.input_tokens"], 10);
    assert_eq!(line["gen_ai.usage.output_tokens"], 2);
}

#[tokio::test]
async fn streams_hide_the_usage_chunk_unless_asked_and_always_request_usage() {
    let (upstream, gw) = setup().await;
    let mut body = chat_body("gpt-test");
    body["stream"] = json!(true);
    let response = post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks.len(), 4, "role, two content chunks, finish");
    assert!(chunks.iter().all(|c| c["usage"].is_null()));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello world");
    assert_eq!(
        upstream.requests()[0].body["stream_options"]["include_usage"],
        true
    );

    body["stream_options"] = json!({"include_usage": true});
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    let events = sse_data(&response.text().await.unwrap());
    let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 12);
    assert_eq!(usage["choices"], json!([]));

    let lines = gw.access_lines(2).await;
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(line["stream"], true);
        assert_eq!(
            line["gen_ai.usage.output_tokens"], 2,
            "usage known either way"
        );
    }
}

#[tokio::test]
async fn streams_are_forwarded_as_they_arrive_and_a_leaving_client_cancels_upstream() {
    // The upstream sends two events, then keeps the stream open forever: a gateway that
    // buffered whole streams would deliver nothing.
    let upstream = MockUpstream::start(|r| {
        let end = if r.body["stream"] == json!(true) {
            SseEnd::Hang
        } else {
            SseEnd::Close
        };
        Reply::chat_stream(&["first", "second"], end)
    })
    .await
    .unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    let mut body = chat_body("gpt-test");
    body["stream"] = json!(true);
    let mut response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    let mut received = String::new();
    while !received.contains("second") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("chunks arrive while the upstream stream is still open")
            .unwrap()
            .unwrap();
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(received.starts_with("data: {"));
    drop(response);
    assert!(
        eventually(|| upstream.abandoned() == 1).await,
        "upstream stream cancelled"
    );
    let line = gw.access_lines(1).await.swap_remove(0);
    assert_eq!(line["http.status"], 499);
    assert_eq!(line["outcome"], "client_gone");
}

#[tokio::test]
async fn a_client_leaving_a_pending_request_cancels_the_upstream_call() {
    let upstream = MockUpstream::start(|_| Reply::Hang).await.unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    let result = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    assert!(
        eventually(|| upstream.abandoned() == 1).await,
        "upstream call cancelled"
    );
}

#[tokio::test]
async fn completions_and_embeddings_pass_through() {
    let (upstream, gw) = setup().await;
    let response = post(
        gw.url("/v1/completions"),
        json!({"model": "gpt-test", "prompt": "Once", "best_of": 2}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["text"], "Hello world");

    let response = post(
        gw.url("/v1/completions"),
        json!({"model": "gpt-test", "prompt": "Once", "stream": true}),
    )
    .send()
    .await
    .unwrap();
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(
        events.len(),
        3,
        "two chunks and [DONE], usage chunk hidden: {events:?}"
    );

    let response = post(
        gw.url("/v1/embeddings"),
        json!({"model": "embed-test", "input": ["a", "b"], "dimensions": 3}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    let sent = upstream.requests();
    assert_eq!(sent[0].body["best_of"], 2);
    assert_eq!(sent[2].path, "/v1/embeddings");
    assert_eq!(sent[2].body["model"], "upstream-embed");
    assert_eq!(sent[2].body["dimensions"], 3);
}

#[tokio::test]
async fn models_lists_what_the_key_may_use() {
    let (_upstream, gw) = setup().await;
    let list = |key: &'static str| {
        let url = gw.url("/v1/models");
        async move {
            let v: Value = client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(TEST_KEY).await,
        ["embed-test", "gpt-test", "other-model"]
    );
    assert_eq!(list(LIMITED_KEY).await, ["gpt-test"]);
    let one: Value = client()
        .get(gw.url("/v1/models/gpt-test"))
        .bearer_auth(LIMITED_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        one,
        json!({"id": "gpt-test", "object": "model", "created": one["created"], "owned_by": "portcullis"})
    );
    let hidden = client()
        .get(gw.url("/v1/models/embed-test"))
        .bearer_auth(LIMITED_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(hidden).await.0, 404);
}

#[tokio::test]
async fn authentication_errors() {
    let (upstream, gw) = setup().await;
    let url = gw.url("/v1/chat/completions");
    let missing = client()
        .post(&url)
        .json(&chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(missing).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    let wrong = client()
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(wrong).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    for header in ["api-key", "x-api-key"] {
        let ok = client()
            .post(&url)
            .header(header, TEST_KEY)
            .json(&chat_body("gpt-test"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{header}");
    }
    let forbidden = client()
        .post(&url)
        .bearer_auth(LIMITED_KEY)
        .json(&chat_body("other-model"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(forbidden).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (403, Some("model"))
    );
    assert_eq!(
        upstream.count(),
        2,
        "rejected requests never reach the upstream"
    );
}

#[tokio::test]
async fn request_errors_have_the_right_status_and_shape() {
    let (upstream, gw) = setup().await;
    let chat = gw.url("/v1/chat/completions");
    let raw = |body: &'static str| {
        client()
            .post(&chat)
            .bearer_auth(TEST_KEY)
            .header("content-type", "application/json")
            .body(body)
    };
    expect_error(raw("{not json"), 400, "invalid_json").await;
    expect_error(raw(r#"{"model":"gpt-test"}"#), 400, "invalid_request").await;
    let secret = raw(r#"{"model":"gpt-test","messages":[],"n":"SECRET-VALUE"}"#);
    let (s, b) = error_of(secret.send().await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(!b.to_string().contains("SECRET-VALUE"));
    expect_error(
        post(chat.clone(), chat_body("no-such-model")),
        404,
        "model_not_found",
    )
    .await;
    let (s, _) = error_of(client().get(gw.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(s, 404);
    let (s, _) = error_of(
        client()
            .get(&chat)
            .bearer_auth(TEST_KEY)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 405);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_declared_or_streamed() {
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = single_upstream(&upstream.base_url()).replace(
        "logging: { format: json, level: info }",
        "logging: { format: json, level: info }\nserver: { max_body_bytes: 1024 }",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let big =
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x".repeat(2048)}]});
    let declared = post(gw.url("/v1/chat/completions"), big.clone());
    expect_error(declared, 413, "body_too_large").await;
    let bytes = serde_json::to_vec(&big).unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(256).map(|c| Ok(c.to_vec())).collect();
    let streamed = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let (s, _) = error_of(streamed).await;
    assert_eq!(s, 413);
    let small = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    assert_eq!(upstream.count(), 1);
}

/// Answers every request with `reply`, for upstream error tests.
async fn failing(reply: Reply) -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::start(move |_| reply.clone()).await.unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    (upstream, gw)
}

#[tokio::test]
async fn upstream_errors_map_to_gateway_statuses() {
    let cases = [
        (
            Reply::error(400, "temperature is out of range"),
            400,
            "upstream_bad_request",
        ),
        (Reply::error(422, "bad field"), 422, "upstream_bad_request"),
        (Reply::error(429, "slow down"), 429, "upstream_rate_limited"),
        (Reply::error(500, "boom"), 502, "upstream_error"),
        (Reply::error(503, "overloaded"), 503, "upstream_error"),
        (
            Reply::error(401, "Incorrect API key provided: sk-upstream-secret-0001"),
            502,
            "upstream_auth_failed",
        ),
        (
            Reply::Raw {
                status: 502,
                content_type: "text/html",
                body: "<html>bad gateway</html>".into(),
            },
            502,
            "upstream_error",
        ),
        (
            Reply::Raw {
                status: 200,
                content_type: "application/json",
                body: "not json".into(),
            },
            502,
            "upstream_invalid_response",
        ),
    ];
    for (reply, status, code) in cases {
        let (upstream, gw) = failing(reply).await;
        let request = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"));
        let body = expect_error(request, status, code).await;
        assert!(!body.to_string().contains("sk-upstream-secret"), "{body}");
        assert_eq!(upstream.count(), 1);
    }
    let (_upstream, gw) = failing(Reply::error(400, "temperature is out of range")).await;
    let response = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    let (_, body) = error_of(response).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("temperature is out of range")
    );
}

fn with_timeouts(base_url: &str, timeouts: &str) -> String {
    config(
        &format!(r#"  up: {{ type: openai_compatible, base_url: "{base_url}" }}"#),
        &format!("  gpt-test: {{ deployments: [{{ provider: up }}], timeouts: {timeouts} }}"),
    )
}

#[tokio::test]
async fn attempt_first_byte_and_idle_timeouts() {
    let upstream = MockUpstream::start(|r| {
        if r.body["stream"] == json!(true) {
            if r.body["messages"][0]["content"] == "stall" {
                return Reply::Sse {
                    events: vec![chat_chunk("m", json!({"content": "one"}), None, true)],
                    delay: Duration::ZERO,
                    end: SseEnd::Hang,
                };
            }
            return Reply::Hang;
        }
        openai_reply(r).after(Duration::from_secs(30))
    })
    .await
    .unwrap();
    let yaml = with_timeouts(
        &upstream.base_url(),
        "{ attempt: 300ms, first_byte: 300ms, stream_idle: 300ms, total: 5s }",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let url = gw.url("/v1/chat/completions");
    expect_error(
        post(url.clone(), chat_body("gpt-test")),
        504,
        "upstream_timeout",
    )
    .await;

    let mut body = chat_body("gpt-test");
    body["stream"] = json!(true);
    expect_error(
        post(url.clone(), body.clone()),
        504,
        "upstream_first_byte_timeout",
    )
    .await;

    body["messages"][0]["content"] = json!("stall");
    let response = post(url, body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    let error: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(error["error"]["code"], "upstream_stream_idle");
    assert!(eventually(|| upstream.abandoned() >= 2).await);
}

#[tokio::test]
async fn truncated_streams_end_with_an_error_event() {
    let upstream = MockUpstream::start(|_| Reply::chat_stream(&["a", "b"], SseEnd::Abort))
        .await
        .unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    let mut body = chat_body("gpt-test");
    body["stream"] = json!(true);
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    let error: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(error["error"]["code"], "upstream_stream_broken");
    let line = gw.access_lines(1).await.swap_remove(0);
    assert_eq!(
        line["http.status"], 200,
        "the status was sent before the break"
    );
    assert_eq!(line["outcome"], "failed");
    assert_eq!(line["error.kind"], "upstream_stream_broken");
    assert_eq!(line["error.fault"], "upstream");
}

#[tokio::test]
async fn failover_on_connection_errors_5xx_and_429_but_not_on_bad_requests() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let broken = MockUpstream::start(|_| Reply::error(500, "boom"))
        .await
        .unwrap();
    let limited = MockUpstream::start(|r| {
        if r.body["messages"][0]["content"] == "invalid" {
            Reply::error(400, "invalid request")
        } else {
            Reply::error(429, "rate limited")
        }
    })
    .await
    .unwrap();
    let good = MockUpstream::openai().await.unwrap();
    let yaml = config(
        &format!(
            r#"  dead: {{ type: openai_compatible, base_url: "{dead_url}" }}
  broken: {{ type: openai_compatible, base_url: "{}" }}
  limited: {{ type: openai_compatible, base_url: "{}" }}
  good: {{ type: openai_compatible, base_url: "{}" }}"#,
            broken.base_url(),
            limited.base_url(),
            good.base_url()
        ),
        r#"  gpt-test:
    deployments: [{ provider: dead }, { provider: broken }, { provider: limited }, { provider: good, model: good-model }]"#,
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let response = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Which deployment served, after how many attempts: names, never URLs or keys.
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-portcullis-deployment"), "good/good-model");
    assert_eq!(header("x-portcullis-attempts"), "4");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "good-model");
    assert_eq!((broken.count(), limited.count(), good.count()), (1, 1, 1));

    let mut stream = chat_body("gpt-test");
    stream["stream"] = json!(true);
    let response = post(gw.url("/v1/chat/completions"), stream)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-portcullis-attempts"], "4");
    assert_eq!(
        response.headers()["x-portcullis-deployment"],
        "good/good-model"
    );
    assert!(response.text().await.unwrap().contains("Hello"));
    assert_eq!(good.count(), 2, "streams fail over before their first byte");

    let mut invalid = chat_body("gpt-test");
    invalid["messages"][0]["content"] = json!("invalid");
    let response = post(gw.url("/v1/chat/completions"), invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await.0, 400);
    assert_eq!(
        good.count(),
        2,
        "a request the upstream rejects is not retried elsewhere"
    );

    let first = gw.access_lines(3).await.swap_remove(0);
    assert_eq!(first["attempts"], 4);
    assert_eq!(first["gen_ai.provider.name"], "good");
}

#[tokio::test]
async fn all_deployments_failing_reports_the_last_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1", dead.local_addr().unwrap());
    drop(dead);
    let gw = GatewayProcess::start(BIN, &single_upstream(&dead_url))
        .await
        .unwrap();
    let response = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    let (s, b) = error_of(response).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (502, Some("upstream_unreachable"))
    );
    assert!(
        !b.to_string().contains("127.0.0.1"),
        "no internal addresses in errors: {b}"
    );
}

#[tokio::test]
async fn logs_hold_no_content_keys_or_secrets() {
    let (_upstream, gw) = setup().await;
    let canary = "CANARY-7f3a91-content";
    let mut body = json!({"model": "gpt-test", "messages": [{"role": "user", "content": canary}]});
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap();
    body["stream"] = json!(true);
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body["model"] = json!(canary);
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap();
    body["model"] = json!("gpt-test");
    body["max_tokens"] = json!(canary);
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap();
    post(
        gw.url("/v1/embeddings"),
        json!({"model": "embed-test", "input": canary}),
    )
    .send()
    .await
    .unwrap();
    for stream in [false, true] {
        let body = json!({"model": "gpt-test", "prompt": canary, "stream": stream});
        post(gw.url("/v1/completions"), body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    // A key that is refused, and a body that is not JSON, both carrying the canary.
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(canary)
        .json(&body)
        .send()
        .await
        .unwrap();
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .body(format!("{{\"model\": \"{canary}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gw.access_lines(9).await.len(), 9);
    let logs = gw.logs().join("\n");
    for secret in [
        "CANARY-7f3a91",
        TEST_KEY,
        "sk-upstream-secret-0001",
        "Hello world",
    ] {
        // The unknown-model request names the model the client sent: models are names, and
        // here the canary stands in one, so only that field may carry it.
        let hits: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret) && !l.contains(r#""gen_ai.request.model":"CANARY"#))
            .collect();
        assert!(hits.is_empty(), "{secret} leaked into logs: {hits:?}");
    }
    for line in gw.json_logs() {
        if line["message"] != "listening"
            && line["message"] != "no API keys are configured: every API request will be rejected"
        {
            assert!(
                line["request_id"].is_string() || line["span"]["request_id"].is_string(),
                "every request log line has the request id: {line}"
            );
        }
    }
}

#[tokio::test]
async fn a_failing_deployment_is_ejected_and_skipped_and_the_least_bad_is_tried_when_all_are() {
    let broken = MockUpstream::start(|_| Reply::error(502, "bad gateway"))
        .await
        .unwrap();
    let good = MockUpstream::openai().await.unwrap();
    let yaml = config(
        &format!(
            r#"  broken: {{ type: openai_compatible, base_url: "{}" }}
  good: {{ type: openai_compatible, base_url: "{}" }}"#,
            broken.base_url(),
            good.base_url()
        ),
        r#"  gpt-test: { deployments: [{ provider: broken }, { provider: good }] }
  only-broken: { deployments: [{ provider: broken, model: alone }] }
  fail-fast:
    deployments: [{ provider: broken, model: fast }]
    health: { consecutive_failures: 2, base_cooldown: 1m, when_all_ejected: fail }"#,
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let attempts = |r: &reqwest::Response| {
        r.headers()["x-portcullis-attempts"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    // Five failures in a row eject `broken` (for 5 s): until then each request tries it first.
    for _ in 0..5 {
        let r = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(attempts(&r), "2");
    }
    assert_eq!(broken.count(), 5);
    let r = post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    assert_eq!(attempts(&r), "1", "the ejected deployment is skipped");
    assert_eq!(broken.count(), 5);
    // Health is per deployment: `only-broken` (another model on the same provider) is its own,
    // and when its only deployment is ejected it is still tried rather than failing outright.
    for _ in 0..7 {
        let r = post(gw.url("/v1/chat/completions"), chat_body("only-broken"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
    }
    assert_eq!(broken.count(), 12);
    // With `when_all_ejected: fail` (and 2 failures to eject), the third request is answered
    // at once without reaching the upstream.
    for _ in 0..2 {
        let r = post(gw.url("/v1/chat/completions"), chat_body("fail-fast"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
    }
    let r = post(gw.url("/v1/chat/completions"), chat_body("fail-fast"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 503);
    assert!(body.to_string().contains("cooling down"), "{body}");
    assert_eq!(broken.count(), 14);
}

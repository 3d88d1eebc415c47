//! Anthropic's Messages API inbound (`/v1/messages`, `/v1/messages/count_tokens`) on the real
//! binary, served by an OpenAI-compatible upstream through translation: the Anthropic error
//! shape on every failure, a broken stream ending in an Anthropic `error` event, usage reaching
//! the access log, and count_tokens estimated locally.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use common::{BIN, client, single_upstream};
use portcullis_testkit::upstream::openai_reply;
use portcullis_testkit::{GatewayProcess, MockUpstream, Reply, SseEnd, TEST_KEY};
use serde_json::{Value, json};

async fn setup(
    reply: impl Fn(&portcullis_testkit::Recorded) -> Reply + Send + Sync + 'static,
) -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::start(reply).await.unwrap();
    let gw = GatewayProcess::start(BIN, &single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    (upstream, gw)
}

fn messages_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]})
}

/// Sends `body` to `path` with the Anthropic SDK's headers.
async fn send(gw: &GatewayProcess, path: &str, key: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = client()
        .post(gw.url(path))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap()
}

/// Checks an Anthropic error answer and returns its `error.type`.
async fn anthropic_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_failure_uses_the_anthropic_error_shape() {
    let (_up, gw) = setup(openai_reply).await;
    let ok = messages_body("gpt-test").to_string();
    let unknown_model = messages_body("nope").to_string();
    let cases: Vec<(Option<&str>, &str, &str, u16, &str)> = vec![
        (None, "/v1/messages", &ok, 401, "authentication_error"),
        (
            Some("sk-wrong"),
            "/v1/messages",
            &ok,
            401,
            "authentication_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages",
            "{not json",
            400,
            "invalid_request_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages",
            r#"{"model":"gpt-test","messages":[]}"#,
            400,
            "invalid_request_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages",
            r#"{"model":"gpt-test","max_tokens":5,"messages":[]}"#,
            400,
            "invalid_request_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages",
            &unknown_model,
            404,
            "not_found_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages/batches",
            &ok,
            404,
            "not_found_error",
        ),
        (
            Some(TEST_KEY),
            "/v1/messages/count_tokens",
            r#"{"model":"gpt-test"}"#,
            400,
            "invalid_request_error",
        ),
    ];
    for (key, path, body, status, kind) in cases {
        let got = anthropic_error(send(&gw, path, key, body).await, status).await;
        assert_eq!(got, kind, "{path} {body}");
    }
    // A server tool cannot be run by another provider: refused before any upstream call.
    let mut body = messages_body("gpt-test");
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let got = anthropic_error(
        send(&gw, "/v1/messages", Some(TEST_KEY), &body.to_string()).await,
        400,
    )
    .await;
    assert_eq!(got, "invalid_request_error");
    // GET on the route: 405, still Anthropic-shaped.
    let response = client().get(gw.url("/v1/messages")).send().await.unwrap();
    assert_eq!(
        anthropic_error(response, 405).await,
        "invalid_request_error"
    );
}

#[tokio::test]
async fn upstream_failures_map_to_anthropic_types() {
    let (_up, gw) = setup(|r| {
        let status = match r.body["messages"][0]["content"].as_str() {
            Some("rate") => 429,
            Some("overloaded") => 503,
            Some("long") => {
                return Reply::json(
                    400,
                    json!({"error": {"message": "maximum context length exceeded", "type": "invalid_request_error",
                        "param": "messages", "code": "context_length_exceeded"}}),
                );
            }
            _ => 500,
        };
        Reply::error(status, "upstream says no")
    })
    .await;
    for (content, status, kind) in [
        ("rate", 429, "rate_limit_error"),
        ("overloaded", 503, "overloaded_error"),
        ("long", 400, "invalid_request_error"),
        ("other", 502, "api_error"),
    ] {
        let mut body = messages_body("gpt-test");
        body["messages"][0]["content"] = json!(content);
        let response = send(&gw, "/v1/messages", Some(TEST_KEY), &body.to_string()).await;
        assert_eq!(anthropic_error(response, status).await, kind, "{content}");
    }
}

#[tokio::test]
async fn a_broken_stream_ends_with_an_anthropic_error_event() {
    let (_up, gw) = setup(|_| Reply::chat_stream(&["Hel", "lo"], SseEnd::Abort)).await;
    let mut body = messages_body("gpt-test");
    body["stream"] = json!(true);
    let response = send(&gw, "/v1/messages", Some(TEST_KEY), &body.to_string()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(
        events[0].starts_with("event: message_start\ndata: "),
        "{text}"
    );
    let last = events.last().unwrap();
    assert!(last.starts_with("event: error\ndata: "), "{text}");
    let payload: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(payload["type"], "error");
    assert_eq!(payload["error"]["type"], "api_error");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn streamed_usage_reaches_the_access_log_and_count_tokens_estimates() {
    let (upstream, gw) = setup(openai_reply).await;
    let mut body = messages_body("gpt-test");
    body["stream"] = json!(true);
    let response = send(&gw, "/v1/messages", Some(TEST_KEY), &body.to_string()).await;
    let text = response.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    // The upstream got an OpenAI chat request for the deployment's model, asking for usage.
    let seen = &upstream.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body["model"], "upstream-model");
    assert_eq!(seen.body["stream_options"]["include_usage"], true);
    assert!(
        !seen.headers.contains_key("x-api-key") && !seen.headers.contains_key("anthropic-version")
    );

    let count = send(
        &gw,
        "/v1/messages/count_tokens",
        Some(TEST_KEY),
        &json!({"model": "gpt-test", "messages": [{"role": "user", "content": "Hello there, how are you?"}]})
            .to_string(),
    )
    .await;
    assert_eq!(count.status(), 200);
    let count: Value = count.json().await.unwrap();
    assert!(
        count["input_tokens"].as_u64().is_some_and(|n| n > 5),
        "{count}"
    );
    assert_eq!(
        upstream.count(),
        1,
        "count_tokens is estimated without an upstream call"
    );

    let lines = gw.access_lines(2).await;
    let stream_line = lines
        .iter()
        .find(|l| l["endpoint"] == "/v1/messages")
        .unwrap();
    assert_eq!(
        stream_line["gen_ai.usage.input_tokens"], 10,
        "{stream_line}"
    );
    assert_eq!(
        stream_line["gen_ai.usage.output_tokens"], 2,
        "{stream_line}"
    );
    assert_eq!(stream_line["outcome"], "completed", "{stream_line}");
}

#[tokio::test]
async fn the_quickstart_serves_anthropic_clients_from_the_mock_provider() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    ))
    .unwrap()
    .replace("format: human", "format: json");
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let key = Some("sk-portcullis-demo");
    let response = send(&gw, "/v1/messages", key, &messages_body("demo").to_string()).await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message", "{message}");
    assert_eq!(message["stop_reason"], "end_turn", "{message}");
    let text = message["content"][0]["text"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 24, "{message}");

    let mut body = messages_body("demo");
    body["stream"] = json!(true);
    let stream = send(&gw, "/v1/messages", key, &body.to_string())
        .await
        .text()
        .await
        .unwrap();
    let streamed: String = stream
        .split("\n\n")
        .filter_map(|e| e.split_once("data: ").map(|(_, d)| d))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["delta"]["type"] == "text_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(streamed.split_whitespace().count(), 24, "{stream}");
    assert!(
        stream
            .trim_end()
            .ends_with(r#"data: {"type":"message_stop"}"#),
        "{stream}"
    );
}

//! Resilience of the real binary against a chaos upstream (`portcullis_testkit::chaos`): one
//! test per failure the upstream can script (error statuses, resets, hangs, delays, streams cut
//! before or after their first event, malformed and slow streams), each asserting what the
//! client sees. Model `gpt-test` has two deployments in priority order: `chaos/flaky` (the chaos
//! upstream) first, then `steady/steady-model` (a healthy mock). Timeouts are short, and chosen
//! with wide margins: the tests assert outcomes, never speed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{BIN, chat_body, config, error_of, eventually, post, sse_data};
use portcullis_testkit::{Chaos, ChaosUpstream, GatewayProcess, MockUpstream};
use serde_json::{Value, json};

const STEADY: &str = "steady/steady-model";
const FLAKY: &str = "chaos/flaky";

/// Passive health out of the way: these tests look at one request at a time.
const NO_EJECTION: &str = "health: { consecutive_failures: 100, window: 0 }";

/// Timeouts for tests about something else: a behaviour that misbehaves fails the test in
/// seconds rather than hanging it for the defaults' minutes.
const GUARD_TIMEOUTS: &str =
    "timeouts: { attempt: 10s, first_byte: 10s, stream_idle: 10s, total: 30s }";

/// The model's own settings, or [`GUARD_TIMEOUTS`].
fn or_guard(settings: &str) -> &str {
    if settings.is_empty() {
        GUARD_TIMEOUTS
    } else {
        settings
    }
}

/// A gateway whose `gpt-test` tries `chaos` first, then a healthy upstream, with `settings`
/// (the model's `timeouts`, ...) added to the model.
async fn two_deployments(chaos: &ChaosUpstream, settings: &str) -> (MockUpstream, GatewayProcess) {
    let steady = MockUpstream::openai().await.unwrap();
    let yaml = config(
        &format!(
            r#"  chaos: {{ type: openai_compatible, base_url: "{}", api_key: "sk-chaos-secret-0001" }}
  steady: {{ type: openai_compatible, base_url: "{}" }}"#,
            chaos.base_url(),
            steady.base_url()
        ),
        &format!(
            r#"  gpt-test:
    deployments: [{{ provider: chaos, model: flaky }}, {{ provider: steady, model: steady-model }}]
    {NO_EJECTION}
    {}"#,
            or_guard(settings)
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (steady, gw)
}

/// A gateway whose `gpt-test` has the chaos upstream as its only deployment.
async fn one_deployment(chaos: &ChaosUpstream, settings: &str) -> GatewayProcess {
    let yaml = config(
        &format!(
            r#"  chaos: {{ type: openai_compatible, base_url: "{}", api_key: "sk-chaos-secret-0001" }}"#,
            chaos.base_url()
        ),
        &format!(
            r#"  gpt-test:
    deployments: [{{ provider: chaos, model: flaky }}]
    {NO_EJECTION}
    {}"#,
            or_guard(settings)
        ),
    );
    GatewayProcess::start(BIN, &yaml).await.unwrap()
}

async fn chat(gw: &GatewayProcess) -> reqwest::Response {
    post(gw.url("/v1/chat/completions"), chat_body("gpt-test"))
        .send()
        .await
        .unwrap()
}

async fn chat_stream(gw: &GatewayProcess) -> reqwest::Response {
    let mut body = chat_body("gpt-test");
    body["stream"] = json!(true);
    post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap()
}

/// The deployment that served and the attempts it took, from the response headers.
fn served_by(response: &reqwest::Response) -> (String, String) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    (
        header("x-portcullis-deployment"),
        header("x-portcullis-attempts"),
    )
}

/// Checks a successful JSON answer came from `deployment` after `attempts`.
async fn assert_served(response: reqwest::Response, deployment: &str, attempts: &str) {
    assert_eq!(response.status(), 200);
    assert_eq!(
        served_by(&response),
        (deployment.to_owned(), attempts.to_owned())
    );
    let body: Value = response.json().await.unwrap();
    let model = deployment.split_once('/').unwrap().1;
    assert_eq!(body["model"], model, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello world");
}

/// The `data:` payloads of a streamed answer, after checking its status and who served it.
async fn stream_events(
    response: reqwest::Response,
    deployment: &str,
    attempts: &str,
) -> Vec<String> {
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "a stream"
    );
    assert_eq!(
        served_by(&response),
        (deployment.to_owned(), attempts.to_owned())
    );
    sse_data(&response.text().await.unwrap())
}

/// Checks the events of a complete stream: chunks, then `[DONE]`, and no error.
fn assert_complete(events: &[String]) {
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    for event in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk", "{event}");
    }
}

/// Checks that a stream is `chunks` content chunks and then one error event with `code`, in
/// OpenAI's error shape, with nothing after it (no `[DONE]`).
fn assert_ends_with_error(events: &[String], chunks: usize, code: &str) {
    assert_eq!(events.len(), chunks + 1, "{events:?}");
    for (i, event) in events[..chunks].iter().enumerate() {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_eq!(
            chunk["choices"][0]["delta"]["content"],
            format!("w{i} "),
            "the chunks before the failure arrive as sent: {event}"
        );
    }
    let error: Value = serde_json::from_str(&events[chunks]).unwrap();
    assert_eq!(error["error"]["code"], code, "{error}");
    for field in ["message", "type", "param"] {
        assert!(error["error"].get(field).is_some(), "{error}");
    }
    assert_no_internals(&error);
}

/// An error a client sees names no upstream address and no credential.
fn assert_no_internals(error: &Value) {
    let text = error.to_string();
    for internal in ["127.0.0.1", "http://", "sk-chaos-secret"] {
        assert!(!text.contains(internal), "{internal} in {text}");
    }
}

/// The first access line (waiting for it).
async fn access_line(gw: &GatewayProcess) -> Value {
    gw.access_lines(1).await.swap_remove(0)
}

#[tokio::test]
async fn error_statuses_fail_over_to_the_next_deployment() {
    // Without `Retry-After`: with one, the deployment would be skipped for that long
    // (`resilience.rs` tests that).
    let script = [
        Chaos::status(500),
        Chaos::status(502),
        Chaos::status(503),
        Chaos::status(429),
        Chaos::status(404),
    ];
    let chaos = ChaosUpstream::start(script.clone()).await.unwrap();
    let (steady, gw) = two_deployments(&chaos, "").await;
    for _ in &script {
        assert_served(chat(&gw).await, STEADY, "2").await;
    }
    assert_eq!(steady.count(), script.len());
    // The script is spent: the chaos upstream answers well, and first.
    assert_served(chat(&gw).await, FLAKY, "1").await;
    let mut served = script.to_vec();
    served.push(Chaos::Healthy);
    assert_eq!(chaos.served(), served);
    assert_eq!(steady.count(), script.len());
}

#[tokio::test]
async fn a_client_error_is_relayed_and_not_retried() {
    let chaos = ChaosUpstream::start([Chaos::status(400)]).await.unwrap();
    let (steady, gw) = two_deployments(&chaos, "").await;
    let (status, body) = error_of(chat(&gw).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chaos upstream: HTTP 400"),
        "the upstream's message is relayed: {body}"
    );
    assert_no_internals(&body);
    assert_eq!(
        steady.count(),
        0,
        "a request the upstream rejects stays rejected"
    );
    let line = access_line(&gw).await;
    assert_eq!(line["attempts"], 1, "{line}");
    assert_eq!(line["error.fault"], "client", "{line}");
}

#[tokio::test]
async fn a_reset_connection_fails_over_to_the_next_deployment() {
    let chaos = ChaosUpstream::start([Chaos::Reset, Chaos::Reset])
        .await
        .unwrap();
    let (steady, gw) = two_deployments(&chaos, "").await;
    assert_served(chat(&gw).await, STEADY, "2").await;
    let events = stream_events(chat_stream(&gw).await, STEADY, "2").await;
    assert_complete(&events);
    assert_eq!((chaos.count(), steady.count()), (2, 2));
    assert_eq!(chaos.abandoned(), 0, "reset at once, not timed out");
}

#[tokio::test]
async fn a_reset_on_the_only_deployment_is_a_clean_502() {
    let chaos = ChaosUpstream::start([Chaos::Reset]).await.unwrap();
    let gw = one_deployment(&chaos, "").await;
    let (status, body) = error_of(chat(&gw).await).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unreachable", "{body}");
    assert_no_internals(&body);
    // The gateway is unharmed: the next request (the script is spent) is served.
    assert_served(chat(&gw).await, FLAKY, "1").await;
    let line = access_line(&gw).await;
    assert_eq!(line["http.status"], 502, "{line}");
    assert_eq!(line["error.fault"], "upstream", "{line}");
    let logs = gw.logs().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test]
async fn a_hang_past_the_attempt_timeout_fails_over() {
    let chaos = ChaosUpstream::start([Chaos::Hang, Chaos::Hang])
        .await
        .unwrap();
    let (steady, gw) = two_deployments(
        &chaos,
        "timeouts: { attempt: 500ms, first_byte: 500ms, total: 20s }",
    )
    .await;
    assert_served(chat(&gw).await, STEADY, "2").await;
    let events = stream_events(chat_stream(&gw).await, STEADY, "2").await;
    assert_complete(&events);
    assert_eq!((chaos.count(), steady.count()), (2, 2));
    assert!(
        eventually(|| chaos.abandoned() == 2).await,
        "the gateway hangs up on the attempts it gave up"
    );
}

#[tokio::test]
async fn a_delay_within_the_attempt_timeout_is_waited_for_and_one_past_it_fails_over() {
    let chaos = ChaosUpstream::start([
        Chaos::Healthy.after(Duration::from_secs(5)),
        Chaos::Healthy.after(Duration::from_millis(20)),
    ])
    .await
    .unwrap();
    let (steady, gw) = two_deployments(&chaos, "timeouts: { attempt: 1s, total: 20s }").await;
    assert_served(chat(&gw).await, STEADY, "2").await;
    assert_served(chat(&gw).await, FLAKY, "1").await;
    assert_eq!((chaos.count(), steady.count()), (2, 1));
}

/// One stream through a gateway whose first deployment is a chaos upstream answering with
/// `behaviour` (model settings as [`two_deployments`] takes them).
async fn stream_with(
    behaviour: Chaos,
    settings: &str,
) -> (
    ChaosUpstream,
    MockUpstream,
    GatewayProcess,
    reqwest::Response,
) {
    let chaos = ChaosUpstream::start([behaviour]).await.unwrap();
    let (steady, gw) = two_deployments(&chaos, settings).await;
    let response = chat_stream(&gw).await;
    (chaos, steady, gw, response)
}

/// Checks that a stream the chaos upstream began is `chunks` chunks and then an error event
/// with `code`, with no fallback, and that it is logged as a failure after a 200.
async fn assert_failed_mid_stream(
    response: reqwest::Response,
    (steady, gw): (&MockUpstream, &GatewayProcess),
    chunks: usize,
    code: &str,
) {
    let events = stream_events(response, FLAKY, "1").await;
    assert_ends_with_error(&events, chunks, code);
    assert_eq!(
        steady.count(),
        0,
        "no fallback once the stream has reached the client"
    );
    let line = access_line(gw).await;
    assert_eq!(
        line["http.status"], 200,
        "the status went before the failure"
    );
    assert_eq!(line["outcome"], "failed", "{line}");
    assert_eq!(line["error.kind"], code, "{line}");
}

#[tokio::test]
async fn a_stream_cut_before_its_first_event_fails_over() {
    let (chaos, steady, _gw, response) = stream_with(Chaos::TruncatedStream(0), "").await;
    let events = stream_events(response, STEADY, "2").await;
    assert_complete(&events);
    assert!(events.iter().any(|e| e.contains("Hello")), "{events:?}");
    assert_eq!((chaos.count(), steady.count()), (1, 1));
}

#[tokio::test]
async fn a_stream_cut_after_its_first_event_ends_with_an_error_event() {
    let (_chaos, steady, gw, response) = stream_with(Chaos::TruncatedStream(2), "").await;
    assert_failed_mid_stream(response, (&steady, &gw), 2, "upstream_stream_broken").await;
}

#[tokio::test]
async fn a_stream_closed_cleanly_without_done_ends_with_an_error_event() {
    let (_chaos, steady, gw, response) = stream_with(Chaos::ClosedStream(2), "").await;
    assert_failed_mid_stream(response, (&steady, &gw), 2, "upstream_stream_broken").await;
}

#[tokio::test]
async fn malformed_sse_mid_stream_ends_with_an_error_event() {
    let (_chaos, steady, gw, response) = stream_with(Chaos::MalformedSse { after: 2 }, "").await;
    assert_failed_mid_stream(response, (&steady, &gw), 2, "upstream_invalid_response").await;
}

#[tokio::test]
async fn malformed_sse_before_the_first_event_fails_over() {
    let (chaos, steady, _gw, response) = stream_with(Chaos::MalformedSse { after: 0 }, "").await;
    let events = stream_events(response, STEADY, "2").await;
    assert_complete(&events);
    assert!(!events.iter().any(|e| e.contains("not json")), "{events:?}");
    assert_eq!((chaos.count(), steady.count()), (1, 1));
}

/// A stream through a gateway in front of a chaos upstream that drips `chunks` chunks `every`
/// apart, under `stream_idle`.
async fn drip(
    every: Duration,
    chunks: usize,
    stream_idle: &str,
) -> (
    ChaosUpstream,
    MockUpstream,
    GatewayProcess,
    reqwest::Response,
) {
    let behaviour = Chaos::SlowDrip {
        chunk_every: every,
        chunks,
    };
    let timeouts =
        format!("timeouts: {{ first_byte: 10s, stream_idle: {stream_idle}, total: 20s }}");
    stream_with(behaviour, &timeouts).await
}

#[tokio::test]
async fn a_drip_slower_than_the_idle_limit_ends_with_an_error_event() {
    let (chaos, steady, gw, response) = drip(Duration::from_millis(800), 4, "150ms").await;
    assert_failed_mid_stream(response, (&steady, &gw), 1, "upstream_stream_idle").await;
    assert!(
        eventually(|| chaos.abandoned() == 1).await,
        "the gateway hangs up on the stalled stream"
    );
}

#[tokio::test]
async fn a_drip_faster_than_the_idle_limit_streams_to_the_end() {
    // 14 events 50 ms apart: the stream as a whole outlasts the idle limit, no silence does.
    let (_chaos, steady, gw, response) = drip(Duration::from_millis(50), 12, "500ms").await;
    let events = stream_events(response, FLAKY, "1").await;
    assert_eq!(
        events.len(),
        14,
        "12 chunks, the finish chunk, [DONE]: {events:?}"
    );
    assert_complete(&events);
    let text: String = events[..12]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "w0 w1 w2 w3 w4 w5 w6 w7 w0 w1 w2 w3 ");
    assert_eq!(steady.count(), 0);
    assert_eq!(access_line(&gw).await["outcome"], "completed");
}

//! End to end through the real binary, with a mock Anthropic upstream speaking the Messages API
//! wire format (testkit's `AnthropicWire`): OpenAI chat requests translated to Anthropic and
//! back (JSON and streams, parallel tool calls, usage, errors), and Anthropic's own
//! `/v1/messages` and `/v1/messages/count_tokens` passed through unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::BTreeMap;

use common::{BIN, client, config, post, sse_data};
use portcullis_testkit::upstream::Recorded;
use portcullis_testkit::wire::anthropic::{AnthropicWire, sse};
use portcullis_testkit::wire::{
    Canned, CannedCall, CannedError, CannedUsage, Finish, ProviderWire,
};
use portcullis_testkit::{GatewayProcess, MockUpstream, Reply, SseEnd, TEST_KEY};
use serde_json::{Value, json};

const UPSTREAM_MODEL: &str = "claude-up-model";

fn text_canned() -> Canned {
    Canned {
        model: UPSTREAM_MODEL.into(),
        text: Some("Hello from Claude, streamed in pieces.".into()),
        tool_calls: Vec::new(),
        finish: Finish::EndTurn,
        usage: CannedUsage {
            input: 30,
            output: 7,
            cached: 10,
            reasoning: 0,
        },
    }
}

fn tools_canned() -> Canned {
    Canned {
        model: UPSTREAM_MODEL.into(),
        text: Some("Checking both.".into()),
        tool_calls: vec![
            CannedCall {
                id: "toolu_01A09q90qw90lq917835lq9".into(),
                name: "get_weather".into(),
                arguments: json!({"location": "San Francisco, CA", "unit": "celsius"}),
            },
            CannedCall {
                id: "toolu_01B19r91rx91mr928946mr0".into(),
                name: "get_time".into(),
                arguments: json!({"timezone": "America/Los_Angeles"}),
            },
        ],
        finish: Finish::ToolUse,
        usage: CannedUsage {
            input: 400,
            output: 90,
            cached: 0,
            reasoning: 0,
        },
    }
}

/// The text of the last message of an Anthropic request body.
fn last_text(body: &Value) -> String {
    let last = &body["messages"].as_array().and_then(|m| m.last()).cloned();
    match last.as_ref().map(|m| &m["content"]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// The mock upstream: the last message says what to answer (`tools`, `refuse`, `midstream`,
/// `error:<class>`, otherwise text); a request the wire mock finds malformed gets a 418.
fn answer(r: &Recorded) -> Reply {
    let wire = AnthropicWire::default();
    if r.path == "/v1/messages/count_tokens" {
        return Reply::json(200, json!({"input_tokens": 2095}));
    }
    if let Err(problem) = wire.seen(r) {
        return Reply::json(
            418,
            AnthropicWire::error_body("invalid_request_error", &problem),
        );
    }
    let stream = r.body["stream"] == true;
    let text = last_text(&r.body);
    let error = |e| wire.error(e);
    match text.as_str() {
        "tools" => wire.reply(&tools_canned(), stream),
        "refuse" => error(CannedError::ContentFiltered),
        "midstream" => wire.stream_error(&text_canned(), "overloaded_error", "Overloaded"),
        "cut" => {
            let events = wire.events(&text_canned());
            sse(&events[..4], SseEnd::Abort)
        }
        "error:overloaded" => error(CannedError::Overloaded),
        "error:context" => error(CannedError::ContextTooLong),
        "error:rate" => error(CannedError::RateLimited),
        "error:auth" => error(CannedError::Auth),
        "error:bad" => error(CannedError::BadRequest),
        "error:server" => error(CannedError::Server),
        _ => wire.reply(&text_canned(), stream),
    }
}

async fn setup() -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::start(answer).await.unwrap();
    let wire = AnthropicWire::default();
    let providers = format!(
        r#"  claude-up:
    type: anthropic
    base_url: "http://{}"
    api_key: "{}"
    beta: [prompt-caching-2024-07-31, token-efficient-tools-2025-02-19]
    default_max_tokens: 2048
    headers: {{ X-Team: gateway-tests }}"#,
        upstream.addr, wire.api_key
    );
    let yaml = config(
        &providers,
        &format!(
            r#"  claude: {{ deployments: [{{ provider: claude-up, model: {UPSTREAM_MODEL} }}] }}"#
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

fn chat(content: &str) -> Value {
    json!({"model": "claude", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": content},
    ]})
}

/// The chunks of an OpenAI stream up to `[DONE]`, and whether `[DONE]` came.
fn chunks(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    for data in sse_data(body) {
        if data == "[DONE]" {
            return (out, true);
        }
        out.push(serde_json::from_str(&data).unwrap());
    }
    (out, false)
}

/// Tool calls assembled from stream deltas by index: (id, name, arguments).
fn assembled_calls(chunks: &[Value]) -> BTreeMap<u64, (String, String, String)> {
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    for chunk in chunks {
        let Some(deltas) = chunk["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for d in deltas {
            let call = calls.entry(d["index"].as_u64().unwrap()).or_default();
            if let Some(id) = d["id"].as_str() {
                call.0.push_str(id);
            }
            if let Some(name) = d["function"]["name"].as_str() {
                call.1.push_str(name);
            }
            if let Some(args) = d["function"]["arguments"].as_str() {
                call.2.push_str(args);
            }
        }
    }
    calls
}

#[tokio::test]
async fn chat_is_translated_to_messages_and_back() {
    let (upstream, gw) = setup().await;
    let mut body = chat("Say hello");
    body["temperature"] = json!(0.5);
    body["seed"] = json!(7);
    body["stop"] = json!("END");
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], UPSTREAM_MODEL);
    assert!(answer["id"].as_str().unwrap().starts_with("msg_"));
    let choice = &answer["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        "Hello from Claude, streamed in pieces."
    );
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 10}})
    );

    let sent = &upstream.requests()[0];
    let seen = AnthropicWire::default().seen(sent).unwrap();
    assert_eq!(seen.model, UPSTREAM_MODEL);
    assert_eq!(seen.system, ["Be brief."]);
    assert_eq!(seen.messages.len(), 1);
    assert_eq!(seen.max_tokens, Some(2048), "the configured default");
    assert_eq!(seen.temperature, Some(0.5));
    assert_eq!(seen.stop, ["END"]);
    assert!(!seen.stream);
    assert!(
        sent.body.get("seed").is_none(),
        "seed has no Anthropic form"
    );
    assert_eq!(
        sent.headers["anthropic-beta"],
        "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"
    );
    assert_eq!(sent.headers["x-team"], "gateway-tests");
    assert!(!sent.headers.contains_key("x-request-id"));

    let line = gw.access_lines(1).await.swap_remove(0);
    assert_eq!(line["gen_ai.usage.input_tokens"], 30);
    assert_eq!(line["gen_ai.usage.output_tokens"], 7);
}

#[tokio::test]
async fn parallel_tool_calls_arrive_whole_in_json_and_in_streams() {
    let (upstream, gw) = setup().await;
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_time"}},
    ]);
    let mut body = chat("tools");
    body["tools"] = tools;
    let want = [
        (
            "toolu_01A09q90qw90lq917835lq9",
            "get_weather",
            json!({"location": "San Francisco, CA", "unit": "celsius"}),
        ),
        (
            "toolu_01B19r91rx91mr928946mr0",
            "get_time",
            json!({"timezone": "America/Los_Angeles"}),
        ),
    ];

    let answer: Value = post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = &answer["choices"][0]["message"];
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], "Checking both.");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (call, (id, name, args)) in calls.iter().zip(&want) {
        assert_eq!(call["id"], *id);
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], *name);
        let parsed: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(&parsed, args);
    }
    let sent = AnthropicWire::default()
        .seen(&upstream.requests()[0])
        .unwrap();
    assert_eq!(sent.tools, ["get_weather", "get_time"]);

    for include_usage in [true, false] {
        let mut body = body.clone();
        body["stream"] = json!(true);
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let response = post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let (chunks, done) = chunks(&text);
        assert!(done, "{text}");
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Checking both.");
        let calls = assembled_calls(&chunks);
        assert_eq!(calls.len(), 2, "{text}");
        for (index, (id, name, args)) in want.iter().enumerate() {
            let call = &calls[&(index as u64)];
            assert_eq!((call.0.as_str(), call.1.as_str()), (*id, *name));
            assert_eq!(&serde_json::from_str::<Value>(&call.2).unwrap(), args);
        }
        let finishes: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0].get("finish_reason"))
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finishes, [&json!("tool_calls")]);
        let usage: Vec<&Value> = chunks.iter().filter_map(|c| c.get("usage")).collect();
        if include_usage {
            assert_eq!(usage.len(), 1, "{text}");
            assert_eq!(usage[0]["prompt_tokens"], 400);
            assert_eq!(usage[0]["completion_tokens"], 90);
            assert_eq!(chunks.last().unwrap()["choices"], json!([]));
        } else {
            assert!(usage.is_empty(), "usage chunk hidden: {text}");
        }
        let sent = AnthropicWire::default()
            .seen(upstream.requests().last().unwrap())
            .unwrap();
        assert!(sent.stream);
    }
    // The gateway knew the usage of the streams either way.
    let lines = gw.access_lines(3).await;
    assert!(
        lines.iter().all(|l| l["gen_ai.usage.output_tokens"] == 90),
        "{lines:?}"
    );
}

#[tokio::test]
async fn text_streams_and_refusals() {
    let (_upstream, gw) = setup().await;
    let mut body = chat("Say hello");
    body["stream"] = json!(true);
    let text = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (chunks, done) = chunks(&text);
    assert!(done);
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from Claude, streamed in pieces.");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));

    let answer: Value = post(gw.url("/v1/chat/completions"), chat("refuse"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn upstream_errors_become_openai_errors() {
    let (upstream, gw) = setup().await;
    for (trigger, status, code) in [
        ("error:overloaded", 503, "upstream_overloaded"),
        ("error:context", 400, "context_length_exceeded"),
        ("error:rate", 429, "upstream_rate_limited"),
        ("error:auth", 502, "upstream_auth_failed"),
        ("error:bad", 400, "upstream_bad_request"),
        ("error:server", 502, "upstream_error"),
    ] {
        for stream in [false, true] {
            let mut body = chat(trigger);
            body["stream"] = json!(stream);
            let response = post(gw.url("/v1/chat/completions"), body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{trigger} stream={stream}");
            let err: Value = response.json().await.unwrap();
            assert_eq!(err["error"]["code"], code, "{trigger}: {err}");
            for field in ["message", "type", "param"] {
                assert!(err["error"].get(field).is_some(), "{err}");
            }
            let message = err["error"]["message"].as_str().unwrap();
            assert!(!message.contains("127.0.0.1"), "{message}");
            if trigger == "error:context" {
                assert!(message.contains("prompt is too long"), "{message}");
            }
            if trigger == "error:auth" {
                assert!(!message.contains("x-api-key"), "not relayed: {message}");
            }
        }
    }
    assert_eq!(
        upstream.count(),
        12,
        "one attempt each: a single deployment"
    );

    // Errors after the stream began: one OpenAI error event, no [DONE].
    for trigger in ["midstream", "cut"] {
        let mut body = chat(trigger);
        body["stream"] = json!(true);
        let response = post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let data = sse_data(&text);
        assert!(!data.contains(&"[DONE]".to_owned()), "{text}");
        let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
        let expected = if trigger == "midstream" {
            "upstream_overloaded"
        } else {
            "upstream_stream_broken"
        };
        assert_eq!(last["error"]["code"], expected, "{text}");
        let first: Value = serde_json::from_str(&data[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    }
}

fn native(path: &str, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(path)
        .header("x-api-key", TEST_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

#[tokio::test]
async fn native_messages_and_count_tokens_pass_through_unchanged() {
    let (upstream, gw) = setup().await;
    let wire = AnthropicWire::default();
    let body = json!({
        "model": "claude",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
        "metadata": {"user_id": "u-1"},
        "vendor_field": {"kept": [1, 2.50]}
    });

    // The client's betas (as coding agents send them) join the configured ones.
    let response = native(&gw.url("/v1/messages"), &body)
        .header(
            "anthropic-beta",
            "interleaved-thinking-2025-05-14, prompt-caching-2024-07-31",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer,
        wire.message(&text_canned()),
        "the upstream's message as sent"
    );
    let sent = &upstream.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    let mut expected = body.clone();
    expected["model"] = json!(UPSTREAM_MODEL);
    assert_eq!(sent.body, expected, "forwarded as the client sent it");
    assert_eq!(sent.headers["x-api-key"], wire.api_key);
    assert_ne!(sent.headers["x-api-key"], TEST_KEY);
    assert_eq!(
        sent.headers["anthropic-beta"],
        "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19,interleaved-thinking-2025-05-14"
    );

    // Streamed: every event, named, in order, data unchanged.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = native(&gw.url("/v1/messages"), &streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let got: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect();
    let want: Vec<(String, Value)> = wire
        .events(&text_canned())
        .into_iter()
        .map(|(n, d)| (n.to_owned(), d))
        .collect();
    assert_eq!(got, want);
    assert_eq!(upstream.requests()[1].body["stream"], true);

    // count_tokens.
    let count = json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}]});
    let response = native(&gw.url("/v1/messages/count_tokens"), &count)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"input_tokens": 2095})
    );
    let sent = &upstream.requests()[2];
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.body["model"], UPSTREAM_MODEL);

    let lines = gw.access_lines(3).await;
    assert_eq!(lines[0]["gen_ai.usage.input_tokens"], 30);
    assert_eq!(lines[0]["gen_ai.usage.output_tokens"], 7);
    assert_eq!(lines[1]["gen_ai.usage.input_tokens"], 30);
    assert_eq!(lines[1]["gen_ai.usage.output_tokens"], 7);
}

#[tokio::test]
async fn native_errors_keep_anthropics_shape() {
    let (_upstream, gw) = setup().await;
    let body = |text: &str, stream: bool| {
        json!({"model": "claude", "max_tokens": 10, "stream": stream,
            "messages": [{"role": "user", "content": text}]})
    };
    let response = native(&gw.url("/v1/messages"), &body("error:overloaded", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let err: Value = response.json().await.unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "overloaded_error");

    let response = native(&gw.url("/v1/messages"), &body("error:context", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let err: Value = response.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prompt is too long"),
        "{err}"
    );

    // An error event mid-stream reaches the client as an Anthropic error event.
    let text = native(&gw.url("/v1/messages"), &body("midstream", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\n"), "{text}");
    let data: Value =
        serde_json::from_str(last.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(text.starts_with("event: message_start\n"), "{text}");
}

#[tokio::test]
async fn no_provider_secret_or_content_in_the_gateways_output() {
    let (_upstream, gw) = setup().await;
    let canary = "CANARY-5c1d-anthropic";
    let mut body = chat(canary);
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap();
    body["stream"] = json!(true);
    post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    post(gw.url("/v1/chat/completions"), chat("error:auth"))
        .send()
        .await
        .unwrap();
    native(
        &gw.url("/v1/messages"),
        &json!({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": canary}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(gw.access_lines(4).await.len(), 4);
    let logs = gw.logs().join("\n");
    for secret in [
        canary,
        AnthropicWire::default().api_key.as_str(),
        TEST_KEY,
        "Hello from Claude",
        "invalid x-api-key",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

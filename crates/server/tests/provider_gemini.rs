//! The real binary against a mock Gemini, on AI Studio (type `gemini`) and on Vertex AI (type
//! `vertex`, with the service-account token flow): OpenAI requests in, Gemini's wire format
//! upstream, OpenAI answers, streams and errors back; what the mock received; token caching and
//! refresh; no provider secret in the gateway's output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{BIN, config, error_of, post, sse_data};
use portcullis_testkit::upstream::{Recorded, Reply, SseEnd};
use portcullis_testkit::wire::gemini::{self, GeminiWire};
use portcullis_testkit::wire::{
    Canned, CannedCall, CannedError, CannedUsage, Finish, ProviderWire, SeenPart,
};
use portcullis_testkit::{GatewayProcess, MockUpstream};
use serde_json::{Value, json};

const CHAT_MODEL: &str = "gemini-2.5-flash";
const EMBED_MODEL: &str = "gemini-embedding-001";

fn flavors() -> [Arc<GeminiWire>; 2] {
    [
        Arc::new(GeminiWire::ai_studio()),
        Arc::new(GeminiWire::vertex()),
    ]
}

/// A mock Gemini answering API calls with `answer` (token requests go to the wire), and the
/// gateway in front of it with models `gem` (chat) and `gem-embed`.
async fn setup(
    wire: &Arc<GeminiWire>,
    answer: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> (MockUpstream, GatewayProcess) {
    let handler_wire = wire.clone();
    let upstream =
        MockUpstream::start(move |r| handler_wire.auxiliary_reply(r).unwrap_or_else(|| answer(r)))
            .await
            .unwrap();
    let base_url = format!("http://{}", upstream.addr);
    let yaml = config(
        &format!("  google: {}", wire.provider_yaml(&base_url)),
        &format!(
            "  gem: {{ deployments: [{{ provider: google, model: {CHAT_MODEL} }}] }}\n  \
             gem-embed: {{ deployments: [{{ provider: google, model: {EMBED_MODEL} }}] }}"
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

fn is_stream(r: &Recorded) -> bool {
    r.path.ends_with(":streamGenerateContent")
}

/// Answers with `canned`, whole or streamed as the request asks.
fn answering(wire: &Arc<GeminiWire>, canned: Canned) -> impl Fn(&Recorded) -> Reply + use<> {
    let wire = wire.clone();
    move |r| wire.reply(&canned, is_stream(r))
}

fn api_calls(upstream: &MockUpstream) -> Vec<Recorded> {
    upstream
        .requests()
        .into_iter()
        .filter(|r| r.path != gemini::TOKEN_PATH)
        .collect()
}

fn text_answer() -> Canned {
    Canned {
        model: CHAT_MODEL.into(),
        text: Some("Hello from Gemini".into()),
        tool_calls: vec![],
        finish: Finish::EndTurn,
        usage: CannedUsage {
            input: 12,
            output: 9,
            cached: 4,
            reasoning: 5,
        },
    }
}

fn calls_answer() -> Canned {
    Canned {
        model: CHAT_MODEL.into(),
        text: None,
        tool_calls: vec![
            CannedCall {
                id: "call_weather".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo", "unit": "celsius"}),
            },
            CannedCall {
                id: "call_time".into(),
                name: "get_time".into(),
                arguments: json!({"zone": "Europe/Oslo"}),
            },
        ],
        finish: Finish::ToolUse,
        usage: CannedUsage {
            input: 40,
            output: 20,
            cached: 0,
            reasoning: 0,
        },
    }
}

fn chat_request(stream: bool) -> Value {
    json!({
        "model": "gem",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "temperature": 0.25,
        "max_tokens": 64,
        "stop": ["END"],
        "stream": stream,
    })
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
            "properties": {"zone": {"type": "string"}}}}},
    ])
}

/// The chunks of a streamed answer (without `[DONE]`, which must end it).
async fn stream_chunks(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// Tool calls assembled from streamed deltas, by index: (id, name, arguments).
fn streamed_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if calls.len() <= index {
                calls.resize(index + 1, Default::default());
            }
            let slot = &mut calls[index];
            if let Some(id) = call["id"].as_str() {
                slot.0 = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                slot.1 = name.to_owned();
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                slot.2.push_str(args);
            }
        }
    }
    calls
}

fn finish_reasons(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn text_answers_whole_and_streamed_with_usage() {
    for wire in flavors() {
        let name = wire.name();
        let (upstream, gw) = setup(&wire, answering(&wire, text_answer())).await;

        let response = post(gw.url("/v1/chat/completions"), chat_request(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["object"], "chat.completion");
        assert_eq!(answer["model"], CHAT_MODEL);
        assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "Hello from Gemini"
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21,
                   "prompt_tokens_details": {"cached_tokens": 4},
                   "completion_tokens_details": {"reasoning_tokens": 5}}),
            "{name}"
        );
        let line = gw.access_lines(1).await.swap_remove(0);
        assert_eq!(line["gen_ai.usage.input_tokens"], 12);
        assert_eq!(line["gen_ai.usage.output_tokens"], 9);

        // Streamed, without and with the usage chunk.
        let chunks = stream_chunks(
            post(gw.url("/v1/chat/completions"), chat_request(true))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello from Gemini", "{name}");
        assert_eq!(finish_reasons(&chunks), ["stop"]);
        assert!(
            chunks.iter().all(|c| c["choices"] != json!([])),
            "no usage chunk unless asked"
        );
        let mut body = chat_request(true);
        body["stream_options"] = json!({"include_usage": true});
        let chunks = stream_chunks(
            post(gw.url("/v1/chat/completions"), body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["total_tokens"], 21, "{name}");
        assert_eq!(
            last["usage"]["completion_tokens_details"]["reasoning_tokens"],
            5
        );

        // What Gemini received.
        let calls = api_calls(&upstream);
        assert_eq!(calls.len(), 3);
        for (call, stream) in calls.iter().zip([false, true, true]) {
            let seen = wire.seen(call).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(seen.model, CHAT_MODEL);
            assert_eq!(seen.stream, stream);
            assert_eq!(seen.system, ["Be brief."]);
            assert_eq!(seen.messages.len(), 1);
            assert_eq!(seen.messages[0].role, "user");
            assert_eq!(seen.messages[0].parts, [SeenPart::Text("Say hello".into())]);
            assert_eq!(seen.temperature, Some(0.25));
            assert_eq!(seen.max_tokens, Some(64));
            assert_eq!(seen.stop, ["END"]);
            assert!(!seen.json_mode);
        }
    }
}

#[tokio::test]
async fn parallel_tool_calls_whole_and_streamed() {
    for wire in flavors() {
        let name = wire.name();
        let (upstream, gw) = setup(&wire, answering(&wire, calls_answer())).await;
        let mut body = chat_request(false);
        body["tools"] = tools();
        body["tool_choice"] = json!("required");
        body["response_format"] = json!({"type": "json_object"});

        let answer: Value = post(gw.url("/v1/chat/completions"), body.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let choice = &answer["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls", "{name}");
        assert_eq!(choice["message"]["content"], Value::Null);
        let calls = choice["message"]["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0]["id"], "call_weather");
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Oslo", "unit": "celsius"}));
        assert_eq!(calls[1]["id"], "call_time");

        body["stream"] = json!(true);
        let chunks = stream_chunks(
            post(gw.url("/v1/chat/completions"), body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let calls = streamed_calls(&chunks);
        assert_eq!(calls.len(), 2, "{name}");
        assert_eq!(
            (calls[0].0.as_str(), calls[0].1.as_str()),
            ("call_weather", "get_weather")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&calls[0].2).unwrap(),
            json!({"city": "Oslo", "unit": "celsius"})
        );
        assert_eq!(
            (calls[1].0.as_str(), calls[1].1.as_str()),
            ("call_time", "get_time")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&calls[1].2).unwrap(),
            json!({"zone": "Europe/Oslo"})
        );
        assert_eq!(finish_reasons(&chunks), ["tool_calls"]);

        let sent = &api_calls(&upstream)[0];
        let seen = wire.seen(sent).unwrap();
        assert_eq!(seen.tools, ["get_weather", "get_time"]);
        assert!(seen.json_mode);
        assert_eq!(
            sent.body["toolConfig"],
            json!({"functionCallingConfig": {"mode": "ANY"}})
        );
    }
}

#[tokio::test]
async fn tool_results_and_images_reach_gemini() {
    for wire in flavors() {
        let name = wire.name();
        let (upstream, gw) = setup(&wire, answering(&wire, text_answer())).await;
        let body = json!({
            "model": "gem",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/sky.webp"}},
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_weather", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_weather", "content": "rain"},
            ],
            "tools": tools(),
        });
        let response = post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let seen = wire.seen(&api_calls(&upstream)[0]).unwrap();
        let id = if wire.is_vertex() { "" } else { "call_weather" };
        assert_eq!(seen.messages.len(), 3, "{name}");
        assert_eq!(
            seen.messages[0].parts,
            [
                SeenPart::Text("Weather here?".into()),
                SeenPart::Image("data:image/png;base64,iVBORw0KGgo=".into()),
                SeenPart::Image("https://example.com/sky.webp".into()),
            ]
        );
        assert_eq!(seen.messages[1].role, "assistant");
        assert_eq!(
            seen.messages[1].parts,
            [SeenPart::ToolCall {
                id: id.into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"}),
            }]
        );
        assert_eq!(seen.messages[2].role, "user");
        assert_eq!(
            seen.messages[2].parts,
            [SeenPart::ToolResult {
                id: id.into(),
                content: "rain".into(),
            }]
        );
    }
}

#[tokio::test]
async fn upstream_errors_reach_the_client_classified() {
    let cases = [
        (CannedError::RateLimited, 429, "upstream_rate_limited"),
        (CannedError::Overloaded, 503, "upstream_overloaded"),
        (CannedError::ContextTooLong, 400, "context_length_exceeded"),
        (CannedError::ContentFiltered, 400, "content_filter"),
        (CannedError::Auth, 502, "upstream_auth_failed"),
        (CannedError::BadRequest, 400, "upstream_bad_request"),
        (CannedError::Server, 502, "upstream_error"),
    ];
    for wire in flavors() {
        let name = wire.name();
        let reply_wire = wire.clone();
        let current = Arc::new(std::sync::Mutex::new(CannedError::Server));
        let which = current.clone();
        let (_upstream, gw) = setup(&wire, move |_| reply_wire.error(*which.lock().unwrap())).await;
        for (error, status, code) in cases {
            *current.lock().unwrap() = error;
            for stream in [false, true] {
                let response = post(gw.url("/v1/chat/completions"), chat_request(stream))
                    .send()
                    .await
                    .unwrap();
                let (got, body) = error_of(response).await;
                assert_eq!(
                    (got, body["error"]["code"].as_str()),
                    (status, Some(code)),
                    "{name} {error:?} stream={stream}: {body}"
                );
                let text = body.to_string();
                assert!(
                    !text.contains(gemini::API_KEY) && !text.contains("ya29."),
                    "{text}"
                );
                if error == CannedError::Auth {
                    assert!(
                        !text.contains("API key not valid"),
                        "auth messages stay private"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn errors_inside_a_stream_end_it_with_an_error_event() {
    for wire in flavors() {
        let name = wire.name();
        let (_upstream, gw) = setup(&wire, |_| {
            let text = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Once"}]}, "index": 0}],
                              "modelVersion": CHAT_MODEL});
            let error = json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}});
            Reply::Stream {
                status: 200,
                content_type: "text/event-stream",
                chunks: [text, error]
                    .iter()
                    .map(|e| format!("data: {e}\r\n\r\n").into())
                    .collect(),
                delay: Duration::from_millis(2),
                end: SseEnd::Close,
            }
        })
        .await;
        let response = post(gw.url("/v1/chat/completions"), chat_request(true))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let events = sse_data(&response.text().await.unwrap());
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_overloaded",
            "{name}: {events:?}"
        );
        assert!(events.iter().any(|e| e.contains("Once")));

        // A stream cut before Gemini finished is broken, not complete.
        let (_upstream, gw) = setup(&wire, |_| {
            let text = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Once"}]}}]});
            Reply::Stream {
                status: 200,
                content_type: "text/event-stream",
                chunks: vec![format!("data: {text}\r\n\r\n").into()],
                delay: Duration::from_millis(2),
                end: SseEnd::Close,
            }
        })
        .await;
        let response = post(gw.url("/v1/chat/completions"), chat_request(true))
            .send()
            .await
            .unwrap();
        let events = sse_data(&response.text().await.unwrap());
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(
            last["error"]["code"], "upstream_stream_broken",
            "{name}: {events:?}"
        );
    }
}

#[tokio::test]
async fn untranslatable_requests_are_refused_before_calling_gemini() {
    let wire = Arc::new(GeminiWire::ai_studio());
    let (upstream, gw) = setup(&wire, answering(&wire, text_answer())).await;
    let mut body = chat_request(false);
    body["n"] = json!(2);
    let (status, error) = error_of(
        post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"].as_str().unwrap().contains("`n`"),
        "{error}"
    );
    let body = json!({"model": "gem", "messages": [
        {"role": "tool", "tool_call_id": "call_x", "content": "orphan"},
    ]});
    let (status, _) = error_of(
        post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn embeddings_as_floats_and_base64() {
    for wire in flavors() {
        let name = wire.name();
        let reply_wire = wire.clone();
        let (upstream, gw) = setup(&wire, move |_| {
            reply_wire.embeddings_reply(&[vec![1.0, -2.0], vec![0.5, 0.25]])
        })
        .await;
        let answer: Value = post(
            gw.url("/v1/embeddings"),
            json!({"model": "gem-embed", "input": ["a", "b"], "dimensions": 2}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(answer["object"], "list", "{name}: {answer}");
        assert_eq!(answer["data"][0]["embedding"], json!([1.0, -2.0]));
        assert_eq!(answer["data"][1]["index"], 1);
        let tokens = if wire.is_vertex() { 6 } else { 0 };
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": tokens, "total_tokens": tokens})
        );
        let answer: Value = post(
            gw.url("/v1/embeddings"),
            json!({"model": "gem-embed", "input": ["a", "b"], "encoding_format": "base64"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(answer["data"][0]["embedding"], "AACAPwAAAMA=");

        let sent = &api_calls(&upstream)[0];
        let (model, method) = wire.check_call(sent).unwrap();
        assert_eq!(model, EMBED_MODEL);
        if wire.is_vertex() {
            assert_eq!(method, "predict");
            assert_eq!(
                sent.body,
                json!({"instances": [{"content": "a"}, {"content": "b"}],
                       "parameters": {"outputDimensionality": 2}})
            );
        } else {
            assert_eq!(method, "batchEmbedContents");
            assert_eq!(
                sent.body["requests"][1],
                json!({"model": format!("models/{EMBED_MODEL}"),
                       "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 2})
            );
        }
    }
}

#[tokio::test]
async fn vertex_tokens_are_fetched_once_cached_and_refreshed_near_expiry() {
    let wire = Arc::new(GeminiWire::vertex());
    let (upstream, gw) = setup(&wire, answering(&wire, text_answer())).await;
    let token_requests = || {
        upstream
            .requests()
            .iter()
            .filter(|r| r.path == gemini::TOKEN_PATH)
            .count()
    };
    let chat = || async {
        let response = post(gw.url("/v1/chat/completions"), chat_request(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    };
    // Concurrent first calls share one token request; later calls reuse the token.
    futures_util::future::join_all((0..4).map(|_| chat())).await;
    chat().await;
    assert_eq!(token_requests(), 1);
    assert_eq!(wire.tokens_issued(), 1);

    // Tokens that expire within the refresh margin are replaced on the next call.
    wire.set_token_lifetime(120);
    let restarted = {
        let base_url = format!("http://{}", upstream.addr);
        let yaml = config(
            &format!("  google: {}", wire.provider_yaml(&base_url)),
            &format!("  gem: {{ deployments: [{{ provider: google, model: {CHAT_MODEL} }}] }}"),
        );
        GatewayProcess::start(BIN, &yaml).await.unwrap()
    };
    for expected in [2, 3, 4] {
        let response = post(restarted.url("/v1/chat/completions"), chat_request(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(token_requests(), expected);
    }
    wire.set_token_lifetime(3600);
    for _ in 0..3 {
        let response = post(restarted.url("/v1/chat/completions"), chat_request(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(token_requests(), 5, "the hour-long token is reused");
    // Every API call carried a token the endpoint issued (seen() checks it).
    for call in api_calls(&upstream) {
        wire.seen(&call).unwrap();
    }
}

#[tokio::test]
async fn a_refused_service_account_fails_over_as_an_auth_error() {
    let wire = Arc::new(GeminiWire::vertex());
    let upstream = MockUpstream::start(|r| {
        if r.path == gemini::TOKEN_PATH {
            Reply::json(
                400,
                json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            )
        } else {
            Reply::error(500, "should not be called")
        }
    })
    .await
    .unwrap();
    let base_url = format!("http://{}", upstream.addr);
    let yaml = config(
        &format!("  google: {}", wire.provider_yaml(&base_url)),
        &format!("  gem: {{ deployments: [{{ provider: google, model: {CHAT_MODEL} }}] }}"),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let (status, body) = error_of(
        post(gw.url("/v1/chat/completions"), chat_request(false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_auth_failed"))
    );
    assert!(!body.to_string().contains("Invalid JWT"), "{body}");
    assert!(
        upstream
            .requests()
            .iter()
            .all(|r| r.path == gemini::TOKEN_PATH)
    );
}

#[tokio::test]
async fn no_provider_secret_or_content_reaches_the_logs() {
    let canary = "CANARY-gemini-5d2e";
    for wire in flavors() {
        let reply_wire = wire.clone();
        let mut answer = text_answer();
        answer.text = Some(format!("{canary} answer"));
        let (_upstream, gw) = setup(&wire, move |r| {
            if r.body.to_string().contains("fail-please") {
                reply_wire.error(CannedError::Auth)
            } else {
                reply_wire.reply(&answer, is_stream(r))
            }
        })
        .await;
        for stream in [false, true] {
            let body = json!({"model": "gem", "stream": stream,
                              "messages": [{"role": "user", "content": canary}]});
            post(gw.url("/v1/chat/completions"), body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
        let body =
            json!({"model": "gem", "messages": [{"role": "user", "content": "fail-please"}]});
        post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap();
        assert_eq!(gw.access_lines(3).await.len(), 3);
        let logs = gw.logs().join("\n");
        let key_line = gemini::TEST_PRIVATE_KEY.lines().nth(1).unwrap();
        let mut secrets: HashMap<&str, &str> = HashMap::from([
            ("content", canary),
            ("api key", gemini::API_KEY),
            ("private key", key_line),
            ("access token", "ya29."),
            ("service account", gemini::CLIENT_EMAIL),
        ]);
        if !wire.is_vertex() {
            secrets.remove("access token");
        }
        for (what, secret) in secrets {
            assert!(
                !logs.contains(secret),
                "{} leaked the {what}: {logs}",
                wire.name()
            );
        }
    }
}

//! End to end through the real binary: OpenAI requests in, Cohere v2 on the wire (a mock that
//! speaks Cohere's format and checks what it receives), OpenAI answers, streams and errors out.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{BIN, config, post, sse_data};
use portcullis_testkit::wire::cohere::{API_KEY, CohereWire};
use portcullis_testkit::wire::{
    Canned, CannedCall, CannedError, CannedUsage, Finish, ProviderWire, SeenPart,
};
use portcullis_testkit::{GatewayProcess, MockUpstream, Recorded, Reply, SseEnd};
use serde_json::{Value, json};

const MODEL: &str = "command-a-03-2025";
const ANSWER: &str = "Hello from Cohere, with words";

fn canned(finish: Finish) -> Canned {
    Canned {
        model: MODEL.into(),
        text: Some(ANSWER.into()),
        tool_calls: Vec::new(),
        finish,
        usage: CannedUsage {
            input: 12,
            output: 4,
            cached: 8,
            reasoning: 0,
        },
    }
}

fn tool_canned() -> Canned {
    Canned {
        text: Some("I will check both cities.".into()),
        tool_calls: vec![
            CannedCall {
                id: "get_weather_a1b2c3".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo", "unit": "celsius"}),
            },
            CannedCall {
                id: "get_weather_d4e5f6".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Rome", "unit": "celsius"}),
            },
        ],
        ..canned(Finish::ToolUse)
    }
}

fn event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// A Cohere stream that starts, says a word, then ends as `end` says.
fn failing_stream(end: Option<Value>) -> Reply {
    let mut chunks = vec![
        event(
            "message-start",
            &json!({"id": "f1", "type": "message-start", "delta": {"message": {"role": "assistant"}}}),
        ),
        event(
            "content-delta",
            &json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
        ),
    ];
    chunks.extend(end.map(|e| event("message-end", &e)));
    Reply::Stream {
        status: 200,
        content_type: "text/event-stream",
        chunks,
        delay: Duration::from_millis(1),
        end: SseEnd::Close,
    }
}

fn last_user_text(r: &Recorded) -> String {
    r.body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Answers like Cohere: the last user message picks the scenario.
fn cohere(r: &Recorded) -> Reply {
    let wire = CohereWire;
    if r.path == "/v2/embed" {
        if r.headers.get("authorization") != Some(&format!("Bearer {API_KEY}")) {
            return Reply::json(401, json!({"message": "invalid api token"}));
        }
        let n = r.body["texts"].as_array().map_or(0, Vec::len);
        let vectors: Vec<Value> = (0..n)
            .map(|i| json!([0.25, -0.5, 0.0078125 * (i as f64 + 1.0)]))
            .collect();
        return Reply::json(
            200,
            json!({"id": "e1", "embeddings": {"float": vectors}, "texts": r.body["texts"],
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2 * n}},
                "response_type": "embeddings_by_type"}),
        );
    }
    let seen = match wire.seen(r) {
        Ok(seen) => seen,
        Err(problem) => return Reply::json(422, json!({"message": format!("mock: {problem}")})),
    };
    let stream = seen.stream;
    let text = last_user_text(r);
    let error = |e| Some(wire.error(e));
    let special = match text.as_str() {
        "error:rate" => error(CannedError::RateLimited),
        "error:overloaded" => error(CannedError::Overloaded),
        "error:context" => error(CannedError::ContextTooLong),
        "error:filtered" => error(CannedError::ContentFiltered),
        "error:auth" => error(CannedError::Auth),
        "error:bad" => error(CannedError::BadRequest),
        "error:server" => error(CannedError::Server),
        "fail-stream" => Some(failing_stream(Some(json!({"type": "message-end",
            "delta": {"finish_reason": "ERROR", "error": "the model failed"}})))),
        "cut-stream" => Some(failing_stream(None)),
        _ => None,
    };
    if let Some(reply) = special {
        return reply;
    }
    let canned = match text.as_str() {
        "tools" => tool_canned(),
        "length" => canned(Finish::MaxTokens),
        "stopseq" => canned(Finish::StopSequence),
        "blocked" => canned(Finish::ContentFilter),
        _ => canned(Finish::EndTurn),
    };
    wire.reply(&canned, stream)
}

async fn setup() -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::start(cohere).await.unwrap();
    let provider = CohereWire.provider_yaml(&format!("http://{}", upstream.addr));
    // Command A takes no images (the capability catalog says so, and the gateway would skip
    // it for an image); the translation of image parts is tested on it all the same.
    let yaml = config(
        &format!("  co: {provider}"),
        &format!(
            "  command: {{ deployments: [{{ provider: co, model: {MODEL}, \
             capabilities: {{ vision: true }} }}] }}\n  \
             embed: {{ deployments: [{{ provider: co, model: embed-v4.0 }}] }}"
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

fn chat(text: &str) -> Value {
    json!({"model": "command", "messages": [{"role": "user", "content": text}]})
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
            "unit": {"type": "string"}}, "required": ["city"]}}}])
}

/// The chunks of an SSE body (without `[DONE]`), checking it ends with `[DONE]`.
fn chunks(body: &str) -> Vec<Value> {
    let events = sse_data(body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

async fn stream(gw: &GatewayProcess, body: Value) -> String {
    let mut body = body;
    body["stream"] = json!(true);
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    response.text().await.unwrap()
}

/// Tool calls reassembled from stream chunks: (id, name, arguments) by index.
fn streamed_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
            if i == calls.len() {
                calls.push(Default::default());
            }
            let c = &mut calls[i];
            if let Some(id) = call["id"].as_str() {
                c.0 = id.into();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                c.1 = name.into();
            }
            c.2.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    calls
}

#[tokio::test]
async fn chat_is_translated_both_ways() {
    let (upstream, gw) = setup().await;
    let body = json!({"model": "command", "temperature": 0.5, "max_tokens": 50, "stop": ["END"],
    "response_format": {"type": "json_object"},
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ]});
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], MODEL);
    assert_eq!(answer["choices"][0]["message"]["role"], "assistant");
    assert_eq!(answer["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 0}})
    );

    let sent = &upstream.requests()[0];
    let seen = CohereWire.seen(sent).unwrap();
    assert_eq!(seen.model, MODEL);
    assert!(!seen.stream);
    assert_eq!(seen.system, ["Be brief."]);
    assert_eq!(
        seen.messages[0].parts,
        [
            SeenPart::Text("Look".into()),
            SeenPart::Image("data:image/png;base64,iVBORw0KGgo=".into())
        ]
    );
    assert!(seen.json_mode);
    assert_eq!(seen.max_tokens, Some(50));
    assert_eq!(seen.temperature, Some(0.5));
    assert_eq!(seen.stop, ["END"]);
    assert!(
        sent.body.get("stream").is_none(),
        "stream only written when true"
    );

    let line = gw.access_lines(1).await.swap_remove(0);
    assert_eq!(line["gen_ai.usage.input_tokens"], 12);
    assert_eq!(line["gen_ai.usage.output_tokens"], 4);
}

#[tokio::test]
async fn streams_carry_text_finish_and_usage_only_when_asked() {
    let (upstream, gw) = setup().await;
    let plain = chunks(&stream(&gw, chat("hi")).await);
    assert_eq!(plain[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = plain
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, ANSWER);
    assert!(
        plain.iter().all(|c| c["choices"] != json!([])),
        "usage chunk hidden"
    );
    let finish: Vec<&Value> = plain
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);

    let mut body = chat("hi");
    body["stream_options"] = json!({"include_usage": true});
    let with_usage = chunks(&stream(&gw, body).await);
    let last = with_usage.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 16);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"], 8);

    assert!(CohereWire.seen(&upstream.requests()[0]).unwrap().stream);
    assert!(upstream.requests()[1].body.get("stream_options").is_none());
    let lines = gw.access_lines(2).await;
    for line in lines {
        assert_eq!(line["stream"], true);
        assert_eq!(
            line["gen_ai.usage.output_tokens"], 4,
            "usage known either way"
        );
    }
}

#[tokio::test]
async fn parallel_tool_calls_arrive_whole_streamed_or_not() {
    let (upstream, gw) = setup().await;
    let mut body = chat("tools");
    body["tools"] = tools();
    body["tool_choice"] = json!("required");
    let answer: Value = post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = &answer["choices"][0]["message"];
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], "I will check both cities.");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (call, want) in calls.iter().zip(&tool_canned().tool_calls) {
        assert_eq!(call["id"], want.id.as_str());
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], want.name.as_str());
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, want.arguments);
    }
    let sent = &upstream.requests()[0];
    assert_eq!(sent.body["tool_choice"], "REQUIRED");
    assert_eq!(CohereWire.seen(sent).unwrap().tools, ["get_weather"]);

    let streamed = chunks(&stream(&gw, body).await);
    let calls = streamed_calls(&streamed);
    assert_eq!(calls.len(), 2);
    for (got, want) in calls.iter().zip(&tool_canned().tool_calls) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (want.id.as_str(), want.name.as_str())
        );
        assert_eq!(
            serde_json::from_str::<Value>(&got.2).unwrap(),
            want.arguments
        );
    }
    assert!(
        streamed
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
}

#[tokio::test]
async fn tool_results_go_back_as_cohere_tool_messages() {
    let (upstream, gw) = setup().await;
    let body = json!({"model": "command", "tools": tools(), "messages": [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain, 9C"},
        {"role": "tool", "tool_call_id": "c2", "content": "sun, 24C"},
    ]});
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = CohereWire.seen(&upstream.requests()[0]).unwrap();
    assert_eq!(
        seen.messages[1].parts,
        [
            SeenPart::ToolCall {
                id: "c1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Oslo"})
            },
            SeenPart::ToolCall {
                id: "c2".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Rome"})
            },
        ]
    );
    assert_eq!(
        seen.messages[2].parts,
        [
            SeenPart::ToolResult {
                id: "c1".into(),
                content: "rain, 9C".into()
            },
            SeenPart::ToolResult {
                id: "c2".into(),
                content: "sun, 24C".into()
            },
        ]
    );
}

#[tokio::test]
async fn finish_reasons_map_to_openai_ones() {
    let (_upstream, gw) = setup().await;
    for (text, want) in [("length", "length"), ("stopseq", "stop"), ("hi", "stop")] {
        let answer: Value = post(gw.url("/v1/chat/completions"), chat(text))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["choices"][0]["finish_reason"], want, "{text}");
        let streamed = chunks(&stream(&gw, chat(text)).await);
        assert!(
            streamed
                .iter()
                .any(|c| c["choices"][0]["finish_reason"] == want),
            "{text} streamed"
        );
    }
}

#[tokio::test]
async fn upstream_errors_reach_the_client_classified() {
    let (upstream, gw) = setup().await;
    let cases = [
        ("error:rate", 429, "upstream_rate_limited"),
        ("error:overloaded", 503, "upstream_overloaded"),
        ("error:context", 400, "context_length_exceeded"),
        ("error:filtered", 400, "content_filter"),
        ("blocked", 400, "content_filter"),
        ("error:auth", 502, "upstream_auth_failed"),
        ("error:bad", 400, "upstream_bad_request"),
        ("error:server", 502, "upstream_error"),
    ];
    for (text, status, code) in cases {
        for streamed in [false, true] {
            let mut body = chat(text);
            body["stream"] = json!(streamed);
            let response = post(gw.url("/v1/chat/completions"), body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{text} stream={streamed}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], code,
                "{text} stream={streamed}: {body}"
            );
            for field in ["message", "type", "param"] {
                assert!(body["error"].get(field).is_some(), "OpenAI shape: {body}");
            }
        }
    }
    let response = post(gw.url("/v1/chat/completions"), chat("error:bad"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("temperature must be between 0 and 1.0"),
        "the upstream's own message is relayed: {body}"
    );
    let n = upstream.count();
    // A request the translation cannot express never reaches Cohere.
    let mut body = chat("hi");
    body["n"] = json!(3);
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`n`"),
        "{body}"
    );
    assert_eq!(upstream.count(), n);
}

#[tokio::test]
async fn failed_and_cut_streams_end_with_an_error_event() {
    let (_upstream, gw) = setup().await;
    for (text, code) in [
        ("fail-stream", "upstream_error"),
        ("cut-stream", "upstream_stream_broken"),
    ] {
        let body = stream(&gw, chat(text)).await;
        let events = sse_data(&body);
        assert_ne!(events.last().map(String::as_str), Some("[DONE]"), "{body}");
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], code, "{text}: {body}");
        let first: Value = serde_json::from_str(&events[0]).unwrap();
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    }
}

#[tokio::test]
async fn embeddings_go_to_v2_embed() {
    let (upstream, gw) = setup().await;
    let response = post(
        gw.url("/v1/embeddings"),
        json!({"model": "embed", "input": ["first", "second"], "dimensions": 256}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["model"], "embed-v4.0");
    assert_eq!(list["data"][1]["index"], 1);
    assert_eq!(list["data"][1]["embedding"], json!([0.25, -0.5, 0.015625]));
    assert_eq!(
        list["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );
    let sent = &upstream.requests()[0];
    assert_eq!(sent.path, "/v2/embed");
    assert_eq!(
        sent.body,
        json!({"model": "embed-v4.0", "texts": ["first", "second"],
            "input_type": "search_document", "embedding_types": ["float"], "output_dimension": 256})
    );

    let response = post(
        gw.url("/v1/embeddings"),
        json!({"model": "embed", "input": "query", "input_type": "search_query",
            "encoding_format": "base64"}),
    )
    .send()
    .await
    .unwrap();
    let list: Value = response.json().await.unwrap();
    assert!(list["data"][0]["embedding"].is_string(), "{list}");
    assert_eq!(upstream.requests()[1].body["input_type"], "search_query");
    let line = gw.access_lines(2).await.swap_remove(0);
    assert_eq!(line["gen_ai.usage.input_tokens"], 4);
}

#[tokio::test]
async fn no_key_or_content_in_the_gateway_output() {
    let (_upstream, gw) = setup().await;
    let canary = "CANARY-c0here-content";
    let mut body = chat(canary);
    body["tools"] = tools();
    post(gw.url("/v1/chat/completions"), body.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    stream(&gw, body).await;
    post(
        gw.url("/v1/embeddings"),
        json!({"model": "embed", "input": canary}),
    )
    .send()
    .await
    .unwrap();
    for text in ["error:bad", "error:auth", "fail-stream"] {
        let mut body = chat(text);
        body["messages"][0]["name"] = json!(canary);
        body["stream"] = json!(text == "fail-stream");
        post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    assert_eq!(gw.access_lines(6).await.len(), 6);
    let logs = gw.logs().join("\n");
    for secret in [
        canary,
        API_KEY,
        ANSWER,
        "temperature must be",
        "invalid api token",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into logs:\n{logs}");
    }
}

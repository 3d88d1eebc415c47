//! End to end through the real binary against a mock Bedrock Runtime that speaks Bedrock's wire
//! format (Converse JSON, binary ConverseStream bodies, InvokeModel embeddings, typed errors)
//! and recomputes the SigV4 signature of every request it receives: a request signed wrongly
//! is refused as AWS refuses it, and the tests also check every recorded request afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::BTreeMap;

use common::{BIN, post, sse_data};
use portcullis_testkit::upstream::Recorded;
use portcullis_testkit::wire::bedrock::{
    self, BedrockWire, REQUEST_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, Target,
};
use portcullis_testkit::wire::{
    Canned, CannedCall, CannedError, CannedUsage, Finish, ProviderWire, SeenPart,
};
use portcullis_testkit::{GatewayProcess, MockUpstream, Reply, TEST_KEY_SHA256};
use serde_json::{Value, json};

const CLAUDE: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const TITAN: &str = "amazon.titan-embed-text-v2:0";
const COHERE: &str = "cohere.embed-english-v3";

/// Error models: the mock answers each with its error.
const ERRORS: [(&str, CannedError, u16, &str); 7] = [
    (
        "err.throttle",
        CannedError::RateLimited,
        429,
        "upstream_rate_limited",
    ),
    (
        "err.overloaded",
        CannedError::Overloaded,
        503,
        "upstream_overloaded",
    ),
    (
        "err.context",
        CannedError::ContextTooLong,
        400,
        "context_length_exceeded",
    ),
    (
        "err.filter",
        CannedError::ContentFiltered,
        400,
        "content_filter",
    ),
    ("err.auth", CannedError::Auth, 502, "upstream_auth_failed"),
    (
        "err.bad",
        CannedError::BadRequest,
        400,
        "upstream_bad_request",
    ),
    ("err.server", CannedError::Server, 502, "upstream_error"),
];

fn canned_text() -> Canned {
    Canned {
        model: CLAUDE.into(),
        text: Some("Hello from Bedrock, streamed in pieces.".into()),
        tool_calls: vec![],
        finish: Finish::EndTurn,
        usage: CannedUsage {
            input: 120,
            output: 9,
            cached: 100,
            reasoning: 0,
        },
    }
}

fn canned_tools() -> Canned {
    Canned {
        model: CLAUDE.into(),
        text: Some("Let me check both.".into()),
        tool_calls: vec![
            CannedCall {
                id: "tooluse_Q1t7RbnVT3mnlq0tXyAbcQ".into(),
                name: "weather".into(),
                arguments: json!({"city": "Paris", "unit": "celsius"}),
            },
            CannedCall {
                id: "tooluse_4fVwKZ8oQ2GBrQzdO5pX7w".into(),
                name: "time".into(),
                arguments: json!({"zone": "Europe/Paris"}),
            },
        ],
        finish: Finish::ToolUse,
        usage: CannedUsage {
            input: 300,
            output: 40,
            cached: 0,
            reasoning: 0,
        },
    }
}

/// The mock's answer to a request that passed the signature check.
fn answer(wire: &BedrockWire, r: &Recorded) -> Reply {
    let Ok(target) = Target::of(&r.path) else {
        return bedrock::error_reply(404, "UnknownOperationException", "Unknown operation");
    };
    if target.action == "invoke" {
        return BedrockWire::invoke_reply(r);
    }
    let stream = target.action == "converse-stream";
    if let Some((_, error, _, _)) = ERRORS.iter().find(|(m, ..)| *m == target.model) {
        return wire.error(*error);
    }
    if target.model == "err.stream-throttle" {
        if !stream {
            return wire.error(CannedError::RateLimited);
        }
        let mut events = BedrockWire::stream_events(&canned_text());
        events.truncate(2);
        let mut bytes: Vec<u8> = events
            .iter()
            .flat_map(|(kind, payload)| bedrock::event_frame(kind, payload))
            .collect();
        bytes.extend(bedrock::exception_frame(
            "throttlingException",
            "Too many tokens, please wait before trying again.",
        ));
        return BedrockWire::stream_reply(vec![bytes.into()]);
    }
    if target.model == "err.first-exception" {
        let bytes = bedrock::exception_frame("serviceUnavailableException", "busy");
        return BedrockWire::stream_reply(vec![bytes.into()]);
    }
    let offered_tools = r.body["toolConfig"]["tools"]
        .as_array()
        .is_some_and(|tools| {
            tools.iter().any(|t| {
                t["toolSpec"]["name"] != portcullis_core::translate::bedrock::PLACEHOLDER_TOOL
            })
        });
    let canned = if offered_tools {
        canned_tools()
    } else {
        canned_text()
    };
    wire.reply(&canned, stream)
}

struct Setup {
    upstream: MockUpstream,
    gateway: GatewayProcess,
    wire: BedrockWire,
}

impl Setup {
    async fn start() -> Self {
        Self::start_with_level("info").await
    }

    /// A gateway with provider `aws` (credentials from the environment of the process, as
    /// `${VAR}`s) and `wrong` (a wrong secret), logging at `level`.
    async fn start_with_level(level: &str) -> Self {
        let wire = BedrockWire::default();
        let handler_wire = wire.clone();
        let upstream =
            MockUpstream::start(move |r| handler_wire.guarded(r, |r| answer(&handler_wire, r)))
                .await
                .unwrap();
        let base = format!("http://{}", upstream.addr);
        let mut models = vec![
            format!("  claude: {{ deployments: [{{ provider: aws, model: \"{CLAUDE}\" }}] }}"),
            format!("  titan: {{ deployments: [{{ provider: aws, model: \"{TITAN}\" }}] }}"),
            format!("  cohere: {{ deployments: [{{ provider: aws, model: \"{COHERE}\" }}] }}"),
            "  nova-embed: { deployments: [{ provider: aws, model: \"amazon.nova-pro-v1:0\" }] }"
                .to_owned(),
            format!("  wrong-key: {{ deployments: [{{ provider: wrong, model: \"{CLAUDE}\" }}] }}"),
            "  stream-throttle: { deployments: [{ provider: aws, model: err.stream-throttle }] }"
                .to_owned(),
            "  first-exception: { deployments: [{ provider: aws, model: err.first-exception }] }"
                .to_owned(),
        ];
        for (model, ..) in ERRORS {
            models.push(format!(
                "  {model}: {{ deployments: [{{ provider: aws, model: {model} }}] }}"
            ));
        }
        let yaml = format!(
            r#"
logging: {{ format: json, level: {level} }}
auth:
  keys:
    - {{ name: test, sha256: "{TEST_KEY_SHA256}" }}
providers:
  aws:
    type: bedrock
    region: us-east-1
    base_url: "{base}"
    access_key_id: ${{BEDROCK_TEST_KEY_ID}}
    secret_access_key: ${{BEDROCK_TEST_SECRET}}
    session_token: ${{BEDROCK_TEST_TOKEN}}
  wrong:
    type: bedrock
    region: us-east-1
    base_url: "{base}"
    access_key_id: ${{BEDROCK_TEST_KEY_ID}}
    secret_access_key: not-the-right-secret-key-0000000000000000
    session_token: ${{BEDROCK_TEST_TOKEN}}
models:
{}
"#,
            models.join("\n")
        );
        let gateway = GatewayProcess::start_with_env(
            BIN,
            &yaml,
            &[
                ("BEDROCK_TEST_KEY_ID", bedrock::ACCESS_KEY_ID),
                ("BEDROCK_TEST_SECRET", SECRET_ACCESS_KEY),
                ("BEDROCK_TEST_TOKEN", SESSION_TOKEN),
            ],
        )
        .await
        .unwrap();
        Self {
            upstream,
            gateway,
            wire,
        }
    }

    fn url(&self, path: &str) -> String {
        self.gateway.url(path)
    }

    /// Every request the mock received from the `aws` provider, each checked again.
    fn checked_requests(&self) -> Vec<Recorded> {
        let requests = self.upstream.requests();
        for r in &requests {
            self.wire
                .verify(r)
                .unwrap_or_else(|e| panic!("{}: {e}", r.path));
            assert_eq!(r.headers["x-amz-security-token"], SESSION_TOKEN);
        }
        requests
    }
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn chat_json_text_with_cached_usage() {
    let s = Setup::start().await;
    let body = json!({"model": "claude", "max_tokens": 200, "temperature": 0.2, "stop": ["END"],
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Say hello"}]});
    let (status, out) = json_of(
        post(s.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["id"], format!("chatcmpl-{REQUEST_ID}"));
    assert_eq!(out["model"], CLAUDE);
    let choice = &out["choices"][0];
    assert_eq!(
        choice["message"]["content"],
        "Hello from Bedrock, streamed in pieces."
    );
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
               "prompt_tokens_details": {"cached_tokens": 100},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );

    let requests = s.checked_requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        r.path,
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(r.headers["accept"], "application/json");
    let seen = s.wire.seen(r).unwrap();
    assert_eq!(seen.model, CLAUDE);
    assert!(!seen.stream);
    assert_eq!(seen.system, ["Be brief."]);
    assert_eq!(seen.messages.len(), 1);
    assert_eq!(seen.messages[0].parts, [SeenPart::Text("Say hello".into())]);
    assert_eq!((seen.max_tokens, seen.temperature), (Some(200), Some(0.2)));
    assert_eq!(seen.stop, ["END"]);
}

fn tool_request(stream: Option<bool>) -> Value {
    let mut body = json!({"model": "claude", "messages": [
    {"role": "user", "content": "Weather and time in Paris?"}],
    "tools": [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "time", "parameters": {"type": "object",
            "properties": {"zone": {"type": "string"}}}}},
    ]});
    if let Some(stream) = stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": stream});
    }
    body
}

fn expected_calls() -> Vec<(String, String, Value)> {
    canned_tools()
        .tool_calls
        .into_iter()
        .map(|c| (c.id, c.name, c.arguments))
        .collect()
}

#[tokio::test]
async fn chat_json_parallel_tool_calls() {
    let s = Setup::start().await;
    let (status, out) = json_of(
        post(s.url("/v1/chat/completions"), tool_request(None))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let message = &out["choices"][0]["message"];
    assert_eq!(message["content"], "Let me check both.");
    assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
    let calls: Vec<(String, String, Value)> = message["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "function");
            let args = c["function"]["arguments"].as_str().unwrap();
            (
                c["id"].as_str().unwrap().to_owned(),
                c["function"]["name"].as_str().unwrap().to_owned(),
                serde_json::from_str(args).unwrap(),
            )
        })
        .collect();
    assert_eq!(calls, expected_calls());
    let seen = s.wire.seen(&s.checked_requests()[0]).unwrap();
    assert_eq!(seen.tools, ["weather", "time"]);
}

/// Tool calls rebuilt from streamed chunks: by index, (id, name, arguments text).
fn streamed_calls(chunks: &[Value]) -> BTreeMap<u64, (String, String, String)> {
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let entry = calls.entry(call["index"].as_u64().unwrap()).or_default();
            if let Some(id) = call["id"].as_str() {
                assert!(entry.0.is_empty(), "one start per call");
                entry.0 = id.to_owned();
                entry.1 = call["function"]["name"].as_str().unwrap().to_owned();
            }
            entry
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
    }
    calls
}

async fn stream_chunks(s: &Setup, body: Value) -> (Vec<Value>, Vec<String>) {
    let response = post(s.url("/v1/chat/completions"), body)
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
    let data = sse_data(&response.text().await.unwrap());
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (chunks, data)
}

#[tokio::test]
async fn streamed_parallel_tool_calls_with_and_without_usage() {
    let s = Setup::start().await;
    for include_usage in [true, false] {
        let (chunks, data) = stream_chunks(&s, tool_request(Some(include_usage))).await;
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(
            chunks
                .iter()
                .all(|c| c["id"] == format!("chatcmpl-{REQUEST_ID}"))
        );
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Let me check both.");
        let calls: Vec<(String, String, Value)> = streamed_calls(&chunks)
            .into_values()
            .map(|(id, name, args)| (id, name, serde_json::from_str(&args).unwrap()))
            .collect();
        assert_eq!(calls, expected_calls());
        let finishes: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finishes, ["tool_calls"]);
        let usage: Vec<&Value> = chunks
            .iter()
            .filter(|c| c["choices"] == json!([]))
            .collect();
        if include_usage {
            assert_eq!(usage.len(), 1);
            assert_eq!(usage[0]["usage"]["prompt_tokens"], 300);
            assert_eq!(usage[0]["usage"]["completion_tokens"], 40);
        } else {
            assert!(
                usage.is_empty(),
                "the usage chunk is hidden when not asked for"
            );
        }
    }
    for r in s.checked_requests() {
        assert!(r.path.ends_with("/converse-stream"));
        assert_eq!(r.headers["accept"], "application/vnd.amazon.eventstream");
        assert!(s.wire.seen(&r).unwrap().stream);
    }
    // The access log has the usage either way.
    let lines = s.gateway.access_lines(2).await;
    assert!(
        lines
            .iter()
            .all(|l| l["gen_ai.usage.input_tokens"] == 300 && l["gen_ai.usage.output_tokens"] == 40),
        "{lines:?}"
    );
}

#[tokio::test]
async fn streamed_text_and_tool_history_without_offered_tools() {
    let s = Setup::start().await;
    let body = json!({"model": "claude", "stream": true, "tool_choice": "none",
    "tools": [{"type": "function", "function": {"name": "weather"}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
            "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
        {"role": "user", "content": "Summarise."},
    ]});
    let (chunks, _) = stream_chunks(&s, body).await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from Bedrock, streamed in pieces.");
    assert!(streamed_calls(&chunks).is_empty());
    let seen = s.wire.seen(&s.checked_requests()[0]).unwrap();
    assert!(seen.tools.is_empty(), "tool_choice none offers no tool");
    assert_eq!(
        seen.messages[1].parts,
        [SeenPart::ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: json!({"city": "Paris"})
        }]
    );
    assert_eq!(
        seen.messages[2].parts,
        [
            SeenPart::ToolResult {
                id: "call_1".into(),
                content: "18 C".into()
            },
            SeenPart::Text("Summarise.".into())
        ]
    );
}

#[tokio::test]
async fn titan_embeddings_one_call_per_input() {
    let s = Setup::start().await;
    let body = json!({"model": "titan", "input": ["one", "two words", "three more words"],
        "dimensions": 256});
    let (status, out) = json_of(post(s.url("/v1/embeddings"), body).send().await.unwrap()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "list");
    assert_eq!(out["model"], TITAN);
    let vectors: Vec<&Value> = out["data"].as_array().unwrap().iter().collect();
    assert_eq!(vectors.len(), 3);
    for (i, (v, len)) in vectors.iter().zip([3, 9, 16]).enumerate() {
        assert_eq!(v["index"], i);
        assert_eq!(v["embedding"], json!([len as f64, 0.5, -0.5]));
    }
    assert_eq!(out["usage"], json!({"prompt_tokens": 6, "total_tokens": 6}));
    let requests = s.checked_requests();
    assert_eq!(requests.len(), 3);
    let mut texts: Vec<&str> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
            assert_eq!(r.body["dimensions"], 256);
            r.body["inputText"].as_str().unwrap()
        })
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, ["one", "three more words", "two words"]);

    // base64, as the OpenAI SDKs ask by default: little-endian f32s.
    let body = json!({"model": "titan", "input": "abcd", "encoding_format": "base64"});
    let (_, out) = json_of(post(s.url("/v1/embeddings"), body).send().await.unwrap()).await;
    // 4.0, 0.5, -0.5 as f32 LE.
    assert_eq!(out["data"][0]["embedding"], "AACAQAAAAD8AAAC/");
}

#[tokio::test]
async fn cohere_embeddings_in_one_call() {
    let s = Setup::start().await;
    let body = json!({"model": "cohere", "input": ["a b", "c d e"]});
    let (status, out) = json_of(post(s.url("/v1/embeddings"), body).send().await.unwrap()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"][1]["embedding"], json!([5.0, 0.5, -0.5]));
    assert_eq!(
        out["usage"]["prompt_tokens"], 5,
        "from the token count header"
    );
    let requests = s.checked_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body,
        json!({"texts": ["a b", "c d e"], "input_type": "search_document"})
    );
    // With embedding_types the answer comes by type.
    let body = json!({"model": "cohere", "input": "q", "input_type": "search_query",
        "embedding_types": ["float"]});
    let (status, out) = json_of(post(s.url("/v1/embeddings"), body).send().await.unwrap()).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"][0]["embedding"], json!([1.0, 0.5, -0.5]));
    // A model that is neither Titan nor Cohere is not served.
    let body = json!({"model": "nova-embed", "input": "q"});
    let (status, out) = json_of(post(s.url("/v1/embeddings"), body).send().await.unwrap()).await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (502, Some("upstream_unsupported"))
    );
    assert_eq!(s.upstream.count(), 2, "no call for an unsupported model");
}

#[tokio::test]
async fn upstream_errors_map_to_openai_errors() {
    let s = Setup::start().await;
    for (model, _, status, code) in ERRORS {
        for stream in [false, true] {
            let body = json!({"model": model, "stream": stream,
                "messages": [{"role": "user", "content": "x"}]});
            let (got, out) = json_of(
                post(s.url("/v1/chat/completions"), body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(
                (got, out["error"]["code"].as_str()),
                (status, Some(code)),
                "{model} stream={stream}: {out}"
            );
            for field in ["message", "type", "param", "code"] {
                assert!(out["error"].get(field).is_some(), "{out}");
            }
            let message = out["error"]["message"].as_str().unwrap();
            assert!(!message.contains("127.0.0.1"), "{message}");
            if code == "upstream_auth_failed" {
                assert!(
                    !message.contains("access"),
                    "auth messages are not relayed: {message}"
                );
            }
        }
    }
    let (_, out) = json_of(
        post(
            s.url("/v1/chat/completions"),
            json!({"model": "err.context", "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Input is too long for requested model.")
    );
    s.checked_requests();
}

#[tokio::test]
async fn stream_exceptions() {
    let s = Setup::start().await;
    // Mid-stream: the client got the first chunks, then one error event.
    let body = json!({"model": "stream-throttle", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    let response = post(s.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let data = sse_data(&response.text().await.unwrap());
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_rate_limited", "{data:?}");
    assert!(data.iter().any(|d| d.contains("\"role\":\"assistant\"")));
    assert!(!data.iter().any(|d| d == "[DONE]"));
    // As the first message: the attempt fails before any event, so the client gets a status.
    let body = json!({"model": "first-exception", "stream": true,
        "messages": [{"role": "user", "content": "x"}]});
    let (status, out) = json_of(
        post(s.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (503, Some("upstream_overloaded"))
    );
    s.checked_requests();
}

#[tokio::test]
async fn a_wrong_signature_is_refused_by_the_mock() {
    let s = Setup::start().await;
    let body = json!({"model": "wrong-key", "messages": [{"role": "user", "content": "x"}]});
    let (status, out) = json_of(
        post(s.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, out["error"]["code"].as_str()),
        (502, Some("upstream_auth_failed")),
        "{out}"
    );
    let requests = s.upstream.requests();
    assert_eq!(requests.len(), 1);
    let err = s.wire.verify(&requests[0]).unwrap_err();
    assert!(err.contains("does not match"), "{err}");
}

#[tokio::test]
async fn untranslatable_requests_are_refused_before_any_call() {
    let s = Setup::start().await;
    let body = json!({"model": "claude", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let (status, out) = json_of(
        post(s.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{out}");
    assert_eq!(out["error"]["code"], "untranslatable_request", "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image_url")
    );
    assert!(
        !out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("example.com")
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn no_secret_or_content_reaches_the_logs() {
    // Trace level: everything the gateway and its libraries would log, is.
    let s = Setup::start_with_level("trace").await;
    let canary = "CANARY-bedrock-5d1e";
    let chat = |stream: bool, model: &str| {
        json!({"model": model, "stream": stream,
               "messages": [{"role": "user", "content": canary}]})
    };
    for stream in [false, true] {
        for model in ["claude", "err.throttle", "wrong-key"] {
            post(s.url("/v1/chat/completions"), chat(stream, model))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
    }
    post(
        s.url("/v1/embeddings"),
        json!({"model": "titan", "input": canary}),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(s.gateway.access_lines(7).await.len(), 7);
    let logs = s.gateway.logs().join("\n");
    assert!(
        logs.contains(r#""level":"TRACE""#),
        "the trace logs are there"
    );
    for secret in [
        SECRET_ACCESS_KEY,
        SESSION_TOKEN,
        "not-the-right-secret",
        canary,
        "Hello from Bedrock",
        "Signature=",
    ] {
        let hits: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "{secret} leaked into logs: {hits:?}");
    }
}

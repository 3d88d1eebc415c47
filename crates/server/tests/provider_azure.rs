//! End to end through the real binary: Azure OpenAI (deployment URLs with an api-version; API
//! key, static bearer token and Entra ID client-credentials auth against a local token
//! endpoint), Azure's content filter, and OpenAI-shaped embeddings through the `openai` type and
//! the `mistral` preset.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{BIN, config, post, sse_data};
use portcullis_testkit::upstream::openai_reply;
use portcullis_testkit::{GatewayProcess, MockUpstream, Recorded, Reply};
use serde_json::{Value, json};

const API_KEY: &str = "az-key-secret-0001";
const BEARER: &str = "static-token-0001";
const CLIENT_SECRET: &str = "entra-secret+/=0001";
const DEFAULT_VERSION: &str = "2024-10-21";

fn last_user_text(r: &Recorded) -> String {
    r.body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn azure_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": message}}))
}

/// Behaves like an Azure OpenAI resource: deployment URLs, api-version, credentials, the
/// content filter; answers in OpenAI's shapes.
fn azure(r: &Recorded) -> Reply {
    if r.path.starts_with("/v1/") {
        // The `openai` and `mistral` providers of the same tests.
        return openai_reply(r);
    }
    let Some((deployment, op)) = r
        .path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.split_once('/'))
    else {
        return azure_error(404, "404", "Resource not found");
    };
    if !r.query.starts_with("api-version=") || deployment.is_empty() {
        return azure_error(404, "404", "Resource not found");
    }
    let auth = r.headers.get("authorization").map(String::as_str);
    let authorized = r.headers.get("api-key").map(String::as_str) == Some(API_KEY)
        || auth == Some(&format!("Bearer {BEARER}"))
        || auth.is_some_and(|a| a.starts_with("Bearer token-"));
    if !authorized {
        return azure_error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        );
    }
    let text = last_user_text(r);
    if text == "revoke" && auth == Some("Bearer token-1") {
        return azure_error(401, "401", "Access token has expired or is invalid.");
    }
    if text == "filtered" {
        return Reply::json(
            400,
            json!({"error": {
                "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
                "type": null, "param": "prompt", "code": "content_filter", "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
                    "hate": {"filtered": false, "severity": "safe"},
                    "jailbreak": {"filtered": false, "detected": false},
                    "self_harm": {"filtered": false, "severity": "safe"},
                    "sexual": {"filtered": false, "severity": "safe"},
                    "violence": {"filtered": true, "severity": "medium"}}}}}),
        );
    }
    if text == "filter-output" {
        return Reply::json(
            200,
            json!({"id": "chatcmpl-az", "object": "chat.completion", "created": 1_700_000_000,
                "model": "gpt-4o-2024-08-06", "prompt_filter_results": [],
                "choices": [{"index": 0, "finish_reason": "content_filter",
                    "message": {"role": "assistant", "content": null},
                    "content_filter_results": {"violence": {"filtered": true, "severity": "high"}}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 0, "total_tokens": 9}}),
        );
    }
    let mut as_openai = r.clone();
    as_openai.path = format!("/v1/{op}");
    openai_reply(&as_openai)
}

/// An Entra ID token endpoint: numbered tokens; tenant `short-tenant` gets 2-second tokens,
/// tenant `bad-tenant` is refused.
fn token_endpoint(issued: Arc<AtomicUsize>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r| {
        if r.path.starts_with("/bad-tenant/") {
            return Reply::json(
                400,
                json!({"error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided."}),
            );
        }
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        let expires = if r.path.starts_with("/short-tenant/") {
            2
        } else {
            3599
        };
        Reply::json(
            200,
            json!({"token_type": "Bearer", "expires_in": expires, "ext_expires_in": expires,
                "access_token": format!("token-{n}")}),
        )
    }
}

struct Setup {
    upstream: MockUpstream,
    tokens: MockUpstream,
    gw: GatewayProcess,
}

async fn setup() -> Setup {
    let upstream = MockUpstream::start(azure).await.unwrap();
    let tokens = MockUpstream::start(token_endpoint(Arc::default()))
        .await
        .unwrap();
    let endpoint = format!("http://{}", upstream.addr);
    let authority = format!("http://{}", tokens.addr);
    let entra = |tenant: &str| {
        format!(
            r#"entra: {{ tenant_id: {tenant}, client_id: app-456, client_secret: "{CLIENT_SECRET}", authority: "{authority}" }}"#
        )
    };
    let providers = format!(
        r#"  az-key: {{ type: azure, endpoint: "{endpoint}/", api_key: "{API_KEY}" }}
  az-bearer: {{ type: azure, endpoint: "{endpoint}", bearer_token: "{BEARER}" }}
  az-entra: {{ type: azure, endpoint: "{endpoint}", api_version: 2025-04-01-preview, {} }}
  az-short: {{ type: azure, endpoint: "{endpoint}", {} }}
  az-bad: {{ type: azure, endpoint: "{endpoint}", {} }}
  oai: {{ type: openai, base_url: "{endpoint}/v1", api_key: sk-oai-0001 }}
  mis: {{ type: openai_compatible, preset: mistral, base_url: "{endpoint}/v1", api_key: mis-key-0001 }}"#,
        entra("tenant-123"),
        entra("short-tenant"),
        entra("bad-tenant"),
    );
    let models = r#"  gpt-key: { deployments: [{ provider: az-key, model: gpt4o-prod }] }
  gpt-bearer: { deployments: [{ provider: az-bearer, model: gpt4o-prod }] }
  gpt-entra: { deployments: [{ provider: az-entra, model: gpt4o-entra }] }
  gpt-short: { deployments: [{ provider: az-short, model: gpt4o-short }] }
  gpt-bad: { deployments: [{ provider: az-bad, model: gpt4o-bad }] }
  emb-key: { deployments: [{ provider: az-key, model: emb-3-small }] }
  emb-entra: { deployments: [{ provider: az-entra, model: emb-3-large }] }
  emb-openai: { deployments: [{ provider: oai, model: text-embedding-3-small }] }
  emb-mistral: { deployments: [{ provider: mis, model: mistral-embed }] }
  chat-mistral: { deployments: [{ provider: mis, model: mistral-small-latest }] }"#;
    let gw = GatewayProcess::start(BIN, &config(&providers, models))
        .await
        .unwrap();
    Setup {
        upstream,
        tokens,
        gw,
    }
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

async fn send(gw: &GatewayProcess, body: Value) -> (u16, Value) {
    let response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn api_key_requests_go_to_deployment_urls_with_the_api_version() {
    let s = setup().await;
    let (status, answer) = send(&s.gw, chat("gpt-key", "hi")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], "Hello world");
    let sent = &s.upstream.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(sent.query, format!("api-version={DEFAULT_VERSION}"));
    assert_eq!(sent.headers["api-key"], API_KEY);
    assert!(!sent.headers.contains_key("authorization"));

    let mut body = chat("gpt-key", "hi");
    body["stream"] = json!(true);
    let response = post(s.gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_data(&response.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let sent = &s.upstream.requests()[1];
    assert_eq!(
        sent.body["stream_options"]["include_usage"], true,
        "usage asked for upstream"
    );

    let response = post(
        s.gw.url("/v1/completions"),
        json!({"model": "gpt-key", "prompt": "Once"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        s.upstream.requests()[2].path,
        "/openai/deployments/gpt4o-prod/completions"
    );

    let (status, _) = send(&s.gw, chat("gpt-bearer", "hi")).await;
    assert_eq!(status, 200);
    let sent = &s.upstream.requests()[3];
    assert_eq!(sent.headers["authorization"], format!("Bearer {BEARER}"));
    assert!(!sent.headers.contains_key("api-key"));

    let lines = s.gw.access_lines(4).await;
    assert_eq!(
        lines[1]["gen_ai.usage.output_tokens"], 2,
        "stream usage known"
    );
}

#[tokio::test]
async fn entra_tokens_are_fetched_once_and_shared() {
    let s = setup().await;
    let requests = (0..8).map(|_| send(&s.gw, chat("gpt-entra", "hi")));
    for (status, answer) in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200, "{answer}");
    }
    let (status, _) = send(&s.gw, chat("gpt-entra", "again")).await;
    assert_eq!(status, 200);
    assert_eq!(
        s.tokens.count(),
        1,
        "one token for concurrent and later requests"
    );

    let token_request = &s.tokens.requests()[0];
    assert_eq!(token_request.method, "POST");
    assert_eq!(token_request.path, "/tenant-123/oauth2/v2.0/token");
    assert_eq!(
        token_request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let form = std::str::from_utf8(&token_request.raw_body).unwrap();
    let mut fields: Vec<&str> = form.split('&').collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "client_id=app-456",
            "client_secret=entra-secret%2B%2F%3D0001",
            "grant_type=client_credentials",
            "scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default",
        ]
    );

    for sent in s.upstream.requests() {
        assert_eq!(sent.headers["authorization"], "Bearer token-1");
        assert_eq!(
            sent.path,
            "/openai/deployments/gpt4o-entra/chat/completions"
        );
        assert_eq!(sent.query, "api-version=2025-04-01-preview");
    }
}

#[tokio::test]
async fn entra_tokens_are_renewed_before_expiry_and_after_a_401() {
    let s = setup().await;
    assert_eq!(send(&s.gw, chat("gpt-short", "hi")).await.0, 200);
    assert_eq!(send(&s.gw, chat("gpt-short", "hi")).await.0, 200);
    assert_eq!(s.tokens.count(), 1);
    // The 2-second token is renewed after half its lifetime.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(send(&s.gw, chat("gpt-short", "hi")).await.0, 200);
    assert_eq!(s.tokens.count(), 2);
    let auths: Vec<String> = s
        .upstream
        .requests()
        .iter()
        .map(|r| r.headers["authorization"].clone())
        .collect();
    assert_eq!(
        auths,
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );

    // A token the resource refuses is dropped: the next request fetches a new one.
    let s = setup().await;
    let (status, body) = send(&s.gw, chat("gpt-entra", "revoke")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_auth_failed"))
    );
    assert_eq!(send(&s.gw, chat("gpt-entra", "revoke")).await.0, 200);
    assert_eq!(s.tokens.count(), 2);
    assert_eq!(
        s.upstream.requests()[1].headers["authorization"],
        "Bearer token-2"
    );
}

#[tokio::test]
async fn a_refused_token_request_is_a_gateway_credential_failure() {
    let s = setup().await;
    let (status, body) = send(&s.gw, chat("gpt-bad", "hi")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_auth_failed")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("AADSTS"),
        "the token endpoint's answer is not relayed: {body}"
    );
    assert_eq!(s.upstream.count(), 0, "nothing sent without a token");
    let logs = s.gw.logs().join("\n");
    for secret in [CLIENT_SECRET, "entra-secret", "AADSTS", "127.0.0.1:"] {
        let hits: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret) && !l.contains("\"listening\""))
            .collect();
        assert!(hits.is_empty(), "{secret} in logs: {hits:?}");
    }
}

#[tokio::test]
async fn content_filter_refusals_classify_as_content_filter() {
    let s = setup().await;
    for streamed in [false, true] {
        let mut body = chat("gpt-key", "filtered");
        body["stream"] = json!(streamed);
        let (status, body) = send(&s.gw, body).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("content_filter")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("content management policy")
        );
    }
    assert_eq!(s.upstream.count(), 2, "a filtered request is not retried");
    let (status, answer) = send(&s.gw, chat("gpt-key", "filter-output")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["choices"][0]["finish_reason"], "content_filter");
}

#[tokio::test]
async fn embeddings_reach_azure_openai_and_mistral_deployments() {
    let s = setup().await;
    let cases = [
        (
            "emb-key",
            "/openai/deployments/emb-3-small/embeddings",
            "emb-3-small",
        ),
        (
            "emb-entra",
            "/openai/deployments/emb-3-large/embeddings",
            "emb-3-large",
        ),
        ("emb-openai", "/v1/embeddings", "text-embedding-3-small"),
        ("emb-mistral", "/v1/embeddings", "mistral-embed"),
    ];
    for (i, (model, path, upstream_model)) in cases.iter().enumerate() {
        let response = post(
            s.gw.url("/v1/embeddings"),
            json!({"model": model, "input": ["a", "b"], "encoding_format": "float"}),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), 200, "{model}");
        let list: Value = response.json().await.unwrap();
        assert_eq!(list["object"], "list");
        assert_eq!(list["data"].as_array().map(Vec::len), Some(2), "{model}");
        assert_eq!(list["usage"]["prompt_tokens"], 4);
        let sent = &s.upstream.requests()[i];
        assert_eq!(sent.path, *path, "{model}");
        assert_eq!(sent.body["model"], *upstream_model);
        assert_eq!(sent.body["input"], json!(["a", "b"]));
        assert_eq!(sent.body["encoding_format"], "float");
    }
    let sent = s.upstream.requests();
    assert_eq!(sent[2].headers["authorization"], "Bearer sk-oai-0001");
    assert_eq!(sent[3].headers["authorization"], "Bearer mis-key-0001");
    let lines = s.gw.access_lines(4).await;
    assert!(lines.iter().all(|l| l["gen_ai.usage.input_tokens"] == 4));

    // The Mistral preset does not send stream_options (Mistral rejects it).
    let mut body = chat("chat-mistral", "hi");
    body["stream"] = json!(true);
    post(s.gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        s.upstream.requests()[4]
            .body
            .get("stream_options")
            .is_none()
    );
}

#[tokio::test]
async fn no_azure_secret_in_the_gateway_output() {
    let s = setup().await;
    for model in ["gpt-key", "gpt-bearer", "gpt-entra", "gpt-bad"] {
        send(&s.gw, chat(model, "hi")).await;
        send(&s.gw, chat(model, "filtered")).await;
    }
    assert_eq!(s.gw.access_lines(8).await.len(), 8);
    let logs = s.gw.logs().join("\n");
    for secret in [API_KEY, BEARER, CLIENT_SECRET, "token-1", "Hello world"] {
        assert!(!logs.contains(secret), "{secret} leaked into logs");
    }
}

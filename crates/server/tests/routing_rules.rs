//! Conditional routing and capability filtering through the real binary, against two local
//! mock upstreams: routing rules on a header and on tools send requests to another model; an
//! image skips a deployment whose model lacks vision; a prompt too long for a small context
//! window skips that deployment; and a request no deployment can serve gets a 400 saying why.
//! Which upstream received each request, and the `x-portcullis-deployment` header, say where it
//! went.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use common::{BIN, chat_body, client, config, post};
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY};
use serde_json::{Value, json};

/// Two OpenAI-compatible upstreams, `a` and `b`, and a gateway with `models` and `extra` YAML.
async fn gateway(models: &str, extra: &str) -> (MockUpstream, MockUpstream, GatewayProcess) {
    let a = MockUpstream::openai().await.unwrap();
    let b = MockUpstream::openai().await.unwrap();
    let providers = format!(
        "  a: {{ type: openai_compatible, base_url: \"{}\" }}\n  \
         b: {{ type: openai_compatible, base_url: \"{}\" }}",
        a.base_url(),
        b.base_url()
    );
    let yaml = format!("{}{extra}", config(&providers, models));
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (a, b, gw)
}

/// Sends `body` to the chat endpoint with `headers`; the status, the deployment that served
/// (if any) and the body.
async fn chat(gw: &GatewayProcess, body: Value, headers: &[(&str, &str)]) -> (u16, String, Value) {
    let mut request = post(gw.url("/v1/chat/completions"), body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let deployment = response
        .headers()
        .get("x-portcullis-deployment")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, deployment, response.json().await.unwrap())
}

/// The model each request `upstream` received asked for.
fn models_received(upstream: &MockUpstream) -> Vec<String> {
    upstream
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap_or_default().to_owned())
        .collect()
}

const RULED_MODELS: &str = r#"  gpt-test: { deployments: [{ provider: a, model: everyday }] }
  premium: { deployments: [{ provider: b, model: premium-model }] }
  tooled: { deployments: [{ provider: b, model: tool-model }] }"#;

const RULES: &str = r#"
routing:
  rules:
    - name: premium-header
      match: { headers: { x-tier: premium }, model: "gpt-*" }
      route: premium
    - name: tool-calls
      match: { has_tools: true }
      route: tooled
"#;

#[tokio::test]
async fn a_header_rule_and_a_tools_rule_send_requests_to_other_models() {
    let (a, b, gw) = gateway(RULED_MODELS, RULES).await;

    let (status, served, _) = chat(&gw, chat_body("gpt-test"), &[]).await;
    assert_eq!(
        (status, served.as_str()),
        (200, "a/everyday"),
        "no rule matches"
    );

    let (status, served, body) = chat(&gw, chat_body("gpt-test"), &[("x-tier", "premium")]).await;
    assert_eq!(
        (status, served.as_str()),
        (200, "b/premium-model"),
        "{body}"
    );
    let (_, served, _) = chat(&gw, chat_body("gpt-test"), &[("x-tier", "basic")]).await;
    assert_eq!(served, "a/everyday", "another value of the header");

    let mut with_tools = chat_body("gpt-test");
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "lookup",
        "parameters": {"type": "object"}}}]);
    let (status, served, _) = chat(&gw, with_tools.clone(), &[]).await;
    assert_eq!((status, served.as_str()), (200, "b/tool-model"));
    // The first rule that matches wins: the header's rule comes first.
    let (_, served, _) = chat(&gw, with_tools, &[("x-tier", "premium")]).await;
    assert_eq!(served, "b/premium-model");

    assert_eq!(models_received(&a), ["everyday", "everyday"]);
    assert_eq!(
        models_received(&b),
        ["premium-model", "tool-model", "premium-model"]
    );

    // The access log names the rule and the model it chose.
    let lines = gw.access_lines(5).await;
    let routed: Vec<(Value, Value, Value)> = lines
        .iter()
        .map(|l| {
            (
                l["gen_ai.request.model"].clone(),
                l["route.rule"].clone(),
                l["route.model"].clone(),
            )
        })
        .collect();
    assert_eq!(
        routed[1],
        (json!("gpt-test"), json!("premium-header"), json!("premium"))
    );
    assert_eq!(routed[0].1, Value::Null, "no rule, no field");
}

#[tokio::test]
async fn an_image_skips_the_deployment_whose_model_lacks_vision() {
    let models = r#"  gpt-test:
    deployments:
      - { provider: a, model: text-only, capabilities: { vision: false } }
      - { provider: b, model: seeing }"#;
    let (a, b, gw) = gateway(models, "").await;
    let image = json!({"model": "gpt-test", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let (status, served, _) = chat(&gw, image, &[]).await;
    assert_eq!((status, served.as_str()), (200, "b/seeing"));
    let (status, served, _) = chat(&gw, chat_body("gpt-test"), &[]).await;
    assert_eq!(
        (status, served.as_str()),
        (200, "a/text-only"),
        "text keeps the config's order"
    );
    assert_eq!(models_received(&a), ["text-only"]);
    assert_eq!(models_received(&b), ["seeing"]);
}

#[tokio::test]
async fn a_prompt_too_long_for_a_small_context_window_skips_that_deployment() {
    let models = r#"  gpt-test:
    deployments:
      - { provider: a, model: small-context, capabilities: { context_window: 1000 } }
      - { provider: b, model: large-context, capabilities: { context_window: 200000 } }"#;
    let (a, b, gw) = gateway(models, "").await;
    let long = json!({"model": "gpt-test", "messages": [
        {"role": "user", "content": "Summarise this. ".repeat(800)}]});
    let (status, served, _) = chat(&gw, long, &[]).await;
    assert_eq!((status, served.as_str()), (200, "b/large-context"));
    let (status, served, _) = chat(&gw, chat_body("gpt-test"), &[]).await;
    assert_eq!((status, served.as_str()), (200, "a/small-context"));
    // max_tokens counts against the window too.
    let mut asks_much = chat_body("gpt-test");
    asks_much["max_tokens"] = json!(999);
    let (_, served, _) = chat(&gw, asks_much, &[]).await;
    assert_eq!(served, "b/large-context");
    assert_eq!(models_received(&a), ["small-context"]);
    assert_eq!(models_received(&b), ["large-context", "large-context"]);
}

#[tokio::test]
async fn a_request_no_deployment_can_serve_gets_a_400_saying_why() {
    let models = r#"  gpt-test:
    deployments:
      - { provider: a, model: gpt-3.5-turbo }
      - { provider: b, model: small, capabilities: { context_window: 500, vision: true } }"#;
    let (a, b, gw) = gateway(models, "").await;
    let image = json!({"model": "gpt-test", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]});
    let (status, _, body) = chat(&gw, image, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "no_eligible_deployment");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "no deployment of model 'gpt-test' can serve this request: a/gpt-3.5-turbo accepts \
             no images; b/small has a context window of 500 tokens"
        ),
        "{message}"
    );

    let long = json!({"model": "gpt-test", "messages": [
        {"role": "user", "content": "Summarise this. ".repeat(8000)}]});
    let (status, _, body) = chat(&gw, long, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["param"], "messages");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exceeds the context window of every deployment of model 'gpt-test' (the largest is 16385 tokens)"),
        "{message}"
    );
    assert_eq!((a.count(), b.count()), (0, 0), "nothing was sent upstream");

    // In Anthropic's shape on /v1/messages.
    let response = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", TEST_KEY)
        .json(
            &json!({"model": "gpt-test", "max_tokens": 100, "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "url",
                "url": "https://example.com/cat.png"}}]}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("accepts no images")
    );
}

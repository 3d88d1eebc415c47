//! Tests of the filter: each capability, tags, the prompt's size against context windows (and
//! when it is tokenized), the messages of the 400, and the strategies over what is kept.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::pipeline::parse::parse;
use crate::runtime::Runtime;

/// A runtime whose model `m` has the deployments given (YAML flow mappings of mock providers
/// `a`, `b`, `c`), with `extra` YAML under the model.
fn runtime(deployments: &[&str], extra: &str) -> Runtime {
    let yaml = format!(
        "providers: {{ a: {{ type: mock }}, b: {{ type: mock }}, c: {{ type: mock }} }}\n\
         models:\n  m:\n    deployments: [{}]\n{extra}",
        deployments.join(", ")
    );
    let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("{p:?}"));
    let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
    Runtime::build(&config, &http)
}

fn request(op: Operation, body: &Value) -> (ApiRequest, RequestCtx) {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut ctx = RequestCtx::new(op.endpoint(), "t", None);
    ctx.body_bytes = bytes.len();
    (parse(op, &bytes).unwrap(), ctx)
}

fn chat(extra: Value) -> (ApiRequest, RequestCtx) {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    request(Operation::Chat, &body)
}

fn image_chat() -> (ApiRequest, RequestCtx) {
    request(
        Operation::Chat,
        &json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    )
}

fn kept(rt: &Runtime, (req, mut ctx): (ApiRequest, RequestCtx)) -> Result<Vec<usize>, Ineligible> {
    eligible(&rt.routes["m"], &req, ctx.body_bytes, &mut ctx)
}

#[test]
fn an_image_skips_deployments_without_vision() {
    let rt = runtime(
        &[
            "{ provider: a, model: text-only, capabilities: { vision: false } }",
            "{ provider: b, model: seeing, capabilities: { vision: true } }",
            "{ provider: c, model: unknown }",
        ],
        "",
    );
    assert_eq!(kept(&rt, image_chat()), Ok(vec![1, 2]));
    assert_eq!(
        kept(&rt, chat(json!({}))),
        Ok(vec![0, 1, 2]),
        "text goes anywhere"
    );

    let blind = runtime(&["{ provider: a, model: gpt-3.5-turbo }"], "");
    let refused = kept(&blind, image_chat()).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "no deployment of model 'm' accepts images"
    );
    assert_eq!(refused.param(), Some("messages"));
    assert_eq!(refused.kind(), "no_eligible_deployment");
    let anthropic = request(
        Operation::Messages,
        &json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]}),
    );
    assert!(
        kept(&blind, anthropic).is_err(),
        "Anthropic image blocks too"
    );
}

#[test]
fn tools_json_schema_and_streams_each_skip_what_refuses_them() {
    let rt = runtime(
        &[
            "{ provider: a, model: plain, capabilities: { tools: false, json_schema: false, streaming: false } }",
            "{ provider: b, model: able, capabilities: { tools: true, json_schema: true, streaming: true } }",
        ],
        "",
    );
    let tools = json!({"tools": [{"type": "function", "function": {"name": "f"}}]});
    let schema = json!({"response_format": {"type": "json_schema", "json_schema": {"name": "s"}}});
    for extra in [tools.clone(), schema.clone(), json!({"stream": true})] {
        assert_eq!(kept(&rt, chat(extra.clone())), Ok(vec![1]), "{extra}");
    }
    assert_eq!(kept(&rt, chat(json!({"tools": []}))), Ok(vec![0, 1]));
    let only_plain = runtime(
        &[
            "{ provider: a, model: plain, capabilities: { tools: false, json_schema: false, streaming: false } }",
        ],
        "",
    );
    let messages = [
        (tools, "no deployment of model 'm' accepts tools", "tools"),
        (
            schema,
            "no deployment of model 'm' accepts response_format json_schema",
            "response_format",
        ),
        (
            json!({"stream": true}),
            "no deployment of model 'm' can stream; send the request without stream: true",
            "stream",
        ),
    ];
    for (extra, message, param) in messages {
        let e = kept(&only_plain, chat(extra)).unwrap_err();
        assert_eq!((e.to_string().as_str(), e.param()), (message, Some(param)));
    }
}

#[test]
fn a_long_prompt_skips_small_context_windows() {
    let rt = runtime(
        &[
            "{ provider: a, model: small, capabilities: { context_window: 1000 } }",
            "{ provider: b, model: large, capabilities: { context_window: 100000 } }",
        ],
        "",
    );
    let short = chat(json!({}));
    assert_eq!(kept(&rt, short), Ok(vec![0, 1]));
    let long = chat(json!({"messages": [{"role": "user", "content": "word ".repeat(3000)}]}));
    assert_eq!(kept(&rt, long), Ok(vec![1]));
    // max_tokens counts against the window too.
    let asks_much = chat(json!({"max_tokens": 999}));
    assert_eq!(kept(&rt, asks_much), Ok(vec![1]));

    let too_long = chat(
        json!({"messages": [{"role": "user", "content": "word ".repeat(150_000)}],
        "max_tokens": 100}),
    );
    let e = kept(&rt, too_long).unwrap_err();
    assert_eq!(e.kind(), "context_length_exceeded");
    let text = e.to_string();
    assert!(
        text.starts_with("the prompt (~")
            && text.ends_with(
                "tokens) plus max_tokens (100) exceeds the context window of every deployment \
                 of model 'm' (the largest is 100000 tokens)"
            ),
        "{text}"
    );
}

#[test]
fn the_prompt_is_tokenized_only_when_its_size_is_in_doubt_and_then_once() {
    let rt = runtime(
        &["{ provider: a, model: small, capabilities: { context_window: 2000 } }"],
        "",
    );
    let (req, mut ctx) = chat(json!({}));
    let route = &rt.routes["m"];
    assert!(eligible(route, &req, ctx.body_bytes, &mut ctx).is_ok());
    assert_eq!(ctx.prompt_estimate, None, "the body's size settled it");

    let (req, mut ctx) =
        chat(json!({"messages": [{"role": "user", "content": "word ".repeat(500)}]}));
    assert!(ctx.body_bytes > 2000);
    assert_eq!(eligible(route, &req, ctx.body_bytes, &mut ctx), Ok(vec![0]));
    let estimate = ctx.prompt_estimate.unwrap();
    assert!(estimate > 400 && estimate < 2000, "{estimate}");
    // A figure another stage computed is used as is.
    ctx.prompt_estimate = Some(5000);
    assert!(eligible(route, &req, ctx.body_bytes, &mut ctx).is_err());

    // An image has no byte bound: its estimate (1,600 tokens an image) is computed.
    let (req, mut ctx) = image_chat();
    assert!(eligible(route, &req, ctx.body_bytes, &mut ctx).is_ok());
    assert!(ctx.prompt_estimate.is_some());
    // Without a known window nothing is estimated.
    let unknown = runtime(&["{ provider: a, model: unknown }"], "");
    let (req, mut ctx) = image_chat();
    assert!(eligible(&unknown.routes["m"], &req, ctx.body_bytes, &mut ctx).is_ok());
    assert_eq!(ctx.prompt_estimate, None);
}

#[test]
fn max_tokens_above_the_largest_output_skips_the_deployment() {
    let rt = runtime(
        &[
            "{ provider: a, model: gpt-4o-2024-05-13 }",
            "{ provider: b, model: gpt-4o }",
        ],
        "",
    );
    assert_eq!(kept(&rt, chat(json!({"max_tokens": 8000}))), Ok(vec![1]));
    assert_eq!(
        kept(&rt, chat(json!({"max_completion_tokens": 4000}))),
        Ok(vec![0, 1])
    );
    let e = kept(&rt, chat(json!({"max_tokens": 20000}))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "max_tokens (20000) is more than any deployment of model 'm' can write (at most 16384 \
         tokens)"
    );
    assert_eq!(e.param(), Some("max_tokens"));
}

#[test]
fn required_and_excluded_tags_choose_deployments() {
    let rt = runtime(
        &[
            "{ provider: a, tags: [zero_retention, \"region:us\"] }",
            "{ provider: b, tags: [zero_retention, \"region:eu-west\", shared] }",
            "{ provider: c, tags: [zero_retention, \"region:eu-central\"] }",
        ],
        "    require_tags: [zero_retention, \"region:eu*\"]\n    exclude_tags: [shared]\n",
    );
    assert_eq!(kept(&rt, chat(json!({}))), Ok(vec![2]));
    let d = &rt.routes["m"].deployments[1];
    assert_eq!(
        &*d.tags,
        [
            Box::from("zero_retention"),
            "region:eu-west".into(),
            "shared".into()
        ]
    );
    // Embeddings are held to tags (and the operation) only.
    let embed = request(Operation::Embedding, &json!({"model": "m", "input": "x"}));
    assert_eq!(kept(&rt, embed), Ok(vec![2]));
}

#[test]
fn different_reasons_are_listed_per_deployment() {
    let rt = runtime(
        &[
            "{ provider: a, model: blind, capabilities: { vision: false } }",
            "{ provider: b, model: tiny, capabilities: { context_window: 500 } }",
        ],
        "",
    );
    let e = kept(&rt, image_chat()).unwrap_err();
    assert_eq!(e.kind(), "no_eligible_deployment");
    assert_eq!(e.param(), None);
    let text = e.to_string();
    assert!(
        text.starts_with(
            "no deployment of model 'm' can serve this request: a/blind accepts no images; \
             b/tiny has a context window of 500 tokens, less than the prompt (~"
        ),
        "{text}"
    );
    let gateway = GatewayError::NoDeployment(Box::new(e));
    assert_eq!(gateway.status(), http::StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_slice(&gateway.to_json()).unwrap();
    assert_eq!(body["error"]["code"], "no_eligible_deployment");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[test]
fn the_strategy_orders_only_what_the_filter_kept() {
    let rt = runtime(
        &[
            "{ provider: a, model: blind, capabilities: { vision: false } }",
            "{ provider: b, model: eyes, weight: 5 }",
            "{ provider: c, model: eyes2 }",
        ],
        "    strategy: weighted\n",
    );
    let route = &rt.routes["m"];
    for _ in 0..50 {
        let (req, mut ctx) = image_chat();
        let mut order = plan(&rt, route, &req, &mut ctx).unwrap();
        order.sort_unstable();
        assert_eq!(order, [1, 2]);
    }
    let (req, mut ctx) = image_chat();
    let blind = runtime(
        &["{ provider: a, model: blind, capabilities: { vision: false } }"],
        "",
    );
    assert!(matches!(
        plan(&blind, &blind.routes["m"], &req, &mut ctx),
        Err(GatewayError::NoDeployment(_))
    ));
}

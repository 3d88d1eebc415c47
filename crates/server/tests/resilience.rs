//! Routing resilience through the real binary (issue 6): retries, `Retry-After`, fallback
//! models, hedging, `most_headroom` from the upstream's rate-limit headers, and active health
//! checks, against the chaos upstream (`portcullis_testkit::chaos`) and scripted mocks. The
//! timing details (backoff, budgets, percentiles) are unit-tested with paused time in
//! `crates/core/src/pipeline/dispatch_tests.rs`; these tests check what a client sees.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{BIN, chat_body, config, error_of, eventually, post};
use portcullis_testkit::upstream::openai_reply;
use portcullis_testkit::{Chaos, ChaosUpstream, GatewayProcess, MockUpstream, Reply};
use serde_json::json;

const NO_EJECTION: &str = "health: { consecutive_failures: 100, window: 0 }";

async fn chat(gw: &GatewayProcess, model: &str) -> reqwest::Response {
    post(gw.url("/v1/chat/completions"), chat_body(model))
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A gateway with an OpenAI-compatible provider per `(name, base URL)` and the `models` YAML.
async fn gateway(upstreams: &[(&str, String)], models: &str) -> GatewayProcess {
    let providers: Vec<String> = upstreams
        .iter()
        .map(|(name, url)| format!(r#"  {name}: {{ type: openai_compatible, base_url: "{url}" }}"#))
        .collect();
    let yaml = config(&providers.join("\n"), models);
    GatewayProcess::start(BIN, &yaml).await.unwrap()
}

#[tokio::test]
async fn retries_send_the_request_again_after_every_deployment_failed() {
    let chaos = ChaosUpstream::start([Chaos::status(503), Chaos::Reset])
        .await
        .unwrap();
    let gw = gateway(
        &[("chaos", chaos.base_url())],
        &format!(
            "  gpt-test:\n    deployments: [{{ provider: chaos, model: flaky }}]\n    {NO_EJECTION}\n    retries: {{ max: 2, backoff: 20ms }}\n"
        ),
    )
    .await;
    let r = chat(&gw, "gpt-test").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-attempts"), "3");
    assert_eq!(header(&r, "x-portcullis-deployment"), "chaos/flaky");
    assert_eq!(chaos.count(), 3);

    // Without retries (the default) the same failure reaches the client after one attempt.
    let chaos = ChaosUpstream::start([Chaos::status(503)]).await.unwrap();
    let gw = gateway(
        &[("chaos", chaos.base_url())],
        &format!(
            "  gpt-test:\n    deployments: [{{ provider: chaos, model: flaky }}]\n    {NO_EJECTION}\n"
        ),
    )
    .await;
    let r = chat(&gw, "gpt-test").await;
    assert_eq!(
        header(&r, "x-portcullis-attempts"),
        "1",
        "errors say so too"
    );
    assert_eq!(header(&r, "x-portcullis-deployment"), "", "nothing served");
    let (status, body) = error_of(r).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(chaos.count(), 1);
}

#[tokio::test]
async fn an_upstream_retry_after_reaches_the_client_and_is_respected() {
    let chaos = ChaosUpstream::start([Chaos::status(429).with_header("retry-after", "7")])
        .await
        .unwrap();
    let steady = MockUpstream::openai().await.unwrap();
    let gw = gateway(
        &[("chaos", chaos.base_url()), ("steady", steady.base_url())],
        &format!(
            "  alone:\n    deployments: [{{ provider: chaos, model: flaky }}]\n    {NO_EJECTION}\n    retries: {{ max: 2, max_wait: 2s }}\n  pair:\n    deployments: [{{ provider: chaos, model: flaky }}, {{ provider: steady, model: steady-model }}]\n    {NO_EJECTION}\n"
        ),
    )
    .await;
    // Asked to wait 7 s, longer than max_wait: no retry, and the client learns the wait.
    let r = chat(&gw, "alone").await;
    assert_eq!(header(&r, "retry-after"), "7");
    let (status, body) = error_of(r).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "upstream_rate_limited");
    assert_eq!(chaos.count(), 1);

    // In another model (each model keeps its own health per deployment), a 429 asking for
    // 30 s: the second deployment serves, and the first is skipped while the wait lasts.
    chaos.push(Chaos::status(429).with_header("retry-after", "30"));
    let r = chat(&gw, "pair").await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-portcullis-attempts")),
        (200, "2".into())
    );
    for _ in 0..3 {
        let r = chat(&gw, "pair").await;
        assert_eq!(header(&r, "x-portcullis-deployment"), "steady/steady-model");
        assert_eq!(
            header(&r, "x-portcullis-attempts"),
            "1",
            "the deferred deployment is skipped"
        );
    }
    assert_eq!(chaos.count(), 2);
}

#[tokio::test]
async fn fallback_models_serve_when_the_model_fails() {
    let chaos = ChaosUpstream::with_default([], Chaos::status(500))
        .await
        .unwrap();
    let steady = MockUpstream::openai().await.unwrap();
    // A small model that says the prompt is too long, whatever it gets.
    let small = MockUpstream::start(|_| {
        Reply::json(
            400,
            json!({"error": {"message": "This model's maximum context length is 8192 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}),
        )
    })
    .await
    .unwrap();
    let gw = gateway(
        &[
            ("chaos", chaos.base_url()),
            ("steady", steady.base_url()),
            ("small", small.base_url()),
        ],
        &format!(
            r#"  flaky:
    deployments: [{{ provider: chaos, model: flaky }}]
    {NO_EJECTION}
    fallbacks: [backup]
  short:
    deployments: [{{ provider: small, model: small-8k }}]
    fallbacks: [backup]
    context_window_fallbacks: [long]
  backup: {{ deployments: [{{ provider: steady, model: backup-model }}] }}
  long: {{ deployments: [{{ provider: steady, model: long-model }}] }}
"#
        ),
    )
    .await;
    let r = chat(&gw, "flaky").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-deployment"), "steady/backup-model");
    assert_eq!(header(&r, "x-portcullis-attempts"), "2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["model"], "backup-model",
        "the fallback's upstream answered"
    );

    let r = chat(&gw, "short").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "x-portcullis-deployment"),
        "steady/long-model",
        "a context-window error goes to the context-window fallback, not the general one"
    );
    assert!(
        gw.wait_for_message("falling back to another model", 2, Duration::from_secs(5))
            .await
    );
}

#[tokio::test]
async fn a_slow_attempt_is_hedged_and_the_loser_cancelled() {
    let slow = ChaosUpstream::start([Chaos::Healthy.after(Duration::from_secs(20))])
        .await
        .unwrap();
    let steady = MockUpstream::openai().await.unwrap();
    let gw = gateway(
        &[("slow", slow.base_url()), ("steady", steady.base_url())],
        "  gpt-test:\n    deployments: [{ provider: slow, model: slow-model }, { provider: steady, model: steady-model }]\n    hedge: { after: 200ms }\n    timeouts: { attempt: 30s }\n",
    )
    .await;
    let r = chat(&gw, "gpt-test").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-portcullis-deployment"), "steady/steady-model");
    assert_eq!(header(&r, "x-portcullis-attempts"), "2");
    assert!(
        eventually(|| slow.abandoned() == 1).await,
        "the slow upstream request was cancelled"
    );
    // The first deployment is fast now: no hedge.
    let r = chat(&gw, "gpt-test").await;
    assert_eq!(header(&r, "x-portcullis-deployment"), "slow/slow-model");
    assert_eq!(header(&r, "x-portcullis-attempts"), "1");
    assert_eq!(steady.count(), 1);
}

#[tokio::test]
async fn most_headroom_follows_the_upstreams_rate_limit_headers() {
    let limited = |remaining: &'static str| {
        move |r: &portcullis_testkit::Recorded| {
            openai_reply(r)
                .with_header("x-ratelimit-limit-requests", "100")
                .with_header("x-ratelimit-remaining-requests", remaining)
        }
    };
    let tight = MockUpstream::start(limited("5")).await.unwrap();
    let roomy = MockUpstream::start(limited("90")).await.unwrap();
    let gw = gateway(
        &[("tight", tight.base_url()), ("roomy", roomy.base_url())],
        "  gpt-test:\n    strategy: most_headroom\n    deployments: [{ provider: tight, model: t }, { provider: roomy, model: r }]\n",
    )
    .await;
    // Nothing known: the config's order, so `tight` answers first and reports 5% left.
    assert_eq!(
        header(&chat(&gw, "gpt-test").await, "x-portcullis-deployment"),
        "tight/t"
    );
    // Then `roomy` (unknown counts as whole); after its report of 90%, it stays first.
    for _ in 0..5 {
        let r = chat(&gw, "gpt-test").await;
        assert_eq!(header(&r, "x-portcullis-deployment"), "roomy/r");
    }
    assert_eq!((tight.count(), roomy.count()), (1, 5));
}

#[tokio::test]
async fn active_health_checks_eject_a_failing_deployment_before_clients_meet_it() {
    let chaos = ChaosUpstream::with_default([], Chaos::status(500))
        .await
        .unwrap();
    let steady = MockUpstream::openai().await.unwrap();
    let gw = gateway(
        &[("chaos", chaos.base_url()), ("steady", steady.base_url())],
        "  gpt-test:\n    deployments: [{ provider: chaos, model: flaky }, { provider: steady, model: steady-model }]\n    health: { consecutive_failures: 2, base_cooldown: 1m, active: { interval: 1s, timeout: 1s } }\n",
    )
    .await;
    assert!(
        gw.wait_for_message(
            "deployment ejected by its active health checks: skipped until its cool-down ends",
            1,
            Duration::from_secs(10)
        )
        .await,
        "two failed checks eject it: {} checks, logs {:?}",
        chaos.count(),
        gw.logs()
    );
    let checks = chaos.requests();
    assert!(checks.len() >= 2);
    assert_eq!(
        checks[0].body["max_tokens"], 1,
        "a check is a one-token completion"
    );
    assert_eq!(checks[0].body["model"], "flaky");
    // The steady deployment is checked too (and healthy); a client goes straight to it.
    assert!(steady.count() >= 1);
    let r = chat(&gw, "gpt-test").await;
    assert_eq!(header(&r, "x-portcullis-deployment"), "steady/steady-model");
    assert_eq!(header(&r, "x-portcullis-attempts"), "1");
    // No check goes to an ejected deployment.
    let seen = chaos.count();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(chaos.count(), seen);
}

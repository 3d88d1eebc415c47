//! Rate limits through the real binary: requests, tokens and concurrency per key, model and
//! rule; OpenAI's `x-ratelimit-*` headers; 429s with `Retry-After` naming the limit; two
//! gateway processes sharing one Redis never exceeding a limit together; and the Redis failure
//! policy with Redis unreachable.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{BIN, chat_body, client, config, post};
use portcullis_testkit::upstream::openai_reply;
use portcullis_testkit::{GatewayProcess, LIMITED_KEY, MockUpstream, TEST_KEY, required};
use serde_json::{Value, json};

/// A config on the mock OpenAI upstream at `base_url` with `extra` YAML appended, and the test
/// key's quotas set to `key_quotas` (a YAML flow mapping's inside, such as `limits: {rpm: 2}`).
fn limited(base_url: &str, key_quotas: &str, models: &str, extra: &str) -> String {
    let yaml = config(
        &format!(
            r#"  up: {{ type: openai_compatible, base_url: "{base_url}", api_key: "sk-upstream-secret-0001" }}"#
        ),
        models,
    );
    let yaml = yaml.replacen(
        "{ name: test, sha256:",
        &format!("{{ name: test, {key_quotas}, sha256:"),
        1,
    );
    format!("{yaml}\n{extra}\n")
}

const MODELS: &str = r#"  gpt-test: { deployments: [{ provider: up, model: upstream-model }] }
  gpt-capped: { deployments: [{ provider: up }], limits: { rpm: 1 } }"#;

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn chat(gw: &GatewayProcess, key: &str, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_per_minute_carry_headers_then_refuse_with_retry_after() {
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = limited(&upstream.base_url(), "limits: { rpm: 3 }", MODELS, "");
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    for remaining in ["2", "1", "0"] {
        let r = chat(&gw, TEST_KEY, chat_body("gpt-test")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            header(&r, "x-ratelimit-remaining-requests"),
            Some(remaining)
        );
        let reset = header(&r, "x-ratelimit-reset-requests").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
        // No token limit: no token headers.
        assert_eq!(header(&r, "x-ratelimit-limit-tokens"), None);
    }
    let r = chat(&gw, TEST_KEY, chat_body("gpt-test")).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "a third of a minute at most: {retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("key:test") && message.contains("3 requests per minute"),
        "{message}"
    );
    assert_eq!(
        upstream.count(),
        3,
        "the refused request never left the gateway"
    );
    // Another key is not limited by this one's rule; a streamed request carries the headers too.
    let other = chat(&gw, LIMITED_KEY, chat_body("gpt-test")).await;
    assert_eq!(other.status(), 200);
    assert_eq!(header(&other, "x-ratelimit-limit-requests"), None);
}

#[tokio::test]
async fn model_limits_and_rules_apply_to_everyone_they_match() {
    let upstream = MockUpstream::openai().await.unwrap();
    let rules = "limits:\n  rules:\n    - match: { key: limited, model: gpt-test }\n      rpm: 1";
    let yaml = limited(&upstream.base_url(), "limits: {}", MODELS, rules);
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    // gpt-capped: one request a minute for everyone together.
    assert_eq!(
        chat(&gw, TEST_KEY, chat_body("gpt-capped")).await.status(),
        200
    );
    let r = chat(&gw, LIMITED_KEY, chat_body("gpt-capped")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model:gpt-capped"),
        "{body}"
    );
    // The rule matches the limited key on gpt-test only.
    assert_eq!(
        chat(&gw, LIMITED_KEY, chat_body("gpt-test")).await.status(),
        200
    );
    let r = chat(&gw, LIMITED_KEY, chat_body("gpt-test")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("rule:key:limited|model:gpt-test"),
        "{message}"
    );
    for _ in 0..3 {
        assert_eq!(
            chat(&gw, TEST_KEY, chat_body("gpt-test")).await.status(),
            200
        );
    }
}

#[tokio::test]
async fn tokens_are_estimated_up_front_and_settled_with_the_reported_usage() {
    let upstream = MockUpstream::openai().await.unwrap();
    // The mock reports 12 tokens a request; each reserves its prompt plus max_tokens 400.
    let yaml = limited(&upstream.base_url(), "limits: { tpm: 1000 }", MODELS, "");
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let mut body = chat_body("gpt-test");
    body["max_tokens"] = json!(400);
    let first = chat(&gw, TEST_KEY, body.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), Some("1000"));
    let after_estimate: u64 = header(&first, "x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        after_estimate <= 600,
        "the estimate was reserved: {after_estimate}"
    );
    // Settled to 12 tokens: the next two (each reserving over 400) fit only thanks to the
    // refund; without it the third would be refused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..2 {
        let r = chat(&gw, TEST_KEY, body.clone()).await;
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A request that alone exceeds the limit is refused for good, without Retry-After.
    body["max_tokens"] = json!(5000);
    let r = chat(&gw, TEST_KEY, body).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none());
    let err: Value = r.json().await.unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("lower max_tokens"), "{message}");
}

#[tokio::test]
async fn concurrent_requests_beyond_the_limit_are_refused_until_one_finishes() {
    let upstream = MockUpstream::start(|r| openai_reply(r).after(Duration::from_millis(600)))
        .await
        .unwrap();
    let yaml = limited(
        &upstream.base_url(),
        "limits: { max_concurrent: 1 }",
        MODELS,
        "",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let slow = tokio::spawn({
        let url = gw.url("/v1/chat/completions");
        async move {
            post(url, chat_body("gpt-test"))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = chat(&gw, TEST_KEY, chat_body("gpt-test")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some("1"));
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1 requests in flight"),
        "{body}"
    );
    assert_eq!(slow.await.unwrap(), 200);
    // The slot is freed when the first request settles, in a task spawned as its response
    // goes out: within moments, not necessarily before the client has read it.
    let mut freed = false;
    for _ in 0..50 {
        if chat(&gw, TEST_KEY, chat_body("gpt-test")).await.status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed, "the slot was freed once the first request finished");
}

#[tokio::test]
async fn bad_limits_are_refused_with_their_paths() {
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = limited(
        &upstream.base_url(),
        "limits: { rpm: 0 }",
        MODELS,
        "limits:\n  backend: redis\n  rules:\n    - match: {}\n      rpm: 5",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    for expected in [
        "auth.keys[0].limits",
        "rpm must be at least 1",
        "limits.redis",
        "limits.rules[0].match",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

/// Redis for the shared-limit tests, or `None` (skipped) when it is not there and not required.
async fn redis_url() -> Option<String> {
    let url = std::env::var("PORTCULLIS_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    match tokio::net::TcpStream::connect(&addr).await {
        Ok(_) => Some(url),
        Err(e) if required("PORTCULLIS_TEST_SERVICES") => panic!("Redis at {url} is required: {e}"),
        Err(e) => {
            eprintln!("skipping: Redis at {url} is unreachable: {e}");
            None
        }
    }
}

fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("portcullis-test:{}:{nanos}:", std::process::id())
}

#[tokio::test]
async fn two_gateways_sharing_redis_never_exceed_a_limit_together() {
    let Some(url) = redis_url().await else { return };
    let upstream = MockUpstream::openai().await.unwrap();
    let backend = format!(
        "limits:\n  backend: redis\n  redis: {{ url: \"{url}\", prefix: \"{}\", on_unavailable: fail_closed, timeout: 500ms }}",
        unique_prefix()
    );
    let yaml = limited(
        &upstream.base_url(),
        "limits: { rpm: 10 }",
        MODELS,
        &backend,
    );
    let a = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let b = GatewayProcess::start(BIN, &yaml).await.unwrap();
    // 40 requests at once, split across both gateways: exactly 10 pass.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 {
            a.url("/v1/chat/completions")
        } else {
            b.url("/v1/chat/completions")
        };
        tasks.push(tokio::spawn(async move {
            post(url, chat_body("gpt-test"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 10, "the shared limit admitted exactly its 10");
    assert_eq!(upstream.count(), 10);
}

#[tokio::test]
async fn unreachable_redis_fails_closed_with_503_or_open_as_configured() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = MockUpstream::openai().await.unwrap();
    for (policy, status) in [("fail_closed", 503), ("fail_open", 200)] {
        let backend = format!(
            "limits:\n  backend: redis\n  redis: {{ url: \"redis://127.0.0.1:{port}\", on_unavailable: {policy}, timeout: 50ms }}"
        );
        let yaml = limited(
            &upstream.base_url(),
            "limits: { rpm: 10 }",
            MODELS,
            &backend,
        );
        let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
        let r = chat(&gw, TEST_KEY, chat_body("gpt-test")).await;
        assert_eq!(r.status(), status, "{policy}");
        if status == 503 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "limiter_unavailable", "{body}");
        } else {
            // Failed open: served without limits, so without x-ratelimit headers.
            assert_eq!(header(&r, "x-ratelimit-limit-requests"), None);
            assert!(
                gw.wait_for_message(
                    "Redis unreachable for rate limits",
                    1,
                    Duration::from_secs(5)
                )
                .await,
                "a warning is logged"
            );
            let page = client().get(gw.url("/metrics")).send().await.unwrap();
            assert_eq!(page.status(), 200);
            let page = page.text().await.unwrap();
            assert!(
                page.contains(r#"portcullis_limiter_unavailable_total{policy="fail_open"} 1"#),
                "{page}"
            );
        }
    }
}

/// `POST`s `body` to the admin API at `path` with the master key; returns the answer.
async fn admin_post(gw: &GatewayProcess, path: &str, body: Value) -> Value {
    let r = client()
        .post(gw.url(&format!("/admin/v1{path}")))
        .bearer_auth("sk-master-0123456789")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test]
async fn quotas_set_through_the_admin_api_apply_to_every_key_of_the_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, gw) =
        common::store_gateway(&dir.path().join("db.sqlite"), Some("sk-master-0123456789")).await;
    let org = admin_post(&gw, "/orgs", json!({"name": "acme"})).await;
    let team = admin_post(
        &gw,
        "/teams",
        json!({"org_id": org["id"], "name": "search", "limits": {"rpm": 3}}),
    )
    .await;
    let mut keys = Vec::new();
    for name in ["a", "b"] {
        let key = admin_post(&gw, "/keys", json!({"team_id": team["id"], "name": name})).await;
        keys.push(key["key"].as_str().unwrap().to_owned());
    }
    // The team's three requests a minute are shared by both of its keys.
    for key in [&keys[0], &keys[1], &keys[0]] {
        let r = chat(&gw, key, chat_body("gpt-test")).await;
        assert_eq!(r.status(), 200);
    }
    let r = chat(&gw, &keys[1], chat_body("gpt-test")).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    let team_scope = format!("team:{}", team["id"].as_str().unwrap());
    assert!(message.contains(&team_scope), "{message}");
}

//! Money budgets through the real binary: a hard budget refuses once spent (429 naming the
//! budget, `Retry-After` until the period resets), requests are settled at their actual cost,
//! soft budgets only alert, and alerts reach the log and the webhook once per threshold.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::time::Duration;

use common::{BIN, chat_body, client, config};
use portcullis_testkit::{GatewayProcess, LIMITED_KEY, MockUpstream, Reply, TEST_KEY};
use serde_json::{Value, json};

/// The mock reports 10 prompt and 2 completion tokens a request; at $10,000 per million tokens
/// (a cent a token) each request costs exactly $0.12.
const PRICING: &str = r#"pricing:
  models:
    upstream-model: { input: "10000", output: "10000" }"#;

fn budgeted(base_url: &str, key_quotas: &str, extra: &str) -> String {
    let yaml = config(
        &format!(
            r#"  up: {{ type: openai_compatible, base_url: "{base_url}", api_key: "sk-upstream-secret-0001" }}"#
        ),
        "  gpt-test: { deployments: [{ provider: up, model: upstream-model }] }",
    );
    let yaml = yaml.replacen(
        "{ name: test, sha256:",
        &format!("{{ name: test, {key_quotas}, sha256:"),
        1,
    );
    format!("{yaml}\n{PRICING}\n{extra}\n")
}

/// A chat request whose estimate is small (two output tokens reserved).
fn small() -> Value {
    let mut body = chat_body("gpt-test");
    body["max_tokens"] = json!(2);
    body
}

async fn chat(gw: &GatewayProcess, key: &str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&small())
        .send()
        .await
        .unwrap()
}

/// Waits until a request is refused (settles run just after a response).
async fn refused_within(gw: &GatewayProcess, key: &str, within: Duration) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let r = chat(gw, key).await;
        if r.status() == 429 || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_hard_budget_refuses_once_spent_and_names_itself() {
    let upstream = MockUpstream::openai().await.unwrap();
    let hooks = MockUpstream::start(|_| Reply::json(200, json!({})))
        .await
        .unwrap();
    let webhook = format!("budgets:\n  webhook: \"{}/hook\"", hooks.base_url());
    let yaml = budgeted(
        &upstream.base_url(),
        "budgets: [{ max_usd: 0.30, period: daily, alerts: [50, 100] }]",
        &webhook,
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    // $0.12 each: the first two fit ($0.24); the third's estimate would pass $0.30.
    for _ in 0..2 {
        assert_eq!(chat(&gw, TEST_KEY).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = refused_within(&gw, TEST_KEY, Duration::from_secs(5)).await;
    assert_eq!(r.status(), 429);
    assert_eq!(upstream.count(), 2, "refused before it was sent");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=86_400).contains(&retry),
        "until the next UTC midnight: {retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("key:test") && message.contains("daily budget of $0.30"),
        "{message}"
    );
    assert!(message.contains("$0.24"), "the settled spend: {message}");
    // Another key has no budget.
    assert_eq!(chat(&gw, LIMITED_KEY).await.status(), 200);
    // 50% was crossed once: logged and sent to the webhook.
    assert!(
        gw.wait_for_message("budget alert", 1, Duration::from_secs(5))
            .await
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hooks.count() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = hooks.requests();
    assert_eq!(events.len(), 1, "one threshold crossed, one event");
    let event = &events[0].body;
    assert_eq!(event["type"], "budget_alert", "{event}");
    assert_eq!(event["threshold_percent"], 50);
    assert_eq!(event["scope"], "key:test");
    assert_eq!(event["period"], "daily");
    assert_eq!(event["max_usd"], "0.300000000");
}

#[tokio::test]
async fn a_soft_budget_alerts_but_never_refuses() {
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = budgeted(
        &upstream.base_url(),
        "budgets: [{ max_usd: 0.20, period: monthly, alerts: [50, 100], hard: false }]",
        "",
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    for _ in 0..4 {
        assert_eq!(chat(&gw, TEST_KEY).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // $0.48 of $0.20: both thresholds crossed, each logged once.
    assert!(
        gw.wait_for_message("budget alert", 2, Duration::from_secs(5))
            .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alerts = gw
        .json_logs()
        .into_iter()
        .filter(|l| l["message"] == "budget alert")
        .count();
    assert_eq!(alerts, 2);
    let page = client().get(gw.url("/metrics")).send().await.unwrap();
    let page = page.text().await.unwrap();
    for threshold in ["50", "100"] {
        let line = format!(
            r#"portcullis_budget_alerts_total{{period="monthly",threshold="{threshold}"}} 1"#
        );
        assert!(page.contains(&line), "{line} in {page}");
    }
}

#[tokio::test]
async fn rule_budgets_match_scopes_and_models() {
    let upstream = MockUpstream::openai().await.unwrap();
    let rules = "budgets:\n  rules:\n    - match: { key: limited, model: gpt-test }\n      max_usd: 0.1\n      period: weekly";
    let yaml = budgeted(&upstream.base_url(), "budgets: []", rules);
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    // The first request fits ($0 spent); its $0.12 leaves nothing for the next.
    assert_eq!(chat(&gw, LIMITED_KEY).await.status(), 200);
    let r = refused_within(&gw, LIMITED_KEY, Duration::from_secs(5)).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("rule:key:limited|model:gpt-test") && message.contains("weekly"),
        "{message}"
    );
    // The test key is not in the rule.
    for _ in 0..3 {
        assert_eq!(chat(&gw, TEST_KEY).await.status(), 200);
    }
}

#[tokio::test]
async fn a_restarted_gateway_seeds_its_budgets_from_the_stores_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite");
    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = budgeted(
        &upstream.base_url(),
        "budgets: [{ max_usd: 0.30, period: monthly }]",
        "",
    )
    .replace(
        "auth:\n",
        &format!(
            "store: {{ sqlite: \"{}\" }}\nauth:\n  hashing_secret: {}\n  master_key: sk-master-0123456789\n",
            db.display(),
            common::HASHING_SECRET
        ),
    );
    let mut gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    for _ in 0..2 {
        assert_eq!(chat(&gw, TEST_KEY).await.status(), 200);
    }
    // Wait until both records are in the store ($0.24).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report: Value = client()
            .get(gw.url("/admin/v1/usage"))
            .bearer_auth("sk-master-0123456789")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if report["totals"]["requests"] == 2 {
            assert_eq!(report["totals"]["cost_usd"], "0.240000", "{report}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.signal("KILL").unwrap();
    gw.wait_exit(Duration::from_secs(5)).await;
    // A new process (its ledger in memory, empty) starts the month at $0.24, not at zero: the
    // next request's estimate no longer fits.
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    let r = chat(&gw, TEST_KEY).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("$0.24 of its monthly budget"), "{message}");
}

/// A gateway whose test key has a hard budget of `max_usd`, in front of an upstream that streams 600
/// one-word chunks; requests name no max_tokens, so each reserves `default_max_tokens: 3`.
async fn long_stream(policy: &str, max_usd: u32) -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::start(|_| {
        let mut events = portcullis_testkit::upstream::chat_events("m", &["word"; 600]);
        events.push("[DONE]".to_owned());
        portcullis_testkit::Reply::Sse {
            events,
            delay: Duration::from_millis(1),
            end: portcullis_testkit::SseEnd::Close,
        }
    })
    .await
    .unwrap();
    let extra =
        format!("limits: {{ default_max_tokens: 3 }}\nbudgets: {{ stream_overrun: {policy} }}");
    let yaml = budgeted(
        &upstream.base_url(),
        &format!("budgets: [{{ max_usd: {max_usd}, period: daily }}]"),
        &extra,
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

async fn stream_events(gw: &GatewayProcess) -> Vec<String> {
    let body = json!({"model": "gpt-test", "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}]});
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    common::sse_data(&r.text().await.unwrap())
}

#[tokio::test]
async fn a_stream_past_its_reservation_is_cut_when_the_budget_has_no_room() {
    let (_upstream, gw) = long_stream("cut", 1).await;
    let events = stream_events(&gw).await;
    // Three events fit the reservation; 256 more tokens ($2.56) do not fit the $1 budget.
    assert_eq!(events.len(), 4, "{events:?}");
    // With $3, one extension fits ($0.13 + $2.56), a second does not.
    let (_upstream, roomier) = long_stream("cut", 3).await;
    let longer = stream_events(&roomier).await;
    assert_eq!(longer.len(), 3 + 256 + 1);
    assert!(longer.last().unwrap().contains("budget_exceeded"));
    let error: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "budget_exceeded", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key:test"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stream_past_its_reservation_finishes_by_default() {
    let (_upstream, gw) = long_stream("finish", 1).await;
    let events = stream_events(&gw).await;
    assert_eq!(events.len(), 601, "every chunk arrived");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(events.iter().all(|e| !e.contains("budget_exceeded")));
}

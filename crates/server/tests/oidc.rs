//! OIDC bearer tokens (issue 4) on the real binary, against a local identity provider (the
//! testkit's JWKS server on port 0, tokens signed with the TEST-ONLY keys): valid tokens call the
//! data plane; expired, misaddressed, forged and unsigned ones are refused with 401 saying why;
//! a viewer is refused with 403; the gateway follows a key rotation within the key cache's rules;
//! a reload that leaves `auth.oidc` alone keeps the cached keys; the admin API maps tokens to
//! callers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::{Duration, Instant};

use common::{BIN, chat_body, client};
use portcullis_store::{NewOrg, SqliteStore, Store};
use portcullis_testkit::oidc::{self, GeneratedKey, TestIdp, TestKey};
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY};
use serde_json::{Value, json};

/// The `auth.oidc` block for `idp`, with `extra` lines (indented by four spaces) added.
fn oidc_block(idp: &TestIdp, extra: &str) -> String {
    format!(
        r#"  oidc:
    issuer: {}
    audience: {}
    jwks_url: {}
{extra}    claims:
      org: org
      team: team
      role: roles
      roles: {{ portcullis-admin: gateway_admin, org-admin: org_admin, dev: member, auditor: viewer }}
"#,
        oidc::ISSUER,
        oidc::AUDIENCE,
        idp.jwks_url()
    )
}

/// The common test config on `upstream` (its keys, models `gpt-test` and others), with `oidc`
/// (an `auth.oidc` block, or nothing) and `models` added.
fn config_with(upstream: &MockUpstream, oidc: &str, models: &str) -> String {
    let yaml =
        common::single_upstream(&upstream.base_url()).replace("auth:\n", &format!("auth:\n{oidc}"));
    format!("{yaml}{models}")
}

/// Valid claims for `sub` with the IdP roles `roles`.
fn claims(sub: &str, roles: &[&str]) -> Value {
    let mut c = oidc::claims(sub);
    c["roles"] = json!(roles);
    c
}

fn token(claims: &Value) -> String {
    TestKey::Rsa1.sign(claims).unwrap()
}

/// Status and JSON body of a chat request with `key`.
async fn chat(gw: &GatewayProcess, key: &str) -> (u16, Value) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(gw: &GatewayProcess, path: &str, key: &str) -> (u16, Value) {
    let r = client()
        .get(gw.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Asserts a 401 `invalid_token` whose message contains `why`.
fn assert_refused(case: &str, (status, body): &(u16, Value), why: &str) {
    assert_eq!(*status, 401, "{case}: {body}");
    assert_eq!(
        body["error"]["type"], "authentication_error",
        "{case}: {body}"
    );
    assert_eq!(body["error"]["code"], "invalid_token", "{case}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{case}: {message:?} lacks {why:?}");
}

#[tokio::test]
async fn tokens_call_the_api_and_bad_ones_are_refused_saying_why() {
    let idp = TestIdp::start(&[TestKey::Rsa1, TestKey::Ec]).await.unwrap();
    let upstream = MockUpstream::openai().await.unwrap();
    let gw = GatewayProcess::start(BIN, &config_with(&upstream, &oidc_block(&idp, ""), ""))
        .await
        .unwrap();

    let listening = gw
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "listening")
        .unwrap();
    assert_eq!(listening["oidc"], true);

    let mut dev = claims("user-1", &["dev"]);
    dev["team"] = json!("team-value-not-to-log");
    let valid = token(&dev);
    let (status, body) = chat(&gw, &valid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.count(), 1);
    let (status, models) = get(&gw, "/v1/models", &valid).await;
    assert_eq!(status, 200, "{models}");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-test"),
        "{models}"
    );
    assert_eq!(get(&gw, "/v1/models/gpt-test", &valid).await.0, 200);
    let es256 = TestKey::Ec.sign(&claims("user-2", &["dev"])).unwrap();
    assert_eq!(chat(&gw, &es256).await.0, 200);
    assert_eq!(chat(&gw, TEST_KEY).await.0, 200, "config keys still work");

    let mut expired = claims("user-1", &["dev"]);
    expired["exp"] = json!(now() - 600);
    let mut wrong_aud = claims("user-1", &["dev"]);
    wrong_aud["aud"] = json!("another-service");
    let mut wrong_iss = claims("user-1", &["dev"]);
    wrong_iss["iss"] = json!("https://evil.test.invalid");
    let good = claims("user-1", &["dev"]);
    let cases = [
        ("expired", token(&expired), "has expired"),
        ("wrong audience", token(&wrong_aud), "another audience"),
        ("wrong issuer", token(&wrong_iss), "another issuer"),
        (
            "bad signature",
            TestKey::Rsa2.sign_as("test-rsa-1", &good).unwrap(),
            "signature does not verify",
        ),
        (
            "alg none",
            oidc::unsigned_token("test-rsa-1", &good),
            "algorithm is not accepted",
        ),
        (
            "HS256 keyed with the public key",
            oidc::hs256_token("test-rsa-1", &good, TestKey::Rsa1.jwk_json().as_bytes()).unwrap(),
            "algorithm is not accepted",
        ),
        (
            "unmapped role",
            token(&claims("user-1", &["unmapped"])),
            "not mapped to a gateway role",
        ),
    ];
    for (case, t, why) in &cases {
        assert_refused(case, &chat(&gw, t).await, why);
        assert_refused(case, &get(&gw, "/v1/models", t).await, why);
    }
    assert_eq!(upstream.count(), 3, "no refused token reached the upstream");

    // Viewers only read the admin API.
    let viewer = token(&claims("user-3", &["auditor"]));
    let (status, body) = chat(&gw, &viewer).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(body["error"]["code"], "role_not_allowed");

    // Anthropic's endpoint answers in Anthropic's shape.
    let r = client()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", token(&expired))
        .json(&json!({"model": "gpt-test", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has expired")
    );

    assert_eq!(
        idp.fetches(),
        1,
        "every token was checked against one fetch"
    );
    let lines = gw.access_lines(4).await;
    assert!(lines.iter().any(|l| l["key"] == "oidc:user-1"), "{lines:?}");
    let logs = gw.logs().join("\n");
    for t in cases.iter().map(|(_, t, _)| t).chain([&valid, &viewer]) {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(t.as_str()) && (signature.is_empty() || !logs.contains(signature)),
            "a token is in the logs"
        );
    }
    assert!(!logs.contains("team-value-not-to-log"));
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn without_oidc_a_token_is_an_unknown_key() {
    let upstream = MockUpstream::openai().await.unwrap();
    let gw = GatewayProcess::start(BIN, &common::single_upstream(&upstream.base_url()))
        .await
        .unwrap();
    let (status, body) = chat(&gw, &token(&claims("user-1", &["dev"]))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let listening = gw
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "listening")
        .unwrap();
    assert_eq!(listening["oidc"], false);
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_503_and_keys_keep_working() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
    let block = oidc_block(&idp, "").replace(&idp.jwks_url(), &format!("http://{closed}/certs"));
    let upstream = MockUpstream::openai().await.unwrap();
    let gw = GatewayProcess::start(BIN, &config_with(&upstream, &block, ""))
        .await
        .unwrap();
    let (status, body) = chat(&gw, &token(&claims("user-1", &["dev"]))).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "token_unverifiable");
    assert_eq!(chat(&gw, TEST_KEY).await.0, 200);
    assert!(
        gw.wait_for_message(
            "oidc: fetching the identity provider's key set failed",
            1,
            Duration::from_secs(5)
        )
        .await
    );
}

/// The IdP rotates from a fixture key to one the test generates. The key cache fetches at most once per 10 s: a token of
/// the new key is refused until that window has passed since the first fetch, then accepted
/// after exactly one refresh; the old key, gone from the set, is refused without another fetch.
#[tokio::test]
async fn a_key_rotation_is_followed_within_the_refresh_window() {
    let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
    let upstream = MockUpstream::openai().await.unwrap();
    let gw = GatewayProcess::start(BIN, &config_with(&upstream, &oidc_block(&idp, ""), ""))
        .await
        .unwrap();
    let old = token(&claims("user-1", &["dev"]));
    assert_eq!(chat(&gw, &old).await.0, 200);
    let first_fetch = Instant::now();
    assert_eq!(idp.fetches(), 1);

    // The IdP rotates to a key this test generates now: the gateway can only know it from the
    // key set.
    let rotated = GeneratedKey::es256("generated-at-test-time").unwrap();
    idp.set_jwks(vec![rotated.jwk()]).unwrap();
    let new = rotated.sign(&claims("user-1", &["dev"])).unwrap();
    assert_refused(
        "new kid within the window",
        &chat(&gw, &new).await,
        "not in the identity provider's key set",
    );
    assert_eq!(idp.fetches(), 1, "no fetch within the window");

    let mut attempts = 0;
    loop {
        let (status, body) = chat(&gw, &new).await;
        if status == 200 {
            break;
        }
        assert_refused("new kid before the refresh", &(status, body), "key set");
        assert!(
            first_fetch.elapsed() < Duration::from_secs(20),
            "the new key was never fetched"
        );
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        first_fetch.elapsed() >= Duration::from_secs(10),
        "refreshed before the window ended"
    );
    assert!(attempts > 5);
    assert_eq!(
        idp.fetches(),
        2,
        "one refresh, however many refused attempts"
    );

    assert_refused(
        "old kid after the rotation",
        &chat(&gw, &old).await,
        "not in the identity provider's key set",
    );
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn a_reload_keeps_the_cached_keys_while_oidc_is_unchanged() {
    let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
    let upstream = MockUpstream::openai().await.unwrap();
    let block = oidc_block(&idp, "");
    let gw = GatewayProcess::start(BIN, &config_with(&upstream, &block, ""))
        .await
        .unwrap();
    let t = token(&claims("user-1", &["dev"]));
    assert_eq!(chat(&gw, &t).await.0, 200);
    assert_eq!(idp.fetches(), 1);

    let added = "  added: { deployments: [{ provider: up }] }\n";
    gw.write_config(&config_with(&upstream, &block, added))
        .unwrap();
    assert!(
        gw.wait_for_message("config reloaded", 1, Duration::from_secs(5))
            .await
    );
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&t)
        .json(&chat_body("added"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the reloaded config serves");
    assert_eq!(idp.fetches(), 1, "the verifier and its keys survived");

    // A changed oidc block gets a new verifier, which fetches the keys again.
    gw.write_config(&config_with(
        &upstream,
        &oidc_block(&idp, "    leeway: 30s\n"),
        added,
    ))
    .unwrap();
    assert!(
        gw.wait_for_message("config reloaded", 2, Duration::from_secs(5))
            .await
    );
    assert_eq!(chat(&gw, &t).await.0, 200);
    assert_eq!(idp.fetches(), 2);
}

const HASHING_SECRET: &str = "test-hashing-secret-0123456789abcdef";
const MASTER: &str = "oidc-admin-master-key-0123456789";

/// A gateway with an SQLite store holding the organization `acme`, the master key, and `oidc`.
async fn admin_gateway(dir: &std::path::Path, oidc: &str) -> (MockUpstream, GatewayProcess) {
    let path = dir.join("portcullis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .create_org(NewOrg {
            name: "acme".into(),
            ..NewOrg::default()
        })
        .await
        .unwrap();
    store.close().await;
    let upstream = MockUpstream::openai().await.unwrap();
    let auth = format!("  master_key: {MASTER}\n  hashing_secret: {HASHING_SECRET}\n{oidc}");
    let yaml = config_with(&upstream, &auth, "").replace(
        "auth:\n",
        &format!("store: {{ sqlite: \"{}\" }}\nauth:\n", path.display()),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

#[tokio::test]
async fn the_admin_api_takes_tokens_and_scopes_them_in_the_store() {
    let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, gw) = admin_gateway(dir.path(), &oidc_block(&idp, "")).await;

    let admin = token(&claims("root", &["portcullis-admin"]));
    let (status, orgs) = get(&gw, "/admin/v1/orgs", &admin).await;
    assert_eq!(status, 200, "{orgs}");
    assert_eq!(orgs["data"][0]["name"], "acme");
    assert_eq!(get(&gw, "/admin/v1/orgs", MASTER).await.0, 200);
    let acme = orgs["data"][0]["id"].as_str().unwrap().to_owned();

    // An org admin named by its organization's name sees that organization only.
    let other: Value = client()
        .post(gw.url("/admin/v1/orgs"))
        .bearer_auth(&admin)
        .json(&json!({"name": "globex"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut acme_admin = claims("boss", &["org-admin"]);
    acme_admin["org"] = json!("acme");
    let acme_admin = token(&acme_admin);
    let (status, org) = get(&gw, &format!("/admin/v1/orgs/{acme}"), &acme_admin).await;
    assert_eq!((status, org["name"].as_str()), (200, Some("acme")), "{org}");
    let (status, listed) = get(&gw, "/admin/v1/orgs", &acme_admin).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let other_id = other["id"].as_str().unwrap();
    let (status, _) = get(&gw, &format!("/admin/v1/orgs/{other_id}"), &acme_admin).await;
    assert_eq!(status, 404, "another organization is out of scope");
    let r = client()
        .post(gw.url("/admin/v1/orgs"))
        .bearer_auth(&acme_admin)
        .json(&json!({"name": "rogue"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let mut unknown_org = claims("boss", &["org-admin"]);
    unknown_org["org"] = json!("org-value-not-to-echo");
    let (status, body) = get(&gw, "/admin/v1/orgs", &token(&unknown_org)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "unknown_organization");
    assert!(!body.to_string().contains("org-value-not-to-echo"));
    let (status, body) = get(
        &gw,
        "/admin/v1/orgs",
        &token(&claims("boss", &["org-admin"])),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must name its organization"),
        "{body}"
    );

    let mut expired = claims("root", &["portcullis-admin"]);
    expired["exp"] = json!(now() - 600);
    let (status, body) = get(&gw, "/admin/v1/orgs", &token(&expired)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_token");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has expired")
    );
    assert_eq!(idp.fetches(), 1);
    let logs = gw.logs().join("\n");
    assert!(!logs.contains(&admin) && !logs.contains("org-value-not-to-echo"));
}

#[tokio::test]
async fn the_admin_api_refuses_tokens_without_oidc() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, gw) = admin_gateway(dir.path(), "").await;
    let admin = token(&claims("root", &["portcullis-admin"]));
    let (status, body) = get(&gw, "/admin/v1/orgs", &admin).await;
    // Without OIDC a token is just a key the gateway does not know, as on the data plane.
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(get(&gw, "/admin/v1/orgs", MASTER).await.0, 200);
}

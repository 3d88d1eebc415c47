//! Stored provider credentials on the real binary (issue 4): the admin API's credentials
//! endpoints (for the gateway admin only, metadata only in every answer), providers that use a
//! credential as `${credential:NAME}` (the upstream sees its secret, and a new secret takes
//! effect on the next request), and `portcullis secrets rotate` from one master key to another.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{BIN, chat_body, client};
use portcullis_core::envelope::{Keyring, generate_master_key};
use portcullis_store::{SqliteStore, Store};
use portcullis_testkit::wire::openai::OpenAiWire;
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY, TEST_KEY_SHA256};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const ADMIN: &str = "admin-master-key-0123456789";
const HASHING_SECRET: &str = "test-hashing-secret-0123456789abcdef";
const KEY_VAR: &str = "PORTCULLIS_TEST_MASTER_KEY";
const OLD_KEY_VAR: &str = "PORTCULLIS_TEST_OLD_MASTER_KEY";

/// A config on the SQLite store `db`, with `secrets` (a YAML flow mapping, or nothing) and one
/// OpenAI-compatible provider `up` at `base_url` whose key is `api_key`.
fn config(db: &Path, secrets: Option<&str>, base_url: &str, api_key: &str) -> String {
    let secrets = secrets.map_or(String::new(), |s| format!("secrets: {s}\n"));
    format!(
        r#"
logging: {{ format: json, level: info }}
reload: {{ poll_interval: 100ms }}
store: {{ sqlite: "{}" }}
{secrets}auth:
  master_key: {ADMIN}
  hashing_secret: {HASHING_SECRET}
  keys:
    - {{ name: test, sha256: "{TEST_KEY_SHA256}" }}
providers:
  up: {{ type: openai_compatible, base_url: "{base_url}", api_key: "{api_key}" }}
models:
  gpt-test: {{ deployments: [{{ provider: up, model: upstream-model }}] }}
"#,
        db.display()
    )
}

fn current_key() -> Option<&'static str> {
    Some("{ master_key: \"${PORTCULLIS_TEST_MASTER_KEY}\" }")
}

async fn start(yaml: &str, key: &SecretString) -> GatewayProcess {
    GatewayProcess::start_with_env(BIN, yaml, &[(KEY_VAR, key.expose_secret())])
        .await
        .unwrap()
}

/// One admin call; the status and the JSON body (`Null` when there is none).
async fn call(
    gw: &GatewayProcess,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, gw.url(path)).bearer_auth(ADMIN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts the admin error shape and returns its code.
fn error_code(body: &Value) -> &str {
    let e = &body["error"];
    assert!(e["message"].is_string() && e["type"].is_string(), "{body}");
    assert!(e.get("param").is_some(), "{body}");
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {body}"))
}

async fn chat(gw: &GatewayProcess) -> u16 {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(&chat_body("gpt-test"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits (up to 5 s) for a reload by `trigger` to be logged.
async fn wait_for_reload(gw: &GatewayProcess, trigger: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw
        .json_logs()
        .iter()
        .any(|l| l["message"] == "config reloaded" && l["trigger"] == trigger)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload by {trigger} within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The credential with the secret `secret` made through the API; its id.
async fn create(gw: &GatewayProcess, name: &str, provider: &str, secret: &str) -> String {
    let body = json!({"name": name, "provider": provider, "secret": secret});
    let (status, made) = call(gw, Method::POST, "/admin/v1/credentials", Some(body)).await;
    assert_eq!(status, 201, "{made}");
    made["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_credentials_api_manages_metadata_and_never_returns_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let key = generate_master_key().unwrap();
    let key_id = Keyring::new(&key, &[]).unwrap().current_id().to_owned();
    let gw = start(
        &config(&db, current_key(), "http://127.0.0.1:9/v1", "sk-in-file"),
        &key,
    )
    .await;
    const SECRET: &str = "sk-credential-api-7f3a9c";
    let body = json!({"name": "openai-prod", "provider": "openai", "secret": SECRET});

    // Only the gateway admin: no key is 401, a client key of the config is 403.
    let r = client()
        .post(gw.url("/admin/v1/credentials"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for (method, path) in [
        (Method::POST, "/admin/v1/credentials"),
        (Method::GET, "/admin/v1/credentials"),
        (Method::GET, "/admin/v1/credentials/x"),
        (Method::PATCH, "/admin/v1/credentials/x"),
        (Method::DELETE, "/admin/v1/credentials/x"),
    ] {
        let r = client()
            .request(method.clone(), gw.url(path))
            .bearer_auth(TEST_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }

    // Create: metadata only.
    let (status, made) = call(
        &gw,
        Method::POST,
        "/admin/v1/credentials",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let mut fields: Vec<&str> = made
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "id",
            "key_id",
            "name",
            "provider",
            "updated_at"
        ]
    );
    assert_eq!(made["key_id"], key_id.as_str());
    assert_eq!(
        (made["name"].as_str(), made["provider"].as_str()),
        (Some("openai-prod"), Some("openai"))
    );
    let id = made["id"].as_str().unwrap().to_owned();

    // Refusals, each in the error shape.
    let bad = [
        (
            json!({"name": "openai-prod", "provider": "openai", "secret": "x"}),
            409,
        ),
        (
            json!({"name": "n", "provider": "openai", "secret": "x", "extra": 1}),
            400,
        ),
        (json!({"name": "n", "provider": "openai"}), 400),
        (json!({"name": "n", "provider": "nope", "secret": "x"}), 400),
        (json!({"name": "n", "provider": "mock", "secret": "x"}), 400),
        (
            json!({"name": "with space", "provider": "openai", "secret": "x"}),
            400,
        ),
        (
            json!({"name": "n", "provider": "openai", "secret": "  "}),
            400,
        ),
        (json!({"name": "n", "provider": "openai", "secret": 5}), 400),
    ];
    for (body, want) in bad {
        let (status, answer) = call(
            &gw,
            Method::POST,
            "/admin/v1/credentials",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, want, "{body} → {answer}");
        error_code(&answer);
    }
    let r = client()
        .post(gw.url("/admin/v1/credentials"))
        .bearer_auth(ADMIN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Read and list.
    let (status, got) = call(
        &gw,
        Method::GET,
        &format!("/admin/v1/credentials/{id}"),
        None,
    )
    .await;
    assert_eq!((status, &got), (200, &made));
    let (status, missing) = call(&gw, Method::GET, "/admin/v1/credentials/no-such-id", None).await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&missing), "not_found");
    for (name, provider) in [
        ("anthropic-a", "anthropic"),
        ("openai-b", "openai"),
        ("openai-c", "openai"),
    ] {
        create(&gw, name, provider, &format!("secret-of-{name}")).await;
    }
    let (_, page1) = call(&gw, Method::GET, "/admin/v1/credentials?limit=2", None).await;
    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page1), ["openai-prod", "anthropic-a"]);
    let after = page1["next_after"].as_str().unwrap();
    let (_, page2) = call(
        &gw,
        Method::GET,
        &format!("/admin/v1/credentials?limit=2&after={after}"),
        None,
    )
    .await;
    assert_eq!(names(&page2), ["openai-b", "openai-c"]);
    assert_eq!(page2["next_after"], Value::Null);
    let (_, openai) = call(
        &gw,
        Method::GET,
        "/admin/v1/credentials?provider=openai&name_prefix=openai-",
        None,
    )
    .await;
    assert_eq!(names(&openai), ["openai-prod", "openai-b", "openai-c"]);
    for query in ["?colour=blue", "?limit=many"] {
        let (status, answer) = call(
            &gw,
            Method::GET,
            &format!("/admin/v1/credentials{query}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {answer}");
        error_code(&answer);
    }

    // Update: a new name, a new secret (sealed again, metadata only in the answer).
    let path = format!("/admin/v1/credentials/{id}");
    let (status, renamed) = call(
        &gw,
        Method::PATCH,
        &path,
        Some(json!({"name": "openai-main"})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "openai-main");
    let (status, resealed) = call(
        &gw,
        Method::PATCH,
        &path,
        Some(json!({"secret": "sk-new-secret-51b2"})),
    )
    .await;
    assert_eq!(status, 200, "{resealed}");
    assert!(resealed.get("secret").is_none());
    let at = |v: &Value, field: &str| {
        let text = v[field].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    };
    assert!(at(&resealed, "updated_at") >= at(&renamed, "updated_at"));
    assert_eq!(at(&resealed, "created_at"), at(&made, "created_at"));
    for (body, want) in [
        (json!({"secret": "x", "provider": "cohere"}), 400),
        (json!({"name": "openai-b"}), 409),
        (json!({"name": ""}), 400),
    ] {
        let (status, answer) = call(&gw, Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {answer}");
        error_code(&answer);
    }
    let (status, _) = call(
        &gw,
        Method::PATCH,
        "/admin/v1/credentials/nope",
        Some(json!({"name": "z"})),
    )
    .await;
    assert_eq!(status, 404);

    // Delete.
    let (status, _) = call(&gw, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&gw, Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, left) = call(&gw, Method::GET, "/admin/v1/credentials", None).await;
    assert_eq!(names(&left), ["anthropic-a", "openai-b", "openai-c"]);

    let logs = gw.logs().join("\n");
    for secret in [SECRET, "sk-new-secret-51b2", "secret-of-openai-b"] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
}

#[tokio::test]
async fn without_a_master_key_credentials_are_unavailable_and_references_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let key = generate_master_key().unwrap();
    let gw = start(
        &config(&db, None, "http://127.0.0.1:9/v1", "sk-in-file"),
        &key,
    )
    .await;
    let body = json!({"name": "n", "provider": "openai", "secret": "s"});
    for (method, path, body) in [
        (Method::POST, "/admin/v1/credentials", Some(body)),
        (Method::GET, "/admin/v1/credentials", None),
        (Method::GET, "/admin/v1/credentials/x", None),
        (Method::DELETE, "/admin/v1/credentials/x", None),
    ] {
        let (status, answer) = call(&gw, method, path, body).await;
        assert_eq!(status, 503, "{path}: {answer}");
        assert_eq!(error_code(&answer), "secrets_not_configured");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("secrets.master_key"), "{message}");
    }
    drop(gw);

    // A reference without master keys stops the start with the problem and its path.
    let yaml = config(&db, None, "http://127.0.0.1:9/v1", "${credential:n}");
    let err = GatewayProcess::start(BIN, &yaml)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("providers.up.api_key")
            && err.contains("configure a store and secrets.master_key"),
        "{err}"
    );
}

/// A provider whose key is a stored credential: the upstream sees the credential's secret; a new
/// secret through the API is used by the next request; the config's references keep the
/// credential from being renamed or deleted; a restart loads it from the store again.
#[tokio::test]
async fn providers_use_stored_credentials_and_follow_their_updates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let key = generate_master_key().unwrap();
    let upstream = MockUpstream::openai().await.unwrap();
    let base = upstream.base_url();
    let gw = start(&config(&db, current_key(), &base, "sk-in-file"), &key).await;
    const FIRST: &str = "sk-stored-first-0c41d2";
    const SECOND: &str = "sk-stored-second-9e77a1";
    let id = create(&gw, "upstream-key", "openai_compatible", FIRST).await;

    // The file starts referencing it: the reload resolves it from the store.
    gw.write_config(&config(
        &db,
        current_key(),
        &base,
        "${credential:upstream-key}",
    ))
    .unwrap();
    wait_for_reload(&gw, "file changed").await;
    assert_eq!(chat(&gw).await, 200);
    let wire = OpenAiWire;
    let last = || upstream.requests().last().cloned().unwrap();
    wire.seen_with_key(&last(), FIRST).unwrap();

    // A new secret through the API: the very next request carries it.
    let path = format!("/admin/v1/credentials/{id}");
    let (status, _) = call(&gw, Method::PATCH, &path, Some(json!({"secret": SECOND}))).await;
    assert_eq!(status, 200);
    assert_eq!(chat(&gw).await, 200);
    wire.seen_with_key(&last(), SECOND).unwrap();
    assert!(wire.seen_with_key(&last(), FIRST).is_err());

    // In use: neither renamed nor deleted.
    for (method, body) in [
        (Method::PATCH, Some(json!({"name": "other"}))),
        (Method::DELETE, None),
    ] {
        let (status, answer) = call(&gw, method, &path, body).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(error_code(&answer), "credential_in_use");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("providers.up.api_key")
        );
    }
    // A credential of another provider type is a config problem: the reload is rejected and
    // the current config keeps serving.
    create(&gw, "anthropic-key", "anthropic", "sk-ant-x").await;
    gw.write_config(&config(
        &db,
        current_key(),
        &base,
        "${credential:anthropic-key}",
    ))
    .unwrap();
    assert!(
        gw.wait_for_message(
            "config reload rejected; the current config keeps serving",
            1,
            Duration::from_secs(5)
        )
        .await
    );
    let rejected = gw
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "config reload rejected; the current config keeps serving")
        .unwrap();
    assert!(
        rejected["problems"]
            .as_str()
            .unwrap()
            .contains("is for providers of type anthropic, not openai_compatible"),
        "{rejected}"
    );
    assert_eq!(chat(&gw).await, 200);
    wire.seen_with_key(&last(), SECOND).unwrap();
    drop(gw);

    // A restart reads the credential from the store before it serves.
    let gw = start(
        &config(&db, current_key(), &base, "${credential:upstream-key}"),
        &key,
    )
    .await;
    assert_eq!(chat(&gw).await, 200);
    wire.seen_with_key(&last(), SECOND).unwrap();
    let logs = gw.logs().join("\n");
    assert!(!logs.contains(SECOND) && !logs.contains(FIRST));
}

fn run_rotate(config_path: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(["secrets", "rotate", "--config"])
        .arg(config_path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Rotation end to end: credentials made under key A (and one under a key D that is then
/// forgotten); the operator makes B current with A previous and runs `portcullis secrets rotate`,
/// which re-wraps A's credentials, reports D's as an error without touching it, and does nothing
/// more when run again; a gateway with only B then uses the credentials.
#[tokio::test]
async fn secrets_rotate_rewraps_under_the_new_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let upstream = MockUpstream::openai().await.unwrap();
    let base = upstream.base_url();
    let [key_a, key_b, key_d] = [(); 3].map(|()| generate_master_key().unwrap());
    let id_of = |k: &SecretString| Keyring::new(k, &[]).unwrap().current_id().to_owned();

    let gw = start(&config(&db, current_key(), &base, "x"), &key_d).await;
    create(&gw, "stray", "openai_compatible", "sk-stray").await;
    drop(gw);
    let gw = start(&config(&db, current_key(), &base, "x"), &key_a).await;
    create(&gw, "one", "openai_compatible", "sk-rotated-one").await;
    create(&gw, "two", "openai_compatible", "sk-rotated-two").await;
    drop(gw);

    let rotated = config(
        &db,
        Some(
            "{ master_key: \"${PORTCULLIS_TEST_MASTER_KEY}\", previous_master_keys: [\"${PORTCULLIS_TEST_OLD_MASTER_KEY}\"] }",
        ),
        &base,
        "${credential:one}",
    );
    let file = dir.path().join("rotated.yaml");
    std::fs::write(&file, &rotated).unwrap();
    let env = [
        (KEY_VAR, key_b.expose_secret()),
        (OLD_KEY_VAR, key_a.expose_secret()),
    ];
    let (ok, stdout, stderr) = run_rotate(&file, &env);
    assert!(
        !ok,
        "the stray credential must fail the run: {stdout} {stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "re-encrypted 2 credentials under master key {}; 0 already current; 1 failed",
            id_of(&key_b)
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("credential stray") && stderr.contains(&id_of(&key_d)),
        "{stderr}"
    );
    let (_, stdout, _) = run_rotate(&file, &env);
    assert!(
        stdout.contains("re-encrypted 0 credentials") && stdout.contains("2 already current"),
        "{stdout}"
    );

    let store = SqliteStore::open(&db).await.unwrap();
    let all = store
        .list_credentials(
            &Default::default(),
            &portcullis_store::PageRequest::first(10),
        )
        .await
        .unwrap()
        .items;
    let key_ids: Vec<(&str, String)> = all
        .iter()
        .map(|c| (c.name.as_str(), c.key_id.clone()))
        .collect();
    assert_eq!(
        key_ids,
        [
            ("stray", id_of(&key_d)),
            ("one", id_of(&key_b)),
            ("two", id_of(&key_b))
        ]
    );
    store.close().await;

    // With the stray credential gone, the rotation succeeds; then a gateway with only B uses
    // the re-wrapped credentials.
    let store = SqliteStore::open(&db).await.unwrap();
    store.delete_credential(&all[0].id).await.unwrap();
    store.close().await;
    let (ok, stdout, stderr) = run_rotate(&file, &env);
    assert!(ok && stdout.contains("0 failed"), "{stdout} {stderr}");
    let gw = start(
        &config(&db, current_key(), &base, "${credential:one}"),
        &key_b,
    )
    .await;
    assert_eq!(chat(&gw).await, 200);
    OpenAiWire
        .seen_with_key(
            &upstream.requests().last().cloned().unwrap(),
            "sk-rotated-one",
        )
        .unwrap();

    // check-config decrypts the references too: this file is fine, one naming a missing
    // credential is not.
    let check = |path: &Path| {
        std::process::Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(path)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    assert!(check(&file).status.success());
    let missing = dir.path().join("missing.yaml");
    std::fs::write(
        &missing,
        rotated.replace("${credential:one}", "${credential:gone}"),
    )
    .unwrap();
    let out = check(&missing);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("providers.up.api_key: no stored credential is named 'gone'"),
        "{stderr}"
    );

    // And `secrets generate` makes keys the config accepts.
    let out = std::process::Command::new(BIN)
        .args(["secrets", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    assert!(Keyring::new(&SecretString::from(generated.trim().to_owned()), &[]).is_ok());
}

/// Two replicas on one store: a secret changed through one replica's API reaches the other's
/// providers on its next reload tick (it watches the credentials' fingerprint).
#[tokio::test]
async fn another_replica_follows_a_credential_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let key = generate_master_key().unwrap();
    let (up_a, up_b) = (
        MockUpstream::openai().await.unwrap(),
        MockUpstream::openai().await.unwrap(),
    );
    let a = start(&config(&db, current_key(), &up_a.base_url(), "x"), &key).await;
    let id = create(&a, "shared", "openai_compatible", "sk-replica-first").await;
    let reference = "${credential:shared}";
    let b = start(
        &config(&db, current_key(), &up_b.base_url(), reference),
        &key,
    )
    .await;
    assert_eq!(chat(&b).await, 200);
    let last_b = || up_b.requests().last().cloned().unwrap();
    OpenAiWire
        .seen_with_key(&last_b(), "sk-replica-first")
        .unwrap();

    let path = format!("/admin/v1/credentials/{id}");
    let body = json!({"secret": "sk-replica-second"});
    let (status, _) = call(&a, Method::PATCH, &path, Some(body)).await;
    assert_eq!(status, 200);
    wait_for_reload(&b, "stored credentials changed").await;
    assert_eq!(chat(&b).await, 200);
    OpenAiWire
        .seen_with_key(&last_b(), "sk-replica-second")
        .unwrap();
}

/// Runs `portcullis credentials <args>` against `gw` with `stdin`; (success, stdout, stderr).
async fn credentials_cli(
    gw: &GatewayProcess,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let args: Vec<&str> = std::iter::once("credentials")
        .chain(args.iter().copied())
        .collect();
    common::admin_cli(gw, ADMIN, &args, stdin).await
}

#[tokio::test]
async fn the_credentials_cli_reads_secrets_from_stdin_and_never_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let key = generate_master_key().unwrap();
    let gw = start(
        &config(&db, current_key(), "http://127.0.0.1:9/v1", "sk-in-file"),
        &key,
    )
    .await;
    const SECRET: &str = "sk-cli-secret-41c9e2";
    const NEW_SECRET: &str = "sk-cli-secret-rotated-8d0b";
    let (ok, out, err) = credentials_cli(
        &gw,
        &["create", "--name", "openai-cli", "--provider", "openai"],
        &format!("{SECRET}\n"),
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("openai-cli") && !out.contains(SECRET), "{out}");
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let (ok, out, _) = credentials_cli(&gw, &["list", "--provider", "openai"], "").await;
    assert!(ok && out.contains(&id) && !out.contains(SECRET), "{out}");
    let (ok, out, err) =
        credentials_cli(&gw, &["update", &id, "--secret-from-stdin"], NEW_SECRET).await;
    assert!(ok, "{err}");
    assert!(!out.contains(NEW_SECRET), "{out}");
    // An empty secret is refused before any call.
    let (ok, _, err) = credentials_cli(
        &gw,
        &["create", "--name", "x", "--provider", "openai"],
        "\n",
    )
    .await;
    assert!(!ok && err.contains("empty"), "{err}");
    let (ok, _, err) = credentials_cli(&gw, &["delete", &id], "").await;
    assert!(ok, "{err}");
    let (ok, _, err) = credentials_cli(&gw, &["show", &id], "").await;
    assert!(!ok && err.contains("404"), "{err}");
    let logs = gw.logs().join("\n");
    assert!(!logs.contains(SECRET) && !logs.contains(NEW_SECRET));
}

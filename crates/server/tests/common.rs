//! Shared helpers of the integration tests: configs and clients.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failure is the test's failure"
)]

use std::time::Duration;

use portcullis_testkit::{
    GatewayProcess, LIMITED_KEY_SHA256, MockUpstream, TEST_KEY, TEST_KEY_SHA256,
};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The `auth.hashing_secret` of gateways on a store.
pub const HASHING_SECRET: &str = "test-hashing-secret-0123456789abcdef";

/// A config with JSON logs, the test keys, and `providers`/`models` YAML blocks as given.
pub fn config(providers: &str, models: &str) -> String {
    format!(
        r#"
logging: {{ format: json, level: info }}
reload: {{ poll_interval: 100ms }}
auth:
  keys:
    - {{ name: test, sha256: "{TEST_KEY_SHA256}" }}
    - {{ name: limited, sha256: "{LIMITED_KEY_SHA256}", models: ["gpt-*"] }}
providers:
{providers}
models:
{models}
"#
    )
}

/// One OpenAI-compatible provider `up` at `base_url`, and models `gpt-test` (chat) and
/// `embed-test` on it.
pub fn single_upstream(base_url: &str) -> String {
    config(
        &format!(
            r#"  up: {{ type: openai_compatible, base_url: "{base_url}", api_key: "sk-upstream-secret-0001" }}"#
        ),
        r#"  gpt-test: { deployments: [{ provider: up, model: upstream-model }] }
  embed-test: { deployments: [{ provider: up, model: upstream-embed }] }
  other-model: { deployments: [{ provider: up }] }"#,
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

pub fn post(url: String, body: serde_json::Value) -> reqwest::RequestBuilder {
    client().post(url).bearer_auth(TEST_KEY).json(&body)
}

pub fn chat_body(model: &str) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Say hello"}]})
}

/// The status and body of an error response, checked to be JSON in OpenAI's error shape
/// (`{"error":{"message","type","param","code"}}`) and to carry the request id.
pub async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    for field in ["message", "type", "param", "code"] {
        assert!(
            body["error"].get(field).is_some(),
            "OpenAI error shape: {body}"
        );
    }
    (status, body)
}

/// Sends `request` and checks that it fails with `status` and error `code`; returns the body.
pub async fn expect_error(request: reqwest::RequestBuilder, status: u16, code: &str) -> Value {
    let (s, body) = error_of(request.send().await.unwrap()).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    body
}

/// Polls `f` for up to 10 s.
pub async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// A gateway on the SQLite store at `path` (with `master` as its master key, if given), in
/// front of a mock OpenAI upstream serving [`single_upstream`]'s models.
pub async fn store_gateway(
    path: &std::path::Path,
    master: Option<&str>,
) -> (MockUpstream, GatewayProcess) {
    let upstream = MockUpstream::openai().await.unwrap();
    let master = master.map_or(String::new(), |m| format!("  master_key: {m}\n"));
    let yaml = single_upstream(&upstream.base_url()).replace(
        "auth:\n",
        &format!(
            "store: {{ sqlite: \"{}\" }}\nauth:\n  hashing_secret: {HASHING_SECRET}\n{master}",
            path.display()
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
    (upstream, gw)
}

/// Runs `portcullis <args>` against `gw` with `admin_key` (as `PORTCULLIS_URL` and
/// `PORTCULLIS_ADMIN_KEY`), writing `stdin` to its standard input; returns (success, stdout,
/// stderr).
pub async fn admin_cli(
    gw: &GatewayProcess,
    admin_key: &str,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_URL", gw.url(""))
        .env("PORTCULLIS_ADMIN_KEY", admin_key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `test` with the URL of a PostgreSQL database of its own (named `<prefix>_<id>`, created
/// on the server `PORTCULLIS_TEST_POSTGRES_URL` names, and dropped afterwards even when the test
/// panics; the panic is then raised again). When PostgreSQL is unreachable the test is skipped
/// with a printed reason, unless `PORTCULLIS_TEST_SERVICES=require`, where it fails.
pub async fn with_scratch_postgres<F, Fut>(prefix: &str, test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    const URL_VAR: &str = "PORTCULLIS_TEST_POSTGRES_URL";
    const REQUIRE_VAR: &str = "PORTCULLIS_TEST_SERVICES";
    let url = std::env::var(URL_VAR)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(&url)
        .await;
    let admin = match admin {
        Ok(pool) => pool,
        Err(e) if portcullis_testkit::required(REQUIRE_VAR) => {
            panic!(
                "PostgreSQL is required ({REQUIRE_VAR}=require) but unreachable ({URL_VAR}): {e}"
            )
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL unreachable ({URL_VAR}): {e}");
            return;
        }
    };
    let database = format!("{prefix}_{}", portcullis_store::new_id().replace('-', ""));
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&admin)
        .await
        .unwrap();
    let (without_query, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let (server, _) = without_query.rsplit_once('/').unwrap();
    let db_url = if query.is_empty() {
        format!("{server}/{database}")
    } else {
        format!("{server}/{database}?{query}")
    };
    let outcome = tokio::spawn(test(db_url)).await;
    sqlx::query(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

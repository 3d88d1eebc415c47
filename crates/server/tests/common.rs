//! Shared helpers of the integration tests: configs and clients.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test's failure"
)]

use portcullis_testkit::{
    GatewayProcess, LIMITED_KEY_SHA256, MockUpstream, TEST_KEY, TEST_KEY_SHA256,
};

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

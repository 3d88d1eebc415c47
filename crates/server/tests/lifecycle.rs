//! The binary as an operator meets it: `--help`, `--version`, `check-config`, the bundled
//! examples, graceful shutdown, and live reload on SIGHUP and on file change.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, chat_body, client, config, post, sse_data};
use portcullis_core::config::{Config, VarSource};
use portcullis_testkit::{GatewayProcess, TEST_KEY_SHA256};
use serde_json::{Value, json};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_and_help() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("portcullis {}", env!("CARGO_PKG_VERSION"))
    );
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for word in [
        "serve",
        "check-config",
        "hash-key",
        "OpenAI-compatible",
        "Quick start",
    ] {
        assert!(out.contains(word), "--help mentions {word}:\n{out}");
    }
    let (_, out, _) = run(&["serve", "--help"]);
    assert!(
        out.contains("--listen") && out.contains("--config"),
        "{out}"
    );
    let (code, _, err) = run(&["serve"]);
    assert_eq!(code, 2, "a missing --config is a usage error");
    assert!(err.contains("--config"), "{err}");
}

#[test]
fn hash_key_matches_what_the_config_expects() {
    let (code, out, _) = run(&["hash-key", "sk-test-key"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), TEST_KEY_SHA256);
}

#[test]
fn check_config_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        config(
            "  m: { type: mock }",
            "  demo: { deployments: [{ provider: m }] }",
        ),
    )
    .unwrap();
    let (code, out, _) = run(&["check-config", "--config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK (1 providers, 1 models, 2 keys)"), "{out}");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "server: { listen: nowhere, colour: red }\nproviders:\n  p: { type: openai }\n  q: { type: mock, latency: soon, speed: 3 }\nmodels:\n  m: { deployments: [{ provider: nope }] }\n",
    )
    .unwrap();
    let (code, _, err) = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    for expected in [
        "6 problems",
        "server.colour: unknown key",
        "providers.q.speed: unknown key",
        "server.listen: 'nowhere' is not an address",
        "providers.p.api_key: missing",
        "providers.q.latency: 'soon' is not a duration",
        "models.m.deployments[0].provider: no provider named 'nope'",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let (code, _, err) = run(&["check-config", "--config", "/nonexistent.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

/// Any `${VAR}` in an example resolves to the same made-up value.
struct AnyVar;

impl VarSource for AnyVar {
    fn var(&self, name: &str) -> Option<String> {
        if name.ends_with("_CREDENTIALS") {
            // Service account keys are JSON the config loader checks: a test-only key file.
            return Some(
                portcullis_testkit::wire::gemini::GeminiWire::credentials_json(
                    "https://oauth2.googleapis.com",
                ),
            );
        }
        Some("example-secret-0123456789".into())
    }
}

#[test]
fn every_example_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(problems) = Config::from_yaml(&text, &AnyVar) {
                panic!("{} is invalid: {problems:#?}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 2, "examples/ holds the quickstart and more");
}

#[test]
fn the_quickstart_runs_offline_as_the_readme_says() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    );
    let (code, out, err) = run(&["check-config", "--config", path]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("listen: 127.0.0.1:4000"));
    let cfg = Config::from_yaml(&text, &AnyVar).unwrap();
    let key = portcullis_core::auth::digest(b"sk-portcullis-demo");
    assert!(
        cfg.auth.keys.iter().any(|k| k.sha256 == key),
        "the README's demo key works"
    );
}

fn slow_stream_config(grace: &str, chunks: u32) -> String {
    format!(
        r#"
logging: {{ format: json }}
server: {{ shutdown_grace: {grace} }}
auth: {{ keys: [{{ name: test, sha256: "{TEST_KEY_SHA256}" }}] }}
providers:
  slow: {{ type: mock, chunk_delay: 100ms, completion_tokens: {chunks}, chunk_tokens: 1 }}
models:
  slow: {{ deployments: [{{ provider: slow }}] }}
"#
    )
}

async fn start_stream(gw: &GatewayProcess) -> reqwest::Response {
    let mut body = chat_body("slow");
    body["stream"] = json!(true);
    let mut response = post(gw.url("/v1/chat/completions"), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Wait until the stream is flowing.
    let first = response.chunk().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    response
}

#[tokio::test]
async fn sigterm_lets_streams_in_flight_finish() {
    let mut gw = GatewayProcess::start(BIN, &slow_stream_config("10s", 8))
        .await
        .unwrap();
    let response = start_stream(&gw).await;
    gw.signal("TERM").unwrap();
    assert!(
        gw.wait_for_message(
            "shutting down: finishing requests in flight",
            1,
            Duration::from_secs(5)
        )
        .await
    );
    let rest = response.text().await.unwrap();
    assert!(
        rest.ends_with("data: [DONE]\n\n"),
        "the stream finished: {rest}"
    );
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits after draining");
    assert!(status.success());
    assert!(
        client().get(gw.url("/healthz")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let mut gw = GatewayProcess::start(BIN, &slow_stream_config("300ms", 1000))
        .await
        .unwrap();
    let response = start_stream(&gw).await;
    let ready = client().get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    gw.signal("TERM").unwrap();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("exits after the grace period");
    assert!(status.success());
    let rest = response.text().await.unwrap_or_default();
    assert!(!rest.contains("[DONE]"), "the 100 s stream was cut");
    assert!(gw.logs().iter().any(|l| l.contains("grace period over")));
}

fn reload_config(watch: bool, models: &str) -> String {
    format!(
        r#"
logging: {{ format: json }}
reload: {{ watch: {watch}, poll_interval: 100ms }}
auth: {{ keys: [{{ name: test, sha256: "{TEST_KEY_SHA256}" }}] }}
providers:
  m: {{ type: mock }}
models:
{models}
"#
    )
}

async fn model_status(gw: &GatewayProcess, model: &str) -> u16 {
    post(gw.url("/v1/chat/completions"), chat_body(model))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn generation(gw: &GatewayProcess) -> u64 {
    let v: Value = client()
        .get(gw.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["config_generation"].as_u64().unwrap()
}

#[tokio::test]
async fn sighup_reloads_and_an_invalid_config_is_rejected() {
    let one = "  first: { deployments: [{ provider: m }] }";
    let two =
        "  first: { deployments: [{ provider: m }] }\n  second: { deployments: [{ provider: m }] }";
    let gw = GatewayProcess::start(BIN, &reload_config(false, one))
        .await
        .unwrap();
    assert_eq!(model_status(&gw, "second").await, 404);
    gw.write_config(&reload_config(false, two)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        model_status(&gw, "second").await,
        404,
        "watch is off: no reload without SIGHUP"
    );
    gw.signal("HUP").unwrap();
    assert!(
        gw.wait_for_message("config reloaded", 1, Duration::from_secs(5))
            .await
    );
    assert_eq!(model_status(&gw, "second").await, 200);
    assert_eq!(generation(&gw).await, 2);

    gw.write_config("models: { broken: { deployments: [{ provider: missing }] } }\nbogus: 1\n")
        .unwrap();
    gw.signal("HUP").unwrap();
    assert!(
        gw.wait_for_message(
            "config reload rejected; the current config keeps serving",
            1,
            Duration::from_secs(5)
        )
        .await
    );
    assert_eq!(
        model_status(&gw, "second").await,
        200,
        "the old config keeps serving"
    );
    assert_eq!(generation(&gw).await, 2);
    let rejected = gw
        .json_logs()
        .into_iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap();
    assert!(
        rejected["problems"]
            .as_str()
            .unwrap()
            .contains("bogus: unknown key"),
        "{rejected}"
    );
}

#[tokio::test]
async fn a_changed_file_is_reloaded() {
    let one = "  first: { deployments: [{ provider: m }] }";
    let gw = GatewayProcess::start(BIN, &reload_config(true, one))
        .await
        .unwrap();
    let stream = {
        let mut body = chat_body("first");
        body["stream"] = json!(true);
        post(gw.url("/v1/chat/completions"), body)
            .send()
            .await
            .unwrap()
    };
    gw.write_config(&reload_config(
        true,
        "  renamed: { deployments: [{ provider: m }] }",
    ))
    .unwrap();
    assert!(
        gw.wait_for_message("config reloaded", 1, Duration::from_secs(5))
            .await
    );
    assert_eq!(model_status(&gw, "renamed").await, 200);
    assert_eq!(model_status(&gw, "first").await, 404);
    let events = sse_data(&stream.text().await.unwrap());
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "in-flight requests are unaffected"
    );
}

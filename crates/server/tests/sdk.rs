//! The official `openai` SDKs for Python and Node drive the real gateway binary: chat (plain and
//! streamed, with and without `stream_options.include_usage`), embeddings, the model list, and
//! the errors the SDKs map to exception classes (unknown model -> 404 `NotFoundError`, bad key
//! -> 401 `AuthenticationError`). The official `anthropic` Python SDK drives `/v1/messages`
//! (plain, streamed, tools with a tool-result round trip, count_tokens, errors) on the same
//! gateway, translated to the OpenAI-compatible upstream. The SDK-side tests live in `tests/sdk/{python,node}`; the SDKs
//! are installed, pinned, by `scripts/install-sdks.sh` into `$PORTCULLIS_SDK_DIR` (default
//! `<repo>/.sdk`; a relative path is taken from the repository root).
//!
//! Needs `python3` (with `venv`), `node` and `npm`, and the package registries the first time.
//! Without the tools the tests print `skipping: <reason>` and pass, unless
//! `PORTCULLIS_TEST_SDKS=require`, which makes a missing tool a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use portcullis_testkit::upstream::openai_reply;
use portcullis_testkit::wire::anthropic::AnthropicWire;
use portcullis_testkit::wire::{Canned, CannedCall, CannedUsage, Finish, ProviderWire};
use portcullis_testkit::{
    GatewayProcess, MockUpstream, Recorded, Reply, SseEnd, TEST_KEY, TEST_KEY_SHA256,
};
use serde_json::json;
use tokio::sync::OnceCell;

const REQUIRE_VAR: &str = "PORTCULLIS_TEST_SDKS";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

fn sdk_dir() -> PathBuf {
    match std::env::var_os("PORTCULLIS_SDK_DIR") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join(".sdk"),
    }
}

/// Runs a command to completion within `limit`, killing it if it takes longer. (The `process`
/// feature of tokio is not enabled, so this is std's `Command`: threads drain the pipes and the
/// exit is polled, which keeps the runtime free to serve the mock upstream meanwhile.)
async fn run(command: &mut Command, limit: Duration) -> Output {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads a pipe to its end on a thread.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Whether `program args` runs and succeeds.
async fn works(program: &str, args: &[&str]) -> bool {
    let mut command = Command::new(program);
    command.args(args);
    tokio::task::spawn_blocking(move || {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .await
    .unwrap()
}

/// Why the SDK tests cannot run here, if they cannot.
async fn missing_tools() -> Option<String> {
    if !works("python3", &["-c", "import venv, ensurepip"]).await {
        return Some("python3 with the venv module not found".into());
    }
    if !works("node", &["--version"]).await {
        return Some("node not found".into());
    }
    if !works("npm", &["--version"]).await {
        return Some("npm not found".into());
    }
    None
}

/// Checks the tools, then installs the SDKs (once per test process; the script itself also
/// takes a lock and returns at once when already installed). `false` means skip.
async fn prepare() -> bool {
    if let Some(reason) = missing_tools().await {
        assert!(
            !portcullis_testkit::required(REQUIRE_VAR),
            "{REQUIRE_VAR}=require but {reason}"
        );
        eprintln!("skipping: {reason}");
        return false;
    }
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let script = repo_root().join("scripts/install-sdks.sh");
            let started = Instant::now();
            let out = run(
                Command::new("bash")
                    .arg(&script)
                    .env("PORTCULLIS_SDK_DIR", sdk_dir()),
                INSTALL_TIMEOUT,
            )
            .await;
            print_output("install-sdks.sh", &out);
            assert!(
                out.status.success(),
                "install-sdks.sh failed: {}",
                out.status
            );
            eprintln!("install-sdks.sh took {:.1?}", started.elapsed());
        })
        .await;
    true
}

fn print_output(what: &str, out: &Output) {
    eprintln!(
        "--- {what} ({}) stdout:\n{}--- {what} stderr:\n{}---",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// The mock upstream's answers: OpenAI's (`openai_reply`), except that a chat request offering
/// tools, before any tool result, gets two parallel tool calls (`get_weather` for Paris,
/// `get_time` for CET), whole or streamed in argument fragments.
fn sdk_reply(r: &Recorded) -> Reply {
    let offers_tools = r.body["tools"].is_array();
    let has_results = r.body["messages"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
    if r.path != "/v1/chat/completions" || !offers_tools || has_results {
        return openai_reply(r);
    }
    let usage = json!({"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42});
    if r.body["stream"] != true {
        return Reply::json(
            200,
            json!({"id": "chatcmpl-tools", "object": "chat.completion", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null,
                    "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_weather", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_time", "type": "function",
                         "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}]}}],
                "usage": usage}),
        );
    }
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        json!({"id": "chatcmpl-tools", "object": "chat.completion.chunk", "created": 1,
            "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let call = |index: u32, id: &str, name: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            None,
        )
    };
    let args = |index: u32, fragment: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            None,
        )
    };
    let mut events = vec![
        chunk(json!({"role": "assistant", "content": null}), None),
        call(0, "call_weather", "get_weather"),
        args(0, "{\"city\":"),
        args(0, "\"Paris\"}"),
        call(1, "call_time", "get_time"),
        args(1, "{\"tz\":\"CET\"}"),
        chunk(json!({}), Some("tool_calls")),
    ];
    if r.body["stream_options"]["include_usage"] == true {
        events.push(
            json!({"id": "chatcmpl-tools", "object": "chat.completion.chunk", "created": 1,
                "model": "m", "choices": [], "usage": usage})
            .to_string(),
        );
    }
    events.push("[DONE]".into());
    Reply::Sse {
        events,
        delay: Duration::from_millis(2),
        end: SseEnd::Close,
    }
}

/// The native Anthropic upstream's answers (`AnthropicWire`): "Hello from Claude" (usage 12/4),
/// or a `get_weather` call for Paris when tools are offered; 42 tokens for count_tokens.
fn anthropic_reply(r: &Recorded) -> Reply {
    if r.path == "/v1/messages/count_tokens" {
        return Reply::json(200, json!({"input_tokens": 42}));
    }
    let tools = r.body["tools"].is_array();
    let canned = Canned {
        model: "claude-upstream".into(),
        text: (!tools).then(|| "Hello from Claude".into()),
        tool_calls: if tools {
            vec![CannedCall {
                id: "toolu_01".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"}),
            }]
        } else {
            Vec::new()
        },
        finish: if tools {
            Finish::ToolUse
        } else {
            Finish::EndTurn
        },
        usage: CannedUsage {
            input: 12,
            output: 4,
            cached: 0,
            reasoning: 0,
        },
    };
    AnthropicWire::default().reply(&canned, r.body["stream"] == true)
}

/// The mock upstreams and the gateway in front of them: an OpenAI-compatible one, a native
/// Anthropic one, and the built-in mock provider.
struct Setup {
    openai: MockUpstream,
    anthropic: MockUpstream,
    gateway: GatewayProcess,
}

async fn start_gateway() -> Setup {
    let upstream = MockUpstream::start(sdk_reply).await.unwrap();
    let anthropic = MockUpstream::start(anthropic_reply).await.unwrap();
    let anthropic_provider =
        AnthropicWire::default().provider_yaml(&format!("http://{}", anthropic.addr));
    let yaml = format!(
        r#"
logging: {{ format: json, level: info }}
auth:
  keys:
    - {{ name: test, sha256: "{TEST_KEY_SHA256}" }}
providers:
  up: {{ type: openai_compatible, base_url: "{}" }}
  fake: {{ type: mock, completion_tokens: 8, chunk_tokens: 2 }}
  anth: {anthropic_provider}
models:
  gpt-test: {{ deployments: [{{ provider: up, model: upstream-model }}] }}
  claude-native: {{ deployments: [{{ provider: anth, model: claude-upstream }}] }}
  mock-chat: {{ deployments: [{{ provider: fake }}] }}
  embed-test: {{ deployments: [{{ provider: up, model: upstream-embed }}] }}
"#,
        upstream.base_url()
    );
    let gateway = GatewayProcess::start(env!("CARGO_BIN_EXE_portcullis"), &yaml)
        .await
        .unwrap();
    Setup {
        openai: upstream,
        anthropic,
        gateway,
    }
}

/// Runs an SDK test suite against a fresh gateway and asserts it passed.
async fn run_suite(what: &str, command: &mut Command) {
    let Setup {
        openai: upstream,
        anthropic,
        gateway,
    } = start_gateway().await;
    command
        .current_dir(repo_root())
        .env("PORTCULLIS_BASE_URL", gateway.url("/v1"))
        .env("PORTCULLIS_KEY", TEST_KEY)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    // The suites only talk to 127.0.0.1; a proxy from the environment must not get in the way.
    for var in ["http_proxy", "https_proxy", "all_proxy"] {
        command.env_remove(var).env_remove(var.to_uppercase());
    }
    let started = Instant::now();
    let out = run(command, RUN_TIMEOUT).await;
    print_output(what, &out);
    eprintln!("{what} took {:.1?}", started.elapsed());
    if !out.status.success() {
        eprintln!("--- gateway logs:\n{}\n---", gateway.logs().join("\n"));
    }
    assert!(out.status.success(), "{what} failed: {}", out.status);
    check_upstream_saw(&upstream.requests());
    // The native Anthropic upstream got the deployment's model and the provider's key only.
    for r in anthropic.requests() {
        assert_eq!(r.body["model"], "claude-upstream", "{}", r.body);
        let key = r.headers.get("x-api-key").map_or("", String::as_str);
        assert_eq!(
            key,
            AnthropicWire::default().api_key,
            "the provider key upstream"
        );
    }
}

/// What the SDK calls looked like by the time they reached the upstream: the deployment's model
/// name, usage always requested on streams, unknown fields passed through, and never the
/// client's key.
fn check_upstream_saw(requests: &[Recorded]) {
    assert!(!requests.is_empty(), "the upstream saw no requests");
    for r in requests {
        let auth = r.headers.get("authorization").map_or("", String::as_str);
        assert!(
            !auth.contains(TEST_KEY),
            "the client's key reached the upstream"
        );
        let expected = match r.path.as_str() {
            "/v1/embeddings" => "upstream-embed",
            _ => "upstream-model",
        };
        assert_eq!(r.body["model"], expected, "{} {}", r.path, r.body);
        if r.body["stream"] == true {
            assert_eq!(
                r.body["stream_options"]["include_usage"], true,
                "{}",
                r.body
            );
        }
    }
    assert!(
        requests
            .iter()
            .any(|r| r.body["x_portcullis_unknown_field"]["nested"] == serde_json::json!([1, 2, 3])),
        "the unknown extra field was not passed through"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk() {
    if !prepare().await {
        return;
    }
    let python = sdk_dir().join("venv/bin/python");
    // -p no:cacheprovider: no .pytest_cache left in the repository.
    run_suite(
        "pytest",
        Command::new(python).args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/sdk/python",
        ]),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_sdk() {
    if !prepare().await {
        return;
    }
    // ESM resolves `import "openai"` from the importing file's directory and ignores NODE_PATH,
    // so the test file runs from a copy next to the installed node_modules (see its header).
    let test_file = sdk_dir().join("node/openai_sdk.test.mjs");
    std::fs::copy(
        repo_root().join("tests/sdk/node/openai_sdk.test.mjs"),
        &test_file,
    )
    .unwrap();
    run_suite(
        "node --test",
        Command::new("node").arg("--test").arg(&test_file),
    )
    .await;
}

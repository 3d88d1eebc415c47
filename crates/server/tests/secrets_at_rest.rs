//! No secret in clear (issue 4): through the real binary, logging at debug level, a virtual key
//! and provider credentials are made through the admin API with distinctive secrets, data-plane
//! requests use both (the virtual key authenticates, the stored credential reaches the
//! upstream), and every read and list endpoint is called. Then:
//!
//! - no API response after the one-time key creation response holds the virtual key or a
//!   provider secret (bodies and headers);
//! - the gateway's whole output (stdout and stderr) holds neither;
//! - no column of any table of the database holds either, read raw (every table, every column,
//!   as bytes and as text; also hex and base64 of the secrets), nor do the SQLite file's raw
//!   bytes, write-ahead log and shared-memory file included.
//!
//! Each check also looks for something that must be there (the credential's name, the key's
//! public id), so that it provably reads the right bytes. The database check runs on SQLite and
//! on PostgreSQL: PostgreSQL is `postgres://postgres@127.0.0.1:5432/test` unless
//! `PORTCULLIS_TEST_POSTGRES_URL` says otherwise (a database of its own is created and dropped);
//! when it is unreachable the test prints `skipping:` and passes, unless
//! `PORTCULLIS_TEST_SERVICES=require`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{BIN, client};
use portcullis_core::envelope::generate_master_key;
use portcullis_testkit::wire::openai::OpenAiWire;
use portcullis_testkit::{GatewayProcess, MockUpstream};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::Row;

const ADMIN: &str = "admin-master-key-0123456789";
const HASHING_SECRET: &str = "test-hashing-secret-0123456789abcdef";
const PROVIDER_SECRET: &str = "sk-prov-AT-REST-canary-6d1f0b93";
const SPARE_SECRET: &str = "sk-spare-AT-REST-canary-a7c2e4";
const CREDENTIAL_NAME: &str = "upstream-at-rest";

/// What the scenario leaves behind to check.
struct Outcome {
    /// The virtual key, whole.
    key: String,
    /// Its public id (stored in clear by design).
    public_id: String,
    gw: GatewayProcess,
    _upstream: MockUpstream,
}

impl Outcome {
    /// The strings that must appear nowhere: the virtual key, its secret part, the provider
    /// secrets.
    fn secrets(&self) -> Vec<String> {
        let secret_part = self.key[portcullis_core::virtual_key::PREFIX.len()
            + portcullis_core::virtual_key::ID_LEN
            + 1..]
            .to_owned();
        vec![
            self.key.clone(),
            secret_part,
            PROVIDER_SECRET.to_owned(),
            SPARE_SECRET.to_owned(),
        ]
    }

    /// The secrets and their hex and base64 encodings, as bytes: none may be in the database.
    fn needles(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for s in self.secrets() {
            out.push((s.clone(), s.as_bytes().to_vec()));
            out.push((format!("hex of {s}"), hex_lower(s.as_bytes()).into_bytes()));
            out.push((
                format!("base64 of {s}"),
                base64::engine::general_purpose::STANDARD
                    .encode(&s)
                    .into_bytes(),
            ));
        }
        out
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs the scenario on a gateway whose store is `store_yaml` (a YAML flow mapping).
async fn scenario(store_yaml: &str) -> Outcome {
    // The usage journal in a directory of this run (with PostgreSQL its default would be the
    // working directory).
    let journal = tempfile::tempdir().unwrap();
    let journal_dir = journal.path().display().to_string();
    let upstream = MockUpstream::openai().await.unwrap();
    let base = upstream.base_url();
    let master = generate_master_key().unwrap();
    let yaml = |api_key: &str| {
        format!(
            r#"
logging: {{ format: json, level: debug }}
reload: {{ poll_interval: 100ms }}
store: {store_yaml}
usage: {{ journal_dir: "{journal_dir}" }}
secrets: {{ master_key: "${{PORTCULLIS_TEST_MASTER_KEY}}" }}
auth:
  master_key: {ADMIN}
  hashing_secret: {HASHING_SECRET}
providers:
  up: {{ type: openai_compatible, base_url: "{base}", api_key: "{api_key}" }}
models:
  gpt-test: {{ deployments: [{{ provider: up, model: upstream-model }}] }}
  embed-test: {{ deployments: [{{ provider: up, model: upstream-embed }}] }}
"#
        )
    };
    let gw = GatewayProcess::start_with_env(
        BIN,
        &yaml("sk-placeholder-in-file"),
        &[("PORTCULLIS_TEST_MASTER_KEY", master.expose_secret())],
    )
    .await
    .unwrap();

    // Every response after the key's creation, to scan; the creation answers are checked as
    // they come.
    let mut seen: Vec<String> = Vec::new();
    let admin = |method: Method, path: &str, body: Option<Value>| {
        let mut req = client().request(method, gw.url(path)).bearer_auth(ADMIN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req
    };
    async fn answer(req: reqwest::RequestBuilder) -> (u16, String) {
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = format!("{:?}", r.headers());
        (status, format!("{headers}\n{}", r.text().await.unwrap()))
    }

    for (name, secret) in [
        (CREDENTIAL_NAME, PROVIDER_SECRET),
        ("spare-at-rest", SPARE_SECRET),
    ] {
        let body = json!({"name": name, "provider": "openai_compatible", "secret": secret});
        let (status, text) = answer(admin(Method::POST, "/admin/v1/credentials", Some(body))).await;
        assert_eq!(status, 201, "{text}");
        seen.push(text);
    }
    let org: Value = admin(
        Method::POST,
        "/admin/v1/orgs",
        Some(json!({"name": "acme"})),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let team: Value = admin(
        Method::POST,
        "/admin/v1/teams",
        Some(json!({"org_id": org["id"], "name": "search"})),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let made: Value = admin(
        Method::POST,
        "/admin/v1/keys",
        Some(json!({"team_id": team["id"], "name": "at-rest-bot"})),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = made["key"].as_str().unwrap().to_owned();
    let key_id = made["id"].as_str().unwrap().to_owned();
    let public_id = made["public_id"].as_str().unwrap().to_owned();
    assert!(key.contains(&public_id));

    // The provider takes its key from the store.
    gw.write_config(&yaml(&format!("${{credential:{CREDENTIAL_NAME}}}")))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw
        .json_logs()
        .iter()
        .any(|l| l["message"] == "config reloaded" && l["trigger"] == "file changed")
    {
        assert!(std::time::Instant::now() < deadline, "no reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Data plane with the virtual key, reaching the upstream with the stored credential.
    let data =
        |method: Method, path: &str| client().request(method, gw.url(path)).bearer_auth(&key);
    let chat = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]});
    let mut stream = chat.clone();
    stream["stream"] = json!(true);
    for (path, body) in [
        ("/v1/chat/completions", chat),
        ("/v1/chat/completions", stream),
        (
            "/v1/embeddings",
            json!({"model": "embed-test", "input": "hi"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ] {
        let (status, text) = answer(data(Method::POST, path).json(&body)).await;
        assert!(
            status == 200 || path == "/v1/chat/completions" && status == 404,
            "{status} {text}"
        );
        seen.push(text);
    }
    // A wrong key, whose error must not echo it.
    let wrong = format!("{}x", &key[..key.len() - 1]);
    let (status, text) = answer(
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&wrong)
            .json(&json!({"model": "gpt-test", "messages": []})),
    )
    .await;
    assert_eq!(status, 401);
    seen.push(text);
    let requests = upstream.requests();
    let chat_request = requests
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap();
    OpenAiWire
        .seen_with_key(chat_request, PROVIDER_SECRET)
        .unwrap();

    // Every read and list endpoint.
    let credentials_list: Value = admin(Method::GET, "/admin/v1/credentials", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let spare_id = credentials_list["data"][1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reads = [
        "/admin/v1/orgs".to_owned(),
        "/admin/v1/teams".to_owned(),
        "/admin/v1/keys".to_owned(),
        format!("/admin/v1/keys/{key_id}"),
        "/admin/v1/credentials".to_owned(),
        "/admin/v1/credentials?provider=openai_compatible&name_prefix=upstream".to_owned(),
        format!("/admin/v1/credentials/{spare_id}"),
    ];
    for path in &reads {
        let (status, text) = answer(admin(Method::GET, path, None)).await;
        assert_eq!(status, 200, "{path}: {text}");
        seen.push(text);
    }
    for path in ["/v1/models", "/v1/models/gpt-test", "/healthz", "/readyz"] {
        let (status, text) = answer(data(Method::GET, path)).await;
        assert_eq!(status, 200, "{path}: {text}");
        seen.push(text);
    }
    // Changes answer metadata only too.
    let rename = json!({"name": "spare-renamed"});
    let (status, text) = answer(admin(
        Method::PATCH,
        &format!("/admin/v1/credentials/{spare_id}"),
        Some(rename),
    ))
    .await;
    assert_eq!(status, 200, "{text}");
    seen.push(text);

    let outcome = Outcome {
        key,
        public_id,
        gw,
        _upstream: upstream,
    };
    let all = seen.join("\n");
    assert!(all.contains(CREDENTIAL_NAME) && all.contains(&outcome.public_id));
    for secret in outcome.secrets() {
        assert!(!all.contains(&secret), "an API response holds {secret}");
    }
    outcome
}

/// The gateway's output at debug level holds no secret (and does hold debug lines and the
/// key's public name, so it is the right output).
async fn check_logs(outcome: &Outcome) {
    // The access line of the last request, so that everything before it is flushed.
    outcome.gw.access_lines(5).await;
    let logs = outcome.gw.logs();
    assert!(
        outcome.gw.json_logs().iter().any(|l| l["level"] == "DEBUG"),
        "the logs are not at debug level"
    );
    let all = logs.join("\n");
    assert!(all.contains("at-rest-bot"), "the access log names the key");
    for secret in outcome.secrets() {
        assert!(!all.contains(&secret), "the logs hold {secret}");
    }
}

/// Checks `(where, bytes)` values: none holds a needle, and some hold each of `present`.
fn check_values(values: &[(String, Vec<u8>)], outcome: &Outcome, what: &str) {
    assert!(!values.is_empty(), "{what}: nothing read");
    for (place, bytes) in values {
        for (name, needle) in outcome.needles() {
            assert!(!contains(bytes, &needle), "{what}: {place} holds {name}");
        }
    }
    for present in [CREDENTIAL_NAME.as_bytes(), outcome.public_id.as_bytes()] {
        assert!(
            values.iter().any(|(_, b)| contains(b, present)),
            "{what}: {} not found, so the check reads the wrong bytes",
            String::from_utf8_lossy(present)
        );
    }
}

#[tokio::test]
async fn no_secret_in_clear_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let outcome = scenario(&format!("{{ sqlite: \"{}\" }}", db.display())).await;
    check_logs(&outcome).await;

    // Raw files while the gateway runs (the write-ahead log holds the latest writes).
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path, bytes));
        }
    }
    assert!(files.len() >= 2, "the database and its write-ahead log");
    check_values(&files, &outcome, "SQLite files");

    // Every column of every table, as stored bytes and as text.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&db)
                .read_only(true),
        )
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .unwrap();
    for t in ["provider_credentials", "virtual_keys", "organizations"] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
    let mut values = Vec::new();
    for table in &tables {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{table}\")"))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        for column in columns {
            let sql = format!(
                "SELECT CAST(\"{column}\" AS BLOB) AS b, CAST(\"{column}\" AS TEXT) AS t FROM \"{table}\""
            );
            for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
                let place = format!("{table}.{column}");
                let bytes: Option<Vec<u8>> = row.get("b");
                // The text form of a blob need not be UTF-8: read its bytes as they are.
                let text: Option<Vec<u8>> = row.try_get_unchecked("t").unwrap();
                values.push((place.clone(), bytes.unwrap_or_default()));
                values.push((place, text.unwrap_or_default()));
            }
        }
    }
    pool.close().await;
    check_values(&values, &outcome, "SQLite columns");
}

#[tokio::test]
async fn no_secret_in_clear_on_postgres() {
    common::with_scratch_postgres("portcullis_at_rest", |db_url| async move {
        let outcome = scenario(&format!("{{ postgres: \"{db_url}\" }}")).await;
        check_logs(&outcome).await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&db_url)
            .await
            .unwrap();
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            columns
                .iter()
                .any(|(t, c, _)| t == "provider_credentials" && c == "wrapped_key")
        );
        let mut values = Vec::new();
        for (table, column, kind) in &columns {
            let place = format!("{table}.{column}");
            if kind == "bytea" {
                let sql = format!("SELECT \"{column}\" FROM \"{table}\"");
                for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
                    let bytes: Option<Vec<u8>> = row.get(0);
                    values.push((place.clone(), bytes.unwrap_or_default()));
                }
            }
            let sql = format!("SELECT \"{column}\"::text FROM \"{table}\"");
            for row in sqlx::query(&sql).fetch_all(&pool).await.unwrap() {
                let text: Option<String> = row.get(0);
                values.push((place.clone(), text.unwrap_or_default().into_bytes()));
            }
        }
        pool.close().await;
        check_values(&values, &outcome, "PostgreSQL columns");
        drop(outcome);
    })
    .await;
}

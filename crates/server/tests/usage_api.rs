//! The usage report (`GET /admin/v1/usage` and `portcullis usage`) on the real binary, once on
//! an SQLite store and once on PostgreSQL (in a database of its own; skipped with the reason
//! printed when PostgreSQL is unreachable, unless `PORTCULLIS_TEST_SERVICES=require`).
//!
//! Two organizations' users and a key without a user make requests through the gateway (to a
//! priced model, an unpriced one on a second provider, and one the upstream refuses), as does
//! a key of the config file; two older records a microsecond either side of a UTC midnight are
//! written straight into the store. Once the journal has flushed every request, the report is
//! checked by key, team and model, provider and day, with each filter, as JSON and as CSV, in
//! each caller's scope (an org admin sees its organization, a member or viewer its team, only a
//! gateway admin the config key's requests), every bad parameter answers 400 naming it, and
//! the CLI prints the same report as a table, JSON and CSV.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BIN, HASHING_SECRET, admin_cli, chat_body, client};
use portcullis_store::{PostgresStore, SqliteStore, Store, UsageRecord};
use portcullis_testkit::{
    GatewayProcess, MockUpstream, Reply, TEST_KEY, TEST_KEY_SHA256, upstream::openai_reply,
};
use serde_json::{Value, json};

const MASTER: &str = "usage-master-key-0123456789";

/// Users: (name, team, role); each gets a key of its own, named after it.
const USERS: &[(&str, &str, &str)] = &[
    ("a_admin", "A1", "org_admin"),
    ("a1_member", "A1", "member"),
    ("a1_viewer", "A1", "viewer"),
    ("a2_member", "A2", "member"),
    ("b1_member", "B1", "member"),
];

/// The name of team A1's key without a user: a comma and quotes, for CSV's quoting.
const BOT: &str = "a1 bot, \"nightly\"";

/// Requests through the gateway: (whose key, model, how many). `gpt-test` is priced (10 tokens
/// in at $1/M and 2 out at $2/M: 14 micro-dollars), `other-test` is not and runs on the
/// provider `up2`, and the upstream refuses `bad-test` with a 400.
const TRAFFIC: &[(&str, &str, usize)] = &[
    ("a1_member", "gpt-test", 3),
    ("a1_member", "other-test", 1),
    ("a1_member", "bad-test", 1),
    ("a1_bot", "gpt-test", 2),
    ("a2_member", "gpt-test", 1),
    ("a2_member", "other-test", 1),
    ("b1_member", "gpt-test", 2),
    ("config", "gpt-test", 1),
];

/// Every request the report must count: the traffic and the two older records.
const ALL: u64 = 14;

struct World {
    gw: GatewayProcess,
    _upstream: MockUpstream,
    _journal: tempfile::TempDir,
    /// Ids by name: organizations, teams, users, and `key:<user>` for keys.
    ids: HashMap<String, String>,
    /// Each user's key (and `a1_bot`'s), by name.
    secrets: HashMap<String, String>,
}

impl World {
    /// A gateway on the store `store_yaml` (a YAML flow mapping), the tenants made through the
    /// admin API, and the traffic sent.
    async fn build(store_yaml: &str) -> Self {
        let upstream = MockUpstream::start(|r| {
            if r.body["model"] == "upstream-bad" {
                Reply::error(400, "this model is refused")
            } else {
                openai_reply(r)
            }
        })
        .await
        .unwrap();
        let base = upstream.base_url();
        let journal = tempfile::tempdir().unwrap();
        let yaml = format!(
            r#"
logging: {{ format: json, level: info }}
store: {store_yaml}
usage: {{ journal_dir: "{journal}", flush_interval: 50ms }}
pricing:
  models:
    upstream-model: {{ input: "1.00", output: "2.00" }}
auth:
  master_key: {MASTER}
  hashing_secret: {HASHING_SECRET}
  keys:
    - {{ name: config-key, sha256: "{TEST_KEY_SHA256}" }}
providers:
  up: {{ type: openai_compatible, base_url: "{base}", api_key: "sk-upstream-secret-0001" }}
  up2: {{ type: openai_compatible, base_url: "{base}", api_key: "sk-upstream-secret-0002" }}
models:
  gpt-test: {{ deployments: [{{ provider: up, model: upstream-model }}] }}
  other-test: {{ deployments: [{{ provider: up2, model: upstream-other }}] }}
  bad-test: {{ deployments: [{{ provider: up, model: upstream-bad }}] }}
"#,
            journal = journal.path().display()
        );
        let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
        let mut w = World {
            gw,
            _upstream: upstream,
            _journal: journal,
            ids: HashMap::new(),
            secrets: HashMap::new(),
        };
        for org in ["A", "B"] {
            let made = w.create("/orgs", json!({ "name": org })).await;
            w.ids
                .insert(org.into(), made["id"].as_str().unwrap().into());
        }
        for (team, org) in [("A1", "A"), ("A2", "A"), ("B1", "B")] {
            let body = json!({ "org_id": w.ids[org], "name": team });
            let made = w.create("/teams", body).await;
            w.ids
                .insert(team.into(), made["id"].as_str().unwrap().into());
        }
        for (name, team, role) in USERS {
            let body = json!({ "team_id": w.ids[*team], "name": name, "role": role });
            let user = w.create("/users", body).await;
            w.ids
                .insert((*name).into(), user["id"].as_str().unwrap().into());
            let body = json!({ "team_id": w.ids[*team], "name": name, "user_id": w.ids[*name] });
            w.add_key(name, body).await;
        }
        let bot = json!({ "team_id": w.ids["A1"], "name": BOT });
        w.add_key("a1_bot", bot).await;
        w.send_traffic().await;
        w
    }

    async fn create(&self, path: &str, body: Value) -> Value {
        let response = client()
            .post(self.gw.url(&format!("/admin/v1{path}")))
            .bearer_auth(MASTER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "POST {path}");
        response.json().await.unwrap()
    }

    async fn add_key(&mut self, name: &str, body: Value) {
        let key = self.create("/keys", body).await;
        self.ids
            .insert(format!("key:{name}"), key["id"].as_str().unwrap().into());
        self.secrets
            .insert(name.into(), key["key"].as_str().unwrap().into());
    }

    fn key_of(&self, who: &str) -> &str {
        match who {
            "master" => MASTER,
            "config" => TEST_KEY,
            name => &self.secrets[name],
        }
    }

    async fn send_traffic(&self) {
        for (who, model, n) in TRAFFIC {
            for _ in 0..*n {
                let status = client()
                    .post(self.gw.url("/v1/chat/completions"))
                    .bearer_auth(self.key_of(who))
                    .json(&chat_body(model))
                    .send()
                    .await
                    .unwrap()
                    .status();
                let want = if *model == "bad-test" { 400 } else { 200 };
                assert_eq!(status, want, "{who} {model}");
            }
        }
    }

    /// `query` with every `{name}` replaced by that name's id.
    fn fill(&self, query: &str) -> String {
        let mut out = query.to_owned();
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), id);
        }
        out
    }

    /// `GET /admin/v1/usage?<query>` as `who`, with `accept` if given: status, content type,
    /// body.
    async fn get(&self, who: &str, query: &str, accept: Option<&str>) -> (u16, String, String) {
        let url = self
            .gw
            .url(&format!("/admin/v1/usage?{}", self.fill(query)));
        let mut req = client().get(url).bearer_auth(self.key_of(who));
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    /// The JSON report of `query` as `who` (which must answer 200).
    async fn report(&self, who: &str, query: &str) -> Value {
        let (status, content_type, body) = self.get(who, query, None).await;
        assert_eq!(status, 200, "{who} {query}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        serde_json::from_str(&body).unwrap()
    }

    /// The report's rows as (the values of `columns`, joined by `|`, with names for ids) →
    /// requests.
    async fn counts(&self, who: &str, query: &str, columns: &[&str]) -> BTreeMap<String, u64> {
        let names: HashMap<&str, &str> = self
            .ids
            .iter()
            .map(|(name, id)| (id.as_str(), name.as_str()))
            .collect();
        let report = self.report(who, query).await;
        let mut out = BTreeMap::new();
        for row in report["rows"].as_array().unwrap() {
            let label: Vec<String> = columns
                .iter()
                .map(|c| match &row[*c] {
                    Value::Null => "-".to_owned(),
                    Value::String(s) => names.get(s.as_str()).unwrap_or(&s.as_str()).to_string(),
                    other => other.to_string(),
                })
                .collect();
            let requests = row["requests"].as_u64().unwrap();
            assert!(
                out.insert(label.join("|"), requests).is_none(),
                "a group twice: {row}"
            );
        }
        out
    }

    /// Waits until the journal has flushed every request into the store.
    async fn flushed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let report = self.report("master", "").await;
            let requests = report["totals"]["requests"].as_u64().unwrap();
            if requests == ALL {
                return;
            }
            assert!(
                requests < ALL && Instant::now() < deadline,
                "{requests} of {ALL} requests in the store: {report}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Two records of an older day, a microsecond either side of midnight UTC (a leap day's), of a
/// key, team and organization the store does not know.
fn older_records() -> Vec<UsageRecord> {
    let record = |n: u32, at_us: i64| UsageRecord {
        id: format!("0170-older-{n}"),
        request_id: format!("older_{n}"),
        started_at_us: at_us,
        key_name: Some("old key".into()),
        key_id: Some("old-key".into()),
        org: Some("old-org".into()),
        team: Some("old-team".into()),
        endpoint: "/v1/chat/completions".into(),
        model: Some("gpt-test".into()),
        provider: Some("up".into()),
        status: 200,
        outcome: "completed".into(),
        input_tokens: Some(1000),
        output_tokens: Some(500),
        latency_us: 1000,
        cost_micros: Some(2_000_000),
        ..UsageRecord::default()
    };
    // 2020-03-01T00:00:00Z is 1583020800 s after the epoch.
    let midnight = 1_583_020_800_000_000;
    vec![record(1, midnight - 1), record(2, midnight)]
}

/// The whole scenario on a gateway whose store is `store_yaml`; `store` opens the same store
/// for the older records.
async fn scenario(store_yaml: &str, store: impl AsyncFnOnce() -> Arc<dyn Store>) {
    let w = World::build(store_yaml).await;
    let store = store().await;
    assert_eq!(store.insert_usage(&older_records()).await.unwrap(), 2);
    store.close().await;
    w.flushed().await;

    by_key(&w).await;
    by_team_model_and_provider(&w).await;
    by_day(&w).await;
    filters(&w).await;
    csv(&w).await;
    scope(&w).await;
    bad_parameters(&w).await;
    cli(&w).await;

    let logs = w.gw.logs().join("\n");
    for secret in w.secrets.values().map(String::as_str).chain([MASTER]) {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
}

async fn by_key(w: &World) {
    let report = w.report("master", "group_by=key").await;
    assert_eq!(report["group_by"], json!(["key"]));
    assert_eq!(
        (&report["from"], &report["to"]),
        (&Value::Null, &Value::Null)
    );
    let row_of = |name: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key_name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {name}: {report}"))
    };
    // Three priced requests, one unpriced, one refused by the upstream (no usage, an error).
    assert_eq!(
        row_of("a1_member"),
        json!({"key_id": w.ids["key:a1_member"], "key_name": "a1_member", "requests": 5,
            "errors": 1, "input_tokens": 40, "output_tokens": 8, "cached_tokens": 0,
            "reasoning_tokens": 0, "cost_usd": "0.000042"})
    );
    assert_eq!(row_of(BOT)["cost_usd"], "0.000028");
    assert_eq!(row_of("a2_member")["cost_usd"], "0.000014");
    // A key of the config file has no id.
    let config = row_of("config-key");
    assert_eq!(
        (&config["key_id"], &config["requests"], &config["cost_usd"]),
        (&Value::Null, &json!(1), &json!("0.000014"))
    );
    assert_eq!(
        report["totals"],
        json!({"requests": ALL, "errors": 1, "input_tokens": 2110, "output_tokens": 1022,
            "cached_tokens": 0, "reasoning_tokens": 0, "cost_usd": "4.000126"})
    );
    // Rows sorted by key id (as bytes), the config key (no id) last; only the key columns.
    let ids: Vec<Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key_id"].clone())
        .collect();
    let mut sorted: Vec<Value> = ids.iter().filter(|v| !v.is_null()).cloned().collect();
    sorted.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    sorted.push(Value::Null);
    assert_eq!(ids, sorted);
    for row in report["rows"].as_array().unwrap() {
        assert!(
            row.get("model").is_none() && row.get("team_id").is_none(),
            "{row}"
        );
    }
    // Without groups: one row, the total.
    let total = w.report("master", "").await;
    assert_eq!(total["group_by"], json!([]));
    assert_eq!(total["rows"], json!([report["totals"]]));
    assert_eq!(total["totals"], report["totals"]);
}

async fn by_team_model_and_provider(w: &World) {
    assert_eq!(
        w.counts("master", "group_by=team,model", &["team_id", "model"])
            .await,
        map(&[
            ("A1|bad-test", 1),
            ("A1|gpt-test", 5),
            ("A1|other-test", 1),
            ("A2|gpt-test", 1),
            ("A2|other-test", 1),
            ("B1|gpt-test", 2),
            ("old-team|gpt-test", 2),
            ("-|gpt-test", 1),
        ])
    );
    // The order asked for is the order sorted by: the model first here.
    let report = w.report("master", "group_by=model,team").await;
    assert_eq!(report["group_by"], json!(["model", "team"]));
    let models: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    let mut sorted = models.clone();
    sorted.sort();
    assert_eq!(models, sorted);
    assert_eq!(
        w.counts("master", "group_by=provider", &["provider"]).await,
        map(&[("up", 12), ("up2", 2)])
    );
    assert_eq!(
        w.counts("master", "group_by=org,user", &["org_id", "user_id"])
            .await,
        map(&[
            ("A|a1_member", 5),
            ("A|a2_member", 2),
            ("A|-", 2),
            ("B|b1_member", 2),
            ("old-org|-", 2),
            ("-|-", 1),
        ])
    );
}

async fn by_day(w: &World) {
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let days = w.counts("master", "group_by=day", &["day"]).await;
    let recent: u64 = days
        .iter()
        .filter(|(d, _)| !d.starts_with("2020"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(recent, ALL - 2, "{days:?}");
    assert_eq!(
        (days.get("2020-02-29"), days.get("2020-03-01")),
        (Some(&1), Some(&1))
    );
    assert!(days.keys().all(|d| d.starts_with("2020") || *d <= today));
    // Dates as bounds mean their midnight UTC: `to` is exclusive.
    let leap = w
        .report("master", "group_by=day,key&from=2020-02-29&to=2020-03-01")
        .await;
    assert_eq!(leap["from"], "2020-02-29T00:00:00Z");
    assert_eq!(leap["to"], "2020-03-01T00:00:00Z");
    assert_eq!(
        leap["rows"],
        json!([{"day": "2020-02-29", "key_id": "old-key", "key_name": "old key",
            "requests": 1, "errors": 0, "input_tokens": 1000, "output_tokens": 500,
            "cached_tokens": 0, "reasoning_tokens": 0, "cost_usd": "2.000000"}])
    );
    // RFC 3339 bounds, in any offset: the second record alone.
    let after = w
        .report(
            "master",
            "group_by=day&from=2020-03-01T01:00:00%2B01:00&to=2020-03-02",
        )
        .await;
    assert_eq!(after["from"], "2020-03-01T00:00:00Z");
    assert_eq!(
        w.counts(
            "master",
            "group_by=day&from=2020-03-01T00:00:00Z&to=2021-01-01",
            &["day"]
        )
        .await,
        map(&[("2020-03-01", 1)])
    );
    assert_eq!(after["rows"][0]["day"], "2020-03-01");
    // Today's requests, from today on (unless the test ran across midnight).
    if days.get(&today) == Some(&(ALL - 2)) {
        let since = w.report("master", &format!("from={today}")).await;
        assert_eq!(since["totals"]["requests"], ALL - 2, "{since}");
    }
}

async fn filters(w: &World) {
    for (query, want) in [
        ("model=other-test", 2),
        ("model=gpt", 0),
        ("provider=up2", 2),
        ("user_id={a1_member}", 5),
        ("key_id={key:a1_bot}", 2),
        ("team_id={A2}", 2),
        ("org_id={B}", 2),
        ("org_id={A}&model=gpt-test", 6),
        ("team_id={A1}&provider=up", 6),
        ("team_id={A1}&key_id={key:b1_member}", 0),
        ("org_id=old-org&from=2020-03-01", 1),
    ] {
        let report = w.report("master", query).await;
        assert_eq!(report["totals"]["requests"], want, "{query}: {report}");
        let rows = report["rows"].as_array().unwrap().len();
        assert_eq!(rows, usize::from(want > 0), "{query}: {report}");
    }
}

async fn csv(w: &World) {
    let query = "group_by=team,key&org_id={A}";
    let json = w.report("master", query).await;
    let (status, content_type, body) = w.get("master", &format!("{query}&format=csv"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let lines: Vec<&str> = body.split_terminator("\r\n").collect();
    assert!(body.ends_with("\r\n") && !body.trim_end_matches("\r\n").contains("\r\n\r\n"));
    assert_eq!(
        lines[0],
        "team_id,key_id,key_name,requests,errors,input_tokens,output_tokens,cached_tokens,\
         reasoning_tokens,cost_usd"
    );
    assert_eq!(lines.len(), 1 + json["rows"].as_array().unwrap().len());
    // The same rows in the same order; the bot's name quoted as RFC 4180 says.
    for (line, row) in lines[1..].iter().zip(json["rows"].as_array().unwrap()) {
        let name = row["key_name"].as_str().unwrap();
        let quoted = if name.contains([',', '"']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name.to_owned()
        };
        let want = format!(
            "{},{},{quoted},{},{},{},{},{},{},{}",
            row["team_id"].as_str().unwrap(),
            row["key_id"].as_str().unwrap(),
            row["requests"],
            row["errors"],
            row["input_tokens"],
            row["output_tokens"],
            row["cached_tokens"],
            row["reasoning_tokens"],
            row["cost_usd"].as_str().unwrap(),
        );
        assert_eq!(*line, want);
    }
    assert!(
        body.contains(",\"a1 bot, \"\"nightly\"\"\",2,0,20,4,0,0,0.000028\r\n"),
        "{body}"
    );
    // Accept: text/csv asks for the same; a format parameter wins over it.
    let (_, content_type, by_accept) = w
        .get("master", query, Some("application/json;q=0.5, text/csv"))
        .await;
    assert_eq!(
        (content_type.as_str(), &by_accept),
        ("text/csv; charset=utf-8", &body)
    );
    let (_, content_type, _) = w
        .get("master", &format!("{query}&format=json"), Some("text/csv"))
        .await;
    assert!(content_type.starts_with("application/json"));
    // Nothing in the period: the header alone; a missing value is an empty field.
    let (_, _, empty) = w
        .get(
            "master",
            "group_by=model&from=2019-01-01&to=2019-01-02&format=csv",
            None,
        )
        .await;
    assert_eq!(
        empty,
        "model,requests,errors,input_tokens,output_tokens,cached_tokens,reasoning_tokens,\
         cost_usd\r\n"
    );
    let (_, _, orgs) = w.get("master", "group_by=org&format=csv", None).await;
    assert!(orgs.ends_with("\r\n,1,0,10,2,0,0,0.000014\r\n"), "{orgs}");
}

async fn scope(w: &World) {
    // An org admin: its organization's teams, whatever it asks for.
    let teams = map(&[("A1", 7), ("A2", 2)]);
    assert_eq!(
        w.counts("a_admin", "group_by=team", &["team_id"]).await,
        teams
    );
    assert_eq!(
        w.counts("a_admin", "group_by=team&org_id={A}", &["team_id"])
            .await,
        teams
    );
    assert_eq!(
        w.counts("a_admin", "group_by=team&team_id={A2}", &["team_id"])
            .await,
        map(&[("A2", 2)])
    );
    // Another organization, or one of its teams or keys: an empty report, not an error.
    for query in [
        "group_by=team&org_id={B}",
        "group_by=team&team_id={B1}",
        "key_id={key:b1_member}",
        "org_id=old-org",
    ] {
        let report = w.report("a_admin", query).await;
        assert_eq!(report["rows"], json!([]), "{query}");
        assert_eq!(report["totals"]["requests"], 0, "{query}");
        assert_eq!(report["totals"]["cost_usd"], "0.000000", "{query}");
    }
    // A member and a viewer: their team's keys, every one of them.
    let a1_keys = map(&[("a1_member", 5), (BOT, 2)]);
    for who in ["a1_member", "a1_viewer"] {
        assert_eq!(
            w.counts(who, "group_by=key", &["key_name"]).await,
            a1_keys,
            "{who}"
        );
        for query in ["team_id={A2}", "org_id={B}", "user_id={a2_member}"] {
            let report = w.report(who, query).await;
            assert_eq!(report["totals"]["requests"], 0, "{who} {query}");
        }
    }
    assert_eq!(
        w.counts("b1_member", "group_by=team,model", &["team_id", "model"])
            .await,
        map(&[("B1|gpt-test", 2)])
    );
    // In CSV too.
    let (_, _, body) = w.get("a2_member", "group_by=key&format=csv", None).await;
    assert_eq!(body.lines().count(), 2, "{body}");
    assert!(body.contains(",a2_member,2,0,"), "{body}");
    // Only a credential with an admin identity may ask.
    let (status, _, _) = w.get("config", "", None).await;
    assert_eq!(status, 403);
    let response = client()
        .get(w.gw.url("/admin/v1/usage"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn bad_parameters(w: &World) {
    for (query, param) in [
        ("group_by=color", Some("group_by")),
        ("group_by=key,Model", Some("group_by")),
        ("from=yesterday", Some("from")),
        ("from=2026-11-27T00:00:00", Some("from")),
        ("to=2026-13-01", Some("to")),
        ("to=2026-02-30", Some("to")),
        ("from=2026-11-28&to=2026-11-27", Some("to")),
        ("from=2026-11-27&to=2026-11-27T00:00:00Z", Some("to")),
        ("format=xml", Some("format")),
        ("model=", Some("model")),
        ("org_id=", Some("org_id")),
        ("group=key", None),
        ("group_by=key&group_by=model", None),
    ] {
        let (status, _, body) = w.get("master", query, Some("text/csv")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["error"]["code"], "invalid_request", "{query}");
        assert_eq!(answer["error"]["param"], json!(param), "{query}: {answer}");
        // The message names what is wrong, never repeats the value.
        for value in ["color", "Model", "yesterday", "2026-13-01", "xml"] {
            assert!(!body.contains(value), "{query}: {body}");
        }
    }
    let (_, _, body) = w.get("master", "group_by=color", None).await;
    assert!(
        body.contains("one of day, org, team, user, key, model, provider"),
        "{body}"
    );
    // Also outside the caller's scope: the parameters are checked first.
    let (status, _, _) = w.get("a1_viewer", "org_id={B}&from=soon", None).await;
    assert_eq!(status, 400);
}

async fn cli(w: &World) {
    let query = "group_by=key,model&org_id={A}";
    let args = ["usage", "--by", "key,model", "--org", w.ids["A"].as_str()];
    let with = |format: &'static str| {
        let mut a = args.to_vec();
        a.extend(["--format", format]);
        a
    };

    // Table: a header, a line per row and a total line, every column aligned.
    let (ok, table, err) = admin_cli(&w.gw, MASTER, &args, "").await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = table.lines().collect();
    let json = w.report("master", query).await;
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(lines.len(), rows.len() + 2, "{table}");
    assert!(lines[0].starts_with("KEY "), "{table}");
    let total = lines.last().unwrap();
    assert!(total.starts_with("TOTAL "), "{table}");
    assert!(
        total.contains(" 9 ") && total.ends_with("0.000084"),
        "{table}"
    );
    // Each cell starts where its heading does (the total line leaves the names empty).
    for heading in ["KEY NAME", "MODEL", "REQUESTS", "ERRORS", "COST (USD)"] {
        let at = lines[0].find(heading).unwrap();
        let named = heading == "KEY NAME" || heading == "MODEL";
        let checked = if named {
            &lines[1..lines.len() - 1]
        } else {
            &lines[1..]
        };
        for line in checked {
            let before = line.get(at - 2..at).unwrap_or_default();
            let first = line.get(at..).and_then(|rest| rest.chars().next());
            assert!(
                before == "  " && first.is_some_and(|c| c != ' '),
                "{heading} not aligned in\n{table}"
            );
        }
    }
    assert!(table.contains(BOT), "{table}");

    // JSON: the API's report.
    let (ok, out, err) = admin_cli(&w.gw, MASTER, &with("json"), "").await;
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json);
    let mut json_flag = args.to_vec();
    json_flag.push("--json");
    let (_, out, _) = admin_cli(&w.gw, MASTER, &json_flag, "").await;
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json);

    // CSV: exactly as the API writes it.
    let (ok, out, err) = admin_cli(&w.gw, MASTER, &with("csv"), "").await;
    assert!(ok, "{err}");
    let (_, _, api_csv) = w.get("master", &format!("{query}&format=csv"), None).await;
    assert_eq!(out, api_csv);

    // Another caller's scope, filters and dates.
    let member = w.secrets["a1_member"].clone();
    let (ok, out, err) = admin_cli(
        &w.gw,
        &member,
        &[
            "usage", "--by", "team", "--model", "gpt-test", "--format", "csv",
        ],
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        [format!("{},5,0,50,10,0,0,0.000070", w.ids["A1"])]
    );
    let (ok, out, _) = admin_cli(
        &w.gw,
        MASTER,
        &[
            "usage",
            "--by",
            "day",
            "--from",
            "2020-02-29",
            "--to",
            "2020-03-02",
        ],
        "",
    )
    .await;
    assert!(ok);
    assert!(
        out.contains("2020-02-29") && out.contains("2020-03-01"),
        "{out}"
    );
    let (ok, out, err) = admin_cli(
        &w.gw,
        MASTER,
        &["usage", "--from", "2019-01-01", "--to", "2019-01-02"],
        "",
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");

    // A bad option: the API's message, exit 1; an unknown dimension is refused by the CLI.
    let (ok, _, err) = admin_cli(&w.gw, MASTER, &["usage", "--from", "yesterday"], "").await;
    assert!(!ok);
    assert!(err.contains("400") && err.contains("from must be"), "{err}");
    let (ok, _, err) = admin_cli(&w.gw, MASTER, &["usage", "--by", "color"], "").await;
    assert!(!ok);
    assert!(err.contains("possible values"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reports_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portcullis.db");
    let store_yaml = format!("{{ sqlite: \"{}\" }}", db.display());
    scenario(&store_yaml, async || {
        Arc::new(SqliteStore::open(&db).await.unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reports_on_postgres() {
    common::with_scratch_postgres("portcullis_usage", |db_url| async move {
        let store_yaml = format!("{{ postgres: \"{db_url}\" }}");
        scenario(&store_yaml, async || {
            Arc::new(PostgresStore::connect(&db_url).await.unwrap()) as Arc<dyn Store>
        })
        .await;
    })
    .await;
}

//! Quotas (issue 5) through the admin API and the CLI of the real binary, on an SQLite store:
//! the limits and budgets of organizations, teams, users and keys are made, read, listed,
//! changed and removed; invalid ones answer 400 naming the field; who may set them is checked
//! per object (404 outside the caller's scope, 403 naming quotas for a caller who may change
//! the object but not its quotas); and the CLI's options and tables say the same. That a change
//! reaches the request path is tested in-process (`stored_keys.rs`'s unit tests), where the
//! principal can be looked at.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::HashMap;

use common::{admin_cli, client, store_gateway};
use portcullis_testkit::{GatewayProcess, MockUpstream};
use serde_json::{Value, json};

const MASTER: &str = "quotas-master-key-0123456789";
/// An id nothing has.
const MISSING: &str = "00000000-0000-7000-8000-000000000000";

/// Users made for the scope checks: (name, team, role).
const USERS: &[(&str, &str, &str)] = &[
    ("a_org", "A1", "org_admin"),
    ("a1_admin", "A1", "team_admin"),
    ("a1_member", "A1", "member"),
    ("a1_peer", "A1", "member"),
    ("a1_viewer", "A1", "viewer"),
    ("b_org", "B1", "org_admin"),
];

struct World {
    gw: GatewayProcess,
    _upstream: MockUpstream,
    _dir: tempfile::TempDir,
    /// Ids by name: `A`, `B` (organizations), `A1`, `B1` (teams), users, and `key:<user>`.
    ids: HashMap<String, String>,
    /// Each user's key.
    secrets: HashMap<String, String>,
}

impl World {
    async fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (upstream, gw) = store_gateway(&dir.path().join("portcullis.db"), Some(MASTER)).await;
        let mut w = World {
            gw,
            _upstream: upstream,
            _dir: dir,
            ids: HashMap::new(),
            secrets: HashMap::new(),
        };
        for (org, team) in [("A", "A1"), ("B", "B1")] {
            let made = w.ok("master", "POST /orgs", json!({"name": org})).await;
            w.ids.insert(org.into(), id(&made));
            let made = w
                .ok(
                    "master",
                    "POST /teams",
                    json!({"org_id": format!("{{{org}}}"), "name": team}),
                )
                .await;
            w.ids.insert(team.into(), id(&made));
        }
        for (name, team, role) in USERS {
            let body = json!({"team_id": format!("{{{team}}}"), "name": name, "role": role});
            let user = w.ok("master", "POST /users", body).await;
            w.ids.insert((*name).into(), id(&user));
            let body = json!({"team_id": format!("{{{team}}}"), "name": format!("{name} key"),
                "user_id": format!("{{{name}}}")});
            let key = w.ok("master", "POST /keys", body).await;
            w.ids.insert(format!("key:{name}"), id(&key));
            w.secrets
                .insert((*name).into(), key["key"].as_str().unwrap().into());
        }
        w
    }

    fn fill(&self, text: &str) -> String {
        let mut out = text.replace("{MISSING}", MISSING);
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), id);
        }
        out
    }

    /// Sends `request` (`METHOD /path` under `/admin/v1`) as `who` (a user, or `master`).
    async fn call(&self, who: &str, request: &str, body: Option<&Value>) -> (u16, Value) {
        let key = match who {
            "master" => MASTER,
            name => &self.secrets[name],
        };
        let (method, path) = request.split_once(' ').unwrap();
        let url = self.gw.url(&format!("/admin/v1{}", self.fill(path)));
        let mut req = client()
            .request(method.parse().unwrap(), url)
            .bearer_auth(key);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(self.fill(&body.to_string()));
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `request` as `who` must succeed (200 or 201); its JSON.
    async fn ok(&self, who: &str, request: &str, body: Value) -> Value {
        let (status, answer) = self.call(who, request, Some(&body)).await;
        assert!(
            status == 200 || status == 201,
            "{who} {request}: {status} {answer}"
        );
        answer
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn quotas_through_the_admin_api() {
    let w = World::build().await;
    round_trips(&w).await;
    invalid_quotas_answer_400_naming_the_field(&w).await;
    who_may_set_quotas(&w).await;
}

async fn round_trips(w: &World) {
    let limits = json!({"rpm": 600, "tpm": 100_000, "max_concurrent": 20});
    let budgets = json!([
        {"max_usd": 1000.5, "period": "monthly", "alerts": [50, 80, 100]},
        {"max_usd": 40, "period": "daily", "hard": false},
    ]);
    // Made with quotas: they come back as given (a hard budget without `hard`, the default).
    let org = w
        .ok(
            "master",
            "POST /orgs",
            json!({"name": "C", "limits": limits, "budgets": budgets}),
        )
        .await;
    let want_budgets = json!([
        {"max_usd": 1000.5, "period": "monthly", "alerts": [50, 80, 100]},
        {"max_usd": 40.0, "period": "daily", "hard": false},
    ]);
    assert_eq!((&org["limits"], &org["budgets"]), (&limits, &want_budgets));
    let path = format!("/orgs/{}", id(&org));
    let (_, read) = w.call("master", &format!("GET {path}"), None).await;
    assert_eq!(read, org);
    let (_, listed) = w.call("master", "GET /orgs?name_prefix=C", None).await;
    assert_eq!(listed["data"][0], org);

    // Made without: empty values, not absent fields.
    let (_, a) = w.call("master", "GET /orgs/{A}", None).await;
    assert_eq!((&a["limits"], &a["budgets"]), (&json!({}), &json!([])));

    // A change replaces what it names, keeps the rest; `null`, `{}` and `[]` remove.
    let patch = format!("PATCH {path}");
    let changed = w.ok("master", &patch, json!({"limits": {"rpm": 5}})).await;
    assert_eq!(
        (&changed["limits"], &changed["budgets"]),
        (&json!({"rpm": 5}), &want_budgets)
    );
    let renamed = w.ok("master", &patch, json!({"name": "C2"})).await;
    assert_eq!(
        (&renamed["limits"], &renamed["budgets"]),
        (&json!({"rpm": 5}), &want_budgets)
    );
    let cleared = w
        .ok("master", &patch, json!({"limits": null, "budgets": []}))
        .await;
    assert_eq!(
        (&cleared["limits"], &cleared["budgets"]),
        (&json!({}), &json!([]))
    );
    assert_eq!(cleared["name"], "C2");
    assert_eq!(
        w.call("master", &format!("DELETE {path}"), None).await.0,
        204
    );

    // Teams, users and keys alike, made and changed by their own admins.
    let team = w
        .ok(
            "a_org",
            "POST /teams",
            json!({"org_id": "{A}", "name": "A2", "budgets": [{"max_usd": 3, "period": "total"}]}),
        )
        .await;
    assert_eq!(team["budgets"][0]["period"], "total");
    let team_path = format!("/teams/{}", id(&team));
    let team = w
        .ok(
            "a_org",
            &format!("PATCH {team_path}"),
            json!({"limits": {"tpm": 1}}),
        )
        .await;
    assert_eq!(
        (&team["limits"]["tpm"], &team["budgets"][0]["max_usd"]),
        (&json!(1), &json!(3.0))
    );
    let user = w
        .ok(
            "a1_admin",
            "POST /users",
            json!({"team_id": "{A1}", "name": "quota-user", "limits": {"max_concurrent": 2}}),
        )
        .await;
    assert_eq!(user["limits"], json!({"max_concurrent": 2}));
    let user_path = format!("/users/{}", id(&user));
    let user = w
        .ok(
            "a1_admin",
            &format!("PATCH {user_path}"),
            json!({"limits": {}, "budgets": [{"max_usd": 9, "period": "weekly", "alerts": [90]}]}),
        )
        .await;
    assert_eq!(
        (&user["limits"], &user["budgets"][0]["alerts"]),
        (&json!({}), &json!([90]))
    );
    let key = w
        .ok(
            "a1_member",
            "POST /keys",
            json!({"team_id": "{A1}", "name": "limited", "limits": {"rpm": 10}}),
        )
        .await;
    assert_eq!(key["limits"], json!({"rpm": 10}));
    let key_path = format!("/keys/{}", id(&key));
    let (_, read) = w.call("a1_viewer", &format!("GET {key_path}"), None).await;
    assert_eq!(
        (&read["limits"], &read["budgets"]),
        (&json!({"rpm": 10}), &json!([]))
    );
    let key = w
        .ok(
            "a1_member",
            &format!("PATCH {key_path}"),
            json!({"budgets": [{"max_usd": 0.5, "period": "daily"}]}),
        )
        .await;
    assert_eq!(
        (&key["limits"], &key["budgets"][0]["max_usd"]),
        (&json!({"rpm": 10}), &json!(0.5))
    );
    // Rotating keeps a key's quotas.
    let (_, rotated) = w
        .call("a1_member", &format!("POST {key_path}/rotate"), None)
        .await;
    assert_eq!(rotated["limits"], json!({"rpm": 10}));
    for (who, path) in [
        ("a1_member", key_path),
        ("a1_admin", user_path),
        ("a_org", team_path),
    ] {
        assert_eq!(w.call(who, &format!("DELETE {path}"), None).await.0, 204);
    }
}

async fn invalid_quotas_answer_400_naming_the_field(w: &World) {
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        // (request, body, param, words of the message)
        ("PATCH /orgs/{A}", json!({"limits": {"rpm": 0}}), "limits", "limits: rpm must be at least 1"),
        ("POST /teams", json!({"org_id": "{A}", "name": "z", "limits": {"max_concurrent": 0}}), "limits", "max_concurrent must be at least 1"),
        ("PATCH /teams/{A1}", json!({"budgets": [{"max_usd": -1, "period": "daily"}]}), "budgets", "budgets[0]: max_usd must be"),
        ("PATCH /users/{a1_member}", json!({"budgets": [{"max_usd": 2e9, "period": "daily"}]}), "budgets", "budgets[0]: max_usd must be"),
        ("POST /users", json!({"team_id": "{A1}", "name": "z", "budgets": [{"max_usd": 1, "period": "daily", "alerts": [80, 50]}]}), "budgets", "ascending"),
        ("PATCH /keys/{key:a1_member}", json!({"budgets": [{"max_usd": 1, "period": "daily", "alerts": [101]}]}), "budgets", "1 to 100"),
        ("POST /keys", json!({"team_id": "{A1}", "name": "z", "budgets": [{"max_usd": 1, "period": "daily"}, {"max_usd": 2, "period": "daily"}]}), "budgets", "budgets[1]: a second daily budget"),
    ];
    for (request, body, param, words) in &cases {
        let (status, answer) = w.call("master", request, Some(body)).await;
        assert_eq!(status, 400, "{request} {body}: {answer}");
        assert_eq!(answer["error"]["param"], *param, "{request}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{request}: {message}");
    }
    // Shapes serde refuses name the field's path (never echoing the value).
    #[rustfmt::skip]
    let shapes: Vec<(&str, Value, &str)> = vec![
        ("PATCH /orgs/{A}", json!({"limits": {"rpn": 5}}), "limits.rpn: unknown field `rpn`"),
        ("PATCH /orgs/{A}", json!({"limits": {"rpm": -5}}), "limits.rpm: invalid value"),
        ("PATCH /orgs/{A}", json!({"limits": "fast"}), "limits: invalid type"),
        ("PATCH /teams/{A1}", json!({"budgets": [{"max_usd": 1, "period": "hourly"}]}), "budgets[0].period: unknown variant"),
        ("PATCH /teams/{A1}", json!({"budgets": [{"period": "daily"}]}), "budgets[0]: missing field `max_usd`"),
        ("PATCH /teams/{A1}", json!({"budgets": {"max_usd": 1}}), "budgets: invalid type"),
        ("POST /orgs", json!({"name": "z", "budgets": null}), "budgets: invalid type"),
    ];
    for (request, body, words) in &shapes {
        let (status, answer) = w.call("master", request, Some(body)).await;
        assert_eq!(status, 400, "{request} {body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{request} {body}: {message}");
        assert!(!message.contains("hourly"), "{message}");
    }
    // Nothing invalid was stored.
    let (_, a) = w.call("master", "GET /orgs/{A}", None).await;
    assert_eq!((&a["limits"], &a["budgets"]), (&json!({}), &json!([])));
}

async fn who_may_set_quotas(w: &World) {
    let rpm = || Some(json!({"limits": {"rpm": 100}}));
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Option<Value>, u16)> = vec![
        // An organization's: a gateway admin only. Its org admin may rename it, not set them.
        ("a_org", "PATCH /orgs/{A}", Some(json!({"name": "A"})), 200),
        ("a_org", "PATCH /orgs/{A}", rpm(), 403),
        ("a_org", "PATCH /orgs/{A}", Some(json!({"budgets": []})), 403),
        ("a_org", "PATCH /orgs/{A}", Some(json!({"limits": null})), 403),
        ("a_org", "POST /orgs", Some(json!({"name": "D", "limits": {"rpm": 1}})), 403),
        ("b_org", "PATCH /orgs/{A}", rpm(), 404),
        ("master", "PATCH /orgs/{A}", rpm(), 200),
        // A team's: an org admin or above, in scope.
        ("a_org", "PATCH /teams/{A1}", rpm(), 200),
        ("a1_admin", "PATCH /teams/{A1}", rpm(), 403),
        ("b_org", "PATCH /teams/{A1}", rpm(), 404),
        ("b_org", "POST /teams", Some(json!({"org_id": "{A}", "name": "x", "limits": {"rpm": 1}})), 404),
        // A user's: a team admin or above, not above its own role.
        ("a1_admin", "PATCH /users/{a1_member}", rpm(), 200),
        ("a1_admin", "PATCH /users/{a_org}", rpm(), 403),
        ("a_org", "PATCH /users/{a_org}", rpm(), 200),
        ("a1_member", "PATCH /users/{a1_member}", rpm(), 403),
        ("b_org", "PATCH /users/{a1_member}", rpm(), 404),
        ("a1_admin", "POST /users", Some(json!({"team_id": "{A1}", "name": "x", "role": "org_admin", "limits": {"rpm": 1}})), 403),
        // A key's: whoever may change the key, a member its own.
        ("a1_member", "PATCH /keys/{key:a1_member}", rpm(), 200),
        ("a1_member", "PATCH /keys/{key:a1_peer}", rpm(), 403),
        ("a1_viewer", "PATCH /keys/{key:a1_viewer}", rpm(), 403),
        ("a1_admin", "PATCH /keys/{key:a1_peer}", rpm(), 200),
        ("a1_admin", "PATCH /keys/{key:a_org}", rpm(), 403),
        ("b_org", "PATCH /keys/{key:a1_member}", rpm(), 404),
        ("a1_member", "POST /keys", Some(json!({"team_id": "{A1}", "name": "own", "budgets": [{"max_usd": 1, "period": "daily"}]})), 201),
        ("master", "PATCH /keys/{MISSING}", rpm(), 404),
    ];
    let mut wrong = Vec::new();
    for (who, request, body, want) in &cases {
        let (got, answer) = w.call(who, request, body.as_ref()).await;
        if got != *want {
            wrong.push(format!("{who} {request}: {got}, want {want}: {answer}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));

    // The refusal says that quotas are what the caller may not set.
    let (_, answer) = w.call("a_org", "PATCH /orgs/{A}", rpm().as_ref()).await;
    assert_eq!(answer["error"]["code"], "forbidden");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("organization's quotas (limits and budgets)"),
        "{message}"
    );
    // A refused change changes nothing, not even the name sent with it.
    let (status, _) = w
        .call(
            "a_org",
            "PATCH /orgs/{A}",
            Some(&json!({"name": "renamed", "budgets": []})),
        )
        .await;
    assert_eq!(status, 403);
    let (_, a) = w.call("a_org", "GET /orgs/{A}", None).await;
    assert_eq!(
        (&a["name"], &a["limits"]),
        (&json!("A"), &json!({"rpm": 100}))
    );
}

/// Runs the CLI as `admin_key`; fails the test unless it succeeds. Its standard output.
async fn cli_ok(gw: &GatewayProcess, admin_key: &str, args: &[&str]) -> String {
    let (ok, out, err) = admin_cli(gw, admin_key, args, "").await;
    assert!(ok, "portcullis {args:?}: {err}");
    out
}

/// The first column of a table's first row.
fn first_id(table: &str) -> String {
    let row = table.lines().nth(1).unwrap_or_default();
    row.split_whitespace().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn quotas_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (_upstream, gw) = store_gateway(&dir.path().join("portcullis.db"), Some(MASTER)).await;
    let create = [
        "orgs",
        "create",
        "--name",
        "acme",
        "--rpm",
        "600",
        "--tpm",
        "100000",
        "--budget",
        "monthly:1000:50,80",
        "--budget",
        "daily:40::soft",
    ];
    let out = cli_ok(&gw, MASTER, &create).await;
    let header = out.lines().next().unwrap();
    assert!(
        header.contains("LIMITS") && header.contains("BUDGETS"),
        "{out}"
    );
    assert!(out.contains("rpm=600,tpm=100000"), "{out}");
    assert!(out.contains("monthly:1000:50,80 daily:40::soft"), "{out}");
    let org = first_id(&out);
    let json = |out: String| serde_json::from_str::<Value>(&out).unwrap();

    // `show --json` is the API's answer.
    let shown = json(cli_ok(&gw, MASTER, &["orgs", "show", &org, "--json"]).await);
    assert_eq!(shown["limits"], json!({"rpm": 600, "tpm": 100000}));
    assert_eq!(
        shown["budgets"],
        json!([
            {"max_usd": 1000.0, "period": "monthly", "alerts": [50, 80]},
            {"max_usd": 40.0, "period": "daily", "hard": false},
        ])
    );

    // An update changes what it names and keeps the rest.
    let args = [
        "orgs", "update", &org, "--tpm", "5000", "--budget", "daily:60", "--json",
    ];
    let changed = json(cli_ok(&gw, MASTER, &args).await);
    assert_eq!(changed["limits"], json!({"rpm": 600, "tpm": 5000}));
    assert_eq!(
        changed["budgets"],
        json!([
            {"max_usd": 1000.0, "period": "monthly", "alerts": [50, 80]},
            {"max_usd": 60.0, "period": "daily"},
        ])
    );
    let args = [
        "orgs",
        "update",
        &org,
        "--clear-limits",
        "--max-concurrent",
        "3",
        "--json",
    ];
    let changed = json(cli_ok(&gw, MASTER, &args).await);
    assert_eq!(changed["limits"], json!({"max_concurrent": 3}));
    assert_eq!(changed["budgets"].as_array().unwrap().len(), 2);
    let args = [
        "orgs",
        "update",
        &org,
        "--clear-budgets",
        "--name",
        "acme2",
        "--json",
    ];
    let changed = json(cli_ok(&gw, MASTER, &args).await);
    assert_eq!(
        (&changed["budgets"], &changed["name"]),
        (&json!([]), &json!("acme2"))
    );
    assert_eq!(changed["limits"], json!({"max_concurrent": 3}));

    // Teams, users and keys take the same options; lists show them.
    let team = first_id(
        &cli_ok(
            &gw,
            MASTER,
            &[
                "teams", "create", "--org", &org, "--name", "t", "--budget", "total:5",
            ],
        )
        .await,
    );
    let out = cli_ok(&gw, MASTER, &["teams", "list", "--org", &org]).await;
    assert!(out.contains("total:5"), "{out}");
    let user = first_id(
        &cli_ok(
            &gw,
            MASTER,
            &[
                "users",
                "create",
                "--team",
                &team,
                "--name",
                "ada",
                "--max-concurrent",
                "2",
            ],
        )
        .await,
    );
    let out = cli_ok(
        &gw,
        MASTER,
        &["users", "update", &user, "--budget", "weekly:7.5:90"],
    )
    .await;
    assert!(
        out.contains("max_concurrent=2") && out.contains("weekly:7.5:90"),
        "{out}"
    );
    let secret = cli_ok(
        &gw,
        MASTER,
        &[
            "keys", "create", "--team", &team, "--user", &user, "--name", "bot", "--rpm", "10",
            "--budget", "daily:1",
        ],
    )
    .await;
    assert!(secret.trim().starts_with("pk-"), "{secret}");
    let out = cli_ok(&gw, MASTER, &["keys", "list", "--team", &team]).await;
    assert!(out.contains("rpm=10") && out.contains("daily:1"), "{out}");
    let key = first_id(&out);
    let cleared = json(
        cli_ok(
            &gw,
            MASTER,
            &[
                "keys",
                "update",
                &key,
                "--clear-limits",
                "--clear-budgets",
                "--json",
            ],
        )
        .await,
    );
    assert_eq!(
        (&cleared["limits"], &cleared["budgets"]),
        (&json!({}), &json!([]))
    );

    // Mistakes: the grammar is checked before any call, the API's refusals are passed on.
    for (args, words) in [
        (
            vec!["orgs", "create", "--name", "x", "--budget", "hourly:5"],
            "unknown period 'hourly'",
        ),
        (
            vec!["orgs", "create", "--name", "x", "--budget", "daily:5:80,50"],
            "ascending",
        ),
        (
            vec![
                "orgs", "create", "--name", "x", "--budget", "daily:1", "--budget", "daily:2",
            ],
            "one per period",
        ),
        (
            vec!["orgs", "create", "--name", "x", "--rpm", "0"],
            "rpm must be at least 1",
        ),
        (
            vec!["orgs", "update", &org, "--rpm", "ten"],
            "invalid value 'ten'",
        ),
    ] {
        let (ok, _, err) = admin_cli(&gw, MASTER, &args, "").await;
        assert!(!ok && err.contains(words), "{args:?}: {err}");
    }
    let (_, listed, _) = admin_cli(&gw, MASTER, &["orgs", "list", "--json"], "").await;
    assert_eq!(
        json(listed)["data"].as_array().unwrap().len(),
        1,
        "nothing made by mistake"
    );
}

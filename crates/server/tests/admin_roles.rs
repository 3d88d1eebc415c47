//! The admin API's roles and scoping (issue 4) on the real binary, with one gateway on an
//! SQLite store: two organizations of two teams each, users of every role with a key of their
//! own (made with the master key; a user's key is its admin identity), and tables of who may do
//! what. Outside its scope a caller gets 404, word for word as for a missing id; inside it, an
//! action its role may not do gets 403; lists never show another tenant's objects, whatever
//! the filters; and a key revoked or disabled stops being an admin identity at once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::collections::HashMap;

use common::{chat_body, client, store_gateway};
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY};
use serde_json::{Value, json};

const MASTER: &str = "roles-master-key-0123456789";
/// An id nothing has: what an id outside a caller's scope must look like.
const MISSING: &str = "00000000-0000-7000-8000-000000000000";

/// Every user: (name, team, role). Each gets a key named `<name> key`.
const USERS: &[(&str, &str, &str)] = &[
    ("ga", "A1", "gateway_admin"),
    ("a_org", "A1", "org_admin"),
    ("a1_admin", "A1", "team_admin"),
    ("a1_member", "A1", "member"),
    ("a1_member2", "A1", "member"),
    ("a1_viewer", "A1", "viewer"),
    ("a2_admin", "A2", "team_admin"),
    ("a2_member", "A2", "member"),
    ("b_org", "B1", "org_admin"),
    ("b1_admin", "B1", "team_admin"),
    ("b1_member", "B1", "member"),
    ("b2_member", "B2", "member"),
];

/// One expectation: `who` (a user's name, or `master`) sends `request` (`METHOD /path` under
/// `/admin/v1`) with `body` and gets `status`. In the path and the body, `{name}` stands for the
/// id of the organization, team or user of that name, and `{key:user}` for the id of a user's
/// key.
type Case = (&'static str, &'static str, Option<Value>, u16);

struct World {
    gw: GatewayProcess,
    _upstream: MockUpstream,
    _dir: tempfile::TempDir,
    ids: HashMap<String, String>,
    /// Each user's key, by user name (and `a1_bot`: a key of team A1 without a user).
    secrets: HashMap<String, String>,
}

impl World {
    /// The gateway, the tenants and the users, all made through the API with the master key.
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
        for org in ["A", "B"] {
            let made = w
                .create("master", "POST /orgs", json!({ "name": org }))
                .await;
            w.ids
                .insert(org.into(), made["id"].as_str().unwrap().into());
        }
        for (team, org) in [("A1", "A"), ("A2", "A"), ("B1", "B"), ("B2", "B")] {
            let body = json!({ "org_id": format!("{{{org}}}"), "name": team });
            let made = w.create("master", "POST /teams", body).await;
            w.ids
                .insert(team.into(), made["id"].as_str().unwrap().into());
        }
        for (name, team, role) in USERS {
            let body = json!({ "team_id": format!("{{{team}}}"), "name": name, "role": role });
            let user = w.create("master", "POST /users", body).await;
            assert_eq!(user["role"], *role);
            w.ids
                .insert((*name).into(), user["id"].as_str().unwrap().into());
            let body = json!({
                "team_id": format!("{{{team}}}"),
                "name": format!("{name} key"),
                "user_id": format!("{{{name}}}"),
            });
            w.add_key(name, body).await;
        }
        let bot = json!({ "team_id": "{A1}", "name": "a1 bot" });
        w.add_key("a1_bot", bot).await;
        w
    }

    async fn add_key(&mut self, name: &str, body: Value) {
        let key = self.create("master", "POST /keys", body).await;
        self.ids
            .insert(format!("key:{name}"), key["id"].as_str().unwrap().into());
        self.secrets
            .insert(name.into(), key["key"].as_str().unwrap().into());
    }

    fn fill(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, id) in &self.ids {
            out = out.replace(&format!("{{{name}}}"), id);
        }
        out
    }

    fn key_of(&self, who: &str) -> &str {
        match who {
            "master" => MASTER,
            name => &self.secrets[name],
        }
    }

    /// Sends `request` with `key` (if any); returns the status and the JSON answer.
    async fn call_with(
        &self,
        key: Option<&str>,
        request: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let (method, path) = request.split_once(' ').unwrap();
        let url = self.gw.url(&format!("/admin/v1{}", self.fill(path)));
        let mut req = client().request(method.parse().unwrap(), url);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
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

    async fn call(&self, who: &str, request: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_with(Some(self.key_of(who)), request, body).await
    }

    /// `request` as `who` must answer 201; its JSON.
    async fn create(&self, who: &str, request: &str, body: Value) -> Value {
        let (status, answer) = self.call(who, request, Some(&body)).await;
        assert_eq!(status, 201, "{who} {request}: {answer}");
        answer
    }

    /// Runs every case, then fails with all those that answered otherwise.
    async fn check(&self, cases: &[Case]) {
        let mut wrong = Vec::new();
        for (who, request, body, want) in cases {
            let (got, answer) = self.call(who, request, body.as_ref()).await;
            if got != *want {
                wrong.push(format!("{who} {request}: {got}, want {want}: {answer}"));
            }
        }
        assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    }

    /// The sorted names of a list as `who` sees it.
    async fn names(&self, who: &str, request: &str) -> Vec<String> {
        let (status, answer) = self.call(who, request, None).await;
        assert_eq!(status, 200, "{who} {request}: {answer}");
        let mut names: Vec<String> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Checks every (who, list request, expected names).
    async fn lists(&self, cases: &[(&str, &str, Vec<String>)]) {
        for (who, request, want) in cases {
            let mut want = want.clone();
            want.sort();
            assert_eq!(&self.names(who, request).await, &want, "{who} {request}");
        }
    }
}

/// Names of the users of `teams`, or of their keys (with `suffix` " key").
fn of(teams: &[&str], suffix: &str) -> Vec<String> {
    USERS
        .iter()
        .filter(|(_, team, _)| teams.contains(team))
        .map(|(name, _, _)| format!("{name}{suffix}"))
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn body(v: Value) -> Option<Value> {
    Some(v)
}

#[tokio::test]
async fn roles_and_scopes_of_the_admin_api() {
    let w = World::build().await;
    authentication(&w).await;
    organizations(&w).await;
    teams(&w).await;
    users(&w).await;
    keys(&w).await;
    out_of_scope_reads_as_missing(&w).await;
    revoked_and_disabled_keys_lose_admin_access(&w).await;

    let logs = w.gw.logs().join("\n");
    for secret in w.secrets.values().map(String::as_str).chain([MASTER]) {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
}

async fn authentication(w: &World) {
    let code = |answer: &Value| answer["error"]["code"].as_str().unwrap_or("").to_owned();
    let (status, answer) = w.call_with(None, "GET /orgs", None).await;
    assert_eq!((status, code(&answer).as_str()), (401, "missing_api_key"));

    let member = &w.secrets["a1_member"];
    let last = if member.ends_with('A') { "B" } else { "A" };
    let forged = format!("{}{last}", &member[..member.len() - 1]);
    let unknown = format!("pk-{}-{}", "a".repeat(12), "b".repeat(43));
    for (key, want, want_code) in [
        ("not-a-key", 401, "invalid_api_key"),
        (forged.as_str(), 401, "invalid_api_key"),
        (unknown.as_str(), 401, "invalid_api_key"),
        // Valid keys without an admin identity: one of the config file, one of no user.
        (TEST_KEY, 403, "forbidden"),
        (w.secrets["a1_bot"].as_str(), 403, "forbidden"),
    ] {
        let (status, answer) = w.call_with(Some(key), "GET /orgs", None).await;
        assert_eq!(
            (status, code(&answer).as_str()),
            (want, want_code),
            "{answer}"
        );
        assert!(
            !answer.to_string().contains(key),
            "the key echoed: {answer}"
        );
    }
    // Every user's key is an identity.
    for (name, _, _) in USERS {
        assert_eq!(w.call(name, "GET /orgs", None).await.0, 200, "{name}");
    }
}

async fn organizations(w: &World) {
    let everyone_in_a = ["a_org", "a1_admin", "a1_member", "a1_viewer", "a2_member"];
    let mut lists = vec![
        ("master", "GET /orgs", names(&["A", "B"])),
        ("ga", "GET /orgs", names(&["A", "B"])),
        ("b_org", "GET /orgs", names(&["B"])),
        ("b2_member", "GET /orgs", names(&["B"])),
        ("a_org", "GET /orgs?name_prefix=B", vec![]),
        ("a_org", "GET /orgs?name_prefix=A", names(&["A"])),
        ("master", "GET /orgs?name_prefix=B", names(&["B"])),
    ];
    lists.extend(everyone_in_a.map(|who| (who, "GET /orgs", names(&["A"]))));
    w.lists(&lists).await;

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("a_org", "GET /orgs/{A}", None, 200),
        ("a1_viewer", "GET /orgs/{A}", None, 200),
        ("a_org", "GET /orgs/{B}", None, 404),
        ("b2_member", "GET /orgs/{A}", None, 404),
        ("a_org", "POST /orgs", body(json!({"name": "C"})), 403),
        ("a1_viewer", "POST /orgs", body(json!({"name": "C"})), 403),
        ("a_org", "PATCH /orgs/{A}", body(json!({"name": "A"})), 200),
        ("a1_admin", "PATCH /orgs/{A}", body(json!({"name": "A"})), 403),
        ("a1_viewer", "PATCH /orgs/{A}", body(json!({"name": "A"})), 403),
        ("a_org", "PATCH /orgs/{B}", body(json!({"name": "X"})), 404),
        ("b_org", "PATCH /orgs/{A}", body(json!({"name": "X"})), 404),
        ("a_org", "DELETE /orgs/{A}", None, 403),
        ("a_org", "DELETE /orgs/{B}", None, 404),
        ("master", "DELETE /orgs/{A}", None, 409),
        ("master", "PATCH /orgs/{A}", body(json!({"name": ""})), 400),
        ("master", "POST /orgs", body(json!({"name": "x".repeat(201)})), 400),
        ("master", "POST /orgs", body(json!({"name": "C", "owner": "me"})), 400),
        ("master", "POST /orgs", body(json!({"name": "A"})), 409),
        ("master", "GET /orgs?team_id=x", None, 400),
    ];
    w.check(&cases).await;

    // A stored gateway admin creates and deletes organizations, as the master key does.
    let c = w.create("ga", "POST /orgs", json!({"name": "C"})).await;
    let path = format!("/orgs/{}", c["id"].as_str().unwrap());
    assert_eq!(
        w.call("a_org", &format!("DELETE {path}"), None).await.0,
        404
    );
    assert_eq!(w.call("ga", &format!("DELETE {path}"), None).await.0, 204);
    assert_eq!(w.call("ga", &format!("GET {path}"), None).await.0, 404);

    // An invalid field is named, its value not repeated.
    let long = "y".repeat(201);
    let (_, answer) = w
        .call("master", "POST /orgs", Some(&json!({ "name": long })))
        .await;
    assert_eq!(answer["error"]["param"], "name", "{answer}");
    assert!(!answer.to_string().contains(&long));
}

async fn teams(w: &World) {
    #[rustfmt::skip]
    let lists: Vec<(&str, &str, Vec<String>)> = vec![
        ("master", "GET /teams", names(&["A1", "A2", "B1", "B2"])),
        ("master", "GET /teams?org_id={B}", names(&["B1", "B2"])),
        ("a_org", "GET /teams", names(&["A1", "A2"])),
        ("a_org", "GET /teams?org_id={B}", vec![]),
        ("b_org", "GET /teams", names(&["B1", "B2"])),
        ("a1_admin", "GET /teams", names(&["A1"])),
        ("a1_viewer", "GET /teams?org_id={A}", names(&["A1"])),
        ("a1_member", "GET /teams?name_prefix=A2", vec![]),
        ("a2_member", "GET /teams", names(&["A2"])),
        ("a2_member", "GET /teams?org_id={B}", vec![]),
    ];
    w.lists(&lists).await;

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("a1_admin", "POST /teams", body(json!({"org_id": "{A}", "name": "A9"})), 403),
        ("a1_member", "POST /teams", body(json!({"org_id": "{A}", "name": "A9"})), 403),
        ("a_org", "POST /teams", body(json!({"org_id": "{B}", "name": "A9"})), 404),
        ("b1_member", "POST /teams", body(json!({"org_id": "{A}", "name": "A9"})), 404),
        ("master", "POST /teams", body(json!({"org_id": MISSING, "name": "A9"})), 404),
        ("master", "POST /teams", body(json!({"org_id": "{A}", "name": "  "})), 400),
        ("master", "POST /teams", body(json!({"org_id": "{A}", "name": "A1"})), 409),
        ("a_org", "GET /teams/{A2}", None, 200),
        ("a1_admin", "GET /teams/{A1}", None, 200),
        ("a1_admin", "GET /teams/{A2}", None, 404),
        ("a1_member", "GET /teams/{A2}", None, 404),
        ("a_org", "GET /teams/{B1}", None, 404),
        ("a_org", "PATCH /teams/{A1}", body(json!({"name": "A1"})), 200),
        ("a1_admin", "PATCH /teams/{A1}", body(json!({"name": "A1"})), 403),
        ("a_org", "PATCH /teams/{B1}", body(json!({"name": "A1"})), 404),
        ("a_org", "PATCH /teams/{A1}", body(json!({"name": "A2"})), 409),
        ("a1_admin", "DELETE /teams/{A1}", None, 403),
        ("a1_admin", "DELETE /teams/{A2}", None, 404),
        ("a_org", "DELETE /teams/{A1}", None, 409),
        ("a_org", "DELETE /teams/{B2}", None, 404),
        ("master", "GET /teams?user_id=x", None, 400),
    ];
    w.check(&cases).await;

    // An org admin makes and removes teams of its organization.
    let a3 = w
        .create(
            "a_org",
            "POST /teams",
            json!({"org_id": "{A}", "name": "A3"}),
        )
        .await;
    let path = format!("/teams/{}", a3["id"].as_str().unwrap());
    assert_eq!(
        w.call("a1_admin", &format!("DELETE {path}"), None).await.0,
        404
    );
    assert_eq!(w.call("b_org", &format!("GET {path}"), None).await.0, 404);
    assert_eq!(
        w.call("a_org", &format!("DELETE {path}"), None).await.0,
        204
    );
}

async fn users(w: &World) {
    let a_users = of(&["A1", "A2"], "");
    #[rustfmt::skip]
    let lists: Vec<(&str, &str, Vec<String>)> = vec![
        ("a1_member", "GET /users", of(&["A1"], "")),
        ("a1_viewer", "GET /users?org_id={A}", of(&["A1"], "")),
        ("a_org", "GET /users", a_users.clone()),
        ("a_org", "GET /users?team_id={A2}", of(&["A2"], "")),
        ("a_org", "GET /users?org_id={B}", vec![]),
        ("a_org", "GET /users?team_id={B1}", vec![]),
        ("a1_admin", "GET /users?team_id={A2}", vec![]),
        ("a1_viewer", "GET /users?org_id={B}", vec![]),
        ("b_org", "GET /users", of(&["B1", "B2"], "")),
        ("b_org", "GET /users?team_id={B2}", names(&["b2_member"])),
        ("master", "GET /users?org_id={B}", of(&["B1", "B2"], "")),
        ("a1_admin", "GET /users?name_prefix=a1_m", names(&["a1_member", "a1_member2"])),
    ];
    w.lists(&lists).await;

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "role": "org_admin"})), 403),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "role": "gateway_admin"})), 403),
        ("a_org", "POST /users", body(json!({"team_id": "{A2}", "name": "x", "role": "gateway_admin"})), 403),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A2}", "name": "x"})), 404),
        ("a_org", "POST /users", body(json!({"team_id": "{B1}", "name": "x"})), 404),
        ("master", "POST /users", body(json!({"team_id": MISSING, "name": "x"})), 404),
        ("a1_member", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "role": "viewer"})), 403),
        ("a1_viewer", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "role": "viewer"})), 403),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "role": "admin"})), 400),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": ""})), 400),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "email": "nope"})), 400),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "x", "age": 3})), 400),
        ("a1_admin", "POST /users", body(json!({"team_id": "{A1}", "name": "a1_member"})), 409),
        ("a1_admin", "GET /users/{a1_member}", None, 200),
        ("a1_viewer", "GET /users/{a_org}", None, 200),
        ("a1_admin", "GET /users/{a2_member}", None, 404),
        ("a_org", "GET /users/{a2_member}", None, 200),
        ("a_org", "GET /users/{b1_member}", None, 404),
        ("b2_member", "GET /users/{b1_member}", None, 404),
        ("a1_admin", "PATCH /users/{a1_member2}", body(json!({"email": "m2@example.com"})), 200),
        ("a1_admin", "PATCH /users/{a1_member2}", body(json!({"role": "org_admin"})), 403),
        ("a1_admin", "PATCH /users/{a1_admin}", body(json!({"role": "org_admin"})), 403),
        ("a1_admin", "PATCH /users/{a1_member2}", body(json!({"role": "superuser"})), 400),
        ("a1_admin", "PATCH /users/{a_org}", body(json!({"name": "a_org"})), 403),
        ("a_org", "PATCH /users/{ga}", body(json!({"name": "ga"})), 403),
        ("a1_member", "PATCH /users/{a1_member}", body(json!({"name": "a1_member"})), 403),
        ("a1_viewer", "PATCH /users/{a1_viewer}", body(json!({"role": "member"})), 403),
        ("a1_admin", "PATCH /users/{a2_member}", body(json!({"name": "x"})), 404),
        ("b_org", "PATCH /users/{a1_member}", body(json!({"name": "x"})), 404),
        ("a1_admin", "DELETE /users/{a1_member}", None, 409),
        ("a1_member", "DELETE /users/{a1_member2}", None, 403),
        ("a1_admin", "DELETE /users/{a2_member}", None, 404),
        ("a1_admin", "DELETE /users/{a_org}", None, 403),
    ];
    w.check(&cases).await;

    // `"email": null` clears the email.
    let (_, user) = w
        .call(
            "a1_admin",
            "PATCH /users/{a1_member2}",
            Some(&json!({"email": null})),
        )
        .await;
    assert_eq!(user["email"], Value::Null, "{user}");

    // A team admin makes members (the default role) and team admins, changes and removes them.
    let made = w
        .create(
            "a1_admin",
            "POST /users",
            json!({"team_id": "{A1}", "name": "new"}),
        )
        .await;
    assert_eq!(made["role"], "member");
    let ta = w
        .create(
            "a1_admin",
            "POST /users",
            json!({"team_id": "{A1}", "name": "new-ta", "role": "team_admin", "email": "t@example.com"}),
        )
        .await;
    for user in [&made, &ta] {
        let path = format!("/users/{}", user["id"].as_str().unwrap());
        let (status, changed) = w
            .call(
                "a1_admin",
                &format!("PATCH {path}"),
                Some(&json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(
            (status, &changed["role"]),
            (200, &json!("viewer")),
            "{changed}"
        );
        assert_eq!(
            w.call("a2_admin", &format!("DELETE {path}"), None).await.0,
            404
        );
        assert_eq!(
            w.call("a1_admin", &format!("DELETE {path}"), None).await.0,
            204
        );
    }

    // An org admin may make an org admin; only a gateway admin makes a gateway admin.
    let oa = w
        .create(
            "a_org",
            "POST /users",
            json!({"team_id": "{A2}", "name": "oa2", "role": "org_admin"}),
        )
        .await;
    let ga2 = w
        .create(
            "ga",
            "POST /users",
            json!({"team_id": "{B2}", "name": "ga2", "role": "gateway_admin"}),
        )
        .await;
    assert_eq!(ga2["role"], "gateway_admin");
    for user in [oa, ga2] {
        let path = format!("DELETE /users/{}", user["id"].as_str().unwrap());
        assert_eq!(w.call("master", &path, None).await.0, 204);
    }
}

async fn keys(w: &World) {
    let mut a1_keys = of(&["A1"], " key");
    a1_keys.push("a1 bot".into());
    #[rustfmt::skip]
    let lists: Vec<(&str, &str, Vec<String>)> = vec![
        ("a1_viewer", "GET /keys", a1_keys.clone()),
        ("a1_member", "GET /keys?org_id={A}", a1_keys.clone()),
        ("a1_member", "GET /keys?team_id={A2}", vec![]),
        ("a1_member", "GET /keys?user_id={b1_member}", vec![]),
        ("a1_admin", "GET /keys?user_id={a1_member}", names(&["a1_member key"])),
        ("a1_admin", "GET /keys?enabled=true&name_prefix=a1_m", names(&["a1_member key", "a1_member2 key"])),
        ("a_org", "GET /keys?team_id={A2}", of(&["A2"], " key")),
        ("a_org", "GET /keys?user_id={a2_member}", names(&["a2_member key"])),
        ("a_org", "GET /keys?org_id={B}", vec![]),
        ("a_org", "GET /keys?team_id={B1}", vec![]),
        ("b1_admin", "GET /keys", of(&["B1"], " key")),
        ("master", "GET /keys?org_id={B}", of(&["B1", "B2"], " key")),
    ];
    w.lists(&lists).await;
    // Reads never carry a secret or a digest.
    let (_, listed) = w.call("a1_viewer", "GET /keys", None).await;
    let (_, read) = w.call("a1_viewer", "GET /keys/{key:a1_member}", None).await;
    for answer in [&listed, &read] {
        let text = answer.to_string();
        assert!(
            !text.contains("\"key\"") && !text.contains("digest"),
            "{text}"
        );
        assert!(!w.secrets.values().any(|s| text.contains(s.as_str())));
    }

    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("a1_member", "POST /keys", body(json!({"team_id": "{A1}", "name": "k", "user_id": "{a1_member2}"})), 403),
        ("a1_member", "POST /keys", body(json!({"team_id": "{A2}", "name": "k"})), 404),
        ("a1_viewer", "POST /keys", body(json!({"team_id": "{A1}", "name": "k"})), 403),
        ("a1_viewer", "POST /keys", body(json!({"team_id": "{A1}", "name": "k", "user_id": "{a1_viewer}"})), 403),
        ("a1_admin", "POST /keys", body(json!({"team_id": "{A1}", "name": "k", "user_id": "{a_org}"})), 403),
        ("a1_admin", "POST /keys", body(json!({"team_id": "{A1}", "name": "k", "user_id": "{b1_member}"})), 422),
        ("a1_admin", "POST /keys", body(json!({"team_id": "{A1}", "name": "k", "user_id": MISSING})), 422),
        ("a1_admin", "POST /keys", body(json!({"team_id": "{A2}", "name": "k"})), 404),
        ("a_org", "POST /keys", body(json!({"team_id": "{B1}", "name": "k"})), 404),
        ("a1_admin", "POST /keys", body(json!({"team_id": "{A1}", "name": ""})), 400),
        ("a1_admin", "GET /keys/{key:a1_member}", None, 200),
        ("a1_viewer", "GET /keys/{key:a1_member2}", None, 200),
        ("a1_admin", "GET /keys/{key:a2_member}", None, 404),
        ("a_org", "GET /keys/{key:a2_member}", None, 200),
        ("a_org", "GET /keys/{key:b1_member}", None, 404),
        ("a1_member", "PATCH /keys/{key:a1_member2}", body(json!({"name": "x"})), 403),
        ("a1_member", "POST /keys/{key:a1_member2}/revoke", None, 403),
        ("a1_member", "POST /keys/{key:a1_member2}/rotate", None, 403),
        ("a1_member", "DELETE /keys/{key:a1_member2}", None, 403),
        ("a1_member", "PATCH /keys/{key:a1_bot}", body(json!({"name": "x"})), 403),
        ("a1_viewer", "PATCH /keys/{key:a1_viewer}", body(json!({"name": "x"})), 403),
        ("a1_viewer", "POST /keys/{key:a1_viewer}/rotate", None, 403),
        ("a1_admin", "PATCH /keys/{key:a_org}", body(json!({"name": "x"})), 403),
        ("a1_admin", "POST /keys/{key:a_org}/rotate", None, 403),
        ("a1_admin", "POST /keys/{key:ga}/revoke", None, 403),
        ("a1_admin", "PATCH /keys/{key:a2_member}", body(json!({"name": "x"})), 404),
        ("b_org", "POST /keys/{key:a1_member}/revoke", None, 404),
        ("b_org", "DELETE /keys/{key:a1_bot}", None, 404),
        ("a1_admin", "PATCH /keys/{key:a1_bot}", body(json!({"colour": "red"})), 400),
        ("a1_admin", "PATCH /keys/{key:a1_bot}", body(json!({"name": "  "})), 400),
        ("a1_admin", "PATCH /keys/{key:a1_bot}", body(json!({"expires_at": "tomorrow"})), 400),
        ("a1_admin", "POST /keys/{key:a1_bot}/rotate", body(json!({"grace_seconds": 99_999_999})), 400),
        ("a1_admin", "GET /keys?team=A1", None, 400),
        ("a1_admin", "GET /keys?enabled=maybe", None, 400),
    ];
    w.check(&cases).await;

    // A team admin changes a key of its team; `"expires_at": null` removes the expiry.
    let change = json!({
        "labels": {"env": "test"},
        "allowed_models": ["gpt-*"],
        "allowed_endpoints": ["/v1/chat/completions"],
        "expires_at": "2099-01-01T00:00:00Z",
    });
    let (status, bot) = w
        .call("a1_admin", "PATCH /keys/{key:a1_bot}", Some(&change))
        .await;
    assert_eq!(status, 200, "{bot}");
    assert_eq!(
        (&bot["labels"]["env"], &bot["allowed_models"][0]),
        (&json!("test"), &json!("gpt-*"))
    );
    assert_eq!(bot["expires_at"], "2099-01-01T00:00:00Z");
    let (_, bot) = w
        .call(
            "a1_admin",
            "PATCH /keys/{key:a1_bot}",
            Some(&json!({"expires_at": null})),
        )
        .await;
    assert_eq!(
        (&bot["expires_at"], &bot["labels"]["env"]),
        (&Value::Null, &json!("test"))
    );
    // The change reached the request path: the bot is now limited to gpt-*.
    let bot_key = &w.secrets["a1_bot"];
    assert_eq!(chat(w, bot_key, "other-model").await, 403);

    // A member makes a key (for itself, without saying so), which works at once, then renames,
    // rotates and deletes it.
    let own = w
        .create(
            "a1_member",
            "POST /keys",
            json!({"team_id": "{A1}", "name": "own"}),
        )
        .await;
    assert_eq!(own["user_id"].as_str(), Some(w.ids["a1_member"].as_str()));
    let secret = own["key"].as_str().unwrap();
    assert_eq!(chat(w, secret, "gpt-test").await, 200);
    let path = format!("/keys/{}", own["id"].as_str().unwrap());
    let rename = json!({"name": "own renamed"});
    assert_eq!(
        w.call("a1_member", &format!("PATCH {path}"), Some(&rename))
            .await
            .0,
        200
    );
    assert_eq!(
        w.call("a1_member2", &format!("PATCH {path}"), Some(&rename))
            .await
            .0,
        403
    );
    let (status, rotated) = w
        .call(
            "a1_member",
            &format!("POST {path}/rotate"),
            Some(&json!({"grace_seconds": 0})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["key"].as_str().unwrap();
    assert_eq!(chat(w, new_secret, "gpt-test").await, 200);
    assert_eq!(chat(w, secret, "gpt-test").await, 401, "no grace asked for");
    assert_eq!(
        w.call("a1_member", &format!("DELETE {path}"), None).await.0,
        204
    );
    assert_eq!(
        w.call("a1_member", &format!("GET {path}"), None).await.0,
        404
    );
    assert_eq!(chat(w, new_secret, "gpt-test").await, 401);

    // A team admin makes a key for a member of its team; the member manages it.
    let for_member = w
        .create(
            "a1_admin",
            "POST /keys",
            json!({"team_id": "{A1}", "name": "given", "user_id": "{a1_member2}"}),
        )
        .await;
    let path = format!("/keys/{}", for_member["id"].as_str().unwrap());
    assert_eq!(
        w.call("a1_member", &format!("POST {path}/revoke"), None)
            .await
            .0,
        403
    );
    assert_eq!(
        w.call("a1_member2", &format!("POST {path}/revoke"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        w.call("a1_admin", &format!("DELETE {path}"), None).await.0,
        204
    );
}

/// Status of a chat completion with `key`.
async fn chat(w: &World, key: &str, model: &str) -> u16 {
    client()
        .post(w.gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(model))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An object outside the caller's scope answers exactly as an id that does not exist.
async fn out_of_scope_reads_as_missing(w: &World) {
    for (who, hidden, missing) in [
        ("a_org", "GET /orgs/{B}", "GET /orgs/{MISSING}"),
        ("a1_admin", "GET /teams/{A2}", "GET /teams/{MISSING}"),
        ("a1_admin", "PATCH /teams/{B1}", "PATCH /teams/{MISSING}"),
        ("a1_admin", "GET /users/{a2_member}", "GET /users/{MISSING}"),
        (
            "a_org",
            "DELETE /users/{b1_member}",
            "DELETE /users/{MISSING}",
        ),
        (
            "a1_member",
            "GET /keys/{key:a2_member}",
            "GET /keys/{MISSING}",
        ),
        (
            "b_org",
            "POST /keys/{key:a1_member}/rotate",
            "POST /keys/{MISSING}/rotate",
        ),
    ] {
        let body = hidden.starts_with("PATCH").then(|| json!({"name": "x"}));
        let seen = w.call(who, hidden, body.as_ref()).await;
        let missing = missing.replace("{MISSING}", MISSING);
        let expected = w.call(who, &missing, body.as_ref()).await;
        assert_eq!(seen.0, 404, "{who} {hidden}: {}", seen.1);
        assert_eq!(seen, expected, "{who} {hidden}");
        // The same words a gateway admin gets for an id that does not exist.
        assert_eq!(w.call("master", &missing, body.as_ref()).await, expected);
    }
    // A parent outside the scope, named in a body, answers as a missing one too.
    let hidden = w
        .call(
            "a1_admin",
            "POST /users",
            Some(&json!({"team_id": "{B1}", "name": "x"})),
        )
        .await;
    let missing = w
        .call(
            "a1_admin",
            "POST /users",
            Some(&json!({"team_id": MISSING, "name": "x"})),
        )
        .await;
    assert_eq!(hidden, missing);
    assert_eq!(hidden.1["error"]["param"], "team_id");
}

async fn revoked_and_disabled_keys_lose_admin_access(w: &World) {
    let code = |answer: Value| answer["error"]["code"].as_str().unwrap_or("").to_owned();
    // Revoked by the master key: at once.
    assert_eq!(w.call("a2_member", "GET /orgs", None).await.0, 200);
    assert_eq!(
        w.call("master", "POST /keys/{key:a2_member}/revoke", None)
            .await
            .0,
        200
    );
    let (status, answer) = w.call("a2_member", "GET /orgs", None).await;
    assert_eq!((status, code(answer).as_str()), (401, "invalid_api_key"));

    // Disabled by the team admin: no admin access and no API access.
    let off = json!({"enabled": false});
    assert_eq!(
        w.call("a1_admin", "PATCH /keys/{key:a1_viewer}", Some(&off))
            .await
            .0,
        200
    );
    assert_eq!(w.call("a1_viewer", "GET /keys", None).await.0, 401);
    assert_eq!(chat(w, &w.secrets["a1_viewer"], "gpt-test").await, 401);

    // A member revokes its own key, and with it its own access.
    assert_eq!(
        w.call("a1_member", "POST /keys/{key:a1_member}/revoke", None)
            .await
            .0,
        200
    );
    assert_eq!(w.call("a1_member", "GET /orgs", None).await.0, 401);

    // Rotated: the new secret is the identity, the old one only through its grace period.
    let old = &w.secrets["b1_member"];
    let grace = json!({"grace_seconds": 60});
    let (status, rotated) = w
        .call(
            "b1_member",
            "POST /keys/{key:b1_member}/rotate",
            Some(&grace),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap();
    assert_eq!(w.call_with(Some(new), "GET /users", None).await.0, 200);
    assert_eq!(w.call_with(Some(old), "GET /users", None).await.0, 200);
    let now = json!({"grace_seconds": 0});
    let (_, again) = w
        .call_with(Some(new), "POST /keys/{key:b1_member}/rotate", Some(&now))
        .await;
    let newest = again["key"].as_str().unwrap();
    assert_eq!(w.call_with(Some(newest), "GET /users", None).await.0, 200);
    assert_eq!(w.call_with(Some(new), "GET /users", None).await.0, 401);
    assert_eq!(w.call_with(Some(old), "GET /users", None).await.0, 401);
}

//! Virtual keys kept in the store (issue 4) on the real binary: a key made in an SQLite store
//! authenticates, is limited to its models, and stops working within the refresh interval (one
//! second) once revoked; a rotated key's old secret keeps working through its grace period.
//! Keys declared in the config keep working beside stored ones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::time::Duration;

use common::{HASHING_SECRET, chat_body, client, store_gateway as start};
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{NewKey, NewOrg, NewTeam, SqliteStore, Store};
use portcullis_testkit::{GatewayProcess, TEST_KEY};
use secrecy::ExposeSecret as _;
use time::OffsetDateTime;

async fn status(gw: &GatewayProcess, key: &str, model: &str) -> u16 {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(model))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `gw` answers `want` for `key`, for at most 5 s; returns how long it took.
async fn until_status(gw: &GatewayProcess, key: &str, want: u16) -> Duration {
    let started = std::time::Instant::now();
    while status(gw, key, "gpt-test").await != want {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still not {want} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// An SQLite store at `path` with an organization and a team in it.
async fn store_with_team(path: &std::path::Path) -> (SqliteStore, portcullis_store::Team) {
    let store = SqliteStore::open(path).await.unwrap();
    let org = store
        .create_org(NewOrg {
            name: "acme".into(),
            ..NewOrg::default()
        })
        .await
        .unwrap();
    let team = store
        .create_team(NewTeam {
            org_id: org.id,
            name: "search".into(),
            ..NewTeam::default()
        })
        .await
        .unwrap();
    (store, team)
}

#[tokio::test]
async fn stored_keys_authenticate_and_revocation_takes_effect_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let (store, team) = store_with_team(&path).await;
    let hasher = KeyHasher::new(HASHING_SECRET.as_bytes()).unwrap();
    let made = hasher.generate().unwrap();
    let key = store
        .create_key(NewKey {
            public_id: made.id.clone(),
            digest: made.digest.clone(),
            name: "search-bot".into(),
            team_id: team.id.clone(),
            allowed_models: vec!["gpt-*".into()],
            enabled: true,
            ..NewKey::default()
        })
        .await
        .unwrap();

    let (_upstream, gw) = start(&path, None).await;
    let secret = made.key.expose_secret();

    assert_eq!(status(&gw, secret, "gpt-test").await, 200);
    assert_eq!(
        status(&gw, secret, "other-model").await,
        403,
        "limited to gpt-*"
    );
    assert_eq!(
        status(&gw, TEST_KEY, "other-model").await,
        200,
        "config keys still work"
    );
    let forged = format!("{}x", &secret[..secret.len() - 1]);
    assert_eq!(status(&gw, &forged, "gpt-test").await, 401);

    // Rotation: the new secret works at once (after a refresh), the old one through its grace.
    let rotated = hasher.generate().unwrap();
    let new_secret = rotated
        .key
        .expose_secret()
        .replacen(&rotated.id, &made.id, 1);
    store
        .rotate_key(
            &key.id,
            hasher.digest(&new_secret),
            OffsetDateTime::now_utc() + time::Duration::minutes(5),
        )
        .await
        .unwrap();
    until_status(&gw, &new_secret, 200).await;
    assert_eq!(
        status(&gw, secret, "gpt-test").await,
        200,
        "old secret in its grace"
    );

    // Revocation: refused within the refresh interval (1 s; a margin for a loaded machine).
    store
        .revoke_key(&key.id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let took = until_status(&gw, &new_secret, 401).await;
    assert!(took < Duration::from_secs(3), "revocation took {took:?}");
    assert_eq!(status(&gw, secret, "gpt-test").await, 401);

    // The key's name, never the key, is what the access log records.
    let lines = gw.access_lines(1).await;
    assert!(lines.iter().any(|l| l["key"] == "search-bot"));
    let logs = gw.logs().join("\n");
    assert!(!logs.contains(secret) && !logs.contains(HASHING_SECRET));
}

/// The admin API (first slice): the master key makes an organization, a team and a key; the key
/// works at once, is shown once, is limited to its models, and stops at once when revoked;
/// rotation returns a new secret under the same public id.
#[tokio::test]
async fn the_admin_api_manages_keys_with_the_master_key() {
    const MASTER: &str = "admin-master-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let (_upstream, gw) = start(&path, Some(MASTER)).await;
    let admin = |method: reqwest::Method, path: &str| {
        client().request(method, gw.url(path)).bearer_auth(MASTER)
    };
    let post = |path: &str, body: serde_json::Value| admin(reqwest::Method::POST, path).json(&body);

    // No key: 401; a key of the config file is valid but no admin identity: 403.
    let r = client().get(gw.url("/admin/v1/orgs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(gw.url("/admin/v1/orgs"))
        .bearer_auth(TEST_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The OpenAPI document is public and is the one committed in docs/.
    let r = client()
        .get(gw.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served = r.text().await.unwrap();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .unwrap();
    assert_eq!(served, committed);

    let org: serde_json::Value = post("/admin/v1/orgs", serde_json::json!({"name": "acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let team: serde_json::Value = post(
        "/admin/v1/teams",
        serde_json::json!({"org_id": org["id"], "name": "search"}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let r = post(
        "/admin/v1/teams",
        serde_json::json!({"org_id": org["id"], "name": "search"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 409, "duplicate team name");
    let r = post(
        "/admin/v1/teams",
        serde_json::json!({"org_id": "no-such-org", "name": "x"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 404, "a missing organization");

    let r = post(
        "/admin/v1/keys",
        serde_json::json!({"team_id": team["id"], "name": "bot", "allowed_models": ["gpt-*"]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pk-"));
    assert!(created.get("digest").is_none());
    // Works at once (the table is reloaded on change), within its models.
    assert_eq!(status(&gw, &secret, "gpt-test").await, 200);
    assert_eq!(status(&gw, &secret, "other-model").await, 403);

    // Allowed endpoints: a key limited to the models list and embeddings cannot chat.
    let id = created["id"].as_str().unwrap();
    let r = admin(reqwest::Method::PATCH, &format!("/admin/v1/keys/{id}"))
        .json(&serde_json::json!({"allowed_endpoints": ["/v1/models", "/v1/embed*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&chat_body("gpt-test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "endpoint_not_allowed", "{body}");
    let r = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(reqwest::Method::PATCH, &format!("/admin/v1/keys/{id}"))
        .json(&serde_json::json!({"allowed_endpoints": ["v1 chat"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "endpoints are paths");
    let r = admin(reqwest::Method::PATCH, &format!("/admin/v1/keys/{id}"))
        .json(&serde_json::json!({"allowed_endpoints": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status(&gw, &secret, "gpt-test").await, 200);

    // Listing and reading never show the secret.
    let listed = admin(reqwest::Method::GET, "/admin/v1/keys")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains("\"bot\"") && !listed.contains(&secret),
        "{listed}"
    );

    // Rotation: a new secret with the same public id; the old one is valid in its grace.
    let rotated: serde_json::Value = post(
        &format!("/admin/v1/keys/{id}/rotate"),
        serde_json::json!({"grace_seconds": 60}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let new_secret = rotated["key"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["public_id"], created["public_id"]);
    assert_eq!(status(&gw, new_secret, "gpt-test").await, 200);
    assert_eq!(status(&gw, &secret, "gpt-test").await, 200);

    // Revocation stops both at once.
    let r = admin(
        reqwest::Method::POST,
        &format!("/admin/v1/keys/{id}/revoke"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status(&gw, new_secret, "gpt-test").await, 401);
    assert_eq!(status(&gw, &secret, "gpt-test").await, 401);
    let r = admin(reqwest::Method::GET, "/admin/v1/keys/nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let logs = gw.logs().join("\n");
    assert!(!logs.contains(&secret) && !logs.contains(new_secret) && !logs.contains(MASTER));
    // Nor does the database: its file and its write-ahead log hold digests only (and the
    // public id, which is found there: the check reads the right bytes).
    let mut bytes = Vec::new();
    for file in ["portcullis.db", "portcullis.db-wal"] {
        bytes.extend(std::fs::read(dir.path().join(file)).unwrap_or_default());
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(contains(created["public_id"].as_str().unwrap()));
    for needle in [secret.as_str(), new_secret, &secret[3 + 13..]] {
        assert!(!contains(needle), "the database holds a key in clear");
    }
}

/// Runs `portcullis <args>` against `gw` with `admin_key`; returns (success, stdout, stderr).
async fn cli(gw: &GatewayProcess, admin_key: &str, args: &[&str]) -> (bool, String, String) {
    common::admin_cli(gw, admin_key, args, "").await
}

#[tokio::test]
async fn the_keys_cli_creates_lists_and_revokes_through_the_admin_api() {
    const MASTER: &str = "cli-master-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let (store, team) = store_with_team(&path).await;
    drop(store);
    let (_upstream, gw) = start(&path, Some(MASTER)).await;

    let (ok, out, err) = cli(
        &gw,
        MASTER,
        &[
            "keys", "create", "--team", &team.id, "--name", "cli-bot", "--model", "gpt-*",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let secret = out.trim().to_owned();
    assert!(secret.starts_with("pk-"), "{out}");
    assert!(err.contains("shown once"), "{err}");
    assert_eq!(status(&gw, &secret, "gpt-test").await, 200);

    let (ok, table, _) = cli(&gw, MASTER, &["keys", "list", "--team", &team.id]).await;
    assert!(ok);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID  "), "{table}");
    let row = lines.next().unwrap();
    assert!(row.contains("cli-bot") && row.contains("gpt-*"), "{table}");
    assert!(!table.contains(&secret));
    let id = row.split_whitespace().next().unwrap().to_owned();

    let (ok, json, _) = cli(&gw, MASTER, &["keys", "show", &id, "--json"]).await;
    assert!(ok);
    let shown: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(shown["name"], "cli-bot");

    let (ok, _, _) = cli(&gw, MASTER, &["keys", "revoke", &id]).await;
    assert!(ok);
    assert_eq!(status(&gw, &secret, "gpt-test").await, 401);

    // A wrong admin key: a clear error and exit status 1, never a secret.
    let (ok, _, err) = cli(&gw, "not-the-master-key", &["keys", "list"]).await;
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-master-key"), "{err}");
    let (ok, _, err) = cli(&gw, MASTER, &["keys", "show", "no-such-key"]).await;
    assert!(!ok && err.contains("404"), "{err}");
}

/// The first column of the table's first row: the id of what a `create` or `show` printed.
fn first_id(table: &str) -> String {
    let row = table.lines().nth(1).unwrap_or_default();
    row.split_whitespace().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_orgs_teams_and_users_cli_manage_tenants_with_roles() {
    const MASTER: &str = "cli-master-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    drop(portcullis_store::SqliteStore::open(&path).await.unwrap());
    let (_upstream, gw) = start(&path, Some(MASTER)).await;

    let (ok, out, err) = cli(&gw, MASTER, &["orgs", "create", "--name", "acme"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("ID  ") && out.contains("acme"), "{out}");
    let org = first_id(&out);
    let (ok, out, err) = cli(
        &gw,
        MASTER,
        &["teams", "create", "--org", &org, "--name", "search"],
    )
    .await;
    assert!(ok, "{err}");
    let team = first_id(&out);
    let (ok, out, err) = cli(
        &gw,
        MASTER,
        &[
            "users",
            "create",
            "--team",
            &team,
            "--name",
            "ada",
            "--role",
            "team_admin",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("team_admin"), "{out}");
    let ada = first_id(&out);

    // Ada's own key is her admin identity: she manages her team from the CLI.
    let (ok, ada_key, err) = cli(
        &gw,
        MASTER,
        &[
            "keys", "create", "--team", &team, "--user", &ada, "--name", "ada-cli",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let ada_key = ada_key.trim().to_owned();
    let (ok, out, err) = cli(
        &gw,
        &ada_key,
        &[
            "users",
            "create",
            "--team",
            &team,
            "--name",
            "bob",
            "--email",
            "bob@example.com",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let bob = first_id(&out);
    let (ok, _, err) = cli(
        &gw,
        &ada_key,
        &["users", "update", &bob, "--role", "org_admin"],
    )
    .await;
    assert!(
        !ok && err.contains("403"),
        "a team admin cannot make an org admin: {err}"
    );
    let (ok, _, err) = cli(&gw, &ada_key, &["orgs", "create", "--name", "rogue"]).await;
    assert!(!ok && err.contains("403"), "{err}");
    let (ok, out, _) = cli(&gw, &ada_key, &["users", "list", "--json"]).await;
    assert!(ok);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "bob"]);

    // Updates and deletes, with the restrictions the store keeps.
    let (ok, out, err) = cli(
        &gw,
        &ada_key,
        &["users", "update", &bob, "--clear-email", "--role", "viewer"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("viewer") && !out.contains("bob@example.com"),
        "{out}"
    );
    let (ok, _, err) = cli(
        &gw,
        MASTER,
        &["teams", "update", &team, "--name", "search-eu"],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&gw, MASTER, &["teams", "list", "--org", &org]).await;
    assert!(ok && out.contains("search-eu"), "{out}");
    let (ok, _, err) = cli(&gw, MASTER, &["orgs", "delete", &org]).await;
    assert!(
        !ok && err.contains("409"),
        "an organization with teams stays: {err}"
    );
    let (ok, _, err) = cli(&gw, &ada_key, &["users", "delete", &bob]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&gw, MASTER, &["users", "show", &bob]).await;
    assert!(!ok && err.contains("404"), "{err}");
}

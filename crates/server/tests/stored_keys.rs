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

use common::{BIN, chat_body, client};
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{NewKey, NewOrg, NewTeam, SqliteStore, Store};
use portcullis_testkit::{GatewayProcess, MockUpstream, TEST_KEY};
use secrecy::ExposeSecret as _;
use time::OffsetDateTime;

const HASHING_SECRET: &str = "test-hashing-secret-0123456789abcdef";

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

#[tokio::test]
async fn stored_keys_authenticate_and_revocation_takes_effect_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let org = store
        .create_org(NewOrg {
            name: "acme".into(),
        })
        .await
        .unwrap();
    let team = store
        .create_team(NewTeam {
            org_id: org.id,
            name: "search".into(),
        })
        .await
        .unwrap();
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

    let upstream = MockUpstream::openai().await.unwrap();
    let yaml = common::single_upstream(&upstream.base_url()).replace(
        "auth:\n",
        &format!(
            "store: {{ sqlite: \"{}\" }}\nauth:\n  hashing_secret: {HASHING_SECRET}\n",
            path.display()
        ),
    );
    let gw = GatewayProcess::start(BIN, &yaml).await.unwrap();
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

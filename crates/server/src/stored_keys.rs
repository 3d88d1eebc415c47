//! The store's virtual keys on the request path. At start the store is opened (its migrations
//! applied) and its active keys loaded into the gateway's in-memory table before the listener
//! opens; then the table is reloaded every second, so a key revoked, disabled or expired in the
//! store stops working within a second on this replica, and a request never waits on the
//! database. A store that cannot be read keeps the last table and logs a warning.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use portcullis_core::Gateway;
use portcullis_core::auth::{KeyOwner, ModelPattern, StoredKey, StoredKeys};
use portcullis_core::config::StoreConfig;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{
    MAX_PAGE, PageRequest, PostgresStore, SqliteStore, Store, TeamFilter, VirtualKey,
};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How often the table is reloaded.
const REFRESH: Duration = Duration::from_secs(1);

/// Opens the configured store and applies its migrations.
pub async fn open(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Sqlite(path) => Arc::new(
            SqliteStore::open(path)
                .await
                .with_context(|| format!("cannot open the SQLite store {}", path.display()))?,
        ),
        StoreConfig::Postgres(url) => Arc::new(
            PostgresStore::connect(url.expose_secret())
                .await
                .context("cannot connect to the PostgreSQL store")?,
        ),
    })
}

/// The active keys of `store` as the request path's table.
pub async fn load(
    store: &dyn Store,
    hasher: &Arc<KeyHasher>,
) -> Result<StoredKeys, portcullis_store::StoreError> {
    let keys = store.list_active_keys(OffsetDateTime::now_utc()).await?;
    let orgs = team_orgs(store).await?;
    Ok(StoredKeys::new(
        hasher.clone(),
        keys.into_iter().map(|k| {
            let org = orgs.get(&k.team_id).cloned();
            (k.public_id.clone(), stored_key(k, org))
        }),
    ))
}

/// Every team's organization id, by team id (all pages).
async fn team_orgs(
    store: &dyn Store,
) -> Result<HashMap<String, Arc<str>>, portcullis_store::StoreError> {
    let mut orgs = HashMap::new();
    let mut page = PageRequest::first(MAX_PAGE);
    loop {
        let teams = store.list_teams(&TeamFilter::default(), &page).await?;
        for team in teams.items {
            orgs.insert(team.id, Arc::from(team.org_id.as_str()));
        }
        match teams.next_after {
            Some(after) => page.after = Some(after),
            None => return Ok(orgs),
        }
    }
}

fn stored_key(key: VirtualKey, org: Option<Arc<str>>) -> StoredKey {
    StoredKey {
        owner: KeyOwner {
            key_id: Some(Arc::from(key.id.as_str())),
            org,
            team: Some(Arc::from(key.team_id.as_str())),
            user: key.user_id.as_deref().map(Arc::from),
            // Filled in with the limits and budgets of the store's rows (issue 5).
            quotas: None,
        },
        name: Arc::from(key.name.as_str()),
        previous: key
            .previous_digest
            .zip(key.previous_valid_until)
            .map(|(digest, until)| (digest, SystemTime::from(until))),
        digest: key.digest,
        expires_at: key.expires_at.map(SystemTime::from),
        models: patterns(key.allowed_models),
        endpoints: patterns(key.allowed_endpoints),
    }
}

/// A key's allow-list as the request path matches it; empty means no restriction.
fn patterns(list: Vec<String>) -> Option<Arc<[ModelPattern]>> {
    (!list.is_empty()).then(|| list.into_iter().map(ModelPattern::new).collect())
}

/// Reloads the table every second until `stop` turns true.
pub async fn refresh(
    gateway: Arc<Gateway>,
    store: Arc<dyn Store>,
    hasher: Arc<KeyHasher>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match load(store.as_ref(), &hasher).await {
            Ok(table) => {
                if failing {
                    tracing::info!(keys = table.len(), "the store can be read again");
                    failing = false;
                }
                gateway.set_stored_keys(table);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the store's keys; keeping the last ones");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use portcullis_core::auth::KeyTable;
    use portcullis_store::{NewKey, NewOrg, NewTeam, NewUser};

    use super::*;

    #[tokio::test]
    async fn a_stored_key_authenticates_as_its_key_user_team_and_organization() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).await.unwrap();
        let org = store
            .create_org(NewOrg {
                name: "acme".into(),
                ..NewOrg::default()
            })
            .await
            .unwrap();
        let team = store
            .create_team(NewTeam {
                org_id: org.id.clone(),
                name: "search".into(),
                ..NewTeam::default()
            })
            .await
            .unwrap();
        let user = store
            .create_user(NewUser {
                team_id: team.id.clone(),
                name: "ada".into(),
                ..NewUser::default()
            })
            .await
            .unwrap();
        let hasher = Arc::new(KeyHasher::new(&[7u8; 32]).unwrap());
        let made = hasher.generate().unwrap();
        let key = store
            .create_key(NewKey {
                public_id: made.id.clone(),
                digest: made.digest.clone(),
                name: "bot".into(),
                team_id: team.id.clone(),
                user_id: Some(user.id.clone()),
                enabled: true,
                ..NewKey::default()
            })
            .await
            .unwrap();
        let table = load(&store, &hasher).await.unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-api-key",
            http::HeaderValue::from_str(made.key.expose_secret()).unwrap(),
        );
        let p = KeyTable::default()
            .authenticate_with(&headers, Some(&table))
            .unwrap();
        assert_eq!(
            (
                p.key_id.as_deref(),
                p.user.as_deref(),
                p.team.as_deref(),
                p.org.as_deref()
            ),
            (
                Some(key.id.as_str()),
                Some(user.id.as_str()),
                Some(team.id.as_str()),
                Some(org.id.as_str())
            )
        );
    }
}

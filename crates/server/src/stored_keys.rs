//! The store's virtual keys on the request path. At start the store is opened (its migrations
//! applied) and its active keys loaded into the gateway's in-memory table before the listener
//! opens; then the table is reloaded every second, so a key revoked, disabled or expired in the
//! store stops working within a second on this replica, and a request never waits on the
//! database. A store that cannot be read keeps the last table and logs a warning.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use portcullis_core::Gateway;
use portcullis_core::auth::{ModelPattern, StoredKey, StoredKeys};
use portcullis_core::config::StoreConfig;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{PostgresStore, SqliteStore, Store, VirtualKey};
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
    Ok(StoredKeys::new(
        hasher.clone(),
        keys.into_iter()
            .map(|k| (k.public_id.clone(), stored_key(k))),
    ))
}

fn stored_key(key: VirtualKey) -> StoredKey {
    StoredKey {
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

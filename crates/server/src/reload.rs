//! Live reload: on SIGHUP, when the config file's content changes (checked every
//! `reload.poll_interval`), and when the store's provider credentials change (checked on the
//! same tick, and at once after a change through the admin API), the file is loaded and
//! validated again and a new runtime snapshot is swapped in atomically. An invalid file is
//! rejected with its problems logged, and the current snapshot keeps serving. Polling the
//! content (rather than inotify) also catches editors that replace the file and orchestrators
//! that swap symlinks.
//!
//! Stored credentials referenced as `${credential:NAME}` are decrypted again on every reload,
//! with the store and master keys opened at start (`store:` and `secrets:` need a restart),
//! so a secret changed in the store, by this replica or another, reaches the providers.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use fingerprint::content_digest;
use portcullis_core::config::{CredentialUse, LoggingConfig, ReloadConfig, ServerConfig};
use portcullis_core::envelope::Keyring;
use portcullis_core::provider::client::HttpClient;
use portcullis_core::{Gateway, Runtime};
use portcullis_store::Store;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::stored_credentials;

/// Rebuilds and swaps the runtime snapshot.
#[derive(Debug)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    path: PathBuf,
    http: HttpClient,
    server: ServerConfig,
    logging: LoggingConfig,
    /// The limiter's backend, which only a restart changes.
    limits_backend: portcullis_limits::LimiterConfig,
    store: Option<Arc<dyn Store>>,
    keyring: Option<Arc<Keyring>>,
    /// The credential references of the config that is serving.
    uses: RwLock<Vec<CredentialUse>>,
    /// The stored credentials' fingerprint as the last reload read them.
    credentials_seen: std::sync::Mutex<Option<u64>>,
    /// One reload at a time (signals, the file watcher and the admin API may ask together).
    serial: tokio::sync::Mutex<()>,
}

/// What the reloader needs besides the snapshot's inputs: the store and master keys opened at
/// start, and the credential references of the config loaded at start.
#[derive(Debug, Default)]
pub struct Stored {
    pub store: Option<Arc<dyn Store>>,
    pub keyring: Option<Arc<Keyring>>,
    pub uses: Vec<CredentialUse>,
    /// The credentials' fingerprint, read before the config loaded at start read them.
    pub credentials_seen: Option<u64>,
}

impl Reloader {
    pub fn new(
        gateway: Arc<Gateway>,
        path: PathBuf,
        http: HttpClient,
        server: ServerConfig,
        logging: LoggingConfig,
        limits_backend: portcullis_limits::LimiterConfig,
        stored: Stored,
    ) -> Self {
        Self {
            gateway,
            path,
            http,
            server,
            logging,
            limits_backend,
            store: stored.store,
            keyring: stored.keyring,
            uses: RwLock::new(stored.uses),
            credentials_seen: std::sync::Mutex::new(stored.credentials_seen),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    pub async fn run(self: Arc<Self>, config: ReloadConfig, mut stop: watch::Receiver<bool>) {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload on signal is off");
                None
            }
        };
        let mut last = content_digest(&self.path);
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let tick_now = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => false,
                _ = tick.tick(), if config.watch => true,
            };
            let trigger = if !tick_now {
                "SIGHUP"
            } else {
                let now = content_digest(&self.path);
                if now.is_some() && now != last {
                    "file changed"
                } else if self.credentials_changed().await {
                    "stored credentials changed"
                } else {
                    continue;
                }
            };
            last = content_digest(&self.path);
            self.reload(trigger).await;
        }
    }

    async fn credentials_fingerprint(&self) -> Option<u64> {
        fingerprint_of(self.store.as_deref(), self.keyring.as_deref()).await
    }

    fn note_credentials(&self, seen: Option<u64>) {
        if let Ok(mut last) = self.credentials_seen.lock() {
            *last = seen;
        }
    }

    /// Whether the stored credentials changed since the last reload read them.
    async fn credentials_changed(&self) -> bool {
        let Some(now) = self.credentials_fingerprint().await else {
            return false;
        };
        self.credentials_seen
            .lock()
            .map(|last| *last != Some(now))
            .unwrap_or(false)
    }

    /// Loads the file again and swaps the snapshot; `false` (with the problems logged) when the
    /// file is rejected.
    pub async fn reload(&self, trigger: &str) -> bool {
        let _one_at_a_time = self.serial.lock().await;
        // Read before the credentials are, so that a change made meanwhile is seen next time.
        self.note_credentials(self.credentials_fingerprint().await);
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(trigger, error = %e, "config reload rejected: cannot read the file; the current config keeps serving");
                return false;
            }
        };
        let loaded =
            stored_credentials::load(&text, self.store.as_deref(), self.keyring.as_deref()).await;
        let config = match loaded {
            Ok(c) => c,
            Err(problems) => {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::error!(
                    trigger,
                    problems = ?problems,
                    "config reload rejected; the current config keeps serving"
                );
                return false;
            }
        };
        if config.limits.backend != self.limits_backend {
            tracing::warn!(
                "limits.backend and limits.redis changed; they take effect after a restart"
            );
        }
        if config.server != self.server || config.logging != self.logging {
            tracing::warn!("server and logging settings changed; they take effect after a restart");
        }
        let key_ids = |k: Option<&Keyring>| k.map(Keyring::key_ids);
        if key_ids(config.secrets.as_ref().map(|s| s.keyring.as_ref()))
            != key_ids(self.keyring.as_deref())
        {
            tracing::warn!("the secrets master keys changed; they take effect after a restart");
        }
        // Built after the current snapshot: an unchanged `auth.oidc` keeps its verifier and the
        // identity provider's keys it has cached.
        let runtime = Runtime::build_after(&config, &self.http, &self.gateway.runtime());
        let generation = self.gateway.swap(runtime);
        if let Ok(mut uses) = self.uses.write() {
            *uses = config.credential_uses.clone();
        }
        tracing::info!(
            trigger,
            generation,
            models = config.models.len(),
            providers = config.providers.len(),
            "config reloaded"
        );
        true
    }

    /// Where the serving config references the stored credential `name` (its paths).
    pub fn references_to(&self, name: &str) -> Vec<String> {
        self.uses
            .read()
            .map(|uses| {
                uses.iter()
                    .filter(|u| u.name == name)
                    .map(|u| u.path.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The fingerprint of the stored credentials, when stored credentials are in use (a store and
/// master keys) and the store can be read.
pub async fn fingerprint_of(store: Option<&dyn Store>, keyring: Option<&Keyring>) -> Option<u64> {
    let store = store.filter(|_| keyring.is_some())?;
    stored_credentials::fingerprint(store).await.ok()
}

mod fingerprint {
    use std::hash::{DefaultHasher, Hash, Hasher};
    use std::path::Path;

    /// A fingerprint of the file's content (`None` when it cannot be read right now).
    pub fn content_digest(path: &Path) -> Option<u64> {
        let bytes = std::fs::read(path).ok()?;
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        Some(h.finish())
    }
}

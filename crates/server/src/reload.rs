//! Live reload: on SIGHUP, and when the config file's content changes (checked every
//! `reload.poll_interval`), the file is loaded and validated again and a new runtime snapshot is
//! swapped in atomically. An invalid file is rejected with its problems logged, and the current
//! snapshot keeps serving. Polling the content (rather than inotify) also catches editors that
//! replace the file and orchestrators that swap symlinks.

use std::path::PathBuf;
use std::sync::Arc;

use fingerprint::content_digest;
use portcullis_core::config::{Config, LoggingConfig, ReloadConfig, ServerConfig};
use portcullis_core::provider::client::HttpClient;
use portcullis_core::{Gateway, Runtime};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Rebuilds and swaps the runtime snapshot.
#[derive(Debug)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    path: PathBuf,
    http: HttpClient,
    server: ServerConfig,
    logging: LoggingConfig,
}

impl Reloader {
    pub fn new(
        gateway: Arc<Gateway>,
        path: PathBuf,
        http: HttpClient,
        server: ServerConfig,
        logging: LoggingConfig,
    ) -> Self {
        Self {
            gateway,
            path,
            http,
            server,
            logging,
        }
    }

    pub async fn run(self, config: ReloadConfig, mut stop: watch::Receiver<bool>) {
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
            let trigger = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => "SIGHUP",
                _ = tick.tick(), if config.watch => {
                    let now = content_digest(&self.path);
                    if now == last || now.is_none() {
                        continue;
                    }
                    "file changed"
                }
            };
            last = content_digest(&self.path);
            self.reload(trigger);
        }
    }

    fn reload(&self, trigger: &str) {
        let config = match Config::load(&self.path) {
            Ok(c) => c,
            Err(problems) => {
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::error!(
                    trigger,
                    problems = ?problems,
                    "config reload rejected; the current config keeps serving"
                );
                return;
            }
        };
        if config.server != self.server || config.logging != self.logging {
            tracing::warn!("server and logging settings changed; they take effect after a restart");
        }
        // Built after the current snapshot: an unchanged `auth.oidc` keeps its verifier and the
        // identity provider's keys it has cached.
        let runtime = Runtime::build_after(&config, &self.http, &self.gateway.runtime());
        let generation = self.gateway.swap(runtime);
        tracing::info!(
            trigger,
            generation,
            models = config.models.len(),
            providers = config.providers.len(),
            "config reloaded"
        );
    }
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

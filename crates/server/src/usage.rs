//! Starts and stops usage accounting (see `portcullis_core::usage`): with a store, opens the
//! journal (recovering what a previous process left unflushed), makes it the gateway's usage
//! sink, and runs the background writer into the store and the periodic fsync. At shutdown the
//! writer drains what it can after the last request finished; whatever the store did not take
//! stays in the journal for the next start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use portcullis_core::Gateway;
use portcullis_core::config::{StoreConfig, UsageConfig};
use portcullis_core::usage::writer::{self, UsageSink, WriterOptions};
use portcullis_core::usage::{Journal, JournalOptions};
use portcullis_store::{Store, UsageRecord};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long shutdown waits for the writer's last pass.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// The running accounting tasks.
#[derive(Debug)]
pub struct Accounting {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// The store as the writer's sink.
#[derive(Debug)]
struct StoreSink(Arc<dyn Store>);

impl UsageSink for StoreSink {
    fn insert<'a>(
        &'a self,
        batch: &'a [UsageRecord],
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move { self.0.insert_usage(batch).await.map_err(|e| e.to_string()) })
    }
}

/// Opens the journal and starts the writer.
pub fn start(
    gateway: &Gateway,
    store: Arc<dyn Store>,
    store_config: &StoreConfig,
    config: &UsageConfig,
) -> anyhow::Result<Accounting> {
    let dir = config.journal_dir_for(store_config);
    let opts = JournalOptions {
        dir: dir.clone(),
        segment_bytes: config.segment_bytes,
        max_bytes: config.max_bytes,
        fsync: config.fsync,
    };
    let (journal, recovery) = Journal::open(opts)
        .with_context(|| format!("cannot open the usage journal {}", dir.display()))?;
    tracing::info!(
        dir = %dir.display(),
        pending_records = recovery.pending_records,
        pending_bytes = recovery.pending_bytes,
        truncated_bytes = recovery.truncated_bytes,
        segments = recovery.segments,
        "usage journal opened"
    );
    let journal = Arc::new(journal);
    gateway.set_usage_journal(journal.clone());
    let (stop, stop_rx) = watch::channel(false);
    let opts = WriterOptions {
        batch_size: config.batch_size,
        flush_interval: config.flush_interval,
    };
    let sink: Arc<dyn UsageSink> = Arc::new(StoreSink(store));
    let tasks = vec![
        tokio::spawn(writer::run(journal.clone(), sink, opts, stop_rx.clone())),
        tokio::spawn(writer::sync_periodically(journal, stop_rx)),
    ];
    Ok(Accounting { stop, tasks })
}

impl Accounting {
    /// Lets the writer drain (within [`DRAIN_GRACE`]) and stops it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if tokio::time::timeout(DRAIN_GRACE, task).await.is_err() {
                tracing::warn!(
                    "usage journal: the writer did not finish; the journal keeps the rest"
                );
            }
        }
    }
}

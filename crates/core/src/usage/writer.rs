//! The background writer: moves the journal into the store, off the request path. It reads
//! batches from the checkpoint, inserts each in one transaction (idempotent: a batch re-sent
//! after a crash between the insert and the checkpoint counts once), then advances the
//! checkpoint, which deletes flushed segments. When the store fails it retries the same batch
//! with exponential backoff (up to [`MAX_BACKOFF`]) and the journal grows, until
//! [`Journal::admit`] refuses new requests: back-pressure, never a dropped record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use portcullis_types::UsageRecord;
use tokio::sync::watch;

use super::journal::{Batch, Journal, JournalError};
use crate::config::Fsync;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Where batches go: the store, or a test's fake. The error is a message to log (no content).
pub trait UsageSink: Send + Sync + std::fmt::Debug {
    fn insert<'a>(
        &'a self,
        batch: &'a [UsageRecord],
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>>;
}

/// How the writer batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    pub batch_size: usize,
    /// How long a partial batch is left to gather more records.
    pub flush_interval: Duration,
}

/// Runs until `stop` turns true, then drains what it can (one more pass) and returns.
pub async fn run(
    journal: Arc<Journal>,
    sink: Arc<dyn UsageSink>,
    opts: WriterOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let stopping = *stop.borrow();
        let batch = match read(&journal, opts.batch_size).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "usage journal: cannot read; retrying");
                if stopping || wait(&mut stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if batch.records.is_empty() {
            if batch.next != journal.checkpoint()
                && let Err(e) = journal.commit(batch.next, 0)
            {
                tracing::warn!(error = %e, "usage journal: cannot advance the checkpoint");
            }
            if stopping {
                return;
            }
            tokio::select! {
                () = journal.appended() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        match sink.insert(&batch.records).await {
            Ok(_) => {
                backoff = FIRST_BACKOFF;
                if let Err(e) = journal.commit(batch.next, batch.bytes) {
                    // The store has the batch; re-sending it after a restart is harmless.
                    tracing::warn!(error = %e, "usage journal: cannot advance the checkpoint");
                }
                let full = batch.records.len() >= opts.batch_size;
                if !full && !stopping {
                    // When this ends because of `stop`, the next pass drains what is left.
                    wait(&mut stop, opts.flush_interval).await;
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    pending_bytes = journal.backlog(),
                    retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "usage journal: the store refused a batch; keeping it and retrying"
                );
                if stopping || wait(&mut stop, backoff).await {
                    // Stopping with the store down: the journal keeps the records for the
                    // next start.
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sleeps `d`; true if `stop` turned true meanwhile.
async fn wait(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

async fn read(journal: &Arc<Journal>, max: usize) -> Result<Batch, JournalError> {
    let (journal, from) = (journal.clone(), journal.checkpoint());
    tokio::task::spawn_blocking(move || journal.read(from, max))
        .await
        .unwrap_or_else(|e| Err(JournalError::Io(std::io::Error::other(e))))
}

/// Syncs the journal every interval under [`Fsync::Interval`] (does nothing otherwise), until
/// `stop`; syncs once more at the end.
pub async fn sync_periodically(journal: Arc<Journal>, mut stop: watch::Receiver<bool>) {
    let Fsync::Interval(every) = journal.options().fsync else {
        return;
    };
    loop {
        let stopping = wait(&mut stop, every).await;
        let j = journal.clone();
        match tokio::task::spawn_blocking(move || j.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "usage journal: fsync failed"),
            Err(e) => tracing::warn!(error = %e, "usage journal: fsync task failed"),
        }
        if stopping {
            return;
        }
    }
}

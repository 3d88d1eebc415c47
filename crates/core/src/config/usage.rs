//! The `usage:` block: the durable journal that usage records go through on their way to the
//! store (see [`crate::usage`]). Read once at start; only used when a store is configured.
//!
//! ```yaml
//! usage:
//!   journal_dir: /var/lib/portcullis/usage-journal  # default: see below
//!   segment_bytes: 8388608      # a segment file is sealed past this size (8 MiB)
//!   max_bytes: 268435456        # journal not yet in the store past which requests get 503
//!   batch_size: 1000            # records per store transaction
//!   flush_interval: 1s          # how long the writer lets a partial batch gather
//!   fsync: 1s                   # always | never | an interval (default 1s)
//! ```
//!
//! The default `journal_dir` sits beside the SQLite store: `<db file>.usage-journal` (for
//! `/var/lib/portcullis/db.sqlite`, `/var/lib/portcullis/db.sqlite.usage-journal`). With a
//! PostgreSQL store it is `portcullis-usage-journal` in the working directory; set it to a
//! persistent local disk, one directory per gateway process.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::StoreConfig;

pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
pub const DEFAULT_BATCH_SIZE: usize = 1000;
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The default directory when the store is PostgreSQL (relative to the working directory).
pub const DEFAULT_PG_JOURNAL_DIR: &str = "portcullis-usage-journal";

/// The `usage:` block as written.
#[derive(Debug, Default, Deserialize)]
pub struct RawUsage {
    pub journal_dir: Option<String>,
    pub segment_bytes: Option<u64>,
    pub max_bytes: Option<u64>,
    pub batch_size: Option<usize>,
    pub flush_interval: Option<String>,
    pub fsync: Option<String>,
}

/// When the journal asks the disk to make its writes durable (`fsync`). Surviving a crash of the
/// process (SIGKILL included) needs none of them: a record is acknowledged once it is written
/// (`write(2)`), and the kernel keeps what was written. `fsync` is about power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Before each record is acknowledged (a disk flush per request: slow).
    Always,
    /// In the background at this interval: a power loss loses at most this much.
    Interval(Duration),
    /// Never; the kernel writes back on its own schedule.
    Never,
}

/// The validated `usage:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageConfig {
    /// `None`: the default for the store ([`UsageConfig::journal_dir_for`]).
    pub journal_dir: Option<PathBuf>,
    pub segment_bytes: u64,
    pub max_bytes: u64,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub fsync: Fsync,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            journal_dir: None,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_bytes: DEFAULT_MAX_BYTES,
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            fsync: Fsync::Interval(DEFAULT_FSYNC_INTERVAL),
        }
    }
}

impl UsageConfig {
    /// The journal directory: the configured one, else beside the SQLite file, else
    /// [`DEFAULT_PG_JOURNAL_DIR`].
    pub fn journal_dir_for(&self, store: &StoreConfig) -> PathBuf {
        if let Some(dir) = &self.journal_dir {
            return dir.clone();
        }
        match store {
            StoreConfig::Sqlite(db) => {
                let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
                name.push(".usage-journal");
                db.with_file_name(name)
            }
            StoreConfig::Postgres(_) => PathBuf::from(DEFAULT_PG_JOURNAL_DIR),
        }
    }
}

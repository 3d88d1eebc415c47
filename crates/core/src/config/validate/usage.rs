//! Validation of `usage:` (see [`crate::config::usage`]): sizes must be positive and a segment
//! no larger than the whole journal may grow; `fsync` is `always`, `never` or a duration.

use super::super::usage::{Fsync, RawUsage, UsageConfig};
use super::Validator;

/// The largest batch: the store splits it into statements, but a batch is one transaction.
const MAX_BATCH: usize = 100_000;
/// The smallest segment worth a file.
const MIN_SEGMENT_BYTES: u64 = 4096;

impl Validator<'_> {
    pub(super) fn usage(&mut self, raw: RawUsage) -> UsageConfig {
        let mut cfg = UsageConfig::default();
        if let Some(dir) = raw.journal_dir {
            if dir.trim().is_empty() {
                self.problem("usage.journal_dir", "must be a directory path");
            } else {
                cfg.journal_dir = Some(dir.into());
            }
        }
        if let Some(n) = raw.segment_bytes {
            if n < MIN_SEGMENT_BYTES {
                self.problem(
                    "usage.segment_bytes",
                    format!("must be at least {MIN_SEGMENT_BYTES}"),
                );
            }
            cfg.segment_bytes = n;
        }
        if let Some(n) = raw.max_bytes {
            cfg.max_bytes = n;
        }
        if cfg.max_bytes < cfg.segment_bytes {
            self.problem(
                "usage.max_bytes",
                "must be at least usage.segment_bytes (8 MiB unless set)",
            );
        }
        if let Some(n) = raw.batch_size {
            if n == 0 || n > MAX_BATCH {
                self.problem("usage.batch_size", format!("must be 1 to {MAX_BATCH}"));
            }
            cfg.batch_size = n;
        }
        if let Some(d) = self.duration("usage.flush_interval", raw.flush_interval.as_deref()) {
            cfg.flush_interval = d;
        }
        match raw.fsync.as_deref() {
            None => {}
            Some("always") => cfg.fsync = Fsync::Always,
            Some("never") => cfg.fsync = Fsync::Never,
            Some(other) => match humantime::parse_duration(other) {
                Ok(d) if !d.is_zero() => cfg.fsync = Fsync::Interval(d),
                _ => self.problem(
                    "usage.fsync",
                    format!("'{other}' is not always, never or a duration such as 1s"),
                ),
            },
        }
        cfg
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use crate::config::usage::{Fsync, UsageConfig};
    use crate::config::{Config, ProcessEnv, StoreConfig};

    fn load(text: &str) -> Result<Config, Vec<crate::config::ConfigProblem>> {
        Config::from_yaml(text, &ProcessEnv)
    }

    #[test]
    fn usage_block_defaults_and_values() {
        assert_eq!(load("").unwrap().usage, UsageConfig::default());
        let cfg = load(
            "usage: { journal_dir: /j, segment_bytes: 65536, max_bytes: 1048576, batch_size: 10, \
             flush_interval: 50ms, fsync: never }\n",
        )
        .unwrap()
        .usage;
        assert_eq!(cfg.journal_dir.as_deref(), Some(std::path::Path::new("/j")));
        assert_eq!(
            (cfg.segment_bytes, cfg.max_bytes, cfg.batch_size),
            (65536, 1 << 20, 10)
        );
        assert_eq!(cfg.flush_interval, Duration::from_millis(50));
        assert_eq!(cfg.fsync, Fsync::Never);
        let always = load("usage: { fsync: always }\n").unwrap().usage.fsync;
        assert_eq!(always, Fsync::Always);
        let every = load("usage: { fsync: 250ms }\n").unwrap().usage.fsync;
        assert_eq!(every, Fsync::Interval(Duration::from_millis(250)));
    }

    #[test]
    fn usage_problems_have_paths() {
        for (text, path) in [
            ("usage: { journal_dir: ' ' }\n", "usage.journal_dir"),
            ("usage: { segment_bytes: 10 }\n", "usage.segment_bytes"),
            ("usage: { max_bytes: 1000000 }\n", "usage.max_bytes"),
            ("usage: { batch_size: 0 }\n", "usage.batch_size"),
            ("usage: { flush_interval: soon }\n", "usage.flush_interval"),
            ("usage: { fsync: sometimes }\n", "usage.fsync"),
            ("usage: { fsync: 0s }\n", "usage.fsync"),
        ] {
            let problems = load(text).unwrap_err();
            assert!(
                problems.iter().any(|p| p.path == path),
                "{text}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_default_journal_sits_beside_the_sqlite_file() {
        let cfg = UsageConfig::default();
        let sqlite = StoreConfig::Sqlite("/var/lib/p/db.sqlite".into());
        assert_eq!(
            cfg.journal_dir_for(&sqlite),
            std::path::Path::new("/var/lib/p/db.sqlite.usage-journal")
        );
        let pg = StoreConfig::Postgres("postgres://x".to_owned().into());
        assert_eq!(
            cfg.journal_dir_for(&pg),
            std::path::Path::new("portcullis-usage-journal")
        );
    }
}

//! The Redis a test runs against, shared by the limiter's suite and the ledger's (which
//! includes this file through `#[path]`): where it is, whether it answers (or why the test is
//! skipped), and a config under a key prefix of the test's own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_limits::{FailurePolicy, RedisLimiterConfig};

const URL_VAR: &str = "PORTCULLIS_TEST_REDIS_URL";
const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
const REQUIRE_VAR: &str = "PORTCULLIS_TEST_SERVICES";

pub fn redis_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// The `host:port` of a `redis://[user:pass@]host:port[/db]` URL: what a proxy forwards to.
pub fn upstream_of(url: &str) -> String {
    let upstream = url.trim_start_matches("redis://");
    let upstream = upstream.split('/').next().unwrap_or(upstream);
    upstream.rsplit('@').next().unwrap_or(upstream).to_owned()
}

/// A key prefix no other test (or earlier run) uses.
pub fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("portcullis-test:{}:{nanos:x}:{n}:", std::process::id())
}

/// A Redis config for tests: a unique prefix, a timeout generous enough for a loaded machine
/// (`redis_only` exercises the timeout itself), and a short lease: a reservation dropped as a
/// test ends is released by a task the ending runtime may never run, and its slot should not
/// sit in Redis for the default quarter of an hour.
pub fn redis_config(url: String, policy: FailurePolicy) -> RedisLimiterConfig {
    let mut config = RedisLimiterConfig::new(url, policy);
    config.prefix = unique_prefix();
    config.timeout = Duration::from_secs(2);
    config.lease = Duration::from_secs(10);
    config
}

/// Whether Redis answers; `false` (after saying why) when it does not and is not required.
pub async fn redis_available() -> bool {
    let ping = async {
        let client = ::redis::Client::open(redis_url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    let outcome = tokio::time::timeout(Duration::from_secs(2), ping).await;
    let why = match outcome {
        Ok(Ok(_)) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2s".to_owned(),
    };
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "require");
    if required {
        panic!("Redis is required ({REQUIRE_VAR}=require) but unreachable ({URL_VAR}): {why}");
    }
    eprintln!("skipping: Redis unreachable ({URL_VAR}): {why}");
    false
}

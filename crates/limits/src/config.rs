//! The limiter's configuration as plain serde types, for the gateway's config to embed: the
//! rules of one scope ([`LimitRules`]) and the backend ([`LimiterConfig`]), and [`build`],
//! which turns the latter into a limiter.
//!
//! ```yaml
//! backend: memory
//! # or
//! backend: redis
//! url: redis://127.0.0.1:6379
//! prefix: "portcullis:limits:"   # optional
//! timeout: 5ms                    # optional
//! lease: 15m                      # optional
//! on_unavailable: fail_open       # or fail_closed
//! ```
//!
//! The backend is an internally tagged enum (`backend:`) rather than a YAML singleton map
//! (`redis: {...}`): serde_yaml_ng reads externally tagged enums only as YAML tags (`!redis`),
//! and an untagged form would lose the error messages that name the bad field.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{LimitError, MemoryLimiter, RateLimiter, RedisLimiter};

pub use portcullis_types::LimitRules;

/// Which backend keeps the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum LimiterConfig {
    /// In this process: limits are per replica.
    #[default]
    Memory,
    /// In Redis: replicas share limits.
    Redis(RedisLimiterConfig),
}

/// The Redis backend's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisLimiterConfig {
    /// `redis://[:password@]host:port[/db]` (or `rediss://`).
    pub url: String,
    /// Prepended to every key, so several gateways (or tests) can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long a reservation or settle may wait for Redis before the failure policy applies.
    #[serde(default = "default_timeout", with = "humantime_duration")]
    pub timeout: Duration,
    /// How long a concurrency slot is held at most if its replica dies before releasing it.
    /// Longer than the longest request (streams included), or a slot is freed early.
    #[serde(default = "default_lease", with = "humantime_duration")]
    pub lease: Duration,
    /// What a reservation does when Redis cannot be reached.
    pub on_unavailable: FailurePolicy,
}

impl RedisLimiterConfig {
    /// The settings for `url` with every default and `policy`.
    pub fn new(url: impl Into<String>, policy: FailurePolicy) -> Self {
        Self {
            url: url.into(),
            prefix: default_prefix(),
            timeout: default_timeout(),
            lease: default_lease(),
            on_unavailable: policy,
        }
    }
}

/// What a reservation does when the shared backend cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Admit without limits, warn once per outage and count each such admission.
    FailOpen,
    /// Refuse with [`LimitError::Unavailable`] (a 503).
    FailClosed,
}

fn default_prefix() -> String {
    "portcullis:limits:".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_millis(5)
}

fn default_lease() -> Duration {
    Duration::from_secs(15 * 60)
}

/// Builds the configured limiter. Redis connects lazily: a gateway starts while Redis is down
/// and applies its failure policy until Redis answers.
pub fn build(config: &LimiterConfig) -> Result<Arc<dyn RateLimiter>, LimitError> {
    Ok(match config {
        LimiterConfig::Memory => Arc::new(MemoryLimiter::new()),
        LimiterConfig::Redis(redis) => Arc::new(RedisLimiter::new(redis)?),
    })
}

/// `5ms`, `2s`, `15m` durations, as everywhere in the gateway's config.
mod humantime_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_backends_with_defaults() {
        let memory: LimiterConfig = serde_yaml_ng::from_str("backend: memory").unwrap();
        assert_eq!(memory, LimiterConfig::Memory);
        let yaml =
            "{backend: redis, url: 'redis://h:6379', timeout: 5ms, on_unavailable: fail_closed}";
        let LimiterConfig::Redis(redis) = serde_yaml_ng::from_str(yaml).unwrap() else {
            unreachable!("parsed as redis")
        };
        assert_eq!(redis.timeout, Duration::from_millis(5));
        assert_eq!(redis.prefix, "portcullis:limits:");
        assert_eq!(redis.lease, Duration::from_secs(900));
        assert_eq!(redis.on_unavailable, FailurePolicy::FailClosed);
    }

    #[tokio::test]
    async fn builds_each_backend_and_names_a_bad_url() {
        assert!(build(&LimiterConfig::Memory).is_ok());
        let redis = RedisLimiterConfig::new("redis://127.0.0.1:1", FailurePolicy::FailOpen);
        // Lazy: builds while nothing listens there.
        assert!(build(&LimiterConfig::Redis(redis)).is_ok());
        let bad = RedisLimiterConfig::new("http://not-redis", FailurePolicy::FailOpen);
        let err = build(&LimiterConfig::Redis(bad)).err().unwrap();
        assert!(matches!(err, LimitError::Config(_)), "{err}");
    }

    #[test]
    fn redis_needs_a_runtime() {
        let redis = RedisLimiterConfig::new("redis://127.0.0.1:6379", FailurePolicy::FailOpen);
        let err = build(&LimiterConfig::Redis(redis)).err().unwrap();
        assert!(matches!(err, LimitError::Config(_)), "{err}");
    }

    #[test]
    fn rules_reject_unknown_fields_and_keep_absent_ones_absent() {
        let rules: LimitRules = serde_yaml_ng::from_str("{rpm: 60, tpm: 1000}").unwrap();
        assert_eq!(rules.max_concurrent, None);
        assert_eq!(rules.rpm, Some(60));
        assert!(serde_yaml_ng::from_str::<LimitRules>("{rpn: 60}").is_err());
        let missing_policy = "{backend: redis, url: 'redis://x'}";
        let unknown = "{backend: redis, url: 'redis://x', on_unavailable: fail_open, tls: 1}";
        assert!(serde_yaml_ng::from_str::<LimiterConfig>(unknown).is_err());
        assert!(serde_yaml_ng::from_str::<LimiterConfig>(missing_policy).is_err());
    }
}

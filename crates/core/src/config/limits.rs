//! The `limits:` and `budgets:` blocks, and the quotas of config keys and models: what stage
//! `admit` ([`crate::admit`]) enforces besides the quotas the store keeps for its organizations,
//! teams, users and keys.
//!
//! ```yaml
//! auth:
//!   keys:
//!     - name: ci
//!       sha256: ...
//!       limits: {rpm: 60, tpm: 200000, max_concurrent: 4}
//!       budgets: [{max_usd: 20, period: daily, alerts: [50, 80]}]
//! models:
//!   gpt-4o:
//!     deployments: [...]
//!     limits: {rpm: 5000}             # every caller of this model together
//! limits:
//!   backend: redis                    # memory (the default): limits per process
//!   redis:                            # with backend: redis
//!     url: redis://127.0.0.1:6379
//!     on_unavailable: fail_open       # or fail_closed
//!     timeout: 5ms                    # optional, as prefix and lease
//!   default_max_tokens: 4096          # output reserved when a request names no maximum
//!   rules:                            # limits on a scope or a combination of scopes
//!     - match: {team: 018f..., model: gpt-4o}
//!       rpm: 100
//!       tpm: 100000
//! budgets:
//!   stream_overrun: finish            # or cut
//!   webhook: https://alerts.example.com/portcullis
//!   rules:
//!     - match: {org: 018f...}
//!       max_usd: 1000
//!       period: monthly
//!       alerts: [50, 80, 100]
//! ```
//!
//! The backend is read once at start (a change needs a restart); rules and quotas are reloaded
//! with the rest of the file.

use portcullis_limits::LimiterConfig;
use portcullis_types::{BudgetSpec, LimitRules};
use serde::Deserialize;

/// Output tokens reserved for a request that names no maximum, unless configured.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The `limits:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub backend: Option<String>,
    pub redis: Option<RawRedisLimits>,
    pub default_max_tokens: Option<u64>,
    #[serde(default)]
    pub rules: Vec<RawLimitRule>,
}

/// `limits.redis`: the shared backend's settings (also used by budgets' counters).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedisLimits {
    pub url: Option<String>,
    pub prefix: Option<String>,
    pub timeout: Option<String>,
    pub lease: Option<String>,
    pub on_unavailable: Option<String>,
}

/// One entry of `limits.rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimitRule {
    #[serde(rename = "match")]
    pub scope: Scope,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
}

/// The `budgets:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgets {
    pub stream_overrun: Option<String>,
    pub webhook: Option<String>,
    #[serde(default)]
    pub rules: Vec<RawBudgetRule>,
}

/// One entry of `budgets.rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgetRule {
    #[serde(rename = "match")]
    pub scope: Scope,
    pub max_usd: f64,
    pub period: portcullis_types::BudgetPeriod,
    #[serde(default)]
    pub alerts: Vec<u8>,
    pub hard: Option<bool>,
}

/// What a rule applies to: every request whose principal and model match all the fields given.
/// `key` is a key's name (config keys) or id (stored keys); `user`, `team` and `org` are store
/// ids (or, for OIDC tokens, the team and organization the token claims); `model` is the model
/// name the client asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub key: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub org: Option<String>,
    pub model: Option<String>,
}

impl Scope {
    /// The counter name of this scope: its fields in a fixed order, `team:<id>|model:<name>`.
    pub fn name(&self) -> String {
        let parts = [
            ("key", &self.key),
            ("user", &self.user),
            ("team", &self.team),
            ("org", &self.org),
            ("model", &self.model),
        ];
        let mut out = String::new();
        for (dim, value) in parts {
            if let Some(v) = value {
                if !out.is_empty() {
                    out.push('|');
                }
                out.push_str(dim);
                out.push(':');
                out.push_str(v);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.user.is_none()
            && self.team.is_none()
            && self.org.is_none()
            && self.model.is_none()
    }
}

/// What a stream does when it costs more than it reserved and a hard budget has nothing left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamOverrun {
    /// Let it finish; the budget ends the period over its limit by that much.
    #[default]
    Finish,
    /// End it with an error event (`budget_exceeded`).
    Cut,
}

/// The validated `limits:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Where counters live (read at start only).
    pub backend: LimiterConfig,
    pub default_max_tokens: u64,
    /// Rules with their counter names (`rule:<scope name>`).
    pub rules: Vec<ScopedLimit>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            backend: LimiterConfig::Memory,
            default_max_tokens: DEFAULT_MAX_TOKENS,
            rules: Vec::new(),
        }
    }
}

/// A `limits.rules` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedLimit {
    pub scope: Scope,
    pub rules: LimitRules,
}

/// The validated `budgets:` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetsConfig {
    pub stream_overrun: StreamOverrun,
    /// Where soft alerts are POSTed, if anywhere.
    pub webhook: Option<String>,
    pub rules: Vec<ScopedBudget>,
}

/// A `budgets.rules` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopedBudget {
    pub scope: Scope,
    pub budget: BudgetSpec,
}

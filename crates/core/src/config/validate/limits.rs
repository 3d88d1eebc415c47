//! Validation of `limits:`, `budgets:` and the quotas of keys and models (see
//! [`crate::config::limits`]): zero limits, bad budgets, unknown backends, rules without a
//! scope, and two rules for the same scope are each reported with their path.

use std::collections::HashSet;

use portcullis_limits::{FailurePolicy, LimiterConfig, RedisLimiterConfig};
use portcullis_types::limits::validate_budgets;
use portcullis_types::{BudgetSpec, LimitRules};

use super::super::limits::{
    BudgetsConfig, LimitsConfig, RawBudgets, RawLimits, RawRedisLimits, ScopedBudget, ScopedLimit,
    StreamOverrun,
};
use super::Validator;

impl Validator<'_> {
    pub(super) fn limits(&mut self, raw: RawLimits) -> LimitsConfig {
        let mut cfg = LimitsConfig {
            backend: self.limits_backend(raw.backend.as_deref(), raw.redis),
            ..LimitsConfig::default()
        };
        if let Some(n) = raw.default_max_tokens {
            if n == 0 {
                self.problem("limits.default_max_tokens", "must be at least 1");
            }
            cfg.default_max_tokens = n;
        }
        let mut scopes = HashSet::new();
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let path = format!("limits.rules[{i}]");
            if rule.scope.is_empty() {
                self.problem(
                    format!("{path}.match"),
                    "must name at least one of key, user, team, org, model",
                );
            } else if !scopes.insert(rule.scope.clone()) {
                self.problem(format!("{path}.match"), "a second rule for the same scope");
            }
            let rules = LimitRules {
                rpm: rule.rpm,
                tpm: rule.tpm,
                max_concurrent: rule.max_concurrent,
            };
            self.limit_rules(&path, &rules);
            if rules.is_empty() {
                self.problem(&path, "sets no limit: give rpm, tpm or max_concurrent");
            }
            cfg.rules.push(ScopedLimit {
                scope: rule.scope,
                rules,
            });
        }
        cfg
    }

    fn limits_backend(
        &mut self,
        backend: Option<&str>,
        redis: Option<RawRedisLimits>,
    ) -> LimiterConfig {
        match backend {
            None | Some("memory") => {
                if redis.is_some() {
                    self.problem("limits.redis", "is only read with `backend: redis`");
                }
                LimiterConfig::Memory
            }
            Some("redis") => {
                let Some(raw) = redis else {
                    self.problem(
                        "limits.redis",
                        "is required with `backend: redis` (url, on_unavailable)",
                    );
                    return LimiterConfig::Memory;
                };
                self.redis_limits(raw)
            }
            Some(other) => {
                self.problem(
                    "limits.backend",
                    format!("'{other}' is not a backend: memory or redis"),
                );
                LimiterConfig::Memory
            }
        }
    }

    fn redis_limits(&mut self, raw: RawRedisLimits) -> LimiterConfig {
        let url = raw.url.unwrap_or_default();
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            self.problem("limits.redis.url", "must be a redis:// or rediss:// URL");
        }
        let policy = match raw.on_unavailable.as_deref() {
            Some("fail_open") => FailurePolicy::FailOpen,
            Some("fail_closed") => FailurePolicy::FailClosed,
            Some(other) => {
                self.problem(
                    "limits.redis.on_unavailable",
                    format!("'{other}' is not a policy: fail_open or fail_closed"),
                );
                FailurePolicy::FailOpen
            }
            None => {
                self.problem(
                    "limits.redis.on_unavailable",
                    "is required: fail_open (admit without limits while Redis is unreachable) or fail_closed (refuse with 503)",
                );
                FailurePolicy::FailOpen
            }
        };
        let mut cfg = RedisLimiterConfig::new(url, policy);
        if let Some(prefix) = raw.prefix {
            cfg.prefix = prefix;
        }
        if let Some(d) = self.duration("limits.redis.timeout", raw.timeout.as_deref()) {
            if d.is_zero() {
                self.problem("limits.redis.timeout", "must be more than zero");
            }
            cfg.timeout = d;
        }
        if let Some(d) = self.duration("limits.redis.lease", raw.lease.as_deref()) {
            if d.is_zero() {
                self.problem("limits.redis.lease", "must be more than zero");
            }
            cfg.lease = d;
        }
        LimiterConfig::Redis(cfg)
    }

    pub(super) fn budgets(&mut self, raw: RawBudgets) -> BudgetsConfig {
        let mut cfg = BudgetsConfig::default();
        match raw.stream_overrun.as_deref() {
            None | Some("finish") => {}
            Some("cut") => cfg.stream_overrun = StreamOverrun::Cut,
            Some(other) => self.problem(
                "budgets.stream_overrun",
                format!("'{other}' is not a policy: finish or cut"),
            ),
        }
        if let Some(url) = raw.webhook {
            if url.starts_with("http://") || url.starts_with("https://") {
                cfg.webhook = Some(url);
            } else {
                self.problem("budgets.webhook", "must be an http:// or https:// URL");
            }
        }
        let mut scopes = HashSet::new();
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let path = format!("budgets.rules[{i}]");
            let budget = BudgetSpec {
                max_usd: rule.max_usd,
                period: rule.period,
                alerts: rule.alerts,
                hard: rule.hard.unwrap_or(true),
            };
            if rule.scope.is_empty() {
                self.problem(
                    format!("{path}.match"),
                    "must name at least one of key, user, team, org, model",
                );
            } else if !scopes.insert((rule.scope.clone(), budget.period)) {
                self.problem(
                    format!("{path}.match"),
                    format!("a second {} budget for the same scope", budget.period),
                );
            }
            if let Err(e) = budget.validate() {
                self.problem(&path, e);
            }
            cfg.rules.push(ScopedBudget {
                scope: rule.scope,
                budget,
            });
        }
        cfg
    }

    /// Rate limits at `path` (a key's, a model's or a rule's).
    pub(super) fn limit_rules(&mut self, path: &str, rules: &LimitRules) {
        if let Err(e) = rules.validate() {
            self.problem(path, e);
        }
    }

    /// Budgets at `path` (a key's).
    pub(super) fn budget_list(&mut self, path: &str, budgets: &[BudgetSpec]) {
        if let Err(e) = validate_budgets(budgets) {
            self.problem(format!("{path}.budgets"), e);
        }
    }
}

//! Validation of a model's resilience settings: `retries`, `hedge`, `health.active` and the
//! fallback lists (which must name other configured models), each problem with its path.

use std::collections::BTreeMap;

use super::super::raw::{RawActiveHealth, RawHedge, RawRetries};
use super::super::{Fallbacks, ModelConfig};
use super::Validator;
use crate::routing::active::ActiveHealth;
use crate::routing::hedge::{HedgePolicy, parse_after};
use crate::routing::retry::RetryPolicy;

impl Validator<'_> {
    pub(super) fn retries(&mut self, path: &str, raw: RawRetries) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        if let Some(max) = raw.max {
            if max > 10 {
                self.problem(
                    format!("{path}.max"),
                    "at most 10 retry rounds (each one is another pass over every deployment)",
                );
            }
            policy.max = max;
        }
        let mut positive = |field: &str, value: Option<&str>, slot: &mut std::time::Duration| {
            let p = format!("{path}.{field}");
            if let Some(d) = self.duration(&p, value) {
                if d.is_zero() {
                    self.problem(p, "must be greater than 0");
                } else {
                    *slot = d;
                }
            }
        };
        positive("backoff", raw.backoff.as_deref(), &mut policy.backoff);
        positive(
            "max_backoff",
            raw.max_backoff.as_deref(),
            &mut policy.max_backoff,
        );
        positive("max_wait", raw.max_wait.as_deref(), &mut policy.max_wait);
        if policy.max_backoff < policy.backoff {
            self.problem(
                format!("{path}.max_backoff"),
                "must be at least backoff (100ms unless set)",
            );
        }
        if let Some(share) = raw.budget {
            if !(share > 0.0 && share <= 1.0) {
                self.problem(
                    format!("{path}.budget"),
                    "must be a share above 0 and at most 1 (0.2: retries up to a fifth of requests)",
                );
            }
            policy.budget = share;
        }
        if let Some(n) = raw.budget_min_per_second {
            policy.budget_min_per_second = n;
        }
        policy
    }

    pub(super) fn hedge(&mut self, path: &str, raw: RawHedge) -> Option<HedgePolicy> {
        let Some(after) = raw.after else {
            self.problem(
                format!("{path}.after"),
                "missing: when to send the second request, a percentile (p95) or a duration (300ms)",
            );
            return None;
        };
        match parse_after(&after) {
            Ok(after) => Some(HedgePolicy { after }),
            Err(message) => {
                self.problem(format!("{path}.after"), message);
                None
            }
        }
    }

    pub(super) fn active_health(&mut self, path: &str, raw: RawActiveHealth) -> ActiveHealth {
        let mut active = ActiveHealth::default();
        let interval = format!("{path}.interval");
        if let Some(d) = self.duration(&interval, raw.interval.as_deref()) {
            if d < std::time::Duration::from_secs(1) {
                self.problem(
                    interval,
                    "must be at least 1s (each check is a billed request)",
                );
            }
            active.interval = d;
        }
        let timeout = format!("{path}.timeout");
        if let Some(d) = self.duration(&timeout, raw.timeout.as_deref()) {
            if d.is_zero() {
                self.problem(timeout.clone(), "must be greater than 0");
            }
            active.timeout = d;
        }
        if active.timeout > active.interval {
            self.problem(timeout, "must be at most the interval");
        }
        active
    }

    /// Every fallback must name another configured model.
    pub(super) fn fallbacks_exist(&mut self, models: &BTreeMap<String, ModelConfig>) {
        for (name, model) in models {
            let Fallbacks {
                any,
                context_window,
                content_policy,
            } = &model.fallbacks;
            let lists = [
                ("fallbacks", any),
                ("context_window_fallbacks", context_window),
                ("content_policy_fallbacks", content_policy),
            ];
            for (field, list) in lists {
                for (i, target) in list.iter().enumerate() {
                    let path = format!("models.{name}.{field}[{i}]");
                    if target == name {
                        self.problem(path, "a model cannot fall back to itself");
                    } else if !models.contains_key(target) {
                        self.problem(path, format!("no model named '{target}' is configured"));
                    }
                }
            }
        }
    }
}

//! Passive health of one deployment (outlier ejection), fed by the outcomes dispatch sees and
//! read by dispatch to skip deployments that are failing.
//!
//! - **Ejection.** [`HealthPolicy::consecutive_failures`] failures in a row, or an error rate of
//!   at least [`HealthPolicy::error_rate`] over the last [`HealthPolicy::window`] outcomes (once
//!   the window is full), eject the deployment for a cool-down.
//! - **Cool-down.** [`HealthPolicy::base_cooldown`] doubled for each ejection in a row, at most
//!   [`HealthPolicy::max_cooldown`].
//! - **Half-open.** When the cool-down ends, one request is let through as a probe: a success
//!   makes the deployment healthy again (and resets the doubling), a failure ejects it again
//!   for twice as long. Other requests keep skipping it while the probe is out.
//!
//! - **Deferral.** An upstream that answers with `Retry-After` (a 429 or 503 saying when to come
//!   back) is skipped until then, like an ejected one but without counting a failure
//!   ([`Health::defer`]; at most [`HealthPolicy::max_cooldown`]).
//!
//! What counts as a failure is the deployment's fault: it could not be reached, timed out,
//! answered 5xx or overloaded, or broke its stream. A 429 is not (the deployment is healthy but
//! busy; retries move on without marking it), nor is a request it rightly rejected.
//!
//! Time is tokio's clock, so tests drive cool-downs with paused time. One small mutex per
//! deployment, held for a few instructions and never across an await.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::provider::ProviderError;

/// When a deployment is ejected and for how long (`models.<name>.health`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    pub consecutive_failures: u32,
    pub error_rate: f64,
    /// Outcomes the error rate is taken over; 0 turns the rate off.
    pub window: u32,
    pub base_cooldown: Duration,
    pub max_cooldown: Duration,
    /// When every deployment is ejected: try the one whose cool-down ends first (`true`, the
    /// default) or fail at once with the last error.
    pub least_bad_when_all_ejected: bool,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_rate: 0.5,
            window: 20,
            base_cooldown: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(300),
            least_bad_when_all_ejected: true,
        }
    }
}

/// Whether a request may go to a deployment now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Healthy,
    /// Its cool-down is over and this request is its probe.
    Probe,
    /// Ejected until then (or probing: until the probe answers).
    Ejected {
        until: Instant,
    },
}

#[derive(Debug)]
enum State {
    Healthy,
    Ejected {
        until: Instant,
    },
    /// A probe is out since then. A probe whose request was dropped never answers: after
    /// `max_cooldown` another one is let through.
    Probing {
        since: Instant,
    },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive: u32,
    /// The last outcomes, `true` for a failure, as a ring.
    recent: Vec<bool>,
    next: usize,
    /// Ejections in a row (doubles the cool-down).
    ejections: u32,
    /// Skipped until then because the upstream said so (`Retry-After`).
    deferred_until: Option<Instant>,
}

/// One deployment's health.
#[derive(Debug)]
pub struct Health {
    policy: HealthPolicy,
    inner: Mutex<Inner>,
}

impl Health {
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    pub fn new(policy: HealthPolicy) -> Self {
        Self {
            policy,
            inner: Mutex::new(Inner {
                state: State::Healthy,
                consecutive: 0,
                recent: Vec::with_capacity(policy.window as usize),
                next: 0,
                ejections: 0,
                deferred_until: None,
            }),
        }
    }

    /// Whether a request may go there now; the first request after a cool-down becomes the
    /// probe (so call this only for a request that will then be sent).
    pub fn check(&self) -> Availability {
        let Ok(mut inner) = self.inner.lock() else {
            return Availability::Healthy;
        };
        match inner.state {
            State::Healthy => match inner.deferred_until {
                Some(until) if Instant::now() < until => Availability::Ejected { until },
                Some(_) => {
                    inner.deferred_until = None;
                    Availability::Healthy
                }
                None => Availability::Healthy,
            },
            State::Probing { since } if since.elapsed() < self.policy.max_cooldown => {
                Availability::Ejected {
                    until: since + self.policy.max_cooldown,
                }
            }
            State::Probing { .. } => {
                inner.state = State::Probing {
                    since: Instant::now(),
                };
                Availability::Probe
            }
            State::Ejected { until } if Instant::now() >= until => {
                inner.state = State::Probing {
                    since: Instant::now(),
                };
                Availability::Probe
            }
            State::Ejected { until } => Availability::Ejected { until },
        }
    }

    /// Whether it is healthy and not deferred, without taking a probe's turn (for choosing
    /// where a hedge may go).
    pub fn is_healthy(&self) -> bool {
        self.inner.lock().is_ok_and(|inner| {
            matches!(inner.state, State::Healthy)
                && inner
                    .deferred_until
                    .is_none_or(|until| Instant::now() >= until)
        })
    }

    /// Skips the deployment for `wait` (at most the policy's longest cool-down), as its
    /// upstream asked with `Retry-After`. A later deferral never shortens an earlier one.
    pub fn defer(&self, wait: Duration) {
        let until = Instant::now() + wait.min(self.policy.max_cooldown);
        if let Ok(mut inner) = self.inner.lock() {
            inner.deferred_until = Some(inner.deferred_until.map_or(until, |d| d.max(until)));
        }
    }

    /// Records how a request sent there ended; the cool-down when this ejected it.
    pub fn record(&self, outcome: Result<(), &ProviderError>) -> Option<Duration> {
        let failed = outcome.is_err_and(is_deployment_fault);
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        let inner = &mut *inner;
        if matches!(inner.state, State::Probing { .. }) {
            if failed {
                return Some(self.eject(inner));
            } else {
                inner.state = State::Healthy;
                inner.ejections = 0;
                inner.consecutive = 0;
                inner.recent.clear();
                inner.next = 0;
            }
            return None;
        }
        if !matches!(inner.state, State::Healthy) {
            // An answer from a request sent before the ejection: the verdict stands.
            return None;
        }
        inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
        let window = self.policy.window as usize;
        if window > 0 {
            if inner.recent.len() < window {
                inner.recent.push(failed);
            } else {
                inner.recent[inner.next] = failed;
            }
            inner.next = (inner.next + 1) % window;
        }
        let failures = inner.recent.iter().filter(|f| **f).count();
        let rate_tripped = window > 0
            && inner.recent.len() == window
            && failures as f64 >= self.policy.error_rate * window as f64;
        if failed && (inner.consecutive >= self.policy.consecutive_failures || rate_tripped) {
            return Some(self.eject(inner));
        }
        None
    }

    fn eject(&self, inner: &mut Inner) -> Duration {
        let doubling = 2u32.saturating_pow(inner.ejections.min(16));
        let cooldown = self
            .policy
            .base_cooldown
            .saturating_mul(doubling)
            .min(self.policy.max_cooldown);
        inner.state = State::Ejected {
            until: Instant::now() + cooldown,
        };
        inner.ejections = inner.ejections.saturating_add(1);
        inner.consecutive = 0;
        inner.recent.clear();
        inner.next = 0;
        cooldown
    }
}

/// Whether `e` says the deployment is unwell (rather than busy, or the request bad).
fn is_deployment_fault(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Connect(_)
            | ProviderError::Timeout
            | ProviderError::FirstByteTimeout
            | ProviderError::StreamIdle
            | ProviderError::Overloaded { .. }
            | ProviderError::Server { .. }
            | ProviderError::InvalidResponse(_)
            | ProviderError::StreamBroken(_)
            | ProviderError::Unauthorized { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boom() -> ProviderError {
        ProviderError::Server {
            status: 502,
            message: None,
        }
    }

    fn fail(h: &Health, n: u32) {
        for _ in 0..n {
            let _ = h.record(Err(&boom()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_then_a_probe_decides() {
        let h = Health::new(HealthPolicy::default());
        fail(&h, 4);
        assert_eq!(h.check(), Availability::Healthy);
        fail(&h, 1);
        let Availability::Ejected { until } = h.check() else {
            panic!("ejected after 5 failures")
        };
        assert_eq!(until - Instant::now(), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(5)).await;
        // The first request after the cool-down is the probe; others keep skipping.
        assert_eq!(h.check(), Availability::Probe);
        assert!(matches!(h.check(), Availability::Ejected { .. }));
        // The probe fails: ejected for twice as long.
        fail(&h, 1);
        let Availability::Ejected { until } = h.check() else {
            panic!("ejected again")
        };
        assert_eq!(until - Instant::now(), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(h.check(), Availability::Probe);
        let _ = h.record(Ok(()));
        assert_eq!(h.check(), Availability::Healthy);
        // Healthy again: the doubling starts over.
        fail(&h, 5);
        let Availability::Ejected { until } = h.check() else {
            panic!("ejected")
        };
        assert_eq!(until - Instant::now(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_rate_over_the_window_ejects_and_cool_downs_are_capped() {
        let policy = HealthPolicy {
            consecutive_failures: 100,
            max_cooldown: Duration::from_secs(12),
            ..HealthPolicy::default()
        };
        let h = Health::new(policy);
        // Alternating: never 2 in a row, but half the window fails once it is full.
        for _ in 0..9 {
            let _ = h.record(Ok(()));
            let _ = h.record(Err(&boom()));
        }
        assert_eq!(
            h.check(),
            Availability::Healthy,
            "the window is not full yet"
        );
        let _ = h.record(Ok(()));
        let _ = h.record(Err(&boom()));
        assert!(matches!(h.check(), Availability::Ejected { .. }));
        // Failed probes double 5 → 10 → 12 (the cap).
        for expected in [10, 12, 12] {
            tokio::time::advance(Duration::from_secs(12)).await;
            assert_eq!(h.check(), Availability::Probe);
            fail(&h, 1);
            let Availability::Ejected { until } = h.check() else {
                panic!("ejected")
            };
            assert_eq!(until - Instant::now(), Duration::from_secs(expected));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_defers_without_counting_a_failure() {
        let h = Health::new(HealthPolicy::default());
        h.defer(Duration::from_secs(3));
        h.defer(Duration::from_secs(1)); // never shortens
        let Availability::Ejected { until } = h.check() else {
            panic!("deferred")
        };
        assert_eq!(until - Instant::now(), Duration::from_secs(3));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(h.check(), Availability::Healthy, "no probe: nothing failed");
        h.defer(Duration::from_secs(3600));
        let Availability::Ejected { until } = h.check() else {
            panic!("deferred")
        };
        assert_eq!(
            until - Instant::now(),
            Duration::from_secs(300),
            "capped at max_cooldown"
        );
    }

    #[test]
    fn busy_or_rejected_is_not_unwell() {
        let h = Health::new(HealthPolicy::default());
        for _ in 0..50 {
            let _ = h.record(Err(&ProviderError::RateLimited {
                message: None,
                retry_after: None,
            }));
            let _ = h.record(Err(&ProviderError::BadRequest {
                status: 400,
                message: None,
            }));
        }
        assert_eq!(h.check(), Availability::Healthy);
    }
}

#[cfg(test)]
mod config_tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::HashMap;

    use crate::config::Config;

    #[test]
    fn health_settings_are_validated_with_their_paths() {
        let yaml = "providers: { a: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: a }]\n    health: { consecutive_failures: 0, error_rate: 1.5, base_cooldown: 10s, max_cooldown: 1s, when_all_ejected: panic }\n";
        let problems = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        for path in [
            "models.m.health.consecutive_failures",
            "models.m.health.error_rate",
            "models.m.health.max_cooldown",
            "models.m.health.when_all_ejected",
        ] {
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        let ok = "providers: { a: { type: mock } }\nmodels: { m: { deployments: [{ provider: a }], health: { window: 0, when_all_ejected: fail } } }\n";
        let config = Config::from_yaml(ok, &HashMap::<String, String>::new()).unwrap();
        let health = config.models["m"].health;
        assert_eq!(
            (health.window, health.least_bad_when_all_ejected),
            (0, false)
        );
    }
}

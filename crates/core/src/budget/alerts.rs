//! Soft budget alerts: when a budget's counter moves from below one of its thresholds to at or
//! above it, the gateway logs a warning (target `portcullis::budget`), counts it in the metric
//! `portcullis_budget_alerts_total{period, threshold}`, and POSTs a JSON event to
//! `budgets.webhook` when one is configured.
//!
//! Each (counter, threshold) fires once per process: a counter's name carries its window
//! (`team:<id>:monthly:2026-11`), so a new period fires again. Replicas sharing Redis each see
//! the move their own request made, so a crossing is seen by exactly one of them, unless a
//! refund takes a counter back below a threshold and another request crosses it again.
//! The webhook is best effort: one attempt with a timeout, off the request path, a failure
//! logged.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use portcullis_limits::Spend;
use portcullis_types::BudgetSpec;
use serde_json::json;

use super::Budget;
use crate::pricing::Money;
use crate::provider::client::HttpClient;

/// How long a webhook delivery may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Fired (counter, threshold) pairs remembered before the set is cleared.
const MAX_REMEMBERED: usize = 100_000;

/// The alerting side of budgets.
#[derive(Debug, Default)]
pub struct BudgetAlerts {
    fired: Mutex<HashSet<(String, u8)>>,
    /// For the webhook; without it, webhooks are not sent.
    http: Option<HttpClient>,
}

/// One alert, as logged and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert<'a> {
    pub scope: &'a str,
    pub counter: &'a str,
    pub threshold: u8,
    pub spent: Money,
    pub limit: Money,
    pub period: &'static str,
}

impl BudgetAlerts {
    pub fn new(http: Option<HttpClient>) -> Self {
        Self {
            fired: Mutex::new(HashSet::new()),
            http,
        }
    }

    /// Checks the thresholds of `budget` that `spend` crossed; returns how many fired.
    pub fn observe(
        &self,
        scope: &str,
        counter: &str,
        budget: &BudgetSpec,
        spend: Spend,
        webhook: Option<&str>,
    ) -> usize {
        if budget.alerts.is_empty() || spend.after <= spend.before {
            return 0;
        }
        let rules = Budget {
            limit: Money(budget.max_nanos()),
            period: budget.period,
            alerts: budget.alerts.clone(),
        };
        let mut fired = 0;
        for threshold in rules.crossed(Money(spend.before), Money(spend.after)) {
            let first = self
                .fired
                .lock()
                .map(|mut set| {
                    if set.len() >= MAX_REMEMBERED {
                        set.clear();
                    }
                    set.insert((counter.to_owned(), threshold))
                })
                .unwrap_or(true);
            if !first {
                continue;
            }
            fired += 1;
            let alert = Alert {
                scope,
                counter,
                threshold,
                spent: Money(spend.after),
                limit: rules.limit,
                period: budget.period.as_str(),
            };
            self.raise(&alert, webhook);
        }
        fired
    }

    fn raise(&self, alert: &Alert<'_>, webhook: Option<&str>) {
        tracing::warn!(
            target: "portcullis::budget",
            scope = alert.scope,
            period = alert.period,
            threshold_percent = alert.threshold,
            spent = %alert.spent,
            limit = %alert.limit,
            "budget alert"
        );
        metrics::counter!(
            "portcullis_budget_alerts_total",
            "period" => alert.period,
            "threshold" => alert.threshold.to_string()
        )
        .increment(1);
        if let (Some(url), Some(http)) = (webhook, &self.http) {
            send(http.clone(), url.to_owned(), event(alert));
        }
    }
}

/// The webhook's JSON body.
pub fn event(alert: &Alert<'_>) -> serde_json::Value {
    json!({
        "type": "budget_alert",
        "scope": alert.scope,
        "counter": alert.counter,
        "period": alert.period,
        "threshold_percent": alert.threshold,
        "spent_usd": usd(alert.spent),
        "max_usd": usd(alert.limit),
        "at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    })
}

/// Dollars as a decimal string with nine decimals (exact).
fn usd(m: Money) -> String {
    format!(
        "{}.{:09}",
        m.nanos() / 1_000_000_000,
        m.nanos() % 1_000_000_000
    )
}

fn send(http: HttpClient, url: String, body: serde_json::Value) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let request = http::Request::post(url.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "budget alert webhook: bad URL");
                return;
            }
        };
        match tokio::time::timeout(WEBHOOK_TIMEOUT, http.request(request)).await {
            Ok(Ok(r)) if r.status().is_success() => {}
            Ok(Ok(r)) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "budget alert webhook refused the event"
                );
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "budget alert webhook unreachable"),
            Err(_) => tracing::warn!("budget alert webhook timed out"),
        }
    });
}

#[cfg(test)]
mod tests {
    use portcullis_types::BudgetPeriod;

    use super::*;

    fn budget() -> BudgetSpec {
        BudgetSpec {
            max_usd: 1.0,
            period: BudgetPeriod::Daily,
            alerts: vec![50, 80],
            hard: true,
        }
    }

    #[test]
    fn each_threshold_fires_once_per_counter() {
        let alerts = BudgetAlerts::new(None);
        let half = 500_000_000;
        let spend = |before, after| Spend { before, after };
        assert_eq!(
            alerts.observe("team:t", "c1", &budget(), spend(0, half - 1), None),
            0
        );
        assert_eq!(
            alerts.observe("team:t", "c1", &budget(), spend(half - 1, half), None),
            1
        );
        // A refund and a second crossing do not fire again; 80% still does.
        assert_eq!(
            alerts.observe("team:t", "c1", &budget(), spend(half, half - 5), None),
            0
        );
        assert_eq!(
            alerts.observe(
                "team:t",
                "c1",
                &budget(),
                spend(half - 5, 900_000_000),
                None
            ),
            1
        );
        // Another window (counter) fires afresh.
        assert_eq!(
            alerts.observe("team:t", "c2", &budget(), spend(0, 900_000_000), None),
            2
        );
    }

    #[test]
    fn the_event_carries_exact_dollars() {
        let alert = Alert {
            scope: "org:o",
            counter: "org:o:daily:2026-11-27",
            threshold: 80,
            spent: Money(800_000_001),
            limit: Money(1_000_000_000),
            period: "daily",
        };
        let e = event(&alert);
        assert_eq!(e["spent_usd"], "0.800000001");
        assert_eq!(e["max_usd"], "1.000000000");
        assert_eq!(e["threshold_percent"], 80);
        assert_eq!(e["type"], "budget_alert");
    }
}

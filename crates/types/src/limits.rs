//! What an organization, team, user, key or model may use: rate limits ([`LimitRules`]) and
//! money budgets ([`BudgetSpec`]). One definition for every place they appear: the gateway's
//! config, the store's rows, the admin API and the limiter (`portcullis-limits`), which applies
//! them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The rate limits of one scope (a key, a user, a team, an organization, a model, or a
/// combination). An absent rule is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitRules {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt and completion), reserved as an estimate and settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
}

impl LimitRules {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }

    /// Why the rules are unusable: a zero limit (which would refuse everything; remove the key
    /// or disable it instead).
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("rpm", self.rpm),
            ("tpm", self.tpm),
            ("max_concurrent", self.max_concurrent),
        ] {
            if value == Some(0) {
                return Err(format!(
                    "{name} must be at least 1 (omit it for no limit; disable the key to refuse all)"
                ));
            }
        }
        Ok(())
    }
}

/// How often a budget starts again. Periods are calendar periods in UTC: a day from 00:00, a
/// week from Monday 00:00, a month from its first day at 00:00; `total` never resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Daily,
    Weekly,
    Monthly,
    Total,
}

impl BudgetPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
        }
    }
}

impl fmt::Display for BudgetPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The largest budget accepted, in US dollars (a billion: far above any real one, and small
/// enough that nano-dollar arithmetic cannot overflow).
pub const MAX_BUDGET_USD: f64 = 1e9;

/// A money budget: at most `max_usd` per `period`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// The most that may be spent in one period, in US dollars.
    pub max_usd: f64,
    pub period: BudgetPeriod,
    /// Percentages of the budget (1 to 100, ascending) at which a soft alert is raised once
    /// per period: an event in the log, a metric, and the webhook if one is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<u8>,
    /// Refuse requests that would exceed the budget (the default); when false the budget only
    /// raises its alerts.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub hard: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl BudgetSpec {
    /// Why the budget is unusable.
    pub fn validate(&self) -> Result<(), String> {
        if !self.max_usd.is_finite() || self.max_usd < 0.0 || self.max_usd > MAX_BUDGET_USD {
            return Err(format!(
                "max_usd must be a number from 0 to {MAX_BUDGET_USD}, not {}",
                self.max_usd
            ));
        }
        let mut last = 0;
        for &pct in &self.alerts {
            if pct == 0 || pct > 100 {
                return Err(format!("alert threshold {pct} must be 1 to 100 (percent)"));
            }
            if pct <= last {
                return Err("alert thresholds must be ascending and distinct".to_owned());
            }
            last = pct;
        }
        Ok(())
    }

    /// The budget in nano-dollars (the gateway's unit of money), rounded to the nearest.
    pub fn max_nanos(&self) -> u64 {
        // In range after `validate` (at most 1e18 nano-dollars); saturating otherwise.
        (self.max_usd * 1e9).round() as u64
    }
}

/// Validates a list of budgets: each one, and at most one per period (two budgets of one period
/// would only mean the smaller).
pub fn validate_budgets(budgets: &[BudgetSpec]) -> Result<(), String> {
    let mut seen = Vec::with_capacity(budgets.len());
    for (i, budget) in budgets.iter().enumerate() {
        budget
            .validate()
            .map_err(|e| format!("budgets[{i}]: {e}"))?;
        if seen.contains(&budget.period) {
            return Err(format!(
                "budgets[{i}]: a second {} budget (one per period)",
                budget.period
            ));
        }
        seen.push(budget.period);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn rules_reject_zero_and_unknown_fields() {
        let rules: LimitRules = serde_json::from_str(r#"{"rpm":60,"tpm":1000}"#).unwrap();
        assert_eq!((rules.rpm, rules.max_concurrent), (Some(60), None));
        assert!(rules.validate().is_ok());
        assert!(!rules.is_empty());
        assert!(LimitRules::default().is_empty());
        let zero = LimitRules {
            max_concurrent: Some(0),
            ..LimitRules::default()
        };
        assert!(zero.validate().unwrap_err().contains("max_concurrent"));
        assert!(serde_json::from_str::<LimitRules>(r#"{"rpn":60}"#).is_err());
    }

    #[test]
    fn budgets_default_to_hard_and_validate_their_fields() {
        let b: BudgetSpec =
            serde_json::from_str(r#"{"max_usd":12.5,"period":"monthly","alerts":[50,80]}"#)
                .unwrap();
        assert!(b.hard);
        assert_eq!(b.max_nanos(), 12_500_000_000);
        assert!(b.validate().is_ok());
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"max_usd":12.5,"period":"monthly","alerts":[50,80]}"#
        );
        for bad in [
            r#"{"max_usd":-1,"period":"daily"}"#,
            r#"{"max_usd":2e9,"period":"daily"}"#,
            r#"{"max_usd":1,"period":"daily","alerts":[0]}"#,
            r#"{"max_usd":1,"period":"daily","alerts":[101]}"#,
            r#"{"max_usd":1,"period":"daily","alerts":[80,50]}"#,
        ] {
            let b: BudgetSpec = serde_json::from_str(bad).unwrap();
            assert!(b.validate().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<BudgetSpec>(r#"{"max_usd":1,"period":"hourly"}"#).is_err());
        let day = BudgetSpec {
            max_usd: 1.0,
            period: BudgetPeriod::Daily,
            alerts: vec![],
            hard: false,
        };
        assert!(validate_budgets(std::slice::from_ref(&day)).is_ok());
        let err = validate_budgets(&[day.clone(), day]).unwrap_err();
        assert!(err.contains("one per period"), "{err}");
    }
}

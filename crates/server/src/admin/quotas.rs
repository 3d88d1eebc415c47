//! Quotas in the admin API: the `limits` (rate limits) and `budgets` (money budgets) that
//! organizations, teams, users and keys take on create and update, validated as they come in
//! (400 naming the field). Who may set them is decided in `scope` (`Caller::set_*_quotas`);
//! a change reaches the request path through the key table, which the handlers reload at once
//! ([`AdminState::reload_keys`](super::AdminState::reload_keys)).

use portcullis_types::limits::validate_budgets;
use portcullis_types::{BudgetSpec, LimitRules};

use super::{AdminError, Result};

/// The quotas a request sets, validated: `None` leaves the stored value as it is (and a new
/// object without them has none).
#[derive(Debug, Default, PartialEq)]
pub(super) struct QuotaFields {
    pub limits: Option<LimitRules>,
    pub budgets: Option<Vec<BudgetSpec>>,
}

impl QuotaFields {
    /// The quotas of a create body; empty ones are no quota at all (and need no right to set).
    pub fn new(limits: LimitRules, budgets: Vec<BudgetSpec>) -> Result<Self> {
        Ok(Self {
            limits: (!limits.is_empty())
                .then(|| valid_limits(limits))
                .transpose()?,
            budgets: (!budgets.is_empty())
                .then(|| valid_budgets(budgets))
                .transpose()?,
        })
    }

    /// The quotas of an update body, field by field: absent keeps the stored value, a value
    /// replaces it whole, and `null` (like `{}` or `[]`) removes it.
    pub fn change(
        limits: Option<Option<LimitRules>>,
        budgets: Option<Option<Vec<BudgetSpec>>>,
    ) -> Result<Self> {
        Ok(Self {
            limits: limits
                .map(|l| valid_limits(l.unwrap_or_default()))
                .transpose()?,
            budgets: budgets
                .map(|b| valid_budgets(b.unwrap_or_default()))
                .transpose()?,
        })
    }

    /// Whether the request sets or removes a quota, which takes the right to.
    pub fn given(&self) -> bool {
        self.limits.is_some() || self.budgets.is_some()
    }

    /// The limits to store with a new object.
    pub fn new_limits(&mut self) -> LimitRules {
        self.limits.take().unwrap_or_default()
    }

    /// The budgets to store with a new object.
    pub fn new_budgets(&mut self) -> Vec<BudgetSpec> {
        self.budgets.take().unwrap_or_default()
    }
}

/// Limits that can be enforced: no rule of zero.
fn valid_limits(rules: LimitRules) -> Result<LimitRules> {
    rules
        .validate()
        .map_err(|e| AdminError::invalid("limits", format!("limits: {e}")))?;
    Ok(rules)
}

/// Budgets that can be enforced: each valid, at most one per period.
fn valid_budgets(budgets: Vec<BudgetSpec>) -> Result<Vec<BudgetSpec>> {
    // The message already names the budget (`budgets[1]: ...`).
    validate_budgets(&budgets).map_err(|e| AdminError::invalid("budgets", e))?;
    Ok(budgets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::http::StatusCode;
    use portcullis_types::BudgetPeriod;

    use super::*;

    fn monthly(max_usd: f64) -> BudgetSpec {
        BudgetSpec {
            max_usd,
            period: BudgetPeriod::Monthly,
            alerts: vec![50],
            hard: true,
        }
    }

    #[test]
    fn creates_store_what_is_given_and_empty_is_none() {
        let rpm = LimitRules {
            rpm: Some(60),
            ..LimitRules::default()
        };
        let mut q = QuotaFields::new(rpm, vec![monthly(10.0)]).unwrap();
        assert!(q.given());
        assert_eq!(
            (q.new_limits(), q.new_budgets()),
            (rpm, vec![monthly(10.0)])
        );
        let none = QuotaFields::new(LimitRules::default(), vec![]).unwrap();
        assert_eq!(none, QuotaFields::default());
        assert!(!none.given());
    }

    #[test]
    fn updates_keep_replace_or_clear() {
        assert!(!QuotaFields::change(None, None).unwrap().given());
        let cleared = QuotaFields::change(Some(None), Some(Some(vec![]))).unwrap();
        assert_eq!(cleared.limits, Some(LimitRules::default()));
        assert_eq!(cleared.budgets, Some(vec![]));
        assert!(cleared.given());
        let set = QuotaFields::change(None, Some(Some(vec![monthly(1.5)]))).unwrap();
        assert_eq!((set.limits, set.budgets), (None, Some(vec![monthly(1.5)])));
    }

    #[test]
    fn invalid_quotas_are_400s_naming_the_field() {
        let zero = LimitRules {
            tpm: Some(0),
            ..LimitRules::default()
        };
        let e = QuotaFields::new(zero, vec![]).unwrap_err();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        assert!(
            format!("{e:?}").contains("param: Some(\"limits\")"),
            "{e:?}"
        );
        assert!(
            e.message().starts_with("limits: tpm must be at least 1"),
            "{e:?}"
        );

        let e =
            QuotaFields::change(None, Some(Some(vec![monthly(1.0), monthly(2.0)]))).unwrap_err();
        assert!(
            format!("{e:?}").contains("param: Some(\"budgets\")"),
            "{e:?}"
        );
        assert!(e.message().contains("budgets[1]"), "{e:?}");
        let e = QuotaFields::new(LimitRules::default(), vec![monthly(-1.0)]).unwrap_err();
        assert!(e.message().contains("budgets[0]: max_usd"), "{e:?}");
    }
}

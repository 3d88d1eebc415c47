//! The limits and budgets that apply to a principal, scope by scope: its key's own, and those
//! of the user, team and organization the key belongs to. Filled in when keys are loaded (the
//! config's keys, the store's key table), carried by the [`Principal`](crate::auth::Principal),
//! and read by stage `admit`, which reserves against every scope at once.

use std::sync::Arc;

use portcullis_types::{BudgetSpec, LimitRules};

/// What one scope (a key, a user, a team, an organization) may use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    pub limits: LimitRules,
    pub budgets: Arc<[BudgetSpec]>,
}

impl Quota {
    pub fn new(limits: LimitRules, budgets: Vec<BudgetSpec>) -> Self {
        Self {
            limits,
            budgets: budgets.into(),
        }
    }

    /// Whether the scope has neither a limit nor a budget.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.budgets.is_empty()
    }
}

/// The quotas of each scope of a principal; a scope without any is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quotas {
    pub key: Option<Quota>,
    pub user: Option<Quota>,
    pub team: Option<Quota>,
    pub org: Option<Quota>,
}

impl Quotas {
    /// `None` when no scope has a quota (so a principal without any carries nothing).
    pub fn shared(self) -> Option<Arc<Quotas>> {
        let empty = |q: &Option<Quota>| q.as_ref().is_none_or(Quota::is_empty);
        if empty(&self.key) && empty(&self.user) && empty(&self.team) && empty(&self.org) {
            None
        } else {
            Some(Arc::new(self))
        }
    }
}

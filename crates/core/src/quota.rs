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

/// The snapshot's rules beyond principals' own quotas: `limits.rules`, `budgets.rules`, and
/// what admission needs to size a request.
#[derive(Debug, Clone, Default)]
pub struct QuotaPolicy {
    /// Output tokens reserved for a request that names no maximum.
    pub default_max_tokens: u64,
    pub limit_rules: Vec<NamedLimit>,
    pub budget_rules: Vec<crate::config::limits::ScopedBudget>,
    pub stream_overrun: crate::config::limits::StreamOverrun,
    pub webhook: Option<String>,
}

/// A `limits.rules` entry with its counter name (`rule:<scope>`).
#[derive(Debug, Clone)]
pub struct NamedLimit {
    pub scope: crate::config::limits::Scope,
    pub name: Arc<str>,
    pub rules: LimitRules,
}

impl QuotaPolicy {
    pub fn from_config(
        limits: &crate::config::limits::LimitsConfig,
        budgets: &crate::config::limits::BudgetsConfig,
    ) -> Self {
        Self {
            default_max_tokens: limits.default_max_tokens,
            limit_rules: limits
                .rules
                .iter()
                .map(|r| NamedLimit {
                    scope: r.scope.clone(),
                    name: Arc::from(format!("rule:{}", r.scope.name())),
                    rules: r.rules,
                })
                .collect(),
            budget_rules: budgets.rules.clone(),
            stream_overrun: budgets.stream_overrun,
            webhook: budgets.webhook.clone(),
        }
    }

    /// Whether no rule of the file applies to anyone (admission then depends on the
    /// principal's quotas and the model's limits only).
    pub fn is_empty(&self) -> bool {
        self.limit_rules.is_empty() && self.budget_rules.is_empty()
    }
}

/// What a request is, for matching rules: who sent it and which model it asks for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// A stored key's id, else (a config key) the key's name.
    pub key: &'a str,
    /// Whether `key` is a stored key's id.
    pub stored_key: bool,
    pub user: Option<&'a str>,
    pub team: Option<&'a str>,
    pub org: Option<&'a str>,
    pub model: &'a str,
}

impl crate::config::limits::Scope {
    /// Whether every field of the scope matches `s`: a stored key by its id (names are not
    /// unique across teams), a config key by its name.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        eq(&self.key, Some(s.key))
            && eq(&self.user, s.user)
            && eq(&self.team, s.team)
            && eq(&self.org, s.org)
            && eq(&self.model, Some(s.model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::limits::Scope;

    fn subject(key: &'static str, stored_key: bool) -> Subject<'static> {
        Subject {
            key,
            stored_key,
            user: Some("u1"),
            team: Some("t1"),
            org: Some("o1"),
            model: "gpt-4o",
        }
    }

    #[test]
    fn scopes_match_every_field_they_name() {
        let rule = |key: Option<&str>, team: Option<&str>, model: Option<&str>| Scope {
            key: key.map(str::to_owned),
            team: team.map(str::to_owned),
            model: model.map(str::to_owned),
            ..Scope::default()
        };
        let s = subject("k1", true);
        assert!(rule(None, Some("t1"), Some("gpt-4o")).matches(&s));
        assert!(!rule(None, Some("t1"), Some("gpt-4o-mini")).matches(&s));
        assert!(!rule(None, Some("t2"), None).matches(&s));
        assert!(rule(Some("k1"), None, None).matches(&s));
        assert_eq!(
            rule(Some("k1"), Some("t1"), Some("m")).name(),
            "key:k1|team:t1|model:m"
        );
        // A stored key is matched by its id, never by a name another team's key may share.
        assert!(!rule(Some("ci"), None, None).matches(&subject("k1", true)));
        assert!(rule(Some("ci"), None, None).matches(&subject("ci", false)));
    }
}

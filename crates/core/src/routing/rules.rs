//! Conditional routing (`routing.rules`), applied by stage `resolve` before it looks the model
//! up: an ordered list of rules, each a set of conditions on who sends the request and what it
//! is, and the configured model (`route`) to send it to. The first rule whose conditions all
//! hold, and whose model serves the request's endpoint, wins; when none does the request goes to
//! the model it names. Rules are evaluated once, on the requested name: the target model's name
//! is not matched again.
//!
//! Conditions are checked cheapest first (model name, stream, tools, team, key metadata,
//! headers), and the token estimate last, only for a rule whose other conditions held; the
//! estimate is kept in the request's context for stage `admit` and the filter of stage `plan`.
//! A snapshot without rules pays nothing.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use crate::auth::{ModelPattern, Principal};
use crate::pipeline::{ApiRequest, RequestCtx};

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's `name`, or `rules[N]`: for logs.
    pub name: Arc<str>,
    /// The configured model matching requests go to.
    pub route: Arc<str>,
    pub when: Conditions,
}

/// What must hold for a rule to match; an absent condition always holds.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    /// A pattern over the model name the client asked for.
    pub model: Option<ModelPattern>,
    pub stream: Option<bool>,
    pub has_tools: Option<bool>,
    /// The caller's team is one of these; empty: any caller.
    pub teams: Vec<String>,
    /// Labels of the caller's key, each matching its pattern.
    pub key_metadata: Vec<(String, ModelPattern)>,
    /// Request headers, each present with a value matching its pattern.
    pub headers: Vec<(HeaderName, ModelPattern)>,
    /// The estimated prompt tokens are within these bounds.
    pub estimated_tokens: Option<TokenRange>,
}

/// Bounds on a number of tokens; every bound given must hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenRange {
    pub gt: Option<u64>,
    pub gte: Option<u64>,
    pub lt: Option<u64>,
    pub lte: Option<u64>,
}

impl TokenRange {
    pub fn contains(&self, n: u64) -> bool {
        self.gt.is_none_or(|b| n > b)
            && self.gte.is_none_or(|b| n >= b)
            && self.lt.is_none_or(|b| n < b)
            && self.lte.is_none_or(|b| n <= b)
    }

    /// Whether no number of tokens satisfies every bound.
    pub fn is_unsatisfiable(&self) -> bool {
        let wide = |b: Option<u64>, shift: i128| b.map(|b| i128::from(b) + shift);
        let low = [wide(self.gt, 1), wide(self.gte, 0)]
            .into_iter()
            .flatten()
            .max();
        let high = [wide(self.lt, -1), wide(self.lte, 0)]
            .into_iter()
            .flatten()
            .min();
        low.unwrap_or(0) > high.unwrap_or(i128::from(u64::MAX))
    }
}

/// What the rules read of a request. The context keeps the prompt's estimate once computed.
pub struct Facts<'a> {
    pub principal: &'a Principal,
    pub headers: &'a HeaderMap,
    pub request: &'a ApiRequest,
    pub ctx: &'a mut RequestCtx,
}

impl std::fmt::Debug for Facts<'_> {
    /// Names only: the headers may carry credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facts")
            .field("key", &self.principal.key_name)
            .field("model", &self.request.model())
            .finish_non_exhaustive()
    }
}

impl Conditions {
    /// Whether every condition holds for the request.
    pub fn hold(&self, f: &mut Facts<'_>) -> bool {
        let (principal, request) = (f.principal, f.request);
        self.model
            .as_ref()
            .is_none_or(|p| p.matches(request.model()))
            && self.stream.is_none_or(|s| s == request.is_stream())
            && self
                .has_tools
                .is_none_or(|t| t == super::needs::has_tools(request))
            && (self.teams.is_empty()
                || principal
                    .team
                    .as_deref()
                    .is_some_and(|team| self.teams.iter().any(|t| t == team)))
            && self.key_metadata.iter().all(|(label, pattern)| {
                principal
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(label))
                    .is_some_and(|value| pattern.matches(value))
            })
            && self.headers.iter().all(|(name, pattern)| {
                f.headers
                    .get_all(name)
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|v| pattern.matches(v)))
            })
            && self
                .estimated_tokens
                .is_none_or(|range| range.contains(f.ctx.prompt_tokens(request)))
    }
}

/// The first rule of `rules` whose target `usable` accepts (a configured model serving the
/// request's endpoint) and whose conditions hold.
pub fn first_match<'r>(
    rules: &'r [Rule],
    facts: &mut Facts<'_>,
    usable: impl Fn(&str) -> bool,
) -> Option<&'r Rule> {
    rules
        .iter()
        .find(|rule| usable(&rule.route) && rule.when.hold(facts))
}

#[cfg(test)]
mod tests;

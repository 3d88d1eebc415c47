//! Validation of what routing reads beyond strategies and health: `capabilities` (over the
//! shipped catalog, [`crate::routing::capabilities`]), deployments' `tags` and `capabilities`,
//! models' `require_tags` and `exclude_tags` ([`crate::routing::tags`]), keys' `labels`, and the
//! conditional routing rules of `routing.rules` ([`crate::routing::rules`]). Each problem is
//! reported with its path.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use http::HeaderName;

use super::super::raw::{RawCapabilityCatalog, RawConditions, RawRouting};
use super::super::{DeploymentConfig, ModelConfig, RoutingConfig};
use super::Validator;
use crate::auth::ModelPattern;
use crate::routing::capabilities::{Capabilities, CapabilityCatalog};
use crate::routing::rules::{Conditions, Rule, TokenRange};
use crate::routing::tags::{self, TagPredicate};

/// Headers a rule may not read: they carry credentials.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "api-key",
    "x-api-key",
    "cookie",
    "proxy-authorization",
];

impl Validator<'_> {
    /// `capabilities.models`, over the shipped catalog.
    pub(super) fn capabilities(&mut self, raw: RawCapabilityCatalog) -> CapabilityCatalog {
        let mut catalog = match CapabilityCatalog::builtin() {
            Ok(c) => c,
            Err(e) => {
                // The shipped file is checked by its tests; this is only reachable if it breaks.
                self.problem("capabilities", e.to_string());
                return CapabilityCatalog::default();
            }
        };
        for (model, caps) in raw.models {
            let path = format!("capabilities.models.{model}");
            if model.is_empty() || model.bytes().all(|b| b == b'*') {
                self.problem(&path, "name a model, or a pattern with more than '*'");
            }
            let caps = self.capability_figures(&path, caps);
            catalog = catalog.with_override(&model, caps);
        }
        catalog
    }

    /// One set of capabilities (of `capabilities.models`, or a deployment's).
    pub(super) fn capability_figures(&mut self, path: &str, raw: Capabilities) -> Capabilities {
        for (field, value) in [
            ("context_window", raw.context_window),
            ("max_output_tokens", raw.max_output_tokens),
        ] {
            if value == Some(0) {
                self.problem(format!("{path}.{field}"), "must be at least 1");
            }
        }
        if let (Some(window), Some(out)) = (raw.context_window, raw.max_output_tokens)
            && out > window
        {
            self.problem(
                format!("{path}.max_output_tokens"),
                format!("must be at most context_window ({window})"),
            );
        }
        raw
    }

    /// A deployment's `tags`.
    pub(super) fn deployment_tags(&mut self, path: &str, tags: &[String]) {
        let mut seen = HashSet::new();
        for (i, tag) in tags.iter().enumerate() {
            if let Err(e) = tags::check(tag, false) {
                self.problem(format!("{path}.tags[{i}]"), e);
            } else if !seen.insert(tag) {
                self.problem(
                    format!("{path}.tags[{i}]"),
                    format!("'{tag}' is listed twice"),
                );
            }
        }
    }

    /// A model's `require_tags` and `exclude_tags`; a problem when no deployment satisfies them.
    pub(super) fn tag_predicate(
        &mut self,
        path: &str,
        require: &[String],
        exclude: &[String],
        deployments: &[DeploymentConfig],
    ) -> Option<TagPredicate> {
        for (field, terms) in [("require_tags", require), ("exclude_tags", exclude)] {
            for (i, term) in terms.iter().enumerate() {
                if let Err(e) = tags::check(term, true) {
                    self.problem(format!("{path}.{field}[{i}]"), e);
                }
            }
        }
        let predicate = TagPredicate::new(require, exclude);
        if predicate.is_empty() {
            return None;
        }
        if !deployments.is_empty() && !deployments.iter().any(|d| predicate.admits(&d.tags)) {
            self.problem(
                format!("{path}.require_tags"),
                "no deployment of this model has the tags required (and none of those excluded)",
            );
        }
        Some(predicate)
    }

    /// A key's `labels`.
    pub(super) fn labels(&mut self, path: &str, labels: &BTreeMap<String, String>) {
        for name in labels.keys() {
            if name.is_empty() {
                self.problem(format!("{path}.labels"), "a label needs a name");
            }
        }
    }

    /// `routing.rules`: each rule's conditions, and its route among `models`.
    pub(super) fn routing(
        &mut self,
        raw: RawRouting,
        models: &BTreeMap<String, ModelConfig>,
    ) -> RoutingConfig {
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, rule) in raw.rules.into_iter().enumerate() {
            let path = format!("routing.rules[{i}]");
            let name = rule.name.unwrap_or_else(|| format!("rules[{i}]"));
            if name.is_empty() {
                self.problem(format!("{path}.name"), "must not be empty");
            } else if !names.insert(name.clone()) {
                self.problem(
                    format!("{path}.name"),
                    format!("a second rule named '{name}'"),
                );
            }
            let route = match rule.route {
                Some(route) if models.contains_key(&route) => route,
                Some(route) => {
                    self.problem(
                        format!("{path}.route"),
                        format!("no model named '{route}' is configured"),
                    );
                    route
                }
                None => {
                    self.problem(
                        format!("{path}.route"),
                        "missing: the model (a key of `models`) matching requests go to",
                    );
                    String::new()
                }
            };
            let when = match rule.conditions {
                Some(c) => self.conditions(&format!("{path}.match"), c),
                None => {
                    self.problem(
                        format!("{path}.match"),
                        "missing: the conditions a request must meet (model: \"*\" for every request)",
                    );
                    Conditions::default()
                }
            };
            rules.push(Rule {
                name: Arc::from(name),
                route: Arc::from(route),
                when,
            });
        }
        RoutingConfig { rules }
    }

    fn conditions(&mut self, path: &str, raw: RawConditions) -> Conditions {
        let given = [
            raw.team.is_some(),
            raw.key_metadata.is_some(),
            raw.headers.is_some(),
            raw.model.is_some(),
            raw.has_tools.is_some(),
            raw.stream.is_some(),
            raw.estimated_tokens.is_some(),
        ];
        if !given.contains(&true) {
            self.problem(
                path,
                "names no condition: give at least one of team, key_metadata, headers, model, \
                 has_tools, stream, estimated_tokens (model: \"*\" matches every request)",
            );
        }
        let model = raw
            .model
            .map(|m| self.pattern(format!("{path}.model"), m, "model"));
        let key_metadata = raw
            .key_metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(label, value)| {
                let p = self.pattern(format!("{path}.key_metadata.{label}"), value, "value");
                (label, p)
            })
            .collect();
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let at = format!("{path}.headers.{name}");
            let value = self.pattern(at.clone(), value, "value");
            match HeaderName::try_from(name.as_str()) {
                Ok(n) if SECRET_HEADERS.contains(&n.as_str()) => self.problem(
                    at,
                    "this header carries credentials; match the key's metadata instead",
                ),
                Ok(n) => headers.push((n, value)),
                Err(_) => self.problem(at, "not a valid HTTP header name"),
            }
        }
        let team_given = raw.team.is_some();
        let teams = raw.team.map(|t| t.into_vec()).unwrap_or_default();
        if teams.iter().any(String::is_empty) || (team_given && teams.is_empty()) {
            self.problem(format!("{path}.team"), "name one team or more, none empty");
        }
        Conditions {
            model,
            stream: raw.stream,
            has_tools: raw.has_tools,
            teams,
            key_metadata,
            headers,
            estimated_tokens: raw
                .estimated_tokens
                .map(|ops| self.token_range(&format!("{path}.estimated_tokens"), ops)),
        }
    }

    /// A pattern condition's value; empty is a problem.
    fn pattern(&mut self, at: String, text: String, what: &str) -> ModelPattern {
        if text.is_empty() {
            self.problem(at, format!("must not be empty (\"*\" matches any {what})"));
        }
        ModelPattern::new(text)
    }

    fn token_range(&mut self, path: &str, ops: BTreeMap<String, u64>) -> TokenRange {
        let mut range = TokenRange::default();
        if ops.is_empty() {
            self.problem(path, "give at least one of gt, gte, lt, lte");
        }
        for (op, n) in ops {
            let slot = match op.as_str() {
                "gt" => &mut range.gt,
                "gte" => &mut range.gte,
                "lt" => &mut range.lt,
                "lte" => &mut range.lte,
                _ => {
                    self.problem(
                        format!("{path}.{op}"),
                        format!("'{op}' is not an operator: gt, gte, lt or lte"),
                    );
                    continue;
                }
            };
            *slot = Some(n);
        }
        if range.is_unsatisfiable() {
            self.problem(path, "no number of tokens meets all these bounds");
        }
        range
    }
}

#[cfg(test)]
mod tests;

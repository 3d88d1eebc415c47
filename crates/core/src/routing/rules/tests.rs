//! Tests of the routing rules through stage `resolve`: each condition (and each bound of
//! `estimated_tokens`) matching and not, first match wins, targets that cannot serve the
//! endpoint are passed over, and the allow-list applies to the name asked for.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::collections::HashMap;
use std::time::Duration;

use http::HeaderValue;
use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::error::{AuthError, GatewayError};
use crate::pipeline::parse::parse;
use crate::pipeline::resolve::resolve_request;
use crate::provider::Operation;
use crate::runtime::Runtime;

/// Models `asked`, `other` and `third` on a mock provider,
/// and the rules given (YAML list items under `routing.rules`).
fn runtime(rules: &str) -> Runtime {
    let yaml = format!(
        "providers:\n  p: {{ type: mock }}\n\
         models:\n  asked: {{ deployments: [{{ provider: p }}] }}\n  \
         other: {{ deployments: [{{ provider: p }}] }}\n  \
         third: {{ deployments: [{{ provider: p }}] }}\n\
         routing:\n  rules:\n{rules}"
    );
    let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new())
        .unwrap_or_else(|p| panic!("{p:?}"));
    let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
    Runtime::build(&config, &http)
}

/// One rule sending requests that meet `conditions` (a YAML flow mapping) to `other`.
fn one_rule(conditions: &str) -> Runtime {
    runtime(&format!("    - {{ match: {conditions}, route: other }}\n"))
}

/// A request as a test describes it.
struct Req {
    body: Value,
    principal: Principal,
    headers: HeaderMap,
}

impl Req {
    fn chat(extra: Value) -> Self {
        let mut body = json!({"model": "asked", "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Self {
            body,
            principal: Principal::for_tests(None, &[], None),
            headers: HeaderMap::new(),
        }
    }

    fn by(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    /// The model the request resolves to, and its context after.
    fn resolve(&self, rt: &Runtime) -> (Result<String, GatewayError>, RequestCtx) {
        let request = parse(Operation::Chat, &serde_json::to_vec(&self.body).unwrap()).unwrap();
        let mut ctx = RequestCtx::new("/v1/chat/completions", "t", None);
        let route = resolve_request(rt, &self.principal, &self.headers, &request, &mut ctx)
            .map(|r| r.name.clone());
        (route, ctx)
    }

    fn routed(&self, rt: &Runtime) -> String {
        self.resolve(rt).0.unwrap()
    }
}

#[test]
fn model_matches_a_pattern_over_the_name_asked_for() {
    let rt = one_rule("{ model: \"ask*\" }");
    assert_eq!(Req::chat(json!({})).routed(&rt), "other");
    let third = Req::chat(json!({"model": "third"}));
    assert_eq!(third.routed(&rt), "third");
}

#[test]
fn stream_matches_streaming_or_not() {
    let rt = one_rule("{ stream: true }");
    assert_eq!(Req::chat(json!({"stream": true})).routed(&rt), "other");
    assert_eq!(Req::chat(json!({"stream": false})).routed(&rt), "asked");
    assert_eq!(Req::chat(json!({})).routed(&rt), "asked");
    let rt = one_rule("{ stream: false }");
    assert_eq!(Req::chat(json!({})).routed(&rt), "other");
}

#[test]
fn has_tools_matches_a_non_empty_tool_list() {
    let rt = one_rule("{ has_tools: true }");
    let tool = json!({"tools": [{"type": "function", "function": {"name": "f"}}]});
    assert_eq!(Req::chat(tool.clone()).routed(&rt), "other");
    assert_eq!(Req::chat(json!({"tools": []})).routed(&rt), "asked");
    assert_eq!(Req::chat(json!({})).routed(&rt), "asked");
    let rt = one_rule("{ has_tools: false }");
    assert_eq!(Req::chat(tool).routed(&rt), "asked");
    assert_eq!(Req::chat(json!({})).routed(&rt), "other");
}

#[test]
fn team_matches_one_team_or_any_of_a_list() {
    let team = |t: Option<&str>| Principal::for_tests(t, &[], None);
    let rt = one_rule("{ team: t1 }");
    assert_eq!(
        Req::chat(json!({})).by(team(Some("t1"))).routed(&rt),
        "other"
    );
    assert_eq!(
        Req::chat(json!({})).by(team(Some("t2"))).routed(&rt),
        "asked"
    );
    assert_eq!(Req::chat(json!({})).by(team(None)).routed(&rt), "asked");
    let rt = one_rule("{ team: [t1, t2] }");
    assert_eq!(
        Req::chat(json!({})).by(team(Some("t2"))).routed(&rt),
        "other"
    );
    assert_eq!(
        Req::chat(json!({})).by(team(Some("t3"))).routed(&rt),
        "asked"
    );
}

#[test]
fn key_metadata_matches_every_label_given() {
    let rt = one_rule("{ key_metadata: { env: prod, tier: \"gold*\" } }");
    let labels = |l: &[(&str, &str)]| Req::chat(json!({})).by(Principal::for_tests(None, l, None));
    assert_eq!(
        labels(&[("env", "prod"), ("tier", "gold-plus")]).routed(&rt),
        "other"
    );
    assert_eq!(
        labels(&[("env", "dev"), ("tier", "gold")]).routed(&rt),
        "asked"
    );
    assert_eq!(
        labels(&[("env", "prod")]).routed(&rt),
        "asked",
        "tier missing"
    );
    assert_eq!(labels(&[]).routed(&rt), "asked");
}

#[test]
fn headers_match_exactly_or_by_pattern_and_must_be_present() {
    let rt = one_rule("{ headers: { X-Priority: high, x-client: \"cli/*\" } }");
    let both = Req::chat(json!({}))
        .header("x-priority", "high")
        .header("x-client", "cli/1.2");
    assert_eq!(both.routed(&rt), "other");
    let wrong = Req::chat(json!({}))
        .header("x-priority", "HIGH")
        .header("x-client", "cli/1.2");
    assert_eq!(wrong.routed(&rt), "asked", "values are case-sensitive");
    let missing = Req::chat(json!({})).header("x-priority", "high");
    assert_eq!(missing.routed(&rt), "asked");
    // A header sent twice matches when either value does.
    let twice = Req::chat(json!({}))
        .header("x-priority", "low")
        .header("x-priority", "high")
        .header("x-client", "cli/2");
    assert_eq!(twice.routed(&rt), "other");
    let any = one_rule("{ headers: { x-beta: \"*\" } }");
    assert_eq!(
        Req::chat(json!({})).header("x-beta", "").routed(&any),
        "other"
    );
    assert_eq!(Req::chat(json!({})).routed(&any), "asked");
}

#[test]
fn estimated_tokens_compares_with_each_operator() {
    let (req, _) = (Req::chat(json!({})), ());
    let (_, ctx) = req.resolve(&one_rule("{ estimated_tokens: { gte: 0 } }"));
    let n = ctx.prompt_estimate.unwrap();
    assert!(n > 0);
    let cases = [
        ("gt", n - 1, true),
        ("gt", n, false),
        ("gte", n, true),
        ("gte", n + 1, false),
        ("lt", n + 1, true),
        ("lt", n, false),
        ("lte", n, true),
        ("lte", n - 1, false),
    ];
    for (op, bound, matches) in cases {
        let rt = one_rule(&format!("{{ estimated_tokens: {{ {op}: {bound} }} }}"));
        let want = if matches { "other" } else { "asked" };
        assert_eq!(req.routed(&rt), want, "{op} {bound} against {n}");
    }
    let between = one_rule(&format!(
        "{{ estimated_tokens: {{ gt: {}, lte: {n} }} }}",
        n - 1
    ));
    assert_eq!(req.routed(&between), "other");
}

#[test]
fn the_first_rule_that_matches_wins_and_all_its_conditions_must_hold() {
    let rt = runtime(
        "    - { name: tools-and-stream, match: { has_tools: true, stream: true }, route: third }\n\
         \x20   - { name: tools, match: { has_tools: true }, route: other }\n\
         \x20   - { name: late, match: { model: \"*\" }, route: third }\n",
    );
    let tool = json!({"type": "function", "function": {"name": "f"}});
    let (route, ctx) = Req::chat(json!({"tools": [tool], "stream": true})).resolve(&rt);
    assert_eq!(route.unwrap(), "third");
    assert_eq!(ctx.rule.as_deref(), Some("tools-and-stream"));
    let (route, ctx) = Req::chat(json!({"tools": [tool]})).resolve(&rt);
    assert_eq!(route.unwrap(), "other");
    assert_eq!(
        (ctx.rule.as_deref(), ctx.route.as_deref()),
        (Some("tools"), Some("other"))
    );
    let (route, ctx) = Req::chat(json!({})).resolve(&rt);
    assert_eq!(route.unwrap(), "third");
    assert_eq!(ctx.rule.as_deref(), Some("late"));
    // No rule matches: the model asked for, and no rule is recorded.
    let rt = one_rule("{ has_tools: true }");
    let (route, ctx) = Req::chat(json!({})).resolve(&rt);
    assert_eq!(route.unwrap(), "asked");
    assert!(ctx.rule.is_none() && ctx.route.is_none());
}

#[test]
fn the_estimate_is_computed_only_for_a_rule_whose_other_conditions_held() {
    let rt = one_rule("{ stream: true, estimated_tokens: { gt: 0 } }");
    let (route, ctx) = Req::chat(json!({})).resolve(&rt);
    assert_eq!(route.unwrap(), "asked");
    assert_eq!(ctx.prompt_estimate, None);
    let (route, ctx) = Req::chat(json!({"stream": true})).resolve(&rt);
    assert_eq!(route.unwrap(), "other");
    assert!(ctx.prompt_estimate.is_some(), "kept for the stages after");
}

#[test]
fn rules_route_names_that_are_not_models_and_the_allow_list_applies_to_the_name_asked_for() {
    let rt = one_rule("{ model: auto }");
    assert_eq!(Req::chat(json!({"model": "auto"})).routed(&rt), "other");
    let (route, _) = Req::chat(json!({"model": "nowhere"})).resolve(&rt);
    assert!(matches!(route, Err(GatewayError::ModelNotFound(m)) if m == "nowhere"));

    let only_auto = Principal::for_tests(None, &[], Some(&["auto"]));
    let auto = Req::chat(json!({"model": "auto"})).by(only_auto.clone());
    assert_eq!(auto.routed(&rt), "other", "the target need not be allowed");
    let (route, _) = Req::chat(json!({})).by(only_auto).resolve(&rt);
    assert!(matches!(
        route,
        Err(GatewayError::Auth(AuthError::ModelNotAllowed(m))) if m == "asked"
    ));
}

#[test]
fn a_rule_whose_model_cannot_serve_the_endpoint_is_passed_over() {
    let yaml = "providers:\n  p: { type: mock }\n  e: { type: cohere, api_key: k }\n\
                models:\n  asked: { deployments: [{ provider: p }] }\n  \
                chat-only: { deployments: [{ provider: e }] }\n\
                routing:\n  rules:\n    - { match: { model: \"*\" }, route: chat-only }\n";
    let config = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap();
    let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
    let rt = Runtime::build(&config, &http);
    let request = parse(
        Operation::Completion,
        br#"{"model": "asked", "prompt": "hi"}"#,
    )
    .unwrap();
    let mut ctx = RequestCtx::new("/v1/completions", "t", None);
    let principal = Principal::for_tests(None, &[], None);
    let route = resolve_request(&rt, &principal, &HeaderMap::new(), &request, &mut ctx).unwrap();
    assert_eq!(route.name, "asked");
    assert_eq!(ctx.rule, None);
}

#[test]
fn unsatisfiable_bounds_are_recognised() {
    let range = |gt, gte, lt, lte| TokenRange { gt, gte, lt, lte };
    assert!(range(Some(10), None, Some(5), None).is_unsatisfiable());
    assert!(range(Some(10), None, Some(11), None).is_unsatisfiable());
    assert!(!range(Some(10), None, Some(12), None).is_unsatisfiable());
    assert!(range(None, None, Some(0), None).is_unsatisfiable());
    assert!(range(Some(u64::MAX), None, None, None).is_unsatisfiable());
    assert!(!range(None, Some(5), None, Some(5)).is_unsatisfiable());
    assert!(!TokenRange::default().is_unsatisfiable());
}

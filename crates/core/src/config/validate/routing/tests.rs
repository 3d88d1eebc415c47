//! Every problem of `capabilities`, tags, `require_tags`, key labels and `routing.rules` is
//! reported with its path; good values reach the config.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::collections::HashMap;

use crate::config::{Config, ConfigProblem};

fn load(text: &str) -> Result<Config, Vec<ConfigProblem>> {
    Config::from_yaml(text, &HashMap::<String, String>::new())
}

fn problems(text: &str) -> Vec<(String, String)> {
    super::super::tests::sorted_problems(load(text))
}

fn paths(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|(p, _)| p).collect()
}

const MODELS: &str = "providers: { p: { type: mock } }\nmodels:\n  a: { deployments: [{ provider: p }] }\n  b: { deployments: [{ provider: p }] }\n";

#[test]
fn good_rules_tags_and_capabilities_reach_the_config() {
    let cfg = load(&format!(
        r#"{MODELS}  c:
    deployments:
      - provider: p
        model: gpt-4o
        tags: [zero_retention, "region:eu"]
        capabilities: {{ vision: false }}
    require_tags: ["region:eu*"]
    exclude_tags: [shared]
capabilities:
  models:
    in-house: {{ context_window: 8192, max_output_tokens: 2048, tools: false }}
    "llama-*": {{ streaming: false }}
auth:
  keys: [{{ name: k, sha256: "{zero}", labels: {{ env: prod }} }}]
routing:
  rules:
    - name: vip
      match:
        team: t1
        key_metadata: {{ env: prod }}
        headers: {{ X-Priority: high }}
        model: "gpt-*"
        has_tools: true
        stream: false
        estimated_tokens: {{ gt: 1000, lte: 100000 }}
      route: b
    - match: {{ model: "*" }}
      route: a
"#,
        zero = "0".repeat(64)
    ))
    .unwrap_or_else(|p| panic!("{p:#?}"));
    let rules = &cfg.routing.rules;
    assert_eq!(rules.len(), 2);
    assert_eq!((&*rules[0].name, &*rules[0].route), ("vip", "b"));
    assert_eq!((&*rules[1].name, &*rules[1].route), ("rules[1]", "a"));
    let when = &rules[0].when;
    assert_eq!(when.teams, ["t1"]);
    assert_eq!(when.headers[0].0.as_str(), "x-priority");
    assert_eq!(
        when.estimated_tokens.map(|r| (r.gt, r.lte)),
        Some((Some(1000), Some(100_000)))
    );
    let c = &cfg.models["c"];
    assert!(
        c.require_tags
            .as_ref()
            .unwrap()
            .admits(&c.deployments[0].tags)
    );
    assert_eq!(c.deployments[0].capabilities.vision, Some(false));
    assert_eq!(
        cfg.capabilities.of("in-house").max_output_tokens,
        Some(2048)
    );
    assert_eq!(cfg.capabilities.of("llama-3").streaming, Some(false));
    assert_eq!(cfg.auth.keys[0].labels["env"], "prod");
}

#[test]
fn bad_rules_are_reported_with_their_paths() {
    let got = problems(&format!(
        r#"{MODELS}routing:
  rules:
    - {{ name: r, match: {{ model: "*" }}, route: nowhere }}
    - {{ name: r, match: {{ model: "" }}, route: a }}
    - {{ match: {{}}, route: a }}
    - {{ route: a }}
    - {{ match: {{ has_tools: true }} }}
    - match:
        estimated_tokens: {{ between: 5, gt: 1 }}
        headers: {{ "bad header": x, Authorization: "Bearer *", x-empty: "" }}
        key_metadata: {{ env: "" }}
        team: []
      route: b
    - {{ match: {{ estimated_tokens: {{ gt: 10, lt: 5 }} }}, route: a }}
    - {{ match: {{ estimated_tokens: {{}} }}, route: a }}
    - {{ match: {{ stream: true, colour: blue }}, route: a }}
"#
    ));
    let want = [
        (
            "routing.rules[0].route",
            "no model named 'nowhere' is configured",
        ),
        (
            "routing.rules[1].match.model",
            "must not be empty (\"*\" matches any model)",
        ),
        ("routing.rules[1].name", "a second rule named 'r'"),
        ("routing.rules[2].match", "names no condition"),
        ("routing.rules[3].match", "missing: the conditions"),
        ("routing.rules[4].route", "missing: the model"),
        (
            "routing.rules[5].match.estimated_tokens.between",
            "'between' is not an operator: gt, gte, lt or lte",
        ),
        (
            "routing.rules[5].match.headers.Authorization",
            "this header carries credentials",
        ),
        (
            "routing.rules[5].match.headers.bad header",
            "not a valid HTTP header name",
        ),
        (
            "routing.rules[5].match.headers.x-empty",
            "must not be empty",
        ),
        (
            "routing.rules[5].match.key_metadata.env",
            "must not be empty",
        ),
        ("routing.rules[5].match.team", "name one team or more"),
        (
            "routing.rules[6].match.estimated_tokens",
            "no number of tokens meets all these bounds",
        ),
        (
            "routing.rules[7].match.estimated_tokens",
            "give at least one of gt, gte, lt, lte",
        ),
        ("routing.rules[8].match.colour", "unknown key"),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((path, message), (want_path, want_message)) in got.iter().zip(want) {
        assert_eq!(path, want_path, "{got:#?}");
        assert!(message.starts_with(want_message), "{path}: {message}");
    }
}

#[test]
fn bad_tags_and_capabilities_are_reported_with_their_paths() {
    let got = paths(
        r#"providers: { p: { type: mock } }
models:
  a:
    deployments:
      - provider: p
        tags: ["region:", "has space", ok, ok]
        capabilities: { context_window: 0, max_output_tokens: 0 }
      - provider: p
        capabilities: { context_window: 100, max_output_tokens: 200, vison: true }
    require_tags: ["", "bad tag*"]
  b:
    deployments: [{ provider: p, tags: [shared] }]
    require_tags: [zero_retention]
  c:
    deployments: [{ provider: p, tags: [zero_retention] }]
    exclude_tags: ["zero_*"]
capabilities:
  models:
    "*": { vision: true }
    m: { context_window: 0 }
auth:
  keys: [{ name: k, sha256: "0000000000000000000000000000000000000000000000000000000000000000", labels: { "": x } }]
"#,
    );
    let mut want = vec![
        "auth.keys[0].labels",
        "capabilities.models.*",
        "capabilities.models.m.context_window",
        "models.a.deployments[0].capabilities.context_window",
        "models.a.deployments[0].capabilities.max_output_tokens",
        "models.a.deployments[0].tags[0]",
        "models.a.deployments[0].tags[1]",
        "models.a.deployments[0].tags[3]",
        "models.a.deployments[1].capabilities.max_output_tokens",
        "models.a.deployments[1].capabilities.vison",
        "models.a.require_tags",
        "models.a.require_tags[0]",
        "models.a.require_tags[1]",
        "models.b.require_tags",
        "models.c.require_tags",
    ];
    want.sort_unstable();
    assert_eq!(got, want);
}

//! The provider types and which fields of [`RawProvider`] each one uses: the one list of known
//! types (for `type:` and its messages) and the one check that a provider sets no field its type
//! does not use.

use super::super::raw::RawProvider;
use super::Validator;

/// The fields of `openai` and `openai_compatible`. `openai` reads `preset` too, but only to
/// refuse it with a pointer to `openai_compatible`.
const OPENAI: &[&str] = &[
    "preset",
    "base_url",
    "api_key",
    "organization",
    "project",
    "headers",
    "stream_include_usage",
];

/// Every provider type, as written in `type:`, with the fields of [`RawProvider`] (`type` aside)
/// that its validation reads. Any other field set on a provider of that type is reported.
const PROVIDER_TYPES: &[(&str, &[&str])] = &[
    ("openai", OPENAI),
    ("openai_compatible", OPENAI),
    (
        "anthropic",
        &[
            "base_url",
            "api_key",
            "headers",
            "version",
            "beta",
            "default_max_tokens",
        ],
    ),
    (
        "mock",
        &[
            "latency",
            "chunk_delay",
            "completion_tokens",
            "chunk_tokens",
            "embedding_dimensions",
        ],
    ),
    ("cohere", &["base_url", "api_key", "headers"]),
    (
        "azure",
        &[
            "endpoint",
            "api_version",
            "api_key",
            "bearer_token",
            "entra",
            "headers",
            "stream_include_usage",
        ],
    ),
    (
        "bedrock",
        &[
            "region",
            "base_url",
            "access_key_id",
            "secret_access_key",
            "session_token",
        ],
    ),
    ("gemini", &["base_url", "api_key", "headers"]),
    (
        "vertex",
        &[
            "base_url",
            "project",
            "location",
            "credentials",
            "credentials_file",
            "headers",
        ],
    ),
];

/// The known types, comma-separated, for messages.
pub(super) fn names() -> String {
    let names: Vec<&str> = PROVIDER_TYPES.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// Every provider type, as written in `type:`.
pub(in crate::config) fn known() -> impl Iterator<Item = &'static str> {
    PROVIDER_TYPES.iter().map(|(name, _)| *name)
}

/// The type written `kind` (its name from the table) and the fields it uses; `None` for a type
/// that is not known.
pub(super) fn find(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    PROVIDER_TYPES
        .iter()
        .find(|(name, _)| *name == kind)
        .copied()
}

impl Validator<'_> {
    /// Reports every field set on `raw` that is not among `uses`, the fields of type `kind`.
    pub(super) fn reject_foreign_fields(
        &mut self,
        path: &str,
        kind: &str,
        uses: &[&str],
        raw: &RawProvider,
    ) {
        for field in raw.set_fields().filter(|f| !uses.contains(f)) {
            self.problem(
                format!("{path}.{field}"),
                format!("not used by providers of type {kind}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};

    use serde_json::json;

    use super::super::super::raw::RawEntra;
    use super::super::super::{Config, ConfigProblem};
    use super::super::parse_and_validate;
    use super::*;

    const PRIVATE: &str = include_str!("../../../../testkit/fixtures/TEST-ONLY-rsa-private.pem");

    /// A provider with every field set; written without `..`, so a new field must be added here.
    fn every_field_set() -> RawProvider {
        let s = || Some("x".to_owned());
        RawProvider {
            kind: s(),
            preset: s(),
            base_url: s(),
            api_key: s(),
            organization: s(),
            project: s(),
            headers: Some(BTreeMap::new()),
            stream_include_usage: Some(true),
            latency: s(),
            chunk_delay: s(),
            completion_tokens: Some(1),
            chunk_tokens: Some(1),
            embedding_dimensions: Some(1),
            endpoint: s(),
            api_version: s(),
            bearer_token: s(),
            entra: Some(RawEntra::default()),
            version: s(),
            beta: Some(Vec::new()),
            default_max_tokens: Some(1),
            region: s(),
            access_key_id: s(),
            secret_access_key: s(),
            session_token: s(),
            location: s(),
            credentials: s(),
            credentials_file: s(),
        }
    }

    #[test]
    fn the_nine_types_are_the_one_list_in_messages() {
        assert_eq!(
            names(),
            "openai, openai_compatible, anthropic, mock, cohere, azure, bedrock, gemini, vertex"
        );
        let vars = HashMap::new();
        let problems = parse_and_validate("providers:\n  p: {}\n  q: { type: claude }\n", &vars)
            .err()
            .unwrap_or_default();
        let got: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.path.as_str(), p.message.as_str()))
            .collect();
        let missing = format!("missing: one of {}", names());
        let unknown = format!("'claude' is not one of: {}", names());
        assert_eq!(
            got,
            [
                ("providers.p.type", missing.as_str()),
                ("providers.q.type", unknown.as_str()),
            ]
        );
    }

    #[test]
    fn every_field_is_in_the_table_and_reported_on_every_type_that_does_not_use_it() {
        let raw = every_field_set();
        let all: Vec<&str> = raw.set_fields().collect();
        let unique: BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len(), "a field listed twice: {all:?}");
        let mut used = BTreeSet::new();
        let mut types = BTreeSet::new();
        for (kind, uses) in PROVIDER_TYPES {
            assert!(types.insert(*kind), "type {kind} listed twice");
            let listed: BTreeSet<&str> = uses.iter().copied().collect();
            assert_eq!(listed.len(), uses.len(), "{kind} lists a field twice");
            assert!(
                listed.is_subset(&unique),
                "{kind} lists a field RawProvider does not have: {:?}",
                listed.difference(&unique).collect::<Vec<_>>()
            );
            used.extend(listed);

            let vars = HashMap::new();
            let mut v = Validator {
                problems: Vec::new(),
                vars: &vars,
            };
            v.reject_foreign_fields("providers.p", kind, uses, &raw);
            let message = format!("not used by providers of type {kind}");
            let want: Vec<ConfigProblem> = all
                .iter()
                .filter(|f| !uses.contains(f))
                .map(|f| ConfigProblem::new(format!("providers.p.{f}"), message.as_str()))
                .collect();
            assert_eq!(v.problems, want, "type {kind}");
        }
        assert_eq!(types.len(), 9);
        assert_eq!(used, unique, "every field is used by some type");
    }

    /// A valid provider of each type, as a YAML flow mapping without its closing brace.
    fn minimal(kind: &str) -> Option<&'static str> {
        Some(match kind {
            "openai" => "{ type: openai, api_key: k",
            "openai_compatible" => "{ type: openai_compatible, base_url: 'http://127.0.0.1:9'",
            "anthropic" => "{ type: anthropic, api_key: k",
            "mock" => "{ type: mock",
            "cohere" => "{ type: cohere, api_key: k",
            "azure" => "{ type: azure, endpoint: 'https://r.openai.azure.com', api_key: k",
            "bedrock" => {
                "{ type: bedrock, region: us-east-1, access_key_id: a, secret_access_key: s"
            }
            "gemini" => "{ type: gemini, api_key: k",
            "vertex" => "{ type: vertex, location: global, credentials: '${SA}'",
            _ => return None,
        })
    }

    /// A value of the right shape for each field.
    const SAMPLES: &[(&str, &str)] = &[
        ("preset", "groq"),
        ("base_url", "'http://127.0.0.1:9'"),
        ("api_key", "k"),
        ("organization", "o"),
        ("project", "p"),
        ("headers", "{ X-Team: a }"),
        ("stream_include_usage", "true"),
        ("latency", "1s"),
        ("chunk_delay", "1s"),
        ("completion_tokens", "1"),
        ("chunk_tokens", "1"),
        ("embedding_dimensions", "1"),
        ("endpoint", "'https://r.openai.azure.com'"),
        ("api_version", "2024-10-21"),
        ("bearer_token", "t"),
        ("entra", "{ tenant_id: t, client_id: c, client_secret: s }"),
        ("version", "'2023-06-01'"),
        ("beta", "[b]"),
        ("default_max_tokens", "1"),
        ("region", "us-east-1"),
        ("access_key_id", "a"),
        ("secret_access_key", "s"),
        ("session_token", "t"),
        ("location", "global"),
        ("credentials", "c"),
        ("credentials_file", "f"),
    ];

    fn load(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let key = json!({
            "type": "service_account", "project_id": "p", "private_key_id": "kid",
            "private_key": PRIVATE, "client_email": "gw@p.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        let vars = HashMap::from([("SA".to_owned(), key.to_string())]);
        parse_and_validate(text, &vars)
    }

    #[test]
    fn a_foreign_field_is_one_problem_at_its_path() {
        let sampled: BTreeSet<&str> = SAMPLES.iter().map(|(f, _)| *f).collect();
        let all: BTreeSet<&str> = every_field_set().set_fields().collect();
        assert_eq!(sampled, all, "a sample value for every field");
        let mut checked = 0;
        for (kind, uses) in PROVIDER_TYPES {
            let Some(base) = minimal(kind) else {
                panic!("no minimal provider of type {kind}")
            };
            if let Err(problems) = load(&format!("providers:\n  p: {base} }}\n")) {
                panic!("type {kind}: {problems:#?}");
            }
            for (field, value) in SAMPLES.iter().filter(|(f, _)| !uses.contains(f)) {
                let problems = load(&format!("providers:\n  p: {base}, {field}: {value} }}\n"))
                    .err()
                    .unwrap_or_default();
                assert_eq!(
                    problems,
                    [ConfigProblem::new(
                        format!("providers.p.{field}"),
                        format!("not used by providers of type {kind}"),
                    )],
                    "{field} on type {kind}"
                );
                checked += 1;
            }
        }
        // 9 types, 26 fields: 234 pairs, of which 49 are a field the type uses.
        assert_eq!(checked, 185);
    }
}

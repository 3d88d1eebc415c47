//! Phase one of a two-phase load, for files that reference stored credentials: only `store:`
//! and `secrets:` are read and validated (with `${ENV}` references), and the names of the
//! credentials the providers reference are collected. The server then opens the store, decrypts
//! those credentials, and validates the whole file with them (phase two,
//! [`Config::from_yaml_with_credentials`](crate::config::Config::from_yaml_with_credentials)).
//!
//! Problems elsewhere in the file are left to phase two, which reports every problem of the
//! file, these sections' included.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::super::credentials::CredentialMode;
use super::super::env::{Sources, substitute};
use super::super::{Bootstrap, ConfigProblem, VarSource};
use super::Validator;

pub(in crate::config) fn bootstrap(
    text: &str,
    vars: &dyn VarSource,
) -> Result<Bootstrap, Vec<ConfigProblem>> {
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| vec![ConfigProblem::new("", format!("invalid YAML: {e}"))])?;
    let mut v = Validator {
        problems: Vec::new(),
        vars,
    };
    let store = section(&value, "store", vars, &mut v.problems).and_then(|raw| v.store(raw));
    let secrets = section(&value, "secrets", vars, &mut v.problems).and_then(|raw| v.secrets(raw));
    if !v.problems.is_empty() {
        return Err(v.problems);
    }
    Ok(Bootstrap {
        store,
        secrets,
        references: references(&value, vars),
    })
}

/// The section `key` of the document, with `${ENV}` substituted, as its raw type; `None` when
/// it is absent or has problems (added to `problems`).
fn section<T: DeserializeOwned>(
    document: &Value,
    key: &str,
    vars: &dyn VarSource,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let mut value = document.get(key)?.clone();
    let before = problems.len();
    substitute(
        &mut value,
        key,
        &mut vec![key.to_owned()],
        &mut Sources::env(vars),
        problems,
    );
    if problems.len() > before {
        return None;
    }
    match serde_yaml_ng::from_value(value) {
        Ok(raw) => Some(raw),
        Err(e) => {
            problems.push(ConfigProblem::new(key, e.to_string()));
            None
        }
    }
}

/// The names of the stored credentials referenced under `providers` (a reference that phase two
/// will refuse, such as one in a field that cannot hold a credential, is not collected).
fn references(document: &Value, vars: &dyn VarSource) -> BTreeSet<String> {
    let Some(providers) = document.get("providers") else {
        return BTreeSet::new();
    };
    let mut providers = providers.clone();
    let mut sources = Sources {
        vars,
        credentials: CredentialMode::Collect,
        uses: Vec::new(),
    };
    substitute(
        &mut providers,
        "providers",
        &mut vec!["providers".to_owned()],
        &mut sources,
        &mut Vec::new(),
    );
    sources.uses.into_iter().map(|u| u.name).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::Engine as _;

    use super::*;
    use crate::config::StoreConfig;

    fn vars() -> HashMap<String, String> {
        HashMap::from([(
            "MASTER".to_owned(),
            base64::engine::general_purpose::STANDARD.encode([5; 32]),
        )])
    }

    #[test]
    fn reads_store_secrets_and_references_only() {
        let boot = bootstrap(
            r#"
store: { sqlite: /tmp/x.db }
secrets: { master_key: "${MASTER}" }
logging: { level: nonsense }
providers:
  a: { type: openai, api_key: "${credential:openai-prod}", base_url: "${UNSET}" }
  b: { type: anthropic, api_key: "$${credential:escaped}" }
  c: { type: cohere, api_key: "${credential:cohere.key}", headers: { X-K: "k-${credential:hdr}" } }
  d: { type: openai, base_url: "${credential:not-here}" }
"#,
            &vars(),
        )
        .unwrap();
        assert!(matches!(boot.store, Some(StoreConfig::Sqlite(_))));
        assert!(boot.secrets.is_some());
        let refs: Vec<&str> = boot.references.iter().map(String::as_str).collect();
        assert_eq!(refs, ["cohere.key", "hdr", "openai-prod"]);
    }

    #[test]
    fn reports_problems_of_its_sections_only() {
        let problems = bootstrap(
            "store: { sqlite: /x.db, postgres: 'postgres://h/db' }\nsecrets: { master_key: \"${NOPE}\" }\nlogging: 7\n",
            &vars(),
        )
        .err()
        .unwrap_or_default();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["store", "secrets.master_key"], "{problems:?}");
        let none = bootstrap("providers: {}\n", &vars()).unwrap();
        assert!(none.store.is_none() && none.secrets.is_none() && none.references.is_empty());
        let wrong = bootstrap("secrets: [1]\n", &vars())
            .err()
            .unwrap_or_default();
        assert_eq!(wrong.first().map(|p| p.path.as_str()), Some("secrets"));
    }
}

//! `${ENV_VAR}` references in config strings, replaced before the file is typed. `$${` writes a
//! literal `${`. A reference to an unset variable is a problem reported with its path.
//!
//! `${credential:NAME}` references a stored provider credential instead (see
//! [`credentials`](super::credentials)); it is replaced in the same pass, so escapes work the
//! same way and the value of a variable is never searched for references.

use std::collections::HashMap;

use serde_yaml_ng::Value;

use super::ConfigProblem;
use super::credentials::{CredentialMode, CredentialUse};

/// Where variables come from: the process environment, or a map in tests.
pub trait VarSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl VarSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl VarSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// What references resolve against, and the credential references met on the way.
pub(super) struct Sources<'a> {
    pub vars: &'a dyn VarSource,
    pub credentials: CredentialMode<'a>,
    /// Every `${credential:NAME}` met, with where.
    pub uses: Vec<CredentialUse>,
}

impl<'a> Sources<'a> {
    /// Environment variables only: a credential reference is reported as unavailable.
    pub fn env(vars: &'a dyn VarSource) -> Self {
        Self {
            vars,
            credentials: CredentialMode::Unavailable,
            uses: Vec::new(),
        }
    }
}

/// Replaces references in every string value of `value`, in place. `keys` are the mapping
/// keys from the document's root to `value` (sequence items add none), which decide where a
/// credential may be used.
pub(super) fn substitute(
    value: &mut Value,
    path: &str,
    keys: &mut Vec<String>,
    sources: &mut Sources<'_>,
    problems: &mut Vec<ConfigProblem>,
) {
    match value {
        Value::String(s) if s.contains('$') => match expand(s, path, keys, sources) {
            Ok(expanded) => *s = expanded,
            Err(message) => problems.push(ConfigProblem::new(path, message)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), keys, sources, problems);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                keys.push(key);
                substitute(v, &child, keys, sources, problems);
                keys.pop();
            }
        }
        Value::Tagged(tagged) => substitute(&mut tagged.value, path, keys, sources, problems),
        _ => {}
    }
}

fn expand(
    s: &str,
    path: &str,
    keys: &[String],
    sources: &mut Sources<'_>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated '${' (write '$${' for a literal)".to_owned())?;
            let name = &tail[..end];
            if let Some(credential) = name.strip_prefix(super::credentials::PREFIX) {
                let value = sources.credentials.resolve(credential, path, keys)?;
                sources
                    .uses
                    .push(CredentialUse::new(path, keys, credential));
                out.push_str(&value);
            } else {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "'${{{name}}}' is not a valid environment variable name"
                    ));
                }
                let val = sources
                    .vars
                    .var(name)
                    .ok_or_else(|| format!("environment variable {name} is not set"))?;
                out.push_str(&val);
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        HashMap::from([("KEY".to_owned(), "sk-1".to_owned())])
    }

    fn env_expand(s: &str) -> Result<String, String> {
        let vars = vars();
        expand(s, "p", &[], &mut Sources::env(&vars))
    }

    #[test]
    fn expands_and_escapes() {
        assert_eq!(env_expand("${KEY}").as_deref(), Ok("sk-1"));
        assert_eq!(env_expand("a-${KEY}-b").as_deref(), Ok("a-sk-1-b"));
        assert_eq!(env_expand("$${KEY}").as_deref(), Ok("${KEY}"));
        assert_eq!(env_expand("cost $5").as_deref(), Ok("cost $5"));
        assert!(env_expand("${MISSING}").is_err());
        assert!(env_expand("${KEY").is_err());
        assert!(env_expand("${BAD-NAME}").is_err());
        // An escaped credential reference is text, not a reference.
        assert_eq!(
            env_expand("$${credential:x}").as_deref(),
            Ok("${credential:x}")
        );
    }

    #[test]
    fn reports_paths() {
        let mut v: Value = serde_yaml_ng::from_str(
            "providers:\n  a:\n    api_key: ${NOPE}\n    h: [x, '${NOPE}']",
        )
        .unwrap_or(Value::Null);
        let mut problems = Vec::new();
        let vars = vars();
        substitute(
            &mut v,
            "",
            &mut Vec::new(),
            &mut Sources::env(&vars),
            &mut problems,
        );
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["providers.a.api_key", "providers.a.h[1]"]);
    }
}

//! `${ENV_VAR}` references in config strings, replaced before the file is typed. `$${` writes a
//! literal `${`. A reference to an unset variable is a problem reported with its path.

use std::collections::HashMap;

use serde_yaml_ng::Value;

use super::ConfigProblem;

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

/// Replaces references in every string value of `value`, in place.
pub fn substitute(
    value: &mut Value,
    path: &str,
    vars: &dyn VarSource,
    problems: &mut Vec<ConfigProblem>,
) {
    match value {
        Value::String(s) if s.contains('$') => match expand(s, vars) {
            Ok(expanded) => *s = expanded,
            Err(message) => problems.push(ConfigProblem::new(path, message)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &format!("{path}[{i}]"), vars, problems);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                substitute(v, &child, vars, problems);
            }
        }
        Value::Tagged(tagged) => substitute(&mut tagged.value, path, vars, problems),
        _ => {}
    }
}

fn expand(s: &str, vars: &dyn VarSource) -> Result<String, String> {
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
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "'${{{name}}}' is not a valid environment variable name"
                ));
            }
            let val = vars
                .var(name)
                .ok_or_else(|| format!("environment variable {name} is not set"))?;
            out.push_str(&val);
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

    #[test]
    fn expands_and_escapes() {
        assert_eq!(expand("${KEY}", &vars()).as_deref(), Ok("sk-1"));
        assert_eq!(expand("a-${KEY}-b", &vars()).as_deref(), Ok("a-sk-1-b"));
        assert_eq!(expand("$${KEY}", &vars()).as_deref(), Ok("${KEY}"));
        assert_eq!(expand("cost $5", &vars()).as_deref(), Ok("cost $5"));
        assert!(expand("${MISSING}", &vars()).is_err());
        assert!(expand("${KEY", &vars()).is_err());
        assert!(expand("${BAD-NAME}", &vars()).is_err());
    }

    #[test]
    fn reports_paths() {
        let mut v: Value = serde_yaml_ng::from_str(
            "providers:\n  a:\n    api_key: ${NOPE}\n    h: [x, '${NOPE}']",
        )
        .unwrap_or(Value::Null);
        let mut problems = Vec::new();
        substitute(&mut v, "", &vars(), &mut problems);
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["providers.a.api_key", "providers.a.h[1]"]);
    }
}

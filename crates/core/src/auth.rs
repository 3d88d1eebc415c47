//! Stage `authenticate`: the client's key to a [`Principal`]. Keys live in memory in the runtime
//! snapshot as SHA-256 digests; the request path never touches a database. The key is read from
//! `Authorization: Bearer`, `api-key` or `x-api-key`.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AuthConfig;
use crate::error::AuthError;

/// Who is calling, and what they may use.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's name from the config (never the key itself).
    pub key_name: Arc<str>,
    models: Option<Arc<[ModelPattern]>>,
}

impl Principal {
    /// Whether this principal may use the model named `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(model)))
    }
}

/// A model name, or a pattern where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPattern(String);

impl ModelPattern {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative `*` glob with backtracking to the last star: linear for practical patterns.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The keys a snapshot accepts.
#[derive(Debug, Default)]
pub struct KeyTable {
    by_digest: HashMap<[u8; 32], Principal>,
    master: Option<[u8; 32]>,
}

impl KeyTable {
    pub fn from_config(auth: &AuthConfig) -> Self {
        let by_digest = auth
            .keys
            .iter()
            .map(|k| {
                let principal = Principal {
                    key_name: Arc::from(k.name.as_str()),
                    models: k
                        .models
                        .as_ref()
                        .map(|m| m.iter().cloned().map(ModelPattern).collect()),
                };
                (k.sha256, principal)
            })
            .collect();
        Self {
            by_digest,
            master: auth
                .master_key
                .as_ref()
                .map(|k| digest(k.expose_secret().as_bytes())),
        }
    }

    /// Number of keys, master key included.
    pub fn len(&self) -> usize {
        self.by_digest.len() + usize::from(self.master.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stage `authenticate`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let key = presented_key(headers).ok_or(AuthError::Missing)?;
        let d = digest(key);
        if let Some(master) = &self.master
            && bool::from(master.ct_eq(&d))
        {
            return Ok(Principal {
                key_name: Arc::from("master"),
                models: None,
            });
        }
        // The map is keyed by digests of high-entropy keys: a lookup reveals nothing useful
        // about any key through timing.
        self.by_digest.get(&d).cloned().ok_or(AuthError::Invalid)
    }
}

/// SHA-256 of a key, as stored in the config.
pub fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        let scheme = v.get(..7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let key = v[7..].trim_ascii();
        return (!key.is_empty()).then_some(key);
    }
    ["api-key", "x-api-key"]
        .iter()
        .find_map(|h| headers.get(*h))
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::config::KeyConfig;

    fn table() -> KeyTable {
        KeyTable::from_config(&AuthConfig {
            master_key: Some(SecretString::from("master-key-0123456789")),
            keys: vec![KeyConfig {
                name: "app".into(),
                sha256: digest(b"sk-app"),
                models: Some(vec!["gpt-*".into(), "mock".into()]),
            }],
        })
    }

    fn headers(name: &'static str, value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, http::HeaderValue::from_static(value));
        h
    }

    #[test]
    fn finds_keys_in_every_header() {
        let t = table();
        for (h, v) in [
            ("authorization", "Bearer sk-app"),
            ("authorization", "bearer   sk-app "),
            ("api-key", "sk-app"),
            ("x-api-key", "sk-app"),
        ] {
            let p = t.authenticate(&headers(h, v));
            assert_eq!(
                p.map(|p| p.key_name.to_string()).ok().as_deref(),
                Some("app")
            );
        }
        let master = t.authenticate(&headers("authorization", "Bearer master-key-0123456789"));
        assert!(master.is_ok_and(|p| p.may_use("anything")));
    }

    #[test]
    fn rejects_missing_and_unknown() {
        let t = table();
        assert_eq!(
            t.authenticate(&HeaderMap::new()).err(),
            Some(AuthError::Missing)
        );
        assert_eq!(
            t.authenticate(&headers("authorization", "Basic abc")).err(),
            Some(AuthError::Missing)
        );
        assert_eq!(
            t.authenticate(&headers("authorization", "Bearer sk-other"))
                .err(),
            Some(AuthError::Invalid)
        );
    }

    #[test]
    fn model_patterns() {
        let p = table().authenticate(&headers("x-api-key", "sk-app")).ok();
        let p = p.as_ref();
        assert!(p.is_some_and(|p| p.may_use("gpt-4o")));
        assert!(p.is_some_and(|p| p.may_use("mock")));
        assert!(p.is_some_and(|p| !p.may_use("mock-2")));
        assert!(p.is_some_and(|p| !p.may_use("claude")));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(glob_match(b"*", b""));
        assert!(!glob_match(b"a*b", b"ac"));
        assert!(glob_match(b"*-mini", b"gpt-4o-mini"));
    }
}

//! Stage `authenticate`: the client's key to a [`Principal`]. Keys live in memory in the runtime
//! snapshot as SHA-256 digests; the request path never touches a database. The key is read from
//! `Authorization: Bearer`, `api-key` or `x-api-key`.
//!
//! With `auth.oidc` configured, a presented key that no table knows and that has the shape of a
//! JWT is verified as an OIDC bearer token ([`authenticate_token`]). The keys are tried first
//! and synchronously, so a key's request pays nothing for OIDC: no allocation, no await; only a
//! refused key costs one shape check more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use portcullis_types::Role;

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::oidc::{JwtPrincipal, OidcVerifier};
use crate::quota::{Quota, Quotas};
use crate::virtual_key::{self, KeyHasher};

/// Who is calling, and what they may use.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The key's name from the config or the store (never the key itself); `oidc:<subject>` for
    /// a token.
    pub key_name: Arc<str>,
    models: Option<Arc<[ModelPattern]>>,
    /// Endpoint paths or patterns (`/v1/chat/completions`, `/v1/*`); `None`: every endpoint.
    endpoints: Option<Arc<[ModelPattern]>>,
    /// The token's subject (`sub`); `None` for a key.
    pub subject: Option<Arc<str>>,
    /// The organization: a stored key's organization id, or the organization a token claims,
    /// as the IdP writes it; `None` for a config key.
    pub org: Option<Arc<str>>,
    /// The team: a stored key's team id, or the team a token claims, as the IdP writes it;
    /// `None` for a config key.
    pub team: Option<Arc<str>>,
    /// A stored key's user id, if the key belongs to a user.
    pub user: Option<Arc<str>>,
    /// A stored key's id in the store; `None` for config keys and tokens.
    pub key_id: Option<Arc<str>>,
    /// The gateway role the token's roles map to; `None` for a key.
    pub role: Option<Role>,
    /// The limits and budgets of the key and of its user, team and organization; `None` when
    /// none of them has any.
    pub quotas: Option<Arc<Quotas>>,
    /// The key's metadata labels (a stored key's, or a config key's `labels`), matched by
    /// routing rules; `None` when it has none. Shared, so authenticating copies none.
    pub labels: Option<Arc<Labels>>,
}

/// A key's metadata labels: name to value.
pub type Labels = std::collections::BTreeMap<String, String>;

impl Principal {
    /// A key's principal: its name and model allow-list, no identity.
    fn key(name: Arc<str>, models: Option<Arc<[ModelPattern]>>) -> Self {
        Self {
            key_name: name,
            models,
            endpoints: None,
            subject: None,
            org: None,
            team: None,
            user: None,
            key_id: None,
            role: None,
            quotas: None,
            labels: None,
        }
    }

    /// A verified token's principal: any model (tokens carry no allow-list).
    fn token(p: JwtPrincipal) -> Self {
        Self {
            key_name: Arc::from(format!("oidc:{}", p.subject)),
            models: None,
            endpoints: None,
            subject: Some(Arc::from(p.subject)),
            org: p.org.map(Arc::from),
            team: p.team.map(Arc::from),
            user: None,
            key_id: None,
            role: Some(p.role),
            quotas: None,
            labels: None,
        }
    }

    /// Whether this principal may call `endpoint` (a path such as `/v1/embeddings`).
    pub fn may_call(&self, endpoint: &str) -> bool {
        self.endpoints
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(endpoint)))
    }

    /// Stage `authenticate`'s last check: [`AuthError::EndpointNotAllowed`] unless this
    /// principal may call `endpoint`.
    pub fn check_endpoint(&self, endpoint: &str) -> Result<(), AuthError> {
        if self.may_call(endpoint) {
            Ok(())
        } else {
            Err(AuthError::EndpointNotAllowed(endpoint.to_owned()))
        }
    }

    /// Whether this principal may use the model named `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(model)))
    }
}

#[cfg(test)]
impl Principal {
    /// A principal of `team` with `labels`, allowed `models` (`None`: any), for tests of what
    /// reads them.
    pub(crate) fn for_tests(
        team: Option<&str>,
        labels: &[(&str, &str)],
        models: Option<&[&str]>,
    ) -> Self {
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            team: team.map(Arc::from),
            labels: (!labels.is_empty()).then(|| Arc::new(labels)),
            ..Self::key(
                Arc::from("test"),
                models.map(|m| m.iter().map(|p| ModelPattern::new(*p)).collect()),
            )
        }
    }
}

/// A model name (or an endpoint path), or a pattern where `*` matches any run of characters.
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
                    quotas: Quotas {
                        key: Some(Quota::new(k.limits, k.budgets.clone())),
                        ..Quotas::default()
                    }
                    .shared(),
                    labels: (!k.labels.is_empty()).then(|| Arc::new(k.labels.clone())),
                    ..Principal::key(
                        Arc::from(k.name.as_str()),
                        k.models
                            .as_ref()
                            .map(|m| m.iter().cloned().map(ModelPattern).collect()),
                    )
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

    /// Stage `authenticate`, with the config's keys only.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.authenticate_with(headers, None)
    }

    /// Stage `authenticate`: the config's keys (and master key) first, then, for a key of the
    /// virtual-key shape, the keys of the store.
    pub fn authenticate_with(
        &self,
        headers: &HeaderMap,
        stored: Option<&StoredKeys>,
    ) -> Result<Principal, AuthError> {
        let key = presented_key(headers).ok_or(AuthError::Missing)?;
        if let Some(stored) = stored
            && let Ok(text) = std::str::from_utf8(key)
            && virtual_key::id_of(text).is_some()
        {
            return stored.authenticate(text, SystemTime::now());
        }
        let d = digest(key);
        if let Some(master) = &self.master
            && bool::from(master.ct_eq(&d))
        {
            return Ok(Principal::key(Arc::from("master"), None));
        }
        // The map is keyed by digests of high-entropy keys: a lookup reveals nothing useful
        // about any key through timing.
        self.by_digest.get(&d).cloned().ok_or(AuthError::Invalid)
    }
}

/// Why a request is not the gateway administrator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMaster {
    /// No key was sent.
    Missing,
    /// A key was sent, but not the master key.
    OtherKey,
    /// No master key is configured.
    NoMasterKey,
}

impl KeyTable {
    /// Whether the request carries the master key (compared in constant time), for the admin
    /// API. Reads the same headers as [`KeyTable::authenticate`].
    pub fn check_master(&self, headers: &HeaderMap) -> Result<(), NotMaster> {
        let key = presented_key(headers).ok_or(NotMaster::Missing)?;
        let master = self.master.as_ref().ok_or(NotMaster::NoMasterKey)?;
        if bool::from(master.ct_eq(&digest(key))) {
            Ok(())
        } else {
            Err(NotMaster::OtherKey)
        }
    }
}

/// The store's virtual keys as the request path sees them: by public id, with their digests, in
/// memory. The server refreshes this table from the store (every second), so a revoked key stops
/// working within that time and a request never waits on the database.
#[derive(Debug)]
pub struct StoredKeys {
    hasher: Arc<KeyHasher>,
    by_id: HashMap<String, StoredKey>,
}

/// One active virtual key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub name: Arc<str>,
    pub digest: Vec<u8>,
    /// The digest before the last rotation, accepted until the time given.
    pub previous: Option<(Vec<u8>, SystemTime)>,
    pub expires_at: Option<SystemTime>,
    /// Model names or patterns; `None`: any model. Shared, so authenticating allocates nothing.
    pub models: Option<Arc<[ModelPattern]>>,
    /// Endpoint paths or patterns; `None`: every endpoint.
    pub endpoints: Option<Arc<[ModelPattern]>>,
    /// Who the key belongs to, for limits, budgets and accounting.
    pub owner: KeyOwner,
}

/// Where a stored key sits in the tenancy tree (store ids).
#[derive(Debug, Clone, Default)]
pub struct KeyOwner {
    pub key_id: Option<Arc<str>>,
    pub org: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    pub user: Option<Arc<str>>,
    /// The limits and budgets of the key, its user, team and organization.
    pub quotas: Option<Arc<Quotas>>,
    /// The key's metadata labels; `None` when it has none.
    pub labels: Option<Arc<Labels>>,
}

impl StoredKeys {
    /// The table of `keys`, by public id, checked with `hasher`.
    pub fn new(
        hasher: Arc<KeyHasher>,
        keys: impl IntoIterator<Item = (String, StoredKey)>,
    ) -> Self {
        Self {
            hasher,
            by_id: keys.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A presented virtual key (already known to have the shape) at time `now`.
    fn authenticate(&self, key: &str, now: SystemTime) -> Result<Principal, AuthError> {
        let stored = virtual_key::id_of(key)
            .and_then(|id| self.by_id.get(id))
            .ok_or(AuthError::Invalid)?;
        if stored.expires_at.is_some_and(|e| e <= now) {
            return Err(AuthError::Invalid);
        }
        let current = self.hasher.verify(key, &stored.digest);
        let previous = stored
            .previous
            .as_ref()
            .is_some_and(|(digest, until)| now < *until && self.hasher.verify(key, digest));
        if !(current || previous) {
            return Err(AuthError::Invalid);
        }
        let owner = &stored.owner;
        Ok(Principal {
            endpoints: stored.endpoints.clone(),
            key_id: owner.key_id.clone(),
            org: owner.org.clone(),
            team: owner.team.clone(),
            user: owner.user.clone(),
            quotas: owner.quotas.clone(),
            labels: owner.labels.clone(),
            ..Principal::key(stored.name.clone(), stored.models.clone())
        })
    }
}

/// Stage `authenticate`, for what the key tables refused (`failed`, from
/// [`KeyTable::authenticate_with`]): an unknown key of the JWT shape is verified by `oidc`, when
/// OIDC is configured. A valid token is a principal unless its role is `viewer` (viewers only
/// read the admin API: 403). Without OIDC, or for anything but an unknown key, `failed` stands.
pub async fn authenticate_token(
    oidc: Option<&OidcVerifier>,
    headers: &HeaderMap,
    failed: AuthError,
) -> Result<Principal, AuthError> {
    let (Some(oidc), AuthError::Invalid) = (oidc, &failed) else {
        return Err(failed);
    };
    let Some(token) = presented_jwt(headers) else {
        return Err(failed);
    };
    let verified = oidc.verify(token).await?;
    if verified.role < Role::Member {
        return Err(AuthError::RoleNotAllowed(verified.role));
    }
    Ok(Principal::token(verified))
}

/// The presented key (from the same headers as keys) when it has the shape of a JWT: three
/// base64url segments separated by dots, the first two not empty (the third is empty in an
/// unsigned `alg: none` token, which the verifier then refuses by name).
pub fn presented_jwt(headers: &HeaderMap) -> Option<&str> {
    let key = presented_key(headers)?;
    let mut segments = key.split(|&b| b == b'.');
    let shaped = matches!(
        (segments.next(), segments.next(), segments.next(), segments.next()),
        (Some(h), Some(p), Some(_), None) if !h.is_empty() && !p.is_empty()
    ) && key
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if shaped {
        // Only ASCII was accepted above.
        std::str::from_utf8(key).ok()
    } else {
        None
    }
}

/// SHA-256 of a key, as stored in the config.
pub fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// The key a request presents, from `Authorization: Bearer`, `api-key` or `x-api-key` (in that
/// order), trimmed; `None` when there is none. The one reader of presented keys: the request
/// path and the admin API's caller resolution both use it.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
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
            hashing_secret: None,
            keys: vec![KeyConfig {
                name: "app".into(),
                sha256: digest(b"sk-app"),
                models: Some(vec!["gpt-*".into(), "mock".into()]),
                limits: Default::default(),
                budgets: Vec::new(),
                labels: [("env".to_owned(), "prod".to_owned())].into(),
            }],
            oidc: None,
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
            let p = t.authenticate(&headers(h, v)).ok();
            assert_eq!(p.as_ref().map(|p| &*p.key_name), Some("app"));
            let labels = p.and_then(|p| p.labels);
            assert_eq!(labels.map(|l| l["env"].clone()).as_deref(), Some("prod"));
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
    fn stored_virtual_keys_authenticate_until_expiry_and_after_rotation() {
        use std::time::Duration;
        let hasher = Arc::new(KeyHasher::new(&[3u8; 32]).unwrap());
        let current = hasher.generate().unwrap();
        let old = hasher.generate().unwrap();
        let now = SystemTime::now();
        let key = |expires_at, previous| StoredKey {
            name: Arc::from("vk"),
            digest: current.digest.clone(),
            previous,
            expires_at,
            models: Some(Arc::from([ModelPattern::new("gpt-*")])),
            endpoints: Some(Arc::from([
                ModelPattern::new("/v1/chat/*"),
                ModelPattern::new("/v1/models"),
            ])),
            owner: KeyOwner {
                key_id: Some(Arc::from("k1")),
                org: Some(Arc::from("o1")),
                team: Some(Arc::from("t1")),
                user: None,
                quotas: None,
                labels: Some(Arc::new([("tier".to_owned(), "gold".to_owned())].into())),
            },
        };
        let stored = |k: StoredKey| StoredKeys::new(hasher.clone(), [(current.id.clone(), k)]);
        let presented = current.key.expose_secret();
        let p = stored(key(None, None))
            .authenticate(presented, now)
            .unwrap();
        assert_eq!(&*p.key_name, "vk");
        assert_eq!(p.labels.as_ref().map(|l| l["tier"].as_str()), Some("gold"));
        assert!(p.may_use("gpt-4o") && !p.may_use("claude"));
        assert!(p.may_call("/v1/chat/completions") && p.may_call("/v1/models"));
        assert_eq!(
            (
                p.key_id.as_deref(),
                p.org.as_deref(),
                p.team.as_deref(),
                p.user.as_deref()
            ),
            (Some("k1"), Some("o1"), Some("t1"), None)
        );
        assert_eq!(
            p.check_endpoint("/v1/embeddings"),
            Err(AuthError::EndpointNotAllowed("/v1/embeddings".into()))
        );
        // Expired.
        let t = stored(key(Some(now - Duration::from_secs(1)), None));
        assert_eq!(
            t.authenticate(presented, now).err(),
            Some(AuthError::Invalid)
        );
        // A rotated key's old secret (same id) works during the grace period only.
        let old_key = old.key.expose_secret().replacen(&old.id, &current.id, 1);
        let grace = |until| key(None, Some((hasher.digest(&old_key), until)));
        let t = stored(grace(now + Duration::from_secs(60)));
        assert!(t.authenticate(&old_key, now).is_ok());
        let t = stored(grace(now - Duration::from_secs(1)));
        assert_eq!(
            t.authenticate(&old_key, now).err(),
            Some(AuthError::Invalid)
        );
        // Unknown ids and wrong secrets.
        let t = stored(key(None, None));
        assert_eq!(
            t.authenticate(old.key.expose_secret(), now).err(),
            Some(AuthError::Invalid)
        );
        // Through the stage: config keys first, then stored keys for the virtual-key shape.
        let mut h = HeaderMap::new();
        h.insert("x-api-key", http::HeaderValue::from_str(presented).unwrap());
        assert!(table().authenticate_with(&h, Some(&t)).is_ok());
        assert_eq!(
            table().authenticate(&h).err(),
            Some(AuthError::Invalid),
            "without the store a virtual key is unknown"
        );
    }

    #[test]
    fn only_the_master_key_is_the_master() {
        let t = table();
        assert_eq!(t.check_master(&HeaderMap::new()), Err(NotMaster::Missing));
        assert_eq!(
            t.check_master(&headers("authorization", "Bearer sk-app")),
            Err(NotMaster::OtherKey)
        );
        assert_eq!(
            t.check_master(&headers("x-api-key", "master-key-0123456789")),
            Ok(())
        );
        let none = KeyTable::default();
        assert_eq!(
            none.check_master(&headers("x-api-key", "master-key-0123456789")),
            Err(NotMaster::NoMasterKey)
        );
    }

    #[test]
    fn the_jwt_shape() {
        for jwt in [
            "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_",
            "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        ] {
            assert!(
                presented_jwt(&headers("authorization", jwt)).is_some(),
                "{jwt}"
            );
        }
        assert!(presented_jwt(&headers("x-api-key", "aGVhZA.Ym9keQ.c2ln")).is_some());
        for not_jwt in [
            "Bearer sk-app",
            "Bearer a.b",
            "Bearer a.b.c.d",
            "Bearer .b.c",
            "Bearer a..c",
            "Bearer a.b+.c",
            "Bearer a.b.c=",
            "Bearer pk-abcdefghijklm-0123456789",
        ] {
            assert!(
                presented_jwt(&headers("authorization", not_jwt)).is_none(),
                "{not_jwt}"
            );
        }
    }

    #[tokio::test]
    async fn tokens_are_tried_only_for_unknown_keys_of_the_jwt_shape() {
        use portcullis_testkit::oidc::{self, TestIdp, TestKey};
        use serde_json::json;

        use crate::oidc::{ClaimMapping, GatewayRole, OidcConfig, OidcError};

        let idp = TestIdp::start(&[TestKey::Rsa1]).await.unwrap();
        let mapping = ClaimMapping {
            org: Some("org".into()),
            team: Some("team".into()),
            role: "roles".into(),
            roles: std::collections::HashMap::from([
                ("dev".into(), GatewayRole::Member),
                ("auditor".into(), GatewayRole::Viewer),
            ]),
        };
        let config = OidcConfig::new(oidc::ISSUER, oidc::AUDIENCE, idp.jwks_url(), mapping);
        let client = crate::provider::client::build(std::time::Duration::from_secs(2)).unwrap();
        let verifier = OidcVerifier::new(config, client).unwrap();
        let token = |roles: serde_json::Value| {
            let mut c = oidc::claims("user-7");
            c["org"] = json!("acme");
            c["team"] = json!("search");
            c["roles"] = roles;
            let value = format!("Bearer {}", TestKey::Rsa1.sign(&c).unwrap());
            let mut h = HeaderMap::new();
            h.insert(
                "authorization",
                http::HeaderValue::from_str(&value).unwrap(),
            );
            h
        };
        /// The stage as the pipeline runs it.
        async fn authenticate(
            h: HeaderMap,
            oidc: Option<&OidcVerifier>,
        ) -> Result<Principal, AuthError> {
            match table().authenticate_with(&h, None) {
                Ok(p) => Ok(p),
                Err(e) => authenticate_token(oidc, &h, e).await,
            }
        }

        let p = authenticate(token(json!(["dev"])), Some(&verifier))
            .await
            .unwrap();
        assert_eq!(&*p.key_name, "oidc:user-7");
        assert_eq!(p.subject.as_deref(), Some("user-7"));
        assert_eq!(p.org.as_deref(), Some("acme"));
        assert_eq!(p.team.as_deref(), Some("search"));
        assert_eq!(p.role, Some(GatewayRole::Member));
        assert!(p.may_use("any-model"));

        assert_eq!(
            authenticate(token(json!(["auditor"])), Some(&verifier))
                .await
                .err(),
            Some(AuthError::RoleNotAllowed(GatewayRole::Viewer))
        );
        let mut expired = oidc::claims("user-7");
        expired["exp"] = json!(1);
        let mut h = HeaderMap::new();
        let value = format!("Bearer {}", TestKey::Rsa1.sign(&expired).unwrap());
        h.insert(
            "authorization",
            http::HeaderValue::from_str(&value).unwrap(),
        );
        assert_eq!(
            authenticate(h, Some(&verifier)).await.err(),
            Some(AuthError::Token(OidcError::Expired))
        );
        // Without OIDC a token is an unknown key; keys never reach the verifier.
        assert_eq!(
            authenticate(token(json!(["dev"])), None).await.err(),
            Some(AuthError::Invalid)
        );
        let fetches = idp.fetches();
        let p = authenticate(headers("x-api-key", "sk-app"), Some(&verifier)).await;
        assert_eq!(
            p.map(|p| p.key_name.to_string()).ok().as_deref(),
            Some("app")
        );
        for (h, v, want) in [
            ("authorization", "Bearer sk-unknown", AuthError::Invalid),
            ("authorization", "Basic abc", AuthError::Missing),
        ] {
            assert_eq!(
                authenticate(headers(h, v), Some(&verifier)).await.err(),
                Some(want)
            );
        }
        assert_eq!(idp.fetches(), fetches, "no key went to the IdP");
        assert_eq!(
            table()
                .authenticate(&headers("x-api-key", "sk-app"))
                .unwrap()
                .role,
            None
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

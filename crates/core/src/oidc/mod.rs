//! OIDC bearer tokens: verifies a JWT issued by an identity provider and maps its claims to a
//! gateway principal (subject, organization, team, role).
//!
//! Why it looks like this:
//!
//! - **Only asymmetric algorithms** (RS*, PS*, ES*, EdDSA; RS256 and ES256 by default). `none`
//!   and HS* are refused before any key is looked up: an HMAC "key" taken from a public JWKS
//!   would let anyone sign. The algorithm is read from the token header by this module (not by
//!   the JWT library) so that an unknown or forbidden name is an [`OidcError::UnsupportedAlgorithm`]
//!   rather than a parse error, and the key's family and declared `alg` must match it.
//! - **Keys come from the IdP's JWKS**, cached by `kid` in an `ArcSwap`: the common path reads
//!   the cached set without awaiting anything. A token naming an unknown `kid` triggers a refresh
//!   (the IdP rotated its keys), but at most one per `min_refresh_interval` (10 s), so a stream of
//!   forged kids cannot make the gateway hammer the IdP; concurrent callers share one refresh
//!   (a tokio `Mutex`, with a re-check after locking). A set older than `max_age` (1 h) is
//!   refreshed on use. When a refresh fails, the last good set keeps verifying its keys, so an
//!   IdP outage does not log everybody out.
//! - **Claims checked**: `iss` equal to the issuer, `aud` containing the audience, `exp`
//!   required, `nbf` honoured, both with a leeway (60 s by default) for clock skew.
//! - **Claim mapping** by configuration: a claim name is first looked up as a literal top-level
//!   key (so URL-shaped claims like `https://example.com/org` work), then as a dotted path into
//!   nested objects (`realm_access.roles`). The role claim may be a string or an array of strings;
//!   IdP role strings are mapped to gateway roles and, for an array, the most privileged mapped
//!   role wins. The organization and team claims are optional in a token (a gateway admin
//!   belongs to neither; the admin API requires them by role), but when present they must be
//!   non-empty strings.
//! - **Errors and logs never carry the token or a claim value**: an [`OidcError`] names what
//!   failed (and, for a missing claim, the configured claim name), nothing more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::provider::client::HttpClient;
use crate::provider::upstream;

#[cfg(test)]
mod tests;

/// Largest JWKS document accepted from an identity provider.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The gateway role a token maps to.
pub use portcullis_types::Role as GatewayRole;

/// Which claims carry the organization, team and role, and how IdP roles map to gateway roles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimMapping {
    /// Claim name or dotted path of the organization; `None`: tokens carry no organization. A
    /// token without the claim has no organization.
    pub org: Option<String>,
    /// Claim name or dotted path of the team; `None`: tokens carry no team. A token without
    /// the claim has no team.
    pub team: Option<String>,
    /// Claim name or dotted path of the role (a string or an array of strings).
    pub role: String,
    /// IdP role string → gateway role. A role not in this map is not accepted.
    pub roles: HashMap<String, GatewayRole>,
}

/// One identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// A value `aud` must contain.
    pub audience: String,
    /// Where the IdP publishes its key set (`http` or `https`).
    pub jwks_url: String,
    /// Accepted signature algorithms; asymmetric ones only.
    pub algorithms: Vec<Algorithm>,
    /// Clock-skew allowance for `exp` and `nbf`.
    pub leeway: Duration,
    pub claims: ClaimMapping,
}

impl OidcConfig {
    /// A config with the default algorithms (RS256, ES256) and leeway (60 s).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks_url: impl Into<String>,
        claims: ClaimMapping,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: jwks_url.into(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway: Duration::from_secs(60),
            claims,
        }
    }
}

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtPrincipal {
    /// The token's `sub`.
    pub subject: String,
    pub org: Option<String>,
    pub team: Option<String>,
    pub role: GatewayRole,
    /// The token's `exp`, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Why a token was refused. Never carries the token or a claim value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's signature algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token's key id is missing or not in the identity provider's key set")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the claim `{0}` (or it is not a string)")]
    MissingClaim(String),
    #[error("the token's role is not mapped to a gateway role")]
    UnknownRole,
    #[error("the identity provider's key set could not be fetched")]
    JwksUnavailable,
}

/// A configuration the verifier cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcConfigError {
    #[error("oidc: {0}")]
    Invalid(&'static str),
}

/// How often the key set may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksTiming {
    /// Least time between two fetches (unknown kids within it are refused without a fetch).
    pub min_refresh_interval: Duration,
    /// A set older than this is refreshed when next used.
    pub max_age: Duration,
    /// Longest a fetch may take.
    pub fetch_timeout: Duration,
}

impl Default for JwksTiming {
    fn default() -> Self {
        Self {
            min_refresh_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(3600),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

/// One verification key of the set.
#[derive(Clone)]
struct VerifyKey {
    key: DecodingKey,
    /// The JWK's `alg`, when it declares one: tokens must then use exactly it.
    alg: Option<String>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyKey>>,
    /// When it was fetched; `None` for the empty set before the first fetch.
    fetched_at: Option<Instant>,
}

impl KeySet {
    fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        self.fetched_at
            .is_some_and(|t| now.saturating_duration_since(t) < max_age)
    }
}

#[derive(Debug, Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_failed: bool,
}

/// The identity provider's keys, fetched on demand and cached by `kid`.
pub struct JwksCache {
    client: HttpClient,
    uri: http::Uri,
    set: ArcSwap<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
    timing: JwksTiming,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("keys", &self.set.load().keys.len())
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache of the set at `uri`, empty until first used.
    pub fn new(client: HttpClient, uri: http::Uri, timing: JwksTiming) -> Self {
        Self {
            client,
            uri,
            set: ArcSwap::from_pointee(KeySet::default()),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            timing,
        }
    }

    /// The key named `kid`, refreshing the set if it is unknown or stale (within the limits).
    async fn key(&self, kid: &str) -> Result<Arc<VerifyKey>, OidcError> {
        {
            let set = self.set.load();
            if set.is_fresh(Instant::now(), self.timing.max_age)
                && let Some(k) = set.keys.get(kid)
            {
                return Ok(k.clone());
            }
        }
        let mut state = self.refresh.lock().await;
        // Another caller may have refreshed while this one waited for the lock.
        let set = self.set.load_full();
        let now = Instant::now();
        if set.is_fresh(now, self.timing.max_age)
            && let Some(k) = set.keys.get(kid)
        {
            return Ok(k.clone());
        }
        let throttled = state
            .last_attempt
            .is_some_and(|t| now.saturating_duration_since(t) < self.timing.min_refresh_interval);
        if !throttled {
            state.last_attempt = Some(now);
            match self.fetch().await {
                Ok(keys) => {
                    state.last_failed = false;
                    let fresh = Arc::new(KeySet {
                        keys,
                        fetched_at: Some(Instant::now()),
                    });
                    self.set.store(fresh.clone());
                    return fresh.keys.get(kid).cloned().ok_or(OidcError::UnknownKey);
                }
                Err(reason) => {
                    tracing::warn!(
                        reason,
                        "oidc: fetching the identity provider's key set failed"
                    );
                    state.last_failed = true;
                }
            }
        }
        // Throttled, or the fetch failed: the last good set still verifies its own keys.
        match set.keys.get(kid) {
            Some(k) => Ok(k.clone()),
            None if state.last_failed || set.fetched_at.is_none() => {
                Err(OidcError::JwksUnavailable)
            }
            None => Err(OidcError::UnknownKey),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyKey>>, &'static str> {
        let request = upstream::get(&self.uri, "application/json");
        let fetch = async {
            let response = upstream::send(&self.client, request)
                .await
                .map_err(|_| "connection failed")?;
            if !response.status().is_success() {
                return Err("the endpoint answered with an error status");
            }
            let body = upstream::read_body_max(response.into_body(), MAX_JWKS_BYTES)
                .await
                .ok_or("the body could not be read or was too large")?;
            parse_jwks(&body).ok_or("the body is not a JWK set")
        };
        tokio::time::timeout(self.timing.fetch_timeout, fetch)
            .await
            .unwrap_or(Err("the fetch timed out"))
    }
}

/// The signing keys of a JWKS document. Keys that cannot be used (no `kid`, `use` other than
/// `sig`, symmetric, or of a type the library does not know) are skipped, not fatal: an IdP may
/// publish encryption keys beside its signing keys.
fn parse_jwks(body: &[u8]) -> Option<HashMap<String, Arc<VerifyKey>>> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet = serde_json::from_slice(body).ok()?;
    let mut keys = HashMap::new();
    for v in raw.keys {
        let Some(kid) = v.get("kid").and_then(Value::as_str).map(str::to_owned) else {
            continue;
        };
        if v.get("use").is_some_and(|u| u != "sig") || v.get("kty").is_some_and(|k| k == "oct") {
            continue;
        }
        let alg = v.get("alg").and_then(Value::as_str).map(str::to_owned);
        let Ok(jwk) = serde_json::from_value::<Jwk>(v) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        keys.insert(kid, Arc::new(VerifyKey { key, alg }));
    }
    Some(keys)
}

/// The header fields read before verification.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Verifies tokens of one identity provider.
#[derive(Debug)]
pub struct OidcVerifier {
    config: OidcConfig,
    jwks: JwksCache,
}

impl OidcVerifier {
    /// A verifier for `config`, fetching keys with `client` on the default timing.
    pub fn new(config: OidcConfig, client: HttpClient) -> Result<Self, OidcConfigError> {
        Self::with_timing(config, client, JwksTiming::default())
    }

    /// A verifier with its own key-set timing.
    pub fn with_timing(
        config: OidcConfig,
        client: HttpClient,
        timing: JwksTiming,
    ) -> Result<Self, OidcConfigError> {
        let invalid = OidcConfigError::Invalid;
        if config.issuer.is_empty() {
            return Err(invalid("issuer is empty"));
        }
        if config.audience.is_empty() {
            return Err(invalid("audience is empty"));
        }
        if config.claims.role.is_empty() {
            return Err(invalid("the role claim name is empty"));
        }
        if config.algorithms.is_empty() {
            return Err(invalid("no algorithm is allowed"));
        }
        if config
            .algorithms
            .iter()
            .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(invalid("HS* algorithms cannot be verified against a JWKS"));
        }
        let uri: http::Uri = config
            .jwks_url
            .parse()
            .map_err(|_| invalid("jwks_url is not a URL"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(invalid("jwks_url must be an http or https URL"));
        }
        Ok(Self {
            config,
            jwks: JwksCache::new(client, uri, timing),
        })
    }

    /// The configuration this verifier was built with (a reload compares it with the new one).
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verifies `token` and maps its claims to a principal.
    pub async fn verify(&self, token: &str) -> Result<JwtPrincipal, OidcError> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::Malformed);
        };
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice::<RawHeader>(&h).ok())
            .ok_or(OidcError::Malformed)?;
        if header.crit.is_some() {
            // No critical extension is understood here (RFC 7515 §4.1.11).
            return Err(OidcError::Malformed);
        }
        let alg = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or(OidcError::UnsupportedAlgorithm)?;
        let kid = header.kid.ok_or(OidcError::UnknownKey)?;
        let key = self.jwks.key(&kid).await?;
        if key.alg.as_deref().is_some_and(|a| a != header.alg) {
            return Err(OidcError::BadSignature);
        }

        let mut validation = Validation::new(alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.kind()))?
            .claims;
        self.principal(&claims)
    }

    fn principal(&self, claims: &Value) -> Result<JwtPrincipal, OidcError> {
        let mapping = &self.config.claims;
        let subject = string_claim(claims, "sub")?;
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| OidcError::MissingClaim("exp".into()))?;
        let org = optional_string_claim(claims, mapping.org.as_deref())?;
        let team = optional_string_claim(claims, mapping.team.as_deref())?;
        let role = match claim(claims, &mapping.role) {
            Some(Value::String(s)) => mapping.roles.get(s).copied(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|s| mapping.roles.get(s).copied())
                .max(),
            _ => return Err(OidcError::MissingClaim(mapping.role.clone())),
        }
        .ok_or(OidcError::UnknownRole)?;
        Ok(JwtPrincipal {
            subject,
            org,
            team,
            role,
            expires_at,
        })
    }
}

fn map_jwt_error(kind: &ErrorKind) -> OidcError {
    match kind {
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
        ErrorKind::InvalidAudience => OidcError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => OidcError::WrongIssuer,
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => OidcError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => OidcError::MissingClaim(c.clone()),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => OidcError::Malformed,
        ErrorKind::MissingAlgorithm | ErrorKind::InvalidAlgorithmName => {
            OidcError::UnsupportedAlgorithm
        }
        // Signature failures, and keys that cannot verify this token (`InvalidAlgorithm`: the
        // key's family is not the token's algorithm, which was already checked as allowed).
        _ => OidcError::BadSignature,
    }
}

/// The claim `name`: a literal top-level key first, else a dotted path into nested objects.
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    if !name.contains('.') {
        return None;
    }
    name.split('.').try_fold(claims, |v, part| v.get(part))
}

fn string_claim(claims: &Value, name: &str) -> Result<String, OidcError> {
    match claim(claims, name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(OidcError::MissingClaim(name.to_owned())),
    }
}

/// The claim `name` (when one is configured) if the token has it; present, it must be a
/// non-empty string.
fn optional_string_claim(claims: &Value, name: Option<&str>) -> Result<Option<String>, OidcError> {
    match name.map(|n| (n, claim(claims, n))) {
        None | Some((_, None | Some(Value::Null))) => Ok(None),
        Some((n, Some(_))) => string_claim(claims, n).map(Some),
    }
}

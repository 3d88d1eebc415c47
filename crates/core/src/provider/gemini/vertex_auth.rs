//! Vertex AI credentials: a Google service account's key signs a JWT (RS256), which the OAuth
//! token endpoint (`token_uri` of the key file) exchanges for an access token (the JWT-bearer
//! grant, RFC 7523). Access tokens live an hour; [`TokenSource`] caches one and fetches the next
//! when less than [`REFRESH_MARGIN`] remains, one fetch at a time: requests arriving during a
//! fetch wait for it and share its token. If a fetch fails while the cached token is still valid
//! for a little while, that token is used.
//!
//! The private key never leaves [`ServiceAccount`] (printed as its email only) and access tokens
//! only exist as sensitive header values. Errors name what failed, never a key, token, email or
//! URL.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::provider::client::HttpClient;
use crate::provider::{ProviderError, upstream};

/// The OAuth scope every Vertex AI call needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token endpoint, for key files that do not name one.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// How long before its expiry a token is replaced.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// A cached token this close to expiry is not used even when a refresh fails.
const LAST_RESORT_MARGIN: Duration = Duration::from_secs(10);
/// Lifetime asked for in the JWT (Google's maximum).
const ASSERTION_LIFETIME_SECS: u64 = 3600;
const GRANT_TYPE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";

/// The fields of a service account key file (JSON) that the token flow needs.
#[derive(Clone)]
pub struct ServiceAccount {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    project_id: Option<String>,
    key: EncodingKey,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    project_id: Option<String>,
}

impl ServiceAccount {
    /// Reads a service account key file's JSON. The error says which field is wrong, never a
    /// value.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|_| "is not a service account key file (JSON object)".to_owned())?;
        if let Some(kind) = file.kind.as_deref()
            && kind != "service_account"
        {
            return Err(
                "is not a service account key (field `type` must be service_account)".into(),
            );
        }
        let client_email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or("lacks the field `client_email`")?;
        let pem = file.private_key.ok_or("lacks the field `private_key`")?;
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| "has a `private_key` that is not an RSA private key in PEM")?;
        let token_uri = file
            .token_uri
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        match token_uri.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
            _ => return Err("has a `token_uri` that is not an http(s) URL".into()),
        }
        Ok(Self {
            client_email,
            private_key_id: file.private_key_id.filter(|k| !k.is_empty()),
            token_uri,
            project_id: file.project_id.filter(|p| !p.is_empty()),
            key,
        })
    }

    /// The project the key belongs to, if the file says.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The signed JWT asking for a `cloud-platform` token, issued at `now` (Unix seconds).
    fn assertion(&self, now: u64) -> Result<String, ProviderError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| {
            ProviderError::InvalidResponse("cannot sign the service account assertion".into())
        })
    }
}

struct Cached {
    authorization: HeaderValue,
    expires_at: Instant,
}

/// Access tokens for one service account, cached and refreshed.
pub struct TokenSource {
    account: Arc<ServiceAccount>,
    token_uri: http::Uri,
    client: HttpClient,
    current: ArcSwapOption<Cached>,
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl TokenSource {
    pub fn new(account: Arc<ServiceAccount>, client: HttpClient) -> Self {
        let token_uri = upstream::uri(&account.token_uri, "");
        Self {
            account,
            token_uri,
            client,
            current: ArcSwapOption::empty(),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The `Authorization` header value (`Bearer <token>`, marked sensitive) for the next call.
    pub async fn authorization(&self) -> Result<HeaderValue, ProviderError> {
        if let Some(value) = self.cached(REFRESH_MARGIN) {
            return Ok(value);
        }
        let _one_at_a_time = self.refresh.lock().await;
        // Whoever held the lock before may have refreshed already.
        if let Some(value) = self.cached(REFRESH_MARGIN) {
            return Ok(value);
        }
        match self.fetch().await {
            Ok(fresh) => {
                let value = fresh.authorization.clone();
                self.current.store(Some(Arc::new(fresh)));
                Ok(value)
            }
            Err(e) => self.cached(LAST_RESORT_MARGIN).ok_or(e),
        }
    }

    /// The cached token if it is valid for more than `margin`.
    fn cached(&self, margin: Duration) -> Option<HeaderValue> {
        let current = self.current.load();
        let cached = current.as_ref()?;
        (cached.expires_at > Instant::now() + margin).then(|| cached.authorization.clone())
    }

    async fn fetch(&self) -> Result<Cached, ProviderError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self.account.assertion(now)?;
        let form = format!("grant_type={GRANT_TYPE}&assertion={assertion}");
        let mut request = Request::new(Full::new(Bytes::from(form)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_uri.clone();
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let sent_at = Instant::now();
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if !status.is_success() {
            // The body may echo the account; it is not read.
            return Err(token_error(status));
        }
        let body = upstream::read_body(response.into_body()).await?;
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            ProviderError::InvalidResponse("the OAuth token endpoint sent no access token".into())
        })?;
        let authorization = upstream::secret_header(&format!("Bearer {}", token.access_token))
            .ok_or_else(|| {
                ProviderError::InvalidResponse(
                    "the OAuth token endpoint sent an unusable access token".into(),
                )
            })?;
        Ok(Cached {
            authorization,
            expires_at: sent_at + Duration::from_secs(token.expires_in.unwrap_or(3600)),
        })
    }
}

/// A refused token request is a credentials problem; an unavailable endpoint is not.
fn token_error(status: StatusCode) -> ProviderError {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ProviderError::Server {
            status: status.as_u16(),
            message: Some("the OAuth token endpoint failed".into()),
        }
    } else {
        ProviderError::Unauthorized {
            status: status.as_u16(),
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::{Value, json};

    use super::*;

    const PRIVATE: &str = include_str!("../../../../testkit/fixtures/TEST-ONLY-rsa-private.pem");
    const PUBLIC: &str = include_str!("../../../../testkit/fixtures/TEST-ONLY-rsa-public.pem");

    fn key_file() -> Value {
        json!({
            "type": "service_account", "project_id": "proj-1", "private_key_id": "kid-1",
            "private_key": PRIVATE, "client_email": "gw@proj-1.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token",
        })
    }

    #[test]
    fn key_files_are_checked_without_echoing_values() {
        let account = ServiceAccount::from_json(&key_file().to_string()).unwrap();
        assert_eq!(account.project_id(), Some("proj-1"));
        let printed = format!("{account:?}");
        assert!(
            !printed.contains("gw@") && !printed.contains("PRIVATE"),
            "{printed}"
        );

        let broken = |change: &dyn Fn(&mut Value)| {
            let mut file = key_file();
            change(&mut file);
            ServiceAccount::from_json(&file.to_string()).unwrap_err()
        };
        assert!(broken(&|f| f["type"] = json!("authorized_user")).contains("`type`"));
        assert!(broken(&|f| f["client_email"] = json!("")).contains("client_email"));
        let e = broken(&|f| {
            f["private_key"] =
                json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        });
        assert!(e.contains("private_key") && !e.contains("AAAA"), "{e}");
        assert!(broken(&|f| f["token_uri"] = json!("file:///etc/x")).contains("token_uri"));
        assert!(ServiceAccount::from_json("[]").is_err());
        let mut file = key_file();
        file.as_object_mut().unwrap().remove("token_uri");
        let account = ServiceAccount::from_json(&file.to_string()).unwrap();
        assert_eq!(account.token_uri, DEFAULT_TOKEN_URI);
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_google_accepts() {
        let account = ServiceAccount::from_json(&key_file().to_string()).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let jwt = account.assertion(now).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("kid-1"));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["http://127.0.0.1:9/token"]);
        validation.set_issuer(&["gw@proj-1.iam.gserviceaccount.com"]);
        let claims = jsonwebtoken::decode::<Value>(
            &jwt,
            &DecodingKey::from_rsa_pem(PUBLIC.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["iat"], now);
        assert_eq!(claims["exp"], now + 3600);
    }

    /// A token endpoint answering with `expires_in` from `lifetime` (or `status` when not 200),
    /// numbering its tokens; and a token source pointed at it.
    async fn token_endpoint(
        lifetime: Arc<std::sync::atomic::AtomicU64>,
        status: Arc<std::sync::atomic::AtomicU64>,
    ) -> (portcullis_testkit::MockUpstream, TokenSource) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let issued = Arc::new(AtomicUsize::new(0));
        let upstream = portcullis_testkit::MockUpstream::start(move |r| {
            let form = String::from_utf8_lossy(&r.raw_body).into_owned();
            assert!(form.starts_with(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
            ));
            assert_eq!(
                r.headers["content-type"],
                "application/x-www-form-urlencoded"
            );
            let status = status.load(Ordering::SeqCst) as u16;
            if status != 200 {
                return portcullis_testkit::Reply::json(status, json!({"error": "invalid_grant"}));
            }
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            portcullis_testkit::Reply::json(
                200,
                json!({"access_token": format!("tok-{n}"), "token_type": "Bearer",
                       "expires_in": lifetime.load(Ordering::SeqCst)}),
            )
            .after(Duration::from_millis(50))
        })
        .await
        .unwrap();
        let mut file = key_file();
        file["token_uri"] = json!(format!("http://{}/token", upstream.addr));
        let account = ServiceAccount::from_json(&file.to_string()).unwrap();
        let client = crate::provider::client::build(Duration::from_secs(5)).unwrap();
        (upstream, TokenSource::new(Arc::new(account), client))
    }

    #[tokio::test]
    async fn tokens_are_cached_and_concurrent_callers_share_one_fetch() {
        use std::sync::atomic::AtomicU64;
        let (upstream, source) = token_endpoint(
            Arc::new(AtomicU64::new(3600)),
            Arc::new(AtomicU64::new(200)),
        )
        .await;
        let calls = (0..8).map(|_| source.authorization());
        let values = futures_util::future::join_all(calls).await;
        for value in values {
            let value = value.unwrap();
            assert!(value.is_sensitive());
            assert_eq!(value, "Bearer tok-1");
        }
        assert_eq!(source.authorization().await.unwrap(), "Bearer tok-1");
        assert_eq!(upstream.count(), 1, "one token request for every call");
    }

    #[tokio::test]
    async fn tokens_near_expiry_are_refreshed_and_kept_if_the_refresh_fails() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let lifetime = Arc::new(AtomicU64::new(120));
        let status = Arc::new(AtomicU64::new(200));
        let (upstream, source) = token_endpoint(lifetime.clone(), status.clone()).await;
        assert_eq!(source.authorization().await.unwrap(), "Bearer tok-1");
        // Two minutes left is inside the refresh margin: the next call fetches a new token.
        assert_eq!(source.authorization().await.unwrap(), "Bearer tok-2");
        assert_eq!(upstream.count(), 2);
        // A failed refresh falls back to the token that is still valid.
        status.store(503, Ordering::SeqCst);
        assert_eq!(source.authorization().await.unwrap(), "Bearer tok-2");
        assert_eq!(upstream.count(), 3);
        // Without a usable token, the failure is the answer.
        lifetime.store(0, Ordering::SeqCst);
        let (_upstream, fresh) = token_endpoint(lifetime, status.clone()).await;
        assert!(matches!(
            fresh.authorization().await,
            Err(ProviderError::Server { status: 503, .. })
        ));
        status.store(401, Ordering::SeqCst);
        assert_eq!(
            fresh.authorization().await.unwrap_err(),
            ProviderError::Unauthorized { status: 401 }
        );
    }

    #[test]
    fn token_endpoint_failures_are_classified() {
        assert_eq!(
            token_error(StatusCode::BAD_REQUEST),
            ProviderError::Unauthorized { status: 400 }
        );
        assert!(matches!(
            token_error(StatusCode::SERVICE_UNAVAILABLE),
            ProviderError::Server { status: 503, .. }
        ));
    }
}

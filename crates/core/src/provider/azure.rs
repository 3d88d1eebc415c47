//! Azure OpenAI: OpenAI's API served per deployment, at
//! `{endpoint}/openai/deployments/{deployment}/{chat/completions|completions|embeddings}
//! ?api-version=...`, where the deployment is the gateway deployment's `model`. Bodies, streams
//! and errors are OpenAI's, so the adapter is [`OpenAiCompatible`] with an [`AzureEndpoint`]:
//! only the URLs and the credentials differ.
//!
//! Credentials: an API key (the `api-key` header), a static bearer token, or a Microsoft Entra
//! ID application whose tokens the gateway obtains with the client-credentials flow (scope
//! `https://cognitiveservices.azure.com/.default`). A token is cached and renewed before it
//! expires (5 minutes before, or halfway through a shorter lifetime); one request renews it
//! while the others keep using the current token if it is still valid, or wait for the new one.
//! A token the upstream refuses (401) is dropped, so the next attempt fetches a new one.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::client::HttpClient;
use super::openai_compat::{Endpoint, OpenAiCompatible};
use super::{Operation, ProviderError, upstream};
use crate::config::{AzureAuth, AzureConfig, EntraConfig};

/// The OAuth scope of Azure OpenAI (Cognitive Services) tokens.
pub const ENTRA_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// Renew a token this long before it expires (at most half its lifetime).
const RENEW_MARGIN: Duration = Duration::from_secs(300);

/// The Azure OpenAI adapter for `config`.
pub fn adapter(config: &AzureConfig, client: HttpClient) -> OpenAiCompatible<AzureEndpoint> {
    OpenAiCompatible::with_endpoint(
        "azure",
        AzureEndpoint::new(config, client.clone()),
        config.headers.clone(),
        config.include_usage,
        client,
    )
}

/// Deployment URLs below a resource endpoint, and the resource's credentials.
pub struct AzureEndpoint {
    /// `{endpoint}/openai/deployments/`.
    prefix: String,
    /// `?api-version=...`.
    query: String,
    credential: Credential,
}

enum Credential {
    Static(HeaderName, HeaderValue),
    Entra(Box<EntraTokens>),
    /// The configured secret cannot be a header value; requests go without (and fail upstream
    /// with 401, which names no secret).
    Unusable,
}

impl AzureEndpoint {
    pub fn new(config: &AzureConfig, client: HttpClient) -> Self {
        let header = |name: HeaderName, value: String| {
            upstream::secret_header(&value)
                .map_or(Credential::Unusable, |v| Credential::Static(name, v))
        };
        let credential = match &config.auth {
            AzureAuth::ApiKey(key) => header(
                HeaderName::from_static("api-key"),
                key.expose_secret().to_owned(),
            ),
            AzureAuth::BearerToken(token) => {
                header(AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            }
            AzureAuth::Entra(entra) => Credential::Entra(Box::new(EntraTokens::new(entra, client))),
        };
        Self {
            prefix: format!("{}/openai/deployments/", config.endpoint),
            query: format!("?api-version={}", percent_encode(&config.api_version)),
            credential,
        }
    }
}

impl fmt::Debug for AzureEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.credential {
            Credential::Static(name, _) if name == AUTHORIZATION => "bearer_token",
            Credential::Static(..) => "api_key",
            Credential::Entra(_) => "entra",
            Credential::Unusable => "unusable",
        };
        f.debug_struct("AzureEndpoint")
            .field("prefix", &self.prefix)
            .field("query", &self.query)
            .field("auth", &auth)
            .finish()
    }
}

impl Endpoint for AzureEndpoint {
    fn url(&self, op: Operation, model: &str) -> Result<Cow<'_, http::Uri>, ProviderError> {
        if matches!(op, Operation::Messages | Operation::CountTokens) {
            return Err(ProviderError::Unsupported(op.endpoint()));
        }
        let rest = format!("{}{}{}", percent_encode(model), op.path(), self.query);
        Ok(Cow::Owned(upstream::uri(&self.prefix, &rest)))
    }

    async fn credential(&self) -> Result<Option<(HeaderName, HeaderValue)>, ProviderError> {
        match &self.credential {
            Credential::Static(name, value) => Ok(Some((name.clone(), value.clone()))),
            Credential::Entra(tokens) => Ok(Some((AUTHORIZATION, tokens.header().await?))),
            Credential::Unusable => Ok(None),
        }
    }

    fn rejected(&self) {
        if let Credential::Entra(tokens) = &self.credential {
            tokens.current.store(None);
        }
    }
}

/// Entra ID access tokens of one application, fetched and renewed on demand.
struct EntraTokens {
    token_url: http::Uri,
    /// The whole form body, which holds the client secret.
    form: SecretString,
    client: HttpClient,
    current: ArcSwapOption<Token>,
    /// Held while a token is fetched: one renewal at a time.
    renewing: tokio::sync::Mutex<()>,
}

struct Token {
    /// `Bearer ...`, marked sensitive.
    header: HeaderValue,
    renew_at: Instant,
    expires_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; a number, or a string of digits from older endpoints.
    expires_in: serde_json::Value,
}

impl EntraTokens {
    fn new(config: &EntraConfig, client: HttpClient) -> Self {
        let token_url = upstream::uri(
            &config.authority,
            &format!("/{}/oauth2/v2.0/token", percent_encode(&config.tenant_id)),
        );
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            percent_encode(&config.client_id),
            percent_encode(config.client_secret.expose_secret()),
            percent_encode(ENTRA_SCOPE),
        );
        Self {
            token_url,
            form: SecretString::from(form),
            client,
            current: ArcSwapOption::empty(),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    /// The `Authorization` value to send now.
    async fn header(&self) -> Result<HeaderValue, ProviderError> {
        let now = Instant::now();
        let current = self.current.load_full();
        if let Some(token) = current.as_deref().filter(|t| now < t.renew_at) {
            return Ok(token.header.clone());
        }
        let _renewing = match self.renewing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Another request is renewing: a token that has not expired yet still serves.
                if let Some(token) = current.as_deref().filter(|t| now < t.expires_at) {
                    return Ok(token.header.clone());
                }
                self.renewing.lock().await
            }
        };
        if let Some(token) = self
            .current
            .load_full()
            .filter(|t| Instant::now() < t.renew_at)
        {
            return Ok(token.header.clone());
        }
        let token = self.fetch().await?;
        let header = token.header.clone();
        self.current.store(Some(Arc::new(token)));
        Ok(header)
    }

    async fn fetch(&self) -> Result<Token, ProviderError> {
        let mut request =
            Request::new(Full::new(Bytes::from(self.form.expose_secret().to_owned())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.token_url.clone();
        let headers = request.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let sent = Instant::now();
        let response = upstream::send(&self.client, request).await?;
        let status = response.status();
        if !status.is_success() {
            // The body names the tenant and application: it is not relayed.
            upstream::read_error_body(response.into_body()).await;
            return Err(ProviderError::Unauthorized {
                status: status.as_u16(),
            });
        }
        let body = upstream::read_body(response.into_body()).await?;
        let invalid =
            || ProviderError::InvalidResponse("the Entra ID token response is invalid".into());
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| invalid())?;
        let seconds = match &parsed.expires_in {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(invalid)?;
        let header = upstream::secret_header(&format!("Bearer {}", parsed.access_token))
            .ok_or_else(invalid)?;
        let lifetime = Duration::from_secs(seconds);
        Ok(Token {
            header,
            renew_at: sent + lifetime - RENEW_MARGIN.min(lifetime / 2),
            expires_at: sent + lifetime,
        })
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for a path segment, a
/// query value or a form field).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AzureAuth;

    fn endpoint(auth: AzureAuth) -> AzureEndpoint {
        let config = AzureConfig {
            endpoint: "https://res.openai.azure.com".into(),
            api_version: "2024-10-21".into(),
            auth,
            headers: Vec::new(),
            include_usage: true,
        };
        AzureEndpoint::new(
            &config,
            crate::provider::client::build(Duration::from_secs(1)).unwrap(),
        )
    }

    #[test]
    fn deployment_urls_carry_the_api_version() {
        let e = endpoint(AzureAuth::ApiKey(SecretString::from("k")));
        let url = |op, model| e.url(op, model).map(|u| u.to_string());
        assert_eq!(
            url(Operation::Chat, "gpt-4o").unwrap(),
            "https://res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            url(Operation::Embedding, "emb 3/x").unwrap(),
            "https://res.openai.azure.com/openai/deployments/emb%203%2Fx/embeddings?api-version=2024-10-21"
        );
        assert!(
            url(Operation::Completion, "d")
                .unwrap()
                .ends_with("/d/completions?api-version=2024-10-21")
        );
        assert!(url(Operation::Messages, "d").is_err());
    }

    #[tokio::test]
    async fn static_credentials_become_sensitive_headers() {
        let e = endpoint(AzureAuth::ApiKey(SecretString::from("key-1")));
        let (name, value) = e.credential().await.unwrap().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("api-key", "key-1")
        );
        assert!(value.is_sensitive());
        let e = endpoint(AzureAuth::BearerToken(SecretString::from("tok")));
        let (name, value) = e.credential().await.unwrap().unwrap();
        assert_eq!(
            (name, value.to_str().unwrap()),
            (AUTHORIZATION, "Bearer tok")
        );
        assert!(!format!("{e:?}").contains("tok\""), "{e:?}");
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("a-Z_0.9~"), "a-Z_0.9~");
        assert_eq!(percent_encode("a b/c+d=é"), "a%20b%2Fc%2Bd%3D%C3%A9");
    }
}

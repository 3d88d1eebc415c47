//! Configuration: one YAML file, `${ENV}` references for secrets, read in two phases. `raw`
//! holds the file as written; `validate` checks it and reports every problem with its path;
//! the result is a typed [`Config`]. Called at start, by `check-config`, and on every reload.
//!
//! A file whose providers reference stored credentials (`${credential:NAME}`, see
//! `credentials`) is loaded in two steps by the server: [`Config::bootstrap`] reads only the
//! store and the master keys, the server decrypts the referenced credentials from the store,
//! and [`Config::from_yaml_with_credentials`] validates the whole file with them.

mod credentials;
mod env;
pub mod limits;
mod raw;
mod secrets;
pub mod usage;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use secrecy::SecretString;

pub use credentials::{CredentialUse, Credentials, SECRET_FIELDS, valid_credential_name};
pub use env::{ProcessEnv, VarSource};
pub use secrets::SecretsConfig;
pub use usage::{Fsync, UsageConfig};

/// One thing wrong with a config file, with the path of the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl ConfigProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub logging: LoggingConfig,
    pub reload: ReloadConfig,
    pub auth: AuthConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: BTreeMap<String, ModelConfig>,
    /// The durable store, if any (read once at start).
    pub store: Option<StoreConfig>,
    /// The master keys of stored credentials, if any (read once at start).
    pub secrets: Option<SecretsConfig>,
    /// Every `${credential:NAME}` of the file, with its path.
    pub credential_uses: Vec<CredentialUse>,
    /// The price catalog shipped with the gateway, with `pricing.models` over it.
    pub pricing: crate::pricing::PriceCatalog,
    /// The usage journal (used with a store; read once at start).
    pub usage: UsageConfig,
    /// Rate limits beyond keys' and models' own, and the limiter's backend.
    pub limits: limits::LimitsConfig,
    /// Budgets beyond keys' own, and what budgets do mid-stream and on alerts.
    pub budgets: limits::BudgetsConfig,
    /// The capability catalog shipped with the gateway, with `capabilities.models` over it.
    pub capabilities: crate::routing::capabilities::CapabilityCatalog,
    /// The conditional routing rules (`routing.rules`), in order.
    pub routing: RoutingConfig,
}

/// `routing`: the rules stage `resolve` applies before it looks a model up.
#[derive(Debug, Clone, Default)]
pub struct RoutingConfig {
    pub rules: Vec<crate::routing::rules::Rule>,
}

/// What phase one of a two-phase load reads ([`Config::bootstrap`]): enough to open the store
/// and decrypt the credentials the file references.
#[derive(Debug)]
pub struct Bootstrap {
    pub store: Option<StoreConfig>,
    pub secrets: Option<SecretsConfig>,
    /// The names of the stored credentials the providers reference.
    pub references: std::collections::BTreeSet<String>,
}

/// Where organizations, teams, users and virtual keys are kept.
#[derive(Debug)]
pub enum StoreConfig {
    /// An SQLite file, created on first start.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL (it may hold a password).
    Postgres(SecretString),
}

/// Settings read once at start; changing them needs a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub connect_timeout: Duration,
    /// Threads serving requests; `None`: one per CPU.
    pub worker_threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Human,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    pub format: LogFormat,
    pub level: String,
    pub access_log: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    pub watch: bool,
    pub poll_interval: Duration,
}

#[derive(Debug)]
pub struct AuthConfig {
    pub master_key: Option<SecretString>,
    /// The server secret virtual keys are hashed with (HMAC-SHA256); required with a store.
    pub hashing_secret: Option<SecretString>,
    pub keys: Vec<KeyConfig>,
    /// JWT bearer tokens of an OIDC identity provider, accepted beside the keys.
    pub oidc: Option<crate::oidc::OidcConfig>,
}

/// A client key declared in the file, stored as the SHA-256 of the key.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub name: String,
    pub sha256: [u8; 32],
    pub models: Option<Vec<String>>,
    pub limits: portcullis_types::LimitRules,
    pub budgets: Vec<portcullis_types::BudgetSpec>,
    /// Metadata labels, as a stored key's, for routing rules.
    pub labels: BTreeMap<String, String>,
}

/// Time limits of one model's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// One non-streaming attempt, from sending to the whole body.
    pub attempt: Duration,
    /// All attempts of one request together (until a stream's first event).
    pub total: Duration,
    /// From sending a streaming attempt to its first event.
    pub first_byte: Duration,
    /// Longest silence between two events of a stream once it flows.
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            attempt: Duration::from_secs(300),
            total: Duration::from_secs(600),
            first_byte: Duration::from_secs(60),
            stream_idle: Duration::from_secs(120),
        }
    }
}

/// One configured provider.
#[derive(Debug)]
pub enum ProviderConfig {
    OpenAi(HttpProviderConfig),
    OpenAiCompatible(HttpProviderConfig),
    Anthropic(AnthropicConfig),
    Mock(MockConfig),
    Cohere(CohereConfig),
    Azure(AzureConfig),
    Bedrock(BedrockConfig),
    Gemini(GeminiConfig),
    Vertex(VertexConfig),
}

/// An OpenAI-compatible HTTP upstream.
#[derive(Debug)]
pub struct HttpProviderConfig {
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether streamed requests ask for `stream_options.include_usage`.
    pub include_usage: bool,
}

/// Google's Gemini API (AI Studio), with an API key.
#[derive(Debug)]
pub struct GeminiConfig {
    /// Without a trailing slash; default `https://generativelanguage.googleapis.com`.
    pub base_url: String,
    pub api_key: SecretString,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Cohere's native v2 API.
#[derive(Debug)]
pub struct CohereConfig {
    /// Without a trailing slash, e.g. `https://api.cohere.com`.
    pub base_url: String,
    pub api_key: SecretString,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Azure OpenAI: deployment URLs below `endpoint`, with an `api-version`.
#[derive(Debug)]
pub struct AzureConfig {
    /// The resource endpoint without a trailing slash, e.g. `https://my-res.openai.azure.com`.
    pub endpoint: String,
    pub api_version: String,
    pub auth: AzureAuth,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether streamed requests ask for `stream_options.include_usage`.
    pub include_usage: bool,
}

/// How an Azure OpenAI provider authenticates.
#[derive(Debug)]
pub enum AzureAuth {
    /// Sent as the `api-key` header.
    ApiKey(SecretString),
    /// A token obtained elsewhere, sent as `Authorization: Bearer`.
    BearerToken(SecretString),
    /// Tokens obtained and renewed by the gateway with the client-credentials flow.
    Entra(EntraConfig),
}

/// A Microsoft Entra ID application (service principal) of an Azure OpenAI provider.
#[derive(Debug)]
pub struct EntraConfig {
    /// Without a trailing slash; default `https://login.microsoftonline.com`.
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// An Anthropic Messages API upstream (type `anthropic`).
#[derive(Debug)]
pub struct AnthropicConfig {
    /// Base URL without a trailing slash and without `/v1`, e.g. `https://api.anthropic.com`:
    /// requests go to `{base_url}/v1/messages`.
    pub base_url: String,
    pub api_key: SecretString,
    /// The `anthropic-version` header.
    pub version: HeaderValue,
    /// The `anthropic-beta` header (the configured betas, comma-separated), if any.
    pub beta: Option<HeaderValue>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `max_tokens` of translated chat requests that set none (Anthropic requires it).
    pub default_max_tokens: u64,
}

/// Amazon Bedrock Runtime: requests signed with SigV4 for the service `bedrock`.
#[derive(Debug)]
pub struct BedrockConfig {
    pub region: String,
    /// Without a trailing slash; default `https://bedrock-runtime.{region}.amazonaws.com`.
    pub base_url: String,
    pub credentials: AwsCredentials,
}

/// Static AWS credentials (long-term keys, or temporary ones with their session token).
#[derive(Debug)]
pub struct AwsCredentials {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

/// Gemini on Google Cloud Vertex AI, with a service account.
#[derive(Debug)]
pub struct VertexConfig {
    /// Without a trailing slash; default from the location.
    pub base_url: String,
    pub project: String,
    pub location: String,
    pub credentials: Arc<crate::provider::gemini::vertex_auth::ServiceAccount>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The built-in offline provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    pub latency: Duration,
    pub chunk_delay: Duration,
    pub completion_tokens: u32,
    pub chunk_tokens: u32,
    pub embedding_dimensions: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            completion_tokens: 16,
            chunk_tokens: 1,
            embedding_dimensions: 16,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub deployments: Vec<DeploymentConfig>,
    pub timeouts: Timeouts,
    /// The routing strategy's name (validated: one `routing::strategies::by_name` knows).
    pub strategy: String,
    /// Passive health of each deployment.
    pub health: crate::routing::health::HealthPolicy,
    /// Active health checks of each deployment, when set.
    pub active_health: Option<crate::routing::active::ActiveHealth>,
    pub retries: crate::routing::retry::RetryPolicy,
    pub hedge: Option<crate::routing::hedge::HedgePolicy>,
    pub fallbacks: Fallbacks,
    /// Limits on every caller of the model together.
    pub limits: portcullis_types::LimitRules,
    /// The tags a deployment must (and must not) have to serve the model; `None`: any.
    pub require_tags: Option<crate::routing::tags::TagPredicate>,
}

/// Other models a request moves on to (`models.<name>.*fallbacks`), by what went wrong. They are
/// not transitive: a fallback model's own fallbacks are not followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fallbacks {
    /// After every deployment (and retry) failed with an upstream fault.
    pub any: Vec<String>,
    /// After a deployment said the request exceeds its context window.
    pub context_window: Vec<String>,
    /// After a deployment's content filter refused the request.
    pub content_policy: Vec<String>,
}

impl Fallbacks {
    pub fn is_empty(&self) -> bool {
        self.any.is_empty() && self.context_window.is_empty() && self.content_policy.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentConfig {
    pub provider: String,
    pub model: String,
    pub weight: u32,
    /// Tags for policies and `require_tags` (`zero_retention`, `region:eu`).
    pub tags: Vec<String>,
    /// The deployment's own `capabilities`, over the catalog's figures for its model (merged
    /// when the runtime snapshot is built).
    pub capabilities: crate::routing::capabilities::Capabilities,
}

impl Config {
    /// Reads and validates the file at `path`, with `${VAR}` from the process environment.
    pub fn load(path: &Path) -> Result<Self, Vec<ConfigProblem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigProblem::new(
                "",
                format!("cannot read {}: {e}", path.display()),
            )]
        })?;
        Self::from_yaml(&text, &ProcessEnv)
    }

    /// Parses and validates YAML text. A `${credential:NAME}` reference is a problem: there
    /// are no stored credentials to read (see [`Config::from_yaml_with_credentials`]).
    pub fn from_yaml(text: &str, vars: &dyn VarSource) -> Result<Self, Vec<ConfigProblem>> {
        validate::parse_and_validate(text, vars)
    }

    /// Phase one of a two-phase load: reads and validates only `store:` and `secrets:`, and
    /// collects the names of the stored credentials the providers reference. Problems elsewhere
    /// are left to phase two.
    pub fn bootstrap(text: &str, vars: &dyn VarSource) -> Result<Bootstrap, Vec<ConfigProblem>> {
        validate::bootstrap(text, vars)
    }

    /// Phase two: parses and validates YAML text, resolving `${credential:NAME}` against
    /// `credentials` (the decrypted stored credentials; `None` when there is no store or no
    /// master key to read them with).
    pub fn from_yaml_with_credentials(
        text: &str,
        vars: &dyn VarSource,
        credentials: Option<&Credentials>,
    ) -> Result<Self, Vec<ConfigProblem>> {
        validate::parse_and_validate_with(text, vars, credentials)
    }
}

/// The provider types of the gateway, as written in a provider's `type:`.
pub fn provider_types() -> impl Iterator<Item = &'static str> {
    validate::known_provider_types()
}

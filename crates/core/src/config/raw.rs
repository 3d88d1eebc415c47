//! The config file as written: plain serde structs, every field optional where a default exists.
//! Validation (`validate.rs`) turns these into typed `*Config` values and reports every problem.
//! Unknown keys are collected by the loader (they are not silently ignored).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::routing::capabilities::Capabilities;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub logging: RawLogging,
    #[serde(default)]
    pub reload: RawReload,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub models: BTreeMap<String, RawModel>,
    pub store: Option<RawStore>,
    pub secrets: Option<super::secrets::RawSecrets>,
    #[serde(default)]
    pub pricing: RawPricing,
    pub usage: Option<super::usage::RawUsage>,
    pub limits: Option<super::limits::RawLimits>,
    pub budgets: Option<super::limits::RawBudgets>,
    #[serde(default)]
    pub capabilities: RawCapabilityCatalog,
    #[serde(default)]
    pub routing: RawRouting,
}

/// `capabilities`: what models can do, over the shipped catalog.
#[derive(Debug, Default, Deserialize)]
pub struct RawCapabilityCatalog {
    #[serde(default)]
    /// A field left out keeps the catalog's figure.
    pub models: BTreeMap<String, Capabilities>,
}

/// `routing`: the conditional routing rules.
#[derive(Debug, Default, Deserialize)]
pub struct RawRouting {
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One routing rule. Everything is optional here so that a missing part is reported by
/// validation with its path, beside the other problems.
#[derive(Debug, Default, Deserialize)]
pub struct RawRule {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub conditions: Option<RawConditions>,
    pub route: Option<String>,
}

/// A rule's `match`: every condition given must hold.
#[derive(Debug, Default, Deserialize)]
pub struct RawConditions {
    pub team: Option<OneOrMany>,
    pub key_metadata: Option<BTreeMap<String, String>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub model: Option<String>,
    pub has_tools: Option<bool>,
    pub stream: Option<bool>,
    /// Operator (`gt`, `gte`, `lt`, `lte`) to a number of tokens.
    pub estimated_tokens: Option<BTreeMap<String, u64>>,
}

/// A string, or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `pricing`: the deployment's prices over the shipped catalog.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPricing {
    #[serde(default)]
    pub models: BTreeMap<String, RawPrice>,
}

/// One model's prices, US dollars per million tokens as decimal strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: Option<String>,
    pub output: Option<String>,
    pub cached_input: Option<String>,
    pub reasoning: Option<String>,
}

/// Where the durable state lives: one of the two.
#[derive(Debug, Default, Deserialize)]
pub struct RawStore {
    pub sqlite: Option<String>,
    pub postgres: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub shutdown_grace: Option<String>,
    pub connect_timeout: Option<String>,
    pub worker_threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLogging {
    pub format: Option<String>,
    pub level: Option<String>,
    pub access_log: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawReload {
    pub watch: Option<bool>,
    pub poll_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAuth {
    pub master_key: Option<String>,
    pub hashing_secret: Option<String>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    pub oidc: Option<RawOidc>,
}

#[derive(Debug, Deserialize)]
pub struct RawKey {
    pub name: String,
    pub sha256: String,
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: portcullis_types::LimitRules,
    #[serde(default)]
    pub budgets: Vec<portcullis_types::BudgetSpec>,
    /// Metadata labels, matched by routing rules (`key_metadata`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `auth.oidc`: JWT bearer tokens of one OIDC identity provider. Every field is optional here
/// so that a missing one is reported by validation with its path, beside the other problems.
#[derive(Debug, Default, Deserialize)]
pub struct RawOidc {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub jwks_url: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub leeway: Option<String>,
    pub claims: Option<RawOidcClaims>,
}

/// `auth.oidc.claims`: which claims carry the organization, team and role, and the map from the
/// identity provider's role strings to gateway roles.
#[derive(Debug, Default, Deserialize)]
pub struct RawOidcClaims {
    pub org: Option<String>,
    pub team: Option<String>,
    pub role: Option<String>,
    pub roles: Option<BTreeMap<String, String>>,
}

/// `models.<name>.health`: passive health (see `routing::health`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub consecutive_failures: Option<u32>,
    pub error_rate: Option<f64>,
    pub window: Option<u32>,
    pub base_cooldown: Option<String>,
    pub max_cooldown: Option<String>,
    pub when_all_ejected: Option<String>,
    /// Active health checks (see `routing::active`).
    pub active: Option<RawActiveHealth>,
}

/// `models.<name>.health.active`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActiveHealth {
    pub interval: Option<String>,
    pub timeout: Option<String>,
}

/// `models.<name>.retries` (see `routing::retry`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    pub max: Option<u32>,
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub max_wait: Option<String>,
    pub budget: Option<f64>,
    pub budget_min_per_second: Option<u32>,
}

/// `models.<name>.hedge` (see `routing::hedge`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHedge {
    /// `p95` or a duration.
    pub after: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawTimeouts {
    pub attempt: Option<String>,
    pub total: Option<String>,
    pub first_byte: Option<String>,
    pub stream_idle: Option<String>,
}

/// One provider. One flat struct for every `type`, so that unknown keys can be reported by
/// path; which fields belong to which type is one table in validation (`PROVIDER_TYPES`), and a
/// field set on a provider whose type does not use it is reported there.
#[derive(Debug, Default, Deserialize)]
pub struct RawProvider {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    // openai and openai_compatible, some shared with other types
    pub preset: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub stream_include_usage: Option<bool>,
    // mock
    pub latency: Option<String>,
    pub chunk_delay: Option<String>,
    pub completion_tokens: Option<u32>,
    pub chunk_tokens: Option<u32>,
    pub embedding_dimensions: Option<u32>,
    // azure
    pub endpoint: Option<String>,
    pub api_version: Option<String>,
    pub bearer_token: Option<String>,
    pub entra: Option<RawEntra>,
    // anthropic
    pub version: Option<String>,
    pub beta: Option<Vec<String>>,
    pub default_max_tokens: Option<u64>,
    // bedrock
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    // vertex
    pub location: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
}

impl RawProvider {
    /// The names of the fields set in the file, `type` aside, in declaration order. Which
    /// provider types use which of them is one table in validation.
    pub fn set_fields(&self) -> impl Iterator<Item = &'static str> + use<> {
        // Destructured without `..`: a new field does not compile until it is listed here.
        let Self {
            kind: _,
            preset,
            base_url,
            api_key,
            organization,
            project,
            headers,
            stream_include_usage,
            latency,
            chunk_delay,
            completion_tokens,
            chunk_tokens,
            embedding_dimensions,
            endpoint,
            api_version,
            bearer_token,
            entra,
            version,
            beta,
            default_max_tokens,
            region,
            access_key_id,
            secret_access_key,
            session_token,
            location,
            credentials,
            credentials_file,
        } = self;
        [
            ("preset", preset.is_some()),
            ("base_url", base_url.is_some()),
            ("api_key", api_key.is_some()),
            ("organization", organization.is_some()),
            ("project", project.is_some()),
            ("headers", headers.is_some()),
            ("stream_include_usage", stream_include_usage.is_some()),
            ("latency", latency.is_some()),
            ("chunk_delay", chunk_delay.is_some()),
            ("completion_tokens", completion_tokens.is_some()),
            ("chunk_tokens", chunk_tokens.is_some()),
            ("embedding_dimensions", embedding_dimensions.is_some()),
            ("endpoint", endpoint.is_some()),
            ("api_version", api_version.is_some()),
            ("bearer_token", bearer_token.is_some()),
            ("entra", entra.is_some()),
            ("version", version.is_some()),
            ("beta", beta.is_some()),
            ("default_max_tokens", default_max_tokens.is_some()),
            ("region", region.is_some()),
            ("access_key_id", access_key_id.is_some()),
            ("secret_access_key", secret_access_key.is_some()),
            ("session_token", session_token.is_some()),
            ("location", location.is_some()),
            ("credentials", credentials.is_some()),
            ("credentials_file", credentials_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
    }
}

/// Microsoft Entra ID client credentials of an `azure` provider.
#[derive(Debug, Default, Deserialize)]
pub struct RawEntra {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub authority: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawModel {
    #[serde(default)]
    pub deployments: Vec<RawDeployment>,
    pub timeouts: Option<RawTimeouts>,
    /// How deployments are ordered: priority (default), weighted, least_in_flight,
    /// lowest_latency.
    pub strategy: Option<String>,
    pub health: Option<RawHealth>,
    pub retries: Option<RawRetries>,
    pub hedge: Option<RawHedge>,
    /// Models tried in order when every deployment of this one failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Models tried when a deployment says the request exceeds its context window.
    #[serde(default)]
    pub context_window_fallbacks: Vec<String>,
    /// Models tried when a deployment's content filter refuses the request.
    #[serde(default)]
    pub content_policy_fallbacks: Vec<String>,
    /// Limits on every caller of the model together.
    #[serde(default)]
    pub limits: portcullis_types::LimitRules,
    /// Tags (or patterns) a deployment must have to serve the model: all of them.
    #[serde(default)]
    pub require_tags: Vec<String>,
    /// Tags (or patterns) a deployment must not have to serve the model: none of them.
    #[serde(default)]
    pub exclude_tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawDeployment {
    pub provider: String,
    pub model: Option<String>,
    pub weight: Option<u32>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// This deployment's model's capabilities, over the catalog's.
    pub capabilities: Option<Capabilities>,
}

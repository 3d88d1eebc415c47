//! The config file as written: plain serde structs, every field optional where a default exists.
//! Validation (`validate.rs`) turns these into typed `*Config` values and reports every problem.
//! Unknown keys are collected by the loader (they are not silently ignored).

use std::collections::BTreeMap;

use serde::Deserialize;

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
    #[serde(default)]
    pub keys: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
pub struct RawKey {
    pub name: String,
    pub sha256: String,
    pub models: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RawTimeouts {
    pub attempt: Option<String>,
    pub total: Option<String>,
    pub first_byte: Option<String>,
    pub stream_idle: Option<String>,
}

/// One provider. One flat struct for every `type`, so that unknown keys can be reported by
/// path; which fields belong to which type is checked in validation.
#[derive(Debug, Default, Deserialize)]
pub struct RawProvider {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub preset: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<String>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub stream_include_usage: Option<bool>,
    // mock only
    pub latency: Option<String>,
    pub chunk_delay: Option<String>,
    pub completion_tokens: Option<u32>,
    pub chunk_tokens: Option<u32>,
    pub embedding_dimensions: Option<u32>,
    // azure only (cohere uses base_url, api_key and headers above)
    pub endpoint: Option<String>,
    pub api_version: Option<String>,
    pub bearer_token: Option<String>,
    pub entra: Option<RawEntra>,
    // anthropic only (with base_url, api_key, headers)
    pub version: Option<String>,
    pub beta: Option<Vec<String>>,
    pub default_max_tokens: Option<u64>,
    // bedrock only (it also takes base_url)
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    // gemini and vertex (besides base_url, api_key for gemini, project for vertex, headers)
    pub location: Option<String>,
    pub credentials: Option<String>,
    pub credentials_file: Option<String>,
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
}

#[derive(Debug, Deserialize)]
pub struct RawDeployment {
    pub provider: String,
    pub model: Option<String>,
    pub weight: Option<u32>,
}

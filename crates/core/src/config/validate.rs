//! Phase two of config loading: YAML text to [`RawConfig`] (collecting unknown keys and the
//! first type error with their paths), then checks that turn it into a [`Config`]. Every problem
//! found is reported, not only the first.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_yaml_ng::Value;

use super::raw::{
    RawAuth, RawConfig, RawEntra, RawHealth, RawModel, RawProvider, RawServer, RawTimeouts,
};
use super::{
    AnthropicConfig, AuthConfig, AwsCredentials, AzureAuth, AzureConfig, BedrockConfig,
    CohereConfig, Config, ConfigProblem, Credentials, DeploymentConfig, EntraConfig,
    HttpProviderConfig, KeyConfig, LogFormat, LoggingConfig, MockConfig, ModelConfig,
    ProviderConfig, ReloadConfig, ServerConfig, StoreConfig, Timeouts, VarSource, credentials, env,
};
use crate::provider::presets;
use crate::routing::health::HealthPolicy;

mod bootstrap;
mod google;
mod limits;
mod oidc;
mod pricing;
mod provider_types;
mod resilience;
mod routing;
mod secrets;
mod usage;

pub(super) use bootstrap::bootstrap;
pub(super) use provider_types::known as known_provider_types;

const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const COHERE_BASE_URL: &str = "https://api.cohere.com";
/// The latest generally available dated version of Azure OpenAI's data-plane inference API.
pub const AZURE_API_VERSION: &str = "2024-10-21";
const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
const ANTHROPIC_VERSION: &str = "2023-06-01";
const ANTHROPIC_MAX_TOKENS: u64 = 4096;

pub(super) fn parse_and_validate(
    text: &str,
    vars: &dyn VarSource,
) -> Result<Config, Vec<ConfigProblem>> {
    parse_and_validate_with(text, vars, None)
}

/// As [`parse_and_validate`], with the stored credentials `${credential:NAME}` references
/// resolve against (`None`: there are none to read).
pub(super) fn parse_and_validate_with(
    text: &str,
    vars: &dyn VarSource,
    stored: Option<&Credentials>,
) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let mut value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| vec![ConfigProblem::new("", format!("invalid YAML: {e}"))])?;
    if value.is_null() {
        value = Value::Mapping(serde_yaml_ng::Mapping::new());
    }
    let mut sources = env::Sources {
        vars,
        credentials: credentials::CredentialMode::from_credentials(stored),
        uses: Vec::new(),
    };
    env::substitute(&mut value, "", &mut Vec::new(), &mut sources, &mut problems);

    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let typed = serde_ignored::deserialize(
        serde_path_to_error::Deserializer::new(value, &mut track),
        |path| unknown.push(key_path(&path)),
    );
    for path in unknown {
        problems.push(ConfigProblem::new(path, "unknown key"));
    }
    let raw: RawConfig = match typed {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(ConfigProblem::new(track.path().to_string(), e.to_string()));
            return Err(problems);
        }
    };

    credentials::check_types(
        &sources.uses,
        &raw.providers,
        &sources.credentials,
        &mut problems,
    );
    let mut v = Validator { problems, vars };
    let mut config = v.config(raw);
    config.credential_uses = sources.uses;
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(v.problems)
    }
}

/// An ignored key's path as validation writes paths: keys joined by `.`, list items as `[N]`
/// (serde_ignored's own text writes `.N`, and `?` for an `Option`'s `Some`).
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

struct Validator<'a> {
    problems: Vec<ConfigProblem>,
    /// Also read by provider types that fall back to conventional variables (Bedrock's AWS_*).
    vars: &'a dyn VarSource,
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(path, message));
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let timeouts = self.timeouts("timeouts", &raw.timeouts, Timeouts::default());
        let providers = raw
            .providers
            .into_iter()
            .filter_map(|(name, p)| {
                let cfg = self.provider(&format!("providers.{name}"), p)?;
                Some((name, cfg))
            })
            .collect::<BTreeMap<_, _>>();
        let models = raw
            .models
            .into_iter()
            .map(|(name, m)| {
                let cfg = self.model(&name, m, &providers, timeouts);
                (name, cfg)
            })
            .collect();
        self.fallbacks_exist(&models);
        let routing = self.routing(raw.routing, &models);
        let config = Config {
            server: self.server(&raw.server),
            logging: self.logging(raw.logging),
            reload: ReloadConfig {
                watch: raw.reload.watch.unwrap_or(true),
                poll_interval: self
                    .duration("reload.poll_interval", raw.reload.poll_interval.as_deref())
                    .unwrap_or(Duration::from_secs(2)),
            },
            store: raw.store.and_then(|store| self.store(store)),
            secrets: raw.secrets.and_then(|secrets| self.secrets(secrets)),
            credential_uses: Vec::new(),
            pricing: self.pricing(raw.pricing.models),
            usage: raw.usage.map(|u| self.usage(u)).unwrap_or_default(),
            limits: raw.limits.map(|l| self.limits(l)).unwrap_or_default(),
            budgets: raw.budgets.map(|b| self.budgets(b)).unwrap_or_default(),
            capabilities: self.capabilities(raw.capabilities),
            routing,
            auth: self.auth(raw.auth),
            providers,
            models,
        };
        self.store_needs_secret(&config);
        config
    }

    /// Checks that cross sections: a store needs a hashing secret for its virtual keys.
    fn store_needs_secret(&mut self, config: &Config) {
        if config.store.is_some() && config.auth.hashing_secret.is_none() {
            self.problem(
                "auth.hashing_secret",
                "missing: a store's virtual keys are checked with it (at least 32 characters, as ${ENV_VAR})",
            );
        }
    }

    fn store(&mut self, raw: super::raw::RawStore) -> Option<StoreConfig> {
        match (raw.sqlite, raw.postgres) {
            (Some(path), None) if !path.trim().is_empty() => {
                Some(StoreConfig::Sqlite(std::path::PathBuf::from(path)))
            }
            (None, Some(url))
                if url.starts_with("postgres://") || url.starts_with("postgresql://") =>
            {
                Some(StoreConfig::Postgres(SecretString::from(url)))
            }
            (None, Some(_)) => {
                self.problem("store.postgres", "not a postgres:// or postgresql:// URL");
                None
            }
            (Some(_), None) => {
                self.problem("store.sqlite", "must be a file path");
                None
            }
            _ => {
                self.problem(
                    "store",
                    "give exactly one of sqlite (a file path) or postgres (a URL)",
                );
                None
            }
        }
    }

    fn server(&mut self, raw: &RawServer) -> ServerConfig {
        let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            self.problem(
                "server.listen",
                format!("'{listen}' is not an address such as 127.0.0.1:4000"),
            );
            SocketAddr::from(([127, 0, 0, 1], 4000))
        });
        let max_body_bytes = raw.max_body_bytes.unwrap_or(10 * 1024 * 1024);
        if max_body_bytes == 0 {
            self.problem("server.max_body_bytes", "must be greater than 0");
        }
        if raw.worker_threads == Some(0) {
            self.problem("server.worker_threads", "must be at least 1");
        }
        ServerConfig {
            listen,
            max_body_bytes,
            shutdown_grace: self
                .duration("server.shutdown_grace", raw.shutdown_grace.as_deref())
                .unwrap_or(Duration::from_secs(30)),
            connect_timeout: self
                .duration("server.connect_timeout", raw.connect_timeout.as_deref())
                .unwrap_or(Duration::from_secs(10)),
            worker_threads: raw.worker_threads,
        }
    }

    fn logging(&mut self, raw: super::raw::RawLogging) -> LoggingConfig {
        let format = match raw.format.as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("human") => LogFormat::Human,
            Some(other) => {
                self.problem(
                    "logging.format",
                    format!("'{other}' is not one of: json, human"),
                );
                LogFormat::Json
            }
        };
        let level = raw.level.unwrap_or_else(|| "info".to_owned());
        if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
            self.problem(
                "logging.level",
                format!("'{level}' is not one of: trace, debug, info, warn, error"),
            );
        }
        LoggingConfig {
            format,
            level,
            access_log: raw.access_log.unwrap_or(true),
        }
    }

    fn auth(&mut self, raw: RawAuth) -> AuthConfig {
        let master_key = raw.master_key.filter(|k| !k.is_empty());
        if let Some(k) = &master_key
            && k.len() < 16
        {
            self.problem("auth.master_key", "must be at least 16 characters long");
        }
        let mut names = HashSet::new();
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (i, key) in raw.keys.into_iter().enumerate() {
            let path = format!("auth.keys[{i}]");
            if key.name.is_empty() {
                self.problem(format!("{path}.name"), "must not be empty");
            } else if !names.insert(key.name.clone()) {
                self.problem(
                    format!("{path}.name"),
                    format!("duplicate key name '{}'", key.name),
                );
            }
            let mut sha256 = [0u8; 32];
            if hex::decode_to_slice(key.sha256.trim(), &mut sha256).is_err() {
                self.problem(
                    format!("{path}.sha256"),
                    "must be 64 hex characters: the SHA-256 of the key (`portcullis hash-key`)",
                );
            }
            if let Some(models) = &key.models {
                for (j, m) in models.iter().enumerate() {
                    if m.is_empty() {
                        self.problem(format!("{path}.models[{j}]"), "must not be empty");
                    }
                }
            }
            self.limit_rules(&format!("{path}.limits"), &key.limits);
            self.budget_list(&path, &key.budgets);
            self.labels(&path, &key.labels);
            keys.push(KeyConfig {
                name: key.name,
                sha256,
                models: key.models,
                limits: key.limits,
                budgets: key.budgets,
                labels: key.labels,
            });
        }
        let hashing_secret = raw.hashing_secret.filter(|k| !k.is_empty());
        if hashing_secret.as_ref().is_some_and(|k| k.len() < 32) {
            self.problem(
                "auth.hashing_secret",
                "must be at least 32 characters long (a random secret, as ${ENV_VAR})",
            );
        }
        AuthConfig {
            master_key: master_key.map(SecretString::from),
            hashing_secret: hashing_secret.map(SecretString::from),
            keys,
            oidc: raw.oidc.and_then(|o| self.oidc(o)),
        }
    }

    fn provider(&mut self, path: &str, raw: RawProvider) -> Option<ProviderConfig> {
        let Some(written) = raw.kind.as_deref() else {
            self.problem(
                format!("{path}.type"),
                format!("missing: one of {}", provider_types::names()),
            );
            return None;
        };
        let Some((kind, uses)) = provider_types::find(written) else {
            self.problem(
                format!("{path}.type"),
                format!("'{written}' is not one of: {}", provider_types::names()),
            );
            return None;
        };
        self.reject_foreign_fields(path, kind, uses, &raw);
        match kind {
            "openai" | "openai_compatible" => {
                let http = self.http_provider(path, kind, raw)?;
                Some(if kind == "openai" {
                    ProviderConfig::OpenAi(http)
                } else {
                    ProviderConfig::OpenAiCompatible(http)
                })
            }
            "anthropic" => self
                .anthropic_provider(path, raw)
                .map(ProviderConfig::Anthropic),
            "mock" => {
                let d = MockConfig::default();
                let mock = MockConfig {
                    latency: self
                        .duration(&format!("{path}.latency"), raw.latency.as_deref())
                        .unwrap_or(d.latency),
                    chunk_delay: self
                        .duration(&format!("{path}.chunk_delay"), raw.chunk_delay.as_deref())
                        .unwrap_or(d.chunk_delay),
                    completion_tokens: raw.completion_tokens.unwrap_or(d.completion_tokens),
                    chunk_tokens: raw.chunk_tokens.unwrap_or(d.chunk_tokens),
                    embedding_dimensions: raw
                        .embedding_dimensions
                        .unwrap_or(d.embedding_dimensions),
                };
                for (field, value) in [
                    ("chunk_tokens", mock.chunk_tokens),
                    ("embedding_dimensions", mock.embedding_dimensions),
                ] {
                    if value == 0 {
                        self.problem(format!("{path}.{field}"), "must be greater than 0");
                    }
                }
                Some(ProviderConfig::Mock(mock))
            }
            "cohere" => self.cohere(path, raw).map(ProviderConfig::Cohere),
            "azure" => self.azure(path, raw).map(ProviderConfig::Azure),
            "bedrock" => self.bedrock(path, raw).map(ProviderConfig::Bedrock),
            "gemini" => self.gemini(path, raw),
            "vertex" => self.vertex(path, raw),
            // `find` knows no other type; a test validates a provider of each one it knows.
            _ => None,
        }
    }

    fn http_provider(
        &mut self,
        path: &str,
        kind: &str,
        raw: RawProvider,
    ) -> Option<HttpProviderConfig> {
        let preset = match raw.preset.as_deref() {
            Some(_) if kind == "openai" => {
                self.problem(
                    format!("{path}.preset"),
                    "presets belong to type openai_compatible",
                );
                None
            }
            Some(name) => {
                let found = presets::find(name);
                if found.is_none() {
                    self.problem(
                        format!("{path}.preset"),
                        format!("unknown preset '{name}'; known: {}", presets::names()),
                    );
                }
                found
            }
            None => None,
        };
        let base_url = match (&raw.base_url, preset, kind) {
            (Some(url), _, _) => url.trim_end_matches('/').to_owned(),
            (None, Some(p), _) => p.base_url.to_owned(),
            (None, None, "openai") => OPENAI_BASE_URL.to_owned(),
            (None, None, _) => {
                if raw.preset.is_none() {
                    self.problem(
                        format!("{path}.base_url"),
                        "missing: give base_url or a preset",
                    );
                }
                return None;
            }
        };
        self.http_url(
            &format!("{path}.base_url"),
            &base_url,
            "https://api.example.com/v1",
        );
        let api_key = raw.api_key.filter(|k| !k.is_empty());
        let needs_key = kind == "openai" || preset.is_some_and(|p| p.needs_key);
        if needs_key && api_key.is_none() {
            self.problem(
                format!("{path}.api_key"),
                "missing: this provider needs an API key (write it as ${ENV_VAR})",
            );
        }
        let named = [
            ("OpenAI-Organization", raw.organization),
            ("OpenAI-Project", raw.project),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)));
        let headers = self.headers(path, named.chain(raw.headers.unwrap_or_default()), &[]);
        Some(HttpProviderConfig {
            base_url,
            api_key: api_key.map(SecretString::from),
            headers,
            include_usage: raw
                .stream_include_usage
                .unwrap_or(preset.is_none_or(|p| p.include_usage)),
        })
    }

    /// Checks that `url` is an http(s) URL with a host and no query.
    fn http_url(&mut self, path: &str, url: &str, example: &str) {
        match url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() => {}
            _ => self.problem(path, format!("not an http(s) URL such as {example}")),
        }
    }

    /// Extra headers sent upstream, marked sensitive; the gateway's own (and `reserved`) are
    /// refused.
    fn headers(
        &mut self,
        path: &str,
        pairs: impl IntoIterator<Item = (String, String)>,
        reserved: &[&str],
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        for (name, value) in pairs {
            let hpath = format!("{path}.headers.{name}");
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                (Ok(n), Ok(mut v)) => {
                    if is_reserved_header(&n) || reserved.contains(&n.as_str()) {
                        self.problem(hpath, "this header is set by the gateway");
                    } else {
                        v.set_sensitive(true);
                        headers.push((n, v));
                    }
                }
                _ => self.problem(hpath, "not a valid HTTP header name and value"),
            }
        }
        headers
    }

    /// A required secret (written as `${ENV}`); `None` (reported) when absent or empty.
    fn secret(&mut self, path: String, value: Option<String>, what: &str) -> Option<SecretString> {
        match value.filter(|v| !v.is_empty()) {
            Some(v) => Some(SecretString::from(v)),
            None => {
                self.problem(path, format!("missing: {what} (write it as ${{ENV_VAR}})"));
                None
            }
        }
    }

    fn cohere(&mut self, path: &str, raw: RawProvider) -> Option<CohereConfig> {
        let base_url = raw.base_url.map_or_else(
            || COHERE_BASE_URL.to_owned(),
            |u| u.trim_end_matches('/').to_owned(),
        );
        self.http_url(
            &format!("{path}.base_url"),
            &base_url,
            "https://api.cohere.com",
        );
        let headers = self.headers(path, raw.headers.unwrap_or_default(), &[]);
        let api_key = self.secret(format!("{path}.api_key"), raw.api_key, "a Cohere API key");
        Some(CohereConfig {
            base_url,
            api_key: api_key?,
            headers,
        })
    }

    fn azure(&mut self, path: &str, raw: RawProvider) -> Option<AzureConfig> {
        let endpoint = raw.endpoint.map(|e| e.trim_end_matches('/').to_owned());
        match &endpoint {
            Some(e) => self.http_url(
                &format!("{path}.endpoint"),
                e,
                "https://my-resource.openai.azure.com",
            ),
            None => self.problem(
                format!("{path}.endpoint"),
                "missing: the resource endpoint, such as https://my-resource.openai.azure.com",
            ),
        }
        let api_version = raw
            .api_version
            .unwrap_or_else(|| AZURE_API_VERSION.to_owned());
        if api_version.is_empty()
            || !api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            self.problem(
                format!("{path}.api_version"),
                format!("not an API version such as {AZURE_API_VERSION}"),
            );
        }
        let given = [
            ("api_key", raw.api_key.is_some()),
            ("bearer_token", raw.bearer_token.is_some()),
            ("entra", raw.entra.is_some()),
        ];
        let auth = match given.iter().filter(|(_, set)| *set).count() {
            0 => {
                self.problem(
                    path,
                    "missing credentials: give one of api_key, bearer_token or entra",
                );
                None
            }
            1 => {
                if let Some(entra) = raw.entra {
                    self.entra(&format!("{path}.entra"), entra)
                        .map(AzureAuth::Entra)
                } else if raw.bearer_token.is_some() {
                    self.secret(
                        format!("{path}.bearer_token"),
                        raw.bearer_token,
                        "a bearer token",
                    )
                    .map(AzureAuth::BearerToken)
                } else {
                    self.secret(format!("{path}.api_key"), raw.api_key, "an API key")
                        .map(AzureAuth::ApiKey)
                }
            }
            _ => {
                for (field, _) in given.iter().filter(|(_, set)| *set) {
                    self.problem(
                        format!("{path}.{field}"),
                        "give only one of api_key, bearer_token or entra",
                    );
                }
                None
            }
        };
        let headers = self.headers(path, raw.headers.unwrap_or_default(), &["api-key"]);
        Some(AzureConfig {
            endpoint: endpoint?,
            api_version,
            auth: auth?,
            headers,
            include_usage: raw.stream_include_usage.unwrap_or(true),
        })
    }

    fn entra(&mut self, path: &str, raw: RawEntra) -> Option<EntraConfig> {
        let authority = raw.authority.map_or_else(
            || ENTRA_AUTHORITY.to_owned(),
            |a| a.trim_end_matches('/').to_owned(),
        );
        self.http_url(&format!("{path}.authority"), &authority, ENTRA_AUTHORITY);
        let mut id = |field: &str, value: Option<String>| {
            let value = value.filter(|v| !v.is_empty());
            if value.is_none() {
                self.problem(format!("{path}.{field}"), "missing");
            }
            value
        };
        let tenant_id = id("tenant_id", raw.tenant_id);
        let client_id = id("client_id", raw.client_id);
        let client_secret = self.secret(
            format!("{path}.client_secret"),
            raw.client_secret,
            "the application's client secret",
        );
        Some(EntraConfig {
            authority,
            tenant_id: tenant_id?,
            client_id: client_id?,
            client_secret: client_secret?,
        })
    }

    /// Type `anthropic`: `base_url` (default [`ANTHROPIC_BASE_URL`], without `/v1`), `api_key`
    /// (required), `version`, `beta`, `headers`, `default_max_tokens`.
    fn anthropic_provider(&mut self, path: &str, raw: RawProvider) -> Option<AnthropicConfig> {
        let base_url = raw
            .base_url
            .as_deref()
            .unwrap_or(ANTHROPIC_BASE_URL)
            .trim_end_matches('/')
            .to_owned();
        match base_url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() =>
            {
                if base_url.ends_with("/v1") {
                    self.problem(
                        format!("{path}.base_url"),
                        "leave out /v1: requests go to {base_url}/v1/messages",
                    );
                }
            }
            _ => self.problem(
                format!("{path}.base_url"),
                "not an http(s) URL such as https://api.anthropic.com",
            ),
        }
        let api_key = raw.api_key.filter(|k| !k.is_empty());
        if api_key.is_none() {
            self.problem(
                format!("{path}.api_key"),
                "missing: this provider needs an API key (write it as ${ENV_VAR})",
            );
        }
        let version = raw.version.as_deref().unwrap_or(ANTHROPIC_VERSION);
        let version = match HeaderValue::try_from(version) {
            Ok(v) if !version.is_empty() => Some(v),
            _ => {
                self.problem(
                    format!("{path}.version"),
                    "not an anthropic-version such as 2023-06-01",
                );
                None
            }
        };
        let betas = raw.beta.unwrap_or_default();
        for (i, beta) in betas.iter().enumerate() {
            let token = beta.trim();
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                self.problem(
                    format!("{path}.beta[{i}]"),
                    "not a beta name such as prompt-caching-2024-07-31",
                );
            }
        }
        let beta = (!betas.is_empty())
            .then(|| {
                HeaderValue::try_from(betas.iter().map(|b| b.trim()).collect::<Vec<_>>().join(","))
                    .ok()
            })
            .flatten();
        if raw.default_max_tokens == Some(0) {
            self.problem(
                format!("{path}.default_max_tokens"),
                "must be greater than 0",
            );
        }
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let hpath = format!("{path}.headers.{name}");
            match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                (Ok(n), Ok(mut v)) => {
                    if is_reserved_header(&n)
                        || ["x-api-key", "anthropic-version", "anthropic-beta"]
                            .contains(&n.as_str())
                    {
                        self.problem(hpath, "this header is set by the gateway");
                    } else {
                        v.set_sensitive(true);
                        headers.push((n, v));
                    }
                }
                _ => self.problem(hpath, "not a valid HTTP header name and value"),
            }
        }
        Some(AnthropicConfig {
            base_url,
            api_key: SecretString::from(api_key?),
            version: version?,
            beta,
            headers,
            default_max_tokens: raw.default_max_tokens.unwrap_or(ANTHROPIC_MAX_TOKENS),
        })
    }

    /// Region, base URL and credentials of a `bedrock` provider. Region and credentials not in
    /// the file come from AWS_REGION (or AWS_DEFAULT_REGION) and AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. The session token is only taken from the
    /// environment with keys from the environment: a stale token beside keys written in the
    /// file would break every signature.
    fn bedrock(&mut self, path: &str, raw: RawProvider) -> Option<BedrockConfig> {
        let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
        let env = |name: &str| non_empty(self.vars.var(name));
        let region = non_empty(raw.region)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"));
        let keys = (
            non_empty(raw.access_key_id),
            non_empty(raw.secret_access_key),
            non_empty(raw.session_token),
        );
        let env_keys = (
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            env("AWS_SESSION_TOKEN"),
        );
        let region = match region {
            Some(r)
                if r.len() <= 32
                    && r.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
            {
                Some(r)
            }
            Some(_) => {
                self.problem(
                    format!("{path}.region"),
                    "not an AWS region such as us-east-1",
                );
                None
            }
            None => {
                self.problem(
                    format!("{path}.region"),
                    "missing: give region, or set AWS_REGION in the environment",
                );
                None
            }
        };
        let credentials = match keys {
            (Some(access_key_id), Some(secret_access_key), session_token) => {
                Some((access_key_id, secret_access_key, session_token))
            }
            (None, None, token) => {
                if token.is_some() {
                    self.problem(
                        format!("{path}.session_token"),
                        "given without access_key_id and secret_access_key",
                    );
                }
                match env_keys {
                    (Some(id), Some(secret), token) => Some((id, secret, token)),
                    _ => {
                        self.problem(
                            format!("{path}.access_key_id"),
                            "missing: give access_key_id and secret_access_key (as ${ENV_VAR}), \
                             or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment",
                        );
                        None
                    }
                }
            }
            (Some(_), None, _) => {
                self.problem(
                    format!("{path}.secret_access_key"),
                    "missing: access_key_id needs its secret_access_key",
                );
                None
            }
            (None, Some(_), _) => {
                self.problem(
                    format!("{path}.access_key_id"),
                    "missing: secret_access_key needs its access_key_id",
                );
                None
            }
        };
        if let Some((id, secret, token)) = &credentials {
            let fields = [
                ("access_key_id", Some(id)),
                ("secret_access_key", Some(secret)),
                ("session_token", token.as_ref()),
            ];
            for (field, value) in fields {
                // They travel in headers; the message never echoes them.
                if value.is_some_and(|v| !v.bytes().all(|b| b.is_ascii_graphic())) {
                    self.problem(
                        format!("{path}.{field}"),
                        "must be printable ASCII without spaces",
                    );
                }
            }
        }
        let region = region?;
        let base_url = match raw.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        };
        match base_url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() => {}
            _ => self.problem(
                format!("{path}.base_url"),
                "not an http(s) URL such as https://bedrock-runtime.us-east-1.amazonaws.com",
            ),
        }
        let (access_key_id, secret_access_key, session_token) = credentials?;
        Some(BedrockConfig {
            region,
            base_url,
            credentials: AwsCredentials {
                access_key_id: SecretString::from(access_key_id),
                secret_access_key: SecretString::from(secret_access_key),
                session_token: session_token.map(SecretString::from),
            },
        })
    }

    fn model(
        &mut self,
        name: &str,
        raw: RawModel,
        providers: &BTreeMap<String, ProviderConfig>,
        defaults: Timeouts,
    ) -> ModelConfig {
        let path = format!("models.{name}");
        if raw.deployments.is_empty() {
            self.problem(
                format!("{path}.deployments"),
                "a model needs at least one deployment",
            );
        }
        let deployments = raw
            .deployments
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let dpath = format!("{path}.deployments[{i}]");
                if !providers.contains_key(&d.provider) {
                    self.problem(
                        format!("{dpath}.provider"),
                        format!("no provider named '{}' is configured", d.provider),
                    );
                }
                if d.weight == Some(0) {
                    self.problem(format!("{dpath}.weight"), "must be at least 1");
                }
                self.deployment_tags(&dpath, &d.tags);
                let capabilities = d.capabilities.map_or_else(Default::default, |c| {
                    self.capability_figures(&format!("{dpath}.capabilities"), c)
                });
                DeploymentConfig {
                    provider: d.provider,
                    model: d.model.unwrap_or_else(|| name.to_owned()),
                    weight: d.weight.unwrap_or(1),
                    tags: d.tags,
                    capabilities,
                }
            })
            .collect::<Vec<_>>();
        let require_tags =
            self.tag_predicate(&path, &raw.require_tags, &raw.exclude_tags, &deployments);
        let timeouts = match &raw.timeouts {
            Some(t) => self.timeouts(&format!("{path}.timeouts"), t, defaults),
            None => defaults,
        };
        self.limit_rules(&format!("{path}.limits"), &raw.limits);
        let strategy = raw.strategy.unwrap_or_else(|| "priority".to_owned());
        if crate::routing::strategies::by_name(&strategy).is_none() {
            self.problem(
                format!("{path}.strategy"),
                format!(
                    "'{strategy}' is not a strategy: {}",
                    crate::routing::strategies::NAMES
                ),
            );
        }
        let mut raw_health = raw.health.unwrap_or_default();
        let active_health = raw_health
            .active
            .take()
            .map(|a| self.active_health(&format!("{path}.health.active"), a));
        let health = self.health(&format!("{path}.health"), raw_health);
        let retries = self.retries(&format!("{path}.retries"), raw.retries.unwrap_or_default());
        let hedge = raw
            .hedge
            .and_then(|h| self.hedge(&format!("{path}.hedge"), h));
        ModelConfig {
            deployments,
            timeouts,
            strategy,
            health,
            active_health,
            retries,
            hedge,
            fallbacks: crate::config::Fallbacks {
                any: raw.fallbacks,
                context_window: raw.context_window_fallbacks,
                content_policy: raw.content_policy_fallbacks,
            },
            limits: raw.limits,
            require_tags,
        }
    }

    fn health(&mut self, path: &str, raw: RawHealth) -> HealthPolicy {
        let mut policy = HealthPolicy::default();
        if let Some(n) = raw.consecutive_failures {
            if n == 0 {
                self.problem(format!("{path}.consecutive_failures"), "must be at least 1");
            }
            policy.consecutive_failures = n;
        }
        if let Some(rate) = raw.error_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                self.problem(
                    format!("{path}.error_rate"),
                    "must be a fraction above 0 and at most 1 (0.5: half the window)",
                );
            }
            policy.error_rate = rate;
        }
        if let Some(n) = raw.window {
            policy.window = n;
        }
        let base = format!("{path}.base_cooldown");
        if let Some(d) = self.duration(&base, raw.base_cooldown.as_deref()) {
            if d.is_zero() {
                self.problem(base, "must be greater than 0");
            }
            policy.base_cooldown = d;
        }
        let max = format!("{path}.max_cooldown");
        if let Some(d) = self.duration(&max, raw.max_cooldown.as_deref()) {
            policy.max_cooldown = d;
        }
        if policy.max_cooldown < policy.base_cooldown {
            self.problem(max, "must be at least base_cooldown (5s unless set)");
        }
        match raw.when_all_ejected.as_deref() {
            None | Some("least_bad") => {}
            Some("fail") => policy.least_bad_when_all_ejected = false,
            Some(other) => self.problem(
                format!("{path}.when_all_ejected"),
                format!("'{other}' is not a choice: least_bad or fail"),
            ),
        }
        policy
    }

    fn timeouts(&mut self, path: &str, raw: &RawTimeouts, defaults: Timeouts) -> Timeouts {
        let mut get = |field: &str, value: &Option<String>, default: Duration| {
            let p = format!("{path}.{field}");
            match self.duration(&p, value.as_deref()) {
                Some(d) if d.is_zero() => {
                    self.problem(p, "must be greater than 0");
                    default
                }
                Some(d) => d,
                None => default,
            }
        };
        Timeouts {
            attempt: get("attempt", &raw.attempt, defaults.attempt),
            total: get("total", &raw.total, defaults.total),
            first_byte: get("first_byte", &raw.first_byte, defaults.first_byte),
            stream_idle: get("stream_idle", &raw.stream_idle, defaults.stream_idle),
        }
    }

    /// Parses `30s`, `500ms`, `2m`...; `None` when absent or invalid (invalid is reported).
    fn duration(&mut self, path: &str, value: Option<&str>) -> Option<Duration> {
        let value = value?;
        match humantime::parse_duration(value) {
            Ok(d) => Some(d),
            Err(_) => {
                self.problem(
                    path,
                    format!("'{value}' is not a duration such as 500ms, 30s or 2m"),
                );
                None
            }
        }
    }
}

fn is_reserved_header(name: &HeaderName) -> bool {
    [
        http::header::AUTHORIZATION,
        http::header::CONTENT_TYPE,
        http::header::CONTENT_LENGTH,
        http::header::HOST,
        http::header::TRANSFER_ENCODING,
    ]
    .contains(name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn load(text: &str) -> Result<Config, Vec<ConfigProblem>> {
        let vars = HashMap::from([("OPENAI_KEY".to_owned(), "sk-test".to_owned())]);
        parse_and_validate(text, &vars)
    }

    fn paths(problems: &[ConfigProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.path.as_str()).collect()
    }

    /// The problems of a load, as (path, message), sorted.
    pub(super) fn sorted_problems(
        loaded: Result<Config, Vec<ConfigProblem>>,
    ) -> Vec<(String, String)> {
        let mut got: Vec<_> = loaded
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect();
        got.sort();
        got
    }

    #[test]
    fn a_full_config_validates() {
        let cfg = load(
            r#"
server: { listen: "0.0.0.0:8080", shutdown_grace: 5s }
logging: { format: human, level: debug }
auth:
  keys:
    - name: app
      sha256: "0000000000000000000000000000000000000000000000000000000000000000"
      models: ["gpt-*"]
providers:
  oai: { type: openai, api_key: "${OPENAI_KEY}" }
  groq: { type: openai_compatible, preset: groq, api_key: x }
  local: { type: openai_compatible, base_url: "http://127.0.0.1:8000/v1/", headers: { X-Team: a } }
  fake: { type: mock, latency: 10ms, completion_tokens: 3 }
models:
  gpt-4o:
    deployments: [{ provider: oai }, { provider: groq, model: llama, weight: 2 }]
    timeouts: { attempt: 5s }
"#,
        );
        let cfg = match cfg {
            Ok(c) => c,
            Err(p) => panic!("{p:?}"),
        };
        assert_eq!(cfg.server.listen.port(), 8080);
        assert_eq!(cfg.server.shutdown_grace, Duration::from_secs(5));
        assert_eq!(cfg.logging.format, LogFormat::Human);
        let Some(ProviderConfig::OpenAi(oai)) = cfg.providers.get("oai") else {
            panic!("openai provider missing")
        };
        assert_eq!(oai.base_url, OPENAI_BASE_URL);
        assert_eq!(
            oai.api_key.as_ref().map(|k| k.expose_secret()),
            Some("sk-test")
        );
        let Some(ProviderConfig::OpenAiCompatible(local)) = cfg.providers.get("local") else {
            panic!("local provider missing")
        };
        assert_eq!(local.base_url, "http://127.0.0.1:8000/v1");
        let m = &cfg.models["gpt-4o"];
        assert_eq!(m.deployments[0].model, "gpt-4o");
        assert_eq!(m.deployments[1].weight, 2);
        assert_eq!(m.timeouts.attempt, Duration::from_secs(5));
        assert_eq!(m.timeouts.total, Timeouts::default().total);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let problems = load(
            r#"
server: { listen: nowhere, shutdown_grace: soon }
auth:
  keys: [{ name: a, sha256: xyz }]
  extra_thing: 1
providers:
  p1: { type: openai }
  p2: { type: nope }
  p3: { type: mock, base_url: "http://x" }
  p4: { type: openai_compatible, preset: unknown-preset }
  p5: { type: openai_compatible, base_url: "ftp://x" }
models:
  m: { deployments: [{ provider: missing, weight: 0 }], colour: blue }
  empty: { deployments: [] }
"#,
        )
        .err()
        .unwrap_or_default();
        let mut got = paths(&problems);
        got.sort_unstable();
        let mut want = vec![
            "auth.extra_thing",
            "models.m.colour",
            "server.listen",
            "server.shutdown_grace",
            "auth.keys[0].sha256",
            "providers.p1.api_key",
            "providers.p2.type",
            "providers.p3.base_url",
            "providers.p4.preset",
            "providers.p5.base_url",
            "models.m.deployments[0].provider",
            "models.m.deployments[0].weight",
            "models.empty.deployments",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{problems:#?}");
        let unknown = problems.iter().find(|p| p.path == "models.m.colour");
        assert_eq!(unknown.map(|p| p.message.as_str()), Some("unknown key"));
    }

    #[test]
    fn cohere_and_azure_providers_validate() {
        let cfg = load(
            r#"
providers:
  co: { type: cohere, api_key: "${OPENAI_KEY}", headers: { X-Client-Name: portcullis } }
  co2: { type: cohere, api_key: k, base_url: "http://127.0.0.1:9/" }
  az: { type: azure, endpoint: "https://res.openai.azure.com/", api_key: "${OPENAI_KEY}" }
  az2:
    type: azure
    endpoint: https://res.openai.azure.com
    api_version: 2025-04-01-preview
    stream_include_usage: false
    entra: { tenant_id: t, client_id: c, client_secret: "${OPENAI_KEY}" }
  az3: { type: azure, endpoint: "http://127.0.0.1:9", bearer_token: tok,
         entra_unused: 1 }
"#,
        );
        let problems = cfg.err().unwrap_or_default();
        assert_eq!(paths(&problems), ["providers.az3.entra_unused"]);
        let cfg = load(
            r#"
providers:
  co: { type: cohere, api_key: "${OPENAI_KEY}", headers: { X-Client-Name: portcullis } }
  co2: { type: cohere, api_key: k, base_url: "http://127.0.0.1:9/" }
  az: { type: azure, endpoint: "https://res.openai.azure.com/", api_key: "${OPENAI_KEY}" }
  az2:
    type: azure
    endpoint: https://res.openai.azure.com
    api_version: 2025-04-01-preview
    stream_include_usage: false
    entra: { tenant_id: t, client_id: c, client_secret: "${OPENAI_KEY}" }
  az3: { type: azure, endpoint: "http://127.0.0.1:9", bearer_token: tok }
"#,
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let Some(ProviderConfig::Cohere(co)) = cfg.providers.get("co") else {
            panic!("cohere provider missing")
        };
        assert_eq!(co.base_url, COHERE_BASE_URL);
        assert_eq!(co.api_key.expose_secret(), "sk-test");
        assert_eq!(co.headers.len(), 1);
        let Some(ProviderConfig::Cohere(co2)) = cfg.providers.get("co2") else {
            panic!("cohere provider missing")
        };
        assert_eq!(co2.base_url, "http://127.0.0.1:9");
        let Some(ProviderConfig::Azure(az)) = cfg.providers.get("az") else {
            panic!("azure provider missing")
        };
        assert_eq!(az.endpoint, "https://res.openai.azure.com");
        assert_eq!(az.api_version, AZURE_API_VERSION);
        assert!(az.include_usage);
        assert!(matches!(&az.auth, AzureAuth::ApiKey(k) if k.expose_secret() == "sk-test"));
        let Some(ProviderConfig::Azure(az2)) = cfg.providers.get("az2") else {
            panic!("azure provider missing")
        };
        assert_eq!(az2.api_version, "2025-04-01-preview");
        assert!(!az2.include_usage);
        let AzureAuth::Entra(entra) = &az2.auth else {
            panic!("entra auth expected")
        };
        assert_eq!(entra.authority, ENTRA_AUTHORITY);
        assert_eq!(
            (entra.tenant_id.as_str(), entra.client_id.as_str()),
            ("t", "c")
        );
        assert!(matches!(
            cfg.providers.get("az3"),
            Some(ProviderConfig::Azure(AzureConfig {
                auth: AzureAuth::BearerToken(_),
                ..
            }))
        ));
    }

    #[test]
    fn cohere_and_azure_problems_are_reported_with_their_paths() {
        let problems = load(
            r#"
providers:
  c1: { type: cohere }
  c2: { type: cohere, api_key: k, preset: groq, endpoint: "https://x", base_url: "ftp://x" }
  a1: { type: azure }
  a2: { type: azure, endpoint: "https://x", api_key: k, bearer_token: t }
  a3: { type: azure, endpoint: "https://x", api_version: "bad version", base_url: "https://y",
        entra: { client_secret: "", authority: "nope" }, headers: { api-key: x } }
  o1: { type: openai, api_key: k, entra: { tenant_id: t } }
  m1: { type: mock, api_version: v }
"#,
        )
        .err()
        .unwrap_or_default();
        let mut got = paths(&problems);
        got.sort_unstable();
        let mut want = vec![
            "providers.c1.api_key",
            "providers.c2.preset",
            "providers.c2.endpoint",
            "providers.c2.base_url",
            "providers.a1.endpoint",
            "providers.a1",
            "providers.a2.api_key",
            "providers.a2.bearer_token",
            "providers.a3.api_version",
            "providers.a3.base_url",
            "providers.a3.entra.authority",
            "providers.a3.entra.tenant_id",
            "providers.a3.entra.client_id",
            "providers.a3.entra.client_secret",
            "providers.a3.headers.api-key",
            "providers.o1.entra",
            "providers.m1.api_version",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{problems:#?}");
        assert!(
            problems
                .iter()
                .all(|p| !p.message.contains("sk-test") && !p.message.contains("bad version")),
            "{problems:#?}"
        );
    }

    #[test]
    fn type_errors_and_yaml_errors_have_locations() {
        let problems = load("providers:\n  p: { type: mock, completion_tokens: many }\n")
            .err()
            .unwrap_or_default();
        assert_eq!(paths(&problems), ["providers.p.completion_tokens"]);
        let problems = load("models: [unclosed").err().unwrap_or_default();
        assert!(problems[0].message.contains("line"), "{problems:?}");
    }

    fn load_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<ConfigProblem>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_and_validate(text, &vars)
    }

    fn bedrock_of(cfg: &Config, name: &str) -> (String, String, [Option<String>; 3]) {
        let Some(ProviderConfig::Bedrock(b)) = cfg.providers.get(name) else {
            panic!("bedrock provider {name} missing")
        };
        let c = &b.credentials;
        (
            b.region.clone(),
            b.base_url.clone(),
            [
                Some(c.access_key_id.expose_secret().to_owned()),
                Some(c.secret_access_key.expose_secret().to_owned()),
                c.session_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
            ],
        )
    }

    #[test]
    fn bedrock_from_the_file() {
        let cfg = load_with(
            r#"
providers:
  aws:
    type: bedrock
    region: eu-west-3
    access_key_id: ${KEY_ID}
    secret_access_key: ${SECRET}
    session_token: ${TOKEN}
  local: { type: bedrock, region: us-east-1, base_url: "http://127.0.0.1:9/", access_key_id: a, secret_access_key: b }
"#,
            &[
                ("KEY_ID", "AKIDFILE"),
                ("SECRET", "file-secret"),
                ("TOKEN", "file-token"),
                ("AWS_SESSION_TOKEN", "stale-env-token"),
            ],
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let (region, base, creds) = bedrock_of(&cfg, "aws");
        assert_eq!(region, "eu-west-3");
        assert_eq!(base, "https://bedrock-runtime.eu-west-3.amazonaws.com");
        assert_eq!(
            creds,
            [
                Some("AKIDFILE".into()),
                Some("file-secret".into()),
                Some("file-token".into())
            ]
        );
        let (_, base, creds) = bedrock_of(&cfg, "local");
        assert_eq!(base, "http://127.0.0.1:9");
        assert_eq!(creds[2], None, "no env token beside keys from the file");
    }

    #[test]
    fn bedrock_from_the_environment() {
        let text = "providers:\n  aws: { type: bedrock }\n";
        let cfg = load_with(
            text,
            &[
                ("AWS_DEFAULT_REGION", "us-west-2"),
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("AWS_SESSION_TOKEN", "env-token"),
            ],
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        let (region, _, creds) = bedrock_of(&cfg, "aws");
        assert_eq!(region, "us-west-2");
        assert_eq!(creds[2].as_deref(), Some("env-token"));
        // AWS_REGION wins over AWS_DEFAULT_REGION, and the file over both.
        let cfg = load_with(
            text,
            &[
                ("AWS_REGION", "ap-south-1"),
                ("AWS_DEFAULT_REGION", "us-west-2"),
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ],
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(bedrock_of(&cfg, "aws").0, "ap-south-1");
        assert_eq!(bedrock_of(&cfg, "aws").2[2], None);
    }

    #[test]
    fn bedrock_problems_have_paths_and_never_echo_secrets() {
        let problems = load_with(
            r#"
providers:
  none: { type: bedrock }
  half: { type: bedrock, region: us-east-1, access_key_id: a }
  other-half: { type: bedrock, region: us-east-1, secret_access_key: b }
  token-only: { type: bedrock, region: us-east-1, session_token: t }
  bad: { type: bedrock, region: "US East", base_url: "ftp://x", access_key_id: "a b", secret_access_key: "s3cr3t value", api_key: k, latency: 1s }
  oai: { type: openai, api_key: k, region: us-east-1 }
  fake: { type: mock, access_key_id: a }
"#,
            &[],
        )
        .err()
        .unwrap_or_default();
        let mut got = paths(&problems);
        got.sort_unstable();
        let mut want = vec![
            "providers.none.region",
            "providers.none.access_key_id",
            "providers.half.secret_access_key",
            "providers.other-half.access_key_id",
            "providers.token-only.session_token",
            "providers.token-only.access_key_id",
            "providers.bad.region",
            "providers.bad.access_key_id",
            "providers.bad.secret_access_key",
            "providers.bad.api_key",
            "providers.bad.latency",
            "providers.oai.region",
            "providers.fake.access_key_id",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{problems:#?}");
        let text = format!("{problems:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        // With a valid region the base URL is checked too.
        let problems = load_with(
            "providers:\n  p: { type: bedrock, region: us-east-1, base_url: 'ftp://x', access_key_id: a, secret_access_key: b }\n",
            &[],
        )
        .err()
        .unwrap_or_default();
        assert_eq!(paths(&problems), ["providers.p.base_url"]);
    }

    #[test]
    fn missing_env_and_empty_file() {
        let problems = load("providers:\n  p: { type: openai, api_key: '${NOT_SET}' }\n")
            .err()
            .unwrap_or_default();
        assert_eq!(paths(&problems), ["providers.p.api_key"]);
        assert!(problems[0].message.contains("NOT_SET"));
        assert!(load("").is_ok());
    }

    #[test]
    fn anthropic_providers_validate_with_defaults_and_report_misuse() {
        let vars = HashMap::from([("ANTHROPIC_KEY".to_owned(), "sk-ant-test".to_owned())]);
        let cfg = parse_and_validate(
            r#"
providers:
  claude: { type: anthropic, api_key: "${ANTHROPIC_KEY}" }
  proxy:
    type: anthropic
    base_url: "http://127.0.0.1:9000/"
    api_key: k
    version: "2024-01-01"
    beta: [prompt-caching-2024-07-31, " token-efficient-tools-2025-02-19"]
    default_max_tokens: 1000
    headers: { X-Team: a }
"#,
            &vars,
        );
        let cfg = match cfg {
            Ok(c) => c,
            Err(p) => panic!("{p:?}"),
        };
        let Some(ProviderConfig::Anthropic(claude)) = cfg.providers.get("claude") else {
            panic!("anthropic provider missing")
        };
        assert_eq!(claude.base_url, ANTHROPIC_BASE_URL);
        assert_eq!(claude.api_key.expose_secret(), "sk-ant-test");
        assert_eq!(claude.version, ANTHROPIC_VERSION);
        assert_eq!(
            (claude.beta.as_ref(), claude.default_max_tokens),
            (None, 4096)
        );
        let Some(ProviderConfig::Anthropic(proxy)) = cfg.providers.get("proxy") else {
            panic!("anthropic provider missing")
        };
        assert_eq!(proxy.base_url, "http://127.0.0.1:9000");
        assert_eq!(proxy.version, "2024-01-01");
        assert_eq!(
            proxy.beta.as_ref().map(|b| b.to_str().unwrap_or_default()),
            Some("prompt-caching-2024-07-31,token-efficient-tools-2025-02-19")
        );
        assert_eq!(proxy.default_max_tokens, 1000);
        assert_eq!(proxy.headers.len(), 1);
        assert!(proxy.headers[0].1.is_sensitive());

        let problems = load(
            r#"
providers:
  a1: { type: anthropic }
  a2: { type: anthropic, api_key: k, base_url: "https://api.anthropic.com/v1" }
  a3: { type: anthropic, api_key: k, base_url: "ftp://x", version: "", beta: ["", "a b"] }
  a4: { type: anthropic, api_key: k, default_max_tokens: 0, preset: groq, organization: o,
        latency: 1s, headers: { x-api-key: v, Anthropic-Beta: b, X-Ok: ok } }
  o1: { type: openai, api_key: k, version: "2023-06-01", beta: [x], default_max_tokens: 5 }
  m1: { type: mock, default_max_tokens: 5 }
"#,
        )
        .err()
        .unwrap_or_default();
        let mut got = paths(&problems);
        got.sort_unstable();
        let mut want = vec![
            "providers.a1.api_key",
            "providers.a2.base_url",
            "providers.a3.base_url",
            "providers.a3.version",
            "providers.a3.beta[0]",
            "providers.a3.beta[1]",
            "providers.a4.default_max_tokens",
            "providers.a4.preset",
            "providers.a4.organization",
            "providers.a4.latency",
            "providers.a4.headers.x-api-key",
            "providers.a4.headers.Anthropic-Beta",
            "providers.o1.version",
            "providers.o1.beta",
            "providers.o1.default_max_tokens",
            "providers.m1.default_max_tokens",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{problems:#?}");
        let wrong_type = load("providers:\n  p: { type: claude }\n")
            .err()
            .unwrap_or_default();
        assert!(
            wrong_type[0].message.contains("anthropic"),
            "{wrong_type:?}"
        );
    }

    #[test]
    fn a_store_needs_one_backend_and_a_hashing_secret() {
        let secret = "auth: { hashing_secret: 0123456789abcdef0123456789abcdef }\n";
        let cfg = load(&format!(
            "{secret}store: {{ sqlite: /var/lib/portcullis/db.sqlite }}\n"
        ))
        .unwrap();
        assert!(matches!(cfg.store, Some(StoreConfig::Sqlite(ref p)) if p.ends_with("db.sqlite")));
        assert!(cfg.auth.hashing_secret.is_some());
        let cfg = load(&format!(
            "{secret}store: {{ postgres: 'postgres://u:p@db/portcullis' }}\n"
        ))
        .unwrap();
        assert!(matches!(cfg.store, Some(StoreConfig::Postgres(_))));
        assert!(load("").unwrap().store.is_none());
        let cases = [
            ("store: { sqlite: a.db }\n", "auth.hashing_secret"),
            (
                "auth: { hashing_secret: short }\nstore: { sqlite: a.db }\n",
                "auth.hashing_secret",
            ),
            (
                &format!("{secret}store: {{ sqlite: a.db, postgres: 'postgres://x' }}\n"),
                "store",
            ),
            (&format!("{secret}store: {{}}\n"), "store"),
            (
                &format!("{secret}store: {{ postgres: 'mysql://x' }}\n"),
                "store.postgres",
            ),
            (
                &format!("{secret}store: {{ sqlite: a.db, redis: x }}\n"),
                "store.redis",
            ),
        ];
        for (text, path) in cases {
            let problems = load(text).err().unwrap_or_default();
            assert!(paths(&problems).contains(&path), "{text}: {problems:?}");
            assert!(
                !problems
                    .iter()
                    .any(|p| p.message.contains("0123456789abcdef")),
                "a secret in a message"
            );
        }
    }
}

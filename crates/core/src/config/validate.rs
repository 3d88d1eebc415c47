//! Phase two of config loading: YAML text to [`RawConfig`] (collecting unknown keys and the
//! first type error with their paths), then checks that turn it into a [`Config`]. Every problem
//! found is reported, not only the first.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_yaml_ng::Value;

use super::raw::{RawAuth, RawConfig, RawModel, RawProvider, RawServer, RawTimeouts};
use super::{
    AuthConfig, Config, ConfigProblem, DeploymentConfig, HttpProviderConfig, KeyConfig, LogFormat,
    LoggingConfig, MockConfig, ModelConfig, ProviderConfig, ReloadConfig, ServerConfig, Timeouts,
    VarSource, env,
};
use crate::provider::presets;

mod google;

const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

pub(super) fn parse_and_validate(
    text: &str,
    vars: &dyn VarSource,
) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Vec::new();
    let mut value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| vec![ConfigProblem::new("", format!("invalid YAML: {e}"))])?;
    if value.is_null() {
        value = Value::Mapping(serde_yaml_ng::Mapping::new());
    }
    env::substitute(&mut value, "", vars, &mut problems);

    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let typed = serde_ignored::deserialize(
        serde_path_to_error::Deserializer::new(value, &mut track),
        |path| unknown.push(path.to_string()),
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

    let mut v = Validator { problems };
    let config = v.config(raw);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        Err(v.problems)
    }
}

struct Validator {
    problems: Vec<ConfigProblem>,
}

impl Validator {
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
        Config {
            server: self.server(&raw.server),
            logging: self.logging(raw.logging),
            reload: ReloadConfig {
                watch: raw.reload.watch.unwrap_or(true),
                poll_interval: self
                    .duration("reload.poll_interval", raw.reload.poll_interval.as_deref())
                    .unwrap_or(Duration::from_secs(2)),
            },
            auth: self.auth(raw.auth),
            providers,
            models,
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
            keys.push(KeyConfig {
                name: key.name,
                sha256,
                models: key.models,
            });
        }
        AuthConfig {
            master_key: master_key.map(SecretString::from),
            keys,
        }
    }

    fn provider(&mut self, path: &str, raw: RawProvider) -> Option<ProviderConfig> {
        let kind = raw.kind.clone();
        let Some(kind) = kind.as_deref() else {
            self.problem(
                format!("{path}.type"),
                "missing: one of openai, openai_compatible, mock, gemini, vertex",
            );
            return None;
        };
        match kind {
            "openai" | "openai_compatible" => {
                self.reject_fields(path, kind, &mock_fields(&raw));
                self.reject_fields(path, kind, &google::google_fields(&raw));
                let http = self.http_provider(path, kind, raw)?;
                Some(if kind == "openai" {
                    ProviderConfig::OpenAi(http)
                } else {
                    ProviderConfig::OpenAiCompatible(http)
                })
            }
            "mock" => {
                self.reject_fields(path, kind, &http_fields(&raw));
                self.reject_fields(path, kind, &google::google_fields(&raw));
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
            "gemini" => self.gemini(path, raw),
            "vertex" => self.vertex(path, raw),
            other => {
                self.problem(
                    format!("{path}.type"),
                    format!(
                        "'{other}' is not one of: openai, openai_compatible, mock, gemini, vertex"
                    ),
                );
                None
            }
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
        match base_url.parse::<http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.query().is_none() => {}
            _ => self.problem(
                format!("{path}.base_url"),
                "not an http(s) URL such as https://api.example.com/v1",
            ),
        }
        let api_key = raw.api_key.filter(|k| !k.is_empty());
        let needs_key = kind == "openai" || preset.is_some_and(|p| p.needs_key);
        if needs_key && api_key.is_none() {
            self.problem(
                format!("{path}.api_key"),
                "missing: this provider needs an API key (write it as ${ENV_VAR})",
            );
        }
        let mut headers = Vec::new();
        let named = [
            ("OpenAI-Organization", raw.organization),
            ("OpenAI-Project", raw.project),
        ];
        let extra = raw
            .headers
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Some(v)));
        for (name, value) in named
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(extra)
        {
            let Some(value) = value else { continue };
            let hpath = format!("{path}.headers.{name}");
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value),
            ) {
                (Ok(n), Ok(mut v)) => {
                    if is_reserved_header(&n) {
                        self.problem(hpath, "this header is set by the gateway");
                    } else {
                        v.set_sensitive(true);
                        headers.push((n, v));
                    }
                }
                _ => self.problem(hpath, "not a valid HTTP header name and value"),
            }
        }
        Some(HttpProviderConfig {
            base_url,
            api_key: api_key.map(SecretString::from),
            headers,
            include_usage: raw
                .stream_include_usage
                .unwrap_or(preset.is_none_or(|p| p.include_usage)),
        })
    }

    fn reject_fields(&mut self, path: &str, kind: &str, fields: &[&str]) {
        for field in fields {
            self.problem(
                format!("{path}.{field}"),
                format!("not used by providers of type {kind}"),
            );
        }
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
                DeploymentConfig {
                    provider: d.provider,
                    model: d.model.unwrap_or_else(|| name.to_owned()),
                    weight: d.weight.unwrap_or(1),
                }
            })
            .collect();
        let timeouts = match &raw.timeouts {
            Some(t) => self.timeouts(&format!("{path}.timeouts"), t, defaults),
            None => defaults,
        };
        ModelConfig {
            deployments,
            timeouts,
        }
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

fn mock_fields(raw: &RawProvider) -> Vec<&'static str> {
    [
        ("latency", raw.latency.is_some()),
        ("chunk_delay", raw.chunk_delay.is_some()),
        ("completion_tokens", raw.completion_tokens.is_some()),
        ("chunk_tokens", raw.chunk_tokens.is_some()),
        ("embedding_dimensions", raw.embedding_dimensions.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect()
}

fn http_fields(raw: &RawProvider) -> Vec<&'static str> {
    [
        ("preset", raw.preset.is_some()),
        ("base_url", raw.base_url.is_some()),
        ("api_key", raw.api_key.is_some()),
        ("organization", raw.organization.is_some()),
        ("project", raw.project.is_some()),
        ("headers", raw.headers.is_some()),
        ("stream_include_usage", raw.stream_include_usage.is_some()),
    ]
    .into_iter()
    .filter_map(|(f, set)| set.then_some(f))
    .collect()
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
    fn type_errors_and_yaml_errors_have_locations() {
        let problems = load("providers:\n  p: { type: mock, completion_tokens: many }\n")
            .err()
            .unwrap_or_default();
        assert_eq!(paths(&problems), ["providers.p.completion_tokens"]);
        let problems = load("models: [unclosed").err().unwrap_or_default();
        assert!(problems[0].message.contains("line"), "{problems:?}");
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
}

//! The immutable snapshot every request reads: routes (model name to deployments), routing
//! rules, providers, keys and the OIDC verifier. Built from a validated [`Config`]; a reload
//! builds a new one and swaps it in whole. The OIDC verifier is the one piece carried over: a
//! reload whose `auth.oidc` is unchanged keeps the previous snapshot's verifier (and so its
//! cached key set), a changed one gets a new verifier. Each deployment's health and figures,
//! and each model's retry budget, carry over too while their settings are unchanged; active
//! health checks are restarted by every snapshot that has them.

use crate::routing::health::Health;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::KeyTable;
use crate::config::Fallbacks;
use crate::config::{Config, ProviderConfig, Timeouts};
use crate::oidc::{OidcConfig, OidcVerifier};
use crate::provider::anthropic::AnthropicProvider;
use crate::provider::bedrock::Bedrock;
use crate::provider::client::HttpClient;
use crate::provider::cohere::Cohere;
use crate::provider::gemini::Gemini;
use crate::provider::mock::MockProvider;
use crate::provider::openai_compat::OpenAiCompatible;
use crate::provider::{Operation, Provider};
use crate::routing::active::ActiveChecks;
use crate::routing::hedge::HedgePolicy;
use crate::routing::retry::{RetryBudget, RetryPolicy};
use crate::routing::{Priority, Strategy};

/// One upstream target of a model: a provider and the model name it knows.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub provider_name: Arc<str>,
    pub provider: Arc<dyn Provider>,
    pub upstream_model: Arc<str>,
    pub weight: u32,
    /// Passive health (outlier ejection), kept across reloads for the same provider and model.
    pub health: Arc<crate::routing::health::Health>,
    /// In-flight count and latency averages (the strategies' inputs), kept across reloads.
    pub stats: Arc<crate::routing::strategies::DeploymentStats>,
    /// The config's tags (`zero_retention`, `region:eu`), for `require_tags` and policies.
    pub tags: Arc<[Box<str>]>,
    /// What the upstream model accepts: the catalog's figures with the config's over them,
    /// resolved when the snapshot is built.
    pub capabilities: crate::routing::capabilities::Capabilities,
}

/// What a client-facing model name resolves to.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub deployments: Vec<Deployment>,
    pub timeouts: Timeouts,
    pub strategy: Arc<dyn Strategy>,
    pub retry: RetryPolicy,
    /// Shared by the model's requests, retries and hedges; kept across reloads.
    pub retry_budget: Arc<RetryBudget>,
    pub hedge: Option<HedgePolicy>,
    pub fallbacks: Fallbacks,
    /// Limits on every caller of the model together, under the counter name `model:<name>`.
    pub limits: Option<(Arc<str>, portcullis_types::LimitRules)>,
    /// The tags a deployment must (and must not) have to serve the model.
    pub require_tags: Option<crate::routing::tags::TagPredicate>,
    /// What the deployments' capabilities could refuse (read by the filter of stage `plan`).
    pub constraints: crate::routing::filter::Constraints,
}

/// What saw the outcome a deployment's health records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observer {
    /// A client's request (stage dispatch).
    Request,
    /// An active health check (`routing::active`).
    ActiveCheck,
}

impl Deployment {
    /// Records an outcome in the deployment's passive health, with a warning when it ejects it.
    pub fn record_health(
        &self,
        outcome: Result<(), &crate::provider::ProviderError>,
        by: Observer,
    ) {
        let Some(cooldown) = self.health.record(outcome) else {
            return;
        };
        let message = match by {
            Observer::Request => "deployment ejected: skipped until its cool-down ends",
            Observer::ActiveCheck => {
                "deployment ejected by its active health checks: skipped until its cool-down ends"
            }
        };
        tracing::warn!(
            gen_ai.provider.name = %self.provider_name,
            gen_ai.request.model = %self.upstream_model,
            cooldown_ms = u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
            "{message}"
        );
    }

    /// Whether this deployment serves `op`: natively, or (for Anthropic's messages and
    /// count_tokens) through translation from chat.
    pub fn serves(&self, op: Operation) -> bool {
        let p = &self.provider;
        p.supports(op)
            || (matches!(op, Operation::Messages | Operation::CountTokens)
                && p.supports(Operation::Chat))
    }
}

impl Route {
    /// Whether a request whose deployments are all ejected still tries the least bad one.
    pub fn least_bad_when_all_ejected(&self) -> bool {
        self.deployments
            .first()
            .is_none_or(|d| d.health.policy().least_bad_when_all_ejected)
    }

    /// Whether any deployment serves `op`.
    pub fn supports(&self, op: Operation) -> bool {
        self.deployments.iter().any(|d| d.serves(op))
    }
}

/// The snapshot.
#[derive(Debug)]
pub struct Runtime {
    pub routes: HashMap<String, Arc<Route>>,
    pub keys: KeyTable,
    /// The verifier of OIDC bearer tokens, when `auth.oidc` is configured.
    pub oidc: Option<Arc<OidcVerifier>>,
    /// Unix seconds when this snapshot was built: the `created` of listed models.
    pub created: u64,
    /// The prices of served models: the shipped catalog with `pricing.models` over it.
    pub pricing: Arc<crate::pricing::PriceCatalog>,
    /// The file's limit and budget rules (stage `admit`).
    pub quotas: Arc<crate::quota::QuotaPolicy>,
    /// The active health checks of this snapshot's deployments; they stop when it is dropped.
    pub active_checks: ActiveChecks,
    /// The conditional routing rules, in order (stage `resolve`).
    pub rules: Arc<[crate::routing::rules::Rule]>,
}

impl Runtime {
    /// A deployment of this snapshot, whose health and figures carry over to the next.
    fn deployment(&self, route: &str, provider: &str, model: &str) -> Option<&Deployment> {
        self.routes
            .get(route)?
            .deployments
            .iter()
            .find(|d| &*d.provider_name == provider && &*d.upstream_model == model)
    }

    /// Builds a snapshot. The config was validated, so every deployment names a provider.
    pub fn build(config: &Config, http: &HttpClient) -> Self {
        Self::build_with(config, http, None)
    }

    /// Builds the snapshot that replaces `previous` on a reload: the same as [`Runtime::build`],
    /// except that `previous`'s OIDC verifier is kept when `auth.oidc` did not change.
    pub fn build_after(config: &Config, http: &HttpClient, previous: &Runtime) -> Self {
        Self::build_with(config, http, Some(previous))
    }

    fn build_with(config: &Config, http: &HttpClient, previous: Option<&Runtime>) -> Self {
        let providers: HashMap<&str, Arc<dyn Provider>> = config
            .providers
            .iter()
            .map(|(name, cfg)| {
                let provider: Arc<dyn Provider> = match cfg {
                    ProviderConfig::OpenAi(c) => {
                        Arc::new(OpenAiCompatible::new("openai", c, http.clone()))
                    }
                    ProviderConfig::OpenAiCompatible(c) => {
                        Arc::new(OpenAiCompatible::new("openai_compatible", c, http.clone()))
                    }
                    ProviderConfig::Anthropic(c) => {
                        Arc::new(AnthropicProvider::new(c, http.clone()))
                    }
                    ProviderConfig::Mock(c) => Arc::new(MockProvider::new(c.clone())),
                    ProviderConfig::Cohere(c) => Arc::new(Cohere::new(c, http.clone())),
                    ProviderConfig::Azure(c) => {
                        Arc::new(crate::provider::azure::adapter(c, http.clone()))
                    }
                    ProviderConfig::Bedrock(c) => Arc::new(Bedrock::new(c, http.clone())),
                    ProviderConfig::Gemini(c) => Arc::new(Gemini::ai_studio(c, http.clone())),
                    ProviderConfig::Vertex(c) => Arc::new(Gemini::vertex(c, http.clone())),
                };
                (name.as_str(), provider)
            })
            .collect();
        let mut active_checks = ActiveChecks::default();
        let can_spawn = tokio::runtime::Handle::try_current().is_ok();
        let routes = config
            .models
            .iter()
            .map(|(name, model)| {
                let deployments = model
                    .deployments
                    .iter()
                    .filter_map(|d| {
                        let kept = previous.and_then(|p| p.deployment(name, &d.provider, &d.model));
                        Some(Deployment {
                            provider_name: Arc::from(d.provider.as_str()),
                            provider: providers.get(d.provider.as_str())?.clone(),
                            upstream_model: Arc::from(d.model.as_str()),
                            weight: d.weight,
                            // Kept unless its thresholds changed.
                            health: kept
                                .filter(|k| *k.health.policy() == model.health)
                                .map(|k| k.health.clone())
                                .unwrap_or_else(|| Arc::new(Health::new(model.health))),
                            stats: kept.map(|k| k.stats.clone()).unwrap_or_default(),
                            tags: d.tags.iter().map(|t| Box::from(t.as_str())).collect(),
                            capabilities: d.capabilities.over(config.capabilities.of(&d.model)),
                        })
                    })
                    .collect::<Vec<_>>();
                if let Some(active) = model.active_health.filter(|_| can_spawn) {
                    for d in &deployments {
                        active_checks.start(name, d, active);
                    }
                }
                let retry_budget = previous
                    .and_then(|p| p.routes.get(name))
                    .map(|r| r.retry_budget.clone())
                    .filter(|b| b.fits(&model.retries))
                    .unwrap_or_else(|| Arc::new(RetryBudget::new(&model.retries)));
                let route = Route {
                    constraints: crate::routing::filter::Constraints::of(&deployments),
                    require_tags: model.require_tags.clone(),
                    name: name.clone(),
                    deployments,
                    timeouts: model.timeouts,
                    strategy: crate::routing::strategies::by_name(&model.strategy)
                        .unwrap_or_else(|| Arc::new(Priority)),
                    retry: model.retries,
                    retry_budget,
                    hedge: model.hedge,
                    fallbacks: model.fallbacks.clone(),
                    limits: (!model.limits.is_empty())
                        .then(|| (Arc::from(format!("model:{name}")), model.limits)),
                };
                (name.clone(), Arc::new(route))
            })
            .collect();
        Self {
            routes,
            keys: KeyTable::from_config(&config.auth),
            oidc: oidc_verifier(
                config.auth.oidc.as_ref(),
                http,
                previous.and_then(|p| p.oidc.as_ref()),
            ),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            pricing: Arc::new(config.pricing.clone()),
            quotas: Arc::new(crate::quota::QuotaPolicy::from_config(
                &config.limits,
                &config.budgets,
            )),
            active_checks,
            rules: config.routing.rules.iter().cloned().collect(),
        }
    }
}

/// The verifier for `config`: `previous` itself when it was built from an equal config (its key
/// cache survives the reload), else a new one.
fn oidc_verifier(
    config: Option<&OidcConfig>,
    http: &HttpClient,
    previous: Option<&Arc<OidcVerifier>>,
) -> Option<Arc<OidcVerifier>> {
    let config = config?;
    if let Some(previous) = previous
        && previous.config() == config
    {
        return Some(previous.clone());
    }
    if previous.is_some() {
        tracing::info!(
            "oidc: the identity provider settings changed; its keys will be fetched again"
        );
    }
    match OidcVerifier::new(config.clone(), http.clone()) {
        Ok(v) => Some(Arc::new(v)),
        Err(e) => {
            // Validation refuses every config the verifier refuses; should they ever disagree,
            // tokens are refused (as without OIDC) rather than accepted unchecked.
            tracing::error!(error = %e, "oidc: cannot build the token verifier; tokens are refused");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn config(audience: &str) -> Config {
        let yaml = format!(
            r#"
auth:
  oidc:
    issuer: https://idp.example.com
    audience: {audience}
    jwks_url: https://idp.example.com/certs
    claims: {{ role: roles, roles: {{ dev: member }} }}
providers: {{ m: {{ type: mock }} }}
models: {{ demo: {{ deployments: [{{ provider: m }}] }} }}
"#
        );
        Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap()
    }

    #[test]
    fn a_reload_keeps_the_verifier_while_the_oidc_config_is_unchanged() {
        let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
        let first = Runtime::build(&config("gateway"), &http);
        let v1 = first.oidc.clone().unwrap();

        let same = Runtime::build_after(&config("gateway"), &http, &first);
        assert!(Arc::ptr_eq(&v1, same.oidc.as_ref().unwrap()));

        let changed = Runtime::build_after(&config("another"), &http, &same);
        let v2 = changed.oidc.clone().unwrap();
        assert!(!Arc::ptr_eq(&v1, &v2));
        assert_eq!(v2.config().audience, "another");

        let without = Config::from_yaml(
            "providers: { m: { type: mock } }",
            &HashMap::<String, String>::new(),
        )
        .unwrap();
        assert!(
            Runtime::build_after(&without, &http, &changed)
                .oidc
                .is_none()
        );
        assert!(Runtime::build(&without, &http).oidc.is_none());
    }
}

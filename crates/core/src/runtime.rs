//! The immutable snapshot every request reads: routes (model name to deployments), providers and
//! keys. Built from a validated [`Config`]; a reload builds a new one and swaps it in whole.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::KeyTable;
use crate::config::{Config, ProviderConfig, Timeouts};
use crate::provider::anthropic::AnthropicProvider;
use crate::provider::bedrock::Bedrock;
use crate::provider::client::HttpClient;
use crate::provider::cohere::Cohere;
use crate::provider::gemini::Gemini;
use crate::provider::mock::MockProvider;
use crate::provider::openai_compat::OpenAiCompatible;
use crate::provider::{Operation, Provider};
use crate::routing::{Priority, Strategy};

/// One upstream target of a model: a provider and the model name it knows.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub provider_name: Arc<str>,
    pub provider: Arc<dyn Provider>,
    pub upstream_model: Arc<str>,
    pub weight: u32,
}

/// What a client-facing model name resolves to.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub deployments: Vec<Deployment>,
    pub timeouts: Timeouts,
    pub strategy: Arc<dyn Strategy>,
}

impl Deployment {
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
    /// Unix seconds when this snapshot was built: the `created` of listed models.
    pub created: u64,
}

impl Runtime {
    /// Builds a snapshot. The config was validated, so every deployment names a provider.
    pub fn build(config: &Config, http: &HttpClient) -> Self {
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
        let strategy: Arc<dyn Strategy> = Arc::new(Priority);
        let routes = config
            .models
            .iter()
            .map(|(name, model)| {
                let deployments = model
                    .deployments
                    .iter()
                    .filter_map(|d| {
                        Some(Deployment {
                            provider_name: Arc::from(d.provider.as_str()),
                            provider: providers.get(d.provider.as_str())?.clone(),
                            upstream_model: Arc::from(d.model.as_str()),
                            weight: d.weight,
                        })
                    })
                    .collect();
                let route = Route {
                    name: name.clone(),
                    deployments,
                    timeouts: model.timeouts,
                    strategy: strategy.clone(),
                };
                (name.clone(), Arc::new(route))
            })
            .collect();
        Self {
            routes,
            keys: KeyTable::from_config(&config.auth),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

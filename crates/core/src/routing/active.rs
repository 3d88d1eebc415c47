//! Active health checks (`models.<name>.health.active`): besides what real traffic shows
//! ([`super::health`]), each deployment of the model gets a small request every `interval`: a
//! one-token chat completion (`ping`, `max_tokens: 1`), or a one-word embedding for a deployment
//! that serves only embeddings. Each check is a real, billed upstream request.
//!
//! A check's outcome is recorded like a request's, so failing checks eject a deployment before
//! clients meet it. While the deployment is ejected no check is sent; when its cool-down ends,
//! the next check is its half-open probe, so no client request has to be the one that finds out
//! whether it recovered.
//!
//! The checks run as tasks of the runtime snapshot that started them and stop when that
//! snapshot is replaced by a reload and dropped ([`ActiveChecks`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::pipeline::{ApiRequest, parse};
use crate::provider::Operation;
use crate::routing::health::Availability;
use crate::runtime::{Deployment, Observer};

/// How often each deployment is checked, and how long a check may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHealth {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for ActiveHealth {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The running checks of one runtime snapshot; dropping it stops them.
#[derive(Debug, Default)]
pub struct ActiveChecks(Vec<JoinHandle<()>>);

impl ActiveChecks {
    /// Starts checking `deployment` (of model `route`). Needs a tokio runtime.
    pub fn start(&mut self, route: &str, deployment: &Deployment, policy: ActiveHealth) {
        let Some(request) = check_request(deployment) else {
            return;
        };
        let deployment = deployment.clone();
        let route: Arc<str> = Arc::from(route);
        self.0.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(policy.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                check_once(&route, &deployment, &request, policy.timeout).await;
            }
        }));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for ActiveChecks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The check request for a deployment: a chat ping, an embedding, or none if it serves neither.
fn check_request(deployment: &Deployment) -> Option<ApiRequest> {
    let (op, body): (Operation, &[u8]) = if deployment.serves(Operation::Chat) {
        (
            Operation::Chat,
            br#"{"model":"check","messages":[{"role":"user","content":"ping"}],"max_tokens":1}"#,
        )
    } else if deployment.serves(Operation::Embedding) {
        (Operation::Embedding, br#"{"model":"check","input":"ping"}"#)
    } else {
        return None;
    };
    let mut request = parse::parse(op, body).ok()?;
    request.set_model(&deployment.upstream_model);
    Some(request)
}

/// Sends one check unless the deployment is ejected, and records its outcome.
pub async fn check_once(
    route: &str,
    deployment: &Deployment,
    request: &ApiRequest,
    timeout: Duration,
) {
    if let Availability::Ejected { .. } = deployment.health.check() {
        return;
    }
    let outcome = crate::pipeline::dispatch::complete(deployment, request, timeout)
        .await
        .map(|_| ());
    if let Err(e) = &outcome {
        tracing::debug!(
            gen_ai.request.model = %route,
            gen_ai.provider.name = %deployment.provider_name,
            error.kind = e.kind(),
            "active health check failed"
        );
    }
    deployment.record_health(outcome.as_ref().copied(), Observer::ActiveCheck);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;
    use crate::runtime::Runtime;

    #[tokio::test]
    async fn a_check_is_a_one_token_chat_for_the_upstream_model() {
        let yaml = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p, model: up }]\n    health: { active: { interval: 1h } }\n";
        let config = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap();
        let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
        let rt = Runtime::build(&config, &http);
        assert!(
            !rt.active_checks.is_empty(),
            "started under a tokio runtime"
        );
        let d = &rt.routes["m"].deployments[0];
        let ApiRequest::Chat(chat) = check_request(d).unwrap() else {
            panic!("a chat check")
        };
        assert_eq!((chat.model.as_str(), chat.max_tokens), ("up", Some(1)));
        // The mock answers: the deployment stays healthy.
        check_once("m", d, &ApiRequest::Chat(chat), Duration::from_secs(1)).await;
        assert!(d.health.is_healthy());
    }
}

//! Dispatch against scripted providers, with tokio's clock paused: retries and their backoff,
//! `Retry-After`, the retry budget, hedging and fallbacks to other models.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::*;
use crate::config::Config;
use crate::pipeline::parse;
use crate::provider::{Operation, Provider};

/// What a scripted provider does with one call.
#[derive(Debug, Clone)]
enum Step {
    /// Answers after the delay.
    Ok(Duration),
    /// Fails after the delay, with a `Retry-After` header when given.
    Fail(Duration, ProviderError, Option<&'static str>),
}

/// A provider that follows its script, then answers at once; it notes when each call came.
#[derive(Debug, Default)]
struct Scripted {
    name: &'static str,
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<Instant>>,
    completed: Mutex<u32>,
}

impl Scripted {
    fn new(name: &'static str, steps: &[Step]) -> Arc<Self> {
        Arc::new(Self {
            name,
            steps: Mutex::new(steps.iter().cloned().collect()),
            ..Self::default()
        })
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }

    fn supports(&self, op: Operation) -> bool {
        op == Operation::Chat
    }

    async fn call(
        &self,
        _op: Operation,
        _request: &ApiRequest,
        _stream: bool,
    ) -> Result<ProviderResponse, ProviderError> {
        self.calls.lock().unwrap().push(Instant::now());
        let step = self.steps.lock().unwrap().pop_front();
        let result = match step {
            None => Ok(()),
            Some(Step::Ok(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Some(Step::Fail(delay, error, retry_after)) => {
                tokio::time::sleep(delay).await;
                if let Some(value) = retry_after {
                    let mut headers = HeaderMap::new();
                    headers.insert("retry-after", HeaderValue::from_static(value));
                    hints::record(&headers);
                }
                Err(error)
            }
        };
        result.map(|()| {
            *self.completed.lock().unwrap() += 1;
            ProviderResponse::Complete {
                body: Bytes::from(self.name),
                usage: None,
            }
        })
    }
}

fn server_error() -> ProviderError {
    ProviderError::Server {
        status: 500,
        message: None,
    }
}

fn rate_limited() -> ProviderError {
    ProviderError::RateLimited {
        message: None,
        retry_after: None,
    }
}

/// A runtime from `yaml` (mock providers), whose deployments are then replaced, model by model
/// and in order, by the scripted providers given for it.
fn runtime(yaml: &str, scripted: &[(&str, Vec<Arc<Scripted>>)]) -> Runtime {
    let config = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap();
    let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
    let mut rt = Runtime::build(&config, &http);
    for (model, providers) in scripted {
        let old = rt.routes.remove(*model).unwrap();
        let deployments = old
            .deployments
            .iter()
            .zip(providers)
            .map(|(d, p)| Deployment {
                provider: p.clone(),
                provider_name: Arc::from(p.name),
                ..d.clone()
            })
            .collect::<Vec<_>>();
        let route = Route {
            constraints: crate::routing::filter::Constraints::of(&deployments),
            require_tags: old.require_tags.clone(),
            name: old.name.clone(),
            deployments,
            timeouts: old.timeouts,
            strategy: old.strategy.clone(),
            retry: old.retry,
            retry_budget: old.retry_budget.clone(),
            hedge: old.hedge,
            fallbacks: old.fallbacks.clone(),
            limits: old.limits.clone(),
        };
        rt.routes.insert((*model).to_owned(), Arc::new(route));
    }
    rt
}

/// Runs one chat request for `model`: which provider answered (its name) or the error, and the
/// attempts it took.
async fn run(rt: &Runtime, model: &str) -> (Result<String, GatewayError>, u32) {
    let mut ctx = RequestCtx::new("/v1/chat/completions", "req", None);
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let mut request = parse::parse(Operation::Chat, body.as_bytes()).unwrap();
    let route = rt.routes[model].clone();
    let result = dispatch(&mut ctx, rt, &route, &mut request).await;
    let served = result.map(|d| match d {
        Dispatched::Complete { body, .. } => String::from_utf8_lossy(&body).into_owned(),
        Dispatched::Stream { .. } => "stream".to_owned(),
    });
    (served, ctx.attempts)
}

/// Who answered (`None`: an error) and after how many attempts.
async fn served(rt: &Runtime, model: &str) -> (Option<String>, u32) {
    let (result, attempts) = run(rt, model).await;
    (result.ok(), attempts)
}

const TWO: &str = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p, model: a }, { provider: p, model: b }]\n";

#[tokio::test(start_paused = true)]
async fn without_retries_each_deployment_is_tried_once() {
    let a = Scripted::new("a", &[Step::Fail(Duration::ZERO, server_error(), None)]);
    let b = Scripted::new("b", &[Step::Fail(Duration::ZERO, server_error(), None)]);
    let rt = runtime(TWO, &[("m", vec![a.clone(), b.clone()])]);
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(attempts, 2);
    assert!(matches!(
        result,
        Err(GatewayError::Provider(ProviderError::Server {
            status: 500,
            ..
        }))
    ));
}

#[tokio::test(start_paused = true)]
async fn retry_rounds_wait_a_jittered_backoff_and_then_succeed() {
    let yaml = format!("{TWO}    retries: {{ max: 2, backoff: 1s, max_backoff: 1s }}\n");
    let fail = Step::Fail(Duration::ZERO, server_error(), None);
    let a = Scripted::new("a", &[fail.clone(), fail.clone()]);
    let b = Scripted::new("b", &[fail.clone(), fail]);
    let rt = runtime(&yaml, &[("m", vec![a.clone(), b.clone()])]);
    let start = Instant::now();
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(
        result.unwrap(),
        "a",
        "the third round's first deployment answers"
    );
    assert_eq!(attempts, 5);
    let calls = a.calls();
    assert_eq!(calls.len(), 3);
    for pair in calls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap <= Duration::from_secs(1),
            "full jitter under 1s: {gap:?}"
        );
    }
    // tokio's paused clock: two backoffs of at most 1 s each, not a wall-clock measurement.
    assert!(Instant::now() - start <= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_waited_for_and_defers_the_deployment() {
    let yaml = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p, model: a }]\n    retries: { max: 1, backoff: 10ms }\n";
    let a = Scripted::new(
        "a",
        &[Step::Fail(Duration::ZERO, rate_limited(), Some("3"))],
    );
    let rt = runtime(yaml, &[("m", vec![a.clone()])]);
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(result.unwrap(), "a");
    assert_eq!(attempts, 2);
    let calls = a.calls();
    assert_eq!(
        calls[1] - calls[0],
        Duration::from_secs(3),
        "the retry waited the upstream's Retry-After, not the 10 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_max_wait_is_relayed_not_waited() {
    let yaml = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p, model: a }]\n    retries: { max: 3, max_wait: 5s }\n";
    let a = Scripted::new(
        "a",
        &[Step::Fail(Duration::ZERO, rate_limited(), Some("30"))],
    );
    let rt = runtime(yaml, &[("m", vec![a.clone()])]);
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(attempts, 1);
    let error = result.unwrap_err();
    assert_eq!(error.status(), http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    // The next request skips the deferred deployment... and, it being the only one, tries it
    // anyway as the least bad (the default), rather than failing without asking.
    let (_, attempts) = run(&rt, "m").await;
    assert_eq!(attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_deferred_deployment_is_skipped_while_another_serves() {
    let a = Scripted::new(
        "a",
        &[Step::Fail(Duration::ZERO, rate_limited(), Some("60"))],
    );
    let b = Scripted::new("b", &[]);
    let rt = runtime(TWO, &[("m", vec![a.clone(), b.clone()])]);
    assert_eq!(served(&rt, "m").await, (Some("b".to_owned()), 2));
    // Within the minute a is not asked; after it, it is again.
    assert_eq!(served(&rt, "m").await, (Some("b".to_owned()), 1));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(served(&rt, "m").await, (Some("a".to_owned()), 1));
    assert_eq!(a.calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_stops_retries_once_spent() {
    // A floor of 1 retry a second (10 over the window), and a share of 0.1.
    let yaml = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p, model: a }]\n    retries: { max: 5, backoff: 1ms, max_backoff: 1ms, budget: 0.1, budget_min_per_second: 1 }\n";
    let steps: Vec<Step> = (0..100)
        .map(|_| Step::Fail(Duration::ZERO, server_error(), None))
        .collect();
    let a = Scripted::new("a", &steps);
    let rt = runtime(yaml, &[("m", vec![a.clone()])]);
    let mut total = 0;
    for _ in 0..20 {
        let (result, attempts) = run(&rt, "m").await;
        assert!(result.is_err());
        total += attempts;
    }
    // 20 first attempts, and 10 retries (the floor; 20 requests at 0.1 allow only 2).
    assert_eq!(total, 30, "retries beyond the budget were sent");
}

#[tokio::test(start_paused = true)]
async fn a_request_error_is_not_retried_nor_failed_over() {
    let yaml = format!("{TWO}    retries: {{ max: 2 }}\n");
    let bad = ProviderError::BadRequest {
        status: 400,
        message: Some("bad temperature".into()),
    };
    let a = Scripted::new("a", &[Step::Fail(Duration::ZERO, bad, None)]);
    let b = Scripted::new("b", &[]);
    let rt = runtime(&yaml, &[("m", vec![a, b.clone()])]);
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(attempts, 1);
    assert_eq!(result.unwrap_err().status(), http::StatusCode::BAD_REQUEST);
    assert!(b.calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hedge_after_a_fixed_delay_wins_and_cancels_the_slow_attempt() {
    let yaml = format!("{TWO}    hedge: {{ after: 200ms }}\n");
    let a = Scripted::new("a", &[Step::Ok(Duration::from_secs(5))]);
    let b = Scripted::new("b", &[Step::Ok(Duration::from_millis(100))]);
    let rt = runtime(&yaml, &[("m", vec![a.clone(), b.clone()])]);
    let start = Instant::now();
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(result.unwrap(), "b");
    assert_eq!(attempts, 2);
    assert_eq!(Instant::now() - start, Duration::from_millis(300));
    assert_eq!(b.calls()[0] - start, Duration::from_millis(200));
    assert_eq!(
        *a.completed.lock().unwrap(),
        0,
        "the slow attempt was dropped"
    );
    // A fast first attempt sends no hedge.
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!((result.unwrap().as_str(), attempts), ("a", 1));
    assert_eq!(b.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_first_attempt_leaves_the_hedge_to_answer() {
    let yaml = format!("{TWO}    hedge: {{ after: 100ms }}\n");
    let a = Scripted::new(
        "a",
        &[Step::Fail(Duration::from_millis(500), server_error(), None)],
    );
    let b = Scripted::new("b", &[Step::Ok(Duration::from_secs(1))]);
    let rt = runtime(&yaml, &[("m", vec![a, b.clone()])]);
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(result.unwrap(), "b");
    assert_eq!(attempts, 2, "b is not tried a second time after the race");
    assert_eq!(b.calls().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn percentile_hedges_wait_for_enough_samples() {
    let yaml = format!("{TWO}    hedge: {{ after: p90 }}\n");
    let a = Scripted::new("a", &[]);
    let b = Scripted::new("b", &[]);
    let rt = runtime(&yaml, &[("m", vec![a.clone(), b.clone()])]);
    let route = rt.routes["m"].clone();
    // No samples yet: a slow first attempt gets no hedge.
    a.steps
        .lock()
        .unwrap()
        .push_back(Step::Ok(Duration::from_secs(2)));
    assert_eq!(served(&rt, "m").await, (Some("a".to_owned()), 1));
    for _ in 0..30 {
        route.deployments[0]
            .stats
            .observe(Duration::from_millis(100), false);
    }
    a.steps
        .lock()
        .unwrap()
        .push_back(Step::Ok(Duration::from_secs(2)));
    let start = Instant::now();
    assert_eq!(served(&rt, "m").await, (Some("b".to_owned()), 2));
    let hedged_after = b.calls()[0] - start;
    // p90 of samples near 100 ms is the top of its bucket: at most about 19% more.
    assert!(
        hedged_after >= Duration::from_millis(100) && hedged_after <= Duration::from_millis(120),
        "{hedged_after:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn fallback_models_by_what_went_wrong() {
    let yaml = r#"
providers: { p: { type: mock } }
models:
  m:
    deployments: [{ provider: p, model: a }]
    fallbacks: [backup]
    context_window_fallbacks: [long]
    content_policy_fallbacks: [lenient]
  backup: { deployments: [{ provider: p, model: b }] }
  long: { deployments: [{ provider: p, model: l }] }
  lenient: { deployments: [{ provider: p, model: c }] }
"#;
    let too_long = ProviderError::ContextLength { message: None };
    let filtered = ProviderError::ContentFiltered { message: None };
    let bad = ProviderError::BadRequest {
        status: 400,
        message: None,
    };
    let a = Scripted::new(
        "a",
        &[
            Step::Fail(Duration::ZERO, server_error(), None),
            Step::Fail(Duration::ZERO, too_long, None),
            Step::Fail(Duration::ZERO, filtered, None),
            Step::Fail(Duration::ZERO, bad, None),
        ],
    );
    let rt = runtime(
        yaml,
        &[
            ("m", vec![a]),
            ("backup", vec![Scripted::new("backup", &[])]),
            ("long", vec![Scripted::new("long", &[])]),
            ("lenient", vec![Scripted::new("lenient", &[])]),
        ],
    );
    assert_eq!(served(&rt, "m").await, (Some("backup".to_owned()), 2));
    assert_eq!(served(&rt, "m").await, (Some("long".to_owned()), 2));
    assert_eq!(served(&rt, "m").await, (Some("lenient".to_owned()), 2));
    let (result, attempts) = run(&rt, "m").await;
    assert_eq!(attempts, 1, "an invalid request has no fallback");
    assert!(result.is_err());
}

#[test]
fn fallbacks_must_name_other_models() {
    let yaml = "providers: { p: { type: mock } }\nmodels:\n  m:\n    deployments: [{ provider: p }]\n    fallbacks: [m, nowhere]\n    retries: { max: 11, backoff: 0s, budget: 2 }\n    hedge: { after: p100 }\n    health: { active: { interval: 10ms } }\n";
    let problems = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap_err();
    let has = |path: &str, text: &str| {
        problems
            .iter()
            .any(|p| p.path == path && p.message.contains(text))
    };
    assert!(has("models.m.fallbacks[0]", "itself"), "{problems:?}");
    assert!(has("models.m.fallbacks[1]", "no model named 'nowhere'"));
    assert!(has("models.m.retries.max", "at most 10"));
    assert!(has("models.m.retries.backoff", "greater than 0"));
    assert!(has("models.m.retries.budget", "share"));
    assert!(has("models.m.hedge.after", "percentile"));
    assert!(has("models.m.health.active.interval", "at least 1s"));
}

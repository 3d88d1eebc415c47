//! The cost of planning one request with each routing strategy (`models.<name>.strategy`),
//! over a model of 3 and of 10 deployments whose figures (latencies, in-flight counts,
//! rate-limit headroom) are filled in as a running gateway would have them:
//!
//! - `strategy/*`: the strategy alone, ordering the candidates the filter kept;
//! - `plan_stage/*`: the whole stage as dispatch calls it (`routing::plan`: the capability and
//!   tag filter, then the strategy), with a fresh request context each time, so `lowest_cost`
//!   pays for its token estimate as a request does when no token limit or budget computed it.
//!
//! Run with `cargo bench -p portcullis-core --bench planning`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis_core::config::Config;
use portcullis_core::pipeline::{RequestCtx, parse};
use portcullis_core::provider::Operation;
use portcullis_core::provider::hints::{Hints, Remaining};
use portcullis_core::routing::{self, PlanInput};
use portcullis_core::runtime::Runtime;
use portcullis_core::tokens::Estimate;

const BODY: &[u8] = br#"{"model":"m","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello! Can you tell me a short fact about benchmarks?"}],"max_tokens":32}"#;

const STRATEGIES: [&str; 6] = [
    "priority",
    "weighted",
    "least_in_flight",
    "lowest_latency",
    "lowest_cost",
    "most_headroom",
];

/// Upstream models with catalog prices, so `lowest_cost` has real prices to compare.
const MODELS: [&str; 5] = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
];

fn runtime(deployments: usize) -> Runtime {
    let mut models = String::new();
    for strategy in STRATEGIES {
        let list: Vec<String> = (0..deployments)
            .map(|i| {
                format!(
                    "{{ provider: p{}, model: {}, weight: {} }}",
                    i % 2,
                    MODELS[i % MODELS.len()],
                    i + 1
                )
            })
            .collect();
        models.push_str(&format!(
            "  {strategy}: {{ strategy: {strategy}, deployments: [{}] }}\n",
            list.join(", ")
        ));
    }
    let yaml =
        format!("providers: {{ p0: {{ type: mock }}, p1: {{ type: mock }} }}\nmodels:\n{models}");
    let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
    let http = portcullis_core::provider::client::build(Duration::from_secs(5)).unwrap();
    let rt = Runtime::build(&config, &http);
    for route in rt.routes.values() {
        for (i, d) in route.deployments.iter().enumerate() {
            d.stats
                .observe(Duration::from_millis(50 + 10 * i as u64), false);
            d.stats.headroom.report(&Hints {
                requests: Some(Remaining {
                    remaining: 100 + i as u64,
                    limit: Some(500),
                    reset: Some(Duration::from_secs(60)),
                }),
                ..Hints::default()
            });
        }
    }
    rt
}

fn planning(c: &mut Criterion) {
    let request = parse::parse(Operation::Chat, BODY).unwrap();
    let mut group = c.benchmark_group("strategy");
    for size in [3, 10] {
        let rt = runtime(size);
        for strategy in STRATEGIES {
            let route = &rt.routes[strategy];
            let input = PlanInput {
                stream: false,
                estimate: Estimate {
                    prompt: 40,
                    output: 32,
                },
                pricing: &rt.pricing,
            };
            group.bench_with_input(BenchmarkId::new(strategy, size), &input, |b, input| {
                b.iter(|| {
                    let all = (0..route.deployments.len()).collect();
                    route
                        .strategy
                        .plan(black_box(&route.deployments), all, input)
                })
            });
        }
    }
    group.finish();
    let mut group = c.benchmark_group("plan_stage");
    for size in [3, 10] {
        let rt = runtime(size);
        for strategy in STRATEGIES {
            let route = rt.routes[strategy].clone();
            group.bench_function(BenchmarkId::new(strategy, size), |b| {
                b.iter(|| {
                    let mut ctx = RequestCtx::new("/v1/chat/completions", "bench", None);
                    ctx.body_bytes = BODY.len();
                    routing::plan(&rt, black_box(&route), &request, &mut ctx).unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);

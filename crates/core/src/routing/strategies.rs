//! The strategies a model can route by (`models.<name>.strategy`), and the per-deployment
//! figures they read ([`DeploymentStats`], fed by dispatch).
//!
//! - `priority` (the default): the config's order.
//! - `weighted`: a random order in which each deployment comes first with probability
//!   proportional to its `weight` (weighted sampling without replacement: each deployment draws
//!   `-ln(u) / weight` and the smallest goes first), so fallbacks are weighted too.
//! - `least_in_flight`: fewest requests in flight first; ties keep the config's order.
//! - `lowest_latency`: power of two choices over an exponentially weighted moving average of
//!   observed latency (of the time to first byte for streams, tracked apart from whole
//!   responses): two deployments drawn at random, the faster first, then the rest by average.
//!   Deployments without a sample yet count as fastest, so every one is tried.
//! - `lowest_cost`: cheapest first for this request: the price catalog's input and output
//!   prices of each deployment's upstream model applied to the request's estimated tokens.
//!   Deployments without a known price come last; ties keep the config's order.
//! - `most_headroom`: the deployment with the largest share of its upstream rate limits left
//!   first ([`super::headroom`]: the upstream's `x-ratelimit-*` figures, less what the gateway
//!   sent there since); ties keep the config's order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use portcullis_types::Usage;

use super::headroom::Headroom;
use super::{PlanInput, Strategy};
use crate::runtime::Deployment;

/// Weight of a new latency sample in the moving average (1/8, as TCP's SRTT).
const EWMA_SHIFT: u32 = 3;

/// What dispatch observes of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentStats {
    in_flight: AtomicU64,
    /// Moving averages in microseconds; 0 until the first sample.
    latency_us: AtomicU64,
    first_byte_us: AtomicU64,
    /// What is left of the upstream's rate limits.
    pub headroom: Headroom,
    /// Whole responses' latencies, for hedging after a percentile.
    pub latencies: super::hedge::LatencyHistogram,
}

/// Counts a request in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a DeploymentStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DeploymentStats {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Records a success's latency: the whole response, or a stream's time to first byte.
    pub fn observe(&self, took: Duration, stream: bool) {
        let cell = if stream {
            &self.first_byte_us
        } else {
            &self.latency_us
        };
        let sample = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        // A lost race between two updates loses one sample, harmlessly.
        let old = cell.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - (old >> EWMA_SHIFT) + (sample >> EWMA_SHIFT)
        };
        cell.store(new.max(1), Ordering::Relaxed);
        if !stream {
            self.latencies.record(took);
        }
    }

    /// The moving average for `stream` requests (0: no sample yet).
    pub fn latency_us(&self, stream: bool) -> u64 {
        if stream {
            self.first_byte_us.load(Ordering::Relaxed)
        } else {
            self.latency_us.load(Ordering::Relaxed)
        }
    }
}

/// Random order weighted by `weight`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Weighted;

impl Strategy for Weighted {
    fn name(&self) -> &'static str {
        "weighted"
    }

    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        _: &PlanInput<'_>,
    ) -> Vec<usize> {
        by_key(candidates, |i| {
            let weight = deployments.get(i).map_or(1, |d| d.weight.max(1));
            // 1 - u is in (0, 1]: its logarithm is finite.
            let u = 1.0 - fastrand::f64();
            -u.ln() / f64::from(weight)
        })
    }
}

/// Fewest requests in flight first.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastInFlight;

impl Strategy for LeastInFlight {
    fn name(&self) -> &'static str {
        "least_in_flight"
    }

    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        _: &PlanInput<'_>,
    ) -> Vec<usize> {
        let mut order = candidates;
        // Stable: ties keep the config's order.
        order.sort_by_key(|&i| deployments.get(i).map_or(u64::MAX, |d| d.stats.in_flight()));
        order
    }
}

/// Power of two choices over the latency averages.
#[derive(Debug, Clone, Copy, Default)]
pub struct LowestLatency;

impl Strategy for LowestLatency {
    fn name(&self) -> &'static str {
        "lowest_latency"
    }

    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        input: &PlanInput<'_>,
    ) -> Vec<usize> {
        let latency = |i: usize| {
            deployments
                .get(i)
                .map_or(u64::MAX, |d| d.stats.latency_us(input.stream))
        };
        let mut order = candidates;
        if order.len() >= 2 {
            let a = fastrand::usize(..order.len());
            let mut b = fastrand::usize(..order.len() - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (order[a], order[b]);
            let (first, second) = if latency(b) < latency(a) {
                (b, a)
            } else {
                (a, b)
            };
            let mut rest: Vec<usize> = order.into_iter().filter(|&i| i != a && i != b).collect();
            rest.sort_by_key(|&i| latency(i));
            order = [first, second].into_iter().chain(rest).collect();
        }
        order
    }
}

/// Cheapest first for the request's estimated tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct LowestCost;

impl Strategy for LowestCost {
    fn name(&self) -> &'static str {
        "lowest_cost"
    }

    fn needs_estimate(&self) -> bool {
        true
    }

    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        input: &PlanInput<'_>,
    ) -> Vec<usize> {
        let usage = Usage {
            prompt_tokens: input.estimate.prompt,
            completion_tokens: input.estimate.output,
            total_tokens: input.estimate.total(),
            ..Usage::default()
        };
        by_key(candidates, |i| {
            deployments
                .get(i)
                .and_then(|d| input.pricing.cost(&d.upstream_model, &usage))
                .map_or(f64::INFINITY, |c| c.nanos() as f64)
        })
    }
}

/// Largest share of the upstream's rate limits left first.
#[derive(Debug, Clone, Copy, Default)]
pub struct MostHeadroom;

impl Strategy for MostHeadroom {
    fn name(&self) -> &'static str {
        "most_headroom"
    }

    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        _: &PlanInput<'_>,
    ) -> Vec<usize> {
        // Largest share first.
        by_key(candidates, |i| {
            -deployments
                .get(i)
                .map_or(0.0, |d| d.stats.headroom.fraction())
        })
    }
}

/// `candidates` ordered by `key`, smallest first. Stable: ties keep the config's order.
fn by_key(candidates: Vec<usize>, mut key: impl FnMut(usize) -> f64) -> Vec<usize> {
    let mut keyed: Vec<(f64, usize)> = candidates.into_iter().map(|i| (key(i), i)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The strategy named `name` in the config.
pub fn by_name(name: &str) -> Option<std::sync::Arc<dyn Strategy>> {
    Some(match name {
        "priority" => std::sync::Arc::new(super::Priority),
        "weighted" => std::sync::Arc::new(Weighted),
        "least_in_flight" => std::sync::Arc::new(LeastInFlight),
        "lowest_latency" => std::sync::Arc::new(LowestLatency),
        "lowest_cost" => std::sync::Arc::new(LowestCost),
        "most_headroom" => std::sync::Arc::new(MostHeadroom),
        _ => return None,
    })
}

/// The names [`by_name`] knows, for error messages.
pub const NAMES: &str =
    "priority, weighted, least_in_flight, lowest_latency, lowest_cost or most_headroom";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;
    use crate::runtime::Runtime;

    /// A runtime whose model `m` has the deployments `a`, `b` (and `c`) of mock providers,
    /// with the given weights.
    fn runtime(strategy: &str, weights: &[u32]) -> Runtime {
        let names = ["a", "b", "c"];
        let providers: String = names[..weights.len()]
            .iter()
            .map(|n| format!("  {n}: {{ type: mock }}\n"))
            .collect();
        let deployments: Vec<String> = names
            .iter()
            .zip(weights)
            .map(|(n, w)| format!("{{ provider: {n}, weight: {w} }}"))
            .collect();
        let yaml = format!(
            "providers:\n{providers}models:\n  m: {{ strategy: {strategy}, deployments: [{}] }}\n",
            deployments.join(", ")
        );
        let config = Config::from_yaml(&yaml, &HashMap::<String, String>::new()).unwrap();
        let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
        Runtime::build(&config, &http)
    }

    /// One plan of model `m` for a chat request of 1,000 prompt and 100 output tokens.
    fn plan(rt: &Runtime, stream: bool) -> Vec<usize> {
        plan_for(rt, stream, 1000, 100)
    }

    fn plan_for(rt: &Runtime, stream: bool, prompt: u64, output: u64) -> Vec<usize> {
        let route = &rt.routes["m"];
        let input = PlanInput {
            stream,
            estimate: crate::tokens::Estimate { prompt, output },
            pricing: &rt.pricing,
        };
        let all = (0..route.deployments.len()).collect();
        route.strategy.plan(&route.deployments, all, &input)
    }

    #[test]
    fn lowest_cost_prices_the_request_at_hand() {
        // x is cheap to read and dear to write; y the other way round; z has no known price.
        let yaml = r#"
providers: { a: { type: mock } }
pricing:
  models:
    x-model: { input: "1.00", output: "10.00" }
    y-model: { input: "3.00", output: "1.00" }
models:
  m:
    strategy: lowest_cost
    deployments:
      - { provider: a, model: z-model }
      - { provider: a, model: y-model }
      - { provider: a, model: x-model }
"#;
        let config = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap();
        let http = crate::provider::client::build(Duration::from_secs(1)).unwrap();
        let rt = Runtime::build(&config, &http);
        assert!(rt.routes["m"].strategy.needs_estimate());
        // A long prompt and a short answer: x costs 2,000 units, y 3,100.
        assert_eq!(plan_for(&rt, false, 1000, 100), vec![2, 1, 0]);
        // A short prompt and a long answer: x costs 10,100 units, y 1,300.
        assert_eq!(plan_for(&rt, false, 100, 1000), vec![1, 2, 0]);
    }

    #[test]
    fn most_headroom_follows_the_upstream_figures() {
        use crate::provider::hints::{Hints, Remaining};
        let rt = runtime("most_headroom", &[1, 1, 1]);
        let route = &rt.routes["m"];
        assert_eq!(
            plan(&rt, false),
            vec![0, 1, 2],
            "nothing reported: config order"
        );
        let left = |remaining, limit| Hints {
            requests: Some(Remaining {
                remaining,
                limit: Some(limit),
                reset: None,
            }),
            ..Hints::default()
        };
        route.deployments[0].stats.headroom.report(&left(10, 100));
        route.deployments[1].stats.headroom.report(&left(80, 100));
        assert_eq!(plan(&rt, false), vec![2, 1, 0]);
        route.deployments[2].stats.headroom.report(&left(50, 100));
        assert_eq!(plan(&rt, false), vec![1, 2, 0]);
        // The gateway's own count: 31 requests sent to b since its report leave it 49%.
        for _ in 0..31 {
            route.deployments[1].stats.headroom.sent(0);
        }
        assert_eq!(plan(&rt, false), vec![2, 1, 0]);
    }

    /// How often each deployment comes first over `n` plans.
    fn firsts(rt: &Runtime, n: usize) -> Vec<usize> {
        let route = &rt.routes["m"];
        let mut counts = vec![0; route.deployments.len()];
        for _ in 0..n {
            let plan = plan(rt, false);
            assert_eq!(
                plan.len(),
                route.deployments.len(),
                "every deployment, once"
            );
            counts[plan[0]] += 1;
        }
        counts
    }

    #[test]
    fn weighted_puts_each_first_in_proportion_to_its_weight() {
        let rt = runtime("weighted", &[1, 3]);
        assert_eq!(rt.routes["m"].strategy.name(), "weighted");
        let counts = firsts(&rt, 8000);
        let share = counts[1] as f64 / 8000.0;
        // 0.75 expected; 5 standard deviations of a binomial at n = 8000 is about 0.024.
        assert!((0.72..=0.78).contains(&share), "{counts:?}");
    }

    #[test]
    fn least_in_flight_prefers_the_idle_deployment() {
        let rt = runtime("least_in_flight", &[1, 1]);
        let route = &rt.routes["m"];
        assert_eq!(firsts(&rt, 10), vec![10, 0], "ties keep the config's order");
        let busy = route.deployments[0].stats.start();
        assert_eq!(firsts(&rt, 10), vec![0, 10]);
        drop(busy);
        assert_eq!(route.deployments[0].stats.in_flight(), 0);
        assert_eq!(firsts(&rt, 10), vec![10, 0]);
    }

    #[test]
    fn lowest_latency_prefers_the_faster_of_two_random_choices() {
        let rt = runtime("lowest_latency", &[1, 1, 1]);
        let route = &rt.routes["m"];
        for (d, ms) in route.deployments.iter().zip([10, 50, 100]) {
            d.stats.observe(Duration::from_millis(ms), false);
        }
        let counts = firsts(&rt, 6000);
        // Each pair is drawn with probability 1/3: the fastest wins 2 of them, the middle one 1,
        // the slowest none.
        assert_eq!(counts[2], 0, "{counts:?}");
        let share = counts[0] as f64 / 6000.0;
        assert!((0.63..=0.70).contains(&share), "{counts:?}");
        // Streams keep their own figures: with none yet, every deployment is as good.
        assert_eq!(plan(&rt, true).len(), 3);
    }

    #[test]
    fn the_average_moves_an_eighth_of_the_way_to_each_sample() {
        let stats = DeploymentStats::default();
        assert_eq!(stats.latency_us(false), 0);
        stats.observe(Duration::from_millis(10), false);
        assert_eq!(
            stats.latency_us(false),
            10_000,
            "the first sample is the average"
        );
        stats.observe(Duration::from_millis(90), false);
        assert_eq!(stats.latency_us(false), 20_000);
        assert_eq!(stats.latency_us(true), 0, "streams are tracked apart");
    }

    #[test]
    fn an_unknown_strategy_is_a_config_problem() {
        let yaml = "providers: { a: { type: mock } }\nmodels: { m: { strategy: fastest, deployments: [{ provider: a }] } }\n";
        let problems = Config::from_yaml(yaml, &HashMap::<String, String>::new()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "models.m.strategy" && p.message.contains("least_in_flight")),
            "{problems:?}"
        );
    }
}

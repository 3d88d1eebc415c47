//! Stage `plan`: the routing seam. A [`Strategy`] orders a route's deployments for one request;
//! dispatch tries them in that order. The strategies a model may name are in [`strategies`];
//! dispatch skips deployments that [`health`] has ejected.

pub mod active;
pub mod headroom;
pub mod health;
pub mod hedge;
pub mod retry;
pub mod strategies;

use std::fmt::Debug;

use crate::pricing::PriceCatalog;
use crate::provider::Operation;
use crate::runtime::Deployment;
use crate::tokens::Estimate;

/// What a strategy knows of the request it plans for.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub op: Operation,
    pub stream: bool,
    /// The request's estimated tokens; zero unless the strategy [`Strategy::needs_estimate`].
    pub estimate: Estimate,
    pub pricing: &'a PriceCatalog,
}

/// Orders candidate deployments.
pub trait Strategy: Send + Sync + Debug {
    /// The strategy's config name.
    fn name(&self) -> &'static str;

    /// Indices into `deployments`, in the order dispatch should try them.
    fn plan(&self, deployments: &[Deployment], input: &PlanInput<'_>) -> Vec<usize>;

    /// Whether [`PlanInput::estimate`] must be filled in (tokenizing costs microseconds, so
    /// only the strategies that price a request ask for it).
    fn needs_estimate(&self) -> bool {
        false
    }
}

/// Tries deployments in the order the config lists them, skipping those whose provider does not
/// serve the operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl Strategy for Priority {
    fn name(&self) -> &'static str {
        "priority"
    }

    fn plan(&self, deployments: &[Deployment], input: &PlanInput<'_>) -> Vec<usize> {
        strategies::serving(deployments, input.op)
    }
}

//! Stage `plan`: the routing seam. The [`filter`] keeps the deployments of a route that can
//! serve the request (its operation, the model's `require_tags` over the deployments' [`tags`],
//! and the [`capabilities`] of their models against what the request [`needs`]); then a
//! [`Strategy`] orders them; dispatch tries them in that order. The strategies a model may name
//! are in [`strategies`]; dispatch skips deployments that [`health`] has ejected. The routing
//! [`rules`] of stage `resolve` choose the route itself.

pub mod active;
pub mod capabilities;
pub mod filter;
pub mod headroom;
pub mod health;
pub mod hedge;
pub mod needs;
pub mod retry;
pub mod rules;
pub mod strategies;
pub mod tags;

use std::fmt::Debug;

use crate::pricing::PriceCatalog;
use crate::runtime::Deployment;
use crate::tokens::Estimate;

/// What a strategy knows of the request it plans for.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub stream: bool,
    /// The request's estimated tokens; zero unless the strategy [`Strategy::needs_estimate`].
    pub estimate: Estimate,
    pub pricing: &'a PriceCatalog,
}

pub use filter::plan;

/// Orders candidate deployments.
pub trait Strategy: Send + Sync + Debug {
    /// The strategy's config name.
    fn name(&self) -> &'static str;

    /// `candidates` (indices into `deployments`, in the config's order, of the deployments the
    /// filter kept) in the order dispatch should try them.
    fn plan(
        &self,
        deployments: &[Deployment],
        candidates: Vec<usize>,
        input: &PlanInput<'_>,
    ) -> Vec<usize>;

    /// Whether [`PlanInput::estimate`] must be filled in (tokenizing costs microseconds, so
    /// only the strategies that price a request ask for it).
    fn needs_estimate(&self) -> bool {
        false
    }
}

/// Tries deployments in the order the config lists them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl Strategy for Priority {
    fn name(&self) -> &'static str {
        "priority"
    }

    fn plan(&self, _: &[Deployment], candidates: Vec<usize>, _: &PlanInput<'_>) -> Vec<usize> {
        candidates
    }
}

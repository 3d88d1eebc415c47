//! Stage `plan`: the routing seam. A [`Strategy`] orders a route's deployments for one request;
//! dispatch tries them in that order. The strategies a model may name are in [`strategies`];
//! dispatch skips deployments that [`health`] has ejected.

pub mod health;
pub mod strategies;

use std::fmt::Debug;

use crate::provider::Operation;
use crate::runtime::Deployment;

/// Orders candidate deployments.
pub trait Strategy: Send + Sync + Debug {
    /// The strategy's config name.
    fn name(&self) -> &'static str;

    /// Indices into `deployments`, in the order dispatch should try them (for a stream when
    /// `stream`).
    fn plan(&self, deployments: &[Deployment], op: Operation, stream: bool) -> Vec<usize>;
}

/// Tries deployments in the order the config lists them, skipping those whose provider does not
/// serve the operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl Strategy for Priority {
    fn name(&self) -> &'static str {
        "priority"
    }

    fn plan(&self, deployments: &[Deployment], op: Operation, _stream: bool) -> Vec<usize> {
        deployments
            .iter()
            .enumerate()
            .filter(|(_, d)| d.serves(op))
            .map(|(i, _)| i)
            .collect()
    }
}

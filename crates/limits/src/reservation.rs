//! The handle of an admitted request: settled with the actual tokens in stage `settle`, or
//! released when dropped unsettled (the client went away, the task was cancelled), so a
//! concurrency slot cannot leak with a dropped future.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{LimitError, LimitKey};

/// What a reservation took: the keys, the token estimate, and the lease of its concurrency
/// slots (an id unique to this reservation, for Redis's lease sets).
#[derive(Debug)]
pub(crate) struct Held {
    pub keys: Vec<LimitKey>,
    pub estimate: u64,
    pub lease: u64,
}

impl Held {
    pub fn has_slots(&self) -> bool {
        self.keys.iter().any(|k| k.rules.max_concurrent.is_some())
    }
}

/// The backend side of a reservation.
#[async_trait]
pub(crate) trait Settle: Send + Sync + fmt::Debug {
    /// Charges or refunds `actual - estimate` tokens and frees the concurrency slots.
    async fn settle(&self, held: Held, actual: u64) -> Result<(), LimitError>;
    /// Frees the concurrency slots without awaiting (from `Drop`); the estimate stays charged.
    fn release(&self, held: Held);
}

/// An admitted request's reservation. Settle it with the actual token count; dropping it
/// unsettled frees its concurrency slots and leaves the estimate charged.
pub struct Reservation {
    held: Option<Held>,
    backend: Option<Arc<dyn Settle>>,
}

impl Reservation {
    pub(crate) fn new(held: Held, backend: Arc<dyn Settle>) -> Self {
        Self {
            held: Some(held),
            backend: Some(backend),
        }
    }

    /// A reservation that holds nothing: what a limiter that failed open admits with.
    pub(crate) fn empty() -> Self {
        Self {
            held: None,
            backend: None,
        }
    }

    /// The tokens reserved up front.
    pub fn estimate(&self) -> u64 {
        self.held.as_ref().map_or(0, |h| h.estimate)
    }

    /// Reconciles the estimate with `actual_tokens` (refunds the difference, or charges the
    /// excess, possibly into debt) and frees the concurrency slots.
    pub async fn settle(mut self, actual_tokens: u64) -> Result<(), LimitError> {
        match (self.held.take(), self.backend.take()) {
            (Some(held), Some(backend)) => backend.settle(held, actual_tokens).await,
            _ => Ok(()),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let (Some(held), Some(backend)) = (self.held.take(), self.backend.take()) {
            backend.release(held);
        }
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

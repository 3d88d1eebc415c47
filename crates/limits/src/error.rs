//! The limiter's and the spend ledger's error: the one thing a reservation can fail with
//! besides a refusal.

/// A limiter or ledger error. The gateway maps it to 503 (the backend, not the client, is at
/// fault).
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The shared backend (Redis) did not answer in time or at all, and the policy is
    /// `fail_closed` (for a reservation), or a settle, seed or read could not be done. The
    /// ledger's messages start with `spend ledger:`.
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
    /// The configuration cannot build a limiter (a malformed Redis URL).
    #[error("invalid rate limiter config: {0}")]
    Config(String),
}

impl LimitError {
    /// A low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LimitError::Unavailable(_) => "limiter_unavailable",
            LimitError::Config(_) => "limiter_config",
        }
    }
}

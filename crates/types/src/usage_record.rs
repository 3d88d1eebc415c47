//! [`UsageRecord`]: what the gateway accounts for one finished request. It travels from the
//! request path through the usage journal (`portcullis-core`'s `usage`) to the store's
//! `usage_records` table. Ids, names, counts, status and timings only: never prompt or response
//! content, never a key's secret.

use serde::{Deserialize, Serialize};

/// One finished request, as accounted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The record's own id (UUIDv7, made by the gateway): the idempotency key of the store's
    /// insert. Not the request id, which a client may choose (and repeat).
    pub id: String,
    /// The request id echoed in `x-request-id`.
    pub request_id: String,
    /// When the request arrived, in microseconds since the Unix epoch (UTC).
    pub started_at_us: i64,
    /// The key's name (config or store), or `oidc:<subject>` for a token.
    pub key_name: Option<String>,
    /// The stored key's id, when the key came from the store and the principal knows it.
    pub key_id: Option<String>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    /// The API path, such as `/v1/chat/completions`.
    pub endpoint: String,
    /// The model the client asked for.
    pub model: Option<String>,
    /// The upstream model that served (or last failed).
    pub served_model: Option<String>,
    /// The provider (deployment) that served (or last failed).
    pub provider: Option<String>,
    /// The HTTP status answered (499 when the client left first).
    pub status: u16,
    /// `completed`, `failed` or `client_gone`.
    pub outcome: String,
    pub stream: bool,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    /// From arrival to the end of the response, in microseconds.
    pub latency_us: u64,
    /// From arrival to the first byte from upstream, in microseconds.
    pub ttfb_us: Option<u64>,
    /// The cost in micro-dollars (rounded to the nearest), from the usage the provider reported
    /// and the price catalog; `None` when the served model has no price or there was no usage.
    pub cost_micros: Option<i64>,
}

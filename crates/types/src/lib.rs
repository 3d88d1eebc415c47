//! Wire schemas of the OpenAI-compatible API that Portcullis speaks to clients and to
//! OpenAI-compatible upstreams. Serde only: no I/O, no tokio.
//!
//! Requests keep the fields the gateway acts on as typed fields and every other field in an
//! `extra` map, so that fields the gateway does not understand pass through untouched.

pub mod anthropic;
pub mod error;
pub mod limits;
pub mod models;
pub mod openai;
pub mod openai_chat;
pub mod raw;
pub mod role;
pub mod usage;
pub mod usage_record;

pub use error::{ErrorBody, ErrorDetail};
pub use limits::{BudgetPeriod, BudgetSpec, LimitRules};
pub use role::Role;
pub use usage::Usage;
pub use usage_record::UsageRecord;

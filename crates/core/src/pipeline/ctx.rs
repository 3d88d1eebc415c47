//! [`RequestCtx`]: what the gateway knows about one request as it moves through the stages. It
//! holds no prompt or response content, only names, counts and timings, and it becomes the
//! access record: dropping it writes the request's one access-log line (and, with a usage
//! journal, its usage record unless it was accounted for already).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use portcullis_types::Usage;

use super::record::AccessLog;
use crate::error::{Fault, GatewayError};
use crate::provider::Dialect;

/// How a request ended, beyond its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (a context dropped in this state lost its client).
    Pending,
    Completed,
    Failed,
    /// The client went away before the response (or stream) was complete.
    ClientGone,
}

/// The state of one request.
#[derive(Debug)]
pub struct RequestCtx {
    pub request_id: Box<str>,
    pub endpoint: &'static str,
    /// The API family the client speaks (shapes its errors and stream events).
    pub dialect: Dialect,
    pub started: Instant,
    pub key_name: Option<Arc<str>>,
    /// The model name the client asked for.
    pub model: Option<Box<str>>,
    /// The deployment that served (or last failed): provider name and upstream model.
    pub provider: Option<Arc<str>>,
    pub upstream_model: Option<Arc<str>>,
    pub attempts: u32,
    pub stream: bool,
    pub client_wants_usage: bool,
    pub stream_idle: Duration,
    pub usage: Option<Usage>,
    pub first_byte: Option<Duration>,
    pub status: StatusCode,
    pub outcome: Outcome,
    pub error_kind: Option<&'static str>,
    pub error_fault: Option<Fault>,
    /// Who to account to: a stored key's id, organization, team and user (store ids), or a
    /// token's claimed organization and team and its subject.
    pub key_id: Option<Arc<str>>,
    pub org: Option<Arc<str>>,
    pub team: Option<Arc<str>>,
    pub user: Option<Arc<str>>,
    /// The snapshot's prices, to cost the request when it is accounted.
    pub pricing: Option<Arc<crate::pricing::PriceCatalog>>,
    /// The usage journal, until the request is accounted for ([`crate::usage::account`]);
    /// a context dropped with it still here appends its record then.
    pub journal: Option<Arc<crate::usage::Journal>>,
    /// The rate limits' reservation (stage `admit`), settled when the context is dropped.
    pub reservation: Option<portcullis_limits::Reservation>,
    /// The budgets' reservation (stage `admit`), settled when the context is dropped.
    pub budget: Option<super::budgets::BudgetHold>,
    /// The `x-ratelimit-*` figures of the admission.
    pub headroom: super::admit::RateHeadroom,
    /// The size of the request's body, in bytes: an upper bound of its prompt's tokens
    /// (`routing::needs::prompt_bound`).
    pub body_bytes: usize,
    /// The prompt's estimated tokens, once a stage needed them ([`RequestCtx::prompt_tokens`]).
    pub prompt_estimate: Option<u64>,
    /// The routing rule that sent the request to another model, and that model (stage
    /// `resolve`).
    pub rule: Option<Arc<str>>,
    pub route: Option<Arc<str>>,
    access_log: Option<Arc<dyn AccessLog>>,
}

impl RequestCtx {
    pub fn new(
        endpoint: &'static str,
        request_id: &str,
        access_log: Option<Arc<dyn AccessLog>>,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            endpoint,
            dialect: Dialect::OpenAi,
            started: Instant::now(),
            key_name: None,
            model: None,
            provider: None,
            upstream_model: None,
            attempts: 0,
            stream: false,
            client_wants_usage: false,
            stream_idle: crate::config::Timeouts::default().stream_idle,
            usage: None,
            first_byte: None,
            status: StatusCode::OK,
            outcome: Outcome::Pending,
            error_kind: None,
            error_fault: None,
            key_id: None,
            pricing: None,
            org: None,
            team: None,
            user: None,
            journal: None,
            reservation: None,
            budget: None,
            headroom: super::admit::RateHeadroom::default(),
            body_bytes: 0,
            prompt_estimate: None,
            rule: None,
            route: None,
            access_log,
        }
    }

    /// Marks the request as failed with `error`, answered with the error's status.
    pub fn fail(&mut self, error: &GatewayError) {
        self.status = error.status();
        self.failed_after_headers(error);
    }

    /// Marks the request as failed with `error` after its status was sent (a broken stream).
    pub fn failed_after_headers(&mut self, error: &GatewayError) {
        self.outcome = Outcome::Failed;
        self.error_kind = Some(error.kind());
        self.error_fault = Some(error.fault());
    }

    /// What a success's response headers say about how it was served.
    pub fn reply_meta(&self) -> super::ReplyMeta {
        super::ReplyMeta {
            headroom: self.headroom,
            deployment: self
                .provider
                .as_deref()
                .zip(self.upstream_model.as_deref())
                .map(|(p, m)| format!("{p}/{m}")),
            attempts: self.attempts,
        }
    }

    /// The estimated tokens of `request`'s prompt ([`crate::tokens::estimate_prompt`]),
    /// computed at most once per request: routing rules, admission and the filter of stage
    /// `plan` share the figure.
    pub fn prompt_tokens(&mut self, request: &super::ApiRequest) -> u64 {
        *self
            .prompt_estimate
            .get_or_insert_with(|| crate::tokens::estimate_prompt(request))
    }

    /// Marks the request as finished successfully.
    pub fn complete(&mut self) {
        if self.outcome == Outcome::Pending {
            self.outcome = Outcome::Completed;
        }
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        if self.outcome == Outcome::Pending && self.status.is_success() && self.error_kind.is_none()
        {
            // Non-streaming successes are completed when their body is handed to the edge;
            // anything still pending here lost its client.
            self.outcome = Outcome::ClientGone;
        }
        super::admit::settle(self);
        super::budgets::settle(self);
        if let Some(journal) = self.journal.take() {
            crate::usage::account_on_drop(self, &journal);
        }
        if let Some(sink) = self.access_log.take() {
            super::record::record(self, sink.as_ref());
        }
    }
}

//! The request pipeline: named stages over one [`RequestCtx`], in this order:
//!
//! 1. `authenticate` ([`crate::auth`]): key (or OIDC bearer token) to principal
//! 2. [`parse`]: body to a typed request; unknown fields kept for pass-through
//! 3. [`resolve`]: model name to route, checking what the key may use; the routing rules
//!    ([`crate::routing::rules`]) may choose another model
//! 4. [`admit`]: rate limits (and budgets) reserve the request, or refuse it with a 429
//! 5. `plan` ([`crate::routing::plan`]): the filter keeps the deployments that can serve the
//!    request (capabilities, tags), then the route's strategy orders them
//! 6. [`dispatch`]: provider calls with failover, retries, hedging, fallbacks to other models
//!    and timeouts
//! 7. `settle` ([`admit::settle`]): the reservation is reconciled with the actual usage when
//!    the context is dropped
//! 8. [`record`]: one access-log line per request, when its context is dropped; with a store,
//!    one usage record in the journal ([`crate::usage`]) before the response ends
//!
//! Streams leave the pipeline as a [`stream::ClientStream`] that carries the context to the end
//! of the stream, so recording happens even when the client leaves early.

pub mod admit;
pub mod bridge;
pub mod budgets;
pub mod ctx;
pub mod dispatch;
pub mod models;
pub mod parse;
pub mod record;
pub mod resolve;
pub mod stream;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use portcullis_types::anthropic::{CountTokensRequest, MessagesRequest};
use portcullis_types::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};
use serde::Serialize;

pub use ctx::RequestCtx;

use crate::Gateway;
use crate::auth::authenticate_token;
use crate::error::GatewayError;
use crate::provider::Operation;
use dispatch::Dispatched;
use stream::ClientStream;

/// A parsed client request.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ApiRequest {
    Chat(ChatCompletionRequest),
    Completion(CompletionRequest),
    Embedding(EmbeddingRequest),
    /// Anthropic's Messages API (inbound `/v1/messages`).
    Messages(Box<AnthropicCall<MessagesRequest>>),
    /// Anthropic's `/v1/messages/count_tokens`.
    CountTokens(Box<AnthropicCall<CountTokensRequest>>),
}

/// An Anthropic request with the client's `anthropic-beta` header. A native Anthropic provider
/// forwards the betas (the features they turn on change the request's meaning, and coding
/// agents rely on them); a translation to another provider has no use for them. Serializes as
/// the body alone.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct AnthropicCall<T> {
    pub body: T,
    #[serde(skip)]
    pub beta: Option<HeaderValue>,
}

impl<T> AnthropicCall<T> {
    pub fn new(body: T) -> Self {
        Self { body, beta: None }
    }
}

impl<T> std::ops::Deref for AnthropicCall<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.body
    }
}

impl<T> std::ops::DerefMut for AnthropicCall<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.body
    }
}

impl ApiRequest {
    pub fn op(&self) -> Operation {
        match self {
            Self::Chat(_) => Operation::Chat,
            Self::Completion(_) => Operation::Completion,
            Self::Embedding(_) => Operation::Embedding,
            Self::Messages(_) => Operation::Messages,
            Self::CountTokens(_) => Operation::CountTokens,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            Self::Chat(r) => &r.model,
            Self::Completion(r) => &r.model,
            Self::Embedding(r) => &r.model,
            Self::Messages(r) => &r.model,
            Self::CountTokens(r) => &r.model,
        }
    }

    /// Points the request at a deployment's upstream model name.
    pub fn set_model(&mut self, model: &str) {
        let m = match self {
            Self::Chat(r) => &mut r.model,
            Self::Completion(r) => &mut r.model,
            Self::Embedding(r) => &mut r.model,
            Self::Messages(r) => &mut r.model,
            Self::CountTokens(r) => &mut r.model,
        };
        m.clear();
        m.push_str(model);
    }

    pub fn is_stream(&self) -> bool {
        match self {
            Self::Chat(r) => r.stream == Some(true),
            Self::Completion(r) => r.stream == Some(true),
            Self::Messages(r) => r.is_stream(),
            Self::Embedding(_) | Self::CountTokens(_) => false,
        }
    }

    /// Whether the client itself asked for the usage chunk of a stream.
    pub fn client_wants_usage(&self) -> bool {
        let opts = match self {
            Self::Chat(r) => r.stream_options.as_ref(),
            Self::Completion(r) => r.stream_options.as_ref(),
            // Anthropic streams always carry their usage (message_start, message_delta).
            Self::Messages(_) => return true,
            Self::Embedding(_) | Self::CountTokens(_) => None,
        };
        opts.and_then(|o| o.include_usage) == Some(true)
    }

    /// Keeps the client's `anthropic-beta` header on an Anthropic request (others ignore it).
    pub fn set_anthropic_beta(&mut self, beta: Option<&HeaderValue>) {
        let beta = beta.cloned();
        match self {
            Self::Messages(r) => r.beta = beta,
            Self::CountTokens(r) => r.beta = beta,
            Self::Chat(_) | Self::Completion(_) | Self::Embedding(_) => {}
        }
    }

    /// The client's `anthropic-beta` header of an Anthropic request.
    pub fn anthropic_beta(&self) -> Option<&HeaderValue> {
        match self {
            Self::Messages(r) => r.beta.as_ref(),
            Self::CountTokens(r) => r.beta.as_ref(),
            Self::Chat(_) | Self::Completion(_) | Self::Embedding(_) => None,
        }
    }

    /// The JSON body for an upstream of the request's own API family (OpenAI-compatible for
    /// chat, completions and embeddings; Anthropic for messages and count_tokens).
    pub fn to_upstream_json(&self, include_usage: bool) -> serde_json::Result<Vec<u8>> {
        match self {
            Self::Chat(r) => r.to_upstream_json(include_usage),
            Self::Completion(r) => r.to_upstream_json(include_usage),
            Self::Embedding(r) => serde_json::to_vec(r),
            Self::Messages(r) => serde_json::to_vec(r),
            Self::CountTokens(r) => serde_json::to_vec(r),
        }
    }
}

/// What the edge sends back.
#[derive(Debug)]
pub enum Reply {
    /// A JSON body with a status, and what its headers say about how it was served.
    Json {
        status: StatusCode,
        body: Bytes,
        meta: ReplyMeta,
    },
    /// An SSE stream.
    Stream(Box<ClientStream>),
    /// A failure, rendered in the API's error shape, with the upstream attempts it took
    /// (`x-portcullis-attempts` when any were made).
    Error { error: GatewayError, attempts: u32 },
}

/// How a success was served, for its response headers: the rate limits' headroom
/// (`x-ratelimit-*`), the deployment that answered (`x-portcullis-deployment`: its provider's
/// config name and upstream model, never a URL or credential) and the attempts it took
/// (`x-portcullis-attempts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyMeta {
    pub headroom: admit::RateHeadroom,
    pub deployment: Option<String>,
    pub attempts: u32,
}

/// Runs one request through the stages. The context is created here and recorded when dropped.
pub async fn handle(
    gateway: &Gateway,
    op: Operation,
    request_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    let runtime = gateway.runtime();
    let mut ctx = RequestCtx::new(op.endpoint(), request_id, gateway.access_log());
    ctx.dialect = op.dialect();
    // Usage accounting (`crate::usage`): with the journal too far ahead of the store, refuse
    // before any work (back-pressure); otherwise the context carries the journal to the end.
    if let Some(journal) = gateway.usage_journal() {
        if journal.admit().is_err() {
            let error = GatewayError::UsageJournalFull;
            ctx.fail(&error);
            return Reply::Error { error, attempts: 0 };
        }
        ctx.journal = Some(journal.clone());
    }
    match run(gateway, &runtime, &mut ctx, op, headers, body).await {
        Ok(Dispatched::Complete { body, usage }) => {
            ctx.usage = usage;
            ctx.status = StatusCode::OK;
            ctx.complete();
            // The usage record is written before the body goes out (what "acknowledged" means,
            // see `crate::usage`); if it cannot be, the body is withheld.
            if let Err(error) = crate::usage::account(&mut ctx).await {
                ctx.fail(&error);
                let attempts = ctx.attempts;
                return Reply::Error { error, attempts };
            }
            Reply::Json {
                status: StatusCode::OK,
                body,
                meta: ctx.reply_meta(),
            }
        }
        Ok(Dispatched::Stream { first, rest }) => {
            ctx.status = StatusCode::OK;
            Reply::Stream(Box::new(ClientStream::new(ctx, first, rest)))
        }
        Err(error) => {
            ctx.fail(&error);
            let attempts = ctx.attempts;
            Reply::Error { error, attempts }
        }
    }
}

async fn run(
    gateway: &Gateway,
    runtime: &crate::Runtime,
    ctx: &mut RequestCtx,
    op: Operation,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Dispatched, GatewayError> {
    // Boxed: the token path's future (about 1 KiB: a JWKS fetch may be in it) would otherwise
    // grow every request's future, keys included.
    let stored = gateway.stored_keys();
    let principal = match runtime.keys.authenticate_with(headers, stored.as_deref()) {
        Ok(p) => p,
        Err(e) => Box::pin(authenticate_token(runtime.oidc.as_deref(), headers, e)).await?,
    };
    ctx.key_name = Some(principal.key_name.clone());
    // Who to account the request to: a stored key's ids, or a token's subject and claims.
    (ctx.key_id, ctx.org, ctx.team, ctx.user) = (
        principal.key_id.clone(),
        principal.org.clone(),
        principal.team.clone(),
        principal.user.clone().or_else(|| principal.subject.clone()),
    );
    principal.check_endpoint(ctx.endpoint)?;
    ctx.pricing = Some(runtime.pricing.clone());
    let mut request = parse::parse(op, body)?;
    request.set_anthropic_beta(headers.get("anthropic-beta"));
    ctx.model = Some(request.model().into());
    ctx.stream = request.is_stream();
    ctx.client_wants_usage = request.client_wants_usage();
    ctx.body_bytes = body.len();
    let route = resolve::resolve_request(runtime, &principal, headers, &request, ctx)?;
    ctx.stream_idle = route.timeouts.stream_idle;
    let (limiter, budgets) = (gateway.limiter(), gateway.budgets());
    admit::admit(limiter, budgets, runtime, &principal, &route, &request, ctx).await?;
    dispatch::dispatch(ctx, runtime, &route, &mut request).await
}

/// Serves `GET /v1/models` and `GET /v1/models/{id}`. Async only for the verification of an
/// OIDC token; a key is answered without awaiting anything.
pub async fn list_models(
    gateway: &Gateway,
    request_id: &str,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Reply {
    let runtime = gateway.runtime();
    let mut ctx = RequestCtx::new("/v1/models", request_id, gateway.access_log());
    let stored = gateway.stored_keys();
    // Boxed as in `run`.
    let principal = match runtime.keys.authenticate_with(headers, stored.as_deref()) {
        Ok(p) => Ok(p),
        Err(e) => Box::pin(authenticate_token(runtime.oidc.as_deref(), headers, e)).await,
    };
    let listed = principal.map_err(GatewayError::from).and_then(|p| {
        ctx.key_name = Some(p.key_name.clone());
        p.check_endpoint(ctx.endpoint)?;
        models::list(&runtime, &p, id)
    });
    match listed {
        Ok(body) => {
            ctx.status = StatusCode::OK;
            ctx.complete();
            Reply::Json {
                status: StatusCode::OK,
                body,
                meta: ReplyMeta::default(),
            }
        }
        Err(error) => {
            ctx.fail(&error);
            Reply::Error { error, attempts: 0 }
        }
    }
}

//! The HTTP edge: axum routes for the OpenAI-compatible API and the health probes, the
//! request-id layer, body limits, and the rendering of every reply (errors in OpenAI's shape,
//! never an HTML or plain-text page).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use portcullis_core::error::RequestError;
use portcullis_core::pipeline::admit::{self, RateHeadroom};
use portcullis_core::pipeline::{self, Reply, ReplyMeta};
use portcullis_core::provider::{Dialect, Operation};
use portcullis_core::{Gateway, GatewayError, request_id};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const X_PORTCULLIS_DEPLOYMENT: HeaderName = HeaderName::from_static("x-portcullis-deployment");
const X_PORTCULLIS_ATTEMPTS: HeaderName = HeaderName::from_static("x-portcullis-attempts");

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub max_body_bytes: usize,
    /// The metrics page's source (`None`: metrics are off).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Every handler names its request with the client's `x-request-id` (if sane) or a new id,
/// and echoes it on the response. Log lines of a request carry the id as a field. (Done in
/// the handlers rather than in a middleware layer or a tracing span: both cost more than the
/// rest of the request path.)
fn request_id(headers: &HeaderMap) -> String {
    request_id::accept_or_generate(headers.get(X_REQUEST_ID).map(HeaderValue::as_bytes))
}

fn tagged(mut response: Response, id: &str) -> Response {
    if let Ok(h) = HeaderValue::try_from(id) {
        response.headers_mut().insert(X_REQUEST_ID, h);
    }
    response
}

async fn chat(State(state): State<AppState>, request: Request) -> Response {
    complete(&state, Operation::Chat, request).await
}

async fn completions(State(state): State<AppState>, request: Request) -> Response {
    complete(&state, Operation::Completion, request).await
}

async fn embeddings(State(state): State<AppState>, request: Request) -> Response {
    complete(&state, Operation::Embedding, request).await
}

async fn messages(State(state): State<AppState>, request: Request) -> Response {
    complete(&state, Operation::Messages, request).await
}

async fn count_tokens(State(state): State<AppState>, request: Request) -> Response {
    complete(&state, Operation::CountTokens, request).await
}

async fn complete(state: &AppState, op: Operation, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers);
    let dialect = op.dialect();
    let response = match read_body(&parts.headers, body, state.max_body_bytes).await {
        Ok(body) => render(
            pipeline::handle(&state.gateway, op, &id, &parts.headers, &body).await,
            dialect,
        ),
        Err(e) => {
            let mut ctx = pipeline::RequestCtx::new(op.endpoint(), &id, state.gateway.access_log());
            ctx.dialect = dialect;
            ctx.fail(&e);
            error_response(&e, dialect)
        }
    };
    tagged(response, &id)
}

async fn list_models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let id = request_id(&headers);
    tagged(
        render(
            pipeline::list_models(&state.gateway, &id, &headers, None).await,
            Dialect::OpenAi,
        ),
        &id,
    )
}

async fn get_model(
    State(state): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Response {
    let id = request_id(&headers);
    let reply = pipeline::list_models(&state.gateway, &id, &headers, Some(&model)).await;
    tagged(render(reply, Dialect::OpenAi), &id)
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    crate::metrics::render(state.metrics.as_ref())
}

async fn healthz(headers: HeaderMap) -> Response {
    let ok = json_response(StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#));
    tagged(ok, &request_id(&headers))
}

async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let response = if state.gateway.is_draining() {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(br#"{"status":"draining"}"#),
        )
    } else {
        let body = format!(
            r#"{{"status":"ready","config_generation":{}}}"#,
            state.gateway.generation()
        );
        json_response(StatusCode::OK, Bytes::from(body))
    };
    tagged(response, &request_id(&headers))
}

async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let error = GatewayError::RouteNotFound {
        method: method.to_string(),
        path: uri.path().to_owned(),
    };
    tagged(
        error_response(&error, dialect_of(&uri)),
        &request_id(&headers),
    )
}

async fn method_not_allowed(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let error = GatewayError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    };
    tagged(
        error_response(&error, dialect_of(&uri)),
        &request_id(&headers),
    )
}

/// Reads the whole body, refusing more than `limit` bytes (early when Content-Length says so).
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    let too_large = || GatewayError::from(RequestError::TooLarge { limit });
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(RequestError::Json("the request body could not be read".into()).into()),
    }
}

/// Unknown routes and wrong methods under `/v1/messages` answer in Anthropic's shape.
fn dialect_of(uri: &Uri) -> Dialect {
    if uri.path().starts_with("/v1/messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

fn render(reply: Reply, dialect: Dialect) -> Response {
    match reply {
        Reply::Json { status, body, meta } => {
            let mut response = json_response(status, body);
            served_headers(response.headers_mut(), &meta);
            response
        }
        Reply::Error { error, attempts } => {
            let mut response = error_response(&error, dialect);
            if attempts > 0 {
                let h = response.headers_mut();
                h.insert(X_PORTCULLIS_ATTEMPTS, HeaderValue::from(attempts));
            }
            response
        }
        Reply::Stream(stream) => {
            let meta = stream.meta();
            let mut response = Response::new(Body::from_stream(stream));
            let h = response.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
            served_headers(h, &meta);
            response
        }
    }
}

/// How a success was served: the deployment, the attempts, and the rate limits' headroom.
fn served_headers(h: &mut HeaderMap, meta: &ReplyMeta) {
    if let Some(v) = meta
        .deployment
        .as_deref()
        .and_then(|d| HeaderValue::from_str(d).ok())
    {
        h.insert(X_PORTCULLIS_DEPLOYMENT, v);
    }
    if meta.attempts > 0 {
        h.insert(X_PORTCULLIS_ATTEMPTS, HeaderValue::from(meta.attempts));
    }
    ratelimit_headers(h, &meta.headroom);
}

/// OpenAI's `x-ratelimit-*` headers, from the tightest rules the request was admitted under.
fn ratelimit_headers(h: &mut HeaderMap, headroom: &RateHeadroom) {
    let dimensions = [
        (
            headroom.requests,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        ),
        (
            headroom.tokens,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        ),
    ];
    for (room, [limit, remaining, reset]) in dimensions {
        let Some(room) = room else { continue };
        h.insert(limit, HeaderValue::from(room.limit));
        h.insert(remaining, HeaderValue::from(room.remaining));
        if let Ok(v) = HeaderValue::from_str(&admit::reset_text(room.reset)) {
            h.insert(reset, v);
        }
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(error: &GatewayError, dialect: Dialect) -> Response {
    let mut response = json_response(error.status(), Bytes::from(error.to_json_in(dialect)));
    if let Some(wait) = error.retry_after() {
        // Whole seconds, rounded up: a client that waits exactly this long finds room.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    response
}

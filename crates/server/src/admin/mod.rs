//! The admin API under `/admin/v1`: organizations, teams, virtual keys and provider credentials
//! (`credentials.rs`) in the store. Every
//! handler takes a [`Caller`] (who is calling, with which role and scope). Served only when a store
//! is configured. A key's secret is returned once, when it is made or rotated; lists and reads
//! never carry secrets or digests. After a change to keys the gateway's in-memory key table is
//! reloaded at once, so a new key works and a revoked one stops on the next request.
//!
//! Not yet: the org, team and member roles with their scoping, users endpoints,
//! OIDC tokens, the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::Gateway;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::{
    KeyFilter, NewKey, NewOrg, NewTeam, OrgFilter, Page, PageRequest, Store, StoreError,
    TeamFilter, VirtualKey,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::stored_keys;

mod caller;
pub(crate) mod credentials;

pub use caller::Caller;

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub store: Arc<dyn Store>,
    pub hasher: Arc<KeyHasher>,
    pub credentials: credentials::CredentialsState,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/v1/orgs", post(create_org).get(list_orgs))
        .route("/admin/v1/teams", post(create_team).get(list_teams))
        .route("/admin/v1/keys", post(create_key).get(list_keys))
        .route("/admin/v1/keys/{id}", get(get_key))
        .route("/admin/v1/keys/{id}/revoke", post(revoke_key))
        .route("/admin/v1/keys/{id}/rotate", post(rotate_key))
        .merge(credentials::routes())
        .with_state(state)
}

/// An admin failure, answered in the API's error shape.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AdminError {
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            StoreError::InvalidReference { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reference")
            }
            _ => {
                tracing::error!(error = %e, "admin: the store failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    "the store failed",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {"message": self.message, "type": kind, "param": null, "code": self.code}});
        (self.status, axum::Json(body)).into_response()
    }
}

type Result<T> = std::result::Result<T, AdminError>;

fn body<T: for<'de> Deserialize<'de>>(raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| {
        AdminError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            portcullis_types::error::scrubbed(&e),
        )
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
    org_id: Option<String>,
    team_id: Option<String>,
    name_prefix: Option<String>,
    enabled: Option<bool>,
}

impl ListQuery {
    fn page(&self) -> PageRequest {
        PageRequest {
            limit: self.limit.unwrap_or(0),
            after: self.after.clone(),
        }
    }
}

fn page_json<T: serde::Serialize>(page: Page<T>) -> Value {
    json!({"data": page.items, "next_after": page.next_after})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrg {
    name: String,
}

async fn create_org(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let req: CreateOrg = body(&raw)?;
    let org = s.store.create_org(NewOrg { name: req.name }).await?;
    Ok((StatusCode::CREATED, axum::Json(org)).into_response())
}

async fn list_orgs(
    State(s): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let filter = OrgFilter {
        name_prefix: q.name_prefix.clone(),
    };
    let page = s.store.list_orgs(&filter, &q.page()).await?;
    Ok(axum::Json(page_json(page)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTeam {
    org_id: String,
    name: String,
}

async fn create_team(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let req: CreateTeam = body(&raw)?;
    let team = s
        .store
        .create_team(NewTeam {
            org_id: req.org_id,
            name: req.name,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(team)).into_response())
}

async fn list_teams(
    State(s): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let filter = TeamFilter {
        org_id: q.org_id.clone(),
        name_prefix: q.name_prefix.clone(),
    };
    let page = s.store.list_teams(&filter, &q.page()).await?;
    Ok(axum::Json(page_json(page)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    team_id: String,
    name: String,
    user_id: Option<String>,
    #[serde(default)]
    allowed_models: Vec<String>,
    #[serde(default)]
    allowed_endpoints: Vec<String>,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
}

/// A key with its secret: the answer to creating or rotating it, the only time it is shown.
fn with_secret(key: &VirtualKey, secret: &secrecy::SecretString) -> Value {
    let mut value = serde_json::to_value(key).unwrap_or(Value::Null);
    value["key"] = Value::String(secret.expose_secret().to_owned());
    value
}

async fn reload_keys(s: &AdminState) {
    match stored_keys::load(s.store.as_ref(), &s.hasher).await {
        Ok(table) => s.gateway.set_stored_keys(table),
        Err(e) => {
            tracing::warn!(error = %e, "admin: cannot reload the keys; the next refresh will")
        }
    }
}

async fn create_key(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let req: CreateKey = body(&raw)?;
    let made = s.hasher.generate().map_err(|_| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "random_failed",
            "cannot make a key",
        )
    })?;
    let key = s
        .store
        .create_key(NewKey {
            public_id: made.id.clone(),
            digest: made.digest.clone(),
            name: req.name,
            team_id: req.team_id,
            user_id: req.user_id,
            labels: req.labels,
            allowed_models: req.allowed_models,
            allowed_endpoints: req.allowed_endpoints,
            expires_at: req.expires_at,
            enabled: true,
        })
        .await?;
    reload_keys(&s).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(with_secret(&key, &made.key)),
    )
        .into_response())
}

async fn list_keys(
    State(s): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let filter = KeyFilter {
        org_id: q.org_id.clone(),
        team_id: q.team_id.clone(),
        user_id: None,
        enabled: q.enabled,
        name_prefix: q.name_prefix.clone(),
    };
    let page = s.store.list_keys(&filter, &q.page()).await?;
    Ok(axum::Json(page_json(page)).into_response())
}

async fn get_key(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    Ok(axum::Json(s.store.get_key(&id).await?).into_response())
}

async fn revoke_key(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let key = s.store.revoke_key(&id, OffsetDateTime::now_utc()).await?;
    reload_keys(&s).await;
    Ok(axum::Json(key).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old secret keeps working (default one hour, at most 30 days).
    grace_seconds: Option<u32>,
}

async fn rotate_key(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let req: Rotate = if raw.is_empty() {
        Rotate::default()
    } else {
        body(&raw)?
    };
    let grace = req.grace_seconds.unwrap_or(3600);
    if grace > 30 * 24 * 3600 {
        return Err(AdminError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grace_seconds must be at most 30 days",
        ));
    }
    let current = s.store.get_key(&id).await?;
    let made = s.hasher.generate().map_err(|_| {
        AdminError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "random_failed",
            "cannot make a key",
        )
    })?;
    // The new secret keeps the key's public id, so the key stays findable under it.
    let secret = secrecy::SecretString::from(made.key.expose_secret().replacen(
        &made.id,
        &current.public_id,
        1,
    ));
    let key = s
        .store
        .rotate_key(
            &id,
            s.hasher.digest(secret.expose_secret()),
            OffsetDateTime::now_utc() + time::Duration::seconds(i64::from(grace)),
        )
        .await?;
    reload_keys(&s).await;
    Ok(axum::Json(with_secret(&key, &secret)).into_response())
}

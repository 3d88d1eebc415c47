//! `/admin/v1/keys`: virtual keys. Create: a team admin or above in scope, for any user of the
//! team or none; a member only for itself; a viewer never. List and read: the caller's read
//! scope (metadata only: the secret is shown once, when a key is made or rotated, and digests
//! never). Change, revoke, rotate, delete: a team admin or above in scope; a member only its
//! own keys. A key is its user's identity, so nobody but a gateway admin acts on the keys of a
//! user above its own role. A key's limits and budgets are set by whoever may make or change
//! it: they apply together with those of its user, team and organization, so they only narrow.
//! After every change the gateway's key table is reloaded, so a new key works, and a revoked or
//! disabled one stops, on the next request.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::{
    BudgetSpec, KeyFilter, KeyUpdate, LimitRules, NewKey, StoreError, Team, User, VirtualKey,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorResponse, KeyPage, KeyWithSecret};
use super::quotas::QuotaFields;
use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result, teams};

/// The longest grace period of a rotated key's old secret.
const MAX_GRACE_SECONDS: u32 = 30 * 24 * 3600;
/// The default grace period: one hour.
const DEFAULT_GRACE_SECONDS: u32 = 3600;

pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
        .routes(routes!(revoke))
        .routes(routes!(rotate))
}

/// A key with its secret: the answer to creating or rotating it, the only time it is shown.
fn with_secret(key: &VirtualKey, secret: &SecretString) -> Value {
    let mut value = serde_json::to_value(key).unwrap_or(Value::Null);
    value["key"] = Value::String(secret.expose_secret().to_owned());
    value
}

fn random_failed() -> AdminError {
    AdminError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "random_failed",
        "cannot make a key",
    )
}

/// The user a key is for, which must be a member of the key's team. A missing user and one of
/// another team answer alike (422), so the field cannot probe other teams' user ids.
async fn owner_in(s: &AdminState, team: &Team, user_id: &str) -> Result<User> {
    match s.store.get_user(user_id).await {
        Ok(user) if user.team_id == team.id => Ok(user),
        Ok(_) | Err(StoreError::NotFound { .. }) => Err(AdminError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_reference",
            "user_id: no such user in the key's team",
        )
        .with_param("user_id")),
        Err(e) => Err(e.into()),
    }
}

/// A key the caller may change, with its team and its user.
struct Manageable {
    key: VirtualKey,
    team: Team,
    owner: Option<User>,
}

/// The key `id`, its team and its user, once the caller may change it.
async fn manageable(s: &AdminState, caller: &Caller, id: &str) -> Result<Manageable> {
    let key = s.store.get_key(id).await?;
    let team = s.store.get_team(&key.team_id).await?;
    caller.read_key(&team)?;
    let owner = match &key.user_id {
        Some(user_id) => Some(s.store.get_user(user_id).await?),
        None => None,
    };
    caller.manage_key(&team, owner.as_ref())?;
    Ok(Manageable { key, team, owner })
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateKey)]
#[serde(deny_unknown_fields)]
struct Create {
    team_id: String,
    name: String,
    user_id: Option<String>,
    #[serde(default)]
    allowed_models: Vec<String>,
    #[serde(default)]
    allowed_endpoints: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    /// Rate limits of this key alone, within those of its user, team and organization; none
    /// by default.
    #[serde(default)]
    limits: LimitRules,
    /// Money budgets of this key alone, at most one per period; none by default.
    #[serde(default)]
    budgets: Vec<BudgetSpec>,
}

/// Make a virtual key for a team and optionally one of its users; the answer carries the key once.
#[utoipa::path(post, operation_id = "create_key", path = "/admin/v1/keys", tag = "keys", request_body = Create,
    responses(
        (status = 201, description = "Created, with the key", body = KeyWithSecret),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such team in the caller's scope (param team_id)", body = ErrorResponse),
        (status = 422, description = "No such user in the key's team (param user_id)", body = ErrorResponse),
    ))]
async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    let mut quotas = QuotaFields::new(req.limits, req.budgets)?;
    let team = teams::parent(&s, &req.team_id, "team_id").await?;
    // Scope first: a team outside it answers 404 before the user is looked at.
    caller
        .read_team(&team)
        .map_err(|_| AdminError::missing_parent("team", "team_id"))?;
    let owner = match caller.key_owner(req.user_id) {
        Some(user_id) => Some(owner_in(&s, &team, &user_id).await?),
        None => None,
    };
    caller.create_key(&team, owner.as_ref())?;
    if quotas.given() {
        caller.set_key_quotas(&team, owner.as_ref())?;
    }
    let made = s.hasher.generate().map_err(|_| random_failed())?;
    let key = s
        .store
        .create_key(NewKey {
            public_id: made.id.clone(),
            digest: made.digest.clone(),
            name,
            team_id: team.id,
            user_id: owner.map(|u| u.id),
            labels: req.labels,
            allowed_models: req.allowed_models,
            allowed_endpoints: wire::endpoints(req.allowed_endpoints)?,
            limits: quotas.new_limits(),
            budgets: quotas.new_budgets(),
            expires_at: req.expires_at,
            enabled: true,
        })
        .await?;
    s.reload_keys().await;
    Ok((
        StatusCode::CREATED,
        axum::Json(with_secret(&key, &made.key)),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The previous page's `next_after`.
    after: Option<String>,
    org_id: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    enabled: Option<bool>,
    name_prefix: Option<String>,
}

/// List the keys in the caller's scope (never their secrets).
#[utoipa::path(get, operation_id = "list_keys", path = "/admin/v1/keys", tag = "keys", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = KeyPage),
        (status = 400, description = "Invalid query", body = ErrorResponse),
    ))]
async fn list(
    State(s): State<AdminState>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    let Some(scope) = caller.list_scope(q.org_id, q.team_id) else {
        return Ok(wire::empty_page());
    };
    let filter = KeyFilter {
        org_id: scope.org_id,
        team_id: scope.team_id,
        user_id: q.user_id,
        enabled: q.enabled,
        name_prefix: q.name_prefix,
    };
    let page = s
        .store
        .list_keys(&filter, &wire::page(q.limit, q.after))
        .await?;
    Ok(wire::page_response(page))
}

/// Read a key (never its secret).
#[utoipa::path(get, operation_id = "get_key", path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = VirtualKey),
        (status = 404, description = "No such key in the caller's scope", body = ErrorResponse),
    ))]
async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let key = s.store.get_key(&id).await?;
    let team = s.store.get_team(&key.team_id).await?;
    caller.read_key(&team)?;
    Ok(axum::Json(key).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateKey)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    allowed_models: Option<Vec<String>>,
    allowed_endpoints: Option<Vec<String>>,
    #[serde(default, deserialize_with = "wire::nullable_time")]
    expires_at: Option<Option<OffsetDateTime>>,
    enabled: Option<bool>,
    /// Replaces the key's own rate limits; `{}` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<LimitRules>)]
    limits: Option<Option<LimitRules>>,
    /// Replaces the key's own budgets; `[]` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<BudgetSpec>>)]
    budgets: Option<Option<Vec<BudgetSpec>>>,
}

/// Change a key's name, labels, models, endpoints, expiry, limits or budgets, or turn it off and on.
#[utoipa::path(patch, operation_id = "update_key", path = "/admin/v1/keys/{id}", tag = "keys", request_body = Update, params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key as changed", body = VirtualKey),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such key in the caller's scope", body = ErrorResponse),
    ))]
async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    let current = manageable(&s, &caller, &id).await?;
    let req: Update = wire::body(&raw)?;
    let quotas = QuotaFields::change(req.limits, req.budgets)?;
    if quotas.given() {
        caller.set_key_quotas(&current.team, current.owner.as_ref())?;
    }
    let update = KeyUpdate {
        name: wire::opt_name("name", req.name)?,
        labels: req.labels,
        allowed_models: req.allowed_models,
        allowed_endpoints: req.allowed_endpoints.map(wire::endpoints).transpose()?,
        expires_at: req.expires_at,
        enabled: req.enabled,
        limits: quotas.limits,
        budgets: quotas.budgets,
    };
    let key = s.store.update_key(&id, update).await?;
    s.reload_keys().await;
    Ok(axum::Json(key).into_response())
}

/// Delete a key's record.
#[utoipa::path(delete, operation_id = "delete_key", path = "/admin/v1/keys/{id}", tag = "keys", params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such key in the caller's scope", body = ErrorResponse),
    ))]
async fn delete(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    manageable(&s, &caller, &id).await?;
    s.store.delete_key(&id).await?;
    s.reload_keys().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Revoke a key for good; it stops working within a second.
#[utoipa::path(post, operation_id = "revoke_key", path = "/admin/v1/keys/{id}/revoke", tag = "keys", params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The revoked key", body = VirtualKey),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such key in the caller's scope", body = ErrorResponse),
    ))]
async fn revoke(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    manageable(&s, &caller, &id).await?;
    let key = s.store.revoke_key(&id, OffsetDateTime::now_utc()).await?;
    s.reload_keys().await;
    Ok(axum::Json(key).into_response())
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = RotateKey)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old secret keeps working (default one hour, at most 30 days).
    grace_seconds: Option<u32>,
}

/// Give a key a new secret; the old one keeps working for the grace period.
#[utoipa::path(post, operation_id = "rotate_key", path = "/admin/v1/keys/{id}/rotate", tag = "keys", request_body(content = Option<Rotate>, description = "Optional; the default grace is one hour"), params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, with its new secret", body = KeyWithSecret),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such key in the caller's scope", body = ErrorResponse),
        (status = 409, description = "The key is revoked", body = ErrorResponse),
    ))]
async fn rotate(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    let current = manageable(&s, &caller, &id).await?;
    let req: Rotate = if raw.is_empty() {
        Rotate::default()
    } else {
        wire::body(&raw)?
    };
    let grace = req.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(AdminError::invalid(
            "grace_seconds",
            "grace_seconds must be at most 30 days",
        ));
    }
    let made = s.hasher.generate().map_err(|_| random_failed())?;
    // The new secret keeps the key's public id, so the key stays findable under it.
    let secret = SecretString::from(made.key.expose_secret().replacen(
        &made.id,
        &current.key.public_id,
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
    s.reload_keys().await;
    Ok(axum::Json(with_secret(&key, &secret)).into_response())
}

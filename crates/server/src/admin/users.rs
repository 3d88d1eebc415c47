//! `/admin/v1/users`: create, change and delete (the team admin of the user's team, the org
//! admin of its organization, a gateway admin), list and read (within the caller's read scope).
//! A role given or changed is at most the caller's own, so only a gateway admin makes gateway
//! admins, and nobody but a gateway admin changes or deletes a user above its own role.
//! Its limits and budgets are set by the same callers. Deleting a user who still has keys
//! answers 409.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::{BudgetSpec, LimitRules, NewUser, Role, User, UserFilter, UserUpdate};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorResponse, UserPage};
use super::quotas::QuotaFields;
use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result, teams};

pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateUser)]
#[serde(deny_unknown_fields)]
struct Create {
    team_id: String,
    name: String,
    email: Option<String>,
    /// At most the caller's own role; default `member`.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Rate limits of all the user's keys together; none by default.
    #[serde(default)]
    limits: LimitRules,
    /// Money budgets of all the user's keys together, at most one per period; none by default.
    #[serde(default)]
    budgets: Vec<BudgetSpec>,
}

/// Add a user to a team (its team admin, the org admin or a gateway admin); the role is at most the caller's.
#[utoipa::path(post, operation_id = "create_user", path = "/admin/v1/users", tag = "users", request_body = Create,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such team in the caller's scope (param team_id)", body = ErrorResponse),
        (status = 409, description = "The name is taken in the team", body = ErrorResponse),
    ))]
async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    let email = req.email.map(wire::email).transpose()?;
    let role = match req.role {
        Some(role) => wire::role("role", &role)?,
        None => Role::Member,
    };
    let mut quotas = QuotaFields::new(req.limits, req.budgets)?;
    let team = teams::parent(&s, &req.team_id, "team_id").await?;
    caller.create_user(&team, role)?;
    if quotas.given() {
        caller.set_user_quotas(&team, role)?;
    }
    let new = NewUser {
        team_id: team.id,
        name,
        email,
        role,
        limits: quotas.new_limits(),
        budgets: quotas.new_budgets(),
    };
    let user = s.store.create_user(new).await?;
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
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
    name_prefix: Option<String>,
}

/// List the users in the caller's scope.
#[utoipa::path(get, operation_id = "list_users", path = "/admin/v1/users", tag = "users", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = UserPage),
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
    let filter = UserFilter {
        org_id: scope.org_id,
        team_id: scope.team_id,
        name_prefix: q.name_prefix,
    };
    let page = s
        .store
        .list_users(&filter, &wire::page(q.limit, q.after))
        .await?;
    Ok(wire::page_response(page))
}

/// Read a user.
#[utoipa::path(get, operation_id = "get_user", path = "/admin/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user in the caller's scope", body = ErrorResponse),
    ))]
async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let user = s.store.get_user(&id).await?;
    let team = s.store.get_team(&user.team_id).await?;
    caller.read_user(&team)?;
    Ok(axum::Json(user).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateUser)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::nullable")]
    email: Option<Option<String>>,
    /// At most the caller's own role.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Replaces the rate limits; `{}` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<LimitRules>)]
    limits: Option<Option<LimitRules>>,
    /// Replaces the budgets; `[]` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<BudgetSpec>>)]
    budgets: Option<Option<Vec<BudgetSpec>>>,
}

/// Change a user's name, email, role, limits or budgets.
#[utoipa::path(patch, operation_id = "update_user", path = "/admin/v1/users/{id}", tag = "users", request_body = Update, params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user as changed", body = User),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such user in the caller's scope", body = ErrorResponse),
        (status = 409, description = "The name is taken in the team", body = ErrorResponse),
    ))]
async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    let user = s.store.get_user(&id).await?;
    let team = s.store.get_team(&user.team_id).await?;
    caller.manage_user(&team, &user)?;
    let req: Update = wire::body(&raw)?;
    let role = req.role.map(|r| wire::role("role", &r)).transpose()?;
    if let Some(role) = role {
        caller.grant_role(role)?;
    }
    let quotas = QuotaFields::change(req.limits, req.budgets)?;
    if quotas.given() {
        caller.set_user_quotas(&team, user.role)?;
    }
    let reload = quotas.given();
    let update = UserUpdate {
        name: wire::opt_name("name", req.name)?,
        email: req
            .email
            .map(|e| e.map(wire::email).transpose())
            .transpose()?,
        role,
        limits: quotas.limits,
        budgets: quotas.budgets,
    };
    let user = s.store.update_user(&id, update).await?;
    if reload {
        // Every key of the user carries its quotas.
        s.reload_keys().await;
    }
    Ok(axum::Json(user).into_response())
}

/// Delete a user who has no keys.
#[utoipa::path(delete, operation_id = "delete_user", path = "/admin/v1/users/{id}", tag = "users", params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such user in the caller's scope", body = ErrorResponse),
        (status = 409, description = "The user still has keys", body = ErrorResponse),
    ))]
async fn delete(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let user = s.store.get_user(&id).await?;
    let team = s.store.get_team(&user.team_id).await?;
    caller.manage_user(&team, &user)?;
    s.store
        .delete_user(&id)
        .await
        .map_err(|e| AdminError::on_delete(e, "user", "keys"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

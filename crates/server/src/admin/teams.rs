//! `/admin/v1/teams`: create, rename and delete, and set limits and budgets (gateway admin, or
//! the org admin of the team's organization); list and read (a gateway admin every team, an org admin its organization's,
//! a team admin, member or viewer its own). Deleting a team that still has users or keys
//! answers 409.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::{BudgetSpec, LimitRules, NewTeam, StoreError, Team, TeamFilter, TeamUpdate};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorResponse, TeamPage};
use super::quotas::QuotaFields;
use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result};

pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
}

/// The team named by the request field `param` (such as a new user's `team_id`): 404 with that
/// field when it does not exist. The caller's scope is checked by the caller.
pub(super) async fn parent(s: &AdminState, id: &str, param: &'static str) -> Result<Team> {
    match s.store.get_team(id).await {
        Err(StoreError::NotFound { .. }) => Err(AdminError::missing_parent("team", param)),
        other => Ok(other?),
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateTeam)]
#[serde(deny_unknown_fields)]
struct Create {
    org_id: String,
    name: String,
    /// Rate limits of the whole team; none by default.
    #[serde(default)]
    limits: LimitRules,
    /// Money budgets of the whole team, at most one per period; none by default.
    #[serde(default)]
    budgets: Vec<BudgetSpec>,
}

/// Make a team in an organization (gateway admin, or the org admin).
#[utoipa::path(post, operation_id = "create_team", path = "/admin/v1/teams", tag = "teams", request_body = Create,
    responses(
        (status = 201, description = "Created", body = Team),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such organization in the caller's scope (param org_id)", body = ErrorResponse),
        (status = 409, description = "The name is taken in the organization", body = ErrorResponse),
    ))]
async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    let mut quotas = QuotaFields::new(req.limits, req.budgets)?;
    caller.create_team(&req.org_id)?;
    if quotas.given() {
        caller.set_team_quotas(&req.org_id)?;
    }
    if let Err(StoreError::NotFound { .. }) = s.store.get_org(&req.org_id).await {
        return Err(AdminError::missing_parent("organization", "org_id"));
    }
    let new = NewTeam {
        org_id: req.org_id,
        name,
        limits: quotas.new_limits(),
        budgets: quotas.new_budgets(),
    };
    let team = s.store.create_team(new).await?;
    Ok((StatusCode::CREATED, axum::Json(team)).into_response())
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
    name_prefix: Option<String>,
}

/// List the teams in the caller's scope.
#[utoipa::path(get, operation_id = "list_teams", path = "/admin/v1/teams", tag = "teams", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = TeamPage),
        (status = 400, description = "Invalid query", body = ErrorResponse),
    ))]
async fn list(
    State(s): State<AdminState>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    let Some(scope) = caller.list_scope(q.org_id, None) else {
        return Ok(wire::empty_page());
    };
    let page = match scope.team_id {
        // A team-bound caller sees one team: its own.
        Some(own) => {
            let team = s.store.get_team(&own).await?;
            let (id, name) = (team.id.clone(), team.name.clone());
            wire::single_page(
                team,
                &id,
                &name,
                q.name_prefix.as_deref(),
                q.after.as_deref(),
            )
        }
        None => {
            let filter = TeamFilter {
                org_id: scope.org_id,
                name_prefix: q.name_prefix,
            };
            s.store
                .list_teams(&filter, &wire::page(q.limit, q.after))
                .await?
        }
    };
    Ok(wire::page_response(page))
}

/// Read a team.
#[utoipa::path(get, operation_id = "get_team", path = "/admin/v1/teams/{id}", tag = "teams", params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team", body = Team),
        (status = 404, description = "No such team in the caller's scope", body = ErrorResponse),
    ))]
async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let team = s.store.get_team(&id).await?;
    caller.read_team(&team)?;
    Ok(axum::Json(team).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateTeam)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    /// Replaces the rate limits; `{}` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<LimitRules>)]
    limits: Option<Option<LimitRules>>,
    /// Replaces the budgets; `[]` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<BudgetSpec>>)]
    budgets: Option<Option<Vec<BudgetSpec>>>,
}

/// Rename a team or set its limits and budgets (gateway admin, or the org admin).
#[utoipa::path(patch, operation_id = "update_team", path = "/admin/v1/teams/{id}", tag = "teams", request_body = Update, params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 200, description = "The team as changed", body = Team),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such team in the caller's scope", body = ErrorResponse),
        (status = 409, description = "The name is taken in the organization", body = ErrorResponse),
    ))]
async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    let team = s.store.get_team(&id).await?;
    caller.manage_team(&team)?;
    let req: Update = wire::body(&raw)?;
    let quotas = QuotaFields::change(req.limits, req.budgets)?;
    if quotas.given() {
        caller.set_team_quotas(&team.org_id)?;
    }
    let reload = quotas.given();
    let update = TeamUpdate {
        name: wire::opt_name("name", req.name)?,
        limits: quotas.limits,
        budgets: quotas.budgets,
    };
    let team = s.store.update_team(&id, update).await?;
    if reload {
        // Every key of the team carries its quotas.
        s.reload_keys().await;
    }
    Ok(axum::Json(team).into_response())
}

/// Delete a team that has no users or keys (gateway admin, or the org admin).
#[utoipa::path(delete, operation_id = "delete_team", path = "/admin/v1/teams/{id}", tag = "teams", params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller's role may not", body = ErrorResponse),
        (status = 404, description = "No such team in the caller's scope", body = ErrorResponse),
        (status = 409, description = "It still has users or keys", body = ErrorResponse),
    ))]
async fn delete(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let team = s.store.get_team(&id).await?;
    caller.manage_team(&team)?;
    s.store
        .delete_team(&id)
        .await
        .map_err(|e| AdminError::on_delete(e, "team", "users or keys"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

//! `/admin/v1/orgs`: create and delete (gateway admin), list and read (a gateway admin every
//! organization, anyone else its own), rename (gateway admin, or the org admin of it), set its
//! limits and budgets (gateway admin). Deleting an organization that still has teams answers
//! 409.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::{BudgetSpec, LimitRules, NewOrg, OrgFilter, OrgUpdate, Organization};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{ErrorResponse, OrgPage};
use super::quotas::QuotaFields;
use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result};

pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateOrg)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    /// Rate limits of the whole organization; none by default.
    #[serde(default)]
    limits: LimitRules,
    /// Money budgets of the whole organization, at most one per period; none by default.
    #[serde(default)]
    budgets: Vec<BudgetSpec>,
}

/// Make an organization (gateway admin).
#[utoipa::path(post, operation_id = "create_org", path = "/admin/v1/orgs", tag = "orgs", request_body = Create,
    responses(
        (status = 201, description = "Created", body = Organization),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 409, description = "The name is taken", body = ErrorResponse),
    ))]
async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.create_org()?;
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    // Only a gateway admin gets here, and it may set the quotas of any organization.
    let mut quotas = QuotaFields::new(req.limits, req.budgets)?;
    let new = NewOrg {
        name,
        limits: quotas.new_limits(),
        budgets: quotas.new_budgets(),
    };
    let org = s.store.create_org(new).await?;
    Ok((StatusCode::CREATED, axum::Json(org)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The previous page's `next_after`.
    after: Option<String>,
    /// Only names starting with this.
    name_prefix: Option<String>,
}

/// List organizations: every one for a gateway admin, its own for anyone else.
#[utoipa::path(get, operation_id = "list_orgs", path = "/admin/v1/orgs", tag = "orgs", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = OrgPage),
        (status = 400, description = "Invalid query", body = ErrorResponse),
    ))]
async fn list(
    State(s): State<AdminState>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    let Some(scope) = caller.list_scope(None, None) else {
        return Ok(wire::empty_page());
    };
    let page = match scope.org_id {
        // Everyone but a gateway admin sees one organization: its own.
        Some(own) => {
            let org = s.store.get_org(&own).await?;
            let (id, name) = (org.id.clone(), org.name.clone());
            wire::single_page(
                org,
                &id,
                &name,
                q.name_prefix.as_deref(),
                q.after.as_deref(),
            )
        }
        None => {
            let filter = OrgFilter {
                name_prefix: q.name_prefix,
            };
            s.store
                .list_orgs(&filter, &wire::page(q.limit, q.after))
                .await?
        }
    };
    Ok(wire::page_response(page))
}

/// Read an organization.
#[utoipa::path(get, operation_id = "get_org", path = "/admin/v1/orgs/{id}", tag = "orgs",
    params(("id" = String, Path, description = "The organization's id")),
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 404, description = "No such organization in the caller's scope", body = ErrorResponse),
    ))]
async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.read_org(&id)?;
    Ok(axum::Json(s.store.get_org(&id).await?).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateOrg)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    /// Replaces the rate limits (gateway admin); `{}` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<LimitRules>)]
    limits: Option<Option<LimitRules>>,
    /// Replaces the budgets (gateway admin); `[]` or `null` removes them.
    #[serde(default, deserialize_with = "wire::nullable")]
    #[schema(value_type = Option<Vec<BudgetSpec>>)]
    budgets: Option<Option<Vec<BudgetSpec>>>,
}

/// Rename an organization (gateway admin, or its org admin), or set its limits and budgets (gateway admin).
#[utoipa::path(patch, operation_id = "update_org", path = "/admin/v1/orgs/{id}", tag = "orgs", request_body = Update,
    params(("id" = String, Path, description = "The organization's id")),
    responses(
        (status = 200, description = "The organization as changed", body = Organization),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "The caller's role may not (an org admin may rename its organization, not set its quotas)", body = ErrorResponse),
        (status = 404, description = "No such organization in the caller's scope", body = ErrorResponse),
        (status = 409, description = "The name is taken", body = ErrorResponse),
    ))]
async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.update_org(&id)?;
    let req: Update = wire::body(&raw)?;
    let quotas = QuotaFields::change(req.limits, req.budgets)?;
    if quotas.given() {
        caller.set_org_quotas(&id)?;
    }
    let reload = quotas.given();
    let update = OrgUpdate {
        name: wire::opt_name("name", req.name)?,
        limits: quotas.limits,
        budgets: quotas.budgets,
    };
    let org = s.store.update_org(&id, update).await?;
    if reload {
        // Every key of the organization carries its quotas.
        s.reload_keys().await;
    }
    Ok(axum::Json(org).into_response())
}

/// Delete an organization that has no teams (gateway admin).
#[utoipa::path(delete, operation_id = "delete_org", path = "/admin/v1/orgs/{id}", tag = "orgs",
    params(("id" = String, Path, description = "The organization's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 404, description = "No such organization in the caller's scope", body = ErrorResponse),
        (status = 409, description = "It still has teams", body = ErrorResponse),
    ))]
async fn delete(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.delete_org(&id)?;
    s.store
        .delete_org(&id)
        .await
        .map_err(|e| AdminError::on_delete(e, "organization", "teams"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

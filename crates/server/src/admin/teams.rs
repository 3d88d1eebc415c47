//! `/admin/v1/teams`: create, rename and delete (gateway admin, or the org admin of the team's
//! organization); list and read (a gateway admin every team, an org admin its organization's,
//! a team admin, member or viewer its own). Deleting a team that still has users or keys
//! answers 409.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_store::{NewTeam, StoreError, Team, TeamFilter, TeamUpdate};
use serde::Deserialize;

use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/teams", post(create).get(list))
        .route(
            "/admin/v1/teams/{id}",
            get(read).patch(update).delete(delete),
        )
}

/// The team named by the request field `param` (such as a new user's `team_id`): 404 with that
/// field when it does not exist. The caller's scope is checked by the caller.
pub(super) async fn parent(s: &AdminState, id: &str, param: &'static str) -> Result<Team> {
    match s.store.get_team(id).await {
        Err(StoreError::NotFound { .. }) => Err(AdminError::missing_parent("team", param)),
        other => Ok(other?),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    org_id: String,
    name: String,
}

async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    caller.create_team(&req.org_id)?;
    if let Err(StoreError::NotFound { .. }) = s.store.get_org(&req.org_id).await {
        return Err(AdminError::missing_parent("organization", "org_id"));
    }
    let new = NewTeam {
        org_id: req.org_id,
        name,
    };
    let team = s.store.create_team(new).await?;
    Ok((StatusCode::CREATED, axum::Json(team)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
    org_id: Option<String>,
    name_prefix: Option<String>,
}

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

async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let team = s.store.get_team(&id).await?;
    caller.read_team(&team)?;
    Ok(axum::Json(team).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
}

async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    let team = s.store.get_team(&id).await?;
    caller.manage_team(&team)?;
    let req: Update = wire::body(&raw)?;
    let update = TeamUpdate {
        name: wire::opt_name("name", req.name)?,
    };
    Ok(axum::Json(s.store.update_team(&id, update).await?).into_response())
}

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

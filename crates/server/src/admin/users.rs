//! `/admin/v1/users`: create, change and delete (the team admin of the user's team, the org
//! admin of its organization, a gateway admin), list and read (within the caller's read scope).
//! A role given or changed is at most the caller's own, so only a gateway admin makes gateway
//! admins, and nobody but a gateway admin changes or deletes a user above its own role.
//! Deleting a user who still has keys answers 409.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_store::{NewUser, Role, UserFilter, UserUpdate};
use serde::Deserialize;

use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result, teams};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/users", post(create).get(list))
        .route(
            "/admin/v1/users/{id}",
            get(read).patch(update).delete(delete),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    team_id: String,
    name: String,
    email: Option<String>,
    role: Option<String>,
}

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
    let team = teams::parent(&s, &req.team_id, "team_id").await?;
    caller.create_user(&team, role)?;
    let new = NewUser {
        team_id: team.id,
        name,
        email,
        role,
    };
    let user = s.store.create_user(new).await?;
    Ok((StatusCode::CREATED, axum::Json(user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
    org_id: Option<String>,
    team_id: Option<String>,
    name_prefix: Option<String>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    #[serde(default, deserialize_with = "wire::nullable")]
    email: Option<Option<String>>,
    role: Option<String>,
}

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
    let update = UserUpdate {
        name: wire::opt_name("name", req.name)?,
        email: req
            .email
            .map(|e| e.map(wire::email).transpose())
            .transpose()?,
        role,
    };
    Ok(axum::Json(s.store.update_user(&id, update).await?).into_response())
}

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

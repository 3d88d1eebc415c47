//! `/admin/v1/orgs`: create and delete (gateway admin), list and read (a gateway admin every
//! organization, anyone else its own), rename (gateway admin, or the org admin of it). Deleting
//! an organization that still has teams answers 409.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_store::{NewOrg, OrgFilter, OrgUpdate};
use serde::Deserialize;

use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result};

pub(super) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/orgs", post(create).get(list))
        .route(
            "/admin/v1/orgs/{id}",
            get(read).patch(update).delete(delete),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
}

async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.create_org()?;
    let req: Create = wire::body(&raw)?;
    let name = wire::name("name", req.name)?;
    let org = s.store.create_org(NewOrg { name }).await?;
    Ok((StatusCode::CREATED, axum::Json(org)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
    after: Option<String>,
    name_prefix: Option<String>,
}

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

async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.read_org(&id)?;
    Ok(axum::Json(s.store.get_org(&id).await?).into_response())
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
    caller.update_org(&id)?;
    let req: Update = wire::body(&raw)?;
    let update = OrgUpdate {
        name: wire::opt_name("name", req.name)?,
    };
    Ok(axum::Json(s.store.update_org(&id, update).await?).into_response())
}

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

//! The admin API under `/admin/v1`: organizations, teams, users, virtual keys and provider
//! credentials in the store, and reports of the usage recorded there.
//! Served only when a store is configured. This module owns the state the handlers share and
//! the router; each entity's endpoints live in their own module (`orgs`, `teams`, `users`,
//! `keys`, `credentials`; the usage report in `usage`, shaped by `usage_report`), who is calling in `caller`, what they may see and do in `scope`, the error shape in
//! `error`, bodies, query parameters, validation and pages in `wire`, and the OpenAPI document
//! (generated from the handlers' annotations as the routes are registered) in `openapi`.
//!
//! Every handler takes a [`Caller`] (the master key's gateway admin, the user behind a stored
//! key, or the holder of an OIDC token, with its role and scope), fetches the object, asks the caller whether it may
//! (404 outside its scope, exactly as a missing id; 403 when its role may not), then acts.
//! Lists force the caller's scope into their filters. A key's secret is returned once, when it
//! is made or rotated; lists and reads never carry secrets or digests. After a change to keys
//! the gateway's in-memory key table is reloaded at once, so a new key works and a revoked one
//! stops on the next request.

use std::sync::Arc;

use axum::Router;
use portcullis_core::Gateway;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::Store;
use utoipa_axum::router::OpenApiRouter;

mod caller;
pub(crate) mod credentials;
mod error;
mod keys;
mod oidc_caller;
mod openapi;
mod orgs;
mod scope;
mod teams;
mod usage;
mod usage_report;
mod users;
mod wire;

pub(crate) use caller::Caller;
pub(crate) use error::{AdminError, Result};

/// What the admin handlers share.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub store: Arc<dyn Store>,
    pub hasher: Arc<KeyHasher>,
    pub credentials: credentials::CredentialsState,
}

/// The admin API's routes, each module's merged, and its OpenAPI document at
/// `GET /admin/v1/openapi.json` (public: it describes the API, not its data).
pub fn router(state: AdminState) -> Router {
    let (router, document) = documented_routes().split_for_parts();
    let document = openapi::to_json(&document);
    router.with_state(state).route(
        "/admin/v1/openapi.json",
        axum::routing::get(move || std::future::ready(openapi::response(document.clone()))),
    )
}

/// Every admin route with its documentation.
fn documented_routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(<openapi::AdminDoc as utoipa::OpenApi>::openapi())
        .merge(orgs::routes())
        .merge(teams::routes())
        .merge(users::routes())
        .merge(keys::routes())
        .merge(credentials::routes())
        .merge(usage::routes())
}

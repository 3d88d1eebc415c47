//! The admin API under `/admin/v1`: organizations, teams, users, virtual keys and provider
//! credentials in the store, and reports of the usage recorded there.
//! Served only when a store is configured. This module owns the state the handlers share and
//! the router; each entity's endpoints live in their own module (`orgs`, `teams`, `users`,
//! `keys`, `credentials`; the usage report in `usage`, shaped by `usage_report`), who is
//! calling in `caller`, what they may see and do in `scope`, the error shape in `error`,
//! bodies, query parameters, validation and pages in `wire`, the limits and budgets every
//! tenant and key takes in `quotas`, and the OpenAPI document (generated from the handlers'
//! annotations as the routes are registered) in `openapi`.
//!
//! Every handler takes a [`Caller`] (the master key's gateway admin, the user behind a stored
//! key, or the holder of an OIDC token, with its role and scope), fetches the object, asks the caller whether it may
//! (404 outside its scope, exactly as a missing id; 403 when its role may not), then acts.
//! Lists force the caller's scope into their filters. A key's secret is returned once, when it
//! is made or rotated; lists and reads never carry secrets or digests. After a change to keys,
//! or to the quotas of an organization, team or user, the gateway's in-memory key table is
//! reloaded at once, so a new key works, a revoked one stops, and requests carry the new quotas
//! from the next one on.

use std::sync::Arc;

use axum::Router;
use portcullis_core::Gateway;
use portcullis_core::virtual_key::KeyHasher;
use portcullis_store::Store;
use utoipa_axum::router::OpenApiRouter;

use crate::stored_keys;

mod caller;
pub(crate) mod credentials;
mod error;
mod keys;
mod oidc_caller;
mod openapi;
mod orgs;
mod quotas;
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

impl AdminState {
    /// Reloads the gateway's table of stored keys after a change to keys or quotas. A failure
    /// is only logged: the change is stored, and the table's refresh picks it up within a second.
    pub(crate) async fn reload_keys(&self) {
        match stored_keys::load(self.store.as_ref(), &self.hasher).await {
            Ok(table) => self.gateway.set_stored_keys(table),
            Err(e) => {
                tracing::warn!(error = %e, "admin: cannot reload the keys; the next refresh will")
            }
        }
    }
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

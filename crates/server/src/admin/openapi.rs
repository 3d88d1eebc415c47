//! The admin API's OpenAPI 3.1 document, served at `GET /admin/v1/openapi.json` and committed
//! as `docs/openapi.json`. It is generated, not written: each handler carries a
//! `#[utoipa::path]` annotation, the router is an `utoipa_axum` `OpenApiRouter` that registers
//! a route and its documentation together (so no route can be served undocumented, nor
//! documented and not served), and the bodies are the Rust types the handlers read and write.
//! This module adds what the handlers don't own: the document's header, the bearer security
//! scheme, the error body and the page wrappers.

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use portcullis_store::{Organization, Team, User, VirtualKey};

/// The document's header, security scheme and shared schemas; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis admin API",
        description = "Organizations, teams, users, virtual keys and provider credentials of a \
            Portcullis gateway with a store, and reports of its usage. Every call needs a bearer credential: the master \
            key, a user's virtual key or an OIDC token; its role and scope decide what it may \
            see and do (see docs/admin-api.md). An object outside the caller's scope answers 404 \
            exactly as a missing one."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorResponse, ErrorDetail)),
    tags(
        (name = "orgs", description = "Organizations: the top of the tenancy tree"),
        (name = "teams", description = "Teams of an organization"),
        (name = "users", description = "Users of a team, each with a role"),
        (name = "keys", description = "Virtual keys: the gateway keys applications hold"),
        (name = "credentials", description = "Provider credentials, encrypted at rest; their secrets never come out"),
        (name = "usage", description = "What the requests used (requests, errors, tokens, cost), summed per day, organization, team, user, key, model or provider"),
    )
)]
pub(super) struct AdminDoc;

/// Adds the bearer scheme every call uses.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The master key, a user's virtual key (pk-...) or an OIDC token",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every error: `{"error": {...}}` with the status of the response.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorResponse {
    error: ErrorDetail,
}

/// What went wrong. `message` is for people, `code` for programs.
#[derive(Serialize, ToSchema)]
pub(super) struct ErrorDetail {
    message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`
    /// or `api_error`.
    #[serde(rename = "type")]
    kind: String,
    /// The request field at fault, if one is.
    param: Option<String>,
    /// `invalid_request`, `missing_api_key`, `invalid_api_key`, `forbidden`, `not_found`,
    /// `conflict`, `invalid_reference`, ...
    code: String,
}

/// Declares a page type per entity: `{"data": [...], "next_after": "<id>" | null}`.
macro_rules! page {
    ($name:ident, $item:ty) => {
        /// A page of a list, in creation order. Pass `next_after` as the next request's `after`;
        /// it is null on the last page.
        #[derive(Serialize, ToSchema)]
        pub(super) struct $name {
            data: Vec<$item>,
            next_after: Option<String>,
        }
    };
}

page!(OrgPage, Organization);
page!(TeamPage, Team);
page!(UserPage, User);
page!(KeyPage, VirtualKey);
page!(CredentialPage, super::credentials::Credential);

/// A key with its secret: the answer to creating or rotating it, the only time the secret is
/// shown.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyWithSecret {
    #[serde(flatten)]
    key: VirtualKey,
    /// The key itself (`pk-<public id>-<secret>`). Store it now: it is never shown again.
    #[serde(rename = "key")]
    secret: String,
}

/// The document as served and committed: pretty JSON with a trailing newline.
pub(super) fn to_json(document: &utoipa::openapi::OpenApi) -> bytes::Bytes {
    let mut text = document.to_pretty_json().unwrap_or_default();
    text.push('\n');
    bytes::Bytes::from(text)
}

/// The answer to `GET /admin/v1/openapi.json`.
pub(super) fn response(document: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::path::PathBuf;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// `docs/openapi.json` is the document the gateway serves. After changing the API, run
    /// `PORTCULLIS_BLESS=1 cargo test -p portcullis openapi` and commit the file.
    #[test]
    fn the_committed_document_is_current() {
        let (_, document) = super::super::documented_routes().split_for_parts();
        let generated = super::to_json(&document);
        let path = committed_path();
        if std::env::var_os("PORTCULLIS_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date: run PORTCULLIS_BLESS=1 cargo test -p portcullis openapi"
        );
    }

    #[test]
    fn every_operation_is_documented_with_bearer_auth_and_errors() {
        let (_, document) = super::super::documented_routes().split_for_parts();
        let json: serde_json::Value = serde_json::from_slice(&super::to_json(&document)).unwrap();
        assert_eq!(
            json["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(json["security"][0]["bearer"], serde_json::json!([]));
        let mut operation_ids = std::collections::BTreeSet::new();
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    operation_ids.insert(id.to_owned()),
                    "{what}: operationId {id} twice"
                );
                assert!(op["summary"].is_string(), "{what} has no summary");
                assert!(op["tags"][0].is_string(), "{what} has no tag");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{what} has no success response"
                );
                if path.contains("{id}") {
                    assert!(responses.contains_key("404"), "{what} has no 404");
                }
            }
        }
        // orgs, teams, users, credentials: 5 each; keys: 7; usage: 1.
        assert_eq!(operation_ids.len(), 28);
        // Secrets never appear as readable fields of a key, except in the one-time answer.
        let key = &json["components"]["schemas"]["VirtualKey"]["properties"];
        assert!(key.get("digest").is_none() && key.get("previous_digest").is_none());
    }
}

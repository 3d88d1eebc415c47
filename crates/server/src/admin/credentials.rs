//! Provider credentials in the admin API, for the gateway admin only:
//!
//! - `POST /admin/v1/credentials` `{name, provider, secret}` → 201
//! - `GET /admin/v1/credentials?provider=&name_prefix=&limit=&after=` → `{data, next_after}`
//! - `GET /admin/v1/credentials/{id}`
//! - `PATCH /admin/v1/credentials/{id}` `{name?, secret?}`
//! - `DELETE /admin/v1/credentials/{id}` → 204
//!
//! The secret goes in and never comes out: every answer carries the metadata only (`id`,
//! `name`, `provider`, `key_id`, `created_at`, `updated_at`). It is sealed under the current
//! master key for the row's id before the row is written (`stored_credentials`). After every
//! change the config is reloaded, so providers that reference the credential
//! (`${credential:NAME}`) use the new secret on the next request. A credential the serving
//! config references cannot be renamed or deleted (409, naming where it is used). Without
//! `secrets.master_key` every endpoint answers 503 saying what to configure.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::config::{provider_types, valid_credential_name};
use portcullis_core::envelope::Keyring;
use portcullis_store::{CredentialFilter, CredentialUpdate, NewCredential, ProviderCredential};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{CredentialPage, ErrorResponse};
use super::wire::{self, Params};
use super::{AdminError, AdminState, Caller, Result};
use crate::reload::Reloader;
use crate::stored_credentials;

/// Longest secret accepted (a service-account JSON key is about 2.5 KiB).
const MAX_SECRET_BYTES: usize = 64 * 1024;

/// What the credentials endpoints need besides the store.
#[derive(Debug, Clone, Default)]
pub struct CredentialsState {
    /// The master keys; `None` when `secrets:` is not configured.
    pub keyring: Option<Arc<Keyring>>,
    /// Reloads the config after a change, and knows what the serving config references.
    pub reloader: Option<Arc<Reloader>>,
}

pub(crate) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, remove))
}

/// The keyring, or 503 saying what to configure.
fn keyring(s: &AdminState) -> Result<Arc<Keyring>> {
    s.credentials.keyring.clone().ok_or_else(|| {
        AdminError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets_not_configured",
            "stored credentials need a master key: set secrets.master_key (or \
             secrets.master_key_file) in the config and restart the gateway; \
             `portcullis secrets generate` makes a key",
        )
    })
}

/// A provider credential as the API shows it: never the secret, nor its ciphertext.
#[derive(Serialize, ToSchema)]
pub(super) struct Credential {
    id: String,
    /// How the config refers to it: `${credential:NAME}`.
    name: String,
    /// The provider type it is for (`openai`, `anthropic`, `bedrock`, ...).
    provider: String,
    /// The id of the master key it is sealed under.
    key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<ProviderCredential> for Credential {
    fn from(c: ProviderCredential) -> Self {
        Self {
            id: c.id,
            name: c.name,
            provider: c.provider,
            key_id: c.key_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn check_name(name: &str) -> Result<()> {
    if valid_credential_name(name) {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "name",
            "name must be 1 to 128 letters, digits, '-', '_' or '.' (the config refers to it as \
             ${credential:NAME})",
        ))
    }
}

fn check_provider(provider: &str) -> Result<()> {
    let known: Vec<&str> = provider_types().filter(|t| *t != "mock").collect();
    if known.contains(&provider) {
        Ok(())
    } else {
        Err(AdminError::invalid(
            "provider",
            format!("provider must be one of: {}", known.join(", ")),
        ))
    }
}

fn check_secret(secret: &SecretString) -> Result<()> {
    let s = secret.expose_secret();
    if s.trim().is_empty() {
        return Err(AdminError::invalid("secret", "secret must not be empty"));
    }
    if s.len() > MAX_SECRET_BYTES {
        return Err(AdminError::invalid(
            "secret",
            format!("secret must be at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Reloads the config, so providers pick up the change.
async fn apply(s: &AdminState, what: &str) {
    if let Some(reloader) = &s.credentials.reloader {
        reloader.reload(what).await;
    }
}

/// 409 when the serving config references the credential `name`.
fn not_referenced(s: &AdminState, name: &str, doing: &str) -> Result<()> {
    let Some(reloader) = &s.credentials.reloader else {
        return Ok(());
    };
    let paths = reloader.references_to(name);
    if paths.is_empty() {
        return Ok(());
    }
    Err(AdminError::new(
        StatusCode::CONFLICT,
        "credential_in_use",
        format!(
            "cannot {doing} the credential '{name}': the config uses it at {}; change the \
             config first",
            paths.join(", ")
        ),
    ))
}

fn seal_error(e: portcullis_core::envelope::EnvelopeError) -> AdminError {
    tracing::error!(error = %e, "admin: cannot seal a credential");
    AdminError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "encryption_failed",
        "cannot encrypt the secret",
    )
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateCredential)]
#[serde(deny_unknown_fields)]
struct Create {
    /// 1 to 128 letters, digits, `-`, `_` or `.`.
    name: String,
    /// A provider type of the config (`openai`, `anthropic`, `bedrock`, ...).
    provider: String,
    /// The secret: an API key, or the file's text for `credentials` (Vertex, AWS).
    secret: String,
}

/// Store a provider credential, sealed under the current master key (gateway admin).
#[utoipa::path(post, path = "/admin/v1/credentials", operation_id = "create_credential",
    tag = "credentials", request_body = Create,
    responses(
        (status = 201, description = "Created (metadata only)", body = Credential),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 409, description = "The name is taken", body = ErrorResponse),
        (status = 503, description = "secrets.master_key is not configured", body = ErrorResponse),
    ))]
async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let ring = keyring(&s)?;
    let req: Create = wire::body(&raw)?;
    let secret = SecretString::from(req.secret);
    check_name(&req.name)?;
    check_provider(&req.provider)?;
    check_secret(&secret)?;
    let id = portcullis_store::new_id();
    let sealed = stored_credentials::seal(&ring, &id, &secret).map_err(seal_error)?;
    let created = s
        .store
        .create_credential(NewCredential {
            id,
            name: req.name,
            provider: req.provider,
            ciphertext: sealed.ciphertext,
            wrapped_key: sealed.wrapped_key,
            key_id: sealed.key_id,
        })
        .await?;
    tracing::info!(id = %created.id, name = %created.name, by = %caller.subject, "admin: credential created");
    apply(&s, "credential created").await;
    Ok((StatusCode::CREATED, axum::Json(Credential::from(created))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only credentials for this provider type.
    provider: Option<String>,
    /// Only names starting with this.
    name_prefix: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<u32>,
    /// The previous page's `next_after`.
    after: Option<String>,
}

/// List provider credentials (metadata only; gateway admin).
#[utoipa::path(get, path = "/admin/v1/credentials", operation_id = "list_credentials",
    tag = "credentials", params(ListQuery),
    responses(
        (status = 200, description = "A page", body = CredentialPage),
        (status = 400, description = "Invalid query", body = ErrorResponse),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 503, description = "secrets.master_key is not configured", body = ErrorResponse),
    ))]
async fn list(
    State(s): State<AdminState>,
    caller: Caller,
    Params(q): Params<ListQuery>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    keyring(&s)?;
    let filter = CredentialFilter {
        provider: q.provider,
        name_prefix: q.name_prefix,
    };
    let page = s
        .store
        .list_credentials(&filter, &wire::page(q.limit, q.after))
        .await?;
    Ok(wire::page_response(page.map(Credential::from)))
}

/// Read a provider credential's metadata (gateway admin).
#[utoipa::path(get, path = "/admin/v1/credentials/{id}", operation_id = "get_credential",
    tag = "credentials", params(("id" = String, Path, description = "The credential's id")),
    responses(
        (status = 200, description = "The credential (metadata only)", body = Credential),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 404, description = "No such credential", body = ErrorResponse),
        (status = 503, description = "secrets.master_key is not configured", body = ErrorResponse),
    ))]
async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    keyring(&s)?;
    let c = s.store.get_credential(&id).await?;
    Ok(axum::Json(Credential::from(c)).into_response())
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UpdateCredential)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    /// A new secret, sealed under the current master key.
    secret: Option<String>,
}

/// Rename a provider credential or give it a new secret (gateway admin); the config is
/// reloaded, so the next request uses it.
#[utoipa::path(patch, path = "/admin/v1/credentials/{id}", operation_id = "update_credential",
    tag = "credentials", request_body = Update,
    params(("id" = String, Path, description = "The credential's id")),
    responses(
        (status = 200, description = "The credential as changed (metadata only)", body = Credential),
        (status = 400, description = "Invalid body", body = ErrorResponse),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 404, description = "No such credential", body = ErrorResponse),
        (status = 409, description = "Renaming one the config uses, or the name is taken", body = ErrorResponse),
        (status = 503, description = "secrets.master_key is not configured", body = ErrorResponse),
    ))]
async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let ring = keyring(&s)?;
    let req: Update = wire::body(&raw)?;
    let secret = req.secret.map(SecretString::from);
    if let Some(name) = &req.name {
        check_name(name)?;
    }
    if let Some(secret) = &secret {
        check_secret(secret)?;
    }
    let current = s.store.get_credential(&id).await?;
    if req.name.as_ref().is_some_and(|n| *n != current.name) {
        not_referenced(&s, &current.name, "rename")?;
    }
    let secret = secret
        .map(|secret| stored_credentials::seal(&ring, &id, &secret))
        .transpose()
        .map_err(seal_error)?;
    let changes_secret = secret.is_some();
    let updated = s
        .store
        .update_credential(
            &id,
            CredentialUpdate {
                name: req.name,
                secret,
                if_updated_at: None,
            },
        )
        .await?;
    tracing::info!(id = %updated.id, name = %updated.name, new_secret = changes_secret, by = %caller.subject, "admin: credential updated");
    apply(&s, "credential updated").await;
    Ok(axum::Json(Credential::from(updated)).into_response())
}

/// Delete a provider credential the config does not use (gateway admin).
#[utoipa::path(delete, path = "/admin/v1/credentials/{id}", operation_id = "delete_credential",
    tag = "credentials", params(("id" = String, Path, description = "The credential's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not a gateway admin", body = ErrorResponse),
        (status = 404, description = "No such credential", body = ErrorResponse),
        (status = 409, description = "The config uses it", body = ErrorResponse),
        (status = 503, description = "secrets.master_key is not configured", body = ErrorResponse),
    ))]
async fn remove(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    keyring(&s)?;
    let current = s.store.get_credential(&id).await?;
    not_referenced(&s, &current.name, "delete")?;
    s.store.delete_credential(&id).await?;
    tracing::info!(id = %id, name = %current.name, by = %caller.subject, "admin: credential deleted");
    apply(&s, "credential deleted").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

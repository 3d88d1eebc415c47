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

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use portcullis_core::config::{provider_types, valid_credential_name};
use portcullis_core::envelope::Keyring;
use portcullis_store::{
    CredentialFilter, CredentialUpdate, NewCredential, PageRequest, ProviderCredential,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{AdminError, AdminState, Caller};
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

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/admin/v1/credentials", post(create).get(list))
        .route(
            "/admin/v1/credentials/{id}",
            get(read).patch(update).delete(remove),
        )
}

type Result<T> = std::result::Result<T, AdminError>;

fn bad_request(message: impl Into<String>) -> AdminError {
    AdminError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
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

fn json_body<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|e| bad_request(portcullis_types::error::scrubbed(&e)))
}

/// A credential as the API shows it: never the secret, nor its ciphertext.
fn view(c: &ProviderCredential) -> Value {
    let time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "id": c.id,
        "name": c.name,
        "provider": c.provider,
        "key_id": c.key_id,
        "created_at": time(c.created_at),
        "updated_at": time(c.updated_at),
    })
}

fn check_name(name: &str) -> Result<()> {
    if valid_credential_name(name) {
        Ok(())
    } else {
        Err(bad_request(
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
        Err(bad_request(format!(
            "provider must be one of: {}",
            known.join(", ")
        )))
    }
}

fn check_secret(secret: &SecretString) -> Result<()> {
    let s = secret.expose_secret();
    if s.trim().is_empty() {
        return Err(bad_request("secret must not be empty"));
    }
    if s.len() > MAX_SECRET_BYTES {
        return Err(bad_request(format!(
            "secret must be at most {MAX_SECRET_BYTES} bytes"
        )));
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    provider: String,
    secret: String,
}

async fn create(
    State(s): State<AdminState>,
    caller: Caller,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let ring = keyring(&s)?;
    let req: Create = json_body(&raw)?;
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
    Ok((StatusCode::CREATED, axum::Json(view(&created))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    provider: Option<String>,
    name_prefix: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

async fn list(
    State(s): State<AdminState>,
    caller: Caller,
    query: std::result::Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    keyring(&s)?;
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let filter = CredentialFilter {
        provider: q.provider,
        name_prefix: q.name_prefix,
    };
    let page = PageRequest {
        limit: q.limit.unwrap_or(0),
        after: q.after,
    };
    let page = s.store.list_credentials(&filter, &page).await?;
    let data: Vec<Value> = page.items.iter().map(view).collect();
    Ok(axum::Json(json!({"data": data, "next_after": page.next_after})).into_response())
}

async fn read(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    keyring(&s)?;
    let c = s.store.get_credential(&id).await?;
    Ok(axum::Json(view(&c)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    name: Option<String>,
    secret: Option<String>,
}

async fn update(
    State(s): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    raw: bytes::Bytes,
) -> Result<Response> {
    caller.require_gateway_admin()?;
    let ring = keyring(&s)?;
    let req: Update = json_body(&raw)?;
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
    Ok(axum::Json(view(&updated)).into_response())
}

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

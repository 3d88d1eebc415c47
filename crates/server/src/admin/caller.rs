//! Who is calling the admin API. Every admin handler takes a [`Caller`] (an axum extractor), so
//! no handler can forget to authenticate; what a caller may see and do is decided by its
//! methods in `scope.rs`, in one place.
//!
//! A caller is resolved from its credential, one function per kind of credential:
//!
//! - the master key (`auth.master_key`, checked by the key table in constant time): the gateway
//!   admin;
//! - a stored virtual key that belongs to a user (`by_user_key`): that user's role, team and
//!   organization, looked up in the store (the admin path is not hot, so no cache goes stale).
//!
//! Another kind (such as an OIDC bearer token) is one more branch in
//! `Caller::from_request_parts` that calls its own resolver. A request without a
//! credential, or with one that is unknown, malformed, revoked, disabled or expired, answers 401
//! (`missing_api_key`, `invalid_api_key`); a valid key that carries no admin identity (a key of
//! the config file, a stored key without a user) answers 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use portcullis_core::auth::{NotMaster, presented_key};
use portcullis_core::virtual_key;
use portcullis_store::StoreError;
use portcullis_types::Role;
use time::OffsetDateTime;

use super::{AdminError, AdminState};

/// An authenticated admin caller: a role and the organization, team and user it is bound to.
/// An org admin is bound to an organization; a team admin, member or viewer to a team (and its
/// organization). A gateway admin is not limited by any binding (the master key has none; a
/// stored gateway admin user keeps its team's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub role: Role,
    pub org_id: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Who, for logs: `master`, `key:<public id>` or `oidc:<subject>`. Never a secret.
    pub subject: String,
}

impl Caller {
    /// The gateway administrator, through the master key.
    fn master() -> Self {
        Self {
            role: Role::GatewayAdmin,
            org_id: None,
            team_id: None,
            user_id: None,
            subject: "master".into(),
        }
    }
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = super::oidc_caller::from_headers(state, &parts.headers).await {
            return caller;
        }
        match state.gateway.runtime().keys.check_master(&parts.headers) {
            Ok(()) => Ok(Caller::master()),
            Err(NotMaster::Missing) => Err(AdminError::new(
                StatusCode::UNAUTHORIZED,
                "missing_api_key",
                "missing admin credentials: send the master key or a user's key as \
                 'Authorization: Bearer KEY'",
            )),
            Err(NotMaster::OtherKey | NotMaster::NoMasterKey) => {
                by_user_key(state, &parts.headers).await
            }
        }
    }
}

fn invalid_key() -> AdminError {
    AdminError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "invalid API key: unknown, revoked, disabled or expired",
    )
}

/// The caller behind a stored virtual key that belongs to a user. The key must be active
/// (enabled, not revoked, not expired) and its secret must match the current digest, or the
/// previous one within its grace period (HMAC verified in constant time).
async fn by_user_key(state: &AdminState, headers: &HeaderMap) -> Result<Caller, AdminError> {
    let presented = presented_key(headers).and_then(|k| std::str::from_utf8(k).ok());
    let Some((key_text, public_id)) =
        presented.and_then(|k| virtual_key::id_of(k).map(|id| (k, id)))
    else {
        // Not a virtual key: a key of the config file is valid but has no admin identity.
        return Err(
            if state.gateway.runtime().keys.authenticate(headers).is_ok() {
                AdminError::forbidden(
                    "a key of the config file has no admin role: use the master key or a \
                     key that belongs to a user",
                )
            } else {
                invalid_key()
            },
        );
    };
    let key = match state.store.get_key_by_public_id(public_id).await {
        Ok(key) => key,
        Err(StoreError::NotFound { .. }) => return Err(invalid_key()),
        Err(e) => return Err(e.into()),
    };
    let now = OffsetDateTime::now_utc();
    let current = state.hasher.verify(key_text, &key.digest);
    let previous = key
        .previous_digest_at(now)
        .is_some_and(|digest| state.hasher.verify(key_text, digest));
    if !(key.is_active(now) && (current || previous)) {
        return Err(invalid_key());
    }
    let Some(user_id) = key.user_id else {
        return Err(AdminError::forbidden(
            "this key belongs to no user, so it has no admin role: use a key made for a user",
        ));
    };
    let user = match state.store.get_user(&user_id).await {
        Ok(user) => user,
        Err(StoreError::NotFound { .. }) => return Err(invalid_key()),
        Err(e) => return Err(e.into()),
    };
    let team = state.store.get_team(&user.team_id).await?;
    Ok(Caller {
        role: user.role,
        org_id: Some(team.org_id),
        team_id: Some(team.id),
        user_id: Some(user.id),
        subject: format!("key:{}", key.public_id),
    })
}

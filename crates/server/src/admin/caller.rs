//! Who is calling the admin API, and the scope their role covers. Every admin handler takes a
//! [`Caller`] (an axum extractor), so no handler can forget to authenticate; what the caller may
//! do with a given object is asked of the caller (`require_*`), in one place.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use portcullis_core::auth::NotMaster;
use portcullis_types::Role;

use super::{AdminError, AdminState};

/// An authenticated admin caller: a role and the organization, team and user it is bound to.
/// A gateway admin is bound to nothing; an org admin to an organization; a team admin, member
/// or viewer to a team (and its organization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
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

    /// Only a gateway admin passes.
    pub fn require_gateway_admin(&self) -> Result<(), AdminError> {
        if self.role == Role::GatewayAdmin {
            Ok(())
        } else {
            Err(AdminError::forbidden("only a gateway admin may do this"))
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
                "missing admin credentials: send the master key as 'Authorization: Bearer KEY'",
            )),
            Err(NotMaster::OtherKey) => Err(AdminError::forbidden(
                "only the gateway administrator may use the admin API",
            )),
            Err(NotMaster::NoMasterKey) => Err(AdminError::new(
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the admin API needs auth.master_key to be configured",
            )),
        }
    }
}

//! `AdminError`: every failure of the admin API, answered in the API's error shape
//! `{"error": {"message", "type", "param", "code"}}` with its status. Store errors map to 404
//! `not_found`, 409 `conflict`, 422 `invalid_reference`, or 500 `store_error` (whose cause is
//! logged, never returned). Messages never carry a secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_store::StoreError;
use serde_json::json;

/// An admin failure.
#[derive(Debug)]
pub(crate) struct AdminError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The request field at fault, if one is.
    param: Option<&'static str>,
}

/// The result of an admin operation.
pub(crate) type Result<T, E = AdminError> = std::result::Result<T, E>;

impl AdminError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            param: None,
        }
    }

    /// 403: the caller sees the object but its role may not do this.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such `entity`, or one outside the caller's scope; the two answer alike, so that
    /// no caller can probe another tenant's ids.
    pub(crate) fn not_found(entity: &'static str) -> Self {
        Self::from(StoreError::NotFound { entity })
    }

    /// 404 for a parent named by a request field (`team_id` of a new user, ...).
    pub(crate) fn missing_parent(entity: &'static str, param: &'static str) -> Self {
        Self::not_found(entity).with_param(param)
    }

    /// 400: the request field `param` is invalid.
    pub(crate) fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message).with_param(param)
    }

    /// 400 for a request as a whole (a body that is not JSON, an unknown query parameter).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// The error of a delete: a conflict says what still depends on the row (`"teams"`), since
    /// deletes are restricted, never cascaded.
    pub(crate) fn on_delete(e: StoreError, entity: &str, dependents: &str) -> Self {
        match e {
            StoreError::Conflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("the {entity} still has {dependents}: delete them first"),
            ),
            e => e.into(),
        }
    }

    pub(crate) fn with_param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            StoreError::InvalidReference { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reference")
            }
            _ => {
                tracing::error!(error = %e, "admin: the store failed");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    "the store failed",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    async fn body(e: AdminError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn out_of_scope_answers_exactly_as_missing() {
        let missing = body(StoreError::NotFound { entity: "team" }.into()).await;
        let hidden = body(AdminError::not_found("team")).await;
        assert_eq!(missing, hidden);
        assert_eq!(missing.0, StatusCode::NOT_FOUND);
        assert_eq!(missing.1["error"]["code"], "not_found");
        assert_eq!(missing.1["error"]["message"], "team not found");
    }

    #[tokio::test]
    async fn the_shape_names_the_field() {
        let (status, v) = body(AdminError::invalid("name", "name must not be empty")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            v,
            json!({"error": {"message": "name must not be empty", "type": "invalid_request_error", "param": "name", "code": "invalid_request"}})
        );
        let (status, v) = body(AdminError::forbidden("no")).await;
        assert_eq!(
            (status, &v["error"]["type"], &v["error"]["param"]),
            (
                StatusCode::FORBIDDEN,
                &json!("permission_error"),
                &json!(null)
            )
        );
        let (status, v) = body(
            StoreError::Conflict {
                entity: "organization",
                reason: "still has dependent rows",
            }
            .into(),
        )
        .await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (StatusCode::CONFLICT, &json!("conflict"))
        );
    }
}

//! One error type for the whole request path. Every failure knows its HTTP status, a
//! low-cardinality kind label (for logs and metrics), which side is at fault, and how it reads in
//! OpenAI's error shape. Messages never contain prompt or response content, nor secrets.

use http::StatusCode;
use portcullis_types::ErrorBody;

use portcullis_types::anthropic;

use portcullis_types::Role;

use crate::oidc::OidcError;
use crate::provider::{Dialect, ProviderError};

/// Which side caused a failure (the `error.fault` of the access record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Internal,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }
}

/// Failures of authentication (stage `authenticate`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error(
        "missing API key: send it as 'Authorization: Bearer KEY' (or in an 'api-key' or 'x-api-key' header)"
    )]
    Missing,
    #[error("invalid API key")]
    Invalid,
    #[error("the API key is not allowed to use model '{0}'")]
    ModelNotAllowed(String),
    /// A key whose allowed endpoints do not include this one.
    #[error("the API key is not allowed to call {0}")]
    EndpointNotAllowed(String),
    /// An OIDC bearer token that does not verify; the message says why, never the token.
    #[error("invalid bearer token: {0}")]
    Token(OidcError),
    /// The identity provider's key set cannot be fetched, so a token cannot be checked.
    #[error(
        "the bearer token cannot be verified right now: the identity provider's key set is unavailable"
    )]
    TokenUnverifiable,
    /// A valid token whose role may not call the API.
    #[error("a token with the role '{0}' may not call this API: viewers only read the admin API")]
    RoleNotAllowed(Role),
}

impl From<OidcError> for AuthError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::JwksUnavailable => Self::TokenUnverifiable,
            e => Self::Token(e),
        }
    }
}

/// Failures of the request body (stage `parse`).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request body is not valid JSON: {0}")]
    Json(String),
    #[error("invalid request: {message}")]
    Schema {
        message: String,
        param: Option<String>,
    },
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// Everything the gateway can answer with instead of a success.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the model '{0}' does not exist")]
    ModelNotFound(String),
    #[error("unknown route: {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the model '{model}' does not support {endpoint}")]
    EndpointNotSupported {
        model: String,
        endpoint: &'static str,
    },
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("internal error: {0}")]
    Internal(String),
    /// Back-pressure: the usage journal is too far ahead of the store to account for more.
    #[error(
        "the gateway cannot account for new requests right now (its usage records are not \
         reaching the store); retry later"
    )]
    UsageJournalFull,
    /// The request's usage record could not be written, so its response is withheld.
    #[error("the gateway could not record this request's usage; retry later")]
    UsageJournalFailed,
    /// Stage `admit`: a rate limit of one of the request's scopes refused it.
    #[error(transparent)]
    RateLimited(Box<crate::pipeline::admit::LimitExceeded>),
    /// Stage `admit`: the request would exceed a hard budget.
    #[error(transparent)]
    BudgetExceeded(Box<crate::pipeline::admit::BudgetExceeded>),
    /// Stage `admit`: the shared limiter cannot be reached and its policy is to fail closed.
    #[error(
        "rate limits and budgets cannot be checked right now (their shared store is unreachable); retry later"
    )]
    LimiterUnavailable,
    /// Stage `plan`: no deployment of the model can serve this request (images, tools, a
    /// json_schema response format, a stream, or a prompt none of them accepts).
    #[error(transparent)]
    NoDeployment(Box<crate::routing::filter::Ineligible>),
}

impl GatewayError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(AuthError::Missing | AuthError::Invalid | AuthError::Token(_)) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Auth(
                AuthError::ModelNotAllowed(_)
                | AuthError::EndpointNotAllowed(_)
                | AuthError::RoleNotAllowed(_),
            ) => StatusCode::FORBIDDEN,
            Self::Auth(AuthError::TokenUnverifiable) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Request(RequestError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Request(_) | Self::EndpointNotSupported { .. } | Self::NoDeployment(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::ModelNotFound(_) | Self::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Provider(e) => e.client_status(),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UsageJournalFull | Self::UsageJournalFailed | Self::LimiterUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited(_) | Self::BudgetExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A stable, low-cardinality label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Auth(AuthError::Missing) => "missing_api_key",
            Self::Auth(AuthError::Invalid) => "invalid_api_key",
            Self::Auth(AuthError::ModelNotAllowed(_)) => "model_not_allowed",
            Self::Auth(AuthError::EndpointNotAllowed(_)) => "endpoint_not_allowed",
            Self::Auth(AuthError::Token(_)) => "invalid_token",
            Self::Auth(AuthError::TokenUnverifiable) => "token_unverifiable",
            Self::Auth(AuthError::RoleNotAllowed(_)) => "role_not_allowed",
            Self::Request(RequestError::Json(_)) => "invalid_json",
            Self::Request(RequestError::Schema { .. }) => "invalid_request",
            Self::Request(RequestError::TooLarge { .. }) => "body_too_large",
            Self::ModelNotFound(_) => "model_not_found",
            Self::RouteNotFound { .. } => "route_not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::EndpointNotSupported { .. } => "endpoint_not_supported",
            Self::Provider(e) => e.kind(),
            Self::Internal(_) => "internal_error",
            Self::UsageJournalFull => "usage_journal_full",
            Self::UsageJournalFailed => "usage_journal_failed",
            Self::RateLimited(_) => "rate_limit_exceeded",
            Self::BudgetExceeded(_) => "budget_exceeded",
            Self::LimiterUnavailable => "limiter_unavailable",
            Self::NoDeployment(e) => e.kind(),
        }
    }

    /// Which side is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Provider(e) if e.is_client_fault() => Fault::Client,
            Self::Provider(_) | Self::Auth(AuthError::TokenUnverifiable) => Fault::Upstream,
            Self::Internal(_)
            | Self::UsageJournalFull
            | Self::UsageJournalFailed
            | Self::LimiterUnavailable => Fault::Internal,
            _ => Fault::Client,
        }
    }

    /// How long the client should wait before retrying (`Retry-After`), when that is known.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::RateLimited(e) => e.retry_after(),
            Self::BudgetExceeded(e) => e.retry_after(),
            Self::Provider(e) => e.retry_after(),
            _ => None,
        }
    }

    /// The OpenAI error body for this error.
    pub fn to_body(&self) -> ErrorBody {
        let status = self.status();
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            s if s.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let body = ErrorBody::new(self.to_string(), kind, Some(self.kind()));
        match self {
            Self::Request(RequestError::Schema {
                param: Some(param), ..
            }) => body.with_param(param.clone()),
            Self::ModelNotFound(_) | Self::Auth(AuthError::ModelNotAllowed(_)) => {
                body.with_param("model")
            }
            Self::NoDeployment(e) => match e.param() {
                Some(param) => body.with_param(param),
                None => body,
            },
            _ => body,
        }
    }

    /// The error body in the client's API shape: OpenAI's (`to_body`) or Anthropic's
    /// (`{"type":"error","error":{"type":..,"message":..}}`, the type following the status as
    /// Anthropic's own API does).
    pub fn to_json_in(&self, dialect: Dialect) -> Vec<u8> {
        match dialect {
            Dialect::OpenAi => self.to_json(),
            Dialect::Anthropic => {
                let body =
                    anthropic::ErrorResponse::for_status(self.status().as_u16(), self.to_string());
                serde_json::to_vec(&body).unwrap_or_else(|_| {
                    br#"{"type":"error","error":{"type":"api_error","message":"internal error"}}"#
                        .to_vec()
                })
            }
        }
    }

    /// The JSON bytes of [`Self::to_body`].
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_body()).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"api_error","param":null,"code":"internal_error"}}"#.to_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        let cases: Vec<(GatewayError, u16, &str)> = vec![
            (AuthError::Missing.into(), 401, "authentication_error"),
            (
                AuthError::ModelNotAllowed("m".into()).into(),
                403,
                "permission_error",
            ),
            (
                RequestError::Json("eof".into()).into(),
                400,
                "invalid_request_error",
            ),
            (
                RequestError::TooLarge { limit: 1 }.into(),
                413,
                "invalid_request_error",
            ),
            (
                GatewayError::ModelNotFound("m".into()),
                404,
                "not_found_error",
            ),
            (
                GatewayError::MethodNotAllowed {
                    method: "GET".into(),
                    path: "/v1/embeddings".into(),
                },
                405,
                "invalid_request_error",
            ),
            (ProviderError::Timeout.into(), 504, "api_error"),
            (
                AuthError::Token(OidcError::Expired).into(),
                401,
                "authentication_error",
            ),
            (
                AuthError::from(OidcError::JwksUnavailable).into(),
                503,
                "api_error",
            ),
            (
                AuthError::RoleNotAllowed(Role::Viewer).into(),
                403,
                "permission_error",
            ),
            (
                ProviderError::Connect("refused".into()).into(),
                502,
                "api_error",
            ),
        ];
        for (err, status, kind) in cases {
            assert_eq!(err.status().as_u16(), status, "{err}");
            assert_eq!(err.to_body().error.kind, kind, "{err}");
            let v: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap_or_default();
            assert_eq!(v["error"]["code"], err.kind());
        }
    }

    #[test]
    fn anthropic_shape() {
        let cases: Vec<(GatewayError, &str)> = vec![
            (AuthError::Invalid.into(), "authentication_error"),
            (
                AuthError::Token(OidcError::BadSignature).into(),
                "authentication_error",
            ),
            (
                AuthError::RoleNotAllowed(Role::Viewer).into(),
                "permission_error",
            ),
            (
                AuthError::ModelNotAllowed("m".into()).into(),
                "permission_error",
            ),
            (GatewayError::ModelNotFound("m".into()), "not_found_error"),
            (
                RequestError::TooLarge { limit: 1 }.into(),
                "request_too_large",
            ),
            (
                ProviderError::RateLimited {
                    message: None,
                    retry_after: None,
                }
                .into(),
                "rate_limit_error",
            ),
            (
                ProviderError::Overloaded {
                    message: None,
                    retry_after: None,
                }
                .into(),
                "overloaded_error",
            ),
            (
                ProviderError::ContextLength { message: None }.into(),
                "invalid_request_error",
            ),
            (ProviderError::Timeout.into(), "api_error"),
        ];
        for (err, kind) in cases {
            let v: serde_json::Value =
                serde_json::from_slice(&err.to_json_in(Dialect::Anthropic)).unwrap();
            assert_eq!(v["type"], "error", "{err}");
            assert_eq!(v["error"]["type"], kind, "{err}");
            assert_eq!(v["error"]["message"], err.to_string());
        }
    }
}

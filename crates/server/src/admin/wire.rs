//! What the admin API reads and writes besides its entities: JSON bodies and query parameters
//! (unknown fields are refused with 400, and a wrong value is reported with the path of its
//! field but never echoed), the validation of names, emails and roles, and list pages
//! (`{"data": [...], "next_after": ...}`).

use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use portcullis_store::{Page, PageRequest, Role};
use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};
use serde_json::json;

use super::{AdminError, Result};

/// The longest name of an organization, team, user or key, in characters.
pub(crate) const MAX_NAME: usize = 200;
/// The longest email address (RFC 5321's limit of a path).
const MAX_EMAIL: usize = 254;

/// A JSON request body of type `T`. A field of the wrong type is named (`param`) but its value
/// is not repeated.
pub(crate) fn body<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = portcullis_types::error::scrubbed(e.inner());
        if path == "." {
            AdminError::bad_request(format!("invalid body: {message}"))
        } else {
            AdminError::bad_request(format!("invalid body: {path}: {message}"))
        }
    })
}

/// Query parameters of type `T` (a struct that denies unknown fields), or 400 in the API's
/// error shape.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Params(q))
            .map_err(|e| AdminError::bad_request(e.body_text()))
    }
}

/// The page of a list request.
pub(crate) fn page(limit: Option<u32>, after: Option<String>) -> PageRequest {
    PageRequest {
        limit: limit.unwrap_or(0),
        after,
    }
}

/// A page as the API answers it.
pub(crate) fn page_response<T: Serialize>(page: Page<T>) -> Response {
    axum::Json(json!({"data": page.items, "next_after": page.next_after})).into_response()
}

/// An empty page: the answer to a filter outside the caller's scope.
pub(crate) fn empty_page() -> Response {
    page_response(Page::<()> {
        items: Vec::new(),
        next_after: None,
    })
}

/// The page of a list whose caller sees one object only (its own organization or team): that
/// object if it matches the name prefix and comes after the cursor, else nothing.
pub(crate) fn single_page<T>(
    item: T,
    id: &str,
    name: &str,
    name_prefix: Option<&str>,
    after: Option<&str>,
) -> Page<T> {
    let matches = name_prefix.is_none_or(|p| name.starts_with(p)) && after.is_none_or(|a| id > a);
    Page {
        items: if matches { vec![item] } else { Vec::new() },
        next_after: None,
    }
}

/// A valid name for field `param`: not blank, at most [`MAX_NAME`] characters, no control
/// characters.
pub(crate) fn name(param: &'static str, value: String) -> Result<String> {
    if value.trim().is_empty() {
        return Err(AdminError::invalid(
            param,
            format!("{param} must not be empty"),
        ));
    }
    if value.chars().count() > MAX_NAME {
        return Err(AdminError::invalid(
            param,
            format!("{param} must be at most {MAX_NAME} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            param,
            format!("{param} must not contain control characters"),
        ));
    }
    Ok(value)
}

/// A key's allowed endpoints: paths such as `/v1/chat/completions`, or patterns where `*`
/// matches any run of characters (`/v1/*`). Empty means every endpoint.
pub(crate) fn endpoints(list: Vec<String>) -> Result<Vec<String>> {
    for e in &list {
        let plausible = e.starts_with('/')
            && e.len() <= MAX_NAME
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(AdminError::invalid(
                "allowed_endpoints",
                "allowed_endpoints: each entry is a path such as /v1/chat/completions or a pattern \
                 such as /v1/*, without spaces",
            ));
        }
    }
    Ok(list)
}

/// An optional new name: validated when given.
pub(crate) fn opt_name(param: &'static str, value: Option<String>) -> Result<Option<String>> {
    value.map(|v| name(param, v)).transpose()
}

/// A plausible email address: one `@` with something on each side, no spaces, at most
/// [`MAX_EMAIL`] characters. Deliverability is not the gateway's business.
pub(crate) fn email(value: String) -> Result<String> {
    let plausible = value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.chars().count() <= MAX_EMAIL;
    if plausible {
        Ok(value)
    } else {
        Err(AdminError::invalid(
            "email",
            format!(
                "email must be an address such as name@example.com, at most {MAX_EMAIL} characters"
            ),
        ))
    }
}

/// A role name for field `param`.
pub(crate) fn role(param: &'static str, value: &str) -> Result<Role> {
    Role::from_str(value).map_err(|e| AdminError::invalid(param, format!("{param}: {e}")))
}

/// For an optional body field where `null` means something (`"email": null` clears the email):
/// absent is `None`, `null` is `Some(None)`. Use with `#[serde(default)]`.
pub(crate) fn nullable<'de, D, T>(de: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// [`nullable`] for an RFC 3339 time (`"expires_at": null` removes the expiry).
pub(crate) fn nullable_time<'de, D>(
    de: D,
) -> std::result::Result<Option<Option<time::OffsetDateTime>>, D::Error>
where
    D: Deserializer<'de>,
{
    time::serde::rfc3339::option::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        name: Option<String>,
        #[serde(default, deserialize_with = "nullable")]
        email: Option<Option<String>>,
        #[serde(default, deserialize_with = "nullable_time")]
        expires_at: Option<Option<time::OffsetDateTime>>,
    }

    #[test]
    fn null_is_not_absent() {
        let p: Patch = body(br#"{"email": null, "expires_at": null}"#).unwrap();
        assert_eq!((p.email, p.expires_at), (Some(None), Some(None)));
        let p: Patch = body(br#"{"name": "x"}"#).unwrap();
        assert_eq!(
            (p.name.as_deref(), p.email, p.expires_at),
            (Some("x"), None, None)
        );
        let p: Patch = body(br#"{"email": "a@b", "expires_at": "2030-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(p.email, Some(Some("a@b".into())));
        assert_eq!(p.expires_at.unwrap().unwrap().year(), 2030);
    }

    #[test]
    fn body_errors_name_the_field_not_the_value() {
        let e = body::<Patch>(br#"{"name": 12345}"#).unwrap_err();
        let text = format!("{e:?}");
        assert!(text.contains("name: invalid type"), "{text}");
        assert!(!text.contains("12345"), "{text}");
        let e = body::<Patch>(br#"{"nmae": "x"}"#).unwrap_err();
        assert!(format!("{e:?}").contains("unknown field `nmae`"), "{e:?}");
        let e = body::<Patch>(br#"{"expires_at": "soon"}"#).unwrap_err();
        assert!(format!("{e:?}").contains("expires_at"), "{e:?}");
        assert!(body::<Patch>(b"not json").is_err());
    }

    #[test]
    fn names_emails_and_roles_are_checked() {
        assert_eq!(name("name", "ok".into()).unwrap(), "ok");
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME + 1)] {
            let e = name("name", bad.to_owned()).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(format!("{e:?}").contains("param: Some(\"name\")"), "{e:?}");
        }
        assert!(
            name("name", "é".repeat(MAX_NAME)).is_ok(),
            "characters, not bytes"
        );
        assert!(email("ada@example.com".into()).is_ok());
        for bad in [
            "",
            "ada",
            "@x",
            "ada@",
            "a da@x",
            &format!("{}@x", "a".repeat(260)),
        ] {
            assert!(email(bad.to_owned()).is_err(), "{bad}");
        }
        assert!(endpoints(vec!["/v1/chat/completions".into(), "/v1/*".into()]).is_ok());
        for bad in ["v1/chat", "/v1/chat completions", ""] {
            assert!(endpoints(vec![bad.to_owned()]).is_err(), "{bad}");
        }
        assert_eq!(role("role", "team_admin").unwrap(), Role::TeamAdmin);
        let e = role("role", "admin").unwrap_err();
        assert!(format!("{e:?}").contains("role: unknown role"), "{e:?}");
    }

    #[test]
    fn a_single_object_page_honours_prefix_and_cursor() {
        let p = |prefix, after| single_page(1, "id5", "acme", prefix, after).items;
        assert_eq!(p(None, None), vec![1]);
        assert_eq!(p(Some("ac"), Some("id4")), vec![1]);
        assert!(p(Some("b"), None).is_empty());
        assert!(p(None, Some("id5")).is_empty());
    }
}

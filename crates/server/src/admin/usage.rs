//! `GET /admin/v1/usage`: what the gateway's requests used, summed per group (day, org, team,
//! user, key, model, provider) over a period, from the usage records the journal writes into
//! the store. Everyone may ask, within its scope: the caller's scope is forced into the
//! filters as for lists (`Caller::list_scope`), so an org admin sees its organization's usage
//! and a team admin, member or viewer its team's; a filter outside the scope answers an empty
//! report, never another tenant's usage.
//!
//! This module reads and checks the query (every bad parameter is a 400 naming it) and picks
//! the format; `usage_report` shapes the answer as JSON or CSV.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::{UsageGroup, UsageQuery};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::ErrorResponse;
use super::usage_report::{Report, UsageReport};
use super::wire::Params;
use super::{AdminError, AdminState, Caller, Result};

/// The most rows a report answers; a query with more is refused (400) rather than held in
/// memory: a long period grouped by key, model and day can have millions.
const MAX_ROWS: u32 = 50_000;

pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(report))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    /// The dimensions of a row, comma-separated: `day` (UTC date), `org`, `team`, `user`, `key`,
    /// `model`, `provider`. Rows are sorted by them, the day first. None: one row, the total.
    group_by: Option<String>,
    /// The start (inclusive): an RFC 3339 time, or `YYYY-MM-DD` for that day's midnight UTC.
    from: Option<String>,
    /// The end (exclusive): an RFC 3339 time, or `YYYY-MM-DD` for that day's midnight UTC (so
    /// `from=2026-11-27&to=2026-11-28` is the 27th).
    to: Option<String>,
    /// Only this organization's requests.
    org_id: Option<String>,
    /// Only this team's requests.
    team_id: Option<String>,
    /// Only the requests of this user's keys.
    user_id: Option<String>,
    /// Only this stored key's requests.
    key_id: Option<String>,
    /// Only requests for this model (the name the client asked for).
    model: Option<String>,
    /// Only requests this provider served (or last failed).
    provider: Option<String>,
    /// `json` (the default) or `csv`. Without it, `Accept: text/csv` asks for CSV.
    format: Option<String>,
}

/// The shape of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// The format asked for: the `format` parameter, else CSV when `Accept` names `text/csv` (with
/// a quality above 0), else JSON.
fn format(param: Option<&str>, headers: &HeaderMap) -> Result<Format> {
    match param {
        Some("json") => return Ok(Format::Json),
        Some("csv") => return Ok(Format::Csv),
        Some(_) => {
            return Err(AdminError::invalid("format", "format must be json or csv"));
        }
        None => {}
    }
    let accepts_csv = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let csv = parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case("text/csv"));
            let refused = parts.any(|p| {
                p.split_once('=').is_some_and(|(k, q)| {
                    k.trim().eq_ignore_ascii_case("q") && q.trim().parse::<f32>() == Ok(0.0)
                })
            });
            csv && !refused
        });
    Ok(if accepts_csv {
        Format::Csv
    } else {
        Format::Json
    })
}

/// The dimensions of `group_by`: the day first, then the others as given, each once. Blank
/// items (a trailing comma) are skipped.
fn groups(param: Option<&str>) -> Result<Vec<UsageGroup>> {
    let mut asked = Vec::new();
    for item in param.unwrap_or_default().split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let group: UsageGroup = item.parse().map_err(|_| {
            let names: Vec<&str> = UsageGroup::ALL.iter().map(|g| g.name()).collect();
            AdminError::invalid(
                "group_by",
                format!(
                    "group_by: each dimension must be one of {}",
                    names.join(", ")
                ),
            )
        })?;
        if !asked.contains(&group) {
            asked.push(group);
        }
    }
    let mut ordered: Vec<UsageGroup> = asked
        .iter()
        .copied()
        .filter(|g| *g == UsageGroup::Day)
        .collect();
    ordered.extend(asked.into_iter().filter(|g| *g != UsageGroup::Day));
    Ok(ordered)
}

/// A `YYYY-MM-DD` date, strictly (four-digit year, two-digit month and day).
fn date(value: &str) -> Option<time::Date> {
    let bytes = value.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape {
        return None;
    }
    let year: i32 = value.get(0..4)?.parse().ok()?;
    let month: u8 = value.get(5..7)?.parse().ok()?;
    let day: u8 = value.get(8..10)?.parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// The instant of `from` or `to`: an RFC 3339 time, or a date's midnight UTC. The value is not
/// repeated in the error.
fn instant(param: &'static str, value: &str) -> Result<OffsetDateTime> {
    date(value)
        .map(|d| d.midnight().assume_utc())
        .or_else(|| OffsetDateTime::parse(value, &Rfc3339).ok())
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .ok_or_else(|| {
            AdminError::invalid(
                param,
                format!(
                    "{param} must be an RFC 3339 time (2026-11-27T09:30:00Z) or a date \
                     (2026-11-27, meaning its midnight UTC)"
                ),
            )
        })
}

/// An exact-match filter: absent, or a value that is not empty.
fn filter(param: &'static str, value: Option<String>) -> Result<Option<String>> {
    match value {
        Some(v) if v.is_empty() => Err(AdminError::invalid(
            param,
            format!("{param} must not be empty: leave it out to not filter"),
        )),
        v => Ok(v),
    }
}

/// Usage summed per group over a period: requests, errors, tokens and cost.
#[utoipa::path(get, operation_id = "get_usage", path = "/admin/v1/usage", tag = "usage", params(UsageParams),
    responses(
        (status = 200, description = "The report: JSON, or CSV (a header row, then one line per row) with format=csv or Accept: text/csv",
            content((UsageReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "An invalid parameter (param names it), or more rows than one report holds", body = ErrorResponse),
    ))]
async fn report(
    State(s): State<AdminState>,
    caller: Caller,
    headers: HeaderMap,
    Params(q): Params<UsageParams>,
) -> Result<Response> {
    let format = format(q.format.as_deref(), &headers)?;
    let group_by = groups(q.group_by.as_deref())?;
    let from = q.from.as_deref().map(|v| instant("from", v)).transpose()?;
    let to = q.to.as_deref().map(|v| instant("to", v)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(AdminError::invalid("to", "to must be after from"));
    }
    let (org_id, team_id) = (filter("org_id", q.org_id)?, filter("team_id", q.team_id)?);
    let query = UsageQuery {
        from,
        to,
        org: None,
        team: None,
        user: filter("user_id", q.user_id)?,
        key_id: filter("key_id", q.key_id)?,
        model: filter("model", q.model)?,
        provider: filter("provider", q.provider)?,
        group_by: group_by.clone(),
        limit: Some(MAX_ROWS + 1),
    };
    let rows = match caller.list_scope(org_id, team_id) {
        // A filter outside the caller's scope: nothing it may see matches.
        None => Vec::new(),
        Some(scope) => {
            let query = UsageQuery {
                org: scope.org_id,
                team: scope.team_id,
                ..query
            };
            s.store.usage_summary(&query).await?
        }
    };
    if rows.len() > MAX_ROWS as usize {
        return Err(AdminError::invalid(
            "group_by",
            format!(
                "the report has more than {MAX_ROWS} rows: narrow from and to, filter, or group \
                 by fewer dimensions"
            ),
        ));
    }
    let report = Report {
        group_by,
        from,
        to,
        rows,
    };
    Ok(match format {
        Format::Json => axum::Json(report.json()).into_response(),
        Format::Csv => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            )],
            report.csv(),
        )
            .into_response(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::http::StatusCode;

    use super::*;

    fn param_of(e: &AdminError) -> String {
        format!("{e:?}")
    }

    #[test]
    fn groups_put_the_day_first_and_name_each_once() {
        use UsageGroup::*;
        assert_eq!(groups(None).unwrap(), vec![]);
        assert_eq!(groups(Some("")).unwrap(), vec![]);
        assert_eq!(
            groups(Some("model, key,day,model,")).unwrap(),
            vec![Day, Model, Key]
        );
        assert_eq!(
            groups(Some("provider,org,team,user")).unwrap(),
            vec![Provider, Org, Team, User]
        );
        for bad in ["color", "key,Model", "days", "key;model"] {
            let e = groups(Some(bad)).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                param_of(&e).contains("param: Some(\"group_by\")"),
                "{bad}: {e:?}"
            );
        }
        let e = groups(Some("color")).unwrap_err();
        assert!(
            e.message()
                .contains("one of day, org, team, user, key, model, provider"),
            "{e:?}"
        );
    }

    #[test]
    fn times_are_rfc_3339_or_a_date_at_midnight_utc() {
        let t = |v: &str| instant("from", v).unwrap();
        assert_eq!(
            t("2026-11-27"),
            OffsetDateTime::parse("2026-11-27T00:00:00Z", &Rfc3339).unwrap()
        );
        let shifted = t("2026-11-27T01:30:00+01:00");
        assert_eq!(shifted.offset(), time::UtcOffset::UTC);
        assert_eq!(
            shifted,
            OffsetDateTime::parse("2026-11-27T00:30:00Z", &Rfc3339).unwrap()
        );
        assert_eq!(t("2024-02-29").day(), 29);
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-1-01",
            "26-11-27",
            "+2026-11-2",
            "2026-11-27T00:00:00",
            "1700000000",
        ] {
            let e = instant("to", bad).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert!(param_of(&e).contains("param: Some(\"to\")"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_format_is_the_parameter_else_the_accept_header() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            h
        };
        let none = HeaderMap::new();
        assert_eq!(format(None, &none).unwrap(), Format::Json);
        assert_eq!(format(Some("csv"), &none).unwrap(), Format::Csv);
        assert_eq!(
            format(Some("json"), &accept("text/csv")).unwrap(),
            Format::Json
        );
        assert_eq!(format(None, &accept("text/csv")).unwrap(), Format::Csv);
        assert_eq!(
            format(
                None,
                &accept("application/json;q=0.9, Text/CSV; charset=utf-8")
            )
            .unwrap(),
            Format::Csv
        );
        assert_eq!(format(None, &accept("text/csv;q=0")).unwrap(), Format::Json);
        assert_eq!(format(None, &accept("*/*")).unwrap(), Format::Json);
        for bad in ["xml", "CSV", ""] {
            let e = format(Some(bad), &none).unwrap_err();
            assert!(param_of(&e).contains("param: Some(\"format\")"), "{e:?}");
        }
    }

    #[test]
    fn empty_filters_are_refused() {
        assert_eq!(filter("model", None).unwrap(), None);
        assert_eq!(
            filter("model", Some("m".into())).unwrap().as_deref(),
            Some("m")
        );
        let e = filter("key_id", Some(String::new())).unwrap_err();
        assert!(param_of(&e).contains("param: Some(\"key_id\")"), "{e:?}");
    }
}

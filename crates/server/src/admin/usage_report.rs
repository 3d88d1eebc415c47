//! The usage report's two shapes, for `GET /admin/v1/usage` (`usage.rs`): JSON (the rows, the
//! totals, and what was asked), and CSV (a header row, then the rows; RFC 4180 quoting, CRLF
//! line ends). Costs are decimal strings of US dollars made from the store's micro-dollars by
//! integer arithmetic, so they are exact (`1234` micro-dollars is `"0.001234"`).
//!
//! A row carries only the columns of the dimensions it is grouped by (the key dimension has
//! two: `key_id` and `key_name`); a value the records lack, such as the organization of a key
//! of the config file, is `null` in JSON and an empty field in CSV.

use portcullis_store::{UsageGroup, UsageRow};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// A usage report as the API answers it in JSON.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UsageReport {
    /// The dimensions of each row, in the order rows are sorted by (the day first).
    group_by: Vec<String>,
    /// The start of the period (inclusive), RFC 3339 in UTC; null when the report has none.
    from: Option<String>,
    /// The end of the period (exclusive), RFC 3339 in UTC; null when the report has none.
    to: Option<String>,
    /// One row per group that has requests, sorted by the groups; without groups, at most one
    /// row (the total).
    rows: Vec<ReportRow>,
    /// The sums of all rows.
    totals: Counts,
}

/// One group: its dimensions (only those grouped by; null where the requests lack the value),
/// then its counts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsageReportRow)]
pub(super) struct ReportRow {
    /// The UTC date, `YYYY-MM-DD` (grouped by `day`).
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<String>,
    /// The organization's id (grouped by `org`).
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<Option<String>>,
    /// The team's id (grouped by `team`).
    #[serde(skip_serializing_if = "Option::is_none")]
    team_id: Option<Option<String>>,
    /// The user's id (grouped by `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Option<String>>,
    /// A stored key's id; null for a key of the config file, which is a group by its name
    /// (grouped by `key`, as is `key_name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_id: Option<Option<String>>,
    /// The key's name (for a stored key renamed within the period, the greatest of its names).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_name: Option<Option<String>>,
    /// The model the client asked for (grouped by `model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<Option<String>>,
    /// The provider (deployment) that served, or last failed (grouped by `provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<Option<String>>,
    #[serde(flatten)]
    counts: Counts,
}

/// What a group (or the whole report) counts.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = UsageCounts)]
pub(super) struct Counts {
    requests: u64,
    /// Requests answered with a status of 400 or above, or that did not complete.
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
    /// US dollars as an exact decimal string (six decimals); requests without a price count 0.
    #[schema(example = "0.001234")]
    cost_usd: String,
}

/// The columns of the counts, after the dimensions', in CSV.
const COUNT_COLUMNS: [&str; 7] = [
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
];

/// What a report is made of: the dimensions (in row order), the period, and the store's rows.
#[derive(Debug)]
pub(super) struct Report {
    pub group_by: Vec<UsageGroup>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub rows: Vec<UsageRow>,
}

/// Micro-dollars as a decimal string of dollars with six decimals.
pub(super) fn dollars(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

/// The CSV and JSON column names of a dimension.
fn columns(group: UsageGroup) -> &'static [&'static str] {
    match group {
        UsageGroup::Day => &["day"],
        UsageGroup::Org => &["org_id"],
        UsageGroup::Team => &["team_id"],
        UsageGroup::User => &["user_id"],
        UsageGroup::Key => &["key_id", "key_name"],
        UsageGroup::Model => &["model"],
        UsageGroup::Provider => &["provider"],
    }
}

/// A field for CSV (RFC 4180): quoted when it holds a comma, a quote or a line break, with its
/// quotes doubled.
fn field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

impl Counts {
    fn of(row: &UsageRow) -> Self {
        Self {
            requests: row.requests,
            errors: row.errors,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cached_tokens: row.cached_tokens,
            reasoning_tokens: row.reasoning_tokens,
            cost_usd: dollars(row.cost_micros),
        }
    }

    /// The sums of `rows` (saturating: no count wraps).
    fn total(rows: &[UsageRow]) -> Self {
        let mut sum = UsageRow::default();
        for r in rows {
            sum.requests = sum.requests.saturating_add(r.requests);
            sum.errors = sum.errors.saturating_add(r.errors);
            sum.input_tokens = sum.input_tokens.saturating_add(r.input_tokens);
            sum.output_tokens = sum.output_tokens.saturating_add(r.output_tokens);
            sum.cached_tokens = sum.cached_tokens.saturating_add(r.cached_tokens);
            sum.reasoning_tokens = sum.reasoning_tokens.saturating_add(r.reasoning_tokens);
            sum.cost_micros = sum.cost_micros.saturating_add(r.cost_micros);
        }
        Self::of(&sum)
    }

    fn fields(&self) -> [String; 7] {
        [
            self.requests.to_string(),
            self.errors.to_string(),
            self.input_tokens.to_string(),
            self.output_tokens.to_string(),
            self.cached_tokens.to_string(),
            self.reasoning_tokens.to_string(),
            self.cost_usd.clone(),
        ]
    }
}

impl Report {
    fn grouped(&self, group: UsageGroup) -> bool {
        self.group_by.contains(&group)
    }

    /// The value of `row` in a dimension column (`None` when the records lack it).
    fn value(row: &UsageRow, column: &str) -> Option<String> {
        match column {
            "day" => row.day.map(|d| d.to_string()),
            "org_id" => row.org.clone(),
            "team_id" => row.team.clone(),
            "user_id" => row.user.clone(),
            "key_id" => row.key_id.clone(),
            "key_name" => row.key_name.clone(),
            "model" => row.model.clone(),
            "provider" => row.provider.clone(),
            _ => None,
        }
    }

    fn row(&self, r: &UsageRow) -> ReportRow {
        let grouped = |g: UsageGroup, v: &Option<String>| self.grouped(g).then(|| v.clone());
        ReportRow {
            day: if self.grouped(UsageGroup::Day) {
                r.day.map(|d| d.to_string())
            } else {
                None
            },
            org_id: grouped(UsageGroup::Org, &r.org),
            team_id: grouped(UsageGroup::Team, &r.team),
            user_id: grouped(UsageGroup::User, &r.user),
            key_id: grouped(UsageGroup::Key, &r.key_id),
            key_name: grouped(UsageGroup::Key, &r.key_name),
            model: grouped(UsageGroup::Model, &r.model),
            provider: grouped(UsageGroup::Provider, &r.provider),
            counts: Counts::of(r),
        }
    }

    /// The report as JSON.
    pub(super) fn json(&self) -> UsageReport {
        UsageReport {
            group_by: self.group_by.iter().map(|g| g.name().to_owned()).collect(),
            from: rfc3339(self.from),
            to: rfc3339(self.to),
            rows: self.rows.iter().map(|r| self.row(r)).collect(),
            totals: Counts::total(&self.rows),
        }
    }

    /// The report as CSV: the header row, then one line per row.
    pub(super) fn csv(&self) -> String {
        let dimensions: Vec<&str> = self
            .group_by
            .iter()
            .flat_map(|g| columns(*g).iter().copied())
            .collect();
        let mut out = String::new();
        let mut line = |fields: Vec<String>| {
            let fields: Vec<String> = fields.iter().map(|f| field(f)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        };
        line(
            dimensions
                .iter()
                .chain(COUNT_COLUMNS.iter())
                .map(|c| (*c).to_owned())
                .collect(),
        );
        for r in &self.rows {
            let mut fields: Vec<String> = dimensions
                .iter()
                .map(|c| Self::value(r, c).unwrap_or_default())
                .collect();
            fields.extend(Counts::of(r).fields());
            line(fields);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;

    use super::*;

    #[test]
    fn dollars_are_exact() {
        assert_eq!(dollars(0), "0.000000");
        assert_eq!(dollars(1234), "0.001234");
        assert_eq!(dollars(1_000_000), "1.000000");
        assert_eq!(dollars(12_345_678_901), "12345.678901");
        assert_eq!(dollars(-5), "-0.000005");
        assert_eq!(dollars(i64::MAX), "9223372036854.775807");
        assert_eq!(dollars(i64::MIN), "-9223372036854.775808");
    }

    #[test]
    fn csv_fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
        assert_eq!(field("=1+1 ü"), "=1+1 ü");
    }

    fn report() -> Report {
        let day = time::Date::from_calendar_date(2026, time::Month::November, 27).unwrap();
        Report {
            group_by: vec![UsageGroup::Day, UsageGroup::Key, UsageGroup::Org],
            from: Some(day.midnight().assume_utc()),
            to: None,
            rows: vec![
                UsageRow {
                    day: Some(day),
                    org: Some("o1".into()),
                    key_id: Some("k1".into()),
                    key_name: Some("ci, \"nightly\"".into()),
                    // Not grouped by: never shown.
                    model: Some("m".into()),
                    requests: 3,
                    errors: 1,
                    input_tokens: 30,
                    output_tokens: 6,
                    cost_micros: 42,
                    ..UsageRow::default()
                },
                UsageRow {
                    day: Some(day),
                    key_name: Some("config key".into()),
                    requests: 1,
                    cached_tokens: 2,
                    reasoning_tokens: 5,
                    cost_micros: 1_000_000,
                    ..UsageRow::default()
                },
            ],
        }
    }

    #[test]
    fn json_rows_carry_the_grouped_columns_and_the_totals_add_up() {
        let v = serde_json::to_value(report().json()).unwrap();
        assert_eq!(
            v,
            json!({
                "group_by": ["day", "key", "org"],
                "from": "2026-11-27T00:00:00Z",
                "to": null,
                "rows": [
                    {"day": "2026-11-27", "key_id": "k1", "key_name": "ci, \"nightly\"",
                     "org_id": "o1", "requests": 3, "errors": 1, "input_tokens": 30,
                     "output_tokens": 6, "cached_tokens": 0, "reasoning_tokens": 0,
                     "cost_usd": "0.000042"},
                    {"day": "2026-11-27", "key_id": null, "key_name": "config key",
                     "org_id": null, "requests": 1, "errors": 0, "input_tokens": 0,
                     "output_tokens": 0, "cached_tokens": 2, "reasoning_tokens": 5,
                     "cost_usd": "1.000000"},
                ],
                "totals": {"requests": 4, "errors": 1, "input_tokens": 30, "output_tokens": 6,
                    "cached_tokens": 2, "reasoning_tokens": 5, "cost_usd": "1.000042"},
            })
        );
    }

    #[test]
    fn csv_is_a_header_then_the_rows() {
        assert_eq!(
            report().csv(),
            "day,key_id,key_name,org_id,requests,errors,input_tokens,output_tokens,\
             cached_tokens,reasoning_tokens,cost_usd\r\n\
             2026-11-27,k1,\"ci, \"\"nightly\"\"\",o1,3,1,30,6,0,0,0.000042\r\n\
             2026-11-27,,config key,,1,0,0,0,2,5,1.000000\r\n"
        );
        let empty = Report {
            group_by: vec![],
            from: None,
            to: None,
            rows: vec![],
        };
        assert_eq!(
            empty.csv(),
            "requests,errors,input_tokens,output_tokens,cached_tokens,reasoning_tokens,\
             cost_usd\r\n"
        );
        let v = serde_json::to_value(empty.json()).unwrap();
        assert_eq!(v["rows"], json!([]));
        assert_eq!(v["totals"]["cost_usd"], "0.000000");
    }
}

//! `portcullis usage`: the usage report (`GET /admin/v1/usage`) as a table with a total line,
//! as the API's JSON, or as its CSV passed through unchanged. The gateway checks every option;
//! this module only names them and lays out the table, whose columns follow the dimensions the
//! answer says it is grouped by.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use http::Method;
use serde_json::Value;

use super::{Call, Connection, with_query};

const AFTER_HELP: &str = "\
Requests count once the gateway has moved them from its usage journal into the store (within \
about usage.flush_interval). You see the usage in your scope: a gateway admin all of it, an org \
admin its organization's, anyone else its team's.

Examples:
  portcullis usage --from 2026-11-01 --to 2026-12-01 --by day
  portcullis usage --by key,model --team TEAM_ID
  portcullis usage --by day,provider --from 2026-11-27T00:00:00Z --format csv > usage.csv";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct UsageArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Make a row per value of these dimensions (comma-separated); rows are sorted by them, the
    /// day first. Without it: one row, the total.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "DIMENSIONS")]
    pub by: Vec<Dimension>,
    /// Start of the period, inclusive: a date (YYYY-MM-DD, its midnight UTC) or an RFC 3339
    /// time.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// End of the period, exclusive, as --from (--from 2026-11-27 --to 2026-11-28 is one day).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only this organization's requests (its id).
    #[arg(long, value_name = "ID")]
    pub org: Option<String>,
    /// Only this team's requests (its id).
    #[arg(long, value_name = "ID")]
    pub team: Option<String>,
    /// Only the requests of this user's keys (its id).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Only this stored key's requests (its id).
    #[arg(long, value_name = "ID")]
    pub key: Option<String>,
    /// Only requests for this model (the name clients ask for).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Only requests this provider served (or last failed).
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
    /// How to print the report: an aligned table with a total line, the API's JSON, or CSV as
    /// the API writes it (a header row, then the rows). --json is --format json.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A dimension of the report's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dimension {
    /// The UTC date.
    Day,
    /// The organization (by id).
    Org,
    /// The team (by id).
    Team,
    /// The user a stored key belongs to (by id).
    User,
    /// A stored key (by id), or a key of the config file (by name).
    Key,
    /// The model the client asked for.
    Model,
    /// The provider that served.
    Provider,
}

impl Dimension {
    fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Org => "org",
            Self::Team => "team",
            Self::User => "user",
            Self::Key => "key",
            Self::Model => "model",
            Self::Provider => "provider",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// The table's columns (heading, field of a row) for one dimension the answer names.
fn dimension_columns(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "day" => &[("DAY", "day")],
        "org" => &[("ORG", "org_id")],
        "team" => &[("TEAM", "team_id")],
        "user" => &[("USER", "user_id")],
        "key" => &[("KEY", "key_id"), ("KEY NAME", "key_name")],
        "model" => &[("MODEL", "model")],
        "provider" => &[("PROVIDER", "provider")],
        _ => &[],
    }
}

/// The columns of the counts, after the dimensions'.
const COUNT_COLUMNS: &[(&str, &str)] = &[
    ("REQUESTS", "requests"),
    ("ERRORS", "errors"),
    ("INPUT", "input_tokens"),
    ("OUTPUT", "output_tokens"),
    ("CACHED", "cached_tokens"),
    ("REASONING", "reasoning_tokens"),
    ("COST (USD)", "cost_usd"),
];

/// The report's JSON as a table: a line per row and a total line; without groups, the total
/// alone (zeros when nothing matched).
fn table(answer: &Value) -> String {
    let dimensions: Vec<(&str, &str)> = answer["group_by"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|g| dimension_columns(g).iter().copied())
        .collect();
    let columns: Vec<(&str, &str)> = dimensions.iter().chain(COUNT_COLUMNS).copied().collect();
    let mut rows: Vec<Value> = answer["rows"].as_array().cloned().unwrap_or_default();
    if dimensions.is_empty() {
        rows = vec![answer["totals"].clone()];
    } else if !rows.is_empty() {
        let mut total = answer["totals"].as_object().cloned().unwrap_or_default();
        for (i, (_, field)) in dimensions.iter().enumerate() {
            let label = if i == 0 { "TOTAL" } else { "" };
            total.insert((*field).to_owned(), Value::String(label.to_owned()));
        }
        rows.push(Value::Object(total));
    }
    let rows: Vec<&Value> = rows.iter().collect();
    super::table(&columns, &rows)
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn show(format: Format, body: &[u8]) -> Result<(), String> {
    if format == Format::Csv {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(body)
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing the report: {e}"));
    }
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return Ok(());
    }
    println!("{}", table(&answer));
    if answer["rows"].as_array().is_none_or(Vec::is_empty) {
        eprintln!("No requests match.");
    }
    Ok(())
}

pub fn run(args: UsageArgs) -> ExitCode {
    let format = if args.connection.json {
        Format::Json
    } else {
        args.format
    };
    let by: Vec<&str> = args.by.iter().map(|d| d.name()).collect();
    let params = [
        ("group_by", (!by.is_empty()).then(|| by.join(","))),
        ("from", args.from),
        ("to", args.to),
        ("org_id", args.org),
        ("team_id", args.team),
        ("user_id", args.user),
        ("key_id", args.key),
        ("model", args.model),
        ("provider", args.provider),
        ("format", (format == Format::Csv).then(|| "csv".to_owned())),
    ];
    let call = Call::new(
        Method::GET,
        with_query("/admin/v1/usage", &params),
        None,
        &[],
    );
    let accept = if format == Format::Csv {
        "text/csv"
    } else {
        "application/json"
    };
    super::run_with(&args.connection, &call, accept, |body| show(format, body))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_table_has_the_answers_dimensions_and_a_total_line() {
        let answer = json!({
            "group_by": ["day", "key"],
            "rows": [
                {"day": "2026-11-27", "key_id": "k1", "key_name": "ci", "requests": 3,
                 "errors": 1, "input_tokens": 30, "output_tokens": 6, "cached_tokens": 0,
                 "reasoning_tokens": 0, "cost_usd": "0.000042"},
                {"day": "2026-11-27", "key_id": null, "key_name": "config", "requests": 10,
                 "errors": 0, "input_tokens": 100, "output_tokens": 20, "cached_tokens": 0,
                 "reasoning_tokens": 0, "cost_usd": "0.000000"},
            ],
            "totals": {"requests": 13, "errors": 1, "input_tokens": 130, "output_tokens": 26,
                "cached_tokens": 0, "reasoning_tokens": 0, "cost_usd": "0.000042"},
        });
        assert_eq!(
            table(&answer),
            "DAY         KEY  KEY NAME  REQUESTS  ERRORS  INPUT  OUTPUT  CACHED  REASONING  COST (USD)\n\
             2026-11-27  k1   ci        3         1       30     6       0       0          0.000042\n\
             2026-11-27  -    config    10        0       100    20      0       0          0.000000\n\
             TOTAL                      13        1       130    26      0       0          0.000042"
        );
        // Without groups: the total only, once; zeros when nothing matched.
        let total = json!({"group_by": [], "rows": [answer["totals"].clone()],
            "totals": answer["totals"].clone()});
        assert_eq!(
            table(&total),
            "REQUESTS  ERRORS  INPUT  OUTPUT  CACHED  REASONING  COST (USD)\n\
             13        1       130    26      0       0          0.000042"
        );
        let zeros = json!({"group_by": [], "rows": [], "totals": {"requests": 0, "errors": 0,
            "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0,
            "cost_usd": "0.000000"}});
        assert_eq!(
            table(&zeros).lines().nth(1),
            Some("0         0       0      0       0       0          0.000000")
        );
        // Nothing: the header alone.
        let empty = json!({"group_by": ["model"], "rows": [], "totals": {}});
        assert_eq!(
            table(&empty),
            "MODEL  REQUESTS  ERRORS  INPUT  OUTPUT  CACHED  REASONING  COST (USD)"
        );
    }
}

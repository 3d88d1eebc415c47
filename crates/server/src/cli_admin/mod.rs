//! `portcullis orgs|teams|users|keys|credentials|usage ...`: the admin API of a running gateway from the command
//! line, with readable tables or `--json`. Each resource's subcommands live in their own module
//! and only say which call to make and which columns to show; this module makes the call
//! ([`call`]; an update that keeps part of the quotas reads the object first, [`run_update`])
//! and prints the answer ([`print`]). The quota options all four resources share are in
//! `quota`. A command whose answer is not a JSON list or object (the usage report, also CSV)
//! makes the call with [`run_with`] and shows the body itself, with [`table`] for its rows.
//!
//! The gateway comes from `--url` or `PORTCULLIS_URL`, the admin credential from `--admin-key`
//! or `PORTCULLIS_ADMIN_KEY`: the master key, an admin user's virtual key, or an OIDC token.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use portcullis_core::provider::client;
use serde_json::{Map, Value};

pub mod credentials;
pub mod keys;
pub mod orgs;
pub mod quota;
pub mod teams;
pub mod usage;
pub mod users;

/// How to reach the admin API; flattened into every resource's arguments.
#[derive(Debug, Args)]
pub struct Connection {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "PORTCULLIS_URL",
        default_value = "http://127.0.0.1:4000",
        global = true
    )]
    pub url: String,
    /// The admin credential: the master key, an admin user's virtual key, or an OIDC token.
    #[arg(
        long,
        env = "PORTCULLIS_ADMIN_KEY",
        hide_env_values = true,
        global = true
    )]
    pub admin_key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// One admin call a subcommand asks for, and how to show its answer.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// Table columns: (heading, field of each item).
    pub columns: &'static [(&'static str, &'static str)],
}

impl Call {
    pub fn new(
        method: Method,
        path: String,
        body: Option<Value>,
        columns: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            method,
            path,
            body,
            columns,
        }
    }
}

/// Runs `call` against the gateway `connection` names and prints the answer.
pub fn run(connection: &Connection, call: Call) -> ExitCode {
    run_calls(connection, |base, admin_key| async move {
        let answer = call_json(base, admin_key, &call).await?;
        Ok((call, answer))
    })
}

/// Runs an update (`PATCH path` with `body` and the quota changes `quotas`) and prints the
/// answer. When the changes keep part of the stored quotas (`--rpm` keeps the other limits,
/// `--budget` the budgets of other periods), the object is read first and they are applied to
/// what it holds; a change made by someone else in between is overwritten.
pub fn run_update(
    connection: &Connection,
    path: String,
    mut body: Map<String, Value>,
    quotas: &quota::QuotaUpdateArgs,
    columns: &'static [(&'static str, &'static str)],
) -> ExitCode {
    run_calls(connection, |base, admin_key| async move {
        let current = if quotas.needs_current() {
            let read = Call::new(Method::GET, path.clone(), None, columns);
            Some(call_json(base, admin_key, &read).await?)
        } else {
            None
        };
        quotas.add_to(current.as_ref(), &mut body)?;
        let call = Call::new(Method::PATCH, path, Some(Value::Object(body)), columns);
        let answer = call_json(base, admin_key, &call).await?;
        Ok((call, answer))
    })
}

/// Makes the calls `calls` makes (with the gateway's base URL and the admin credential) and
/// prints the JSON answer of the last.
fn run_calls<'a, F, Fut>(connection: &'a Connection, calls: F) -> ExitCode
where
    F: FnOnce(&'a str, &'a str) -> Fut,
    Fut: Future<Output = Result<(Call, Value), String>>,
{
    let json = connection.json;
    on_runtime(connection, |base, admin_key| async move {
        let (call, answer) = calls(base, admin_key).await?;
        print(json, &call, &answer);
        Ok(())
    })
}

/// Runs `call` asking for the media type `accept`, and hands the body of a successful answer
/// to `show`. A failure (no credential, no answer, an error status, or `show`'s) is printed
/// on standard error and exits 1.
pub fn run_with(
    connection: &Connection,
    call: &Call,
    accept: &'static str,
    show: impl FnOnce(&[u8]) -> Result<(), String>,
) -> ExitCode {
    on_runtime(connection, |base, admin_key| async move {
        let body = self::call(base, admin_key, call, accept).await?;
        show(&body)
    })
}

/// Runs `work` (with the gateway's base URL and the admin credential) on a runtime of its own;
/// a failure is printed on standard error and exits 1.
fn on_runtime<'a, F, Fut>(connection: &'a Connection, work: F) -> ExitCode
where
    F: FnOnce(&'a str, &'a str) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let Some(admin_key) = connection.admin_key.as_deref() else {
        eprintln!("portcullis: give the admin credential with --admin-key or PORTCULLIS_ADMIN_KEY");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = connection.url.trim_end_matches('/');
    match runtime.block_on(work(base, admin_key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portcullis: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Reports a problem found before any call, as a failed call is reported.
pub fn fail(message: &str) -> ExitCode {
    eprintln!("portcullis: {message}");
    ExitCode::FAILURE
}

/// Percent-encodes a value for a path segment or query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `path` with the query parameters whose value is given.
pub fn with_query(path: &str, params: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Paging options every `list` takes.
#[derive(Debug, Args)]
pub struct Paging {
    /// At most this many items (the API's default is 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start after this id (the `next_after` of the previous page).
    #[arg(long)]
    pub after: Option<String>,
}

impl Paging {
    pub fn params(&self) -> [(&'static str, Option<String>); 2] {
        [
            ("limit", self.limit.map(|l| l.to_string())),
            ("after", self.after.clone()),
        ]
    }
}

/// Makes `call`; the body of a successful answer, or the error's message.
async fn call(
    base: &str,
    admin_key: &str,
    call: &Call,
    accept: &'static str,
) -> Result<Bytes, String> {
    let http = client::build(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let uri: http::Uri = format!("{base}{}", call.path)
        .parse()
        .map_err(|_| format!("not a URL: {base}"))?;
    let bytes = call.body.as_ref().map(Value::to_string).unwrap_or_default();
    let mut request = Request::new(Full::new(Bytes::from(bytes)));
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    headers.insert(header::ACCEPT, http::HeaderValue::from_static(accept));
    let mut auth = http::HeaderValue::try_from(format!("Bearer {admin_key}"))
        .map_err(|_| "the admin key is not a valid header value".to_owned())?;
    auth.set_sensitive(true);
    headers.insert(header::AUTHORIZATION, auth);
    let response = tokio::time::timeout(Duration::from_secs(30), http.request(request))
        .await
        .map_err(|_| format!("{base} did not answer in time"))?
        .map_err(|_| format!("cannot reach the gateway at {base}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let message = value["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{status}: {message}"));
    }
    Ok(body)
}

/// [`call`] for a JSON answer.
async fn call_json(base: &str, admin_key: &str, call: &Call) -> Result<Value, String> {
    let body = self::call(base, admin_key, call, "application/json").await?;
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn print(json: bool, call: &Call, answer: &Value) {
    if json {
        if !answer.is_null() {
            println!(
                "{}",
                serde_json::to_string_pretty(answer).unwrap_or_default()
            );
        }
        return;
    }
    if answer.is_null() {
        eprintln!("Done.");
        return;
    }
    if let Some(secret) = answer["key"].as_str() {
        println!("{secret}");
        eprintln!(
            "The key above is shown once: store it now. Its id is {}.",
            answer["id"].as_str().unwrap_or("?")
        );
        return;
    }
    let rows: Vec<&Value> = match answer["data"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![answer],
    };
    println!("{}", table(call.columns, &rows));
    if let Some(next) = answer["next_after"].as_str() {
        eprintln!("More: add --after {next}");
    }
}

/// `rows` as a text table with `columns`, each column as wide as its widest cell.
pub fn table(columns: &[(&str, &str)], rows: &[&Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, k)| cell(k, &r[*k])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(columns.iter().map(|(h, _)| (*h).to_owned()).collect())];
    out.extend(cells.into_iter().map(line));
    out.join("\n")
}

/// The cell of field `name` with value `v`.
fn cell(name: &str, v: &Value) -> String {
    let quota = match name {
        "limits" => quota::limits_cell(v),
        "budgets" => quota::budgets_cell(v),
        _ => None,
    };
    quota.unwrap_or_else(|| plain_cell(v))
}

fn plain_cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "any".to_owned(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(o) if o.is_empty() => "-".to_owned(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", plain_cell(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_and_render_every_kind_of_cell() {
        let rows = [
            json!({"id": "1", "models": [], "labels": {"env": "prod"}, "on": true,
                "limits": {"rpm": 5}, "budgets": [{"max_usd": 2.5, "period": "total"}]}),
            json!({"id": "22", "models": ["a", "b"], "labels": {}, "on": null,
                "limits": {}, "budgets": []}),
        ];
        let rows: Vec<&Value> = rows.iter().collect();
        let t = table(
            &[
                ("ID", "id"),
                ("MODELS", "models"),
                ("LABELS", "labels"),
                ("ON", "on"),
                ("LIMITS", "limits"),
                ("BUDGETS", "budgets"),
            ],
            &rows,
        );
        assert_eq!(
            t,
            "ID  MODELS  LABELS    ON    LIMITS  BUDGETS\n\
             1   any     env=prod  true  rpm=5   total:2.5\n\
             22  a,b     -         -     -       -"
        );
    }

    #[test]
    fn queries_skip_absent_values_and_encode_present_ones() {
        assert_eq!(with_query("/x", &[("a", None)]), "/x");
        assert_eq!(
            with_query(
                "/x",
                &[
                    ("a", Some("b c/d".into())),
                    ("e", None),
                    ("f", Some("1".into()))
                ]
            ),
            "/x?a=b%20c%2Fd&f=1"
        );
    }
}

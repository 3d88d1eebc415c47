//! `portcullis keys ...`: manage virtual keys through a running gateway's admin API
//! (`/admin/v1/keys`), with readable tables or `--json`. The admin key comes from
//! `--admin-key` or `PORTCULLIS_ADMIN_KEY`, the gateway from `--url` or `PORTCULLIS_URL`.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use portcullis_core::provider::client;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The gateway's base URL.
    #[arg(long, env = "PORTCULLIS_URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// The admin credential: the gateway's master key, or a key of a user (acting with its role).
    #[arg(long, env = "PORTCULLIS_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: String,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for a team; its secret is printed once.
    Create {
        #[arg(long)]
        team: String,
        #[arg(long)]
        name: String,
        /// A model name or pattern the key may use (repeat; none: any model).
        #[arg(long = "model")]
        models: Vec<String>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (no secrets).
    List {
        #[arg(long)]
        team: Option<String>,
    },
    /// Show one key (no secret).
    Show { id: String },
    /// Give a key a new secret; the old one works for `--grace` seconds more.
    Rotate {
        id: String,
        #[arg(long, default_value_t = 3600)]
        grace: u32,
    },
    /// Revoke a key for good.
    Revoke { id: String },
}

pub fn run(args: KeysArgs) -> ExitCode {
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
    match runtime.block_on(execute(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("portcullis: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(args: &KeysArgs) -> Result<(), String> {
    let base = args.url.trim_end_matches('/');
    let (method, path, body) = match &args.command {
        KeysCommand::Create {
            team,
            name,
            models,
            expires,
        } => (
            Method::POST,
            "/admin/v1/keys".to_owned(),
            Some(
                json!({"team_id": team, "name": name, "allowed_models": models,
                "expires_at": expires}),
            ),
        ),
        KeysCommand::List { team } => (
            Method::GET,
            match team {
                Some(t) => format!("/admin/v1/keys?team_id={}", encode(t)),
                None => "/admin/v1/keys".to_owned(),
            },
            None,
        ),
        KeysCommand::Show { id } => (Method::GET, format!("/admin/v1/keys/{}", encode(id)), None),
        KeysCommand::Rotate { id, grace } => (
            Method::POST,
            format!("/admin/v1/keys/{}/rotate", encode(id)),
            Some(json!({"grace_seconds": grace})),
        ),
        KeysCommand::Revoke { id } => (
            Method::POST,
            format!("/admin/v1/keys/{}/revoke", encode(id)),
            None,
        ),
    };
    let answer = call(base, &args.admin_key, method, &path, body).await?;
    print(args, &answer);
    Ok(())
}

/// Percent-encodes an id for a path segment or query value.
fn encode(s: &str) -> String {
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

async fn call(
    base: &str,
    admin_key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let http = client::build(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let uri: http::Uri = format!("{base}{path}")
        .parse()
        .map_err(|_| format!("not a URL: {base}"))?;
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = Request::new(Full::new(Bytes::from(bytes)));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
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
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = value["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{status}: {message}"));
    }
    Ok(value)
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn print(args: &KeysArgs, answer: &Value) {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(answer).unwrap_or_default()
        );
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
    let cell = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "any".to_owned(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let columns = [
        ("ID", "id"),
        ("PUBLIC ID", "public_id"),
        ("NAME", "name"),
        ("TEAM", "team_id"),
        ("MODELS", "allowed_models"),
        ("ENABLED", "enabled"),
        ("EXPIRES", "expires_at"),
        ("REVOKED", "revoked_at"),
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|(_, k)| cell(&r[*k])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, (h, _))| {
            table
                .iter()
                .map(|r| r[i].len())
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
    println!(
        "{}",
        line(columns.iter().map(|(h, _)| (*h).to_owned()).collect())
    );
    for row in table {
        println!("{}", line(row));
    }
}

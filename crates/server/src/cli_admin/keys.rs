//! `portcullis keys ...`: virtual keys (`/admin/v1/keys`), with their own limits and budgets. A
//! key's secret is printed once, when it is made or rotated.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::quota::{QuotaArgs, QuotaUpdateArgs};
use super::{Call, Connection, Paging, encode, fail, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("PUBLIC ID", "public_id"),
    ("NAME", "name"),
    ("TEAM", "team_id"),
    ("USER", "user_id"),
    ("MODELS", "allowed_models"),
    ("LIMITS", "limits"),
    ("BUDGETS", "budgets"),
    ("ENABLED", "enabled"),
    ("EXPIRES", "expires_at"),
    ("REVOKED", "revoked_at"),
];

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key for a team (and optionally one of its users); its secret is printed once.
    /// Its own limits and budgets apply together with those of its user, team and
    /// organization.
    Create {
        /// The team's id.
        #[arg(long)]
        team: String,
        /// The name.
        #[arg(long)]
        name: String,
        /// The user the key belongs to.
        #[arg(long)]
        user: Option<String>,
        /// A model name or pattern the key may use (repeat; none: any model).
        #[arg(long = "model")]
        models: Vec<String>,
        /// A label as KEY=VALUE (repeat).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List keys (no secrets).
    List {
        /// The organization's id.
        #[arg(long)]
        org: Option<String>,
        /// The team's id.
        #[arg(long)]
        team: Option<String>,
        /// The user's id.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one key (no secret).
    Show { id: String },
    /// Change a key's name, models, limits or budgets, or turn it off and on. Each limit or
    /// budget given replaces that limit, or the budget of that period; the others stay.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: Option<String>,
        /// The models the key may use, replacing the list (repeat).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Let the key use any model.
        #[arg(long, conflicts_with = "models")]
        any_model: bool,
        /// `true` or `false`.
        #[arg(long)]
        enabled: Option<bool>,
        #[command(flatten)]
        quota: QuotaUpdateArgs,
    },
    /// Give a key a new secret; the old one works for `--grace` seconds more.
    Rotate {
        id: String,
        #[arg(long, default_value_t = 3600)]
        grace: u32,
    },
    /// Revoke a key for good (it stays listed as revoked).
    Revoke { id: String },
    /// Delete a key's record.
    Delete { id: String },
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

pub fn run(args: KeysArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/keys/{}", encode(id));
    let call = match args.command {
        KeysCommand::Create {
            team,
            name,
            user,
            models,
            labels,
            expires,
            quota,
        } => {
            let labels: Map<String, Value> = labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let mut body = json!({"team_id": team, "name": name, "allowed_models": models,
                "labels": labels});
            if let Some(user) = user {
                body["user_id"] = Value::String(user);
            }
            if let Some(expires) = expires {
                body["expires_at"] = Value::String(expires);
            }
            if let Err(e) = quota.add_to(&mut body) {
                return fail(&e);
            }
            Call::new(Method::POST, "/admin/v1/keys".into(), Some(body), COLUMNS)
        }
        KeysCommand::List {
            org,
            team,
            user,
            paging,
        } => {
            let mut params = vec![("org_id", org), ("team_id", team), ("user_id", user)];
            params.extend(paging.params());
            Call::new(
                Method::GET,
                with_query("/admin/v1/keys", &params),
                None,
                COLUMNS,
            )
        }
        KeysCommand::Show { id } => Call::new(Method::GET, item(&id), None, COLUMNS),
        KeysCommand::Update {
            id,
            name,
            models,
            any_model,
            enabled,
            quota,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            if any_model || !models.is_empty() {
                body.insert("allowed_models".into(), json!(models));
            }
            if let Some(enabled) = enabled {
                body.insert("enabled".into(), Value::Bool(enabled));
            }
            return super::run_update(&args.connection, item(&id), body, &quota, COLUMNS);
        }
        KeysCommand::Rotate { id, grace } => Call::new(
            Method::POST,
            format!("{}/rotate", item(&id)),
            Some(json!({"grace_seconds": grace})),
            COLUMNS,
        ),
        KeysCommand::Revoke { id } => {
            Call::new(Method::POST, format!("{}/revoke", item(&id)), None, COLUMNS)
        }
        KeysCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

//! `portcullis teams ...`: teams (`/admin/v1/teams`), with their limits and budgets.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::quota::{QuotaArgs, QuotaUpdateArgs};
use super::{Call, Connection, Paging, encode, fail, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ORG", "org_id"),
    ("LIMITS", "limits"),
    ("BUDGETS", "budgets"),
    ("CREATED", "created_at"),
];

#[derive(Debug, Args)]
pub struct TeamsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: TeamsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Make a team in an organization, optionally with limits and budgets for all of its users
    /// and keys together.
    Create {
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List the teams you can see.
    List {
        /// The organization's id.
        #[arg(long)]
        org: Option<String>,
        /// Only names starting with this.
        #[arg(long)]
        name_prefix: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one team.
    Show { id: String },
    /// Rename a team, or change its limits and budgets. Each limit or budget given replaces
    /// that limit, or the budget of that period; the others stay.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        quota: QuotaUpdateArgs,
    },
    /// Delete a team that has no users or keys left.
    Delete { id: String },
}

pub fn run(args: TeamsArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/teams/{}", encode(id));
    let call = match args.command {
        TeamsCommand::Create { org, name, quota } => {
            let mut body = json!({"org_id": org, "name": name});
            if let Err(e) = quota.add_to(&mut body) {
                return fail(&e);
            }
            Call::new(Method::POST, "/admin/v1/teams".into(), Some(body), COLUMNS)
        }
        TeamsCommand::List {
            org,
            name_prefix,
            paging,
        } => {
            let mut params = vec![("org_id", org), ("name_prefix", name_prefix)];
            params.extend(paging.params());
            Call::new(
                Method::GET,
                with_query("/admin/v1/teams", &params),
                None,
                COLUMNS,
            )
        }
        TeamsCommand::Show { id } => Call::new(Method::GET, item(&id), None, COLUMNS),
        TeamsCommand::Update { id, name, quota } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            return super::run_update(&args.connection, item(&id), body, &quota, COLUMNS);
        }
        TeamsCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

//! `portcullis users ...`: users, their roles, limits and budgets (`/admin/v1/users`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use portcullis_types::Role;
use serde_json::{Map, Value, json};

use super::quota::{QuotaArgs, QuotaUpdateArgs};
use super::{Call, Connection, Paging, encode, fail, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ROLE", "role"),
    ("TEAM", "team_id"),
    ("EMAIL", "email"),
    ("LIMITS", "limits"),
    ("BUDGETS", "budgets"),
];

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user to a team, optionally with limits and budgets for all of its keys together.
    Create {
        /// The team's id.
        #[arg(long)]
        team: String,
        /// The name.
        #[arg(long)]
        name: String,
        /// The email address.
        #[arg(long)]
        email: Option<String>,
        /// org_admin, team_admin, member (the default) or viewer.
        #[arg(long)]
        role: Option<Role>,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List the users you can see.
    List {
        /// The organization's id.
        #[arg(long)]
        org: Option<String>,
        /// The team's id.
        #[arg(long)]
        team: Option<String>,
        /// Only names starting with this.
        #[arg(long)]
        name_prefix: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one user.
    Show { id: String },
    /// Change a user's name, email, role, limits or budgets. Each limit or budget given
    /// replaces that limit, or the budget of that period; the others stay.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: Option<String>,
        /// The email address.
        #[arg(long, conflicts_with = "clear_email")]
        email: Option<String>,
        /// Remove the user's email.
        #[arg(long)]
        clear_email: bool,
        #[arg(long)]
        role: Option<Role>,
        #[command(flatten)]
        quota: QuotaUpdateArgs,
    },
    /// Delete a user who has no keys left.
    Delete { id: String },
}

pub fn run(args: UsersArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/users/{}", encode(id));
    let call = match args.command {
        UsersCommand::Create {
            team,
            name,
            email,
            role,
            quota,
        } => {
            let mut body = json!({"team_id": team, "name": name});
            if let Some(email) = email {
                body["email"] = Value::String(email);
            }
            if let Some(role) = role {
                body["role"] = json!(role);
            }
            if let Err(e) = quota.add_to(&mut body) {
                return fail(&e);
            }
            Call::new(Method::POST, "/admin/v1/users".into(), Some(body), COLUMNS)
        }
        UsersCommand::List {
            org,
            team,
            name_prefix,
            paging,
        } => {
            let mut params = vec![
                ("org_id", org),
                ("team_id", team),
                ("name_prefix", name_prefix),
            ];
            params.extend(paging.params());
            Call::new(
                Method::GET,
                with_query("/admin/v1/users", &params),
                None,
                COLUMNS,
            )
        }
        UsersCommand::Show { id } => Call::new(Method::GET, item(&id), None, COLUMNS),
        UsersCommand::Update {
            id,
            name,
            email,
            clear_email,
            role,
            quota,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            if clear_email {
                body.insert("email".into(), Value::Null);
            } else if let Some(email) = email {
                body.insert("email".into(), Value::String(email));
            }
            if let Some(role) = role {
                body.insert("role".into(), json!(role));
            }
            return super::run_update(&args.connection, item(&id), body, &quota, COLUMNS);
        }
        UsersCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

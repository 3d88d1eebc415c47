//! `portcullis orgs ...`: organizations (`/admin/v1/orgs`), with their limits and budgets.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::quota::{QuotaArgs, QuotaUpdateArgs};
use super::{Call, Connection, Paging, encode, fail, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("LIMITS", "limits"),
    ("BUDGETS", "budgets"),
    ("CREATED", "created_at"),
];

#[derive(Debug, Args)]
pub struct OrgsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: OrgsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Make an organization (gateway admins only), optionally with limits and budgets for all
    /// of its teams, users and keys together.
    Create {
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List the organizations you can see.
    List {
        /// Only names starting with this.
        #[arg(long)]
        name_prefix: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one organization.
    Show { id: String },
    /// Rename an organization, or change its limits and budgets (gateway admins only). Each
    /// limit or budget given replaces that limit, or the budget of that period; the others
    /// stay.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        quota: QuotaUpdateArgs,
    },
    /// Delete an organization that has no teams left.
    Delete { id: String },
}

pub fn run(args: OrgsArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/orgs/{}", encode(id));
    let call = match args.command {
        OrgsCommand::Create { name, quota } => {
            let mut body = json!({"name": name});
            if let Err(e) = quota.add_to(&mut body) {
                return fail(&e);
            }
            Call::new(Method::POST, "/admin/v1/orgs".into(), Some(body), COLUMNS)
        }
        OrgsCommand::List {
            name_prefix,
            paging,
        } => {
            let mut params = vec![("name_prefix", name_prefix)];
            params.extend(paging.params());
            Call::new(
                Method::GET,
                with_query("/admin/v1/orgs", &params),
                None,
                COLUMNS,
            )
        }
        OrgsCommand::Show { id } => Call::new(Method::GET, item(&id), None, COLUMNS),
        OrgsCommand::Update { id, name, quota } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            return super::run_update(&args.connection, item(&id), body, &quota, COLUMNS);
        }
        OrgsCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

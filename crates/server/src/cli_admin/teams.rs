//! `portcullis teams ...`: teams (`/admin/v1/teams`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::json;

use super::{Call, Connection, Paging, encode, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ORG", "org_id"),
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
    /// Make a team in an organization.
    Create {
        /// The organization's id.
        #[arg(long)]
        org: String,
        /// The name.
        #[arg(long)]
        name: String,
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
    /// Rename a team.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: String,
    },
    /// Delete a team that has no users or keys left.
    Delete { id: String },
}

pub fn run(args: TeamsArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/teams/{}", encode(id));
    let call = match args.command {
        TeamsCommand::Create { org, name } => Call::new(
            Method::POST,
            "/admin/v1/teams".into(),
            Some(json!({"org_id": org, "name": name})),
            COLUMNS,
        ),
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
        TeamsCommand::Update { id, name } => Call::new(
            Method::PATCH,
            item(&id),
            Some(json!({"name": name})),
            COLUMNS,
        ),
        TeamsCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

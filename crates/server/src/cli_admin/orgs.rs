//! `portcullis orgs ...`: organizations (`/admin/v1/orgs`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::json;

use super::{Call, Connection, Paging, encode, with_query};

const COLUMNS: &[(&str, &str)] = &[("ID", "id"), ("NAME", "name"), ("CREATED", "created_at")];

#[derive(Debug, Args)]
pub struct OrgsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: OrgsCommand,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Make an organization (gateway admins only).
    Create {
        /// The name.
        #[arg(long)]
        name: String,
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
    /// Rename an organization.
    Update {
        id: String,
        /// The name.
        #[arg(long)]
        name: String,
    },
    /// Delete an organization that has no teams left.
    Delete { id: String },
}

pub fn run(args: OrgsArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/orgs/{}", encode(id));
    let call = match args.command {
        OrgsCommand::Create { name } => Call::new(
            Method::POST,
            "/admin/v1/orgs".into(),
            Some(json!({"name": name})),
            COLUMNS,
        ),
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
        OrgsCommand::Update { id, name } => Call::new(
            Method::PATCH,
            item(&id),
            Some(json!({"name": name})),
            COLUMNS,
        ),
        OrgsCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

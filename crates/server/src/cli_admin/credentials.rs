//! `portcullis credentials ...`: provider credentials kept in the store, encrypted
//! (`/admin/v1/credentials`). A secret is read from standard input, so it stays out of the
//! shell's history and the process list; no command ever prints one.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Map, Value, json};

use super::{Call, Connection, Paging, encode, with_query};

const COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("PROVIDER", "provider"),
    ("KEY ID", "key_id"),
    ("UPDATED", "updated_at"),
];

#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: CredentialsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Store a provider credential; its secret is read from standard input. A provider refers
    /// to it in the config as ${credential:NAME}.
    Create {
        /// The name the config refers to it by.
        #[arg(long)]
        name: String,
        /// The provider type it is for (openai, anthropic, bedrock, ...).
        #[arg(long)]
        provider: String,
    },
    /// List stored credentials (never their secrets).
    List {
        /// Only credentials for this provider type.
        #[arg(long)]
        provider: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one credential (never its secret).
    Show { id: String },
    /// Rename a credential, or give it a new secret read from standard input.
    Update {
        id: String,
        /// The new name.
        #[arg(long)]
        name: Option<String>,
        /// Read a new secret from standard input.
        #[arg(long)]
        secret_from_stdin: bool,
    },
    /// Delete a credential the config no longer uses.
    Delete { id: String },
}

/// The secret on standard input, without its final newline.
fn read_secret() -> Result<String, String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the secret from standard input: {e}"))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_owned();
    if secret.is_empty() {
        return Err("the secret on standard input is empty".into());
    }
    Ok(secret)
}

pub fn run(args: CredentialsArgs) -> ExitCode {
    let item = |id: &str| format!("/admin/v1/credentials/{}", encode(id));
    let call = match args.command {
        CredentialsCommand::Create { name, provider } => match read_secret() {
            Ok(secret) => Call::new(
                Method::POST,
                "/admin/v1/credentials".into(),
                Some(json!({"name": name, "provider": provider, "secret": secret})),
                COLUMNS,
            ),
            Err(message) => return fail(&message),
        },
        CredentialsCommand::List { provider, paging } => {
            let mut params = vec![("provider", provider)];
            params.extend(paging.params());
            Call::new(
                Method::GET,
                with_query("/admin/v1/credentials", &params),
                None,
                COLUMNS,
            )
        }
        CredentialsCommand::Show { id } => Call::new(Method::GET, item(&id), None, COLUMNS),
        CredentialsCommand::Update {
            id,
            name,
            secret_from_stdin,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), Value::String(name));
            }
            if secret_from_stdin {
                match read_secret() {
                    Ok(secret) => {
                        body.insert("secret".into(), Value::String(secret));
                    }
                    Err(message) => return fail(&message),
                }
            }
            Call::new(Method::PATCH, item(&id), Some(Value::Object(body)), COLUMNS)
        }
        CredentialsCommand::Delete { id } => Call::new(Method::DELETE, item(&id), None, COLUMNS),
    };
    super::run(&args.connection, call)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("portcullis: {message}");
    ExitCode::FAILURE
}

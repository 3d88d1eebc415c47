//! The command line: `serve`, `check-config`, `hash-key`, and the admin commands (`orgs`,
//! `teams`, `users`, `keys`, `credentials`, `usage`: see `cli_admin`) and `secrets`, with help
//! texts for a newcomer.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use portcullis_core::config::{Config, ConfigProblem, ProcessEnv};

const ABOUT: &str = "Portcullis: one OpenAI-compatible door between your applications and many \
LLM providers. Applications change only their base URL and key; the gateway holds the provider \
credentials, routes each request and fails over between deployments.";

const AFTER_HELP: &str = "\
Quick start (offline, with the built-in mock provider):
  portcullis serve --config examples/quickstart.yaml
  curl http://127.0.0.1:4000/v1/chat/completions \\
    -H 'Authorization: Bearer sk-portcullis-demo' -H 'Content-Type: application/json' \\
    -d '{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'

The config file is YAML; write secrets as ${ENV_VAR} references. See docs/configuration.md.";

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway. It reloads the config on SIGHUP and when the file changes, and shuts
    /// down gracefully on SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Check a config file and report every problem with its path; exits 1 if there is any.
    CheckConfig(ConfigArg),
    /// Print the SHA-256 of an API key, to put in `auth.keys[].sha256`. Reads the key from
    /// standard input when it is not given (so it stays out of your shell history).
    HashKey(HashKeyArgs),
    /// Manage virtual keys through a running gateway's admin API (needs a `store`).
    Keys(crate::cli_admin::keys::KeysArgs),
    /// Manage organizations through a running gateway's admin API.
    Orgs(crate::cli_admin::orgs::OrgsArgs),
    /// Manage teams through a running gateway's admin API.
    Teams(crate::cli_admin::teams::TeamsArgs),
    /// Manage users and their roles through a running gateway's admin API.
    Users(crate::cli_admin::users::UsersArgs),
    /// Manage provider credentials kept in the store, encrypted (secrets read from stdin).
    Credentials(crate::cli_admin::credentials::CredentialsArgs),
    /// Report usage (requests, errors, tokens, cost) per day, key, model, team, ... through a
    /// running gateway's admin API, as a table, JSON or CSV.
    Usage(crate::cli_admin::usage::UsageArgs),
    /// Master keys of stored provider credentials: generate one, or re-encrypt everything under
    /// the current one.
    Secrets(crate::cli_secrets::SecretsArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path of the YAML config file.
    #[arg(short, long, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Address to listen on, overriding `server.listen` (port 0 picks a free port).
    #[arg(short, long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct HashKeyArgs {
    /// The key to hash; read from standard input when omitted.
    pub key: Option<String>,
}

/// Loads the file as `serve` would. The store is opened (and migrated) only when providers
/// reference stored credentials, to decrypt them.
fn load_for_check(path: &std::path::Path) -> Result<Config, Vec<ConfigProblem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigProblem::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    let boot = Config::bootstrap(&text, &ProcessEnv)?;
    let (Some(store), Some(secrets)) = (&boot.store, &boot.secrets) else {
        return Config::from_yaml_with_credentials(&text, &ProcessEnv, None);
    };
    if boot.references.is_empty() {
        return Config::from_yaml_with_credentials(&text, &ProcessEnv, None);
    }
    let problem = |e: String| vec![ConfigProblem::new("store", e)];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| problem(e.to_string()))?;
    runtime.block_on(async {
        let store = crate::stored_keys::open(store)
            .await
            .map_err(|e| problem(format!("{e:#}")))?;
        let loaded =
            crate::stored_credentials::load(&text, Some(store.as_ref()), Some(&secrets.keyring))
                .await;
        store.close().await;
        loaded
    })
}

#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn check_config(args: &ConfigArg) -> ExitCode {
    match load_for_check(&args.config) {
        Ok(config) => {
            println!(
                "{}: OK ({} providers, {} models, {} keys{})",
                args.config.display(),
                config.providers.len(),
                config.models.len(),
                config.auth.keys.len(),
                if config.auth.master_key.is_some() {
                    " and a master key"
                } else {
                    ""
                },
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!(
                "{}: {} problem{}",
                args.config.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "the command's output")]
pub fn hash_key(args: HashKeyArgs) -> ExitCode {
    let key = match args.key {
        Some(k) => k,
        None => {
            let mut s = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut s) {
                eprintln!("cannot read the key from standard input: {e}");
                return ExitCode::FAILURE;
            }
            s
        }
    };
    let key = key.trim();
    if key.is_empty() {
        eprintln!("the key is empty");
        return ExitCode::FAILURE;
    }
    println!("{}", hex_digest(key));
    ExitCode::SUCCESS
}

fn hex_digest(key: &str) -> String {
    portcullis_core::auth::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

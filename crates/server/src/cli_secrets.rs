//! `portcullis secrets ...`: the master keys of stored provider credentials.
//!
//! - `generate` prints a new random master key (32 bytes, base64) for `secrets.master_key`.
//! - `rotate --config FILE` re-wraps every stored credential that is not sealed under the
//!   current master key, once the operator has made a new key current and moved the old one to
//!   `secrets.previous_master_keys`. It reports how many were re-encrypted and how many were
//!   already current; running it again changes nothing. A credential that no configured key
//!   opens is reported (exit status 1) and left as it is, the others are still re-wrapped.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use portcullis_core::config::{Config, ProcessEnv};
use portcullis_core::envelope::generate_master_key;
use secrecy::ExposeSecret;

use crate::cli::ConfigArg;
use crate::{stored_credentials, stored_keys};

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random master key (base64 of 32 bytes), for `secrets.master_key` (through an
    /// environment variable) or a `secrets.master_key_file`.
    Generate,
    /// Re-encrypt every stored credential under the current master key. First make the new
    /// key `secrets.master_key` and list the old one in `secrets.previous_master_keys`; after
    /// this command succeeds the old key can be removed.
    Rotate(ConfigArg),
}

pub fn run(args: SecretsArgs) -> ExitCode {
    match args.command {
        SecretsCommand::Generate => generate(),
        SecretsCommand::Rotate(config) => rotate(&config),
    }
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn generate() -> ExitCode {
    match generate_master_key() {
        Ok(key) => {
            println!("{}", key.expose_secret());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("portcullis: {e}");
            ExitCode::FAILURE
        }
    }
}

#[expect(clippy::print_stdout, reason = "the command's output")]
fn rotate(args: &ConfigArg) -> ExitCode {
    let path = &args.config;
    let fail = |message: String| {
        eprintln!("portcullis: {message}");
        ExitCode::FAILURE
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
    };
    let boot = match Config::bootstrap(&text, &ProcessEnv) {
        Ok(b) => b,
        Err(problems) => {
            eprintln!("portcullis: the config {} is invalid:", path.display());
            for p in problems {
                eprintln!("  {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let (Some(store_config), Some(secrets)) = (boot.store, boot.secrets) else {
        return fail(format!(
            "{} configures no store or no secrets.master_key: there is nothing to rotate",
            path.display()
        ));
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    let keyring = secrets.keyring;
    let outcome = runtime.block_on(async {
        let store = stored_keys::open(&store_config).await?;
        let report = stored_credentials::rotate(store.as_ref(), &keyring).await;
        store.close().await;
        anyhow::Ok(report?)
    });
    let report = match outcome {
        Ok(r) => r,
        Err(e) => return fail(format!("{e:#}")),
    };
    for (name, id, reason) in &report.failed {
        eprintln!("portcullis: credential {name} ({id}) was not re-encrypted: {reason}");
    }
    println!(
        "re-encrypted {} credential{} under master key {}; {} already current; {} failed",
        report.rewrapped,
        if report.rewrapped == 1 { "" } else { "s" },
        keyring.current_id(),
        report.current,
        report.failed.len(),
    );
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

//! `portcullis`: the gateway binary. Parses the command line and hands over to the command.

mod admin;
mod budget_seed;
mod cli;
mod cli_admin;
mod cli_secrets;
mod http;
mod listener;
mod logging;
mod metrics;
mod reload;
mod serve;
mod stored_credentials;
mod stored_keys;
mod usage;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: small, short-lived allocations dominate the request path, and glibc's malloc spent
/// about 15% of the gateway's instructions on them (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::CheckConfig(args) => cli::check_config(&args),
        cli::Command::HashKey(args) => cli::hash_key(args),
        cli::Command::Keys(args) => cli_admin::keys::run(args),
        cli::Command::Orgs(args) => cli_admin::orgs::run(args),
        cli::Command::Teams(args) => cli_admin::teams::run(args),
        cli::Command::Users(args) => cli_admin::users::run(args),
        cli::Command::Credentials(args) => cli_admin::credentials::run(args),
        cli::Command::Usage(args) => cli_admin::usage::run(args),
        cli::Command::Secrets(args) => cli_secrets::run(args),
    }
}

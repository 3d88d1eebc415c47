//! `portcullis`: the gateway binary. Parses the command line and hands over to the command.

mod cli;
mod http;
mod logging;
mod reload;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Serve(args) => serve::run(args),
        cli::Command::CheckConfig(args) => cli::check_config(&args),
        cli::Command::HashKey(args) => cli::hash_key(args),
    }
}

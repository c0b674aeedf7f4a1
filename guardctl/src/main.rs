//! guardctl: authguard's command line. See and lift bans, manage the allow
//! list, create the store, check the set-up.
//!
//! `main` parses the command line (clap), calls [`run`], and prints an error
//! once, with its context. Exit status: 0 ok, 1 runtime failure, 2 bad usage
//! or bad input. The decisions themselves live in authguard-core; this crate
//! only turns them into tables, JSON and exit codes.
#![forbid(unsafe_code)]

// First: its `out!` and `outln!` are used everywhere below.
#[macro_use]
mod output;
mod cli;
mod cmd;
mod complaints;
mod context;
mod crowdsec;
mod error;
mod firewall;
mod geo;
mod heartbeat;
mod ingest;
mod keyonly;
mod lockout;
mod mail;
mod metrics;
mod pam_file;
mod report;
mod scan;
mod sshd;
mod whois;

use clap::Parser;
pub use error::BadInput;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("guardctl: {err:#}");
            if err.chain().any(|e| e.is::<BadInput>()) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    let ctx = context::Context::load(cli.config.as_deref())?;
    cmd::dispatch(&ctx, cli.command)
}

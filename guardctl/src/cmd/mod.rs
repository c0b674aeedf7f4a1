//! One module per group of verbs; [`dispatch`] routes the parsed command.

mod allow;
mod bans;
mod check;
mod daemon;
mod geo;
mod keyonly;
mod metrics;
mod report;
mod scan;
mod status;

use crate::cli::Command;
use crate::context::Context;
use std::process::ExitCode;

pub fn dispatch(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Init => status::init(ctx),
        Command::Status(f) => status::status(ctx, f.json),
        Command::List { all, origin, json } => bans::list(ctx, all, origin.as_deref(), json.json),
        Command::Show {
            target,
            limit,
            json,
        } => bans::show(ctx, &target, limit, json.json),
        Command::Ban {
            target,
            duration,
            permanent,
            reason,
            force,
        } => bans::ban(ctx, &target, duration, permanent, &reason, force),
        Command::Unban {
            target,
            all: _,
            forget,
        } => bans::unban(ctx, target.as_ref(), forget),
        Command::Allow(a) => allow::run(ctx, a),
        Command::Keyonly(k) => keyonly::run(ctx, k),
        Command::Report(args) => report::run(ctx, args),
        Command::Geo(g) => geo::run(ctx, g),
        Command::Check { pam_file } => check::check(ctx, &pam_file),
        Command::Scan {
            input,
            events,
            show_missed,
            json,
        } => scan::scan(ctx, &input, events, show_missed, json.json),
        Command::Metrics { textfile } => metrics::metrics(ctx, textfile.as_deref()),
        Command::Daemon => daemon::daemon(ctx),
    }
}

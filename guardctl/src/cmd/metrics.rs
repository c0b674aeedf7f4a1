//! `guardctl metrics`: Prometheus metrics read from the store (no daemon
//! needed), printed, or written atomically into a textfile for
//! node_exporter's textfile collector.

use crate::context::Context;
use crate::metrics;
use anyhow::Context as _;
use authguard_core::time;
use std::path::Path;
use std::process::ExitCode;

pub fn metrics(ctx: &Context, textfile: Option<&Path>) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let text = metrics::render(&ctx.config, &store, time::now())
        .with_context(|| format!("cannot read the store {}", ctx.store_path().display()))?;
    match textfile {
        None => out!("{text}"),
        Some(path) => metrics::textfile::write_textfile(path, &text)
            .with_context(|| format!("cannot write {}", path.display()))?,
    }
    Ok(ExitCode::SUCCESS)
}

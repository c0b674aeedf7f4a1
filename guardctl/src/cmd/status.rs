//! `guardctl init` and `guardctl status`.

use crate::context::Context;
use crate::output::{key_value_table, print_json};
use anyhow::Context as _;
use authguard_core::store::{self, Store, schema::Migration};
use authguard_core::time;
use serde_json::json;
use std::process::ExitCode;

pub fn init(ctx: &Context) -> anyhow::Result<ExitCode> {
    let path = ctx.store_path();
    let done = Store::init(path)
        .with_context(|| format!("cannot initialise the store {}", path.display()))?;
    match done {
        Migration::UpToDate => println!(
            "store {} is up to date (schema {})",
            path.display(),
            store::SCHEMA_VERSION
        ),
        Migration::From(0) => {
            println!(
                "created store {} (schema {})",
                path.display(),
                store::SCHEMA_VERSION
            );
            ctx.log(&format!("store {} created", path.display()));
        }
        Migration::From(v) => {
            println!(
                "migrated store {} from schema {v} to {}",
                path.display(),
                store::SCHEMA_VERSION
            );
            ctx.log(&format!(
                "store {} migrated from schema {v}",
                path.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(ctx: &Context, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let now = time::now();
    let s = store.summary(now)?;
    let size = store::disk_size(ctx.store_path());
    let schema = store.schema_version()?;
    if as_json {
        print_json(&json!({
            "store": { "path": ctx.store_path(), "size_bytes": size, "schema_version": schema },
            "config": { "path": ctx.config_path, "found": ctx.config_found },
            "active_bans": s.active_bans,
            "failures_last_hour": s.failures_last_hour,
            "refused_last_hour": s.refused_last_hour,
            "attempts_total": s.attempts_total,
            "bans_total": s.bans_total,
            "allowed_networks": s.allowed + ctx.config.allow.len() as u64,
        }));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = key_value_table();
    let config = if ctx.config_found {
        ctx.config_path.display().to_string()
    } else {
        format!("{} (not found: defaults)", ctx.config_path.display())
    };
    for (k, v) in [
        ("active bans", s.active_bans.to_string()),
        ("failures, last hour", s.failures_last_hour.to_string()),
        ("refused, last hour", s.refused_last_hour.to_string()),
        ("attempts on record", s.attempts_total.to_string()),
        ("bans on record", s.bans_total.to_string()),
        (
            "allowed networks",
            format!(
                "{} (config {}, store {})",
                s.allowed + ctx.config.allow.len() as u64,
                ctx.config.allow.len(),
                s.allowed
            ),
        ),
        ("store", ctx.store_path().display().to_string()),
        ("store size", human_bytes(size)),
        ("schema version", schema.to_string()),
        ("config", config),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

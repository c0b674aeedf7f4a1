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
        Migration::UpToDate => outln!(
            "store {} is up to date (schema {})",
            path.display(),
            store::SCHEMA_VERSION
        ),
        Migration::From(0) => {
            outln!(
                "created store {} (schema {})",
                path.display(),
                store::SCHEMA_VERSION
            );
            ctx.log(&format!("store {} created", path.display()));
        }
        Migration::From(v) => {
            outln!(
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
    let daemon = daemon_state(ctx, &store, now);
    let firewall = firewall_state(ctx, &store, now);
    let countries = countries_state(ctx, &store, now);
    let fleet = fleet_state(ctx, &store, now);
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
            "daemon": daemon.json,
            "firewall": firewall.json,
            "countries": countries.json,
            "crowdsec": fleet.json,
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
        ("daemon", daemon.text),
        ("firewall", firewall.text),
        ("countries", countries.text),
        ("crowdsec", fleet.text),
        ("config", config),
    ] {
        t.add_row(vec![k.to_string(), v]);
    }
    outln!("{t}");
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

/// A status line for people and an object for programs.
pub(super) struct Part {
    pub(super) text: String,
    pub(super) json: serde_json::Value,
}

/// Is the daemon alive, and when did it last sync? From its heartbeat in
/// the store and `/proc`.
pub(super) fn daemon_state(ctx: &Context, store: &authguard_core::store::Store, now: i64) -> Part {
    let Some(beat) = crate::heartbeat::Heartbeat::last(store) else {
        return Part {
            text: "never ran (start `guardctl daemon` or authguard.service)".into(),
            json: json!({ "alive": false }),
        };
    };
    let alive = beat.is_alive(ctx.config.firewall.resync.0.0, now);
    let ago = crate::output::relative(beat.last_sync, now);
    let text = match (alive, &beat.last_error) {
        (true, None) => format!("running (pid {}, last sync {ago})", beat.pid),
        (true, Some(e)) => format!("running (pid {}), last sync {ago} FAILED: {e}", beat.pid),
        (false, _) => format!("NOT running (last seen {ago})"),
    };
    let json = json!({
        "alive": alive,
        "pid": beat.pid,
        "started": time::rfc3339(beat.started),
        "last_sync": time::rfc3339(beat.last_sync),
        "last_error": beat.last_error,
    });
    Part { text, json }
}

/// The fleet link: configured? reachable? last pull, decisions held,
/// skipped, last error. Never a credential.
pub(super) fn fleet_state(ctx: &Context, store: &Store, now: i64) -> Part {
    use crate::crowdsec::link::LinkState;
    let c = &ctx.config.crowdsec;
    if !c.enabled() {
        return Part {
            text: "off ([crowdsec] url is empty)".into(),
            json: json!({ "enabled": false }),
        };
    }
    let Some(state) = LinkState::last(store) else {
        return Part {
            text: format!("{}: no pull yet (is the daemon running?)", c.url),
            json: json!({ "enabled": true, "url": c.url, "reachable": null }),
        };
    };
    let pulled = state
        .last_pull
        .map_or("never".to_owned(), |t| crate::output::relative(t, now));
    let skipped: u64 = state.skipped.values().sum();
    let push = if c.pushes() {
        match &state.push_error {
            None => format!(", outbox {}", state.outbox),
            Some(e) => format!(", outbox {} (push FAILED: {e})", state.outbox),
        }
    } else {
        String::new()
    };
    let text = match &state.last_error {
        None => format!(
            "{}: reachable, last pull {pulled}, {} decisions held, {skipped} skipped{push}",
            c.url, state.held
        ),
        Some(e) => format!(
            "{}: UNREACHABLE ({e}); last good pull {pulled}, {} decisions held",
            c.url, state.held
        ),
    };
    let json = json!({
        "enabled": true,
        "url": c.url,
        "reachable": state.reachable,
        "last_pull": state.last_pull.map(time::rfc3339),
        "held": state.held,
        "skipped": state.skipped,
        "last_error": state.last_error,
        "pushes": c.pushes(),
        "outbox": state.outbox,
        "push_error": state.push_error,
    });
    Part { text, json }
}

/// Country data, blocked countries with their range counts, and the
/// key-only ones (`[geo] keyonly`).
fn countries_state(ctx: &Context, store: &Store, now: i64) -> Part {
    let keyonly: Vec<&str> = ctx.config.geo.keyonly.iter().map(|c| c.as_str()).collect();
    let (imported, blocked) = match (store.geo_imported(), store.geo_blocked()) {
        (Ok(imported), Ok(blocked)) => (imported, blocked),
        (Err(e), _) | (_, Err(e)) => {
            return Part {
                text: format!("cannot read the country data: {e}"),
                json: json!({ "error": e.to_string(), "keyonly": keyonly }),
            };
        }
    };
    let ranges = imported.ipv4_ranges + imported.ipv6_ranges;
    let data = match imported.imported {
        Some(when) if ranges > 0 => {
            format!(
                "{ranges} ranges imported {}",
                crate::output::relative(when, now)
            )
        }
        _ => "no country data".to_owned(),
    };
    let blocked_words = blocked_words(&blocked);
    let keyonly_words = match keyonly.as_slice() {
        [] => String::new(),
        list => format!("; key-only {}", list.join(", ")),
    };
    Part {
        text: format!("{data}; {blocked_words}{keyonly_words}"),
        json: json!({
            "ranges": ranges,
            "imported": imported.imported.map(time::rfc3339),
            "blocked": blocked.iter().map(|b| json!({"country": b.country, "ranges": b.ranges})).collect::<Vec<_>>(),
            "keyonly": keyonly,
        }),
    }
}

/// The blocked countries in a few words: each with its range count, or
/// how many when a line could not hold them (`geo list` names them all).
fn blocked_words(blocked: &[authguard_core::store::geo::BlockedCountry]) -> String {
    const NAMED: usize = 8;
    match blocked.len() {
        0 => "none blocked".to_owned(),
        n if n <= NAMED => {
            let each: Vec<String> = blocked
                .iter()
                .map(|b| format!("{} ({} ranges)", b.country, b.ranges))
                .collect();
            format!("blocked {}", each.join(", "))
        }
        n => {
            let ranges: u64 = blocked.iter().map(|b| b.ranges).sum();
            format!("{n} countries blocked ({ranges} ranges; `guardctl geo list` names them)")
        }
    }
}

/// Does the firewall hold exactly what the store says?
fn firewall_state(ctx: &Context, store: &authguard_core::store::Store, now: i64) -> Part {
    use crate::firewall::Desired;
    use authguard_core::config::FirewallBackend;
    if ctx.config.firewall.backend == FirewallBackend::None {
        return Part {
            text: "none (backend = \"none\")".into(),
            json: json!({ "backend": "none" }),
        };
    }
    // Only the bans are compared: the country ranges need not be read.
    let desired = Desired::bans_only(&ctx.config, store, now).unwrap_or_default();
    let want = &desired.bans;
    let (text, held_count, in_step) = match crate::firewall::listing::current_bans(
        crate::firewall::Units::of(&ctx.config),
    ) {
        Ok(Some(held)) => {
            let ok = desired.matches(&held, now);
            let text = if ok {
                format!("in step: {} elements in store and firewall", want.len())
            } else {
                format!(
                    "DIFFERS: store {} elements, firewall {} (the daemon repairs this at its next resync)",
                    want.len(),
                    held.len()
                )
            };
            (text, Some(held.len()), Some(ok))
        }
        Ok(None) => (
            format!(
                "table inet authguard MISSING (store has {} elements)",
                want.len()
            ),
            Some(0),
            Some(want.is_empty()),
        ),
        Err(e) => (
            format!(
                "cannot read nftables ({e:#}); store has {} elements",
                want.len()
            ),
            None,
            None,
        ),
    };
    let json = json!({
        "backend": "nftables",
        "store_elements": want.len(),
        "firewall_elements": held_count,
        "in_step": in_step,
    });
    Part { text, json }
}

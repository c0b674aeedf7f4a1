//! `guardctl daemon`: runs in the foreground under systemd and keeps the
//! firewall in step with the store.
//!
//! It holds one store connection for its whole life: it notices other
//! processes' commits through `PRAGMA data_version` (a read of a few
//! microseconds every 20 ms: no measurable CPU, no busy loop), and, as a
//! side effect, keeps SQLite from checkpointing the WAL at every PAM
//! module close. Each pass sends nftables only what changed (see
//! `firewall::keeper`).

use crate::context::Context;
use crate::firewall::keeper::Keeper;
use crate::firewall::{Change, Desired};
use crate::heartbeat::Heartbeat;
use crate::ingest::Ingest;
use authguard_core::config::FirewallBackend;
use authguard_core::store::metrics::Counter;
use authguard_core::store::{MetaKey, Store};
use authguard_core::time;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often the daemon looks at the store's change counter.
const POLL: Duration = Duration::from_millis(20);
/// How often old history is purged (`[store] retention`).
const PURGE_EVERY: Duration = Duration::from_secs(86_400);
/// Rows per purge transaction: small, so no login waits behind it.
const PURGE_BATCH: u32 = 500;

pub fn daemon(ctx: &Context) -> anyhow::Result<ExitCode> {
    let mut store = ctx.writer()?;
    // Says the store is held open from now on (login connections then leave
    // the WAL to SQLite's checkpoints: core's store::wal).
    if let Err(e) = store.set_meta(MetaKey::DaemonPid, &std::process::id().to_string()) {
        ctx.say(&format!("cannot record the daemon's pid: {e}"));
    }
    let resync = ctx.config.firewall.resync.0.0;
    let enabled = ctx.config.firewall.backend == FirewallBackend::Nftables;
    let mut keeper = Keeper::new(&ctx.config);
    let mut seen_version = None;
    let mut next_resync = Instant::now();
    let mut next_expiry = None;
    let started = time::now();
    let mut next_purge = Instant::now();
    let mut next_keyonly = Instant::now();
    let mut keyonly_error = None;
    let mut steer_changed = false;
    let mut pass_again = false;
    let mut last_resync = None;
    ctx.say(&format!(
        "daemon started (store {}, firewall {}, resync {})",
        ctx.store_path().display(),
        if enabled { "nftables" } else { "none" },
        ctx.config.firewall.resync.0
    ));
    if let Err(e) = store.set_push(ctx.config.crowdsec.pushes()) {
        ctx.say(&format!("crowdsec: cannot set the push outbox: {e}"));
    }
    let _link = ctx.config.crowdsec.enabled().then(|| {
        ctx.say(&format!(
            "crowdsec: pulling from {} every {}{}",
            ctx.config.crowdsec.url,
            ctx.config.crowdsec.pull_interval.0,
            if ctx.config.crowdsec.pushes() {
                format!(", pushing as machine {}", ctx.config.crowdsec.machine_id)
            } else {
                String::new()
            }
        ));
        crate::crowdsec::link::start(&ctx.config, ctx.sayer())
    });
    let _metrics = crate::metrics::textfile::start(&ctx.config, ctx.timeout(), ctx.sayer());
    let _reporter = crate::complaints::auto::start(ctx);
    if !ctx.config.report.auto.is_empty() {
        ctx.say(&format!(
            "report: automatic reports of {:?} bans, at most one per contact every {}, {} a day",
            ctx.config.report.auto, ctx.config.report.interval.0, ctx.config.report.max_per_day.0
        ));
    }
    if ctx.config.report.unresponsive == authguard_core::config::Unresponsive::Subnet {
        ctx.say(&format!(
            "report: subnets of contacts given up on get the subnet rule at {} offenders, refreshed every {}",
            ctx.config.report.unresponsive_subnet_offenders.0,
            authguard_core::duration::human(crate::complaints::auto::EVERY)
        ));
    }
    if _metrics.is_none() {
        ctx.say("metrics: no textfile written ([metrics] textfile is empty)");
    }
    let mut ingest = Ingest::start(&ctx.config, &store);
    ctx.say(&match &ingest {
        Some(i) => format!("sshd log: following {}", i.describe()),
        None => "sshd log: not read ([sshd_log] source = \"off\")".to_owned(),
    });
    loop {
        let now = time::now();
        store.renew_deadline();
        let banned_from_log = ingest
            .as_mut()
            .is_some_and(|i| read_log(ctx, i, &mut store, now));
        let version = store.data_version().ok();
        let resync_due = Instant::now() >= next_resync;
        let expiry_due = next_expiry.is_some_and(|e| e <= now);
        if version != seen_version
            || resync_due
            || expiry_due
            || banned_from_log
            || steer_changed
            || pass_again
        {
            seen_version = version;
            steer_changed = false;
            if let Err(e) = store.expire_due(now) {
                ctx.say(&format!("cannot mark expired bans: {e}"));
            }
            if resync_due {
                sweep(ctx, &mut store, now);
            }
            let mut last_error = None;
            if enabled {
                let pass = keeper.pass(&mut store, resync_due, now);
                // Waiting out a bulk write: look again next turn, changed or not.
                pass_again = matches!(pass, Ok(Change::Settling));
                last_error = report(ctx, pass);
                if resync_due {
                    last_resync = Some((now, last_error.is_none()));
                }
            }
            let applied = keeper.applied();
            next_expiry = applied.and_then(Desired::next_expiry);
            let beat = Heartbeat {
                pid: std::process::id(),
                started,
                last_sync: now,
                bans: applied.map_or(0, |d| d.bans.len()),
                last_error,
                last_resync: last_resync.map(|(at, _)| at),
                resync_ok: last_resync.map(|(_, ok)| ok),
            };
            if let Err(e) = beat.record(&mut store) {
                ctx.say(&format!("cannot record the heartbeat: {e}"));
            }
            if resync_due {
                next_resync = Instant::now() + resync;
            }
        }
        if Instant::now() >= next_keyonly {
            keyonly_pass(ctx, &mut store, &mut keyonly_error);
            if enabled && steering_is_stale(ctx, &keeper) {
                keeper.reload_next();
                steer_changed = true;
            }
            next_keyonly = Instant::now() + ctx.config.keyonly.min_interval.0.0;
        }
        if Instant::now() >= next_purge {
            purge(ctx, &mut store);
            next_purge = Instant::now() + PURGE_EVERY;
        }
        std::thread::sleep(POLL);
    }
}

/// Batches of sshd's log read per loop turn (the rest waits for the next turn,
/// 20 ms later): at most 10,000 lines between two firewall passes.
const LOG_BATCHES_PER_TURN: usize = 100;
/// The pause between two batches: longer than a waiting login's longest
/// back-off (1 ms), so a login always gets the write lock between them.
const LOG_BATCH_GAP: Duration = Duration::from_micros(1500);

/// Reads what sshd logged since the last turn; true when it made bans.
fn read_log(ctx: &Context, ingest: &mut Ingest, store: &mut Store, now: i64) -> bool {
    let mut banned = false;
    for _ in 0..LOG_BATCHES_PER_TURN {
        match ingest.pass(&ctx.config, store, now) {
            Ok(done) => {
                for ban in &done.bans {
                    ctx.say(&ban.log_line());
                }
                banned |= !done.bans.is_empty();
                if done.lines < crate::ingest::BATCH {
                    break;
                }
                std::thread::sleep(LOG_BATCH_GAP);
            }
            Err(e) => {
                // Nothing was saved: the same lines are retried next turn.
                // A lasting fault is said once, not every 20 ms.
                let message = format!("sshd log: cannot read or record events: {e:#}");
                if ingest.first_time(&message) {
                    ctx.say(&message);
                }
                break;
            }
        }
    }
    banned
}

/// Re-applies the key-only snippet when the set changed: at most once per
/// `[keyonly] min_interval`, so sshd is reloaded at most that often. A
/// fault is logged once until it changes.
fn keyonly_pass(ctx: &Context, store: &mut Store, last_error: &mut Option<String>) {
    let file = crate::keyonly::file_path(&ctx.config);
    if (!crate::keyonly::wanted(&ctx.config) && !file.exists())
        || !ctx.config.keyonly.sshd_config.exists()
    {
        return;
    }
    let result = crate::keyonly::rendered(&ctx.config, &*store, time::now())
        .and_then(|(set, text)| Ok((set.len(), crate::keyonly::apply(&ctx.config, &text)?)));
    match result {
        Ok((_, crate::keyonly::Applied::Unchanged)) => *last_error = None,
        Ok((networks, crate::keyonly::Applied::Written { reloaded })) => {
            *last_error = None;
            let what = if crate::keyonly::redirects(&ctx.config) {
                format!("key-only listener on port {}", ctx.config.keyonly.port)
            } else {
                format!("{networks} networks")
            };
            ctx.say(&format!(
                "keyonly: wrote {} ({what}){}",
                file.display(),
                if reloaded { ", sshd reloaded" } else { "" }
            ));
            if reloaded {
                count_reload(ctx, store);
            }
            if reloaded && crate::keyonly::redirects(&ctx.config) {
                // sshd re-executes on reload; steer only once it listens again.
                let port = ctx.config.keyonly.port;
                let deadline = Instant::now() + LISTENER_WAIT;
                while !crate::sshd::listening_on(port) && Instant::now() < deadline {
                    std::thread::sleep(POLL);
                }
            }
        }
        Err(e) => {
            let message = format!("keyonly: not applied: {e:#}");
            if last_error.as_deref() != Some(message.as_str()) {
                ctx.say(&message);
                *last_error = Some(message);
            }
        }
    }
}

/// Counts a reload of sshd for `guardctl metrics`; a fault is only said.
pub(crate) fn count_reload(ctx: &Context, store: &mut Store) {
    if let Err(e) = store.count(Counter::KeyonlyReloads, "", 1) {
        ctx.say(&format!("keyonly: cannot count the reload: {e}"));
    }
}

/// How long the daemon waits for sshd's key-only listener after a reload.
const LISTENER_WAIT: Duration = Duration::from_secs(5);

/// True when the firewall steers key-only sources but sshd's key-only
/// listener is gone, or the other way round: the table must be rebuilt.
fn steering_is_stale(ctx: &Context, keeper: &Keeper) -> bool {
    let Some(applied) = keeper.applied() else {
        return false;
    };
    let config = &ctx.config;
    let wanted = crate::keyonly::steers(config);
    if wanted != applied.keyonly.is_some() {
        ctx.say(&format!(
            "keyonly: sshd's listener on port {} is {}: {} key-only sources there",
            config.keyonly.port,
            if wanted { "up" } else { "gone" },
            if wanted {
                "steering"
            } else {
                "no longer steering"
            }
        ));
        return true;
    }
    false
}

/// The periodic recidive sweep (see `Store::recidive_sweep`).
fn sweep(ctx: &Context, store: &mut authguard_core::store::Store, now: i64) {
    match store.recidive_sweep(&ctx.config, now) {
        Ok(bans) => {
            for b in bans {
                ctx.say(&b.log_line());
            }
        }
        Err(e) => ctx.say(&format!("recidive sweep failed: {e}")),
    }
}

/// Deletes history older than `[store] retention`, a small batch at a
/// time with a pause between, so logins never queue behind it.
fn purge(ctx: &Context, store: &mut authguard_core::store::Store) {
    let retention = ctx.config.store.retention.0;
    let cutoff = time::before(time::now(), retention.0);
    let mut total = 0;
    loop {
        match store.purge_batch(cutoff, PURGE_BATCH) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => {
                ctx.say(&format!("retention: purge stopped: {e}"));
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if total > 0 {
        ctx.say(&format!(
            "retention: deleted {total} records older than {retention}"
        ));
    }
}

/// Logs what a sync did; returns the error text if it failed.
fn report(ctx: &Context, result: anyhow::Result<Change>) -> Option<String> {
    match result {
        Ok(Change::Nothing | Change::Settling) => {}
        Ok(Change::Steered { networks }) => {
            ctx.say(&format!(
                "firewall: key-only steering now covers {networks} networks"
            ));
        }
        Ok(Change::Incremental { added, removed }) => {
            for (verb, nets) in [("drop", added), ("lift", removed)] {
                // One line per network, but never a flood of them.
                if nets.len() > 20 {
                    ctx.say(&format!(
                        "firewall: {verb} {} networks ({}, …)",
                        nets.len(),
                        nets[0]
                    ));
                    continue;
                }
                for net in nets {
                    ctx.say(&format!("firewall: {verb} {net}"));
                }
            }
        }
        Ok(Change::Rebuilt {
            why,
            bans,
            geo_ranges,
        }) => {
            let countries = match geo_ranges {
                0 => String::new(),
                n => format!(" and {n} blocked country ranges"),
            };
            ctx.say(&format!(
                "firewall: rebuilt table inet authguard with {bans} bans{countries} ({why})"
            ));
        }
        // Never exit on a firewall fault: the next resync tries again.
        Err(e) => {
            ctx.say(&format!("firewall: not updated: {e:#}"));
            return Some(format!("{e:#}"));
        }
    }
    None
}

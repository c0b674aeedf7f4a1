//! The link thread: every `[crowdsec] pull_interval`, one pull from the
//! LAPI into the store. The first pull, and the first after any failure,
//! asks `startup=true` and reconciles: what the LAPI no longer holds ends
//! here too. Its own store connection, its own thread: a LAPI that hangs
//! delays nothing but the next pull. Each pass's state goes to `meta` key
//! `crowdsec.link` for `guardctl status` and `check`.

use super::decisions::{Collected, Judge};
use super::lapi::Lapi;
use authguard_core::config::Config;
use authguard_core::store::fleet::PullApplied;
use authguard_core::store::{Access, MetaKey, Store};
use authguard_core::time::{self, Timestamp};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Decisions written per store transaction: a 100,000-decision pull never
/// holds the write lock long enough to make a login wait.
pub const CHUNK: usize = 2_000;

/// What the link last did, as `guardctl status` shows it.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkState {
    /// The LAPI answered the last pull.
    pub reachable: bool,
    /// When a pull last succeeded.
    pub last_pull: Option<Timestamp>,
    /// Decisions held as active bans after it.
    pub held: u64,
    /// Decisions skipped by the last full pull and since, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The last failure, if the last pull failed.
    pub last_error: Option<String>,
}

impl LinkState {
    /// The state recorded in the store, if the link ever ran.
    pub fn last(store: &Store) -> Option<LinkState> {
        let json = store.meta(MetaKey::CrowdsecLink).ok().flatten()?;
        serde_json::from_str(&json).ok()
    }
}

/// A running link; stops (and joins) when dropped.
#[derive(Debug)]
pub struct Link {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a pull did, for the daemon's log.
#[derive(Debug, Default)]
pub struct PullReport {
    /// A full (`startup=true`) pull.
    pub startup: bool,
    /// What the store did.
    pub applied: PullApplied,
    /// Decisions the LAPI sent that this host holds.
    pub offered: usize,
    /// Skipped decisions, by reason, with one example each.
    pub skipped: BTreeMap<&'static str, (u64, String)>,
    /// Entries that were no decision at all.
    pub malformed: u64,
}

/// Starts the link for `config`, logging through `say`.
pub fn start(config: &Config, say: impl Fn(&str) + Send + 'static) -> Link {
    let stop = Arc::new(AtomicBool::new(false));
    let (config, flag) = (config.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("crowdsec-link".into())
        .spawn(move || run(&config, &flag, &say))
        .ok();
    Link { stop, thread }
}

fn run(config: &Config, stop: &AtomicBool, say: &dyn Fn(&str)) {
    let interval = config.crowdsec.pull_interval.0.0;
    let mut state = LinkState::default();
    let mut lapi: Option<Lapi> = None;
    let mut startup = true;
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let result = connect(config, &mut lapi).and_then(|l| pull(config, l, startup));
        match result {
            Ok(report) => {
                log_report(&report, say);
                state.reachable = true;
                state.last_pull = Some(time::now());
                state.last_error = None;
                if report.startup {
                    state.skipped.clear();
                }
                for (why, (n, _)) in &report.skipped {
                    *state.skipped.entry((*why).to_owned()).or_default() += n;
                }
                startup = false;
            }
            Err(e) => {
                let text = format!("{e:#}");
                if state.last_error.as_deref() != Some(text.as_str()) {
                    say(&format!("crowdsec: pull failed: {text}"));
                }
                state.reachable = false;
                state.last_error = Some(text);
                startup = true;
            }
        }
        record(config, &mut state);
        sleep_until(began + interval, stop);
    }
}

fn connect<'a>(config: &Config, lapi: &'a mut Option<Lapi>) -> anyhow::Result<&'a Lapi> {
    if lapi.is_none() {
        *lapi = Some(Lapi::new(&config.crowdsec)?);
    }
    Ok(lapi.as_ref().expect("just set"))
}

/// One pull into the store.
pub fn pull(config: &Config, lapi: &Lapi, startup: bool) -> anyhow::Result<PullReport> {
    let mut store = Store::open(
        &config.store.path,
        Access::Write,
        config.store.busy_timeout.0,
    )?;
    let allowed = store.allowed_networks(config)?;
    let now = time::now();
    let judge = Judge {
        config,
        allowed: &allowed,
        now,
    };
    let mut collected = Collected::default();
    lapi.stream(startup, &judge, &mut collected)?;
    let mut report = PullReport {
        startup,
        offered: collected.held_len(),
        malformed: collected.malformed,
        ..PullReport::default()
    };
    let mut deleted = collected.deleted.as_slice();
    for chunk in collected.pulled_chunks(CHUNK) {
        let (gone, rest) = deleted.split_at(deleted.len().min(CHUNK));
        deleted = rest;
        report.applied.add(store.apply_pull(&chunk, gone, now)?);
    }
    for gone in deleted.chunks(CHUNK) {
        report.applied.add(store.apply_pull(&[], gone, now)?);
    }
    if startup {
        let current: HashSet<i64> = collected.held_ids().collect();
        report.applied.ended += store.end_decisions_except(&current, now)?;
    }
    report.skipped = std::mem::take(&mut collected.skipped);
    Ok(report)
}

fn log_report(r: &PullReport, say: &dyn Fn(&str)) {
    let a = &r.applied;
    if a.added + a.ended + a.updated > 0 || r.startup {
        say(&format!(
            "crowdsec: {} pull: {} decisions to hold, {} new bans, {} ended, {} extended, {} already banned here",
            if r.startup { "full" } else { "delta" },
            r.offered,
            a.added,
            a.ended,
            a.updated,
            a.already_banned
        ));
    }
    for (why, (n, example)) in &r.skipped {
        say(&format!(
            "crowdsec: skipped {n} decision(s), {why}: e.g. {example}"
        ));
    }
    if r.malformed > 0 {
        say(&format!(
            "crowdsec: {} entries of the stream were not decisions",
            r.malformed
        ));
    }
}

fn record(config: &Config, state: &mut LinkState) {
    let Ok(mut store) = Store::open(
        &config.store.path,
        Access::Write,
        config.store.busy_timeout.0,
    ) else {
        return;
    };
    state.held = store.held_decisions(time::now()).unwrap_or(state.held);
    let json = serde_json::to_string(state).unwrap_or_default();
    let _ = store.set_meta(MetaKey::CrowdsecLink, &json);
}

fn sleep_until(deadline: Instant, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

//! The link thread: every `[crowdsec] pull_interval`, one pull from the
//! LAPI into the store, then (with a `machine_id`) the outbox pushed. The first pull, and the first after any failure,
//! asks `startup=true` and reconciles: what the LAPI no longer holds ends
//! here too. Its own store connection, its own thread: a LAPI that hangs
//! delays nothing but the next pull. Each pass's state goes to `meta` key
//! `crowdsec.link` for `guardctl status` and `check`.

use super::decisions::{Intake, Judge};
use super::lapi::Lapi;
use super::machine::Machine;
use authguard_core::config::Config;
use authguard_core::store::fleet::{PullApplied, Pulled};
use authguard_core::store::outbox::{OutboxAction, OutboxItem};
use authguard_core::store::{Access, MetaKey, Store};
use authguard_core::time::{self, Timestamp};
use std::collections::BTreeMap;
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
    /// Our bans and unbans waiting to reach the LAPI.
    pub outbox: u64,
    /// The last push failure, if the last push failed.
    pub push_error: Option<String>,
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
    /// Writing to the store (the rest of `took` is reading and judging).
    pub writing: Duration,
    /// The whole pull, the store's writes included.
    pub took: Duration,
    /// Open SSH sessions (their address, and the pulled ban covering it)
    /// that the fleet's ban spares: it drops new connections only.
    pub spared: Vec<(std::net::IpAddr, ipnet::IpNet)>,
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

/// What the loop carries from one pass to the next.
struct Loop<'a> {
    config: &'a Config,
    say: &'a dyn Fn(&str),
    state: LinkState,
    lapi: Option<Lapi>,
    machine: Option<Machine>,
    startup: bool,
}

fn run(config: &Config, stop: &AtomicBool, say: &dyn Fn(&str)) {
    let interval = config.crowdsec.pull_interval.0.0;
    let mut l = Loop {
        config,
        say,
        state: LinkState::default(),
        lapi: None,
        machine: None,
        startup: true,
    };
    let mut next_pull = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_pull {
            next_pull = Instant::now() + interval;
            l.pull_pass();
        }
        if config.crowdsec.pushes() {
            l.push_pass();
        }
        record(config, &mut l.state);
        // A failing push waits for the next pull: no retry storm.
        let wake_on_outbox = config.crowdsec.pushes() && l.state.push_error.is_none();
        wait(config, next_pull, wake_on_outbox, stop);
    }
}

impl Loop<'_> {
    fn pull_pass(&mut self) {
        let (config, startup) = (self.config, self.startup);
        match connect(config, &mut self.lapi).and_then(|l| pull(config, l, startup)) {
            Ok(report) => {
                log_report(&report, self.say);
                let state = &mut self.state;
                state.reachable = true;
                state.last_pull = Some(time::now());
                state.last_error = None;
                if report.startup {
                    state.skipped.clear();
                }
                for (why, (n, _)) in &report.skipped {
                    *state.skipped.entry((*why).to_owned()).or_default() += n;
                }
                self.startup = false;
            }
            Err(e) => {
                let text = format!("{e:#}");
                if self.state.last_error.as_deref() != Some(text.as_str()) {
                    (self.say)(&format!("crowdsec: pull failed: {text}"));
                }
                self.state.reachable = false;
                self.state.last_error = Some(text);
                self.startup = true;
            }
        }
    }

    fn push_pass(&mut self) {
        let config = self.config;
        let pushed = connect(config, &mut self.lapi)
            .and_then(|l| Ok((l, connect_machine(config, &mut self.machine)?)))
            .and_then(|(l, m)| push(config, l, m));
        match pushed {
            Ok(n) => {
                if n > 0 {
                    (self.say)(&format!(
                        "crowdsec: pushed {n} of this host's bans and unbans"
                    ));
                }
                self.state.push_error = None;
            }
            Err(e) => {
                let text = format!("{e:#}");
                if self.state.push_error.as_deref() != Some(text.as_str()) {
                    (self.say)(&format!(
                        "crowdsec: push failed (kept in the outbox): {text}"
                    ));
                }
                self.state.push_error = Some(text);
            }
        }
    }
}

/// How often a waiting link looks at the outbox: a new ban reaches the
/// LAPI within about this long, not a whole pull interval later.
const OUTBOX_POLL: Duration = Duration::from_millis(100);

/// Waits until the next pull is due, or (`wake_on_outbox`) until a ban of
/// ours is queued, or the daemon stops.
fn wait(config: &Config, next_pull: Instant, wake_on_outbox: bool, stop: &AtomicBool) {
    let reader = wake_on_outbox
        .then(|| {
            Store::open(
                &config.store.path,
                Access::Read,
                config.store.busy_timeout.0,
            )
            .ok()
        })
        .flatten();
    let queued = |r: &Store| {
        r.renew_deadline();
        r.outbox_depth().is_ok_and(|n| n > 0)
    };
    while !stop.load(Ordering::Relaxed) && Instant::now() < next_pull {
        std::thread::sleep(OUTBOX_POLL.min(next_pull.saturating_duration_since(Instant::now())));
        if reader.as_ref().is_some_and(queued) {
            return;
        }
    }
}

fn connect<'a>(config: &Config, lapi: &'a mut Option<Lapi>) -> anyhow::Result<&'a Lapi> {
    match lapi {
        Some(l) => Ok(l),
        None => Ok(lapi.insert(Lapi::new(&config.crowdsec)?)),
    }
}

fn connect_machine<'a>(
    config: &Config,
    machine: &'a mut Option<Machine>,
) -> anyhow::Result<&'a mut Machine> {
    match machine {
        Some(m) => Ok(m),
        None => Ok(machine.insert(Machine::new(&config.crowdsec)?)),
    }
}

/// Outbox entries delivered per pass, at most.
const PUSH_BATCH: u32 = 200;

/// Delivers the outbox in order, up to the first failure (kept, retried
/// next pass). Returns how many entries went.
pub fn push(config: &Config, lapi: &Lapi, machine: &mut Machine) -> anyhow::Result<usize> {
    let mut store = Store::open(
        &config.store.path,
        Access::Write,
        config.store.busy_timeout.0,
    )?;
    let mut sent = 0;
    for item in store.outbox_next(PUSH_BATCH)? {
        match deliver(&item, lapi, machine) {
            Ok(decision) => {
                let decision = decision.map(|id| (id, config.crowdsec.scenario.as_str()));
                store.outbox_delivered(&item, decision)?;
                sent += 1;
            }
            Err(e) => {
                let _ = store.outbox_failed(&item, &format!("{e:#}"));
                return Err(e);
            }
        }
    }
    Ok(sent)
}

/// One entry to the LAPI; the decision id a ban got there, if known.
fn deliver(item: &OutboxItem, lapi: &Lapi, machine: &mut Machine) -> anyhow::Result<Option<i64>> {
    let now = time::now();
    let ban = &item.ban;
    match item.action {
        // Ended before it could be told: nothing to share.
        OutboxAction::Ban if !ban.is_active(now) => Ok(None),
        OutboxAction::Ban => {
            // A retry: the first try may have got through before its answer
            // was lost. The LAPI's own list says; no second alert then.
            if item.tries > 0 {
                let ours =
                    lapi.decisions_for(&ban.source)?
                        .into_iter()
                        .find(|(_, origin, scenario)| {
                            origin == "authguard" && *scenario == machine.scenario()
                        });
                if let Some((id, _, _)) = ours {
                    return Ok(Some(id));
                }
            }
            machine.push_ban(ban, now)
        }
        OutboxAction::Unban => {
            if let Some(decision) = &ban.fleet {
                machine.delete_decision(decision.id)?;
            }
            Ok(None)
        }
    }
}

/// One pull into the store, a chunk at a time as the stream is read. (A
/// writer thread beside the reader gained nothing measurable: the LAPI's
/// sending is the pull's pace, and two cores are busy already.)
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
    let began = Instant::now();
    let mut report = PullReport {
        startup,
        ..PullReport::default()
    };
    let mut sessions = None;
    let (mut applied, mut spared, mut writing) =
        (PullApplied::default(), Vec::new(), Duration::ZERO);
    let mut sink = |new: Vec<Pulled>, deleted: Vec<i64>| -> anyhow::Result<()> {
        let t0 = Instant::now();
        let done = store.apply_pull(&new, &deleted, now)?;
        writing += t0.elapsed();
        if done.added > 0 {
            let open = sessions
                .get_or_insert_with(|| crate::sshd::established_from(&config.firewall.ports));
            spared.extend(spared_sessions(open, &new));
        }
        applied.add(done);
        Ok(())
    };
    let mut intake = Intake::new(CHUNK, &mut sink);
    lapi.stream(startup, &judge, &mut intake)?;
    let mut held = std::mem::take(&mut intake.held_ids);
    report.offered = held.len();
    report.malformed = intake.malformed;
    report.skipped = std::mem::take(&mut intake.skipped);
    drop(intake);
    if startup {
        held.sort_unstable();
        applied.ended += store.end_decisions_except(|id| held.binary_search(&id).is_ok(), now)?;
    }
    (report.applied, report.spared, report.writing) = (applied, spared, writing);
    report.took = began.elapsed();
    Ok(report)
}

/// Open sessions (`open`, to the guarded ports) inside a pulled ban.
fn spared_sessions(
    open: &[std::net::IpAddr],
    pulled: &[Pulled],
) -> Vec<(std::net::IpAddr, ipnet::IpNet)> {
    pulled
        .iter()
        .flat_map(|p| {
            open.iter()
                .filter(move |ip| p.net.contains(*ip))
                .map(move |ip| (*ip, p.net))
        })
        .collect()
}

fn log_report(r: &PullReport, say: &dyn Fn(&str)) {
    for (ip, net) in &r.spared {
        say(&format!(
            "crowdsec: {ip} has an open session to a guarded port: the fleet's ban of {} drops its new connections only",
            authguard_core::addr::display(net)
        ));
    }
    let a = &r.applied;
    if a.added + a.ended + a.updated > 0 || r.startup {
        say(&format!(
            "crowdsec: {} pull in {:.2} s (store {:.2} s): {} decisions to hold, {} new bans, {} ended, {} extended, {} already banned here",
            if r.startup { "full" } else { "delta" },
            r.took.as_secs_f64(),
            r.writing.as_secs_f64(),
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
    state.outbox = store.outbox_depth().unwrap_or(state.outbox);
    let json = serde_json::to_string(state).unwrap_or_default();
    let _ = store.set_meta(MetaKey::CrowdsecLink, &json);
}

//! The automatic pass (`[report] auto`; `guardctl report auto`, and the
//! daemon every [`EVERY`]): the bans the config names that no report has
//! covered yet, grouped by abuse contact, one email per contact listing
//! its sources with each one's own evidence.
//!
//! What keeps it from becoming a mail storm, by construction:
//! - at most one report per contact per `[report] interval`;
//! - at most `[report] max_per_day` automatic reports in any 24 hours,
//!   counted from the store before each one;
//! - at most [`MAX_BATCH`] sources per email (the rest wait their turn);
//! - never an allowed network, never a ban without this host's own
//!   evidence (the fleet's, an admin's, a subnet's are not reported),
//!   never a contact given up on as unresponsive.

use super::send::{self, Outgoing};
use super::{Host, abuse_contact, facts};
use crate::context::Context;
use crate::mail;
use crate::report::{self, BATCH_EXCERPT, Facts, MAX_BATCH, MAX_EXCERPT};
use authguard_core::config::AutoReport;
use authguard_core::store::Store;
use authguard_core::store::reports::{ReportedSource, SentReport};
use authguard_core::time::{self, Timestamp};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// How often the daemon runs the pass.
pub const EVERY: Duration = Duration::from_secs(600);
/// How far back a ban not yet reported is still reported.
const LOOKBACK: Duration = Duration::from_secs(7 * 86_400);
/// How far back one source's evidence reaches (unless reported since).
const EVIDENCE: Duration = Duration::from_secs(30 * 86_400);

/// What one pass did.
#[derive(Debug, Default)]
pub struct Pass {
    /// Emails sent (or, in a dry run, that would go): recipient,
    /// Message-ID, sources.
    pub sent: Vec<(String, String, usize)>,
    /// What was not reported this time, and why.
    pub skipped: Vec<(String, String)>,
}

/// The origins `[report] auto` names.
fn origins(auto: &[AutoReport]) -> Vec<&'static str> {
    if auto.contains(&AutoReport::Ban) {
        vec!["pam", "sshd-log", "recidive"]
    } else if auto.contains(&AutoReport::Recidive) {
        vec!["recidive"]
    } else {
        Vec::new()
    }
}

/// Runs one pass at `now`. With `dry_run`, `show` gets each message and
/// nothing is sent or recorded.
pub fn run(
    ctx: &Context,
    store: &mut Store,
    now: Timestamp,
    dry_run: bool,
    mut show: impl FnMut(&str),
) -> anyhow::Result<Pass> {
    let r = &ctx.config.report;
    let mut pass = Pass::default();
    let host = Host::read(ctx);
    let by_contact = candidates(ctx, store, &host, now, &mut pass)?;
    let day_ago = now.saturating_sub(86_400);
    let mut left = r
        .max_per_day
        .0
        .saturating_sub(store.auto_reports_since(day_ago)?);
    let interval = i64::try_from(r.interval.0.0.as_secs()).unwrap_or(i64::MAX);
    for (contact, mut sources) in by_contact {
        if let Some(last) = store.last_report_to(&contact)?
            && now < last.saturating_add(interval)
        {
            let why = format!(
                "reported {} ago; next after {} (interval)",
                authguard_core::duration::human(Duration::from_secs(
                    now.saturating_sub(last).unsigned_abs()
                )),
                r.interval.0
            );
            pass.skipped.push((contact, why));
            continue;
        }
        if let Some(j) = send::standing(ctx, store, &contact, now)?
            && let Some(why) = send::given_up_words(&j, &contact, ctx)
        {
            pass.skipped.push((contact, why));
            continue;
        }
        if left == 0 {
            pass.skipped.push((
                contact,
                format!(
                    "{} automatic reports in 24 hours already (max_per_day)",
                    r.max_per_day.0
                ),
            ));
            continue;
        }
        if sources.len() > MAX_BATCH {
            let held = sources.split_off(MAX_BATCH);
            pass.skipped.push((
                contact.clone(),
                format!(
                    "{} more sources wait for its next report (at most {MAX_BATCH} per email)",
                    held.len()
                ),
            ));
        }
        let messages = compose(ctx, &host, &contact, &sources, now);
        for out in messages {
            if left == 0 {
                pass.skipped
                    .push((contact.clone(), "max_per_day reached".into()));
                break;
            }
            if dry_run {
                show(&out.message);
            } else {
                send::deliver(ctx, store, &out)?;
            }
            left -= 1;
            let r = out.report;
            pass.sent.push((r.contact, r.message_id, r.sources.len()));
        }
    }
    Ok(pass)
}

/// The sources to report, by contact: the bans `[report] auto` names,
/// one per source, with local evidence, not allowed, with a contact.
fn candidates(
    ctx: &Context,
    store: &mut Store,
    host: &Host,
    now: Timestamp,
    pass: &mut Pass,
) -> anyhow::Result<BTreeMap<String, Vec<Facts>>> {
    let allowed = store.allowed_networks(&ctx.config)?;
    let bans = store.bans_to_report(
        time::before(now, LOOKBACK),
        &origins(&ctx.config.report.auto),
    )?;
    let mut seen = std::collections::BTreeSet::new();
    let mut by_contact: BTreeMap<String, Vec<Facts>> = BTreeMap::new();
    for ban in bans {
        let Ok(net) = authguard_core::addr::parse_target(&ban.source) else {
            continue;
        };
        let ip: IpAddr = net.addr();
        if !seen.insert(ban.source.clone()) {
            continue;
        }
        if allowed.iter().any(|a| a.contains(&ip)) {
            pass.skipped
                .push((ban.source, "in an allowed network".into()));
            continue;
        }
        let start = store
            .last_reported(&ban.source)?
            .unwrap_or(0)
            .max(time::before(now, EVIDENCE));
        let found = facts(ctx, store, host, ip, start, now)?;
        if !found.has_offences() {
            pass.skipped
                .push((ban.source, "no evidence of its own on this host".into()));
            continue;
        }
        match abuse_contact(ctx, store, ip, now) {
            Ok(Some(contact)) if mail::mailbox(&contact).is_ok() => {
                by_contact
                    .entry(contact.to_ascii_lowercase())
                    .or_default()
                    .push(found);
            }
            Ok(Some(bad)) => pass.skipped.push((
                ban.source,
                format!("whois named {bad:?}, not a mail address"),
            )),
            Ok(None) => pass
                .skipped
                .push((ban.source, "whois names no abuse contact".into())),
            Err(why) => pass
                .skipped
                .push((ban.source, format!("no abuse contact: {why}"))),
        }
    }
    Ok(by_contact)
}

/// The emails for one contact: one listing every source, or one X-ARF
/// message per source for a contact that wants X-ARF.
fn compose(
    ctx: &Context,
    host: &Host,
    contact: &str,
    sources: &[Facts],
    now: Timestamp,
) -> Vec<Outgoing> {
    let envelope = || host.envelope(ctx, Some(contact.to_owned()), String::new(), now, true);
    if ctx.config.report.wants_xarf(contact) {
        return sources
            .iter()
            .map(|f| {
                let env = envelope();
                Outgoing {
                    message: report::xarf(f, &env, now),
                    report: sent_report(
                        contact,
                        env.message_id,
                        "xarf",
                        now,
                        vec![send::reported(f, MAX_EXCERPT)],
                    ),
                }
            })
            .collect();
    }
    let env = envelope();
    let (message, lines) = match sources {
        [one] => (report::text(one, &env, now), MAX_EXCERPT),
        many => (report::batch(many, &env, now), BATCH_EXCERPT),
    };
    let quoted = sources.iter().map(|f| send::reported(f, lines)).collect();
    vec![Outgoing {
        message,
        report: sent_report(contact, env.message_id, "text", now, quoted),
    }]
}

/// What the store keeps of an automatic report to `contact`.
fn sent_report(
    contact: &str,
    message_id: String,
    format: &'static str,
    now: Timestamp,
    sources: Vec<ReportedSource>,
) -> SentReport {
    SentReport {
        sent: now,
        contact: contact.to_owned(),
        message_id,
        format,
        auto: true,
        sources,
    }
}

/// The daemon's automatic reporter (and refresher of the stricter subnets,
/// [`super::subnets`]): a pass at start and every [`EVERY`],
/// in its own thread on its own store connection, so whois and the MTA
/// never delay a firewall pass. Stops (and joins) when dropped.
#[derive(Debug)]
pub struct Reporter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the reporter, or None when it has nothing to do (`[report] auto`
/// empty and `unresponsive` not `"subnet"`).
pub fn start(ctx: &Context) -> Option<Reporter> {
    use std::sync::atomic::Ordering;
    let subnets = ctx.config.report.unresponsive == authguard_core::config::Unresponsive::Subnet;
    if ctx.config.report.auto.is_empty() && !subnets {
        return None;
    }
    let ctx = ctx.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            let done = ctx.writer().and_then(|mut store| {
                let pass = if ctx.config.report.auto.is_empty() {
                    Pass::default()
                } else {
                    run(&ctx, &mut store, time::now(), false, |_| ())?
                };
                super::subnets::refresh(&ctx, &mut store, time::now());
                Ok(pass)
            });
            match done {
                Ok(pass) => {
                    for (what, why) in &pass.skipped {
                        ctx.log(&format!("report: not reporting {what}: {why}"));
                    }
                }
                Err(e) => ctx.say(&format!("report: the automatic pass failed: {e:#}")),
            }
            crate::metrics::textfile::pause(EVERY, &stopped);
        }
    });
    Some(Reporter {
        stop,
        thread: Some(thread),
    })
}

//! `guardctl report ADDR [--since DUR] [--format text|xarf] [--to ADDR]`.

use crate::cli::ReportFormat as Format;
use crate::context::Context;
use crate::report::{self, Envelope, Facts};
use crate::whois;
use authguard_core::addr;
use authguard_core::store::whois::CachedContact;
use authguard_core::time;
use ipnet::IpNet;
use std::process::ExitCode;
use std::time::Duration;

pub fn report(
    ctx: &Context,
    target: &IpNet,
    since: Duration,
    format: Format,
    to: Option<String>,
) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let p = &ctx.config.policy;
    let ip = target.addr();
    let network = addr::display(&addr::source_of(ip, p.ipv4_prefix.0, p.ipv6_prefix.0));
    let now = time::now();
    let start = authguard_core::time::before(now, since);
    let source = addr::source_of(ip, p.ipv4_prefix.0, p.ipv6_prefix.0);
    let rows = store.evidence(&network, start)?;
    if !rows.iter().any(|r| r.outcome != "success") {
        anyhow::bail!(
            "nothing to report: no failed or refused attempts from {network} since {}",
            time::rfc3339(start)
        );
    }
    let host = host_name();
    let r = &ctx.config.report;
    let (to, to_note) = match to {
        Some(to) => (Some(to), String::new()),
        None => match abuse_contact(ctx, &network, ip, now) {
            Ok(Some(contact)) => (Some(contact), String::new()),
            Ok(None) => (
                None,
                "(whois names no abuse contact: find it at the address's registry)".into(),
            ),
            Err(why) => (None, format!("(unknown: {why})")),
        },
    };
    let envelope = Envelope {
        from: if r.from.is_empty() {
            format!("root@{host}")
        } else {
            r.from.clone()
        },
        reporter: if r.reporter.is_empty() {
            host
        } else {
            r.reporter.clone()
        },
        to,
        to_note,
    };
    let facts = Facts {
        address: ip.to_string(),
        network,
        rows,
        ports: ctx.config.firewall.ports.clone(),
        bans: local_bans(&store, &source, ip, start, now)?,
        redacted: if r.redact_users {
            report::local_accounts(&std::fs::read_to_string("/etc/passwd").unwrap_or_default())
        } else {
            Default::default()
        },
        zone: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
    };
    match format {
        Format::Text => out!("{}", report::text(&facts, &envelope, now)),
        Format::Xarf => out!("{}", report::xarf(&facts, &envelope, now)),
    }
    Ok(ExitCode::SUCCESS)
}

/// How long one whois exchange may take (connecting, then reading).
const WHOIS_TIMEOUT: Duration = Duration::from_secs(10);

/// The abuse contact for `network`: from the store's cache while younger
/// than `[report] whois_max_age`, else asked of whois and kept. A cache
/// that cannot be written is no reason to fail the report.
fn abuse_contact(
    ctx: &Context,
    network: &str,
    ip: std::net::IpAddr,
    now: time::Timestamp,
) -> Result<Option<String>, String> {
    let r = &ctx.config.report;
    let oldest = time::before(now, r.whois_max_age.0.0);
    let mut store = ctx.writer().map_err(|e| e.to_string())?;
    if let Ok(Some(cached)) = store.cached_contact(network, oldest) {
        return Ok(cached.contact);
    }
    let answer = whois::lookup(&r.whois_server, &ip.to_string(), WHOIS_TIMEOUT)?;
    let found = CachedContact {
        contact: answer.contact.clone(),
        server: answer.server,
        fetched: now,
    };
    if let Err(e) = store.remember_contact(network, &found) {
        ctx.say(&format!("the abuse contact was not cached: {e}"));
    }
    Ok(answer.contact)
}

/// The bans this host made of the source (or of networks holding it) that
/// were in force within the report's window; pulled ones are not its evidence.
fn local_bans(
    store: &authguard_core::store::Store,
    source: &IpNet,
    ip: std::net::IpAddr,
    start: time::Timestamp,
    now: time::Timestamp,
) -> anyhow::Result<Vec<authguard_core::store::bans::BanRecord>> {
    let history = store.history(source, ip, 0, now)?;
    Ok(history
        .bans
        .into_iter()
        .filter(|b| b.origin != authguard_core::policy::Origin::Crowdsec)
        .filter(|b| b.since >= start || b.ended.is_none_or(|e| e >= start))
        .collect())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

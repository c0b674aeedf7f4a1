//! The abuse-report workflow around [`crate::report`]'s content: gather one
//! source's facts from the store, find its abuse contact (whois, cached),
//! mail a complaint and record it ([`send`]), the automatic pass
//! ([`auto`]), and judging contacts ([`contacts`]).

pub mod auto;
pub mod contacts;
pub mod send;
pub mod subnets;

use crate::context::Context;
use crate::report::{self, Envelope, Facts};
use crate::whois;
use authguard_core::addr;
use authguard_core::store::Store;
use authguard_core::store::bans::BanRecord;
use authguard_core::store::whois::CachedContact;
use authguard_core::time::{self, Timestamp};
use std::net::IpAddr;
use std::time::Duration;

/// How long one whois exchange may take (connecting, then reading).
const WHOIS_TIMEOUT: Duration = Duration::from_secs(10);

/// What a complaint's author needs to know of this host, read once.
pub struct Host {
    /// This host's name.
    pub name: String,
    /// Its own account names (redacted from reports), if `redact_users`.
    pub accounts: std::collections::BTreeSet<Vec<u8>>,
    /// Its time zone.
    pub zone: jiff::tz::TimeZone,
}

impl Host {
    pub fn read(ctx: &Context) -> Host {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        Host {
            name,
            accounts: if ctx.config.report.redact_users {
                report::local_accounts(&std::fs::read_to_string("/etc/passwd").unwrap_or_default())
            } else {
                Default::default()
            },
            zone: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// The envelope of a complaint to `to` (or with `to_note` saying why
    /// there is no recipient).
    pub fn envelope(
        &self,
        ctx: &Context,
        to: Option<String>,
        to_note: String,
        now: Timestamp,
        auto: bool,
    ) -> Envelope {
        let r = &ctx.config.report;
        Envelope {
            from: if r.from.is_empty() {
                format!("root@{}", self.name)
            } else {
                r.from.clone()
            },
            reporter: if r.reporter.is_empty() {
                self.name.clone()
            } else {
                r.reporter.clone()
            },
            to,
            to_note,
            message_id: crate::mail::message_id(&self.name, now),
            auto,
        }
    }
}

/// `ip`'s source (the network it is counted under), as the store writes it.
pub fn source_of(ctx: &Context, ip: IpAddr) -> ipnet::IpNet {
    let p = &ctx.config.policy;
    addr::source_of(ip, p.ipv4_prefix.0, p.ipv6_prefix.0)
}

/// The facts about `ip` since `start`: its own records and this host's bans of it.
pub fn facts(
    ctx: &Context,
    store: &Store,
    host: &Host,
    ip: IpAddr,
    start: Timestamp,
    now: Timestamp,
) -> anyhow::Result<Facts> {
    let source = source_of(ctx, ip);
    let network = addr::display(&source);
    Ok(Facts {
        address: ip.to_string(),
        rows: store.evidence(&network, start)?,
        network,
        ports: ctx.config.firewall.ports.clone(),
        bans: local_bans(store, &source, ip, start, now)?,
        redacted: host.accounts.clone(),
        zone: host.zone.clone(),
    })
}

/// The bans this host made of the source (or of networks holding it) that
/// were in force within the report's window; pulled ones are not its evidence.
fn local_bans(
    store: &Store,
    source: &ipnet::IpNet,
    ip: IpAddr,
    start: Timestamp,
    now: Timestamp,
) -> anyhow::Result<Vec<BanRecord>> {
    let history = store.history(source, ip, 0, now)?;
    Ok(history
        .bans
        .into_iter()
        .filter(|b| b.origin != authguard_core::policy::Origin::Crowdsec)
        .filter(|b| b.since >= start || b.ended.is_none_or(|e| e >= start))
        .collect())
}

/// The abuse contact for `ip`: from the store's cache while younger than
/// `[report] whois_max_age`, else asked of whois and kept. `Ok(None)`: the
/// registry names none. A cache that cannot be written is no reason to
/// fail the report.
pub fn abuse_contact(
    ctx: &Context,
    store: &mut Store,
    ip: IpAddr,
    now: Timestamp,
) -> Result<Option<String>, String> {
    let r = &ctx.config.report;
    let network = addr::display(&source_of(ctx, ip));
    let oldest = time::before(now, r.whois_max_age.0.0);
    if let Ok(Some(cached)) = store.cached_contact(&network, oldest) {
        return Ok(cached.contact);
    }
    let answer = whois::lookup(&r.whois_server, &ip.to_string(), WHOIS_TIMEOUT)?;
    let found = CachedContact {
        contact: answer.contact.clone(),
        server: answer.server,
        fetched: now,
    };
    if let Err(e) = store.remember_contact(&network, &found) {
        ctx.say(&format!("the abuse contact was not cached: {e}"));
    }
    Ok(answer.contact)
}

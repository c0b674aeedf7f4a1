//! `guardctl list`, `show`, `ban`, `unban`.

use crate::BadInput;
use crate::context::Context;
use crate::output::{
    self, BAN_HEADER, attempt_json, ban_json, ban_row, outcome_word, print_json, table,
};
use authguard_core::addr;
use authguard_core::config::BanScope;
use authguard_core::store::Store;
use authguard_core::store::bans::{BanLength, BanOutcome, NewBan, Origin};
use authguard_core::syslog::untrusted;
use authguard_core::time;
use ipnet::IpNet;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

pub fn list(
    ctx: &Context,
    all: bool,
    origin: Option<&str>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let now = time::now();
    let mut bans = if all {
        store.all_bans()?
    } else {
        store.active_bans(now)?
    };
    if let Some(word) = origin {
        let origin = Origin::from_word(word);
        if let Origin::Other(_) = origin {
            return Err(crate::BadInput(format!(
                "--origin {word:?}: not an origin (pam, sshd-log, manual, recidive, subnet, crowdsec)"
            ))
            .into());
        }
        bans.retain(|b| b.origin == origin);
    }
    if as_json {
        print_json(&json!(
            bans.iter().map(|b| ban_json(b, now)).collect::<Vec<_>>()
        ));
    } else if bans.is_empty() {
        outln!(
            "{}",
            if all {
                "no bans on record"
            } else {
                "no active bans"
            }
        );
    } else {
        let mut t = table(&BAN_HEADER);
        for b in &bans {
            t.add_row(ban_row(b, now));
        }
        outln!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The source a typed address counts against: its prefix per the policy.
/// A CIDR is taken as given.
fn source_for(ctx: &Context, target: &IpNet) -> IpNet {
    if target.prefix_len() == target.max_prefix_len() {
        let p = &ctx.config.policy;
        addr::source_of(target.addr(), p.ipv4_prefix.0, p.ipv6_prefix.0)
    } else {
        *target
    }
}

pub fn show(ctx: &Context, target: &IpNet, limit: u32, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let now = time::now();
    let source = source_for(ctx, target);
    let h = store.history(&source, target.addr(), limit, now)?;
    let banned = h.bans.iter().find(|b| b.is_active(now));
    let allowed = ctx
        .config
        .allow
        .iter()
        .find(|c| c.0.contains(&target.addr()))
        .map(|c| addr::display(&c.0));
    let allowed = allowed.or(store.allowed_by(target.addr())?);
    let country = country_of(&store, target)?;
    if as_json {
        print_json(&json!({
            "address": addr::display(target),
            "source": h.source,
            "banned": banned.is_some(),
            "allowed": allowed,
            "country": country.as_ref().and_then(|c| c.as_deref()),
            "pending_failures": h.live_failures,
            "attempts_total": h.total_attempts,
            "bans": h.bans.iter().map(|b| ban_json(b, now)).collect::<Vec<_>>(),
            "attempts": h.attempts.iter().map(|a| attempt_json(a, now)).collect::<Vec<_>>(),
        }));
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "source {} ({} attempts on record, {} pending failures)",
        h.source,
        h.total_attempts,
        h.live_failures
    );
    match (banned, &allowed) {
        (_, Some(net)) => outln!("allowed by {net}: never banned"),
        (Some(b), None) => outln!("banned: {}", output::expires_cell(b, now)),
        (None, None) => outln!("not banned"),
    }
    if let Some(country) = country {
        outln!("country {}", country.as_deref().unwrap_or("unknown"));
    }
    if !h.bans.is_empty() {
        let mut t = table(&BAN_HEADER);
        for b in &h.bans {
            t.add_row(ban_row(b, now));
        }
        outln!("\nbans\n{t}");
    }
    if !h.attempts.is_empty() {
        let mut t = table(&["time", "when", "address", "user", "outcome", "service"]);
        for a in &h.attempts {
            t.add_row(vec![
                time::rfc3339(a.at),
                output::relative(a.at, now),
                a.address.clone(),
                untrusted(&a.user).into_owned(),
                outcome_word(a, now).to_owned(),
                a.service.clone(),
            ]);
        }
        outln!("\nattempts (latest {})\n{t}", h.attempts.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// The country of `target` (of its first address, for a network): None
/// when no country data was imported, `Some(None)` when no range holds it.
fn country_of(store: &Store, target: &IpNet) -> anyhow::Result<Option<Option<String>>> {
    if !store.has_geo()? {
        return Ok(None);
    }
    Ok(Some(store.geo_lookup(target.network())?))
}

pub fn ban(
    ctx: &Context,
    target: &IpNet,
    duration: Option<Duration>,
    permanent: bool,
    reason: &str,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let net = source_for(ctx, target);
    if let Some(allowed) = ctx
        .config
        .allow
        .iter()
        .find(|c| c.0.contains(&net.network()) && c.0.contains(&net.broadcast()))
    {
        return Err(BadInput(format!(
            "{} is in the allow list ({} in {}); allowed networks are never banned",
            addr::display(&net),
            addr::display(&allowed.0),
            ctx.config_path.display()
        ))
        .into());
    }
    let mut store = ctx.writer()?;
    if let Some(allowed) = store
        .allowed_by(net.network())?
        .filter(|_| store.allowed_by(net.broadcast()).ok().flatten().is_some())
    {
        return Err(BadInput(format!(
            "{} is in the allow list ({allowed}); run `guardctl allow remove {allowed}` first",
            addr::display(&net)
        ))
        .into());
    }
    if !force {
        let allowed = store.allowed_networks(&ctx.config)?;
        let session = crate::lockout::session_address();
        if let Some(why) = crate::lockout::ban::ban_risk(&net, session, &allowed) {
            return Err(BadInput(format!(
                "refusing to ban {}: {why}; pass --force to ban it anyway",
                addr::display(&net)
            ))
            .into());
        }
    }
    let length = match (permanent, duration) {
        (true, _) => BanLength::Permanent,
        (false, Some(d)) => BanLength::For(d),
        (false, None) => BanLength::Escalated,
    };
    let now = time::now();
    let new = NewBan {
        net,
        length,
        reason,
        origin: Origin::Manual,
        failures: 0,
    };
    let (verb, ban, subnet) = match store.ban(&ctx.config, &new, now)? {
        BanOutcome::Created(b, subnet) => ("banned", b, subnet),
        BanOutcome::Updated(b) => ("ban updated for", b, None),
    };
    // On disk before we say so.
    store.make_durable()?;
    let until = ban
        .expires
        .map(time::rfc3339)
        .unwrap_or_else(|| "lifted".into());
    outln!(
        "{verb} {} for {} (level {}, until {until})",
        ban.source,
        ban.length_text(),
        ban.level
    );
    if ban.origin == Origin::Recidive {
        outln!(
            "repeat offender: {} (all ports: {})",
            ban.reason,
            ban.scope == BanScope::All
        );
    }
    ctx.log(&ban.log_line());
    let mut touched = vec![net];
    if let Some(net) = subnet {
        outln!("subnet rule: banned {} ({})", net.source, net.reason);
        ctx.log(&net.log_line());
        touched.extend(crate::firewall::parse_source(&net.source));
    }
    crate::firewall::push_now(&ctx.config, &store, Some(&touched));
    Ok(ExitCode::SUCCESS)
}

pub fn unban(ctx: &Context, target: Option<&IpNet>, forget: bool) -> anyhow::Result<ExitCode> {
    let net = target.map(|t| source_for(ctx, t));
    let mut store = ctx.writer()?;
    let out = store.unban(net.as_ref(), forget, time::now())?;
    for source in &out.lifted {
        outln!("unbanned {source}");
        ctx.log(&format!("unban {source} (origin manual)"));
    }
    if forget {
        outln!("forgot {} records", out.forgotten);
    }
    if !out.lifted.is_empty() {
        let one = net.map(|n| [n]);
        crate::firewall::push_now(&ctx.config, &store, one.as_ref().map(|a| a.as_slice()));
    }
    match (net, out.lifted.is_empty(), out.covered_by.is_empty()) {
        (Some(net), true, false) => {
            return Err(anyhow::anyhow!(
                "{} has no ban of its own but is inside banned {}; unban that network instead",
                addr::display(&net),
                out.covered_by.join(", ")
            ));
        }
        (Some(net), true, true) => outln!("{} was not banned", addr::display(&net)),
        (None, true, _) => outln!("no active bans"),
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

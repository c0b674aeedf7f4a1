//! A new ban: its level and length (escalated by the source's earlier
//! bans, capped), the recidive override for repeat offenders, and the
//! subnet rule a ban may tip. Also when a ban stops refusing (expiry).

use super::{Facts, Ledger, Origin, escalation};
use crate::addr;
use crate::config::{BanScope, Config, PolicyConfig, RecidiveConfig, Unresponsive};
use crate::time::{self, Timestamp};
use ipnet::IpNet;
use std::time::Duration;

/// How long a new ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanLength {
    /// By the policy: `ban_time × factor^(earlier bans)`, capped.
    Escalated,
    /// Exactly this long.
    For(Duration),
    /// Until lifted.
    Permanent,
}

/// A ban asked for (by the threshold, an admin, the subnet rule).
#[derive(Debug, Clone)]
pub struct NewBan<'a> {
    /// The source or network to ban.
    pub net: IpNet,
    /// How long.
    pub length: BanLength,
    /// Why, in words.
    pub reason: &'a str,
    /// Who decided.
    pub origin: Origin,
    /// Failures that led to it.
    pub failures: u32,
}

/// A ban as the policy decided it, ready to be written down.
#[derive(Debug, Clone, PartialEq)]
pub struct BanPlan {
    /// The banned source or network.
    pub net: IpNet,
    /// When it ends by itself; `None`: permanent.
    pub expires: Option<Timestamp>,
    /// Why, in words (the recidive rule prefixes its own).
    pub reason: String,
    /// Who decided: the asker's origin, or the recidive rule.
    pub origin: Origin,
    /// Which ports it closes.
    pub scope: BanScope,
    /// How many bans the source will have had, this one included.
    pub level: u32,
    /// Failures that led to it.
    pub failures: u32,
}

/// True while a ban that ends by itself at `expires` (and was not ended
/// early) refuses logins.
pub fn is_active(expires: Option<Timestamp>, ended: Option<Timestamp>, now: Timestamp) -> bool {
    ended.is_none() && expires.is_none_or(|e| e > now)
}

/// When a ban of `length` made `now` ends, for a source with `earlier` bans.
pub fn expiry(
    policy: &PolicyConfig,
    length: BanLength,
    earlier: u32,
    now: Timestamp,
) -> Option<Timestamp> {
    match length {
        BanLength::Permanent => None,
        BanLength::For(d) => Some(time::after(now, d)),
        BanLength::Escalated => Some(time::after(now, escalation::ban_duration(policy, earlier))),
    }
}

/// The ban `new` asks for, as the policy makes it: its level from the
/// source's earlier bans, its length escalated (unless the admin gave one),
/// and, when this ban makes the source a repeat offender (`[recidive]`),
/// the long recidive ban instead.
pub fn plan_ban<F: Facts>(
    facts: &mut F,
    config: &Config,
    new: &NewBan<'_>,
    now: Timestamp,
) -> Result<BanPlan, F::Error> {
    let earlier = facts.earlier_bans(&new.net)?;
    let mut plan = BanPlan {
        net: new.net,
        expires: expiry(&config.policy, new.length, earlier, now),
        reason: new.reason.to_owned(),
        origin: new.origin.clone(),
        scope: BanScope::Ports,
        level: earlier.saturating_add(1),
        failures: new.failures,
    };
    // An explicit length from the admin (`--for`, `--permanent`) is kept as given.
    if new.length != BanLength::Escalated {
        return Ok(plan);
    }
    if let Some(n) = repeat_offence(facts, &config.recidive, &new.net, now)? {
        let r = &config.recidive;
        let long = time::after(now, r.ban_time.0.0);
        plan.expires = plan.expires.map(|e| e.max(long));
        plan.origin = Origin::Recidive;
        plan.reason = format!("{n} bans within {} ({})", r.window.0, new.reason);
        plan.scope = r.scope;
    }
    Ok(plan)
}

/// How many bans `source` will have had within the recidive window, this
/// new one included, when that reaches `[recidive] bans`.
fn repeat_offence<F: Facts>(
    facts: &mut F,
    recidive: &RecidiveConfig,
    source: &IpNet,
    now: Timestamp,
) -> Result<Option<u32>, F::Error> {
    if recidive.bans == 0 {
        return Ok(None);
    }
    let within = facts.bans_since(source, time::before(now, recidive.window.0.0))?;
    let with_this = within.saturating_add(1);
    Ok((with_this >= recidive.bans).then_some(with_this))
}

/// The subnet rule: once `subnet_offenders` distinct sources inside one
/// subnet (`subnet_ipv4_prefix`/`subnet_ipv6_prefix`) have been banned within
/// the recidive window, the subnet itself is banned (origin `subnet`).
/// With `[report] unresponsive = "subnet"`, a subnet held for an abuse
/// contact given up on tips at `unresponsive_subnet_offenders`
/// (if lower), even with the rule off. Asked after the ban of `banned` is
/// written down; the subnet's ban if that ban tipped it.
pub fn subnet_ban<F: Facts>(
    facts: &mut F,
    config: &Config,
    banned: &IpNet,
    now: Timestamp,
) -> Result<Option<BanPlan>, F::Error> {
    let p = &config.policy;
    let stricter = config.report.unresponsive == Unresponsive::Subnet;
    if p.subnet_offenders == 0 && !stricter {
        return Ok(None);
    }
    let subnet = subnet_of(p, banned);
    if subnet.prefix_len() >= banned.prefix_len() || facts.is_banned(&subnet, now)? {
        return Ok(None);
    }
    let (threshold, unresponsive) = if stricter {
        threshold_in(facts, config, &subnet)?
    } else {
        (p.subnet_offenders, None)
    };
    if threshold == 0 {
        return Ok(None);
    }
    let window = config.recidive.window.0;
    let sources = facts.banned_sources_inside(&subnet, time::before(now, window.0))?;
    if sources < threshold {
        return Ok(None);
    }
    let mut reason = format!("{sources} banned sources within {window}");
    if let Some(contact) = unresponsive {
        reason.push_str(&format!(
            " in a subnet of {contact}, an abuse contact that does not act on reports"
        ));
    }
    let new = NewBan {
        net: subnet,
        length: BanLength::Escalated,
        reason: &reason,
        origin: Origin::Subnet,
        failures: 0,
    };
    plan_ban(facts, config, &new, now).map(Some)
}

/// The subnet the subnet rule counts `net` in (`subnet_ipv4_prefix`,
/// `subnet_ipv6_prefix`).
pub fn subnet_of(policy: &PolicyConfig, net: &IpNet) -> IpNet {
    addr::source_of(
        net.network(),
        policy.subnet_ipv4_prefix.0,
        policy.subnet_ipv6_prefix.0,
    )
}

/// The subnet rule's threshold in `subnet` (0: off), and the unresponsive
/// contact that lowered it.
fn threshold_in<F: Facts>(
    facts: &mut F,
    config: &Config,
    subnet: &IpNet,
) -> Result<(u32, Option<String>), F::Error> {
    let usual = config.policy.subnet_offenders;
    let Some(contact) = facts.unresponsive_contact(subnet)? else {
        return Ok((usual, None));
    };
    let lower = config.report.unresponsive_subnet_offenders.0;
    Ok(match usual {
        n if n != 0 && n <= lower => (n, None),
        _ => (lower, Some(contact)),
    })
}

/// A ban as written down, and the subnet ban it tipped, if any.
pub type Banned<B> = (B, Option<B>);

/// Decides and writes down the ban `plan`, then the subnet ban it may tip:
/// the order every front end follows, so the subnet rule counts this ban.
pub fn ban_and_subnet<L: Ledger>(
    ledger: &mut L,
    config: &Config,
    plan: &BanPlan,
    now: Timestamp,
) -> Result<Banned<L::Ban>, L::Error> {
    let ban = ledger.record_ban(plan, now)?;
    let subnet = match subnet_ban(ledger, config, &plan.net, now)? {
        Some(subnet) => Some(ledger.record_ban(&subnet, now)?),
        None => None,
    };
    Ok((ban, subnet))
}

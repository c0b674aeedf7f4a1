//! One login's decision, in the order that keeps the owner in and an
//! offender out: allowed, already banned, key-only, the failure threshold.
//! The same threshold bans from sshd's log ([`failure_ban`]).

use super::ban::{BanLength, BanPlan, NewBan, plan_ban};
use super::{Facts, Origin, keyonly};
use crate::addr;
use crate::config::{Config, PolicyConfig};
use crate::time::{self, Timestamp};
use ipnet::IpNet;
use std::net::IpAddr;

/// What the policy decides for one login attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission<B> {
    /// In an allow list (the config's or the store's): admitted, not counted.
    Allowed {
        /// The allowed network.
        network: String,
    },
    /// A ban covers the address: refused before the password is checked.
    Banned(B),
    /// The source must use a public key: its password is refused unchecked,
    /// and counts against `source` as a failure of weight
    /// [`KEYONLY_PASSWORD_WEIGHT`] (a guess all the same: persistence under
    /// key-only earns the next, longer ban, not amnesty).
    KeyOnly {
        /// `past offender`, the mode (`untrusted`, `all`), or `country CC`.
        why: String,
        /// The source the refused password counts against.
        source: IpNet,
    },
    /// The source has reached the threshold: this attempt is refused and
    /// the source banned as planned.
    Ban(BanPlan),
    /// Let the password check go ahead; the attempt counts against `source`.
    Admit {
        /// The source the attempt counts against.
        source: IpNet,
        /// The weight of its failures within `find_time` before this one.
        failures: f64,
    },
}

/// What made a failure count, for the ban's origin and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger<'a> {
    /// The PAM module's attempts.
    Pam,
    /// sshd's log; `kind` is the last event's (`invalid-user`, …).
    Log {
        /// The event kind, as `guardctl scan --json` names it.
        kind: &'a str,
    },
}

impl Trigger<'_> {
    fn origin(self) -> Origin {
        match self {
            Trigger::Pam => Origin::Pam,
            Trigger::Log { .. } => Origin::SshdLog,
        }
    }

    fn reason(self, failures: u32, policy: &PolicyConfig) -> String {
        let within = &policy.find_time.0;
        match self {
            Trigger::Pam => format!("{failures} failures within {within}"),
            Trigger::Log { kind } => {
                format!("{failures} failures within {within} in sshd's log (last: {kind})")
            }
        }
    }
}

/// The allow-list network containing `ip`: the config's list first (no
/// store needed: an admin is let in even when the store is broken), then
/// the store's.
pub fn allowed<F: Facts>(
    facts: &mut F,
    config: &Config,
    ip: IpAddr,
) -> Result<Option<String>, F::Error> {
    if let Some(cidr) = config.allowed_by(ip) {
        return Ok(Some(addr::display(&cidr.0)));
    }
    facts.allowed_by(ip)
}

/// True when failures of this weight earn a ban.
pub fn reached(policy: &PolicyConfig, failures: f64) -> bool {
    failures >= f64::from(policy.max_failures.0)
}

/// A failure weight as the whole failures shown to people (rounded down).
pub fn whole(weight: f64) -> u32 {
    // Saturating float-to-int cast: weights are small and never negative.
    weight.floor() as u32
}

/// The source `ip` counts against under `policy`.
pub fn source_of(policy: &PolicyConfig, ip: IpAddr) -> IpNet {
    addr::source_of(ip, policy.ipv4_prefix.0, policy.ipv6_prefix.0)
}

/// The start of the failure window at `now`.
pub fn window_start(policy: &PolicyConfig, now: Timestamp) -> Timestamp {
    time::before(now, policy.find_time.0.0)
}

/// Decides one login attempt from `ip`.
pub fn admit<F: Facts>(
    facts: &mut F,
    config: &Config,
    ip: IpAddr,
    now: Timestamp,
) -> Result<Admission<F::Ban>, F::Error> {
    if let Some(network) = allowed(facts, config, ip)? {
        return Ok(Admission::Allowed { network });
    }
    if let Some(ban) = facts.active_ban_covering(ip, now)? {
        return Ok(Admission::Banned(ban));
    }
    let key_only = keyonly::reason(facts, config, ip, now)?;
    let source = source_of(&config.policy, ip);
    let (failures, plan) = failure_ban(facts, config, &source, Trigger::Pam, now)?;
    Ok(match (plan, key_only) {
        (Some(plan), _) => Admission::Ban(plan),
        (None, Some(why)) => Admission::KeyOnly { why, source },
        (None, None) => Admission::Admit { source, failures },
    })
}

/// The weight a password refused under key-only counts with: a whole
/// failure. The client was told to use a key (sshd offers only public-key
/// authentication to key-only sources when its snippet is in effect); a
/// password that still comes is a guess, and a real user who mistyped the
/// rule gets `max_failures` tries before a ban, as with any password.
pub const KEYONLY_PASSWORD_WEIGHT: f64 = 1.0;

/// The weight of `source`'s live failures within `find_time`, and the ban
/// they earn if they reach `max_failures`.
pub fn failure_ban<F: Facts>(
    facts: &mut F,
    config: &Config,
    source: &IpNet,
    trigger: Trigger<'_>,
    now: Timestamp,
) -> Result<(f64, Option<BanPlan>), F::Error> {
    let policy = &config.policy;
    let failures = facts.live_failures(source, window_start(policy, now))?;
    if !reached(policy, failures) {
        return Ok((failures, None));
    }
    let reason = trigger.reason(whole(failures), policy);
    let new = NewBan {
        net: *source,
        length: BanLength::Escalated,
        reason: &reason,
        origin: trigger.origin(),
        failures: whole(failures),
    };
    Ok((failures, Some(plan_ban(facts, config, &new, now)?)))
}

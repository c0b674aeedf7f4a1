//! `[policy]` and `[recidive]`: the numbers the ban rules in
//! [`crate::policy`] read.

use super::{Factor, Ipv4Prefix, Ipv6Prefix, MaxFailures, PositiveDuration};
use crate::duration::HumanDuration;
use serde::Deserialize;

/// `[recidive]`: a source banned `bans` times within `window` gets the long ban.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecidiveConfig {
    /// Bans within `window` that make a repeat offender (0: rule off).
    pub bans: u32,
    /// The window in which bans are counted.
    pub window: PositiveDuration,
    /// The repeat offender's ban (never shorter than its escalated ban).
    pub ban_time: PositiveDuration,
    /// Which ports the long ban closes.
    pub scope: BanScope,
}

/// Which ports a ban closes in the firewall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BanScope {
    /// The guarded ports (`[firewall] ports`).
    #[default]
    Ports,
    /// Every port, like fail2ban's recidive jail.
    All,
}

impl BanScope {
    /// The store's and JSON's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            BanScope::Ports => "ports",
            BanScope::All => "all",
        }
    }
}

impl Default for RecidiveConfig {
    fn default() -> Self {
        RecidiveConfig {
            bans: 3,
            window: PositiveDuration(HumanDuration::secs(7 * 86_400)),
            ban_time: PositiveDuration(HumanDuration::secs(30 * 86_400)),
            scope: BanScope::All,
        }
    }
}

/// `[policy]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Failures within `find_time` that earn a ban.
    pub max_failures: MaxFailures,
    /// The window in which failures are counted.
    pub find_time: PositiveDuration,
    /// The first ban's length.
    pub ban_time: PositiveDuration,
    /// Each earlier ban of the source multiplies the ban time by this.
    pub ban_time_factor: Factor,
    /// No escalated ban lasts longer than this.
    pub ban_time_max: PositiveDuration,
    /// IPv4 sources are the address truncated to this prefix.
    pub ipv4_prefix: Ipv4Prefix,
    /// IPv6 sources are the address truncated to this prefix.
    pub ipv6_prefix: Ipv6Prefix,
    /// Distinct banned sources within one subnet (inside the recidive
    /// window) that get the subnet itself banned; 0 turns the rule off.
    pub subnet_offenders: u32,
    /// The IPv4 subnet of the subnet rule.
    pub subnet_ipv4_prefix: Ipv4Prefix,
    /// The IPv6 subnet of the subnet rule.
    pub subnet_ipv6_prefix: Ipv6Prefix,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            max_failures: MaxFailures(5),
            find_time: PositiveDuration(HumanDuration::secs(600)),
            ban_time: PositiveDuration(HumanDuration::secs(600)),
            ban_time_factor: Factor(2.0),
            ban_time_max: PositiveDuration(HumanDuration::secs(90 * 86_400)),
            ipv4_prefix: Ipv4Prefix(32),
            ipv6_prefix: Ipv6Prefix(64),
            subnet_offenders: 0,
            subnet_ipv4_prefix: Ipv4Prefix(24),
            subnet_ipv6_prefix: Ipv6Prefix(48),
        }
    }
}

//! The policy: every rule that decides a login or a ban, as plain
//! functions over [`Facts`]. No I/O and no SQL here (as rustls keeps its
//! core): the store answers the questions on its open `BEGIN IMMEDIATE`
//! transaction and writes down what was decided; [`memory::MemoryFacts`]
//! answers them from memory for `guardctl scan` and as the tests' oracle.
//!
//! Where each rule lives:
//! - [`admission`]: allowed (the config's list, then the store's), already
//!   banned, key-only, the failure threshold: one login's [`Admission`].
//! - [`ban`]: a new ban's level and length (escalation, its cap), the
//!   recidive override, the subnet rule, expiry.
//! - [`keyonly`]: who must use a key, per address and as a set.
//! - [`contacts`]: whether an abuse contact acts on reports.
//! - [`escalation`]: the arithmetic `ban_time × factor^n`, capped.

pub mod admission;
pub mod ban;
pub mod contacts;
pub mod escalation;
pub mod fleet;
pub mod keyonly;
pub mod memory;
mod words;

pub use admission::{
    Admission, KEYONLY_PASSWORD_WEIGHT, Trigger, admit, allowed, failure_ban, reached, source_of,
    whole, window_start,
};
pub use ban::{
    BanLength, BanPlan, NewBan, ban_and_subnet, expiry, is_active, plan_ban, subnet_ban, subnet_of,
};
pub use escalation::{ban_duration, escalate};
pub use words::{EndReason, Origin};

use crate::time::Timestamp;
use ipnet::IpNet;
use std::net::IpAddr;

/// The questions a decision asks of what is on record. Sources are the
/// policy's aggregates (`203.0.113.7/32`, `2001:db8::/64`) or wider networks.
pub trait Facts {
    /// An active ban as this record keeps it (the store's `BanRecord`).
    type Ban;
    /// What asking can fail with (SQLite's error, for the store).
    type Error;

    /// The recorded allow-list network containing `ip`, if any (the
    /// config's list is the policy's to check).
    fn allowed_by(&mut self, ip: IpAddr) -> Result<Option<String>, Self::Error>;
    /// The active ban whose network contains `ip`, if any. Bans found to
    /// have run out may be written down as ended on the way.
    fn active_ban_covering(
        &mut self,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Option<Self::Ban>, Self::Error>;
    /// True when a ban of a network containing `ip` overlaps `[since, now]`
    /// (one an admin lifted does not count: the admin vouched for it; nor
    /// does one pulled from the fleet).
    fn past_offender(&mut self, ip: IpAddr, since: Timestamp) -> Result<bool, Self::Error>;
    /// The country `ip` is in, if country data is loaded.
    fn country_of(&mut self, ip: IpAddr) -> Result<Option<String>, Self::Error>;
    /// The weight of `source`'s failures that still count, after `since`.
    fn live_failures(&mut self, source: &IpNet, since: Timestamp) -> Result<f64, Self::Error>;
    /// How many bans `source` has on record.
    fn earlier_bans(&mut self, source: &IpNet) -> Result<u32, Self::Error>;
    /// How many bans of `source` began after `since`.
    fn bans_since(&mut self, source: &IpNet, since: Timestamp) -> Result<u32, Self::Error>;
    /// How many distinct sources inside `subnet` (not `subnet` itself) had
    /// a ban begin after `since`.
    fn banned_sources_inside(
        &mut self,
        subnet: &IpNet,
        since: Timestamp,
    ) -> Result<u32, Self::Error>;
    /// True when `net` itself (exactly that network) is banned now.
    fn is_banned(&mut self, net: &IpNet, now: Timestamp) -> Result<bool, Self::Error>;
    /// The abuse contact given up on that `subnet` is held for, if it is held
    /// (`[report] unresponsive = "subnet"`).
    fn unresponsive_contact(&mut self, subnet: &IpNet) -> Result<Option<String>, Self::Error>;
}

/// [`Facts`] that can also write a decided ban down, so the decisions that
/// follow one another (a ban, then the subnet rule it may tip) see it.
pub trait Ledger: Facts {
    /// Records `plan` as a ban starting `now` and starts its source again
    /// from zero failures; returns the ban as recorded.
    fn record_ban(&mut self, plan: &BanPlan, now: Timestamp) -> Result<Self::Ban, Self::Error>;
}

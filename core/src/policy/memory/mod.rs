//! The policy's facts kept in memory: failure windows and ban history,
//! indexed by source. `guardctl scan` replays a log through it to say whom
//! the policy would ban, and the tests use it as the oracle the store must
//! agree with. What the store writes down on a decision (see
//! `store::admission` and `store::log_events`) is mirrored here by
//! [`MemoryFacts::admit`] and [`MemoryFacts::log_failure`].

mod recent;

use super::{Admission, BanPlan, Facts, Ledger, Origin, Trigger};
use crate::addr;
use crate::config::{BanScope, Config};
use crate::time::Timestamp;
use ipnet::IpNet;
use recent::{Failure, Recent};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::hash::BuildHasher;
use std::net::IpAddr;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A ban as memory keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryBan {
    /// The banned source or network.
    pub net: IpNet,
    /// When it began.
    pub since: Timestamp,
    /// When it ends by itself (`None`: permanent).
    pub expires: Option<Timestamp>,
    /// Who decided.
    pub origin: Origin,
    /// Why, in words.
    pub reason: String,
    /// Which ports it closes.
    pub scope: BanScope,
    /// How many bans the source has had, this one included.
    pub level: u32,
}

#[derive(Debug)]
struct Kept {
    ban: MemoryBan,
    ended: Option<Timestamp>,
    lifted_by_admin: bool,
}

/// One source's failures on record.
#[derive(Debug, Default)]
struct SourceRecord {
    /// Every failure's weight on record, counted or refused (the store
    /// keeps refused attempts too).
    seen: f64,
    failures: Recent,
}

/// One network's bans (indices into `MemoryFacts::bans`). Kept apart from
/// the failures: few sources are banned, and this small map stays in cache.
#[derive(Debug, Default)]
struct NetBans {
    all: Vec<usize>,
    open: Vec<usize>,
}

/// What one attempt or log failure came to, replayed in memory.
#[derive(Debug, Clone, PartialEq)]
pub enum Replayed {
    /// Allowed: not counted.
    Allowed,
    /// A ban already covers the address.
    AlreadyBanned,
    /// Key-only: refused unchecked, counted as a failure.
    KeyOnly,
    /// Counted; the source's failures within `find_time` weigh this much.
    Counted(f64),
    /// It tipped this ban, and maybe the subnet's.
    Banned(MemoryBan, Option<MemoryBan>),
}

/// Failure windows and ban history in memory, answering [`Facts`].
#[derive(Debug, Default)]
pub struct MemoryFacts {
    countries: Vec<(IpNet, String)>,
    sources: FastMap<IpNet, SourceRecord>,
    banned: FastMap<IpNet, NetBans>,
    bans: Vec<Kept>,
    /// Ban indices by their network's first address, for the subnet rule.
    by_start: BTreeMap<u128, Vec<usize>>,
    /// The prefix lengths any ban has had, by family (v4, v6), sorted: a
    /// containment lookup tries only these.
    prefixes: [Vec<u8>; 2],
}

impl MemoryFacts {
    /// Nothing on record.
    pub fn new() -> Self {
        MemoryFacts::default()
    }

    /// Records that `net` is in country `cc`.
    pub fn country(&mut self, net: IpNet, cc: &str) {
        self.countries.push((net, cc.to_owned()));
    }

    /// Each source with a failure on record, and the weight of all its
    /// failures (counted, or refused while it was banned).
    pub fn failure_weights(&self) -> impl Iterator<Item = (IpNet, f64)> + '_ {
        self.sources
            .iter()
            .filter(|(_, r)| r.seen > 0.0)
            .map(|(net, r)| (*net, r.seen))
    }

    /// Records a live failure of `source`.
    pub fn record_failure(&mut self, source: IpNet, at: Timestamp, weight: f64, user: &[u8]) {
        let user = user_hash(user);
        let record = self.sources.entry(source).or_default();
        record.seen += weight;
        record.failures.push(Failure { at, weight, user });
    }

    /// A success: forgives `user`'s live failures from `source`.
    pub fn forgive(&mut self, source: &IpNet, user: &[u8]) {
        if let Some(record) = self.sources.get_mut(source) {
            record.failures.forgive(user_hash(user));
        }
    }

    /// An admin's unban of exactly `net`: its open bans end, its failures go.
    pub fn unban(&mut self, net: &IpNet, now: Timestamp) {
        if let Some(record) = self.sources.get_mut(net) {
            record.failures.clear();
        }
        let Some(bans) = self.banned.get_mut(net) else {
            return;
        };
        for i in std::mem::take(&mut bans.open) {
            let kept = &mut self.bans[i];
            if kept.ban.expires.is_none_or(|e| e > now) {
                kept.ended = Some(now);
                kept.lifted_by_admin = true;
            } else {
                kept.ended = kept.ban.expires;
            }
        }
    }

    /// One login attempt, decided and written down as the store's admission does.
    pub fn admit(&mut self, config: &Config, ip: IpAddr, user: &[u8], now: Timestamp) -> Replayed {
        let Ok(decision) = super::admit(self, config, ip, now);
        match decision {
            Admission::Allowed { .. } => Replayed::Allowed,
            Admission::Banned(_) => Replayed::AlreadyBanned,
            Admission::KeyOnly { source, .. } => {
                self.record_failure(source, now, super::KEYONLY_PASSWORD_WEIGHT, user);
                Replayed::KeyOnly
            }
            Admission::Ban(plan) => self.ban(config, &plan, now),
            Admission::Admit { source, failures } => {
                self.record_failure(source, now, 1.0, user);
                Replayed::Counted(failures + 1.0)
            }
        }
    }

    /// One failure of `weight` from sshd's log, written down as the store's
    /// `record_log_events` does.
    pub fn log_failure(
        &mut self,
        config: &Config,
        ip: IpAddr,
        weight: f64,
        kind: &str,
        at: Timestamp,
    ) -> Replayed {
        let Ok(allowed) = super::allowed(self, config, ip);
        if allowed.is_some() {
            return Replayed::Allowed;
        }
        let source = super::source_of(&config.policy, ip);
        let Ok(banned) = self.active_ban_covering(ip, at);
        if banned.is_some() {
            self.sources.entry(source).or_default().seen += weight;
            return Replayed::AlreadyBanned;
        }
        self.record_failure(source, at, weight, b"");
        let trigger = Trigger::Log { kind };
        let Ok((failures, plan)) = super::failure_ban(self, config, &source, trigger, at);
        match plan {
            Some(plan) => self.ban(config, &plan, at),
            None => Replayed::Counted(failures),
        }
    }

    fn ban(&mut self, config: &Config, plan: &BanPlan, now: Timestamp) -> Replayed {
        let Ok((ban, subnet)) = super::ban_and_subnet(self, config, plan, now);
        Replayed::Banned(ban, subnet)
    }

    /// The networks of `ip`'s family that have had bans and contain it.
    fn candidates(&self, ip: IpAddr) -> impl Iterator<Item = IpNet> + '_ {
        let ip = addr::canonical(ip);
        let family = usize::from(ip.is_ipv6());
        self.prefixes[family]
            .iter()
            .filter_map(move |&p| IpNet::new(ip, p).ok().map(|n| n.trunc()))
    }

    fn is_active(&self, i: usize, now: Timestamp) -> bool {
        let kept = &self.bans[i];
        super::is_active(kept.ban.expires, kept.ended, now)
    }
}

impl Facts for MemoryFacts {
    type Ban = MemoryBan;
    type Error = Infallible;

    /// Memory keeps no allow list of its own (the store's `guardctl allow
    /// add`): the config's is the policy's to check.
    fn allowed_by(&mut self, _ip: IpAddr) -> Result<Option<String>, Infallible> {
        Ok(None)
    }

    fn active_ban_covering(
        &mut self,
        ip: IpAddr,
        now: Timestamp,
    ) -> Result<Option<MemoryBan>, Infallible> {
        let mut ran_out = Vec::new();
        let mut found = None;
        'search: for net in self.candidates(ip) {
            let Some(bans) = self.banned.get(&net) else {
                continue;
            };
            for &i in &bans.open {
                if self.is_active(i, now) {
                    found = Some(self.bans[i].ban.clone());
                    break 'search;
                }
                ran_out.push((net, i));
            }
        }
        // Run out: written down as ended at their expiry, as the store does.
        for (net, i) in ran_out {
            self.bans[i].ended = self.bans[i].ban.expires;
            if let Some(bans) = self.banned.get_mut(&net) {
                bans.open.retain(|&j| j != i);
            }
        }
        Ok(found)
    }

    fn past_offender(&mut self, ip: IpAddr, since: Timestamp) -> Result<bool, Infallible> {
        let overlaps = |k: &Kept| {
            let end = k.ended.or(k.ban.expires).unwrap_or(Timestamp::MAX);
            let pulled = k.ban.origin == Origin::Crowdsec;
            !k.lifted_by_admin && !pulled && (k.ban.since >= since || end >= since)
        };
        Ok(self.candidates(ip).any(|net| {
            self.banned
                .get(&net)
                .is_some_and(|b| b.all.iter().any(|&i| overlaps(&self.bans[i])))
        }))
    }

    fn country_of(&mut self, ip: IpAddr) -> Result<Option<String>, Infallible> {
        let ip = addr::canonical(ip);
        Ok(self
            .countries
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|(_, cc)| cc.clone()))
    }

    fn live_failures(&mut self, source: &IpNet, since: Timestamp) -> Result<f64, Infallible> {
        Ok(self.sources.get_mut(source).map_or(0.0, |r| {
            r.failures.drop_until(since);
            r.failures.weight()
        }))
    }

    fn earlier_bans(&mut self, source: &IpNet) -> Result<u32, Infallible> {
        let n = self.banned.get(source).map_or(0, |b| b.all.len());
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn bans_since(&mut self, source: &IpNet, since: Timestamp) -> Result<u32, Infallible> {
        let n = self.banned.get(source).map_or(0, |b| {
            b.all
                .iter()
                .filter(|&&i| self.bans[i].ban.since > since)
                .count()
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn banned_sources_inside(
        &mut self,
        subnet: &IpNet,
        since: Timestamp,
    ) -> Result<u32, Infallible> {
        let (lo, hi) = (start_key(subnet), end_key(subnet));
        let inside: BTreeSet<IpNet> = self
            .by_start
            .range(lo..=hi)
            .flat_map(|(_, bans)| bans.iter().map(|&i| &self.bans[i].ban))
            .filter(|b| b.since > since && b.net != *subnet && end_key(&b.net) <= hi)
            .map(|b| b.net)
            .collect();
        Ok(u32::try_from(inside.len()).unwrap_or(u32::MAX))
    }

    fn is_banned(&mut self, net: &IpNet, now: Timestamp) -> Result<bool, Infallible> {
        Ok(self
            .banned
            .get(net)
            .is_some_and(|b| b.open.iter().any(|&i| self.is_active(i, now))))
    }

    /// Memory knows no abuse contacts: a replay is judged without them.
    fn unresponsive_contact(&mut self, _subnet: &IpNet) -> Result<Option<String>, Infallible> {
        Ok(None)
    }
}

impl Ledger for MemoryFacts {
    fn record_ban(&mut self, plan: &BanPlan, now: Timestamp) -> Result<MemoryBan, Infallible> {
        let ban = MemoryBan {
            net: plan.net,
            since: now,
            expires: plan.expires,
            origin: plan.origin.clone(),
            reason: plan.reason.clone(),
            scope: plan.scope,
            level: plan.level,
        };
        let i = self.bans.len();
        self.bans.push(Kept {
            ban: ban.clone(),
            ended: None,
            lifted_by_admin: false,
        });
        let bans = self.banned.entry(plan.net).or_default();
        bans.all.push(i);
        bans.open.push(i);
        if let Some(record) = self.sources.get_mut(&plan.net) {
            record.failures.clear();
        }
        self.by_start
            .entry(start_key(&plan.net))
            .or_default()
            .push(i);
        let family = usize::from(plan.net.network().is_ipv6());
        let lengths = &mut self.prefixes[family];
        if let Err(at) = lengths.binary_search(&plan.net.prefix_len()) {
            lengths.insert(at, plan.net.prefix_len());
        }
        Ok(ban)
    }
}

fn start_key(net: &IpNet) -> u128 {
    u128::from_be_bytes(addr::key_of(net.network()))
}

fn end_key(net: &IpNet) -> u128 {
    u128::from_be_bytes(addr::key_of(net.broadcast()))
}

fn user_hash(user: &[u8]) -> u64 {
    foldhash::fast::FixedState::default().hash_one(user)
}

#[cfg(test)]
mod oracle;

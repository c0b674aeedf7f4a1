//! Bans as packet-filter state: what the firewall should hold, computed
//! from the store and the config, and pushed by [`nft`].
//!
//! The store is the truth; the firewall is a cache of it. Every change is
//! one atomic nft batch, and a full rebuild runs at start, every `resync`
//! and after any nft error, so a flushed ruleset or a crash mid-way always
//! converges back. Between rebuilds the daemon sends only what changed
//! ([`Sync::update`]), so one new ban costs the same with 100,000 in place.
//!
//! Blocked countries' ranges ([`GeoBlock`]) are loaded only by a full
//! rebuild: at start, and whenever the store's geo revision changes.
//!
//! With `[keyonly] method = "redirect"` the table also steers key-only
//! sources to sshd's key-only listener ([`steering`]), once that listener
//! is up.

pub mod geo_sets;
pub mod keeper;
pub mod listing;
pub mod nft;
mod push;
pub mod steering;

pub use push::push_now;

use authguard_core::config::{BanScope, Config, FirewallConfig};
use authguard_core::geo::AddrRange;
use authguard_core::store::Store;
use authguard_core::store::changes::ActiveBan;
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use steering::Steering;

/// The table every authguard rule lives in.
pub const TABLE: &str = "inet authguard";

/// One banned network as the firewall holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When the ban ends (`None`: permanent).
    pub expires: Option<Timestamp>,
    /// True for bans with scope `all` (every port), false for the guarded ports.
    pub all_ports: bool,
    /// True when it drops new connections only (every ban of the source
    /// was pulled from the fleet): an open session is not cut.
    pub new_only: bool,
}

impl Entry {
    /// True when a wider ban with this entry makes a narrower one with
    /// `e` redundant: it closes as many ports and cuts as much.
    pub fn covers(&self, e: &Entry) -> bool {
        (self.all_ports || !e.all_ports) && (!self.new_only || e.new_only)
    }

    /// The bans of one source merged: the longest, the broadest. `None`
    /// when there are none.
    pub fn merged(bans: impl IntoIterator<Item = Entry>) -> Option<Entry> {
        bans.into_iter().reduce(|a, b| Entry {
            expires: later(a.expires, b.expires),
            all_ports: a.all_ports || b.all_ports,
            new_only: a.new_only && b.new_only,
        })
    }

    /// A stored ban's element.
    pub fn of(ban: &ActiveBan) -> Entry {
        Entry {
            expires: ban.expires,
            all_ports: ban.all_ports,
            new_only: ban.new_only,
        }
    }
}

/// The prefix lengths sources are banned at (`[policy] ipv4_prefix` and
/// `ipv6_prefix`). Bans of exactly these go into plain hash sets, which nft
/// changes in constant time; other networks go into interval sets, where
/// nft 1.0 reads the whole set back for every change (439 ms with 100,000
/// elements, against 14 ms for a hash set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    /// IPv4 source prefix length.
    pub v4: u8,
    /// IPv6 source prefix length.
    pub v6: u8,
}

impl Units {
    /// The units of a config.
    pub fn of(config: &Config) -> Units {
        Units {
            v4: config.policy.ipv4_prefix.0,
            v6: config.policy.ipv6_prefix.0,
        }
    }

    /// True when `net` is one source (goes into a hash set).
    pub fn is_unit(&self, net: &IpNet) -> bool {
        let unit = match net {
            IpNet::V4(_) => self.v4,
            IpNet::V6(_) => self.v6,
        };
        net.prefix_len() == unit
    }
}

/// The blocked countries' ranges (hash sets `geo4_LEN`, `geo6_LEN`), as of one geo
/// revision of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoBlock {
    /// The store's geo revision these ranges reflect.
    pub revision: i64,
    /// Coalesced ranges, IPv4 first.
    pub ranges: Vec<AddrRange>,
    /// The networks of `[geo] keyonly` countries, when the firewall steers
    /// key-only sources (else empty).
    pub keyonly: Vec<IpNet>,
}

impl GeoBlock {
    /// Reads the blocked countries' ranges (and the key-only countries'
    /// networks, if steered). The revision is read first: a change made
    /// meanwhile is then loaded again (harmless), never missed.
    pub fn load(config: &Config, store: &Store) -> anyhow::Result<GeoBlock> {
        let revision = store.geo_revision()?;
        let ranges = store.geo_blocked_ranges()?;
        let keyonly = if crate::keyonly::redirects(config) {
            store.geo_networks_of(&config.geo.keyonly)?
        } else {
            Vec::new()
        };
        Ok(GeoBlock {
            revision,
            ranges,
            keyonly,
        })
    }
}

/// What the firewall should hold at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Banned networks.
    pub bans: BTreeMap<IpNet, Entry>,
    /// Networks accepted ahead of any drop.
    pub allowed: Vec<IpNet>,
    /// Blocked countries' ranges, shared (they can be large and rarely change).
    pub geo: Arc<GeoBlock>,
    /// Key-only steering, when on and sshd's key-only listener is up.
    pub keyonly: Option<Steering>,
}

impl Desired {
    /// The whole table's state: [`Desired::bans_only`], the blocked
    /// countries' ranges as given ([`GeoBlock::load`] or the daemon's copy),
    /// and the key-only steering.
    pub fn load(
        config: &Config,
        store: &Store,
        now: Timestamp,
        geo: Arc<GeoBlock>,
    ) -> anyhow::Result<Desired> {
        let mut desired = Desired::bans_only(config, store, now)?;
        desired.keyonly = Desired::steering(config, store, now, &geo)?;
        desired.geo = geo;
        Ok(desired)
    }

    /// The active bans and the allow lists only (no countries, no
    /// steering): what a change to single bans needs.
    pub fn bans_only(config: &Config, store: &Store, now: Timestamp) -> anyhow::Result<Desired> {
        let allowed = Desired::allowed(config, store)?;
        let bans = store.active_ban_entries(now, |b| {
            parse_source(&b.source).map(|net| (net, Entry::of(&b)))
        })?;
        Ok(Desired::from_parts(bans, allowed, Units::of(config)))
    }

    /// The key-only steering the firewall should hold: none unless
    /// [`crate::keyonly::steers`].
    pub fn steering(
        config: &Config,
        store: &Store,
        now: Timestamp,
        geo: &GeoBlock,
    ) -> anyhow::Result<Option<Steering>> {
        if !crate::keyonly::steers(config) {
            return Ok(None);
        }
        let set = store.key_only_set(config, now, geo.keyonly.clone())?;
        Ok(Some(Steering {
            port: config.keyonly.port,
            set,
        }))
    }

    /// The config's `allow` networks and the store's allow list.
    pub fn allowed(config: &Config, store: &Store) -> anyhow::Result<Vec<IpNet>> {
        Ok(store.allowed_networks(config)?)
    }

    /// Builds the state from raw parts: drops bans inside an allowed network
    /// (allowed networks never enter a set), merges two bans of one network
    /// (the longer, the broader), and drops a wider-than-source network
    /// covered by a wider one of the same or broader scope (interval sets
    /// refuse overlapping elements). Sources are never dropped for being
    /// covered: they live in hash sets, and outlive the network ban.
    pub fn from_parts(
        bans: impl IntoIterator<Item = (IpNet, Entry)>,
        allowed: Vec<IpNet>,
        units: Units,
    ) -> Desired {
        let mut merged: BTreeMap<IpNet, Entry> = BTreeMap::new();
        for (net, entry) in bans {
            if allowed.iter().any(|a| a.contains(&net)) {
                continue;
            }
            let slot = merged.entry(net).or_insert(entry);
            *slot = Entry::merged([*slot, entry]).unwrap_or(entry);
        }
        // A covering network is the net truncated to a shorter prefix that is
        // in the map: look up only the network prefix lengths in use (usually
        // none or one), so 100,000 bans cost 100,000 × a few lookups, not n².
        let lengths: BTreeSet<(bool, u8)> = merged
            .keys()
            .filter(|n| !units.is_unit(n))
            .map(|n| (matches!(n, IpNet::V4(_)), n.prefix_len()))
            .collect();
        let covered: Vec<IpNet> = merged
            .iter()
            .filter(|(net, e)| {
                !units.is_unit(net)
                    && lengths.iter().any(|&(v4, len)| {
                        v4 == matches!(net, IpNet::V4(_))
                            && len < net.prefix_len()
                            && IpNet::new(net.network(), len)
                                .ok()
                                .and_then(|wider| merged.get(&wider.trunc()))
                                .is_some_and(|w| w.covers(e))
                    })
            })
            .map(|(net, _)| *net)
            .collect();
        for net in covered {
            merged.remove(&net);
        }
        Desired {
            bans: merged,
            allowed,
            geo: Arc::default(),
            keyonly: None,
        }
    }

    /// True when the kernel's ban elements are these bans: none stale, none
    /// missing (a ban ending within two seconds may already be gone).
    pub fn matches(&self, held: &BTreeSet<IpNet>, now: Timestamp) -> bool {
        let stale = held.iter().any(|n| !self.bans.contains_key(n));
        let missing = self
            .bans
            .iter()
            .any(|(n, e)| !held.contains(n) && e.expires.is_none_or(|e| e > now + 2));
        !stale && !missing
    }

    /// The earliest ban expiry, when the daemon should look again.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.bans.values().filter_map(|e| e.expires).min()
    }
}

/// Keeps nftables in step with the store: small add/delete batches for
/// changes, a full rebuild when the kernel's table differs or a batch fails.
#[derive(Debug)]
pub struct Sync {
    firewall: FirewallConfig,
    geo_scope: BanScope,
    units: Units,
    applied: Option<Desired>,
}

/// What one sync did, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Already in step.
    Nothing,
    /// Elements added and removed.
    Incremental {
        added: Vec<IpNet>,
        removed: Vec<IpNet>,
    },
    /// Only the key-only steering's elements changed: now this many networks.
    Steered { networks: usize },
    /// A bulk write (a fleet's full pull) is still going on: the rebuild
    /// waits until it rests, so it happens once. Pass again soon.
    Settling,
    /// The table was (re)built whole, and why.
    Rebuilt {
        why: String,
        bans: usize,
        /// Blocked countries' ranges loaded.
        geo_ranges: usize,
    },
}

impl Sync {
    /// A syncer that has applied nothing yet (the first sync rebuilds).
    pub fn new(config: &Config) -> Sync {
        Sync {
            firewall: config.firewall.clone(),
            geo_scope: config.geo.scope,
            units: Units::of(config),
            applied: None,
        }
    }

    /// What the firewall holds, as far as this syncer knows.
    pub fn applied(&self) -> Option<&Desired> {
        self.applied.as_ref()
    }

    /// Brings the firewall to `desired`. With `verify`, first compares with
    /// what the kernel holds (a flushed ruleset is noticed there).
    pub fn sync(
        &mut self,
        desired: Desired,
        verify: bool,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        // Before the first rebuild there is nothing to compare: it replaces all.
        if verify && self.applied.is_some() {
            match listing::current_bans(self.units)? {
                None => return self.rebuild(desired, "table missing", now),
                Some(held) if !desired.matches(&held, now) => {
                    return self.rebuild(desired, "table differs from the store", now);
                }
                Some(_) => {}
            }
        }
        let Some(applied) = &self.applied else {
            return self.rebuild(desired, "start", now);
        };
        if applied.allowed != desired.allowed {
            return self.rebuild(desired, "allow list changed", now);
        }
        if applied.geo.revision != desired.geo.revision {
            return self.rebuild(desired, "country blocks changed", now);
        }
        let mut changes: Vec<(IpNet, Option<Entry>)> = applied
            .bans
            .keys()
            .filter(|n| !desired.bans.contains_key(n))
            .map(|n| (*n, None))
            .collect();
        changes.extend(
            desired
                .bans
                .iter()
                .filter(|(n, e)| applied.bans.get(n) != Some(e))
                .map(|(n, e)| (*n, Some(*e))),
        );
        if let Err(why) = self.steer(desired.keyonly.clone()) {
            return self.rebuild(desired, &why, now);
        }
        // Many changes at once (a fleet's full pull): one atomic rebuild.
        if changes.len() > REBUILD_OVER {
            return self.rebuild(desired, "many bans changed", now);
        }
        self.update(changes, now)
    }

    /// Applies changes to single networks: each gets its new entry (`None`:
    /// no longer banned). The caller has merged and allow-filtered them.
    pub fn update(
        &mut self,
        changes: Vec<(IpNet, Option<Entry>)>,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        let Some(applied) = &mut self.applied else {
            anyhow::bail!("nothing applied yet: rebuild first");
        };
        let mut added = Vec::new();
        let mut gone = Vec::new();
        for (net, new) in changes {
            let old = match new {
                Some(e) => applied.bans.insert(net, e),
                None => applied.bans.remove(&net),
            };
            if old == new {
                continue;
            }
            // A changed ban is removed (from the set it was in) and added again.
            gone.extend(old.map(|e| (net, e)));
            added.extend(new.map(|e| (net, e)));
        }
        if added.is_empty() && gone.is_empty() {
            return Ok(Change::Nothing);
        }
        match nft::apply(&nft::render_changes(&added, &gone, self.units, now)) {
            Ok(()) => Ok(Change::Incremental {
                added: added.into_iter().map(|(n, _)| n).collect(),
                removed: gone
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| !applied.bans.contains_key(n))
                    .collect(),
            }),
            Err(e) => {
                let desired = self.applied.take().unwrap_or_default();
                self.rebuild(desired, &format!("batch failed ({e})"), now)
            }
        }
    }

    /// Brings the key-only steering to `wanted` with one small batch. `Err`
    /// says why the table must be rebuilt instead (its rules change, or nft
    /// refused the batch).
    fn steer(&mut self, wanted: Option<Steering>) -> Result<(), String> {
        let Some(applied) = &mut self.applied else {
            return Err("start".into());
        };
        let script = match (&applied.keyonly, &wanted) {
            (None, None) => return Ok(()),
            (Some(old), Some(new)) => new.changes_from(old),
            _ => None,
        };
        let Some(script) = script else {
            return Err("key-only steering changed".into());
        };
        if !script.is_empty() {
            nft::apply(&script).map_err(|e| format!("key-only batch failed ({e})"))?;
        }
        applied.keyonly = wanted;
        Ok(())
    }

    /// [`Sync::steer`], rebuilding the table when that cannot be done by
    /// elements alone.
    pub fn update_steering(
        &mut self,
        wanted: Option<Steering>,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        if self.applied.as_ref().is_some_and(|a| a.keyonly == wanted) {
            return Ok(Change::Nothing);
        }
        match self.steer(wanted.clone()) {
            Ok(()) => Ok(Change::Steered {
                networks: wanted.map_or(0, |w| w.set.len()),
            }),
            Err(why) => {
                let mut desired = self.applied.take().unwrap_or_default();
                desired.keyonly = wanted;
                self.rebuild(desired, &why, now)
            }
        }
    }

    fn rebuild(&mut self, desired: Desired, why: &str, now: Timestamp) -> anyhow::Result<Change> {
        self.applied = None;
        let rules = nft::Rules {
            firewall: &self.firewall,
            geo_scope: self.geo_scope,
            units: self.units,
        };
        nft::apply(&nft::render_full(&desired, &rules, now))?;
        let change = Change::Rebuilt {
            why: why.to_owned(),
            bans: desired.bans.len(),
            geo_ranges: desired.geo.ranges.len(),
        };
        self.applied = Some(desired);
        Ok(change)
    }
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(x), Some(y)) => Some(x.max(y)),
    }
}

/// Changes in one pass beyond which the table is rebuilt instead of
/// patched (one batch either way; a rebuild says it in one log line).
pub const REBUILD_OVER: usize = 1_000;

/// A store `source` (`203.0.113.7` or `2001:db8::/64`) as a network.
pub fn parse_source(source: &str) -> Option<IpNet> {
    authguard_core::addr::parse_target(source).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        parse_source(s).unwrap()
    }

    const UNITS: Units = Units { v4: 32, v6: 64 };

    #[test]
    fn a_fleet_ban_spares_open_sessions_unless_a_ban_of_our_own_joins_it() {
        let fleet = Entry {
            expires: Some(10),
            all_ports: false,
            new_only: true,
        };
        let ours = Entry {
            expires: Some(5),
            all_ports: false,
            new_only: false,
        };
        assert!(Entry::merged([fleet, fleet]).unwrap().new_only);
        let both = Entry::merged([fleet, ours]).unwrap();
        assert_eq!(
            (both.new_only, both.expires),
            (false, Some(10)),
            "our own ban cuts, for the longer end"
        );
        assert!(
            !fleet.covers(&ours),
            "a wider fleet ban does not stand in for a narrower ban of ours"
        );
        assert!(ours.covers(&fleet));
        let units = UNITS;
        assert_eq!(nft::set_of(&net("203.0.113.7"), &fleet, units), "fleet4");
        assert_eq!(
            nft::set_of(&net("2001:db8::/48"), &fleet, units),
            "fleet6_net"
        );
        assert_eq!(nft::set_of(&net("203.0.113.7"), &both, units), "ban4");
    }

    #[test]
    fn allowed_and_covered_networks_never_enter_the_set() {
        let ports = |e| Entry {
            expires: e,
            all_ports: false,
            new_only: false,
        };
        let all = |e| Entry {
            expires: e,
            all_ports: true,
            new_only: false,
        };
        let d = Desired::from_parts(
            [
                (net("203.0.113.7"), ports(Some(100))),
                (net("203.0.113.0/24"), ports(Some(50))),
                (net("203.0.0.0/16"), ports(Some(50))),
                (net("192.0.2.9"), ports(None)),
                (net("198.51.100.4"), ports(Some(70))),
                (net("2001:db8:1:2::/64"), ports(None)),
                (net("198.51.100.0/24"), all(Some(90))),
                (net("198.51.100.9"), all(Some(500))),
                (net("198.51.100.4"), all(Some(60))),
                // An all-ports network inside a ports-only one stays: it closes more.
                (net("198.51.0.0/16"), ports(Some(90))),
            ],
            vec![net("192.0.2.0/24")],
            UNITS,
        );
        let got: Vec<String> = d.bans.keys().map(ToString::to_string).collect();
        let want = [
            "198.51.0.0/16",
            "198.51.100.0/24",
            "198.51.100.4/32",
            "198.51.100.9/32",
            "203.0.0.0/16",
            "203.0.113.7/32",
            "2001:db8:1:2::/64",
        ];
        assert_eq!(
            got, want,
            "203.0.113.0/24 is inside 203.0.0.0/16; 192.0.2.9 is allowed"
        );
        assert_eq!(
            d.bans[&net("198.51.100.4")],
            all(Some(70)),
            "merged: longer and broader"
        );
        assert_eq!(d.next_expiry(), Some(50));
    }

    #[test]
    fn units_follow_the_policy_prefixes() {
        let u = Units { v4: 24, v6: 56 };
        assert!(u.is_unit(&net("198.51.100.0/24")));
        assert!(!u.is_unit(&net("198.51.100.7")));
        assert!(u.is_unit(&net("2001:db8:0:100::/56")));
        assert!(UNITS.is_unit(&net("2001:db8::/64")));
        assert!(!UNITS.is_unit(&net("2001:db8::1")));
    }
}

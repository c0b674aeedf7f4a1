//! Bans as packet-filter state: what the firewall should hold, computed
//! from the store and the config, and pushed by [`nft`].
//!
//! The store is the truth; the firewall is a cache of it. Every change is
//! one atomic nft batch, and a full rebuild runs at start, every `resync`
//! and after any nft error, so a flushed ruleset or a crash mid-way always
//! converges back.

pub mod nft;

use authguard_core::config::Config;
use authguard_core::store::Store;
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use std::collections::BTreeMap;

/// One banned network as the firewall holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When the ban ends (`None`: permanent).
    pub expires: Option<Timestamp>,
    /// True for bans with scope `all` (every port), false for the guarded ports.
    pub all_ports: bool,
}

/// What the firewall should hold at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Banned networks.
    pub bans: BTreeMap<IpNet, Entry>,
    /// Networks accepted ahead of any drop.
    pub allowed: Vec<IpNet>,
}

impl Desired {
    /// Reads the active bans and the allow lists.
    pub fn load(config: &Config, store: &Store, now: Timestamp) -> anyhow::Result<Desired> {
        let mut allowed: Vec<IpNet> = config.allow.iter().map(|c| c.0).collect();
        for entry in store.allow_list()? {
            allowed.extend(parse_source(&entry.network));
        }
        let bans = store.active_bans(now)?.into_iter().filter_map(|b| {
            let all_ports = b.scope == "all";
            parse_source(&b.source).map(|net| {
                (
                    net,
                    Entry {
                        expires: b.expires,
                        all_ports,
                    },
                )
            })
        });
        Ok(Desired::from_parts(bans, allowed))
    }

    /// Builds the set from raw parts: drops bans inside an allowed network
    /// (allowed networks never enter a set) and bans covered by a wider ban
    /// of the same or broader scope (interval sets refuse overlapping
    /// elements). Two bans of one network merge: the longer, the broader.
    pub fn from_parts(
        bans: impl IntoIterator<Item = (IpNet, Entry)>,
        allowed: Vec<IpNet>,
    ) -> Desired {
        let mut merged: BTreeMap<IpNet, Entry> = BTreeMap::new();
        for (net, entry) in bans {
            if allowed.iter().any(|a| a.contains(&net)) {
                continue;
            }
            let slot = merged.entry(net).or_insert(entry);
            slot.expires = later(slot.expires, entry.expires);
            slot.all_ports |= entry.all_ports;
        }
        // A covering network is the net truncated to a shorter prefix that is
        // in the map: look up only the prefix lengths in use (usually one or
        // two), so 100,000 bans cost 100,000 × a few lookups, not n².
        let lengths: std::collections::BTreeSet<(bool, u8)> = merged
            .keys()
            .map(|n| (matches!(n, IpNet::V4(_)), n.prefix_len()))
            .collect();
        let covered: Vec<IpNet> = merged
            .iter()
            .filter(|(net, e)| {
                lengths.iter().any(|&(v4, len)| {
                    v4 == matches!(net, IpNet::V4(_))
                        && len < net.prefix_len()
                        && IpNet::new(net.network(), len)
                            .ok()
                            .and_then(|wider| merged.get(&wider.trunc()))
                            .is_some_and(|w| w.all_ports || !e.all_ports)
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
        }
    }

    /// True when the kernel's ban elements are these bans: none stale, none
    /// missing (a ban ending within two seconds may already be gone).
    pub fn matches(&self, held: &std::collections::BTreeSet<IpNet>, now: Timestamp) -> bool {
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

/// Keeps nftables in step with [`Desired`] states: small add/delete batches
/// for changes, a full rebuild when the kernel's table differs or a batch fails.
#[derive(Debug)]
pub struct Sync {
    config: authguard_core::config::FirewallConfig,
    applied: Option<Desired>,
}

/// What one [`Sync::sync`] did, for the log.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Already in step.
    Nothing,
    /// Elements added and removed.
    Incremental {
        added: Vec<IpNet>,
        removed: Vec<IpNet>,
    },
    /// The table was (re)built whole, and why.
    Rebuilt { why: String, bans: usize },
}

impl Sync {
    /// A syncer that has applied nothing yet (the first sync rebuilds).
    pub fn new(config: &authguard_core::config::FirewallConfig) -> Sync {
        Sync {
            config: config.clone(),
            applied: None,
        }
    }

    /// Brings the firewall to `desired`. With `verify`, first compares with
    /// what the kernel holds (a flushed ruleset is noticed there).
    pub fn sync(
        &mut self,
        desired: &Desired,
        verify: bool,
        now: Timestamp,
    ) -> anyhow::Result<Change> {
        if verify {
            match nft::current_bans()? {
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
        if applied == desired {
            return Ok(Change::Nothing);
        }
        if applied.allowed != desired.allowed {
            return self.rebuild(desired, "allow list changed", now);
        }
        let removed: Vec<IpNet> = applied
            .bans
            .keys()
            .filter(|n| !desired.bans.contains_key(n))
            .copied()
            .collect();
        let added: Vec<(IpNet, Entry)> = desired
            .bans
            .iter()
            .filter(|(n, e)| applied.bans.get(n) != Some(e))
            .map(|(n, e)| (*n, *e))
            .collect();
        let changed: Vec<IpNet> = added
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| applied.bans.contains_key(n))
            .collect();
        // A changed ban is removed (from the set it was in) and added again.
        let gone: Vec<(IpNet, Entry)> = removed
            .iter()
            .chain(&changed)
            .filter_map(|n| applied.bans.get(n).map(|e| (*n, *e)))
            .collect();
        let script = nft::render_changes(&added, &gone, now);
        match nft::apply(&script) {
            Ok(()) => {
                self.applied = Some(desired.clone());
                Ok(Change::Incremental {
                    added: added.into_iter().map(|(n, _)| n).collect(),
                    removed,
                })
            }
            Err(e) => self.rebuild(desired, &format!("batch failed ({e})"), now),
        }
    }

    fn rebuild(&mut self, desired: &Desired, why: &str, now: Timestamp) -> anyhow::Result<Change> {
        self.applied = None;
        nft::apply(&nft::render_full(desired, &self.config, now))?;
        self.applied = Some(desired.clone());
        Ok(Change::Rebuilt {
            why: why.to_owned(),
            bans: desired.bans.len(),
        })
    }
}

/// `guardctl ban`/`unban`/`allow` change the firewall themselves, at once,
/// when they can (nftables backend, root, nft present); the daemon
/// reconciles anyway, so a failure here is a note, not an error.
///
/// `touched`: the networks whose bans changed, sent as one small batch
/// (fast with 100,000 bans in place); `None`, or a batch nft refuses (the
/// table is missing, intervals overlap), rebuilds the table whole.
pub fn push_now(config: &Config, store: &Store, touched: Option<&[IpNet]>) {
    use authguard_core::config::FirewallBackend;
    if config.firewall.backend != FirewallBackend::Nftables {
        return;
    }
    let now = authguard_core::time::now();
    let result = Desired::load(config, store, now).and_then(|d| {
        let full = || nft::apply(&nft::render_full(&d, &config.firewall, now));
        let Some(touched) = touched else {
            return full();
        };
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for net in touched {
            // Out of both sets first: the ban may have changed scope or length.
            for all_ports in [false, true] {
                removed.push((
                    *net,
                    Entry {
                        expires: None,
                        all_ports,
                    },
                ));
            }
            if let Some(entry) = d.bans.get(net) {
                added.push((*net, *entry));
            }
        }
        // Lifting a network uncovers the narrower bans inside it (they were
        // left out of the set while it covered them): add them back.
        for (net, entry) in &d.bans {
            if touched.iter().any(|t| t != net && t.contains(net)) {
                added.push((*net, *entry));
            }
        }
        nft::apply(&nft::render_changes(&added, &removed, now)).or_else(|_| full())
    });
    match result {
        Ok(()) => println!("firewall updated"),
        Err(e) => {
            eprintln!("note: firewall not updated now ({e:#}); `guardctl daemon` will catch up")
        }
    }
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(x), Some(y)) => Some(x.max(y)),
    }
}

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

    #[test]
    fn allowed_and_covered_bans_never_enter_the_set() {
        let ports = |e| Entry {
            expires: e,
            all_ports: false,
        };
        let all = |e| Entry {
            expires: e,
            all_ports: true,
        };
        let d = Desired::from_parts(
            [
                (net("203.0.113.7"), ports(Some(100))),
                (net("203.0.113.0/24"), ports(Some(50))),
                (net("192.0.2.9"), ports(None)),
                (net("198.51.100.4"), ports(Some(70))),
                (net("2001:db8:1:2::/64"), ports(None)),
                // A recidive ban inside a ports-only network ban stays: it closes more.
                (net("198.51.100.0/24"), ports(Some(90))),
                (net("198.51.100.9"), all(Some(500))),
                (net("198.51.100.4"), all(Some(60))),
            ],
            vec![net("192.0.2.0/24")],
        );
        let got: Vec<String> = d.bans.keys().map(ToString::to_string).collect();
        let want = [
            "198.51.100.0/24",
            "198.51.100.4/32",
            "198.51.100.9/32",
            "203.0.113.0/24",
            "2001:db8:1:2::/64",
        ];
        assert_eq!(got, want);
        assert_eq!(
            d.bans[&net("198.51.100.4")],
            all(Some(70)),
            "merged: longer and broader"
        );
        assert_eq!(d.next_expiry(), Some(50));
    }
}

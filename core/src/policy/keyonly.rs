//! Key-only: which sources must use a public key. *Past offenders*:
//! sources banned at least once within `[keyonly] window`, banned now or
//! not; never a source that merely mistyped. Countries in `[geo] keyonly`
//! are key-only in every mode. Allowed networks are never key-only.
//!
//! The rule twice, kept in one file so the two agree (a property test
//! checks it): per address for a login ([`reason`]), and as a set of
//! networks for sshd and nftables ([`KeyOnlySet`]).

use super::Facts;
use crate::config::{Config, KeyOnlyConfig, KeyOnlyMode};
use crate::time::Timestamp;
use ipnet::IpNet;
use std::net::IpAddr;

/// Why `ip` must use a key now, if it must: the mode's reason first
/// (`all`, `untrusted`, `past offender`), then its country in `[geo]
/// keyonly` (looked up only when that list is set). The caller has already
/// let allowed networks through.
pub fn reason<F: Facts>(
    facts: &mut F,
    config: &Config,
    ip: IpAddr,
    now: Timestamp,
) -> Result<Option<String>, F::Error> {
    let k = &config.keyonly;
    let by_mode = match k.mode {
        KeyOnlyMode::Off => None,
        KeyOnlyMode::All => Some("all"),
        KeyOnlyMode::Untrusted => {
            (!k.trusted.iter().any(|c| c.0.contains(&ip))).then_some("untrusted")
        }
        KeyOnlyMode::Offenders => facts
            .past_offender(ip, k.window_start(now))?
            .then_some("past offender"),
    };
    if let Some(why) = by_mode {
        return Ok(Some(why.to_owned()));
    }
    if config.geo.keyonly.is_empty() {
        return Ok(None);
    }
    let country = facts.country_of(ip)?;
    Ok(country
        .filter(|cc| config.geo.keyonly.iter().any(|k| k.as_str() == cc))
        .map(|cc| format!("country {cc}")))
}

/// The sources that must use a key, as sshd should see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOnlySet {
    /// Nobody.
    Nobody,
    /// These networks (merged into the fewest CIDRs).
    Networks(Vec<IpNet>),
    /// Everyone except these networks.
    AllExcept(Vec<IpNet>),
}

impl KeyOnlySet {
    /// The set for `mode`: `offenders` (past offenders' networks) and
    /// `countries` (the networks of `[geo] keyonly`, key-only whatever the
    /// mode), minus `allowed` (never key-only); `untrusted` excepts
    /// `trusted` too, but for its parts inside a key-only country.
    pub fn new(
        config: &KeyOnlyConfig,
        offenders: impl IntoIterator<Item = IpNet>,
        countries: Vec<IpNet>,
        allowed: &[IpNet],
    ) -> KeyOnlySet {
        match config.mode {
            KeyOnlyMode::Off => KeyOnlySet::networks(countries, allowed),
            KeyOnlyMode::Offenders => {
                let mut nets = countries;
                nets.extend(offenders);
                KeyOnlySet::networks(nets, allowed)
            }
            KeyOnlyMode::Untrusted => {
                // Trusted networks keep passwords, but not the parts inside
                // a key-only country (as a login is decided, see `reason`).
                let mut except: Vec<IpNet> = allowed.to_vec();
                except.extend(
                    config
                        .trusted
                        .iter()
                        .flat_map(|c| subtract(c.0, &countries)),
                );
                KeyOnlySet::AllExcept(IpNet::aggregate(&except))
            }
            KeyOnlyMode::All => KeyOnlySet::AllExcept(IpNet::aggregate(&allowed.to_vec())),
        }
    }

    /// `nets` minus `allowed`, merged; `Nobody` when nothing is left.
    fn networks(nets: Vec<IpNet>, allowed: &[IpNet]) -> KeyOnlySet {
        let kept: Vec<IpNet> = nets
            .into_iter()
            .flat_map(|net| subtract(net, allowed))
            .collect();
        if kept.is_empty() {
            KeyOnlySet::Nobody
        } else {
            KeyOnlySet::Networks(IpNet::aggregate(&kept))
        }
    }

    /// True when `ip` must use a key.
    pub fn covers(&self, ip: IpAddr) -> bool {
        match self {
            KeyOnlySet::Nobody => false,
            KeyOnlySet::Networks(nets) => nets.iter().any(|n| n.contains(&ip)),
            KeyOnlySet::AllExcept(except) => !except.iter().any(|n| n.contains(&ip)),
        }
    }

    /// How many networks it names (key-only ones, or the exceptions).
    pub fn len(&self) -> usize {
        match self {
            KeyOnlySet::Nobody => 0,
            KeyOnlySet::Networks(n) | KeyOnlySet::AllExcept(n) => n.len(),
        }
    }

    /// True for [`KeyOnlySet::Nobody`].
    pub fn is_empty(&self) -> bool {
        matches!(self, KeyOnlySet::Nobody)
    }
}

/// `net` without the parts inside `allowed` (as CIDRs). An allowed network
/// inside an offending one splits it; one covering it removes it.
fn subtract(net: IpNet, allowed: &[IpNet]) -> Vec<IpNet> {
    if allowed.iter().any(|a| a.contains(&net)) {
        return Vec::new();
    }
    let inside: Vec<&IpNet> = allowed.iter().filter(|a| net.contains(*a)).collect();
    if inside.is_empty() {
        return vec![net];
    }
    // Split in halves until no half holds an allowed network partly.
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        return Vec::new();
    };
    halves.flat_map(|half| subtract(half, allowed)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn net(s: &str) -> IpNet {
        crate::addr::parse_target(s).unwrap()
    }

    #[test]
    fn offenders_merge_and_allowed_networks_are_cut_out() {
        let config = KeyOnlyConfig::default();
        let offenders = ["203.0.113.0", "203.0.113.1", "198.51.100.0/24", "192.0.2.9"].map(net);
        let set = KeyOnlySet::new(
            &config,
            offenders,
            Vec::new(),
            &[net("192.0.2.0/24"), net("198.51.100.128/25")],
        );
        assert_eq!(
            set,
            KeyOnlySet::Networks(vec![net("198.51.100.0/25"), net("203.0.113.0/31")])
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(
            !set.covers("198.51.100.200".parse().unwrap()),
            "allowed half"
        );
        assert!(
            !set.covers("192.0.2.9".parse().unwrap()),
            "allowed, ban history or not"
        );
    }

    #[test]
    fn untrusted_means_everyone_outside_trusted_and_allowed() {
        let config = KeyOnlyConfig {
            mode: KeyOnlyMode::Untrusted,
            trusted: vec![Cidr(net("10.0.0.0/8"))],
            ..KeyOnlyConfig::default()
        };
        let set = KeyOnlySet::new(
            &config,
            [],
            vec![net("203.0.113.0/24")],
            &[net("127.0.0.0/8")],
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(!set.covers("10.1.2.3".parse().unwrap()));
        assert!(!set.covers("127.0.0.1".parse().unwrap()));
        let off = KeyOnlyConfig {
            mode: KeyOnlyMode::Off,
            ..KeyOnlyConfig::default()
        };
        assert!(KeyOnlySet::new(&off, [net("203.0.113.1")], Vec::new(), &[]).is_empty());
    }

    #[test]
    fn key_only_countries_count_in_every_mode_but_allowed_networks_win() {
        let countries = || vec![net("198.51.100.0/24"), net("2001:db8::/32")];
        let allowed = [net("198.51.100.64/26")];
        let off = KeyOnlyConfig {
            mode: KeyOnlyMode::Off,
            ..KeyOnlyConfig::default()
        };
        let set = KeyOnlySet::new(&off, [net("203.0.113.1")], countries(), &allowed);
        assert!(set.covers("198.51.100.7".parse().unwrap()));
        assert!(set.covers("2001:db8::1".parse().unwrap()));
        assert!(!set.covers("198.51.100.70".parse().unwrap()), "allowed");
        assert!(
            !set.covers("203.0.113.1".parse().unwrap()),
            "mode off: no offenders"
        );
        let set = KeyOnlySet::new(
            &KeyOnlyConfig::default(),
            [net("203.0.113.1")],
            countries(),
            &allowed,
        );
        assert!(set.covers("203.0.113.1".parse().unwrap()));
        assert!(set.covers("198.51.100.200".parse().unwrap()));
        assert_eq!(set.len(), 4, "{set:?}");
    }

    mod agreement {
        use super::super::*;
        use crate::config::{Cidr, Config};
        use crate::policy::memory::MemoryFacts;
        use crate::policy::{BanPlan, Ledger};
        use proptest::prelude::*;

        const POOL: [&str; 6] = [
            "203.0.113.0/24",
            "203.0.113.7",
            "198.51.100.0/25",
            "198.51.100.200",
            "2001:db8::/48",
            "2001:db8:0:1::/64",
        ];
        const PROBES: [&str; 7] = [
            "203.0.113.7",
            "203.0.113.99",
            "198.51.100.5",
            "198.51.100.200",
            "2001:db8::1",
            "2001:db8:0:1::5",
            "192.0.2.1",
        ];

        fn net(s: &str) -> IpNet {
            crate::addr::parse_target(s).unwrap()
        }

        proptest! {
            /// A login is key-only exactly when the set sshd and nftables
            /// are given covers it: the rule's two forms never disagree.
            #[test]
            fn per_address_and_set_agree(
                mode in 0..4usize,
                offenders in prop::collection::vec(0..POOL.len(), 0..4),
                country in prop::option::of(0..POOL.len()),
                allowed in prop::collection::vec(0..POOL.len(), 0..2),
                trusted in prop::collection::vec(0..POOL.len(), 0..2),
            ) {
                let mut config = Config::default();
                config.keyonly.mode = [KeyOnlyMode::Off, KeyOnlyMode::Offenders, KeyOnlyMode::Untrusted, KeyOnlyMode::All][mode];
                config.keyonly.trusted = trusted.iter().map(|&i| Cidr(net(POOL[i]))).collect();
                config.allow = allowed.iter().map(|&i| Cidr(net(POOL[i]))).collect();
                let mut facts = MemoryFacts::new();
                for &i in &offenders {
                    let plan = BanPlan { net: net(POOL[i]), expires: None, reason: "r".into(), origin: crate::policy::Origin::Manual, scope: crate::config::BanScope::Ports, level: 1, failures: 0 };
                    facts.record_ban(&plan, 100).unwrap();
                }
                let countries: Vec<IpNet> = country.map(|i| net(POOL[i])).into_iter().collect();
                if let Some(c) = countries.first() {
                    facts.country(*c, "NL");
                    config.geo.keyonly = vec![crate::geo::Country::parse("NL").unwrap().unwrap()];
                }
                let allowed_nets: Vec<IpNet> = config.allow.iter().map(|c| c.0).collect();
                let set = KeyOnlySet::new(&config.keyonly, offenders.iter().map(|&i| net(POOL[i])), countries, &allowed_nets);
                for probe in PROBES {
                    let ip: IpAddr = probe.parse().unwrap();
                    if config.allows(ip) {
                        continue;
                    }
                    let per_address = reason(&mut facts, &config, ip, 200).unwrap().is_some();
                    prop_assert_eq!(per_address, set.covers(ip), "{} in {:?}", probe, set);
                }
            }
        }
    }
}

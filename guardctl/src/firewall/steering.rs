//! Key-only steering (`[keyonly] method = "redirect"`): nftables sends a
//! key-only source's new connections to the guarded ports on to sshd's
//! key-only listener (same address, port `[keyonly] port`), where a
//! `Match LocalPort` block offers only public keys. A new offender is one
//! set element, never an sshd reload.
//!
//! The networks live in hash sets per prefix length (`keyonly4_32`,
//! `keyonly6_64`, …, laid out like [`geo_sets`]), checked by chain
//! `keyonly`, which two NAT base chains enter: `keyonly_in` (prerouting,
//! connections from the network) and `keyonly_out` (output, the machine's
//! own connections, so a local `ssh` sees what a remote one sees). Only a
//! connection's first packet passes NAT chains; the rest follow conntrack.
//! The destination address is kept, only the port changes: a listener bound
//! to one address gets its twin on the key-only port (see
//! `ssh_hook::keyonly::plan_listener`).

use super::TABLE;
use super::geo_sets::{self, GeoSet};
use authguard_core::policy::keyonly::KeyOnlySet;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The chain holding the key-only rules.
const CHAIN: &str = "keyonly";

/// What the firewall does for key-only sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    /// The key-only listener's port.
    pub port: u16,
    /// Who is sent there: the networks listed, or everyone but them.
    pub set: KeyOnlySet,
}

impl Steering {
    /// The hash sets holding the set's networks (key-only ones, or the exceptions).
    pub fn sets(&self) -> Vec<GeoSet> {
        match &self.set {
            KeyOnlySet::Nobody => Vec::new(),
            KeyOnlySet::Networks(nets) | KeyOnlySet::AllExcept(nets) => {
                geo_sets::layout_networks(CHAIN, nets.iter().copied())
            }
        }
    }

    /// Set declarations and chains, inside `table … { }`; `ports` are the
    /// guarded ports (`22, 2222`).
    pub fn render_rules(&self, sets: &[GeoSet], ports: &str) -> String {
        let mut s = String::new();
        for set in sets {
            s.push_str(&set.declaration());
        }
        // nft maps a port only in a rule that matched the transport protocol.
        let to4 = format!("meta l4proto tcp dnat ip to ip daddr:{}", self.port);
        let to6 = format!("meta l4proto tcp dnat ip6 to ip6 daddr:{}", self.port);
        let _ = writeln!(s, "  chain {CHAIN} {{");
        let everyone_else = matches!(self.set, KeyOnlySet::AllExcept(_));
        for set in sets {
            let verdict = match (everyone_else, set.v4) {
                (true, _) => "return",
                (false, true) => &to4,
                (false, false) => &to6,
            };
            s.push_str(&set.rule(verdict));
        }
        if everyone_else {
            let _ = writeln!(
                s,
                "    meta nfproto ipv4 {to4}\n    meta nfproto ipv6 {to6}"
            );
        }
        s.push_str("  }\n");
        // `dstnat` (-100) is not accepted by name for the output hook in nft 1.0.6.
        for (name, hook) in [("keyonly_in", "prerouting"), ("keyonly_out", "output")] {
            let _ = writeln!(
                s,
                "  chain {name} {{\n    type nat hook {hook} priority -100; policy accept;\n    \
                 tcp dport {{ {ports} }} jump {CHAIN}\n  }}"
            );
        }
        s
    }

    /// `add element` lines for every set.
    pub fn render_elements(sets: &[GeoSet], s: &mut String) {
        for set in sets {
            for chunk in set.elements.chunks(4096) {
                let items: Vec<String> = chunk.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    s,
                    "add element {TABLE} {} {{ {} }}",
                    set.name(),
                    items.join(", ")
                );
            }
        }
    }

    /// The batch that takes the kernel from `old` to `self`, or `None`
    /// when the rules themselves differ (another port, another kind of set,
    /// a set added or gone): then the table is rebuilt.
    pub fn changes_from(&self, old: &Steering) -> Option<String> {
        let (new_sets, old_sets) = (self.sets(), old.sets());
        let names = |sets: &[GeoSet]| sets.iter().map(GeoSet::name).collect::<Vec<_>>();
        let same_kind = matches!(
            (&self.set, &old.set),
            (KeyOnlySet::AllExcept(_), KeyOnlySet::AllExcept(_))
                | (KeyOnlySet::Networks(_), KeyOnlySet::Networks(_))
                | (KeyOnlySet::Nobody, KeyOnlySet::Nobody)
        );
        if self.port != old.port || !same_kind || names(&new_sets) != names(&old_sets) {
            return None;
        }
        let mut s = String::new();
        for (new, old) in new_sets.iter().zip(&old_sets) {
            let (new_items, old_items): (BTreeSet<_>, BTreeSet<_>) =
                (new.elements.iter().collect(), old.elements.iter().collect());
            let name = new.name();
            // Adding first makes the delete safe whatever the kernel holds.
            for gone in old_items.difference(&new_items) {
                let _ = writeln!(s, "add element {TABLE} {name} {{ {gone} }}");
                let _ = writeln!(s, "delete element {TABLE} {name} {{ {gone} }}");
            }
            for added in new_items.difference(&old_items) {
                let _ = writeln!(s, "add element {TABLE} {name} {{ {added} }}");
            }
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::IpNet;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| authguard_core::addr::parse_target(s).unwrap())
            .collect()
    }

    fn steering(set: KeyOnlySet) -> Steering {
        Steering { port: 2223, set }
    }

    #[test]
    fn offenders_are_sent_to_the_key_only_port_on_the_address_they_asked_for() {
        let s = steering(KeyOnlySet::Networks(nets(&[
            "203.0.113.7",
            "2001:db8:1::/64",
        ])));
        let sets = s.sets();
        let text = s.render_rules(&sets, "22");
        let has = |want: &str| assert!(text.contains(want), "missing {want:?} in:\n{text}");
        has("set keyonly4_32 { type ipv4_addr; }");
        has("ip saddr @keyonly4_32 meta l4proto tcp dnat ip to ip daddr:2223\n");
        has(
            "ip6 saddr & ffff:ffff:ffff:ffff:: @keyonly6_64 meta l4proto tcp dnat ip6 to ip6 daddr:2223\n",
        );
        has(
            "type nat hook prerouting priority -100; policy accept;\n    tcp dport { 22 } jump keyonly",
        );
        has("type nat hook output priority -100;");
        assert!(!text.contains("meta nfproto"), "{text}");
        // nft itself is asked in the end-to-end tests (tests/tests/keyonly.rs).
        let mut elements = String::new();
        Steering::render_elements(&sets, &mut elements);
        assert!(elements.contains("add element inet authguard keyonly4_32 { 203.0.113.7 }"));
    }

    #[test]
    fn everyone_but_the_trusted_is_sent_there() {
        let s = steering(KeyOnlySet::AllExcept(nets(&["192.0.2.0/24"])));
        let text = s.render_rules(&s.sets(), "22, 2222");
        assert!(
            text.contains("ip saddr & 255.255.255.0 @keyonly4_24 return\n"),
            "{text}"
        );
        assert!(
            text.contains("    meta nfproto ipv4 meta l4proto tcp dnat ip to ip daddr:2223\n    meta nfproto ipv6 meta l4proto tcp dnat ip6 to ip6 daddr:2223\n"),
            "{text}"
        );
    }

    #[test]
    fn a_new_offender_is_one_element_and_a_new_shape_rebuilds() {
        let old = steering(KeyOnlySet::Networks(nets(&["203.0.113.7", "198.51.100.9"])));
        let new = steering(KeyOnlySet::Networks(nets(&["203.0.113.7", "192.0.2.44"])));
        assert_eq!(
            new.changes_from(&old).unwrap(),
            "add element inet authguard keyonly4_32 { 198.51.100.9 }\n\
             delete element inet authguard keyonly4_32 { 198.51.100.9 }\n\
             add element inet authguard keyonly4_32 { 192.0.2.44 }\n"
        );
        let wider = steering(KeyOnlySet::Networks(nets(&["203.0.113.0/24"])));
        assert_eq!(wider.changes_from(&old), None, "a new set: rebuild");
        assert_eq!(old.changes_from(&steering(KeyOnlySet::Nobody)), None);
        let moved = Steering {
            port: 2224,
            ..old.clone()
        };
        assert_eq!(moved.changes_from(&old), None);
        assert_eq!(old.changes_from(&old).as_deref(), Some(""));
    }
}

//! Blocked countries in nftables: their ranges as CIDR networks, in one
//! hash set per prefix length (`geo4_24` holds /24 networks, looked up as
//! `ip saddr & 255.255.255.0`), checked in chain `geo`.
//!
//! Why not one interval set per family: nft 1.0 reads every interval set's
//! elements back before it changes any element of any set, so a blocked
//! US (72,464 ranges) made every ban push cost 0.2 s instead of a few
//! milliseconds. Hash sets are not read back. The price is one lookup per
//! prefix length present (at most 33 for IPv4 and 129 for IPv6), so the
//! chain is entered only by new connections (`ct state new`): a block
//! stops what a country opens, not a connection it already had.

use authguard_core::geo::AddrRange;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The chain the input chain jumps to for new connections.
pub const CHAIN: &str = "geo";

/// One hash set: the networks of one family and prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoSet {
    /// The name's stem: `geo` (blocked countries) or `keyonly`.
    pub stem: &'static str,
    /// True for IPv4.
    pub v4: bool,
    /// The prefix length of every network in it.
    pub prefix_len: u8,
    /// The networks' first addresses.
    pub elements: Vec<IpAddr>,
}

impl GeoSet {
    /// `geo4_24`, `geo6_48`, `keyonly4_32`.
    pub fn name(&self) -> String {
        let family = if self.v4 { 4 } else { 6 };
        format!("{}{family}_{}", self.stem, self.prefix_len)
    }

    /// `set geo4_24 { type ipv4_addr; }`
    pub fn declaration(&self) -> String {
        let kind = if self.v4 { "ipv4_addr" } else { "ipv6_addr" };
        format!("  set {} {{ type {kind}; }}\n", self.name())
    }

    /// `ip saddr & 255.255.255.0 @geo4_24 VERDICT`
    pub fn rule(&self, verdict: &str) -> String {
        let (proto, bits) = if self.v4 { ("ip", 32) } else { ("ip6", 128) };
        let zero = if self.v4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let mask = match ipnet::IpNet::new(zero, self.prefix_len) {
            Ok(net) if self.prefix_len < bits => format!(" & {}", net.netmask()),
            _ => String::new(),
        };
        format!("    {proto} saddr{mask} @{} {verdict}\n", self.name())
    }
}

/// The sets for `ranges`: each range cut into the fewest CIDR networks,
/// grouped by family and prefix length, IPv4 first, shorter prefixes first.
pub fn layout(ranges: &[AddrRange]) -> Vec<GeoSet> {
    layout_networks("geo", ranges.iter().flat_map(AddrRange::networks))
}

/// Sets named `STEM4_LEN`/`STEM6_LEN` for `nets`, IPv4 first, shorter
/// prefixes first.
pub fn layout_networks(stem: &'static str, nets: impl Iterator<Item = IpNet>) -> Vec<GeoSet> {
    let mut by_len: BTreeMap<(bool, u8), Vec<IpAddr>> = BTreeMap::new();
    for net in nets {
        by_len
            .entry((!net.addr().is_ipv4(), net.prefix_len()))
            .or_default()
            .push(net.network());
    }
    by_len
        .into_iter()
        .map(|((v6, prefix_len), elements)| GeoSet {
            stem,
            v4: !v6,
            prefix_len,
            elements,
        })
        .collect()
}

/// Chain `geo`: one rule per set, each ending in `verdict`.
pub fn render_chain(sets: &[GeoSet], verdict: &str) -> String {
    let mut s = format!("  chain {CHAIN} {{\n");
    for set in sets {
        s.push_str(&set.rule(verdict));
    }
    s.push_str("  }\n");
    s
}

/// The input chain's rule that sends new connections to chain `geo`:
/// those to `ports` (scope `ports`), or every one (scope `all`). Replies to
/// the server's own connections are never new, so they always pass.
pub fn jump_rule(ports: Option<&str>) -> String {
    let mut s = String::from("    ");
    if let Some(ports) = ports {
        let _ = write!(s, "tcp dport {{ {ports} }} ");
    }
    let _ = writeln!(s, "ct state new jump {CHAIN}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(lo: &str, hi: &str) -> AddrRange {
        AddrRange {
            lo: lo.parse().unwrap(),
            hi: hi.parse().unwrap(),
        }
    }

    #[test]
    fn ranges_become_one_hash_set_per_family_and_prefix_length() {
        let sets = layout(&[
            range("198.51.100.0", "198.51.100.255"),
            range("203.0.113.0", "203.0.113.255"),
            range("192.0.2.7", "192.0.2.8"),
            range("2001:db8::", "2001:db8::ff"),
        ]);
        let shown: Vec<(String, Vec<String>)> = sets
            .iter()
            .map(|s| {
                (
                    s.name(),
                    s.elements.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "geo4_24".into(),
                    vec!["198.51.100.0".into(), "203.0.113.0".into()]
                ),
                (
                    "geo4_32".into(),
                    vec!["192.0.2.7".into(), "192.0.2.8".into()]
                ),
                ("geo6_120".into(), vec!["2001:db8::".into()]),
            ]
        );
        assert_eq!(sets[0].declaration(), "  set geo4_24 { type ipv4_addr; }\n");
        let chain = render_chain(&sets, "drop");
        assert!(
            chain.contains("    ip saddr & 255.255.255.0 @geo4_24 drop\n"),
            "{chain}"
        );
        assert!(chain.contains("    ip saddr @geo4_32 drop\n"), "{chain}");
        assert!(
            chain.contains(
                "    ip6 saddr & ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00 @geo6_120 drop\n"
            ),
            "{chain}"
        );
    }

    #[test]
    fn only_new_connections_enter_the_chain() {
        assert_eq!(
            jump_rule(Some("22, 2222")),
            "    tcp dport { 22, 2222 } ct state new jump geo\n"
        );
        assert_eq!(jump_rule(None), "    ct state new jump geo\n");
    }
}

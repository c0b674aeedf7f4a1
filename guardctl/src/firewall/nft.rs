//! nftables: table `inet authguard`, rendered as one `nft -f -` batch
//! (read back by [`super::listing`]). Addresses reach nft as typed values
//! formatted by Rust, on stdin, never through a shell.
//!
//! Blocked countries live in one hash set per prefix length (see
//! [`geo_sets`]): nft 1.0 reads every interval set's elements back before
//! any element change. A large country still makes `list table` long, so
//! the table is only ever read set by set.

use super::steering::Steering;
use super::{Desired, Entry, TABLE, Units, geo_sets};
use authguard_core::config::{BanScope, FirewallAction, FirewallConfig};
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

/// Every set holding bans: `ban4`/`ban6` (hash sets of sources, looked up
/// through the source prefix), `…_net` (interval sets of other networks),
/// the same for scope `all` (every port), and `fleet…` for bans pulled from
/// the fleet, which drop new connections only.
pub const BAN_SETS: [&str; 12] = [
    "ban4",
    "ban6",
    "ban4_net",
    "ban6_net",
    "ban4_all",
    "ban6_all",
    "ban4_all_net",
    "ban6_all_net",
    "fleet4",
    "fleet6",
    "fleet4_net",
    "fleet6_net",
];

/// What the chain's rules depend on, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Ports and action.
    pub firewall: &'a FirewallConfig,
    /// `[geo] scope`: what blocked countries lose.
    pub geo_scope: BanScope,
    /// The source prefixes of the hash sets.
    pub units: Units,
}

impl Rules<'_> {
    /// The rules of a config.
    pub fn of(config: &authguard_core::config::Config) -> Rules<'_> {
        Rules {
            firewall: &config.firewall,
            geo_scope: config.geo.scope,
            units: Units::of(config),
        }
    }
}

/// The set a ban goes into.
pub fn set_of(net: &IpNet, entry: &Entry, units: Units) -> &'static str {
    let unit = units.is_unit(net);
    if entry.new_only && !entry.all_ports {
        return match (net, unit) {
            (IpNet::V4(_), true) => "fleet4",
            (IpNet::V6(_), true) => "fleet6",
            (IpNet::V4(_), false) => "fleet4_net",
            (IpNet::V6(_), false) => "fleet6_net",
        };
    }
    match (net, entry.all_ports, unit) {
        (IpNet::V4(_), false, true) => "ban4",
        (IpNet::V6(_), false, true) => "ban6",
        (IpNet::V4(_), false, false) => "ban4_net",
        (IpNet::V6(_), false, false) => "ban6_net",
        (IpNet::V4(_), true, true) => "ban4_all",
        (IpNet::V6(_), true, true) => "ban6_all",
        (IpNet::V4(_), true, false) => "ban4_all_net",
        (IpNet::V6(_), true, false) => "ban6_all_net",
    }
}

/// The whole table, replacing whatever is there, in one atomic batch.
pub fn render_full(desired: &Desired, rules: &Rules<'_>, now: Timestamp) -> String {
    let mut s = String::new();
    // Creating then deleting makes the delete safe when the table is absent.
    let _ = writeln!(s, "table {TABLE} {{}}\ndelete table {TABLE}");
    let _ = writeln!(s, "table {TABLE} {{");
    for name in BAN_SETS.iter().chain(&["allow4", "allow6"]) {
        let kind = if name.contains('4') {
            "ipv4_addr"
        } else {
            "ipv6_addr"
        };
        let flags = if name.starts_with("allow") {
            "interval"
        } else if name.ends_with("_net") {
            "interval, timeout"
        } else {
            "timeout"
        };
        let _ = writeln!(s, "  set {name} {{ type {kind}; flags {flags}; }}");
    }
    let geo = geo_sets::layout(&desired.geo.ranges);
    for set in &geo {
        s.push_str(&set.declaration());
    }
    let guarded = port_list(&rules.firewall.ports);
    // Steered connections reach the filter on the key-only port: bans and
    // blocks hold there too.
    let mut filtered = rules.firewall.ports.clone();
    filtered.extend(desired.keyonly.as_ref().map(|k| k.port));
    s.push_str(&render_chains(rules, &port_list(&filtered), &geo));
    let steered = desired.keyonly.as_ref().map(|k| (k, k.sets()));
    if let Some((steering, sets)) = &steered {
        s.push_str(&steering.render_rules(sets, &guarded));
    }
    s.push_str("}\n");
    for set in ["allow4", "allow6"] {
        let items = desired.allowed.iter().filter(|n| set.contains(family(n)));
        let items = items.filter_map(|n| element(n, None, false, now));
        add_elements(&mut s, set, items);
    }
    for set in BAN_SETS {
        let items = desired
            .bans
            .iter()
            .filter(|(n, e)| set_of(n, e, rules.units) == set)
            .filter_map(|(n, e)| element(n, e.expires, !set.ends_with("_net"), now));
        add_elements(&mut s, set, items);
    }
    for set in &geo {
        add_elements(
            &mut s,
            &set.name(),
            set.elements.iter().map(ToString::to_string),
        );
    }
    if let Some((_, sets)) = &steered {
        Steering::render_elements(sets, &mut s);
    }
    s
}

/// `22, 2222`
fn port_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The input chain: allowed networks first, then blocked countries (chain
/// `geo`, for new connections), then every-port bans, then bans of the
/// guarded ports.
fn render_chains(rules: &Rules<'_>, ports: &str, geo: &[geo_sets::GeoSet]) -> String {
    let (config, units) = (rules.firewall, rules.units);
    let (verdict, all_verdict) = match config.action {
        FirewallAction::Drop => ("drop", "drop"),
        // Only TCP can be reset; other protocols get an ICMP refusal.
        FirewallAction::Reject => ("reject with tcp reset", "reject"),
    };
    let on_ports = format!("tcp dport {{ {ports} }} {verdict}");
    // The fleet's bans drop what is opened, never a session already open.
    let new_on_ports = format!("tcp dport {{ {ports} }} ct state new {verdict}");
    let mask4 = mask(IpAddr::V4(Ipv4Addr::UNSPECIFIED), units.v4);
    let mask6 = mask(IpAddr::V6(Ipv6Addr::UNSPECIFIED), units.v6);
    let mut s = String::from(
        "  chain input {\n    type filter hook input priority filter - 10; policy accept;\n    \
         ip saddr @allow4 accept\n    ip6 saddr @allow6 accept\n",
    );
    // A blocked country on every port loses what it opens, not the replies
    // to the server's own connections (its mirrors, resolvers, NTP).
    let (jump, geo_verdict) = match rules.geo_scope {
        BanScope::Ports => (geo_sets::jump_rule(Some(ports)), verdict),
        BanScope::All => (geo_sets::jump_rule(None), all_verdict),
    };
    s.push_str(&jump);
    for (v4, v6, then) in [
        ("ban4_all", "ban6_all", all_verdict.to_owned()),
        ("ban4", "ban6", on_ports),
        ("fleet4", "fleet6", new_on_ports),
    ] {
        let _ = writeln!(s, "    ip saddr{mask4} @{v4} {then}");
        let _ = writeln!(s, "    ip saddr @{v4}_net {then}");
        let _ = writeln!(s, "    ip6 saddr{mask6} @{v6} {then}");
        let _ = writeln!(s, "    ip6 saddr @{v6}_net {then}");
    }
    s.push_str("  }\n");
    s.push_str(&geo_sets::render_chain(geo, geo_verdict));
    s
}

/// ` & 255.255.255.0` for a /24 source prefix; nothing for a whole address.
fn mask(zero: IpAddr, len: u8) -> String {
    match IpNet::new(zero, len) {
        Ok(net) if len < net.max_prefix_len() => format!(" & {}", net.netmask()),
        _ => String::new(),
    }
}

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    }
}

/// One batch that removes `removed` and adds `added`. Each removal is
/// preceded by an add of the same element, so removing one the kernel has
/// already timed out is not an error (nft 1.0.6 has no `destroy element`).
pub fn render_changes(
    added: &[(IpNet, Entry)],
    removed: &[(IpNet, Entry)],
    units: Units,
    now: Timestamp,
) -> String {
    let mut s = String::new();
    for (net, entry) in removed {
        let set = set_of(net, entry, units);
        let addr = element(net, None, units.is_unit(net), now).unwrap_or_default();
        let _ = writeln!(s, "add element {TABLE} {set} {{ {addr} }}");
        let _ = writeln!(s, "delete element {TABLE} {set} {{ {addr} }}");
    }
    for (net, entry) in added {
        if let Some(e) = element(net, entry.expires, units.is_unit(net), now) {
            let _ = writeln!(
                s,
                "add element {TABLE} {} {{ {e} }}",
                set_of(net, entry, units)
            );
        }
    }
    s
}

/// Appends `add element` lines for `items` to `set`, written straight
/// into the batch (no per-element list: 100,000 bans stay cheap).
fn add_elements(s: &mut String, set: &str, items: impl Iterator<Item = String>) {
    let mut count = 0;
    for item in items {
        // Large sets go in chunks so no single line gets unwieldy.
        if count % 4096 == 0 {
            if count > 0 {
                s.push_str(" }\n");
            }
            let _ = write!(s, "add element {TABLE} {set} {{ ");
        } else {
            s.push_str(", ");
        }
        s.push_str(&item);
        count += 1;
    }
    if count > 0 {
        s.push_str(" }\n");
    }
}

/// One set element: `203.0.113.7 timeout 593s`, or `None` if already
/// expired. In a hash set (`plain`) a source is its network address.
fn element(net: &IpNet, expires: Option<Timestamp>, plain: bool, now: Timestamp) -> Option<String> {
    let addr = if plain || net.prefix_len() == net.max_prefix_len() {
        net.network().to_string()
    } else {
        net.to_string()
    };
    match expires {
        None => Some(addr),
        Some(e) if e > now => Some(format!("{addr} timeout {}s", e - now)),
        Some(_) => None,
    }
}

/// Runs one batch through `nft -f -`. The whole batch applies, or none of it.
pub fn apply(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "nft rejected the batch: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::{GeoBlock, parse_source};
    use std::sync::Arc;

    const UNITS: Units = Units { v4: 32, v6: 64 };

    fn rules(firewall: &FirewallConfig, geo_scope: BanScope, units: Units) -> Rules<'_> {
        Rules {
            firewall,
            geo_scope,
            units,
        }
    }

    fn ban(s: &str, expires: Option<Timestamp>, all_ports: bool) -> (IpNet, Entry) {
        let entry = Entry {
            expires,
            all_ports,
            new_only: false,
        };
        (parse_source(s).unwrap(), entry)
    }

    #[test]
    fn renders_one_atomic_batch_with_timeouts() {
        let d = Desired::from_parts(
            [
                ban("203.0.113.7", Some(1600), false),
                ban("2001:db8::/64", None, false),
                ban("2001:db8:5::/48", None, false),
                ban("198.51.100.3", Some(1100), true),
                ban("192.0.2.0/24", Some(1100), false),
            ],
            vec![parse_source("127.0.0.0/8").unwrap()],
            UNITS,
        );
        let config = FirewallConfig::default();
        let s = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        let has = |want: &str| assert!(s.contains(want), "missing {want:?} in:\n{s}");
        assert!(
            s.starts_with("table inet authguard {}\ndelete table inet authguard\n"),
            "{s}"
        );
        has("set ban4 { type ipv4_addr; flags timeout; }");
        has("set ban6_net { type ipv6_addr; flags interval, timeout; }");
        has("ip saddr @ban4 tcp dport { 22 } drop");
        has("ip6 saddr & ffff:ffff:ffff:ffff:: @ban6 tcp dport { 22 } drop");
        has("ip6 saddr @ban6_net tcp dport { 22 } drop");
        has("add element inet authguard ban4 { 203.0.113.7 timeout 600s }");
        has("add element inet authguard ban6 { 2001:db8:: }");
        has("add element inet authguard ban6_net { 2001:db8:5::/48 }");
        has("add element inet authguard ban4_net { 192.0.2.0/24 timeout 100s }");
        has("add element inet authguard allow4 { 127.0.0.0/8 }");
        has("ip saddr @ban4_all drop");
        has("add element inet authguard ban4_all { 198.51.100.3 timeout 100s }");
        assert!(
            !s.contains("ban4 { 198.51.100.3"),
            "an all-ports ban is not also a ports ban: {s}"
        );
        let wide = Units { v4: 24, v6: 56 };
        let s = render_full(&d, &rules(&config, BanScope::Ports, wide), 1000);
        assert!(
            s.contains("ip saddr & 255.255.255.0 @ban4 tcp dport"),
            "{s}"
        );
        assert!(s.contains("ban4_net { 203.0.113.7 timeout 600s }"), "{s}");
    }

    fn geo_ranges(ranges: &[(&str, &str)]) -> Arc<GeoBlock> {
        let keys = ranges.iter().map(|(lo, hi)| {
            let key = |a: &str| authguard_core::addr::key_of(a.parse().unwrap());
            (key(lo), key(hi))
        });
        Arc::new(GeoBlock {
            revision: 3,
            ranges: authguard_core::geo::coalesce(keys),
            keyonly: Vec::new(),
        })
    }

    #[test]
    fn steered_connections_stay_banned_on_the_key_only_port() {
        let mut d = Desired::from_parts([ban("203.0.113.7", None, false)], Vec::new(), UNITS);
        let config = FirewallConfig::default();
        let without = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        assert!(!without.contains("keyonly"), "{without}");
        d.keyonly = Some(crate::firewall::steering::Steering {
            port: 2223,
            set: authguard_core::policy::keyonly::KeyOnlySet::Networks(vec![
                parse_source("198.51.100.9").unwrap(),
            ]),
        });
        let s = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        let has = |want: &str| assert!(s.contains(want), "missing {want:?} in:\n{s}");
        has("ip saddr @ban4 tcp dport { 22, 2223 } drop");
        has("tcp dport { 22, 2223 } ct state new jump geo");
        has("tcp dport { 22 } jump keyonly");
        has("add element inet authguard keyonly4_32 { 198.51.100.9 }");
    }

    #[test]
    fn blocked_countries_are_dropped_after_the_allowed_networks() {
        let mut d = Desired::from_parts(
            [ban("203.0.113.7", None, false)],
            vec![parse_source("198.51.100.0/25").unwrap()],
            UNITS,
        );
        d.geo = geo_ranges(&[
            ("198.51.100.0", "198.51.100.255"),
            ("192.0.2.7", "192.0.2.7"),
            ("2001:db8::", "2001:db8::ff"),
        ]);
        let config = FirewallConfig::default();
        let s = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        let has = |want: &str| assert!(s.contains(want), "missing {want:?} in:\n{s}");
        has("set geo4_24 { type ipv4_addr; }");
        has("set geo4_32 { type ipv4_addr; }");
        has("set geo6_120 { type ipv6_addr; }");
        has("add element inet authguard geo4_24 { 198.51.100.0 }");
        has("add element inet authguard geo4_32 { 192.0.2.7 }");
        has("add element inet authguard geo6_120 { 2001:db8:: }");
        has("ip saddr & 255.255.255.0 @geo4_24 drop");
        let line = |rule: &str| {
            s.lines()
                .position(|l| l.trim() == rule)
                .unwrap_or_else(|| panic!("no rule {rule:?} in:\n{s}"))
        };
        let geo = line("tcp dport { 22 } ct state new jump geo");
        assert!(
            line("ip saddr @allow4 accept") < geo,
            "allowed networks win"
        );
        assert!(line("ip saddr @ban4 tcp dport { 22 } drop") > geo);

        let reject = FirewallConfig {
            action: FirewallAction::Reject,
            ports: vec![22, 2222],
            ..FirewallConfig::default()
        };
        let s = render_full(&d, &rules(&reject, BanScope::Ports, UNITS), 1000);
        assert!(
            s.contains("tcp dport { 22, 2222 } ct state new jump geo"),
            "{s}"
        );
        assert!(s.contains("@geo6_120 reject with tcp reset"), "{s}");
        let s = render_full(&d, &rules(&config, BanScope::All, UNITS), 1000);
        assert!(s.contains("\n    ct state new jump geo\n"), "{s}");
        assert!(s.contains("ip saddr @geo4_32 drop"), "{s}");
        let s = render_full(&d, &rules(&reject, BanScope::All, UNITS), 1000);
        assert!(s.contains("@geo6_120 reject\n"), "{s}");

        // Nothing blocked: no country sets, an empty chain.
        d.geo = Arc::default();
        let s = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        assert!(s.contains("  chain geo {\n  }\n"), "{s}");
        assert!(!s.contains("set geo"), "{s}");
    }

    #[test]
    fn large_country_sets_go_in_chunks() {
        let mut d = Desired::default();
        let ranges: Vec<(String, String)> = (0..10_000u32)
            .map(|i| {
                let lo = std::net::Ipv4Addr::from((1 << 24) + i * 4);
                let hi = std::net::Ipv4Addr::from((1 << 24) + i * 4 + 1);
                (lo.to_string(), hi.to_string())
            })
            .collect();
        let refs: Vec<(&str, &str)> = ranges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        d.geo = geo_ranges(&refs);
        let config = FirewallConfig::default();
        let s = render_full(&d, &rules(&config, BanScope::Ports, UNITS), 1000);
        let lines: Vec<&str> = s
            .lines()
            .filter(|l| l.starts_with("add element inet authguard geo4_31"))
            .collect();
        assert_eq!(lines.len(), 3, "10,000 /31 networks in chunks of 4096");
        let elements: usize = lines.iter().map(|l| l.matches(',').count() + 1).sum();
        assert_eq!(elements, 10_000);
    }

    #[test]
    fn changes_remove_before_they_add() {
        let s = render_changes(
            &[ban("2001:db8:1:2::/64", Some(1060), false)],
            &[ban("198.51.100.0/24", None, true)],
            UNITS,
            1000,
        );
        assert_eq!(
            s,
            "add element inet authguard ban4_all_net { 198.51.100.0/24 }\n\
             delete element inet authguard ban4_all_net { 198.51.100.0/24 }\n\
             add element inet authguard ban6 { 2001:db8:1:2:: timeout 60s }\n"
        );
    }
}

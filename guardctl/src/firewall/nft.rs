//! nftables: table `inet authguard`, rendered as one `nft -f -` batch and
//! read back with `nft -j list`. Addresses reach nft as typed values
//! formatted by Rust, on stdin, never through a shell.

use super::{Desired, Entry};
use authguard_core::config::{FirewallAction, FirewallConfig};
use authguard_core::time::Timestamp;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

/// The table every authguard rule lives in.
pub const TABLE: &str = "inet authguard";

/// The whole table, replacing whatever is there, in one atomic batch.
pub fn render_full(desired: &Desired, config: &FirewallConfig, now: Timestamp) -> String {
    let ports = config
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let (verdict, all_verdict) = match config.action {
        FirewallAction::Drop => ("drop", "drop"),
        // Only TCP can be reset; other protocols get an ICMP refusal.
        FirewallAction::Reject => ("reject with tcp reset", "reject"),
    };
    let mut s = String::new();
    // Creating then deleting makes the delete safe when the table is absent.
    let _ = writeln!(s, "table {TABLE} {{}}\ndelete table {TABLE}");
    let _ = writeln!(s, "table {TABLE} {{");
    for (name, kind, timeout) in [
        ("ban4", "ipv4_addr", true),
        ("ban6", "ipv6_addr", true),
        ("ban4_all", "ipv4_addr", true),
        ("ban6_all", "ipv6_addr", true),
        ("allow4", "ipv4_addr", false),
        ("allow6", "ipv6_addr", false),
    ] {
        let flags = if timeout {
            "interval, timeout"
        } else {
            "interval"
        };
        let _ = writeln!(s, "  set {name} {{ type {kind}; flags {flags}; }}");
    }
    let _ = writeln!(
        s,
        "  chain input {{\n    type filter hook input priority filter - 10; policy accept;\n    \
         ip saddr @allow4 accept\n    ip6 saddr @allow6 accept\n    \
         ip saddr @ban4_all {all_verdict}\n    \
         ip6 saddr @ban6_all {all_verdict}\n    \
         ip saddr @ban4 tcp dport {{ {ports} }} {verdict}\n    \
         ip6 saddr @ban6 tcp dport {{ {ports} }} {verdict}\n  }}\n}}"
    );
    let allowed: Vec<(IpNet, Option<Timestamp>)> =
        desired.allowed.iter().map(|n| (*n, None)).collect();
    add_elements(&mut s, "allow", "", &allowed, now);
    for (suffix, all_ports) in [("", false), ("_all", true)] {
        let bans: Vec<(IpNet, Option<Timestamp>)> = desired
            .bans
            .iter()
            .filter(|(_, e)| e.all_ports == all_ports)
            .map(|(n, e)| (*n, e.expires))
            .collect();
        add_elements(&mut s, "ban", suffix, &bans, now);
    }
    s
}

/// One batch that removes `removed` and adds `added`. Each removal is
/// preceded by an add of the same element, so removing one the kernel has
/// already timed out is not an error (nft 1.0.6 has no `destroy element`).
pub fn render_changes(
    added: &[(IpNet, Entry)],
    removed: &[(IpNet, Entry)],
    now: Timestamp,
) -> String {
    let mut s = String::new();
    for (net, entry) in removed {
        let set = set_of(net, entry);
        let addr = element(net, None, now).unwrap_or_default();
        let _ = writeln!(s, "add element {TABLE} {set} {{ {addr} }}");
        let _ = writeln!(s, "delete element {TABLE} {set} {{ {addr} }}");
    }
    for (net, entry) in added {
        if let Some(e) = element(net, entry.expires, now) {
            let _ = writeln!(s, "add element {TABLE} {} {{ {e} }}", set_of(net, entry));
        }
    }
    s
}

fn set_of(net: &IpNet, entry: &Entry) -> &'static str {
    match (net, entry.all_ports) {
        (IpNet::V4(_), false) => "ban4",
        (IpNet::V6(_), false) => "ban6",
        (IpNet::V4(_), true) => "ban4_all",
        (IpNet::V6(_), true) => "ban6_all",
    }
}

/// Appends `add element` lines for `elements` to the
/// `<prefix>4<suffix>` / `<prefix>6<suffix>` sets.
fn add_elements(
    s: &mut String,
    prefix: &str,
    suffix: &str,
    elements: &[(IpNet, Option<Timestamp>)],
    now: Timestamp,
) {
    for (family, want_v4) in [("4", true), ("6", false)] {
        let items: Vec<String> = elements
            .iter()
            .filter(|(n, _)| matches!(n, IpNet::V4(_)) == want_v4)
            .filter_map(|(n, expires)| element(n, *expires, now))
            .collect();
        // Large sets go in chunks so no single line gets unwieldy.
        for chunk in items.chunks(4096) {
            let _ = writeln!(
                s,
                "add element {TABLE} {prefix}{family}{suffix} {{ {} }}",
                chunk.join(", ")
            );
        }
    }
}

/// One set element: `203.0.113.7 timeout 593s`, or `None` if already expired.
fn element(net: &IpNet, expires: Option<Timestamp>, now: Timestamp) -> Option<String> {
    let addr = if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
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

/// What the kernel holds now: the ban sets' networks, or `None` when the
/// table (or its chain) is missing.
pub fn current_bans() -> anyhow::Result<Option<BTreeSet<IpNet>>> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "inet", "authguard"])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run nft: {e}"))?;
    if !out.status.success() {
        return Ok(None);
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(parse_listing(&json))
}

/// Parses `nft -j list table inet authguard`: the elements of ban4 and ban6,
/// or `None` if the input chain is not there.
pub fn parse_listing(json: &serde_json::Value) -> Option<BTreeSet<IpNet>> {
    let items = json.get("nftables")?.as_array()?;
    let has_chain = items
        .iter()
        .any(|i| i.pointer("/chain/name").and_then(|n| n.as_str()) == Some("input"));
    if !has_chain {
        return None;
    }
    let mut nets = BTreeSet::new();
    for set in items.iter().filter_map(|i| i.get("set")) {
        let name = set.get("name").and_then(|n| n.as_str()).unwrap_or("");
        if !["ban4", "ban6", "ban4_all", "ban6_all"].contains(&name) {
            continue;
        }
        for elem in set
            .get("elem")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(net) = parse_elem(elem) {
                nets.insert(net);
            }
        }
    }
    Some(nets)
}

/// An element is `"1.2.3.4"`, `{"prefix": {"addr", "len"}}`, `{"range": [a, b]}`
/// or any of these wrapped in `{"elem": {"val": …, "timeout": …}}`.
fn parse_elem(v: &serde_json::Value) -> Option<IpNet> {
    if let Some(inner) = v.pointer("/elem/val") {
        return parse_elem(inner);
    }
    if let Some(s) = v.as_str() {
        return super::parse_source(s);
    }
    if let Some(p) = v.get("prefix") {
        let addr = p.get("addr")?.as_str()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        return IpNet::new(addr.parse().ok()?, len).ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::parse_source;

    #[test]
    fn renders_one_atomic_batch_with_timeouts() {
        let d = Desired::from_parts(
            [
                (
                    parse_source("203.0.113.7").unwrap(),
                    Entry {
                        expires: Some(1600),
                        all_ports: false,
                    },
                ),
                (
                    parse_source("2001:db8::/64").unwrap(),
                    Entry {
                        expires: None,
                        all_ports: false,
                    },
                ),
                (
                    parse_source("198.51.100.3").unwrap(),
                    Entry {
                        expires: Some(1100),
                        all_ports: true,
                    },
                ),
            ],
            vec![parse_source("127.0.0.0/8").unwrap()],
        );
        let s = render_full(&d, &FirewallConfig::default(), 1000);
        assert!(
            s.starts_with("table inet authguard {}\ndelete table inet authguard\n"),
            "{s}"
        );
        assert!(s.contains("ip saddr @ban4 tcp dport { 22 } drop"), "{s}");
        assert!(
            s.contains("add element inet authguard ban4 { 203.0.113.7 timeout 600s }"),
            "{s}"
        );
        assert!(
            s.contains("add element inet authguard ban6 { 2001:db8::/64 }"),
            "{s}"
        );
        assert!(
            s.contains("add element inet authguard allow4 { 127.0.0.0/8 }"),
            "{s}"
        );
        assert!(s.contains("ip saddr @ban4_all drop"), "{s}");
        assert!(
            s.contains("add element inet authguard ban4_all { 198.51.100.3 timeout 100s }"),
            "{s}"
        );
        assert!(
            !s.contains("ban4 { 198.51.100.3"),
            "an all-ports ban is not also a ports ban: {s}"
        );
    }

    #[test]
    fn parses_nft_json_elements() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "authguard"}},
            {"set": {"family": "inet", "name": "ban4", "table": "authguard", "type": "ipv4_addr",
              "elem": [{"elem": {"val": "203.0.113.7", "timeout": 600, "expires": 590}},
                       {"prefix": {"addr": "198.51.100.0", "len": 24}}]}},
            {"set": {"family": "inet", "name": "ban6", "table": "authguard", "type": "ipv6_addr",
              "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8::", "len": 64}}, "timeout": 60}}]}},
            {"chain": {"family": "inet", "table": "authguard", "name": "input"}}]}"#,
        )
        .unwrap();
        let got: Vec<String> = parse_listing(&json)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["198.51.100.0/24", "203.0.113.7/32", "2001:db8::/64"]);
        let no_chain: serde_json::Value =
            serde_json::from_str(r#"{"nftables": [{"table": {}}]}"#).unwrap();
        assert_eq!(parse_listing(&no_chain), None);
    }
}

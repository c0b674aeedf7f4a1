//! Reading table `inet authguard` back from the kernel (`nft -j list`), to
//! compare with the store: which ban elements it holds, or that it is gone.
//!
//! nft 1.0 prints every element of every set for `list table`; with a
//! large country blocked (sets `geo4_*`/`geo6_*`) that costs half a
//! second, so the chains and each ban set are listed on their own.

use super::Units;
use super::nft::BAN_SETS;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;

/// What the kernel holds now: the ban sets' networks, or `None` when the
/// table (or its chain, or a ban set) is missing. Lists the chains and each
/// ban set on its own, a few milliseconds each whatever the country sets hold.
pub fn current_bans(units: Units) -> anyhow::Result<Option<BTreeSet<IpNet>>> {
    let Some(mut listing) = list(&["list", "chains", "inet"])? else {
        return Ok(None);
    };
    for set in BAN_SETS {
        match list(&["list", "set", "inet", "authguard", set])? {
            Some(part) => listing.nftables.extend(part.nftables),
            None => return Ok(None),
        }
    }
    Ok(parse_listing(listing, units))
}

/// `nft -j ARGS…`, parsed; `None` when nft refuses (no such table or set).
fn list(args: &[&str]) -> anyhow::Result<Option<Listing>> {
    let out = Command::new("nft")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run nft: {e}"))?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

/// `nft -j list table …`, only the parts read here (typed, so 100,000
/// elements do not become 100,000 generic JSON maps).
#[derive(serde::Deserialize)]
pub struct Listing {
    nftables: Vec<Item>,
}

#[derive(serde::Deserialize)]
struct Item {
    set: Option<SetItem>,
    chain: Option<Named>,
}

#[derive(serde::Deserialize)]
struct Named {
    name: String,
    /// The table it belongs to (`list chains` lists every table's).
    table: Option<String>,
}

#[derive(serde::Deserialize)]
struct SetItem {
    name: String,
    #[serde(default)]
    elem: Vec<Elem>,
}

/// An element is `"1.2.3.4"`, `{"prefix": {"addr", "len"}}`, `{"range": …}`,
/// or any of these wrapped in `{"elem": {"val": …, "timeout": …}}`.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Elem {
    Addr(IpAddr),
    Prefix { prefix: Prefix },
    Wrapped { elem: Box<Wrapped> },
    Other(serde::de::IgnoredAny),
}

#[derive(serde::Deserialize)]
struct Wrapped {
    val: Elem,
}

#[derive(serde::Deserialize)]
struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Elem {
    /// The network; a hash set's address stands for its source prefix.
    fn net(&self, plain: bool, units: Units) -> Option<IpNet> {
        match self {
            Elem::Addr(a) if plain => {
                let len = if a.is_ipv4() { units.v4 } else { units.v6 };
                IpNet::new(*a, len).ok()
            }
            Elem::Addr(a) => Some(IpNet::from(*a)),
            Elem::Prefix { prefix } => IpNet::new(prefix.addr, prefix.len).ok(),
            Elem::Wrapped { elem } => elem.val.net(plain, units),
            Elem::Other(_) => None,
        }
    }
}

/// The elements of every ban set (never the allow or country sets), or
/// `None` if authguard's input chain is not there.
pub fn parse_listing(listing: Listing, units: Units) -> Option<BTreeSet<IpNet>> {
    let items = listing.nftables;
    let ours = |c: &Named| c.name == "input" && c.table.as_deref().is_none_or(|t| t == "authguard");
    if !items.iter().any(|i| i.chain.as_ref().is_some_and(ours)) {
        return None;
    }
    let mut nets = BTreeSet::new();
    for set in items.iter().filter_map(|i| i.set.as_ref()) {
        if !BAN_SETS.contains(&set.name.as_str()) {
            continue;
        }
        let plain = !set.name.ends_with("_net");
        nets.extend(set.elem.iter().filter_map(|e| e.net(plain, units)));
    }
    Some(nets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: Units = Units { v4: 32, v6: 64 };

    #[test]
    fn parses_nft_json_elements() {
        let listing: Listing = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {}}, {"table": {"family": "inet", "name": "authguard"}},
            {"set": {"family": "inet", "name": "ban4", "table": "authguard", "type": "ipv4_addr",
              "elem": [{"elem": {"val": "203.0.113.7", "timeout": 600, "expires": 590}}, "192.0.2.1"]}},
            {"set": {"family": "inet", "name": "ban4_net", "table": "authguard", "type": "ipv4_addr",
              "elem": [{"prefix": {"addr": "198.51.100.0", "len": 24}},
                       {"range": ["198.51.101.1", "198.51.101.9"]}]}},
            {"set": {"family": "inet", "name": "ban6", "table": "authguard", "type": "ipv6_addr",
              "elem": [{"elem": {"val": "2001:db8::", "timeout": 60}}]}},
            {"set": {"family": "inet", "name": "ban6_net", "table": "authguard", "type": "ipv6_addr",
              "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8:5::", "len": 48}}, "timeout": 60}}]}},
            {"set": {"family": "inet", "name": "allow4", "elem": ["10.0.0.1"]}},
            {"set": {"family": "inet", "name": "geo4_24", "table": "authguard", "type": "ipv4_addr",
              "elem": ["9.9.9.0", "8.8.8.0"]}},
            {"set": {"family": "inet", "name": "geo6_48", "table": "authguard", "type": "ipv6_addr",
              "elem": ["2001:db8:9::"]}},
            {"chain": {"family": "inet", "table": "authguard", "name": "input"}}]}"#,
        )
        .unwrap();
        let got: Vec<String> = parse_listing(listing, UNITS)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "192.0.2.1/32",
                "198.51.100.0/24",
                "203.0.113.7/32",
                "2001:db8::/64",
                "2001:db8:5::/48"
            ]
        );
        let no_chain: Listing = serde_json::from_str(r#"{"nftables": [{"table": {}}]}"#).unwrap();
        assert_eq!(parse_listing(no_chain, UNITS), None);
        // `list chains inet` shows other tables' chains too: theirs do not count.
        let other_table: Listing = serde_json::from_str(
            r#"{"nftables": [{"chain": {"family": "inet", "table": "filter", "name": "input"}}]}"#,
        )
        .unwrap();
        assert_eq!(parse_listing(other_table, UNITS), None);
    }
}

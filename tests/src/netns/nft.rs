//! nftables in the lab's server namespace: running `nft`, reading table
//! `inet authguard` as JSON, and the sets' elements as address ranges
//! ([`NftElement`]) so a test can ask whether a set covers an address.
//!
//! Whether packets actually pass is `probe`'s business, not this file's.

use super::Lab;
use crate::env::describe_output;
use crate::process::{CLIENT_TIMEOUT, Finished, run_with_timeout};
use serde_json::Value;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::Output;

impl Lab {
    /// Runs `nft ARGS…` in the server namespace.
    pub fn nft(&self, args: &[&str]) -> Output {
        let mut argv = vec!["nft"];
        argv.extend_from_slice(args);
        to_output(run_with_timeout(
            &mut self.exec_in("srv", &argv),
            None,
            CLIENT_TIMEOUT,
        ))
    }

    /// Runs an nft script (`nft -f -`) in the server namespace; panics if nft refuses it.
    pub fn nft_script(&self, script: &str) {
        let f = run_with_timeout(
            &mut self.exec_in("srv", &["nft", "-f", "-"]),
            Some(script.as_bytes()),
            CLIENT_TIMEOUT,
        );
        assert!(
            f.status.success(),
            "nft -f - in {} refused:\n{script}\n{}",
            self.server_ns(),
            f.describe()
        );
    }

    /// `nft list ruleset` in the server namespace (for assertion messages).
    pub fn ruleset(&self) -> String {
        let out = self.nft(&["list", "ruleset"]);
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            describe_output(&out)
        }
    }

    /// `nft -j list table inet authguard` in the server namespace, or None
    /// when the table does not exist.
    pub fn authguard_table(&self) -> Option<Value> {
        let out = self.nft(&["-j", "list", "table", "inet", "authguard"]);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "nft -j printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
    }

    /// The elements of set `set` of table `inet authguard`; None when the
    /// table or the set does not exist.
    pub fn set_elements(&self, set: &str) -> Option<Vec<NftElement>> {
        set_elements(&self.authguard_table()?, set)
    }

    /// True when an element of set `set` (`ban4`, `ban6_net`, `allow4`, …) covers `addr`.
    pub fn set_covers(&self, set: &str, addr: &str) -> bool {
        let addr: IpAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{addr:?} is not an address: {e}"));
        self.set_elements(set)
            .unwrap_or_default()
            .iter()
            .any(|e| e.covers(addr))
    }

    /// The blocked countries' networks: the elements of every set
    /// `geo4_LEN` / `geo6_LEN` (hash sets of LEN-bit prefixes), as ranges.
    pub fn geo_elements(&self) -> Vec<NftElement> {
        let Some(table) = self.authguard_table() else {
            return Vec::new();
        };
        let names: Vec<String> = table["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["set"]["name"].as_str())
            .filter(|n| n.starts_with("geo4_") || n.starts_with("geo6_"))
            .map(str::to_owned)
            .collect();
        names
            .iter()
            .flat_map(|n| set_elements(&table, n).unwrap_or_default())
            .collect()
    }

    /// True when a blocked country's set covers `addr`.
    pub fn geo_covers(&self, addr: &str) -> bool {
        let addr: IpAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{addr:?} is not an address: {e}"));
        self.geo_elements().iter().any(|e| e.covers(addr))
    }

    /// Lab plumbing and the server's ruleset, for assertion messages.
    pub fn diag(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "--- nft list ruleset in {} ---", self.server_ns());
        s.push_str(&self.ruleset());
        s
    }
}

/// One element of an nftables set, as an inclusive address range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftElement {
    /// The first address covered.
    pub first: IpAddr,
    /// The last address covered.
    pub last: IpAddr,
    /// The element as nft printed it (`203.0.113.10`, `2001:db8:2::/64`, `a-b`).
    pub text: String,
    /// Its `timeout` in seconds, when it has one.
    pub timeout: Option<u64>,
    /// Seconds until it expires, when nft says.
    pub expires: Option<u64>,
}

impl NftElement {
    /// True when `addr` lies within this element.
    pub fn covers(&self, addr: IpAddr) -> bool {
        match (self.first, self.last, addr) {
            (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => {
                (u32::from(a)..=u32::from(b)).contains(&u32::from(x))
            }
            (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => {
                (u128::from(a)..=u128::from(b)).contains(&u128::from(x))
            }
            _ => false,
        }
    }
}

/// The elements of set `set` in an `nft -j list …` document; None when the
/// set is not in it.
pub fn set_elements(listing: &Value, name: &str) -> Option<Vec<NftElement>> {
    let items = listing.get("nftables")?.as_array()?;
    let set = items
        .iter()
        .filter_map(|i| i.get("set"))
        .find(|s| s.get("name").and_then(Value::as_str) == Some(name))?;
    let elems = match set.get("elem").and_then(Value::as_array) {
        Some(a) => a,
        None => return Some(Vec::new()),
    };
    // Hash sets of prefixes: the rule masks the address, the element is
    // the prefix's first address. The IPv6 source sets hold /64s (the
    // default ipv6_prefix); country set `geo4_24` holds /24s.
    let prefix = match name {
        "ban6" | "ban6_all" => Some(64),
        _ => name
            .strip_prefix("geo4_")
            .or_else(|| name.strip_prefix("geo6_"))
            .and_then(|len| len.parse().ok()),
    };
    Some(
        elems
            .iter()
            .map(|e| parse_element(e).unwrap_or_else(|| panic!("unexpected nft set element: {e}")))
            .map(|mut e| {
                if let Some(len) = prefix.filter(|_| e.first == e.last) {
                    (e.first, e.last) = prefix_range(e.first, len);
                }
                e
            })
            .collect(),
    )
}

/// `"1.2.3.4"`, `{"prefix": {"addr", "len"}}`, `{"range": [a, b]}`, or one
/// of these wrapped in `{"elem": {"val": …, "timeout": …, "expires": …}}`.
fn parse_element(v: &Value) -> Option<NftElement> {
    if let Some(elem) = v.get("elem") {
        let mut inner = parse_element(elem.get("val")?)?;
        inner.timeout = elem.get("timeout").and_then(Value::as_u64);
        inner.expires = elem.get("expires").and_then(Value::as_u64);
        return Some(inner);
    }
    let element = |first: IpAddr, last: IpAddr, text: String| NftElement {
        first,
        last,
        text,
        timeout: None,
        expires: None,
    };
    if let Some(s) = v.as_str() {
        let a: IpAddr = s.parse().ok()?;
        return Some(element(a, a, s.to_owned()));
    }
    if let Some(p) = v.get("prefix") {
        let addr: IpAddr = p.get("addr")?.as_str()?.parse().ok()?;
        let len = u8::try_from(p.get("len")?.as_u64()?).ok()?;
        let (first, last) = prefix_range(addr, len);
        return Some(element(first, last, format!("{addr}/{len}")));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        let first: IpAddr = r.first()?.as_str()?.parse().ok()?;
        let last: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
        return Some(element(first, last, format!("{first}-{last}")));
    }
    None
}

/// The first and last address of `addr/len`.
pub(super) fn prefix_range(addr: IpAddr, len: u8) -> (IpAddr, IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let base = u32::from(a) & !host;
            (IpAddr::V4(base.into()), IpAddr::V4((base | host).into()))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let base = u128::from(a) & !host;
            (IpAddr::V6(base.into()), IpAddr::V6((base | host).into()))
        }
    }
}

/// A [`Finished`] as the [`Output`] `Command::output` would give.
fn to_output(f: Finished) -> Output {
    Output {
        status: f.status,
        stdout: f.stdout.into_bytes(),
        stderr: f.stderr.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nft_elements_and_covers() {
        let json: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {}},
            {"set": {"name": "ban4", "elem": [
                {"elem": {"val": "203.0.113.10", "timeout": 600, "expires": 590}},
                {"prefix": {"addr": "198.51.100.0", "len": 24}},
                {"range": ["192.0.2.10", "192.0.2.20"]}]}},
            {"set": {"name": "ban6", "elem": [
                {"elem": {"val": "2001:db8:2::", "timeout": 60}}]}},
            {"set": {"name": "ban6_net", "elem": [
                {"elem": {"val": {"prefix": {"addr": "2001:db8:4::", "len": 48}}, "timeout": 60}}]}},
            {"set": {"name": "allow4"}}]}"#,
        )
        .expect("json");
        let ban4 = set_elements(&json, "ban4").expect("ban4");
        assert_eq!(ban4.len(), 3);
        assert_eq!(ban4[0].timeout, Some(600));
        let covers =
            |set: &[NftElement], a: &str| set.iter().any(|e| e.covers(a.parse().expect("address")));
        assert!(covers(&ban4, "203.0.113.10"));
        assert!(!covers(&ban4, "203.0.113.11"));
        assert!(covers(&ban4, "198.51.100.255"));
        assert!(covers(&ban4, "192.0.2.15"));
        assert!(!covers(&ban4, "192.0.2.21"));
        let ban6 = set_elements(&json, "ban6").expect("ban6");
        assert!(covers(&ban6, "2001:db8:2::11"));
        assert!(!covers(&ban6, "2001:db8:3::11"));
        let ban6_net = set_elements(&json, "ban6_net").expect("ban6_net");
        assert!(covers(&ban6_net, "2001:db8:4:ff::1"));
        assert!(!covers(&ban6_net, "2001:db8:5::1"));
        assert_eq!(set_elements(&json, "allow4"), Some(Vec::new()));
        assert_eq!(set_elements(&json, "nope"), None);
    }
}

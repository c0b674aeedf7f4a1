//! The `ip` plumbing under a [`super::Lab`]: addresses and prefixes, the
//! server's gateway for a subnet, deleting a namespace (and what still runs
//! in it), sweeping namespaces left behind by dead test processes.
//!
//! No namespace is *built* here; that is `lab`.

use super::lab::SERVER_ADDRS;
use super::nft::prefix_range;
use crate::process::{CLIENT_TIMEOUT, run_with_timeout};
use crate::sys::{Signal, kill_process};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// `ADDR/LEN` split; panics on anything else.
pub(super) fn parse_cidr(cidr: &str) -> (IpAddr, u8) {
    let (addr, len) = cidr
        .split_once('/')
        .unwrap_or_else(|| panic!("{cidr:?}: give addresses with a prefix length"));
    let addr: IpAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("{cidr:?}: bad address: {e}"));
    let len: u8 = len
        .parse()
        .unwrap_or_else(|e| panic!("{cidr:?}: bad prefix length: {e}"));
    (addr, len)
}

/// The server address in the subnet of `addr/len`.
pub(super) fn gateway_for(addr: IpAddr, len: u8) -> String {
    for server in SERVER_ADDRS {
        let (s, _) = parse_cidr(server);
        if s.is_ipv4() == addr.is_ipv4() && prefix_range(s, len) == prefix_range(addr, len) {
            assert_ne!(s, addr, "{addr} is the server's own address");
            return s.to_string();
        }
    }
    panic!("{addr}/{len} is in none of the server's subnets {SERVER_ADDRS:?}")
}

/// `ip -n NS addr add CIDR dev DEV` (`nodad` for IPv6).
pub(super) fn add_address(ns: &str, dev: &str, cidr: &str) {
    let (addr, _) = parse_cidr(cidr);
    let mut args = vec!["-n", ns, "addr", "add", cidr, "dev", dev];
    if addr.is_ipv6() {
        args.push("nodad");
    }
    ip(&args);
}

/// `ip ARGS…`; panics unless it succeeds.
pub(super) fn ip(args: &[&str]) {
    let f = run_with_timeout(Command::new("ip").args(args), None, CLIENT_TIMEOUT);
    assert!(
        f.status.success(),
        "ip {}: {}",
        args.join(" "),
        f.describe()
    );
}

/// Ends what still runs in `ns` (processes our tests started there) and deletes it.
pub(super) fn delete_namespace(ns: &str) {
    let pids = run_with_timeout(
        Command::new("ip").args(["netns", "pids", ns]),
        None,
        CLIENT_TIMEOUT,
    );
    for pid in pids
        .stdout
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        kill_process(pid, Signal::Kill);
    }
    let f = run_with_timeout(
        Command::new("ip").args(["netns", "del", ns]),
        None,
        CLIENT_TIMEOUT,
    );
    if !f.status.success() {
        eprintln!("lab: cannot delete namespace {ns}: {}", f.describe());
    }
}

/// Deletes `ag-<role>-<pid>-<n>` namespaces whose test process is gone.
pub(super) fn sweep_stale_namespaces() {
    let list = run_with_timeout(
        Command::new("ip").args(["netns", "list"]),
        None,
        CLIENT_TIMEOUT,
    );
    for name in list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let mut parts = name.rsplitn(3, '-');
        let (Some(n), Some(pid), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if rest.starts_with("ag-")
            && numeric(n)
            && numeric(pid)
            && !Path::new("/proc").join(pid).exists()
        {
            eprintln!("lab: deleting stale namespace {name} (process {pid} is gone)");
            delete_namespace(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_are_the_server_address_of_the_subnet() {
        assert_eq!(
            gateway_for("203.0.113.10".parse().expect("a"), 24),
            "203.0.113.1"
        );
        assert_eq!(
            gateway_for("2001:db8:2::11".parse().expect("a"), 64),
            "2001:db8:2::1"
        );
        assert_eq!(
            gateway_for("192.0.2.7".parse().expect("a"), 24),
            "192.0.2.1"
        );
    }
}

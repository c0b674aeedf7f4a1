//! The [`Lab`] itself: the server namespace with its bridge, the attacker
//! namespaces joined to it, the scratch namespace; naming them, running a
//! command in one, deleting them all on drop.
//!
//! The `ip` plumbing is in `namespaces`; nft, probes, ssh clients, sshd and
//! the daemon each have their own file beside this one.

use super::namespaces::{
    add_address, delete_namespace, gateway_for, ip, parse_cidr, sweep_stale_namespaces,
};
use crate::process::{CLIENT_TIMEOUT, run_with_timeout};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's addresses on its bridge (all on-link for the attackers).
pub const SERVER_ADDRS: [&str; 6] = [
    "192.0.2.1/24",
    "198.51.100.1/24",
    "203.0.113.1/24",
    "2001:db8:1::1/64",
    "2001:db8:2::1/64",
    "2001:db8:3::1/64",
];
/// The server's main IPv4 address.
pub const SERVER_V4: &str = "192.0.2.1";
/// The server's main IPv6 address.
pub const SERVER_V6: &str = "2001:db8:1::1";
/// The port the lab's sshd listens on (free: every namespace has its own ports).
pub const SSH_PORT: u16 = 22;

static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

/// One attacker namespace: its name in the test, its namespace, its addresses.
#[derive(Debug)]
struct Attacker {
    name: String,
    ns: String,
    addrs: Vec<String>,
}

/// A server namespace, attacker namespaces and a scratch namespace, deleted on drop.
#[derive(Debug)]
pub struct Lab {
    server: String,
    scratch: String,
    attackers: Vec<Attacker>,
    /// Every namespace created so far, in creation order (deleted on drop).
    created: Vec<String>,
}

impl Lab {
    /// Builds the lab. `attackers` are `(name, addresses)`, e.g.
    /// `("atk1", &["203.0.113.10/24", "2001:db8:2::10/64", "2001:db8:2::11/64"])`;
    /// every address must lie in one of the server's subnets ([`SERVER_ADDRS`]).
    pub fn new(attackers: &[(&str, &[&str])]) -> Lab {
        sweep_stale_namespaces();
        let suffix = format!(
            "{}-{}",
            std::process::id(),
            LAB_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            server: format!("ag-srv-{suffix}"),
            scratch: format!("ag-scratch-{suffix}"),
            attackers: Vec::new(),
            created: Vec::new(),
        };
        // From here on a panic drops `lab`, which deletes what exists.
        lab.add_server();
        let scratch = lab.scratch.clone();
        lab.add_namespace(&scratch);
        for (i, (name, addrs)) in attackers.iter().enumerate() {
            lab.add_attacker(i, name, addrs, &suffix);
        }
        lab
    }

    /// The server namespace: bridge `br0` (no STP, no delay) with every
    /// address of [`SERVER_ADDRS`].
    fn add_server(&mut self) {
        let server = self.server.clone();
        self.add_namespace(&server);
        ip(&["-n", &server, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &server,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ]);
        for addr in SERVER_ADDRS {
            add_address(&server, "br0", addr);
        }
        ip(&["-n", &server, "link", "set", "br0", "up"]);
    }

    /// Attacker number `i`: namespace `ag-NAME-SUFFIX`, joined to the bridge
    /// by veth `vI` / `eth0`, with `addrs` and default routes.
    fn add_attacker(&mut self, i: usize, name: &str, addrs: &[&str], suffix: &str) {
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !["srv", "scratch"].contains(&name)
                && !self.attackers.iter().any(|a| a.name == name),
            "attacker name {name:?}: use a unique [A-Za-z0-9_]+ other than srv/scratch"
        );
        let ns = format!("ag-{name}-{suffix}");
        self.add_namespace(&ns);
        let server = self.server.as_str();
        let port = format!("v{i}");
        ip(&[
            "-n", server, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ]);
        ip(&["-n", server, "link", "set", &port, "master", "br0"]);
        ip(&["-n", server, "link", "set", &port, "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        add_addresses_and_routes(&ns, addrs);
        self.attackers.push(Attacker {
            name: name.to_owned(),
            ns,
            addrs: addrs.iter().map(|a| (*a).to_owned()).collect(),
        });
    }

    fn add_namespace(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.created.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        // Before any interface exists, so every one inherits it: no DAD, so
        // IPv6 addresses are usable the moment they are added.
        let f = run_with_timeout(
            Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ]),
            None,
            CLIENT_TIMEOUT,
        );
        assert!(f.status.success(), "sysctl in {ns}: {}", f.describe());
    }

    /// The server namespace's name (`ag-srv-<pid>-<n>`).
    pub fn server_ns(&self) -> &str {
        &self.server
    }

    /// The empty scratch namespace's name (`ag-scratch-<pid>-<n>`).
    pub fn scratch_ns(&self) -> &str {
        &self.scratch
    }

    /// The namespace of attacker `name` (`ag-<name>-<pid>-<n>`).
    pub fn attacker_ns(&self, name: &str) -> &str {
        self.resolve(name)
    }

    /// The addresses (with prefix length) attacker `name` was given.
    pub fn attacker_addrs(&self, name: &str) -> Vec<String> {
        self.attackers
            .iter()
            .find(|a| a.name == name || a.ns == name)
            .map(|a| a.addrs.clone())
            .unwrap_or_else(|| panic!("no attacker {name:?} in this lab"))
    }

    /// A namespace by role: `srv`, `scratch`, an attacker's name, or a full name.
    fn resolve(&self, ns: &str) -> &str {
        if ns == "srv" || ns == self.server {
            return &self.server;
        }
        if ns == "scratch" || ns == self.scratch {
            return &self.scratch;
        }
        match self.attackers.iter().find(|a| a.name == ns || a.ns == ns) {
            Some(a) => &a.ns,
            None => panic!("no namespace {ns:?} in this lab"),
        }
    }

    /// `ip netns exec NS ARGV…` (NS: `srv`, `scratch`, an attacker's name or a full name).
    pub fn exec_in(&self, ns: &str, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.resolve(ns)]).args(argv);
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            delete_namespace(ns);
        }
    }
}

/// Gives `eth0` in `ns` each of `addrs`, and a default route per address
/// family via the server's address in the first such address' subnet.
fn add_addresses_and_routes(ns: &str, addrs: &[&str]) {
    let mut routed_v4 = false;
    let mut routed_v6 = false;
    for addr in addrs {
        add_address(ns, "eth0", addr);
        let (ip_addr, len) = parse_cidr(addr);
        let gateway = gateway_for(ip_addr, len);
        let routed = if ip_addr.is_ipv4() {
            &mut routed_v4
        } else {
            &mut routed_v6
        };
        if !*routed {
            let family = if ip_addr.is_ipv4() { "-4" } else { "-6" };
            ip(&[
                "-n", ns, family, "route", "add", "default", "via", &gateway, "dev", "eth0",
            ]);
            *routed = true;
        }
    }
}

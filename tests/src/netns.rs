//! Network-namespace labs for the firewall tests: real packets, real nftables,
//! never the host's network.
//!
//! A [`Lab`] is one *server* namespace and N *attacker* namespaces. The
//! server namespace holds a bridge `br0` carrying the server's addresses
//! ([`SERVER_ADDRS`]: `192.0.2.1/24`, `2001:db8:1::1/64`, and on-link
//! addresses in `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8:2::/64`,
//! `2001:db8:3::/64`). Each attacker namespace is joined to the bridge by a
//! veth pair (server side `vN` enslaved to `br0`, attacker side `eth0`) and
//! gets the addresses the test names, with default routes via the server's
//! address in the same subnet. IPv6 duplicate address detection is off, so
//! every address works at once. A third kind, the *scratch* namespace, is
//! empty (only `lo`): a place to run a tool whose nftables side effects must
//! reach neither the server namespace nor the host.
//!
//! Namespaces are named `ag-<role>-<pid>-<n>` (role `srv`, `scratch` or the
//! attacker's name). [`Lab`]'s `Drop` ends whatever still runs in them and
//! deletes them, also on panic; [`Lab::new`] first deletes namespaces left
//! behind by test processes that no longer exist (a `kill -9`'d run).
//!
//! Inside the lab: [`Sshd::start_in_netns`] runs the real sshd in the server
//! namespace on port 22 of every address, [`Daemon`] runs `guardctl daemon`
//! there, and [`Lab::probe`] / [`Lab::wait_until_blocked`] /
//! [`Lab::wait_until_open`] make TCP connects from a chosen attacker source.
//! Give the [`Guard`] the server namespace ([`crate::GuardConfig::netns`]) so
//! its `guardctl ban/unban/allow` push into the lab's firewall.

use crate::{
    CLIENT_TIMEOUT, ClientResult, Finished, Guard, Method, Sshd, Stack, TEST_USER, describe_output,
    finish_client, guardctl_path, kill_group, prepare_sshd_dir, run_with_timeout, spawn_sshd,
    ssh_common_args, wait_until, write_sshd_config_extra,
};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// How long one probe connect may take before it counts as dropped. Packets
/// between namespaces on one bridge take microseconds; this only has to
/// cover scheduling hiccups on a loaded machine.
/// How long a test waits for a change to reach the firewall before it
/// gives up (the promise itself is checked against a shorter bound).
pub const WAIT: Duration = Duration::from_secs(6);

pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// The longer probe that confirms a "blocked" verdict before it is believed.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(1);

/// `/usr/bin/python3` (not a pyenv shim: one probe must start in milliseconds).
const PYTHON: &str = "/usr/bin/python3";

/// TCP connect from a chosen source; exit codes say what happened.
const PROBE_SCRIPT: &str = r#"
import socket, sys
src, dst, port, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
try:
    s.bind((src, 0))
except OSError as e:
    print("bind", src, e)
    sys.exit(10)
s.settimeout(t)
try:
    s.connect((dst, port))
except TimeoutError:
    print("timeout")
    sys.exit(3)
except ConnectionRefusedError:
    print("refused")
    sys.exit(4)
except OSError as e:
    print("error", e)
    sys.exit(5)
print("connected")
"#;

static LAB_SEQ: AtomicUsize = AtomicUsize::new(0);

/// What one TCP connect attempt from an attacker did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The handshake completed.
    Connected,
    /// A TCP reset came back (nothing listening, or `action = "reject"`).
    Refused,
    /// No answer within the probe's timeout: the SYN was dropped.
    TimedOut,
    /// Any other error (unreachable network, ICMP error): lab plumbing trouble.
    Failed(String),
}

impl Probe {
    /// Refused or timed out: what a firewall drop or reject looks like.
    pub fn is_blocked(&self) -> bool {
        matches!(self, Probe::Refused | Probe::TimedOut)
    }
}

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
        let pid = std::process::id();
        let n = LAB_SEQ.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            server: format!("ag-srv-{pid}-{n}"),
            scratch: format!("ag-scratch-{pid}-{n}"),
            attackers: Vec::new(),
            created: Vec::new(),
        };
        // From here on a panic drops `lab`, which deletes what exists.
        let server = lab.server.clone();
        lab.add_namespace(&server);
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
        let scratch = lab.scratch.clone();
        lab.add_namespace(&scratch);

        for (i, (name, addrs)) in attackers.iter().enumerate() {
            assert!(
                !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !["srv", "scratch"].contains(name)
                    && !lab.attackers.iter().any(|a| a.name == *name),
                "attacker name {name:?}: use a unique [A-Za-z0-9_]+ other than srv/scratch"
            );
            let ns = format!("ag-{name}-{pid}-{n}");
            lab.add_namespace(&ns);
            let port = format!("v{i}");
            ip(&[
                "-n", &server, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            ip(&["-n", &server, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &server, "link", "set", &port, "up"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            let mut routed_v4 = false;
            let mut routed_v6 = false;
            for addr in addrs.iter() {
                add_address(&ns, "eth0", addr);
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
                        "-n", &ns, family, "route", "add", "default", "via", &gateway, "dev",
                        "eth0",
                    ]);
                    *routed = true;
                }
            }
            lab.attackers.push(Attacker {
                name: (*name).to_owned(),
                ns,
                addrs: addrs.iter().map(|a| (*a).to_owned()).collect(),
            });
        }
        lab
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
            self.server,
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
        let _ = writeln!(s, "--- nft list ruleset in {} ---", self.server);
        s.push_str(&self.ruleset());
        s
    }

    /// One TCP connect from `source` in `attacker`'s namespace to `dest:port`,
    /// given up after `timeout`. Panics when `source` cannot be bound (not
    /// the attacker's address): that is a test bug, never "blocked".
    pub fn probe(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Probe {
        let port = port.to_string();
        let secs = format!("{:.3}", timeout.as_secs_f64());
        let mut cmd = self.exec_in(
            attacker,
            &[PYTHON, "-c", PROBE_SCRIPT, source, dest, &port, &secs],
        );
        let f = run_with_timeout(&mut cmd, None, timeout + Duration::from_secs(10));
        assert!(!f.timed_out, "the probe itself hung: {}", f.describe());
        match f.code() {
            Some(0) => Probe::Connected,
            Some(3) => Probe::TimedOut,
            Some(4) => Probe::Refused,
            Some(5) => Probe::Failed(f.stdout.trim().to_owned()),
            _ => panic!(
                "probe from {source} ({attacker}) to {dest}:{port} broke: {}",
                f.describe()
            ),
        }
    }

    /// True when a TCP connect from `source` to `dest:port` completes within `timeout`.
    pub fn can_connect(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> bool {
        self.probe(attacker, source, dest, port, timeout) == Probe::Connected
    }

    /// Probes every 20 ms (each probe given up after [`PROBE_TIMEOUT`]) until
    /// a connect fails (refused or timed out), confirmed by a second probe
    /// of 1 s. Returns the time from the call to the *start* of the first
    /// failing probe, or None if the source could still connect after
    /// `timeout`. The block was in place when that probe's SYN left, one
    /// interpreter start-up (~20 ms) after its start, and not when the
    /// previous probe's SYN left: the result is the block's latency within
    /// about one probe round (~20–40 ms). The call itself lasts ≥ 1 s longer
    /// (the confirmation). Panics on any other connect error.
    pub fn wait_until_blocked(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let at = start.elapsed();
            match self.probe(attacker, source, dest, port, PROBE_TIMEOUT) {
                Probe::Connected => {}
                p if p.is_blocked() => {
                    match self.probe(attacker, source, dest, port, CONFIRM_TIMEOUT) {
                        p if p.is_blocked() => return Some(at),
                        Probe::Connected => {}
                        Probe::Failed(e) => {
                            panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag())
                        }
                        _ => unreachable!("blocked probes are handled above"),
                    }
                }
                Probe::Failed(e) => panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag()),
                _ => unreachable!("blocked probes are handled above"),
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Probes every 20 ms until a connect from `source` to `dest:port`
    /// completes; returns the time from the call to that success, or None
    /// if it was still blocked after `timeout`. Panics on any connect error
    /// other than refused or timed out.
    pub fn wait_until_open(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        port: u16,
        timeout: Duration,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            match self.probe(attacker, source, dest, port, PROBE_TIMEOUT) {
                Probe::Connected => return Some(start.elapsed()),
                Probe::Failed(e) => panic!("{source} -> {dest}:{port}: {e}\n{}", self.diag()),
                _ => {}
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts `source` (in `attacker`) can open a TCP connection to
    /// `dest:22` now; `why` and `diag` go into the failure message.
    pub fn assert_open(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        why: &str,
        diag: &dyn Fn() -> String,
    ) {
        let p = self.probe(attacker, source, dest, SSH_PORT, Duration::from_secs(2));
        assert_eq!(
            p,
            Probe::Connected,
            "{source} -> {dest}:22 ({why})\n{}",
            diag()
        );
    }

    /// Waits until `source` can no longer reach `dest:22`; panics if not
    /// within [`WAIT`]; returns how long it took.
    pub fn blocked_within(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        what: &str,
        diag: &dyn Fn() -> String,
    ) -> Duration {
        let took = self
            .wait_until_blocked(attacker, source, dest, SSH_PORT, WAIT)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {source} -> {dest}:22 still connects after {WAIT:?}\n{}",
                    diag()
                )
            });
        eprintln!("{what}: {source} -> {dest}:22 blocked after {took:?}");
        took
    }

    /// Waits until `source` reaches `dest:22` again; panics if not within
    /// `timeout`; returns how long it took.
    pub fn open_within(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        timeout: Duration,
        what: &str,
        diag: &dyn Fn() -> String,
    ) -> Duration {
        let took = self
            .wait_until_open(attacker, source, dest, SSH_PORT, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: {source} -> {dest}:22 still blocked after {timeout:?}\n{}",
                    diag()
                )
            });
        eprintln!("{what}: {source} -> {dest}:22 open again after {took:?}");
        took
    }

    /// Password (or keyboard-interactive) login as the test user from
    /// `source` in `attacker`'s namespace to the lab sshd at `dest`:
    /// `ip netns exec NS sshpass -p PW ssh -b SOURCE … agtest@DEST 'echo logged-in'`.
    pub fn ssh_password(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        password: &str,
        method: Method,
    ) -> ClientResult {
        self.ssh_password_at_level(attacker, source, dest, password, method, "ERROR")
    }

    /// [`Lab::ssh_password`] with the client's `LogLevel` given (`DEBUG1`
    /// shows which methods the server offers).
    pub fn ssh_password_at_level(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        password: &str,
        method: Method,
        log_level: &str,
    ) -> ClientResult {
        let mut cmd = self.exec_in(attacker, &["sshpass", "-p", password, "ssh"]);
        cmd.args(ssh_common_args(SSH_PORT, source, log_level))
            .args([
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                &format!("PreferredAuthentications={}", method.ssh_name()),
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "BatchMode=no",
            ])
            .arg(format!("{TEST_USER}@{dest}"))
            .arg("echo logged-in");
        finish_client(source, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
    }
}

impl Lab {
    /// What a key scanner does: a public-key-only login as the test user
    /// with `key` (authorized nowhere), from `source` in `attacker`'s
    /// namespace. sshd logs it without the PAM auth stack ever running.
    pub fn ssh_key_only(
        &self,
        attacker: &str,
        source: &str,
        dest: &str,
        key: &Path,
    ) -> ClientResult {
        let mut cmd = self.exec_in(attacker, &["ssh"]);
        cmd.args(ssh_common_args(SSH_PORT, source, "ERROR"))
            .args(["-i"])
            .arg(key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "PreferredAuthentications=publickey",
                "-o",
                "PasswordAuthentication=no",
                "-o",
                "BatchMode=yes",
            ])
            .arg(format!("{TEST_USER}@{dest}"))
            .arg("echo logged-in");
        finish_client(source, run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            delete_namespace(ns);
        }
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

fn prefix_range(addr: IpAddr, len: u8) -> (IpAddr, IpAddr) {
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

fn parse_cidr(cidr: &str) -> (IpAddr, u8) {
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
fn gateway_for(addr: IpAddr, len: u8) -> String {
    for server in SERVER_ADDRS {
        let (s, _) = parse_cidr(server);
        if s.is_ipv4() == addr.is_ipv4() && prefix_range(s, len) == prefix_range(addr, len) {
            assert_ne!(s, addr, "{addr} is the server's own address");
            return s.to_string();
        }
    }
    panic!("{addr}/{len} is in none of the server's subnets {SERVER_ADDRS:?}")
}

fn add_address(ns: &str, dev: &str, cidr: &str) {
    let (addr, _) = parse_cidr(cidr);
    let mut args = vec!["-n", ns, "addr", "add", cidr, "dev", dev];
    if addr.is_ipv6() {
        args.push("nodad");
    }
    ip(&args);
}

fn ip(args: &[&str]) {
    let f = run_with_timeout(Command::new("ip").args(args), None, CLIENT_TIMEOUT);
    assert!(
        f.status.success(),
        "ip {}: {}",
        args.join(" "),
        f.describe()
    );
}

fn to_output(f: Finished) -> Output {
    Output {
        status: f.status,
        stdout: f.stdout.into_bytes(),
        stderr: f.stderr.into_bytes(),
    }
}

/// Ends what still runs in `ns` (processes our tests started there) and deletes it.
fn delete_namespace(ns: &str) {
    let pids = run_with_timeout(
        Command::new("ip").args(["netns", "pids", ns]),
        None,
        CLIENT_TIMEOUT,
    );
    for pid in pids
        .stdout
        .split_whitespace()
        .filter_map(|p| p.parse::<libc::pid_t>().ok())
    {
        if pid > 1 {
            // SAFETY: kill(2) on one pid found inside a namespace this lab
            // created; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
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
fn sweep_stale_namespaces() {
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

// ---------------------------------------------------------------------------
// sshd in the server namespace
// ---------------------------------------------------------------------------

impl Sshd {
    /// sshd with the default authguard stack for `guard`, inside `lab`'s
    /// server namespace, on port 22 of every address (`0.0.0.0` and `::`).
    /// Log in with [`Lab::ssh_password`]; [`Sshd::login`] and
    /// [`Sshd::port`] are for loopback sshds only.
    pub fn start_in_netns(guard: &Guard, lab: &Lab) -> Sshd {
        Sshd::with_stack_in_netns(Stack::Guarded(guard.config_path()), lab)
    }

    /// sshd with the given stack inside `lab`'s server namespace.
    pub fn with_stack_in_netns(stack: Stack, lab: &Lab) -> Sshd {
        Sshd::with_stack_and_config_in_netns(stack, lab, "")
    }

    /// [`Sshd::with_stack_in_netns`] with `extra` config text (as
    /// [`Sshd::with_stack_and_config`] takes it).
    pub fn with_stack_and_config_in_netns(stack: Stack, lab: &Lab, extra: &str) -> Sshd {
        let (dir, path) = prepare_sshd_dir(&stack);
        write_sshd_config_extra(&path, SSH_PORT, &["0.0.0.0", "::"], extra);
        let child = spawn_sshd(&path, Some(lab.server_ns()));
        // Owned at once, so a panic below still ends sshd.
        let mut sshd = Sshd {
            dir: Some(dir),
            path,
            port: SSH_PORT,
            child,
            platform: crate::Platform::Host,
            machine: None,
        };
        let mut exited = None;
        let up = wait_until(Duration::from_secs(10), || {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                exited = Some(status);
                return true;
            }
            let log = sshd.sshd_log();
            log.contains(&format!("Server listening on 0.0.0.0 port {SSH_PORT}"))
                && log.contains(&format!("Server listening on :: port {SSH_PORT}"))
        });
        assert!(
            up && exited.is_none(),
            "sshd in {} did not listen on 0.0.0.0 and :: port {SSH_PORT} within 10 s \
             (exit {exited:?})\n--- sshd.log ---\n{}\n--- sshd stderr ---\n{}",
            lab.server_ns(),
            sshd.sshd_log(),
            std::fs::read_to_string(sshd.path.join("sshd.err")).unwrap_or_default()
        );
        sshd
    }
}

// ---------------------------------------------------------------------------
// guardctl daemon in the server namespace
// ---------------------------------------------------------------------------

/// `ip netns exec <server> guardctl --config <toml> daemon`, stderr appended
/// to `<guard dir>/daemon.err` (stdout to `daemon.out`); ended on drop.
#[derive(Debug)]
pub struct Daemon {
    netns: String,
    config: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Daemon {
    /// Starts the daemon and waits (at most 5 s) until table `inet authguard`
    /// exists in the server namespace; panics with its stderr if it does not.
    pub fn start(guard: &Guard, lab: &Lab) -> Daemon {
        let mut d = Daemon::spawn(guard, lab);
        let mut exited = None;
        let ready = wait_until(Duration::from_secs(5), || {
            if let Some(Ok(Some(status))) = d.child.as_mut().map(Child::try_wait) {
                exited = Some(status);
                return true;
            }
            lab.authguard_table().is_some()
        });
        assert!(
            ready && exited.is_none(),
            "guardctl daemon did not create table inet authguard within 5 s (exit {exited:?})\n\
             --- daemon stderr ---\n{}\n{}",
            d.stderr(),
            lab.diag()
        );
        d
    }

    /// Starts the daemon without waiting for anything.
    pub fn spawn(guard: &Guard, lab: &Lab) -> Daemon {
        let mut d = Daemon {
            netns: lab.server_ns().to_owned(),
            config: guard.config_path(),
            dir: guard.dir().to_path_buf(),
            child: None,
            starts: 0,
        };
        d.launch();
        d
    }

    fn launch(&mut self) {
        self.starts += 1;
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(name))
                .unwrap_or_else(|e| panic!("open {name}: {e}"))
        };
        let mut err = open("daemon.err");
        let _ = writeln!(
            err,
            "=== harness: daemon start #{} in {} ===",
            self.starts, self.netns
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(guardctl_path())
            .arg("--config")
            .arg(&self.config)
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(open("daemon.out"))
            .stderr(err)
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
        );
    }

    /// The daemon's pid (None when it is not running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the daemon process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGKILL, no chance to clean up (the table stays in the kernel).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(child.id(), libc::SIGTERM);
            let exited = wait_until(Duration::from_secs(3), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !exited {
                kill_group(child.id(), libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// Stops the daemon if it runs and starts it again (without waiting).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Everything the daemon wrote to stderr, all starts (marked) included.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.err")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
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

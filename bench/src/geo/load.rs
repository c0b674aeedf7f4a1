//! A blocked large country in nftables, inside a network namespace made
//! here (the host's ruleset is never touched; deleting the namespace
//! deletes its tables): `guardctl geo block CC` with its own push,
//! `guardctl daemon` loading the country from a cold start, a script's way
//! (one `nft -f` of the unmerged ranges into `auto-merge` interval sets),
//! and what the loaded country costs `guardctl ban`.
//!
//! "Loaded" is when the table shows up in `nft list tables`, polled every
//! 20 ms: each tool creates its table and the elements in one atomic
//! batch, so the table's presence means the elements are there (counted
//! with `nft -j list set` afterwards, untimed, and checked against the store).

use super::data::Data;
use super::import::{check, guardctl_in};
use super::packets;
use crate::firewall::{Daemon, Netns, write_config};
use crate::stats::Summary;
use anyhow::{Context, Result, bail};
use authguard_core::store::{Access, Store};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// The address `guardctl ban` bans (documentation range, nothing is sent).
const BAN_ADDR: &str = "203.0.113.7";
/// Bans timed per condition.
const BANS: usize = 5;
/// The peer's table.
const PEER_TABLE: &str = "inet agpeer";

/// One country, loaded every way.
#[derive(Debug)]
pub struct CountryLoad {
    /// Its code.
    pub country: String,
    /// Its ranges as imported (unmerged): IPv4, IPv6.
    pub imported: (usize, usize),
    /// Networks nft holds in the `geo4_*`, `geo6_*` sets after the daemon's load.
    pub merged: (usize, usize),
    /// `guardctl geo block CC` with the nftables backend (store + push).
    pub block_push: Duration,
    /// `guardctl daemon` start → table with the elements in the kernel.
    pub daemon: Duration,
    /// The daemon's resident memory after loading, KiB.
    pub daemon_rss_kib: u64,
    /// The peer's `nft -f` start → its table in the kernel.
    pub peer: Duration,
    /// Elements nft holds in the peer's sets after auto-merge.
    pub peer_elements: (usize, usize),
}

/// `guardctl ban` with and without the US in the sets, µs.
#[derive(Debug)]
pub struct BanCost {
    /// No country blocked.
    pub without: Summary,
    /// The US blocked.
    pub with_us: Summary,
    /// `nft add element` into a hash set with the US as two interval sets
    /// beside it (a script's layout, and authguard's before).
    pub interval_layout: Summary,
    /// What each new connection costs, µs per connect (see [`packets`]).
    pub connect: ConnectCost,
}

/// Microseconds per TCP connect from an address in no country.
#[derive(Debug)]
pub struct ConnectCost {
    /// authguard's table, nothing blocked.
    pub none: f64,
    /// The US in authguard's hash sets.
    pub hash_sets: f64,
    /// No table at all: the peer's baseline.
    pub bare: f64,
    /// The US in two interval sets, one rule each (the peer).
    pub interval_sets: f64,
}

/// The load part's results.
#[derive(Debug)]
pub struct Load {
    /// Each country measured.
    pub countries: Vec<CountryLoad>,
    /// What the first country costs a ban push.
    pub ban: BanCost,
    /// `nft --version`'s version.
    pub nft: String,
}

/// The namespace, the config, and guardctl.
struct Lab {
    ns: Netns,
    guardctl: PathBuf,
    config: PathBuf,
}

impl Lab {
    /// `guardctl ARGS` inside the namespace, outside any SSH session.
    fn guardctl(&self, args: &[&str]) -> Result<Output> {
        let cmd = self.ns.cmd(&self.guardctl.to_string_lossy());
        guardctl_in(cmd, &self.config, args)
    }

    /// `nft ARGS` inside the namespace.
    fn nft(&self, args: &[&str]) -> Result<Output> {
        let out = self.ns.cmd("nft").args(args).output()?;
        check(&format!("nft {}", args.join(" ")), out)
    }

    /// Deletes `table` if it is there.
    fn drop_table(&self, table: &str) {
        let mut args = vec!["delete", "table"];
        args.extend(table.split(' '));
        let _ = self.ns.cmd("nft").args(&args).output();
    }

    /// Polls `nft list tables` until `table` is there; the time since `t0`.
    fn until_table(&self, table: &str, t0: Instant, timeout: Duration) -> Result<Duration> {
        let want = format!("table {table}");
        while t0.elapsed() < timeout {
            let out = self.nft(&["list", "tables"])?;
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == want)
            {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{table} did not appear within {timeout:?}")
    }

    /// Elements of set `name` in `table`, as the kernel holds them.
    fn elements(&self, table: &str, name: &str) -> Result<usize> {
        let mut args = vec!["-j", "list", "set"];
        args.extend(table.split(' '));
        args.push(name);
        let out = self.nft(&args)?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let sets = json["nftables"]
            .as_array()
            .context("nft -j: no nftables array")?;
        Ok(sets
            .iter()
            .filter_map(|o| o["set"]["elem"].as_array())
            .map(Vec::len)
            .sum())
    }

    /// Both sets' elements.
    fn pair(&self, table: &str, v4: &str, v6: &str) -> Result<(usize, usize)> {
        Ok((self.elements(table, v4)?, self.elements(table, v6)?))
    }

    /// The networks in authguard's country sets (`geo4_LEN`, `geo6_LEN`,
    /// one hash set per prefix length): IPv4, IPv6.
    fn geo_networks(&self) -> Result<(usize, usize)> {
        let out = self.nft(&["-j", "list", "table", "inet", "authguard"])?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let items = json["nftables"]
            .as_array()
            .context("nft -j: no nftables array")?;
        let count = |prefix: &str| -> usize {
            items
                .iter()
                .filter(|o| {
                    o["set"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .filter_map(|o| o["set"]["elem"].as_array())
                .map(Vec::len)
                .sum()
        };
        Ok((count("geo4_"), count("geo6_")))
    }
}

/// Loads each of `countries` every way; the first one's ban cost too.
pub fn run(dir: &Path, guardctl: &Path, data: &Data, countries: &[&str]) -> Result<Load> {
    let config = write_config(dir, "geo-fw", "\n[sshd_log]\nsource = \"off\"\n")?;
    let lab = Lab {
        ns: Netns::new("geo")?,
        guardctl: guardctl.to_owned(),
        config,
    };
    packets::prepare(&lab.ns)?;
    eprintln!("geo: importing Tor's files into the namespace's store");
    let (v4, v6) = (data.v4.to_string_lossy(), data.v6.to_string_lossy());
    lab.guardctl(&["geo", "import", &v4, &v6])?;
    let mut loads = Vec::new();
    let mut ban = None;
    for (i, c) in countries.iter().enumerate() {
        let (load, cost) = country(&lab, data, c, i == 0)?;
        loads.push(load);
        ban = ban.or(cost);
    }
    let version = lab.nft(&["--version"])?;
    let version = String::from_utf8_lossy(&version.stdout);
    Ok(Load {
        countries: loads,
        ban: ban.context("no country measured")?,
        nft: version.split_whitespace().nth(1).unwrap_or("?").to_owned(),
    })
}

/// Every measurement of one country; with `bans`, its cost to a ban push.
fn country(lab: &Lab, data: &Data, c: &str, bans: bool) -> Result<(CountryLoad, Option<BanCost>)> {
    eprintln!("geo: {c}: guardctl geo block with its own push");
    lab.drop_table("inet authguard");
    let t0 = Instant::now();
    let out = lab.guardctl(&["geo", "block", c])?;
    let block_push = t0.elapsed();
    if !String::from_utf8_lossy(&out.stdout).contains("firewall updated") {
        bail!("`guardctl geo block {c}` did not update the firewall");
    }
    eprintln!("geo: {c}: daemon cold start");
    let expected = expected_elements(&lab.config)?;
    lab.drop_table("inet authguard");
    let t0 = Instant::now();
    let daemon = Daemon::start(&lab.ns, &lab.guardctl, &lab.config)?;
    let daemon_took = lab.until_table("inet authguard", t0, Duration::from_secs(60))?;
    let merged = lab.geo_networks()?;
    if merged != expected {
        bail!("{c}: nft holds {merged:?} networks, the store's ranges make {expected:?}");
    }
    let daemon_rss_kib = daemon.rss_kib()?;
    drop(daemon);
    let with_us = if bans {
        Some((ban_push(lab)?, connects(lab)?))
    } else {
        None
    };
    lab.guardctl(&["geo", "unblock", c])?;
    let without = match with_us {
        Some(_) => Some((ban_push(lab)?, connects(lab)?)),
        None => None,
    };
    lab.drop_table("inet authguard");
    let bare = if bans { Some(connects(lab)?) } else { None };
    let PeerRun {
        took: peer,
        elements: peer_elements,
        costs,
    } = peer(lab, data, c, bans)?;
    let ban = match (with_us, without, bare, costs) {
        (
            Some((with_us, hash_sets)),
            Some((without, none)),
            Some(bare),
            Some((interval_layout, interval_sets)),
        ) => Some(BanCost {
            without,
            with_us,
            interval_layout,
            connect: ConnectCost {
                none,
                hash_sets,
                bare,
                interval_sets,
            },
        }),
        _ => None,
    };
    let imported = data.of(c).fold(
        (0, 0),
        |(a, b), r| {
            if r.is_ipv4() { (a + 1, b) } else { (a, b + 1) }
        },
    );
    let load = CountryLoad {
        country: c.to_owned(),
        imported,
        merged,
        block_push,
        daemon: daemon_took,
        daemon_rss_kib,
        peer,
        peer_elements,
    };
    Ok((load, ban))
}

/// The networks the store's blocked ranges make: IPv4, IPv6.
fn expected_elements(config: &Path) -> Result<(usize, usize)> {
    let store = Store::open(
        &config.with_file_name("authguard.db"),
        Access::Read,
        Duration::from_secs(5),
    )?;
    let networks: Vec<_> = store
        .geo_blocked_ranges()?
        .iter()
        .flat_map(|r| r.networks())
        .collect();
    let v4 = networks.iter().filter(|n| n.addr().is_ipv4()).count();
    Ok((v4, networks.len() - v4))
}

/// `guardctl ban ADDR` (which pushes at once) timed, `BANS` times, each
/// followed by an untimed `unban --forget`.
fn ban_push(lab: &Lab) -> Result<Summary> {
    eprintln!("geo: {BANS} × guardctl ban");
    let mut us = Vec::new();
    for _ in 0..BANS {
        let t0 = Instant::now();
        let out = lab.guardctl(&["ban", BAN_ADDR, "--for", "1h"])?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
        if !String::from_utf8_lossy(&out.stdout).contains("firewall updated") {
            bail!("`guardctl ban {BAN_ADDR}` did not update the firewall");
        }
        lab.guardctl(&["unban", BAN_ADDR, "--forget"])?;
    }
    Summary::of(&us).context("no ban timed")
}

/// A script's way: the country's unmerged ranges as elements of two
/// `auto-merge` interval sets, one `nft -f`, timed like the daemon. With
/// `bans`, also what one `nft add element` into a hash set beside them
/// costs (authguard's layout before its country sets became hash sets).
fn peer(lab: &Lab, data: &Data, c: &str, bans: bool) -> Result<PeerRun> {
    eprintln!("geo: {c}: one nft -f with auto-merge");
    let mut script = format!("add table {PEER_TABLE}\n");
    let _ = writeln!(
        script,
        "add set {PEER_TABLE} ban4 {{ type ipv4_addr; flags timeout; }}"
    );
    for (set, kind) in [("geo4", "ipv4_addr"), ("geo6", "ipv6_addr")] {
        let _ = writeln!(
            script,
            "add set {PEER_TABLE} {set} {{ type {kind}; flags interval; auto-merge; }}"
        );
    }
    // What a script would match: every packet to port 22, one lookup per family.
    let _ = writeln!(
        script,
        "add chain {PEER_TABLE} input {{ type filter hook input priority filter - 10; policy accept; }}\n\
         add rule {PEER_TABLE} input tcp dport 22 ip saddr @geo4 drop\n\
         add rule {PEER_TABLE} input tcp dport 22 ip6 saddr @geo6 drop"
    );
    for (set, v4) in [("geo4", true), ("geo6", false)] {
        let items: Vec<String> = data
            .of(c)
            .filter(|r| r.is_ipv4() == v4)
            .map(|r| {
                if r.lo == r.hi {
                    r.lo.to_string()
                } else {
                    format!("{}-{}", r.lo, r.hi)
                }
            })
            .collect();
        let _ = writeln!(
            script,
            "add element {PEER_TABLE} {set} {{ {} }}",
            items.join(", ")
        );
    }
    let file = lab.config.with_file_name(format!("peer-{c}.nft"));
    std::fs::write(&file, script)?;
    let t0 = Instant::now();
    let mut child = lab.ns.cmd("nft").arg("-f").arg(&file).spawn()?;
    let took = lab.until_table(PEER_TABLE, t0, Duration::from_secs(120));
    let status = child.wait()?;
    let took = took?;
    if !status.success() {
        bail!("nft -f {} failed ({status})", file.display());
    }
    let elements = lab.pair(PEER_TABLE, "geo4", "geo6")?;
    let pushes = if bans {
        Some((peer_ban_push(lab)?, connects(lab)?))
    } else {
        None
    };
    lab.drop_table(PEER_TABLE);
    Ok(PeerRun {
        took,
        elements,
        costs: pushes,
    })
}

/// The peer's load: how long, what nft holds, and with `bans` what one
/// push and one new connection cost beside its interval sets.
struct PeerRun {
    took: Duration,
    elements: (usize, usize),
    costs: Option<(Summary, f64)>,
}

/// Microseconds per new connection in the namespace's current state.
fn connects(lab: &Lab) -> Result<f64> {
    eprintln!("geo: {} × 3 connects", packets::CONNECTS);
    packets::per_connect_us(&lab.ns)
}

/// `nft add element` of one address into the peer table's hash set, with
/// the country's interval sets loaded beside it, `BANS` times.
fn peer_ban_push(lab: &Lab) -> Result<Summary> {
    eprintln!("geo: {BANS} × nft add element beside interval sets");
    let mut us = Vec::new();
    for i in 0..BANS {
        let element = format!("{{ 203.0.113.{} timeout 1h }}", 10 + i);
        let t0 = Instant::now();
        let mut args: Vec<&str> = vec!["add", "element"];
        args.extend(PEER_TABLE.split(' '));
        args.extend(["ban4", &element]);
        let out = lab.nft(&args)?;
        us.push(t0.elapsed().as_secs_f64() * 1e6);
        if !out.status.success() {
            bail!("nft add element: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Summary::of(&us).context("no push timed")
}

//! The fleet benchmark (issue 15), with Debian's real CrowdSec LAPI in a
//! network namespace made here: from a ban on host A to its enforcement in
//! host B's nftables (B pulls every 2 s, the default), a community-
//! blocklist-sized pull (100,000 decisions) from `startup=true` into the
//! store and nftables with the daemon's memory, and what those 100,000
//! extra bans cost a login's admission. The peer, side by side on the same
//! LAPI and the same bans: Debian's crowdsec-firewall-bouncer at its
//! default `update_frequency` of 10 s (`bouncer.rs`).

use crate::bouncer::Bouncer;
use crate::firewall::{Daemon, Netns, guardctl_path, write_config};
use crate::stats::{self, fmt_kib, fmt_us, mark, table, thousands};
use anyhow::{Context, Result, bail};
use authguard_core::config::Config;
use authguard_core::store::admission::{Attempt, Decision};
use authguard_core::store::{Access, Store};
use authguard_e2e::crowdsec::Lapi;
use comfy_table::Table;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What the benchmark measured.
#[derive(Debug)]
pub struct Report {
    propagation: stats::Summary,
    decisions: usize,
    pull: PullRun,
    admit_without: stats::Summary,
    admit_with: stats::Summary,
    /// crowdsec-firewall-bouncer's figures, when its package could be had.
    peer: Option<Peer>,
}

/// The peer's figures.
#[derive(Debug)]
struct Peer {
    version: String,
    propagation: Option<stats::Summary>,
    /// How long its full pull took, or how far it got in [`PEER_PULL_LIMIT`].
    pull: Result<Duration, usize>,
    rss_kib: u64,
}

/// The daemon's memory goal after the full pull: 30 MB (not MiB), in KiB.
const RSS_GOAL_KIB: u64 = 30_000_000 / 1024;

/// How long the peer's full pull is waited for (it adds about a thousand
/// addresses a second here, slowing as its set grows).
const PEER_PULL_LIMIT: Duration = Duration::from_secs(240);

/// A host's config in `dir/NAME`: `firewall` lines, and a `[crowdsec]`
/// table for `lapi` as bouncer NAME (and machine NAME when `push`).
fn host(dir: &Path, lapi: &Lapi, name: &str, firewall: &str, push: bool) -> Result<PathBuf> {
    let config = write_config(dir, name, firewall)?;
    let secret = |file: &str, text: &str| -> Result<PathBuf> {
        let path = config.with_file_name(file);
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(path)
    };
    let key = secret("bouncer.key", &lapi.add_bouncer(name))?;
    let mut table = format!(
        "\n[crowdsec]\nurl = {:?}\napi_key_file = {:?}\n",
        lapi.url(),
        key
    );
    if push {
        let password = format!("{name}-bench-password");
        lapi.add_machine(name, &password);
        let file = secret("machine.password", &password)?;
        table.push_str(&format!(
            "machine_id = {name:?}\npassword_file = {file:?}\n"
        ));
    }
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&table);
    std::fs::write(&config, text)?;
    Ok(config)
}

pub fn run(dir: &Path, bans: usize, decisions: usize, with_peer: bool) -> Result<Report> {
    let guardctl = guardctl_path()?;
    let ns = Netns::new("fleet")?;
    let phase = |what: &str| eprintln!("fleet: {what}");
    phase("starting the LAPI");
    let listen = "127.0.0.1:48090".parse()?;
    let Some(lapi) = Lapi::start_in_netns(ns.name(), listen) else {
        bail!("Debian's crowdsec package could not be had (apt-get download crowdsec)");
    };
    let a = host(dir, &lapi, "fleet-a", "backend = \"none\"", true)?;
    let b = host(dir, &lapi, "fleet-b", "", false)?;
    let (da, db) = (
        Daemon::start(&ns, &guardctl, &a)?,
        Daemon::start(&ns, &guardctl, &b)?,
    );
    db.wait_for("rebuilt table", Duration::from_secs(20))?;
    let peer = match with_peer {
        true => Bouncer::start(&ns, &lapi, dir, "fleet-peer")?,
        false => None,
    };
    phase(&format!(
        "{bans} bans on host A, each timed to host B's nftables{}",
        if peer.is_some() {
            " and to crowdsec-firewall-bouncer's set"
        } else {
            ""
        }
    ));
    let (propagation, peer_propagation) = propagate(&ns, &guardctl, &a, &db, peer.as_ref(), bans)?;
    drop((da, db, peer));
    for table in [
        ["inet", "authguard"],
        ["ip", "crowdsec"],
        ["ip6", "crowdsec6"],
    ] {
        let _ = ns
            .cmd("nft")
            .arg("delete")
            .arg("table")
            .args(table)
            .output();
    }

    phase(&format!(
        "importing {} decisions into the LAPI",
        thousands(decisions as u64)
    ));
    import(dir, &lapi, decisions)?;
    let (pull, c) = full_pulls(&ns, &guardctl, dir, &lapi, decisions)?;
    let peer = match peer_propagation {
        Some(propagation) => Some(peer_pull(&ns, &lapi, dir, decisions, propagation)?),
        None => None,
    };

    phase("admissions with and without the pulled bans");
    let empty = write_config(dir, "fleet-empty", "backend = \"none\"")?;
    let admit_without = admissions(&empty)?;
    let admit_with = admissions(&c)?;
    Ok(Report {
        propagation,
        decisions,
        pull,
        admit_without,
        admit_with,
        peer,
    })
}

/// One fresh daemon's full pull, or the medians of several.
#[derive(Debug, Clone, Copy)]
struct PullRun {
    /// From the daemon's start to its pull in the store.
    store: Duration,
    /// From the daemon's start to the bans in nftables.
    nft: Duration,
    /// Its memory half a second later.
    rss_kib: u64,
    /// Its peak memory.
    peak_kib: u64,
}

/// Fresh daemons' full pulls, each with its own store: a noisy figure on
/// two cores shared with the LAPI, so the median of these.
const PULL_RUNS: usize = 3;

/// [`PULL_RUNS`] full pulls of the `n` decisions, each by a fresh daemon
/// with a fresh store; their medians, and the last one's config (its
/// store holds the pulled bans).
fn full_pulls(
    ns: &Netns,
    guardctl: &Path,
    dir: &Path,
    lapi: &Lapi,
    n: usize,
) -> Result<(PullRun, PathBuf)> {
    let mut runs = Vec::with_capacity(PULL_RUNS);
    let mut config = PathBuf::new();
    for i in 0..PULL_RUNS {
        let _ = ns
            .cmd("nft")
            .args(["delete", "table", "inet", "authguard"])
            .output();
        config = host(dir, lapi, &format!("fleet-c{i}"), "", false)?;
        eprintln!(
            "fleet: a fresh daemon's full pull, {} of {PULL_RUNS}",
            i + 1
        );
        let started = Instant::now();
        let daemon = Daemon::start(ns, guardctl, &config)?;
        let said = daemon.wait_for("full pull", Duration::from_secs(120))?;
        eprintln!("fleet: {said}");
        let store = started.elapsed();
        wait_rebuilt(&daemon, n)?;
        let nft = started.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        runs.push(PullRun {
            store,
            nft,
            rss_kib: daemon.rss_kib()?,
            peak_kib: daemon.peak_kib()?,
        });
    }
    let run = PullRun {
        store: median(runs.iter().map(|r| r.store)),
        nft: median(runs.iter().map(|r| r.nft)),
        rss_kib: median(runs.iter().map(|r| r.rss_kib)),
        peak_kib: median(runs.iter().map(|r| r.peak_kib)),
    };
    Ok((run, config))
}

/// The middle value of `values` (the upper one of an even count).
fn median<T: Ord>(values: impl Iterator<Item = T>) -> T {
    let mut v: Vec<T> = values.collect();
    v.sort_unstable();
    v.swap_remove(v.len() / 2)
}

/// crowdsec-firewall-bouncer's full pull of the `n` decisions: a fresh
/// bouncer's start until its set holds them, and its memory then.
fn peer_pull(
    ns: &Netns,
    lapi: &Lapi,
    dir: &Path,
    n: usize,
    propagation: Option<stats::Summary>,
) -> Result<Peer> {
    eprintln!("fleet: crowdsec-firewall-bouncer's full pull");
    let started = Instant::now();
    let bouncer =
        Bouncer::start(ns, lapi, dir, "fleet-peer-full")?.context("the bouncer went away")?;
    let held = bouncer.set.wait_holding(n, PEER_PULL_LIMIT)?;
    let pull = if held >= n {
        Ok(started.elapsed())
    } else {
        Err(held)
    };
    std::thread::sleep(Duration::from_millis(500));
    Ok(Peer {
        version: bouncer.version.clone(),
        propagation,
        pull,
        rss_kib: bouncer.rss_kib()?,
    })
}

/// `guardctl ban` on A, then the time until B's daemon drops it; and, with
/// a `peer` watching the same LAPI, the time until each ban entered its set
/// (None when the peer has no bouncer; its samples when it has).
fn propagate(
    ns: &Netns,
    guardctl: &Path,
    a: &Path,
    db: &Daemon,
    peer: Option<&Bouncer>,
    n: usize,
) -> Result<(stats::Summary, Option<Option<stats::Summary>>)> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = peer.map(|p| {
            let set = p.set.clone();
            let stop = &stop;
            scope.spawn(move || set.watch(stop))
        });
        let bans = ban_each(ns, guardctl, a, db, n);
        // The peer pulls every 10 s: give the last ban its time.
        if let (Some(p), Ok((_, made))) = (peer, &bans) {
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end && !made.iter().all(|(ip, _)| holds(p, *ip)) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let seen = watcher.map(|w| w.join().unwrap_or_default());
        let (ours, made) = bans?;
        let peer_samples = seen.map(|seen| {
            let samples: Vec<f64> = made
                .iter()
                .filter_map(|(ip, t0)| seen.get(ip).map(|at| (*at - *t0).as_secs_f64() * 1e6))
                .collect();
            stats::Summary::of(&samples)
        });
        Ok((
            stats::Summary::of(&ours).context("no samples")?,
            peer_samples,
        ))
    })
}

fn holds(peer: &Bouncer, ip: IpAddr) -> bool {
    peer.set.held().is_ok_and(|h| h.contains(&ip))
}

/// A ban made on A: the address, and when.
type Banned = (IpAddr, Instant);

/// `n` bans on A, each timed until B's daemon drops it: the samples (µs),
/// and each banned address with when it was banned.
fn ban_each(
    ns: &Netns,
    guardctl: &Path,
    a: &Path,
    db: &Daemon,
    n: usize,
) -> Result<(Vec<f64>, Vec<Banned>)> {
    let (mut samples, mut made) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let ip = Ipv4Addr::new(198, 51, 100 + (i / 250) as u8, (i % 250 + 1) as u8);
        let t0 = Instant::now();
        let out = ns
            .cmd(&guardctl.to_string_lossy())
            .args(["--config"])
            .arg(a)
            .args(["ban", &ip.to_string(), "--for", "1h", "--reason", "bench"])
            .output()?;
        if !out.status.success() {
            bail!(
                "guardctl ban on A failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        made.push((IpAddr::V4(ip), t0));
        db.wait_for(&format!("drop {ip}/32"), Duration::from_secs(30))
            .with_context(|| format!("ban {i} of {n} never reached host B"))?;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
        // Spread the bans over B's whole pull cycle (2 s).
        std::thread::sleep(Duration::from_millis((i as u64 * 379) % 2_000));
    }
    Ok((samples, made))
}

/// `n` single-address decisions, imported with `cscli decisions import`.
fn import(dir: &Path, lapi: &Lapi, n: usize) -> Result<()> {
    let list: Vec<serde_json::Value> = (0..n as u32)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(20, 0, 0, 1)) + i);
            serde_json::json!({ "value": ip.to_string(), "duration": "24h" })
        })
        .collect();
    let file = dir.join("blocklist.json");
    std::fs::write(&file, serde_json::to_vec(&list)?)?;
    lapi.cscli_ok(&["decisions", "import", "-i", &file.to_string_lossy()]);
    Ok(())
}

/// Waits for the rebuild that holds at least `n` bans.
fn wait_rebuilt(daemon: &Daemon, n: usize) -> Result<()> {
    let end = Instant::now() + Duration::from_secs(120);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let line = daemon.wait_for("rebuilt table", left)?;
        let bans = line
            .split(" with ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        if bans >= n {
            return Ok(());
        }
    }
    bail!("nftables never held the {n} pulled bans")
}

/// 2,000 admissions of distinct sources (open, admit, drop: what the PAM
/// module does), in microseconds.
fn admissions(config_path: &Path) -> Result<stats::Summary> {
    let config = Config::load(config_path)?;
    let mut samples = Vec::with_capacity(2_000);
    let now = authguard_core::time::now();
    for i in 0..2_000u32 {
        let ip = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + i));
        let attempt = Attempt {
            ip,
            user: b"root",
            service: "sshd",
        };
        let t0 = Instant::now();
        let mut store = Store::open(&config.store.path, Access::Write, Duration::from_secs(1))?;
        let decision = store.admit(&config, &attempt, now)?;
        drop(store);
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
        if !matches!(decision, Decision::Admitted { .. }) {
            bail!("{ip} was not admitted: {decision:?}");
        }
    }
    stats::Summary::of(&samples).context("no samples")
}

impl Report {
    /// The caption.
    pub fn caption(&self) -> String {
        let peer = match &self.peer {
            Some(p) => format!(
                "; the peer: Debian's crowdsec-firewall-bouncer {} on the same LAPI, its default update_frequency {}",
                p.version,
                crate::bouncer::UPDATE_FREQUENCY
            ),
            None => "; crowdsec-firewall-bouncer left out or not to be had".into(),
        };
        format!(
            "Fleet: Debian's crowdsec 1.4.6 LAPI, hosts as guardctl daemons in one network namespace (A pushes, B and C pull every 2 s, the default){peer}"
        )
    }

    /// The table, side by side with the peer.
    pub fn table(&self) -> Table {
        let mut t = table(&[
            "measurement",
            "authguard",
            "crowdsec-firewall-bouncer",
            "target",
            "",
        ]);
        let peer = self.peer.as_ref();
        let p = &self.propagation;
        let summary = |s: &stats::Summary| format!("{} / {}", fmt_us(s.p50), fmt_us(s.p99));
        t.add_row(vec![
            format!("ban on A → in B's nftables, p50 / p99 of {}", p.n),
            summary(p),
            peer.and_then(|x| x.propagation.as_ref())
                .map_or_else(|| "–".into(), summary),
            "≤ 2 s".into(),
            mark(p.p50 <= 2e6).into(),
        ]);
        let n = thousands(self.decisions as u64);
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        t.add_row(vec![
            format!("full pull of {n} decisions → in the store, median of {PULL_RUNS}"),
            secs(self.pull.store),
            String::new(),
            String::new(),
            String::new(),
        ]);
        t.add_row(vec![
            format!("full pull of {n} decisions → in nftables, median of {PULL_RUNS}"),
            secs(self.pull.nft),
            peer.map_or_else(
                || "–".into(),
                |x| match x.pull {
                    Ok(d) => secs(d),
                    Err(held) => format!(
                        "{} held after {} s",
                        thousands(held as u64),
                        PEER_PULL_LIMIT.as_secs()
                    ),
                },
            ),
            "≤ 3 s".into(),
            mark(self.pull.nft <= Duration::from_secs(3)).into(),
        ]);
        t.add_row(vec![
            "memory after it (RSS / peak)".into(),
            format!(
                "{} / {}",
                fmt_kib(self.pull.rss_kib),
                fmt_kib(self.pull.peak_kib)
            ),
            peer.map_or_else(|| "–".into(), |x| fmt_kib(x.rss_kib)),
            "≤ 30 MB".into(),
            mark(self.pull.rss_kib <= RSS_GOAL_KIB).into(),
        ]);
        let (w, o) = (&self.admit_with, &self.admit_without);
        t.add_row(vec![
            format!("admission p50 / p99, {n} pulled bans in the store"),
            summary(w),
            String::new(),
            format!("without: {}", summary(o)),
            mark(w.p50 <= o.p50 * 1.25).into(),
        ]);
        t
    }

    /// Targets missed.
    pub fn missed(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.propagation.p50 > 2e6 {
            out.push("fleet propagation ≤ 2 s");
        }
        if self.pull.nft > Duration::from_secs(3) {
            out.push("100,000-decision pull ≤ 3 s");
        }
        if self.pull.rss_kib > RSS_GOAL_KIB {
            out.push("daemon RSS ≤ 30 MB after the pull");
        }
        out
    }
}

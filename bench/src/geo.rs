//! The country part (`authguard-bench geo`): what country data costs, on
//! Tor's real `geoip`/`geoip6` (Debian's tor-geoipdb, downloaded and
//! unpacked, never installed), each figure beside a peer.
//!
//! - [`import`]: `guardctl geo import` of both files into a fresh store,
//!   wall time and peak RSS (GNU time), median of 3; peer: xtables-addons'
//!   `xt_geoip_build` (what iptables users build country data with) on a
//!   DB-IP-style CSV of the same ranges. Also `geo block CC` on the store alone.
//! - [`load`] (root): in a private network namespace, a blocked US and CN
//!   loaded into nftables by `guardctl geo block` and by `guardctl daemon`
//!   from a cold start, the daemon's memory; peer: one `nft -f` of the
//!   country's unmerged ranges into `auto-merge` interval sets. And what the
//!   loaded US costs `guardctl ban`, against one `nft add element` beside
//!   the US as interval sets (nft 1.0 reads interval sets back before
//!   changing any element, which is why authguard's are hash sets).
//! - [`lookup`]: `Store::geo_lookup` rate and latency, 1,000,000 IPv4 and
//!   100,000 IPv6 lookups on one thread; peers: python3-maxminddb's C
//!   reader over a MaxMind DB of the same ranges, and an in-memory binary
//!   search (an upper bound).
//! - [`packets`] (root): what the US costs each new connection in the
//!   kernel, authguard's hash sets against the peer's interval sets.
//!
//! Not measured: established connections' packets (authguard's country
//! rules see only new ones; the peer's see every port-22 packet), a
//! `guardctl geo import` while the daemon runs, lookups from concurrent
//! processes, or lookups that open the store each time as the PAM module
//! does (the admission part covers opening).

mod data;
mod import;
mod load;
mod lookup;
mod packets;

use crate::firewall::guardctl_path;
use crate::stats::{self, fmt_kib, fmt_ns, fmt_us, thousands};
use anyhow::{Context, Result};
use comfy_table::Table;
use std::path::Path;
use std::time::Duration;

/// The large countries blocked.
const COUNTRIES: [&str; 2] = ["US", "CN"];

/// The geo part's results.
#[derive(Debug)]
pub struct Report {
    tor_version: String,
    import: import::Import,
    load: Option<load::Load>,
    lookups: lookup::Lookups,
}

/// Runs the geo part in `dir`: imports `runs` times each, `lookups` IPv4
/// lookups (and a tenth as many IPv6); the nftables part only as `root`.
pub fn run(dir: &Path, runs: usize, lookups: usize, root: bool) -> Result<Report> {
    let guardctl = guardctl_path()?;
    eprintln!("geo: fetching tor-geoipdb");
    let data = data::fetch(dir).context("Tor's country files")?;
    let import = import::run(dir, &guardctl, &data, runs, &COUNTRIES).context("import")?;
    let db = dir.join("geo-import-tor-0/authguard.db");
    let lookups = lookup::run(dir, &db, &data.csv, lookups, lookups / 10).context("lookups")?;
    let load = if root {
        Some(load::run(dir, &guardctl, &data, &COUNTRIES).context("nftables load")?)
    } else {
        None
    };
    Ok(Report {
        tor_version: data.version,
        import,
        load,
        lookups,
    })
}

impl Report {
    /// The caption above the import table.
    pub fn import_caption(&self) -> String {
        format!(
            "Countries, import: Tor's geoip + geoip6 (tor-geoipdb {}) into a fresh store; the peer reads a \
             DB-IP-style CSV (start,end,CC, dotted addresses) of the same ranges. Peak RSS: GNU time's %M.",
            self.tor_version
        )
    }

    /// Each import run, side by side.
    pub fn import_table(&self) -> Table {
        let mut t = stats::table(&[
            "tool",
            "input",
            "ranges",
            "wall (median)",
            "peak RSS (median)",
            "wrote",
            "time vs guardctl",
        ]);
        let base = self
            .import
            .runs
            .first()
            .map_or(1e-9, |r| r.wall.as_secs_f64());
        for r in &self.import.runs {
            t.add_row(vec![
                r.tool.clone(),
                r.input.clone(),
                thousands(r.ranges),
                format!("{:.2} s ({})", r.wall.as_secs_f64(), plural(r.runs, "run")),
                fmt_kib(r.rss_kib),
                r.output.clone(),
                format!("{:.1}×", r.wall.as_secs_f64() / base.max(1e-9)),
            ]);
        }
        if let Some(why) = &self.import.peer_missing {
            t.add_row(vec!["xt_geoip_build".into(), format!("no peer: {why}")]);
        }
        t
    }

    /// The caption above the nftables table.
    pub fn load_caption(&self) -> String {
        let nft = self.load.as_ref().map_or("?", |l| l.nft.as_str());
        format!(
            "Countries, nftables: a blocked country in a private network namespace (nft {nft}). \"In the kernel\": \
         from the process's start until its table shows in `nft list tables` (polled every 20 ms; table and \
         elements come in one atomic batch). Script: the country's unmerged ranges, one `nft -f`, sets with \
         `flags interval; auto-merge`."
        )
    }

    /// Per country: the store side, guardctl's push, the daemon, the script.
    pub fn load_table(&self) -> Table {
        let mut header = vec!["measurement"];
        header.extend(COUNTRIES);
        let mut t = stats::table(&header);
        let store_only = |c: &str| {
            let took = self.import.block.iter().find(|(b, _)| b == c);
            took.map_or("-".into(), |(_, d)| secs(*d))
        };
        t.add_row(row(
            "`guardctl geo block CC`, store only (backend \"none\", median)",
            store_only,
        ));
        let Some(load) = &self.load else {
            t.add_row(row("nftables", |_| "skipped: not root".into()));
            return t;
        };
        for (what, f) in LOAD_ROWS {
            t.add_row(row(what, |c| {
                load.countries
                    .iter()
                    .find(|l| l.country == c)
                    .map_or("-".into(), f)
            }));
        }
        t
    }

    /// The ban-push table (root only).
    pub fn ban_table(&self) -> Option<(String, Table)> {
        let load = self.load.as_ref()?;
        let caption = format!(
            "Countries, a ban with the US loaded: `guardctl ban 203.0.113.7 --for 1h` (store write + its \
             own nft batch into the hash set ban4), 5 times each, the US in hash sets per prefix length; \
             peer: `nft add element` into a hash set with the US as interval sets beside it (nft {} reads \
             interval sets back before changing any element).",
            load.nft
        );
        let ban = &load.ban;
        let mut t = stats::table(&["measurement", "no country blocked", "US blocked", "×"]);
        let show = |s: &stats::Summary| format!("{} / {}", fmt_us(s.p50), fmt_us(s.max));
        t.add_row(vec![
            "`guardctl ban`, p50 / max".into(),
            show(&ban.without),
            show(&ban.with_us),
            format!("{:.1}×", ban.with_us.p50 / ban.without.p50.max(1e-9)),
        ]);
        t.add_row(vec![
            "peer: `nft add element`, US as interval sets, p50 / max".into(),
            "-".into(),
            show(&ban.interval_layout),
            format!(
                "{:.1}× guardctl's",
                ban.interval_layout.p50 / ban.with_us.p50.max(1e-9)
            ),
        ]);
        Some((caption, t))
    }

    /// What the US costs each new connection, both layouts.
    pub fn connect_table(&self) -> Option<(String, Table)> {
        let c = &self.load.as_ref()?.ban.connect;
        let caption = format!(
            "Countries, a new connection's cost: {} TCP connects from {} (in no country) to port 22 \
             (closed: answered with a reset) inside the namespace, median of 3 runs; most of the time \
             is the socket calls, the difference is the rules. authguard: chain `geo` for new \
             connections, one hash lookup per prefix length (136 sets for the US); peer: one rule \
             per family on every port-22 packet, one interval-set lookup each.",
            thousands(packets::CONNECTS as u64),
            packets::SOURCE
        );
        let mut t = stats::table(&[
            "layout",
            "nothing blocked",
            "US blocked",
            "the country's cost",
        ]);
        let us = |x: f64| format!("{x:.2} µs");
        t.add_row(vec![
            "authguard: its table; chain `geo`, hash sets".into(),
            us(c.none),
            us(c.hash_sets),
            us(c.hash_sets - c.none),
        ]);
        t.add_row(vec![
            "peer: no table; two rules, interval sets".into(),
            us(c.bare),
            us(c.interval_sets),
            us(c.interval_sets - c.bare),
        ]);
        Some((caption, t))
    }

    /// The caption above the lookup table.
    pub fn lookup_caption(&self) -> String {
        let n = |f: fn(&lookup::Row) -> usize| self.lookups.rows.first().map_or(0, f) as u64;
        format!(
            "Countries, lookups on one thread: {} random IPv4 addresses (uniform over the whole space) and {} \
             random IPv6 (uniform inside randomly chosen imported IPv6 ranges), the same for every tool. \
             Rate: one pass timed whole; p50/p99: a second pass timing each lookup (clock included).",
            thousands(n(|r| r.v4.n)),
            thousands(n(|r| r.v6.n)),
        )
    }

    /// Each tool's rate and latency per family.
    pub fn lookup_table(&self) -> Table {
        let mut t = stats::table(&[
            "tool",
            "IPv4/s",
            "IPv4 p50 / p99",
            "IPv6/s",
            "IPv6 p50 / p99",
            "found v4 / v6",
        ]);
        let pct =
            |f: &lookup::Family| format!("{:.0}%", 100.0 * f.found as f64 / f.n.max(1) as f64);
        for r in &self.lookups.rows {
            t.add_row(vec![
                r.tool.clone(),
                thousands(r.v4.rate as u64),
                format!("{} / {}", fmt_ns(r.v4.p50_ns), fmt_ns(r.v4.p99_ns)),
                thousands(r.v6.rate as u64),
                format!("{} / {}", fmt_ns(r.v6.p50_ns), fmt_ns(r.v6.p99_ns)),
                format!("{} / {}", pct(&r.v4), pct(&r.v6)),
            ]);
        }
        if let Some(why) = &self.lookups.peer_missing {
            t.add_row(vec![format!("python3-maxminddb: no peer: {why}")]);
        }
        t
    }

    /// Remarks under the lookup table.
    pub fn lookup_notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "answers that differ from the store's: {}",
            thousands(self.lookups.mismatches as u64)
        )];
        notes.extend(self.lookups.peer_note.clone());
        notes
    }
}

/// One country's figure in a row of the nftables table.
type Cell = dyn Fn(&load::CountryLoad) -> String;

/// The nftables table's rows after the first: what, and each country's figure.
const LOAD_ROWS: [(&str, &Cell); 8] = [
    ("ranges imported, IPv4 + IPv6", &|l| pair(l.imported)),
    (
        "`guardctl geo block CC` with its push (store + whole table)",
        &|l| secs(l.block_push),
    ),
    (
        "authguard: `guardctl daemon` start → in the kernel",
        &|l| secs(l.daemon),
    ),
    ("authguard: networks in hash sets geo4_*, geo6_*", &|l| {
        pair(l.merged)
    }),
    ("authguard: daemon resident memory after loading", &|l| {
        fmt_kib(l.daemon_rss_kib)
    }),
    ("script: one `nft -f` → in the kernel", &|l| secs(l.peer)),
    ("script: elements after auto-merge", &|l| {
        pair(l.peer_elements)
    }),
    ("script's time ÷ daemon's", &|l| {
        format!(
            "{:.1}×",
            l.peer.as_secs_f64() / l.daemon.as_secs_f64().max(1e-9)
        )
    }),
];

/// A table row: `what`, then `cell` of each country.
fn row(what: &str, cell: impl Fn(&str) -> String) -> Vec<String> {
    std::iter::once(what.to_owned())
        .chain(COUNTRIES.iter().map(|c| cell(c)))
        .collect()
}

/// `39,976 + 32,488`.
fn pair((a, b): (usize, usize)) -> String {
    format!("{} + {}", thousands(a as u64), thousands(b as u64))
}

/// `1 run`, `3 runs`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn secs(d: Duration) -> String {
    fmt_us(d.as_secs_f64() * 1e6)
}

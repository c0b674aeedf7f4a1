//! Lookup rate, single thread: random IPv4 addresses (uniform over the
//! whole space) and random IPv6 addresses (uniform inside a randomly
//! chosen imported IPv6 range: uniform IPv6 would nearly all miss) through
//! `Store::geo_lookup` on one open connection (what `guardctl show` and the
//! PAM module call), against a plain in-memory binary search over the same
//! ranges (an upper bound, not a product) and python3-maxminddb's C reader
//! over a MaxMind DB built from the same ranges with MaxMind::DB::Writer.
//!
//! Each tool makes two passes over the same addresses: one timed as a
//! whole (the rate), one timing every lookup (the percentiles, which
//! include the clock's own cost, some 20–40 ns here, more in Python).

use crate::admission::Rng;
use crate::stats::percentile;
use anyhow::{Context, Result, bail};
use authguard_core::addr;
use authguard_core::store::{Access, Store};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's Python, which has python3-maxminddb (not a pyenv shim's).
const PYTHON: &str = "/usr/bin/python3";
/// The random addresses' seed: every run looks up the same ones.
const SEED: u64 = 0x6e0_1004;
/// The store's statement deadline is renewed between chunks of this many lookups.
const CHUNK: usize = 10_000;

/// One family's figures for one tool.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// Lookups made.
    pub n: usize,
    /// Lookups per second (the whole-pass timing).
    pub rate: f64,
    /// Median per-lookup latency, ns.
    pub p50_ns: f64,
    /// 99th percentile, ns.
    pub p99_ns: f64,
    /// Lookups that found a country.
    pub found: usize,
}

/// One tool's row.
#[derive(Debug)]
pub struct Row {
    /// What looked up.
    pub tool: String,
    /// IPv4 figures.
    pub v4: Family,
    /// IPv6 figures.
    pub v6: Family,
}

/// The lookup part's results.
#[derive(Debug)]
pub struct Lookups {
    /// The store, the binary search, the MaxMind reader (if it ran).
    pub rows: Vec<Row>,
    /// Why the MaxMind peer did not run.
    pub peer_missing: Option<String>,
    /// How the peer's DB was built.
    pub peer_note: Option<String>,
    /// Addresses on which the tools' answers differ from the store's.
    pub mismatches: usize,
}

/// A country code, or none.
type Answer = Option<[u8; 2]>;

/// Looks up `n4` IPv4 and `n6` IPv6 addresses in the store `db` every way.
pub fn run(dir: &Path, db: &Path, csv: &Path, n4: usize, n6: usize) -> Result<Lookups> {
    let table = load_ranges(db)?;
    let (v4, v6) = addresses(&table, n4, n6);
    let store = Store::open(db, Access::Read, Duration::from_secs(1))?;
    eprintln!("geo: {} + {} lookups through the store", v4.len(), v6.len());
    let by_store = |ip| Ok(code(store.geo_lookup(ip)?.as_deref()));
    let renew = || store.renew_deadline();
    let (s4, a4) = measure(&v4, by_store, renew)?;
    let (s6, a6) = measure(&v6, by_store, renew)?;
    let mut rows = vec![row(
        "Store::geo_lookup (SQLite, one open connection)",
        s4,
        s6,
    )];
    eprintln!("geo: the same by binary search");
    let search = |ip| Ok(binary_search(&table, ip));
    let (b4, c4) = measure(&v4, search, || {})?;
    let (b6, c6) = measure(&v6, search, || {})?;
    rows.push(row("binary search in memory (upper bound)", b4, b6));
    let mut mismatches = differ(&a4, &c4) + differ(&a6, &c6);
    let (peer_missing, peer_note) = match maxmind(dir, csv, &v4, &v6) {
        Ok((r, answers, note)) => {
            let ours: Vec<Answer> = a4.iter().chain(&a6).copied().collect();
            mismatches += differ(&ours, &answers);
            rows.push(r);
            (None, Some(note))
        }
        Err(e) => (Some(format!("{e:#}")), None),
    };
    Ok(Lookups {
        rows,
        peer_missing,
        peer_note,
        mismatches,
    })
}

fn row(tool: &str, v4: Family, v6: Family) -> Row {
    Row {
        tool: tool.to_owned(),
        v4,
        v6,
    }
}

fn code(country: Option<&str>) -> Answer {
    country.and_then(|c| c.as_bytes().try_into().ok())
}

fn differ(a: &[Answer], b: &[Answer]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

/// Every imported range as `(lo key, hi key, country)`, sorted.
fn load_ranges(db: &Path) -> Result<Vec<(u128, u128, [u8; 2])>> {
    let conn = rusqlite::Connection::open(db)?;
    let mut stmt = conn.prepare("SELECT lo, hi, country FROM geo_ranges ORDER BY lo")?;
    let key = |v: Vec<u8>| v.try_into().map(u128::from_be_bytes).ok();
    let rows = stmt.query_map([], |r| {
        let (lo, hi, c): (Vec<u8>, Vec<u8>, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok((key(lo), key(hi), code(Some(&c))))
    })?;
    let mut out = Vec::new();
    for row in rows {
        if let (Some(lo), Some(hi), Some(c)) = row? {
            out.push((lo, hi, c));
        }
    }
    Ok(out)
}

/// The country of `ip` by binary search over the sorted, disjoint ranges.
fn binary_search(table: &[(u128, u128, [u8; 2])], ip: IpAddr) -> Answer {
    let key = u128::from_be_bytes(addr::key_of(ip));
    let i = table.partition_point(|r| r.0 <= key);
    let (_, hi, c) = table.get(i.checked_sub(1)?)?;
    (*hi >= key).then_some(*c)
}

/// The random addresses (the same every run).
fn addresses(table: &[(u128, u128, [u8; 2])], n4: usize, n6: usize) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut rng = Rng(SEED);
    let v4 = (0..n4)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let v4_keys = 0xffff_0000_0000..=0xffff_ffff_ffff_u128;
    let six: Vec<_> = table.iter().filter(|r| !v4_keys.contains(&r.0)).collect();
    let v6 = (0..n6)
        .filter_map(|_| {
            let (lo, hi, _) = six.get(rng.below(six.len() as u64) as usize)?;
            let span = hi - lo;
            let wide = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            let off = if span == u128::MAX {
                wide
            } else {
                wide % (span + 1)
            };
            Some(IpAddr::V6(Ipv6Addr::from(lo + off)))
        })
        .collect();
    (v4, v6)
}

/// Both passes of `lookup` over `addrs`; `renew` runs between chunks, untimed.
fn measure(
    addrs: &[IpAddr],
    mut lookup: impl FnMut(IpAddr) -> Result<Answer>,
    mut renew: impl FnMut(),
) -> Result<(Family, Vec<Answer>)> {
    let mut answers = Vec::with_capacity(addrs.len());
    let mut total = Duration::ZERO;
    for chunk in addrs.chunks(CHUNK) {
        renew();
        let t0 = Instant::now();
        for ip in chunk {
            answers.push(lookup(*ip)?);
        }
        total += t0.elapsed();
    }
    let mut ns = Vec::with_capacity(addrs.len());
    for chunk in addrs.chunks(CHUNK) {
        renew();
        for ip in chunk {
            let t0 = Instant::now();
            let a = lookup(*ip)?;
            ns.push(t0.elapsed().as_nanos() as f64);
            std::hint::black_box(a);
        }
    }
    ns.sort_by(f64::total_cmp);
    let family = Family {
        n: addrs.len(),
        rate: addrs.len() as f64 / total.as_secs_f64().max(1e-9),
        p50_ns: percentile(&ns, 50.0),
        p99_ns: percentile(&ns, 99.0),
        found: answers.iter().filter(|a| a.is_some()).count(),
    };
    Ok((family, answers))
}

/// Builds a MaxMind DB from the CSV with MaxMind::DB::Writer (Perl) and
/// looks the same addresses up with python3-maxminddb's C extension.
fn maxmind(
    dir: &Path,
    csv: &Path,
    v4: &[IpAddr],
    v6: &[IpAddr],
) -> Result<(Row, Vec<Answer>, String)> {
    let mmdb = dir.join("geo.mmdb");
    let t0 = Instant::now();
    let out = Command::new("perl")
        .arg("-e")
        .arg(WRITER)
        .arg(&mmdb)
        .arg(csv)
        .output()
        .context("running perl")?;
    if !out.status.success() {
        bail!(
            "building the MaxMind DB failed (needs libmaxmind-db-writer-perl; `make bench` installs it): {}",
            first_line(&out.stderr)
        );
    }
    let built = t0.elapsed();
    let size = std::fs::metadata(&mmdb)?.len();
    let list = dir.join("geo-addresses.txt");
    let mut w = BufWriter::new(std::fs::File::create(&list)?);
    for ip in v4.iter().chain(v6) {
        writeln!(w, "{ip}")?;
    }
    w.flush()?;
    let answers_path = dir.join("geo-answers.txt");
    eprintln!("geo: the same through python3-maxminddb");
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(READER)
        .arg(&mmdb)
        .arg(&list)
        .arg(&answers_path)
        .output()
        .with_context(|| format!("running {PYTHON}"))?;
    if !out.status.success() {
        bail!(
            "python3-maxminddb failed (needs python3-maxminddb; `make bench` installs it): {}",
            first_line(&out.stderr)
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the reader's JSON")?;
    let fam = |k: &str| Family {
        n: json[k]["n"].as_u64().unwrap_or(0) as usize,
        rate: json[k]["rate"].as_f64().unwrap_or(0.0),
        p50_ns: json[k]["p50_ns"].as_f64().unwrap_or(0.0),
        p99_ns: json[k]["p99_ns"].as_f64().unwrap_or(0.0),
        found: json[k]["found"].as_u64().unwrap_or(0) as usize,
    };
    let answers = std::fs::read_to_string(&answers_path)?
        .lines()
        .map(|l| code(Some(l)))
        .collect();
    let tool = format!(
        "python3-maxminddb {} (C ext., MODE_MMAP_EXT)",
        deb_version("python3-maxminddb")
    );
    let note = format!(
        "the MaxMind DB was built from the same ranges by MaxMind::DB::Writer in {:.1} s ({:.1} MiB); Python is handed address strings, Rust parsed addresses",
        built.as_secs_f64(),
        size as f64 / 1048576.0
    );
    Ok((row(&tool, fam("v4"), fam("v6")), answers, note))
}

/// An installed Debian package's version, or `?`.
fn deb_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("?".into(), |o| {
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// MaxMind::DB::Writer: `perl -e WRITER OUT.mmdb IN.csv`, each range as
/// `{country => {iso_code => CC}}` (GeoLite2-Country's shape).
const WRITER: &str = r#"
use strict; use warnings;
use MaxMind::DB::Writer::Tree;
my ($out, $in) = @ARGV;
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version => 6, record_size => 28, database_type => 'authguard-bench-country',
    languages => ['en'], description => { en => 'Tor geoip, for authguard-bench' },
    map_key_type_callback => sub { $_[0] eq 'country' ? 'map' : 'utf8_string' },
    remove_reserved_networks => 0,
);
my %data;
open my $csv, '<', $in or die "$in: $!";
while (my $line = <$csv>) {
    chomp $line;
    my ($lo, $hi, $cc) = split /,/, $line;
    $tree->insert_range($lo, $hi, $data{$cc} //= { country => { iso_code => $cc } });
}
open my $fh, '>:raw', $out or die "$out: $!";
$tree->write_tree($fh);
close $fh or die;
"#;

/// python3-maxminddb: `python3 -c READER DB ADDRESSES ANSWERS`; prints JSON.
const READER: &str = r#"
import json, math, sys, time, maxminddb
db, addrs, answers_path = sys.argv[1:4]
reader = maxminddb.open_database(db, maxminddb.MODE_MMAP_EXT)
def country(a):
    d = reader.get(a)
    return d["country"]["iso_code"] if d else None
every = open(addrs).read().split()
out = {}
answers = []
for fam, group in (("v4", [a for a in every if ":" not in a]), ("v6", [a for a in every if ":" in a])):
    got = []
    t0 = time.perf_counter()
    for a in group:
        got.append(country(a))
    took = time.perf_counter() - t0
    clock, lat = time.perf_counter_ns, []
    for a in group:
        s = clock(); country(a); lat.append(clock() - s)
    lat.sort()
    rank = lambda p: lat[max(1, math.ceil(p / 100 * len(lat))) - 1]
    out[fam] = {"n": len(group), "rate": len(group) / took, "p50_ns": rank(50), "p99_ns": rank(99),
                "found": sum(1 for g in got if g)}
    answers += got
with open(answers_path, "w") as f:
    f.write("".join((g or "-") + "\n" for g in answers))
print(json.dumps(out))
"#;

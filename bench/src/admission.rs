//! Admission latency: N worker *processes* (this binary re-executed with the
//! hidden `worker` subcommand) hammer one store, each decision being exactly
//! what the PAM module pays per attempt: `Store::open` + `admit` + drop.
//!
//! The store is first filled with an old history (attempts and bans written
//! directly through rusqlite, at past timestamps, outside `find_time`) so the
//! lookups run against realistically sized indexes. Every scenario starts
//! from a copy of that same file.

use crate::stats::{self, Summary, fmt_us, mark, thousands};
use anyhow::{Context, Result, bail, ensure};
use authguard_core::addr;
use authguard_core::config::{Config, MaxFailures, PolicyConfig};
use authguard_core::policy;
use authguard_core::store::admission::{Attempt, Decision};
use authguard_core::store::{Access, Store, StoreError, disk_size};
use authguard_core::time::{self, Timestamp};
use comfy_table::Table;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `busy_timeout` of every decision, as in the default config.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// The p99 target, for the 64-process rows.
const TARGET_P99_US: f64 = 1_000.0;
/// (processes, decisions per process) of each scenario.
const LOADS: [(usize, usize); 3] = [(1, 2000), (16, 300), (64, 100)];
/// The source every process shares in the shared-source scenario.
const SHARED_SOURCE: &str = "203.0.113.50";

/// How much old history to write before measuring.
#[derive(Debug, Clone, Copy)]
pub struct HistorySize {
    /// Old attempts.
    pub attempts: usize,
    /// Old bans (most expired, some still in force).
    pub bans: usize,
    /// Distinct sources they come from.
    pub sources: usize,
}

/// What the prefill wrote.
#[derive(Debug, Clone)]
struct History {
    size: HistorySize,
    active_bans: usize,
    bytes: u64,
    took: Duration,
}

/// Who the processes of a scenario claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Each process its own source: no bans (the policy allows 1,000,000 failures).
    Distinct,
    /// All processes one source, default policy: a ban forms after 5 attempts.
    Shared,
}

impl Sources {
    fn name(self) -> &'static str {
        match self {
            Sources::Distinct => "distinct sources",
            Sources::Shared => "shared source",
        }
    }

    fn max_failures(self) -> u32 {
        match self {
            Sources::Distinct => 1_000_000,
            Sources::Shared => PolicyConfig::default().max_failures.0,
        }
    }

    /// Process `i`'s source: alternately 198.51.100.x and 2001:db8:0:x::1
    /// (its own /64, since IPv6 sources aggregate to /64).
    fn of(self, i: usize) -> String {
        match self {
            Sources::Shared => SHARED_SOURCE.to_owned(),
            Sources::Distinct if i.is_multiple_of(2) => format!("198.51.100.{}", i / 2 + 1),
            Sources::Distinct => format!("2001:db8:0:{:x}::1", i / 2 + 1),
        }
    }
}

/// One scenario's merged results.
#[derive(Debug)]
struct Row {
    sources: Sources,
    procs: usize,
    latencies: Vec<f64>,
    counts: Counts,
    /// Longest any worker took from its start to its last decision.
    wall: Duration,
    /// Latest start of a worker past the common start time.
    late: Duration,
}

/// Decision outcomes, as a worker reports them.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    admitted: u64,
    refused: u64,
    bans_created: u64,
    busy: u64,
    other_errors: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.admitted += o.admitted;
        self.refused += o.refused;
        self.bans_created += o.bans_created;
        self.busy += o.busy;
        self.other_errors += o.other_errors;
    }
}

/// The admission part's results.
#[derive(Debug)]
pub struct Report {
    history: History,
    rows: Vec<Row>,
}

/// Fills a template store, then runs every scenario on a copy of it.
pub fn run(exe: &Path, dir: &Path, size: HistorySize) -> Result<Report> {
    let template = dir.join("template").join("authguard.db");
    let history = prefill(&template, size, time::now()).context("filling the store's history")?;
    eprintln!(
        "admission: history written in {:.1}s ({} MB)",
        history.took.as_secs_f64(),
        history.bytes / 1_000_000
    );
    let mut rows = Vec::new();
    for sources in [Sources::Distinct, Sources::Shared] {
        for (procs, iterations) in LOADS {
            let store = dir
                .join(format!("{}-{procs}", sources.name().replace(' ', "-")))
                .join("authguard.db");
            std::fs::create_dir_all(store.parent().unwrap_or(dir))?;
            std::fs::copy(&template, &store).context("copying the template store")?;
            eprintln!(
                "admission: {}, {procs} process(es) × {iterations} decisions",
                sources.name()
            );
            let row = scenario(exe, &store, sources, procs, iterations)
                .with_context(|| format!("{}, {procs} processes", sources.name()))?;
            check(&row, iterations)?;
            rows.push(row);
            std::fs::remove_dir_all(store.parent().unwrap_or(dir)).ok();
        }
    }
    Ok(Report { history, rows })
}

/// Fails when a scenario did not do what it is meant to measure.
fn check(row: &Row, iterations: usize) -> Result<()> {
    let c = &row.counts;
    ensure!(
        row.latencies.len() == row.procs * iterations,
        "expected {} decisions, got {}",
        row.procs * iterations,
        row.latencies.len()
    );
    ensure!(
        c.other_errors == 0,
        "{} decisions failed with a store error other than busy (see the workers' stderr above)",
        c.other_errors
    );
    match row.sources {
        Sources::Distinct => ensure!(
            c.refused == 0,
            "distinct sources were refused {} times: the history or the policy is wrong",
            c.refused
        ),
        Sources::Shared => ensure!(
            c.bans_created >= 1 && c.refused > 0,
            "the shared source was never banned"
        ),
    }
    Ok(())
}

fn scenario(
    exe: &Path,
    store: &Path,
    sources: Sources,
    procs: usize,
    iterations: usize,
) -> Result<Row> {
    // Time for every process to be exec'd and waiting before the common start.
    let lead = Duration::from_millis(150 + 20 * procs as u64);
    let start = SystemTime::now() + lead;
    let start_ns = start.duration_since(UNIX_EPOCH)?.as_nanos();
    let mut children = Vec::with_capacity(procs);
    for i in 0..procs {
        let child = Command::new(exe)
            .arg("worker")
            .arg("--store")
            .arg(store)
            .args(["--source", &sources.of(i)])
            .args(["--iterations", &iterations.to_string()])
            .args(["--start-ns", &start_ns.to_string()])
            .args(["--max-failures", &sources.max_failures().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting worker {i} ({})", exe.display()))?;
        children.push(child);
    }
    let mut row = Row {
        sources,
        procs,
        latencies: Vec::with_capacity(procs * iterations),
        counts: Counts::default(),
        wall: Duration::ZERO,
        late: Duration::ZERO,
    };
    // Workers print only after their last decision, so reading them in turn
    // never holds one up while it measures.
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output()?;
        ensure!(out.status.success(), "worker {i} failed: {}", out.status);
        let text = String::from_utf8(out.stdout).context("worker output")?;
        parse_worker(&text, &mut row).with_context(|| format!("worker {i}'s output"))?;
    }
    Ok(row)
}

fn parse_worker(text: &str, row: &mut Row) -> Result<()> {
    let mut lines = text.lines();
    let header = lines.next().context("empty")?;
    let mut c = Counts::default();
    for field in header.split_whitespace().skip(1) {
        let (k, v) = field.split_once('=').context("bad summary field")?;
        let v: u64 = v.parse()?;
        match k {
            "admitted" => c.admitted = v,
            "refused" => c.refused = v,
            "created" => c.bans_created = v,
            "busy" => c.busy = v,
            "errors" => c.other_errors = v,
            "late_us" => row.late = row.late.max(Duration::from_micros(v)),
            "wall_us" => row.wall = row.wall.max(Duration::from_micros(v)),
            _ => bail!("unknown summary field {k}"),
        }
    }
    row.counts.add(&c);
    for line in lines {
        row.latencies.push(line.trim().parse()?);
    }
    Ok(())
}

/// Arguments of the hidden `worker` subcommand.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The store.
    #[arg(long)]
    store: PathBuf,
    /// The client address of every attempt.
    #[arg(long)]
    source: IpAddr,
    /// Decisions to make.
    #[arg(long)]
    iterations: usize,
    /// When to begin, in ns since the Unix epoch.
    #[arg(long)]
    start_ns: u128,
    /// The policy's `max_failures`.
    #[arg(long)]
    max_failures: u32,
}

/// One worker process: waits for the common start, makes its decisions,
/// then prints a summary line and one latency (µs) per line.
pub fn worker(a: &WorkerArgs) -> Result<()> {
    let config = Config {
        policy: PolicyConfig {
            max_failures: MaxFailures(a.max_failures),
            ..PolicyConfig::default()
        },
        ..Config::default()
    };
    let attempt = Attempt {
        ip: a.source,
        user: b"root",
        service: "sshd",
    };
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let late_us = match a.start_ns.checked_sub(since_epoch) {
        Some(wait) => {
            std::thread::sleep(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
            0
        }
        None => (since_epoch - a.start_ns) / 1_000,
    };
    let mut c = Counts::default();
    let mut latencies = Vec::with_capacity(a.iterations);
    let began = Instant::now();
    for _ in 0..a.iterations {
        let t = Instant::now();
        let decision = Store::open(&a.store, Access::Login, BUSY_TIMEOUT)
            .and_then(|mut store| store.admit(&config, &attempt, time::now()));
        latencies.push(t.elapsed());
        match decision {
            Ok(Decision::Admitted { .. } | Decision::Allowed { .. }) => c.admitted += 1,
            Ok(Decision::Refused { created, .. }) => {
                c.refused += 1;
                c.bans_created += u64::from(created);
            }
            Ok(Decision::KeyOnly { .. }) => c.refused += 1,
            Err(StoreError::Busy(_)) => c.busy += 1,
            Err(e) => {
                if c.other_errors == 0 {
                    eprintln!("worker {}: {e}", a.source);
                }
                c.other_errors += 1;
            }
        }
    }
    let wall_us = began.elapsed().as_micros();
    let mut out = format!(
        "summary admitted={} refused={} created={} busy={} errors={} late_us={late_us} wall_us={wall_us}\n",
        c.admitted, c.refused, c.bans_created, c.busy, c.other_errors
    );
    for l in latencies {
        writeln!(out, "{:.1}", l.as_secs_f64() * 1e6)?;
    }
    print!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------
// The old history
// ---------------------------------------------------------------------------

/// A small deterministic generator (SplitMix64): the same history every run.
#[derive(Debug)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index in `0..n` skewed towards 0: a few sources do most of the attacking.
    pub(crate) fn skewed(&mut self, n: usize) -> usize {
        let u = self.unit();
        ((u * u * u) * n as f64) as usize
    }
}

/// A public-looking attacker address outside every range the bench itself uses.
pub(crate) fn attacker_ip(rng: &mut Rng) -> IpAddr {
    if rng.below(20) == 0 {
        let hi = 0x2a01_0000_0000_0000u64 | (rng.next() & 0x0000_ffff_ffff_ffff);
        return IpAddr::V6(Ipv6Addr::from(
            (u128::from(hi) << 64) | u128::from(rng.next()),
        ));
    }
    loop {
        let v4 = Ipv4Addr::from(rng.next() as u32);
        let o = v4.octets();
        // Skip private, loopback, multicast and the documentation ranges the bench uses.
        let reserved = matches!(o[0], 0 | 10 | 127 | 224..=255)
            || (o[0], o[1], o[2]) == (198, 51, 100)
            || (o[0], o[1], o[2]) == (203, 0, 113);
        if !reserved {
            return IpAddr::V4(v4);
        }
    }
}

const USERS: [&[u8]; 10] = [
    b"root",
    b"admin",
    b"ubuntu",
    b"test",
    b"user",
    b"oracle",
    b"postgres",
    b"git",
    b"pi",
    b"ftp",
];

/// Creates the store at `path` and writes `size` of history, all of it at
/// least an hour old (so outside the default 10-minute `find_time`).
fn prefill(path: &Path, size: HistorySize, now: Timestamp) -> Result<History> {
    let began = Instant::now();
    Store::init(path)?;
    let policy = PolicyConfig::default();
    let mut rng = Rng(0x00A7_7E57_2026);
    let pool: Vec<IpAddr> = (0..size.sources).map(|_| attacker_ip(&mut rng)).collect();
    let thirty_days = 30 * 86_400;
    let old = |rng: &mut Rng| now - 3_600 - rng.below(thirty_days) as i64;

    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut times: Vec<Timestamp> = (0..size.attempts).map(|_| old(&mut rng)).collect();
        times.sort_unstable();
        let mut insert = tx.prepare(
            "INSERT INTO attempts (at, source, address, user, service, origin, outcome, live)
             VALUES (?1, ?2, ?3, ?4, 'sshd', 'pam', ?5, ?6)",
        )?;
        for at in times {
            let ip = pool[rng.skewed(pool.len())];
            let source = addr::display(&addr::source_of(ip, 32, 64));
            let user = USERS[rng.skewed(USERS.len())];
            // Pending failures that never reached a ban stay live; the rest
            // were consumed by a ban, refused during one, or were logins.
            let (outcome, live) = match rng.below(100) {
                0..35 => ("pending", true),
                35..70 => ("pending", false),
                70..95 => ("refused", false),
                _ => ("success", false),
            };
            insert
                .execute(rusqlite::params![
                    at,
                    source,
                    ip.to_string(),
                    user,
                    outcome,
                    live
                ])
                .context("inserting an old attempt (has the schema changed?)")?;
        }
    }
    let mut active_bans = 0;
    {
        let mut bans: Vec<(Timestamp, usize)> = (0..size.bans)
            .map(|_| (old(&mut rng), rng.skewed(pool.len())))
            .collect();
        bans.sort_unstable();
        let mut earlier = vec![0u32; pool.len()];
        let mut insert = tx.prepare(
            "INSERT INTO bans (source, lo, hi, since, expires, ended, end_reason, reason, origin, level, failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '5 failures within 10m', 'pam', ?8, 5)",
        )?;
        for (since, i) in bans {
            let net = addr::source_of(pool[i], 32, 64);
            let (lo, hi) = addr::range_keys(&net);
            let length = policy::ban_duration(&policy, earlier[i]);
            let expires = since + i64::try_from(length.as_secs())?;
            earlier[i] += 1;
            let (ended, reason) = if expires <= now {
                (Some(expires), Some("expired"))
            } else {
                active_bans += 1;
                (None, None)
            };
            insert
                .execute(rusqlite::params![
                    addr::display(&net),
                    lo,
                    hi,
                    since,
                    expires,
                    ended,
                    reason,
                    earlier[i]
                ])
                .context("inserting an old ban (has the schema changed?)")?;
        }
    }
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    // The store must still open as the module opens it.
    Store::open(path, Access::Write, BUSY_TIMEOUT)?;
    Ok(History {
        size,
        active_bans,
        bytes: disk_size(path),
        took: began.elapsed(),
    })
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

impl Report {
    /// A line describing the store the decisions ran against.
    pub fn caption(&self) -> String {
        let h = &self.history;
        format!(
            "Admission decision latency: Store::open(Write, busy_timeout 1s) + admit + drop, per attempt.\n\
             Store history before each scenario: {} old attempts from {} sources, {} old bans \
             ({} still in force), {:.1} MB; SQLite {}, WAL, synchronous=NORMAL.",
            thousands(h.size.attempts as u64),
            thousands(h.size.sources as u64),
            thousands(h.size.bans as u64),
            thousands(h.active_bans as u64),
            h.bytes as f64 / 1e6,
            rusqlite::version(),
        )
    }

    /// The latency table.
    pub fn table(&self) -> Table {
        let mut t = stats::table(&[
            "scenario",
            "procs",
            "decisions",
            "admitted / refused / busy",
            "decisions/s",
            "mean",
            "p50",
            "p99",
            "max",
            "target p99 ≤ 1 ms at 64",
        ]);
        for r in &self.rows {
            let Some(s) = Summary::of(&r.latencies) else {
                continue;
            };
            let target = if r.procs == 64 {
                format!("{} {}", fmt_us(s.p99), mark(s.p99 <= TARGET_P99_US))
            } else {
                String::new()
            };
            let c = &r.counts;
            t.add_row(vec![
                r.sources.name().to_owned(),
                r.procs.to_string(),
                thousands(s.n as u64),
                format!("{} / {} / {}", c.admitted, c.refused, c.busy),
                thousands((s.n as f64 / r.wall.as_secs_f64().max(1e-9)) as u64),
                fmt_us(s.mean),
                fmt_us(s.p50),
                fmt_us(s.p99),
                fmt_us(s.max),
                target,
            ]);
        }
        t
    }

    /// Remarks on the run: the closed-loop bound, late workers, busy errors.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.rows {
            if r.procs == 64 {
                let rate = r.latencies.len() as f64 / r.wall.as_secs_f64().max(1e-9);
                notes.push(format!(
                    "{}, 64 procs: every process always has a decision in flight, so the mean \
                     latency is about 64 / throughput = {} at {rate:.0}/s (Little's law); \
                     1 ms would need ~64,000 decisions/s",
                    r.sources.name(),
                    fmt_us(64.0 / rate * 1e6),
                ));
            }
            if r.late > Duration::from_millis(1) {
                notes.push(format!(
                    "{}, {} procs: a worker started {} after the common start",
                    r.sources.name(),
                    r.procs,
                    fmt_us(r.late.as_secs_f64() * 1e6)
                ));
            }
            if r.counts.busy > 0 {
                notes.push(format!(
                    "{}, {} procs: {} decisions hit busy_timeout (1s): the module would apply fail_mode",
                    r.sources.name(),
                    r.procs,
                    r.counts.busy
                ));
            }
        }
        notes
    }

    /// Whether the 64-process p99 target was met in every scenario.
    pub fn target_met(&self) -> bool {
        self.rows
            .iter()
            .filter(|r| r.procs == 64)
            .filter_map(|r| Summary::of(&r.latencies))
            .all(|s| s.p99 <= TARGET_P99_US)
    }
}

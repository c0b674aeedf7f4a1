//! A flood of logins on one store: 64 and 256 concurrent login *processes*
//! (this binary re-executed as `flood-worker`), all released at one instant,
//! from distinct sources and from one source; on the bench's normal disk
//! and on a slow one ([`crate::slowdisk`]).
//!
//! Each decision is the PAM module's own `pam_sm_authenticate` logic,
//! `pam_authguard::guard::authenticate`: config load, `Store::open(Login,
//! busy_timeout)`, `admit`, the fsync of a ban it creates, a fault answered
//! by `fail_mode` and logged. Only libpam's FFI shell is left out: a
//! `pamtester` process per decision would put its exec and libpam start-up
//! (milliseconds of CPU each, 256 at a time on 2 cores) into every latency,
//! which is not the store's. An admitted login of a distinct source is then
//! marked a success (`guard::record_success`, the module's setcred), as
//! sshd does after a good password; the one source's attempts are failures.
//!
//! A fail-open admission is the module admitting because the store failed
//! it (busy past `busy_timeout`, a timeout, any fault): `authenticate`
//! answers `Admit` without an attempt id, and logs `fault: … admitted
//! (fail_mode=open)`. Each worker binds its own log socket (the `[log]
//! socket` of its config) and counts those lines too, and the store must
//! hold exactly one attempt per decision that was not a fault.

use crate::slowdisk::{self, SlowDisk};
use crate::stats::{self, Summary, fmt_us, mark, thousands};
use anyhow::{Context, Result, bail, ensure};
use authguard_core::config::PolicyConfig;
use authguard_core::store::Store;
use comfy_table::Table;
use pam_authguard::args::ModuleArgs;
use pam_authguard::ffi::Items;
use pam_authguard::guard::{self, Verdict};
use std::fmt::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent login processes of each scenario (64 and 256).
    pub procs: Vec<usize>,
    /// Decisions each process makes.
    pub decisions: usize,
    /// The slow disk's delay per flush; `None`: the normal disk only.
    pub slow: Option<Duration>,
}
/// The p99 goal at 64 processes on the normal disk.
const TARGET_P99_US: f64 = 20_000.0;
/// The source every process shares in the one-source scenario.
const ONE_SOURCE: &str = "203.0.113.66";
/// fsync(2) samples of the latency probe.
const FSYNC_SAMPLES: usize = 40;
/// A slow disk's fsync must take at least this long.
const SLOW_FSYNC_MIN_US: f64 = 5_000.0;

/// Who the processes of a scenario claim to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Each process its own source; its admitted logins succeed (setcred).
    Distinct,
    /// Every process the same source, every attempt a failure.
    One,
}

impl Sources {
    fn name(self) -> &'static str {
        match self {
            Sources::Distinct => "distinct",
            Sources::One => "one",
        }
    }

    /// Process `i`'s source: 198.51.100.x and 2001:db8:0:x::/64 in turn.
    fn of(self, i: usize) -> String {
        match self {
            Sources::One => ONE_SOURCE.to_owned(),
            Sources::Distinct if i.is_multiple_of(2) => format!("198.51.100.{}", i / 2 + 1),
            Sources::Distinct => format!("2001:db8:0:{:x}::1", i / 2 + 1),
        }
    }
}

/// One disk the scenarios ran on.
#[derive(Debug)]
struct DiskInfo {
    name: &'static str,
    what: String,
    fsync: Summary,
}

/// One scenario's merged results.
#[derive(Debug)]
struct Row {
    disk: &'static str,
    procs: usize,
    sources: Sources,
    latencies: Vec<f64>,
    counts: Counts,
    /// Bans in the store afterwards.
    bans: i64,
    /// Attempts recorded in the store afterwards.
    recorded: i64,
    /// From the common start to the last decision of the last worker.
    wall: Duration,
    /// Latest start of a worker past the common start.
    late: Duration,
}

/// What a worker reports.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    admitted: u64,
    refused: u64,
    /// Admitted without an attempt id: a fault, answered by fail_mode=open.
    fail_open: u64,
    /// `fault: … admitted (fail_mode=open)` lines the module logged.
    fail_open_logged: u64,
    /// Every `fault:` line.
    faults_logged: u64,
    /// `ban not synced` lines.
    unsynced_logged: u64,
    /// Refused because the store was saturated (`store saturated` lines):
    /// not counted, never admitted.
    saturated: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.admitted += o.admitted;
        self.refused += o.refused;
        self.fail_open += o.fail_open;
        self.fail_open_logged += o.fail_open_logged;
        self.faults_logged += o.faults_logged;
        self.unsynced_logged += o.unsynced_logged;
        self.saturated += o.saturated;
    }
}

/// The flood part's results.
#[derive(Debug)]
pub struct Report {
    procs: String,
    decisions: usize,
    disks: Vec<DiskInfo>,
    /// Why the slow disk was not run, if it was not.
    slow_skipped: Option<String>,
    rows: Vec<Row>,
}

/// Runs every scenario on the normal disk (under `dir`), then on a slow
/// disk whose flushes wait `load.slow` (root only).
pub fn run(exe: &Path, dir: &Path, load: &Load, root: bool) -> Result<Report> {
    let decisions = load.decisions;
    let procs: Vec<String> = load.procs.iter().map(usize::to_string).collect();
    let mut report = Report {
        procs: procs.join(" and "),
        decisions,
        disks: Vec::new(),
        slow_skipped: None,
        rows: Vec::new(),
    };
    let normal = dir.join("flood");
    std::fs::create_dir_all(&normal)?;
    report.disks.push(DiskInfo {
        name: "normal",
        what: describe_fs(&normal),
        fsync: probe(&normal)?,
    });
    scenarios(exe, &normal, "normal", load, &mut report.rows)?;
    std::fs::remove_dir_all(&normal).ok();

    let Some(slow) = load.slow else {
        report.slow_skipped = Some("left out (--flood-normal-disk-only)".into());
        return Ok(report);
    };
    let skip = if !root {
        Some("not root (it needs a loop device and mounts)".to_owned())
    } else {
        slowdisk::unavailable_reason()
    };
    if let Some(why) = skip {
        eprintln!("flood: slow disk skipped: {why}");
        report.slow_skipped = Some(why);
        return Ok(report);
    }
    let disk = SlowDisk::create(exe, dir, slow).context("making the slow disk")?;
    eprintln!("flood: slow disk: {}", disk.kind);
    let here = disk.mount.join("flood");
    std::fs::create_dir_all(&here)?;
    let fsync = probe(&here)?;
    report.disks.push(DiskInfo {
        name: "slow",
        what: format!("ext4 on {}", disk.kind),
        fsync,
    });
    scenarios(exe, &here, "slow", load, &mut report.rows)?;
    drop(disk);
    Ok(report)
}

fn probe(dir: &Path) -> Result<Summary> {
    let samples = slowdisk::fsync_latency(dir, FSYNC_SAMPLES)?;
    Summary::of(&samples).context("no fsync samples")
}

/// The file system `dir` is on, from /proc/self/mountinfo's longest match.
fn describe_fs(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let best = info
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let point = *f.get(4)?;
            let fstype = *f.get(sep + 1)?;
            let source = *f.get(sep + 2)?;
            dir.starts_with(point)
                .then(|| (point.len(), format!("{fstype} on {source}")))
        })
        .max_by_key(|(n, _)| *n);
    let fs = best.map_or_else(|| "?".to_owned(), |(_, d)| d);
    format!("{} ({fs})", dir.display())
}

fn scenarios(
    exe: &Path,
    base: &Path,
    disk: &'static str,
    load: &Load,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let decisions = load.decisions;
    for sources in [Sources::Distinct, Sources::One] {
        for &procs in &load.procs {
            let dir = base.join(format!("{}-{procs}", sources.name()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            eprintln!(
                "flood: {disk} disk, {procs} processes × {decisions} decisions, {} source(s)",
                sources.name()
            );
            let row = scenario(exe, &dir, disk, sources, procs, decisions)
                .with_context(|| format!("{disk} disk, {}, {procs} processes", sources.name()))?;
            rows.push(row);
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    Ok(())
}

fn scenario(
    exe: &Path,
    dir: &Path,
    disk: &'static str,
    sources: Sources,
    procs: usize,
    decisions: usize,
) -> Result<Row> {
    let store = dir.join("store").join("authguard.db");
    Store::init(&store).context("initialising the flood's store")?;
    // Time for every process to be exec'd and waiting before the common start.
    let lead = Duration::from_millis(300 + 8 * procs as u64);
    let start = SystemTime::now() + lead;
    let start_ns = start.duration_since(UNIX_EPOCH)?.as_nanos();
    let mut children = Vec::with_capacity(procs);
    for i in 0..procs {
        // The module's whole config: the store and a log socket; everything
        // else (busy_timeout 1s, fail_mode open, max_failures 5) by default.
        let config = dir.join(format!("w{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "[store]\npath = {:?}\n\n[log]\nsocket = {:?}\n",
                store.display().to_string(),
                dir.join(format!("w{i}.sock")).display().to_string()
            ),
        )?;
        let mut cmd = Command::new(exe);
        cmd.arg("flood-worker")
            .arg("--config")
            .arg(&config)
            .args(["--source", &sources.of(i)])
            .args(["--decisions", &decisions.to_string()])
            .args(["--start-ns", &start_ns.to_string()]);
        if sources == Sources::Distinct {
            cmd.arg("--setcred");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting flood worker {i}"))?;
        children.push(child);
    }
    let mut row = Row {
        disk,
        procs,
        sources,
        latencies: Vec::with_capacity(procs * decisions),
        counts: Counts::default(),
        bans: 0,
        recorded: 0,
        wall: Duration::ZERO,
        late: Duration::ZERO,
    };
    let mut end_ns = start_ns;
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "flood worker {i} failed: {}",
            out.status
        );
        let text = String::from_utf8(out.stdout).context("worker output")?;
        let end = parse_worker(&text, &mut row).with_context(|| format!("worker {i}'s output"))?;
        end_ns = end_ns.max(end);
    }
    row.wall = Duration::from_nanos(u64::try_from(end_ns - start_ns).unwrap_or(u64::MAX));
    ensure!(
        row.latencies.len() == procs * decisions,
        "expected {} decisions, got {}",
        procs * decisions,
        row.latencies.len()
    );
    let conn =
        rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    row.bans = conn.query_row("SELECT COUNT(*) FROM bans", [], |r| r.get(0))?;
    row.recorded = conn.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0))?;
    Ok(row)
}

/// Merges one worker's output into `row`; returns when it made its last decision (ns).
fn parse_worker(text: &str, row: &mut Row) -> Result<u128> {
    let mut lines = text.lines();
    let header = lines.next().context("empty")?;
    let mut c = Counts::default();
    let mut end_ns = 0;
    for field in header.split_whitespace().skip(1) {
        let (k, v) = field.split_once('=').context("bad summary field")?;
        match k {
            "admitted" => c.admitted = v.parse()?,
            "refused" => c.refused = v.parse()?,
            "failopen" => c.fail_open = v.parse()?,
            "failopen_logged" => c.fail_open_logged = v.parse()?,
            "faults_logged" => c.faults_logged = v.parse()?,
            "unsynced_logged" => c.unsynced_logged = v.parse()?,
            "saturated" => c.saturated = v.parse()?,
            "late_us" => row.late = row.late.max(Duration::from_micros(v.parse()?)),
            "end_ns" => end_ns = v.parse()?,
            _ => bail!("unknown summary field {k}"),
        }
    }
    row.counts.add(&c);
    for line in lines {
        row.latencies.push(line.trim().parse()?);
    }
    Ok(end_ns)
}

/// Arguments of the hidden `flood-worker` subcommand.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The module's config (its `[log] socket` is this worker's own).
    #[arg(long)]
    config: PathBuf,
    /// PAM_RHOST of every attempt.
    #[arg(long)]
    source: String,
    /// Decisions to make.
    #[arg(long)]
    decisions: usize,
    /// When to begin, in ns since the Unix epoch.
    #[arg(long)]
    start_ns: u128,
    /// Mark each counted admission a success, as setcred after a good password.
    #[arg(long)]
    setcred: bool,
}

/// One login process: binds its log socket, waits for the common start,
/// runs the module's authenticate `decisions` times (and its setcred on
/// each counted admission with `--setcred`), then prints a summary line
/// and one latency (µs) per line.
pub fn worker(a: &WorkerArgs) -> Result<()> {
    let config = authguard_core::config::Config::load_or_default(&a.config, true)
        .with_context(|| format!("the worker's config {}", a.config.display()))?;
    let sock = &config.log.socket;
    let _ = std::fs::remove_file(sock);
    let log = UnixDatagram::bind(sock).with_context(|| format!("binding {}", sock.display()))?;
    log.set_nonblocking(true)?;
    let args = ModuleArgs {
        config: Some(a.config.clone()),
        ..ModuleArgs::default()
    };
    let items = Items {
        rhost: Some(a.source.as_bytes().to_vec()),
        user: Some(b"benchuser".to_vec()),
        service: Some(b"sshd".to_vec()),
    };
    let mut c = Counts::default();
    let mut buf = [0u8; 2048];
    let mut drain = |c: &mut Counts| {
        while let Ok(n) = log.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]);
            if let Some((_, why)) = line.split_once(": fault: ") {
                if c.faults_logged == 0 && std::env::var_os("AUTHGUARD_BENCH_FAULTS").is_some() {
                    eprintln!("flood worker: fault: {why}");
                }
                c.faults_logged += 1;
                if line.contains("admitted (fail_mode=open)") {
                    c.fail_open_logged += 1;
                }
            }
            if line.contains("ban not synced") {
                c.unsynced_logged += 1;
            }
            if line.contains(": store saturated") {
                c.saturated += 1;
            }
        }
    };
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let late_us = match a.start_ns.checked_sub(since_epoch) {
        Some(wait) => {
            std::thread::sleep(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
            0
        }
        None => (since_epoch - a.start_ns) / 1_000,
    };
    let mut latencies = Vec::with_capacity(a.decisions);
    for _ in 0..a.decisions {
        let t = Instant::now();
        let verdict = guard::authenticate(&args, &items);
        latencies.push(t.elapsed());
        match verdict {
            Verdict::Admit {
                attempt_id: Some(id),
            } => {
                c.admitted += 1;
                if a.setcred {
                    guard::record_success(&args, &items, Some(id));
                }
            }
            // No allow list and every rhost an address: only a fault admits uncounted.
            Verdict::Admit { attempt_id: None } => {
                c.admitted += 1;
                c.fail_open += 1;
            }
            Verdict::Refuse { .. } => c.refused += 1,
        }
        drain(&mut c);
    }
    let end_ns = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    drain(&mut c);
    let _ = std::fs::remove_file(sock);
    let mut out = format!(
        "summary admitted={} refused={} failopen={} failopen_logged={} faults_logged={} \
         unsynced_logged={} saturated={} late_us={late_us} end_ns={end_ns}\n",
        c.admitted,
        c.refused,
        c.fail_open,
        c.fail_open_logged,
        c.faults_logged,
        c.unsynced_logged,
        c.saturated
    );
    for l in latencies {
        writeln!(out, "{:.1}", l.as_secs_f64() * 1e6)?;
    }
    print!("{out}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

impl Row {
    /// Whether the row meets its goals, and the marks that say which.
    fn goals(&self, max_failures: u64) -> (bool, String) {
        let c = &self.counts;
        let mut ok = c.fail_open == 0;
        let mut marks = format!("0 fail-open {}", mark(c.fail_open == 0));
        if self.sources == Sources::One {
            let exact = c.admitted == max_failures && self.bans == 1;
            ok &= exact;
            write!(marks, "; admitted = {max_failures}, 1 ban {}", mark(exact)).ok();
        }
        if self.disk == "normal" && self.procs == 64 {
            let p99 = Summary::of(&self.latencies).map_or(f64::INFINITY, |s| s.p99);
            ok &= p99 <= TARGET_P99_US;
            write!(marks, "; p99 ≤ 20 ms {}", mark(p99 <= TARGET_P99_US)).ok();
        }
        (ok, marks)
    }
}

impl Report {
    /// What was run, and the disks with their fsync latency.
    pub fn caption(&self) -> String {
        let mut s = format!(
            "Login flood: {} concurrent login processes released at one instant, \
             {} decisions each, on one fresh store. A decision is the PAM module's \
             authenticate (pam_authguard::guard::authenticate: config load, \
             Store::open(Login, busy_timeout 1s), admit, fsync of a ban it creates, \
             fail_mode open on a fault), timed in the process; libpam's FFI shell is \
             left out. distinct: each process its own source, each admitted login \
             marked a success (the module's setcred); one: every process 203.0.113.66, \
             every attempt a failure (max_failures 5). fail-open = admitted because of \
             a store fault; busy = refused uncounted because the store was saturated \
             (others kept committing for the whole busy_timeout).",
            self.procs, self.decisions
        );
        for d in &self.disks {
            write!(
                s,
                "\n{} disk: {}; fsync(2) of a 4 KiB append: p50 {}, p99 {}, max {} ({} samples)",
                d.name,
                d.what,
                fmt_us(d.fsync.p50),
                fmt_us(d.fsync.p99),
                fmt_us(d.fsync.max),
                d.fsync.n
            )
            .ok();
            if d.name == "slow" {
                write!(s, " {}", mark(d.fsync.p50 >= SLOW_FSYNC_MIN_US)).ok();
            }
        }
        if let Some(why) = &self.slow_skipped {
            write!(s, "\nslow disk: skipped: {why}").ok();
        }
        s
    }

    /// The table.
    pub fn table(&self) -> Table {
        let max_failures = u64::from(PolicyConfig::default().max_failures.0);
        let mut t = stats::table(&[
            "disk",
            "procs",
            "sources",
            "decisions",
            "decisions/s",
            "p50",
            "p99",
            "max",
            "admitted",
            "refused",
            "of which busy",
            "fail-open",
            "bans",
            "goals",
        ]);
        for r in &self.rows {
            let Some(s) = Summary::of(&r.latencies) else {
                continue;
            };
            let c = &r.counts;
            t.add_row(vec![
                r.disk.to_owned(),
                r.procs.to_string(),
                r.sources.name().to_owned(),
                thousands(s.n as u64),
                thousands((s.n as f64 / r.wall.as_secs_f64().max(1e-9)) as u64),
                fmt_us(s.p50),
                fmt_us(s.p99),
                fmt_us(s.max),
                c.admitted.to_string(),
                c.refused.to_string(),
                c.saturated.to_string(),
                c.fail_open.to_string(),
                r.bans.to_string(),
                r.goals(max_failures).1,
            ]);
        }
        t
    }

    /// Cross-checks and remarks.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.rows {
            let c = &r.counts;
            let what = format!("{} disk, {} procs, {}", r.disk, r.procs, r.sources.name());
            if c.fail_open_logged != c.fail_open {
                notes.push(format!(
                    "{what}: {} fail-open verdicts but {} `fault: … admitted (fail_mode=open)` \
                     lines logged",
                    c.fail_open, c.fail_open_logged
                ));
            }
            let counted = (r.latencies.len() as u64)
                .saturating_sub(c.fail_open)
                .saturating_sub(c.saturated);
            if u64::try_from(r.recorded).ok() != Some(counted) {
                notes.push(format!(
                    "{what}: the store recorded {} attempts for {counted} counted decisions",
                    r.recorded
                ));
            }
            if c.unsynced_logged > 0 {
                notes.push(format!(
                    "{what}: {} bans could not be synced to disk",
                    c.unsynced_logged
                ));
            }
            if r.late > Duration::from_millis(5) {
                notes.push(format!(
                    "{what}: a worker started {} after the common start",
                    fmt_us(r.late.as_secs_f64() * 1e6)
                ));
            }
        }
        notes
    }

    /// The goals missed, one phrase each.
    pub fn missed(&self) -> Vec<String> {
        let max_failures = u64::from(PolicyConfig::default().max_failures.0);
        let mut missed: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.goals(max_failures).0)
            .map(|r| {
                format!(
                    "flood {} disk {} procs {} source(s)",
                    r.disk,
                    r.procs,
                    r.sources.name()
                )
            })
            .collect();
        if let Some(d) = self.disks.iter().find(|d| d.name == "slow")
            && d.fsync.p50 < SLOW_FSYNC_MIN_US
        {
            missed.push("flood slow disk fsync ≥ 5 ms".into());
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(disk: &'static str, procs: usize, sources: Sources, admitted: u64, bans: i64) -> Row {
        Row {
            disk,
            procs,
            sources,
            latencies: vec![1_000.0; 10],
            counts: Counts {
                admitted,
                ..Counts::default()
            },
            bans,
            recorded: 10,
            wall: Duration::from_secs(1),
            late: Duration::ZERO,
        }
    }

    #[test]
    fn goals_need_exactly_max_failures_from_one_source_and_no_fail_open() {
        assert!(row("normal", 64, Sources::One, 5, 1).goals(5).0);
        assert!(!row("normal", 64, Sources::One, 6, 1).goals(5).0);
        assert!(!row("slow", 256, Sources::One, 5, 2).goals(5).0);
        let mut r = row("slow", 256, Sources::Distinct, 10, 0);
        assert!(r.goals(5).0);
        r.counts.fail_open = 1;
        let (ok, marks) = r.goals(5);
        assert!(!ok && marks.contains('✗'), "{marks}");
        let mut slow = row("normal", 64, Sources::Distinct, 10, 0);
        slow.latencies = vec![25_000.0; 10];
        assert!(!slow.goals(5).0, "p99 over 20 ms at 64 on the normal disk");
    }

    #[test]
    fn worker_output_parses() {
        let mut r = row("normal", 1, Sources::One, 0, 0);
        r.latencies.clear();
        let end = parse_worker(
            "summary admitted=2 refused=3 failopen=1 failopen_logged=1 faults_logged=1 \
             unsynced_logged=0 late_us=7 end_ns=42\n12.5\n13.0\n",
            &mut r,
        )
        .unwrap();
        assert_eq!(end, 42);
        assert_eq!(
            (r.counts.admitted, r.counts.refused, r.counts.fail_open),
            (2, 3, 1)
        );
        assert_eq!(r.latencies, vec![12.5, 13.0]);
        assert_eq!(r.late, Duration::from_micros(7));
    }
}

//! Scan throughput: `guardctl scan` over a generated auth.log against
//! sshguard's parser (`sshg-parser`, lines on stdin, one line out per
//! attack) and `fail2ban-regex` with Debian's sshd filter, same file, one
//! run each, as lines per second.
//!
//! fail2ban-regex is slow enough that a million lines could take many
//! minutes: it is first timed on a prefix, and run on the whole file only
//! when that predicts at most [`F2B_FULL_RUN_LIMIT`].

use super::authlog::{self, Written};
use crate::stats::thousands;
use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The seed of the scanned log.
const SEED: u64 = 0x5CA7_1065;
/// The first line's time: 2026-11-18 10:00:01 UTC (the log covers about six days).
const START: i64 = 1_794_996_001;
/// Distinct attacking addresses in the log.
const SOURCES: usize = 20_000;
/// Share of lines from programs other than sshd.
const OTHER_SHARE: f64 = 0.3;
/// Runs of guardctl and of sshg-parser (interleaved; the median is shown).
pub const SCAN_RUNS: usize = 5;
/// Lines fail2ban-regex is first timed on.
const F2B_PREFIX_LINES: usize = 100_000;
/// The longest fail2ban-regex run on the whole file the bench accepts.
pub const F2B_FULL_RUN_LIMIT: Duration = Duration::from_secs(300);
/// Debian's sshd filter for fail2ban.
const F2B_FILTER: &str = "/etc/fail2ban/filter.d/sshd.conf";
/// Where Debian 12's sshguard puts its parser, if `dpkg -L` cannot say.
const SSHG_PARSER: &str = "/usr/libexec/sshguard/sshg-parser";

/// One tool's run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The tool, as the table names it.
    pub tool: &'static str,
    /// Lines it was given.
    pub lines: u64,
    /// Wall time of the process.
    pub took: Duration,
    /// What it found, in its own terms (`12,345 events`).
    pub found: String,
    /// Sources the policy would ban (guardctl only).
    pub would_ban: Option<u64>,
    /// Run on a prefix of the file only (the rate is assumed to hold for all of it).
    pub prefix: bool,
}

impl Run {
    /// Lines per second.
    pub fn rate(&self) -> f64 {
        self.lines as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// The scan part's results.
#[derive(Debug)]
pub struct Scan {
    /// The generated log.
    pub written: Written,
    /// guardctl, sshg-parser, fail2ban-regex, in that order.
    pub runs: Vec<Run>,
    /// fail2ban-regex on the prefix, and the whole-file time it predicted.
    pub f2b_estimate: Option<(Run, Duration)>,
}

/// Checks that the peers are installed; returns sshg-parser's path.
pub fn preflight() -> Result<PathBuf> {
    let parser = sshg_parser_path();
    ensure!(
        parser.is_file(),
        "sshguard's parser is missing ({}): apt-get install sshguard (`make bench` does)",
        parser.display()
    );
    ensure!(
        Command::new("fail2ban-regex")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "fail2ban-regex is missing: apt-get install fail2ban (`make bench` does)"
    );
    ensure!(
        Path::new(F2B_FILTER).is_file(),
        "{F2B_FILTER} is missing: apt-get install fail2ban (`make bench` does)"
    );
    Ok(parser)
}

/// sshg-parser as `dpkg -L sshguard` lists it.
fn sshg_parser_path() -> PathBuf {
    Command::new("dpkg")
        .args(["-L", "sshguard"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.ends_with("/sshg-parser"))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(SSHG_PARSER))
}

/// Generates the log in `dir` and runs the three tools over it.
pub fn run(dir: &Path, guardctl: &Path, lines: usize) -> Result<Scan> {
    let parser = preflight()?;
    let dir = dir.join("log-scan");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("auth.log");
    eprintln!("log: writing a {}-line auth.log", thousands(lines as u64));
    let spec = authlog::Spec {
        lines,
        sources: SOURCES,
        other_share: OTHER_SHARE,
        start: START,
        max_step: 1,
        seed: SEED,
    };
    let written = {
        let file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let w = authlog::write(&spec, &mut out).context("writing the log")?;
        out.flush().context("writing the log")?;
        w
    };
    // Every tool reads the file from the page cache, none from the disk.
    std::io::copy(&mut std::fs::File::open(&log)?, &mut std::io::sink())
        .context("reading the log back")?;

    // guardctl and sshg-parser take a fraction of a second and two: each
    // runs SCAN_RUNS times, interleaved, and the median run is kept, so one
    // busy moment of the machine does not decide the ratio.
    let mut guardctl_runs = Vec::new();
    let mut sshguard_runs = Vec::new();
    for round in 1..=SCAN_RUNS {
        eprintln!("log: guardctl scan and sshg-parser, run {round} of {SCAN_RUNS}");
        guardctl_runs.push(run_guardctl(&dir, guardctl, &log, written.lines)?);
        sshguard_runs.push(run_sshg_parser(&dir, &parser, &log, written.lines)?);
    }
    let guardctl = median_run(guardctl_runs);
    let sshguard = median_run(sshguard_runs);
    let (fail2ban, f2b_estimate) = if lines <= F2B_PREFIX_LINES {
        eprintln!("log: fail2ban-regex");
        (run_fail2ban(&log, written.lines, false)?, None)
    } else {
        let prefix = dir.join("auth-prefix.log");
        write_prefix(&log, &prefix, F2B_PREFIX_LINES)?;
        eprintln!(
            "log: fail2ban-regex on the first {} lines",
            thousands(F2B_PREFIX_LINES as u64)
        );
        let on_prefix = run_fail2ban(&prefix, F2B_PREFIX_LINES as u64, true)?;
        let predicted = Duration::from_secs_f64(written.lines as f64 / on_prefix.rate());
        if predicted <= F2B_FULL_RUN_LIMIT {
            eprintln!(
                "log: fail2ban-regex on the whole file (about {:.0} s)",
                predicted.as_secs_f64()
            );
            (
                run_fail2ban(&log, written.lines, false)?,
                Some((on_prefix, predicted)),
            )
        } else {
            (on_prefix.clone(), Some((on_prefix, predicted)))
        }
    };
    std::fs::remove_file(&log).ok();
    Ok(Scan {
        written,
        runs: vec![guardctl, sshguard, fail2ban],
        f2b_estimate,
    })
}

/// The run of median time.
fn median_run(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|run| run.took);
    runs.swap_remove(runs.len() / 2)
}

/// `guardctl --config CFG scan --json FILE`, with the log's sshd messages
/// counted by the log (`pam_module = "inactive"`) and no store.
fn run_guardctl(dir: &Path, guardctl: &Path, log: &Path, lines: u64) -> Result<Run> {
    let config = dir.join("scan.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {:?}\n[log]\nsocket = {:?}\n[sshd_log]\npam_module = \"inactive\"\n",
            dir.join("unused.db"),
            dir.join("log.sock"),
        ),
    )
    .context("writing the scan config")?;
    let t0 = Instant::now();
    let out = Command::new(guardctl)
        .arg("--config")
        .arg(&config)
        .args(["scan", "--json"])
        .arg(log)
        .stdin(Stdio::null())
        .output()
        .context("running guardctl scan")?;
    let took = t0.elapsed();
    ensure!(
        out.status.success(),
        "guardctl scan failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("guardctl scan --json's output")?;
    let count = |key: &str| summary.get(key).and_then(serde_json::Value::as_u64);
    ensure!(
        count("lines") == Some(lines),
        "guardctl scan read {:?} lines of {lines}",
        count("lines")
    );
    let events = count("events").context("no `events` in guardctl scan --json")?;
    let missed = count("missed").unwrap_or(0);
    let would_ban = summary
        .get("would_ban")
        .and_then(serde_json::Value::as_array)
        .map(|a| a.len() as u64)
        .context("no `would_ban` in guardctl scan --json")?;
    Ok(Run {
        tool: "guardctl scan",
        lines,
        took,
        found: format!(
            "{} events ({} sshd lines with none)",
            thousands(events),
            thousands(missed)
        ),
        would_ban: Some(would_ban),
        prefix: false,
    })
}

/// `sshg-parser < FILE > OUT`; each output line is one attack.
fn run_sshg_parser(dir: &Path, parser: &Path, log: &Path, lines: u64) -> Result<Run> {
    let out_path = dir.join("sshg-parser.out");
    let input = std::fs::File::open(log).with_context(|| format!("opening {}", log.display()))?;
    let output = std::fs::File::create(&out_path)?;
    let t0 = Instant::now();
    let status = Command::new(parser)
        .stdin(input)
        .stdout(output)
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", parser.display()))?;
    let took = t0.elapsed();
    ensure!(status.success(), "{} failed: {status}", parser.display());
    let attacks = BufReader::new(std::fs::File::open(&out_path)?)
        .lines()
        .count() as u64;
    std::fs::remove_file(&out_path).ok();
    Ok(Run {
        tool: "sshguard (sshg-parser)",
        lines,
        took,
        found: format!("{} attacks", thousands(attacks)),
        would_ban: None,
        prefix: false,
    })
}

/// `fail2ban-regex FILE /etc/fail2ban/filter.d/sshd.conf`.
fn run_fail2ban(log: &Path, lines: u64, prefix: bool) -> Result<Run> {
    let t0 = Instant::now();
    let out = Command::new("fail2ban-regex")
        .arg(log)
        .arg(F2B_FILTER)
        .stdin(Stdio::null())
        .output()
        .context("running fail2ban-regex")?;
    let took = t0.elapsed();
    ensure!(
        out.status.success(),
        "fail2ban-regex failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // `Lines: 1000000 lines, 0 ignored, 123456 matched, 876544 missed`
    let summary = text
        .lines()
        .find(|l| l.starts_with("Lines: "))
        .context("no `Lines:` summary in fail2ban-regex's output")?;
    let field = |name: &str| -> Option<u64> {
        summary
            .split(',')
            .find_map(|part| part.trim().strip_suffix(name))
            .and_then(|n| n.trim().trim_start_matches("Lines:").trim().parse().ok())
    };
    let read = field("lines").context("fail2ban-regex: no line count")?;
    ensure!(read == lines, "fail2ban-regex read {read} lines of {lines}");
    let matched = field("matched").context("fail2ban-regex: no matched count")?;
    Ok(Run {
        tool: "fail2ban-regex (sshd filter)",
        lines,
        took,
        found: format!("{} matched lines", thousands(matched)),
        would_ban: None,
        prefix,
    })
}

/// Copies the first `n` lines of `from` to `to`.
fn write_prefix(from: &Path, to: &Path, n: usize) -> Result<()> {
    let mut reader = BufReader::new(std::fs::File::open(from)?);
    let mut out = BufWriter::new(std::fs::File::create(to)?);
    let mut line = Vec::new();
    for _ in 0..n {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            bail!("{} has fewer than {n} lines", from.display());
        }
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}

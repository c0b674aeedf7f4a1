//! The sshd-log part: what reading sshd's own log costs.
//!
//! - [`scan`]: `guardctl scan` over a generated 1,000,000-line auth.log
//!   against sshguard's parser and fail2ban-regex, lines per second.
//!   Targets: at least 10× sshg-parser and 100× fail2ban-regex.
//! - [`burst`]: 10,000 sshd lines appended at once to the log
//!   `guardctl daemon` follows, and what that does to a login's admission
//!   decision meanwhile. Target: p99 during the burst ≤ 2× idle p99 + 5 ms.
//! - [`authlog`]: the deterministic auth.log both use.

mod authlog;
mod burst;
mod scan;

use crate::firewall::guardctl_path;
use crate::stats::{self, Summary, fmt_us, mark, thousands};
use anyhow::{Context, Result};
use comfy_table::Table;
use std::path::Path;

/// guardctl scan must read lines at least this many times as fast as sshg-parser…
const TARGET_VS_SSHGUARD: f64 = 10.0;
/// …and this many times as fast as fail2ban-regex.
const TARGET_VS_FAIL2BAN: f64 = 100.0;
/// Admission p99 during the burst may be at most this many times idle p99…
const TARGET_P99_FACTOR: f64 = 2.0;
/// …plus this many µs.
const TARGET_P99_SLACK_US: f64 = 5_000.0;

/// The log part's results.
#[derive(Debug)]
pub struct Report {
    scan: scan::Scan,
    burst: burst::Burst,
}

/// Checks the peers are installed (before anything else is measured).
pub fn preflight() -> Result<()> {
    guardctl_path()?;
    scan::preflight()?;
    Ok(())
}

/// Runs both measurements in `dir`: a `lines`-line scan and a `burst_lines` burst.
pub fn run(dir: &Path, lines: usize, burst_lines: usize) -> Result<Report> {
    let guardctl = guardctl_path()?;
    let scan = scan::run(dir, &guardctl, lines).context("scan throughput")?;
    let burst = burst::run(dir, &guardctl, burst_lines).context("burst vs logins")?;
    Ok(Report { scan, burst })
}

impl Report {
    fn guardctl_rate(&self) -> f64 {
        self.scan.runs.first().map_or(0.0, scan::Run::rate)
    }

    /// guardctl's lines/s over the peer's, the target ratio, and the
    /// target's name for the "targets missed" line; `None` for guardctl's own row.
    fn ratio(&self, run: &scan::Run) -> Option<(f64, f64, &'static str)> {
        let (target, name) = match run.tool {
            t if t.starts_with("sshguard") => (TARGET_VS_SSHGUARD, "scan ≥ 10× sshg-parser"),
            t if t.starts_with("fail2ban") => (TARGET_VS_FAIL2BAN, "scan ≥ 100× fail2ban-regex"),
            _ => return None,
        };
        Some((self.guardctl_rate() / run.rate().max(1e-9), target, name))
    }

    /// The caption above the scan table.
    pub fn scan_caption(&self) -> String {
        let w = &self.scan.written;
        format!(
            "sshd log, scan throughput: the median of {} interleaved runs of guardctl and of sshg-parser, one run of fail2ban-regex, over the same generated RFC 3164 auth.log \
             (read from the page cache).\n{} lines, {:.1} MB, {} of them sshd's ({} connections from \
             20,000 sources, IPv4 and IPv6: password guessers, key scanners, probes, logins), the rest \
             CRON, systemd-logind, sudo, systemd. guardctl: `scan --json`, pam_module = \"inactive\".",
            scan::SCAN_RUNS,
            thousands(w.lines),
            w.bytes as f64 / 1e6,
            thousands(w.sshd_lines),
            thousands(w.connections),
        )
    }

    /// The scan table: each tool's rate, what it found, guardctl's ratio to it.
    pub fn scan_table(&self) -> Table {
        let mut t = stats::table(&[
            "tool",
            "lines",
            "time",
            "lines/s",
            "found",
            "would ban",
            "guardctl ×",
            "target",
        ]);
        for run in &self.scan.runs {
            let lines = if run.prefix {
                format!("{} (prefix)", thousands(run.lines))
            } else {
                thousands(run.lines)
            };
            let (ratio, target) = match self.ratio(run) {
                Some((r, target, _)) => (
                    format!("{r:.1}×"),
                    format!("≥ {target:.0}× {}", mark(r >= target)),
                ),
                None => (String::new(), String::new()),
            };
            t.add_row(vec![
                run.tool.to_owned(),
                lines,
                format!("{:.2} s", run.took.as_secs_f64()),
                thousands(run.rate() as u64),
                run.found.clone(),
                run.would_ban
                    .map(|n| format!("{} sources", thousands(n)))
                    .unwrap_or_default(),
                ratio,
                target,
            ]);
        }
        t
    }

    /// Remarks under the scan table (how fail2ban-regex was run).
    pub fn scan_notes(&self) -> Vec<String> {
        let Some((prefix, predicted)) = &self.scan.f2b_estimate else {
            return Vec::new();
        };
        let full = self
            .scan
            .runs
            .iter()
            .any(|r| r.tool.starts_with("fail2ban") && !r.prefix);
        if full {
            vec![format!(
                "fail2ban-regex on the first {} lines first: {} lines/s, predicting {:.0} s for the whole file \
                 (≤ {} s, so it ran on the whole file)",
                thousands(prefix.lines),
                thousands(prefix.rate() as u64),
                predicted.as_secs_f64(),
                scan::F2B_FULL_RUN_LIMIT.as_secs()
            )]
        } else {
            vec![format!(
                "fail2ban-regex ran on the first {} lines only: the whole file would take about {:.0} s \
                 (> {} s); its lines/s there is taken for the whole file's",
                thousands(prefix.lines),
                predicted.as_secs_f64(),
                scan::F2B_FULL_RUN_LIMIT.as_secs()
            )]
        }
    }

    /// The caption above the burst table.
    pub fn burst_caption(&self) -> String {
        let b = &self.burst;
        format!(
            "sshd log, burst vs logins: `guardctl daemon` ([firewall] backend = \"none\") follows a log file; \
             {} sshd lines ({:.1} MB, 2,000 sources) are appended in one write while a thread makes one \
             admission decision (Store::open(Write) + admit + drop, as pam_authguard does) every 1 ms \
             on the same store. Idle: the daemon following, no log traffic. During: decisions begun \
             between the write and the daemon's saved position reaching the file's end.",
            thousands(b.lines),
            b.bytes as f64 / 1e6,
        )
    }

    /// The burst table: idle and during the burst side by side.
    pub fn burst_table(&self) -> Table {
        let b = &self.burst;
        let mut t = stats::table(&["measurement", "idle", "during the burst", "target", ""]);
        let (idle, during) = (Summary::of(&b.idle), Summary::of(&b.during));
        let show =
            |s: Option<Summary>, f: fn(&Summary) -> f64| s.map_or("-".into(), |s| fmt_us(f(&s)));
        t.add_row(vec![
            "admission decisions".into(),
            thousands(b.idle.len() as u64),
            thousands(b.during.len() as u64),
            String::new(),
            String::new(),
        ]);
        t.add_row(vec![
            "admission p50".into(),
            show(idle, |s| s.p50),
            show(during, |s| s.p50),
            String::new(),
            String::new(),
        ]);
        let (target, ok) = match (idle, during) {
            (Some(i), Some(d)) => {
                let limit = TARGET_P99_FACTOR * i.p99 + TARGET_P99_SLACK_US;
                (
                    format!("≤ 2 × idle p99 + 5 ms = {}", fmt_us(limit)),
                    mark(d.p99 <= limit),
                )
            }
            _ => ("≤ 2 × idle p99 + 5 ms".into(), mark(false)),
        };
        t.add_row(vec![
            "admission p99".into(),
            show(idle, |s| s.p99),
            show(during, |s| s.p99),
            target,
            ok.into(),
        ]);
        t.add_row(vec![
            "admission max".into(),
            show(idle, |s| s.max),
            show(during, |s| s.max),
            String::new(),
            String::new(),
        ]);
        t.add_row(vec![
            format!(
                "ingest {} lines (write → position saved at the file's end)",
                thousands(b.lines)
            ),
            "-".into(),
            format!(
                "{} ({} lines/s)",
                fmt_us(b.ingest.as_secs_f64() * 1e6),
                thousands((b.lines as f64 / b.ingest.as_secs_f64().max(1e-9)) as u64)
            ),
            String::new(),
            String::new(),
        ]);
        t.add_row(vec![
            "recorded by the daemon (origin sshd-log)".into(),
            "-".into(),
            format!(
                "{} attempts, {} bans",
                thousands(b.recorded),
                thousands(b.bans)
            ),
            String::new(),
            String::new(),
        ]);
        t
    }

    /// Remarks under the burst table.
    pub fn burst_notes(&self) -> Vec<String> {
        let b = &self.burst;
        let mut notes = Vec::new();
        if b.busy > 0 {
            notes.push(format!(
                "{} admission decisions hit busy_timeout (1s): the module would apply fail_mode",
                b.busy
            ));
        }
        if b.during.len() < 100 {
            notes.push(format!(
                "only {} decisions fell within the burst: its p99 is nearly its max",
                b.during.len()
            ));
        }
        notes
    }

    /// The targets that were missed.
    pub fn missed(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for run in &self.scan.runs {
            if let Some((r, target, name)) = self.ratio(run)
                && r < target
            {
                out.push(name);
            }
        }
        let burst_ok = match (
            Summary::of(&self.burst.idle),
            Summary::of(&self.burst.during),
        ) {
            (Some(i), Some(d)) => d.p99 <= TARGET_P99_FACTOR * i.p99 + TARGET_P99_SLACK_US,
            _ => false,
        };
        if !burst_ok {
            out.push("admission p99 during a log burst ≤ 2× idle + 5 ms");
        }
        out
    }
}

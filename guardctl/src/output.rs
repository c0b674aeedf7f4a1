//! How things look: tables with human durations for people, JSON for
//! programs; and where they go: standard output through [`out!`] and
//! [`outln!`], which end the program quietly when the reader has gone
//! (`guardctl list --json | head -1`), as ripgrep does, instead of
//! `println!`'s panic on the broken pipe.

/// `print!` to standard output; a reader that went away ends the program
/// quietly (status 0), any other write error ends it with status 1.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*), false)
    };
}

/// `println!` with [`out!`]'s handling of a reader that went away.
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*), true)
    };
}

/// Writes `args` (and a newline) to standard output; see [`out!`].
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("guardctl: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

use authguard_core::duration;
use authguard_core::store::bans::{AttemptRecord, BanRecord};
use authguard_core::syslog::untrusted;
use authguard_core::time::{self, Timestamp};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A table with a header row, in the project's one style.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.iter().copied());
    t
}

/// A two-column table without a header, for `status`-style summaries.
pub fn key_value_table() -> Table {
    let mut t = Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t
}

/// Prints a JSON value, pretty, with a trailing newline.
pub fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn secs(d: i64) -> Duration {
    Duration::from_secs(d.unsigned_abs())
}

/// `in 9m 12s`, `3m ago`, `now`.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    match at - now {
        0 => "now".into(),
        d if d > 0 => format!("in {}", duration::human(secs(d))),
        d => format!("{} ago", duration::human(secs(d))),
    }
}

/// What the `expires` column says about a ban.
pub fn expires_cell(ban: &BanRecord, now: Timestamp) -> String {
    match (ban.ended, ban.expires) {
        (Some(ended), _) => format!(
            "ended {} ({})",
            relative(ended, now),
            ban.end_reason.as_ref().map_or("ended", |r| r.as_str())
        ),
        (None, None) => "permanent".into(),
        (None, Some(e)) if e <= now => format!("expired {}", relative(e, now)),
        (None, Some(e)) => relative(e, now),
    }
}

/// A ban as JSON (the `list --json` contract in docs/ARCHITECTURE.md, plus state).
pub fn ban_json(ban: &BanRecord, now: Timestamp) -> Value {
    json!({
        "address": ban.source,
        "since": time::rfc3339(ban.since),
        "expires": ban.expires.map(time::rfc3339),
        "reason": ban.reason,
        "origin": ban.origin,
        "level": ban.level,
        "failures": ban.failures,
        "scope": ban.scope.as_str(),
        "active": ban.is_active(now),
        "ended": ban.ended.map(time::rfc3339),
        "end_reason": ban.end_reason,
        "scenario": ban.fleet.as_ref().map(|f| f.scenario.as_str()),
        "decision_origin": ban.fleet.as_ref().map(|f| f.origin.as_str()),
    })
}

/// A row of the bans table.
pub fn ban_row(ban: &BanRecord, now: Timestamp) -> Vec<String> {
    vec![
        ban.source.clone(),
        relative(ban.since, now),
        expires_cell(ban, now),
        ban.failures.to_string(),
        ban.level.to_string(),
        ban.origin.to_string(),
        untrusted(ban.reason.as_bytes()).into_owned(),
    ]
}

/// The bans table's header.
pub const BAN_HEADER: [&str; 7] = [
    "address", "since", "expires", "failures", "level", "origin", "reason",
];

/// How an attempt's outcome reads: a pending attempt older than a login
/// can take never succeeded, so it is a failure.
pub fn outcome_word(a: &AttemptRecord, now: Timestamp) -> &str {
    match a.outcome.as_str() {
        "pending" if now - a.at < 120 => "in progress",
        "pending" | "failure" => "failed",
        other => other,
    }
}

/// An attempt as JSON. The user name is escaped: it is whatever the client sent.
pub fn attempt_json(a: &AttemptRecord, now: Timestamp) -> Value {
    json!({
        "time": time::rfc3339(a.at),
        "address": a.address,
        "user": untrusted(&a.user),
        "service": a.service,
        "outcome": outcome_word(a, now),
        "origin": a.origin,
    })
}

/// A progress bar on stderr, shown only on a terminal and for inputs over
/// `min_bytes` (`scan`: logs over 10 MB; `geo import`: files over 1 MB).
#[derive(Debug)]
pub struct Progress {
    total: Option<u64>,
    started: Instant,
    last: Instant,
    shown: bool,
    /// What `update` counts: `lines`, or `networks` for a MaxMind DB.
    unit: &'static str,
}

impl Progress {
    /// A bar for an input of `total` bytes (None: unknown, no bar).
    pub fn new(total: Option<u64>, min_bytes: u64) -> Progress {
        let big = total.is_some_and(|t| t > min_bytes);
        Progress {
            total: total.filter(|_| big && std::io::stderr().is_terminal()),
            started: Instant::now(),
            last: Instant::now(),
            shown: false,
            unit: "lines",
        }
    }

    /// The same bar counting `unit` instead of lines.
    pub fn counting(self, unit: &'static str) -> Progress {
        Progress { unit, ..self }
    }

    /// `done` of `total` (bytes, or items) and `lines` lines (or units)
    /// read so far; redraws at most 5 times a second.
    pub fn update(&mut self, done: u64, lines: u64) {
        let Some(total) = self.total else { return };
        if self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let fraction = done as f64 / total.max(1) as f64;
        let filled = (fraction * 30.0) as usize;
        let rate = lines as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r[{}{}] {:>3.0}%  {lines} {unit}  {:.0} {unit}/s ",
            "#".repeat(filled.min(30)),
            " ".repeat(30 - filled.min(30)),
            fraction * 100.0,
            rate,
            unit = self.unit
        );
    }

    /// Ends the bar's line, if one was drawn.
    pub fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

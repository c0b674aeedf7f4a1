//! Burst vs logins: `guardctl daemon` follows a log file; 10,000 sshd lines
//! are appended in one write while a thread makes PAM-style admission
//! decisions (`Store::open` + `admit` + drop, as the module does and as the
//! `admission` part measures them) on the same store, one every
//! [`PACE`]. Decisions made before the write are the idle sample; those
//! begun between the write and the daemon saving its position at the file's
//! end are the burst sample.

use super::authlog;
use crate::firewall::Daemon;
use anyhow::{Context, Result, bail, ensure};
use authguard_core::config::{Config, MaxFailures, PolicyConfig};
use authguard_core::store::admission::{Attempt, Decision};
use authguard_core::store::{Access, Store, StoreError};
use authguard_core::time;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `busy_timeout` of every decision, as in the default config.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// One admission decision begins every this often (when the last one is done).
const PACE: Duration = Duration::from_millis(1);
/// Idle decisions before the burst.
const IDLE_DECISIONS: usize = 2_000;
/// The `meta` key where the daemon saves its file position (`inode:offset`).
/// Distinct attacking addresses in the burst.
const BURST_SOURCES: usize = 2_000;
/// The longest the daemon may take to read the burst.
const INGEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One admission decision.
#[derive(Debug, Clone, Copy)]
struct Sample {
    began: Instant,
    us: f64,
    outcome: Outcome,
}

/// How a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Admitted,
    Refused,
    Busy,
    Error,
}

/// The burst part's results.
#[derive(Debug)]
pub struct Burst {
    /// Lines appended.
    pub lines: u64,
    /// Bytes appended.
    pub bytes: u64,
    /// From the write to the daemon's position at the file's end.
    pub ingest: Duration,
    /// Admission latencies (µs) before the write.
    pub idle: Vec<f64>,
    /// Admission latencies (µs) of decisions begun during the ingest.
    pub during: Vec<f64>,
    /// Decisions refused (never expected: the sources are never banned).
    pub refused: usize,
    /// Decisions that hit busy_timeout.
    pub busy: usize,
    /// Decisions that failed with another store error.
    pub errors: usize,
    /// Attempts the daemon recorded from the burst (origin `sshd-log`).
    pub recorded: u64,
    /// Bans the burst earned (origin `sshd-log`).
    pub bans: u64,
}

/// Starts the daemon on a fresh store and log file in `dir`, and measures.
pub fn run(dir: &Path, guardctl: &Path, lines: usize) -> Result<Burst> {
    let dir = dir.join("log-burst");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = dir.join("auth.log");
    let db = dir.join("authguard.db");
    std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let config = write_config(&dir, &log, &db)?;
    let init = Command::new(guardctl)
        .arg("--config")
        .arg(&config)
        .arg("init")
        .output()
        .context("running guardctl init")?;
    ensure!(
        init.status.success(),
        "guardctl init failed ({}): {}",
        init.status,
        String::from_utf8_lossy(&init.stderr).trim()
    );

    // The burst: sshd lines only, from many sources, stamped now.
    let mut burst = Vec::new();
    let written = authlog::write(
        &authlog::Spec {
            lines,
            sources: BURST_SOURCES,
            other_share: 0.0,
            start: time::now(),
            max_step: 0,
            seed: 0xB0257,
        },
        &mut burst,
    )?;

    eprintln!("log: guardctl daemon following {}", log.display());
    let mut cmd = Command::new(guardctl);
    cmd.arg("--config").arg(&config).arg("daemon");
    let mut daemon = Daemon::spawn(cmd)?;
    daemon.wait_for("sshd log: following", Duration::from_secs(10))?;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let admitter = spawn_admitter(db.clone(), Arc::clone(&stop), Arc::clone(&done));
    eprintln!("log: {IDLE_DECISIONS} idle admission decisions");
    let idle_deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < IDLE_DECISIONS && Instant::now() < idle_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }

    eprintln!("log: appending {} sshd lines in one write", written.lines);
    let measured = measure_ingest(&mut daemon, &log, &db, &burst);
    stop.store(true, Ordering::Relaxed);
    let samples = admitter
        .join()
        .map_err(|_| anyhow::anyhow!("the admission thread panicked"))?;
    let (write_at, ingest) = measured?;
    drop(daemon);

    let (recorded, bans) = recorded(&db)?;
    let mut b = Burst {
        lines: written.lines,
        bytes: written.bytes,
        ingest,
        idle: Vec::new(),
        during: Vec::new(),
        refused: 0,
        busy: 0,
        errors: 0,
        recorded,
        bans,
    };
    let end = write_at + ingest;
    for s in &samples {
        match s.outcome {
            Outcome::Admitted => {}
            Outcome::Refused => b.refused += 1,
            Outcome::Busy => b.busy += 1,
            Outcome::Error => b.errors += 1,
        }
        if s.began < write_at {
            b.idle.push(s.us);
        } else if s.began <= end {
            b.during.push(s.us);
        }
    }
    ensure!(
        b.errors == 0,
        "{} admission decisions failed with a store error other than busy",
        b.errors
    );
    ensure!(
        b.refused == 0,
        "admission sources were refused {} times: they must never be banned",
        b.refused
    );
    Ok(b)
}

/// The daemon's config: no firewall, the log file, a private store and syslog socket.
fn write_config(dir: &Path, log: &Path, db: &Path) -> Result<PathBuf> {
    let config = dir.join("authguard.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {db:?}\n[log]\nsocket = {:?}\n[firewall]\nbackend = \"none\"\n\
             [sshd_log]\nsource = {log:?}\npam_module = \"inactive\"\n{}",
            dir.join("log.sock"),
            crate::firewall::keyonly_private(dir),
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    Ok(config)
}

/// Appends `burst` to `log` in one write and waits until the daemon's saved
/// position is the file's end. Returns when the write began and how long
/// the daemon took.
fn measure_ingest(
    daemon: &mut Daemon,
    log: &Path,
    db: &Path,
    burst: &[u8],
) -> Result<(Instant, Duration)> {
    let reader = Store::open(db, Access::Read, BUSY_TIMEOUT).context("opening the store")?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let inode = file.metadata()?.ino();
    let expected = format!("{inode}:{}", file.metadata()?.len() + burst.len() as u64);
    let write_at = Instant::now();
    file.write_all(burst).context("appending the burst")?;
    loop {
        if reader
            .meta(authguard_core::store::MetaKey::LogFilePosition)?
            .as_deref()
            == Some(expected.as_str())
        {
            return Ok((write_at, write_at.elapsed()));
        }
        if let Some(status) = daemon.exited() {
            bail!("guardctl daemon exited during the burst: {status}");
        }
        if write_at.elapsed() > INGEST_TIMEOUT {
            bail!(
                "the daemon had not read the burst after {INGEST_TIMEOUT:?} (position {:?}, want {expected})",
                reader.meta(authguard_core::store::MetaKey::LogFilePosition)?
            );
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// A thread making one decision every [`PACE`] until `stop`, from
/// 198.51.100.1–250 in turn (a policy of 1,000,000 failures: never banned).
fn spawn_admitter(
    db: PathBuf,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> JoinHandle<Vec<Sample>> {
    std::thread::spawn(move || {
        let config = Config {
            policy: PolicyConfig {
                max_failures: MaxFailures(1_000_000),
                ..PolicyConfig::default()
            },
            ..Config::default()
        };
        let mut samples = Vec::new();
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let n = samples.len();
            let attempt = Attempt {
                ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, (n % 250) as u8 + 1)),
                user: b"root",
                service: "sshd",
            };
            let began = Instant::now();
            let decision = Store::open(&db, Access::Login, BUSY_TIMEOUT)
                .and_then(|mut store| store.admit(&config, &attempt, time::now()));
            let us = began.elapsed().as_secs_f64() * 1e6;
            let outcome = match decision {
                Ok(Decision::Admitted { .. } | Decision::Allowed { .. }) => Outcome::Admitted,
                Ok(Decision::Refused { .. } | Decision::KeyOnly { .. }) => Outcome::Refused,
                Err(StoreError::Busy(_)) => Outcome::Busy,
                Err(e) => {
                    eprintln!("log: admission decision failed: {e}");
                    Outcome::Error
                }
            };
            samples.push(Sample { began, us, outcome });
            done.store(samples.len(), Ordering::Relaxed);
            next += PACE;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            } else {
                next = Instant::now();
            }
        }
        samples
    })
}

/// Attempts and bans with origin `sshd-log` in the store.
fn recorded(db: &Path) -> Result<(u64, u64)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |sql: &str| -> Result<u64> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .with_context(|| format!("{sql} (has the schema changed?)"))
    };
    Ok((
        count("SELECT count(*) FROM attempts WHERE origin = 'sshd-log'")?,
        count("SELECT count(*) FROM bans WHERE origin = 'sshd-log'")?,
    ))
}

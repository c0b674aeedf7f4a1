//! authguard-bench: what authguard costs a login. `make bench` runs `all`.
//!
//! - This file: the command line, the machine header, the temp dir, and the
//!   hidden subcommands the bench re-executes itself with.
//! - [`admission`]: decision latency with 1–64 concurrent processes on one store.
//! - [`pam`]: a whole `pamtester` run, authguard vs pam_permit vs pam_faillock.
//! - [`firewall`]: the daemon loading 100,000 bans into nftables, one more
//!   ban's latency, its memory, and fail2ban's one-process-per-ban way.
//! - [`log`]: `guardctl scan` against sshguard's parser and fail2ban-regex,
//!   and a 10,000-line burst in sshd's log against a login's admission.
//! - [`geo`]: countries: importing Tor's geoip files against xt_geoip_build,
//!   a blocked US/CN loaded into nftables against one `nft -f`, what it
//!   costs a ban, and lookups against python3-maxminddb.
//! - [`fleet`]: CrowdSec's LAPI: a ban on one host to another's nftables,
//!   a 100,000-decision pull, admissions with those bans in the store.
//! - [`flood`]: 64 and 256 concurrent login processes on one store, on
//!   the normal disk and on a slow one ([`slowdisk`]): fail-open admissions.
//! - [`stats`]: percentiles and the table style.
#![forbid(unsafe_code)]

mod admission;
mod bouncer;
mod firewall;
mod fleet;
mod flood;
mod geo;
mod log;
mod pam;
mod slowdisk;
mod stats;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(
    name = "authguard-bench",
    about = "Benchmarks authguard: admission latency, a whole PAM run, the firewall, sshd's log, countries",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Options of `all` when no subcommand is given.
    #[command(flatten)]
    opts: Opts,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every part, one after the other (the default).
    All(Opts),
    /// Admission decision latency only.
    Admission(Opts),
    /// The whole PAM run only (needs root).
    Pam(Opts),
    /// The firewall part only (needs root).
    Firewall(Opts),
    /// The sshd-log part only: scan throughput against sshguard and
    /// fail2ban, and a log burst against admission latency.
    Log(Opts),
    /// The country part only: import against xt_geoip_build, a blocked
    /// country in nftables (needs root) against `nft -f`, lookups against
    /// python3-maxminddb.
    Geo(Opts),
    /// The fleet part only: CrowdSec's LAPI, a ban from host to host, a
    /// 100,000-decision pull (needs root).
    Fleet(Opts),
    /// The login flood only: 64 and 256 concurrent login processes, on the
    /// normal disk and on a slow one (the slow disk needs root).
    Flood(Opts),
    /// One admission worker process (started by `admission`).
    #[command(hide = true)]
    Worker(admission::WorkerArgs),
    /// One login process of the flood (started by `flood`).
    #[command(hide = true)]
    FloodWorker(flood::WorkerArgs),
    /// The slow disk's FUSE server (started by `flood`).
    #[command(hide = true)]
    SlowdiskServe(slowdisk::ServeArgs),
    /// The pamtester loop inside the private mount namespace (started by `pam`).
    #[command(hide = true)]
    Pamloop(pam::LoopArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct Opts {
    /// Old attempts in the store before the admission runs.
    #[arg(long, default_value_t = 200_000)]
    history_attempts: usize,
    /// Old bans in the store before the admission runs.
    #[arg(long, default_value_t = 5_000)]
    history_bans: usize,
    /// Distinct sources of that history.
    #[arg(long, default_value_t = 20_000)]
    history_sources: usize,
    /// Counted pamtester rounds (each runs every stack once).
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Uncounted pamtester rounds first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Active bans for the firewall part.
    #[arg(long, default_value_t = 100_000)]
    firewall_bans: usize,
    /// Lines of the auth.log the log part scans.
    #[arg(long, default_value_t = 1_000_000)]
    log_lines: usize,
    /// sshd lines the log part appends in one burst.
    #[arg(long, default_value_t = 10_000)]
    burst_lines: usize,
    /// Runs of each country-data import (the median is shown).
    #[arg(long, default_value_t = 3)]
    geo_runs: usize,
    /// Random IPv4 country lookups (IPv6: a tenth as many).
    #[arg(long, default_value_t = 1_000_000)]
    geo_lookups: usize,
    /// Bans timed from host A to host B in the fleet part
    #[arg(long, default_value_t = 50)]
    fleet_bans: usize,
    /// Decisions in the fleet part's full pull
    #[arg(long, default_value_t = 100_000)]
    fleet_decisions: usize,
    /// Leave out the fleet part's peer (crowdsec-firewall-bouncer, whose
    /// full pull alone takes minutes)
    #[arg(long)]
    fleet_without_peer: bool,
    /// Decisions each login process of the flood makes
    #[arg(long, default_value_t = 20)]
    flood_decisions: usize,
    /// The flood's slow disk: how long each flush waits (ms)
    #[arg(long, default_value_t = 8)]
    flood_slow_ms: u64,
    /// The flood's process counts
    #[arg(long, value_delimiter = ',', default_values_t = [64, 256])]
    flood_procs: Vec<usize>,
    /// Leave out the flood's slow disk
    #[arg(long)]
    flood_normal_disk_only: bool,
}

/// Which parts to run.
#[derive(Debug, Clone, Copy)]
struct Parts {
    admission: bool,
    pam: bool,
    firewall: bool,
    log: bool,
    geo: bool,
    fleet: bool,
    flood: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        admission: true,
        pam: true,
        firewall: true,
        log: true,
        geo: true,
        fleet: true,
        flood: true,
    };
    const NONE: Parts = Parts {
        admission: false,
        pam: false,
        firewall: false,
        log: false,
        geo: false,
        fleet: false,
        flood: false,
    };
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authguard-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let (parts, opts) = match cli.command {
        Some(Cmd::Worker(a)) => return admission::worker(&a),
        Some(Cmd::Pamloop(a)) => return pam::pamloop(&a),
        Some(Cmd::FloodWorker(a)) => return flood::worker(&a),
        Some(Cmd::SlowdiskServe(a)) => return slowdisk::serve(&a),
        None => (Parts::ALL, cli.opts),
        Some(Cmd::All(o)) => (Parts::ALL, o),
        Some(Cmd::Admission(o)) => (
            Parts {
                admission: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Pam(o)) => (
            Parts {
                pam: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Firewall(o)) => (
            Parts {
                firewall: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Log(o)) => (
            Parts {
                log: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Geo(o)) => (
            Parts {
                geo: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Fleet(o)) => (
            Parts {
                fleet: true,
                ..Parts::NONE
            },
            o,
        ),
        Some(Cmd::Flood(o)) => (
            Parts {
                flood: true,
                ..Parts::NONE
            },
            o,
        ),
    };
    let Parts {
        admission,
        pam,
        firewall: fw,
        log: log_part,
        geo: geo_part,
        fleet: fleet_part,
        flood: flood_part,
    } = parts;
    let began = Instant::now();
    let exe = std::env::current_exe().context("finding the bench's own executable")?;
    let dir = TempDir::new()?;
    let root = is_root()?;
    if pam && root {
        pam::preflight().context("PAM benchmark")?;
    }
    if log_part {
        log::preflight().context("sshd-log benchmark")?;
    }

    let mut out = header();
    let mut missed = Vec::new();
    let mut flood_missed: Vec<String> = Vec::new();
    if admission {
        let size = admission::HistorySize {
            attempts: opts.history_attempts,
            bans: opts.history_bans,
            sources: opts.history_sources.max(1),
        };
        let report = admission::run(&exe, dir.path(), size).context("admission benchmark")?;
        out.push_str(&format!("\n{}\n{}\n", report.caption(), report.table()));
        for note in report.notes() {
            out.push_str(&format!("note: {note}\n"));
        }
        if !report.target_met() {
            missed.push("admission p99 ≤ 1 ms at 64 processes");
        }
    }
    if pam && !root {
        out.push_str(
            "\nWhole PAM run: skipped, not root (it needs a private mount namespace \
             to put its services in /etc/pam.d without touching the host's).\n",
        );
    } else if pam {
        let report =
            pam::run(&exe, dir.path(), opts.rounds, opts.warmup).context("PAM benchmark")?;
        out.push_str(&format!(
            "\n{}\n{}\nauthguard's store after the run: {}\n",
            report.caption(),
            report.table(),
            report.recorded()
        ));
        for phase in report.missed() {
            missed.push(match phase {
                "daemon" => "authguard ≤ 1.10× permit (daemon running)",
                _ => "authguard ≤ 1.10× permit (no daemon)",
            });
        }
    }
    if fw && root {
        let report = firewall::run(dir.path(), opts.firewall_bans).context("firewall benchmark")?;
        out.push_str(&format!("\n{}\n{}\n", report.caption(), report.table()));
        missed.extend(report.missed());
    } else if fw {
        out.push_str("\nFirewall: skipped, not root (it needs a network namespace).\n");
    }
    if log_part {
        let report =
            log::run(dir.path(), opts.log_lines, opts.burst_lines).context("sshd-log benchmark")?;
        out.push_str(&format!(
            "\n{}\n{}\n",
            report.scan_caption(),
            report.scan_table()
        ));
        for note in report.scan_notes() {
            out.push_str(&format!("note: {note}\n"));
        }
        out.push_str(&format!(
            "\n{}\n{}\n",
            report.burst_caption(),
            report.burst_table()
        ));
        for note in report.burst_notes() {
            out.push_str(&format!("note: {note}\n"));
        }
        missed.extend(report.missed());
    }
    if geo_part {
        out.push_str(&geo_section(dir.path(), &opts, root)?);
    }
    if fleet_part && root {
        let report = fleet::run(
            dir.path(),
            opts.fleet_bans,
            opts.fleet_decisions,
            !opts.fleet_without_peer,
        )
        .context("fleet benchmark")?;
        out.push_str(&format!("\n{}\n{}\n", report.caption(), report.table()));
        missed.extend(report.missed());
    } else if fleet_part {
        out.push_str("\nFleet: skipped, not root (it needs a network namespace).\n");
    }
    if flood_part {
        let load = flood::Load {
            procs: opts.flood_procs.clone(),
            decisions: opts.flood_decisions.max(1),
            slow: (!opts.flood_normal_disk_only)
                .then(|| std::time::Duration::from_millis(opts.flood_slow_ms)),
        };
        let report = flood::run(&exe, dir.path(), &load, root).context("flood benchmark")?;
        out.push_str(&format!("\n{}\n{}\n", report.caption(), report.table()));
        for note in report.notes() {
            out.push_str(&format!("note: {note}\n"));
        }
        flood_missed = report.missed();
    }
    missed.extend(flood_missed.iter().map(String::as_str));
    let missed = if missed.is_empty() {
        "none".to_owned()
    } else {
        missed.join(", ")
    };
    let skipped = if pam && !root {
        " (PAM run skipped)"
    } else {
        ""
    };
    out.push_str(&format!(
        "\nbench wall time: {:.1}s; targets missed: {missed}{skipped}\n",
        began.elapsed().as_secs_f64(),
    ));
    print!("{out}");
    Ok(())
}

/// The country part's tables and notes.
fn geo_section(dir: &Path, opts: &Opts, root: bool) -> Result<String> {
    let report =
        geo::run(dir, opts.geo_runs, opts.geo_lookups, root).context("country benchmark")?;
    let mut out = format!("\n{}\n{}\n", report.import_caption(), report.import_table());
    out.push_str(&format!(
        "\n{}\n{}\n",
        report.load_caption(),
        report.load_table()
    ));
    for (caption, table) in [report.ban_table(), report.connect_table()]
        .into_iter()
        .flatten()
    {
        out.push_str(&format!("\n{caption}\n{table}\n"));
    }
    out.push_str(&format!(
        "\n{}\n{}\n",
        report.lookup_caption(),
        report.lookup_table()
    ));
    for note in report.lookup_notes() {
        out.push_str(&format!("note: {note}\n"));
    }
    Ok(out)
}

/// The command line and the machine, printed above the tables.
fn header() -> String {
    let args: Vec<String> = std::env::args().collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "authguard benchmark\ncommand: {}\nmachine: nproc {cpus} ({model}), kernel {kernel}, temp dir {}\n",
        args.join(" "),
        std::env::temp_dir().display()
    )
}

/// Whether the effective user is root (read from /proc: no unsafe `geteuid`).
fn is_root() -> Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    Ok(euid == "0")
}

/// The bench's scratch directory, removed when the bench ends.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!("authguard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

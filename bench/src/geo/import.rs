//! Importing the country data: `guardctl geo import` of Tor's two files
//! (and of the CSV made from them) into a fresh store, against
//! xtables-addons' `xt_geoip_build` on that CSV, each run under GNU time
//! for its peak RSS. Also `guardctl geo block CC` on the imported store with
//! `[firewall] backend = "none"`: the store side of a block alone.

use super::data::{Data, fetch_deb};
use crate::firewall::write_config;
use anyhow::{Context, Result, bail};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// GNU time, which reports the child's peak RSS (`ru_maxrss` from wait4).
const GNU_TIME: &str = "/usr/bin/time";

/// One tool's import, medians over the runs.
#[derive(Debug)]
pub struct Run {
    /// What ran.
    pub tool: String,
    /// What it read.
    pub input: String,
    /// Ranges (or CSV rows) it read.
    pub ranges: u64,
    /// Median wall time.
    pub wall: Duration,
    /// Median peak RSS of the process, KiB.
    pub rss_kib: u64,
    /// What it wrote, in words.
    pub output: String,
    /// How many runs the medians are over.
    pub runs: usize,
}

/// The import part's results.
#[derive(Debug)]
pub struct Import {
    /// guardctl on the Tor files, guardctl on the CSV, the peer (if it ran).
    pub runs: Vec<Run>,
    /// Why the peer did not run.
    pub peer_missing: Option<String>,
    /// `geo block CC` with backend "none": country and median time.
    pub block: Vec<(String, Duration)>,
}

/// Runs every import `runs` times; `countries` are then blocked on the store.
pub fn run(
    dir: &Path,
    guardctl: &Path,
    data: &Data,
    runs: usize,
    countries: &[&str],
) -> Result<Import> {
    let runs = runs.max(1);
    let tor = [data.v4.as_os_str(), data.v6.as_os_str()];
    let (tor_run, config) = guardctl_import(dir, guardctl, "tor", &tor, runs)?;
    let (csv_run, _) = guardctl_import(dir, guardctl, "csv", &[data.csv.as_os_str()], runs)?;
    let mut block = Vec::new();
    for c in countries {
        block.push((c.to_string(), block_store_only(guardctl, &config, c, runs)?));
    }
    let mut all = vec![tor_run, csv_run];
    let peer_missing = match xt_geoip_build(dir, data, runs) {
        Ok(run) => {
            all.push(run);
            None
        }
        Err(e) => Some(format!("{e:#}")),
    };
    Ok(Import {
        runs: all,
        peer_missing,
        block,
    })
}

/// `guardctl geo import FILES` into a fresh store per run; returns the
/// medians and the last run's config.
fn guardctl_import(
    dir: &Path,
    guardctl: &Path,
    tag: &str,
    files: &[&OsStr],
    runs: usize,
) -> Result<(Run, PathBuf)> {
    let mut samples = Vec::new();
    let mut last = None;
    for i in 0..runs {
        eprintln!("geo: guardctl geo import ({tag}), run {}/{runs}", i + 1);
        let config = write_config(
            dir,
            &format!("geo-import-{tag}-{i}"),
            "backend = \"none\"\n",
        )?;
        let mut args = vec![OsStr::new("--config"), config.as_os_str()];
        args.extend([
            OsStr::new("geo"),
            OsStr::new("import"),
            OsStr::new("--json"),
        ]);
        args.extend(files);
        let (wall, rss, out) = timed(dir, guardctl.as_os_str(), &args)?;
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("geo import --json output")?;
        let ranges = ["ipv4_ranges", "ipv6_ranges"]
            .iter()
            .map(|k| json[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        samples.push((wall, rss, ranges));
        last = Some(config);
    }
    let config = last.context("no run")?;
    let db = config.with_file_name("authguard.db");
    let size = authguard_core::store::disk_size(&db);
    let input = if tag == "tor" {
        "Tor geoip + geoip6"
    } else {
        "the DB-IP-style CSV"
    };
    let run = medians(
        "guardctl geo import",
        input,
        &samples,
        format!("SQLite store, {:.1} MiB", size as f64 / 1048576.0),
    );
    Ok((run, config))
}

/// `guardctl geo block CC` then `geo unblock CC`, `runs` times: the median block.
fn block_store_only(
    guardctl: &Path,
    config: &Path,
    country: &str,
    runs: usize,
) -> Result<Duration> {
    let mut took = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        guardctl_ok(guardctl, config, &["geo", "block", country])?;
        took.push(t0.elapsed());
        guardctl_ok(guardctl, config, &["geo", "unblock", country])?;
    }
    took.sort();
    Ok(took[took.len() / 2])
}

/// Runs `guardctl --config CONFIG ARGS`; an error with its stderr if it fails.
fn guardctl_ok(guardctl: &Path, config: &Path, args: &[&str]) -> Result<Output> {
    guardctl_in(Command::new(guardctl), config, args)
}

/// Runs `cmd` (guardctl, perhaps behind `ip netns exec`) with `--config
/// CONFIG ARGS` outside any SSH session (so the lock-out guard has nothing
/// to protect); an error with its stderr if it fails.
pub fn guardctl_in(mut cmd: Command, config: &Path, args: &[&str]) -> Result<Output> {
    let out = no_session(cmd.arg("--config").arg(config).args(args)).output()?;
    check(&format!("guardctl {}", args.join(" ")), out)
}

/// `cmd` without the variables that tell guardctl it runs in an SSH session.
fn no_session(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("SSH_CONNECTION").env_remove("SSH_CLIENT")
}

/// `out` if its status is success, else an error naming `what`.
pub fn check(what: &str, out: Output) -> Result<Output> {
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// xtables-addons' `xt_geoip_build` (unpacked from Debian's
/// xtables-addons-common, not installed: it recommends the DKMS module) on
/// the CSV, into a fresh directory per run.
fn xt_geoip_build(dir: &Path, data: &Data, runs: usize) -> Result<Run> {
    let modules = Command::new("perl")
        .args(["-MText::CSV_XS", "-MNet::CIDR::Lite", "-e1"])
        .output()
        .context("running perl")?;
    if !modules.status.success() {
        bail!(
            "xt_geoip_build needs Perl's Text::CSV_XS and Net::CIDR::Lite (libtext-csv-xs-perl, libnet-cidr-lite-perl; `make bench` installs them)"
        );
    }
    let (root, version) = fetch_deb(dir, "xtables-addons-common")?;
    let script = root.join("usr/libexec/xtables-addons/xt_geoip_build");
    let mut samples = Vec::new();
    let mut written = (0, 0);
    for i in 0..runs {
        eprintln!("geo: xt_geoip_build, run {}/{runs}", i + 1);
        let out_dir = dir.join(format!("geo-xt-{i}"));
        std::fs::create_dir_all(&out_dir)?;
        let args = [
            script.as_os_str(),
            OsStr::new("-q"),
            OsStr::new("-D"),
            out_dir.as_os_str(),
        ];
        let args: Vec<&OsStr> = args
            .into_iter()
            .chain([OsStr::new("-i"), data.csv.as_os_str()])
            .collect();
        let (wall, rss, _) = timed(dir, OsStr::new("perl"), &args)?;
        samples.push((wall, rss, data.ranges.len() as u64));
        written = dir_files(&out_dir)?;
    }
    Ok(medians(
        &format!("xt_geoip_build (xtables-addons {version})"),
        "the DB-IP-style CSV",
        &samples,
        format!(
            "{} files .iv4/.iv6, {:.1} MiB",
            written.0,
            written.1 as f64 / 1048576.0
        ),
    ))
}

/// Files in `dir` and their total size.
fn dir_files(dir: &Path) -> Result<(u64, u64)> {
    let mut n = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        n += 1;
        bytes += entry?.metadata()?.len();
    }
    Ok((n, bytes))
}

/// A run from `(wall, rss KiB, ranges)` samples: the median of each.
fn medians(tool: &str, input: &str, samples: &[(Duration, u64, u64)], output: String) -> Run {
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let mut rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    walls.sort();
    rss.sort_unstable();
    Run {
        tool: tool.to_owned(),
        input: input.to_owned(),
        ranges: samples.last().map_or(0, |s| s.2),
        wall: walls[walls.len() / 2],
        rss_kib: rss[rss.len() / 2],
        output,
        runs: samples.len(),
    }
}

/// Runs `program ARGS` under GNU time: wall time (measured here, around
/// the whole), peak RSS in KiB (`%M`), and the output. Fails if it fails.
fn timed(dir: &Path, program: &OsStr, args: &[&OsStr]) -> Result<(Duration, u64, Output)> {
    if !Path::new(GNU_TIME).exists() {
        bail!("{GNU_TIME} is missing (Debian package `time`; `make bench` installs it)");
    }
    let report = dir.join("geo-time.txt");
    let mut cmd = Command::new(GNU_TIME);
    cmd.args([
        OsStr::new("-f"),
        OsStr::new("%M"),
        OsStr::new("-o"),
        report.as_os_str(),
    ])
    .arg(program)
    .args(args);
    let t0 = Instant::now();
    let out = no_session(&mut cmd).output()?;
    let wall = t0.elapsed();
    let what = Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy();
    let out = check(&what, out)?;
    let text = std::fs::read_to_string(&report)?;
    let rss = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("GNU time wrote {text:?}"))?;
    Ok((wall, rss, out))
}

//! Debian packages the tests run without installing them (CrowdSec's
//! postinst wants CrowdSec's central API): `apt-get download NAME`,
//! `dpkg-deb -x`, once, into `<target>/crowdsec/<name>/<version>/root`, keyed
//! by the candidate version apt knows; concurrent test processes wait on a
//! lock file for the one that unpacks. When apt has no lists, one
//! `apt-get update` is run first.

use crate::{run_with_timeout, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long `apt-get update` / `apt-get download` may take.
const APT_TIMEOUT: Duration = Duration::from_secs(600);

/// A Debian package, unpacked (never installed).
#[derive(Debug)]
pub struct Package {
    root: PathBuf,
    /// The package version, e.g. `1.4.6-6~deb12u1+b1`.
    pub version: String,
    /// How this run got it: unpacked (how long it took) or reused.
    pub provenance: String,
}

impl Package {
    /// The unpacked tree (`usr/bin/…`, `etc/…`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `usr/bin/crowdsec`.
    pub fn crowdsec(&self) -> PathBuf {
        self.root.join("usr/bin/crowdsec")
    }

    /// `usr/bin/cscli`.
    pub fn cscli(&self) -> PathBuf {
        self.root.join("usr/bin/cscli")
    }

    /// `usr/bin/NAME`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.root.join("usr/bin").join(name)
    }
}

/// Where unpacked packages live: `<target>/crowdsec`.
pub fn cache_dir() -> PathBuf {
    target_dir().join("crowdsec")
}

/// Package `name` (which must hold `bins`), got once per process into
/// `cell`. None, with a note, when it cannot be had outside CI; under
/// `CI=true` that panics (the tests must not skip).
pub fn once(
    cell: &'static OnceLock<Result<Package, String>>,
    name: &str,
    bins: &[&str],
) -> Option<&'static Package> {
    let got = cell.get_or_init(|| {
        let p = ensure(name, bins);
        if let Ok(p) = &p {
            eprintln!("{name} {}: {}", p.version, p.provenance);
        }
        p
    });
    match got {
        Ok(p) => Some(p),
        Err(why) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "the {name} package must be available under CI: {why}"
            );
            eprintln!("skipping: no {name} package: {why}");
            None
        }
    }
}

fn apt_update() -> crate::Finished {
    run_with_timeout(
        Command::new("apt-get").args(["update", "-qq"]),
        None,
        APT_TIMEOUT,
    )
}

fn ensure(name: &str, bins: &[&str]) -> Result<Package, String> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| format!("mkdir {}: {e}", cache.display()))?;
    let _lock = crate::trixie::lock(&cache.join(format!("{name}.lock")));
    let version = match candidate_version(name) {
        Some(v) => v,
        None => {
            let update = apt_update();
            candidate_version(name).ok_or_else(|| {
                format!(
                    "apt knows no candidate for {name}, even after apt-get update: {}",
                    update.describe()
                )
            })?
        }
    };
    // crowdsec itself keeps its old place (`<cache>/<version>`), so a warm
    // cache of earlier runs is reused.
    let dir = match name {
        "crowdsec" => cache.join(version.replace(['/', ':'], "_")),
        _ => cache.join(name).join(version.replace(['/', ':'], "_")),
    };
    if dir.join(".complete").is_file() {
        return Ok(Package {
            root: dir.join("root"),
            version,
            provenance: format!("reused {} (warm cache)", dir.display()),
        });
    }
    let started = Instant::now();
    unpack(name, &version, &dir, bins)?;
    Ok(Package {
        root: dir.join("root"),
        version,
        provenance: format!(
            "downloaded and unpacked into {} in {:.1} s (cold)",
            dir.display(),
            started.elapsed().as_secs_f64()
        ),
    })
}

/// Downloads and unpacks `name=version` into `dir/root`, atomically (a
/// `.partial` directory renamed into place once complete).
fn unpack(name: &str, version: &str, dir: &Path, bins: &[&str]) -> Result<(), String> {
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).map_err(|e| format!("mkdir {}: {e}", partial.display()))?;
    let download = || {
        let mut cmd = Command::new("apt-get");
        cmd.arg("download")
            .arg(format!("{name}={version}"))
            .current_dir(&partial);
        run_with_timeout(&mut cmd, None, APT_TIMEOUT)
    };
    let mut f = download();
    if !f.status.success() {
        // Lists that are there but stale name a .deb the mirror no longer has.
        apt_update();
        f = download();
    }
    if !f.status.success() {
        return Err(format!(
            "`apt-get download {name}={version}` failed: {}",
            f.describe()
        ));
    }
    let deb = std::fs::read_dir(&partial)
        .map_err(|e| format!("read {}: {e}", partial.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .ok_or("apt-get download left no .deb")?;
    let f = run_with_timeout(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(partial.join("root")),
        None,
        Duration::from_secs(120),
    );
    if !f.status.success() {
        return Err(format!("dpkg-deb -x {}: {}", deb.display(), f.describe()));
    }
    let _ = std::fs::remove_file(&deb);
    for bin in bins {
        if !partial.join("root").join(bin).is_file() {
            return Err(format!("the package has no {bin}"));
        }
    }
    std::fs::write(partial.join(".complete"), version).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&partial, dir)
        .map_err(|e| format!("rename {} into place: {e}", partial.display()))
}

/// `Candidate:` of `apt-cache policy NAME`; None without lists.
fn candidate_version(name: &str) -> Option<String> {
    let f = run_with_timeout(
        Command::new("apt-cache").args(["policy", name]),
        None,
        Duration::from_secs(60),
    );
    f.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "(none)")
}

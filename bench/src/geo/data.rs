//! The country data every geo measurement uses: Tor's `geoip` and `geoip6`
//! from Debian's `tor-geoipdb` package, downloaded with `apt-get download`
//! and unpacked with `dpkg-deb -x` into the bench's temp dir (never
//! installed: it depends on tor), parsed once with authguard's own parser,
//! and the same ranges written as a DB-IP-style CSV (`start,end,CC`, dotted
//! addresses) for the peers.

use anyhow::{Context, Result, bail};
use authguard_core::geo::{self, GeoRange};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tor's two files, their ranges, and the CSV made from them.
#[derive(Debug)]
pub struct Data {
    /// The unpacked `usr/share/tor/geoip`.
    pub v4: PathBuf,
    /// The unpacked `usr/share/tor/geoip6`.
    pub v6: PathBuf,
    /// Every known-country range of both files, in file order (`??` lines
    /// skipped, as `guardctl geo import` skips them).
    pub ranges: Vec<GeoRange>,
    /// The same ranges as `start,end,CC` lines.
    pub csv: PathBuf,
    /// The `tor-geoipdb` version.
    pub version: String,
}

impl Data {
    /// The ranges of one country, unmerged, as the files give them.
    pub fn of<'a>(&'a self, country: &'a str) -> impl Iterator<Item = &'a GeoRange> + 'a {
        self.ranges
            .iter()
            .filter(move |r| r.country.as_str() == country)
    }
}

/// Downloads and unpacks `tor-geoipdb` into `dir`, parses it and writes the CSV.
pub fn fetch(dir: &Path) -> Result<Data> {
    let (root, version) = fetch_deb(dir, "tor-geoipdb")?;
    let tor = root.join("usr/share/tor");
    let (v4, v6) = (tor.join("geoip"), tor.join("geoip6"));
    let mut ranges = Vec::new();
    for file in [&v4, &v6] {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let parsed = geo::parse(&file.to_string_lossy(), &bytes)?;
        ranges.extend(parsed.ranges);
    }
    let csv = dir.join("geo-dbip.csv");
    write_csv(&csv, &ranges)?;
    Ok(Data {
        v4,
        v6,
        ranges,
        csv,
        version,
    })
}

/// `start,end,CC` per range, IPv4 first (as DB-IP's country lite CSV).
fn write_csv(path: &Path, ranges: &[GeoRange]) -> Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for r in ranges {
        writeln!(out, "{},{},{}", r.lo, r.hi, r.country)?;
    }
    out.flush()?;
    Ok(())
}

/// `apt-get download PACKAGE` into `dir/deb-PACKAGE`, unpacked with
/// `dpkg-deb -x` (nothing is installed); returns the unpacked root and the
/// package's version.
pub fn fetch_deb(dir: &Path, package: &str) -> Result<(PathBuf, String)> {
    let at = dir.join(format!("deb-{package}"));
    std::fs::create_dir_all(&at)?;
    let out = Command::new("apt-get")
        .args(["download", package])
        .current_dir(&at)
        .output()
        .context("running apt-get")?;
    if !out.status.success() {
        bail!(
            "`apt-get download {package}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let deb = std::fs::read_dir(&at)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download {package} left no .deb"))?;
    let root = at.join("root");
    let ok = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .status()?
        .success();
    if !ok {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    // `tor-geoipdb_0.4.9.11-0+deb12u1_all.deb`: the version is the middle part.
    let name = deb.file_name().map(|n| n.to_string_lossy().into_owned());
    let version = name
        .as_deref()
        .and_then(|n| n.split('_').nth(1))
        .unwrap_or("?")
        .to_owned();
    Ok((root, version))
}

//! Country data files, read and checked before anything is written: text
//! files (Tor's geoip/geoip6, CSV) parsed line by line by core's
//! `GeoParser`, MaxMind DBs (told by content) walked by [`mmdb`]. Errors
//! are `BadInput` naming the file and line (or range). The verbs that
//! import, look up and block live in `cmd/geo.rs`.

pub mod mmdb;

use crate::BadInput;
use crate::output::Progress;
use authguard_core::geo::{Format, GeoError, GeoFile, GeoParser};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Files from this size on get a progress bar while they are read.
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

/// What a MaxMind DB's metadata says it is (text files say nothing).
#[derive(Debug)]
pub struct About {
    /// `GeoLite2-Country`, `DBIP-Country-Lite`, …
    pub database_type: String,
    /// When it was built (Unix seconds).
    pub build_epoch: u64,
}

/// Reads and parses one file, with a progress bar for a large one: a
/// MaxMind DB when it holds the marker, else text. A file named `.mmdb`
/// without the marker is refused (a truncated download, most likely).
pub fn read_file(path: &Path) -> anyhow::Result<(GeoFile, Option<About>)> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| BadInput(format!("cannot open {name}: {e}")))?;
    let cannot_read = |e: std::io::Error| BadInput(format!("cannot read {name}: {e}"));
    if mmdb::has_marker(&mut file).map_err(cannot_read)? {
        return read_mmdb(path, &name);
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mmdb"))
    {
        return Err(BadInput(format!(
            "{name}: not a MaxMind DB: no metadata marker at its end (truncated?)"
        ))
        .into());
    }
    Ok((read_text(file, name)?, None))
}

fn read_mmdb(path: &Path, name: &str) -> anyhow::Result<(GeoFile, Option<About>)> {
    let db = mmdb::read(path, name, PROGRESS_MIN_BYTES).map_err(|e| BadInput(e.to_string()))?;
    let about = About {
        database_type: db.database_type,
        build_epoch: db.build_epoch,
    };
    Ok((db.file, Some(about)))
}

/// Reads a text file (Tor's geoip/geoip6, CSV) line by line.
fn read_text(file: File, name: String) -> anyhow::Result<GeoFile> {
    let mut progress = Progress::new(file.metadata().ok().map(|m| m.len()), PROGRESS_MIN_BYTES);
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let mut parser = GeoParser::new(name.clone());
    let (mut line, mut bytes, mut lines) = (Vec::new(), 0u64, 0u64);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| BadInput(format!("cannot read {name}: {e}")))?;
        if n == 0 {
            break;
        }
        parser.line(&line).map_err(bad)?;
        bytes += n as u64;
        lines += 1;
        progress.update(bytes, lines);
    }
    progress.finish();
    Ok(parser.finish().map_err(bad)?)
}

fn bad(e: GeoError) -> BadInput {
    BadInput(e.to_string())
}

/// A merge error in words; an overlap in a MaxMind DB is named by the
/// range's addresses, as it has no lines.
pub fn merge_error(e: GeoError, files: &[GeoFile]) -> BadInput {
    match &e {
        GeoError::Overlap {
            file,
            line,
            other_file,
            other_line,
        } => BadInput(format!(
            "{}: range overlaps {}",
            place(files, file, *line),
            place(files, other_file, *other_line)
        )),
        _ => bad(e),
    }
}

/// `FILE, line N`, or `FILE, range LO-HI` for a MaxMind DB (whose ranges'
/// `line` is their 1-based place).
fn place(files: &[GeoFile], name: &str, line: u64) -> String {
    let mmdb_range = files
        .iter()
        .find(|f| f.name == name && f.format == Format::Mmdb)
        .and_then(|f| f.ranges.get(usize::try_from(line).ok()?.checked_sub(1)?));
    match mmdb_range {
        Some(r) => format!("{name}, range {}-{}", r.lo, r.hi),
        None => format!("{name}, line {line}"),
    }
}

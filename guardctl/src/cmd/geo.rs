//! `guardctl geo import FILE…` and `guardctl geo lookup ADDR`: country data.
//! Every file is parsed whole before the store is written, so a bad line
//! anywhere leaves the previous data in place (exit 2, naming the line).

use crate::BadInput;
use crate::cli::GeoCommand;
use crate::context::Context;
use crate::output::{Progress, print_json};
use authguard_core::geo::{self, GeoError, GeoFile, GeoParser};
use authguard_core::store::geo::GeoImport;
use authguard_core::syslog::untrusted;
use authguard_core::time;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Files larger than this get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

pub fn run(ctx: &Context, command: GeoCommand) -> anyhow::Result<ExitCode> {
    match command {
        GeoCommand::Import { files, json } => import(ctx, &files, json.json),
        GeoCommand::Lookup { address, json } => lookup(ctx, address, json.json),
    }
}

fn import(ctx: &Context, files: &[PathBuf], as_json: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Open first: a store this process may not write fails before the reading.
    let mut store = ctx.writer()?;
    let parsed = files
        .iter()
        .map(|f| read_file(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ranges = geo::merge(&parsed).map_err(bad)?;
    let reading = started.elapsed();
    let names: Vec<String> = parsed.iter().map(|f| f.name.clone()).collect();
    let done = store.import_geo(&ranges, &names, time::now())?;
    let took = Took {
        total: started.elapsed(),
        reading,
    };
    ctx.log(&format!(
        "geo import: {} ranges for {} countries from {}",
        done.ipv4_ranges + done.ipv6_ranges,
        done.countries,
        untrusted(names.join(", ").as_bytes())
    ));
    if as_json {
        print_import_json(&parsed, &done, &took);
    } else {
        print_import(&parsed, &done, &took);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long an import took, and how much of that was reading files.
struct Took {
    total: Duration,
    reading: Duration,
}

/// Reads and parses one file, with a progress bar for a large one.
fn read_file(path: &Path) -> anyhow::Result<GeoFile> {
    let name = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mmdb"))
    {
        return Err(BadInput(format!(
            "{name}: MaxMind .mmdb not supported yet; use Tor's geoip files or a CSV export"
        ))
        .into());
    }
    let file =
        std::fs::File::open(path).map_err(|e| BadInput(format!("cannot open {name}: {e}")))?;
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

fn print_import(files: &[GeoFile], done: &GeoImport, took: &Took) {
    for f in files {
        let skipped = match f.unknown {
            0 => String::new(),
            n => format!(" ({n} lines of unknown country skipped)"),
        };
        println!(
            "{}: {}, {} ranges{skipped}",
            f.name,
            f.format.as_str(),
            f.ranges.len()
        );
    }
    println!(
        "imported {} ranges ({} IPv4, {} IPv6) for {} countries in {:.2} s \
         (reading {:.2} s, writing {:.2} s)",
        done.ipv4_ranges + done.ipv6_ranges,
        done.ipv4_ranges,
        done.ipv6_ranges,
        done.countries,
        took.total.as_secs_f64(),
        took.reading.as_secs_f64(),
        (took.total - took.reading).as_secs_f64()
    );
}

fn print_import_json(files: &[GeoFile], done: &GeoImport, took: &Took) {
    print_json(&json!({
        "files": files.iter().map(|f| json!({
            "file": f.name,
            "format": f.format.as_str(),
            "ranges": f.ranges.len(),
            "unknown": f.unknown,
        })).collect::<Vec<_>>(),
        "ipv4_ranges": done.ipv4_ranges,
        "ipv6_ranges": done.ipv6_ranges,
        "countries": done.countries,
        "seconds": took.total.as_secs_f64(),
    }));
}

fn lookup(ctx: &Context, ip: IpAddr, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let country = store.geo_lookup(ip)?;
    if as_json {
        print_json(&json!({"address": ip.to_string(), "country": country}));
    } else if let Some(country) = country {
        println!("{country}");
    } else if store.has_geo()? {
        println!("unknown");
    } else {
        println!("unknown (no country data: run `guardctl geo import`)");
    }
    Ok(ExitCode::SUCCESS)
}

//! `guardctl geo import FILE…` and `guardctl geo lookup ADDR`: country data.
//! Every file is parsed whole before the store is written, so a bad line
//! anywhere leaves the previous data in place (exit 2, naming the line).
//! A MaxMind DB (told by content, see [`crate::geo`]) is read and walked
//! whole too; a file named `.mmdb` that is not one is refused, never read
//! as text.
//!
//! `guardctl geo block|unblock CC…` and `geo list`: countries the firewall
//! drops (after allowed networks). A block that would lock the admin out
//! (see [`crate::lockout`]) is refused unless `--force` is given; a code
//! without imported ranges is refused. Refused means nothing written.

use crate::BadInput;
use crate::cli::GeoCommand;
use crate::context::Context;
use crate::firewall::Desired;
use crate::geo::{About, merge_error, read_file};
use crate::lockout::{self, LockOut};
use crate::output::{print_json, relative, table};
use authguard_core::config::FirewallBackend;
use authguard_core::geo::{self, Country, Format, GeoFile};
use authguard_core::store::Store;
use authguard_core::store::geo::GeoImport;
use authguard_core::syslog::untrusted;
use authguard_core::time;
use serde_json::json;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run(ctx: &Context, command: GeoCommand) -> anyhow::Result<ExitCode> {
    match command {
        GeoCommand::Import { files, json } => import(ctx, &files, json.json),
        GeoCommand::Lookup { address, json } => lookup(ctx, address, json.json),
        GeoCommand::Block { countries, force } => block(ctx, &distinct(countries), force),
        GeoCommand::Unblock { countries } => unblock(ctx, &distinct(countries)),
        GeoCommand::List(f) => list(ctx, f.json),
    }
}

/// The codes in order, each once.
fn distinct(mut countries: Vec<Country>) -> Vec<Country> {
    countries.sort_unstable();
    countries.dedup();
    countries
}

fn block(ctx: &Context, countries: &[Country], force: bool) -> anyhow::Result<ExitCode> {
    let mut store = ctx.writer()?;
    require_ranges(&store, countries)?;
    // Only what is not blocked yet can lock anyone out now.
    let before = range_counts(&store)?;
    let new: Vec<Country> = countries
        .iter()
        .filter(|c| !before.contains_key(c.as_str()))
        .copied()
        .collect();
    let risks = lockout_risks(ctx, &store, &new)?;
    if !risks.is_empty() && !force {
        let why: Vec<String> = risks.iter().map(LockOut::message).collect();
        return Err(BadInput(why.join("\n")).into());
    }
    for risk in &risks {
        eprintln!(
            "guardctl: warning, blocking anyway (--force): {}",
            risk.reason()
        );
    }
    let added = store.geo_block(countries, time::now())?;
    report_blocked(ctx, &store, countries, &added, !risks.is_empty())?;
    finish_change(ctx, &store, !added.is_empty());
    Ok(ExitCode::SUCCESS)
}

/// Says (and logs) what `geo block` did for each country.
fn report_blocked(
    ctx: &Context,
    store: &Store,
    countries: &[Country],
    added: &[Country],
    forced: bool,
) -> anyhow::Result<()> {
    let counts = range_counts(store)?;
    let forced = if forced {
        " despite the lock-out guard (--force)"
    } else {
        ""
    };
    for c in countries {
        let ranges = plural(counts.get(c.as_str()).copied().unwrap_or(0), "range");
        if added.contains(c) {
            outln!("blocked {c} ({ranges})");
            ctx.log(&format!("geo block {c} ({ranges}){forced}"));
        } else {
            outln!("{c} was already blocked");
        }
    }
    Ok(())
}

fn unblock(ctx: &Context, countries: &[Country]) -> anyhow::Result<ExitCode> {
    let mut store = ctx.writer()?;
    let blocked = range_counts(&store)?;
    let not: Vec<&str> = countries
        .iter()
        .map(Country::as_str)
        .filter(|c| !blocked.contains_key(*c))
        .collect();
    if !not.is_empty() {
        return Err(BadInput(format!(
            "not blocked: {} (nothing unblocked; `guardctl geo list` shows what is)",
            not.join(", ")
        ))
        .into());
    }
    let removed = store.geo_unblock(countries)?;
    for c in &removed {
        outln!("unblocked {c}");
        ctx.log(&format!("geo unblock {c}"));
    }
    finish_change(ctx, &store, !removed.is_empty());
    Ok(ExitCode::SUCCESS)
}

/// `1 range`, `2 ranges`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Refuses codes the imported data has no ranges for (a typo, or no import yet).
fn require_ranges(store: &Store, countries: &[Country]) -> anyhow::Result<()> {
    if !store.has_geo()? {
        return Err(BadInput(
            "no country data: run `guardctl geo import` first (nothing blocked)".into(),
        )
        .into());
    }
    let mut unknown = Vec::new();
    for c in countries {
        if !store.geo_has_country(*c)? {
            unknown.push(c.as_str());
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(BadInput(format!(
        "unknown country code {}: the imported data has no ranges for it (nothing blocked)",
        unknown.join(", ")
    ))
    .into())
}

/// What blocking `countries` would risk for the admin running this.
fn lockout_risks(
    ctx: &Context,
    store: &Store,
    countries: &[Country],
) -> anyhow::Result<Vec<LockOut>> {
    let allowed = Desired::allowed(&ctx.config, store)?;
    let session = lockout::session_address();
    lockout::risks(countries, session, &allowed, |ip| country_of(store, ip))
}

/// `ip`'s country in the store, as a code.
pub(crate) fn country_of(store: &Store, ip: IpAddr) -> anyhow::Result<Option<Country>> {
    Ok(store
        .geo_lookup(ip)?
        .and_then(|c| Country::parse(&c).ok().flatten()))
}

/// Each blocked country's range count, by code.
fn range_counts(store: &Store) -> anyhow::Result<std::collections::HashMap<String, u64>> {
    Ok(store
        .geo_blocked()?
        .into_iter()
        .map(|b| (b.country, b.ranges))
        .collect())
}

/// After a block or unblock: the firewall at once (the daemon follows
/// anyway), or a word on why nothing will drop these countries.
fn finish_change(ctx: &Context, store: &Store, changed: bool) {
    if ctx.config.firewall.backend == FirewallBackend::None {
        outln!("note: [firewall] backend is \"none\": no firewall drops blocked countries");
    } else if changed {
        crate::firewall::push_now(&ctx.config, store, None);
    }
}

fn list(ctx: &Context, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let blocked = store.geo_blocked()?;
    if as_json {
        print_json(&json!(
            blocked
                .iter()
                .map(|b| json!({
                    "country": b.country,
                    "ranges": b.ranges,
                    "since": time::rfc3339(b.since),
                }))
                .collect::<Vec<_>>()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if blocked.is_empty() {
        outln!("no countries blocked");
        return Ok(ExitCode::SUCCESS);
    }
    let now = time::now();
    let mut t = table(&["country", "ranges", "since"]);
    for b in &blocked {
        t.add_row(vec![
            b.country.clone(),
            b.ranges.to_string(),
            relative(b.since, now),
        ]);
    }
    outln!("{t}");
    outln!("{}", scope_words(ctx));
    Ok(ExitCode::SUCCESS)
}

/// What blocked countries lose, in words (`[geo] scope`).
pub(crate) fn scope_words(ctx: &Context) -> String {
    use authguard_core::config::BanScope;
    match ctx.config.geo.scope {
        BanScope::Ports => {
            let ports: Vec<String> = ctx
                .config
                .firewall
                .ports
                .iter()
                .map(u16::to_string)
                .collect();
            format!(
                "scope ports: their connections to port {} are dropped",
                ports.join(", ")
            )
        }
        BanScope::All => "scope all: every connection they open is dropped".into(),
    }
}

fn import(ctx: &Context, files: &[PathBuf], as_json: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // Open first: a store this process may not write fails before the reading.
    let mut store = ctx.writer()?;
    let (parsed, abouts): (Vec<GeoFile>, Vec<Option<About>>) = files
        .iter()
        .map(|f| read_file(f))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let ranges = geo::merge(&parsed).map_err(|e| merge_error(e, &parsed))?;
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
        print_import_json(&parsed, &abouts, &done, &took);
    } else {
        print_import(&parsed, &abouts, &done, &took);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long an import took, and how much of that was reading files.
struct Took {
    total: Duration,
    reading: Duration,
}

/// `mmdb (GeoLite2-Country, built 2025-06-03T…)` for a MaxMind DB.
fn format_words(file: &GeoFile, about: &Option<About>) -> String {
    match about {
        Some(a) if a.build_epoch > 0 => format!(
            "{} ({}, built {})",
            file.format.as_str(),
            a.database_type,
            built(a.build_epoch)
        ),
        Some(a) => format!("{} ({})", file.format.as_str(), a.database_type),
        None => file.format.as_str().to_owned(),
    }
}

fn built(epoch: u64) -> String {
    time::rfc3339(i64::try_from(epoch).unwrap_or(i64::MAX))
}

fn print_import(files: &[GeoFile], abouts: &[Option<About>], done: &GeoImport, took: &Took) {
    for (f, about) in files.iter().zip(abouts) {
        let skipped = match (f.unknown, f.format) {
            (0, _) => String::new(),
            (n, Format::Mmdb) => format!(" ({} of unknown country skipped)", plural(n, "network")),
            (n, _) => format!(" ({n} lines of unknown country skipped)"),
        };
        outln!(
            "{}: {}, {} ranges{skipped}",
            f.name,
            format_words(f, about),
            f.ranges.len()
        );
    }
    outln!(
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

fn print_import_json(files: &[GeoFile], abouts: &[Option<About>], done: &GeoImport, took: &Took) {
    print_json(&json!({
        "files": files.iter().zip(abouts).map(|(f, about)| file_json(f, about)).collect::<Vec<_>>(),
        "ipv4_ranges": done.ipv4_ranges,
        "ipv6_ranges": done.ipv6_ranges,
        "countries": done.countries,
        "seconds": took.total.as_secs_f64(),
    }));
}

/// One file in `geo import --json`; a MaxMind DB adds `database_type`
/// and `built` (RFC 3339, null when unknown).
fn file_json(f: &GeoFile, about: &Option<About>) -> serde_json::Value {
    let mut value = json!({
        "file": f.name,
        "format": f.format.as_str(),
        "ranges": f.ranges.len(),
        "unknown": f.unknown,
    });
    if let (Some(a), Some(map)) = (about, value.as_object_mut()) {
        map.insert("database_type".into(), json!(a.database_type));
        let built = (a.build_epoch > 0).then(|| built(a.build_epoch));
        map.insert("built".into(), json!(built));
    }
    value
}

fn lookup(ctx: &Context, ip: IpAddr, as_json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.reader()?;
    let country = store.geo_lookup(ip)?;
    if as_json {
        print_json(&json!({"address": ip.to_string(), "country": country}));
    } else if let Some(country) = country {
        outln!("{country}");
    } else if store.has_geo()? {
        outln!("unknown");
    } else {
        outln!("unknown (no country data: run `guardctl geo import`)");
    }
    Ok(ExitCode::SUCCESS)
}

//! MaxMind DB country databases (`.mmdb`: GeoLite2-Country, DB-IP country
//! lite) for `guardctl geo import`. A file is one when its metadata marker
//! sits near its end, whatever its name. The whole file is read and its
//! search tree checked before any network is walked; every network then
//! becomes a range of its country (`country`, else `registered_country`),
//! adjacent ones of one country merged. Nothing here writes the store.
//!
//! The crate reads without bounds checks and follows data pointers
//! recursively, so the search tree and every value it refers to are
//! checked first ([`data_check`]): damage is an error, never a panic or a
//! stack overflow.
//!
//! IPv4 lives inside an IPv6 database at `::/96` and is aliased at
//! `::ffff:0:0/96`, `2001::/32` and `2002::/16`: the crate's walk skips
//! the aliases, so each IPv4 network comes out once, as IPv4.

use crate::output::Progress;
use authguard_core::addr;
use authguard_core::geo::{Country, Format, GeoFile, GeoRange};
use data_check::DataCheck;
use ipnetwork::IpNetwork;
use maxminddb::Reader;
use serde::Deserialize;
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

mod data_check;

/// What starts a MaxMind DB's metadata section.
const MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// The metadata section lies within this many bytes of the end (the
/// limit libmaxminddb searches too).
const METADATA_MAX: u64 = 128 * 1024;

/// Between the search tree and the data section: 16 zero bytes.
const SEPARATOR: usize = 16;

/// Why a MaxMind DB was refused; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum MmdbError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file, as named.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a well-formed MaxMind DB (truncated, damaged, or not one at all).
    #[error("{file}: not a valid MaxMind DB: {what}")]
    Corrupt {
        /// The file, as named.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// Records that do not decode as GeoIP2-style country records: a
    /// damaged data section, or another vendor's layout (ipinfo's `country`
    /// is a bare string).
    #[error("{file}: cannot read its records as GeoIP2 country records: {what}")]
    Layout {
        /// The file, as named.
        file: String,
        /// The decoder's complaint.
        what: String,
    },
    /// A well-formed database without countries (an ASN database, say).
    #[error("no country data in {file}: database_type {database_type}")]
    NoCountry {
        /// The file, as named.
        file: String,
        /// Its metadata's `database_type`.
        database_type: String,
    },
    /// A network whose `iso_code` is not a country code.
    #[error("{file}, network {network}: {what}")]
    BadCode {
        /// The file, as named.
        file: String,
        /// The network, in CIDR notation.
        network: String,
        /// What is wrong with its code.
        what: String,
    },
}

/// A database read whole: its ranges and what its metadata says it is.
#[derive(Debug)]
pub struct Mmdb {
    /// The ranges, as from any other file.
    pub file: GeoFile,
    /// The metadata's `database_type`, e.g. `GeoLite2-Country`.
    pub database_type: String,
    /// When it was built (Unix seconds; 0 when the writer left it out).
    pub build_epoch: u64,
}

/// True when `file` ends like a MaxMind DB: its metadata marker within
/// the last 128 KiB. Text never holds the marker (it is not UTF-8). A
/// pipe cannot be searched from its end, so it is read as text.
pub fn has_marker(file: &mut std::fs::File) -> std::io::Result<bool> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(false);
    }
    let len = meta.len();
    file.seek(SeekFrom::Start(len.saturating_sub(METADATA_MAX)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(memchr::memmem::rfind(&tail, MARKER).is_some())
}

/// Reads the database at `path` whole; `progress_over`: file size past
/// which a terminal gets a progress bar.
pub fn read(path: &std::path::Path, name: &str, progress_over: u64) -> Result<Mmdb, MmdbError> {
    let bytes = std::fs::read(path).map_err(|source| MmdbError::Read {
        file: name.to_owned(),
        source,
    })?;
    let big = bytes.len() as u64 > progress_over;
    parse(name, &bytes, big)
}

/// Parses a database held in memory (`progress`: draw a bar on a terminal).
pub fn parse(name: &str, bytes: &[u8], progress: bool) -> Result<Mmdb, MmdbError> {
    contain_panics(name, || decode(name, bytes, progress))
}

thread_local! {
    /// Set while [`contain_panics`] runs: its panics are not printed.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into [`MmdbError::Corrupt`]: the crate slices
/// its buffer unchecked while decoding records, so a damaged data section
/// can panic there. That is bad input, not a bug of ours, so its panic
/// message is kept off the terminal (on this thread, while `f` runs).
fn contain_panics(
    name: &str,
    f: impl FnOnce() -> Result<Mmdb, MmdbError>,
) -> Result<Mmdb, MmdbError> {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| {
        let print = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                print(info);
            }
        }));
    });
    CONTAINED.with(|c| c.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(false));
    outcome.unwrap_or_else(|_| {
        Err(corrupt(
            name,
            "damaged or truncated: decoding ran past its end",
        ))
    })
}

/// Checks, then walks, a database held in memory.
fn decode(name: &str, bytes: &[u8], progress: bool) -> Result<Mmdb, MmdbError> {
    let marker = find_marker(name, bytes)?;
    // The crate decodes the metadata as it opens the file: check it first.
    DataCheck::new(&bytes[marker + MARKER.len()..])
        .value_at(0)
        .map_err(|what| corrupt(name, &format!("metadata: {what}")))?;
    let reader = Reader::from_source(bytes).map_err(|e| corrupt(name, &e.to_string()))?;
    let networks = check_tree(name, bytes, marker, &reader.metadata)?;
    let mut bar = Progress::new(progress.then_some(networks), 0).counting("networks");
    let walked = walk(name, &reader, &mut |done| bar.update(done, done));
    bar.finish();
    let walked = walked?;
    let database_type = reader.metadata.database_type.clone();
    if walked.ranges.is_empty() {
        return Err(MmdbError::NoCountry {
            file: name.to_owned(),
            database_type,
        });
    }
    Ok(Mmdb {
        file: GeoFile {
            name: name.to_owned(),
            format: Format::Mmdb,
            ranges: walked.ranges,
            unknown: walked.unknown,
        },
        database_type,
        build_epoch: reader.metadata.build_epoch,
    })
}

fn corrupt(name: &str, what: &str) -> MmdbError {
    MmdbError::Corrupt {
        file: name.to_owned(),
        what: what.to_owned(),
    }
}

/// Where the metadata marker is (the last one, as the crate looks too).
fn find_marker(name: &str, bytes: &[u8]) -> Result<usize, MmdbError> {
    let tail = bytes.len().saturating_sub(METADATA_MAX as usize);
    memchr::memmem::rfind(&bytes[tail..], MARKER)
        .map(|at| tail + at)
        .ok_or_else(|| {
            corrupt(
                name,
                "no metadata marker at its end (truncated, or not a MaxMind DB)",
            )
        })
}

/// Checks the search tree before the crate walks it (it reads nodes
/// without bounds checks) and returns how many records hold data: the
/// networks the walk will find.
fn check_tree(
    name: &str,
    bytes: &[u8],
    marker: usize,
    meta: &maxminddb::Metadata,
) -> Result<u64, MmdbError> {
    check_layout(meta, marker).map_err(|what| corrupt(name, &what))?;
    let (records, offsets) =
        data_records(bytes, marker, meta).map_err(|what| corrupt(name, &what))?;
    check_no_loop(bytes, meta).map_err(|what| corrupt(name, &what))?;
    let mut check = DataCheck::new(&bytes[tree_bytes(meta) + SEPARATOR..marker]);
    for offset in offsets {
        check
            .value_at(offset)
            .map_err(|what| corrupt(name, &format!("data section: {what}")))?;
    }
    Ok(records)
}

/// The record size and node count must describe a tree that fits before
/// the metadata (a damaged file's need not).
fn check_layout(meta: &maxminddb::Metadata, marker: usize) -> Result<(), String> {
    if !matches!(meta.record_size, 24 | 28 | 32) {
        return Err(format!(
            "record size {} (24, 28 or 32 expected)",
            meta.record_size
        ));
    }
    if !matches!(meta.ip_version, 4 | 6) {
        return Err(format!("IP version {} (4 or 6 expected)", meta.ip_version));
    }
    if tree_bytes(meta).saturating_add(SEPARATOR) > marker {
        return Err(format!(
            "its search tree ({} nodes, {} bytes) does not fit in the file",
            meta.node_count,
            tree_bytes(meta)
        ));
    }
    Ok(())
}

/// Every record must name a node, the empty marker, or a place in the
/// data section; counts those naming data, and collects the places.
fn data_records(
    bytes: &[u8],
    marker: usize,
    meta: &maxminddb::Metadata,
) -> Result<(u64, HashSet<usize>), String> {
    let nodes = meta.node_count as usize;
    let data_len = marker - tree_bytes(meta) - SEPARATOR;
    let mut data = 0u64;
    let mut offsets = HashSet::new();
    for node in 0..nodes {
        for side in 0..2 {
            let value = record(bytes, meta.record_size, node, side)
                .ok_or_else(|| format!("search tree node {node} is cut off"))?;
            match RecordKind::of(value, nodes, data_len) {
                RecordKind::Node | RecordKind::Empty => {}
                RecordKind::Data => {
                    data += 1;
                    offsets.insert(value - nodes - SEPARATOR);
                }
                RecordKind::Bad => {
                    return Err(format!("search tree node {node} points outside the file"));
                }
            }
        }
    }
    Ok((data, offsets))
}

/// A damaged record pointing back to an ancestor would make the crate's
/// walk run forever. Depth first from the root, each node expanded once:
/// the aliases share the IPv4 subtree (not an ancestor of theirs), so a
/// node met again while still on the path is a loop.
fn check_no_loop(bytes: &[u8], meta: &maxminddb::Metadata) -> Result<(), String> {
    let nodes = meta.node_count as usize;
    let mut seen = vec![Seen::New; nodes];
    let mut path: Vec<(usize, usize)> = Vec::new();
    if nodes > 0 {
        seen[0] = Seen::OnPath;
        path.push((0, 0));
    }
    while let Some(top) = path.last_mut() {
        let (node, side) = *top;
        if side == 2 {
            seen[node] = Seen::Done;
            path.pop();
            continue;
        }
        top.1 += 1;
        let child = record(bytes, meta.record_size, node, side)
            .ok_or_else(|| format!("search tree node {node} is cut off"))?;
        match seen.get(child) {
            Some(Seen::New) => {
                seen[child] = Seen::OnPath;
                path.push((child, 0));
            }
            Some(Seen::OnPath) => {
                return Err(format!(
                    "search tree node {node} points back to node {child} (a loop)"
                ));
            }
            // Done, or not a node (empty, data).
            _ => {}
        }
    }
    Ok(())
}

/// Where [`check_no_loop`] has been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    New,
    OnPath,
    Done,
}

/// The search tree's size in bytes: `node_count × record_size × 2 / 8`.
fn tree_bytes(meta: &maxminddb::Metadata) -> usize {
    (meta.node_count as usize).saturating_mul(usize::from(meta.record_size)) / 4
}

/// What a search-tree record points to.
#[derive(Debug, PartialEq, Eq)]
enum RecordKind {
    Node,
    Empty,
    Data,
    Bad,
}

impl RecordKind {
    /// Nodes are numbered below `nodes`; `nodes` itself means "no data";
    /// data pointers start past the 16-byte separator.
    fn of(value: usize, nodes: usize, data_len: usize) -> RecordKind {
        match value.checked_sub(nodes) {
            None => RecordKind::Node,
            Some(0) => RecordKind::Empty,
            Some(past) if past >= SEPARATOR && past - SEPARATOR < data_len => RecordKind::Data,
            Some(_) => RecordKind::Bad,
        }
    }
}

/// Record `side` (0 left, 1 right) of `node`, or None past the buffer.
fn record(bytes: &[u8], record_size: u16, node: usize, side: usize) -> Option<usize> {
    let base = node.checked_mul(usize::from(record_size))? / 4;
    let be = |at: usize, len: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(len)?)?;
        Some(b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
    };
    match (record_size, side) {
        (24, _) => be(base + side * 3, 3),
        // 28 bits: the middle byte holds each record's top nibble.
        (28, 0) => Some((usize::from(*bytes.get(base + 3)? >> 4) << 24) | be(base, 3)?),
        (28, _) => Some((usize::from(*bytes.get(base + 3)? & 0x0F) << 24) | be(base + 4, 3)?),
        (32, _) => be(base + side * 4, 4),
        _ => None,
    }
}

/// The part of a record we read (GeoIP2 / GeoLite2 / DB-IP layout);
/// everything else in it (names in eight languages, continent) is skipped.
#[derive(Debug, Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    registered_country: Option<Place<'a>>,
}

#[derive(Debug, Deserialize)]
struct Place<'a> {
    iso_code: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// The country's code, else the registered country's (GeoLite2 leaves
    /// `country` out for some anycast and EU-wide networks).
    fn iso_code(&self) -> Option<&'a str> {
        let code = |p: &Option<Place<'a>>| p.as_ref().and_then(|p| p.iso_code);
        code(&self.country).or_else(|| code(&self.registered_country))
    }
}

/// Walks every network of the database, reporting progress as it goes.
fn walk<S: AsRef<[u8]>>(
    name: &str,
    reader: &Reader<S>,
    progress: &mut dyn FnMut(u64),
) -> Result<Ranges, MmdbError> {
    let everything = match reader.metadata.ip_version {
        4 => IpNetwork::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        _ => IpNetwork::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
    .map_err(|e| corrupt(name, &e.to_string()))?;
    let networks = reader
        .within::<Record<'_>>(everything)
        .map_err(|e| corrupt(name, &e.to_string()))?;
    let mut ranges = Ranges::default();
    for (done, item) in (1u64..).zip(networks) {
        let item = item.map_err(|e| walk_error(name, e))?;
        let country = Country::parse(item.info.iso_code().unwrap_or("??")).map_err(|what| {
            MmdbError::BadCode {
                file: name.to_owned(),
                network: item.ip_net.to_string(),
                what,
            }
        })?;
        ranges.add(item.ip_net, country);
        progress(done);
    }
    Ok(ranges)
}

/// A record that does not decode is [`MmdbError::Layout`]; anything else
/// the walk meets is damage.
fn walk_error(name: &str, e: maxminddb::MaxMindDbError) -> MmdbError {
    match e {
        maxminddb::MaxMindDbError::Decoding(what) => MmdbError::Layout {
            file: name.to_owned(),
            what,
        },
        e => corrupt(name, &e.to_string()),
    }
}

/// Networks in walk (address) order, adjacent ones of one country merged.
#[derive(Debug, Default)]
struct Ranges {
    ranges: Vec<GeoRange>,
    /// Networks of no known country.
    unknown: u64,
}

impl Ranges {
    fn add(&mut self, network: IpNetwork, country: Option<Country>) {
        let Some(country) = country else {
            self.unknown += 1;
            return;
        };
        // An IPv4-mapped network (a database without aliases may hold
        // one) is IPv4, as the store keys it.
        let (lo, hi) = (
            addr::canonical(network.network()),
            addr::canonical(network.broadcast()),
        );
        match self.ranges.last_mut() {
            Some(last) if last.country == country && follows(last.hi, lo) => last.hi = hi,
            _ => self.push(lo, hi, country),
        }
    }

    fn push(&mut self, lo: IpAddr, hi: IpAddr, country: Country) {
        self.ranges.push(GeoRange {
            lo,
            hi,
            country,
            line: self.ranges.len() as u64 + 1,
        });
    }
}

/// True when `next` is the address right after `last`, in one family.
fn follows(last: IpAddr, next: IpAddr) -> bool {
    match (last, next) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a).checked_add(1) == Some(u32::from(b)),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a).checked_add(1) == Some(u128::from(b)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

//! Country data: IP ranges mapped to two-letter country codes, read from
//! the files admins already have.
//!
//! - Tor's `geoip` (`/usr/share/tor/geoip`): `FROM,TO,CC`, IPv4 addresses
//!   as decimal integers.
//! - Tor's `geoip6`: `FROM,TO,CC` with IPv6 addresses.
//! - CSV `start,end,CC[,…]` (DB-IP lite, IP2Location LITE): addresses or
//!   decimal integers (an integer above 2³²−1 makes the line IPv6), fields
//!   optionally quoted, further columns ignored, a header line skipped.
//! - MaxMind DB (`.mmdb`: GeoLite2-Country, DB-IP country lite): read by
//!   guardctl (the `maxminddb` crate stays out of this crate, which the PAM
//!   module links), which hands over a [`GeoFile`] of [`Format::Mmdb`].
//!
//! A text format is detected from a file's first data line. `#` comments and
//! blank lines are skipped everywhere. A code is two ASCII letters
//! (uppercased); `??`, `-` and `ZZ` mean "unknown" and their lines are
//! skipped. Anything else is an error naming the file and the line.
//! [`merge`] then sorts the ranges of every file and refuses overlaps, so a
//! lookup (the range with the greatest start at or below the address) is
//! always right. The store keeps them (`Store::import_geo`). [`coalesce`]
//! turns blocked countries' ranges into the fewest [`AddrRange`]s for the
//! firewall.

use crate::addr;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A country code: two uppercase ASCII letters (ISO 3166-1 alpha-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a code: two ASCII letters, any case. `Ok(None)` for the
    /// markers of an unknown country (`??`, `-`, `ZZ`); `Err` otherwise.
    pub fn parse(text: &str) -> Result<Option<Country>, String> {
        let text = text.trim();
        if matches!(text, "??" | "-" | "ZZ" | "zz") {
            return Ok(None);
        }
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Ok(Some(Country([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ]))),
            _ => Err(format!("`{text}` is not a two-letter country code")),
        }
    }

    /// The code, e.g. `"NL"`.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// In the config (`[geo] keyonly`): a real code; `??` and `ZZ` are refused.
impl<'de> serde::Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match Country::parse(&text) {
            Ok(Some(country)) => Ok(country),
            Ok(None) => Err(serde::de::Error::custom(format!(
                "`{text}` means an unknown country, not a country code"
            ))),
            Err(what) => Err(serde::de::Error::custom(what)),
        }
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One range of addresses, both ends included, and its country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoRange {
    /// The first address.
    pub lo: IpAddr,
    /// The last address.
    pub hi: IpAddr,
    /// Its country.
    pub country: Country,
    /// The line of its file it came from (1-based), for error messages.
    pub line: u64,
}

impl GeoRange {
    /// True for IPv4 (also written as IPv4-mapped IPv6).
    pub fn is_ipv4(&self) -> bool {
        addr::canonical(self.lo).is_ipv4()
    }

    /// The store keys of both ends (see [`addr::key_of`]).
    pub fn keys(&self) -> ([u8; 16], [u8; 16]) {
        (addr::key_of(self.lo), addr::key_of(self.hi))
    }
}

/// The layout of a file, detected from its first data line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tor's `geoip`: `int,int,CC`.
    TorV4,
    /// Tor's `geoip6`: `ipv6,ipv6,CC`, unquoted.
    TorV6,
    /// Anything else: `start,end,CC[,…]`, addresses or integers, maybe quoted.
    Csv,
    /// A MaxMind DB (binary, told by its metadata marker, never by
    /// [`Format::detect`]); a range's `line` is its 1-based place in the
    /// file's ranges.
    Mmdb,
}

impl Format {
    /// A short name: `tor-ipv4`, `tor-ipv6`, `csv`, `mmdb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TorV4 => "tor-ipv4",
            Format::TorV6 => "tor-ipv6",
            Format::Csv => "csv",
            Format::Mmdb => "mmdb",
        }
    }

    /// Which text format a first data line is written in.
    pub fn detect(line: &str) -> Format {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match fields.as_slice() {
            [a, b, _] if digits(a) && digits(b) => Format::TorV4,
            [a, b, _] if a.parse::<Ipv6Addr>().is_ok() && b.parse::<Ipv6Addr>().is_ok() => {
                Format::TorV6
            }
            _ => Format::Csv,
        }
    }
}

/// Why country data was refused. Nothing is imported when any file fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeoError {
    /// A line that is not a range and a country.
    #[error("{file}, line {line}: {what}")]
    Malformed {
        /// The file, as named.
        file: String,
        /// 1-based.
        line: u64,
        /// What is wrong with it.
        what: String,
    },
    /// A file without a single range.
    #[error("{file}: no address ranges in it")]
    Empty {
        /// The file, as named.
        file: String,
    },
    /// A file whose every range names an unknown country (`??`, `-`, `ZZ`).
    #[error(
        "{file}: all {lines} ranges in it name an unknown country (??, - or ZZ): nothing to import"
    )]
    AllUnknown {
        /// The file, as named.
        file: String,
        /// How many such lines.
        lines: u64,
    },
    /// Two ranges that share addresses (a lookup could not tell which holds).
    #[error("{file}, line {line}: range overlaps {other_file}, line {other_line}")]
    Overlap {
        /// The later range's file.
        file: String,
        /// Its line.
        line: u64,
        /// The earlier range's file.
        other_file: String,
        /// Its line.
        other_line: u64,
    },
}

/// One parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoFile {
    /// The file, as named.
    pub name: String,
    /// Its detected format.
    pub format: Format,
    /// Its ranges with a known country, in file order.
    pub ranges: Vec<GeoRange>,
    /// Lines skipped because their country is unknown (`??`).
    pub unknown: u64,
}

/// Reads a file line by line (so a caller can show progress); the format
/// is detected at the first data line.
#[derive(Debug)]
pub struct GeoParser {
    name: String,
    format: Option<Format>,
    ranges: Vec<GeoRange>,
    unknown: u64,
    line: u64,
}

impl GeoParser {
    /// A parser for the file called `name` (used in error messages).
    pub fn new(name: impl Into<String>) -> GeoParser {
        GeoParser {
            name: name.into(),
            format: None,
            ranges: Vec::new(),
            unknown: 0,
            line: 0,
        }
    }

    /// Takes the next line (with or without its line ending).
    pub fn line(&mut self, raw: &[u8]) -> Result<(), GeoError> {
        self.line += 1;
        let text = std::str::from_utf8(raw).map_err(|_| self.error("not text (invalid UTF-8)"))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            return Ok(());
        }
        let format = match self.format {
            Some(f) => f,
            None => self.first_line(text),
        };
        if format == Format::Csv && self.ranges.is_empty() && self.unknown == 0 && is_header(text) {
            return Ok(());
        }
        match parse_line(format, text, self.line) {
            Ok(Some(range)) => self.ranges.push(range),
            Ok(None) => self.unknown += 1,
            Err(what) => return Err(self.error(&what)),
        }
        Ok(())
    }

    /// The file's ranges; an error if it held none.
    pub fn finish(self) -> Result<GeoFile, GeoError> {
        match self.format {
            Some(format) if !self.ranges.is_empty() => Ok(GeoFile {
                name: self.name,
                format,
                ranges: self.ranges,
                unknown: self.unknown,
            }),
            _ if self.unknown > 0 => Err(GeoError::AllUnknown {
                file: self.name,
                lines: self.unknown,
            }),
            _ => Err(GeoError::Empty { file: self.name }),
        }
    }

    fn first_line(&mut self, text: &str) -> Format {
        let format = Format::detect(text);
        self.format = Some(format);
        format
    }

    fn error(&self, what: &str) -> GeoError {
        GeoError::Malformed {
            file: self.name.clone(),
            line: self.line,
            what: what.to_owned(),
        }
    }
}

/// Parses a whole file held in memory.
pub fn parse(name: &str, data: &[u8]) -> Result<GeoFile, GeoError> {
    let mut parser = GeoParser::new(name);
    for line in data.split(|&b| b == b'\n') {
        parser.line(line)?;
    }
    parser.finish()
}

/// A CSV header: the first field holds neither a digit nor a colon, as
/// every address does (`start_ip`, `"ip_from"`).
fn is_header(text: &str) -> bool {
    let first = text.split(',').next().unwrap_or("");
    !first.bytes().any(|b| b.is_ascii_digit() || b == b':')
}

/// One data line: `Ok(None)` when its country is unknown.
fn parse_line(format: Format, text: &str, line: u64) -> Result<Option<GeoRange>, String> {
    let (lo, hi, country) = match format {
        Format::TorV4 => tor_fields(text, |s| parse_v4_int(s).map(IpAddr::V4))?,
        Format::TorV6 => tor_fields(text, |s| parse_v6(s).map(IpAddr::V6))?,
        Format::Csv => csv_fields(text)?,
        // Never detected from a line: guardctl reads MaxMind DBs whole.
        Format::Mmdb => return Err("a MaxMind DB is not read line by line".into()),
    };
    if addr::key_of(lo) > addr::key_of(hi) {
        return Err(format!("the range starts after it ends ({lo} > {hi})"));
    }
    Ok(Country::parse(country)?.map(|country| GeoRange {
        lo,
        hi,
        country,
        line,
    }))
}

/// Tor's `FROM,TO,CC`: exactly three fields.
fn tor_fields(
    text: &str,
    address: impl Fn(&str) -> Result<IpAddr, String>,
) -> Result<(IpAddr, IpAddr, &str), String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    match fields.as_slice() {
        [lo, hi, cc] => Ok((address(lo)?, address(hi)?, cc)),
        _ => Err(format!(
            "expected FROM,TO,COUNTRY (3 fields), found {}",
            fields.len()
        )),
    }
}

fn parse_v4_int(s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<u32>()
        .map(Ipv4Addr::from)
        .map_err(|_| format!("`{s}` is not an IPv4 address as a decimal number"))
}

fn parse_v6(s: &str) -> Result<Ipv6Addr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an IPv6 address"))
}

/// CSV `start,end,CC[,…]`: addresses, or integers (IPv6 when either end
/// exceeds 32 bits). Both ends must be of one family.
fn csv_fields(text: &str) -> Result<(IpAddr, IpAddr, &str), String> {
    let fields = split_csv(text)?;
    let [lo, hi, cc, ..] = fields.as_slice() else {
        return Err(format!(
            "expected start,end,country (at least 3 fields), found {}",
            fields.len()
        ));
    };
    let (lo, hi) = match (csv_end(lo)?, csv_end(hi)?) {
        (End::Number(a), End::Number(b)) => integer_range(a, b),
        (End::Address(a), End::Address(b)) => (a, b),
        _ => return Err(format!("`{lo}` and `{hi}` mix a number and an address")),
    };
    if lo.is_ipv4() != hi.is_ipv4() {
        return Err(format!("{lo} and {hi} are not of one address family"));
    }
    Ok((lo, hi, cc))
}

fn integer_range(a: u128, b: u128) -> (IpAddr, IpAddr) {
    match (u32::try_from(a), u32::try_from(b)) {
        (Ok(a), Ok(b)) => (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into()),
        _ => (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into()),
    }
}

/// One end of a CSV range, as written.
enum End {
    Number(u128),
    Address(IpAddr),
}

fn csv_end(s: &str) -> Result<End, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(End::Number)
            .map_err(|_| format!("`{s}` is too large for an IP address"));
    }
    s.parse()
        .map(End::Address)
        .map_err(|_| format!("`{s}` is not an IP address"))
}

/// Splits a CSV line into trimmed fields; a quoted field may hold commas
/// (its quotes are removed; `""` inside stays as is: no field we read has one).
fn split_csv(text: &str) -> Result<Vec<&str>, String> {
    let mut fields = Vec::new();
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let (field, after) = match trimmed.strip_prefix('"') {
            Some(quoted) => {
                let end = closing_quote(quoted).ok_or("a quoted field is not closed")?;
                (&quoted[..end], quoted[end + 1..].trim_start())
            }
            None => trimmed.split_at(trimmed.find(',').unwrap_or(trimmed.len())),
        };
        fields.push(field.trim());
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if after.trim().is_empty() => return Ok(fields),
            None => {
                return Err(format!(
                    "unexpected `{}` after a quoted field",
                    after.trim()
                ));
            }
        }
    }
}

/// The index of the quote that ends a quoted field (`""` is an escaped quote).
fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Every file's ranges, sorted by address and checked to be disjoint:
/// what the store imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoRanges(Vec<GeoRange>);

impl GeoRanges {
    /// The ranges, in address order (IPv4 first: it sorts as `::ffff:0:0/96`).
    pub fn ranges(&self) -> &[GeoRange] {
        &self.0
    }

    /// How many ranges are IPv4 and how many IPv6.
    pub fn family_counts(&self) -> (u64, u64) {
        let v4 = self.0.iter().filter(|r| r.is_ipv4()).count() as u64;
        (v4, self.0.len() as u64 - v4)
    }
}

/// Sorts the ranges of every file together and refuses any overlap.
pub fn merge(files: &[GeoFile]) -> Result<GeoRanges, GeoError> {
    let mut all: Vec<(&GeoRange, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.ranges.iter().map(move |r| (r, i)))
        .collect();
    all.sort_unstable_by_key(|(r, _)| r.keys());
    for pair in all.windows(2) {
        let ((a, fa), (b, fb)) = (pair[0], pair[1]);
        if b.keys().0 <= a.keys().1 {
            return Err(GeoError::Overlap {
                file: files[fb].name.clone(),
                line: b.line,
                other_file: files[fa].name.clone(),
                other_line: a.line,
            });
        }
    }
    Ok(GeoRanges(all.into_iter().map(|(r, _)| *r).collect()))
}

/// A closed range of addresses of one family: what a blocked country's
/// ranges become before the firewall cuts them into networks (`geo4_LEN`, `geo6_LEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddrRange {
    /// The first address (IPv4 as itself, never IPv4-mapped).
    pub lo: IpAddr,
    /// The last address, of the same family.
    pub hi: IpAddr,
}

impl AddrRange {
    /// True for an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        self.lo.is_ipv4()
    }

    /// True when `ip` lies within the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let key = |a| u128::from_be_bytes(addr::key_of(addr::canonical(a)));
        (key(self.lo)..=key(self.hi)).contains(&key(ip))
    }

    /// The fewest CIDR networks covering exactly this range (what sshd's
    /// `Match Address` takes).
    pub fn networks(&self) -> Vec<IpNet> {
        match (self.lo, self.hi) {
            (IpAddr::V4(lo), IpAddr::V4(hi)) => {
                cidr_cover(u32::from(lo).into(), u32::from(hi).into(), 32)
                    .into_iter()
                    .map(|(start, len)| {
                        let start = Ipv4Addr::from(u32::try_from(start).unwrap_or(u32::MAX));
                        IpNet::V4(Ipv4Net::new_assert(start, len))
                    })
                    .collect()
            }
            (IpAddr::V6(lo), IpAddr::V6(hi)) => cidr_cover(lo.into(), hi.into(), 128)
                .into_iter()
                .map(|(start, len)| IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(start), len)))
                .collect(),
            // Never built: ranges come from `coalesce`, one family each.
            _ => Vec::new(),
        }
    }
}

/// The offset of a block's last address: 2^size_log − 1.
fn last_offset(size_log: u32) -> u128 {
    u128::MAX.checked_shr(128 - size_log).unwrap_or(0)
}

/// Aligned blocks `(start, prefix length)` covering `lo..=hi` in an
/// address space of `bits` bits, largest first at each step.
fn cidr_cover(mut lo: u128, hi: u128, bits: u8) -> Vec<(u128, u8)> {
    let mut blocks = Vec::new();
    while lo <= hi {
        // The largest block aligned at `lo` that ends at or before `hi`.
        let mut size_log = lo.trailing_zeros().min(u32::from(bits));
        while size_log > 0 && hi - lo < last_offset(size_log) {
            size_log -= 1;
        }
        // size_log ≤ bits ≤ 128, so the prefix length fits a u8.
        blocks.push((lo, bits - size_log as u8));
        match lo.checked_add(last_offset(size_log)) {
            Some(last) if last < hi => lo = last + 1,
            _ => break,
        }
    }
    blocks
}

/// Coalesces ranges given as store keys (see [`addr::key_of`]) into the
/// fewest ranges: overlapping and adjacent ones become one, but never
/// across the IPv4 / IPv6 boundary. Sorts its input first.
pub fn coalesce(keys: impl IntoIterator<Item = ([u8; 16], [u8; 16])>) -> Vec<AddrRange> {
    let mut sorted: Vec<(u128, u128)> = keys
        .into_iter()
        .flat_map(|(lo, hi)| split_families(u128::from_be_bytes(lo), u128::from_be_bytes(hi)))
        .collect();
    sorted.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(sorted.len());
    for (lo, hi) in sorted {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) && is_v4_key(lo) == is_v4_key(last.0) => {
                last.1 = last.1.max(hi);
            }
            _ => merged.push((lo, hi)),
        }
    }
    merged
        .into_iter()
        .map(|(lo, hi)| AddrRange {
            lo: address_of_key(lo),
            hi: address_of_key(hi),
        })
        .collect()
}

/// The IPv4-mapped block `::ffff:0:0/96`, where IPv4 keys live.
const V4_KEYS: std::ops::RangeInclusive<u128> = 0xffff_0000_0000..=0xffff_ffff_ffff;

fn is_v4_key(key: u128) -> bool {
    V4_KEYS.contains(&key)
}

/// A range of keys cut where it enters or leaves the IPv4 block (an odd
/// CSV range such as `::1-::ffff:1.2.3.4` would otherwise mix families).
fn split_families(lo: u128, hi: u128) -> Vec<(u128, u128)> {
    let (start, end) = (*V4_KEYS.start(), *V4_KEYS.end());
    let cuts = [
        (lo, hi.min(start - 1)),
        (lo.max(start), hi.min(end)),
        (lo.max(end + 1), hi),
    ];
    cuts.into_iter().filter(|(a, b)| a <= b).collect()
}

fn address_of_key(key: u128) -> IpAddr {
    addr::canonical(IpAddr::V6(Ipv6Addr::from(key)))
}

#[cfg(test)]
mod tests;

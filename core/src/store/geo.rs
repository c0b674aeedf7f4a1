//! Country data in the store (`geo_ranges`, and `geo.*` keys in `meta`):
//! imported whole by `guardctl geo import`, looked up by address; and the
//! blocked countries (`geo_blocks`), whose ranges the firewall drops.
//!
//! Ranges are disjoint (see [`crate::geo::merge`]), keyed like bans (16
//! bytes, IPv4 as `::ffff:a.b.c.d`): an address's range is the one with the
//! greatest `lo` at or below it, if its `hi` reaches the address.
//!
//! Every write that changes what the firewall drops (an import, a block, an
//! unblock) bumps `meta` key [`MetaKey::GeoRevision`] in the same transaction: the
//! daemon compares it, one row, instead of re-reading the ranges each pass.

use super::{MetaKey, Store, StoreError, upsert_meta};
use crate::addr;
use crate::geo::{AddrRange, Country, GeoRanges};
use crate::time::Timestamp;
use rusqlite::{OptionalExtension, params};
use std::net::IpAddr;
use std::time::Duration;

/// One blocked country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedCountry {
    /// Its code.
    pub country: String,
    /// When it was blocked.
    pub since: Timestamp,
    /// How many of the imported ranges are its (0 when the data has none).
    pub ranges: u64,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeoImport {
    /// IPv4 ranges.
    pub ipv4_ranges: u64,
    /// IPv6 ranges.
    pub ipv6_ranges: u64,
    /// Distinct countries.
    pub countries: u64,
}

/// What the last import was, as recorded in `meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeoImported {
    /// The files of the last import.
    pub sources: Vec<String>,
    /// When they were imported.
    pub imported: Option<Timestamp>,
    /// IPv4 ranges.
    pub ipv4_ranges: u64,
    /// IPv6 ranges.
    pub ipv6_ranges: u64,
}

impl Store {
    /// Replaces all country data with `ranges` from the files `sources`, in
    /// one transaction: readers see the old data or the new, never a mix.
    pub fn import_geo(
        &mut self,
        ranges: &GeoRanges,
        sources: &[String],
        now: Timestamp,
    ) -> Result<GeoImport, StoreError> {
        // Each row is a few thousand VM steps: allow for them beyond the
        // usual statement deadline (about 1 s per 10,000 rows, generously).
        let rows = ranges.ranges().len() as u64;
        let budget = self.statement_budget() + Duration::from_millis(rows / 10);
        let (v4, v6) = ranges.family_counts();
        self.write_within(budget, |tx| {
            tx.execute("DELETE FROM geo_ranges", [])?;
            let mut insert =
                tx.prepare("INSERT INTO geo_ranges (lo, hi, country) VALUES (?1, ?2, ?3)")?;
            for r in ranges.ranges() {
                let (lo, hi) = r.keys();
                insert.execute(params![lo, hi, r.country.as_str()])?;
            }
            upsert_meta(tx, MetaKey::GeoSources, &sources.join("\n"))?;
            upsert_meta(tx, MetaKey::GeoImported, &now.to_string())?;
            upsert_meta(tx, MetaKey::GeoIpv4Ranges, &v4.to_string())?;
            upsert_meta(tx, MetaKey::GeoIpv6Ranges, &v6.to_string())?;
            bump_revision(tx)?;
            let countries: u64 =
                tx.query_row("SELECT count(DISTINCT country) FROM geo_ranges", [], |r| {
                    r.get(0)
                })?;
            Ok(GeoImport {
                ipv4_ranges: v4,
                ipv6_ranges: v6,
                countries,
            })
        })
    }

    /// The country of `ip`, if a range holds it.
    pub fn geo_lookup(&self, ip: IpAddr) -> Result<Option<String>, StoreError> {
        country_of(self.conn(), ip)
    }

    /// The networks of `countries` (as CIDRs): what `[geo] keyonly` makes
    /// key-only.
    pub fn geo_networks_of(&self, countries: &[Country]) -> Result<Vec<ipnet::IpNet>, StoreError> {
        let ranges = self.geo_ranges_of(countries)?;
        Ok(ranges.iter().flat_map(|range| range.networks()).collect())
    }

    /// The ranges of `countries`, coalesced: what `[geo] keyonly` makes
    /// key-only. Empty for no countries.
    pub fn geo_ranges_of(&self, countries: &[Country]) -> Result<Vec<AddrRange>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT lo, hi FROM geo_ranges WHERE country = ?1")?;
        let mut keys = Vec::new();
        for country in countries {
            let rows = stmt.query_map([country.as_str()], |r| {
                Ok((key(r.get_ref(0)?)?, key(r.get_ref(1)?)?))
            })?;
            for row in rows {
                keys.push(row?);
            }
        }
        Ok(crate::geo::coalesce(keys))
    }

    /// True when country data has been imported.
    pub fn has_geo(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM geo_ranges)", [], |r| r.get(0))?)
    }

    /// What the last import was: a few `meta` rows, no scan of the ranges.
    pub fn geo_imported(&self) -> Result<GeoImported, StoreError> {
        let number = |key| -> Result<Option<i64>, StoreError> {
            Ok(self.meta(key)?.and_then(|v| v.parse().ok()))
        };
        Ok(GeoImported {
            sources: self
                .meta(MetaKey::GeoSources)?
                .map(|s| s.lines().map(str::to_owned).collect())
                .unwrap_or_default(),
            imported: number(MetaKey::GeoImported)?,
            ipv4_ranges: number(MetaKey::GeoIpv4Ranges)?.unwrap_or(0).unsigned_abs(),
            ipv6_ranges: number(MetaKey::GeoIpv6Ranges)?.unwrap_or(0).unsigned_abs(),
        })
    }

    /// True when the imported data has ranges for `country`.
    pub fn geo_has_country(&self, country: Country) -> Result<bool, StoreError> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM geo_ranges WHERE country = ?1)",
            [country.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Blocks `countries` (those not blocked yet) and returns them; bumps
    /// the revision when any was new.
    pub fn geo_block(
        &mut self,
        countries: &[Country],
        now: Timestamp,
    ) -> Result<Vec<Country>, StoreError> {
        self.write(|tx| {
            let mut insert =
                tx.prepare("INSERT OR IGNORE INTO geo_blocks (country, since) VALUES (?1, ?2)")?;
            let mut added = Vec::new();
            for c in countries {
                if insert.execute(params![c.as_str(), now])? == 1 {
                    added.push(*c);
                }
            }
            if !added.is_empty() {
                bump_revision(tx)?;
            }
            Ok(added)
        })
    }

    /// Unblocks `countries` and returns those that were blocked; bumps the
    /// revision when any was.
    pub fn geo_unblock(&mut self, countries: &[Country]) -> Result<Vec<Country>, StoreError> {
        self.write(|tx| {
            let mut delete = tx.prepare("DELETE FROM geo_blocks WHERE country = ?1")?;
            let mut removed = Vec::new();
            for c in countries {
                if delete.execute([c.as_str()])? == 1 {
                    removed.push(*c);
                }
            }
            if !removed.is_empty() {
                bump_revision(tx)?;
            }
            Ok(removed)
        })
    }

    /// The blocked countries, by code, with their range counts (one pass
    /// over the ranges).
    pub fn geo_blocked(&self) -> Result<Vec<BlockedCountry>, StoreError> {
        let counts: std::collections::HashMap<String, u64> = self
            .conn()
            .prepare(
                "SELECT country, count(*) FROM geo_ranges
                 WHERE country IN (SELECT country FROM geo_blocks) GROUP BY country",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut stmt = self
            .conn()
            .prepare("SELECT country, since FROM geo_blocks ORDER BY country")?;
        let rows = stmt.query_map([], |r| {
            let country: String = r.get(0)?;
            Ok(BlockedCountry {
                ranges: counts.get(&country).copied().unwrap_or(0),
                country,
                since: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The ranges of every blocked country, adjacent and overlapping ones
    /// coalesced: what the firewall's `geo4_*` and `geo6_*` sets hold, as networks.
    pub fn geo_blocked_ranges(&self) -> Result<Vec<AddrRange>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT lo, hi FROM geo_ranges
             WHERE country IN (SELECT country FROM geo_blocks) ORDER BY lo",
        )?;
        let keys = stmt
            .query_map([], |r| Ok((key(r.get_ref(0)?)?, key(r.get_ref(1)?)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::geo::coalesce(keys))
    }

    /// The counter bumped by every import, block and unblock (0 before any).
    pub fn geo_revision(&self) -> Result<i64, StoreError> {
        Ok(self
            .meta(MetaKey::GeoRevision)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}

/// The country of `ip` on `conn` (a store or a transaction), if a range
/// holds it: one indexed read.
pub(crate) fn country_of(
    conn: &rusqlite::Connection,
    ip: IpAddr,
) -> Result<Option<String>, StoreError> {
    let key = addr::key_of(addr::canonical(ip));
    let found: Option<(Vec<u8>, String)> = conn
        .prepare_cached(
            "SELECT hi, country FROM geo_ranges WHERE lo <= ?1 ORDER BY lo DESC LIMIT 1",
        )?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(found.and_then(|(hi, country)| (hi.as_slice() >= key.as_slice()).then_some(country)))
}

/// Bumps [`MetaKey::GeoRevision`] inside a transaction.
fn bump_revision(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [MetaKey::GeoRevision.as_str()],
    )?;
    Ok(())
}

/// A 16-byte range key as stored.
fn key(value: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<[u8; 16]> {
    let blob = value.as_blob()?;
    blob.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            blob.len(),
            rusqlite::types::Type::Blob,
            "a range key is not 16 bytes".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo;
    use crate::store::test_support::TempStore;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ranges(files: &[(&str, &str)]) -> GeoRanges {
        let parsed: Vec<_> = files
            .iter()
            .map(|(name, data)| geo::parse(name, data.as_bytes()).unwrap())
            .collect();
        geo::merge(&parsed).unwrap()
    }

    const V4: &str = "16777216,16777471,AU\n134744064,134744319,US\n3238002688,3238008831,NL\n";
    const V6: &str = "2001:4860::,2001:4860:ffff:ffff:ffff:ffff:ffff:ffff,US\n";

    #[test]
    fn import_then_lookup_at_edges_and_gaps() {
        let t = TempStore::new("geo-lookup");
        let mut store = t.open();
        assert!(!store.has_geo().unwrap());
        assert_eq!(store.geo_lookup(ip("8.8.8.8")).unwrap(), None);
        let names = vec!["geoip".to_owned(), "geoip6".to_owned()];
        let done = store
            .import_geo(&ranges(&[("geoip", V4), ("geoip6", V6)]), &names, 1000)
            .unwrap();
        assert_eq!(
            (done.ipv4_ranges, done.ipv6_ranges, done.countries),
            (3, 1, 3)
        );
        let cases = [
            ("1.0.0.0", Some("AU")),
            ("1.0.0.255", Some("AU")),
            ("1.0.1.0", None),
            ("0.255.255.255", None),
            ("8.8.8.8", Some("US")),
            ("::ffff:8.8.8.8", Some("US")),
            ("193.0.6.139", Some("NL")),
            ("255.255.255.255", None),
            ("2001:4860:4860::8888", Some("US")),
            ("2001:4861::", None),
            ("::1", None),
        ];
        for (addr, country) in cases {
            assert_eq!(
                store.geo_lookup(ip(addr)).unwrap().as_deref(),
                country,
                "{addr}"
            );
        }
        let summary = store.geo_imported().unwrap();
        assert_eq!(summary.sources, names);
        assert_eq!(summary.imported, Some(1000));
        assert_eq!((summary.ipv4_ranges, summary.ipv6_ranges), (3, 1));
    }

    #[test]
    fn import_replaces_everything() {
        let t = TempStore::new("geo-replace");
        let mut store = t.open();
        store
            .import_geo(&ranges(&[("geoip", V4), ("geoip6", V6)]), &[], 1)
            .unwrap();
        store
            .import_geo(
                &ranges(&[("new", "134744064,134744319,DE\n")]),
                &["new".into()],
                2,
            )
            .unwrap();
        assert_eq!(
            store.geo_lookup(ip("8.8.8.8")).unwrap().as_deref(),
            Some("DE")
        );
        assert_eq!(store.geo_lookup(ip("1.0.0.1")).unwrap(), None);
        assert_eq!(store.geo_lookup(ip("2001:4860::1")).unwrap(), None);
        let summary = store.geo_imported().unwrap();
        assert!(store.geo_has_country(cc("DE")).unwrap());
        assert!(
            !store.geo_has_country(cc("US")).unwrap(),
            "the old data is gone"
        );
        assert_eq!((summary.ipv4_ranges, summary.ipv6_ranges), (1, 0));
    }

    fn cc(code: &str) -> Country {
        Country::parse(code).unwrap().unwrap()
    }

    #[test]
    fn block_unblock_list_and_the_revision() {
        let t = TempStore::new("geo-block");
        let mut store = t.open();
        assert_eq!(store.geo_revision().unwrap(), 0);
        // Two NL ranges that touch, a US one between two others, one IPv6.
        let data = "1.0.0.0,1.0.0.255,NL\n1.0.1.0,1.0.1.255,NL\n1.0.2.0,1.0.2.255,US\n\
                    1.0.3.0,1.0.3.255,NL\n2001:db8::,2001:db8::ffff,NL\n";
        store
            .import_geo(&ranges(&[("x.csv", data)]), &[], 1)
            .unwrap();
        assert_eq!(store.geo_revision().unwrap(), 1, "an import bumps it");
        assert!(store.geo_has_country(cc("NL")).unwrap());
        assert!(!store.geo_has_country(cc("DE")).unwrap());
        assert!(store.geo_blocked_ranges().unwrap().is_empty());

        let added = store.geo_block(&[cc("NL"), cc("NL")], 50).unwrap();
        assert_eq!(added, [cc("NL")]);
        assert_eq!(store.geo_revision().unwrap(), 2);
        assert_eq!(
            store.geo_block(&[cc("NL")], 60).unwrap(),
            [],
            "already blocked"
        );
        assert_eq!(store.geo_revision().unwrap(), 2, "nothing changed");
        let shown = |s: &Store| -> Vec<String> {
            s.geo_blocked_ranges()
                .unwrap()
                .iter()
                .map(|r| format!("{}-{}", r.lo, r.hi))
                .collect()
        };
        assert_eq!(
            shown(&store),
            [
                "1.0.0.0-1.0.1.255",
                "1.0.3.0-1.0.3.255",
                "2001:db8::-2001:db8::ffff"
            ]
        );
        store.geo_block(&[cc("US")], 70).unwrap();
        assert_eq!(
            shown(&store),
            ["1.0.0.0-1.0.3.255", "2001:db8::-2001:db8::ffff"],
            "US fills the gap"
        );
        let listed = store.geo_blocked().unwrap();
        let summary: Vec<(&str, i64, u64)> = listed
            .iter()
            .map(|b| (b.country.as_str(), b.since, b.ranges))
            .collect();
        assert_eq!(summary, [("NL", 50, 4), ("US", 70, 1)]);

        let removed = store.geo_unblock(&[cc("NL"), cc("DE")]).unwrap();
        assert_eq!(removed, [cc("NL")]);
        assert_eq!(store.geo_revision().unwrap(), 4);
        assert_eq!(shown(&store), ["1.0.2.0-1.0.2.255"]);
        assert_eq!(store.geo_unblock(&[cc("DE")]).unwrap(), []);
        assert_eq!(store.geo_revision().unwrap(), 4);

        // A new import without US keeps the block (0 ranges) and bumps.
        store
            .import_geo(&ranges(&[("y.csv", "9.9.9.0,9.9.9.255,CH\n")]), &[], 2)
            .unwrap();
        assert_eq!(store.geo_revision().unwrap(), 5);
        assert_eq!(store.geo_blocked().unwrap()[0].ranges, 0);
        assert!(store.geo_blocked_ranges().unwrap().is_empty());
    }

    #[test]
    fn a_large_import_is_quick() {
        let t = TempStore::new("geo-large");
        let mut store = t.open();
        let data: String = (0..200_000u32)
            .map(|i| {
                format!(
                    "{},{},{}\n",
                    i * 256,
                    i * 256 + 255,
                    ["US", "NL", "DE"][i as usize % 3]
                )
            })
            .collect();
        let big = ranges(&[("big", &data)]);
        let start = std::time::Instant::now();
        let done = store.import_geo(&big, &["big".into()], 1).unwrap();
        assert_eq!(done.ipv4_ranges, 200_000);
        // Generous for a debug build on a slow machine; release takes ~0.3 s.
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            store.geo_lookup(ip("0.3.13.64")).unwrap().as_deref(),
            Some("NL")
        );
    }
}

//! The row-level queries the store's modules share: reading a ban row,
//! "networks containing this address" as an indexed lookup, ending a ban
//! that ran out, and clearing a source's live failures.

use super::StoreError;
use super::ban_record::{BanRecord, FleetDecision};
use crate::addr;
use rusqlite::{Connection, Row, Transaction};
use std::net::IpAddr;

pub(crate) const BAN_COLUMNS: &str = "id, source, since, expires, ended, end_reason, reason, origin, level, failures, scope, \
     decision_id, decision_origin, scenario";

pub(crate) fn ban_from_row(row: &Row<'_>) -> rusqlite::Result<BanRecord> {
    ban_from_row_offset(row, 0)
}

/// A ban row whose [`BAN_COLUMNS`] start at column `at` (after a join's own).
pub(crate) fn ban_from_row_offset(row: &Row<'_>, at: usize) -> rusqlite::Result<BanRecord> {
    Ok(BanRecord {
        id: row.get(at)?,
        source: row.get(at + 1)?,
        since: row.get(at + 2)?,
        expires: row.get(at + 3)?,
        ended: row.get(at + 4)?,
        end_reason: row.get(at + 5)?,
        reason: row.get(at + 6)?,
        origin: row.get(at + 7)?,
        level: row.get(at + 8)?,
        failures: row.get(at + 9)?,
        scope: row.get(at + 10)?,
        fleet: match row.get::<_, Option<i64>>(at + 11)? {
            Some(id) => Some(Box::new(FleetDecision {
                id,
                origin: row.get::<_, Option<String>>(at + 12)?.unwrap_or_default(),
                scenario: row.get::<_, Option<String>>(at + 13)?.unwrap_or_default(),
            })),
            None => None,
        },
    })
}

/// `lo IN (?2, …) AND hi >= ?1`: networks (of any prefix) that contain `?1`.
pub(crate) fn containment_clause(candidates: usize) -> String {
    let list: Vec<String> = (2..candidates + 2).map(|i| format!("?{i}")).collect();
    format!("lo IN ({}) AND hi >= ?1", list.join(", "))
}

/// Parameters for [`containment_clause`]: the address's key, then every candidate network key.
pub(crate) fn containment_params(ip: IpAddr) -> Vec<[u8; 16]> {
    let mut keys = vec![addr::key_of(addr::canonical(ip))];
    keys.extend(addr::containing_network_keys(ip));
    keys
}

/// Open (not yet ended) bans whose network contains `ip`, expired or not.
pub(crate) fn open_bans_containing(
    conn: &Connection,
    ip: IpAddr,
) -> Result<Vec<BanRecord>, StoreError> {
    let keys = containment_params(ip);
    let sql = format!(
        "SELECT {BAN_COLUMNS} FROM bans WHERE ended IS NULL AND {}",
        containment_clause(keys.len() - 1)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(keys.iter()), ban_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks an open ban that has run out as ended at its expiry.
pub(crate) fn mark_expired(tx: &Transaction<'_>, ban: &BanRecord) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE bans SET ended = expires, end_reason = 'expired' WHERE id = ?1 AND ended IS NULL",
        [ban.id],
    )?;
    Ok(())
}

/// A ban or an unban starts the source again from zero failures. (The
/// partial index by name: see `admission::forgive`.)
pub(crate) fn consume_failures(tx: &Transaction<'_>, source: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE attempts INDEXED BY attempts_live SET live = 0 WHERE source = ?1 AND live = 1",
    )?
    .execute([source])?;
    Ok(())
}

//! The allow list kept in the store (`guardctl allow add|remove|list`).
//! The config's `allow` list is checked first, without the store.

use super::lookup::{containment_clause, containment_params};
use super::{Store, StoreError};
use crate::addr;
use crate::config::Config;
use crate::time::Timestamp;
use ipnet::IpNet;
use rusqlite::{Connection, OptionalExtension, params};
use std::net::IpAddr;

/// One allowed network in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// The network, as shown.
    pub network: String,
    /// When it was added.
    pub added: Timestamp,
    /// Why, if the admin said.
    pub comment: String,
}

/// The store's allowed network that contains `ip`, if any.
pub(crate) fn allowed_by(conn: &Connection, ip: IpAddr) -> Result<Option<String>, StoreError> {
    let keys = containment_params(ip);
    let sql = format!(
        "SELECT network FROM allow WHERE {} LIMIT 1",
        containment_clause(keys.len() - 1)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(stmt
        .query_row(rusqlite::params_from_iter(keys.iter()), |r| r.get(0))
        .optional()?)
}

impl Store {
    /// The store's allowed network containing `ip`, if any.
    pub fn allowed_by(&self, ip: IpAddr) -> Result<Option<String>, StoreError> {
        allowed_by(self.conn(), ip)
    }

    /// Adds `net` to the allow list and lifts the open bans inside it.
    /// Returns false if it was there already, and the sources whose bans were lifted.
    pub fn allow_add(
        &mut self,
        net: &IpNet,
        comment: &str,
        now: Timestamp,
    ) -> Result<(bool, Vec<String>), StoreError> {
        self.write(|tx| {
            let (lo, hi) = addr::range_keys(net);
            let added = tx.execute(
                "INSERT OR IGNORE INTO allow (network, lo, hi, added, comment) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![addr::display(net), lo, hi, now, comment],
            )? == 1;
            let mut stmt = tx.prepare(
                "UPDATE bans SET ended = ?1, end_reason = 'allowed'
                 WHERE ended IS NULL AND lo >= ?2 AND hi <= ?3 RETURNING source",
            )?;
            let lifted = stmt
                .query_map(params![now, lo, hi], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok((added, lifted))
        })
    }

    /// Removes `net` from the allow list. Returns false if it was not there.
    pub fn allow_remove(&mut self, net: &IpNet) -> Result<bool, StoreError> {
        self.write(|tx| {
            Ok(tx.execute("DELETE FROM allow WHERE network = ?1", [addr::display(net)])? == 1)
        })
    }

    /// Every allowed network: the config's `allow`, then the store's list.
    /// Never banned, never firewalled, never key-only.
    pub fn allowed_networks(&self, config: &Config) -> Result<Vec<IpNet>, StoreError> {
        let mut allowed: Vec<IpNet> = config.allow.iter().map(|c| c.0).collect();
        for entry in self.allow_list()? {
            allowed.extend(addr::parse_target(&entry.network).ok());
        }
        Ok(allowed)
    }

    /// The store's allow list, in address order.
    pub fn allow_list(&self) -> Result<Vec<AllowEntry>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare("SELECT network, added, comment FROM allow ORDER BY lo, hi")?;
        let rows = stmt.query_map([], |r| {
            Ok(AllowEntry {
                network: r.get(0)?,
                added: r.get(1)?,
                comment: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

//! What the daemon reads to keep the firewall in step: the active bans in
//! their lightest form, and the change log (`ban_changes`, filled by
//! triggers) that says which sources changed since its last pass.
//!
//! Reading only what changed keeps one new ban cheap with 100,000 in place.
//! A bulk writer (a fleet pull) runs with triggers off and logs its own
//! changes through [`log_changes`]: each source, or one [`RELOAD_MARK`]
//! when it touched more than [`LOG_EACH_UP_TO`].

use super::{Store, StoreError};
use crate::time::Timestamp;
use rusqlite::params;

/// An active ban as a firewall needs it: no reason, no history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBan {
    /// The banned source or network, as stored (`203.0.113.7`, `2001:db8::/64`).
    pub source: String,
    /// When it ends (`None`: permanent).
    pub expires: Option<Timestamp>,
    /// Scope `all`: every port, not only the guarded ones.
    pub all_ports: bool,
    /// Pulled from the fleet: it drops new connections only, so a
    /// decision made elsewhere never cuts an SSH session open here.
    pub new_only: bool,
}

/// Sources whose bans changed after a revision of the change log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BanChanges {
    /// The newest revision read (pass it to the next call).
    pub rev: i64,
    /// Each changed source once, in no particular order.
    pub sources: Vec<String>,
    /// A bulk write changed too many sources to name: read everything.
    pub reload: bool,
}

/// The change log's entry for "too many sources changed to name them".
pub const RELOAD_MARK: &str = "*";

/// Sources a bulk write names one by one; beyond this it logs one
/// [`RELOAD_MARK`] (the reader would rebuild the firewall anyway).
pub const LOG_EACH_UP_TO: usize = 1_000;

/// Logs `sources` as changed, in the caller's transaction: what the
/// triggers would have written, for a writer that turned them off.
pub(crate) fn log_changes(
    tx: &rusqlite::Transaction<'_>,
    sources: &[String],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached("INSERT INTO ban_changes (source) VALUES (?1)")?;
    if sources.len() > LOG_EACH_UP_TO {
        insert.execute([RELOAD_MARK])?;
        return Ok(());
    }
    for source in sources {
        insert.execute([source])?;
    }
    Ok(())
}

const ACTIVE: &str = "ended IS NULL AND (expires IS NULL OR expires > ?1)";

impl Store {
    /// The change log's newest revision (0 when nothing was ever logged).
    /// Read it *before* loading the bans, so a change in between is seen twice
    /// rather than never.
    pub fn ban_revision(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ban_changes'), 0)",
            [],
            |r| r.get(0),
        )?)
    }

    /// The sources whose bans were created, changed or deleted after `rev`.
    pub fn ban_changes_since(&self, rev: i64) -> Result<BanChanges, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT max(rev), source FROM ban_changes WHERE rev > ?1 GROUP BY source",
        )?;
        let mut changes = BanChanges {
            rev,
            ..BanChanges::default()
        };
        let mut rows = stmt.query([rev])?;
        while let Some(row) = rows.next()? {
            changes.rev = changes.rev.max(row.get(0)?);
            let source: String = row.get(1)?;
            if source == RELOAD_MARK {
                changes.reload = true;
            } else {
                changes.sources.push(source);
            }
        }
        Ok(changes)
    }

    /// Forgets the change log up to `rev` (the reader has handled it).
    pub fn prune_ban_changes(&mut self, rev: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM ban_changes WHERE rev <= ?1", [rev])?;
            Ok(())
        })
    }

    /// Every ban that refuses logins at `now`, each passed through `keep`
    /// as it is read (so 100,000 bans never sit in memory twice).
    pub fn active_ban_entries<T>(
        &self,
        now: Timestamp,
        mut keep: impl FnMut(ActiveBan) -> Option<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT source, expires, scope, origin FROM bans WHERE {ACTIVE}"
        ))?;
        let mut rows = stmt.query([now])?;
        let mut kept = Vec::new();
        while let Some(row) = rows.next()? {
            kept.extend(keep(active_from_row(row)?));
        }
        Ok(kept)
    }

    /// The bans of one source that refuse logins at `now`.
    pub fn active_bans_of(
        &self,
        source: &str,
        now: Timestamp,
    ) -> Result<Vec<ActiveBan>, StoreError> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT source, expires, scope, origin FROM bans WHERE source = ?2 AND {ACTIVE}"
        ))?;
        let rows = stmt.query_map(params![now, source], active_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn active_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ActiveBan> {
    Ok(ActiveBan {
        source: row.get(0)?,
        expires: row.get(1)?,
        all_ports: row.get::<_, String>(2)? == "all",
        new_only: row.get::<_, String>(3)? == "crowdsec",
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::store::bans::{BanLength, NewBan};
    use crate::store::{Access, Store};
    use std::time::Duration;

    #[test]
    fn the_change_log_names_each_changed_source_once() {
        let dir = std::env::temp_dir().join(format!("ag-changes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.db");
        Store::init(&path).unwrap();
        let mut store = Store::open(&path, Access::Write, Duration::from_secs(1)).unwrap();
        let config = Config::default();
        let start = store.ban_revision().unwrap();
        let net = |s: &str| crate::addr::parse_target(s).unwrap();
        for s in ["203.0.113.7", "198.51.100.0/24", "203.0.113.7"] {
            let new = NewBan {
                net: net(s),
                length: BanLength::For(Duration::from_secs(600)),
                reason: "test",
                origin: crate::policy::Origin::Manual,
                failures: 0,
            };
            store.ban(&config, &new, 100).unwrap();
        }
        let changes = store.ban_changes_since(start).unwrap();
        let mut sources = changes.sources.clone();
        sources.sort();
        assert_eq!(sources, ["198.51.100.0/24", "203.0.113.7"]);
        assert!(changes.rev > start);
        assert_eq!(
            store.ban_changes_since(changes.rev).unwrap().sources.len(),
            0
        );

        store.prune_ban_changes(changes.rev).unwrap();
        store.unban(Some(&net("203.0.113.7")), false, 200).unwrap();
        let after = store.ban_changes_since(changes.rev).unwrap();
        assert_eq!(after.sources, ["203.0.113.7"]);
        assert!(
            after.rev > changes.rev,
            "revisions keep growing after a prune"
        );
        assert_eq!(store.active_bans_of("203.0.113.7", 200).unwrap(), []);
        let left = store.active_ban_entries(200, Some).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].source, "198.51.100.0/24");
        assert_eq!(left[0].expires, Some(700));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

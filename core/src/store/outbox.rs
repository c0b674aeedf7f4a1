//! The push outbox: bans this host made, and their early ends, waiting to
//! reach the fleet's LAPI. Triggers on `bans` fill it (every writer, the
//! PAM module included) while `meta` key `crowdsec.push` is '1'; the
//! daemon's link delivers it in order and deletes what the LAPI took, so
//! a LAPI that is down, a killed daemon or a reboot loses nothing.

use super::ban_record::BanRecord;
use super::lookup::{BAN_COLUMNS, ban_from_row_offset};
use super::{MetaKey, Store, StoreError, upsert_meta};
use rusqlite::params;

/// What an outbox entry asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxAction {
    /// Tell the fleet about this ban.
    Ban,
    /// It was lifted here (unban, allow): delete its decision there.
    Unban,
}

/// One entry, with the ban it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// The entry's id.
    pub id: i64,
    /// Ban or unban.
    pub action: OutboxAction,
    /// Earlier deliveries that failed (one may have reached the LAPI).
    pub tries: u32,
    /// The ban.
    pub ban: BanRecord,
}

impl Store {
    /// Turns queueing for the fleet on or off (the daemon, at start).
    pub fn set_push(&mut self, on: bool) -> Result<(), StoreError> {
        self.write(|tx| upsert_meta(tx, MetaKey::CrowdsecPush, if on { "1" } else { "0" }))
    }

    /// The oldest `limit` entries; entries whose ban was purged are dropped.
    pub fn outbox_next(&mut self, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM crowdsec_outbox WHERE ban_id NOT IN (SELECT id FROM bans)",
                [],
            )?;
            let columns: Vec<String> = BAN_COLUMNS.split(", ").map(|c| format!("b.{}", c.trim())).collect();
            let sql = format!(
                "SELECT o.id, o.action, o.tries, {} FROM crowdsec_outbox o JOIN bans b ON b.id = o.ban_id
                 ORDER BY o.id LIMIT ?1",
                columns.join(", ")
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([limit], |r| {
                let action: String = r.get(1)?;
                Ok(OutboxItem {
                    id: r.get(0)?,
                    action: if action == "unban" { OutboxAction::Unban } else { OutboxAction::Ban },
                    tries: r.get(2)?,
                    ban: ban_from_row_offset(r, 3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// The entry reached the LAPI: it goes. A ban's decision id there is
    /// kept on the ban (its unban deletes exactly that decision).
    pub fn outbox_delivered(
        &mut self,
        item: &OutboxItem,
        decision: Option<(i64, &str)>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM crowdsec_outbox WHERE id = ?1", [item.id])?;
            if let Some((id, scenario)) = decision {
                tx.execute(
                    "UPDATE bans SET decision_id = ?2, decision_origin = 'authguard', scenario = ?3 WHERE id = ?1",
                    params![item.ban.id, id, scenario],
                )?;
            }
            Ok(())
        })
    }

    /// A delivery failed: counted and kept, for the next pass.
    pub fn outbox_failed(&mut self, item: &OutboxItem, error: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE crowdsec_outbox SET tries = tries + 1, error = ?2 WHERE id = ?1",
                params![item.id, error],
            )?;
            Ok(())
        })
    }

    /// Entries waiting.
    pub fn outbox_depth(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM crowdsec_outbox", [], |r| r.get(0))?)
    }
}

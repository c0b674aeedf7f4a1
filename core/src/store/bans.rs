//! Bans: creating (with escalation), lifting, expiring, listing, and one
//! source's history.

use super::facts::TxFacts;
use super::{Store, StoreError};
use crate::addr;
use crate::config::Config;
use crate::policy::{self, Ledger};
use crate::time::{self, Timestamp};
use ipnet::IpNet;
use rusqlite::{OptionalExtension, params};
use std::net::IpAddr;

pub use super::ban_record::{BanRecord, FleetDecision};
use super::lookup::{
    BAN_COLUMNS, ban_from_row, consume_failures, mark_expired, open_bans_containing,
};
use super::metrics::{delete_attempts, delete_bans};
pub use crate::policy::{BanLength, EndReason, NewBan, Origin};

/// What `ban` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanOutcome {
    /// A new ban was made (and, if it tipped the subnet rule, the subnet's ban).
    Created(BanRecord, Option<BanRecord>),
    /// The source was banned already; its ban now ends as the new one would.
    Updated(BanRecord),
}

/// What `unban` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unbanned {
    /// Sources whose open bans were lifted.
    pub lifted: Vec<String>,
    /// Open bans that contain the address but are for a wider network (not lifted).
    pub covered_by: Vec<String>,
    /// Rows deleted by `--forget` (bans and attempts).
    pub forgotten: usize,
}

/// One attempt as `show` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// When.
    pub at: Timestamp,
    /// The client address (not aggregated).
    pub address: String,
    /// The user name as received (may be any bytes).
    pub user: Vec<u8>,
    /// PAM service.
    pub service: String,
    /// `pending` (no success seen: a failure), `success`, `refused`, `failure`.
    pub outcome: String,
    /// Who saw it (`pam`).
    pub origin: String,
}

/// A source's history for `guardctl show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The source looked up.
    pub source: String,
    /// Its bans, newest first, plus open bans of wider networks that cover it.
    pub bans: Vec<BanRecord>,
    /// Its most recent attempts, newest first.
    pub attempts: Vec<AttemptRecord>,
    /// All attempts on record for it.
    pub total_attempts: u64,
    /// Attempts that currently count toward a ban.
    pub live_failures: u64,
}

impl Store {
    /// Bans `new.net`. If that exact source is banned already, its open ban
    /// is updated to the new length and reason instead of stacking a second.
    pub fn ban(
        &mut self,
        config: &Config,
        new: &NewBan<'_>,
        now: Timestamp,
    ) -> Result<BanOutcome, StoreError> {
        self.write(|tx| {
            let source = addr::display(&new.net);
            let open: Option<BanRecord> = tx
                .query_row(
                    &format!("SELECT {BAN_COLUMNS} FROM bans WHERE source = ?1 AND ended IS NULL ORDER BY since DESC LIMIT 1"),
                    [&source],
                    ban_from_row,
                )
                .optional()?;
            match open {
                Some(ban) if ban.is_active(now) => {
                    let earlier = ban.level.saturating_sub(1);
                    let expires = policy::expiry(&config.policy, new.length, earlier, now);
                    tx.execute(
                        "UPDATE bans SET expires = ?2, reason = ?3 WHERE id = ?1",
                        params![ban.id, expires, new.reason],
                    )?;
                    Ok(BanOutcome::Updated(BanRecord {
                        expires,
                        reason: new.reason.to_owned(),
                        ..ban
                    }))
                }
                stale => {
                    if let Some(ban) = stale {
                        mark_expired(tx, &ban)?;
                    }
                    let mut facts = TxFacts::new(tx);
                    let plan = policy::plan_ban(&mut facts, config, new, now)?;
                    let (ban, subnet) = policy::ban_and_subnet(&mut facts, config, &plan, now)?;
                    Ok(BanOutcome::Created(ban, subnet))
                }
            }
        })
    }

    /// Lifts the open bans of `net` (all open bans when `None`) and clears
    /// their pending failures. With `forget`, also deletes the source's
    /// history (bans and attempts): the "that was me" case.
    pub fn unban(
        &mut self,
        net: Option<&IpNet>,
        forget: bool,
        now: Timestamp,
    ) -> Result<Unbanned, StoreError> {
        self.write(|tx| {
            let mut out = Unbanned::default();
            let lifted_sql = "UPDATE bans SET ended = ?1, end_reason = 'unbanned' WHERE ended IS NULL
                              AND (expires IS NULL OR expires > ?1) AND source = ?2 RETURNING source";
            match net {
                Some(net) => {
                    let source = addr::display(net);
                    let mut stmt = tx.prepare(lifted_sql)?;
                    out.lifted = stmt
                        .query_map(params![now, source], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    consume_failures(tx, &source)?;
                    if forget {
                        // Forgotten rows stay in the metrics' counters.
                        out.forgotten += delete_bans(tx, "source = ?1", [&source])?;
                        out.forgotten += delete_attempts(tx, "source = ?1", [&source])?;
                    }
                    if out.lifted.is_empty() {
                        out.covered_by = open_bans_containing(tx, net.network())?
                            .into_iter()
                            .filter(|b| b.is_active(now) && b.source != source)
                            .map(|b| b.source)
                            .collect();
                    }
                }
                None => {
                    let mut stmt = tx.prepare(
                        "UPDATE bans SET ended = ?1, end_reason = 'unbanned' WHERE ended IS NULL
                         AND (expires IS NULL OR expires > ?1) RETURNING source",
                    )?;
                    out.lifted = stmt.query_map([now], |r| r.get(0))?.collect::<Result<_, _>>()?;
                    tx.execute("UPDATE attempts SET live = 0 WHERE live = 1", [])?;
                    if forget {
                        out.forgotten += delete_bans(tx, "true", [])?;
                        out.forgotten += delete_attempts(tx, "true", [])?;
                    }
                }
            }
            out.lifted.sort();
            Ok(out)
        })
    }

    /// Marks every open ban that has run out as ended. Returns how many.
    pub fn expire_due(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        self.write(|tx| {
            Ok(tx.execute(
                "UPDATE bans SET ended = expires, end_reason = 'expired'
                 WHERE ended IS NULL AND expires IS NOT NULL AND expires <= ?1",
                [now],
            )?)
        })
    }

    /// Deletes up to `limit` attempts and ended bans older than `cutoff`, in
    /// one short transaction (the daemon calls it in a loop, so the write
    /// lock is never held long enough to delay a login). Returns how many.
    pub fn purge_batch(&mut self, cutoff: Timestamp, limit: u32) -> Result<usize, StoreError> {
        self.write(|tx| {
            // What is deleted stays in the metrics' counters.
            let attempts = delete_attempts(
                tx,
                "id IN (SELECT id FROM attempts WHERE at < ?1 LIMIT ?2)",
                params![cutoff, limit],
            )?;
            let bans = delete_bans(
                tx,
                "id IN (SELECT id FROM bans WHERE ended IS NOT NULL AND ended < ?1 LIMIT ?2)",
                params![cutoff, limit],
            )?;
            Ok(attempts + bans)
        })
    }

    /// The periodic half of the recidive rule: every source with
    /// `[recidive] bans` bans within the window and no recidive ban among
    /// them gets one now (its open ban, if any, is replaced). Catches what
    /// the check at ban creation cannot: a rule tightened in the config,
    /// bans made before it existed. Returns the new recidive bans.
    pub fn recidive_sweep(
        &mut self,
        config: &Config,
        now: Timestamp,
    ) -> Result<Vec<BanRecord>, StoreError> {
        let r = &config.recidive;
        if r.bans == 0 {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "SELECT source FROM bans WHERE since > ?1 GROUP BY source
                 HAVING COUNT(*) >= ?2 AND SUM(origin = 'recidive') = 0",
            )?;
            let sources: Vec<String> = stmt
                .query_map(params![time::before(now, r.window.0.0), r.bans], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut made = Vec::new();
            for source in sources {
                let Ok(net) = addr::parse_target(&source) else {
                    continue;
                };
                tx.execute(
                    "UPDATE bans SET ended = ?1, end_reason = 'replaced' WHERE source = ?2 AND ended IS NULL",
                    params![now, source],
                )?;
                // Over the rule already, so the policy makes this the recidive ban.
                let new = NewBan { net, length: BanLength::Escalated, reason: "recidive sweep", origin: Origin::Recidive, failures: 0 };
                let mut facts = TxFacts::new(tx);
                let plan = policy::plan_ban(&mut facts, config, &new, now)?;
                made.push(facts.record_ban(&plan, now)?);
            }
            Ok(made)
        })
    }

    /// Bans that refuse logins now, oldest first.
    pub fn active_bans(&self, now: Timestamp) -> Result<Vec<BanRecord>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {BAN_COLUMNS} FROM bans WHERE ended IS NULL AND (expires IS NULL OR expires > ?1) ORDER BY since, id"
        ))?;
        let rows = stmt.query_map([now], ban_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every ban on record, oldest first.
    pub fn all_bans(&self) -> Result<Vec<BanRecord>, StoreError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {BAN_COLUMNS} FROM bans ORDER BY since, id"
        ))?;
        let rows = stmt.query_map([], ban_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The history of `source` (its own bans and attempts), plus the active
    /// bans of wider networks containing `ip`. At most `limit` attempts.
    pub fn history(
        &self,
        source: &IpNet,
        ip: IpAddr,
        limit: u32,
        now: Timestamp,
    ) -> Result<History, StoreError> {
        let name = addr::display(source);
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {BAN_COLUMNS} FROM bans WHERE source = ?1 ORDER BY since DESC, id DESC"
        ))?;
        let mut bans: Vec<BanRecord> = stmt
            .query_map([&name], ban_from_row)?
            .collect::<Result<_, _>>()?;
        for wider in open_bans_containing(conn, ip)? {
            if wider.source != name && wider.is_active(now) {
                bans.push(wider);
            }
        }
        let mut stmt = conn.prepare(
            "SELECT at, address, user, service, outcome, origin FROM attempts
             WHERE source = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
        )?;
        let attempts = stmt
            .query_map(params![name, limit], |r| {
                Ok(AttemptRecord {
                    at: r.get(0)?,
                    address: r.get(1)?,
                    user: r.get(2)?,
                    service: r.get(3)?,
                    outcome: r.get(4)?,
                    origin: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let (total_attempts, live_failures) = conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(live), 0) FROM attempts WHERE source = ?1",
            [&name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(History {
            source: name,
            bans,
            attempts,
            total_attempts,
            live_failures,
        })
    }
}

/// Totals for `guardctl status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bans refusing logins now.
    pub active_bans: u64,
    /// Attempts in the last hour that did not end in success (refusals excluded).
    pub failures_last_hour: u64,
    /// Refused attempts in the last hour.
    pub refused_last_hour: u64,
    /// All attempts on record.
    pub attempts_total: u64,
    /// All bans on record.
    pub bans_total: u64,
    /// Networks in the store's allow list.
    pub allowed: u64,
}

impl Store {
    /// Totals for `guardctl status`.
    pub fn summary(&self, now: Timestamp) -> Result<Summary, StoreError> {
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, StoreError> {
            Ok(self.conn().query_row(sql, p, |r| r.get(0))?)
        };
        let hour_ago = now - 3600;
        Ok(Summary {
            active_bans: one(
                "SELECT COUNT(*) FROM bans WHERE ended IS NULL AND (expires IS NULL OR expires > ?1)",
                &[&now],
            )?,
            failures_last_hour: one(
                "SELECT COUNT(*) FROM attempts WHERE at >= ?1 AND outcome IN ('pending', 'failure')",
                &[&hour_ago],
            )?,
            refused_last_hour: one(
                "SELECT COUNT(*) FROM attempts WHERE at >= ?1 AND outcome = 'refused'",
                &[&hour_ago],
            )?,
            attempts_total: one("SELECT COUNT(*) FROM attempts", &[])?,
            bans_total: one("SELECT COUNT(*) FROM bans", &[])?,
            allowed: one("SELECT COUNT(*) FROM allow", &[])?,
        })
    }
}

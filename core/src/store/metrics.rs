//! The store's figures for `guardctl metrics`: counters that never go
//! down, and the active bans by origin.
//!
//! A counter is the `counters` table (what deleting paths folded in, and
//! events kept nowhere else) plus what the current rows count, read in one
//! statement: a purge or a `--forget` moves rows into `counters` in its
//! own transaction, so a reader sees them on one side or the other, never
//! both and never neither. The labels are the stored words (origin,
//! outcome class, log event kind, end reason): bounded, never an address.

use super::{Store, StoreError};
use crate::time::Timestamp;
use rusqlite::{Params, Transaction, params};
use std::collections::BTreeMap;
use std::time::Duration;

/// A counter the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// Login attempts the PAM module decided, by outcome: `admitted`,
    /// `refused` (under a ban), `keyonly` (a password under key-only).
    Attempts,
    /// sshd log events recorded, by kind.
    LogEvents,
    /// Bans made, by origin.
    BansMade,
    /// Bans ended, by origin and end reason (`expired`, `unbanned`, …).
    BansEnded,
    /// Times sshd was reloaded for a new key-only snippet.
    KeyonlyReloads,
}

impl Counter {
    /// The word in the `counters` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Attempts => "attempts",
            Counter::LogEvents => "log_events",
            Counter::BansMade => "bans_made",
            Counter::BansEnded => "bans_ended",
            Counter::KeyonlyReloads => "keyonly_reloads",
        }
    }

    fn from_word(word: &str) -> Option<Counter> {
        [
            Counter::Attempts,
            Counter::LogEvents,
            Counter::BansMade,
            Counter::BansEnded,
            Counter::KeyonlyReloads,
        ]
        .into_iter()
        .find(|c| c.as_str() == word)
    }
}

/// One counter's value for one pair of labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Which counter.
    pub counter: Counter,
    /// Its first label's value (outcome, kind or origin); empty if none.
    pub first: String,
    /// Its second label's value (a ban's end reason); empty if none.
    pub second: String,
    /// The count.
    pub value: u64,
}

/// What `guardctl metrics` reads from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Every counter with a non-zero value, ordered by counter and labels.
    pub counters: Vec<Tally>,
    /// Bans refusing logins now, by origin.
    pub active_bans: Vec<(String, u64)>,
}

impl Figures {
    /// The value of `counter` for labels `first`, `second` (0 when absent).
    pub fn get(&self, counter: Counter, first: &str, second: &str) -> u64 {
        self.counters
            .iter()
            .find(|t| t.counter == counter && t.first == first && t.second == second)
            .map_or(0, |t| t.value)
    }
}

/// How an attempts row is counted: counter, first label, second label.
/// The same words whether the row is counted live or folded in on delete.
const ATTEMPT_TALLY: &str = "
    CASE WHEN origin = 'sshd-log' THEN 'log_events' ELSE 'attempts' END,
    CASE WHEN origin = 'sshd-log' THEN COALESCE(kind, '')
         WHEN outcome IN ('pending', 'success') THEN 'admitted'
         WHEN kind = 'keyonly' THEN 'keyonly'
         ELSE 'refused' END,
    ''";

/// Reading every row may take longer than a login's deadline allows.
const READ_BUDGET: Duration = Duration::from_secs(60);

impl Store {
    /// The counters and gauges of the store, as of one snapshot each.
    pub fn figures(&self, now: Timestamp) -> Result<Figures, StoreError> {
        self.arm_deadline(READ_BUDGET);
        let figures = self.read_figures(now);
        self.renew_deadline();
        figures
    }

    fn read_figures(&self, now: Timestamp) -> Result<Figures, StoreError> {
        let sql = format!(
            "SELECT metric, first, second, SUM(value) FROM (
                 SELECT metric, first, second, value FROM counters
                 UNION ALL SELECT {ATTEMPT_TALLY}, COUNT(*) FROM attempts GROUP BY 1, 2
                 UNION ALL SELECT 'bans_made', origin, '', COUNT(*) FROM bans GROUP BY origin
                 UNION ALL SELECT 'bans_ended', origin, COALESCE(end_reason, ''), COUNT(*)
                     FROM bans WHERE ended IS NOT NULL GROUP BY origin, end_reason
             ) GROUP BY metric, first, second HAVING SUM(value) > 0 ORDER BY 1, 2, 3"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut counters = Vec::new();
        for row in rows {
            let (metric, first, second, value) = row?;
            // A word a newer build wrote is not this build's to show.
            if let Some(counter) = Counter::from_word(&metric) {
                let value = u64::try_from(value).unwrap_or(0);
                counters.push(Tally {
                    counter,
                    first,
                    second,
                    value,
                });
            }
        }
        counters.sort_by(|a, b| {
            (a.counter, &a.first, &a.second).cmp(&(b.counter, &b.first, &b.second))
        });
        let mut stmt = self.conn().prepare(
            "SELECT origin, COUNT(*) FROM bans WHERE ended IS NULL
             AND (expires IS NULL OR expires > ?1) GROUP BY origin ORDER BY origin",
        )?;
        let active_bans = stmt
            .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(Figures {
            counters,
            active_bans,
        })
    }

    /// Adds `n` to a counter kept only in `counters` (a key-only reload).
    pub fn count(&mut self, counter: Counter, first: &str, n: u64) -> Result<(), StoreError> {
        self.write(|tx| add(tx, counter.as_str(), first, "", n))
    }
}

/// Adds `n` to one counter row inside a transaction.
fn add(
    tx: &Transaction<'_>,
    metric: &str,
    first: &str,
    second: &str,
    n: u64,
) -> Result<(), StoreError> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "INSERT INTO counters (metric, first, second, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (metric, first, second) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![metric, first, second, n])?;
    Ok(())
}

/// Runs a `DELETE … RETURNING metric, first, second` and adds each deleted
/// row to its counter. Returns how many rows it deleted.
fn delete_folding(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    let mut folded: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    let mut deleted = 0;
    {
        let mut stmt = tx.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        while let Some(row) = rows.next()? {
            deleted += 1;
            let key = (row.get(0)?, row.get(1)?, row.get(2)?);
            *folded.entry(key).or_default() += 1;
            // A ban that had ended is also counted as ended.
            if let Some(reason) = row.get::<_, Option<String>>(3).ok().flatten() {
                let key = ("bans_ended".to_owned(), row.get(1)?, reason);
                *folded.entry(key).or_default() += 1;
            }
        }
    }
    for ((metric, first, second), n) in folded {
        add(tx, &metric, &first, &second, n)?;
    }
    Ok(deleted)
}

/// Deletes the attempts rows `filter` (an SQL condition) selects, keeping
/// them in the counters. Returns how many.
pub(crate) fn delete_attempts(
    tx: &Transaction<'_>,
    filter: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    let sql = format!("DELETE FROM attempts WHERE {filter} RETURNING {ATTEMPT_TALLY}, NULL");
    delete_folding(tx, &sql, params)
}

/// Deletes the bans rows `filter` selects, keeping them (made, and ended
/// if they had) in the counters. Returns how many.
pub(crate) fn delete_bans(
    tx: &Transaction<'_>,
    filter: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    let sql = format!(
        "DELETE FROM bans WHERE {filter} RETURNING 'bans_made', origin, '',
         CASE WHEN ended IS NOT NULL THEN COALESCE(end_reason, '') END"
    );
    delete_folding(tx, &sql, params)
}

#[cfg(test)]
mod tests;

//! The fleet's decisions held as bans (origin `crowdsec`): applying a pull
//! from CrowdSec's LAPI. Each call is one short write transaction, so the
//! daemon applies a large pull in chunks and a login never waits behind
//! it for long. The rule that picks which decisions to hold is
//! `policy::fleet`; this module only writes down what it picked.
//!
//! A pull writes with its connection's triggers off: per row they cost
//! more than the insert itself (a 100,000-decision pull took twice as
//! long). What they would do is done here instead: the change log gets
//! the touched sources ([`log_changes`]), and the outbox gets nothing,
//! as its triggers skip pulled bans anyway (no echo).

use super::changes::log_changes;
use super::lookup::consume_failures;
use super::{Store, StoreError};
use crate::addr;
use crate::time::Timestamp;
use ipnet::IpNet;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// One decision to hold as a ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The LAPI's decision id.
    pub decision_id: i64,
    /// The banned address or network.
    pub net: IpNet,
    /// When it ends.
    pub expires: Timestamp,
    /// The decision's own origin (`cscli`, `CAPI`, …).
    pub origin: String,
    /// Its scenario.
    pub scenario: String,
}

/// What applying (a chunk of) a pull did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullApplied {
    /// New bans.
    pub added: usize,
    /// Held decisions whose end moved.
    pub updated: usize,
    /// Decisions this host holds already as a ban of its own that lasts as
    /// long (its own pushed bans, coming back): not held twice.
    pub already_banned: usize,
    /// Held decisions ended (deleted in the LAPI, or gone at a startup pull).
    pub ended: usize,
}

impl PullApplied {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: PullApplied) {
        self.added += other.added;
        self.updated += other.updated;
        self.already_banned += other.already_banned;
        self.ended += other.ended;
    }
}

impl Store {
    /// Holds `new` as bans and ends the held bans of the `deleted` decision
    /// ids, in one transaction.
    pub fn apply_pull(
        &mut self,
        new: &[Pulled],
        deleted: &[i64],
        now: Timestamp,
    ) -> Result<PullApplied, StoreError> {
        self.write_untriggered(|tx, touched| {
            let mut done = PullApplied::default();
            for id in deleted {
                done.ended += end_decision(tx, *id, now, touched)?;
            }
            for pulled in new {
                hold(tx, pulled, now, &mut done, touched)?;
            }
            Ok(done)
        })
    }

    /// A startup pull's reconciliation: ends every held decision the LAPI
    /// no longer has (`current` says no: deleted while this host was not
    /// listening).
    pub fn end_decisions_except(
        &mut self,
        current: impl Fn(i64) -> bool,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        self.write_untriggered(|tx, touched| {
            let held: Vec<i64> = tx
                .prepare(
                    "SELECT decision_id FROM bans WHERE origin = 'crowdsec' AND ended IS NULL",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut ended = 0;
            for id in held.into_iter().filter(|id| !current(*id)) {
                ended += end_decision(tx, id, now, touched)?;
            }
            Ok(ended)
        })
    }

    /// [`Store::write`] with this connection's triggers off; `f` names the
    /// sources whose bans it touched, and they go to the change log.
    fn write_untriggered<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>, &mut Vec<String>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        set_triggers(self.conn(), false)?;
        let result = self.write(|tx| {
            let mut touched = Vec::new();
            let value = f(tx, &mut touched)?;
            log_changes(tx, &touched)?;
            Ok(value)
        });
        // Restored even when the write failed: the connection may write again.
        let restored = set_triggers(self.conn(), true);
        let value = result?;
        restored?;
        Ok(value)
    }

    /// Decisions held as active bans now.
    pub fn held_decisions(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM bans WHERE origin = 'crowdsec' AND ended IS NULL
             AND (expires IS NULL OR expires > ?1)",
            [now],
            |r| r.get(0),
        )?)
    }
}

/// Turns this connection's triggers on or off (`SQLITE_DBCONFIG_ENABLE_TRIGGER`:
/// the connection's own setting, other connections keep theirs).
fn set_triggers(conn: &Connection, on: bool) -> Result<(), StoreError> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, on)?;
    Ok(())
}

fn end_decision(
    tx: &Transaction<'_>,
    id: i64,
    now: Timestamp,
    touched: &mut Vec<String>,
) -> Result<usize, StoreError> {
    let mut ended = tx.prepare_cached(
        "UPDATE bans SET ended = ?2, end_reason = 'deleted'
         WHERE origin = 'crowdsec' AND decision_id = ?1 AND ended IS NULL
         RETURNING source",
    )?;
    let before = touched.len();
    for source in ended.query_map(params![id, now], |r| r.get(0))? {
        touched.push(source?);
    }
    Ok(touched.len() - before)
}

fn hold(
    tx: &Transaction<'_>,
    p: &Pulled,
    now: Timestamp,
    done: &mut PullApplied,
    touched: &mut Vec<String>,
) -> Result<(), StoreError> {
    let source = addr::display(&p.net);
    let held: Option<(i64, Option<Timestamp>)> = tx
        .prepare_cached(
            "SELECT id, expires FROM bans WHERE origin = 'crowdsec' AND decision_id = ?1 AND ended IS NULL",
        )?
        .query_row([p.decision_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((id, expires)) = held {
        if expires != Some(p.expires) {
            tx.prepare_cached("UPDATE bans SET expires = ?2 WHERE id = ?1")?
                .execute(params![id, p.expires])?;
            touched.push(source);
            done.updated += 1;
        }
        return Ok(());
    }
    // One look at the source's bans: how many (its level), and whether one
    // of our own lasts as long (our pushed ban coming back).
    let (earlier, own_lasts): (u32, bool) = tx
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(MAX(ended IS NULL AND origin != 'crowdsec'
                 AND (expires IS NULL OR expires >= ?2)), 0)
             FROM bans WHERE source = ?1",
        )?
        .query_row(params![source, p.expires], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if own_lasts {
        done.already_banned += 1;
        return Ok(());
    }
    let (lo, hi) = addr::range_keys(&p.net);
    let reason = format!("{} ({})", p.scenario, p.origin);
    tx.prepare_cached(
        "INSERT INTO bans (source, lo, hi, since, expires, reason, origin, level, failures, scope,
                           decision_id, decision_origin, scenario)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'crowdsec', ?7, 0, 'ports', ?8, ?9, ?10)",
    )?
    .execute(params![
        source,
        lo,
        hi,
        now,
        p.expires,
        reason,
        earlier.saturating_add(1),
        p.decision_id,
        p.origin,
        p.scenario
    ])?;
    consume_failures(tx, &source)?;
    touched.push(source);
    done.added += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::{EndReason, Origin};
    use crate::store::admission::{Attempt, Decision};
    use crate::store::test_support::TempStore;

    fn pulled(id: i64, net: &str, expires: Timestamp) -> Pulled {
        Pulled {
            decision_id: id,
            net: addr::parse_target(net).unwrap(),
            expires,
            origin: "cscli".into(),
            scenario: "crowdsecurity/ssh-bf".into(),
        }
    }

    fn admit(s: &mut Store, ip: &str, now: Timestamp) -> Decision {
        let attempt = Attempt {
            ip: ip.parse().unwrap(),
            user: b"root",
            service: "sshd",
        };
        s.admit(&Config::default(), &attempt, now).unwrap()
    }

    #[test]
    fn pulled_decisions_refuse_inline_until_deleted() {
        let t = TempStore::new("fleet");
        let mut s = t.open();
        let done = s
            .apply_pull(
                &[
                    pulled(7, "203.0.113.7", 5_000),
                    pulled(8, "198.51.100.0/24", 5_000),
                ],
                &[],
                1_000,
            )
            .unwrap();
        assert_eq!(done.added, 2);
        let Decision::Refused {
            ban,
            created: false,
            ..
        } = admit(&mut s, "198.51.100.9", 1_001)
        else {
            panic!("a pulled range refuses inline")
        };
        assert_eq!(
            (ban.origin, ban.fleet.unwrap().scenario.as_str()),
            (Origin::Crowdsec, "crowdsecurity/ssh-bf")
        );
        // The same decision again (a repeat, or a longer end) is one ban.
        let again = s
            .apply_pull(&[pulled(7, "203.0.113.7", 6_000)], &[], 1_002)
            .unwrap();
        assert_eq!((again.added, again.updated), (0, 1));
        assert_eq!(s.held_decisions(1_002).unwrap(), 2);
        let gone = s.apply_pull(&[], &[7, 7], 1_003).unwrap();
        assert_eq!(gone.ended, 1, "a deletion seen twice ends one ban");
        assert!(matches!(
            admit(&mut s, "203.0.113.7", 1_004),
            Decision::Admitted { .. }
        ));
        let ended = s
            .all_bans()
            .unwrap()
            .into_iter()
            .find(|b| b.source == "203.0.113.7")
            .unwrap();
        assert_eq!(ended.end_reason, Some(EndReason::Deleted));
        // A startup pull that no longer lists 8 ends it.
        assert_eq!(s.end_decisions_except(|_| false, 1_005).unwrap(), 1);
        assert_eq!(s.held_decisions(1_005).unwrap(), 0);
    }

    #[test]
    fn our_own_ban_coming_back_is_not_held_twice_and_fleet_bans_make_no_offenders() {
        let t = TempStore::new("fleet-echo");
        let mut s = t.open();
        let config = Config::default();
        for i in 0..6 {
            admit(&mut s, "203.0.113.50", 100 + i);
        }
        let own = s.active_bans(106).unwrap().pop().unwrap();
        let echo = pulled(9, "203.0.113.50", own.expires.unwrap());
        assert_eq!(s.apply_pull(&[echo], &[], 107).unwrap().already_banned, 1);
        s.apply_pull(&[pulled(10, "192.0.2.1", 200)], &[], 107)
            .unwrap();
        assert!(!s.is_past_offender("192.0.2.1".parse().unwrap(), 0).unwrap());
        assert!(
            s.is_past_offender("203.0.113.50".parse().unwrap(), 0)
                .unwrap()
        );
        let _ = config;
    }

    #[test]
    fn a_pull_logs_its_changes_itself_and_leaves_the_triggers_on() {
        use crate::policy::{BanLength, NewBan};
        let t = TempStore::new("fleet-changes");
        let mut s = t.open();
        s.set_push(true).unwrap();
        let start = s.ban_revision().unwrap();
        s.apply_pull(&[pulled(1, "203.0.113.1", 5_000)], &[], 1_000)
            .unwrap();
        let small = s.ban_changes_since(start).unwrap();
        assert_eq!(
            (small.sources.as_slice(), small.reload),
            (&["203.0.113.1".to_owned()][..], false)
        );
        let many: Vec<Pulled> = (0..1_001)
            .map(|i| pulled(10 + i, &format!("10.0.{}.{}", i / 256, i % 256), 5_000))
            .collect();
        s.apply_pull(&many, &[], 1_000).unwrap();
        let bulk = s.ban_changes_since(small.rev).unwrap();
        assert!(bulk.reload && bulk.sources.is_empty(), "{bulk:?}");
        assert_eq!(s.outbox_depth().unwrap(), 0, "pulled bans are never pushed");
        // The same connection's own ban still fires both triggers.
        let new = NewBan {
            net: addr::parse_target("192.0.2.77").unwrap(),
            length: BanLength::For(std::time::Duration::from_secs(600)),
            reason: "test",
            origin: Origin::Manual,
            failures: 0,
        };
        s.ban(&Config::default(), &new, 1_001).unwrap();
        let after = s.ban_changes_since(bulk.rev).unwrap();
        assert_eq!(after.sources, ["192.0.2.77"]);
        assert_eq!(s.outbox_depth().unwrap(), 1);
    }
}
